/* Results of e2e runs and the reports made from them.
 *
 * `e2e run` leaves a run directory:
 *   run.json          what ran (cell, provider, display, focus, exit status,
 *                     interrupted, duration) - written at start and end
 *   functest.log      the console output of make functest
 *   artifacts/        ARTIFACTS of the KubeVirt run (junit.functest.xml ...)
 *   collected/        failure artifacts (see collect.h)
 * A report reads any number of run directories (or matrix directories that
 * hold them) and writes Markdown, JSON, one merged JUnit or an HTML page. The
 * JUnit is parsed again at report time, so a report of an interrupted run
 * shows whatever results its files hold. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "e2e/junit.h"
#include "e2e/verdict.h"

#define RUN_INFO_FILE "run.json"
#define RUN_LOG_FILE "functest.log"
#define RUN_ARTIFACTS_DIR "artifacts"
#define RUN_COLLECTED_DIR "collected"

enum e2e_outcome {
        E2E_PASSED,
        E2E_FAILED,      /* at least one spec failed or errored */
        E2E_ERROR,       /* no usable results, bad JUnit, make failed, nothing ran */
        E2E_INTERRUPTED, /* stopped by a signal: results are partial */
        E2E_RUNNING,     /* run.json of a run that never finished (crash) */
        _E2E_OUTCOME_MAX,
};

const char *e2e_outcome_name(enum e2e_outcome o);
int e2e_outcome_from_name(const char *s);

/* The outcome of a finished run. junit_found: some JUnit file parsed;
 * n_errors: bad JUnit files. */
enum e2e_outcome e2e_outcome_compute(int make_exit, bool interrupted, bool junit_found,
                                     const struct junit_result *r, size_t n_errors);

struct e2e_cell {
        char *dir;      /* run directory as given */
        char *name;     /* cell name (config name when run alone) */
        char *provider; /* local, kcli, kubevirtci, kind */
        char *cluster;
        char *focus, *skip;
        char *started;         /* ISO 8601 UTC */
        char *kubevirt_ref;    /* "main", "vgpu-display-switch" (e2e/checkout.h) */
        char *kubevirt_commit; /* or NULL */
        char *vgpu_display;    /* the fake vGPU's display: dmabuf, region, none */
        bool display;          /* the vGPU display as the suite ran it */
        struct e2e_expect expect;
        bool as_expected;
        char *why;     /* when not as expected: why not */
        bool finished; /* run.json was completed */
        bool interrupted;
        int make_exit;
        double duration;
        enum e2e_outcome outcome;
        bool junit_found;
        struct junit_result res;
        char **errors; /* what is wrong with the results */
};

void e2e_cell_done(struct e2e_cell *c);

/* Load one run directory. -ENOENT (with *ret_err) when it has no run.json,
 * -EINVAL for a run.json that is not ours. JUnit problems do not fail the
 * load; they land in c->errors and the outcome. */
int e2e_cell_load(const char *dir, struct e2e_cell *c, char **ret_err);

/* Expand arguments: a run directory, or a directory whose subdirectories
 * are run directories (a matrix run). Logs and fails on the first argument
 * that is neither. */
int e2e_cells_load(char *const *dirs, struct e2e_cell **ret, size_t *ret_n);
void e2e_cells_free(struct e2e_cell *cells, size_t n);

enum report_format { REPORT_MARKDOWN, REPORT_JSON, REPORT_JUNIT, REPORT_HTML };
int report_format_from_name(const char *s);

/* Write the report to out_path (atomically), or stdout when NULL. Links to
 * artifacts are relative to the directory of out_path (or the current
 * directory). */
int report_write(enum report_format f, const struct e2e_cell *cells, size_t n,
                 const char *out_path);

/* Internal to the report writers. */
char *report_relpath(const char *target, const char *from_dir);
/* "expected failure" / "unexpected" words for a cell, and its CSS class:
 * failed as expected is "xfail", not "failed". */
const char *report_cell_class(const struct e2e_cell *c);
/* "failed as expected (opengl not available)", "passed", "failed (expected
 * passed)": the cell's verdict for people. Caller frees. */
char *report_cell_verdict(const struct e2e_cell *c);
int report_html(FILE *f, const struct e2e_cell *cells, size_t n, const char *base_dir);
