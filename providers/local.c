/* Provider "local": vgpuenv's own libvirt VMs, the default that runs on any
 * Linux box with libvirtd.
 *
 * up: choose KVM or TCG by probing, prepare the node image (cached), create
 * the cluster's NAT network with static DHCP leases and a storage pool in
 * the state dir, then per node in parallel an overlay volume and a domain
 * with a virtio-gpu device, and wait for sshd with the pinned host key.
 * Every object is recorded in the state file the moment it exists, so a
 * crash never loses one; a failure or Ctrl-C removes what this run made. */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "provision/base/accel.h"
#include "provision/base/ssh.h"
#include "providers/local_xml.h"
#include "providers/provider.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(virConnectPtr, virConnectClose)
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virNetworkPtr, virNetworkFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virStoragePoolPtr, virStoragePoolFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virStorageVolPtr, virStorageVolFree)

#define RES_NETWORK "network"
#define RES_POOL "pool"
#define RES_VOLUME "volume"
#define RES_DOMAIN "domain"

/* The state file is shared by the node threads. */
struct local_up {
        struct run_ctx *ctx;
        struct state *st;
        pthread_mutex_t lock;
        virConnectPtr conn;
        struct node_image img;
        const char *domain_type;
        char *pool;
};

static const char *virt_error(void)
{
        virErrorPtr e = virGetLastError();

        return e && e->message ? e->message : "unknown libvirt error";
}

static void silence_libvirt(void *opaque, virErrorPtr e)
{
        (void)opaque;
        (void)e; /* we report errors ourselves, with context */
}

static int open_conn(struct run_ctx *ctx, virConnectPtr *ret)
{
        virSetErrorFunc(NULL, silence_libvirt);
        *ret = virConnectOpen(ctx->cfg->local.uri);
        if (!*ret)
                return log_error_errno(ECONNREFUSED,
                                       "cannot connect to libvirt at %s: %s (is libvirtd running? "
                                       "try scripts/ensure-libvirtd.sh)",
                                       ctx->cfg->local.uri, virt_error());
        return 0;
}

static int record(struct local_up *u, const char *kind, const char *name)
{
        int r;

        pthread_mutex_lock(&u->lock);
        r = state_add_resource(u->st, kind, name);
        pthread_mutex_unlock(&u->lock);
        if (r < 0)
                return log_error_errno(r, "saving the state file: %m");
        return 0;
}

static int ensure_network(struct local_up *u)
{
        const struct config *c = u->ctx->cfg;
        _cleanup_free_ char *name = local_network_name(c), *xml = local_network_xml(c);
        _cleanup_(virNetworkFreep) virNetworkPtr net = NULL;
        int r;

        if (!name || !xml)
                return -ENOMEM;
        net = virNetworkLookupByName(u->conn, name);
        if (net) {
                _cleanup_free_ char *have = virNetworkGetXMLDesc(net, 0);
                _cleanup_free_ char *owner = have ? local_owner_of_network_xml(have) : NULL;
                if (!owner || !streq(owner, c->name))
                        return log_error_errno(EEXIST,
                                               "libvirt network %s exists but is not vgpuenv's "
                                               "for cluster %s: refusing to touch it",
                                               name, c->name);
                if (!state_has_resource(u->st, RES_NETWORK, name) &&
                    (r = record(u, RES_NETWORK, name)) < 0)
                        return r;
        } else {
                net = virNetworkDefineXML(u->conn, xml);
                if (!net)
                        return log_error_errno(EIO, "defining network %s: %s", name, virt_error());
                if ((r = record(u, RES_NETWORK, name)) < 0)
                        return r;
                log_info("network %s: defined (%s)", name, c->network.subnet);
        }
        if (virNetworkIsActive(net) != 1 && virNetworkCreate(net) < 0)
                return log_error_errno(EIO, "starting network %s: %s", name, virt_error());
        return 0;
}

