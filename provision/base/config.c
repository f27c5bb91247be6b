/* The vgpuenv cluster configuration: schema table, defaults, cross-field
 * validation and the small derived values (node names and addresses).
 *
 * The table below is the single description of the file format: the loader
 * (common/yaml_schema.c) and docs/configuration.md are both driven by it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "provision/base/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

const char *const provider_names[] = {"local", "kcli", "kubevirtci", "kind", NULL};
const char *const gpu_names[] = {"virtio", "virtio-3d", "none", NULL};
const char *const family_names[] = {"auto", "debian", "rhel", NULL};
const char *const vgpu_names[] = {"auto", "dmabuf", "region", "none", "host", NULL};
static const char *const profile_names[] = {"node", "display", NULL};
static const char *const accel_names[] = {"auto", "kvm", "tcg", NULL};
static const char *const network_mode_names[] = {"nat", "isolated", NULL};
static const char *const webhook_mode_names[] = {"hostpath", "cdi", NULL};
static const char *const deploy_names[] = {"none", "cluster", "url", NULL};
static const char *const libraries_names[] = {"auto", "node", "image", NULL};

/* Package names differ per distro family (../shared/ENVIRONMENT.md): these
 * are what makes EGL on a render node work with mesa's drivers. */
static const char *const debian_mesa[] = {"libegl-mesa0", "libegl1",         "libgbm1",
                                          "libgl1",       "libgl1-mesa-dri", "libgles2",
                                          "libglx-mesa0", "libopengl0",      NULL};
static const char *const rhel_mesa[] = {
    "mesa-dri-drivers", "mesa-libEGL",   "mesa-libgbm", "mesa-libGL",
    "libglvnd-egl",     "libglvnd-gles", NULL};

#define DEBIAN_BASE "debian-bookworm"
#define MAX_NODES 16
/* Nodes are numbered from .10 of the /24 (.1 is the host, .2-.9 are left
 * for the DHCP server and future host-side services). */
#define FIRST_NODE_OCTET 10

#define F(s, m) offsetof(struct s, m)

static const struct schema_field nodes_fields[] = {
    {"count", SCHEMA_UINT, F(config_nodes, count), .min = 1, .max = MAX_NODES,
     .doc = "Number of VM nodes (KUBEVIRT_NUM_NODES overrides it)."},
    {"cpus", SCHEMA_UINT, F(config_nodes, cpus), .min = 1, .max = 64, .doc = "vCPUs per node."},
    {"memory", SCHEMA_UINT, F(config_nodes, memory), .min = 256, .max = 262144,
     .doc = "Memory per node in MiB."},
    {"disk", SCHEMA_UINT, F(config_nodes, disk), .min = 2, .max = 2048,
     .doc = "Disk size per node in GiB (the overlay grows up to this)."},
    {"ctlplanes", SCHEMA_UINT, F(config_nodes, ctlplanes), .min = 1, .max = MAX_NODES,
     .doc = "kcli: how many of the nodes are control planes; at most nodes.count."},
    {},
};

static const struct schema_field image_fields[] = {
    {"base", SCHEMA_STRING, F(config_image, base),
     .doc = "`debian-bookworm` (built locally with mmdebstrap) or a path to a qcow2 cloud "
            "image; a relative path is relative to the config file."},
    {"family", SCHEMA_ENUM, F(config_image, family), .enum_values = family_names,
     .doc = "Distro family of the base image, for package names and the package "
            "manager; `auto` detects it."},
    {"profile", SCHEMA_ENUM, F(config_image, profile), .enum_values = profile_names,
     .doc = "`node`: Kubernetes node packages; `display`: a minimal image for the "
            "display-chain proof."},
    {"mirror", SCHEMA_STRING, F(config_image, mirror),
     .doc = "Debian mirror used to build the `debian-bookworm` base image."},
    {"extra_packages", SCHEMA_STRV, F(config_image, extra_packages),
     .doc = "More packages installed into the image in the same appliance launch."},
    {},
};

static const struct schema_field mesa_fields[] = {
    {"packages", SCHEMA_STRV, F(config_mesa, packages),
     .doc = "Mesa packages to install; unset: the family's default set (see below)."},
    {"local_dir", SCHEMA_STRING, F(config_mesa, local_dir),
     .doc = "Directory of .deb/.rpm files installed instead of using the mirror; must "
            "exist; relative to the config file."},
    {},
};

