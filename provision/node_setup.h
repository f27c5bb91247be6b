/* Node setup shared by every VM provider, over libssh, idempotent, one
 * thread per node: mesa (skipped when already installed, e.g. by the image
 * customization of the local provider), virtio-gpu loaded now and at boot,
 * render node usable by uid/gid 107 (udev rule), the CDI spec the webhook's
 * cdi mode refers to, and the render-node probe (build/vgpuenv-probe copied
 * and run). The probe verdicts are what `up` prints last. */
#pragma once

#include <cjson/cJSON.h>

#include "provision/base/context.h"
#include "provision/base/state.h"

/* Files node setup owns on every node. The local provider's image carries
 * them already (images/customize.c writes the same bytes), so its nodes
 * need no write at `up`. */
#define NODE_MODULES_LOAD_PATH "/etc/modules-load.d/vgpuenv.conf"
#define NODE_UDEV_RULE_PATH "/etc/udev/rules.d/70-vgpuenv-render.rules"
extern const char node_modules_load_text[];
extern const char node_udev_rule_text[];

/* Runs setup and the probe on every node of the state in parallel.
 * *ret_verdicts: JSON array of { "node", "ok", "checks": [ {name, ok, detail} ],
 * "error" }. Returns 0 when every node was set up and every probe passed,
 * -EIO when some probe failed (verdicts still filled), other -errno when a
 * node could not be reached. In dry-run prints what it would run. */
int node_setup_all(struct run_ctx *ctx, struct state *st, cJSON **ret_verdicts);

/* Only run the probe (vgpuenv probe, doctor). */
int node_probe_all(struct run_ctx *ctx, struct state *st, cJSON **ret_verdicts);

/* Print verdicts as a table: node, check, result, detail. */
void node_verdicts_print(const cJSON *verdicts, FILE *out);
