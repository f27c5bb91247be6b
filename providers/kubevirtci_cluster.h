/* What the kind and kubevirtci providers share as drivers of one cluster in
 * a kubevirt or kubevirtci checkout: which checkout and kubevirtci provider
 * the config names, recording the cluster before `make cluster-up` and
 * undoing it, taking it down, and the driver-table entries that only read
 * the checkout (kubeconfig, config directory, KUBEVIRT_PROVIDER). */
#pragma once

#include "provision/base/context.h"
#include "provision/base/state.h"

struct plan;
struct step_run;

struct kubevirtci_cluster {
        struct run_ctx *ctx;
        char **env;               /* the make environment, KEY=VALUE */
        char *const *argv_prefix; /* before make (kind: env -u VGPU_DISPLAY) */
        const char *dir;          /* the checkout (kind.dir or kubevirtci.dir) */
        const char *provider;     /* its KUBEVIRT_PROVIDER */
        char resource[32];        /* the state's record: "kind-cluster" */
        char dir_key[32];         /* for messages: "kind.dir" */
};

/* A cluster the plan owns (freed with it), for the provider the config
 * names; env is taken over. NULL on ENOMEM (logged). */
struct kubevirtci_cluster *kubevirtci_cluster_new(struct plan *p, struct run_ctx *ctx, char **env,
                                                  char *const *argv_prefix);

/* The checkout and its provider exist (-ENOENT / -EINVAL, logged). */
int kubevirtci_cluster_check(const struct kubevirtci_cluster *k);

/* Step functions, data a struct kubevirtci_cluster. record: the checkout
 * and its provider exist, then the cluster is recorded in the state before
 * make runs (a crash in the middle still has down take it down). undo:
 * `make cluster-down` when this run recorded it. */
int kubevirtci_cluster_record(struct step_run *sr, void *data);
int kubevirtci_cluster_undo(struct step_run *sr, void *data);

/* up: the record step, then `make cluster-up` (the record's undo takes the
 * cluster down); the make step, for the caller's progress line. what names
 * the cluster in messages ("Kind"). */
struct step *kubevirtci_cluster_plan_up(struct plan *p, struct kubevirtci_cluster *k,
                                        const char *what);

/* down: `make cluster-down` and forgetting the cluster, when the state
 * lists it (else a notice and no step). */
int kubevirtci_cluster_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st,
                                 char **env, char *const *argv_prefix);

/* provider_ops entries. */
int kubevirtci_cluster_kubeconfig(struct run_ctx *ctx, char **ret);
int kubevirtci_cluster_ci_config_dir(struct run_ctx *ctx, char **ret);
const char *kubevirtci_cluster_kubevirt_provider(struct run_ctx *ctx);