static int ensure_pool(struct local_up *u)
{
        const struct config *c = u->ctx->cfg;
        _cleanup_free_ char *dir = strdup_printf("%s/disks", u->ctx->state_dir);
        _cleanup_free_ char *xml = NULL;
        _cleanup_(virStoragePoolFreep) virStoragePoolPtr pool = NULL;
        int r;

        u->pool = local_pool_name(c);
        if (!dir || !u->pool)
                return -ENOMEM;
        /* QEMU runs as an unprivileged user and must traverse to the disks. */
        chmod(u->ctx->state_dir, 0711);
        xml = local_pool_xml(c, dir);
        if (!xml)
                return -ENOMEM;
        pool = virStoragePoolLookupByName(u->conn, u->pool);
        if (!pool) {
                pool = virStoragePoolDefineXML(u->conn, xml, 0);
                if (!pool)
                        return log_error_errno(EIO, "defining storage pool %s: %s", u->pool,
                                               virt_error());
                if ((r = record(u, RES_POOL, u->pool)) < 0)
                        return r;
                if (virStoragePoolBuild(pool, 0) < 0)
                        return log_error_errno(EIO, "creating %s: %s", dir, virt_error());
        } else if (!state_has_resource(u->st, RES_POOL, u->pool)) {
                _cleanup_free_ char *have = virStoragePoolGetXMLDesc(pool, 0);
                _cleanup_free_ char *want = strdup_printf("<path>%s</path>", dir);
                if (!have || !want || !strstr(have, want))
                        return log_error_errno(EEXIST,
                                               "storage pool %s exists but does not point at %s: "
                                               "refusing to touch it",
                                               u->pool, dir);
                if ((r = record(u, RES_POOL, u->pool)) < 0)
                        return r;
        }
        if (virStoragePoolIsActive(pool) != 1 && virStoragePoolCreate(pool, 0) < 0)
                return log_error_errno(EIO, "starting storage pool %s: %s", u->pool, virt_error());
        virStoragePoolRefresh(pool, 0);
        return 0;
}

struct node_job {
        struct local_up *u;
        unsigned index;
        int result;
};

static unsigned long long overlay_capacity(const struct config *c)
{
        return (unsigned long long)c->nodes.disk << 30;
}

