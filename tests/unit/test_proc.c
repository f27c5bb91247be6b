/* Unit tests for common/proc.c, the one process runner, with real programs
 * (sh, cat, sleep): capture, a large stdin fed while the output is read, no
 * SIGPIPE disposition left behind, no fd leaked when a pipe cannot be made,
 * exec failures, Ctrl-C and deadlines through the cancel token, the grace
 * before SIGKILL, the run log and the output tail, no async-signal-unsafe
 * call between fork and exec. The last four cases failed with the runner
 * this one replaced (common/spawn.c, e2e/functest.c). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cancel.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

static void test_capture(void **state)
{
        (void)state;
        char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
        struct proc_opts o = {.argv = argv, .out = PROC_CAPTURE, .err = PROC_CAPTURE, .log_fd = -1};
        _cleanup_proc_result_ struct proc_result r = {0};

        assert_int_equal(proc_run(&o, &r), 0);
        assert_int_equal(r.exit_code, 3);
        assert_string_equal(r.out.data, "out\n");
        assert_string_equal(r.err.data, "err\n");
        assert_int_equal(r.stopped_by, 0);
}

static void test_not_found(void **state)
{
        (void)state;
        char *argv[] = {"vgpuenv-no-such-program", NULL};
        struct proc_opts o = {.argv = argv, .log_fd = -1};
        struct proc_result r = {0};

        assert_int_equal(proc_run(&o, &r), -ENOENT);
}

/* A cwd that does not exist: chdir fails in the child, the errno comes back
 * over the report pipe, nothing is left to reap. */
