/* Provider kubevirtci: kubevirtci's gocli node VMs (QEMU in containers),
 * started by `make cluster-up` in the user's kubevirt or kubevirtci checkout
 * with a virtio-gpu device added through --qemu-args.
 *
 * Nodes: gocli publishes node01's sshd on a random host port
 * (`cluster-up/cli.sh ports ssh`). Our key for root and the node's host key
 * are exchanged once through `cluster-up/ssh.sh node01` (kubevirtci's own
 * channel, docker exec + its vagrant key); then libssh reaches node01 on the
 * forwarded port with that host key pinned. Only node01 has a published ssh
 * port, so further nodes are left to kubevirtci (docs/providers.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "providers/kubevirtci_preflight.h"
#include "providers/provider.h"
#include "providers/rollback.h"
#include "provision/base/ssh.h"

#define KUBEVIRTCI_RESOURCE "kubevirtci-cluster"

/* ---- KUBEVIRT_PROVIDER_EXTRA_ARGS --------------------------------------- */

struct word {
        size_t start, end; /* span in the source text */
        char *value;       /* after quote removal */
};

static void words_free(struct word *w, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(w[i].value);
        free(w);
}

/* Split like a POSIX shell does for eval (quotes and backslashes; no
 * expansions: $VAR stays as text, which is all we need to find a flag). */
static int shell_words(const char *s, struct word **ret, size_t *ret_n)
{
        struct word *w = NULL;
        size_t n = 0;
        size_t i = 0, len = strlen(s);
        while (i < len) {
                while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
                        i++;
                if (i >= len)
                        break;
                char *val = malloc(len + 1);
                size_t vl = 0, start = i;
                if (!val)
                        goto oom;
                while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') {
                        if (s[i] == '\'') {
                                const char *e = strchr(s + i + 1, '\'');
                                if (!e) {
                                        free(val);
                                        words_free(w, n);
                                        return -EINVAL;
                                }
                                memcpy(val + vl, s + i + 1, e - (s + i + 1));
                                vl += e - (s + i + 1);
                                i = e - s + 1;
                        } else if (s[i] == '"') {
                                i++;
                                while (i < len && s[i] != '"') {
                                        if (s[i] == '\\' && i + 1 < len &&
                                            strchr("$`\"\\\n", s[i + 1]))
                                                i++;
                                        val[vl++] = s[i++];
                                }
                                if (i >= len) {
                                        free(val);
                                        words_free(w, n);
                                        return -EINVAL;
                                }
                                i++;
                        } else if (s[i] == '\\' && i + 1 < len) {
                                val[vl++] = s[i + 1];
                                i += 2;
                        } else
                                val[vl++] = s[i++];
                }
                val[vl] = 0;
                struct word *nw = realloc(w, (n + 1) * sizeof(*w));
                if (!nw) {
                        free(val);
                        goto oom;
                }
                w = nw;
                w[n++] = (struct word){start, i, val};
        }
        *ret = w;
        *ret_n = n;
        return 0;
oom:
        words_free(w, n);
        return -ENOMEM;
}

