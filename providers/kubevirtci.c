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
#include "providers/kubevirtci_cluster.h"
#include "providers/kubevirtci_preflight.h"
#include "providers/provider.h"
#include "provision/base/plan.h"
#include "provision/base/ssh.h"

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

int kubevirtci_run_make(struct step_run *sr, const char *checkout, const char *target,
                        char *const *env, char *const *argv_prefix)
{
        _cleanup_strv_free_ char **argv = strv_copy(argv_prefix);
        _cleanup_free_ char *what =
            strdup_printf("make %s in %s (deadlines.provider)", target, checkout);
        if ((argv_prefix && !argv) || strv_extend(&argv, "make") < 0 ||
            strv_extend(&argv, target) < 0 || !what)
                return log_error_errno(ENOMEM, "out of memory");
        return step_run_program_checked(sr, sr->ctx->cfg->deadlines.provider, what, argv, env,
                                        checkout, NULL);
}

struct make_job {
        char *checkout, *target;
        char **env, **prefix;
};

static void make_job_free(void *p)
{
        struct make_job *j = p;
        free(j->checkout);
        free(j->target);
        strv_free(j->env);
        strv_free(j->prefix);
        free(j);
}

static int run_make(struct step_run *sr, void *data)
{
        struct make_job *j = data;
        if (!file_exists(j->checkout))
                return log_error_errno(ENOENT, "%s does not exist (kubevirtci.dir / kind.dir)",
                                       j->checkout);
        return kubevirtci_run_make(sr, j->checkout, j->target, j->env, j->prefix);
}

struct step *kubevirtci_plan_make(struct plan *p, struct run_ctx *ctx, const char *name,
                                  const char *checkout, const char *target, char **env,
                                  char *const *argv_prefix)
{
        struct make_job *j = plan_own(p, calloc(1, sizeof(struct make_job)), make_job_free);
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *env_text = NULL, *cmd = NULL;
        struct step *s;

        if (!j || !(j->checkout = strdup(checkout ? checkout : "")) ||
            !(j->target = strdup(target)) || !(j->env = strv_copy(env)) ||
            (argv_prefix && !(j->prefix = strv_copy(argv_prefix))))
                return NULL;
        argv = strv_copy(argv_prefix);
        if ((argv_prefix && !argv) || strv_extend(&argv, "make") < 0 ||
            strv_extend(&argv, target) < 0)
                return NULL;
        cmd = shell_join(argv);
        env_text = shell_env_join(env);
        s = plan_add(p, name, run_make, j);
        step_acts_on(s, "the checkout %s (kubevirtci's cluster-up)", checkout);
        step_deadline(s, ctx->cfg->deadlines.provider + 60.0);
        step_detail(s, "run: [in %s] %s %s", checkout, env_text ? env_text : "", cmd ? cmd : "");
        return s;
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

/* kubevirtci's registry container runs in the dnsmasq container's network
 * (gocli run.go: NetworkMode container:<dnsmasq>, published with
 * --random-ports); KubeVirt's cluster-sync pushes to localhost:$(_port
 * registry) and its manifests name registry:5000 (kubevirtci 39bd4947
 * cluster-up/cluster/ephemeral-provider-common.sh docker_prefix,
 * manifest_docker_prefix). */
static int kvci_registry(struct run_ctx *ctx, char ***ret_port_argv, char ***ret_env,
                         char **ret_dir, char **ret_pull)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *up = kubevirtci_cluster_up_dir(c->kubevirtci.dir);
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        int r;

        if (!up || strv_push(&argv, strdup_printf("%s/cli.sh", up)) < 0 ||
            strv_extend(&argv, "ports") < 0 || strv_extend(&argv, "registry") < 0)
                return log_error_errno(ENOMEM, "out of memory");
        if ((r = make_env(ctx, &env)) < 0)
                return r;
        if (!(*ret_dir = strdup(c->kubevirtci.dir)) || !(*ret_pull = strdup("registry:5000"))) {
                free(*ret_dir);
                return log_error_errno(ENOMEM, "out of memory");
        }
        *ret_port_argv = TAKE_PTR(argv);
        *ret_env = TAKE_PTR(env);
        return 0;
}

