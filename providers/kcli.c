/* Provider kcli: a kubeadm cluster made by `kcli create kube generic`, whose
 * node VMs then get a virtio-gpu video device through the libvirt API.
 *
 * kcli itself is driven through ctx_run (so --dry-run shows the exact
 * command), from a parameter file generated from our config. kcli has no
 * video-model parameter, hence the libvirt step (providers/kcli_domains.c).
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
#include "common/spawn.h"
#include "common/util.h"
#include "providers/kcli_domains.h"
#include "providers/kcli_internal.h"
#include "providers/provider.h"
#include "providers/rollback.h"
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

static int open_libvirt(struct run_ctx *ctx, virConnectPtr *ret)
{
        virConnectPtr conn = virConnectOpen(ctx->cfg->kcli.uri);
        if (!conn)
                return log_error_errno(EIO, "cannot connect to libvirt at %s: %s",
                                       ctx->cfg->kcli.uri, virGetLastErrorMessage());
        *ret = conn;
        return 0;
}

static int kcli_delete(struct run_ctx *ctx, struct state *st)
{
        const char *args[] = {"delete", "kube", "--yes", ctx->cfg->name, NULL};
        _cleanup_strv_free_ char **argv = kcli_argv(ctx->cfg, args);
        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        int r = ctx_run(ctx, "kcli delete kube", argv, NULL, NULL, NULL);
        if (r < 0 || ctx->dry_run) {
                if (ctx->dry_run)
                        ctx_plan(ctx, "libvirt %s: check that no domain of kcli cluster %s is left",
                                 ctx->cfg->kcli.uri, ctx->cfg->name);
                return r;
        }

        /* kcli reports success per VM; check that nothing of the cluster is
         * left rather than trusting it. */
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        r = open_libvirt(ctx, &conn);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **left = NULL;
        r = kcli_cluster_domains(conn, ctx->cfg->name, &left);
        if (r < 0)
                return r;
        if (left) {
                _cleanup_free_ char *list = strv_join(left, ", ");
                return log_error_errno(
                    EBUSY,
                    "kcli delete kube %s left these domains of the cluster: %s "
                    "(remove them with virsh -c %s undefine --remove-all-storage)",
                    ctx->cfg->name, list ? list : "?", ctx->cfg->kcli.uri);
        }
        state_drop_resource(st, KCLI_RESOURCE, ctx->cfg->name);
        _cleanup_free_ char *pf = params_path(ctx);
        if (pf)
                unlink(pf);
        return state_save(st);
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

static void sleep_seconds(double s)
{
        struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
        nanosleep(&ts, NULL);
}

/* Wait for each node's address and sshd, exchange keys, record it. */
static int register_nodes(struct run_ctx *ctx, struct state *st, virConnectPtr conn,
                          char *const *names)
{
        _cleanup_free_ char *identity = NULL, *pub = NULL;
        int r = identity_files(ctx, &identity, &pub);
        if (r < 0)
                return r;
        _cleanup_free_ char *cmd = kcli_bootstrap_command(pub);
        if (!cmd)
                return log_error_errno(ENOMEM, "out of memory");
        double timeout = ctx->cfg->ssh.timeout ? ctx->cfg->ssh.timeout : 300;
        /* The nodes boot in parallel: one deadline for all of them. */
        double deadline = now_seconds() + timeout;

        for (size_t i = 0; names[i]; i++) {
                struct step s = step_begin(names[i]);
                _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByName(conn, names[i]);
                _cleanup_free_ char *ip = NULL, *host_key = NULL;
                while (dom && !(ip = domain_ipv4(dom)) && now_seconds() < deadline &&
                       !ctx_cancelled(ctx))
                        sleep_seconds(2);
                if (!ip) {
                        r = ctx_cancelled(ctx) ? -ECANCELED
                                               : log_error_errno(ETIMEDOUT,
                                                                 "%s: no IPv4 address within %.0fs "
                                                                 "(DHCP lease or ARP)",
                                                                 names[i], timeout);
                        step_end(&s, r);
                        return r;
                }
                const char *args[] = {"ssh", names[i], cmd, NULL};
                _cleanup_strv_free_ char **argv = kcli_argv(ctx->cfg, args);
                while (!host_key && now_seconds() < deadline && !ctx_cancelled(ctx)) {
                        struct spawn_result res = {};
                        r = ctx_run(ctx, "kcli ssh (key exchange)", argv, NULL, NULL, &res);
                        if (r >= 0 && res.exit_code == 0)
                                host_key = last_host_key(res.out);
                        spawn_result_done(&res);
                        if (!host_key)
                                sleep_seconds(5);
                }
                if (!host_key) {
                        r = ctx_cancelled(ctx)
                                ? -ECANCELED
                                : log_error_errno(ETIMEDOUT,
                                                  "%s: `kcli ssh` did not give the "
                                                  "node's ed25519 host key within %.0fs",
                                                  names[i], timeout);
                        step_end(&s, r);
                        return r;
                }
                struct node_target t = {
                    .name = names[i],
                    .host = ip,
                    .port = 22,
                    /* the key exchange installed our key for root */
                    .user = "root",
                    .identity = identity,
                    .host_key = host_key,
                    .cancelled = &ctx->cancelled,
                };
                struct ssh_node *n = NULL;
                r = ssh_node_connect(
                    &t, deadline - now_seconds() > 10 ? deadline - now_seconds() : 10, &n);
                if (r >= 0) {
                        ssh_node_free(n);
                        r = state_set_node(st, &t);
                }
                step_end(&s, r);
                if (r < 0)
                        return r;
        }
        return state_save(st);
}

