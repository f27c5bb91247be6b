/* The device plugin's resource in the pod mutation (webhook/patch_resource.c):
 * planned first, so a clash is found before any operation is emitted, then
 * emitted after the volume mounts. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "webhook/config.h"
#include "webhook/patch.h"

struct resource_plan {
        bool has_resources, has_limits, has_requests; /* what the container has */
        bool add_limit, add_request;                  /* what it lacks of ours */
};

/* 0 with *rp filled (nothing to add when devicePlugin is disabled);
 * -EEXIST when limits/requests hold our resource with another quantity,
 * -EINVAL when resources is not shaped as Kubernetes writes it; *message
 * (caller frees) says why. */
int resource_plan_make(const struct injector_config *c, const cJSON *container,
                       struct resource_plan *rp, char **message);
/* Three bits for the patch cache's shape. */
unsigned resource_plan_shape(const struct resource_plan *rp);
/* Whether the plan is the whole of ours (the container has none of it). */
bool resource_plan_full(const struct resource_plan *rp, const struct injector_config *c);
bool resource_plan_changes(const struct resource_plan *rp);
/* Append the operations for container index ci. */
int resource_plan_emit(const struct resource_plan *rp, const struct injector_config *c, int ci,
                       struct patch *p);
