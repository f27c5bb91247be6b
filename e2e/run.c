/* `vgpuenv e2e run`: load the cluster, build the environment, run make
 * functest, read the JUnit, collect artifacts on failure, write run.json
 * (see run.h and report.h). */
#include "e2e/run.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/commands.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "e2e/collect.h"
#include "e2e/functest.h"
#include "e2e/junit.h"
#include "e2e/report.h"
#include "provision/base/config.h"
#include "provision/base/context.h"
#include "provision/base/state.h"
#include "providers/provider.h"

static volatile sig_atomic_t collect_stop;

static void on_collect_signal(int sig)
{
        collect_stop = sig;
}

static char *utc_stamp(const char *fmt)
{
        char buf[64];
        time_t t = time(NULL);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), fmt, &tm);
        return strdup(buf);
}

struct run_info {
        const struct e2e_run_opts *o;
        const char *name, *cluster, *provider, *kubevirt_provider, *kubeconfig, *focus;
        char *started;
        bool display;
        bool finished, interrupted;
        int make_exit;
        double duration;
        const struct junit_result *res;
        char **errors;
        const char *outcome;
        unsigned collected_files;
};

/* run.json: written when the run starts (finished=false) so that even a
 * vgpuenv killed with SIGKILL leaves a directory the report can read. */
static int write_info(const char *run_dir, const struct run_info *ri)
{
        _cleanup_free_ char *path = strdup_printf("%s/" RUN_INFO_FILE, run_dir);
        _cleanup_free_ char *text = NULL;
        cJSON *root = cJSON_CreateObject(), *env, *errs;
        int r;

        if (!root || !path) {
                cJSON_Delete(root);
                return log_error_errno(ENOMEM, "Out of memory");
        }
        cJSON_AddStringToObject(root, "name", ri->name);
        cJSON_AddStringToObject(root, "cluster", ri->cluster);
        cJSON_AddStringToObject(root, "provider", ri->provider);
        cJSON_AddBoolToObject(root, "display", ri->display);
        cJSON_AddStringToObject(root, "focus", ri->focus);
        if (ri->o->skip)
                cJSON_AddStringToObject(root, "skip", ri->o->skip);
        cJSON_AddStringToObject(root, "kubevirt_dir", ri->o->kubevirt_dir);
        cJSON_AddStringToObject(root, "config", ri->o->config);
        cJSON_AddStringToObject(root, "started", ri->started);
        env = cJSON_AddObjectToObject(root, "env");
        cJSON_AddStringToObject(env, "KUBEVIRT_PROVIDER", ri->kubevirt_provider);
        cJSON_AddStringToObject(env, "KUBECONFIG", ri->kubeconfig);
        cJSON_AddStringToObject(env, "KUBEVIRT_E2E_FOCUS", ri->focus);
        if (ri->display)
                cJSON_AddStringToObject(env, "VGPU_DISPLAY", "true");
        cJSON_AddBoolToObject(root, "finished", ri->finished);
        if (ri->finished) {
                cJSON_AddStringToObject(root, "outcome", ri->outcome);
                cJSON_AddNumberToObject(root, "make_exit", ri->make_exit);
                cJSON_AddBoolToObject(root, "interrupted", ri->interrupted);
                cJSON_AddNumberToObject(root, "duration", ri->duration);
                cJSON_AddNumberToObject(root, "collected_files", ri->collected_files);
                if (ri->res) {
                        cJSON *c = cJSON_AddObjectToObject(root, "counts");
                        for (int s = 0; s < _JUNIT_STATUS_MAX; s++)
                                cJSON_AddNumberToObject(c, junit_status_name(s),
                                                        ri->res->counts[s]);
                }
                errs = cJSON_AddArrayToObject(root, "errors");
                for (size_t i = 0; ri->errors && ri->errors[i]; i++)
                        cJSON_AddItemToArray(errs, cJSON_CreateString(ri->errors[i]));
        }
        text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text)
                return log_error_errno(ENOMEM, "Out of memory");
        r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %s", path, strerror(-r));
        return 0;
}

