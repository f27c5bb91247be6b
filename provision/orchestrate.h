/* The orchestration behind `vgpuenv up`, `down` and `status`: provider,
 * then node setup and probe verdicts, then cluster wiring, with the state
 * file and rollback in between. The cli/ commands only parse options and
 * call these. */
#pragma once

#include <cjson/cJSON.h>

#include "provision/base/context.h"

/* Returns 0 when every node's probe passed; -EIO when a probe failed (the
 * nodes stay up so they can be inspected); other -errno on failure, after
 * rolling back what this run made. */
int provision_up(struct run_ctx *ctx);
int provision_down(struct run_ctx *ctx);
/* *ret: {"cluster","provider","nodes":[...],"resources":[...],...}. */
int provision_status(struct run_ctx *ctx, cJSON **ret);
