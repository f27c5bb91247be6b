/* `vgpuenv e2e run`: load the cluster and the checkout, check what the
 * suite needs, run make functest, read the JUnit, collect artifacts on
 * failure, write run.json (see run.h and report.h). */
#include "e2e/run.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "e2e/checkout.h"
#include "provision/cluster_check.h"
#include "e2e/collect.h"
#include "e2e/functest.h"
#include "e2e/junit.h"
#include "e2e/report.h"
#include "e2e/run_info.h"
#include "e2e/suite_config.h"
#include "e2e/webhook_check.h"
#include "provision/base/config.h"
#include "provision/base/context.h"
#include "provision/base/state.h"
#include "providers/provider.h"

static char *utc_stamp(const char *fmt)
{
        char buf[64];
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), fmt, &tm);
        return strdup(buf);
}

static void run_done(struct e2e_run *r)
{
        suite_config_done(&r->suite);
        kubevirt_checkout_done(&r->kv);
        state_done(&r->st);
        run_ctx_done(&r->ctx);
        config_done(&r->cfg);
        e2e_expect_done(&r->expect);
        junit_result_done(&r->res);
        FREE_ALL(r->run_dir, r->art, r->logp, r->collected, r->started);
        strv_free(r->env_set);
        strv_free(r->env_unset);
        strv_free(r->errors);
}

/* KubeVirt main keeps the vGPU display on whatever VGPU_DISPLAY says; only
 * the branch of kubevirt PR 16712 reads it, and there the display is off
 * unless asked for (Kind's nodes have no render node). */
static int decide_display(struct e2e_run *r)
{
        const struct e2e_run_opts *o = r->o;

        if (r->kv.ref == KUBEVIRT_REF_MAIN) {
                if (o->display == E2E_DISPLAY_OFF)
                        return log_error_errno(
                            EINVAL,
                            "--display off: KubeVirt in %s is main-like (%s does "
                            "not read VGPU_DISPLAY), %s; turning it off needs a "
                            "checkout of the branch of kubevirt pull request "
                            "16712",
                            r->kv.dir, KUBEVIRT_MDEV_TEST_FILE, kubevirt_ref_describe(r->kv.ref));
                r->display = true;
        } else
                r->display = o->display == E2E_DISPLAY_AUTO ? r->ops->vm_nodes
                                                            : o->display == E2E_DISPLAY_ON;
        if (r->display && !r->ops->vm_nodes && r->vgpu_display == VGPU_DISPLAY_DMABUF)
                log_notice("Provider %s with the display on and a DMABUF fake vGPU: QEMU will fail "
                           "with \"vfio-display-dmabuf: opengl not available\" (no render node in "
                           "a container; docs/display-chain.md)",
                           r->ops->name);
        return 0;
}

static int parse_expectations(struct e2e_run *r)
{
        const struct e2e_run_opts *o = r->o;

        r->vgpu_display =
            o->vgpu_display ? vgpu_display_from_name(o->vgpu_display) : VGPU_DISPLAY_DMABUF;
        if (r->vgpu_display < 0)
                return log_error_errno(EINVAL,
                                       "--vgpu-display must be dmabuf, region or none, "
                                       "not \"%s\"",
                                       o->vgpu_display);
        if (o->expect_outcome && !streq(o->expect_outcome, "passed") &&
            !streq(o->expect_outcome, "failed"))
                return log_error_errno(EINVAL, "--expect must be passed or failed, not \"%s\"",
                                       o->expect_outcome);
        r->expect.failure = o->expect_outcome && streq(o->expect_outcome, "failed");
        if (o->expect_message && !r->expect.failure)
                return log_error_errno(EINVAL, "--expect-message needs --expect failed");
        if (o->expect_message && !(r->expect.message = strdup(o->expect_message)))
                return log_error_errno(ENOMEM, "Out of memory");
        return 0;
}

static int open_cluster(struct e2e_run *r)
{
        int q;

        if ((q = run_ctx_init(&r->ctx, &r->cfg)) < 0)
                return q;
        /* First Ctrl-C: the tests stop with SIGINT and the report is still
         * written; the second kills what runs and goes on to the report. */
        if ((q = run_ctx_watch_signals(&r->ctx, CANCEL_SECOND_KILLS_CHILD)) < 0)
                return q;
        if ((q = state_require_up(r->ctx.state_dir, r->cfg.name, r->o->config, false)) < 0)
                return q;
        return state_open(&r->st, r->ctx.state_dir, r->cfg.name, r->ops->name);
}

static int run_load(struct e2e_run *r)
{
        const struct e2e_run_opts *o = r->o;
        int q;

        if (config_load(&r->cfg, o->config) < 0)
                return -EINVAL;
        if (kubevirt_checkout_inspect(o->kubevirt_dir, &r->kv) < 0)
                return -EINVAL;
        r->ops = provider_for_config(&r->cfg);
        if (!r->ops)
                return log_error_errno(EINVAL, "%s: provider %s is not built into this vgpuenv",
                                       o->config, provider_names[r->cfg.provider]);
        if ((q = parse_expectations(r)) < 0 || (q = decide_display(r)) < 0)
                return q;
        r->focus = o->focus ? o->focus : E2E_DEFAULT_FOCUS;
        return open_cluster(r);
}

