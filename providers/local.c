/* Provider "local": vgpuenv's own libvirt VMs, the default that runs on any
 * Linux box with libvirtd.
 *
 * The up plan: the KVM verdict, the node image (cached), the cluster's NAT
 * network with static DHCP leases and a storage pool in the state dir, then
 * per node, in parallel lanes, an overlay volume, a domain with a virtio-gpu
 * device, and the wait for sshd with the pinned host key. Each object is
 * recorded in the state the moment it exists (local_objects.c); each step's
 * undo removes what this run made. The down plan removes what the state
 * lists and what carries our mark. */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "provision/base/accel.h"
#include "provision/base/ssh.h"
#include "providers/local_objects.h"
#include "providers/local_xml.h"
#include "providers/provider.h"

/* What the steps of one up share; owned by the plan. */
struct local_run {
        struct run_ctx *ctx;
        enum accel_verdict accel; /* filled by kvm-verdict */
        struct node_image img;    /* filled by node-image */
        pthread_mutex_t lock;     /* conn, opened by the first step that needs it */
        virConnectPtr conn;
};

struct local_node {
        struct local_run *u;
        unsigned index;
        char *name, *domain, *volume, *ip, *mac, *console_log; /* owned by the plan */
};

static void local_run_free(void *p)
{
        struct local_run *u = p;

        if (u->conn)
                virConnectClose(u->conn);
        node_image_done(&u->img);
        pthread_mutex_destroy(&u->lock);
        free(u);
}

static int conn_of(struct local_run *u, virConnectPtr *ret)
{
        int r = 0;

        pthread_mutex_lock(&u->lock);
        if (!u->conn)
                r = local_connect(u->ctx->cfg, &u->conn);
        *ret = u->conn;
        pthread_mutex_unlock(&u->lock);
        return r;
}

/* Undo: remove kind/name when this run made it (an earlier run's object is
 * kept, so converging a cluster and then failing leaves it as it was). */
static int undo_object(struct step_run *sr, struct local_run *u, const char *kind, const char *name)
{
        virConnectPtr conn;
        int r;

        if (!state_resource_is_ours_this_run(sr->st, kind, name))
                return 0;
        if ((r = conn_of(u, &conn)) < 0)
                return r;
        if ((r = local_remove(conn, u->ctx->cfg, kind, name)) < 0)
                return r;
        state_drop_resource(sr->st, kind, name);
        log_info("    removed %s %s", kind, name);
        return 0;
}

static int run_network(struct step_run *sr, void *data)
{
        struct local_run *u = data;
        virConnectPtr conn;
        int r;

        /* What the nodes were made from, for status and later runs. */
        cJSON *pd = state_provider_data(sr->st);
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "image");
        cJSON_AddStringToObject(pd, "image", u->img.disk ? u->img.disk : "");
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "domain_type");
        cJSON_AddStringToObject(pd, "domain_type", u->accel == ACCEL_VERDICT_KVM ? "kvm" : "qemu");
        if ((r = state_save(sr->st)) < 0)
                return log_error_errno(r, "saving the state file: %m");
        if ((r = conn_of(u, &conn)) < 0)
                return r;
        return local_ensure_network(conn, u->ctx->cfg, sr->st);
}

/* undo_object for the objects the whole cluster shares, named after the
 * config: name is taken over (NULL: out of memory). */
static int undo_shared_object(struct step_run *sr, struct local_run *u, const char *kind,
                              char *name)
{
        _cleanup_free_ char *n = name;
        return n ? undo_object(sr, u, kind, n) : -ENOMEM;
}

static int undo_network(struct step_run *sr, void *data)
{
        return undo_shared_object(sr, data, RES_NETWORK, local_network_name(sr->ctx->cfg));
}

static int run_pool(struct step_run *sr, void *data)
{
        struct local_run *u = data;
        virConnectPtr conn;
        int r = conn_of(u, &conn);

        return r < 0 ? r : local_ensure_pool(conn, u->ctx->cfg, u->ctx->state_dir, sr->st);
}

static int undo_pool(struct step_run *sr, void *data)
{
        return undo_shared_object(sr, data, RES_POOL, local_pool_name(sr->ctx->cfg));
}

