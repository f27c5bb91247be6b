/* Pod and VMI mutations as RFC 6902 patches (see patch.h for the rules). */
#include "webhook/patch.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

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

void patch_done(struct patch *p)
{
        cJSON_Delete(p->ops);
        p->ops = NULL;
}

int patch_append(struct patch *p, const char *op, const char *path, cJSON *value)
{
        if (!p->ops && !(p->ops = cJSON_CreateArray()))
                goto oom;
        cJSON *o = cJSON_CreateObject();
        if (!o)
                goto oom;
        cJSON_AddItemToArray(p->ops, o);
        if (!cJSON_AddStringToObject(o, "op", op) || !cJSON_AddStringToObject(o, "path", path))
                goto oom;
        if (value)
                cJSON_AddItemToObject(o, "value", value);
        return 0;
oom:
        cJSON_Delete(value);
        return -ENOMEM;
}

size_t patch_count(const struct patch *p)
{
        return p->ops ? (size_t)cJSON_GetArraySize(p->ops) : 0;
}

const char *mutate_decision_name(enum mutate_decision d)
{
        static const char *const names[] = { "skipped", "unchanged", "patched", "conflict", "invalid" };
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

/* Add one annotation, creating metadata.annotations when missing. Returns
 * 1 when an op was added, 0 when the same value is already there, -EEXIST
 * when a different value is there. */
static int add_annotation(struct patch *p, const cJSON *obj, bool *annotations_created, const char *key,
                          const char *value)
{
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
        if (cJSON_IsObject(ann)) {
                const cJSON *cur = cJSON_GetObjectItemCaseSensitive(ann, key);
                if (cur)
                        return cJSON_IsString(cur) && streq(cur->valuestring, value) ? 0 : -EEXIST;
        }
        if (!cJSON_IsObject(ann) && !*annotations_created) {
                cJSON *m = cJSON_CreateObject();
                if (!m || !cJSON_AddStringToObject(m, key, value)) {
                        cJSON_Delete(m);
                        return -ENOMEM;
                }
                *annotations_created = true;
                if (!cJSON_IsObject(meta)) {
                        cJSON *md = cJSON_CreateObject();
                        if (!md) {
                                cJSON_Delete(m);
                                return -ENOMEM;
                        }
                        cJSON_AddItemToObject(md, "annotations", m);
                        return patch_append(p, "add", "/metadata", md) < 0 ? -ENOMEM : 1;
                }
                return patch_append(p, "add", "/metadata/annotations", m) < 0 ? -ENOMEM : 1;
        }
        if (*annotations_created) {
                /* Our own earlier op created the map: extend its value. */
                cJSON *last = cJSON_GetArrayItem(p->ops, cJSON_GetArraySize(p->ops) - 1);
                cJSON *v = cJSON_GetObjectItemCaseSensitive(last, "value");
                if (cJSON_GetObjectItemCaseSensitive(v, "annotations"))
                        v = cJSON_GetObjectItemCaseSensitive(v, "annotations");
                return cJSON_AddStringToObject(v, key, value) ? 1 : -ENOMEM;
        }
        _cleanup_free_ char *esc = json_pointer_escape(key);
        _cleanup_free_ char *path = esc ? strdup_printf("/metadata/annotations/%s", esc) : NULL;
        if (!path)
                return -ENOMEM;
        return patch_append(p, "add", path, cJSON_CreateString(value)) < 0 ? -ENOMEM : 1;
}

static cJSON *make_volume(const char *name, const struct host_path *h)
{
        cJSON *v = cJSON_CreateObject(), *hp;
        if (!v)
                return NULL;
        cJSON_AddStringToObject(v, "name", name);
        hp = cJSON_AddObjectToObject(v, "hostPath");
        if (!hp) {
                cJSON_Delete(v);
                return NULL;
        }
        cJSON_AddStringToObject(hp, "path", h->path);
        if (h->type && *h->type)
                cJSON_AddStringToObject(hp, "type", h->type);
        return v;
}

static cJSON *make_mount(const char *name, const struct host_path *h)
{
        cJSON *m = cJSON_CreateObject();
        if (!m)
                return NULL;
        cJSON_AddStringToObject(m, "name", name);
        cJSON_AddStringToObject(m, "mountPath", h->container_path ? h->container_path : h->path);
        cJSON_AddTrueToObject(m, "readOnly");
        return m;
}

static const cJSON *find_by(const cJSON *array, const char *key, const char *value)
{
        const cJSON *e;
        cJSON_ArrayForEach(e, array)
        {
                const char *s = get_string(e, key);
                if (s && streq(s, value))
                        return e;
        }
        return NULL;
}

/* Emit the new elements of one array: the whole array when it is missing,
 * else one "add .../-" per element. Takes items. */
static int emit_array(struct patch *p, const char *path, bool exists, cJSON *items)
{
        int r = 0;
        if (cJSON_GetArraySize(items) == 0) {
                cJSON_Delete(items);
                return 0;
        }
        if (!exists)
                return patch_append(p, "add", path, items);
        _cleanup_free_ char *append = strdup_printf("%s/-", path);
        if (!append) {
                cJSON_Delete(items);
                return -ENOMEM;
        }
        while (cJSON_GetArraySize(items) > 0 && r >= 0)
                r = patch_append(p, "add", append, cJSON_DetachItemFromArray(items, 0));
        cJSON_Delete(items);
        return r;
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

enum mutate_decision mutate_pod(const struct injector_config *c, const cJSON *pod, const char *namespace,
                                struct patch *p, char **reason)
{
        bool ann_created = false;
        int r;

        if (!cJSON_IsObject(pod)) {
                REASON("object is not a JSON object");
                return DECISION_INVALID;
        }
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        if (!namespace || !*namespace)
                namespace = get_string(meta, "namespace");
        if (!namespace_selected(c->selector.namespaces, c->selector.exclude_namespaces, namespace)) {
                REASON("namespace %s not selected", namespace ? namespace : "(none)");
                return DECISION_SKIPPED;
        }
        if (!labels_match(c->selector.labels, cJSON_GetObjectItemCaseSensitive(meta, "labels"))) {
                REASON("labels do not match the selector");
                return DECISION_SKIPPED;
        }
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
        const cJSON *containers = cJSON_GetObjectItemCaseSensitive(spec, "containers");
        if (!cJSON_IsArray(containers)) {
                REASON("pod has no spec.containers array");
                return DECISION_INVALID;
        }
        int ci = 0;
        const cJSON *target = NULL, *e;
        cJSON_ArrayForEach(e, containers)
        {
                const char *n = get_string(e, "name");
                if (n && streq(n, c->target_container)) {
                        target = e;
                        break;
                }
                ci++;
        }
        if (!target) {
                REASON("pod has no container named %s", c->target_container);
                return DECISION_SKIPPED;
        }

        if (c->mode == MODE_CDI) {
                _cleanup_free_ char *key = strdup_printf("cdi.k8s.io/%s", c->cdi.annotation_key);
                _cleanup_free_ char *val = strdup_printf("%s/%s=%s", c->cdi.vendor, c->cdi.class, c->cdi.name);
                if (!key || !val)
                        return finish(p, -ENOMEM, reason);
                r = add_annotation(p, pod, &ann_created, key, val);
                if (r == -EEXIST)
                        return conflict(p, reason, strdup_printf("annotation %s already set to another device", key));
                if (r >= 0)
                        r = add_annotation(p, pod, &ann_created, INJECTED_ANNOTATION, "cdi");
                if (r == -EEXIST)
                        r = 0; /* informational only */
                return finish(p, r, reason);
        }

        const cJSON *volumes = cJSON_GetObjectItemCaseSensitive(spec, "volumes");
        const cJSON *mounts = cJSON_GetObjectItemCaseSensitive(target, "volumeMounts");
        if ((volumes && !cJSON_IsArray(volumes)) || (mounts && !cJSON_IsArray(mounts))) {
                REASON("spec.volumes or volumeMounts is not an array");
                return DECISION_INVALID;
        }
        cJSON *new_volumes = cJSON_CreateArray(), *new_mounts = cJSON_CreateArray();
        r = new_volumes && new_mounts ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < c->n_resolved; i++) {
                const struct host_path *h = &c->resolved[i];
                const char *mount_path = h->container_path ? h->container_path : h->path;
                _cleanup_free_ char *name = host_path_volume_name(h->path);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                const cJSON *v = find_by(volumes, "name", name);
                if (v) {
                        const char *hp = get_string(cJSON_GetObjectItemCaseSensitive(v, "hostPath"), "path");
                        if (!hp || !streq(hp, h->path)) {
                                cJSON_Delete(new_volumes);
                                cJSON_Delete(new_mounts);
                                return conflict(p, reason,
                                                strdup_printf("volume %s already exists with another source", name));
                        }
                } else if (!find_by(new_volumes, "name", name)) {
                        cJSON *nv = make_volume(name, h);
                        if (!nv)
                                r = -ENOMEM;
                        else
                                cJSON_AddItemToArray(new_volumes, nv);
                }
                const cJSON *m = find_by(mounts, "mountPath", mount_path);
                if (m) {
                        const char *mn = get_string(m, "name");
                        if (!mn || !streq(mn, name)) {
                                cJSON_Delete(new_volumes);
                                cJSON_Delete(new_mounts);
                                return conflict(p, reason,
                                                strdup_printf("container %s already mounts %s at %s",
                                                              c->target_container, mn ? mn : "a volume", mount_path));
                        }
                } else if (r >= 0 && !find_by(new_mounts, "mountPath", mount_path)) {
                        cJSON *nm = make_mount(name, h);
                        if (!nm)
                                r = -ENOMEM;
                        else
                                cJSON_AddItemToArray(new_mounts, nm);
                }
        }
        if (r < 0) {
                cJSON_Delete(new_volumes);
                cJSON_Delete(new_mounts);
                return finish(p, r, reason);
        }
        bool changes = cJSON_GetArraySize(new_volumes) > 0 || cJSON_GetArraySize(new_mounts) > 0;
        r = emit_array(p, "/spec/volumes", volumes != NULL, new_volumes);
        if (r >= 0) {
                _cleanup_free_ char *mp = strdup_printf("/spec/containers/%d/volumeMounts", ci);
                r = mp ? emit_array(p, mp, mounts != NULL, new_mounts) : -ENOMEM;
        } else
                cJSON_Delete(new_mounts);
        if (r >= 0 && changes) {
                r = add_annotation(p, pod, &ann_created, INJECTED_ANNOTATION, "hostpath");
                if (r == -EEXIST)
                        r = 0;
        }
        return finish(p, r, reason);
}

cJSON *hook_sidecar_entry(const struct injector_config *c)
{
        cJSON *e = cJSON_CreateObject();
        if (!e)
                return NULL;
        cJSON *args = cJSON_AddArrayToObject(e, "args");
        cJSON_AddItemToArray(args, cJSON_CreateString("--version"));
        cJSON_AddItemToArray(args, cJSON_CreateString(c->vmi_hook.version));
        if (c->vmi_hook.image && *c->vmi_hook.image)
                cJSON_AddStringToObject(e, "image", c->vmi_hook.image);
        cJSON *cm = cJSON_AddObjectToObject(e, "configMap");
        cJSON_AddStringToObject(cm, "name", c->vmi_hook.configmap);
        cJSON_AddStringToObject(cm, "key", c->vmi_hook.key);
        cJSON_AddStringToObject(cm, "hookPath", HOOK_PATH);
        if (cJSON_GetArraySize(args) != 2 || cJSON_GetArraySize(cm) != 3) {
                cJSON_Delete(e);
                return NULL;
        }
        return e;
}

static bool display_disabled(const cJSON *gpu)
{
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(gpu, "virtualGPUOptions");
        const cJSON *disp = cJSON_GetObjectItemCaseSensitive(opts, "display");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(disp, "enabled");
        return cJSON_IsFalse(en);
}

enum mutate_decision mutate_vmi(const struct injector_config *c, const cJSON *vmi, const char *namespace,
                                struct patch *p, char **reason)
{
        bool ann_created = false;
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
        if (!namespace || !*namespace)
                namespace = get_string(meta, "namespace");
        if (!namespace_selected(c->vmi_hook.namespaces, c->selector.exclude_namespaces, namespace)) {
                REASON("namespace %s has no hook ConfigMap (vmiHook.namespaces)", namespace ? namespace : "(none)");
                return DECISION_SKIPPED;
        }
        const cJSON *devices = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vmi, "spec"), "domain"),
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
        if (cJSON_IsObject(ann) && cJSON_GetObjectItemCaseSensitive(ann, HOOK_SIDECARS_ANNOTATION) && !cur) {
                cJSON_Delete(entry);
                return conflict(p, reason, strdup_printf("annotation %s is not a string", HOOK_SIDECARS_ANNOTATION));
        }
        if (!cur) {
                cJSON *list = cJSON_CreateArray();
                cJSON_AddItemToArray(list, entry);
                _cleanup_free_ char *s = cJSON_PrintUnformatted(list);
                cJSON_Delete(list);
                if (!s)
                        return finish(p, -ENOMEM, reason);
                r = add_annotation(p, vmi, &ann_created, HOOK_SIDECARS_ANNOTATION, s);
                return finish(p, r, reason);
        }
        /* Another sidecar is already requested: keep it and append ours,
         * unless ours (same ConfigMap) is there. */
        cJSON *list = cJSON_Parse(cur);
        if (!cJSON_IsArray(list)) {
                cJSON_Delete(list);
                cJSON_Delete(entry);
                return conflict(p, reason,
                                strdup_printf("annotation %s is not a JSON list; not touching it", HOOK_SIDECARS_ANNOTATION));
        }
        const cJSON *s;
        cJSON_ArrayForEach(s, list)
        {
                const cJSON *cm = cJSON_GetObjectItemCaseSensitive(s, "configMap");
                const char *n = get_string(cm, "name");
                if (n && streq(n, c->vmi_hook.configmap)) {
                        cJSON_Delete(list);
                        cJSON_Delete(entry);
                        return finish(p, 0, reason);
                }
        }
        cJSON_AddItemToArray(list, entry);
        _cleanup_free_ char *str = cJSON_PrintUnformatted(list);
        cJSON_Delete(list);
        _cleanup_free_ char *esc = json_pointer_escape(HOOK_SIDECARS_ANNOTATION);
        _cleanup_free_ char *path = esc ? strdup_printf("/metadata/annotations/%s", esc) : NULL;
        if (!str || !path)
                return finish(p, -ENOMEM, reason);
        r = patch_append(p, "replace", path, cJSON_CreateString(str));
        return finish(p, r, reason);
}