/* Everything the suite needs, checked before the run directory exists. */
static int run_preflight(struct e2e_run *r)
{
        struct suite_config_in in = {
            .cfg = &r->cfg,
            .ops = r->ops,
            .ctx = &r->ctx,
            .st = &r->st,
            .kubeconfig = r->o->kubeconfig,
            .run_dir = r->run_dir,
        };
        struct cluster_check cc = {
            .cancel = &r->ctx.cancel,
            .log_fd = r->ctx.log_fd,
            .kubectl_deadline = r->cfg.deadlines.kubectl,
            .kubectl = r->cfg.kubevirt.kubectl,
            .focus = r->focus,
            .skip = r->o->skip,
            .delete_leftovers = r->o->delete_leftovers,
        };
        int q = suite_config_resolve(&in, &r->suite);

        if (q < 0)
                return q;
        cc.kubeconfig = r->suite.kubeconfig;
        if ((q = cluster_preflight(&cc)) < 0)
                return q;
        return r->ops->vm_nodes ? e2e_check_webhook_from_node(&r->ctx, &r->st) : 0;
}

/* A run directory is reused (make e2e always writes the same one): stale
 * JUnit from an earlier run must not pass for this run's results, so clear
 * what an earlier run of ours left. A non-empty directory that is not ours
 * is refused rather than emptied. */
static int prepare_run_dir(const char *dir)
{
        static const char *const ours[] = {RUN_ARTIFACTS_DIR,  RUN_COLLECTED_DIR, RUN_LOG_FILE,
                                           RUN_INFO_FILE,      "report.md",       "report.html",
                                           "kubevirtci-config"};
        /* The matrix writes its logs of this cell before the run starts. */
        static char *const matrix_logs[] = {"up.log", "console.log", "down.log", ".", "..", NULL};
        _cleanup_free_ char *info = strdup_printf("%s/" RUN_INFO_FILE, dir);
        DIR *d;
        bool empty = true;

        if (!info)
                return log_error_errno(ENOMEM, "Out of memory");
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : log_error_errno(errno, "Cannot open %s: %m", dir);
        for (struct dirent *de; (de = readdir(d));)
                if (!strv_contains(matrix_logs, de->d_name))
                        empty = false;
        closedir(d);
        if (empty)
                return 0;
        if (!file_exists(info))
                return log_error_errno(EEXIST,
                                       "--run-dir %s is not empty and holds no %s: not an earlier "
                                       "run directory, refusing to reuse it",
                                       dir, RUN_INFO_FILE);
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, ours[i]);
                if (!p)
                        return log_error_errno(ENOMEM, "Out of memory");
                if (file_exists(p) && rm_rf(p) < 0)
                        return log_error_errno(EIO, "Cannot clear %s", p);
        }
        return 0;
}

static int run_paths(struct e2e_run *r)
{
        if (r->o->run_dir)
                r->run_dir = strdup(r->o->run_dir);
        else {
                _cleanup_free_ char *stamp = utc_stamp("%Y%m%d-%H%M%S");
                r->run_dir = stamp ? strdup_printf("_e2e/%s-%s", r->cfg.name, stamp) : NULL;
        }
        if (!r->run_dir)
                return log_error_errno(ENOMEM, "Out of memory");
        r->art = strdup_printf("%s/" RUN_ARTIFACTS_DIR, r->run_dir);
        r->logp = strdup_printf("%s/" RUN_LOG_FILE, r->run_dir);
        r->collected = strdup_printf("%s/" RUN_COLLECTED_DIR, r->run_dir);
        return r->art && r->logp && r->collected ? 0 : log_error_errno(ENOMEM, "Out of memory");
}

static int build_env(struct e2e_run *r)
{
        /* ARTIFACTS must be absolute: make runs in the checkout. */
        _cleanup_free_ char *abs_art = realpath(r->art, NULL);
        int q = 0;

        if (!abs_art)
                return log_error_errno(errno, "Cannot resolve %s: %m", r->art);
        if (suite_config_env(&r->suite, &r->env_set, &r->env_unset) < 0)
                return -ENOMEM;
        q |= strv_push(&r->env_set, strdup_printf("KUBEVIRT_E2E_FOCUS=%s", r->focus));
        q |= strv_push(&r->env_set, strdup_printf("ARTIFACTS=%s", abs_art));
        if (r->o->skip)
                q |= strv_push(&r->env_set, strdup_printf("KUBEVIRT_E2E_SKIP=%s", r->o->skip));
        else
                q |= strv_extend(&r->env_unset, "KUBEVIRT_E2E_SKIP");
        /* Only the branch that reads it gets it; on main it would only
         * mislead whoever reads the environment. */
        if (r->kv.ref == KUBEVIRT_REF_DISPLAY_SWITCH && r->display)
                q |= strv_extend(&r->env_set, "VGPU_DISPLAY=true");
        else
                q |= strv_extend(&r->env_unset, "VGPU_DISPLAY");
        return q < 0 ? log_error_errno(ENOMEM, "Out of memory") : 0;
}

