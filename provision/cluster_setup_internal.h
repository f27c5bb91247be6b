/* The KubeVirt CR patch of provision/cluster_setup.c, exposed for the unit
 * test: a JSON merge patch that adds the fake-vGPU configuration to what the
 * CR (current_json, `kubectl get kubevirt -o json`, may be NULL) already has. */
#pragma once

#include "common/proc.h"
#include "provision/base/config.h"

struct step_run;

char *cluster_kubevirt_patch(const char *current_json);

/* kubectl --kubeconfig KUBECONFIG ARGS with deadlines.kubectl, for cluster
 * setup's steps (provision/cluster_images.c too): res gets the whole result
 * (the caller judges the exit status), else a non-zero exit is an error. */
int cluster_kubectl(struct step_run *sr, const struct config *cfg, const char *kubeconfig,
                    const char *what, const char *const *args, struct proc_result *res);
/* The same command line as the plan shows it; caller frees. */
char *cluster_kubectl_text(const struct config *cfg, const char *kubeconfig,
                           const char *const *args);
