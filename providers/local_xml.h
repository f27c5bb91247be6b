/* libvirt XML for the local provider's objects: the cluster network, the
 * storage pool for node overlays, overlay volumes and node domains.
 *
 * Pure functions of the config and inputs, so unit tests can check them and
 * `up --dry-run` can print them. Every object carries our ownership mark:
 * domains in <metadata>, networks as a DNS TXT record (libvirt 9.0 has no
 * network metadata), pools by name and by living in the cluster's state dir. */
#pragma once

#include "provision/base/config.h"

#define VGPUENV_XMLNS "https://vgpuenv.io/xmlns/libvirt/1"
#define OWNER_TXT_NAME "vgpuenv-owner"
#define LOCAL_QEMU_XMLNS "http://libvirt.org/schemas/domain/qemu/1.0"
/* QEMU ids of the fake vGPU's PCI parent and its root port (with vgpu:
 * dmabuf or region). */
#define LOCAL_VGPU_PORT_ID "vgpuenv-rp"
#define LOCAL_VGPU_PARENT_ID "vgpuenv-t4"

struct local_node_spec {
        const char *name;   /* NAME-node1: hostname */
        const char *domain; /* vgpuenv-NAME-node1: libvirt name */
        const char *mac;
        const char *ip;
        const char *volume; /* volume name in the pool */
        const char *pool;
        const char *console_log;
        const char *kernel; /* NULL: boot from disk */
        const char *initrd;
        const char *root_arg;
        const char *run_id;
        const char *domain_type; /* "kvm" or "qemu" */
        const char *render_node; /* host render node for gpu: virtio-3d */
};

char *local_network_name(const struct config *c);
char *local_pool_name(const struct config *c);
char *local_domain_name(const struct config *c, unsigned i);
/* Deterministic MAC from the cluster name and node index. */
char *local_node_mac(const struct config *c, unsigned i);

char *local_network_xml(const struct config *c);
char *local_pool_xml(const struct config *c, const char *dir);
char *local_volume_xml(const char *name, unsigned long long capacity_bytes, const char *backing);
char *local_domain_xml(const struct config *c, const struct local_node_spec *n);

/* The cluster name in a domain's or network's XML ownership mark, or NULL. */
char *local_owner_of_domain_xml(const char *xml);
char *local_owner_of_network_xml(const char *xml);
