/* RFC 6902 JSON Patch construction for mesa-injector: the pod and VMI
 * mutations expressed as "add"/"replace" operations, idempotent (an object
 * that already carries our volume, mount or annotation gets no duplicate),
 * creating missing arrays/maps whole, and reporting name clashes instead of
 * overwriting. Pure functions over cJSON: no I/O, so unit tests and the
 * fuzzer drive them directly. */
#pragma once

#include <cjson/cJSON.h>

#include "common/buf.h"
#include "webhook/config.h"

#define INJECTED_ANNOTATION "mesa-injector.vgpuenv.io/injected"
#define HOOK_SIDECARS_ANNOTATION "hooks.kubevirt.io/hookSidecars"
#define HOOK_PATH "/usr/bin/onDefineDomain"
/* Where webhook/deploy/Containerfile installs the hook sidecar. */
#define HOOK_SIDECAR_COMMAND "/usr/local/bin/mesa-injector-hook-sidecar"

/* "~" -> "~0", "/" -> "~1" (RFC 6901). */
char *json_pointer_escape(const char *token);

/* The operations as JSON text, built directly: an admission emits about a
 * hundred operations and building a cJSON tree for them only to print it
 * again doubled the handler's time. */
struct patch_cache_entry;
struct patch {
        struct buf ops; /* "[op,op,...": closed by patch_json() */
        size_t count;
        /* Set instead of buf when the whole patch came from the cache of
         * full injections (see mutate_pod). */
        const struct patch_cache_entry *shared;
};
void patch_done(struct patch *p);
/* Append {"op": op, "path": path, "value": value_json}, where value_json is
 * already JSON text (NULL for none). */
int patch_append(struct patch *p, const char *op, const char *path, const char *value_json);
size_t patch_count(const struct patch *p);
/* The JSON array text; valid until the next append or patch_done(). */
const char *patch_json(struct patch *p);
/* The base64 of patch_json() when it is cached, else NULL. */
const char *patch_base64(const struct patch *p, size_t *len);
/* That base64 as raw deflate data ending in a sync flush (byte-aligned, no
 * final block), with what a gzip trailer needs: its CRC-32 and length, and
 * zlib's crc32_combine operator for that length. */
struct deflated_base64 {
        const unsigned char *data;
        size_t len;
        unsigned long crc;
        unsigned long crc_combine_op;
        size_t plain_len;
};
/* When cached, else NULL. */
const struct deflated_base64 *patch_base64_deflated(const struct patch *p);

/* Every virt-launcher pod without any of our volumes gets the same patch,
 * given where compute sits and which of volumes/volumeMounts/annotations
 * exist: the patch and its base64 are built once per such shape and kept
 * for the life of the configuration. */
struct patch_cache;
struct patch_cache *patch_cache_new(void);
void patch_cache_free(struct patch_cache *c);

enum mutate_decision {
        DECISION_SKIPPED = 0, /* not selected by the configuration */
        DECISION_UNCHANGED,   /* selected, already carries everything */
        DECISION_PATCHED,
        DECISION_CONFLICT, /* something of ours exists with other content */
        DECISION_INVALID,  /* the object is not shaped as expected */
};
const char *mutate_decision_name(enum mutate_decision d);

/* namespace: request.namespace (pods on CREATE often lack metadata.namespace).
 * *reason gets a short human explanation for the log and status message. */
enum mutate_decision mutate_pod(const struct injector_config *c, const cJSON *pod,
                                const char *namespace, struct patch *p, char **reason);
enum mutate_decision mutate_vmi(const struct injector_config *c, const cJSON *vmi,
                                const char *namespace, struct patch *p, char **reason);

/* Whether namespace passes selector.namespaces/excludeNamespaces (shell
 * globs allowed, e.g. "kubevirt-test-*"). */
bool namespace_selected(char *const *include, char *const *exclude, const char *ns);

/* The JSON of the hook-sidecar annotation entry this configuration adds. */
cJSON *hook_sidecar_entry(const struct injector_config *c);
/* Whether an entry of the annotation is ours (our sidecar's command, or our
 * ConfigMap), so a re-invocation does not add a second one. */
bool hook_sidecar_is_ours(const struct injector_config *c, const cJSON *entry);