static int kcli_up(struct run_ctx *ctx, struct state *st)
{
        const struct config *c = ctx->cfg;
        int r;

        _cleanup_free_ char *pf = params_path(ctx);
        _cleanup_free_ char *text = kcli_params_text(c);
        _cleanup_free_ char *kubeconfig = kcli_kubeconfig_path(c);
        if (!pf || !text || !kubeconfig)
                return log_error_errno(ENOMEM, "out of memory");

        if (ctx->dry_run)
                ctx_plan(ctx, "write %s:\n%s", pf, text);
        else if ((r = mkdir_p(ctx->state_dir, 0700)) < 0 ||
                 (r = write_file_atomic(pf, text, strlen(text), 0600)) < 0)
                return log_error_errno(r, "cannot write %s", pf);

        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        _cleanup_strv_free_ char **existing = NULL;
        if (!ctx->dry_run) {
                /* Before anything is recorded: nothing to roll back yet. */
                const char *bin = c->kcli.binary ? c->kcli.binary : "kcli";
                _cleanup_free_ char *found = strchr(bin, '/')
                                                 ? (access(bin, X_OK) == 0 ? strdup(bin) : NULL)
                                                 : find_program(bin);
                if (!found)
                        return log_error_errno(
                            ENOENT,
                            "%s not found (kcli.binary): install kcli "
                            "(https://github.com/karmab/kcli) or set kcli.binary",
                            bin);
                if ((r = open_libvirt(ctx, &conn)) < 0)
                        return r;
                if ((r = kcli_cluster_domains(conn, c->name, &existing)) < 0)
                        return r;
        }

        /* Converge instead of recreating: a cluster that exists (its
         * kubeconfig and its domains) is only fixed up. */
        if (!existing || !file_exists(kubeconfig)) {
                if (existing && !state_has_resource(st, KCLI_RESOURCE, c->name))
                        return log_error_errno(EEXIST,
                                               "domains of a kcli cluster named %s exist but it "
                                               "was not made by vgpuenv and has no kubeconfig; "
                                               "pick another name or delete it with kcli",
                                               c->name);
                if (!ctx->dry_run) {
                        state_add_resource(st, KCLI_RESOURCE, c->name);
                        if ((r = state_save(st)) < 0)
                                return r;
                }
                const char *args[] = {"create", "kube",  "generic", "--paramfile",
                                      pf,       c->name, NULL};
                _cleanup_strv_free_ char **argv = kcli_argv(c, args);
                if (!argv)
                        return log_error_errno(ENOMEM, "out of memory");
                struct step s = step_begin("kcli create kube generic");
                r = ctx_run(ctx, "kcli create kube generic", argv, NULL, ctx->state_dir, NULL);
                step_end(&s, r);
                if (r < 0)
                        goto rollback;
        } else
                log_info("kcli cluster %s exists (%s): converging", c->name, kubeconfig);

        if (ctx->dry_run) {
                ctx_plan(ctx,
                         "libvirt %s: for every domain of kcli cluster %s (metadata kvirt:kube=%s, "
                         "or %s-ctlplane-N/%s-worker-N): set <video><model type='virtio'/></video> "
                         "(libxml2), virDomainDefineXML, restart it if running",
                         c->kcli.uri, c->name, c->name, c->name, c->name);
                ctx_plan(ctx,
                         "each node: wait for its address (DHCP lease), `kcli ssh NODE` to install "
                         "our key for root and read the ed25519 host key, then libssh as root with "
                         "that key pinned");
                return 0;
        }

        struct kcli_fix_report rep = {};
        r = kcli_fix_domains(ctx, conn, c->name, env_seconds("VGPUENV_SHUTDOWN_TIMEOUT", 120),
                             &rep);
        if (r >= 0) {
                _cleanup_free_ char *a = rep.redefined ? strv_join(rep.redefined, " ") : NULL;
                _cleanup_free_ char *b = rep.restarted ? strv_join(rep.restarted, " ") : NULL;
                _cleanup_free_ char *u = rep.untouched ? strv_join(rep.untouched, " ") : NULL;
                log_info(
                    "kcli cluster %s: virtio video set on: %s; restarted: %s; already virtio: %s",
                    c->name, a ? a : "-", b ? b : "-", u ? u : "-");
        }
        kcli_fix_report_done(&rep);
        if (r < 0)
                goto rollback;

        /* Tests define domains that never boot an OS; they check the libvirt
         * part and skip the wait (documented in docs/providers.md). */
        const char *wait = getenv("VGPUENV_NODE_WAIT");
        if (wait && streq(wait, "0")) {
                log_notice("VGPUENV_NODE_WAIT=0: not waiting for the nodes' ssh; no node recorded");
                return 0;
        }
        strv_free(existing);
        existing = NULL;
        if ((r = kcli_cluster_domains(conn, c->name, &existing)) < 0)
                goto rollback;
        r = register_nodes(ctx, st, conn, existing);
        if (r < 0)
                goto rollback;
        return 0;

rollback:
        if (!ctx->dry_run && state_resource_is_ours_this_run(st, KCLI_RESOURCE, c->name)) {
                log_notice("rolling back: deleting kcli cluster %s made by this run", c->name);
                bool was = rollback_begin(ctx);
                (void)kcli_delete(ctx, st);
                rollback_end(ctx, was);
        }
        return r;
}

