/* The run context (context.h): directories, dry-run printing of commands,
 * and turning SIGINT/SIGTERM into a cancellation flag so `up` can roll back
 * instead of dying half-way. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "provision/base/context.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

/* Where our own programs (vgpuenv-probe, ...) live: next to the running
 * binary, whether that is build/ or an installed bin/. */
static char *exe_dir(void)
{
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        char *slash;

        if (n <= 0)
                return NULL;
        buf[n] = 0;
        slash = strrchr(buf, '/');
        if (!slash)
                return NULL;
        *slash = 0;
        return strdup(*buf ? buf : "/");
}

int run_ctx_init(struct run_ctx *ctx, struct config *cfg, bool dry_run)
{
        _cleanup_free_ char *state = vgpuenv_state_dir();

        *ctx = (struct run_ctx){.cfg = cfg, .dry_run = dry_run, .plan = stdout};
        atomic_init(&ctx->cancelled, false);
        if (!state)
                return log_error_errno(ENOMEM, "out of memory");
        ctx->state_dir = strdup_printf("%s/%s", state, cfg->name);
        ctx->cache_dir = vgpuenv_cache_dir();
        ctx->build_dir = exe_dir();
        if (!ctx->state_dir || !ctx->cache_dir || !ctx->build_dir) {
                run_ctx_done(ctx);
                return log_error_errno(ENOMEM, "cannot set up the run context: out of memory or "
                                               "/proc/self/exe unreadable");
        }
        return 0;
}

void run_ctx_done(struct run_ctx *ctx)
{
        if (!ctx)
                return;
        free(ctx->state_dir);
        free(ctx->cache_dir);
        free(ctx->build_dir);
        ctx->state_dir = ctx->cache_dir = ctx->build_dir = NULL;
}

static void *cancel_thread(void *arg)
{
        struct run_ctx *ctx = arg;
        sigset_t set;
        int sig;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        for (;;) {
                if (sigwait(&set, &sig) != 0)
                        continue;
                if (atomic_exchange(&ctx->cancelled, true)) {
                        /* The user insists: rollback is abandoned. */
                        log_error("interrupted again: exiting without rolling back");
                        _exit(130);
                }
                log_warning("interrupted: rolling back (%s again exits at once)",
                            sig == SIGINT ? "Ctrl-C" : "SIGTERM");
        }
        return NULL;
}

int cancel_watch_start(struct run_ctx *ctx)
{
        pthread_attr_t attr;
        pthread_t t;
        sigset_t set;
        int r;

        /* Blocked here, before any other thread exists, so every thread
         * created later inherits the mask and only sigwait() sees them. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        r = pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (r != 0)
                return log_error_errno(r, "cannot block SIGINT/SIGTERM: %s", strerror(r));
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, cancel_thread, ctx);
        pthread_attr_destroy(&attr);
        if (r != 0)
                return log_error_errno(r, "cannot start the signal thread: %s", strerror(r));
        return 0;
}

/* "run: [in DIR] KEY=VAL ... argv", every piece shell-quoted so the line can
 * be pasted into a shell as is. */
static int print_command(struct run_ctx *ctx, char *const *argv, char *const *env_set,
                         const char *cwd)
{
        _cleanup_free_ char *cmd = shell_join(argv);
        FILE *f = ctx->plan ? ctx->plan : stdout;

        if (!cmd)
                return -ENOMEM;
        fputs("run: ", f);
        if (cwd) {
                _cleanup_free_ char *q = shell_quote(cwd);
                if (!q)
                        return -ENOMEM;
                fprintf(f, "[in %s] ", q);
        }
        for (size_t i = 0; env_set && env_set[i]; i++) {
                const char *eq = strchr(env_set[i], '=');
                _cleanup_free_ char *q = shell_quote(eq ? eq + 1 : "");
                if (!q)
                        return -ENOMEM;
                fprintf(f, "%.*s=%s ", eq ? (int)(eq - env_set[i]) : (int)strlen(env_set[i]),
                        env_set[i], q);
        }
        fprintf(f, "%s\n", cmd);
        fflush(f);
        return 0;
}

int ctx_run(struct run_ctx *ctx, const char *what, char *const *argv, char *const *env_set,
            const char *cwd, struct spawn_result *ret)
{
        struct spawn_opts o = {
            .cwd = cwd,
            .env_set = env_set,
            .capture_stdout = ret != NULL,
            .capture_stderr = ret != NULL,
            /* Commands' chatter must not mix into --json output. */
            .stdout_to_stderr = ret == NULL,
            .cancel = &ctx->cancelled,
        };
        struct spawn_result res = {};
        int r;

        if (!argv || !argv[0])
                return log_error_errno(EINVAL, "%s: no command given", what);
        if (ctx->dry_run) {
                if (ret) {
                        *ret = (struct spawn_result){.out = strdup(""), .err = strdup("")};
                        if (!ret->out || !ret->err) {
                                spawn_result_done(ret);
                                return log_error_errno(ENOMEM, "out of memory");
                        }
                }
                r = print_command(ctx, argv, env_set, cwd);
                return r < 0 ? log_error_errno(r, "%s: cannot print the plan", what) : 0;
        }
        if (ctx_cancelled(ctx))
                return log_error_errno(ECANCELED, "%s: not started, interrupted", what);
        r = spawn_run(argv, &o, ret ? ret : &res);
        if (r == -ENOENT)
                return log_error_errno(r, "%s failed: %s not found in PATH", what, argv[0]);
        if (r < 0)
                return log_error_errno(r, "%s failed: cannot run %s: %s", what, argv[0],
                                       strerror(-r));
        if ((ret ? ret : &res)->cancelled) {
                spawn_result_done(&res);
                return log_error_errno(ECANCELED, "%s: stopped, interrupted", what);
        }
        if (ret)
                return 0;
        r = res.exit_code;
        spawn_result_done(&res);
        if (r != 0)
                return log_error_errno(EIO, "%s failed: %s exited with %d", what, argv[0], r);
        return 0;
}

void ctx_plan(struct run_ctx *ctx, const char *fmt, ...)
{
        FILE *f = ctx->plan ? ctx->plan : stdout;
        va_list ap;

        /* A plan line in a real run would corrupt `status --json`-style
         * output on stdout. */
        if (!ctx->dry_run)
                return;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fflush(f);
}
