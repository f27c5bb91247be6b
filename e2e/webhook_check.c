/* curl from a node to the webhook (see webhook_check.h). */
#include "e2e/webhook_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/context.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"

#define NODE_CA_PATH "/tmp/vgpuenv-webhook-ca.pem"

/* curl -w prints the HTTP status; with --cacert the node checks the very
 * certificate the API server checks (caBundle is that CA). */
static char **curl_argv(const char *url, bool with_ca)
{
        _cleanup_strv_free_ char **a = NULL;
        _cleanup_free_ char *health = strdup_printf("%s/healthz", url);
        int r = 0;

        if (!health)
                return NULL;
        r |= strv_extend(&a, "curl");
        r |= strv_extend(&a, "-sS");
        r |= strv_extend(&a, "--max-time");
        r |= strv_extend(&a, "15");
        r |= strv_extend(&a, "-o");
        r |= strv_extend(&a, "/dev/null");
        r |= strv_extend(&a, "-w");
        r |= strv_extend(&a, "%{http_code}");
        r |= strv_extend(&a, with_ca ? "--cacert" : "--insecure");
        if (with_ca)
                r |= strv_extend(&a, NODE_CA_PATH);
        r |= strv_extend(&a, health);
        return r < 0 ? NULL : TAKE_PTR(a);
}

static int judge(const char *node, const char *url, const struct spawn_result *res)
{
        const char *err = isempty(res->err) ? "" : res->err;

        if (res->exit_code == 127) {
                log_notice("Node %s has no curl: the webhook %s is not proven reachable from the "
                           "nodes; check by hand",
                           node, url);
                return 0;
        }
        if (res->exit_code == 0 && res->out && streq(res->out, "200")) {
                log_info("Webhook %s answers from node %s", url, node);
                return 0;
        }
        return log_error_errno(EHOSTUNREACH,
                               "The webhook %s does not answer from node %s (curl exit %d, HTTP "
                               "%s) %.*s: with failurePolicy Ignore every virt-launcher pod would "
                               "be admitted without mesa and the display tests would fail with "
                               "\"opengl not available\". Start it on the host (the `mesa-injector "
                               "serve` command `vgpuenv up` printed) or set webhook.url to an "
                               "address the nodes reach the host at.",
                               url, node, res->exit_code, isempty(res->out) ? "-" : res->out,
                               (int)strcspn(err, "\n"), err);
}

static int probe(struct run_ctx *ctx, const struct node_target *t, const char *url)
{
        _cleanup_free_ char *ca = strdup_printf("%s/webhook-certs/ca.crt", ctx->state_dir);
        _cleanup_free_ char *ca_text = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        struct spawn_result res = {0};
        struct ssh_node *n = NULL;
        size_t ca_size = 0;
        int r;

        if (!ca)
                return log_error_errno(ENOMEM, "Out of memory");
        if (file_exists(ca) && read_full_file(ca, &ca_text, &ca_size) < 0)
                return log_error_errno(EIO, "Cannot read %s", ca);
        r = ssh_node_connect(t, 30, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot reach node %s over ssh to prove the webhook",
                                       t->name);
        if (ca_text && (r = ssh_node_upload_data(n, ca_text, ca_size, NODE_CA_PATH, 0644)) < 0) {
                ssh_node_free(n);
                return log_error_errno(r, "Cannot copy the webhook CA to node %s", t->name);
        }
        argv = curl_argv(url, ca_text != NULL);
        r = argv ? ssh_node_run(n, argv, &res) : -ENOMEM;
        if (r >= 0)
                r = judge(t->name, url, &res);
        else
                log_error_errno(r, "Cannot run curl on node %s", t->name);
        spawn_result_done(&res);
        ssh_node_free(n);
        return r;
}

int e2e_check_webhook_from_node(struct run_ctx *ctx, struct state *st)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ struct node_target *nodes = NULL;
        size_t n = 0;

        if (c->webhook.deploy != DEPLOY_URL || isempty(c->webhook.url))
                return 0;
        if (state_get_nodes(st, &nodes, &n) < 0 || n == 0) {
                log_notice("The state of %s lists no node: the webhook %s is not proven reachable "
                           "from the nodes",
                           c->name, c->webhook.url);
                return 0;
        }
        return probe(ctx, &nodes[0], c->webhook.url);
}
