/* Deciding between KVM and TCG by booting a kernel, not by looking at
 * /dev/kvm.
 *
 * On nested clouds /dev/kvm exists but KVM either aborts, or runs a few
 * real-mode instructions correctly and then spins forever on a real kernel
 * (../shared/ENVIRONMENT.md): a probe that only runs a BIOS passes there and
 * then hangs the appliance and every VM. So the probe boots this host's own
 * kernel (/boot/vmlinuz-*) under KVM with a tiny initramfs whose init
 * (accel_init.c, built as vgpuenv-kvm-init) prints a marker on the serial
 * console; KVM is used only when the marker arrives within the deadline
 * (deadlines.kvm_probe). The verdict and its evidence (what ran, how long,
 * what it printed) are cached per host boot; `vgpuenv doctor` shows them. */
#pragma once

#include <stdbool.h>

#include "common/cancel.h"
#include "provision/base/context.h"

enum accel_verdict { ACCEL_VERDICT_KVM, ACCEL_VERDICT_TCG };

/* What the init of the probe's initramfs prints on the console. */
#define ACCEL_PROBE_MARKER "vgpuenv-kvm-probe: init ran"

struct accel_evidence {
        enum accel_verdict verdict;
        char *command; /* the QEMU command line */
        char *kernel;  /* the kernel booted, or NULL when none was found */
        double seconds;
        char *output; /* the last lines QEMU and the console printed */
        char *reason; /* one line: why this verdict */
        bool cached;  /* read from the per-boot cache */
};

void accel_evidence_done(struct accel_evidence *e);

/* Boot the kernel under accel ("kvm", or "tcg" as the control) with the
 * probe's initramfs; 0 when the marker came within timeout, -ETIMEDOUT when
 * it did not, -ENODEV when QEMU failed, -ECANCELED on Ctrl-C. */
int accel_probe_kernel(struct run_ctx *ctx, const char *accel, double timeout,
                       const struct cancel *cancel, struct accel_evidence *ev);

/* Resolve local.accel (auto|kvm|tcg) to a verdict: tcg at once; auto from
 * the per-boot cache or a probe; kvm after a probe that must pass
 * (-ENODEV with the evidence in the message otherwise). ev may be NULL. */
int accel_choose(struct run_ctx *ctx, const struct cancel *cancel, enum accel_verdict *ret,
                 struct accel_evidence *ev);

struct plan;
/* Add the step "kvm-verdict" that fills *ret. */
void accel_plan(struct plan *p, struct run_ctx *ctx, enum accel_verdict *ret);
