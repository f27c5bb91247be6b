/* The device plugin's inventory: the render nodes its glob finds, each
 * advertised as sharesPerNode devices "<node>-<i>" (renderD128-0 ...), and
 * whether each node is present now (health). A node seen once stays listed,
 * Unhealthy while it is gone, as KubeVirt's device plugins do
 * (pkg/virt-handler/device-manager/generic_device.go, healthCheck). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "webhook/config.h"

struct dp_node {
        char *name;      /* base name, e.g. renderD128 */
        char *host_path; /* as the kubelet's runtime opens it: /dev/dri/renderD128 */
        bool present;
        bool seen; /* scratch of dp_inventory_scan */
};

struct dp_inventory {
        const struct injector_device_plugin *cfg; /* not owned */
        struct dp_node *nodes;                    /* sorted by name */
        size_t n_nodes;
};

void dp_inventory_done(struct dp_inventory *inv);
/* Look at the glob again: 1 when a node appeared, disappeared or came
 * back, 0 when nothing changed, negative errno on failure. */
int dp_inventory_scan(struct dp_inventory *inv);
/* The node a device ID belongs to, or NULL for an ID that is not ours. */
const struct dp_node *dp_inventory_find(const struct dp_inventory *inv, const char *id);
/* The directory of the glob (where nodes appear), as the plugin sees it
 * (deviceRoot prepended). Caller frees. */
char *dp_inventory_watch_dir(const struct dp_inventory *inv);
