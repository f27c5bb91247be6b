/* The device plugin's extended resource in the target container: "1" in
 * resources.limits, and in resources.requests when the container has
 * requests (the API server defaults missing requests to the limits, and
 * requires them equal for extended resources). The kubelet then calls the
 * plugin's Allocate for that container, and the runtime creates the render
 * node with its device-cgroup rule: what a hostPath of /dev/dri or a pod
 * annotation cannot do (docs/webhook.md). */
#include "webhook/patch_resource.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Ours is exactly one device: the string "1" (as the API server writes
 * quantities) or the number 1. */
static bool is_one(const cJSON *v)
{
        if (cJSON_IsString(v))
                return streq(v->valuestring, "1");
        return cJSON_IsNumber(v) && v->valuedouble == 1.0;
}

/* Whether map needs the key added (1), has our value (0), or holds another
 * quantity (-EEXIST). */
static int want_key(const cJSON *map, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(map, key);
        if (!v)
                return 1;
        return is_one(v) ? 0 : -EEXIST;
}

int resource_plan_make(const struct injector_config *c, const cJSON *container,
                       struct resource_plan *rp, char **message)
{
        *rp = (struct resource_plan){};
        if (!c->device_plugin.enabled)
                return 0;
        const char *key = c->device_plugin.resource_name;
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(container, "resources");
        const cJSON *lim = cJSON_GetObjectItemCaseSensitive(res, "limits");
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(res, "requests");
        if ((res && !cJSON_IsObject(res)) || (lim && !cJSON_IsObject(lim)) ||
            (req && !cJSON_IsObject(req))) {
                *message = strdup_printf("%s resources, limits or requests is not an object",
                                         c->target_container);
                return -EINVAL;
        }
        rp->has_resources = res != NULL;
        rp->has_limits = lim != NULL;
        rp->has_requests = req != NULL;
        int l = want_key(lim, key);
        int q = req ? want_key(req, key) : 0;
        if (l < 0 || q < 0) {
                *message = strdup_printf("container %s already %s %s with another quantity than 1",
                                         c->target_container, l < 0 ? "limits" : "requests", key);
                return -EEXIST;
        }
        rp->add_limit = l > 0;
        rp->add_request = q > 0;
        return 0;
}

unsigned resource_plan_shape(const struct resource_plan *rp)
{
        return (rp->has_resources ? 1u : 0u) | (rp->has_limits ? 2u : 0u) |
               (rp->has_requests ? 4u : 0u);
}

bool resource_plan_full(const struct resource_plan *rp, const struct injector_config *c)
{
        if (!c->device_plugin.enabled)
                return true;
        return rp->add_limit && (rp->add_request || !rp->has_requests);
}

bool resource_plan_changes(const struct resource_plan *rp)
{
        return rp->add_limit || rp->add_request;
}

/* {"<key>":"1"} as JSON text. */
static char *one_map(const char *key)
{
        cJSON *m = cJSON_CreateObject();
        char *s = m && cJSON_AddStringToObject(m, key, "1") ? cJSON_PrintUnformatted(m) : NULL;
        cJSON_Delete(m);
        return s;
}

/* Add key to the map at base/field: the whole map when it is missing. */
static int add_entry(struct patch *p, const char *base, const char *field, bool exists,
                     const char *key)
{
        _cleanup_free_ char *esc = json_pointer_escape(key);
        _cleanup_free_ char *map = one_map(key);
        if (!esc || !map)
                return -ENOMEM;
        _cleanup_free_ char *path = exists ? strdup_printf("%s/%s/%s", base, field, esc)
                                           : strdup_printf("%s/%s", base, field);
        if (!path)
                return -ENOMEM;
        return patch_append(p, "add", path, exists ? "\"1\"" : map);
}

int resource_plan_emit(const struct resource_plan *rp, const struct injector_config *c, int ci,
                       struct patch *p)
{
        const char *key = c->device_plugin.resource_name;
        char base[64];
        int r = 0;

        snprintf(base, sizeof(base), "/spec/containers/%d/resources", ci);
        if (rp->add_limit && !rp->has_resources) {
                _cleanup_free_ char *map = one_map(key);
                _cleanup_free_ char *v = map ? strdup_printf("{\"limits\":%s}", map) : NULL;
                return v ? patch_append(p, "add", base, v) : -ENOMEM;
        }
        if (rp->add_limit)
                r = add_entry(p, base, "limits", rp->has_limits, key);
        if (r >= 0 && rp->add_request)
                r = add_entry(p, base, "requests", true, key);
        return r;
}
