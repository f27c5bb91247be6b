/* The run context (context.h): directories, the run's cancel token and log,
 * and the per-cluster lock. */
#include "provision/base/context.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

#define RUN_LOGS_KEPT 20

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

int run_ctx_init(struct run_ctx *ctx, struct config *cfg)
{
        _cleanup_free_ char *state = vgpuenv_state_dir();

        *ctx = (struct run_ctx){.cfg = cfg, .log_fd = -1, .lock_fd = -1};
        cancel_init_root(&ctx->cancel, &ctx->children);
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
        if (ctx->log_fd >= 0) {
                log_set_file(-1);
                close(ctx->log_fd);
        }
        if (ctx->lock_fd >= 0)
                close(ctx->lock_fd); /* releases the flock */
        FREE_ALL(ctx->state_dir, ctx->cache_dir, ctx->build_dir, ctx->log_path);
        cancel_registry_done(&ctx->children);
        ctx->state_dir = ctx->cache_dir = ctx->build_dir = ctx->log_path = NULL;
        ctx->log_fd = ctx->lock_fd = -1;
}

int run_ctx_watch_signals(struct run_ctx *ctx, enum cancel_second second)
{
        return cancel_watch_signals(&ctx->cancel, second);
}

/* The state dir's parent: logs and locks live beside the cluster's state,
 * not in it, so they outlive `down` and a rolled-back first `up`. */
static char *state_root(const struct run_ctx *ctx)
{
        char *root = strdup(ctx->state_dir), *slash = root ? strrchr(root, '/') : NULL;

        if (slash && slash != root)
                *slash = 0;
        return root;
}

/* Keep the newest logs of this cluster only. */
static void prune_logs(const char *dir, const char *cluster)
{
        _cleanup_free_ char *prefix = strdup_printf("%s-", cluster);
        struct dirent **ents = NULL;
        int n = prefix ? scandir(dir, &ents, NULL, alphasort) : -1, mine = 0;

        for (int i = n - 1; i >= 0; i--) {
                if (startswith(ents[i]->d_name, prefix) && endswith(ents[i]->d_name, ".log") &&
                    ++mine > RUN_LOGS_KEPT) {
                        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, ents[i]->d_name);
                        if (p)
                                unlink(p);
                }
                free(ents[i]);
        }
        free(ents);
}

int run_ctx_open_log(struct run_ctx *ctx, const char *what)
{
        _cleanup_free_ char *root = state_root(ctx);
        _cleanup_free_ char *dir = root ? strdup_printf("%s/logs", root) : NULL;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!dir)
                return log_error_errno(ENOMEM, "out of memory");
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        if ((r = mkdir_p(dir, 0700)) < 0)
                return log_error_errno(r, "cannot create %s: %m", dir);
        prune_logs(dir, ctx->cfg->name);
        free(ctx->log_path);
        ctx->log_path =
            strdup_printf("%s/%s-%s-%s-%d.log", dir, ctx->cfg->name, stamp, what, (int)getpid());
        if (!ctx->log_path)
                return log_error_errno(ENOMEM, "out of memory");
        ctx->log_fd = open(ctx->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (ctx->log_fd < 0)
                return log_error_errno(errno, "cannot create %s: %m", ctx->log_path);
        log_set_file(ctx->log_fd);
        log_info("log: %s", ctx->log_path);
        return 0;
}

/* "pid 1234, vgpuenv up, since 2026-12-01 07:03:00 UTC" from the lock file. */
static char *lock_holder(int fd)
{
        char buf[256];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

        if (n <= 0)
                return strdup("another process (it wrote no name)");
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return strdup(buf);
}

int run_ctx_lock(struct run_ctx *ctx, const char *command, double wait_seconds)
{
        _cleanup_free_ char *path = strdup_printf("%s.lock", ctx->state_dir);
        _cleanup_close_ int fd = -1;
        double until = now_seconds() + wait_seconds;
        bool said = false;
        int r;

        if (!path)
                return log_error_errno(ENOMEM, "out of memory");
        _cleanup_free_ char *root = state_root(ctx);
        if (!root)
                return log_error_errno(ENOMEM, "out of memory");
        /* QEMU (libvirt-qemu) must traverse the state dirs to the disks. */
        if ((r = mkdir_p(root, 0711)) < 0)
                return log_error_errno(r, "cannot create %s: %m", root);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(errno, "cannot open %s: %m", path);
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return log_error_errno(errno, "cannot lock %s: %m", path);
                _cleanup_free_ char *who = lock_holder(fd);
                if (now_seconds() >= until)
                        return log_error_errno(EBUSY,
                                               "cluster %s is busy: %s holds %s (waited %.0fs); "
                                               "try again when it is done",
                                               ctx->cfg->name, who ? who : "?", path, wait_seconds);
                if (!said) {
                        log_notice("cluster %s is locked by %s: waiting up to %.0fs",
                                   ctx->cfg->name, who ? who : "?", wait_seconds);
                        said = true;
                }
                if ((r = cancel_sleep(&ctx->cancel, 0.2)) < 0)
                        return r;
        }
        char stamp[32], text[320];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
        int n = snprintf(text, sizeof(text), "pid %d (vgpuenv %s, since %s)\n", (int)getpid(),
                         command, stamp);
        if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n)
                log_debug("cannot write the lock holder into %s", path);
        ctx->lock_fd = TAKE_FD(fd);
        return 0;
}