static void print_summary(const struct run_info *ri, const char *run_dir)
{
        const struct junit_result *res = ri->res;

        fprintf(stderr, "\n==> e2e %s on %s (display %s): %s\n", ri->name, ri->provider,
                ri->display ? "on" : "off", ri->outcome);
        if (res && res->files)
                fprintf(stderr, "    %u passed, %u failed, %u skipped, %u errors (%.1fs)\n",
                        res->counts[JUNIT_PASSED], res->counts[JUNIT_FAILED],
                        res->counts[JUNIT_SKIPPED], res->counts[JUNIT_ERROR], ri->duration);
        for (size_t i = 0; res && i < res->n_cases; i++) {
                const struct junit_case *c = &res->cases[i];
                if (c->outcome != JUNIT_FAILED && c->outcome != JUNIT_ERROR)
                        continue;
                fprintf(stderr, "    [%s] %s\n", c->status, c->name);
                if (c->location)
                        fprintf(stderr, "        at %s\n", c->location);
                if (!isempty(c->message))
                        fprintf(stderr, "        %.*s\n", (int)strcspn(c->message, "\n"),
                                c->message);
        }
        for (size_t i = 0; ri->errors && ri->errors[i]; i++)
                fprintf(stderr, "    problem: %s\n", ri->errors[i]);
        fprintf(stderr, "    run directory: %s (functest.log, artifacts/%s)\n", run_dir,
                ri->collected_files ? ", collected/" : "");
}

static int check_checkout(const char *dir)
{
        _cleanup_free_ char *mk = strdup_printf("%s/Makefile", dir);
        struct stat st;

        if (!mk)
                return log_error_errno(ENOMEM, "Out of memory");
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(ENOENT, "--kubevirt %s: no such directory", dir);
        if (!file_exists(mk))
                return log_error_errno(ENOENT,
                                       "--kubevirt %s: not a KubeVirt checkout (no Makefile with "
                                       "a functest target)",
                                       dir);
        return 0;
}

/* A run directory is reused (make e2e always writes the same one): stale
 * JUnit from an earlier run must not pass for this run's results, so clear
 * what an earlier run of ours left. A non-empty directory that is not ours
 * is refused rather than emptied. */
static int prepare_run_dir(const char *dir)
{
        static const char *const ours[] = {RUN_ARTIFACTS_DIR, RUN_COLLECTED_DIR, RUN_LOG_FILE,
                                           RUN_INFO_FILE,     "report.md",       "report.html"};
        _cleanup_free_ char *info = strdup_printf("%s/" RUN_INFO_FILE, dir);
        DIR *d;
        bool empty = true;

        if (!info)
                return log_error_errno(ENOMEM, "Out of memory");
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : log_error_errno(errno, "Cannot open %s: %m", dir);
        /* The matrix writes its logs of this cell (up.log, console.log,
         * down.log) into the directory before the run starts. */
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    !streq(de->d_name, "up.log") && !streq(de->d_name, "console.log") &&
                    !streq(de->d_name, "down.log"))
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

