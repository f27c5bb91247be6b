/* mesa-injector configuration: schema table, defaults, library profiles and
 * the hostPath allowlist check (a path outside the allowlist is a config
 * error that points at the offending line). */
#include "webhook/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "webhook/patch.h"

static const char *const mode_values[] = {"hostpath", "cdi", NULL};
static const char *const profile_values[] = {"debian", "rhel", "none", NULL};
static const char *const failure_values[] = {"Ignore", "Fail", NULL};
static const char *const conflict_values[] = {"deny", "allow", NULL};

#define F(s, m) offsetof(s, m)

static const struct schema_field selector_fields[] = {
    {.key = "labels",
     .type = SCHEMA_MAP,
     .offset = F(struct injector_selector, labels),
     .doc = "pod labels that must all match (default kubevirt.io: virt-launcher)"},
    {.key = "namespaces",
     .type = SCHEMA_STRV,
     .offset = F(struct injector_selector, namespaces),
     .doc = "namespaces to mutate; empty means any"},
    {.key = "excludeNamespaces",
     .type = SCHEMA_STRV,
     .offset = F(struct injector_selector, exclude_namespaces),
     .doc = "namespaces never mutated (kube-system and the webhook's own are always added)"},
    {}};

static const struct schema_field host_path_fields[] = {
    {.key = "path",
     .type = SCHEMA_STRING,
     .offset = F(struct host_path, path),
     .required = true,
     .doc = "absolute path on the node; must be under allowedHostPathPrefixes"},
    {.key = "containerPath",
     .type = SCHEMA_STRING,
     .offset = F(struct host_path, container_path),
     .doc = "mount point in the container (default: same as path)"},
    {.key = "type",
     .type = SCHEMA_STRING,
     .offset = F(struct host_path, type),
     .doc = "hostPath type: File, Directory, CharDevice... (default: none)"},
    {}};

static const struct schema_field cdi_fields[] = {
    {.key = "vendor",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_cdi, vendor),
     .doc = "CDI vendor"},
    {.key = "class",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_cdi, class),
     .doc = "CDI class; a device is vendor/class=<render node name>"},
    {.key = "specPath",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_cdi, spec_path),
     .doc = "where nodes keep the CDI spec file"},
    {}};

static const struct schema_field deploy_fields[] = {
    {.key = "namespace",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_deploy, namespace),
     .doc = "webhook namespace"},
    {.key = "service",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_deploy, service),
     .doc = "Service name"},
    {.key = "image",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_deploy, image),
     .doc = "container image"},
    {.key = "port",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_deploy, port),
     .min = 1,
     .max = 65535,
     .doc = "HTTPS port of the webhook"},
    {.key = "certSecret",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_deploy, cert_secret),
     .doc = "Secret with tls.crt/tls.key"},
    {}};

static const struct schema_field limit_fields[] = {
    {.key = "maxBodyBytes",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, max_body_bytes),
     .min = 1024,
     .max = 64u << 20,
     .doc = "largest AdmissionReview accepted (default 3 MiB)"},
    {.key = "maxBufferedBytes",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, max_buffered_bytes),
     .min = 65536,
     .max = 1u << 30,
     .doc = "request bodies held at once over all connections; beyond, connections are closed"},
    {.key = "connectionLimit",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, connection_limit),
     .min = 1,
     .max = 65535,
     .doc = "concurrent connections"},
    {.key = "connectionTimeoutSeconds",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, connection_timeout_s),
     .min = 1,
     .max = 3600,
     .doc = "idle time before a connection is closed"},
    {.key = "requestTimeoutSeconds",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, request_timeout_s),
     .min = 1,
     .max = 3600,
     .doc = "a request body must arrive within this time"},
    {.key = "threads",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, threads),
     .min = 1,
     .max = 64,
     .doc = "worker threads, each with its own listening socket (SO_REUSEPORT)"},
    {.key = "certPollMilliseconds",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, cert_poll_ms),
     .min = 50,
     .max = 600000,
     .doc = "how often cert/key files are checked for changes"},
    {.key = "shutdownGraceSeconds",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, shutdown_grace_s),
     .min = 0,
     .max = 600,
     .doc = "SIGTERM: time in-flight requests get to finish"},
    /* Hostile clients: see webhook/conn_guard.h. */
    {.key = "handshakeTimeoutSeconds",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, handshake_timeout_s),
     .min = 1,
     .max = 60,
     .doc = "a TLS handshake must be done within this time after connecting"},
    {.key = "connectionsPerSource",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, connections_per_source),
     .min = 1,
     .max = 65535,
     .doc = "concurrent connections from one source address; beyond, closed at accept"},
    {.key = "connectionMemoryBytes",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, connection_memory_bytes),
     .min = 8192,
     .max = 1u << 20,
     .doc = "memory per connection for its request line, headers and read buffer"},
    {.key = "bufferedBytesPerSource",
     .type = SCHEMA_UINT,
     .offset = F(struct injector_limits, buffered_bytes_per_source),
     .min = 65536,
     .max = 1u << 30,
     .doc = "request bodies held at once from one source address; beyond, closed"},
    {}};

