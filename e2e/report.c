/* Loading run directories and writing Markdown, JSON and merged JUnit
 * reports (HTML lives in report_html.c). See report.h. */
#include "e2e/report.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

static const char *const outcome_names[_E2E_OUTCOME_MAX] = {
    [E2E_PASSED] = "passed",           [E2E_FAILED] = "failed",      [E2E_ERROR] = "error",
    [E2E_INTERRUPTED] = "interrupted", [E2E_RUNNING] = "unfinished",
};

const char *e2e_outcome_name(enum e2e_outcome o)
{
        return o < _E2E_OUTCOME_MAX ? outcome_names[o] : "unknown";
}

int e2e_outcome_from_name(const char *s)
{
        for (int i = 0; s && i < _E2E_OUTCOME_MAX; i++)
                if (streq(s, outcome_names[i]))
                        return i;
        return -EINVAL;
}

enum e2e_outcome e2e_outcome_compute(int make_exit, bool interrupted, bool junit_found,
                                     const struct junit_result *r, size_t n_errors)
{
        if (interrupted)
                return E2E_INTERRUPTED;
        if (junit_found && r->counts[JUNIT_FAILED] + r->counts[JUNIT_ERROR] > 0)
                return E2E_FAILED;
        if (!junit_found || n_errors > 0 || make_exit != 0)
                return E2E_ERROR;
        /* A focus that matched nothing is not a pass of MediatedDevices. */
        if (r->counts[JUNIT_PASSED] == 0)
                return E2E_ERROR;
        return E2E_PASSED;
}

void e2e_cell_done(struct e2e_cell *c)
{
        FREE_ALL(c->dir, c->name, c->provider, c->cluster, c->focus, c->skip, c->started,
                 c->kubevirt_ref, c->kubevirt_commit, c->vgpu_display, c->why);
        e2e_expect_done(&c->expect);
        junit_result_done(&c->res);
        strv_free(c->errors);
        *c = (struct e2e_cell){0};
}

void e2e_cells_free(struct e2e_cell *cells, size_t n)
{
        for (size_t i = 0; i < n; i++)
                e2e_cell_done(&cells[i]);
        free(cells);
}

static char *json_str(cJSON *o, const char *key)
{
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
        return s ? strdup(s) : NULL;
}

/* What ran: run.json's description of the run (see e2e/run_info.c). */
static void load_what_ran(cJSON *root, struct e2e_cell *c)
{
        cJSON *kv = cJSON_GetObjectItemCaseSensitive(root, "kubevirt");
        cJSON *x = cJSON_GetObjectItemCaseSensitive(root, "expect");
        cJSON *v;

        c->name = json_str(root, "name");
        c->provider = json_str(root, "provider");
        c->cluster = json_str(root, "cluster");
        c->focus = json_str(root, "focus");
        c->skip = json_str(root, "skip");
        c->started = json_str(root, "started");
        c->kubevirt_ref = json_str(kv, "ref");
        c->kubevirt_commit = json_str(kv, "commit");
        c->vgpu_display = json_str(root, "vgpu_display");
        c->display = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "display"));
        c->expect.failure = cJSON_IsObject(x) &&
                            (v = cJSON_GetObjectItemCaseSensitive(x, "outcome")) &&
                            cJSON_IsString(v) && streq(v->valuestring, "failed");
        c->expect.message = json_str(x, "message");
        c->interrupted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "interrupted"));
        c->finished = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "finished"));
        v = cJSON_GetObjectItemCaseSensitive(root, "make_exit");
        c->make_exit = cJSON_IsNumber(v) ? v->valueint : -1;
        v = cJSON_GetObjectItemCaseSensitive(root, "duration");
        c->duration = cJSON_IsNumber(v) ? v->valuedouble : 0;
        /* Written by the matrix when a cell never got to run its tests. */
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(root, "setup_errors"))
        {
                if (cJSON_IsString(v))
                        strv_extend(&c->errors, v->valuestring);
        }
}

