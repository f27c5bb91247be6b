/* The vgpuenv cluster configuration: one YAML schema for every provider.
 *
 * config_load() applies defaults, parses the file through the schema table
 * (common/yaml_schema.h) and validates cross-field rules; a bad file gives
 * "file:line:column: message" and the commands exit 2 without creating
 * anything. docs/configuration.md is generated from the same table. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "common/yaml_schema.h"

enum provider_kind { PROVIDER_LOCAL, PROVIDER_KCLI, PROVIDER_KUBEVIRTCI, PROVIDER_KIND };
enum gpu_kind { GPU_VIRTIO, GPU_VIRTIO_3D, GPU_NONE };
enum distro_family { FAMILY_AUTO, FAMILY_DEBIAN, FAMILY_RHEL };
enum image_profile { PROFILE_NODE, PROFILE_DISPLAY };
enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };
enum network_mode { NETWORK_NAT, NETWORK_ISOLATED };
enum webhook_mode { WEBHOOK_HOSTPATH, WEBHOOK_CDI };
enum webhook_deploy { DEPLOY_NONE, DEPLOY_CLUSTER, DEPLOY_URL };
/* Where virt-launcher's GL libraries come from: mounted from the node (the
 * webhook's library profile), or the launcher image's own (the image
 * vgpuenv builds, images/launcher/); auto: the image's when vgpuenv builds
 * it. */
enum webhook_libraries { LIBRARIES_AUTO, LIBRARIES_NODE, LIBRARIES_IMAGE };
/* The fake NVIDIA vGPU node setup loads (provision/vgpu/): its display mode,
 * none, or the node's own vGPU driver. auto: dmabuf on VM providers, region
 * on kind (config_vgpu_mode()). */
enum vgpu_mode { VGPU_AUTO, VGPU_DMABUF, VGPU_REGION, VGPU_NONE, VGPU_HOST };

struct config_nodes {
        unsigned count;     /* 1..16 */
        unsigned cpus;      /* 1..64 */
        unsigned memory;    /* MiB, 256..262144 */
        unsigned disk;      /* GiB, 2..2048 */
        unsigned ctlplanes; /* kcli: how many of count are control planes */
};

struct config_image {
        char *base;   /* "debian-bookworm" (built locally) or path to qcow2 */
        int family;   /* enum distro_family */
        int profile;  /* enum image_profile */
        char *mirror; /* Debian mirror for the built base image */
        char **extra_packages;
};

struct config_mesa {
        char **packages; /* NULL: the family's default set */
        char *local_dir; /* directory of .deb/.rpm files to install instead */
};

struct config_network {
        int mode;     /* enum network_mode */
        char *subnet; /* IPv4 CIDR /24 e.g. 192.168.200.0/24 */
};

struct config_ssh {
        char *user;       /* default root */
        char *key;        /* private key path; NULL: generated in state dir */
        unsigned timeout; /* seconds to wait for sshd after boot */
};

struct config_local {
        char *uri; /* libvirt URI, default qemu:///system */
        int accel; /* enum accel_kind */
};

struct config_kcli {
        char *binary;  /* default "kcli" */
        char *image;   /* kcli image name, e.g. centos9stream */
        char *version; /* kubernetes version, optional */
        char *client;  /* kcli client/libvirt URI, optional */
        char *uri;     /* libvirt URI of kcli's host, default qemu:///system */
};

struct config_kubevirtci {
        char *dir;        /* kubevirt or kubevirtci checkout */
        char *provider;   /* e.g. k8s-1.36 */
        char *extra_args; /* appended to KUBEVIRT_PROVIDER_EXTRA_ARGS */
        char *tag;        /* KUBEVIRTCI_TAG, optional */
        char *node_image; /* REGISTRY/ORG/PROVIDER:TAG with virtio-gpu-pci */
};

struct config_kind {
        char *dir;      /* kubevirtci checkout */
        char *provider; /* e.g. kind-1.35-vgpu */
};

struct config_webhook {
        int deploy;       /* enum webhook_deploy */
        int mode;         /* enum webhook_mode */
        char *url;        /* url deploy: https://HOST:PORT */
        char *config;     /* mesa-injector config file, optional */
        bool build_image; /* build webhook/deploy/Containerfile, push it to registry */
        int libraries;    /* enum webhook_libraries */
};

/* Where the images vgpuenv builds go (mesa-injector's, the GL launcher):
 * pushed from this host to push, pulled by the nodes from pull (the same
 * registry under the name the nodes know it by). push "auto": the
 * provider's own registry (kubevirtci). */
