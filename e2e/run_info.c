/* run.json and the closing summary of `e2e run` (see run_info.h; the
 * fields are listed in docs/e2e.md and read back by report.c). */
#include "e2e/run_info.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "e2e/report.h"
#include "providers/provider.h"

static void add_what_ran(cJSON *root, const struct e2e_run *r)
{
        cJSON *kv, *x, *suite;

        cJSON_AddStringToObject(root, "name", r->name);
        cJSON_AddStringToObject(root, "cluster", r->cfg.name);
        cJSON_AddStringToObject(root, "provider", r->ops->name);
        cJSON_AddStringToObject(root, "config", r->o->config);
        kv = cJSON_AddObjectToObject(root, "kubevirt");
        cJSON_AddStringToObject(kv, "dir", r->kv.dir);
        cJSON_AddStringToObject(kv, "ref", kubevirt_ref_name(r->kv.ref));
        if (r->kv.commit)
                cJSON_AddStringToObject(kv, "commit", r->kv.commit);
        cJSON_AddStringToObject(root, "kubevirt_dir", r->kv.dir);
        cJSON_AddBoolToObject(root, "display", r->display);
        cJSON_AddStringToObject(root, "vgpu_display", vgpu_display_name(r->vgpu_display));
        x = cJSON_AddObjectToObject(root, "expect");
        cJSON_AddStringToObject(x, "outcome", r->expect.failure ? "failed" : "passed");
        if (r->expect.message)
                cJSON_AddStringToObject(x, "message", r->expect.message);
        cJSON_AddStringToObject(root, "focus", r->focus);
        if (r->o->skip)
                cJSON_AddStringToObject(root, "skip", r->o->skip);
        cJSON_AddStringToObject(root, "started", r->started);
        suite = cJSON_AddObjectToObject(root, "suite");
        cJSON_AddStringToObject(suite, "kubevirt_provider", r->suite.kubevirt_provider);
        cJSON_AddStringToObject(suite, "provider_config", r->suite.provider_config);
        cJSON_AddBoolToObject(suite, "provider_config_by_vgpuenv", r->suite.external);
        cJSON_AddStringToObject(suite, "kubeconfig", r->suite.kubeconfig);
}

static void add_env(cJSON *root, const struct e2e_run *r)
{
        cJSON *env = cJSON_AddObjectToObject(root, "env");
        cJSON *unset = cJSON_AddArrayToObject(root, "env_unset");

        for (size_t i = 0; r->env_set && r->env_set[i]; i++) {
                _cleanup_free_ char *k = strndup(r->env_set[i], strcspn(r->env_set[i], "="));
                const char *eq = strchr(r->env_set[i], '=');

                if (k && eq)
                        cJSON_AddStringToObject(env, k, eq + 1);
        }
        for (size_t i = 0; r->env_unset && r->env_unset[i]; i++)
                cJSON_AddItemToArray(unset, cJSON_CreateString(r->env_unset[i]));
}

static void add_results(cJSON *root, const struct e2e_run *r)
{
        cJSON *c, *errs;

        cJSON_AddStringToObject(root, "outcome", e2e_outcome_name(r->outcome));
        cJSON_AddBoolToObject(root, "as_expected", r->as_expected);
        cJSON_AddNumberToObject(root, "make_exit", r->fr.exit_code);
        cJSON_AddBoolToObject(root, "interrupted", r->fr.interrupted);
        cJSON_AddNumberToObject(root, "duration", r->fr.elapsed);
        cJSON_AddNumberToObject(root, "collected_files", r->collected_files);
        if (r->res.files) {
                c = cJSON_AddObjectToObject(root, "counts");
                for (int s = 0; s < _JUNIT_STATUS_MAX; s++)
                        cJSON_AddNumberToObject(c, junit_status_name(s), r->res.counts[s]);
                cJSON_AddNumberToObject(root, "never_ran", r->res.never_ran);
        }
        errs = cJSON_AddArrayToObject(root, "errors");
        for (size_t i = 0; r->errors && r->errors[i]; i++)
                cJSON_AddItemToArray(errs, cJSON_CreateString(r->errors[i]));
}

int run_info_write(const struct e2e_run *r)
{
        _cleanup_free_ char *path = strdup_printf("%s/" RUN_INFO_FILE, r->run_dir);
        _cleanup_free_ char *text = NULL;
        cJSON *root = cJSON_CreateObject();
        int q;

        if (!root || !path) {
                cJSON_Delete(root);
                return log_error_errno(ENOMEM, "Out of memory");
        }
        add_what_ran(root, r);
        add_env(root, r);
        cJSON_AddBoolToObject(root, "finished", r->finished);
        if (r->finished)
                add_results(root, r);
        text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text)
                return log_error_errno(ENOMEM, "Out of memory");
        q = write_file_atomic(path, text, strlen(text), 0644);
        if (q < 0)
                return log_error_errno(q, "Cannot write %s: %s", path, strerror(-q));
        return 0;
}

static void print_failures(const struct junit_result *res)
{
        for (size_t i = 0; i < res->n_cases; i++) {
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
}

void run_info_print_summary(const struct e2e_run *r)
{
        const struct junit_result *res = &r->res;
        _cleanup_free_ char *why = NULL;

        fprintf(stderr, "\n==> e2e %s on %s (KubeVirt %s, display %s, %s fake vGPU): %s\n", r->name,
                r->ops->name, kubevirt_ref_name(r->kv.ref), r->display ? "on" : "off",
                vgpu_display_name(r->vgpu_display), e2e_outcome_name(r->outcome));
        if (res->files)
                fprintf(stderr,
                        "    %u passed, %u failed, %u skipped, %u errors; %u not selected "
                        "(%.1fs)\n",
                        res->counts[JUNIT_PASSED], res->counts[JUNIT_FAILED],
                        res->counts[JUNIT_SKIPPED], res->counts[JUNIT_ERROR],
                        res->counts[JUNIT_NOT_SELECTED], r->fr.elapsed);
        print_failures(res);
        if (r->o->expect_outcome) {
                e2e_expect_met(&r->expect, r->outcome, res, &why);
                fprintf(stderr, "    %s%s%s\n",
                        r->as_expected ? "as expected: failed with \"" : "NOT as expected: ",
                        r->as_expected ? (r->expect.message ? r->expect.message : "") : why,
                        r->as_expected ? "\"" : "");
        }
        for (size_t i = 0; r->errors && r->errors[i]; i++)
                fprintf(stderr, "    problem: %s\n", r->errors[i]);
        fprintf(stderr, "    run directory: %s (functest.log, artifacts/%s)\n", r->run_dir,
                r->collected_files ? ", collected/" : "");
}