/* The outcome from the JUnit as it is now, and the problems to show. */
static void judge_cell(struct e2e_cell *c, const char *info_path)
{
        if (!c->finished) {
                /* vgpuenv itself died mid-run: say so, and still show what
                 * the JUnit holds. */
                c->outcome = E2E_RUNNING;
                strv_push(&c->errors, strdup_printf("%s: the run never finished (vgpuenv was "
                                                    "killed?); results are partial",
                                                    info_path));
        } else
                c->outcome = e2e_outcome_compute(c->make_exit, c->interrupted, c->junit_found,
                                                 &c->res, strv_length(c->errors));
        if (c->finished && c->make_exit != 0 && !c->interrupted && c->outcome != E2E_FAILED)
                strv_push(&c->errors, strdup_printf("%s: make functest exited with status %d",
                                                    c->name, c->make_exit));
        if (c->outcome == E2E_ERROR && c->junit_found && strv_length(c->errors) == 0 &&
            c->res.counts[JUNIT_PASSED] == 0)
                strv_push(&c->errors, strdup_printf("%s: no spec ran (focus \"%s\" matched "
                                                    "nothing?)",
                                                    c->name, c->focus ? c->focus : ""));
        c->as_expected = e2e_expect_met(&c->expect, c->outcome, &c->res, &c->why);
}

int e2e_cell_load(const char *dir, struct e2e_cell *c, char **ret_err)
{
        _cleanup_free_ char *path = strdup_printf("%s/" RUN_INFO_FILE, dir);
        _cleanup_free_ char *art = strdup_printf("%s/" RUN_ARTIFACTS_DIR, dir);
        _cleanup_free_ char *text = NULL;
        cJSON *root;
        int r;

        *c = (struct e2e_cell){0};
        if (!path || !art)
                return -ENOMEM;
        r = read_full_file(path, &text, NULL);
        if (r < 0) {
                *ret_err = strdup_printf("%s: %s (not an e2e run directory?)", path, strerror(-r));
                return r;
        }
        root = cJSON_Parse(text);
        if (!root || !cJSON_IsObject(root) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "provider"))) {
                cJSON_Delete(root);
                *ret_err = strdup_printf("%s: not a vgpuenv run summary (expected a JSON object "
                                         "with \"provider\")",
                                         path);
                return -EINVAL;
        }
        c->dir = strdup(dir);
        load_what_ran(root, c);
        cJSON_Delete(root);
        if (!c->name) {
                const char *base = strrchr(dir, '/');
                c->name = strdup(base && base[1] ? base + 1 : dir);
        }
        if (!c->dir || !c->name)
                return -ENOMEM;
        r = junit_load_dir(art, &c->res, &c->errors);
        if (r == -ENOMEM)
                return r;
        c->junit_found = c->res.files != NULL;
        judge_cell(c, path);
        return 0;
}

const char *report_cell_class(const struct e2e_cell *c)
{
        if (c->outcome == E2E_FAILED && c->expect.failure && c->as_expected)
                return "xfail";
        return e2e_outcome_name(c->outcome);
}

char *report_cell_verdict(const struct e2e_cell *c)
{
        if (c->as_expected && c->expect.failure)
                return strdup_printf("failed as expected%s%s%s", c->expect.message ? " (" : "",
                                     c->expect.message ? c->expect.message : "",
                                     c->expect.message ? ")" : "");
        if (c->as_expected)
                return strdup(e2e_outcome_name(c->outcome));
        return strdup_printf("%s, not as expected: %s", e2e_outcome_name(c->outcome),
                             c->why ? c->why : "?");
}

