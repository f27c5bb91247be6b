/* The local provider's libvirt objects, one call per object: made when
 * missing (and recorded in the state the moment they exist), adopted when
 * they carry our mark, refused when they do not, removed only with our
 * mark. providers/local.c turns these into plan steps. */
#pragma once

#include <libvirt/libvirt.h>
#include <stdbool.h>

#include "common/macro.h"

#include "provision/base/config.h"
#include "provision/base/state.h"

#define RES_NETWORK "network"
#define RES_POOL "pool"
#define RES_VOLUME "volume"
#define RES_DOMAIN "domain"

DEFINE_TRIVIAL_CLEANUP_FUNC(virConnectPtr, virConnectClose)
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virNetworkPtr, virNetworkFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virStoragePoolPtr, virStoragePoolFree)
DEFINE_TRIVIAL_CLEANUP_FUNC(virStorageVolPtr, virStorageVolFree)

/* libvirt's last error message, for ours. */
const char *local_virt_error(void);
int local_connect(const struct config *c, virConnectPtr *ret);

/* The disks of the nodes live in <state_dir>/disks. */
int local_ensure_network(virConnectPtr conn, const struct config *c, struct state *st);
int local_ensure_pool(virConnectPtr conn, const struct config *c, const char *state_dir,
                      struct state *st);
/* An overlay volume on base_disk, at least as large as its virtual size. */
int local_ensure_volume(virConnectPtr conn, const struct config *c, const char *vol_name,
                        const char *base_disk, struct state *st);
/* Defined from xml when missing (then recorded), started when stopped;
 * *started says whether this call started it. */
int local_ensure_domain(virConnectPtr conn, const struct config *c, const char *dom_name,
                        const char *xml, struct state *st, bool *started);

/* Remove one object of the state; a missing one counts as removed, one
 * without our mark is left (-EPERM). */
int local_remove(virConnectPtr conn, const struct config *c, const char *kind, const char *name);
/* Objects with our mark that the state does not list (the state file was
 * deleted by hand): recorded so down removes them. */
void local_adopt_marked(virConnectPtr conn, const struct config *c, const char *state_dir,
                        struct state *st);
