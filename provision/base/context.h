/* The run context every command and step receives: the loaded config,
 * where state, caches and our own programs live, the run's cancel token
 * (Ctrl-C), its log, and the lock on the cluster.
 *
 * There is no dry-run mode here: a dry run prints the plan (plan.h) and
 * runs nothing, so no component has to know about it. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "common/cancel.h"
#include "provision/base/config.h"

struct run_ctx {
        struct config *cfg;
        bool json;            /* machine output on stdout */
        bool verbose;         /* -v: programs' output on our stderr too */
        struct cancel cancel; /* the run's root token, fired by Ctrl-C */
        struct cancel_registry children;
        char *state_dir; /* <state>/<cluster name> */
        char *cache_dir; /* shared content cache */
        char *build_dir; /* where vgpuenv-probe and friends live */
        int log_fd;      /* the run's log, -1 until run_ctx_open_log */
        char *log_path;
        int lock_fd; /* the cluster's lock, -1 when not held */
};

int run_ctx_init(struct run_ctx *ctx, struct config *cfg);
void run_ctx_done(struct run_ctx *ctx);

/* Turn SIGINT/SIGTERM into cancelling ctx->cancel (common/cancel.h). */
int run_ctx_watch_signals(struct run_ctx *ctx, enum cancel_second second);

/* Open <state root>/logs/<cluster>-<UTC time>-<what>-<pid>.log and send
 * every log line there too; the path is printed once. Logs live beside the
 * cluster's state, not in it: they outlive `down` and a rolled-back first
 * `up`. The newest 20 of a cluster are kept. */
int run_ctx_open_log(struct run_ctx *ctx, const char *what);

/* Take the cluster's lock (<state root>/<cluster>.lock) so two up/down runs of one
 * cluster cannot interleave. Waits up to wait_seconds while another
 * process holds it, then fails with -EBUSY naming that process (its pid,
 * command and start time, written into the lock file). */
int run_ctx_lock(struct run_ctx *ctx, const char *command, double wait_seconds);