static const struct schema_field network_fields[] = {
    {"mode", SCHEMA_ENUM, F(config_network, mode), .enum_values = network_mode_names,
     .doc = "`nat`: nodes reach the outside through the host; `isolated`: host only."},
    {"subnet", SCHEMA_STRING, F(config_network, subnet),
     .doc = "IPv4 /24 in CIDR notation: the host is .1, nodes start at .10."},
    {},
};

static const struct schema_field ssh_fields[] = {
    {"user", SCHEMA_STRING, F(config_ssh, user), .doc = "User vgpuenv logs in as."},
    {"key", SCHEMA_STRING, F(config_ssh, key),
     .doc = "Private key file; unset: a key pair is generated in the state directory."},
    {"timeout", SCHEMA_UINT, F(config_ssh, timeout), .min = 10, .max = 7200,
     .doc = "Seconds to wait for sshd after a node boots (TCG boots are slow)."},
    {},
};

static const struct schema_field local_fields[] = {
    {"uri", SCHEMA_STRING, F(config_local, uri), .doc = "libvirt connection URI."},
    {"accel", SCHEMA_ENUM, F(config_local, accel), .enum_values = accel_names,
     .doc = "`auto` uses KVM only when a short probe shows it works, else TCG."},
    {},
};

static const struct schema_field kcli_fields[] = {
    {"binary", SCHEMA_STRING, F(config_kcli, binary), .doc = "kcli program to run."},
    {"image", SCHEMA_STRING, F(config_kcli, image), .doc = "kcli image name."},
    {"version", SCHEMA_STRING, F(config_kcli, version),
     .doc = "Kubernetes version passed to kcli; unset: kcli's default."},
    {"client", SCHEMA_STRING, F(config_kcli, client),
     .doc = "kcli client name (-C); unset: kcli's default."},
    {"uri", SCHEMA_STRING, F(config_kcli, uri),
     .doc = "libvirt URI of the host kcli creates the VMs on."},
    {},
};

static const struct schema_field kubevirtci_fields[] = {
    {"dir", SCHEMA_STRING, F(config_kubevirtci, dir),
     .doc = "kubevirt or kubevirtci checkout; required with provider kubevirtci."},
    {"provider", SCHEMA_STRING, F(config_kubevirtci, provider),
     .doc = "KUBEVIRT_PROVIDER value (the environment variable overrides it)."},
    {"extra_args", SCHEMA_STRING, F(config_kubevirtci, extra_args),
     .doc = "Appended to KUBEVIRT_PROVIDER_EXTRA_ARGS."},
    {"tag", SCHEMA_STRING, F(config_kubevirtci, tag),
     .doc = "KUBEVIRTCI_TAG (gocli and provider images); the environment variable overrides "
            "it; unset: a kubevirt checkout's pinned tag, required for a kubevirtci one."},
    {"node_image", SCHEMA_STRING, F(config_kubevirtci, node_image),
     .doc = "REGISTRY/ORG/PROVIDER:TAG, a provider image derived from kubevirtci's with "
            "qemu-device-display-virtio-gpu-pci (docs/providers.md); required."},
    {},
};

static const struct schema_field kind_fields[] = {
    {"dir", SCHEMA_STRING, F(config_kind, dir),
     .doc = "kubevirtci checkout; required with provider kind."},
    {"provider", SCHEMA_STRING, F(config_kind, provider),
     .doc = "KUBEVIRT_PROVIDER value (the environment variable overrides it)."},
    {},
};

static const struct schema_field webhook_fields[] = {
    {"deploy", SCHEMA_ENUM, F(config_webhook, deploy), .enum_values = deploy_names,
     .doc = "`cluster`: run mesa-injector in the cluster; `url`: use one running at "
            "webhook.url; `none`: no webhook."},
    {"mode", SCHEMA_ENUM, F(config_webhook, mode), .enum_values = webhook_mode_names,
     .doc = "How mesa reaches virt-launcher: hostPath mounts or CDI devices."},
    {"url", SCHEMA_STRING, F(config_webhook, url),
     .doc = "With deploy url: https://HOST:PORT of the webhook (https only)."},
    {"config", SCHEMA_STRING, F(config_webhook, config),
     .doc = "mesa-injector config file; relative to this file."},
    {"build_image", SCHEMA_BOOL, F(config_webhook, build_image),
     .doc = "Build mesa-injector's image (webhook/deploy/Containerfile, podman) and push it to "
            "`registry`: the device plugin's DaemonSet, the hook sidecar and an in-cluster "
            "webhook run it; needs the vgpuenv source tree."},
    {"libraries", SCHEMA_ENUM, F(config_webhook, libraries), .enum_values = libraries_names,
     .doc = "virt-launcher's GL libraries: `node` mounts the node's mesa (ABI caveat: "
            "docs/webhook.md), `image` uses the launcher image's own; `auto`: `image` when "
            "kubevirt.launcher_gl builds it."},
    {},
};

