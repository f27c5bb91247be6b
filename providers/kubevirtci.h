/* Shared by the kubevirtci and kind providers, which both drive a kubevirt
 * or kubevirtci checkout through `make cluster-up` / `make cluster-down`
 * (kubevirtci's cluster-up/ scripts, the conventions users already know). */
#pragma once

#include "provision/base/context.h"
#include "provision/base/state.h"

/* The QEMU device every kubevirtci node VM needs for a render node. */
#define KUBEVIRTCI_GPU_DEVICE "-device virtio-gpu-pci"

/* KUBEVIRT_PROVIDER_EXTRA_ARGS for gocli: the user's value (user_value,
 * then cfg_extra) plus --qemu-args '-device virtio-gpu-pci'. kubevirtci's
 * scripts pass the value through `echo $params` and `eval`, so words keep
 * their quotes until eval: the added argument is shell-quoted, and an
 * existing --qemu-args (gocli keeps only the last) gets the device appended
 * to its value instead of a second flag. -EINVAL on an unterminated quote. */
int kubevirtci_extra_args(const char *user_value, const char *cfg_extra, char **ret);

/* <checkout>/cluster-up, or <checkout>/kubevirtci/cluster-up in a kubevirt
 * checkout. */
char *kubevirtci_cluster_up_dir(const char *checkout);

/* The KUBEVIRTCI_CONFIG_PATH a `make cluster-up` in checkout uses: for a
 * kubevirt checkout always <checkout>/kubevirtci/_ci-configs (its
 * hack/config-kubevirtci.sh sets it), otherwise $KUBEVIRTCI_CONFIG_PATH or
 * <checkout>/_ci-configs. */
char *kubevirtci_config_path(const char *checkout);
/* <config path>/<provider>/.kubeconfig, where kubevirtci's up() writes it. */
char *kubevirtci_kubeconfig_path(const char *checkout, const char *provider);

struct plan;
struct step;
/* Add a step named name that runs `make <target>` in checkout with env
 * (KEY=VALUE entries), argv_prefix (e.g. env -u VGPU_DISPLAY) before make;
 * the caller sets its progress line and undo. data goes to its undo. */
struct step *kubevirtci_plan_make(struct plan *p, struct run_ctx *ctx, const char *name,
                                  const char *checkout, const char *target, char **env,
                                  char *const *argv_prefix);
/* Run what kubevirtci_plan_make planned, for an undo of another step. */
struct step_run;
int kubevirtci_run_make(struct step_run *sr, const char *checkout, const char *target,
                        char *const *env, char *const *argv_prefix);
