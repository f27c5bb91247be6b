/* Running `make functest` in a KubeVirt checkout: the child in its own
 * process group, its output streamed to our stdout and a log file, a progress
 * line on stderr, and Ctrl-C turned into an orderly stop so the run still
 * yields a (partial) report. */
#pragma once

#include <stdbool.h>

#include "common/cancel.h"
#include "e2e/progress.h"

/* Seconds between the SIGINT of a first Ctrl-C and SIGKILL. */
#define FUNCTEST_GRACE 30.0

struct functest_opts {
        const char *dir;        /* the kubevirt checkout */
        char *const *argv;      /* default: make functest */
        char *const *env_set;   /* "KEY=VALUE" added or replaced */
        char *const *env_unset; /* removed from the environment */
        const char *log_path;   /* full console output */
        bool quiet;             /* do not echo the output, progress only */
        double grace;           /* seconds between SIGINT and SIGKILL (0: FUNCTEST_GRACE) */
        /* The run's token: its first firing sends SIGINT, a second Ctrl-C
         * (hard) SIGKILL. NULL: never stopped. */
        const struct cancel *cancel;
};

struct functest_result {
        int exit_code;    /* exit status, or 128+signal */
        bool interrupted; /* Ctrl-C (the token) stopped the run */
        double elapsed;
        struct ginkgo_progress progress;
};

/* Returns 0 when the command ran (see ret->exit_code), negative errno (logged)
 * when it could not be started. */
int functest_run(const struct functest_opts *o, struct functest_result *ret);

/* The environment the child would get, for tests and --dry-run:
 * environ minus env_unset, with env_set applied. */
char **functest_build_env(char *const *env_set, char *const *env_unset);