static const struct schema_field registry_fields[] = {
    {"push", SCHEMA_STRING, F(config_registry, push),
     .doc = "Registry this host pushes the images vgpuenv builds to (HOST:PORT[/ORG]); "
            "`auto`: the provider's own (kubevirtci: localhost:$(cluster-up/cli.sh ports "
            "registry))."},
    {"pull", SCHEMA_STRING, F(config_registry, pull),
     .doc = "The same registry as the nodes name it (kubevirtci: registry:5000); unset: push."},
    {"tls_verify", SCHEMA_BOOL, F(config_registry, tls_verify),
     .doc = "Verify the registry's TLS certificate when pushing and pulling."},
    {},
};

static const struct schema_field kubevirt_fields[] = {
    {"configure", SCHEMA_BOOL, F(config_kubevirt, configure),
     .doc = "Patch the KubeVirt CR for the mediated devices of the tests."},
    {"namespace", SCHEMA_STRING, F(config_kubevirt, namespace),
     .doc = "Namespace of the KubeVirt CR."},
    {"kubectl", SCHEMA_STRING, F(config_kubevirt, kubectl), .doc = "kubectl program."},
    {"docker_prefix", SCHEMA_STRING, F(config_kubevirt, docker_prefix),
     .doc = "DOCKER_PREFIX: registry/org of the KubeVirt images `make cluster-sync` pushed; "
            "e2e on local and kcli clusters needs it (the environment variable overrides it)."},
    {"docker_tag", SCHEMA_STRING, F(config_kubevirt, docker_tag),
     .doc = "DOCKER_TAG of those images; needed like docker_prefix."},
    {"launcher_gl", SCHEMA_BOOL, F(config_kubevirt, launcher_gl),
     .doc = "Build virt-launcher with QEMU's egl-headless display (images/launcher/"
            "Containerfile), push it to `registry` and set it as virt-operator's "
            "VIRT_LAUNCHER_IMAGE."},
    {"launcher_base", SCHEMA_STRING, F(config_kubevirt, launcher_base),
     .doc = "The stock virt-launcher image to build from; unset: the one virt-controller "
            "runs (--launcher-image)."},
    {"launcher_builder", SCHEMA_STRING, F(config_kubevirt, launcher_builder),
     .doc = "Image of the launcher's CentOS Stream release with dnf, for the GL packages."},
    {},
};

#define DEADLINE(key, member, what)                                                                \
        {                                                                                          \
                key, SCHEMA_UINT, F(config_deadlines, member), .min = 1, .max = 86400, .doc = what \
        }
static const struct schema_field deadline_fields[] = {
    DEADLINE("kvm_probe", kvm_probe,
             "Booting a kernel under KVM to decide between KVM and TCG; a KVM that cannot "
             "boot one in this time is not used."),
    DEADLINE("mmdebstrap", mmdebstrap, "Building the Debian base root file system."),
    DEADLINE("appliance_launch", appliance_launch, "Each libguestfs appliance launch."),
    DEADLINE("appliance_call", appliance_call,
             "Each call into the appliance (the package installation is the long one)."),
    DEADLINE("node_command", node_command, "Each command vgpuenv runs on a node over ssh."),
    DEADLINE("module_build", module_build, "Building a kernel module."),
    DEADLINE("kubectl", kubectl, "Each kubectl call of cluster setup."),
    DEADLINE("provider", provider, "kcli create/delete, make cluster-up/cluster-down."),
    DEADLINE("undo", undo, "Each undo of a rollback."),
    DEADLINE("lock", lock,
             "Waiting for another up or down of the same cluster to finish (then the run "
             "fails and names it)."),
    DEADLINE("image_build", image_build, "Each podman build or push of an image vgpuenv builds."),
    DEADLINE("rollout", rollout,
             "KubeVirt rolling out a new launcher image (virt-operator, virt-controller, "
             "virt-handler)."),
    {},
};

