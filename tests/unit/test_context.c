/* Unit tests for provision/base/context.c and common/cancel.c: directories of
 * the run context, the run's log (every level, pruned), the per-cluster lock
 * (a second holder waits a bounded time and is told who holds it), and the
 * signal thread (one signal cancels, a second kills the children and exits
 * 130). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/fixture_tests.h"

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "provision/base/context.h"

struct fixture {
        struct config cfg;
        struct run_ctx ctx;
        char dir[64];
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        snprintf(fx->dir, sizeof(fx->dir), "/tmp/vgpuenv-test-ctx.XXXXXX");
        if (!mkdtemp(fx->dir))
                return -1;
        char *st = strdup_printf("%s/state", fx->dir), *ca = strdup_printf("%s/cache", fx->dir);
        setenv("VGPUENV_STATE_DIR", st, 1);
        setenv("VGPUENV_CACHE_DIR", ca, 1);
        free(st);
        free(ca);
        config_init_defaults(&fx->cfg);
        free(fx->cfg.name);
        fx->cfg.name = strdup("ctxtest");
        if (run_ctx_init(&fx->ctx, &fx->cfg) < 0)
                return -1;
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        run_ctx_done(&fx->ctx);
        config_done(&fx->cfg);
        rm_rf(fx->dir);
        free(fx);
        return 0;
}

static void test_init_dirs(void **state)
{
        struct fixture *fx = *state;
        char *want = strdup_printf("%s/state/ctxtest", fx->dir);

        assert_string_equal(fx->ctx.state_dir, want);
        assert_true(endswith(fx->ctx.cache_dir, "/cache"));
        assert_non_null(fx->ctx.build_dir);
        assert_int_equal(fx->ctx.log_fd, -1);
        assert_int_equal(cancel_check(&fx->ctx.cancel), 0);
        free(want);
}

/* Every line reaches the log, debug ones too, while the terminal shows
 * only what the level lets through; the log outlives the state dir. */
static void test_log(void **state)
{
        struct fixture *fx = *state;
        _cleanup_free_ char *text = NULL;

        log_set_level(LOG_INFO);
        assert_int_equal(run_ctx_open_log(&fx->ctx, "up"), 0);
        assert_non_null(fx->ctx.log_path);
        assert_true(strstr(fx->ctx.log_path, "/state/logs/ctxtest-") != NULL);
        assert_true(endswith(fx->ctx.log_path, ".log"));
        log_debug("a debug line for the log only");
        log_info("an info line");
        assert_int_equal(read_full_file(fx->ctx.log_path, &text, NULL), 0);
        assert_non_null(strstr(text, "debug: a debug line for the log only\n"));
        assert_non_null(strstr(text, "an info line\n"));
        assert_false(file_exists(fx->ctx.state_dir)); /* logs live beside it */
}

static void test_log_pruned(void **state)
{
        struct fixture *fx = *state;
        char *logs = strdup_printf("%s/state/logs", fx->dir);

        assert_int_equal(mkdir_p(logs, 0700), 0);
        for (int i = 0; i < 30; i++) {
                char *p = strdup_printf("%s/ctxtest-20260101-0000%02d-up-1.log", logs, i);
                assert_int_equal(write_file_atomic(p, "x", 1, 0600), 0);
                free(p);
        }
        char *other = strdup_printf("%s/othercluster-20260101-000000-up-1.log", logs);
        assert_int_equal(write_file_atomic(other, "x", 1, 0600), 0);
        assert_int_equal(run_ctx_open_log(&fx->ctx, "up"), 0);
        char *oldest = strdup_printf("%s/ctxtest-20260101-000000-up-1.log", logs);
        char *newest = strdup_printf("%s/ctxtest-20260101-000029-up-1.log", logs);
        assert_false(file_exists(oldest));
        assert_true(file_exists(newest));
        assert_true(file_exists(other)); /* another cluster's are not ours to prune */
        free(oldest);
        free(newest);
        free(other);
        free(logs);
}

/* A second process that wants the lock waits, then fails naming the
 * holder; once the holder is done the lock is free again. */
static void test_lock(void **state)
{
        struct fixture *fx = *state;
        int p[2], status;

        assert_int_equal(run_ctx_lock(&fx->ctx, "up", 1), 0);
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct run_ctx other;
                close(p[0]);
                dup2(p[1], STDERR_FILENO);
                run_ctx_done(&fx->ctx); /* not this process's lock to keep */
                if (run_ctx_init(&other, &fx->cfg) < 0)
                        _exit(10);
                double t0 = now_seconds();
                int r = run_ctx_lock(&other, "down", 0.5);
                _exit(r == -EBUSY && now_seconds() - t0 >= 0.5 ? 0 : 11);
        }
        close(p[1]);
        char buf[2048];
        ssize_t n = 0;
        for (ssize_t k; (k = read(p[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0;)
                n += k;
        buf[n] = 0;
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        char *holder = strdup_printf("pid %d (vgpuenv up, since ", (int)getpid());
        assert_non_null(strstr(buf, "cluster ctxtest is busy: "));
        assert_non_null(strstr(buf, holder));
        free(holder);

        close(fx->ctx.lock_fd);
        fx->ctx.lock_fd = -1;
        struct run_ctx again;
        assert_int_equal(run_ctx_init(&again, &fx->cfg), 0);
        assert_int_equal(run_ctx_lock(&again, "down", 0), 0);
        run_ctx_done(&again);
}

/* The signal thread: one signal cancels the root token, a second kills the
 * recorded children and exits 130. Run in a child so the blocked mask and
 * the thread stay out of cmocka's process. */
static void test_signals(void **state)
{
        struct fixture *fx = *state;
        int status, p[2];
        char log[4096];
        ssize_t n;

        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                close(p[0]);
                dup2(p[1], STDERR_FILENO);
                pid_t kid = fork();
                if (kid == 0) {
                        setpgid(0, 0);
                        execlp("sleep", "sleep", "3141.5926", NULL);
                        _exit(99);
                }
                setpgid(kid, kid);
                if (run_ctx_watch_signals(&fx->ctx, CANCEL_SECOND_EXITS) < 0)
                        _exit(10);
                cancel_registry_add(&fx->ctx.children, kid);
                if (cancel_check(&fx->ctx.cancel) != 0)
                        _exit(11);
                kill(getpid(), SIGTERM);
                for (int i = 0; i < 500 && cancel_check(&fx->ctx.cancel) == 0; i++)
                        nanosleep(&ts, NULL);
                if (cancel_check(&fx->ctx.cancel) != -ECANCELED)
                        _exit(12);
                /* The grandchild reports its own end: the parent waits it. */
                kill(getpid(), SIGINT);
                for (int i = 0; i < 500; i++)
                        nanosleep(&ts, NULL);
                _exit(13); /* the second signal should have ended us */
        }
        close(p[1]);
        /* Read to EOF: closing early would SIGPIPE the child's second line. */
        n = 0;
        for (ssize_t k; (k = read(p[0], log + n, sizeof(log) - 1 - (size_t)n)) > 0;)
                n += k;
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 130);
        log[n] = 0;
        assert_non_null(strstr(log, "interrupted: stopping what runs and rolling back (SIGTERM "
                                    "again exits at once)\n"));
        assert_non_null(strstr(log, "interrupted again: exiting without rolling back"));
        /* The sleep in its own process group was killed, not left running. */
        assert_int_equal(system("pgrep -f '^sleep 3141.5926$' >/dev/null"), 256);
}

int main(void)
{
        return run_fixture_tests(test_init_dirs, test_log, test_log_pruned, test_lock,
                                 test_signals);
}
