/* What the files of images/ share and nobody else needs. */
#pragma once

#include <guestfs.h>

#include "images/image.h"

/* Add the "base-image" step; *ret_dir gets its cache dir (owned by the
 * plan). */
void image_plan_base(struct plan *p, struct run_ctx *ctx, const enum accel_verdict *accel,
                     char **ret_dir);

/* The last libguestfs error of g, for messages. */
static inline const char *image_guestfs_error(guestfs_h *g)
{
        const char *e = guestfs_last_error(g);
        return e ? e : "unknown libguestfs error";
}
