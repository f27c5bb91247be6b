/* What a KubeVirt checkout runs: is it one (a Makefile with functest and
 * hack/functests.sh), which MediatedDevices tests it holds, and its commit.
 *
 * Two kinds of KubeVirt matter here (tests/mdev_configuration_allocation_test.go):
 * - main (d923fdb and the releases): the tests always keep the vGPU display
 *   on and assert display=on and ramfb=on in the domain; VGPU_DISPLAY means
 *   nothing to them;
 * - the branch of kubevirt pull request 16712 (the fake vGPU's seeds): the
 *   tests read VGPU_DISPLAY (shouldDisableDisplay()) and turn the display
 *   off unless it is "true".
 * The file is read, not run: a checkout whose test file mentions
 * VGPU_DISPLAY is the second kind. */
#pragma once

#include <stdbool.h>

#define KUBEVIRT_MDEV_TEST_FILE "tests/mdev_configuration_allocation_test.go"

enum kubevirt_ref {
        KUBEVIRT_REF_MAIN,          /* display always on */
        KUBEVIRT_REF_DISPLAY_SWITCH /* VGPU_DISPLAY=true turns it on */
};

struct kubevirt_checkout {
        char *dir;    /* absolute */
        int ref;      /* enum kubevirt_ref */
        char *commit; /* `git rev-parse HEAD` when dir is a git work tree, else NULL */
};

/* -ENOENT/-EINVAL (logged, naming what is missing) when dir is no KubeVirt
 * checkout. */
int kubevirt_checkout_inspect(const char *dir, struct kubevirt_checkout *ret);
void kubevirt_checkout_done(struct kubevirt_checkout *k);

/* "main" or "vgpu-display-switch", for run.json and reports. */
const char *kubevirt_ref_name(int ref);
int kubevirt_ref_from_name(const char *s);
/* One line for people: what the display does with this KubeVirt. */
const char *kubevirt_ref_describe(int ref);
