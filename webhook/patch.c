/* Pod and VMI mutations as RFC 6902 patches (see patch.h for the rules). */
#include "webhook/patch.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/util.h"
#include "webhook/admission.h"
#include "webhook/patch_resource.h"

char *json_pointer_escape(const char *token)
{
        size_t n = 0;
        for (const char *s = token; *s; s++)
                n += (*s == '~' || *s == '/') ? 2 : 1;
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (const char *s = token; *s; s++) {
                if (*s == '~') {
                        *o++ = '~';
                        *o++ = '0';
                } else if (*s == '/') {
                        *o++ = '~';
                        *o++ = '1';
                } else
                        *o++ = *s;
        }
        *o = '\0';
        return out;
}

struct patch_cache_entry {
        char *json;
        size_t count;
        char *b64;
        size_t b64_len;
        /* The base64 as a raw deflate stream (RFC 1951) ending in a sync
         * flush, so a gzip answer can embed it between blocks of its own. */
        struct deflated_base64 deflated; /* .data NULL: not available */
};

#define CACHE_CONTAINERS 16 /* compute's index; beyond, no caching */
/* volumes?, volumeMounts?, annotations?, metadata?, and compute's
 * resources?, limits?, requests? */
#define CACHE_SHAPES 128

struct patch_cache {
        _Atomic(struct patch_cache_entry *) slot[CACHE_CONTAINERS][CACHE_SHAPES];
};

static void cache_entry_free(struct patch_cache_entry *e)
{
        free(e->json);
        free(e->b64);
        free((void *)e->deflated.data);
        free(e);
}

struct patch_cache *patch_cache_new(void)
{
        return calloc(1, sizeof(struct patch_cache));
}

void patch_cache_free(struct patch_cache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < CACHE_CONTAINERS; i++)
                for (size_t k = 0; k < CACHE_SHAPES; k++) {
                        struct patch_cache_entry *e = atomic_load(&c->slot[i][k]);
                        if (e)
                                cache_entry_free(e);
                }
        free(c);
}

void patch_done(struct patch *p)
{
        buf_done(&p->ops);
        *p = (struct patch){};
}

const char *patch_base64(const struct patch *p, size_t *len)
{
        if (!p->shared)
                return NULL;
        *len = p->shared->b64_len;
        return p->shared->b64;
}

const struct deflated_base64 *patch_base64_deflated(const struct patch *p)
{
        return p->shared && p->shared->deflated.data ? &p->shared->deflated : NULL;
}

/* Compressed once per cached patch, at the best level: the cost is paid
 * once, and every gzip answer afterwards is a tenth of the size. A failure
 * only means answers for this shape go uncompressed. */
static void deflate_base64(struct patch_cache_entry *e)
{
        z_stream zs = {};
        if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return;
        uLong bound = deflateBound(&zs, (uLong)e->b64_len) + 16;
        unsigned char *out = malloc(bound);
        if (out) {
                zs.next_in = (Bytef *)e->b64;
                zs.avail_in = (uInt)e->b64_len;
                zs.next_out = out;
                zs.avail_out = (uInt)bound;
                if (deflate(&zs, Z_SYNC_FLUSH) == Z_OK && zs.avail_in == 0) {
                        e->deflated = (struct deflated_base64){
                            .data = out,
                            .len = bound - zs.avail_out,
                            .crc = crc32(0L, (const Bytef *)e->b64, (uInt)e->b64_len),
                            .crc_combine_op = crc32_combine_gen64((z_off64_t)e->b64_len),
                            .plain_len = e->b64_len,
                        };
                        out = NULL;
                }
        }
        free(out);
        deflateEnd(&zs);
}

/* Keep a copy of a freshly built full-injection patch; losing a race to
 * another thread building the same one is harmless. */
static void cache_store(struct patch_cache *c, int ci, unsigned shape, struct patch *p)
{
        struct patch_cache_entry *e = calloc(1, sizeof(*e));
        if (!e)
                return;
        e->json = strdup(patch_json(p));
        e->count = p->count;
        e->b64 = e->json ? base64_encode(e->json, strlen(e->json)) : NULL;
        if (!e->json || !e->b64) {
                cache_entry_free(e);
                return;
        }
        e->b64_len = strlen(e->b64);
        if (e->b64_len < UINT32_MAX)
                deflate_base64(e);
        struct patch_cache_entry *expected = NULL;
        if (!atomic_compare_exchange_strong(&c->slot[ci][shape], &expected, e))
                cache_entry_free(e);
}