static int ensure_volume(struct local_up *u, const char *vol_name)
{
        _cleanup_(virStoragePoolFreep) virStoragePoolPtr pool =
            virStoragePoolLookupByName(u->conn, u->pool);
        _cleanup_(virStorageVolFreep) virStorageVolPtr vol = NULL;
        _cleanup_free_ char *xml = NULL;

        if (!pool)
                return log_error_errno(ENOENT, "storage pool %s vanished: %s", u->pool,
                                       virt_error());
        vol = virStorageVolLookupByName(pool, vol_name);
        if (vol)
                return state_has_resource(u->st, RES_VOLUME, vol_name)
                           ? 0
                           : record(u, RES_VOLUME, vol_name);
        unsigned long long cap = overlay_capacity(u->ctx->cfg), base = 0;
        int r = image_qcow2_virtual_size(u->img.disk, &base);
        if (r < 0)
                return log_error_errno(r, "reading the size of %s: %m", u->img.disk);
        if (cap < base) {
                log_notice("nodes.disk is %u GiB but the image is %llu GiB: using %llu GiB",
                           u->ctx->cfg->nodes.disk, base >> 30, base >> 30);
                cap = base;
        }
        xml = local_volume_xml(vol_name, cap, u->img.disk);
        if (!xml)
                return -ENOMEM;
        vol = virStorageVolCreateXML(pool, xml, 0);
        if (!vol)
                return log_error_errno(EIO, "creating volume %s: %s", vol_name, virt_error());
        return record(u, RES_VOLUME, vol_name);
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

static int ensure_domain(struct local_up *u, unsigned i, const char *vol_name)
{
        const struct config *c = u->ctx->cfg;
        _cleanup_free_ char *dom_name = local_domain_name(c, i), *name = config_node_name(c, i);
        _cleanup_free_ char *mac = local_node_mac(c, i), *ip = config_node_ip(c, i);
        _cleanup_free_ char *log = strdup_printf("%s/%s-console.log", u->ctx->state_dir, name);
        _cleanup_free_ char *render = c->gpu == GPU_VIRTIO_3D ? host_render_node() : NULL;
        _cleanup_free_ char *xml = NULL;
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        if (!dom_name || !name || !mac || !ip || !log)
                return -ENOMEM;
        dom = virDomainLookupByName(u->conn, dom_name);
        if (dom) {
                _cleanup_free_ char *have = virDomainGetXMLDesc(dom, 0);
                _cleanup_free_ char *owner = have ? local_owner_of_domain_xml(have) : NULL;
                if (!owner || !streq(owner, c->name))
                        return log_error_errno(EEXIST,
                                               "domain %s exists but is not vgpuenv's for "
                                               "cluster %s: refusing to touch it",
                                               dom_name, c->name);
                if (!state_has_resource(u->st, RES_DOMAIN, dom_name) &&
                    (r = record(u, RES_DOMAIN, dom_name)) < 0)
                        return r;
        } else {
                struct local_node_spec spec = {
                    .name = name,
                    .domain = dom_name,
                    .mac = mac,
                    .ip = ip,
                    .volume = vol_name,
                    .pool = u->pool,
                    .console_log = log,
                    .kernel = u->img.kernel,
                    .initrd = u->img.initrd,
                    .root_arg = u->img.root_arg,
                    .run_id = u->st->run_id,
                    .domain_type = u->domain_type,
                    .render_node = render,
                };
                xml = local_domain_xml(c, &spec);
                if (!xml)
                        return -ENOMEM;
                dom = virDomainDefineXML(u->conn, xml);
                if (!dom)
                        return log_error_errno(EIO, "defining domain %s: %s", dom_name,
                                               virt_error());
                if ((r = record(u, RES_DOMAIN, dom_name)) < 0)
                        return r;
        }
        if (virDomainIsActive(dom) != 1) {
                if (virDomainCreate(dom) < 0)
                        return log_error_errno(EIO, "starting domain %s: %s", dom_name,
                                               virt_error());
                log_info("%s: started (%s, %u MiB, console log %s)", name, u->domain_type,
                         c->nodes.memory, log);
        }
        return 0;
}

/* When a node never answers, its serial console says why (a kernel panic,
 * an initramfs shell, a failed sshd): show the end of it. */
static void log_console_tail(struct run_ctx *ctx, const char *node)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s-console.log", ctx->state_dir, node);
        _cleanup_free_ char *text = NULL;
        size_t n = 0, lines = 0;

        if (!path || read_full_file(path, &text, &n) < 0 || n == 0)
                return;
        const char *p = text + n;
        while (p > text && lines < 12)
                if (*--p == '\n')
                        lines++;
        log_error("last lines of %s's console (%s):\n%s", node, path, p);
}

static int wait_for_node(struct local_up *u, unsigned i)
{
        const struct config *c = u->ctx->cfg;
        _cleanup_free_ char *name = config_node_name(c, i), *ip = config_node_ip(c, i);
        struct ssh_node *n = NULL;
        struct node_target t;
        int r;

        if (!name || !ip)
                return -ENOMEM;
        t = (struct node_target){.name = name,
                                 .host = ip,
                                 .port = 22,
                                 .user = c->ssh.user,
                                 .identity = u->img.identity,
                                 .host_key = u->img.host_key_pub,
                                 .cancelled = &u->ctx->cancelled};
        pthread_mutex_lock(&u->lock);
        r = state_set_node(u->st, &t);
        pthread_mutex_unlock(&u->lock);
        if (r < 0)
                return log_error_errno(r, "saving the state file: %m");
        struct step s = step_begin(name);
        r = ssh_node_connect(&t, c->ssh.timeout, &n);
        step_end(&s, r);
        ssh_node_free(n);
        if (r < 0 && r != -ECANCELED && r != -EPERM)
                log_console_tail(u->ctx, name);
        return r;
}

