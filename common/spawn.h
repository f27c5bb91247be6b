/* Running external programs without a shell.
 *
 * vgpuenv drives mmdebstrap, qemu, kcli, make and kubectl. Every one of them
 * is started from an argv vector (never a shell string built from input),
 * with an explicit environment delta, and optionally a time limit. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct spawn_opts {
        const char *cwd;      /* NULL: inherit */
        char *const *env_set; /* "KEY=VALUE" entries added or replaced */
        char *const *env_unset;
        double timeout;         /* seconds, 0 = none; the child gets SIGKILL */
        bool capture_stdout;    /* else inherited (streams to the user) */
        bool capture_stderr;    /* else inherited */
        bool stdout_to_stderr;  /* keep our stdout clean for --json */
        const char *stdin_data; /* NULL: /dev/null */
        /* When it becomes true the child's process group gets SIGTERM (Ctrl-C
         * reaches a long mmdebstrap, not only us). NULL: never. */
        const atomic_bool *cancel;
};

struct spawn_result {
        int exit_code; /* exit status, or 128+signal */
        bool timed_out;
        bool cancelled;
        char *out; /* captured stdout (NUL-terminated) or NULL */
        char *err; /* captured stderr or NULL */
};

void spawn_result_done(struct spawn_result *r);

/* Returns 0 when the program ran (whatever its exit code), negative errno
 * when it could not be started (-ENOENT for a missing program). */
int spawn_run(char *const *argv, const struct spawn_opts *opts, struct spawn_result *ret);

/* find_program() lives in common/proc.h. */
#include "common/proc.h"
