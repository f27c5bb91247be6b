/* The provider driver table, libvirt-style: one struct provider_ops per
 * backend, registered in providers/registry.c. Adding a provider is adding a
 * file and one line in the registry, not editing if-chains.
 *
 * Every operation gets the run context (config, dry-run, cancellation) and
 * the state file. up() must be idempotent and roll back what this run made
 * on failure or cancellation; down() removes exactly what the state lists
 * (and, for providers that can, objects carrying our ownership mark). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "provision/base/context.h"
#include "provision/base/state.h"

struct provider_ops {
        const char *name;
        /* Nodes are VMs reachable over ssh (false for kind). */
        bool vm_nodes;
        /* Bring the nodes up (nodes recorded in state with their ssh target). */
        int (*up)(struct run_ctx *ctx, struct state *st);
        int (*down)(struct run_ctx *ctx, struct state *st);
        /* Optional: remove what this run created, after up() succeeded but a
         * later step (node setup, cluster setup, Ctrl-C) failed. */
        int (*rollback)(struct run_ctx *ctx, struct state *st);
        /* Add provider-specific fields to a status object. */
        int (*status)(struct run_ctx *ctx, struct state *st, cJSON *out);
        /* Path of the kubeconfig for this cluster, or -ENOENT (local has none). */
        int (*kubeconfig)(struct run_ctx *ctx, struct state *st, char **ret);
        /* Value for KUBEVIRT_PROVIDER when running functests. */
        const char *(*kubevirt_provider)(struct run_ctx *ctx);

        /* What e2e needs to know (docs/e2e.md). */
        /* up brings up a Kubernetes cluster (kcli, kubevirtci, kind); local
         * makes bare VM nodes whose Kubernetes is the user's. */
        bool makes_cluster;
        /* The KUBEVIRTCI_CONFIG_PATH the cluster's own kubevirtci scripts
         * wrote <dir>/<provider>/config-provider-<provider>.sh into
         * (kubevirtci, kind). NULL: KubeVirt's suite reaches the cluster as
         * "external" and vgpuenv writes that file itself (local, kcli). */
        int (*ci_config_dir)(struct run_ctx *ctx, char **ret);
};

const struct provider_ops *provider_find(const char *name);
const struct provider_ops *provider_for_config(const struct config *c);

extern const struct provider_ops provider_local;
extern const struct provider_ops provider_kcli;
extern const struct provider_ops provider_kubevirtci;
extern const struct provider_ops provider_kind;