static void *node_thread(void *p)
{
        struct node_job *j = p;
        struct local_up *u = j->u;
        _cleanup_free_ char *vol = strdup_printf("node%u.qcow2", j->index + 1);

        j->result = !vol ? -ENOMEM : ensure_volume(u, vol);
        if (j->result >= 0 && !ctx_cancelled(u->ctx))
                j->result = ensure_domain(u, j->index, vol);
        if (j->result >= 0 && !ctx_cancelled(u->ctx) && getenv("VGPUENV_TEST_FAIL_AFTER_DEFINE"))
                j->result = log_error_errno(EIO, "failure injected after defining the domains "
                                                 "(VGPUENV_TEST_FAIL_AFTER_DEFINE)");
        if (j->result >= 0 && !ctx_cancelled(u->ctx))
                j->result = wait_for_node(u, j->index);
        if (j->result >= 0 && ctx_cancelled(u->ctx))
                j->result = -ECANCELED;
        return NULL;
}

/* Remove one recorded object; missing objects count as removed. */
static int remove_resource(struct run_ctx *ctx, virConnectPtr conn, const char *kind,
                           const char *name)
{
        const struct config *c = ctx->cfg;

        if (streq(kind, RES_DOMAIN)) {
                _cleanup_(virDomainFreep) virDomainPtr d = virDomainLookupByName(conn, name);
                _cleanup_free_ char *xml =
                    d ? virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE) : NULL;
                _cleanup_free_ char *owner = xml ? local_owner_of_domain_xml(xml) : NULL;
                if (!d)
                        return 0;
                if (!owner || !streq(owner, c->name))
                        return log_error_errno(EPERM,
                                               "domain %s lacks our ownership mark for "
                                               "cluster %s: leaving it",
                                               name, c->name);
                if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0)
                        return log_error_errno(EIO, "stopping %s: %s", name, virt_error());
                if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM) < 0)
                        return log_error_errno(EIO, "undefining %s: %s", name, virt_error());
        } else if (streq(kind, RES_VOLUME)) {
                _cleanup_free_ char *pname = local_pool_name(c);
                _cleanup_(virStoragePoolFreep) virStoragePoolPtr p =
                    pname ? virStoragePoolLookupByName(conn, pname) : NULL;
                _cleanup_(virStorageVolFreep) virStorageVolPtr v = NULL;
                if (!p)
                        return 0;
                virStoragePoolRefresh(p, 0);
                v = virStorageVolLookupByName(p, name);
                if (v && virStorageVolDelete(v, 0) < 0)
                        return log_error_errno(EIO, "deleting volume %s: %s", name, virt_error());
        } else if (streq(kind, RES_POOL)) {
                _cleanup_(virStoragePoolFreep) virStoragePoolPtr p =
                    virStoragePoolLookupByName(conn, name);
                if (!p)
                        return 0;
                if (virStoragePoolIsActive(p) == 1) {
                        virStoragePoolRefresh(p, 0);
                        if (virStoragePoolNumOfVolumes(p) > 0)
                                return log_error_errno(ENOTEMPTY,
                                                       "storage pool %s still has "
                                                       "volumes vgpuenv did not make",
                                                       name);
                        virStoragePoolDelete(p, 0);
                        virStoragePoolDestroy(p);
                }
                if (virStoragePoolUndefine(p) < 0)
                        return log_error_errno(EIO, "undefining pool %s: %s", name, virt_error());
        } else if (streq(kind, RES_NETWORK)) {
                _cleanup_(virNetworkFreep) virNetworkPtr n = virNetworkLookupByName(conn, name);
                _cleanup_free_ char *xml = n ? virNetworkGetXMLDesc(n, 0) : NULL;
                _cleanup_free_ char *owner = xml ? local_owner_of_network_xml(xml) : NULL;
                if (!n)
                        return 0;
                if (!owner || !streq(owner, c->name))
                        return log_error_errno(EPERM,
                                               "network %s lacks our ownership mark: "
                                               "leaving it",
                                               name);
                if (virNetworkIsActive(n) == 1 && virNetworkDestroy(n) < 0)
                        return log_error_errno(EIO, "stopping network %s: %s", name, virt_error());
                if (virNetworkIsPersistent(n) == 1 && virNetworkUndefine(n) < 0)
                        return log_error_errno(EIO, "undefining network %s: %s", name,
                                               virt_error());
        }
        return 0;
}

