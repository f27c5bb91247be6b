/* The run context every command and provider receives: the loaded config,
 * where state and caches live, dry-run and cancellation.
 *
 * ctx_run() is the single way providers run external programs: in dry-run
 * mode it prints the command line, its environment delta and working
 * directory instead of running it, which is how `up --dry-run` shows a
 * complete plan without a parallel "describe" code path. */
#pragma once

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/spawn.h"
#include "provision/base/config.h"

struct run_ctx {
        struct config *cfg;
        bool dry_run;
        bool json;             /* machine output on stdout */
        atomic_bool cancelled; /* set by the signal thread on SIGINT/SIGTERM */
        char *state_dir;       /* <state>/<cluster name> */
        char *cache_dir;       /* shared content cache */
        char *build_dir;       /* where vgpuenv-probe and friends live */
        FILE *plan;            /* dry-run output, stdout */
};

int run_ctx_init(struct run_ctx *ctx, struct config *cfg, bool dry_run);
void run_ctx_done(struct run_ctx *ctx);

static inline bool ctx_cancelled(struct run_ctx *ctx)
{
        return atomic_load(&ctx->cancelled);
}

/* Block SIGINT/SIGTERM in every thread and start a thread that turns them
 * into ctx->cancelled; long steps poll it and roll back. A second signal
 * exits at once with 130. */
int cancel_watch_start(struct run_ctx *ctx);

/* Run argv (no shell). In dry-run prints "run: [cwd] ENV=... argv..." to
 * ctx->plan and returns 0 with an empty result. what names the step in
 * errors. ret may be NULL (output streams to stderr). A non-zero exit is
 * logged with what and returned as -EIO unless ret is given, in which case
 * the caller judges exit_code. */
int ctx_run(struct run_ctx *ctx, const char *what, char *const *argv, char *const *env_set,
            const char *cwd, struct spawn_result *ret);

/* Dry-run plan lines for things that are not commands (a file written, a
 * libvirt object defined, a manifest applied). printf-like. */
void ctx_plan(struct run_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
