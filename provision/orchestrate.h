/* The orchestration behind `vgpuenv up`, `down` and `status`: build the
 * plan (the provider's steps, then node setup and the render-node probe on
 * VM nodes, then cluster setup when the provider makes a Kubernetes
 * cluster), then print it (--dry-run) or run it under the cluster's lock
 * with the run's log. The cli/ commands only parse options and call these. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "provision/base/context.h"

/* 0 when every step ran and every node's probe passed; -EIO when a probe
 * failed (the plan stopped there: the nodes stay up for inspection); other
 * -errno on failure, after rolling back what this run made. */
int provision_up(struct run_ctx *ctx, bool dry_run);
int provision_down(struct run_ctx *ctx, bool dry_run);
/* *ret: {"cluster","provider","nodes":[...],"resources":[...],...}. */
int provision_status(struct run_ctx *ctx, cJSON **ret);
/* The render-node probe again on every node the state lists (vgpuenv probe,
 * doctor): 0 all passed, -EIO some failed; *ret_verdicts (caller frees) the
 * verdicts as node_setup_plan fills them. */
int provision_probe(struct run_ctx *ctx, cJSON **ret_verdicts);