struct config_registry {
        char *push;
        char *pull; /* NULL: push */
        bool tls_verify;
};

struct config_kubevirt {
        bool configure;  /* patch the KubeVirt CR for the fake vGPU */
        char *namespace; /* default kubevirt */
        char *kubectl;   /* default "kubectl" */
        /* The images `make cluster-sync` pushed (DOCKER_PREFIX, DOCKER_TAG),
         * which KubeVirt's suite needs on clusters it reaches as external. */
        char *docker_prefix;
        char *docker_tag;
        /* Build virt-launcher with QEMU's GL display modules
         * (images/launcher/Containerfile) and give virt-operator its
         * VIRT_LAUNCHER_IMAGE. */
        bool launcher_gl;
        char *launcher_base;    /* the stock launcher; NULL: virt-controller's */
        char *launcher_builder; /* an image of the launcher's release with dnf */
};

/* Seconds each kind of long step may take before it is stopped and rolled
 * back; generous enough for TCG on 2 shared cores. */
struct config_deadlines {
        unsigned kvm_probe;        /* booting a kernel under KVM to decide KVM vs TCG */
        unsigned mmdebstrap;       /* building the base root file system */
        unsigned appliance_launch; /* each libguestfs appliance launch */
        unsigned appliance_call;   /* each call into the appliance (the package install) */
        unsigned node_command;     /* each command run on a node */
        unsigned module_build;     /* building a kernel module */
        unsigned kubectl;          /* each kubectl call */
        unsigned provider;         /* kcli create, make cluster-up/down */
        unsigned undo;             /* each undo of a rollback */
        unsigned lock;             /* waiting for another run of the cluster to finish */
        unsigned image_build;      /* each podman build or push */
        unsigned rollout;          /* KubeVirt rolling out a new launcher image */
};

struct config {
        char *path;   /* file it was loaded from */
        char *name;   /* cluster name: [a-z0-9-]{1,32} */
        int provider; /* enum provider_kind */
        int gpu;      /* enum gpu_kind */
        int vgpu;     /* enum vgpu_mode */
        struct config_nodes nodes;
        struct config_image image;
        struct config_mesa mesa;
        struct config_network network;
        struct config_ssh ssh;
        struct config_local local;
        struct config_kcli kcli;
        struct config_kubevirtci kubevirtci;
        struct config_kind kind;
        struct config_webhook webhook;
        struct config_registry registry;
        struct config_kubevirt kubevirt;
        struct config_deadlines deadlines;
};

extern const struct schema_field config_schema[];
extern const char *const provider_names[];
extern const char *const gpu_names[];
extern const char *const family_names[];
extern const char *const vgpu_names[];

void config_init_defaults(struct config *c);
/* Load and validate; on a bad document logs "file:line:column: message" and
 * returns -EINVAL (callers exit 2). Sets the defaults itself (c need not be
 * initialized); call config_done() afterwards whatever the result.
 * KUBEVIRT_NUM_NODES and KUBEVIRT_PROVIDER override the file. Relative paths
 * in the file are made absolute against the file's directory. */
int config_load(struct config *c, const char *path);
/* The same without logging: *ret_error gets the message (caller frees). */
int config_load_quiet(struct config *c, const char *path, char **ret_error);
void config_done(struct config *c);

/* The mesa packages for a family (config override or defaults). Borrowed:
 * the config's own list or a static one; never free or modify it. */
char **config_mesa_packages(const struct config *c, enum distro_family family);
/* image.family, or a guess from image.base when it is auto (debian-bookworm
 * is Debian; CentOS/Fedora/RHEL/Rocky/Alma names are RHEL); FAMILY_AUTO when
 * only the image itself can tell. */
enum distro_family config_image_family(const struct config *c);
/* vgpu with auto resolved for the provider: region on kind (its nodes are
 * containers with no render node, and a region display needs no GL),
 * dmabuf elsewhere. Never VGPU_AUTO. */
enum vgpu_mode config_vgpu_mode(const struct config *c);
/* docs/configuration.md's reference table, with defaults. */
int config_print_reference(FILE *out);

/* IPv4 address of node i (0-based) and of the host on the cluster network,
 * from network.subnet: .1 is the host, nodes from .10. */
char *config_node_ip(const struct config *c, unsigned i);
char *config_host_ip(const struct config *c);
/* "NAME-node1", ... */
char *config_node_name(const struct config *c, unsigned i);
