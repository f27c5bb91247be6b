/* The local provider's libvirt objects (see local_objects.h). */
#include "providers/local_objects.h"

#include <errno.h>
#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "providers/local_xml.h"

const char *local_virt_error(void)
{
        virErrorPtr e = virGetLastError();

        return e && e->message ? e->message : "unknown libvirt error";
}

static void silence_libvirt(void *opaque, virErrorPtr e)
{
        (void)opaque;
        (void)e; /* we report errors ourselves, with context */
}

int local_connect(const struct config *c, virConnectPtr *ret)
{
        virSetErrorFunc(NULL, silence_libvirt);
        *ret = virConnectOpen(c->local.uri);
        if (!*ret)
                return log_error_errno(ECONNREFUSED,
                                       "cannot connect to libvirt at %s: %s (is libvirtd running? "
                                       "try scripts/ensure-libvirtd.sh)",
                                       c->local.uri, local_virt_error());
        return 0;
}

/* The state serializes its callers itself: parallel node steps share it. */
static int record(struct state *st, const char *kind, const char *name)
{
        int r = state_add_resource(st, kind, name);

        if (r < 0)
                return log_error_errno(r, "saving the state file: %m");
        return 0;
}

/* A just-defined object (defined: libvirt took its XML) into the state. */
static int record_defined(struct state *st, bool defined, const char *kind, const char *what,
                          const char *name)
{
        if (!defined)
                return log_error_errno(EIO, "defining %s %s: %s", what, name, local_virt_error());
        return record(st, kind, name);
}

/* Whether an object's XML (taken over; NULL when libvirt gave none) carries
 * this cluster's ownership mark, as owner_of reads it. */
static bool ours(const struct config *c, char *xml, char *(*owner_of)(const char *))
{
        _cleanup_free_ char *x = xml;
        _cleanup_free_ char *owner = x ? owner_of(x) : NULL;

        return owner && streq(owner, c->name);
}

/* An object that exists already (have: its XML, taken over): ours is
 * adopted into the state, anything else refused. */
static int adopt(struct state *st, const struct config *c, const char *kind, const char *what,
                 const char *name, char *have, char *(*owner_of)(const char *))
{
        int r;

        if (!ours(c, have, owner_of))
                return log_error_errno(EEXIST,
                                       "%s %s exists but is not vgpuenv's for cluster %s: refusing "
                                       "to touch it",
                                       what, name, c->name);
        if (!state_has_resource(st, kind, name) && (r = record(st, kind, name)) < 0)
                return r;
        return 0;
}

int local_ensure_network(virConnectPtr conn, const struct config *c, struct state *st)
{
        _cleanup_free_ char *name = local_network_name(c), *xml = local_network_xml(c);
        _cleanup_(virNetworkFreep) virNetworkPtr net = NULL;
        int r;

        if (!name || !xml)
                return -ENOMEM;
        net = virNetworkLookupByName(conn, name);
        if (net)
                r = adopt(st, c, RES_NETWORK, "libvirt network", name, virNetworkGetXMLDesc(net, 0),
                          local_owner_of_network_xml);
        else {
                net = virNetworkDefineXML(conn, xml);
                r = record_defined(st, net != NULL, RES_NETWORK, "network", name);
                if (r >= 0)
                        log_info("network %s: defined (%s)", name, c->network.subnet);
        }
        if (r < 0)
                return r;
        if (virNetworkIsActive(net) != 1 && virNetworkCreate(net) < 0)
                return log_error_errno(EIO, "starting network %s: %s", name, local_virt_error());
        return 0;
}

int local_ensure_pool(virConnectPtr conn, const struct config *c, const char *state_dir,
                      struct state *st)
{
        _cleanup_free_ char *dir = strdup_printf("%s/disks", state_dir);
        _cleanup_free_ char *name = local_pool_name(c);
        _cleanup_free_ char *xml = NULL;
        _cleanup_(virStoragePoolFreep) virStoragePoolPtr pool = NULL;
        int r;

        if (!dir || !name)
                return -ENOMEM;
        /* QEMU runs as an unprivileged user and must traverse to the disks. */
        chmod(state_dir, 0711);
        xml = local_pool_xml(c, dir);
        if (!xml)
                return -ENOMEM;
        pool = virStoragePoolLookupByName(conn, name);
        if (!pool) {
                pool = virStoragePoolDefineXML(conn, xml, 0);
                if ((r = record_defined(st, pool != NULL, RES_POOL, "storage pool", name)) < 0)
                        return r;
                if (virStoragePoolBuild(pool, 0) < 0)
                        return log_error_errno(EIO, "creating %s: %s", dir, local_virt_error());
        } else if (!state_has_resource(st, RES_POOL, name)) {
                _cleanup_free_ char *have = virStoragePoolGetXMLDesc(pool, 0);
                _cleanup_free_ char *want = strdup_printf("<path>%s</path>", dir);
                if (!have || !want || !strstr(have, want))
                        return log_error_errno(EEXIST,
                                               "storage pool %s exists but does not point at %s: "
                                               "refusing to touch it",
                                               name, dir);
                if ((r = record(st, RES_POOL, name)) < 0)
                        return r;
        }
        if (virStoragePoolIsActive(pool) != 1 && virStoragePoolCreate(pool, 0) < 0)
                return log_error_errno(EIO, "starting storage pool %s: %s", name,
                                       local_virt_error());
        virStoragePoolRefresh(pool, 0);
        return 0;
}

