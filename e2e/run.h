/* `vgpuenv e2e run`: KubeVirt's functional tests (MediatedDevices by
 * default) against the cluster that `vgpuenv up` made from a config.
 *
 * The environment given to `make functest` in the checkout:
 *   KUBEVIRT_E2E_FOCUS   --focus, default "MediatedDevices"
 *   KUBEVIRT_E2E_SKIP    --skip, removed when not given
 *   VGPU_DISPLAY=true    on VM providers (display on); removed on Kind, where
 *                        QEMU fails with "vfio-display-dmabuf: opengl not
 *                        available" (docs/display-chain.md)
 *   KUBECONFIG           from the provider (or --kubeconfig)
 *   KUBEVIRT_PROVIDER    from the provider ("external" for local and kcli)
 *   ARTIFACTS            <run dir>/artifacts
 * Exit status: 0 all specs passed, 1 failures/errors/interrupted/no
 * results, 2 bad usage or config. */
#pragma once

#include <stdbool.h>

#define E2E_DEFAULT_FOCUS "MediatedDevices"

enum e2e_display { E2E_DISPLAY_AUTO = -1, E2E_DISPLAY_OFF = 0, E2E_DISPLAY_ON = 1 };

struct e2e_run_opts {
        const char *config;       /* cluster config file */
        const char *kubevirt_dir; /* KubeVirt checkout with `make functest` */
        const char *focus;        /* NULL: E2E_DEFAULT_FOCUS */
        const char *skip;         /* NULL: unset */
        const char *run_dir;      /* NULL: _e2e/<cluster>-<UTC time> */
        const char *name;         /* cell name for reports; NULL: cluster name */
        const char *kubeconfig;   /* override the provider's */
        int display;              /* enum e2e_display */
        bool collect;             /* collect artifacts on failure (default) */
        bool quiet;               /* progress only, output to the log file */
        double grace;             /* seconds from Ctrl-C to SIGKILL */
};

/* Returns the process exit code (0, 1 or 2). */
int e2e_run(const struct e2e_run_opts *o);
