/* JUnit results of a KubeVirt functional test run: the model, the parser
 * (libxml2, never fetching anything) and the writer of one merged file.
 *
 * Two shapes are read:
 * - KubeVirt's own, written by tests/tests_suite_test.go through
 *   v1reporter.NewV1JUnitReporter (staging/src/kubevirt.io/client-go/
 *   reporter/reporter.go, kubevirt main d923fdb) into
 *   $ARTIFACTS/junit.functest.xml: a bare <testsuite> whose tests= counts
 *   the specs selected to run, errors="0" always, failures= the failed,
 *   panicked and interrupted specs; one <testcase> per spec *including the
 *   ones the focus filtered out*, which are <skipped> with time 0 (ginkgo
 *   never starts them, internal/group.go); <failure type="Failure|Panic|
 *   Interrupted"> whose text is "NODE-LOCATION\nMESSAGE\nFAILURE-LOCATION";
 *   "BeforeSuite"/"AfterSuite" cases only when those failed. Timed-out and
 *   aborted specs carry no element there (V1 knows no such states).
 * - ginkgo v2's --junit-report (reporters/junit_report.go): <testsuites>,
 *   a status attribute per case, suite nodes ("[SynchronizedBeforeSuite]")
 *   as cases, filtered specs as <skipped message="skipped"> with time 0.
 *
 * Specs that were never selected to run are counted apart (not selected),
 * never as run or as skipped by the test. Parsing never logs: a bad file
 * gives -EINVAL (or -ENOENT) and an error string naming the file, the line
 * and what is wrong; the caller decides what that does to the run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum junit_status {
        JUNIT_PASSED,
        JUNIT_FAILED,       /* failed, timedout (v2); Failure (V1) */
        JUNIT_SKIPPED,      /* selected, but Skip()ped, pending or never run */
        JUNIT_ERROR,        /* panicked, interrupted, aborted; V1 Panic, Interrupted */
        JUNIT_NOT_SELECTED, /* filtered out by the focus, skip or label filter */
        _JUNIT_STATUS_MAX,
};

enum junit_shape { JUNIT_SHAPE_GINKGO_V2, JUNIT_SHAPE_KUBEVIRT_V1 };

struct junit_case {
        char *name;      /* "[sig-compute]MediatedDevices ..." */
        char *classname; /* "KubeVirt Tests Suite" */
        char *status;    /* ginkgo's state ("timedout"), or ours for V1 */
        enum junit_status outcome;
        bool setup;     /* a suite node (BeforeSuite ...), not a spec */
        double time;    /* seconds */
        char *message;  /* what failed, or the skip reason */
        char *detail;   /* failure/error text: locations and stack */
        char *output;   /* <system-out>: captured output, warning events */
        char *location; /* "file.go:123" where it failed, or NULL */
        char *file;     /* JUnit file it came from */
        unsigned line;  /* line of the <testcase> element */
};

struct junit_result {
        struct junit_case *cases;
        size_t n_cases;
        unsigned counts[_JUNIT_STATUS_MAX];
        /* V1: selected to run but never started (a Ctrl-C stops the run;
         * ginkgo skips the rest), included in counts[JUNIT_SKIPPED]. The
         * file does not say which of the time-0 cases they are: those cases
         * all read "not selected". */
        unsigned never_ran;
        double time;  /* sum of suite times */
        char **files; /* files merged into this result */
        int shape;    /* enum junit_shape of the last file */
};

const char *junit_status_name(enum junit_status s);

/* Parse one JUnit file and append its test cases to res. On error res is
 * unchanged and *ret_err holds "FILE: what is wrong" (with ":LINE" where
 * known). */
int junit_parse_file(const char *path, struct junit_result *res, char **ret_err);

#define JUNIT_FUNCTEST_FILE "junit.functest.xml"

/* The JUnit of a run in artifacts dir: JUNIT_FUNCTEST_FILE. A file that
 * fails to parse, or none at all, adds an error to *errors and returns
 * -EINVAL or -ENOENT; -ENOMEM is the only other failure. */
int junit_load_dir(const char *dir, struct junit_result *res, char ***errors);

void junit_result_done(struct junit_result *res);

/* Specs that ran or were selected: everything but the not-selected ones. */
static inline unsigned junit_total(const struct junit_result *r)
{
        return r->counts[JUNIT_PASSED] + r->counts[JUNIT_FAILED] + r->counts[JUNIT_SKIPPED] +
               r->counts[JUNIT_ERROR];
}

/* One named group of results, for writing a merged file. */
struct junit_suite_ref {
        const char *name;
        const struct junit_result *res;
        char *const *properties; /* "name=value" entries, or NULL */
};

/* Write a <testsuites> document with one <testsuite> per ref. Test cases
 * keep their name; classname becomes the suite name so CI viewers group by
 * matrix cell. Not-selected specs are left out (their count is a property
 * of the suite). */
int junit_write(const char *path, const struct junit_suite_ref *suites, size_t n);