static unsigned long long overlay_capacity(const struct config *c)
{
        return (unsigned long long)c->nodes.disk << 30;
}

int local_ensure_volume(virConnectPtr conn, const struct config *c, const char *vol_name,
                        const char *base_disk, struct state *st)
{
        _cleanup_free_ char *pool_name = local_pool_name(c);
        _cleanup_(virStoragePoolFreep) virStoragePoolPtr pool =
            pool_name ? virStoragePoolLookupByName(conn, pool_name) : NULL;
        _cleanup_(virStorageVolFreep) virStorageVolPtr vol = NULL;
        _cleanup_free_ char *xml = NULL;

        if (!pool)
                return log_error_errno(ENOENT, "storage pool %s vanished: %s", pool_name,
                                       local_virt_error());
        vol = virStorageVolLookupByName(pool, vol_name);
        if (vol)
                return state_has_resource(st, RES_VOLUME, vol_name)
                           ? 0
                           : record(st, RES_VOLUME, vol_name);
        unsigned long long cap = overlay_capacity(c), base = 0;
        int r = image_qcow2_virtual_size(base_disk, &base);
        if (r < 0)
                return log_error_errno(r, "reading the size of %s: %m", base_disk);
        if (cap < base) {
                log_notice("nodes.disk is %u GiB but the image is %llu GiB: using %llu GiB",
                           c->nodes.disk, base >> 30, base >> 30);
                cap = base;
        }
        xml = local_volume_xml(vol_name, cap, base_disk);
        if (!xml)
                return -ENOMEM;
        vol = virStorageVolCreateXML(pool, xml, 0);
        if (!vol)
                return log_error_errno(EIO, "creating volume %s: %s", vol_name, local_virt_error());
        return record(st, RES_VOLUME, vol_name);
}

int local_ensure_domain(virConnectPtr conn, const struct config *c, const char *dom_name,
                        const char *xml, struct state *st, bool *started)
{
        _cleanup_(virDomainFreep) virDomainPtr dom = virDomainLookupByName(conn, dom_name);
        int r;

        *started = false;
        if (dom)
                r = adopt(st, c, RES_DOMAIN, "domain", dom_name, virDomainGetXMLDesc(dom, 0),
                          local_owner_of_domain_xml);
        else {
                dom = virDomainDefineXML(conn, xml);
                r = record_defined(st, dom != NULL, RES_DOMAIN, "domain", dom_name);
        }
        if (r < 0)
                return r;
        if (virDomainIsActive(dom) != 1) {
                if (virDomainCreate(dom) < 0)
                        return log_error_errno(EIO, "starting domain %s: %s", dom_name,
                                               local_virt_error());
                *started = true;
        }
        return 0;
}

/* Remove one recorded object; missing objects count as removed. */
int local_remove(virConnectPtr conn, const struct config *c, const char *kind, const char *name)
{
        if (streq(kind, RES_DOMAIN)) {
                _cleanup_(virDomainFreep) virDomainPtr d = virDomainLookupByName(conn, name);
                if (!d)
                        return 0;
                if (!ours(c, virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE),
                          local_owner_of_domain_xml))
                        return log_error_errno(EPERM,
                                               "domain %s lacks our ownership mark for "
                                               "cluster %s: leaving it",
                                               name, c->name);
                if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0)
                        return log_error_errno(EIO, "stopping %s: %s", name, local_virt_error());
                if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM) < 0)
                        return log_error_errno(EIO, "undefining %s: %s", name, local_virt_error());
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
                        return log_error_errno(EIO, "deleting volume %s: %s", name,
                                               local_virt_error());
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
                        return log_error_errno(EIO, "undefining pool %s: %s", name,
                                               local_virt_error());
        } else if (streq(kind, RES_NETWORK)) {
                _cleanup_(virNetworkFreep) virNetworkPtr n = virNetworkLookupByName(conn, name);
                if (!n)
                        return 0;
                if (!ours(c, virNetworkGetXMLDesc(n, 0), local_owner_of_network_xml))
                        return log_error_errno(EPERM,
                                               "network %s lacks our ownership mark: "
                                               "leaving it",
                                               name);
                if (virNetworkIsActive(n) == 1 && virNetworkDestroy(n) < 0)
                        return log_error_errno(EIO, "stopping network %s: %s", name,
                                               local_virt_error());
                if (virNetworkIsPersistent(n) == 1 && virNetworkUndefine(n) < 0)
                        return log_error_errno(EIO, "undefining network %s: %s", name,
                                               local_virt_error());
        }
        return 0;
}

/* Objects that carry our mark but are missing from the state (the state file
 * was deleted by hand): adopt them so down can remove them. */
void local_adopt_marked(virConnectPtr conn, const struct config *c, const char *state_dir,
                        struct state *st)
{
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(conn, &doms, 0);
        _cleanup_free_ char *net = local_network_name(c);
        _cleanup_free_ char *pool = local_pool_name(c);

        for (int i = 0; i < n; i++) {
                const char *name = virDomainGetName(doms[i]);
                if (ours(c, virDomainGetXMLDesc(doms[i], VIR_DOMAIN_XML_INACTIVE),
                         local_owner_of_domain_xml) &&
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
                _cleanup_free_ char *dir = strdup_printf("<path>%s/disks</path>", state_dir);
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
