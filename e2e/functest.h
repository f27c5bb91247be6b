/* Running `make functest` in a KubeVirt checkout: the child in its own
 * process group, its output streamed to our stdout and a log file, a progress
 * line on stderr, and Ctrl-C turned into an orderly stop so the run still
 * yields a (partial) report. */
#pragma once

#include <stdbool.h>

#include "e2e/progress.h"

struct functest_opts {
        const char *dir;        /* the kubevirt checkout */
        char *const *argv;      /* default: make functest */
        char *const *env_set;   /* "KEY=VALUE" added or replaced */
        char *const *env_unset; /* removed from the environment */
        const char *log_path;   /* full console output */
        bool quiet;             /* do not echo the output, progress only */
        double grace;           /* seconds between SIGINT and SIGKILL */
};

struct functest_result {
        int exit_code;    /* exit status, or 128+signal */
        bool interrupted; /* we got SIGINT/SIGTERM and stopped the run */
        double elapsed;
        struct ginkgo_progress progress;
};

/* Returns 0 when the command ran (see ret->exit_code), negative errno (logged)
 * when it could not be started. */
int functest_run(const struct functest_opts *o, struct functest_result *ret);

/* The environment the child would get, for tests and --dry-run:
 * environ minus env_unset, with env_set applied. */
char **functest_build_env(char *const *env_set, char *const *env_unset);