static int add_cell(struct e2e_cell **cells, size_t *n, const char *dir)
{
        _cleanup_free_ char *err = NULL;
        struct e2e_cell c, *l;
        int r = e2e_cell_load(dir, &c, &err);

        if (r < 0) {
                e2e_cell_done(&c);
                if (err)
                        log_error("%s", err);
                return r;
        }
        l = realloc(*cells, (*n + 1) * sizeof(*l));
        if (!l) {
                e2e_cell_done(&c);
                return -ENOMEM;
        }
        l[(*n)++] = c;
        *cells = l;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int e2e_cells_load(char *const *dirs, struct e2e_cell **ret, size_t *ret_n)
{
        struct e2e_cell *cells = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; dirs && dirs[i] && r >= 0; i++) {
                _cleanup_free_ char *info = strdup_printf("%s/" RUN_INFO_FILE, dirs[i]);
                _cleanup_strv_free_ char **subs = NULL;
                struct stat st;
                DIR *d;

                if (!info) {
                        r = -ENOMEM;
                        break;
                }
                if (stat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
                        r = log_error_errno(ENOENT, "%s: no such run directory", dirs[i]);
                        break;
                }
                if (file_exists(info)) {
                        r = add_cell(&cells, &n, dirs[i]);
                        continue;
                }
                /* A matrix directory: its cells, in name order. */
                d = opendir(dirs[i]);
                for (struct dirent *de; d && (de = readdir(d));) {
                        _cleanup_free_ char *sub = NULL, *sub_info = NULL;

                        if (de->d_name[0] == '.')
                                continue;
                        sub = strdup_printf("%s/%s", dirs[i], de->d_name);
                        sub_info = strdup_printf("%s/%s/" RUN_INFO_FILE, dirs[i], de->d_name);
                        if (sub && sub_info && file_exists(sub_info))
                                strv_push(&subs, TAKE_PTR(sub));
                }
                if (d)
                        closedir(d);
                if (!subs) {
                        r = log_error_errno(EINVAL,
                                            "%s: neither an e2e run directory (no %s) nor a "
                                            "matrix directory holding run directories",
                                            dirs[i], RUN_INFO_FILE);
                        break;
                }
                qsort(subs, strv_length(subs), sizeof(char *), cmp_str);
                for (size_t k = 0; subs[k] && r >= 0; k++)
                        r = add_cell(&cells, &n, subs[k]);
        }
        if (r < 0) {
                e2e_cells_free(cells, n);
                return r;
        }
        *ret = cells;
        *ret_n = n;
        return 0;
}

int report_format_from_name(const char *s)
{
        static const char *const names[] = {
            [REPORT_MARKDOWN] = "markdown",
            [REPORT_JSON] = "json",
            [REPORT_JUNIT] = "junit",
            [REPORT_HTML] = "html",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int)i;
        if (streq(s, "md"))
                return REPORT_MARKDOWN;
        return -EINVAL;
}

/* Path of target relative to from_dir, both resolved; NULL when target does
 * not exist (no dead links in reports). */
char *report_relpath(const char *target, const char *from_dir)
{
        char t[PATH_MAX], f[PATH_MAX];
        const char *pt, *pf;
        size_t common = 0;
        _cleanup_free_ char *ups = NULL;

        if (!realpath(target, t) || !realpath(from_dir, f))
                return NULL;
        /* Longest common prefix that ends at a component boundary. */
        for (size_t i = 0;; i++) {
                bool tend = t[i] == 0 || t[i] == '/', fend = f[i] == 0 || f[i] == '/';
                if (tend && fend)
                        common = i;
                if (t[i] != f[i] || t[i] == 0)
                        break;
        }
        pt = t + common;
        pf = f + common;
        if (*pt == '/')
                pt++;
        ups = strdup("");
        for (const char *p = pf; ups && *p; p++)
                if (*p == '/') {
                        char *n = strdup_printf("%s../", ups);
                        free(ups);
                        ups = n;
                }
        if (!ups)
                return NULL;
        if (!*pt && !*ups)
                return strdup(".");
        return strdup_printf("%s%s", ups, pt);
}

static char *rel_in_cell(const struct e2e_cell *c, const char *what, const char *base)
{
        _cleanup_free_ char *p = strdup_printf("%s/%s", c->dir, what);
        return p ? report_relpath(p, base) : NULL;
}

/* ---- Markdown --------------------------------------------------------------- */