static int user_key(struct run_ctx *ctx, char **ret_identity, char **ret_pub)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *identity =
            c->ssh.key ? strdup(c->ssh.key) : strdup_printf("%s/id_ed25519", ctx->state_dir);
        _cleanup_free_ char *pub = NULL;
        int r;

        if (!identity)
                return log_error_errno(ENOMEM, "out of memory");
        if (!c->ssh.key && !file_exists(identity))
                r = ssh_keygen(identity, "vgpuenv", &pub);
        else {
                _cleanup_free_ char *pp = strdup_printf("%s.pub", identity);
                r = pp ? ssh_read_pubkey(pp, &pub) : -ENOMEM;
        }
        if (r < 0 || !pub)
                return log_error_errno(r < 0 ? r : EIO, "cannot read or create the ssh key %s",
                                       identity);
        *ret_identity = TAKE_PTR(identity);
        *ret_pub = TAKE_PTR(pub);
        return 0;
}

/* node01's forwarded ssh port, from `cluster-up/cli.sh ports ssh`. */
static int node01_port(struct step_run *sr, const struct kubevirtci_cluster *k, const char *cli,
                       unsigned long long *ret)
{
        char *const ports[] = {(char *)cli, "ports", "ssh", NULL};
        _cleanup_free_ char *out = NULL;
        int r = step_run_program(sr, "kubevirtci: node01's ssh port", ports, k->env,
                                 k->ctx->cfg->kubevirtci.dir, &out);
        char *save = NULL, *first = out ? strtok_r(out, " \r\n", &save) : NULL;

        if (r < 0)
                return r;
        if (parse_uint64(first ?: "", 1, 65535, ret) < 0)
                return log_error_errno(EIO, "`cluster-up/cli.sh ports ssh` gave no port: %s",
                                       out ? out : "");
        return 0;
}

static int run_register(struct step_run *sr, void *data)
{
        struct kubevirtci_cluster *k = data;
        const struct config *c = k->ctx->cfg;
        _cleanup_free_ char *up = kubevirtci_cluster_up_dir(c->kubevirtci.dir);
        _cleanup_free_ char *cli = up ? strdup_printf("%s/cli.sh", up) : NULL;
        _cleanup_free_ char *ssh = up ? strdup_printf("%s/ssh.sh", up) : NULL;
        _cleanup_free_ char *identity = NULL, *pub = NULL, *cmd = NULL, *out = NULL;
        unsigned long long port = 0;
        int r;

        if (!cli || !ssh)
                return log_error_errno(ENOMEM, "out of memory");
        if ((r = user_key(k->ctx, &identity, &pub)) < 0 || (r = node01_port(sr, k, cli, &port)) < 0)
                return r;
        if (!(cmd = bootstrap_command(pub)))
                return log_error_errno(ENOMEM, "out of memory");
        char *const ex[] = {ssh, "node01", "--", cmd, NULL};
        r = step_run_program(sr, "kubevirtci: key exchange with node01 (ssh.sh)", ex, k->env,
                             c->kubevirtci.dir, &out);
        if (r < 0)
                return r;
        const char *p = strstr(out, "ssh-ed25519 ");
        if (!p)
                return log_error_errno(EIO, "node01: ssh.sh printed no ed25519 host key");
        _cleanup_free_ char *host_key = strndup(p, strcspn(p, "\r\n"));
        cJSON *pd = state_provider_data(sr->st);
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "node01_ssh_port");
        cJSON_AddNumberToObject(pd, "node01_ssh_port", (double)port);
        if ((r = state_save(sr->st)) < 0)
                return log_error_errno(r, "saving the state file: %m");
        const char *wait = getenv("VGPUENV_NODE_WAIT");
        if (wait && streq(wait, "0")) {
                log_notice("VGPUENV_NODE_WAIT=0: node01 not connected to nor recorded");
                return 0;
        }
        struct node_target t = {.name = "node01",
                                .host = "127.0.0.1",
                                .port = (unsigned)port,
                                .user = "root",
                                .identity = identity,
                                .host_key = host_key,
                                .cancel = &sr->cancel};
        _cleanup_ssh_node_ struct ssh_node *n = NULL;
        step_waiting(sr, "node01's sshd on 127.0.0.1:%llu", port);
        r = ssh_node_connect(&t, c->ssh.timeout ? c->ssh.timeout : 300, &n);
        if (r < 0)
                return r;
        return state_set_node(sr->st, &t);
}

