/* mesa-injector's configuration: what to inject, into which pods, and the
 * server limits. Described once as a common/yaml_schema.h table so parsing,
 * file:line:column errors and the reference in docs/webhook.md share one
 * source. Defaults give a working webhook for KubeVirt's virt-launcher pods
 * on Debian nodes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "common/yaml_schema.h"

struct patch_cache;

enum injector_mode { MODE_HOSTPATH = 0, MODE_CDI };
enum library_profile { PROFILE_DEBIAN = 0, PROFILE_RHEL, PROFILE_NONE };
enum failure_policy { FAILURE_IGNORE = 0, FAILURE_FAIL };
enum conflict_policy { CONFLICT_DENY = 0, CONFLICT_ALLOW };

/* One host path made visible in the target container. */
struct host_path {
        char *path;           /* on the node */
        char *container_path; /* NULL: same as path */
        char *type;           /* hostPath type: File, Directory, ... (NULL: none) */
        /* Resolved entries only: computed once at load, because every
         * admission needs them. */
        char *name;                              /* volume name, host_path_volume_name(path) */
        char *volume_json;                       /* {"name":..,"hostPath":{..}} */
        char *mount_json;                        /* {"name":..,"mountPath":..,"readOnly":true} */
        uint64_t name_hash, container_path_hash; /* string_hash() of both */
};

struct injector_selector {
        char **labels;             /* "key=value", all must match */
        char **namespaces;         /* empty: any namespace */
        char **exclude_namespaces; /* never touched, also used for namespaceSelector */
};

struct injector_cdi {
        char *vendor;    /* vgpuenv.io */
        char *class;     /* render */
        char *spec_path; /* where nodes keep the spec file */
};

/* The device plugin that hands the render node to the target container
 * (webhook/device_plugin*.c); the webhook requests its resource. */
struct injector_device_plugin {
        bool enabled;        /* the webhook adds the resource; manifests run the plugin */
        bool daemon_set;     /* manifests print the DaemonSet */
        char *resource_name; /* extended resource, e.g. vgpuenv.io/render */
        unsigned shares;     /* devices advertised per render node */
        char *device_glob;   /* host paths of the render nodes: /dev/dri/renderD* */
        char *device_root;   /* where the plugin sees the host's "/" ("" : as is) */
        char *socket_dir;    /* the kubelet's device-plugins directory */
        char *socket_name;   /* our socket in it */
        unsigned register_timeout_s;
        char **node_selector; /* DaemonSet nodeSelector, "key=value" */
};

/* Where the onDefineDomain hook of a VMI comes from (docs/webhook.md, "The
 * onDefineDomain hook"): our image, whose mesa-injector-hook-sidecar serves
 * KubeVirt's hook API itself and needs nothing in the VMI's namespace, or
 * KubeVirt's sidecar-shim running the shell hook from a ConfigMap, which
 * virt-controller reads from the VMI's namespace (so it must exist there
 * before the VMI: only literal namespaces). */
enum vmi_hook_source { HOOK_SOURCE_IMAGE = 0, HOOK_SOURCE_CONFIGMAP };
enum pull_policy { PULL_IF_NOT_PRESENT = 0, PULL_ALWAYS, PULL_NEVER };

struct injector_vmi_hook {
        bool enabled;
        int source;            /* enum vmi_hook_source */
        char *image;           /* image source; default deploy.image (resolved at load) */
        int image_pull_policy; /* enum pull_policy */
        char *configmap;       /* configMap source: ConfigMap holding webhook/hook/onDefineDomain */
        char *key;
        char *version;     /* configMap source: sidecar-shim hook API version */
        char *shim_image;  /* configMap source; NULL/empty: KubeVirt's default sidecar-shim */
        char **namespaces; /* VMIs are annotated only here (globs) */
};

struct injector_deploy {
        char *namespace;
        char *service;
        char *image;
        unsigned port;
        char *cert_secret;
};

struct injector_limits {
        unsigned max_body_bytes;
        unsigned max_buffered_bytes; /* all request bodies held at once */
        unsigned connection_limit;
        unsigned connection_timeout_s; /* idle time before a connection is closed */
        unsigned request_timeout_s;    /* whole request must arrive within this */
        unsigned threads;
        unsigned cert_poll_ms;
        unsigned shutdown_grace_s;
        /* Clients that hold connections without using them (conn_guard.h). */
        unsigned handshake_timeout_s;
        unsigned connections_per_source;
        unsigned connection_memory_bytes; /* libmicrohttpd's per-connection pool */
        unsigned buffered_bytes_per_source;
};

struct injector_config {
        struct injector_selector selector;
        char *target_container;
        int mode;
        int library_profile;
        struct host_path *host_paths; /* explicit paths, added to the profile's */
        size_t n_host_paths;
        char **allowed_prefixes;
        char *render_node;
        struct injector_cdi cdi;
        struct injector_device_plugin device_plugin;
        struct injector_vmi_hook vmi_hook;
        int failure_policy;
        int on_conflict;
        struct injector_deploy deploy;
        struct injector_limits limits;

        struct patch_cache *patch_cache; /* see patch.h; owned */

        /* Resolved after load: profile paths + explicit ones, validated. */
        struct host_path *resolved;
        size_t n_resolved;
        char *source; /* file name, or NULL for built-in defaults */
};

extern const struct schema_field injector_config_schema[];

/* Fill defaults; load file when non-NULL (or text, for tests); resolve the
 * library profile and check every host path against the allowlist. On a bad
 * document, logs "file:line:column: message" and returns -EINVAL. */
int injector_config_load(struct injector_config *c, const char *file, const char *text);
/* The same with values from the command line that win over the file's
 * (NULL members: the file's). deploy.image is also vmiHook.image when the
 * file sets none. */
struct injector_overrides {
        const char *image;           /* deploy.image */
        const char *library_profile; /* libraryProfile: debian, rhel, none */
};
int injector_config_load_with(struct injector_config *c, const char *file, const char *text,
                              const struct injector_overrides *o);
/* PROFILE_*, or -1 for an unknown name. */
int library_profile_from_name(const char *name);
void injector_config_done(struct injector_config *c);

/* Volume name derived from a host path: a DNS-1123 label, stable across
 * calls so re-invocation finds its own volumes. */
char *host_path_volume_name(const char *path);

/* Whether path lies under one of the prefixes (component-wise, no "..").*/
bool path_allowed(const char *path, char *const *prefixes);

const char *failure_policy_name(int p);

/* webhook/config_device_plugin.c: the devicePlugin section. */
extern const struct schema_field device_plugin_fields[];
int device_plugin_config_defaults(struct injector_device_plugin *d);
struct schema_marks;
int device_plugin_config_check(const struct injector_config *c, const struct schema_marks *marks);
/* NULL when name is an extended resource name the kubelet accepts and our
 * rules allow, else why not (a static string). */
const char *resource_name_problem(const char *name);

/* webhook/config_vmi_hook.c: the vmiHook section. */
extern const struct schema_field vmi_hook_fields[];
int vmi_hook_config_defaults(struct injector_vmi_hook *h);
/* After load: the image defaults to deploy.image; the checks (file:line:column). */
int vmi_hook_config_check(struct injector_config *c, const struct schema_marks *marks);
const char *pull_policy_name(int p);
