/* The provider driver table, libvirt-style: one struct provider_ops per
 * backend, registered in providers/registry.c. Adding a provider is adding a
 * file and one line in the registry, not editing if-chains: everything the
 * layers above need to know about a provider is asked here, and no provider
 * name or enum is compared outside providers/.
 *
 * A provider does not run anything itself: plan_up and plan_down add steps
 * to a plan (provision/base/plan.h), each with its undo, and the engine
 * runs them, with deadlines, progress, Ctrl-C and rollback. Every object a
 * step creates is recorded in the state the moment it exists (so a crash
 * never loses one) and carries our ownership mark; an undo removes only
 * what this run made; a down step removes what the state lists. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "provision/base/context.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"

struct provider_ops {
        const char *name;
        /* Nodes are VMs reachable over ssh: node setup and the render-node
         * probe run on them (false for kind). */
        bool vm_nodes;
        /* It makes a Kubernetes cluster of its own: cluster setup runs, and
         * a kubeconfig that cannot be read is an error (local makes bare
         * VMs). */
        bool makes_kubernetes;
        /* The nodes whose render-node probe passed get labelled (kind's
         * containers have no probe). */
        bool labels_nodes;
        /* Deploy mesa-injector during cluster setup (not on kind, the
         * display-off baseline). */
        bool deploys_webhook;
        /* The names node setup will find in the state once the provider's
         * steps ran, known from the config alone (so the plan lists each
         * node's steps); NULL-terminated, caller frees. */
        char **(*node_names)(const struct config *c);
        /* Add the steps that bring the nodes up (and record them, with their
         * ssh targets, in the state). st is the current state (read only
         * while planning). */
        int (*plan_up)(struct plan *p, struct run_ctx *ctx, const struct state *st);
        /* Add the steps that remove what the state lists. */
        int (*plan_down)(struct plan *p, struct run_ctx *ctx, const struct state *st);
        /* Add provider-specific fields to a status object. */
        int (*status)(struct run_ctx *ctx, struct state *st, cJSON *out);
        /* Path of the kubeconfig the cluster has or will have (known from
         * the config); -ENOENT when the provider makes no cluster. */
        int (*kubeconfig)(struct run_ctx *ctx, char **ret);
        /* Value for KUBEVIRT_PROVIDER when running functests. */
        const char *(*kubevirt_provider)(struct run_ctx *ctx);
        /* Optional: add host checks (doctor), entries {check, status, detail}
         * (doctor_check_add). */
        void (*doctor)(struct run_ctx *ctx, cJSON *checks);
        /* The KUBEVIRTCI_CONFIG_PATH the cluster's own kubevirtci scripts
         * wrote <dir>/<provider>/config-provider-<provider>.sh into
         * (kubevirtci, kind). NULL: KubeVirt's suite reaches the cluster as
         * "external" and vgpuenv writes that file itself (local, kcli). */
        int (*ci_config_dir)(struct run_ctx *ctx, char **ret);
        /* Optional: the cluster's own image registry, for registry.push
         * auto. *ret_port_argv prints the host port this host pushes to
         * (localhost:PORT), run in *ret_dir with *ret_env; *ret_pull is the
         * registry's name on the nodes. NULL-terminated vectors, caller
         * frees everything. */
        int (*registry)(struct run_ctx *ctx, char ***ret_port_argv, char ***ret_env, char **ret_dir,
                        char **ret_pull);
};

/* One doctor entry {check, status, detail} at the end of checks; status is
 * ok, warn or fail, detail NULL for none. */
void doctor_check_add(cJSON *checks, const char *check, const char *status, const char *detail);
const struct provider_ops *provider_find(const char *name);
const struct provider_ops *provider_for_config(const struct config *c);

extern const struct provider_ops provider_local;
extern const struct provider_ops provider_kcli;
extern const struct provider_ops provider_kubevirtci;
extern const struct provider_ops provider_kind;
