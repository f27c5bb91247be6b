/* Cluster wiring after the nodes are up, for providers that yield a
 * Kubernetes cluster: label nodes, deploy mesa-injector (in-cluster or url
 * mode), patch the KubeVirt CR for the fake vGPU (mediated device types,
 * permitted host devices, Sidecar feature gate) and wait for it to settle.
 * Every kubectl call has deadlines.kubectl. */
#pragma once

#include <stdbool.h>

#include "provision/base/context.h"
#include "provision/base/state.h"

struct plan;
/* Add the cluster setup steps: "kubeconfig" (it must be readable), then
 * "label-nodes" (when the provider's nodes had a probe), "webhook" (when the
 * provider deploys it and webhook.deploy is not none), "kubevirt-cr". */
int cluster_setup_plan(struct plan *p, struct run_ctx *ctx, const char *kubeconfig,
                       bool label_nodes, bool deploy_webhook);
