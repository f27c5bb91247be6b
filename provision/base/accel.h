/* Deciding between KVM and TCG by trying, not by looking at /dev/kvm.
 *
 * On nested clouds /dev/kvm exists but KVM spins or asserts, so the probe
 * boots a 64 KiB "BIOS" whose reset vector writes to QEMU's isa-debug-exit
 * port: QEMU exits with status 3 within milliseconds when the accelerator
 * really executes guest code. The verdict is cached per host boot. */
#pragma once

#include <stdbool.h>

#include "provision/base/context.h"

enum accel_verdict { ACCEL_VERDICT_KVM, ACCEL_VERDICT_TCG };

/* Run the probe with accel "kvm" or "tcg"; 0 when guest code ran, -ENODEV
 * when QEMU failed, -ETIMEDOUT when it hung. detail gets QEMU's message. */
int accel_probe(const char *accel, double timeout, char **detail);

/* Resolve config local.accel (auto|kvm|tcg) to a verdict, probing for auto,
 * printing a one-line notice when falling back to TCG. Never fails for auto;
 * for an explicit "kvm" that does not work, returns -ENODEV with a message. */
int accel_choose(struct run_ctx *ctx, enum accel_verdict *ret);