const struct schema_field injector_config_schema[] = {
    {.key = "selector",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, selector),
     .children = selector_fields,
     .doc = "which pods are mutated"},
    {.key = "targetContainer",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_config, target_container),
     .doc = "container that gets the mounts (default compute)"},
    {.key = "mode",
     .type = SCHEMA_ENUM,
     .offset = F(struct injector_config, mode),
     .enum_values = mode_values,
     .doc = "hostpath: libraries as read-only hostPath volumes; cdi: the libraries come from the "
            "node's CDI spec, named by the device plugin"},
    {.key = "libraryProfile",
     .type = SCHEMA_ENUM,
     .offset = F(struct injector_config, library_profile),
     .enum_values = profile_values,
     .doc = "mesa library set of the node OS (none: only hostPaths)"},
    {.key = "hostPaths",
     .type = SCHEMA_LIST,
     .offset = F(struct injector_config, host_paths),
     .count_offset = F(struct injector_config, n_host_paths),
     .elem_size = sizeof(struct host_path),
     .children = host_path_fields,
     .doc = "extra host paths to mount"},
    {.key = "allowedHostPathPrefixes",
     .type = SCHEMA_STRV,
     .offset = F(struct injector_config, allowed_prefixes),
     .doc = "every host path must be under one of these"},
    {.key = "renderNode",
     .type = SCHEMA_STRING,
     .offset = F(struct injector_config, render_node),
     .doc = "DRM render node used by QEMU's egl-headless display"},
    {.key = "cdi",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, cdi),
     .children = cdi_fields,
     .doc = "CDI device naming (mode cdi)"},
    {.key = "devicePlugin",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, device_plugin),
     .children = device_plugin_fields,
     .doc = "the device plugin that hands the render node to the target container"},
    {.key = "vmiHook",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, vmi_hook),
     .children = vmi_hook_fields,
     .doc = "onDefineDomain hook for VMIs"},
    {.key = "failurePolicy",
     .type = SCHEMA_ENUM,
     .offset = F(struct injector_config, failure_policy),
     .enum_values = failure_values,
     .doc = "MutatingWebhookConfiguration failurePolicy"},
    {.key = "onConflict",
     .type = SCHEMA_ENUM,
     .offset = F(struct injector_config, on_conflict),
     .enum_values = conflict_values,
     .doc = "a pod volume/mount clashes with ours: deny the pod (default) or allow it unmodified"},
    {.key = "deploy",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, deploy),
     .children = deploy_fields,
     .doc = "in-cluster deployment"},
    {.key = "limits",
     .type = SCHEMA_SECTION,
     .offset = F(struct injector_config, limits),
     .children = limit_fields,
     .doc = "server limits"},
    {}};

/* The libraries QEMU's egl-headless display pulls in (libepoxy dlopens
 * libEGL/libGL; glvnd dispatches to Mesa's vendor library, which loads the
 * DRI driver), with their non-glibc dependencies as measured with ldd on
 * Debian 12 (mesa 22.3) and CentOS Stream 9. Both families need the
 * GL/EGL/GBM stack and its X/wayland/drm dependencies. */
