/* Provider kcli: a kubeadm cluster made by `kcli create kube generic`, whose
 * node VMs then get a virtio-gpu video device through the libvirt API.
 *
 * The up plan: `kcli create kube generic` from a parameter file generated
 * from our config (its undo: `kcli delete kube`, only for a cluster this run
 * made), the virtio video on every domain (kcli has no video-model
 * parameter, hence the libvirt step, providers/kcli_domains.c), then per node
 * the wait for its address and sshd.
 * Nodes are reached over libssh as root: our public key and the node's host
 * key are exchanged once through `kcli ssh` (kcli's own channel to its VMs),
 * after which the host key is pinned like for every other provider. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "providers/kcli_domains.h"
#include "providers/kcli_internal.h"
#include "providers/provider.h"
#include "provision/base/ssh.h"

#define KCLI_RESOURCE "kcli-cluster"

DEFINE_TRIVIAL_CLEANUP_FUNC(virConnectPtr, virConnectClose)
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)

/* A YAML double-quoted scalar: versions like 1.30 must stay strings. */
static char *yaml_quote(const char *s)
{
        size_t n = strlen(s);
        char *q = malloc(2 * n + 3), *p = q;
        if (!q)
                return NULL;
        *p++ = '"';
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        *p++ = '\\';
                *p++ = *s;
        }
        *p++ = '"';
        *p = 0;
        return q;
}

/* The kcli parameter file: the keys of kcli's kubeadm plan
 * (kvirt/cluster/kubeadm/kcli_default.yml). */
char *kcli_params_text(const struct config *c)
{
        unsigned ctl = c->nodes.ctlplanes ? c->nodes.ctlplanes : 1;
        unsigned workers = c->nodes.count > ctl ? c->nodes.count - ctl : 0;
        _cleanup_free_ char *image = yaml_quote(c->kcli.image ? c->kcli.image : "centos9stream");
        _cleanup_free_ char *version = c->kcli.version ? yaml_quote(c->kcli.version) : NULL;
        _cleanup_free_ char *vline = version ? strdup_printf("version: %s\n", version) : NULL;
        if (!image || (c->kcli.version && !vline))
                return NULL;
        return strdup_printf(
            "# Written by vgpuenv from %s: parameters of `kcli create kube generic`.\n"
            "ctlplanes: %u\n"
            "workers: %u\n"
            "image: %s\n"
            "memory: %u\n"
            "numcpus: %u\n"
            "disk_size: %u\n"
            "%s",
            c->path ? c->path : "the built-in defaults", ctl, workers, image, c->nodes.memory,
            c->nodes.cpus, c->nodes.disk, vline ? vline : "");
}

