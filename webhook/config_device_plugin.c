/* The devicePlugin section of mesa-injector's configuration: the schema, the
 * defaults and the checks (file:line:column) for the resource name, the
 * device glob and the socket. The resource-name rule mirrors the kubelet's
 * Register check, IsExtendedResourceName (kubernetes v1.36.3,
 * pkg/apis/core/v1/helper/helpers.go, with apimachinery's label-key rule),
 * plus one of ours: no nvidia.com/ name (KubeVirt's MediatedDevices suite,
 * tests/mdev_configuration_allocation_test.go noGPUDevicesAreAvailable,
 * waits for the first nvidia.com/ capacity key of the node to drop to 0). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "webhook/config.h"

#define F(m) offsetof(struct injector_device_plugin, m)

const struct schema_field device_plugin_fields[] = {
    {.key = "enabled",
     .type = SCHEMA_BOOL,
     .offset = F(enabled),
     .doc = "the webhook requests the resource and manifests run the plugin's DaemonSet"},
    {.key = "daemonSet",
     .type = SCHEMA_BOOL,
     .offset = F(daemon_set),
     .doc = "manifests print the plugin's DaemonSet (false: it runs on the nodes another way)"},
    {.key = "resourceName",
     .type = SCHEMA_STRING,
     .offset = F(resource_name),
     .doc = "extended resource the render nodes are advertised as (never nvidia.com/...)"},
    {.key = "sharesPerNode",
     .type = SCHEMA_UINT,
     .offset = F(shares),
     .min = 1,
     .max = 1000,
     .doc = "devices advertised per render node: how many containers may share one"},
    {.key = "deviceGlob",
     .type = SCHEMA_STRING,
     .offset = F(device_glob),
     .doc = "host paths of the render nodes; wildcards only in the last component"},
    {.key = "deviceRoot",
     .type = SCHEMA_STRING,
     .offset = F(device_root),
     .doc = "where the plugin sees the host's / (empty: host paths as they are)"},
    {.key = "socketDir",
     .type = SCHEMA_STRING,
     .offset = F(socket_dir),
     .doc = "the kubelet's device plugin directory (holds kubelet.sock)"},
    {.key = "socketName",
     .type = SCHEMA_STRING,
     .offset = F(socket_name),
     .doc = "the plugin's socket in socketDir"},
    {.key = "registerTimeoutSeconds",
     .type = SCHEMA_UINT,
     .offset = F(register_timeout_s),
     .min = 1,
     .max = 300,
     .doc = "deadline of one Register call to the kubelet"},
    {.key = "nodeSelector",
     .type = SCHEMA_MAP,
     .offset = F(node_selector),
     .doc = "nodes the DaemonSet runs on (default: those whose render-node probe passed)"},
    {}};

int device_plugin_config_defaults(struct injector_device_plugin *d)
{
        *d = (struct injector_device_plugin){
            .enabled = true,
            .daemon_set = true,
            /* The kubelet's default maxPods: the resource never limits how
             * many launchers a node runs. */
            .shares = 110,
            .register_timeout_s = 10,
            .resource_name = strdup(VGPUENV_CDI_KIND),
            .device_glob = strdup("/dev/dri/renderD*"),
            .device_root = strdup(""),
            .socket_dir = strdup("/var/lib/kubelet/device-plugins"),
            .socket_name = strdup("vgpuenv-render.sock"),
            .node_selector = strv_copy((char *const[]){VGPUENV_NODE_LABEL, NULL}),
        };
        return d->resource_name && d->device_glob && d->device_root && d->socket_dir &&
                       d->socket_name && d->node_selector
                   ? 0
                   : -ENOMEM;
}

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 subdomain, lower case, at most 253 characters. */
static bool dns_subdomain(const char *s, size_t n)
{
        if (n == 0 || n > 253)
                return false;
        size_t label = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
                if (label == 0 && c == '-')
                        return false;
                label++;
        }
        return label > 0 && s[n - 1] != '-';
}

/* The name part of a label key: 1..63 of [A-Za-z0-9_.-], alphanumeric at
 * both ends. */
static bool qualified_name_part(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
                        return false;
        return true;
}

