/* One place that opens libguestfs handles, so every appliance launch gets the
 * same host-specific settings: the direct backend under TCG when KVM is
 * broken (the appliance crashes on a broken nested KVM otherwise), enough
 * memory for a package manager, and errors kept for our own messages. */
#include <errno.h>
#include <guestfs.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "provision/base/accel.h"

int image_guestfs_open(struct run_ctx *ctx, guestfs_h **ret)
{
        enum accel_verdict accel;
        guestfs_h *g;
        int r;

        r = accel_choose(ctx, &accel);
        if (r < 0)
                return r;
        g = guestfs_create();
        if (!g)
                return log_error_errno(ENOMEM, "cannot create a libguestfs handle");
        guestfs_set_error_handler(g, NULL, NULL);
        /* The user's own LIBGUESTFS_BACKEND / _SETTINGS win; otherwise a
         * broken KVM means the direct backend forced onto TCG. */
        if (accel == ACCEL_VERDICT_TCG) {
                char *settings[] = {"force_tcg", NULL};
                if (isempty(getenv("LIBGUESTFS_BACKEND")))
                        guestfs_set_backend(g, "direct");
                if (isempty(getenv("LIBGUESTFS_BACKEND_SETTINGS")))
                        guestfs_set_backend_settings(g, settings);
        }
        guestfs_set_memsize(g, 1280);
        /* One vCPU: under TCG a second one slowed apt in the appliance from
         * 60 s to 75 s (cross-vCPU synchronisation, 2 host cores). */
        guestfs_set_smp(g, 1);
        *ret = g;
        return 0;
}

const char *image_guestfs_error(guestfs_h *g)
{
        const char *e = guestfs_last_error(g);

        return e ? e : "unknown libguestfs error";
}