const struct schema_field config_schema[] = {
    {"name", SCHEMA_STRING, F(config, name),
     .doc = "Cluster name: 1-32 of a-z 0-9 '-', not starting or ending with '-'; "
            "prefixes every object vgpuenv creates."},
    {"provider", SCHEMA_ENUM, F(config, provider), .enum_values = provider_names,
     .doc = "Which backend brings up the nodes."},
    {"gpu", SCHEMA_ENUM, F(config, gpu), .enum_values = gpu_names,
     .doc = "`virtio`: 2D virtio-gpu; `virtio-3d`: accel3d + egl-headless, only when the "
            "host has a render node; `none`: no GPU device."},
    {"vgpu", SCHEMA_ENUM, F(config, vgpu), .enum_values = vgpu_names,
     .doc = "The fake NVIDIA T4 vGPU (mdev types nvidia-222/nvidia-223) node setup loads on "
            "every VM node, or on the host for kind: `dmabuf` (DMABUF display, needs the GL "
            "chain), `region` (region display, no GL), `none`, or `host` (the nodes' own vGPU "
            "driver, checked but not loaded); `auto`: `region` for kind, `dmabuf` otherwise."},
    {"nodes", SCHEMA_SECTION, F(config, nodes), .children = nodes_fields,
     .doc = "Size of the nodes."},
    {"image", SCHEMA_SECTION, F(config, image), .children = image_fields,
     .doc = "Node disk image."},
    {"mesa", SCHEMA_SECTION, F(config, mesa), .children = mesa_fields,
     .doc = "Mesa packages installed into the image."},
    {"network", SCHEMA_SECTION, F(config, network), .children = network_fields,
     .doc = "The cluster network vgpuenv creates (provider local)."},
    {"ssh", SCHEMA_SECTION, F(config, ssh), .children = ssh_fields, .doc = "Node access."},
    {"local", SCHEMA_SECTION, F(config, local), .children = local_fields,
     .doc = "Provider local: libvirt."},
    {"kcli", SCHEMA_SECTION, F(config, kcli), .children = kcli_fields, .doc = "Provider kcli."},
    {"kubevirtci", SCHEMA_SECTION, F(config, kubevirtci), .children = kubevirtci_fields,
     .doc = "Provider kubevirtci (gocli)."},
    {"kind", SCHEMA_SECTION, F(config, kind), .children = kind_fields,
     .doc = "Provider kind: kubevirtci's Kind vGPU provider (containers, no render node)."},
    {"webhook", SCHEMA_SECTION, F(config, webhook), .children = webhook_fields,
     .doc = "mesa-injector admission webhook."},
    {"registry", SCHEMA_SECTION, F(config, registry), .children = registry_fields,
     .doc = "Where the images vgpuenv builds are pushed and pulled from."},
    {"kubevirt", SCHEMA_SECTION, F(config, kubevirt), .children = kubevirt_fields,
     .doc = "KubeVirt configuration for the tests."},
    {"deadlines", SCHEMA_SECTION, F(config, deadlines), .children = deadline_fields,
     .doc = "Seconds a long step may take before it is stopped and rolled back (ssh.timeout "
            "is the wait for sshd)."},
    {},
};

void config_init_defaults(struct config *c)
{
        *c = (struct config){
            .name = strdup("vgpuenv"),
            .provider = PROVIDER_LOCAL,
            .gpu = GPU_VIRTIO,
            .nodes = {.count = 1, .cpus = 1, .memory = 1024, .disk = 6, .ctlplanes = 1},
            .image = {.base = strdup(DEBIAN_BASE),
                      .family = FAMILY_AUTO,
                      .profile = PROFILE_NODE,
                      .mirror = strdup("http://deb.debian.org/debian")},
            .network = {.mode = NETWORK_NAT, .subnet = strdup("192.168.123.0/24")},
            .ssh = {.user = strdup("root"), .timeout = 300},
            .local = {.uri = strdup("qemu:///system"), .accel = ACCEL_AUTO},
            .kcli = {.binary = strdup("kcli"),
                     .image = strdup("centos9stream"),
                     .uri = strdup("qemu:///system")},
            .kubevirtci = {.provider = strdup("k8s-1.36")},
            .kind = {.provider = strdup("kind-1.35-vgpu")},
            .webhook = {.deploy = DEPLOY_URL, .mode = WEBHOOK_HOSTPATH},
            .kubevirt = {.configure = true,
                         .launcher_builder = strdup("quay.io/centos/centos:stream9"),
                         .namespace = strdup("kubevirt"),
                         .kubectl = strdup("kubectl")},
            .deadlines = {.kvm_probe = 30,
                          .mmdebstrap = 1800,
                          .appliance_launch = 600,
                          .appliance_call = 1800,
                          .node_command = 900,
                          .module_build = 600,
                          .kubectl = 600,
                          .provider = 3600,
                          .undo = 300,
                          .lock = 30,
                          .image_build = 1800,
                          .rollout = 900},
        };
}