static const char *const mesa_files[] = {
    "libGL.so.1",
    "libEGL.so.1",
    "libGLESv2.so.2",
    "libGLX.so.0",
    "libOpenGL.so.0",
    "libGLdispatch.so.0",
    "libEGL_mesa.so.0",
    "libGLX_mesa.so.0",
    "libgbm.so.1",
    "libglapi.so.0",
    "libdrm.so.2",
    "libdrm_amdgpu.so.1",
    "libdrm_intel.so.1",
    "libdrm_nouveau.so.2",
    "libdrm_radeon.so.1",
    "libwayland-client.so.0",
    "libwayland-server.so.0",
    "libX11.so.6",
    "libX11-xcb.so.1",
    "libxcb.so.1",
    "libxcb-dri2.so.0",
    "libxcb-dri3.so.0",
    "libxcb-glx.so.0",
    "libxcb-present.so.0",
    "libxcb-randr.so.0",
    "libxcb-shm.so.0",
    "libxcb-sync.so.1",
    "libxcb-xfixes.so.0",
    "libXau.so.6",
    "libXext.so.6",
    "libXfixes.so.3",
    "libXxf86vm.so.1",
    "libxshmfence.so.1",
    "libpciaccess.so.0",
    NULL,
};
/* Debian's mesa also links these (LLVM for llvmpipe, and their own
 * dependencies); RHEL's resolve them from elsewhere or statically. */
static const char *const debian_only_files[] = {
    "libexpat.so.1",
    "libffi.so.8",
    "libXdmcp.so.6",
    "libbsd.so.0",
    "libmd.so.0",
    "libLLVM-15.so.1",
    "libsensors.so.5",
    "libelf.so.1",
    "libz3.so.4",
    "libedit.so.2",
    "libtinfo.so.6",
    "libxml2.so.2",
    "libicuuc.so.72",
    "libicudata.so.72",
    "libzstd.so.1",
    "liblzma.so.5",
    "libz.so.1",
    "libstdc++.so.6",
    NULL,
};