static void test_exec_failure(void **state)
{
        (void)state;
        char *argv[] = {"true", NULL};
        struct proc_opts o = {.argv = argv, .cwd = "/nonexistent/vgpuenv", .log_fd = -1};
        struct proc_result r = {0};

        assert_int_equal(proc_run(&o, &r), -ENOENT);
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

/* 4 MiB through cat: the old runner wrote all of stdin before reading any
 * output, so cat blocked on a full stdout pipe and we on a full stdin pipe. */
static void test_large_stdin(void **state)
{
        (void)state;
        size_t n = 4 << 20;
        _cleanup_free_ char *data = malloc(n);
        char *argv[] = {"cat", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};

        assert_non_null(data);
        for (size_t i = 0; i < n; i++)
                data[i] = (char)('a' + i % 23);
        struct proc_opts o = {
            .argv = argv, .stdin_data = data, .stdin_size = n, .out = PROC_CAPTURE, .log_fd = -1};
        alarm(30); /* a deadlock fails the test instead of hanging it */
        assert_int_equal(proc_run(&o, &r), 0);
        alarm(0);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(r.out.len, n);
        assert_memory_equal(r.out.data, data, n);
}

/* A program that exits without reading its input: our write gets EPIPE,
 * and SIGPIPE must be neither ignored process-wide afterwards (the old
 * runner set SIG_IGN, which every later child inherited) nor left pending. */
static void test_sigpipe_left_alone(void **state)
{
        (void)state;
        size_t n = 1 << 20;
        _cleanup_free_ char *data = calloc(1, n);
        char *argv[] = {"true", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};
        struct sigaction sa;
        sigset_t pending, mask;

        assert_non_null(data);
        struct proc_opts o = {.argv = argv, .stdin_data = data, .stdin_size = n, .log_fd = -1};
        assert_int_equal(proc_run(&o, &r), 0);
        assert_int_equal(r.exit_code, 0);
        assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
        assert_true(sa.sa_handler == SIG_DFL);
        sigpending(&pending);
        assert_false(sigismember(&pending, SIGPIPE));
        pthread_sigmask(SIG_SETMASK, NULL, &mask);
        assert_false(sigismember(&mask, SIGPIPE));
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* Room for exactly one more pipe: the second pipe2 fails, and the first
 * one's two fds must not stay open (the old runner leaked them). */
static void test_no_fd_leak_when_pipe_fails(void **state)
{
        (void)state;
        char *argv[] = {"true", NULL};
        struct rlimit old, lim;
        int before;
        struct proc_result r = {0};

        /* count_fds() sees ".", ".." and its own fd besides the open ones:
         * a limit of that many leaves exactly three free fds, for /dev/null
         * and the stdout pipe. The stderr pipe then fails. */
        before = count_fds();
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
        lim = old;
        lim.rlim_cur = (rlim_t)before;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
        struct proc_opts o = {.argv = argv, .out = PROC_CAPTURE, .err = PROC_CAPTURE, .log_fd = -1};
        int rc = proc_run(&o, &r);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        assert_int_equal(rc, -EMFILE);
        assert_int_equal(count_fds(), before);
}

struct firer {
        struct cancel *c;
        double after;
};

static void *fire_later(void *p)
{
        struct firer *f = p;
        usleep((useconds_t)(f->after * 1e6));
        cancel_fire(f->c, ECANCELED);
        return NULL;
}

static void test_cancel_stops_within_a_second(void **state)
{
        (void)state;
        struct cancel_registry reg;
        struct cancel root;
        pthread_t t;
        char *argv[] = {"sleep", "30", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};

        cancel_init_root(&root, &reg);
        struct firer f = {.c = &root, .after = 0.3};
        pthread_create(&t, NULL, fire_later, &f);
        struct proc_opts o = {.argv = argv, .cancel = &root, .log_fd = -1};
        double t0 = now_seconds();
        assert_int_equal(proc_run(&o, &r), 0);
        pthread_join(t, NULL);
        assert_true(now_seconds() - t0 < 1.5);
        assert_int_equal(r.stopped_by, -ECANCELED);
        assert_int_equal(r.exit_code, 128 + SIGTERM);
        assert_int_equal(reg.n, 0); /* unregistered once reaped */
        cancel_registry_done(&reg);
}

static void test_deadline_then_sigkill(void **state)
{
        (void)state;
        struct cancel_registry reg;
        struct cancel root, step;
        /* Ignores SIGTERM: only the SIGKILL after the grace period ends it. */
        char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};

        cancel_init_root(&root, &reg);
        cancel_init_child(&step, &root, 0.3, "step 'test'");
        struct proc_opts o = {.argv = argv, .cancel = &step, .kill_grace = 0.4, .log_fd = -1};
        double t0 = now_seconds();
        assert_int_equal(proc_run(&o, &r), 0);
        double dt = now_seconds() - t0;
        assert_true(dt >= 0.6 && dt < 2.5);
        assert_int_equal(r.stopped_by, -ETIMEDOUT);
        assert_int_equal(r.exit_code, 128 + SIGKILL);
        assert_ptr_equal(cancel_culprit(&step), &step);
        cancel_registry_done(&reg);
}

static void test_log_and_tail(void **state)
{
        (void)state;
        char path[] = "/tmp/vgpuenv-test-proc-XXXXXX";
        int fd = mkstemp(path);
        char *argv[] = {"sh", "-c",
                        "printf 'one\\ntwo\\n'; printf 'err\\n' >&2; printf 'no newline'", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};
        _cleanup_free_ char *text = NULL;

        assert_true(fd >= 0);
        struct proc_opts o = {.argv = argv, .log_fd = fd, .log_prefix = "mmdebstrap"};
        assert_int_equal(proc_run(&o, &r), 0);
        close(fd);
        assert_int_equal(read_full_file(path, &text, NULL), 0);
        unlink(path);
        assert_non_null(strstr(text, "mmdebstrap| one\nmmdebstrap| two\n"));
        assert_non_null(strstr(text, "mmdebstrap| err\n"));
        assert_non_null(strstr(text, "mmdebstrap| no newline\n"));
        assert_non_null(strstr(r.tail.data, "two\n"));
        assert_null(r.out.data); /* discarded, not captured */
}

static void test_tail_is_bounded(void **state)
{
        (void)state;
        char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done",
                        NULL};
        _cleanup_proc_result_ struct proc_result r = {0};
        struct proc_opts o = {.argv = argv, .log_fd = -1, .out = PROC_DISCARD};

        /* DISCARD without log, echo or callback: no pipe at all, no tail. */
        assert_int_equal(proc_run(&o, &r), 0);
        assert_int_equal(r.tail.len, 0);
        o.out = PROC_CAPTURE;
        proc_result_done(&r);
        assert_int_equal(proc_run(&o, &r), 0);
        assert_true(r.tail.len <= 6144);
        assert_non_null(strstr(r.tail.data, "line2999\n"));
        assert_null(strstr(r.tail.data, "line10\n"));
        assert_true(r.tail.data[0] == 'l'); /* cut at a line boundary */
}

/* A grandchild that keeps stdout open must not keep us waiting. */
static void test_grandchild_holding_pipe(void **state)
{
        (void)state;
        char *argv[] = {"sh", "-c", "sleep 5 & echo started", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};
        struct proc_opts o = {.argv = argv, .out = PROC_CAPTURE, .log_fd = -1};
        double t0 = now_seconds();

        assert_int_equal(proc_run(&o, &r), 0);
        assert_true(now_seconds() - t0 < 2.0);
        assert_string_equal(r.out.data, "started\n");
}

static void test_env_delta(void **state)
{
        (void)state;
        char *argv[] = {"sh", "-c", "echo \"$VGPUENV_A-${VGPUENV_B-unset}\"", NULL};
        char *set[] = {"VGPUENV_A=set", NULL};
        char *unset[] = {"VGPUENV_B", NULL};
        _cleanup_proc_result_ struct proc_result r = {0};

        setenv("VGPUENV_B", "inherited", 1);
        struct proc_opts o = {
            .argv = argv, .env_set = set, .env_unset = unset, .out = PROC_CAPTURE, .log_fd = -1};
        assert_int_equal(proc_run(&o, &r), 0);
        assert_string_equal(r.out.data, "set-unset\n");
        unsetenv("VGPUENV_B");
}

static atomic_bool stop_hog;

/* Holds stderr's stdio lock nearly all the time, as a logging thread can at
 * the moment another thread forks. A child that used stdio (the old e2e
 * runner printed with fprintf after fork) blocks forever on that lock. */
