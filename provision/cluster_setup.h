/* Cluster wiring after the nodes are up, for providers that yield a
 * Kubernetes cluster: label nodes, deploy mesa-injector (in-cluster or url
 * mode), patch the KubeVirt CR for the fake vGPU (mediated device types,
 * permitted host devices, Sidecar feature gate) and wait for it to settle.
 * Everything goes through kubectl via ctx_run, so dry-run prints it all. */
#pragma once

#include "provision/base/context.h"
#include "provision/base/state.h"

int cluster_setup(struct run_ctx *ctx, struct state *st, const char *kubeconfig);
