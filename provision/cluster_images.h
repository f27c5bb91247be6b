/* The images vgpuenv builds for a cluster and wires in (provision/
 * cluster_images.c): mesa-injector's (webhook/deploy/Containerfile), which
 * the device plugin's DaemonSet, the hook sidecar and an in-cluster webhook
 * run, and virt-launcher with QEMU's GL display modules (images/launcher/
 * Containerfile), which virt-operator hands to virt-controller through its
 * VIRT_LAUNCHER_IMAGE. Built with podman on this host, pushed to
 * registry.push, named by registry.pull on the nodes; what was pushed is
 * recorded in the state ("images"). */
#pragma once

#include "provision/base/context.h"
#include "provision/base/state.h"

struct plan;

/* A provider's registry (provider_ops.registry), for registry.push auto. */
typedef int (*cluster_registry_fn)(struct run_ctx *ctx, char ***ret_port_argv, char ***ret_env,
                                   char **ret_dir, char **ret_pull);

/* Before the webhook is deployed: "registry" (push: auto, when an image is
 * built) and "webhook-image" (webhook.build_image). */
int cluster_images_plan_webhook(struct plan *p, struct run_ctx *ctx, cluster_registry_fn registry);

/* After KubeVirt is configured (kubevirt.launcher_gl): "launcher-image"
 * (build from the launcher virt-controller runs, push) and
 * "virt-launcher-image" (virt-operator's VIRT_LAUNCHER_IMAGE, then the
 * rollouts of virt-operator, virt-controller and virt-handler). */
int cluster_images_plan_launcher(struct plan *p, struct run_ctx *ctx, const char *kubeconfig,
                                 cluster_registry_fn registry);

/* The image recorded under name ("mesa-injector", "virt-launcher") as the
 * nodes pull it, or NULL. Borrowed from the state. */
const char *cluster_image(const struct state *st, const char *name);

/* Whether virt-launcher's GL libraries are the launcher image's own
 * (webhook.libraries, auto: when vgpuenv builds the launcher). */
bool cluster_libraries_from_image(const struct config *c);

/* The --launcher-image of virt-controller's args (`kubectl get deployment
 * virt-controller -o json`), or NULL; caller frees. Exposed for tests. */
char *cluster_launcher_image_of(const char *deployment_json);
