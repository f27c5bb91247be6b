/* The table of provider backends; the only place that knows them all. And
 * the shape of a doctor entry, which every backend's checks share. */
#include <string.h>

#include "providers/provider.h"

static const struct provider_ops *const providers[] = {
    &provider_local,
    &provider_kcli,
    &provider_kubevirtci,
    &provider_kind,
};

const struct provider_ops *provider_find(const char *name)
{
        for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
                if (strcmp(providers[i]->name, name) == 0)
                        return providers[i];
        return NULL;
}

const struct provider_ops *provider_for_config(const struct config *c)
{
        return provider_find(provider_names[c->provider]);
}

void doctor_check_add(cJSON *checks, const char *check, const char *status, const char *detail)
{
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "check", check);
        cJSON_AddStringToObject(o, "status", status);
        cJSON_AddStringToObject(o, "detail", detail ? detail : "");
        cJSON_AddItemToArray(checks, o);
}