static const char *outcome_badge(const struct e2e_cell *c)
{
        if (streq(report_cell_class(c), "xfail"))
                return "\xe2\x9c\x94\xef\xb8\x8f failed as expected"; /* heavy check mark */
        switch (c->outcome) {
        case E2E_PASSED:
                return "\xe2\x9c\x85 passed"; /* check mark */
        case E2E_FAILED:
                return "\xe2\x9d\x8c failed"; /* cross mark */
        case E2E_INTERRUPTED:
                return "\xe2\x8f\xb9\xef\xb8\x8f interrupted"; /* stop button */
        default:
                return c->outcome == E2E_RUNNING ? "\xe2\x9a\xa0\xef\xb8\x8f unfinished"
                                                 : "\xe2\x9a\xa0\xef\xb8\x8f error"; /* warning */
        }
}

/* Table cells must not break the row: escape pipes, flatten newlines. */
static void md_cell(FILE *f, const char *s)
{
        for (; s && *s; s++) {
                if (*s == '|')
                        fputs("\\|", f);
                else if (*s == '\n' || *s == '\r')
                        fputc(' ', f);
                else
                        fputc(*s, f);
        }
}

static void md_code(FILE *f, const char *s)
{
        fputc('`', f);
        for (; s && *s; s++)
                fputc(*s == '`' ? '\'' : (*s == '\n' ? ' ' : *s), f);
        fputc('`', f);
}

static void md_summary(FILE *f, const struct e2e_cell *cells, size_t n)
{
        unsigned by_outcome[_E2E_OUTCOME_MAX] = {0}, expected = 0;

        for (size_t i = 0; i < n; i++) {
                by_outcome[cells[i].outcome]++;
                expected += cells[i].as_expected;
        }
        fprintf(f, "## vgpuenv e2e: MediatedDevices\n\n");
        fprintf(f, "%zu cell%s, %u as expected:", n, n == 1 ? "" : "s", expected);
        for (int o = 0, first = 1; o < _E2E_OUTCOME_MAX; o++)
                if (by_outcome[o]) {
                        fprintf(f, "%s %u %s", first ? "" : ",", by_outcome[o],
                                e2e_outcome_name(o));
                        first = 0;
                }
        fprintf(f, "\n\n");
}

static void md_row(FILE *f, const struct e2e_cell *c, const char *base)
{
        _cleanup_free_ char *rel = rel_in_cell(c, RUN_ARTIFACTS_DIR, base);
        _cleanup_free_ char *verdict = report_cell_verdict(c);

        const char *const text[] = {c->name, c->provider, c->kubevirt_ref ? c->kubevirt_ref : "?",
                                    c->vgpu_display ? c->vgpu_display : "?"};

        for (size_t i = 0; i < ELEMENTSOF(text); i++) {
                fputs(i ? " | " : "| ", f);
                md_cell(f, text[i]);
        }
        fprintf(f, " | %s | %s | ", c->display ? "on" : "off", outcome_badge(c));
        md_cell(f, c->as_expected ? "as expected" : verdict);
        /* The counts in junit_status order: the table's column order. */
        for (int s = 0; s < _JUNIT_STATUS_MAX; s++)
                fprintf(f, " | %u", c->res.counts[s]);
        fprintf(f, " | %.0fs | ", c->duration);
        if (rel) {
                fputc('`', f);
                md_cell(f, rel);
                fputc('`', f);
        }
        fputs(" |\n", f);
}

static void md_failures(FILE *f, const struct e2e_cell *cells, size_t n)
{
        bool header = false;

        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < cells[i].res.n_cases; k++) {
                        const struct junit_case *tc = &cells[i].res.cases[k];
                        if (tc->outcome != JUNIT_FAILED && tc->outcome != JUNIT_ERROR)
                                continue;
                        if (!header)
                                fprintf(f, "\n### Failures\n\n");
                        header = true;
                        fprintf(f, "- **");
                        md_cell(f, cells[i].name);
                        fprintf(f, "** (%s%s) ", tc->status,
                                streq(report_cell_class(&cells[i]), "xfail") ? ", expected" : "");
                        md_code(f, tc->name);
                        if (tc->location) {
                                fputs(" at ", f);
                                md_code(f, tc->location);
                        }
                        if (!isempty(tc->message)) {
                                fputs("\n  > ", f);
                                md_cell(f, tc->message);
                        }
                        fputc('\n', f);
                }
}