void config_done(struct config *c)
{
        if (!c)
                return;
        schema_free(config_schema, c);
        free(c->path);
        c->path = NULL;
}

/* ---- validation ----------------------------------------------------------- */

struct validator {
        struct config *c;
        const struct schema_marks *marks;
        struct schema_error *err;
        const char *dir; /* directory of the config file, for relative paths */
        bool count_from_env;
};

static int bad(struct validator *v, const char *key, const char *fmt, ...) _printf_(3, 4);
static int bad(struct validator *v, const char *key, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        _cleanup_free_ char *msg = strdup_vprintf(fmt, ap);
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        return schema_error_at(v->err, v->c->path, schema_marks_find(v->marks, key), "%s", msg);
}

static bool name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n < 1 || n > 32 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
                        return false;
        return true;
}

/* "a.b.c.0/24" -> the first three octets; anything else is refused. */
static int parse_subnet(const char *subnet, unsigned char net[4])
{
        const char *slash = strchr(subnet, '/');
        char addr[INET_ADDRSTRLEN];
        struct in_addr a;

        if (!slash || !streq(slash + 1, "24") || (size_t)(slash - subnet) >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, subnet, (size_t)(slash - subnet));
        addr[slash - subnet] = 0;
        if (inet_pton(AF_INET, addr, &a) != 1)
                return -EINVAL;
        memcpy(net, &a.s_addr, 4);
        if (net[3] != 0)
                return -EINVAL;
        return 0;
}

/* Make a path from the file absolute against the config's directory (or
 * $HOME for "~/"), so what `up` records does not depend on the caller's
 * working directory. */
static int absolutize(struct validator *v, char **path)
{
        char *abs;

        if (!*path || (*path)[0] == '/')
                return 0;
        if (startswith(*path, "~/") && !isempty(getenv("HOME")))
                abs = strdup_printf("%s/%s", getenv("HOME"), *path + 2);
        else
                abs = strdup_printf("%s/%s", v->dir, *path);
        if (!abs)
                return -ENOMEM;
        free(*path);
        *path = abs;
        return 0;
}

static int check_path(struct validator *v, const char *key, char **path, bool want_dir,
                      const char *hint)
{
        struct stat st;
        char *real;
        int r = absolutize(v, path);

        if (r < 0)
                return r;
        if (stat(*path, &st) < 0)
                return bad(v, key, "%s: %s '%s': %s%s", key, want_dir ? "directory" : "file", *path,
                           strerror(errno), hint);
        if (want_dir && !S_ISDIR(st.st_mode))
                return bad(v, key, "%s: '%s' is not a directory", key, *path);
        if (!want_dir && !S_ISREG(st.st_mode))
                return bad(v, key, "%s: '%s' is not a regular file%s", key, *path, hint);
        real = realpath(*path, NULL);
        if (!real)
                return -ENOMEM;
        free(*path);
        *path = real;
        return 0;
}

/* What the config asks of each provider's own section: the checkout it
 * needs (kubevirtci.dir, kind.dir), where kubevirtci's KUBEVIRT_PROVIDER
 * override goes, and what vgpu: auto means (kind runs KubeVirt in
 * containers on this host, whose vfio display is the region one;
 * docs/vgpu.md). A table, so no provider is compared by name here. */
struct provider_section {
        const char *name;
        const char *dir_key;      /* required checkout, or NULL */
        size_t dir;               /* offset of that char * in struct config */
        size_t kubevirt_provider; /* offset of the char * KUBEVIRT_PROVIDER sets, or 0 */
        enum vgpu_mode vgpu_auto;
};

