/* What a run was expected to show, and whether it did.
 *
 * A matrix cell (or `e2e run --expect`) states the result it expects:
 * passed, or failed with a message every failing spec must show (e.g. Kind
 * with a DMABUF fake vGPU: "vfio-display-dmabuf: opengl not available", the
 * bug this project exists for). The fake vGPU's display mode is recorded
 * with each run because it decides that result (docs/display-chain.md, "the
 * plane probe"): dmabuf needs the five links, region needs none. */
#pragma once

#include <stdbool.h>

#include "e2e/junit.h"

enum vgpu_display { VGPU_DISPLAY_DMABUF, VGPU_DISPLAY_REGION, VGPU_DISPLAY_NONE };

/* "dmabuf", "region", "none", NULL-terminated (a schema enum). */
extern const char *const vgpu_display_names[];
int vgpu_display_from_name(const char *s);
const char *vgpu_display_name(int mode);

struct e2e_expect {
        bool failure;  /* expected outcome failed (else passed) */
        char *message; /* failed: text every failing spec's failure shows */
};

void e2e_expect_done(struct e2e_expect *x);

/* Did a run with this outcome (enum e2e_outcome) and these results meet x?
 * *ret_why (optional) gets one line saying why not. */
bool e2e_expect_met(const struct e2e_expect *x, int outcome, const struct junit_result *res,
                    char **ret_why);