/* Dependents first: domains, then volumes, pool, network. */
static const char *const removal_order[] = {RES_DOMAIN, RES_VOLUME, RES_POOL, RES_NETWORK};

static int remove_recorded(struct run_ctx *ctx, struct state *st, virConnectPtr conn,
                           bool only_this_run)
{
        int r = 0;

        for (size_t k = 0; k < ELEMENTSOF(removal_order); k++) {
                const char *kind = removal_order[k];
                cJSON *res = cJSON_GetObjectItemCaseSensitive(st->root, "resources");
                _cleanup_strv_free_ char **names = NULL;
                const cJSON *it;

                cJSON_ArrayForEach(it, res)
                {
                        const cJSON *kd = cJSON_GetObjectItemCaseSensitive(it, "kind");
                        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
                        if (cJSON_IsString(kd) && cJSON_IsString(nm) &&
                            streq(kd->valuestring, kind) &&
                            (!only_this_run ||
                             state_resource_is_ours_this_run(st, kind, nm->valuestring)))
                                strv_extend(&names, nm->valuestring);
                }
                for (size_t i = 0; names && names[i]; i++) {
                        int k2 = remove_resource(ctx, conn, kind, names[i]);
                        if (k2 < 0) {
                                if (r == 0)
                                        r = k2;
                                continue;
                        }
                        state_drop_resource(st, kind, names[i]);
                        log_info("removed %s %s", kind, names[i]);
                }
        }
        return r;
}

/* Objects that carry our mark but are missing from the state (the state file
 * was deleted by hand): adopt them so down can remove them. */
static void adopt_marked(struct run_ctx *ctx, struct state *st, virConnectPtr conn)
{
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(conn, &doms, 0);
        _cleanup_free_ char *net = local_network_name(ctx->cfg);
        _cleanup_free_ char *pool = local_pool_name(ctx->cfg);

        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *xml = virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE);
                _cleanup_free_ char *owner = xml ? local_owner_of_domain_xml(xml) : NULL;
                const char *name = virDomainGetName(doms[i]);
                if (owner && streq(owner, ctx->cfg->name) &&
                    !state_has_resource(st, RES_DOMAIN, name))
                        state_add_resource(st, RES_DOMAIN, name);
                virDomainFree(doms[i]);
        }
        free(doms);
        if (net && !state_has_resource(st, RES_NETWORK, net)) {
                _cleanup_(virNetworkFreep) virNetworkPtr nw = virNetworkLookupByName(conn, net);
                if (nw)
                        state_add_resource(st, RES_NETWORK, net); /* mark checked on removal */
        }
        if (pool && !state_has_resource(st, RES_POOL, pool)) {
                _cleanup_(virStoragePoolFreep) virStoragePoolPtr p =
                    virStoragePoolLookupByName(conn, pool);
                _cleanup_free_ char *xml = p ? virStoragePoolGetXMLDesc(p, 0) : NULL;
                _cleanup_free_ char *dir = strdup_printf("<path>%s/disks</path>", ctx->state_dir);
                if (xml && dir && strstr(xml, dir)) {
                        state_add_resource(st, RES_POOL, pool);
                        for (unsigned i = 0; i < 64; i++) {
                                _cleanup_free_ char *v = strdup_printf("node%u.qcow2", i + 1);
                                _cleanup_(virStorageVolFreep) virStorageVolPtr vol =
                                    v ? virStorageVolLookupByName(p, v) : NULL;
                                if (vol)
                                        state_add_resource(st, RES_VOLUME, v);
                        }
                }
        }
}