static void *stderr_hog(void *p)
{
        (void)p;
        while (!atomic_load(&stop_hog)) {
                flockfile(stderr);
                usleep(2000);
                funlockfile(stderr);
        }
        return NULL;
}

static void test_fork_while_another_thread_logs(void **state)
{
        (void)state;
        pthread_t t;
        char *argv[] = {"true", NULL};

        atomic_store(&stop_hog, false);
        pthread_create(&t, NULL, stderr_hog, NULL);
        alarm(30);
        for (int i = 0; i < 100; i++) {
                struct proc_opts o = {.argv = argv, .cwd = "/nonexistent", .log_fd = -1};
                struct proc_result r = {0};
                assert_int_equal(proc_run(&o, &r), -ENOENT);
        }
        alarm(0);
        atomic_store(&stop_hog, true);
        pthread_join(t, NULL);
}

static void test_checked(void **state)
{
        (void)state;
        char *ok[] = {"sh", "-c", "echo hello", NULL};
        char *bad[] = {"sh", "-c", "echo why >&2; exit 4", NULL};
        _cleanup_free_ char *out = NULL;

        assert_int_equal(proc_run_checked("greeting", ok, NULL, -1, &out), 0);
        assert_string_equal(out, "hello\n");
        assert_int_equal(proc_run_checked("failing", bad, NULL, -1, NULL), -EIO);
}

/* PROC_TO_STDOUT: both streams in one pipe, in the order written (make
 * functest's console log). */
static void test_stderr_merged_in_order(void **state)
{
        (void)state;
        char *argv[] = {"sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2", NULL};
        struct proc_opts o = {
            .argv = argv, .out = PROC_CAPTURE, .err = PROC_TO_STDOUT, .log_fd = -1};
        _cleanup_proc_result_ struct proc_result r = {0};

        assert_int_equal(proc_run(&o, &r), 0);
        assert_string_equal(r.out.data, "1\n2\n3\n4\n");
        assert_null(r.err.data);
}

static void count_idle(void *userdata)
{
        (*(int *)userdata)++;
}

/* A silent program still gives the progress line its heartbeat. */
static void test_idle_callback(void **state)
{
        (void)state;
        char *argv[] = {"sleep", "0.5", NULL};
        struct cancel root;
        struct cancel_registry reg;
        int idle = 0;

        cancel_init_root(&root, &reg);
        struct proc_opts o = {
            .argv = argv, .log_fd = -1, .on_idle = count_idle, .userdata = &idle, .cancel = &root};
        _cleanup_proc_result_ struct proc_result r = {0};

        assert_int_equal(proc_run(&o, &r), 0);
        assert_true(idle >= 3); /* every 100 ms with a token */
        cancel_registry_done(&reg);
}

/* Work after a first Ctrl-C (e2e's collection, the matrix's down) runs on:
 * only the second, hard one stops it. */
static void test_after_interrupt_token(void **state)
{
        (void)state;
        struct cancel root, plain, after, cmd;
        struct cancel_registry reg;

        cancel_init_root(&root, &reg);
        cancel_init_child(&plain, &root, 0, "plain");
        cancel_init_after_interrupt(&after, &root, 0, "after");
        cancel_init_child(&cmd, &after, 0, "a command of it");
        cancel_fire(&root, ECANCELED);
        assert_int_equal(cancel_check(&plain), -ECANCELED);
        assert_int_equal(cancel_check(&after), 0);
        assert_int_equal(cancel_check(&cmd), 0);
        atomic_store(&root.hard, true);
        assert_int_equal(cancel_check(&after), -ECANCELED);
        assert_int_equal(cancel_check(&cmd), -ECANCELED);
        /* Its own deadline still counts. */
        struct cancel late;
        cancel_init_root(&root, &reg);
        cancel_init_after_interrupt(&late, &root, 0.01, "late");
        usleep(20000);
        assert_int_equal(cancel_check(&late), -ETIMEDOUT);
        cancel_registry_done(&reg);
}

int main(void)
{
        log_set_level(LOG_ERR);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_capture),
            cmocka_unit_test(test_not_found),
            cmocka_unit_test(test_exec_failure),
            cmocka_unit_test(test_large_stdin),
            cmocka_unit_test(test_sigpipe_left_alone),
            cmocka_unit_test(test_no_fd_leak_when_pipe_fails),
            cmocka_unit_test(test_cancel_stops_within_a_second),
            cmocka_unit_test(test_deadline_then_sigkill),
            cmocka_unit_test(test_log_and_tail),
            cmocka_unit_test(test_tail_is_bounded),
            cmocka_unit_test(test_grandchild_holding_pipe),
            cmocka_unit_test(test_env_delta),
            cmocka_unit_test(test_fork_while_another_thread_logs),
            cmocka_unit_test(test_checked),
            cmocka_unit_test(test_stderr_merged_in_order),
            cmocka_unit_test(test_idle_callback),
            cmocka_unit_test(test_after_interrupt_token),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
