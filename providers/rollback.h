/* Rolling back after Ctrl-C in providers that undo their work by running
 * programs (kcli delete, make cluster-down): ctx_run refuses to start
 * anything once the run is cancelled, so the rollback lifts the flag for
 * its own commands and puts it back afterwards. A further Ctrl-C during the
 * rollback cancels the rollback command (the state keeps what is left, for
 * `vgpuenv down`). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>

#include "provision/base/context.h"

static inline bool rollback_begin(struct run_ctx *ctx)
{
        return atomic_exchange(&ctx->cancelled, false);
}

static inline void rollback_end(struct run_ctx *ctx, bool was_cancelled)
{
        if (was_cancelled)
                atomic_store(&ctx->cancelled, true);
}
