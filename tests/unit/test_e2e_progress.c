/* Unit tests of the e2e helpers that need no cluster: ginkgo progress
 * parsing (e2e/progress.c), the outcome of a run and relative links
 * (e2e/report.c), and the environment given to make functest
 * (e2e/functest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/functest.h"
#include "e2e/progress.h"
#include "e2e/report.h"
#include "tests/unit/fixture_tests.h"

/* The progress of a run that printed lines, from the start. */
static struct ginkgo_progress fed(const char *const *lines)
{
        struct ginkgo_progress p = {0};

        for (size_t i = 0; lines[i]; i++)
                ginkgo_progress_feed(&p, lines[i]);
        return p;
}

/* The progress line it shows after elapsed seconds. */
static void line_is(const struct ginkgo_progress *p, double elapsed, const char *want)
{
        char buf[128];

        ginkgo_progress_format(p, elapsed, buf, sizeof(buf));
        assert_string_equal(buf, want);
}

/* Succinct output of a KubeVirt run as ginkgo v2 prints it. */
static void test_progress_succinct(void **state)
{
        static const char *const lines[] = {
            "Running Suite: Tests Suite - /go/src/kubevirt.io/kubevirt/tests",
            "================================================================",
            "Random Seed: 1763632931",
            "",
            "Will run 5 of 1612 specs",
            "\xe2\x80\xa2\xe2\x80\xa2",
            "------------------------------",
            "\xe2\x80\xa2 [FAILED] [371.992 seconds]",
            "[sig-compute]MediatedDevices with mediated devices configuration [It] Should "
            "successfully passthrough a mediated device",
            "  [FAILED] Timed out after 360.001s.",
            NULL,
        };
        struct ginkgo_progress p = fed(lines);
        (void)state;

        assert_int_equal(p.total, 5);
        assert_int_equal(p.done, 3);
        /* "[FAILED]" on a line without a bullet (the detail) is not a spec. */
        assert_int_equal(p.failed, 1);
        assert_false(p.finished);
        line_is(&p, 83, "3/5 specs, 1 failed, 01:23 elapsed");

        ginkgo_progress_feed(&p, "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2");
        assert_int_equal(p.done, 5); /* capped at the total */
        ginkgo_progress_feed(&p, "Ran 5 of 1612 Specs in 1587.103 seconds");
        assert_true(p.finished);
        assert_int_equal(p.done, 5);
}

/* KubeVirt's parallel mode: a parallel pass, then a [Serial] pass; verbose
 * output without bullets still ends at the right count. */
static void test_progress_two_passes(void **state)
{
        static const char *const lines[] = {
            "Will run 3 of 1612 specs",
            "Running in parallel across 3 processes",
            "\xe2\x80\xa2",
            "Ran 3 of 1612 Specs in 400.1 seconds",
            "Will run 2 of 1612 specs",
            "Ran 2 of 1612 Specs in 300.2 seconds",
            NULL,
        };
        const struct ginkgo_progress p = fed(lines), none = {0};
        (void)state;

        assert_int_equal(p.passes, 2);
        assert_int_equal(p.total, 5);
        assert_int_equal(p.done, 5);
        line_is(&p, 3725, "5/5 specs, 0 failed, 1:02:05 elapsed");
        line_is(&none, 5, "waiting for specs, 00:05 elapsed");
}

static void test_outcome(void **state)
{
        struct junit_result r = {0};
        (void)state;

        r.counts[JUNIT_PASSED] = 5;
        assert_int_equal(e2e_outcome_compute(0, false, true, &r, 0), E2E_PASSED);
        /* Tests passed but make failed (e.g. cleanup broke): not a pass. */
        assert_int_equal(e2e_outcome_compute(2, false, true, &r, 0), E2E_ERROR);
        /* A bad partial file next to good ones. */
        assert_int_equal(e2e_outcome_compute(0, false, true, &r, 1), E2E_ERROR);
        assert_int_equal(e2e_outcome_compute(130, true, true, &r, 0), E2E_INTERRUPTED);
        assert_int_equal(e2e_outcome_compute(0, false, false, &r, 1), E2E_ERROR);
        r.counts[JUNIT_FAILED] = 1;
        assert_int_equal(e2e_outcome_compute(1, false, true, &r, 0), E2E_FAILED);
        r = (struct junit_result){0};
        r.counts[JUNIT_SKIPPED] = 1600;
        /* Focus matched nothing: skipped only is no pass. */
        assert_int_equal(e2e_outcome_compute(0, false, true, &r, 0), E2E_ERROR);
        assert_string_equal(e2e_outcome_name(E2E_INTERRUPTED), "interrupted");
        assert_int_equal(e2e_outcome_from_name("failed"), E2E_FAILED);
        assert_true(e2e_outcome_from_name("nope") < 0);
}

static void test_relpath(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-relpath-XXXXXX");
        _cleanup_free_ char *a = NULL, *b = NULL, *rel = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        a = strdup_printf("%s/matrix/kind/artifacts", dir);
        b = strdup_printf("%s/reports/html", dir);
        assert_int_equal(mkdir_p(a, 0755), 0);
        assert_int_equal(mkdir_p(b, 0755), 0);
        rel = report_relpath(a, b);
        assert_string_equal(rel, "../../matrix/kind/artifacts");
        free(rel);
        rel = strdup_printf("%s/matrix", dir);
        free(b);
        b = report_relpath(a, rel);
        assert_string_equal(b, "kind/artifacts");
        free(b);
        b = report_relpath(rel, rel);
        assert_string_equal(b, ".");
        free(b);
        /* No links to what does not exist. */
        free(rel);
        rel = strdup_printf("%s/matrix/kind/collected", dir);
        b = report_relpath(rel, dir);
        assert_null(b);
        rm_rf(dir);
}

static void test_env(void **state)
{
        char *set[] = {"KUBEVIRT_E2E_FOCUS=MediatedDevices", "PATH=/x", NULL};
        char *unset[] = {"VGPU_DISPLAY", NULL};
        _cleanup_strv_free_ char **env = NULL;
        bool focus = false, path = false;
        (void)state;

        setenv("VGPU_DISPLAY", "true", 1);
        setenv("KUBEVIRT_E2E_FOCUS", "Other", 1);
        setenv("VGPU_DISPLAY_NOT", "kept", 1);
        env = functest_build_env(set, unset);
        assert_non_null(env);
        for (size_t i = 0; env[i]; i++) {
                assert_false(startswith(env[i], "VGPU_DISPLAY="));
                assert_string_not_equal(env[i], "KUBEVIRT_E2E_FOCUS=Other");
                if (streq(env[i], "KUBEVIRT_E2E_FOCUS=MediatedDevices"))
                        focus = true;
                if (streq(env[i], "PATH=/x"))
                        path = true;
        }
        assert_true(strv_contains(env, "VGPU_DISPLAY_NOT=kept"));
        assert_true(focus && path);
}

int main(void)
{
        return run_plain_tests(test_progress_succinct, test_progress_two_passes, test_outcome,
                               test_relpath, test_env);
}