static void plan_dry_run(struct run_ctx *ctx, struct local_up *u)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *net = local_network_xml(c);
        _cleanup_free_ char *pool_dir = strdup_printf("%s/disks", ctx->state_dir);
        _cleanup_free_ char *pool = pool_dir ? local_pool_xml(c, pool_dir) : NULL;

        ctx_plan(ctx, "libvirt %s: define and start network:\n%s", c->local.uri, net ? net : "");
        ctx_plan(ctx, "libvirt: define, build and start storage pool:\n%s", pool ? pool : "");
        for (unsigned i = 0; i < c->nodes.count; i++) {
                _cleanup_free_ char *dn = local_domain_name(c, i), *name = config_node_name(c, i);
                _cleanup_free_ char *mac = local_node_mac(c, i), *ip = config_node_ip(c, i);
                _cleanup_free_ char *vol = strdup_printf("node%u.qcow2", i + 1);
                _cleanup_free_ char *log =
                    strdup_printf("%s/%s-console.log", ctx->state_dir, name ? name : "");
                struct local_node_spec spec = {
                    .name = name,
                    .domain = dn,
                    .mac = mac,
                    .ip = ip,
                    .volume = vol,
                    .pool = dn ? "vgpuenv-pool" : "",
                    .console_log = log,
                    .kernel = u->img.kernel,
                    .initrd = u->img.initrd,
                    .root_arg = u->img.root_arg,
                    .run_id = "(run id)",
                    .domain_type = u->domain_type,
                    .render_node = "/dev/dri/renderD128",
                };
                _cleanup_free_ char *pn = local_pool_name(c);
                spec.pool = pn;
                _cleanup_free_ char *vx =
                    local_volume_xml(vol ? vol : "", overlay_capacity(c),
                                     u->img.disk ? u->img.disk : "(the customized image)");
                _cleanup_free_ char *dx = local_domain_xml(c, &spec);
                ctx_plan(ctx, "libvirt: create volume:\n%s", vx ? vx : "");
                ctx_plan(ctx, "libvirt: define and start domain:\n%s", dx ? dx : "");
                ctx_plan(ctx, "ssh: wait up to %us for %s@%s (host key pinned)", c->ssh.timeout,
                         c->ssh.user, ip ? ip : "");
        }
}