static const struct provider_section provider_sections[] = {
    [PROVIDER_LOCAL] = {.name = "local", .vgpu_auto = VGPU_DMABUF},
    [PROVIDER_KCLI] = {.name = "kcli", .vgpu_auto = VGPU_DMABUF},
    [PROVIDER_KUBEVIRTCI] = {.name = "kubevirtci",
                             .dir_key = "kubevirtci.dir",
                             .dir = offsetof(struct config, kubevirtci.dir),
                             .kubevirt_provider = offsetof(struct config, kubevirtci.provider),
                             .vgpu_auto = VGPU_DMABUF},
    [PROVIDER_KIND] = {.name = "kind",
                       .dir_key = "kind.dir",
                       .dir = offsetof(struct config, kind.dir),
                       .kubevirt_provider = offsetof(struct config, kind.provider),
                       .vgpu_auto = VGPU_REGION},
};

static const struct provider_section *section_of(const struct config *c)
{
        return &provider_sections[c->provider];
}

static char **field_at(const struct config *c, size_t offset)
{
        return (char **)((char *)c + offset);
}

static int validate(struct validator *v)
{
        struct config *c = v->c;
        unsigned char net[4];
        int r;

        if (!name_valid(c->name))
                return bad(v, "name",
                           "name '%s' is invalid: use 1 to 32 of a-z, 0-9 and '-', not starting "
                           "or ending with '-'",
                           c->name);
        if (parse_subnet(c->network.subnet, net) < 0)
                return bad(v, "network.subnet",
                           "network.subnet must be an IPv4 /24 in CIDR notation "
                           "(e.g. 192.168.123.0/24), got '%s'",
                           c->network.subnet);
        /* Defensive: count is capped well below this today, but the address
         * plan must never wrap into the broadcast address. */
        if (FIRST_NODE_OCTET + c->nodes.count > 255)
                return bad(v, "nodes.count",
                           "nodes.count %u does not fit in %s (nodes start at .%d)", c->nodes.count,
                           c->network.subnet, FIRST_NODE_OCTET);
        if (c->nodes.ctlplanes > c->nodes.count)
                return bad(v,
                           schema_marks_find(v->marks, "nodes.ctlplanes").line ? "nodes.ctlplanes"
                                                                               : "nodes.count",
                           "nodes.ctlplanes (%u) must not exceed nodes.count (%u%s)",
                           c->nodes.ctlplanes, c->nodes.count,
                           v->count_from_env ? ", from KUBEVIRT_NUM_NODES" : "");
        if (!streq(c->image.base, DEBIAN_BASE)) {
                r = check_path(v, "image.base", &c->image.base, false,
                               " (use debian-bookworm or the path of a qcow2 image)");
                if (r < 0)
                        return r;
        }
        if (c->mesa.local_dir) {
                r = check_path(v, "mesa.local_dir", &c->mesa.local_dir, true, "");
                if (r < 0)
                        return r;
        }
        const struct provider_section *ps = section_of(c);
        if (ps->dir_key && isempty(*field_at(c, ps->dir)))
                return bad(v, "provider", "%s is required when provider is %s", ps->dir_key,
                           ps->name);
        if (c->webhook.deploy == DEPLOY_URL && c->webhook.url &&
            !startswith(c->webhook.url, "https://"))
                return bad(v, "webhook.url",
                           "webhook.url must start with https:// (the API server calls webhooks "
                           "over TLS only), got '%s'",
                           c->webhook.url);
        if ((c->webhook.build_image || c->kubevirt.launcher_gl) && isempty(c->registry.push))
                return bad(v,
                           c->webhook.build_image ? "webhook.build_image" : "kubevirt.launcher_gl",
                           "%s pushes an image: set registry.push (HOST:PORT this host pushes "
                           "to; `auto` for the provider's own registry) and, when the nodes "
                           "name it otherwise, registry.pull",
                           c->webhook.build_image ? "webhook.build_image" : "kubevirt.launcher_gl");
        char **paths[] = {&c->ssh.key, &c->kubevirtci.dir, &c->kind.dir, &c->webhook.config};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                r = absolutize(v, paths[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Environment overrides kubevirtci's own scripts honour, so a user's
 * `KUBEVIRT_NUM_NODES=2 make cluster-up` habit keeps working. */
static int apply_env(struct validator *v)
{
        struct config *c = v->c;
        const char *e = getenv("KUBEVIRT_NUM_NODES");

        if (!isempty(e)) {
                unsigned long long n;
                if (parse_uint64(e, 1, MAX_NODES, &n) < 0)
                        return schema_error_at(v->err, "KUBEVIRT_NUM_NODES", (struct schema_mark){},
                                               "nodes.count must be between 1 and %d, got '%s'",
                                               MAX_NODES, e);
                c->nodes.count = (unsigned)n;
                v->count_from_env = true;
        }
        e = getenv("KUBEVIRT_PROVIDER");
        size_t kp = section_of(c)->kubevirt_provider;
        if (!isempty(e) && kp) {
                char **p = field_at(c, kp);
                char *s = strdup(e);
                if (!s)
                        return -ENOMEM;
                free(*p);
                *p = s;
        }
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct schema_marks *, schema_marks_free)

int config_load_quiet(struct config *c, const char *path, char **ret_error)
{
        struct schema_error err = {};
        _cleanup_(schema_marks_freep) struct schema_marks *marks = NULL;
        _cleanup_free_ char *abs = NULL;
        int r;

        *ret_error = NULL;
        config_init_defaults(c);
        if (!c->name || !c->image.base || !c->image.mirror || !c->network.subnet || !c->ssh.user ||
            !c->local.uri || !c->kcli.binary || !c->kcli.image || !c->kcli.uri ||
            !c->kubevirtci.provider || !c->kind.provider || !c->kubevirt.namespace ||
            !c->kubevirt.kubectl)
                return -ENOMEM;
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;
        r = schema_load_with_marks(config_schema, c, path, NULL, &err, &marks);
        if (r >= 0) {
                abs = realpath(path, NULL);
                if (!abs)
                        r = negative_errno();
        }
        if (r >= 0) {
                struct validator v = {.c = c, .marks = marks, .err = &err, .dir = dirname(abs)};
                r = apply_env(&v);
                if (r >= 0)
                        r = validate(&v);
        }
        if (r < 0) {
                *ret_error = err.message ? schema_error_format(&err)
                                         : strdup_printf("%s: %s", path, strerror(-r));
                schema_error_done(&err);
                return r;
        }
        return 0;
}

int config_load(struct config *c, const char *path)
{
        _cleanup_free_ char *msg = NULL;
        int r = config_load_quiet(c, path, &msg);

        if (r < 0)
                return log_error_errno(r, "%s", msg ? msg : "out of memory");
        return 0;
}

enum vgpu_mode config_vgpu_mode(const struct config *c)
{
        if (c->vgpu != VGPU_AUTO)
                return c->vgpu;
        return section_of(c)->vgpu_auto;
}

char **config_mesa_packages(const struct config *c, enum distro_family family)
{
        if (c->mesa.packages)
                return c->mesa.packages;
        /* The lists are never written through; the cast only matches the
         * header's char ** so callers can pass it to strv helpers. */
        return (char **)(family == FAMILY_RHEL ? rhel_mesa : debian_mesa);
}

enum distro_family config_image_family(const struct config *c)
{
        static const char *const rhel_like[] = {"centos", "fedora", "rhel",
                                                "rocky",  "alma",   "stream"};
        const char *base;

        if (c->image.family != FAMILY_AUTO)
                return c->image.family;
        if (streq(c->image.base, DEBIAN_BASE))
                return FAMILY_DEBIAN;
        base = strrchr(c->image.base, '/');
        base = base ? base + 1 : c->image.base;
        for (size_t i = 0; i < ELEMENTSOF(rhel_like); i++)
                if (strcasestr(base, rhel_like[i]))
                        return FAMILY_RHEL;
        return FAMILY_AUTO;
}

static char *ip_in_subnet(const struct config *c, unsigned octet)
{
        unsigned char net[4];

        if (octet > 254 || parse_subnet(c->network.subnet, net) < 0)
                return NULL;
        return strdup_printf("%u.%u.%u.%u", net[0], net[1], net[2], octet);
}

char *config_node_ip(const struct config *c, unsigned i)
{
        return ip_in_subnet(c, FIRST_NODE_OCTET + i);
}

char *config_host_ip(const struct config *c)
{
        return ip_in_subnet(c, 1);
}

char *config_node_name(const struct config *c, unsigned i)
{
        return strdup_printf("%s-node%u", c->name, i + 1);
}

int config_print_reference(FILE *out)
{
        struct config d;

        config_init_defaults(&d);
        schema_print_reference_defaults(config_schema, &d, out);
        config_done(&d);
        return ferror(out) ? -EIO : 0;
}