/* A JSON string literal; paths and ops are ours, but keys inside paths come
 * from the object (annotation keys), so escape properly. */
static int buf_json_string(struct patch *p, const char *s)
{
        int r = buf_append(&p->ops, "\"", 1);
        while (r >= 0 && *s) {
                /* Runs without anything to escape go in one copy. */
                size_t n = 0;
                while (s[n] && s[n] != '"' && s[n] != '\\' && (unsigned char)s[n] >= 0x20)
                        n++;
                if (n)
                        r = buf_append(&p->ops, s, n);
                s += n;
                if (r < 0 || !*s)
                        break;
                char esc[8];
                if (*s == '"' || *s == '\\') {
                        esc[0] = '\\';
                        esc[1] = *s;
                        r = buf_append(&p->ops, esc, 2);
                } else {
                        snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*s);
                        r = buf_append(&p->ops, esc, 6);
                }
                s++;
        }
        return r < 0 ? r : buf_append(&p->ops, "\"", 1);
}

int patch_append(struct patch *p, const char *op, const char *path, const char *value_json)
{
        /* A full pod patch fits the first allocation. */
        int r = buf_reserve(&p->ops, 32767);
        if (r >= 0)
                r = buf_puts(&p->ops, p->count ? ",{\"op\":" : "[{\"op\":");
        if (r >= 0)
                r = buf_json_string(p, op);
        if (r >= 0)
                r = buf_puts(&p->ops, ",\"path\":");
        if (r >= 0)
                r = buf_json_string(p, path);
        if (r >= 0 && value_json) {
                r = buf_puts(&p->ops, ",\"value\":");
                if (r >= 0)
                        r = buf_puts(&p->ops, value_json);
        }
        if (r >= 0)
                r = buf_puts(&p->ops, "}");
        /* Room for patch_json's closing bracket. */
        if (r >= 0)
                r = buf_reserve(&p->ops, 1);
        if (r < 0)
                return r;
        p->count++;
        return 0;
}

size_t patch_count(const struct patch *p)
{
        return p->count;
}

const char *patch_json(struct patch *p)
{
        if (p->shared)
                return p->shared->json;
        if (p->count == 0)
                return "[]";
        /* patch_append always leaves room for the closing bracket. */
        p->ops.data[p->ops.len] = ']';
        p->ops.data[p->ops.len + 1] = '\0';
        return p->ops.data;
}

static char *json_string(const char *s)
{
        cJSON *j = cJSON_CreateString(s);
        char *t = j ? cJSON_PrintUnformatted(j) : NULL;
        cJSON_Delete(j);
        return t;
}

const char *mutate_decision_name(enum mutate_decision d)
{
        static const char *const names[] = {"skipped", "unchanged", "patched", "conflict",
                                            "invalid"};
        return d <= DECISION_INVALID ? names[d] : "unknown";
}

static bool glob_any(char *const *patterns, const char *s)
{
        for (char *const *p = patterns; p && *p; p++)
                if (fnmatch(*p, s, 0) == 0)
                        return true;
        return false;
}

bool namespace_selected(char *const *include, char *const *exclude, const char *ns)
{
        if (!ns)
                ns = "";
        if (glob_any(exclude, ns))
                return false;
        if (!include || !include[0])
                return true;
        return glob_any(include, ns);
}