static void md_problems(FILE *f, const struct e2e_cell *cells, size_t n)
{
        bool header = false;

        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; cells[i].errors && cells[i].errors[k]; k++) {
                        if (!header)
                                fprintf(f, "\n### Problems\n\n");
                        header = true;
                        fputs("- ", f);
                        md_code(f, cells[i].errors[k]);
                        fputc('\n', f);
                }
}

static void write_markdown(FILE *f, const struct e2e_cell *cells, size_t n, const char *base)
{
        md_summary(f, cells, n);
        fprintf(f, "| Cell | Provider | KubeVirt | Fake vGPU | Display | Result | Verdict | Passed "
                   "| Failed | Skipped | Errors | Not selected | Duration | Artifacts |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|\n");
        for (size_t i = 0; i < n; i++)
                md_row(f, &cells[i], base);
        md_failures(f, cells, n);
        md_problems(f, cells, n);
}

/* ---- JSON -------------------------------------------------------------------- */

static cJSON *counts_json(const unsigned *counts)
{
        cJSON *o = cJSON_CreateObject();

        for (int s = 0; o && s < _JUNIT_STATUS_MAX; s++)
                cJSON_AddNumberToObject(o, junit_status_name(s), counts[s]);
        return o;
}

/* Optional fields are left out of the JSON, never written as null. */
static void add_string_if_set(cJSON *o, const char *key, const char *s)
{
        if (s)
                cJSON_AddStringToObject(o, key, s);
}

static void json_tests(cJSON *o, const struct e2e_cell *c)
{
        cJSON *tests = cJSON_AddArrayToObject(o, "tests");

        for (size_t k = 0; k < c->res.n_cases; k++) {
                const struct junit_case *tc = &c->res.cases[k];
                cJSON *t;

                /* Counted in counts.not_selected; listing a whole suite of
                 * them would bury what ran. */
                if (tc->outcome == JUNIT_NOT_SELECTED || !(t = cJSON_CreateObject()))
                        continue;
                cJSON_AddItemToArray(tests, t);
                cJSON_AddStringToObject(t, "name", tc->name);
                cJSON_AddStringToObject(t, "outcome", junit_status_name(tc->outcome));
                cJSON_AddStringToObject(t, "status", tc->status);
                cJSON_AddNumberToObject(t, "time", tc->time);
                add_string_if_set(t, "message", tc->message);
                add_string_if_set(t, "location", tc->location);
        }
}

static void json_what_ran(cJSON *o, const struct e2e_cell *c)
{
        _cleanup_free_ char *verdict = report_cell_verdict(c);
        cJSON *kv = cJSON_AddObjectToObject(o, "kubevirt"), *x;

        cJSON_AddStringToObject(o, "name", c->name);
        cJSON_AddStringToObject(o, "provider", c->provider);
        add_string_if_set(kv, "ref", c->kubevirt_ref);
        add_string_if_set(kv, "commit", c->kubevirt_commit);
        add_string_if_set(o, "vgpu_display", c->vgpu_display);
        cJSON_AddBoolToObject(o, "display", c->display);
        x = cJSON_AddObjectToObject(o, "expect");
        cJSON_AddStringToObject(x, "outcome", c->expect.failure ? "failed" : "passed");
        add_string_if_set(x, "message", c->expect.message);
        cJSON_AddStringToObject(o, "outcome", e2e_outcome_name(c->outcome));
        cJSON_AddBoolToObject(o, "as_expected", c->as_expected);
        add_string_if_set(o, "verdict", verdict);
        cJSON_AddBoolToObject(o, "interrupted", c->interrupted);
        cJSON_AddNumberToObject(o, "make_exit", c->make_exit);
        cJSON_AddNumberToObject(o, "duration", c->duration);
        add_string_if_set(o, "focus", c->focus);
        add_string_if_set(o, "started", c->started);
}

