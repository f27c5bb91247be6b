/* Unit tests for provision/base/context.c: directories of the run context, the
 * dry-run command line (quoting, env, cwd), real runs and their failures,
 * plan lines, and the SIGINT/SIGTERM cancellation thread. */
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

#include "common/macro.h"
#include "common/util.h"
#include "provision/base/context.h"

struct fixture {
        struct config cfg;
        struct run_ctx ctx;
        char *buf;
        size_t size;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        setenv("VGPUENV_STATE_DIR", "/tmp/vgpuenv-test-state", 1);
        setenv("VGPUENV_CACHE_DIR", "/tmp/vgpuenv-test-cache", 1);
        config_init_defaults(&fx->cfg);
        free(fx->cfg.name);
        fx->cfg.name = strdup("ctxtest");
        if (run_ctx_init(&fx->ctx, &fx->cfg, true) < 0)
                return -1;
        fx->ctx.plan = open_memstream(&fx->buf, &fx->size);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        if (fx->ctx.plan)
                fclose(fx->ctx.plan);
        free(fx->buf);
        run_ctx_done(&fx->ctx);
        config_done(&fx->cfg);
        free(fx);
        return 0;
}

static const char *plan_text(struct fixture *fx)
{
        fflush(fx->ctx.plan);
        return fx->buf;
}

static void test_init_dirs(void **state)
{
        struct fixture *fx = *state;
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        assert_string_equal(fx->ctx.state_dir, "/tmp/vgpuenv-test-state/ctxtest");
        assert_string_equal(fx->ctx.cache_dir, "/tmp/vgpuenv-test-cache");
        assert_true(n > 0);
        self[n] = 0;
        *strrchr(self, '/') = 0;
        assert_string_equal(fx->ctx.build_dir, self);
        assert_true(fx->ctx.dry_run);
        assert_false(ctx_cancelled(&fx->ctx));
        /* A dry run creates nothing. */
        assert_false(file_exists("/tmp/vgpuenv-test-state/ctxtest"));
}

static void test_dry_run_prints(void **state)
{
        struct fixture *fx = *state;
        char *const argv[] = {"kcli",        "create",    "kube",  "generic", "-P",
                              "ctlplanes=1", "it's here", "$HOME", NULL};
        char *const env[] = {"KUBEVIRT_PROVIDER=k8s-1.36", "EXTRA=a b", NULL};
        struct spawn_result res = {.exit_code = 99};

        assert_int_equal(
            ctx_run(&fx->ctx, "creating the cluster", argv, env, "/src/kube virt", NULL), 0);
        assert_int_equal(ctx_run(&fx->ctx, "listing", (char *const[]){"kcli", "list", "vm", NULL},
                                 NULL, NULL, &res),
                         0);
        /* "returns 0 with an empty result" */
        assert_int_equal(res.exit_code, 0);
        assert_string_equal(res.out, "");
        assert_string_equal(res.err, "");
        spawn_result_done(&res);
        ctx_plan(&fx->ctx, "libvirt: define network %s", "vgpuenv-ctxtest");
        assert_string_equal(plan_text(fx),
                            "run: [in '/src/kube virt'] KUBEVIRT_PROVIDER=k8s-1.36 EXTRA='a b' "
                            "kcli create kube generic -P ctlplanes=1 'it'\\''s here' '$HOME'\n"
                            "run: kcli list vm\n"
                            "libvirt: define network vgpuenv-ctxtest\n");
}

static void test_dry_run_never_runs(void **state)
{
        struct fixture *fx = *state;
        char marker[] = "/tmp/test_context_marker.XXXXXX";
        int fd = mkstemp(marker);

        assert_true(fd >= 0);
        close(fd);
        unlink(marker);
        assert_int_equal(
            ctx_run(&fx->ctx, "touching", (char *const[]){"touch", marker, NULL}, NULL, NULL, NULL),
            0);
        assert_false(file_exists(marker));
}

static void test_real_run(void **state)
{
        struct fixture *fx = *state;
        struct spawn_result res = {};
        char *const fail3[] = {"/bin/sh", "-c", "exit 3", NULL};

        fx->ctx.dry_run = false;
        /* Without ret, a non-zero exit is the step's failure. */
        assert_int_equal(ctx_run(&fx->ctx, "the step", fail3, NULL, NULL, NULL), -EIO);
        /* With ret, the caller judges the exit code. */
        assert_int_equal(ctx_run(&fx->ctx, "the step", fail3, NULL, NULL, &res), 0);
        assert_int_equal(res.exit_code, 3);
        spawn_result_done(&res);

        char *const echo[] = {"/bin/sh", "-c", "printf '%s|%s' \"$FOO\" \"$(pwd)\"; echo oops >&2",
                              NULL};
        char *const env[] = {"FOO=bar baz", NULL};
        assert_int_equal(ctx_run(&fx->ctx, "echo", echo, env, "/tmp", &res), 0);
        assert_int_equal(res.exit_code, 0);
        assert_string_equal(res.out, "bar baz|/tmp");
        assert_string_equal(res.err, "oops\n");
        spawn_result_done(&res);

        assert_int_equal(ctx_run(&fx->ctx, "ok", (char *const[]){"true", NULL}, NULL, NULL, NULL),
                         0);
        assert_int_equal(ctx_run(&fx->ctx, "missing",
                                 (char *const[]){"vgpuenv-no-such-program", NULL}, NULL, NULL,
                                 NULL),
                         -ENOENT);
        /* Nothing is printed to the plan outside dry runs. */
        ctx_plan(&fx->ctx, "not shown");
        assert_true(plan_text(fx) == NULL || plan_text(fx)[0] == 0);

        /* Once cancelled, no new command starts. */
        atomic_store(&fx->ctx.cancelled, true);
        assert_int_equal(ctx_run(&fx->ctx, "late", (char *const[]){"true", NULL}, NULL, NULL, NULL),
                         -ECANCELED);
}

/* The signal thread: one signal sets cancelled, a second exits 130. Run in a
 * child so the blocked mask and the thread stay out of cmocka's process. */
static void test_cancel_watch(void **state)
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
                if (cancel_watch_start(&fx->ctx) < 0)
                        _exit(10);
                if (ctx_cancelled(&fx->ctx))
                        _exit(11);
                kill(getpid(), SIGTERM);
                for (int i = 0; i < 500 && !ctx_cancelled(&fx->ctx); i++)
                        nanosleep(&ts, NULL);
                if (!ctx_cancelled(&fx->ctx))
                        _exit(12);
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
        assert_true(n > 0);
        log[n] = 0;
        assert_non_null(strstr(log, "interrupted: rolling back (SIGTERM again exits at once)\n"));
        assert_non_null(strstr(log, "interrupted again: exiting without rolling back\n"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_init_dirs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_dry_run_prints, setup, teardown),
            cmocka_unit_test_setup_teardown(test_dry_run_never_runs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_real_run, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_watch, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