/* Before anything exists: the provider, and a node image whose QEMU has
 * the virtio-gpu-pci device (kubevirtci_preflight.h). */
static int run_checks(struct step_run *sr, void *data)
{
        struct kubevirtci_cluster *k = data;
        int r = kubevirtci_cluster_check(k);

        return r < 0 ? r : kubevirtci_check_node_image(sr);
}

static char **kubevirtci_node_names(const struct config *c)
{
        (void)c;
        /* Only node01 has a published ssh port (docs/providers.md). */
        char **l = NULL;
        return strv_extend(&l, "node01") < 0 ? NULL : l;
}

static int kubevirtci_plan_up(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        const struct config *c = ctx->cfg;
        struct kubevirtci_cluster *k;
        char **env = NULL;
        struct step *s;
        int r;

        (void)st;
        /* An unknown provider is the first thing to say (the node image is
         * judged against its name); a checkout that is not there yet is
         * judged by the checks step. */
        if (file_exists(c->kubevirtci.dir) &&
            (r = kubevirtci_check_provider(c->kubevirtci.dir, c->kubevirtci.provider)) < 0)
                return r;
        if ((r = make_env(ctx, &env)) < 0 || (r = kubevirtci_node_image_env(c, &env)) < 0) {
                strv_free(env);
                return r;
        }
        if (!(k = kubevirtci_cluster_new(p, ctx, env, NULL)))
                return -ENOMEM;
        if (c->nodes.count > 1)
                log_notice("kubevirtci publishes only node01's ssh port: node setup runs on "
                           "node01; node02..node%02u are not set up (docs/providers.md)",
                           c->nodes.count);
        s = plan_add(p, "kubevirtci-checks", run_checks, k);
        step_acts_on(s, "the checkout %s and the node image %s", c->kubevirtci.dir,
                     c->kubevirtci.node_image ? c->kubevirtci.node_image : "(unset)");
        step_progress(s, "provider %s exists; the node image's QEMU has virtio-gpu-pci",
                      c->kubevirtci.provider);
        step_deadline(s, 600);
        step_detail(s,
                    "check: %s/cluster-up/cluster/%s/provider.sh exists\nrun: %s run --rm "
                    "--entrypoint /usr/bin/qemu-kvm %s -device help   (lists virtio-gpu-pci)",
                    c->kubevirtci.dir, c->kubevirtci.provider, kubevirtci_container_cli(),
                    c->kubevirtci.node_image ? c->kubevirtci.node_image : "(unset)");
        /* kubevirtci's cluster-up is itself idempotent for a running cluster
         * of the same provider (gocli reuses it), so a re-run converges. */
        step_progress(kubevirtci_cluster_plan_up(p, k, "kubevirtci"),
                      "make cluster-up (KUBEVIRT_PROVIDER=%s, %u node(s), virtio-gpu added "
                      "through --qemu-args)",
                      c->kubevirtci.provider, c->nodes.count);
        s = plan_add(p, "boot node01", run_register, k);
        step_lane(s, 1, "node01");
        step_acts_on(s, "root@127.0.0.1 on node01's published ssh port");
        step_progress(s, "exchanging keys with node01 (ssh.sh) and waiting for its sshd");
        step_deadline(s, c->ssh.timeout + 120.0);
        return plan_error(p);
}

static int kubevirtci_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        char **env = NULL;
        int r = make_env(ctx, &env);

        return r < 0 ? r : kubevirtci_cluster_plan_down(p, ctx, st, env, NULL);
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

const struct provider_ops provider_kubevirtci = {
    .name = "kubevirtci",
    .vm_nodes = true,
    .makes_kubernetes = true,
    .labels_nodes = true,
    .deploys_webhook = true,
    .node_names = kubevirtci_node_names,
    .plan_up = kubevirtci_plan_up,
    .plan_down = kubevirtci_plan_down,
    .status = kubevirtci_status,
    .kubeconfig = kubevirtci_cluster_kubeconfig,
    .kubevirt_provider = kubevirtci_cluster_kubevirt_provider,
    .ci_config_dir = kubevirtci_cluster_ci_config_dir,
    .registry = kvci_registry,
};
