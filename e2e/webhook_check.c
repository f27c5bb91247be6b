/* curl from a node to the webhook (see webhook_check.h). */
#include "e2e/webhook_check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/context.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"

/* curl -w prints the HTTP status; with --cacert the node checks the very
 * certificate the API server checks (caBundle is that CA). The CA and the URL
 * are arguments of a fixed script (each quoted by ssh_node_run), so nothing
 * from the config is spliced into shell text and no SFTP is needed. */
static const char curl_script[] =
    "set -- \"$1\" \"$2/healthz\"\n"
    "if [ -z \"$1\" ]; then exec curl -sS --max-time 15 -o /dev/null -w '%{http_code}' "
    "--insecure \"$2\"; fi\n"
    "ca=$(mktemp) && printf '%s' \"$1\" >\"$ca\" || exit 1\n"
    "curl -sS --max-time 15 -o /dev/null -w '%{http_code}' --cacert \"$ca\" \"$2\"\n"
    "rc=$?; rm -f \"$ca\"; exit $rc\n";

static int judge(const char *node, const char *url, const struct proc_result *res)
{
        const char *err = isempty(res->err.data) ? "" : res->err.data;
        const char *out = res->out.data;

        if (res->exit_code == 127) {
                log_notice("Node %s has no curl: the webhook %s is not proven reachable from the "
                           "nodes; check by hand",
                           node, url);
                return 0;
        }
        if (res->exit_code == 0 && out && streq(out, "200")) {
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
                               url, node, res->exit_code, isempty(out) ? "-" : out,
                               (int)strcspn(err, "\n"), err);
}

static int probe(struct run_ctx *ctx, const struct node_target *t, const char *url)
{
        _cleanup_free_ char *ca = strdup_printf("%s/webhook-certs/ca.crt", ctx->state_dir);
        _cleanup_free_ char *ca_text = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        struct ssh_node *n = NULL;
        struct cancel token;
        int r;

        if (!ca)
                return log_error_errno(ENOMEM, "Out of memory");
        if (file_exists(ca) && read_full_file(ca, &ca_text, NULL) < 0)
                return log_error_errno(EIO, "Cannot read %s", ca);
        char *const argv[] = {"sh",        "-c", (char *)curl_script, "sh", ca_text ? ca_text : "",
                              (char *)url, NULL};
        r = ssh_node_connect(t, 30, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot reach node %s over ssh to prove the webhook",
                                       t->name);
        cancel_init_child(&token, &ctx->cancel, 60, "curl to the webhook from a node");
        ssh_node_set_cancel(n, &token);
        r = ssh_node_run(n, argv, &res);
        if (r >= 0)
                r = judge(t->name, url, &res);
        else
                log_error_errno(r, "Cannot run curl on node %s", t->name);
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