static void json_files(cJSON *o, const struct e2e_cell *c, const char *base)
{
        _cleanup_free_ char *art = rel_in_cell(c, RUN_ARTIFACTS_DIR, base);
        _cleanup_free_ char *col = rel_in_cell(c, RUN_COLLECTED_DIR, base);
        _cleanup_free_ char *logf = rel_in_cell(c, RUN_LOG_FILE, base);
        cJSON *files, *errs;

        add_string_if_set(o, "artifacts", art);
        add_string_if_set(o, "collected", col);
        add_string_if_set(o, "log", logf);
        files = cJSON_AddArrayToObject(o, "junit_files");
        for (size_t k = 0; c->res.files && c->res.files[k]; k++) {
                _cleanup_free_ char *rel = report_relpath(c->res.files[k], base);
                cJSON_AddItemToArray(files, cJSON_CreateString(rel ? rel : c->res.files[k]));
        }
        errs = cJSON_AddArrayToObject(o, "errors");
        for (size_t k = 0; c->errors && c->errors[k]; k++)
                cJSON_AddItemToArray(errs, cJSON_CreateString(c->errors[k]));
}

static char *write_json(const struct e2e_cell *cells, size_t n, const char *base)
{
        cJSON *root = cJSON_CreateObject(), *arr;
        unsigned totals[_JUNIT_STATUS_MAX] = {0};
        bool ok = true;
        char *s;

        if (!root)
                return NULL;
        arr = cJSON_AddArrayToObject(root, "cells");
        for (size_t i = 0; arr && i < n; i++) {
                const struct e2e_cell *c = &cells[i];
                cJSON *o = cJSON_CreateObject();

                if (!o)
                        break;
                cJSON_AddItemToArray(arr, o);
                json_what_ran(o, c);
                cJSON_AddItemToObject(o, "counts", counts_json(c->res.counts));
                cJSON_AddNumberToObject(o, "never_ran", c->res.never_ran);
                cJSON_AddNumberToObject(o, "time", c->res.time);
                json_files(o, c, base);
                json_tests(o, c);
                for (int k = 0; k < _JUNIT_STATUS_MAX; k++)
                        totals[k] += c->res.counts[k];
                ok = ok && c->as_expected;
        }
        cJSON_AddItemToObject(root, "totals", counts_json(totals));
        cJSON_AddBoolToObject(root, "ok", ok && n > 0);
        s = cJSON_Print(root);
        cJSON_Delete(root);
        return s;
}

/* ---- dispatch ---------------------------------------------------------------- */

static int write_out(const char *out_path, const char *data, size_t size)
{
        int r;

        if (!out_path) {
                if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0)
                        return log_error_errno(EIO, "Cannot write the report to stdout");
                return 0;
        }
        r = write_file_atomic(out_path, data, size, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %s", out_path, strerror(-r));
        return 0;
}

/* What the cell ran, as <property> entries of its <testsuite>. */
static char **cell_properties(const struct e2e_cell *c)
{
        _cleanup_free_ char *verdict = report_cell_verdict(c);
        char **p = NULL;
        int r = 0;

        r |= strv_push(&p, strdup_printf("provider=%s", c->provider));
        r |= strv_push(&p, strdup_printf("kubevirt=%s", c->kubevirt_ref ? c->kubevirt_ref : "?"));
        if (c->kubevirt_commit)
                r |= strv_push(&p, strdup_printf("kubevirt_commit=%s", c->kubevirt_commit));
        r |= strv_push(&p,
                       strdup_printf("vgpu_display=%s", c->vgpu_display ? c->vgpu_display : "?"));
        r |= strv_push(&p, strdup_printf("display=%s", c->display ? "on" : "off"));
        r |= strv_push(&p, strdup_printf("outcome=%s", e2e_outcome_name(c->outcome)));
        r |= strv_push(&p, strdup_printf("expected=%s%s%s", c->expect.failure ? "failed" : "passed",
                                         c->expect.message ? ": " : "",
                                         c->expect.message ? c->expect.message : ""));
        r |= strv_push(&p, strdup_printf("as_expected=%s", c->as_expected ? "true" : "false"));
        r |= strv_push(&p, strdup_printf("verdict=%s", verdict ? verdict : "?"));
        r |= strv_push(&p, strdup_printf("not_selected=%u", c->res.counts[JUNIT_NOT_SELECTED]));
        if (r < 0) {
                strv_free(p);
                return NULL;
        }
        return p;
}

