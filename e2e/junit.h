/* JUnit results of a KubeVirt functional test run: the model, the parser
 * (libxml2, never fetching anything) and the writer of one merged file.
 *
 * KubeVirt's suite uses ginkgo v2's JUnit reporter: <testsuites> holding one
 * <testsuite name="Tests Suite">, each spec a <testcase> whose status
 * attribute is passed, failed, skipped, pending, panicked, interrupted,
 * aborted or timedout, with <failure>/<error>/<skipped> children. A parallel
 * run (KUBEVIRT_E2E_PARALLEL=true) writes partial.*.xml files that
 * hack/functests.sh merges into junit.functest.xml on exit; a run killed
 * half-way leaves only the partial files, so we merge them ourselves.
 *
 * Parsing never logs: a bad file gives -EINVAL (or -ENOENT) and an error
 * string naming the file, the line and what is wrong; the caller decides
 * whether that ends the run or goes into a partial report. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum junit_status {
        JUNIT_PASSED,
        JUNIT_FAILED,  /* failed, timedout */
        JUNIT_SKIPPED, /* skipped, pending */
        JUNIT_ERROR,   /* panicked, interrupted, aborted */
        _JUNIT_STATUS_MAX,
};

struct junit_case {
        char *name;      /* "[It] [sig-compute]MediatedDevices ..." */
        char *classname; /* "Tests Suite" */
        char *status;    /* raw ginkgo state, e.g. "timedout" */
        enum junit_status outcome;
        double time;    /* seconds */
        char *message;  /* failure/error/skipped message attribute */
        char *detail;   /* failure/error text: location and stack */
        char *location; /* "file.go:123" taken from detail, or NULL */
        char *file;     /* JUnit file it came from */
        unsigned line;  /* line of the <testcase> element */
};

struct junit_result {
        struct junit_case *cases;
        size_t n_cases;
        unsigned counts[_JUNIT_STATUS_MAX];
        double time;  /* sum of suite times */
        char **files; /* files merged into this result */
};

const char *junit_status_name(enum junit_status s);

/* Parse one JUnit file and append its test cases to res. On error res is
 * unchanged and *ret_err holds "FILE: what is wrong" (with ":LINE" where
 * known). */
int junit_parse_file(const char *path, struct junit_result *res, char **ret_err);

/* The JUnit of a run in artifacts dir: junit.functest.xml when present,
 * otherwise every partial.*.xml (sorted). Files that fail to parse are
 * skipped and their errors appended to *errors; returns -ENOENT (with an
 * error naming what was looked for) when there is no JUnit at all, else 0
 * even if some files were bad (the caller sees errors). */
int junit_load_dir(const char *dir, struct junit_result *res, char ***errors);

void junit_result_done(struct junit_result *res);

/* Total number of test cases that ran or were skipped. */
static inline unsigned junit_total(const struct junit_result *r)
{
        return r->counts[JUNIT_PASSED] + r->counts[JUNIT_FAILED] + r->counts[JUNIT_SKIPPED] +
               r->counts[JUNIT_ERROR];
}

/* One named group of results, for writing a merged file. */
struct junit_suite_ref {
        const char *name;
        const struct junit_result *res;
};

/* Write a <testsuites> document with one <testsuite> per ref. Test cases
 * keep their name; classname becomes the suite name so CI viewers group by
 * matrix cell. */
int junit_write(const char *path, const struct junit_suite_ref *suites, size_t n);
