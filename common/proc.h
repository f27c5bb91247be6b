/* The one way vgpuenv runs another program.
 *
 * From an argv vector, never a shell string built from input, with an
 * explicit environment delta, in its own process group (so a Ctrl-C on the
 * terminal reaches only us, and we decide: the cancel token's signal, then
 * SIGKILL after a grace period), honouring a cancel token (deadline and
 * interruption). Output can be captured, streamed into the run's log with a
 * prefix per line (quiet by default), echoed to our stderr (-v), and handed
 * to a callback as it arrives (e2e's progress line); the last lines are kept
 * for the error message when the program fails.
 *
 * The child does nothing between fork and exec but async-signal-safe calls:
 * everything it needs (the path of the program, argv, the environment) is
 * built before fork, and an exec failure travels back over a close-on-exec
 * pipe. Standard input is fed from the same poll loop that reads the output,
 * so a program that writes before it has read all its input cannot deadlock
 * us, and SIGPIPE is blocked only in the calling thread while we write. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/cancel.h"
#include "common/macro.h"

enum proc_output {
        PROC_DISCARD,   /* /dev/null (still kept in the log when log_fd is set) */
        PROC_CAPTURE,   /* into proc_result.out/err */
        PROC_INHERIT,   /* straight to our own stdout/stderr */
        PROC_TO_STDERR, /* stdout: to our stderr, so --json output stays clean */
        PROC_TO_STDOUT  /* stderr only: into the same pipe or place as stdout, in order */
};

struct proc_opts {
        char *const *argv;      /* argv[0] is searched in PATH unless it has a '/' */
        char *const *env_set;   /* "KEY=VALUE", added or replaced */
        char *const *env_unset; /* "KEY" */
        const char *cwd;        /* NULL: ours */
        const void *stdin_data; /* fed to the program; NULL: /dev/null */
        size_t stdin_size;
        bool stdin_inherit; /* our own stdin instead */
        enum proc_output out, err;
        /* Every line of output also goes to log_fd (the run's log) as
         * "PREFIX| line". -1: no log. */
        int log_fd;
        const char *log_prefix;
        bool echo; /* output also to our stderr as it comes (-v) */
        /* Called with each chunk of output (stream 1 or 2) as it arrives. */
        void (*on_output)(void *userdata, int stream, const char *data, size_t n);
        /* Called when nothing arrived for a while (at most every 100 ms with
         * a cancel token, else every second): a progress line's heartbeat. */
        void (*on_idle)(void *userdata);
        void *userdata;
        const struct cancel *cancel; /* NULL: never stopped */
        int cancel_signal;           /* sent first when cancelled; 0: SIGTERM */
        double kill_grace;           /* then SIGKILL after this long; 0: 1 s */
};

struct proc_result {
        int exit_code;  /* exit status, or 128 + signal */
        int stopped_by; /* 0, or -ECANCELED / -ETIMEDOUT when the token stopped it */
        struct buf out, err;
        struct buf tail; /* the last lines of output (both streams), for messages */
        double elapsed;
};

void proc_result_done(struct proc_result *r);
#define _cleanup_proc_result_ _cleanup_(proc_result_done)

/* 0 when the program ran (whatever its exit status; see exit_code and
 * stopped_by); -ENOENT when it is not found, other -errno when it could not
 * be started. Logs nothing: the caller knows what the program was for. */
int proc_run(const struct proc_opts *o, struct proc_result *ret);

/* The usual case: run and expect exit 0. Captures stdout into *ret_out when
 * given; output goes to log_fd (with prefix what) or is discarded. A failure
 * is logged once with what, the exit status and the last lines of output,
 * and returned: -ENOENT, -ECANCELED, -ETIMEDOUT, or -EIO for a non-zero
 * exit. */
int proc_run_checked(const char *what, char *const *argv, const struct cancel *cancel, int log_fd,
                     char **ret_out);

/* Search PATH for an executable; NULL when absent. */
char *find_program(const char *name);

/* The environment a child gets: ours with env_unset removed and env_set
 * applied. */
char **proc_build_env(char *const *env_set, char *const *env_unset);