static int add_resolved(struct injector_config *c, const char *path, const char *cpath,
                        const char *type)
{
        /* The same mount point twice would be a duplicate mount: first wins. */
        for (size_t i = 0; i < c->n_resolved; i++)
                if (streq(c->resolved[i].container_path, cpath ? cpath : path))
                        return 0;
        struct host_path *n = realloc(c->resolved, (c->n_resolved + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->resolved = n;
        n[c->n_resolved] = (struct host_path){
            .path = strdup(path),
            .container_path = strdup(cpath ? cpath : path),
            .type = type ? strdup(type) : NULL,
        };
        if (!n[c->n_resolved].path || !n[c->n_resolved].container_path ||
            (type && !n[c->n_resolved].type))
                return -ENOMEM;
        c->n_resolved++;
        return 0;
}

static int add_files(struct injector_config *c, const char *libdir, const char *const *files)
{
        for (const char *const *f = files; f && *f; f++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", libdir, *f);
                int r;
                if (!p)
                        return -ENOMEM;
                r = add_resolved(c, p, NULL, "File");
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_profile(struct injector_config *c, const char *libdir, const char *const *extra)
{
        int r = add_files(c, libdir, mesa_files);

        if (r >= 0)
                r = add_files(c, libdir, extra);
        if (r < 0)
                return r;
        _cleanup_free_ char *dri = strdup_printf("%s/dri", libdir);
        if (!dri)
                return -ENOMEM;
        r = add_resolved(c, dri, NULL, "Directory");
        if (r < 0)
                return r;
        /* Not /usr/share/drirc.d: Mesa runs without it, and a hostPath type
         * that creates it would write to the node. */
        return add_resolved(c, "/usr/share/glvnd/egl_vendor.d", NULL, "Directory");
}

static int set_default_str(char **p, const char *v)
{
        if (*p)
                return 0;
        *p = strdup(v);
        return *p ? 0 : -ENOMEM;
}

/* CDI names come from the contract with node setup, which writes the spec
 * file on every node (provision/cdi_contract.h). */
static int set_default_cdi(struct injector_config *c)
{
        const char *kind = VGPUENV_CDI_KIND, *slash = strchr(kind, '/');

        c->cdi.vendor = strndup(kind, (size_t)(slash - kind));
        c->cdi.class = strdup(slash + 1);
        c->cdi.spec_path = strdup(VGPUENV_CDI_SPEC_PATH);
        return c->cdi.vendor && c->cdi.class && c->cdi.spec_path ? 0 : -ENOMEM;
}

static int config_defaults(struct injector_config *c)
{
        static const char *const prefixes[] = {
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/share/glvnd",
            "/usr/share/drirc.d",        "/dev/dri",   NULL};
        *c = (struct injector_config){
            .mode = MODE_HOSTPATH,
            .library_profile = PROFILE_DEBIAN,
            .failure_policy = FAILURE_IGNORE,
            .on_conflict = CONFLICT_DENY,
            .deploy.port = 8443,
            .limits = {.max_body_bytes = 3u << 20,
                       .max_buffered_bytes = 32u << 20,
                       .connection_limit = 256,
                       .connection_timeout_s = 10,
                       .request_timeout_s = 10,
                       .threads = 2,
                       .cert_poll_ms = 1000,
                       .shutdown_grace_s = 20,
                       .handshake_timeout_s = 3,
                       .connections_per_source = 64,
                       .connection_memory_bytes = 32768,
                       .buffered_bytes_per_source = 8u << 20},
        };
        c->selector.labels = strv_copy((char *const[]){"kubevirt.io=virt-launcher", NULL});
        c->allowed_prefixes = strv_copy((char *const *)prefixes);
        if (!c->selector.labels || !c->allowed_prefixes ||
            vmi_hook_config_defaults(&c->vmi_hook) < 0 ||
            device_plugin_config_defaults(&c->device_plugin) < 0)
                return -ENOMEM;
        if (set_default_str(&c->target_container, "compute") < 0 ||
            set_default_str(&c->render_node, VGPUENV_RENDER_NODE) < 0 || set_default_cdi(c) < 0 ||
            set_default_str(&c->deploy.namespace, "mesa-injector") < 0 ||
            set_default_str(&c->deploy.service, "mesa-injector") < 0 ||
            set_default_str(&c->deploy.image, "localhost/vgpuenv/mesa-injector:latest") < 0 ||
            set_default_str(&c->deploy.cert_secret, "mesa-injector-tls") < 0)
                return -ENOMEM;
        return 0;
}

bool path_allowed(const char *path, char *const *prefixes)
{
        if (!path || path[0] != '/')
                return false;
        /* No "." or ".." components: the kubelet does not normalise them and a
         * prefix check on an unnormalised path proves nothing. */
        for (const char *p = path; (p = strchr(p, '/')); p++) {
                const char *c = p + 1;
                size_t n = strcspn(c, "/");
                if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
        }
        for (char *const *q = prefixes; q && *q; q++) {
                size_t n = strlen(*q);
                while (n > 1 && (*q)[n - 1] == '/')
                        n--;
                if (strncmp(path, *q, n) == 0 && (path[n] == '\0' || path[n] == '/'))
                        return true;
        }
        return false;
}

char *host_path_volume_name(const char *path)
{
        /* "mesa-" + the path as a DNS-1123 label; long ones are cut and get a
         * hash suffix so distinct paths never share a name. */
        char buf[128];
        size_t n = 0;
        bool dash = true;

        n = (size_t)snprintf(buf, sizeof(buf), "mesa-");
        for (const char *p = path; *p && n < sizeof(buf) - 1; p++) {
                char ch = *p;
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char)(ch - 'A' + 'a');
                if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
                        buf[n++] = ch;
                        dash = false;
                } else if (!dash) {
                        buf[n++] = '-';
                        dash = true;
                }
        }
        while (n > 0 && buf[n - 1] == '-')
                n--;
        buf[n] = '\0';
        if (n <= 63)
                return strdup(buf);
        char hex[65];
        if (sha256_hex(path, strlen(path), hex) < 0)
                return NULL;
        buf[54] = '\0';
        while (buf[strlen(buf) - 1] == '-')
                buf[strlen(buf) - 1] = '\0';
        return strdup_printf("%s-%.8s", buf, hex);
}

const char *failure_policy_name(int p)
{
        return failure_values[p == FAILURE_FAIL ? 1 : 0];
}

static int check_path(const struct injector_config *c, const char *path, const char *what,
                      struct schema_marks *marks, const char *mark_key)
{
        if (path_allowed(path, c->allowed_prefixes))
                return 0;
        struct schema_mark m =
            marks && mark_key ? schema_marks_find_value(marks, mark_key) : (struct schema_mark){};
        _cleanup_free_ char *allowed = strv_join(c->allowed_prefixes, ", ");
        log_error("%s:%u:%u: %s '%s' is not under allowedHostPathPrefixes (%s)",
                  c->source ? c->source : "<defaults>", m.line, m.column, what,
                  path ? path : "(null)", allowed ? allowed : "");
        return -EINVAL;
}

static struct schema_mark find_list_mark(struct schema_marks *marks, size_t i, const char *sub)
{
        _cleanup_free_ char *key = strdup_printf("hostPaths[%zu].%s", i, sub);
        struct schema_mark m = key ? schema_marks_find_value(marks, key) : (struct schema_mark){};
        return m.line ? m : schema_marks_find(marks, "hostPaths");
}

static char *json_print(cJSON *o)
{
        char *s = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        return s;
}

/* Volume name and the JSON of the volume and the mount, rendered once. */
static int render_resolved(struct host_path *h)
{
        h->name = host_path_volume_name(h->path);
        if (!h->name)
                return -ENOMEM;
        h->name_hash = string_hash(h->name);
        h->container_path_hash = string_hash(h->container_path);
        cJSON *v = cJSON_CreateObject(), *hp = NULL;
        if (v) {
                cJSON_AddStringToObject(v, "name", h->name);
                hp = cJSON_AddObjectToObject(v, "hostPath");
        }
        if (hp) {
                cJSON_AddStringToObject(hp, "path", h->path);
                if (h->type && *h->type)
                        cJSON_AddStringToObject(hp, "type", h->type);
        }
        h->volume_json = json_print(v);
        cJSON *m = cJSON_CreateObject();
        if (m) {
                cJSON_AddStringToObject(m, "name", h->name);
                cJSON_AddStringToObject(m, "mountPath", h->container_path);
                cJSON_AddTrueToObject(m, "readOnly");
        }
        h->mount_json = json_print(m);
        return h->volume_json && h->mount_json ? 0 : -ENOMEM;
}

int injector_config_load(struct injector_config *c, const char *file, const char *text)
{
        return injector_config_load_with(c, file, text, NULL);
}

int library_profile_from_name(const char *name)
{
        for (int i = 0; profile_values[i]; i++)
                if (streq(profile_values[i], name))
                        return i;
        return -1;
}

/* Command-line values win over the file's (and are checked like them). */
static int apply_overrides(struct injector_config *c, const struct injector_overrides *o)
{
        if (!o)
                return 0;
        if (o->library_profile) {
                int p = library_profile_from_name(o->library_profile);
                if (p < 0)
                        return log_error_errno(-EINVAL,
                                               "--library-profile must be debian, rhel or none, "
                                               "not '%s'",
                                               o->library_profile);
                c->library_profile = p;
        }
        if (o->image) {
                free(c->deploy.image);
                if (!(c->deploy.image = strdup(o->image)))
                        return -ENOMEM;
        }
        return 0;
}

static const char *source_name(const struct injector_config *c)
{
        return c->source ? c->source : "<defaults>";
}

/* hostPaths: absolute, under allowedHostPathPrefixes, then resolved. */
static int resolve_host_paths(struct injector_config *c, struct schema_marks *marks)
{
        for (size_t i = 0; i < c->n_host_paths; i++) {
                const struct host_path *h = &c->host_paths[i];
                struct schema_mark m =
                    marks ? find_list_mark(marks, i, "path") : (struct schema_mark){};
                if (!h->path || h->path[0] != '/' ||
                    (h->container_path && h->container_path[0] != '/'))
                        return log_error_errno(
                            -EINVAL,
                            "%s:%u:%u: hostPaths[%zu]: path and containerPath must be absolute",
                            source_name(c), m.line, m.column, i);
                if (!path_allowed(h->path, c->allowed_prefixes)) {
                        _cleanup_free_ char *allowed = strv_join(c->allowed_prefixes, ", ");
                        return log_error_errno(-EINVAL,
                                               "%s:%u:%u: hostPaths[%zu].path '%s' is not under "
                                               "allowedHostPathPrefixes (%s)",
                                               source_name(c), m.line, m.column, i, h->path,
                                               allowed ? allowed : "");
                }
                int r = add_resolved(c, h->path, h->container_path, h->type);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_render_node(const struct injector_config *c, struct schema_marks *marks)
{
        /* QEMU opens the render node by this path (the hook script and the
         * domain XML name it); the device plugin, not a hostPath, puts it in
         * the container. */
        int r = check_path(c, c->render_node, "renderNode", marks, "renderNode");
        if (r < 0)
                return r;
        /* It is pasted into the hook script and the domain XML. */
        if (c->render_node[strspn(
                c->render_node,
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-")]) {
                struct schema_mark m =
                    marks ? schema_marks_find_value(marks, "renderNode") : (struct schema_mark){};
                return log_error_errno(-EINVAL,
                                       "%s:%u:%u: renderNode '%s' may only contain letters, "
                                       "digits, '/', '_', '.' and '-'",
                                       source_name(c), m.line, m.column, c->render_node);
        }
        return 0;
}

/* Every resolved path (profile and hostPaths) allowed, something to inject,
 * and the JSON of each rendered once for every admission. */
static int check_resolved(struct injector_config *c, struct schema_marks *marks)
{
        int r;
        for (size_t i = 0; i < c->n_resolved; i++) {
                r = check_path(c, c->resolved[i].path, "library profile path", marks,
                               "allowedHostPathPrefixes");
                if (r < 0)
                        return r;
        }
        if (c->n_resolved == 0 && c->mode == MODE_HOSTPATH && !c->device_plugin.enabled)
                return log_error_errno(-EINVAL,
                                       "%s: nothing to inject: libraryProfile is none, hostPaths "
                                       "is empty and devicePlugin is disabled",
                                       source_name(c));
        for (size_t i = 0; i < c->n_resolved; i++) {
                r = render_resolved(&c->resolved[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int config_load_file(struct injector_config *c, const char *file, const char *text,
                            struct schema_marks **ret_marks)
{
        struct schema_error err = {};
        int r = schema_load_with_marks(injector_config_schema, c, file ? file : "<text>", text,
                                       &err, ret_marks);
        if (r < 0) {
                _cleanup_free_ char *msg = schema_error_format(&err);
                log_error("%s", msg ? msg : "config: cannot load");
                schema_error_done(&err);
                return r == -ENOMEM ? r : -EINVAL;
        }
        c->source = strdup(file ? file : "<text>");
        return 0;
}

int injector_config_load_with(struct injector_config *c, const char *file, const char *text,
                              const struct injector_overrides *o)
{
        struct schema_marks *marks = NULL;
        int r;

        r = config_defaults(c);
        if (r < 0)
                return log_error_errno(r, "config: out of memory");
        if (file || text) {
                r = config_load_file(c, file, text, &marks);
                if (r < 0)
                        return r;
        }
        r = apply_overrides(c, o);
        if (r >= 0 && c->library_profile == PROFILE_DEBIAN)
                r = add_profile(c, "/usr/lib/x86_64-linux-gnu", debian_only_files);
        else if (r >= 0 && c->library_profile == PROFILE_RHEL)
                r = add_profile(c, "/usr/lib64", NULL);
        if (r >= 0)
                r = resolve_host_paths(c, marks);
        if (r >= 0)
                r = check_render_node(c, marks);
        if (r >= 0)
                r = device_plugin_config_check(c, marks);
        if (r >= 0)
                r = vmi_hook_config_check(c, marks);
        if (r >= 0)
                r = check_resolved(c, marks);
        if (marks)
                schema_marks_free(marks);
        if (r < 0)
                return r;
        c->patch_cache = patch_cache_new();
        if (!c->patch_cache)
                return -ENOMEM;
        /* The webhook must never mutate the control plane or itself. */
        if (!strv_contains(c->selector.exclude_namespaces, "kube-system"))
                strv_extend(&c->selector.exclude_namespaces, "kube-system");
        if (!strv_contains(c->selector.exclude_namespaces, c->deploy.namespace))
                strv_extend(&c->selector.exclude_namespaces, c->deploy.namespace);
        return 0;
}

void injector_config_done(struct injector_config *c)
{
        schema_free(injector_config_schema, c);
        for (size_t i = 0; i < c->n_resolved; i++) {
                free(c->resolved[i].path);
                free(c->resolved[i].container_path);
                free(c->resolved[i].type);
                free(c->resolved[i].name);
                free(c->resolved[i].volume_json);
                free(c->resolved[i].mount_json);
        }
        free(c->resolved);
        free(c->source);
        patch_cache_free(c->patch_cache);
        *c = (struct injector_config){};
}