/* kcli [-C CLIENT] args... */
char **kcli_argv(const struct config *c, const char *const *args)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_extend(&argv, c->kcli.binary ? c->kcli.binary : "kcli") < 0)
                return NULL;
        if (!isempty(c->kcli.client) &&
            (strv_extend(&argv, "-C") < 0 || strv_extend(&argv, c->kcli.client) < 0))
                return NULL;
        for (size_t i = 0; args[i]; i++)
                if (strv_extend(&argv, args[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}

static char *params_path(struct run_ctx *ctx)
{
        return strdup_printf("%s/kcli-parameters.yml", ctx->state_dir);
}

static char *kcli_kubeconfig_path(const struct config *c)
{
        const char *home = getenv("HOME");
        return strdup_printf("%s/.kcli/clusters/%s/auth/kubeconfig", isempty(home) ? "/root" : home,
                             c->name);
}

static double env_seconds(const char *name, double dflt)
{
        const char *e = getenv(name);
        unsigned long long v;
        if (isempty(e) || parse_uint64(e, 0, 86400, &v) < 0)
                return dflt;
        return (double)v;
}

/* Provider tests define domains that never boot an OS; they check the
 * libvirt part and skip the wait (documented in docs/providers.md). */
static bool node_wait_disabled(void)
{
        const char *wait = getenv("VGPUENV_NODE_WAIT");
        return wait && streq(wait, "0");
}

static void silence_libvirt(void *opaque, virErrorPtr e)
{
        (void)opaque;
        (void)e; /* we report errors ourselves, with context */
}

static int open_libvirt(const struct config *c, virConnectPtr *ret)
{
        virSetErrorFunc(NULL, silence_libvirt);
        virConnectPtr conn = virConnectOpen(c->kcli.uri);
        if (!conn)
                return log_error_errno(EIO, "cannot connect to libvirt at %s: %s", c->kcli.uri,
                                       virGetLastErrorMessage());
        *ret = conn;
        return 0;
}

static int kcli_delete(struct step_run *sr)
{
        const struct config *c = sr->ctx->cfg;
        const char *args[] = {"delete", "kube", "--yes", c->name, NULL};
        _cleanup_strv_free_ char **argv = kcli_argv(c, args);
        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        int r = step_run_program_checked(sr, c->deadlines.provider, "kcli delete kube", argv, NULL,
                                         NULL, NULL);
        if (r < 0)
                return r;

        /* kcli reports success per VM; check that nothing of the cluster is
         * left rather than trusting it. */
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        r = open_libvirt(c, &conn);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **left = NULL;
        r = kcli_cluster_domains(conn, c->name, &left);
        if (r < 0)
                return r;
        if (left) {
                _cleanup_free_ char *list = strv_join(left, ", ");
                return log_error_errno(
                    EBUSY,
                    "kcli delete kube %s left these domains of the cluster: %s "
                    "(remove them with virsh -c %s undefine --remove-all-storage)",
                    c->name, list ? list : "?", c->kcli.uri);
        }
        state_drop_resource(sr->st, KCLI_RESOURCE, c->name);
        _cleanup_free_ char *pf = params_path(sr->ctx);
        if (pf)
                unlink(pf);
        return state_save(sr->st);
}

/* Our key for root on the node and the node's host key, both through
 * `kcli ssh`: the node is reachable only through kcli's own keys until then. */
static const char bootstrap_script_fmt[] =
    "set -e; umask 077; mkdir -p /root/.ssh; touch /root/.ssh/authorized_keys; "
    "grep -qxF %s /root/.ssh/authorized_keys || echo %s >> /root/.ssh/authorized_keys; "
    "cat /etc/ssh/ssh_host_ed25519_key.pub";

char *kcli_bootstrap_command(const char *pubkey)
{
        _cleanup_free_ char *q = shell_quote(pubkey);
        if (!q)
                return NULL;
        _cleanup_free_ char *script = strdup_printf(bootstrap_script_fmt, q, q);
        _cleanup_free_ char *qs = script ? shell_quote(script) : NULL;
        return qs ? strdup_printf("sudo sh -c %s", qs) : NULL;
}

static char *last_host_key(const char *out)
{
        const char *found = NULL;
        for (const char *p = out; p && (p = strstr(p, "ssh-ed25519 ")); p++)
                if (p == out || p[-1] == '\n')
                        found = p;
        if (!found)
                return NULL;
        return strndup(found, strcspn(found, "\r\n"));
}

static int identity_files(struct run_ctx *ctx, char **ret_identity, char **ret_pub)
{
        _cleanup_free_ char *identity = ctx->cfg->ssh.key
                                            ? strdup(ctx->cfg->ssh.key)
                                            : strdup_printf("%s/id_ed25519", ctx->state_dir);
        if (!identity)
                return -ENOMEM;
        _cleanup_free_ char *pubpath = strdup_printf("%s.pub", identity);
        char *pub = NULL;
        int r;
        if (!ctx->cfg->ssh.key && !file_exists(identity))
                r = ssh_keygen(identity, "vgpuenv", &pub);
        else
                r = ssh_read_pubkey(pubpath, &pub);
        if (r < 0)
                return log_error_errno(r, "cannot read or create the ssh key %s", identity);
        *ret_identity = TAKE_PTR(identity);
        *ret_pub = pub;
        return 0;
}

static char *domain_ipv4(virDomainPtr dom)
{
        virDomainInterfacePtr *ifs = NULL;
        char *ip = NULL;
        unsigned srcs[] = {VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                           VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP};
        for (size_t s = 0; s < ELEMENTSOF(srcs) && !ip; s++) {
                int n = virDomainInterfaceAddresses(dom, &ifs, srcs[s], 0);
                for (int i = 0; i < n; i++) {
                        for (unsigned a = 0; a < ifs[i]->naddrs && !ip; a++)
                                if (ifs[i]->addrs[a].type == VIR_IP_ADDR_TYPE_IPV4)
                                        ip = strdup(ifs[i]->addrs[a].addr);
                        virDomainInterfaceFree(ifs[i]);
                }
                free(ifs);
                ifs = NULL;
        }
        return ip;
}

/* ---- the steps ---------------------------------------------------------------- */

static int run_create(struct step_run *sr, void *data)
{
        struct run_ctx *ctx = data;
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *pf = params_path(ctx), *text = kcli_params_text(c);
        _cleanup_free_ char *kubeconfig = kcli_kubeconfig_path(c);
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        _cleanup_strv_free_ char **existing = NULL;
        const char *bin = c->kcli.binary ? c->kcli.binary : "kcli";
        _cleanup_free_ char *found = find_program(bin);
        int r;

        if (!pf || !text || !kubeconfig)
                return log_error_errno(ENOMEM, "out of memory");
        if (!found)
                return log_error_errno(ENOENT,
                                       "%s not found (kcli.binary): install kcli "
                                       "(https://github.com/karmab/kcli) or set kcli.binary",
                                       bin);
        /* Our key for the nodes, made here once: the node steps that use it
         * run side by side. */
        _cleanup_free_ char *identity = NULL, *pub = NULL;
        if ((r = identity_files(ctx, &identity, &pub)) < 0)
                return r;
        if ((r = write_file_atomic(pf, text, strlen(text), 0600)) < 0)
                return log_error_errno(r, "cannot write %s", pf);
        if ((r = open_libvirt(c, &conn)) < 0 ||
            (r = kcli_cluster_domains(conn, c->name, &existing)) < 0)
                return r;
        /* Converge instead of recreating: a cluster that exists (its
         * kubeconfig and its domains) is only fixed up. */
        if (existing && file_exists(kubeconfig)) {
                log_info("    kcli cluster %s exists (%s): converging", c->name, kubeconfig);
                return 0;
        }
        if (existing && !state_has_resource(sr->st, KCLI_RESOURCE, c->name))
                return log_error_errno(EEXIST,
                                       "domains of a kcli cluster named %s exist but it was not "
                                       "made by vgpuenv and has no kubeconfig; pick another "
                                       "name or delete it with kcli",
                                       c->name);
        if ((r = state_add_resource(sr->st, KCLI_RESOURCE, c->name)) < 0)
                return log_error_errno(r, "saving the state file: %m");
        const char *args[] = {"create", "kube", "generic", "--paramfile", pf, c->name, NULL};
        _cleanup_strv_free_ char **argv = kcli_argv(c, args);
        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        return step_run_program_checked(sr, c->deadlines.provider,
                                        "kcli create kube generic (deadlines.provider)", argv, NULL,
                                        ctx->state_dir, NULL);
}

static int undo_create(struct step_run *sr, void *data)
{
        struct run_ctx *ctx = data;
        if (!state_resource_is_ours_this_run(sr->st, KCLI_RESOURCE, ctx->cfg->name))
                return 0;
        return kcli_delete(sr);
}

static int run_video(struct step_run *sr, void *data)
{
        struct run_ctx *ctx = data;
        const struct config *c = ctx->cfg;
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        struct kcli_fix_report rep = {};
        int r = open_libvirt(c, &conn);

        if (r < 0)
                return r;
        r = kcli_fix_domains(&sr->cancel, conn, c->name,
                             env_seconds("VGPUENV_SHUTDOWN_TIMEOUT", 120), &rep);
        if (r >= 0) {
                _cleanup_free_ char *a = rep.redefined ? strv_join(rep.redefined, " ") : NULL;
                _cleanup_free_ char *b = rep.restarted ? strv_join(rep.restarted, " ") : NULL;
                _cleanup_free_ char *u = rep.untouched ? strv_join(rep.untouched, " ") : NULL;
                log_info("    kcli cluster %s: virtio video set on: %s; restarted: %s; already "
                         "virtio: %s",
                         c->name, a ? a : "-", b ? b : "-", u ? u : "-");
        }
        kcli_fix_report_done(&rep);
        return r;
}

struct kcli_node {
        struct run_ctx *ctx;
        char *name; /* owned by the plan */
};

/* The node's address (DHCP lease or ARP), our key and its host key through
 * `kcli ssh`, then libssh with that key pinned; recorded in the state. */
static int run_node(struct step_run *sr, void *data)
{
        struct kcli_node *n = data;
        const struct config *c = n->ctx->cfg;
        _cleanup_free_ char *identity = NULL, *pub = NULL, *ip = NULL, *host_key = NULL;
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        int r;

        if ((r = identity_files(n->ctx, &identity, &pub)) < 0 || (r = open_libvirt(c, &conn)) < 0)
                return r;
        _cleanup_free_ char *cmd = kcli_bootstrap_command(pub);
        _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByName(conn, n->name);
        if (!cmd)
                return log_error_errno(ENOMEM, "out of memory");
        if (!dom)
                return log_error_errno(ENOENT,
                                       "kcli made no domain %s (nodes.count and "
                                       "nodes.ctlplanes name the nodes kcli makes)",
                                       n->name);
        /* The address and sshd come within ssh.timeout of each other; the
         * step's deadline adds room for kcli ssh. */
        struct cancel addr;
        cancel_init_child(&addr, &sr->cancel, c->ssh.timeout, "ssh.timeout");
        step_waiting(sr, "an IPv4 address of %s (DHCP lease or ARP)", n->name);
        while (!(ip = domain_ipv4(dom)))
                if ((r = cancel_sleep(&addr, 2)) < 0)
                        return r == -ETIMEDOUT && cancel_culprit(&addr) == &addr
                                   ? log_error_errno(r,
                                                     "%s: no IPv4 address within %us (DHCP "
                                                     "lease or ARP)",
                                                     n->name, c->ssh.timeout)
                                   : r;
        const char *args[] = {"ssh", n->name, cmd, NULL};
        _cleanup_strv_free_ char **argv = kcli_argv(c, args);
        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        step_waiting(sr, "`kcli ssh %s` to give the node's ed25519 host key", n->name);
        while (!host_key) {
                _cleanup_proc_result_ struct proc_result res = {0};
                r = step_run_program_full(sr, "kcli ssh (key exchange)", argv, NULL, NULL, NULL,
                                          &res);
                if (r < 0)
                        return r;
                if (res.exit_code == 0)
                        host_key = last_host_key(res.out.data);
                if (!host_key && (r = cancel_sleep(&sr->cancel, 5)) < 0)
                        return r;
        }
        /* The key exchange installed our key for root. */
        struct node_target t = {.name = n->name,
                                .host = ip,
                                .port = 22,
                                .user = "root",
                                .identity = identity,
                                .host_key = host_key,
                                .cancel = &sr->cancel};
        _cleanup_ssh_node_ struct ssh_node *node = NULL;
        step_waiting(sr, "sshd on %s (%s:22)", n->name, ip);
        r = ssh_node_connect(&t, c->ssh.timeout, &node);
        if (r >= 0)
                r = state_set_node(sr->st, &t);
        return r;
}

static char **kcli_node_names(const struct config *c)
{
        unsigned ctl = c->nodes.ctlplanes ? c->nodes.ctlplanes : 1;
        _cleanup_strv_free_ char **l = NULL;

        /* kcli's names for a kubeadm cluster's VMs (kvirt/cluster/kubeadm). */
        for (unsigned i = 0; i < c->nodes.count; i++)
                if (strv_push(&l, i < ctl ? strdup_printf("%s-ctlplane-%u", c->name, i)
                                          : strdup_printf("%s-worker-%u", c->name, i - ctl)) < 0)
                        return NULL;
        return TAKE_PTR(l);
}

static int kcli_plan_up(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *pf = params_path(ctx), *text = kcli_params_text(c);
        _cleanup_strv_free_ char **names = kcli_node_names(c);
        const char *args[] = {"create", "kube", "generic", "--paramfile", pf, c->name, NULL};
        _cleanup_strv_free_ char **argv = pf ? kcli_argv(c, args) : NULL;
        _cleanup_free_ char *cmd = argv ? shell_join(argv) : NULL;
        struct step *s;

        (void)st;
        if (!pf || !text || !names || !cmd)
                return log_error_errno(ENOMEM, "out of memory");
        s = plan_add(p, "kcli-cluster", run_create, ctx);
        step_acts_on(s, "kcli cluster %s on %s", c->name, c->kcli.uri);
        step_progress(s, "kcli create kube generic %s (skipped when the cluster exists)", c->name);
        step_deadline(s, c->deadlines.provider + 60.0);
        step_undo(s, undo_create, "kcli delete kube %s, if this run created it", c->name);
        step_detail(s, "write %s:\n%s\nrun: [in %s] %s", pf, text, ctx->state_dir, cmd);

        s = plan_add(p, "kcli-video", run_video, ctx);
        step_acts_on(s, "every libvirt domain of kcli cluster %s (kvirt:kube=%s)", c->name,
                     c->name);
        step_progress(s, "virtio video on the nodes (libxml2, virDomainDefineXML, restart "
                         "when running)");
        step_deadline(s, env_seconds("VGPUENV_SHUTDOWN_TIMEOUT", 120) * c->nodes.count + 300);
        step_undo(s, NULL, "nothing: the cluster's undo deletes the domains");

        for (size_t i = 0; names[i]; i++) {
                struct kcli_node *n = plan_own(p, calloc(1, sizeof(struct kcli_node)), free);
                _cleanup_free_ char *name = strdup_printf("boot %s", names[i]);
                if (!n || !name || !(n->name = plan_own(p, strdup(names[i]), free)))
                        return log_error_errno(ENOMEM, "out of memory");
                n->ctx = ctx;
                s = plan_add(p, name, run_node, n);
                step_lane(s, (unsigned)i + 1, names[i]);
                step_acts_on(s, "root@%s (address from libvirt, keys through `kcli ssh`)",
                             names[i]);
                step_progress(s, "waiting for %s's address and sshd, exchanging keys", names[i]);
                step_deadline(s, c->ssh.timeout + 60.0);
                if (node_wait_disabled())
                        step_skip(s, "VGPUENV_NODE_WAIT=0 (test domains never boot)");
        }
        return plan_error(p);
}

static int run_delete(struct step_run *sr, void *data)
{
        (void)data;
        return kcli_delete(sr);
}

static int kcli_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        struct step *s;

        if (!state_has_resource(st, KCLI_RESOURCE, ctx->cfg->name)) {
                log_notice("the state lists no kcli cluster %s: nothing to delete", ctx->cfg->name);
                return 0;
        }
        s = plan_add(p, "kcli-delete", run_delete, ctx);
        step_acts_on(s, "kcli cluster %s on %s", ctx->cfg->name, ctx->cfg->kcli.uri);
        step_progress(s, "kcli delete kube %s, then check that no domain of it is left",
                      ctx->cfg->name);
        step_deadline(s, ctx->cfg->deadlines.provider + 60.0);
        return plan_error(p);
}

static int kcli_status(struct run_ctx *ctx, struct state *st, cJSON *out)
{
        (void)st;
        cJSON *k = cJSON_AddObjectToObject(out, "kcli");
        cJSON *arr = cJSON_AddArrayToObject(k, "domains");
        virConnectPtr conn = virConnectOpenReadOnly(ctx->cfg->kcli.uri);
        if (!conn) {
                cJSON_AddStringToObject(k, "error", virGetLastErrorMessage());
                return 0;
        }
        _cleanup_strv_free_ char **names = NULL;
        if (kcli_cluster_domains(conn, ctx->cfg->name, &names) >= 0)
                for (size_t i = 0; names && names[i]; i++) {
                        virDomainPtr d = virDomainLookupByName(conn, names[i]);
                        if (!d)
                                continue;
                        char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
                        cJSON *o = cJSON_CreateObject();
                        cJSON_AddStringToObject(o, "name", names[i]);
                        cJSON_AddBoolToObject(o, "running", virDomainIsActive(d) == 1);
                        cJSON_AddBoolToObject(o, "video_virtio",
                                              xml && kcli_xml_video_is_virtio(xml));
                        cJSON_AddItemToArray(arr, o);
                        free(xml);
                        virDomainFree(d);
                }
        virConnectClose(conn);
        return 0;
}

static int kcli_kubeconfig(struct run_ctx *ctx, char **ret)
{
        *ret = kcli_kubeconfig_path(ctx->cfg);
        return *ret ? 0 : -ENOMEM;
}

static const char *kcli_kubevirt_provider(struct run_ctx *ctx)
{
        (void)ctx;
        /* KubeVirt's functests reach a cluster they did not make this way. */
        return "external";
}

static void kcli_doctor(struct run_ctx *ctx, cJSON *checks)
{
        const char *bin = ctx->cfg->kcli.binary ? ctx->cfg->kcli.binary : "kcli";
        _cleanup_free_ char *found = find_program(bin);

        doctor_check_add(checks, "kcli", found ? "ok" : "fail",
                         found ? found : "not found: install kcli or set kcli.binary");
}

const struct provider_ops provider_kcli = {
    .name = "kcli",
    .vm_nodes = true,
    .makes_kubernetes = true,
    .labels_nodes = true,
    .deploys_webhook = true,
    .node_names = kcli_node_names,
    .plan_up = kcli_plan_up,
    .plan_down = kcli_plan_down,
    .status = kcli_status,
    .kubeconfig = kcli_kubeconfig,
    .kubevirt_provider = kcli_kubevirt_provider,
    .doctor = kcli_doctor,
};
