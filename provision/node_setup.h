/* Node setup shared by every VM provider, over libssh, idempotent, as plan
 * steps in one lane per node: mesa (skipped when already installed, e.g. by the image
 * customization of the local provider), virtio-gpu loaded now and at boot,
 * render node usable by uid/gid 107 (udev rule), the CDI spec the webhook's
 * cdi mode refers to, and the render-node probe (build/vgpuenv-probe copied
 * and run). The probe verdicts are what `up` prints last. */
#pragma once

#include <cjson/cJSON.h>

#include "provision/base/context.h"
#include "provision/base/state.h"

#include "provision/base/node_files.h"

struct plan;
/* Add, for each of names (node i in lane i+1, as the provider's steps for
 * it), a connect step and a step per part of node setup (setup false: the
 * probe only), then the "verdicts" step: it records which nodes passed in
 * the state, prints the table (not with --json), and with halt_on_failure
 * stops the plan when a probe failed. *ret_verdicts (owned by the plan):
 * the JSON array of { "node", "ok", "checks": [ {name, ok, detail} ],
 * "changed", "family", "error" }, filled as the steps run. */
int node_setup_plan(struct plan *p, struct run_ctx *ctx, char *const *names, bool setup,
                    bool halt_on_failure, cJSON **ret_verdicts);

/* Print verdicts as a table: node, check, result, detail. */
void node_verdicts_print(const cJSON *verdicts, FILE *out);