static int run_volume(struct step_run *sr, void *data)
{
        struct local_node *n = data;
        virConnectPtr conn;
        int r = conn_of(n->u, &conn);

        return r < 0 ? r
                     : local_ensure_volume(conn, n->u->ctx->cfg, n->volume, n->u->img.disk, sr->st);
}

static int undo_volume(struct step_run *sr, void *data)
{
        struct local_node *n = data;
        return undo_object(sr, n->u, RES_VOLUME, n->volume);
}

static char *host_render_node(void)
{
        for (int i = 128; i < 136; i++) {
                char *p = strdup_printf("/dev/dri/renderD%d", i);
                if (p && access(p, R_OK | W_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

/* The domain's XML; image, verdict and run id are placeholders while
 * planning (the steps before it find them). */
static char *domain_xml(const struct local_node *n, const char *run_id, bool planning)
{
        const struct config *c = n->u->ctx->cfg;
        const struct node_image *img = &n->u->img;
        _cleanup_free_ char *pool = local_pool_name(c);
        _cleanup_free_ char *render = c->gpu == GPU_VIRTIO_3D ? host_render_node() : NULL;
        struct local_node_spec spec = {
            .name = n->name,
            .domain = n->domain,
            .mac = n->mac,
            .ip = n->ip,
            .volume = n->volume,
            .pool = pool,
            .console_log = n->console_log,
            .kernel = img->disk ? img->kernel : "(the base image's kernel)",
            .initrd = img->disk ? img->initrd : "(the base image's initrd)",
            .root_arg = img->disk ? img->root_arg : "root=/dev/vda rootfstype=ext4",
            .run_id = run_id,
            .domain_type = planning                           ? "(kvm or qemu, from kvm-verdict)"
                           : n->u->accel == ACCEL_VERDICT_KVM ? "kvm"
                                                              : "qemu",
            .render_node = render ? render : "/dev/dri/renderD128",
        };
        return pool ? local_domain_xml(c, &spec) : NULL;
}

static int run_domain(struct step_run *sr, void *data)
{
        struct local_node *n = data;
        _cleanup_free_ char *xml = domain_xml(n, sr->st->run_id, false);
        virConnectPtr conn;
        bool started;
        int r;

        if (!xml)
                return log_error_errno(ENOMEM, "out of memory");
        if ((r = conn_of(n->u, &conn)) < 0)
                return r;
        r = local_ensure_domain(conn, n->u->ctx->cfg, n->domain, xml, sr->st, &started);
        if (r >= 0 && started)
                log_info("    %s: started (%s, %u MiB, console log %s)", n->name,
                         n->u->accel == ACCEL_VERDICT_KVM ? "KVM" : "TCG",
                         n->u->ctx->cfg->nodes.memory, n->console_log);
        return r;
}

static int undo_domain(struct step_run *sr, void *data)
{
        struct local_node *n = data;
        return undo_object(sr, n->u, RES_DOMAIN, n->domain);
}

/* When a node never answers, its serial console says why (a kernel panic,
 * an initramfs shell, a failed sshd): show the end of it. */
static void log_console_tail(const struct local_node *n)
{
        _cleanup_free_ char *text = NULL;
        size_t size = 0, lines = 0;

        if (read_full_file(n->console_log, &text, &size) < 0 || size == 0)
                return;
        const char *p = text + size;
        while (p > text && lines < 12)
                if (*--p == '\n')
                        lines++;
        log_error("last lines of %s's console (%s):\n%s", n->name, n->console_log, p);
}

static int run_boot(struct step_run *sr, void *data)
{
        struct local_node *n = data;
        const struct config *c = n->u->ctx->cfg;
        _cleanup_ssh_node_ struct ssh_node *node = NULL;
        struct node_target t = {.name = n->name,
                                .host = n->ip,
                                .port = 22,
                                .user = c->ssh.user,
                                .identity = n->u->img.identity,
                                .host_key = n->u->img.host_key_pub,
                                .cancel = &sr->cancel};
        int r = state_set_node(sr->st, &t);

        if (r < 0)
                return log_error_errno(r, "saving the state file: %m");
        step_waiting(sr, "sshd on %s (%s:22) with the pinned host key", n->name, n->ip);
        r = ssh_node_connect(&t, c->ssh.timeout, &node);
        if (r < 0 && r != -ECANCELED && r != -EPERM)
                log_console_tail(n);
        return r;
}

static struct local_node *add_node(struct plan *p, struct local_run *u, unsigned i)
{
        const struct config *c = u->ctx->cfg;
        struct local_node *n = plan_own(p, calloc(1, sizeof(struct local_node)), free);

        if (!n)
                return NULL;
        *n = (struct local_node){
            .u = u,
            .index = i,
            .name = plan_own(p, config_node_name(c, i), free),
            .domain = plan_own(p, local_domain_name(c, i), free),
            .volume = plan_own(p, strdup_printf("node%u.qcow2", i + 1), free),
            .ip = plan_own(p, config_node_ip(c, i), free),
            .mac = plan_own(p, local_node_mac(c, i), free),
        };
        n->console_log =
            n->name
                ? plan_own(p, strdup_printf("%s/%s-console.log", u->ctx->state_dir, n->name), free)
                : NULL;
        if (!n->name || !n->domain || !n->volume || !n->ip || !n->mac || !n->console_log)
                return NULL;
        return n;
}

static int plan_node(struct plan *p, struct local_run *u, unsigned i)
{
        const struct config *c = u->ctx->cfg;
        struct local_node *n = add_node(p, u, i);
        _cleanup_free_ char *name = NULL, *xml = NULL;
        struct step *s;

        if (!n)
                return -ENOMEM;
        name = strdup_printf("volume %s", n->name);
        s = name ? plan_add(p, name, run_volume, n) : NULL;
        step_lane(s, i + 1, n->name);
        step_acts_on(s, "libvirt volume %s in the cluster's pool", n->volume);
        step_progress(s, "overlay volume %s (%u GiB) on the node image", n->volume, c->nodes.disk);
        step_deadline(s, 120);
        step_undo(s, undo_volume, "delete the volume if this run created it");

        free(name);
        name = strdup_printf("domain %s", n->name);
        xml = domain_xml(n, "(this run's id)", true);
        s = name && xml ? plan_add(p, name, run_domain, n) : NULL;
        step_lane(s, i + 1, n->name);
        step_acts_on(s, "libvirt domain %s (%s)", n->domain, c->local.uri);
        step_progress(s, "defining and starting %s (virtio-gpu, %u MiB, %s)", n->domain,
                      c->nodes.memory, n->ip);
        step_deadline(s, 300);
        step_undo(s, undo_domain, "destroy and undefine the domain if this run defined it");
        step_detail(s, "%s", xml ? xml : "");

        free(name);
        name = strdup_printf("boot %s", n->name);
        s = name ? plan_add(p, name, run_boot, n) : NULL;
        step_lane(s, i + 1, n->name);
        step_acts_on(s, "%s@%s:22", c->ssh.user, n->ip);
        step_progress(s, "waiting for sshd on %s (host key pinned)", n->ip);
        step_deadline(s, c->ssh.timeout + 30.0);
        step_undo(s, NULL, "nothing: the domain's undo stops it");
        return plan_error(p);
}

static int local_plan_up(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        const struct config *c = ctx->cfg;
        struct local_run *u = plan_own(p, calloc(1, sizeof(struct local_run)), local_run_free);
        _cleanup_free_ char *net = local_network_xml(c), *pool_name = local_pool_name(c);
        _cleanup_free_ char *pool_dir = strdup_printf("%s/disks", ctx->state_dir);
        _cleanup_free_ char *pool = pool_dir ? local_pool_xml(c, pool_dir) : NULL;
        _cleanup_free_ char *net_name = local_network_name(c);
        struct step *s;
        int r;

        (void)st;
        if (!u || !net || !pool || !pool_name || !net_name)
                return log_error_errno(ENOMEM, "out of memory");
        u->ctx = ctx;
        u->accel = ACCEL_VERDICT_TCG;
        pthread_mutex_init(&u->lock, NULL);
        if (c->gpu == GPU_VIRTIO_3D) {
                _cleanup_free_ char *rn = host_render_node();
                if (!rn)
                        return log_error_errno(
                            ENODEV, "gpu: virtio-3d needs a render node on this host "
                                    "(/dev/dri/renderD*) and there is none; use gpu: "
                                    "virtio (2D), which is enough for the display chain");
        }
        accel_plan(p, ctx, &u->accel);
        if ((r = image_plan(p, ctx, &u->accel, &u->img)) < 0)
                return r;

        s = plan_add(p, "network", run_network, u);
        step_acts_on(s, "libvirt network %s (%s, %s)", net_name, c->network.subnet, c->local.uri);
        step_progress(s, "cluster network %s (%s)", net_name, c->network.subnet);
        step_deadline(s, 120);
        step_undo(s, undo_network, "destroy and undefine the network if this run defined it");
        step_detail(s, "%s", net);

        s = plan_add(p, "pool", run_pool, u);
        step_acts_on(s, "libvirt storage pool %s (%s)", pool_name, pool_dir);
        step_progress(s, "storage pool %s for the node disks", pool_name);
        step_deadline(s, 120);
        step_undo(s, undo_pool, "undefine the pool if this run defined it");
        step_detail(s, "%s", pool);

        for (unsigned i = 0; i < c->nodes.count; i++)
                if ((r = plan_node(p, u, i)) < 0)
                        return r;
        return plan_error(p);
}

/* ---- down ------------------------------------------------------------------- */

struct local_removal {
        struct run_ctx *ctx;
        char *kind, *name; /* owned by the plan */
};

static int run_remove(struct step_run *sr, void *data)
{
        struct local_removal *m = data;
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        int r = local_connect(m->ctx->cfg, &conn);

        if (r >= 0)
                r = local_remove(conn, m->ctx->cfg, m->kind, m->name);
        if (r >= 0 && state_has_resource(sr->st, m->kind, m->name))
                state_drop_resource(sr->st, m->kind, m->name);
        return r;
}

/* Console logs and the disks dir live in the state dir. */
static int run_remove_files(struct step_run *sr, void *data)
{
        struct run_ctx *ctx = data;
        _cleanup_free_ char *disks = strdup_printf("%s/disks", ctx->state_dir);

        (void)sr;
        if (disks)
                rm_rf(disks);
        for (unsigned i = 0; i < 64; i++) {
                _cleanup_free_ char *log = strdup_printf("%s/%s-node%u-console.log", ctx->state_dir,
                                                         ctx->cfg->name, i + 1);
                if (log)
                        unlink(log);
        }
        return 0;
}

static int add_removal(struct plan *p, struct run_ctx *ctx, const char *kind, const char *name)
{
        struct local_removal *m = plan_own(p, calloc(1, sizeof(*m)), free);
        _cleanup_free_ char *step = strdup_printf("remove %s %s", kind, name);
        struct step *s;

        if (!m || !step || !(m->kind = plan_own(p, strdup(kind), free)) ||
            !(m->name = plan_own(p, strdup(name), free)))
                return -ENOMEM;
        m->ctx = ctx;
        s = plan_add(p, step, run_remove, m);
        step_acts_on(s, "libvirt %s %s (%s)", kind, name, ctx->cfg->local.uri);
        step_progress(s, "removing %s %s (only with our ownership mark)", kind, name);
        step_deadline(s, 180);
        return 0;
}

/* Dependents first: domains, then volumes, pool, network. */
static const char *const removal_order[] = {RES_DOMAIN, RES_VOLUME, RES_POOL, RES_NETWORK};

static int local_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st_in)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        struct state st = {.root = cJSON_Duplicate(st_in->root, true)};
        int r = local_connect(ctx->cfg, &conn);

        if (r < 0 || !st.root) {
                cJSON_Delete(st.root);
                return r < 0 ? r : -ENOMEM;
        }
        /* On a copy: objects with our mark that the state does not list
         * (a state file deleted by hand) are removed too. */
        local_adopt_marked(conn, ctx->cfg, ctx->state_dir, &st);
        for (size_t k = 0; k < ELEMENTSOF(removal_order) && r >= 0; k++) {
                const cJSON *it;
                cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(st.root, "resources"))
                {
                        const cJSON *kd = cJSON_GetObjectItemCaseSensitive(it, "kind");
                        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
                        if (cJSON_IsString(kd) && cJSON_IsString(nm) &&
                            streq(kd->valuestring, removal_order[k]) &&
                            (r = add_removal(p, ctx, kd->valuestring, nm->valuestring)) < 0)
                                break;
                }
        }
        cJSON_Delete(st.root);
        struct step *s = plan_add(p, "remove files", run_remove_files, ctx);
        step_acts_on(s, "%s/disks and the console logs", ctx->state_dir);
        step_progress(s, "removing the node disks and console logs");
        step_deadline(s, 120);
        return r < 0 ? r : plan_error(p);
}

/* ---- the rest of the table -------------------------------------------------- */

static int local_status(struct run_ctx *ctx, struct state *st, cJSON *out)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        cJSON *doms = cJSON_AddArrayToObject(out, "domains");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(st->root, "resources"), *it;
        int r = local_connect(ctx->cfg, &conn);

        if (r < 0)
                return r;
        cJSON_ArrayForEach(it, res)
        {
                const cJSON *kd = cJSON_GetObjectItemCaseSensitive(it, "kind");
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
                if (!cJSON_IsString(kd) || !cJSON_IsString(nm) ||
                    !streq(kd->valuestring, RES_DOMAIN))
                        continue;
                _cleanup_(virDomainFreep) virDomainPtr d =
                    virDomainLookupByName(conn, nm->valuestring);
                int st_ = -1, reason;
                if (d)
                        virDomainGetState(d, &st_, &reason, 0);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", nm->valuestring);
                cJSON_AddStringToObject(o, "state",
                                        !d                          ? "missing"
                                        : st_ == VIR_DOMAIN_RUNNING ? "running"
                                        : st_ == VIR_DOMAIN_PAUSED  ? "paused"
                                        : st_ == VIR_DOMAIN_SHUTOFF ? "shut off"
                                                                    : "other");
                cJSON_AddItemToArray(doms, o);
        }
        return 0;
}

