/* `vgpuenv doctor` against a live cluster: which of the display chain's five
 * links (docs/display-chain.md) is missing, each from a real query and with
 * the fix in one line:
 *   1 a render node on the nodes            the render-node probe over ssh
 *   2 mesa EGL/GBM on that node             the same probe (EGL on GBM)
 *   3 the device plugin's resource          kubectl get nodes (allocatable)
 *   4 the onDefineDomain hook               the webhook configuration, the
 *                                           Sidecar gate, the hook image
 *                                           running on the nodes (the device
 *                                           plugin's pods run it)
 *   5 egl-headless in the launcher's QEMU   a pod of virt-controller's
 *                                           --launcher-image runs
 *                                           `qemu -display help` */
#pragma once

#include <cjson/cJSON.h>

#include "common/cancel.h"
#include "provision/base/config.h"

struct cluster_doctor {
        const struct config *cfg;
        const struct cancel *cancel;
        const char *kubeconfig;
        const cJSON *verdicts; /* the nodes' probe verdicts, or NULL (no ssh) */
        const char *resource;  /* the device plugin's resource (vgpuenv.io/render) */
        const char *webhook_namespace;
};

/* Appends {link, check, status: ok|fail, detail, fix} to links, one per
 * link; returns how many failed (or -ENOMEM). Probe pods it starts are
 * deleted before it returns. */
int cluster_doctor_links(const struct cluster_doctor *d, cJSON *links);