static void free_props(char ***props, size_t n)
{
        for (size_t i = 0; props && i < n; i++)
                strv_free(props[i]);
        free(props);
}

static int write_junit_file(const struct e2e_cell *cells, size_t n, const char *path)
{
        _cleanup_free_ struct junit_suite_ref *refs = calloc(n ? n : 1, sizeof(*refs));
        char ***props = calloc(n ? n : 1, sizeof(*props));
        int r = refs && props ? 0 : -ENOMEM;

        for (size_t i = 0; r >= 0 && i < n; i++) {
                props[i] = cell_properties(&cells[i]);
                refs[i] = (struct junit_suite_ref){
                    .name = cells[i].name, .res = &cells[i].res, .properties = props[i]};
        }
        if (r >= 0)
                r = junit_write(path, refs, n);
        free_props(props, n);
        return r;
}

static int write_junit_report(const struct e2e_cell *cells, size_t n, const char *out_path)
{
        _cleanup_free_ char *tmp = NULL, *data = NULL;
        const char *path = out_path;
        size_t size = 0;
        int r, fd;

        if (!out_path) {
                /* The writer wants a file; go through a temporary one. */
                tmp = strdup("/tmp/vgpuenv-junit-XXXXXX");
                if (!tmp || (fd = mkstemp(tmp)) < 0)
                        return log_error_errno(errno ? errno : ENOMEM, "mkstemp: %m");
                close(fd);
                path = tmp;
        }
        r = write_junit_file(cells, n, path);
        if (r < 0) {
                if (tmp)
                        unlink(tmp);
                return log_error_errno(r, "Cannot write %s: %s", path, strerror(-r));
        }
        if (!tmp)
                return 0;
        r = read_full_file(tmp, &data, &size);
        unlink(tmp);
        if (r < 0)
                return log_error_errno(r, "Cannot read back %s", tmp);
        return write_out(NULL, data, size);
}

int report_write(enum report_format fmt, const struct e2e_cell *cells, size_t n,
                 const char *out_path)
{
        _cleanup_free_ char *base = NULL, *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r = 0;

        if (fmt == REPORT_JUNIT)
                return write_junit_report(cells, n, out_path);
        if (out_path) {
                const char *slash = strrchr(out_path, '/');
                base = slash ? strndup(out_path, (size_t)(slash - out_path) + (slash == out_path))
                             : strdup(".");
        } else
                base = strdup(".");
        if (!base)
                return log_error_errno(ENOMEM, "Out of memory");
        if (fmt == REPORT_JSON) {
                _cleanup_free_ char *s = write_json(cells, n, base);
                if (!s)
                        return log_error_errno(ENOMEM, "Out of memory");
                buf = strdup_printf("%s\n", s);
                if (!buf)
                        return log_error_errno(ENOMEM, "Out of memory");
                return write_out(out_path, buf, strlen(buf));
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return log_error_errno(errno, "open_memstream: %m");
        if (fmt == REPORT_MARKDOWN)
                write_markdown(f, cells, n, base);
        else
                r = report_html(f, cells, n, base);
        if (fclose(f) != 0 || r < 0)
                return log_error_errno(r < 0 ? r : ENOMEM, "Cannot build the report");
        return write_out(out_path, buf, size);
}