static int local_up(struct run_ctx *ctx, struct state *st)
{
        const struct config *c = ctx->cfg;
        struct local_up u = {.ctx = ctx, .st = st};
        _cleanup_free_ struct node_job *jobs = NULL;
        _cleanup_free_ pthread_t *threads = NULL;
        enum accel_verdict accel;
        int r;

        pthread_mutex_init(&u.lock, NULL);
        if (c->gpu == GPU_VIRTIO_3D && !ctx->dry_run) {
                _cleanup_free_ char *rn = host_render_node();
                if (!rn)
                        return log_error_errno(
                            ENODEV, "gpu: virtio-3d needs a render node on this host "
                                    "(/dev/dri/renderD*) and there is none; use gpu: "
                                    "virtio (2D), which is enough for the display chain");
        }
        r = accel_choose(ctx, &accel);
        if (r < 0)
                return r;
        u.domain_type = accel == ACCEL_VERDICT_KVM ? "kvm" : "qemu";
        r = image_prepare(ctx, &u.img);
        if (r < 0)
                return r;
        if (ctx->dry_run) {
                plan_dry_run(ctx, &u);
                node_image_done(&u.img);
                return 0;
        }
        if (ctx_cancelled(ctx)) {
                node_image_done(&u.img);
                return -ECANCELED;
        }
        cJSON *pd = cJSON_GetObjectItemCaseSensitive(st->root, "provider_data");
        if (!pd)
                pd = cJSON_AddObjectToObject(st->root, "provider_data");
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "image");
        cJSON_AddStringToObject(pd, "image", u.img.disk);
        cJSON_DeleteItemFromObjectCaseSensitive(pd, "domain_type");
        cJSON_AddStringToObject(pd, "domain_type", u.domain_type);

        r = open_conn(ctx, &u.conn);
        if (r < 0)
                goto out;
        r = ensure_network(&u);
        if (r >= 0)
                r = ensure_pool(&u);
        if (r < 0)
                goto rollback;

        jobs = calloc(c->nodes.count, sizeof(*jobs));
        threads = calloc(c->nodes.count, sizeof(*threads));
        if (!jobs || !threads) {
                r = -ENOMEM;
                goto rollback;
        }
        log_info("bringing up %u node(s) in parallel (%s)", c->nodes.count,
                 accel == ACCEL_VERDICT_KVM ? "KVM" : "TCG");
        for (unsigned i = 0; i < c->nodes.count; i++) {
                jobs[i] = (struct node_job){.u = &u, .index = i};
                if (pthread_create(&threads[i], NULL, node_thread, &jobs[i]) != 0)
                        node_thread(&jobs[i]);
        }
        for (unsigned i = 0; i < c->nodes.count; i++) {
                if (threads[i])
                        pthread_join(threads[i], NULL);
                if (jobs[i].result < 0 && r >= 0)
                        r = jobs[i].result;
        }
        if (r >= 0)
                goto out;
rollback:
        if (r == -ECANCELED || ctx_cancelled(ctx))
                log_notice("interrupted: removing what this run created");
        else
                log_notice("up failed: removing what this run created");
        if (remove_recorded(ctx, st, u.conn, true) < 0)
                log_error("rollback incomplete: run 'vgpuenv down -c %s' to finish", c->path);
out:
        state_save(st);
        if (u.conn)
                virConnectClose(u.conn);
        free(u.pool);
        node_image_done(&u.img);
        pthread_mutex_destroy(&u.lock);
        return r;
}

static int local_down(struct run_ctx *ctx, struct state *st)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        int r;

        if (ctx->dry_run) {
                ctx_plan(ctx,
                         "libvirt %s: destroy and undefine every domain, volume, pool and "
                         "network recorded in %s",
                         ctx->cfg->local.uri, st->path);
                return 0;
        }
        r = open_conn(ctx, &conn);
        if (r < 0)
                return r;
        adopt_marked(ctx, st, conn);
        r = remove_recorded(ctx, st, conn, false);
        state_save(st);
        if (r < 0)
                return r;
        /* Console logs and the disks dir live in the state dir. */
        _cleanup_free_ char *disks = strdup_printf("%s/disks", ctx->state_dir);
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

static int local_rollback(struct run_ctx *ctx, struct state *st)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        int r = open_conn(ctx, &conn);

        if (r < 0)
                return r;
        r = remove_recorded(ctx, st, conn, true);
        state_save(st);
        return r;
}

static int local_status(struct run_ctx *ctx, struct state *st, cJSON *out)
{
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        cJSON *doms = cJSON_AddArrayToObject(out, "domains");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(st->root, "resources"), *it;
        int r = open_conn(ctx, &conn);

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

static int local_kubeconfig(struct run_ctx *ctx, struct state *st, char **ret)
{
        (void)ctx;
        (void)st;
        (void)ret;
        return -ENOENT; /* bare VM nodes: no Kubernetes of our own */
}

static const char *local_kubevirt_provider(struct run_ctx *ctx)
{
        (void)ctx;
        return "external";
}

const struct provider_ops provider_local = {
    .name = "local",
    .vm_nodes = true,
    .up = local_up,
    .down = local_down,
    .rollback = local_rollback,
    .status = local_status,
    .kubeconfig = local_kubeconfig,
    .kubevirt_provider = local_kubevirt_provider,
    .makes_cluster = false,
};