static const char *get_string(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool labels_match(char *const *selector, const cJSON *labels)
{
        for (char *const *s = selector; s && *s; s++) {
                const char *eq = strchr(*s, '=');
                if (!eq)
                        return false;
                _cleanup_free_ char *key = strndup(*s, (size_t)(eq - *s));
                if (!key)
                        return false;
                const char *v = cJSON_IsObject(labels) ? get_string(labels, key) : NULL;
                if (!v || strcmp(v, eq + 1) != 0)
                        return false;
        }
        return true;
}

static void set_reason(char **reason, char *msg)
{
        if (!reason) {
                free(msg);
                return;
        }
        free(*reason);
        *reason = msg;
}

#define REASON(...) set_reason(reason, strdup_printf(__VA_ARGS__))

/* Annotations to add, emitted together: one "add" of the whole map when the
 * object has none, else one "add" per key. */
struct ann_list {
        const char *keys[4];
        const char *values[4];
        size_t n;
};

/* 0 when queued or already there with that value, -EEXIST when the key
 * holds something else. */
static int want_annotation(struct ann_list *l, const cJSON *obj, const char *key, const char *value)
{
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "annotations");
        const cJSON *cur = cJSON_IsObject(ann) ? cJSON_GetObjectItemCaseSensitive(ann, key) : NULL;
        if (cur)
                return cJSON_IsString(cur) && streq(cur->valuestring, value) ? 0 : -EEXIST;
        if (l->n >= ELEMENTSOF(l->keys))
                return -ENOMEM;
        l->keys[l->n] = key;
        l->values[l->n++] = value;
        return 0;
}

static int emit_annotations(struct patch *p, const cJSON *obj, const struct ann_list *l)
{
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        int r = 0;

        if (l->n == 0)
                return 0;
        if (!cJSON_IsObject(ann)) {
                cJSON *m = cJSON_CreateObject();
                for (size_t i = 0; m && i < l->n; i++)
                        if (!cJSON_AddStringToObject(m, l->keys[i], l->values[i]))
                                r = -ENOMEM;
                cJSON *wrap = m;
                if (m && !cJSON_IsObject(meta)) {
                        wrap = cJSON_CreateObject();
                        if (wrap)
                                cJSON_AddItemToObject(wrap, "annotations", m);
                        else
                                cJSON_Delete(m);
                }
                _cleanup_free_ char *json = wrap && r >= 0 ? cJSON_PrintUnformatted(wrap) : NULL;
                cJSON_Delete(wrap);
                if (!json)
                        return -ENOMEM;
                return patch_append(
                    p, "add", cJSON_IsObject(meta) ? "/metadata/annotations" : "/metadata", json);
        }
        for (size_t i = 0; r >= 0 && i < l->n; i++) {
                _cleanup_free_ char *esc = json_pointer_escape(l->keys[i]);
                _cleanup_free_ char *path =
                    esc ? strdup_printf("/metadata/annotations/%s", esc) : NULL;
                _cleanup_free_ char *val = json_string(l->values[i]);
                r = path && val ? patch_append(p, "add", path, val) : -ENOMEM;
        }
        return r;
}

/* The elements of an array with their string member key and its
 * string_hash(): every resolved path is looked up in these, and comparing
 * hashes first spares the strcmp of the ~50 paths a pod does not have
 * (measured 3% of the server's time when each lookup was a strcmp walk). */
struct keyed_array {
        size_t n;
        struct keyed_element {
                const cJSON *element; /* not copied; valid while the array lives */
                const char *key;
                uint64_t hash;
        } items[];
};

/* NULL array: no elements. */
static struct keyed_array *key_elements(const cJSON *array, const char *key)
{
        struct keyed_array *ka =
            malloc(sizeof(*ka) + (size_t)cJSON_GetArraySize(array) * sizeof(struct keyed_element));
        const cJSON *e;
        if (!ka)
                return NULL;
        ka->n = 0;
        cJSON_ArrayForEach(e, array)
        {
                const char *s = get_string(e, key);
                if (s)
                        ka->items[ka->n++] = (struct keyed_element){e, s, string_hash(s)};
        }
        return ka;
}

/* The first element whose key is s (hash: string_hash(s)), or NULL. */
static const cJSON *element_by_key(const struct keyed_array *ka, const char *s, uint64_t hash)
{
        for (size_t i = 0; i < ka->n; i++)
                if (ka->items[i].hash == hash && streq(ka->items[i].key, s))
                        return ka->items[i].element;
        return NULL;
}

/* A list of pre-rendered JSON values (see config.c): nothing is built or
 * printed per admission. */
struct raw_list {
        const char **items;
        size_t n;
};

