/* One e2e run's state while it runs, and what it records of itself: the
 * run.json of the run directory (written when the suite starts, finished=false,
 * so even a vgpuenv killed with SIGKILL leaves a directory the report can
 * read, and again at the end) and the summary on stderr. */
#pragma once

#include <stdbool.h>

#include "e2e/checkout.h"
#include "e2e/functest.h"
#include "e2e/junit.h"
#include "e2e/run.h"
#include "e2e/suite_config.h"
#include "e2e/verdict.h"
#include "provision/base/config.h"
#include "provision/base/context.h"
#include "provision/base/state.h"

struct provider_ops;

struct e2e_run {
        const struct e2e_run_opts *o;
        struct config cfg;
        struct run_ctx ctx;
        struct state st;
        const struct provider_ops *ops;
        struct kubevirt_checkout kv;
        struct suite_config suite;
        bool display;     /* the vGPU display as the suite runs it */
        int vgpu_display; /* enum vgpu_display */
        struct e2e_expect expect;
        const char *focus, *name;
        char *run_dir, *art, *logp, *collected, *started;
        char **env_set, **env_unset;
        /* After the suite ran. */
        bool finished;
        struct functest_result fr;
        struct junit_result res;
        char **errors;
        int outcome; /* enum e2e_outcome */
        bool as_expected;
        unsigned collected_files;
};

int run_info_write(const struct e2e_run *r);
void run_info_print_summary(const struct e2e_run *r);
