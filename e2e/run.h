/* `vgpuenv e2e run`: KubeVirt's functional tests (MediatedDevices by
 * default) against the cluster that `vgpuenv up` made from a config.
 *
 * Before anything is written: the checkout is inspected (which KubeVirt:
 * e2e/checkout.h), the suite's provider config and environment are worked
 * out (e2e/suite_config.h), the cluster's rules are checked (one KubeVirt
 * CR, one schedulable node for MediatedDevices, no leftover test
 * namespaces: e2e/cluster_check.h) and the webhook is proven from a node
 * (e2e/webhook_check.h). Then `make functest` runs in the checkout with
 *   KUBEVIRT_E2E_FOCUS, KUBEVIRT_E2E_SKIP (removed when not given),
 *   KUBEVIRT_PROVIDER, KUBEVIRTCI_CONFIG_PATH (where the provider config
 *   is), KUBECONFIG, DOCKER_PREFIX, DOCKER_TAG, ARTIFACTS=<run dir>/artifacts,
 *   VGPU_DISPLAY=true only for a KubeVirt that reads it with the display on
 * and the results land in the run directory (e2e/report.h). */
#pragma once

#include <stdbool.h>

#define E2E_DEFAULT_FOCUS "MediatedDevices"

enum e2e_display { E2E_DISPLAY_AUTO = -1, E2E_DISPLAY_OFF = 0, E2E_DISPLAY_ON = 1 };

struct e2e_run_opts {
        const char *config;         /* cluster config file */
        const char *kubevirt_dir;   /* KubeVirt checkout with `make functest` */
        const char *focus;          /* NULL: E2E_DEFAULT_FOCUS */
        const char *skip;           /* NULL: unset */
        const char *run_dir;        /* NULL: _e2e/<cluster>-<UTC time> */
        const char *name;           /* cell name for reports; NULL: cluster name */
        const char *kubeconfig;     /* for clusters the suite reaches as external */
        int display;                /* enum e2e_display */
        const char *vgpu_display;   /* dmabuf|region|none; NULL: dmabuf */
        const char *expect_outcome; /* passed|failed; NULL: passed */
        const char *expect_message; /* with failed: text every failure shows */
        bool delete_leftovers;      /* delete kubevirt-test-* namespaces first */
        bool collect;               /* collect artifacts on failure (default) */
        bool quiet;                 /* progress only, output to the log file */
        double grace;               /* seconds from Ctrl-C to SIGKILL */
};

struct e2e_run_result {
        int outcome;      /* enum e2e_outcome */
        bool as_expected; /* the outcome the options expected */
};

/* 0 when the suite ran and run.json says how (*ret); -EINVAL for bad usage
 * or config, another negative errno (logged) when the run could not start:
 * nothing is left in the run directory then. */
int e2e_run(const struct e2e_run_opts *o, struct e2e_run_result *ret);