static int local_kubeconfig(struct run_ctx *ctx, char **ret)
{
        (void)ctx;
        (void)ret;
        return -ENOENT; /* bare VM nodes: no Kubernetes of our own */
}

static const char *local_kubevirt_provider(struct run_ctx *ctx)
{
        (void)ctx;
        return "external";
}

static char **local_node_names(const struct config *c)
{
        _cleanup_strv_free_ char **l = NULL;

        for (unsigned i = 0; i < c->nodes.count; i++)
                if (strv_push(&l, config_node_name(c, i)) < 0)
                        return NULL;
        return TAKE_PTR(l);
}

static void local_doctor(struct run_ctx *ctx, cJSON *checks)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        unsigned long v = 0;
        char buf[256];

        if (local_connect(ctx->cfg, &conn) >= 0) {
                virConnectGetLibVersion(conn, &v);
                snprintf(buf, sizeof(buf), "%s answers (libvirt %lu.%lu.%lu)", ctx->cfg->local.uri,
                         v / 1000000, v / 1000 % 1000, v % 1000);
        } else
                snprintf(buf, sizeof(buf),
                         "%s not reachable: start libvirtd (systemctl start "
                         "libvirtd, or scripts/ensure-libvirtd.sh)",
                         ctx->cfg->local.uri);
        doctor_check_add(checks, "libvirtd", conn ? "ok" : "fail", buf);
}

const struct provider_ops provider_local = {
    .name = "local",
    .vm_nodes = true,
    .makes_kubernetes = false,
    .labels_nodes = true,
    .deploys_webhook = true,
    .node_names = local_node_names,
    .plan_up = local_plan_up,
    .plan_down = local_plan_down,
    .status = local_status,
    .kubeconfig = local_kubeconfig,
    .kubevirt_provider = local_kubevirt_provider,
    .doctor = local_doctor,
};