const char *resource_name_problem(const char *name)
{
        if (isempty(name))
                return "must not be empty";
        const char *slash = strchr(name, '/');
        /* Unprefixed names are kubernetes.io/ ones: native, not extended. */
        if (!slash || strstr(name, "kubernetes.io/"))
                return "must be domain/name outside kubernetes.io (an extended resource name)";
        if (startswith(name, "requests."))
                return "must not start with requests.";
        if (strchr(slash + 1, '/'))
                return "must contain exactly one '/'";
        /* The kubelet checks "requests." + name as a qualified name. */
        if (!dns_subdomain(name, (size_t)(slash - name)) ||
            (size_t)(slash - name) + strlen("requests.") > 253)
                return "domain must be a lower-case DNS subdomain (RFC 1123)";
        if (!qualified_name_part(slash + 1))
                return "name must be 1-63 characters [A-Za-z0-9_.-], alphanumeric at both ends";
        if (startswith(name, "nvidia.com/"))
                return "must not be nvidia.com/...: KubeVirt's MediatedDevices tests wait for the "
                       "node's first nvidia.com/ capacity to drop to 0";
        return NULL;
}

static int bad(const struct injector_config *c, const struct schema_marks *marks, const char *key,
               const char *fmt, const char *value, const char *why)
{
        _cleanup_free_ char *dotted = strdup_printf("devicePlugin.%s", key);
        struct schema_mark m =
            marks && dotted ? schema_marks_find_value(marks, dotted) : (struct schema_mark){};
        _cleanup_free_ char *msg = strdup_printf(fmt, value, why);
        const char *src = c->source ? c->source : "<defaults>";
        if (m.line)
                log_error("%s:%u:%u: devicePlugin.%s %s", src, m.line, m.column, key,
                          msg ? msg : "is invalid");
        else
                log_error("%s: devicePlugin.%s %s", src, key, msg ? msg : "is invalid");
        return -EINVAL;
}

/* Absolute, no "." or ".." component, wildcards only in the last one. */
static const char *glob_problem(const char *g)
{
        if (isempty(g) || g[0] != '/')
                return "must be an absolute path";
        const char *last = strrchr(g, '/');
        if (!last[1])
                return "must name files, not a directory";
        if (strpbrk(g, "*?[") && strpbrk(g, "*?[") < last)
                return "may have wildcards only in its last component";
        for (const char *p = g; (p = strchr(p, '/')); p++) {
                size_t n = strcspn(p + 1, "/");
                if ((n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
                        return "must not contain . or .. components";
        }
        return NULL;
}

int device_plugin_config_check(const struct injector_config *c, const struct schema_marks *marks)
{
        const struct injector_device_plugin *d = &c->device_plugin;
        const char *why = resource_name_problem(d->resource_name);
        if (why)
                return bad(c, marks, "resourceName", "'%s' %s", d->resource_name, why);
        if ((why = glob_problem(d->device_glob)))
                return bad(c, marks, "deviceGlob", "'%s' %s", d->device_glob, why);
        if (!isempty(d->device_root) && d->device_root[0] != '/')
                return bad(c, marks, "deviceRoot", "'%s' %s", d->device_root,
                           "must be empty or an absolute path");
        if (isempty(d->socket_dir) || d->socket_dir[0] != '/')
                return bad(c, marks, "socketDir", "'%s' %s", d->socket_dir ? d->socket_dir : "",
                           "must be an absolute path");
        const char *n = d->socket_name ? d->socket_name : "";
        if (!*n || strchr(n, '/') || n[0] == '.' || streq(n, "kubelet.sock"))
                return bad(c, marks, "socketName", "'%s' %s", n,
                           "must be a file name other than kubelet.sock");
        /* sun_path holds 108 bytes with the NUL; both sockets live in socketDir. */
        size_t longest = strlen(n) > strlen("kubelet.sock") ? strlen(n) : strlen("kubelet.sock");
        if (strlen(d->socket_dir) + 1 + longest >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return bad(c, marks, "socketDir", "'%s' %s", d->socket_dir,
                           "is too long for a unix socket path with socketName");
        return 0;
}