static int kcli_down(struct run_ctx *ctx, struct state *st)
{
        if (!ctx->dry_run && !state_has_resource(st, KCLI_RESOURCE, ctx->cfg->name)) {
                log_notice("the state lists no kcli cluster %s: nothing to delete", ctx->cfg->name);
                return 0;
        }
        return kcli_delete(ctx, st);
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

static int kcli_kubeconfig(struct run_ctx *ctx, struct state *st, char **ret)
{
        (void)st;
        _cleanup_free_ char *p = kcli_kubeconfig_path(ctx->cfg);
        if (!p)
                return -ENOMEM;
        /* In a dry run the cluster does not exist yet; the plan still shows
         * the cluster wiring against the kubeconfig kcli will write. */
        if (!ctx->dry_run && !file_exists(p))
                return -ENOENT;
        *ret = TAKE_PTR(p);
        return 0;
}

static const char *kcli_kubevirt_provider(struct run_ctx *ctx)
{
        (void)ctx;
        /* KubeVirt's functests reach a cluster they did not make this way. */
        return "external";
}

const struct provider_ops provider_kcli = {
    .name = "kcli",
    .vm_nodes = true,
    .up = kcli_up,
    .down = kcli_down,
    .status = kcli_status,
    .kubeconfig = kcli_kubeconfig,
    .kubevirt_provider = kcli_kubevirt_provider,
    .makes_cluster = true,
};
