/* The contract between node setup and the webhook's cdi mode: node setup
 * writes a CDI spec on every node under these names, the webhook annotates
 * virt-launcher pods with the matching device. Both sides include this file
 * so the names cannot drift (also recorded in /work/notes/cdi-contract.txt
 * for the webhook side). */
#pragma once

/* CDI "kind" (vendor/class) and the one device it offers. */
#define VGPUENV_CDI_KIND "vgpuenv.io/render"
#define VGPUENV_CDI_DEVICE "renderD128"
/* Fully qualified device name: what the pod annotation value carries. */
#define VGPUENV_CDI_QUALIFIED VGPUENV_CDI_KIND "=" VGPUENV_CDI_DEVICE
/* Pod annotation key: cdi.k8s.io/<key>; the key part is ours. */
#define VGPUENV_CDI_ANNOTATION "cdi.k8s.io/vgpuenv-render"
/* Where node setup writes the spec on the node. */
#define VGPUENV_CDI_SPEC_PATH "/etc/cdi/vgpuenv.yaml"
/* The render node and the user virt-launcher's QEMU runs as. */
#define VGPUENV_RENDER_NODE "/dev/dri/renderD128"
#define VGPUENV_QEMU_UID 107
#define VGPUENV_QEMU_GID 107
/* Node label set once a node's render-node probe passed. */
#define VGPUENV_NODE_LABEL_KEY "vgpuenv.io/render-node"
#define VGPUENV_NODE_LABEL "vgpuenv.io/render-node=true"