static int run_setup_dir(struct e2e_run *r)
{
        int q = prepare_run_dir(r->run_dir);

        if (q < 0)
                return q;
        if ((q = mkdir_p(r->art, 0755)) < 0)
                return log_error_errno(q, "Cannot create %s: %s", r->art, strerror(-q));
        if ((q = suite_config_write(&r->suite)) < 0 || (q = build_env(r)) < 0)
                return q;
        r->started = utc_stamp("%Y-%m-%dT%H:%M:%SZ");
        r->name = r->o->name ? r->o->name : r->cfg.name;
        return run_info_write(r);
}

static void collect(struct e2e_run *r)
{
        struct cancel token;
        /* After a Ctrl-C stopped the tests the collection still runs (the
         * report needs it) and the next Ctrl-C ends it; otherwise the first
         * does. */
        if (cancel_check(&r->ctx.cancel) == -ECANCELED)
                cancel_init_after_interrupt(&token, &r->ctx.cancel, 0, "artifact collection");
        else
                cancel_init_child(&token, &r->ctx.cancel, 0, "artifact collection");
        struct collect_opts co = {
            .kubectl = r->cfg.kubevirt.kubectl,
            .kubeconfig = r->suite.kubeconfig,
            .out_dir = r->collected,
            .state = &r->st,
            .cancel = &token,
            .log_fd = r->ctx.log_fd,
        };

        log_info("Collecting failure artifacts into %s (Ctrl-C to stop) ...", r->collected);
        collect_artifacts(&co, &r->collected_files);
        if (cancel_check(&token) == -ECANCELED)
                log_notice("Artifact collection interrupted; kept what was collected.");
}

static int run_suite(struct e2e_run *r)
{
        struct functest_opts fo = {
            .dir = r->kv.dir,
            .env_set = r->env_set,
            .env_unset = r->env_unset,
            .log_path = r->logp,
            .quiet = r->o->quiet,
            .grace = r->o->grace,
            .cancel = &r->ctx.cancel,
        };
        int q;

        log_info("Running make functest in %s (KubeVirt %s, focus \"%s\", KUBEVIRT_PROVIDER=%s, "
                 "display %s, %s fake vGPU), output in %s",
                 r->kv.dir, kubevirt_ref_name(r->kv.ref), r->focus, r->suite.kubevirt_provider,
                 r->display ? "on" : "off", vgpu_display_name(r->vgpu_display), r->logp);
        q = functest_run(&fo, &r->fr);
        if (q < 0) {
                strv_push(&r->errors,
                          strdup_printf("make functest could not be started: %s", strerror(-q)));
                r->fr.exit_code = 127;
        }
        q = junit_load_dir(r->art, &r->res, &r->errors);
        if (q == -ENOMEM)
                return log_error_errno(q, "Out of memory");
        r->outcome = e2e_outcome_compute(r->fr.exit_code, r->fr.interrupted, r->res.files != NULL,
                                         &r->res, strv_length(r->errors));
        if (r->outcome == E2E_ERROR && r->fr.exit_code != 0)
                strv_push(&r->errors,
                          strdup_printf("make functest exited with status %d%s", r->fr.exit_code,
                                        r->fr.exit_code > 128 ? " (killed by a signal)" : ""));
        if (r->outcome == E2E_ERROR && r->res.files && r->res.counts[JUNIT_PASSED] == 0 &&
            r->fr.exit_code == 0)
                strv_push(&r->errors,
                          strdup_printf("no spec ran: focus \"%s\" matched nothing?", r->focus));
        r->as_expected = e2e_expect_met(&r->expect, r->outcome, &r->res, NULL);
        if (r->outcome != E2E_PASSED && r->o->collect)
                collect(r);
        return 0;
}

int e2e_run(const struct e2e_run_opts *o, struct e2e_run_result *ret)
{
        _cleanup_(run_done) struct e2e_run r = {.o = o};
        int q;

        *ret = (struct e2e_run_result){.outcome = E2E_ERROR};
        if ((q = run_load(&r)) < 0 || (q = run_paths(&r)) < 0 || (q = run_preflight(&r)) < 0 ||
            (q = run_setup_dir(&r)) < 0 || (q = run_suite(&r)) < 0)
                return q;
        r.finished = true;
        q = run_info_write(&r);
        run_info_print_summary(&r);
        if (q < 0)
                return q;
        *ret = (struct e2e_run_result){.outcome = r.outcome, .as_expected = r.as_expected};
        return 0;
}