static void raw_list_done(struct raw_list *l)
{
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

/* The new elements of one array: the whole array when it is missing, else
 * one "add .../-" per element. */
static int emit_array(struct patch *p, const char *path, bool exists, const struct raw_list *items)
{
        if (items->n == 0)
                return 0;
        if (!exists) {
                size_t len = 2;
                for (size_t i = 0; i < items->n; i++)
                        len += strlen(items->items[i]) + 1;
                char *buf = malloc(len + 1), *o = buf;
                if (!buf)
                        return -ENOMEM;
                *o++ = '[';
                for (size_t i = 0; i < items->n; i++) {
                        if (i)
                                *o++ = ',';
                        o = stpcpy(o, items->items[i]);
                }
                *o++ = ']';
                *o = '\0';
                int r = patch_append(p, "add", path, buf);
                free(buf);
                return r;
        }
        _cleanup_free_ char *append = strdup_printf("%s/-", path);
        if (!append)
                return -ENOMEM;
        for (size_t i = 0; i < items->n; i++) {
                int r = patch_append(p, "add", append, items->items[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static enum mutate_decision finish(struct patch *p, int r, char **reason)
{
        if (r == -ENOMEM) {
                patch_done(p);
                REASON("out of memory");
                return DECISION_INVALID;
        }
        if (patch_count(p) == 0) {
                REASON("already injected");
                return DECISION_UNCHANGED;
        }
        return DECISION_PATCHED;
}

static enum mutate_decision conflict(struct patch *p, char **reason, char *msg)
{
        patch_done(p);
        set_reason(reason, msg);
        return DECISION_CONFLICT;
}

/* Whether the object's namespace (the request's, else its metadata's) is
 * among include and not among exclude; if not, *reason names it and what it
 * is not (not_in). */
static bool object_namespace_selected(char *const *include, char *const *exclude, const cJSON *meta,
                                      const char *namespace, const char *not_in, char **reason)
{
        if (!namespace || !*namespace)
        namespace = get_string(meta, "namespace");
        if (namespace_selected(include, exclude, namespace))
                return true;
        REASON("namespace %s %s", namespace ? namespace : "(none)", not_in);
        return false;
}

/* Whether the selector names the pod and it has the target container:
 * true with *ret_target and its index, or false with the decision. */
static bool pod_selected(const struct injector_config *c, const cJSON *pod, const char *namespace,
                         const cJSON **ret_target, int *ret_ci, char **reason,
                         enum mutate_decision *ret_d)
{
        *ret_d = DECISION_INVALID;
        if (!cJSON_IsObject(pod)) {
                REASON("object is not a JSON object");
                return false;
        }
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        *ret_d = DECISION_SKIPPED;
        if (!object_namespace_selected(c->selector.namespaces, c->selector.exclude_namespaces, meta,
                                       namespace, "not selected", reason))
                return false;
        if (!labels_match(c->selector.labels, cJSON_GetObjectItemCaseSensitive(meta, "labels"))) {
                REASON("labels do not match the selector");
                return false;
        }
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
        const cJSON *containers = cJSON_GetObjectItemCaseSensitive(spec, "containers");
        if (!cJSON_IsArray(containers)) {
                *ret_d = DECISION_INVALID;
                REASON("pod has no spec.containers array");
                return false;
        }
        int ci = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, containers)
        {
                const char *n = get_string(e, "name");
                if (n && streq(n, c->target_container)) {
                        *ret_target = e;
                        *ret_ci = ci;
                        return true;
                }
                ci++;
        }
        REASON("pod has no container named %s", c->target_container);
        return false;
}

/* The resolved paths the pod has not got yet, as new volumes and mounts.
 * -EEXIST with *why when the pod has one of our names or mount points for
 * something else. */
static int missing_paths(const struct injector_config *c, const cJSON *volumes, const cJSON *mounts,
                         struct raw_list *new_volumes, struct raw_list *new_mounts, char **why)
{
        /* The pod's own names and mount points, collected once: every
         * resolved path is looked up in them. */
        _cleanup_free_ struct keyed_array *have_names = key_elements(volumes, "name");
        _cleanup_free_ struct keyed_array *have_paths = key_elements(mounts, "mountPath");
        new_volumes->items = calloc(c->n_resolved + 1, sizeof(char *));
        new_mounts->items = calloc(c->n_resolved + 1, sizeof(char *));
        if (!new_volumes->items || !new_mounts->items || !have_names || !have_paths)
                return -ENOMEM;
        /* Resolved paths have unique names and mount points (config.c), so
         * only the pod's own arrays need searching. */
        for (size_t i = 0; i < c->n_resolved; i++) {
                const struct host_path *h = &c->resolved[i];
                const cJSON *v = element_by_key(have_names, h->name, h->name_hash);
                if (v) {
                        const char *hp =
                            get_string(cJSON_GetObjectItemCaseSensitive(v, "hostPath"), "path");
                        if (!hp || !streq(hp, h->path)) {
                                *why = strdup_printf("volume %s already exists with another source",
                                                     h->name);
                                return -EEXIST;
                        }
                } else
                        new_volumes->items[new_volumes->n++] = h->volume_json;
                const cJSON *m =
                    element_by_key(have_paths, h->container_path, h->container_path_hash);
                if (m) {
                        const char *mn = get_string(m, "name");
                        if (!mn || !streq(mn, h->name)) {
                                *why = strdup_printf("container %s already mounts %s at %s",
                                                     c->target_container, mn ? mn : "a volume",
                                                     h->container_path);
                                return -EEXIST;
                        }
                } else
                        new_mounts->items[new_mounts->n++] = h->mount_json;
        }
        return 0;
}

/* In cdi mode the runtime mounts the libraries from the node's CDI spec,
 * which the plugin's answer names: only the resource is ours. */
static enum mutate_decision mutate_pod_cdi(const struct injector_config *c, const cJSON *pod,
                                           const struct resource_plan *rp, int ci, struct patch *p,
                                           char **reason)
{
        int r = resource_plan_emit(rp, c, ci, p);
        if (r >= 0 && resource_plan_changes(rp)) {
                struct ann_list al = {};
                if (want_annotation(&al, pod, INJECTED_ANNOTATION, "cdi") == -ENOMEM)
                        r = -ENOMEM; /* informational: a different value is fine */
                if (r >= 0)
                        r = emit_annotations(p, pod, &al);
        }
        return finish(p, r, reason);
}

static enum mutate_decision mutate_pod_hostpath(const struct injector_config *c, const cJSON *pod,
                                                const cJSON *target, int ci,
                                                const struct resource_plan *rp, struct patch *p,
                                                char **reason)
{
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
        const cJSON *volumes = cJSON_GetObjectItemCaseSensitive(spec, "volumes");
        const cJSON *mounts = cJSON_GetObjectItemCaseSensitive(target, "volumeMounts");
        if ((volumes && !cJSON_IsArray(volumes)) || (mounts && !cJSON_IsArray(mounts))) {
                REASON("spec.volumes or volumeMounts is not an array");
                return DECISION_INVALID;
        }
        _cleanup_(raw_list_done) struct raw_list new_volumes = {}, new_mounts = {};
        _cleanup_free_ char *why = NULL;
        int r = missing_paths(c, volumes, mounts, &new_volumes, &new_mounts, &why);
        if (r == -EEXIST)
                return conflict(p, reason, TAKE_PTR(why));
        bool changes = new_volumes.n > 0 || new_mounts.n > 0 || resource_plan_changes(rp);
        /* A pod with none of ours gets the same patch as every other pod of
         * its shape: take it from the cache, or build it and keep it. */
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        bool full =
            r >= 0 && new_volumes.n == c->n_resolved && new_mounts.n == c->n_resolved &&
            resource_plan_full(rp, c) && ci < CACHE_CONTAINERS && c->patch_cache &&
            !(cJSON_IsObject(ann) && cJSON_GetObjectItemCaseSensitive(ann, INJECTED_ANNOTATION));
        unsigned shape = (volumes ? 1u : 0u) | (mounts ? 2u : 0u) |
                         (cJSON_IsObject(ann) ? 4u : 0u) | (cJSON_IsObject(meta) ? 8u : 0u) |
                         resource_plan_shape(rp) << 4;
        if (full) {
                const struct patch_cache_entry *e = atomic_load(&c->patch_cache->slot[ci][shape]);
                if (e && p->count == 0) {
                        p->shared = e;
                        p->count = e->count;
                        return DECISION_PATCHED;
                }
        }
        if (r >= 0)
                r = emit_array(p, "/spec/volumes", volumes != NULL, &new_volumes);
        if (r >= 0) {
                char mp[64];
                snprintf(mp, sizeof(mp), "/spec/containers/%d/volumeMounts", ci);
                r = emit_array(p, mp, mounts != NULL, &new_mounts);
        }
        if (r >= 0)
                r = resource_plan_emit(rp, c, ci, p);
        if (r >= 0 && changes) {
                struct ann_list al = {};
                if (want_annotation(&al, pod, INJECTED_ANNOTATION, "hostpath") == -ENOMEM)
                        r = -ENOMEM;
                if (r >= 0)
                        r = emit_annotations(p, pod, &al);
        }
        if (r >= 0 && full)
                cache_store(c->patch_cache, ci, shape, p);
        return finish(p, r, reason);
}

enum mutate_decision mutate_pod(const struct injector_config *c, const cJSON *pod,
                                const char *namespace, struct patch *p, char **reason)
{
        const cJSON *target = NULL;
        enum mutate_decision d;
        int ci = 0;
        if (!pod_selected(c, pod, namespace, &target, &ci, reason, &d))
                return d;

        struct resource_plan rp;
        _cleanup_free_ char *why = NULL;
        int r = resource_plan_make(c, target, &rp, &why);
        if (r == -EEXIST)
                return conflict(p, reason, TAKE_PTR(why));
        if (r < 0) {
                set_reason(reason, TAKE_PTR(why));
                return r == -ENOMEM ? finish(p, r, reason) : DECISION_INVALID;
        }
        if (c->mode == MODE_CDI)
                return mutate_pod_cdi(c, pod, &rp, ci, p, reason);
        return mutate_pod_hostpath(c, pod, target, ci, &rp, p, reason);
}

/* Our entry in hooks.kubevirt.io/hookSidecars, read by virt-controller as
 * a hooks.HookSidecar (kubevirt d923fdb8 pkg/hooks/hooks.go): image,
 * imagePullPolicy, command, args, configMap{name,key,hookPath}. */
cJSON *hook_sidecar_entry(const struct injector_config *c)
{
        const struct injector_vmi_hook *h = &c->vmi_hook;
        cJSON *e = cJSON_CreateObject();
        if (!e)
                return NULL;
        bool ok;
        if (h->source == HOOK_SOURCE_IMAGE) {
                cJSON_AddStringToObject(e, "image", h->image);
                cJSON_AddStringToObject(e, "imagePullPolicy",
                                        pull_policy_name(h->image_pull_policy));
                cJSON *cmd = cJSON_AddArrayToObject(e, "command");
                cJSON_AddItemToArray(cmd, cJSON_CreateString(HOOK_SIDECAR_COMMAND));
                cJSON *args = cJSON_AddArrayToObject(e, "args");
                cJSON_AddItemToArray(args, cJSON_CreateString("--render-node"));
                cJSON_AddItemToArray(args, cJSON_CreateString(c->render_node));
                ok = cJSON_GetArraySize(e) == 4 && cJSON_GetArraySize(cmd) == 1 &&
                     cJSON_GetArraySize(args) == 2;
        } else {
                cJSON *args = cJSON_AddArrayToObject(e, "args");
                cJSON_AddItemToArray(args, cJSON_CreateString("--version"));
                cJSON_AddItemToArray(args, cJSON_CreateString(h->version));
                if (!isempty(h->shim_image))
                        cJSON_AddStringToObject(e, "image", h->shim_image);
                cJSON *cm = cJSON_AddObjectToObject(e, "configMap");
                cJSON_AddStringToObject(cm, "name", h->configmap);
                cJSON_AddStringToObject(cm, "key", h->key);
                cJSON_AddStringToObject(cm, "hookPath", HOOK_PATH);
                ok = cJSON_GetArraySize(args) == 2 && cJSON_GetArraySize(cm) == 3;
        }
        if (!ok) {
                cJSON_Delete(e);
                return NULL;
        }
        return e;
}

bool hook_sidecar_is_ours(const struct injector_config *c, const cJSON *entry)
{
        const cJSON *cmd =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(entry, "command"), 0);
        if (cJSON_IsString(cmd) && streq(cmd->valuestring, HOOK_SIDECAR_COMMAND))
                return true;
        const char *n = get_string(cJSON_GetObjectItemCaseSensitive(entry, "configMap"), "name");
        return n && streq(n, c->vmi_hook.configmap);
}

static bool display_disabled(const cJSON *gpu)
{
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(gpu, "virtualGPUOptions");
        const cJSON *disp = cJSON_GetObjectItemCaseSensitive(opts, "display");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(disp, "enabled");
        return cJSON_IsFalse(en);
}

enum mutate_decision mutate_vmi(const struct injector_config *c, const cJSON *vmi,
                                const char *namespace, struct patch *p, char **reason)
{
        int r;

        if (!cJSON_IsObject(vmi)) {
                REASON("object is not a JSON object");
                return DECISION_INVALID;
        }
        if (!c->vmi_hook.enabled) {
                REASON("vmiHook disabled");
                return DECISION_SKIPPED;
        }
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(vmi, "metadata");
        if (!object_namespace_selected(c->vmi_hook.namespaces, c->selector.exclude_namespaces, meta,
                                       namespace, "is not in vmiHook.namespaces", reason))
                return DECISION_SKIPPED;
        const cJSON *devices = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vmi, "spec"),
                                             "domain"),
            "devices");
        const cJSON *gpus = cJSON_GetObjectItemCaseSensitive(devices, "gpus");
        if (gpus && !cJSON_IsArray(gpus)) {
                REASON("spec.domain.devices.gpus is not an array");
                return DECISION_INVALID;
        }
        bool any_display = false;
        const cJSON *g;
        cJSON_ArrayForEach(g, gpus) if (!display_disabled(g)) any_display = true;
        if (!any_display) {
                REASON(cJSON_GetArraySize(gpus) ? "every GPU has display disabled" : "no GPUs");
                return DECISION_SKIPPED;
        }

        cJSON *entry = hook_sidecar_entry(c);
        if (!entry)
                return finish(p, -ENOMEM, reason);
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        const char *cur = cJSON_IsObject(ann) ? get_string(ann, HOOK_SIDECARS_ANNOTATION) : NULL;
        if (cJSON_IsObject(ann) &&
            cJSON_GetObjectItemCaseSensitive(ann, HOOK_SIDECARS_ANNOTATION) && !cur) {
                cJSON_Delete(entry);
                return conflict(
                    p, reason,
                    strdup_printf("annotation %s is not a string", HOOK_SIDECARS_ANNOTATION));
        }
        if (!cur) {
                cJSON *list = cJSON_CreateArray();
                cJSON_AddItemToArray(list, entry);
                _cleanup_free_ char *s = cJSON_PrintUnformatted(list);
                cJSON_Delete(list);
                if (!s)
                        return finish(p, -ENOMEM, reason);
                struct ann_list al = {};
                r = want_annotation(&al, vmi, HOOK_SIDECARS_ANNOTATION, s);
                if (r >= 0)
                        r = emit_annotations(p, vmi, &al);
                return finish(p, r, reason);
        }
        /* Another sidecar is already requested: keep it and append ours,
         * unless ours (our command, or our ConfigMap) is there. Its text is
         * JSON again: a \u0000 in it would end a name early (a prefix would
         * pass for ours) and be cut when the list is printed back, see
         * admission_handle(). */
        cJSON *list = json_text_has_nul(cur, strlen(cur)) ? NULL : cJSON_Parse(cur);
        if (!cJSON_IsArray(list)) {
                cJSON_Delete(list);
                cJSON_Delete(entry);
                return conflict(p, reason,
                                strdup_printf("annotation %s is not a JSON list; not touching it",
                                              HOOK_SIDECARS_ANNOTATION));
        }
        const cJSON *s;
        cJSON_ArrayForEach(s, list) if (hook_sidecar_is_ours(c, s))
        {
                cJSON_Delete(list);
                cJSON_Delete(entry);
                return finish(p, 0, reason);
        }
        cJSON_AddItemToArray(list, entry);
        _cleanup_free_ char *str = cJSON_PrintUnformatted(list);
        cJSON_Delete(list);
        _cleanup_free_ char *esc = json_pointer_escape(HOOK_SIDECARS_ANNOTATION);
        _cleanup_free_ char *path = esc ? strdup_printf("/metadata/annotations/%s", esc) : NULL;
        if (!str || !path)
                return finish(p, -ENOMEM, reason);
        _cleanup_free_ char *val = json_string(str);
        r = val ? patch_append(p, "replace", path, val) : -ENOMEM;
        return finish(p, r, reason);
}