int e2e_run(const struct e2e_run_opts *o)
{
        _cleanup_(config_done) struct config cfg = {0};
        _cleanup_(run_ctx_done) struct run_ctx ctx = {0};
        _cleanup_(state_done) struct state st = {0};
        _cleanup_free_ char *state_file = NULL, *kubeconfig = NULL, *run_dir = NULL, *art = NULL,
                            *logp = NULL, *collected = NULL, *kubevirt_dir = NULL;
        _cleanup_strv_free_ char **env_set = NULL, **env_unset = NULL, **errors = NULL;
        _cleanup_(junit_result_done) struct junit_result res = {0};
        const struct provider_ops *ops;
        struct functest_result fr = {0};
        struct run_info ri = {.o = o};
        const char *kv_provider;
        bool display;
        int r;

        r = config_load(&cfg, o->config);
        if (r < 0)
                return EXIT_USAGE;
        r = check_checkout(o->kubevirt_dir);
        if (r < 0)
                return EXIT_USAGE;
        kubevirt_dir = realpath(o->kubevirt_dir, NULL);
        ops = provider_for_config(&cfg);
        if (!ops) {
                log_error("%s: provider %s is not built into this vgpuenv", o->config,
                          provider_names[cfg.provider]);
                return EXIT_USAGE;
        }
        display = o->display == E2E_DISPLAY_AUTO ? ops->vm_nodes : o->display == E2E_DISPLAY_ON;
        if (display && !ops->vm_nodes) {
                log_error("The vGPU display cannot be turned on with provider %s: its nodes are "
                          "containers without a render node, and QEMU fails with "
                          "\"vfio-display-dmabuf: opengl not available\". Use a VM provider "
                          "(local, kcli, kubevirtci) or --display off.",
                          ops->name);
                return EXIT_USAGE;
        }

        r = run_ctx_init(&ctx, &cfg);
        if (r < 0)
                return EXIT_FAIL;
        state_file = strdup_printf("%s/state.json", ctx.state_dir);
        if (!state_file)
                return EXIT_FAIL;
        if (!file_exists(state_file)) {
                log_error("Cluster %s is not up (no %s); run `vgpuenv up -c %s` first.", cfg.name,
                          state_file, o->config);
                return EXIT_FAIL;
        }
        r = state_open(&st, ctx.state_dir, cfg.name, ops->name);
        if (r < 0)
                return EXIT_FAIL;

        if (o->kubeconfig)
                kubeconfig = strdup(o->kubeconfig);
        else {
                r = ops->kubeconfig ? ops->kubeconfig(&ctx, &kubeconfig) : -ENOENT;
                if (r >= 0 && !file_exists(kubeconfig)) {
                        free(kubeconfig);
                        kubeconfig = NULL;
                        r = -ENOENT;
                }
                /* local makes bare VM nodes: the Kubernetes on them is the
                 * user's, so their KUBECONFIG is the one. Other providers
                 * make the cluster; a missing kubeconfig means it is not up,
                 * and falling back to KUBECONFIG could hit another cluster. */
                if (r == -ENOENT && streq(ops->name, "local") && !isempty(getenv("KUBECONFIG"))) {
                        kubeconfig = strdup(getenv("KUBECONFIG"));
                        r = 0;
                }
                if (r < 0) {
                        if (streq(ops->name, "local"))
                                log_error("Provider local makes no Kubernetes cluster of its own: "
                                          "pass --kubeconfig or set KUBECONFIG to the cluster on "
                                          "the %s nodes.",
                                          cfg.name);
                        else
                                log_error("Cluster %s (provider %s) has no kubeconfig: is it up? "
                                          "(`vgpuenv status -c %s`), or pass --kubeconfig.",
                                          cfg.name, ops->name, o->config);
                        return EXIT_FAIL;
                }
        }
        if (!kubeconfig)
                return EXIT_FAIL;
        kv_provider = ops->kubevirt_provider ? ops->kubevirt_provider(&ctx) : NULL;
        if (isempty(kv_provider))
                kv_provider = "external";

        if (o->run_dir)
                run_dir = strdup(o->run_dir);
        else {
                _cleanup_free_ char *stamp = utc_stamp("%Y%m%d-%H%M%S");
                run_dir = stamp ? strdup_printf("_e2e/%s-%s", cfg.name, stamp) : NULL;
        }
        if (!run_dir)
                return EXIT_FAIL;
        art = strdup_printf("%s/" RUN_ARTIFACTS_DIR, run_dir);
        logp = strdup_printf("%s/" RUN_LOG_FILE, run_dir);
        collected = strdup_printf("%s/" RUN_COLLECTED_DIR, run_dir);
        if (!art || !logp || !collected)
                return EXIT_FAIL;
        r = prepare_run_dir(run_dir);
        if (r < 0)
                return r == -EEXIST ? EXIT_USAGE : EXIT_FAIL;
        r = mkdir_p(art, 0755);
        if (r < 0) {
                log_error_errno(r, "Cannot create %s: %s", art, strerror(-r));
                return EXIT_FAIL;
        }
        {
                /* ARTIFACTS must be absolute: make runs in the checkout. */
                _cleanup_free_ char *abs_art = realpath(art, NULL);
                const char *focus = o->focus ? o->focus : E2E_DEFAULT_FOCUS;

                if (!abs_art ||
                    strv_push(&env_set, strdup_printf("KUBEVIRT_E2E_FOCUS=%s", focus)) < 0 ||
                    strv_push(&env_set, strdup_printf("KUBECONFIG=%s", kubeconfig)) < 0 ||
                    strv_push(&env_set, strdup_printf("KUBEVIRT_PROVIDER=%s", kv_provider)) < 0 ||
                    strv_push(&env_set, strdup_printf("ARTIFACTS=%s", abs_art)) < 0)
                        return EXIT_FAIL;
                if (o->skip) {
                        if (strv_push(&env_set, strdup_printf("KUBEVIRT_E2E_SKIP=%s", o->skip)) < 0)
                                return EXIT_FAIL;
                } else if (strv_extend(&env_unset, "KUBEVIRT_E2E_SKIP") < 0)
                        return EXIT_FAIL;
                if (display) {
                        if (strv_extend(&env_set, "VGPU_DISPLAY=true") < 0)
                                return EXIT_FAIL;
                } else if (strv_extend(&env_unset, "VGPU_DISPLAY") < 0)
                        return EXIT_FAIL;
                ri.focus = focus;
        }

        ri.name = o->name ? o->name : cfg.name;
        ri.cluster = cfg.name;
        ri.provider = ops->name;
        ri.kubevirt_provider = kv_provider;
        ri.kubeconfig = kubeconfig;
        ri.display = display;
        ri.started = utc_stamp("%Y-%m-%dT%H:%M:%SZ");
        if (write_info(run_dir, &ri) < 0) {
                free(ri.started);
                return EXIT_FAIL;
        }

        log_info("Running make functest in %s (focus \"%s\", provider %s, display %s), "
                 "output in %s",
                 kubevirt_dir ? kubevirt_dir : o->kubevirt_dir, ri.focus, kv_provider,
                 display ? "on" : "off", logp);
        struct functest_opts fo = {
            .dir = kubevirt_dir ? kubevirt_dir : o->kubevirt_dir,
            .env_set = env_set,
            .env_unset = env_unset,
            .log_path = logp,
            .quiet = o->quiet,
            .grace = o->grace,
        };
        r = functest_run(&fo, &fr);
        if (r < 0) {
                strv_push(&errors,
                          strdup_printf("make functest could not be started: %s", strerror(-r)));
                fr.exit_code = 127;
        }

        r = junit_load_dir(art, &res, &errors);
        if (r == -ENOMEM) {
                free(ri.started);
                return EXIT_FAIL;
        }
        enum e2e_outcome outcome = e2e_outcome_compute(
            fr.exit_code, fr.interrupted, res.files != NULL, &res, strv_length(errors));
        if (outcome == E2E_ERROR && fr.exit_code != 0)
                strv_push(&errors,
                          strdup_printf("make functest exited with status %d%s", fr.exit_code,
                                        fr.exit_code > 128 ? " (killed by a signal)" : ""));
        if (outcome == E2E_ERROR && res.files && res.counts[JUNIT_PASSED] == 0 && fr.exit_code == 0)
                strv_push(&errors,
                          strdup_printf("no spec ran: focus \"%s\" matched nothing?", ri.focus));

        if (outcome != E2E_PASSED && o->collect) {
                struct collect_opts co = {
                    .kubectl = cfg.kubevirt.kubectl,
                    .kubeconfig = kubeconfig,
                    .out_dir = collected,
                    .state = &st,
                    .stop = &collect_stop,
                };
                struct sigaction sa = {.sa_handler = on_collect_signal}, old_int, old_term;

                /* Ctrl-C now ends the collection, not vgpuenv: run.json must
                 * still be completed. */
                collect_stop = 0;
                sigemptyset(&sa.sa_mask);
                sigaction(SIGINT, &sa, &old_int);
                sigaction(SIGTERM, &sa, &old_term);
                log_info("Collecting failure artifacts into %s (Ctrl-C to stop) ...", collected);
                collect_artifacts(&co, &ri.collected_files);
                sigaction(SIGINT, &old_int, NULL);
                sigaction(SIGTERM, &old_term, NULL);
                if (collect_stop)
                        log_notice("Artifact collection interrupted; kept what was collected.");
        }

        ri.finished = true;
        ri.interrupted = fr.interrupted;
        ri.make_exit = fr.exit_code;
        ri.duration = fr.elapsed;
        ri.res = &res;
        ri.errors = errors;
        ri.outcome = e2e_outcome_name(outcome);
        r = write_info(run_dir, &ri);
        print_summary(&ri, run_dir);
        free(ri.started);
        if (r < 0)
                return EXIT_FAIL;
        return outcome == E2E_PASSED ? EXIT_OK : EXIT_FAIL;
}