int kubevirtci_extra_args(const char *user_value, const char *cfg_extra, char **ret)
{
        _cleanup_free_ char *base = NULL;
        if (!isempty(user_value) && !isempty(cfg_extra))
                base = strdup_printf("%s %s", user_value, cfg_extra);
        else
                base = strdup(!isempty(user_value)  ? user_value
                              : !isempty(cfg_extra) ? cfg_extra
                                                    : "");
        if (!base)
                return -ENOMEM;

        struct word *w = NULL;
        size_t n = 0;
        int r = shell_words(base, &w, &n);
        if (r < 0)
                return r;

        /* gocli's --qemu-args is a string flag: the last one wins. */
        ssize_t at = -1;
        bool inline_form = false;
        for (size_t i = 0; i < n; i++) {
                if (streq(w[i].value, "--qemu-args") && i + 1 < n) {
                        at = (ssize_t)i + 1;
                        inline_form = false;
                } else if (startswith(w[i].value, "--qemu-args=")) {
                        at = (ssize_t)i;
                        inline_form = true;
                }
        }

        char *out;
        if (at < 0) {
                _cleanup_free_ char *q = shell_quote(KUBEVIRTCI_GPU_DEVICE);
                out = q ? strdup_printf("%s%s--qemu-args %s", base, *base ? " " : "", q) : NULL;
        } else {
                const char *old = w[at].value + (inline_form ? strlen("--qemu-args=") : 0);
                _cleanup_free_ char *merged =
                    strstr(old, "virtio-gpu-pci")
                        ? strdup(old)
                        : strdup_printf("%s%s%s", old, *old ? " " : "", KUBEVIRTCI_GPU_DEVICE);
                _cleanup_free_ char *word = merged && inline_form
                                                ? strdup_printf("--qemu-args=%s", merged)
                                                : (merged ? strdup(merged) : NULL);
                _cleanup_free_ char *q = word ? shell_quote(word) : NULL;
                out = q ? strdup_printf("%.*s%s%s", (int)w[at].start, base, q, base + w[at].end)
                        : NULL;
        }
        words_free(w, n);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* ---- checkout layout ------------------------------------------------------ */

char *kubevirtci_cluster_up_dir(const char *checkout)
{
        _cleanup_free_ char *nested = strdup_printf("%s/kubevirtci/cluster-up", checkout);
        if (nested && file_exists(nested))
                return TAKE_PTR(nested);
        return strdup_printf("%s/cluster-up", checkout);
}

char *kubevirtci_config_path(const char *checkout)
{
        /* A kubevirt checkout's `make cluster-up` (hack/cluster-up.sh) sources
         * hack/config-kubevirtci.sh, which sets KUBEVIRTCI_CONFIG_PATH to
         * <checkout>/kubevirtci/_ci-configs whatever the environment says. */
        _cleanup_free_ char *kv = strdup_printf("%s/hack/config-kubevirtci.sh", checkout);
        if (kv && file_exists(kv))
                return strdup_printf("%s/kubevirtci/_ci-configs", checkout);
        const char *cp = getenv("KUBEVIRTCI_CONFIG_PATH");
        if (!isempty(cp))
                return strdup(cp);
        _cleanup_free_ char *up = kubevirtci_cluster_up_dir(checkout);
        if (!up)
                return NULL;
        /* cluster-up/hack/common.sh: KUBEVIRTCI_CONFIG_PATH=<cluster-up>/../_ci-configs */
        char *slash = strrchr(up, '/');
        *slash = 0;
        return strdup_printf("%s/_ci-configs", up);
}

char *kubevirtci_kubeconfig_path(const char *checkout, const char *provider)
{
        _cleanup_free_ char *cp = kubevirtci_config_path(checkout);
        return cp ? strdup_printf("%s/%s/.kubeconfig", cp, provider) : NULL;
}

int kubevirtci_make(struct run_ctx *ctx, const char *checkout, const char *target, char *const *env,
                    char *const *argv_prefix)
{
        _cleanup_strv_free_ char **argv = strv_copy(argv_prefix);
        if ((argv_prefix && !argv) || strv_extend(&argv, "make") < 0 ||
            strv_extend(&argv, target) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        _cleanup_free_ char *what = strdup_printf("make %s in %s", target, checkout);
        struct step s = step_begin(what ? what : target);
        int r = ctx_run(ctx, what ? what : target, argv, env, checkout, NULL);
        step_end(&s, r);
        return r;
}

/* ---- the provider --------------------------------------------------------- */

static int make_env(struct run_ctx *ctx, char ***ret)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *extra = NULL;
        int r = kubevirtci_extra_args(getenv("KUBEVIRT_PROVIDER_EXTRA_ARGS"),
                                      c->kubevirtci.extra_args, &extra);
        if (r == -EINVAL)
                return log_error_errno(r,
                                       "KUBEVIRT_PROVIDER_EXTRA_ARGS/kubevirtci.extra_args has an "
                                       "unterminated quote: %s %s",
                                       getenv("KUBEVIRT_PROVIDER_EXTRA_ARGS") ?: "",
                                       c->kubevirtci.extra_args ?: "");
        if (r < 0)
                return log_error_errno(r, "out of memory");
        _cleanup_strv_free_ char **env = NULL;
        if (strv_push(&env, strdup_printf("KUBEVIRT_PROVIDER=%s", c->kubevirtci.provider)) < 0 ||
            strv_push(&env, strdup_printf("KUBEVIRT_NUM_NODES=%u", c->nodes.count)) < 0 ||
            /* gocli's --memory takes a Kubernetes quantity; kubevirtci's
             * default is 5120M. */
            strv_push(&env, strdup_printf("KUBEVIRT_MEMORY_SIZE=%uM", c->nodes.memory)) < 0 ||
            strv_push(&env, strdup_printf("KUBEVIRT_PROVIDER_EXTRA_ARGS=%s", extra)) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        /* down.sh sources the provider too, which needs the tag as well. */
        if ((r = kubevirtci_tag_env(c, c->kubevirtci.dir, &env)) < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

/* The command line given to ssh.sh: kubevirtci's ssh joins its arguments
 * and the node's shell parses them, so it is one quoted string. */
static char *bootstrap_command(const char *pubkey)
{
        _cleanup_free_ char *q = shell_quote(pubkey);
        _cleanup_free_ char *script =
            q ? strdup_printf("set -e; umask 077; mkdir -p /root/.ssh; "
                              "touch /root/.ssh/authorized_keys; "
                              "grep -qxF %s /root/.ssh/authorized_keys || "
                              "echo %s >> /root/.ssh/authorized_keys; "
                              "cat /etc/ssh/ssh_host_ed25519_key.pub",
                              q, q)
              : NULL;
        _cleanup_free_ char *qs = script ? shell_quote(script) : NULL;
        return qs ? strdup_printf("sudo sh -c %s", qs) : NULL;
}

static int register_node01(struct run_ctx *ctx, struct state *st, char *const *env)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *up = kubevirtci_cluster_up_dir(c->kubevirtci.dir);
        _cleanup_free_ char *cli = up ? strdup_printf("%s/cli.sh", up) : NULL;
        _cleanup_free_ char *ssh = up ? strdup_printf("%s/ssh.sh", up) : NULL;
        _cleanup_free_ char *identity =
            c->ssh.key ? strdup(c->ssh.key) : strdup_printf("%s/id_ed25519", ctx->state_dir);
        if (!cli || !ssh || !identity)
                return log_error_errno(ENOMEM, "out of memory");

        _cleanup_free_ char *pub = NULL;
        int r;
        if (ctx->dry_run)
                pub = strdup("ssh-ed25519 <the key in "
                             "the state directory>");
        else if (!c->ssh.key && !file_exists(identity))
                r = ssh_keygen(identity, "vgpuenv", &pub);
        else {
                _cleanup_free_ char *pp = strdup_printf("%s.pub", identity);
                r = pp ? ssh_read_pubkey(pp, &pub) : -ENOMEM;
        }
        if (!pub)
                return log_error_errno(EIO, "cannot read or create the ssh key %s", identity);

        char *const ports[] = {cli, "ports", "ssh", NULL};
        struct spawn_result res = {};
        r = ctx_run(ctx, "kubevirtci: node01's ssh port", ports, env, c->kubevirtci.dir, &res);
        unsigned long long port = 0;
        if (r >= 0 && !ctx->dry_run) {
                if (res.exit_code != 0 || !res.out ||
                    parse_uint64(strtok(res.out, " \r\n") ?: "", 1, 65535, &port) < 0)
                        r = log_error_errno(EIO,
                                            "`cluster-up/cli.sh ports ssh` gave no port "
                                            "(exit %d): %s",
                                            res.exit_code, res.out ? res.out : "");
        }
        spawn_result_done(&res);
        if (r < 0)
                return r;

        _cleanup_free_ char *cmd = bootstrap_command(pub);
        if (!cmd)
                return log_error_errno(ENOMEM, "out of memory");
        char *const ex[] = {ssh, "node01", "--", cmd, NULL};
        r = ctx_run(ctx, "kubevirtci: key exchange with node01", ex, env, c->kubevirtci.dir, &res);
        _cleanup_free_ char *host_key = NULL;
        if (r >= 0 && !ctx->dry_run) {
                const char *p = res.out ? strstr(res.out, "ssh-ed25519 ") : NULL;
                if (res.exit_code != 0 || !p)
                        r = log_error_errno(EIO,
                                            "node01: key exchange through ssh.sh failed "
                                            "(exit %d): %s",
                                            res.exit_code, res.err ? res.err : "");
                else
                        host_key = strndup(p, strcspn(p, "\r\n"));
        }
        spawn_result_done(&res);
        if (r < 0 || ctx->dry_run)
                return r;

        cJSON *pd = state_provider_data(st);
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "node01_ssh_port");
        cJSON_AddNumberToObject(pd, "node01_ssh_port", (double)port);
        const char *wait = getenv("VGPUENV_NODE_WAIT");
        if (wait && streq(wait, "0")) {
                log_notice("VGPUENV_NODE_WAIT=0: node01 not connected to nor recorded");
                return state_save(st);
        }
        struct node_target t = {
            .name = "node01",
            .host = "127.0.0.1",
            .port = (unsigned)port,
            .user = "root",
            .identity = identity,
            .host_key = host_key,
            .cancelled = &ctx->cancelled,
        };
        struct ssh_node *n = NULL;
        r = ssh_node_connect(&t, c->ssh.timeout ? c->ssh.timeout : 300, &n);
        if (r < 0)
                return r;
        ssh_node_free(n);
        if (c->nodes.count > 1)
                log_notice(
                    "kubevirtci publishes only node01's ssh port: node setup runs on node01; "
                    "node02..node%02u are not set up (docs/providers.md)",
                    c->nodes.count);
        r = state_set_node(st, &t);
        return r < 0 ? r : state_save(st);
}

static int kubevirtci_down_make(struct run_ctx *ctx, struct state *st)
{
        _cleanup_strv_free_ char **env = NULL;
        int r = make_env(ctx, &env);
        if (r < 0)
                return r;
        r = kubevirtci_make(ctx, ctx->cfg->kubevirtci.dir, "cluster-down", env, NULL);
        if (r < 0 || ctx->dry_run)
                return r;
        state_drop_resource(st, KUBEVIRTCI_RESOURCE, ctx->cfg->kubevirtci.provider);
        return state_save(st);
}

static int kubevirtci_up(struct run_ctx *ctx, struct state *st)
{
        const struct config *c = ctx->cfg;
        _cleanup_strv_free_ char **env = NULL;
        if (!ctx->dry_run && !file_exists(c->kubevirtci.dir))
                return log_error_errno(ENOENT, "kubevirtci.dir %s does not exist",
                                       c->kubevirtci.dir);
        int r = make_env(ctx, &env);
        if (r < 0)
                return r;
        /* Before anything exists: the provider, the tag, the node image. */
        if ((!ctx->dry_run &&
             (r = kubevirtci_check_provider(c->kubevirtci.dir, c->kubevirtci.provider)) < 0) ||
            (r = kubevirtci_node_image_env(c, &env)) < 0 ||
            (r = kubevirtci_check_node_image(ctx)) < 0)
                return r;

        if (!ctx->dry_run) {
                state_add_resource(st, KUBEVIRTCI_RESOURCE, c->kubevirtci.provider);
                if ((r = state_save(st)) < 0)
                        return r;
        }
        /* kubevirtci's cluster-up is itself idempotent for a running cluster
         * of the same provider (gocli reuses it), so a re-run converges. */
        r = kubevirtci_make(ctx, c->kubevirtci.dir, "cluster-up", env, NULL);
        if (r >= 0)
                r = register_node01(ctx, st, env);
        if (r < 0 && !ctx->dry_run &&
            state_resource_is_ours_this_run(st, KUBEVIRTCI_RESOURCE, c->kubevirtci.provider)) {
                log_notice("rolling back: make cluster-down for the cluster this run started");
                bool was = rollback_begin(ctx);
                (void)kubevirtci_down_make(ctx, st);
                rollback_end(ctx, was);
        }
        return r;
}

static int kubevirtci_down(struct run_ctx *ctx, struct state *st)
{
        if (!ctx->dry_run &&
            !state_has_resource(st, KUBEVIRTCI_RESOURCE, ctx->cfg->kubevirtci.provider)) {
                log_notice("the state lists no kubevirtci cluster: nothing to take down");
                return 0;
        }
        return kubevirtci_down_make(ctx, st);
}

static int kubevirtci_status(struct run_ctx *ctx, struct state *st, cJSON *out)
{
        cJSON *o = cJSON_AddObjectToObject(out, "kubevirtci");
        cJSON_AddStringToObject(o, "dir", ctx->cfg->kubevirtci.dir ?: "");
        cJSON_AddStringToObject(o, "provider", ctx->cfg->kubevirtci.provider);
        const cJSON *port =
            cJSON_GetObjectItemCaseSensitive(state_provider_data(st), "node01_ssh_port");
        if (cJSON_IsNumber(port))
                cJSON_AddNumberToObject(o, "node01_ssh_port", port->valuedouble);
        return 0;
}

int kubevirtci_find_kubeconfig(struct run_ctx *ctx, const char *checkout, const char *provider,
                               char **ret)
{
        char *p = kubevirtci_kubeconfig_path(checkout, provider);

        if (!p)
                return -ENOMEM;
        if (!ctx->dry_run && !file_exists(p)) {
                free(p);
                return -ENOENT;
        }
        *ret = p;
        return 0;
}

static int kubevirtci_kubeconfig(struct run_ctx *ctx, struct state *st, char **ret)
{
        (void)st;
        return kubevirtci_find_kubeconfig(ctx, ctx->cfg->kubevirtci.dir,
                                          ctx->cfg->kubevirtci.provider, ret);
}

static int kubevirtci_ci_config_dir(struct run_ctx *ctx, char **ret)
{
        *ret = kubevirtci_config_path(ctx->cfg->kubevirtci.dir);
        return *ret ? 0 : -ENOMEM;
}

static const char *kubevirtci_kubevirt_provider(struct run_ctx *ctx)
{
        return ctx->cfg->kubevirtci.provider;
}

const struct provider_ops provider_kubevirtci = {
    .name = "kubevirtci",
    .vm_nodes = true,
    .up = kubevirtci_up,
    .down = kubevirtci_down,
    .status = kubevirtci_status,
    .kubeconfig = kubevirtci_kubeconfig,
    .kubevirt_provider = kubevirtci_kubevirt_provider,
    .makes_cluster = true,
    .ci_config_dir = kubevirtci_ci_config_dir,
};
