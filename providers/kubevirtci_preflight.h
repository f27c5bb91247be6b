/* Checks before `make cluster-up` in a kubevirt or kubevirtci checkout,
 * against kubevirtci main 39bd494 and kubevirt main d923fdb:
 *
 * - cluster-up/cluster/$KUBEVIRT_PROVIDER/provider.sh must exist (up.sh
 *   sources it); the available providers are listed when it does not.
 * - KUBEVIRTCI_TAG names the gocli and provider images.
 *   cluster/ephemeral-provider-common.sh dies with "FATAL: either
 *   KUBEVIRTCI_TAG or KUBEVIRTCI_GOCLI_CONTAINER must be set"; a kubevirt
 *   checkout pins one (kubevirtci/cluster-up/hack/common.sh), a kubevirtci
 *   checkout's Makefile fetches the latest with curl. vgpuenv takes it from
 *   the environment, kubevirtci.tag, or the kubevirt checkout's pin, and
 *   refuses without one.
 * - The node image: quay.io/kubevirtci/k8s-1.3x is committed from the
 *   centos9 image (cluster-provision/k8s/base-image), which is Fedora 43
 *   with qemu-kvm-core only (cluster-provision/centos9/Dockerfile). In
 *   Fedora's packaging qemu-kvm-core pulls qemu-system-x86-core (common,
 *   seabios, seavgabios, edk2); the virtio-gpu-pci device is the module
 *   package qemu-device-display-virtio-gpu-pci (hw-display-virtio-gpu-pci.so,
 *   with qemu-device-display-virtio-gpu for the virtio-gpu-device it
 *   creates), pulled in only by the full qemu-system-x86. So the node's
 *   QEMU exits at start on `-device virtio-gpu-pci`. kubevirtci.node_image
 *   names an image derived from kubevirtci's with those packages
 *   (docs/providers.md); it reaches gocli as --container-registry/-org/
 *   -suffix (KUBEVIRTCI_CONTAINER_REGISTRY, _ORG, _SUFFIX), and `up` first
 *   asks its QEMU whether it knows the device. */
#pragma once

#include "provision/base/context.h"

/* -EINVAL (logged, with the providers that exist) when checkout has no
 * cluster-up/cluster/PROVIDER/provider.sh. */
int kubevirtci_check_provider(const char *checkout, const char *provider);

/* KUBEVIRTCI_TAG=... (and the other gocli selection variables) for the make
 * environment; -EINVAL (logged) when no tag can be known. */
int kubevirtci_tag_env(const struct config *c, const char *checkout, char ***env);

/* KUBEVIRTCI_CONTAINER_REGISTRY/ORG/SUFFIX from kubevirtci.node_image;
 * -EINVAL (logged with the evidence and the remedy) when it is unset or not
 * REGISTRY/ORG/PROVIDER:TAG. */
int kubevirtci_node_image_env(const struct config *c, char ***env);

/* The container CLI kubevirtci uses (cluster/ephemeral-provider-common.sh):
 * KUBEVIRTCI_RUNTIME, else docker when installed, else podman. */
const char *kubevirtci_container_cli(void);

/* Run the node image's QEMU (`qemu-kvm -device help`, docker or podman as
 * kubevirtci picks) and fail early when it has no virtio-gpu-pci. */
struct step_run;
int kubevirtci_check_node_image(struct step_run *sr);
