/* Unit tests of e2e/junit*.c: KubeVirt's V1 junit.functest.xml and ginkgo
 * v2's --junit-report parse to the right counts, with the specs the focus
 * filtered out counted apart (not selected) and never as run or skipped;
 * every malformed sample gives its own clear error naming the file (and
 * line); a merged file written by junit_write() parses back to the same
 * results. Runs from the repository root (make test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/junit.h"

#define FIX "tests/fixtures/junit/"
#define MDEV "/go/src/kubevirt.io/kubevirt/tests/mdev_configuration_allocation_test.go"

static const struct junit_case *find(const struct junit_result *r, const char *needle)
{
        for (size_t i = 0; i < r->n_cases; i++)
                if (strstr(r->cases[i].name, needle))
                        return &r->cases[i];
        return NULL;
}

static void counts_are(const struct junit_result *r, unsigned passed, unsigned failed,
                       unsigned skipped, unsigned error, unsigned not_selected)
{
        assert_int_equal(r->counts[JUNIT_PASSED], passed);
        assert_int_equal(r->counts[JUNIT_FAILED], failed);
        assert_int_equal(r->counts[JUNIT_SKIPPED], skipped);
        assert_int_equal(r->counts[JUNIT_ERROR], error);
        assert_int_equal(r->counts[JUNIT_NOT_SELECTED], not_selected);
}

/* The fixture of the tests that read one file: *state is the file (the
 * prestate), parsed without an error, freed after the test. */
static int parse_fixture(void **state)
{
        struct junit_result *r = calloc(1, sizeof(*r));
        char *err = NULL;

        assert_non_null(r);
        assert_int_equal(junit_parse_file(*state, r, &err), 0);
        assert_null(err);
        *state = r;
        return 0;
}

static int free_fixture(void **state)
{
        junit_result_done(*state);
        free(*state);
        return 0;
}
#define PARSED(test, file)                                                                         \
        cmocka_unit_test_prestate_setup_teardown(test, parse_fixture, free_fixture,                \
                                                 (void *)(FIX file))

/* The case of issue 12: 3 passed, 1 failed, 36 filtered out. Reading it must
 * give exactly that (before, "tests=4 but contains 40" made it an error). */
static void test_v1_onefail(void **state)
{
        const struct junit_result *r = *state;

        assert_int_equal(r->shape, JUNIT_SHAPE_KUBEVIRT_V1);
        assert_int_equal(r->n_cases, 40);
        counts_are(r, 3, 1, 0, 0, 36);
        assert_int_equal(junit_total(r), 4);
        assert_int_equal(r->never_ran, 0);
        assert_true(r->time > 1042.41 && r->time < 1042.42);
        const struct junit_case *c = find(r, "Should successfully passthrough a mediated device");
        assert_non_null(c);
        assert_string_equal(c->classname, "KubeVirt Tests Suite");
        assert_string_equal(c->status, "failed");
        /* "NODE-LOCATION\nMESSAGE\nFAILURE-LOCATION": the message alone, the
         * location where it failed. */
        assert_true(startswith(c->message, "Timed out after 360.001s.\nTimed out waiting for VMI"));
        assert_null(strstr(c->message, MDEV));
        assert_string_equal(c->location, "/go/src/kubevirt.io/kubevirt/tests/libwait/wait.go:177");
        assert_true(startswith(c->detail, MDEV ":269\n"));
        c = find(r, "should create mdevs on devices that appear after CR configuration");
        assert_int_equal(c->outcome, JUNIT_NOT_SELECTED);
        assert_string_equal(c->status, "not selected");
        assert_int_equal(find(r, "should attach virt-launcher to it")->outcome, JUNIT_NOT_SELECTED);
}

static void test_v1_opengl(void **state)
{
        const struct junit_result *r = *state;

        counts_are(r, 3, 2, 0, 0, 35);
        const struct junit_case *c = find(r, "Should override default mdev configuration");
        assert_int_equal(c->outcome, JUNIT_FAILED);
        assert_non_null(strstr(c->message, "vfio-display-dmabuf: opengl not available"));
        /* The warning events the reporter adds: the cause is also there. */
        assert_non_null(strstr(c->output, "\"reason\": \"SyncFailed\""));
        assert_non_null(strstr(c->output, "opengl not available"));
        assert_string_equal(c->location,
                            "/go/src/kubevirt.io/kubevirt/tests/watcher/watcher.go:148");
}

static void test_v1_mixed(void **state)
{
        const struct junit_result *r = *state;

        /* A Skip() ran (time > 0): skipped by the test, not "not selected". */
        counts_are(r, 2, 1, 1, 1, 35);
        const struct junit_case *c = find(r, "ExternalResourceProvider");
        assert_int_equal(c->outcome, JUNIT_SKIPPED);
        assert_string_equal(c->status, "skipped");
        c = find(r, "on a specific node");
        assert_int_equal(c->outcome, JUNIT_ERROR);
        assert_string_equal(c->status, "panicked");
        assert_string_equal(c->message, "runtime error: index out of range [0] with length 0");
        assert_string_equal(c->location, "/usr/local/go/src/runtime/panic.go:114");
        assert_non_null(strstr(c->detail, "\n\nPanic: "));
}

/* Ctrl-C in the third spec: tests=5 selected, 3 ran; the two that never
 * started are skipped, not "not selected". */
static void test_v1_interrupted(void **state)
{
        const struct junit_result *r = *state;

        counts_are(r, 2, 0, 2, 1, 35);
        assert_int_equal(r->never_ran, 2);
        const struct junit_case *c = find(r, "passthrough a mediated device");
        assert_string_equal(c->status, "interrupted");
        assert_string_equal(c->message, "Interrupted by User");
}

/* Leftover namespaces: BeforeSuite fails, nothing runs. */
static void test_v1_beforesuite(void **state)
{
        const struct junit_result *r = *state;

        counts_are(r, 0, 1, 5, 0, 35);
        const struct junit_case *c = find(r, "BeforeSuite");
        assert_true(c->setup);
        assert_int_equal(c->outcome, JUNIT_FAILED);
        assert_non_null(strstr(c->message, "namespaces \"kubevirt-test-default1\" already exists"));
}

static void test_v1_passed(void **state)
{
        const struct junit_result *r = *state;

        counts_are(r, 5, 0, 0, 0, 35);
        assert_null(find(r, "Should successfully passthrough a mediated device")->message);
        /* The line of the <testcase>, for messages about it. */
        assert_int_equal(find(r, "Should successfully passthrough a mediated device")->line, 5);
}

static void test_v2(void **state)
{
        const struct junit_result *r = *state;

        assert_int_equal(r->shape, JUNIT_SHAPE_GINKGO_V2);
        /* Suite nodes that passed are not results; two filtered specs. */
        assert_int_equal(r->n_cases, 7);
        counts_are(r, 0, 3, 1, 1, 2);
        assert_null(find(r, "[SynchronizedBeforeSuite]"));
        const struct junit_case *c = find(r, "Should successfully passthrough a mediated device [");
        assert_int_equal(c->outcome, JUNIT_FAILED);
        assert_non_null(strstr(c->message, "vfio-display-dmabuf: opengl not available"));
        assert_string_equal(c->location, MDEV ":285");
        c = find(r, "on a specific node");
        assert_string_equal(c->status, "timedout");
        assert_int_equal(c->outcome, JUNIT_FAILED);
        c = find(r, "feature is gated");
        assert_int_equal(c->outcome, JUNIT_SKIPPED);
        assert_string_equal(
            c->message, "skipped - Skipping test: the fake vGPU driver is not loaded on any node");
        assert_int_equal(find(r, "should attach virt-launcher")->outcome, JUNIT_NOT_SELECTED);
}

/* No status attribute and no V1 failure text (other JUnit producers). */
static void test_plain_junit(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *path = NULL;
        struct junit_result r = {0};
        char *err = NULL;
        static const char doc[] =
            "<testsuite name=\"x\" tests=\"3\"><testcase name=\"a\" time=\"1\"/>"
            "<testcase name=\"b\" time=\"1\"><failure message=\"boom\">x_test.go:12</failure>"
            "</testcase><testcase name=\"c\" time=\"0.5\"><skipped/></testcase></testsuite>";
        (void)state;

        assert_non_null(mkdtemp(dir));
        path = strdup_printf("%s/j.xml", dir);
        assert_int_equal(write_file_atomic(path, doc, strlen(doc), 0644), 0);
        assert_int_equal(junit_parse_file(path, &r, &err), 0);
        counts_are(&r, 1, 1, 1, 0, 0);
        assert_string_equal(find(&r, "b")->status, "failed");
        assert_string_equal(find(&r, "b")->message, "boom");
        assert_string_equal(find(&r, "b")->location, "x_test.go:12");
        junit_result_done(&r);
        rm_rf(dir);
}

struct bad_case {
        const char *file;
        int errno_want;
        const char *want[3]; /* substrings of the message */
};

static void test_bad_inputs(void **state)
{
        static const struct bad_case cases[] = {
            {FIX "bad/truncated.xml",
             -EINVAL,
             {FIX "bad/truncated.xml:9: not well-formed XML", "Premature end of data"}},
            {FIX "bad/empty.xml", -EINVAL, {FIX "bad/empty.xml: empty file"}},
            {FIX "bad/wrong-root.xml",
             -EINVAL,
             {FIX "bad/wrong-root.xml:2: root element is <html>",
              "expected <testsuites> or <testsuite>"}},
            {FIX "bad/no-name.xml",
             -EINVAL,
             {FIX "bad/no-name.xml:5: <testcase> without a name attribute"}},
            {FIX "bad/bad-time.xml",
             -EINVAL,
             {FIX "bad/bad-time.xml:4: testcase", "bad time attribute \"4m12s\""}},
            {FIX "bad/bad-status.xml",
             -EINVAL,
             {FIX "bad/bad-status.xml:4:", "unknown status \"exploded\""}},
            {FIX "bad/count-mismatch.xml",
             -EINVAL,
             {FIX "bad/count-mismatch.xml:3:", "declares tests=5 but contains 3"}},
            {FIX "bad/v1-tests-mismatch.xml",
             -EINVAL,
             {FIX "bad/v1-tests-mismatch.xml:2:",
              "declares tests=9 specs selected to run, but 2 ran and 1 never started"}},
            {FIX "bad/v1-failures-mismatch.xml",
             -EINVAL,
             {FIX "bad/v1-failures-mismatch.xml:2:", "declares failures=2 but 1 specs failed"}},
            {FIX "bad/does-not-exist.xml",
             -ENOENT,
             {FIX "bad/does-not-exist.xml: cannot read JUnit file", "No such file or directory"}},
        };
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct junit_result r = {0};
                char *err = NULL;
                int ret = junit_parse_file(cases[i].file, &r, &err);

                print_message("%s -> %d %s\n", cases[i].file, ret, err ? err : "(null)");
                assert_int_equal(ret, cases[i].errno_want);
                assert_non_null(err);
                for (size_t k = 0; k < 3 && cases[i].want[k]; k++)
                        assert_non_null(strstr(err, cases[i].want[k]));
                /* Nothing half-parsed is left behind. */
                assert_int_equal(r.n_cases, 0);
                assert_null(r.files);
                free(err);
        }
}

/* An external DTD is never fetched (XML_PARSE_NONET, no DTD loading): the
 * document still parses, and no connection is attempted. */
static void test_no_network(void **state)
{
        const struct junit_result *r = *state;

        assert_int_equal(r->counts[JUNIT_PASSED], 1);
}

static void test_load_dir(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *a = NULL;
        struct junit_result r = {0};
        _cleanup_strv_free_ char **errors = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        /* None: the suite was killed before it wrote one. */
        assert_int_equal(junit_load_dir(dir, &r, &errors), -ENOENT);
        assert_int_equal(strv_length(errors), 1);
        assert_non_null(strstr(errors[0], "no JUnit results: junit.functest.xml does not exist"));
        strv_free(TAKE_PTR(errors));
        a = strdup_printf("%s/junit.functest.xml", dir);
        assert_int_equal(copy_file(FIX "bad/truncated.xml", a, 0644), 0);
        assert_int_equal(junit_load_dir(dir, &r, &errors), -EINVAL);
        assert_non_null(strstr(errors[0], "junit.functest.xml:9: not well-formed XML"));
        strv_free(TAKE_PTR(errors));
        assert_int_equal(copy_file(FIX "kubevirt-v1-onefail.xml", a, 0644), 0);
        assert_int_equal(junit_load_dir(dir, &r, &errors), 0);
        assert_null(errors);
        assert_int_equal(junit_total(&r), 4);
        junit_result_done(&r);
        rm_rf(dir);
}

static void test_write_roundtrip(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *out = NULL, *text = NULL;
        struct junit_result a = {0}, b = {0}, back = {0};
        char *err = NULL;
        char *props[] = {"vgpu_display=dmabuf", "expected=failed: opengl not available", NULL};
        (void)state;

        assert_non_null(mkdtemp(dir));
        out = strdup_printf("%s/merged.xml", dir);
        assert_int_equal(junit_parse_file(FIX "kubevirt-v1-passed.xml", &a, &err), 0);
        assert_int_equal(junit_parse_file(FIX "kubevirt-v1-opengl.xml", &b, &err), 0);
        struct junit_suite_ref refs[] = {{"local-dmabuf", &a, NULL}, {"kind-dmabuf", &b, props}};
        assert_int_equal(junit_write(out, refs, 2), 0);
        assert_int_equal(junit_parse_file(out, &back, &err), 0);
        /* Not-selected specs are left out of the merged file. */
        assert_int_equal(back.n_cases, 10);
        counts_are(&back, 8, 2, 0, 0, 0);
        assert_int_equal(read_full_file(out, &text, NULL), 0);
        assert_non_null(strstr(text, "<property name=\"expected\" value=\"failed: opengl not "
                                     "available\"/>"));
        /* Messages with quotes, <, > and newlines survive the round trip. */
        const struct junit_case *c = NULL;
        for (size_t i = 0; i < back.n_cases; i++)
                if (streq(back.cases[i].classname, "kind-dmabuf") &&
                    strstr(back.cases[i].name, "passthrough a mediated device"))
                        c = &back.cases[i];
        assert_non_null(c);
        assert_string_equal(c->message, find(&b, "passthrough a mediated device")->message);
        junit_result_done(&a);
        junit_result_done(&b);
        junit_result_done(&back);
        rm_rf(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            PARSED(test_v1_onefail, "kubevirt-v1-onefail.xml"),
            PARSED(test_v1_opengl, "kubevirt-v1-opengl.xml"),
            PARSED(test_v1_mixed, "kubevirt-v1-mixed.xml"),
            PARSED(test_v1_interrupted, "kubevirt-v1-interrupted.xml"),
            PARSED(test_v1_beforesuite, "kubevirt-v1-beforesuite.xml"),
            PARSED(test_v1_passed, "kubevirt-v1-passed.xml"),
            PARSED(test_v2, "ginkgo-v2-failed.xml"),
            cmocka_unit_test(test_plain_junit),
            cmocka_unit_test(test_bad_inputs),
            PARSED(test_no_network, "bad/external-entity.xml"),
            cmocka_unit_test(test_load_dir),
            cmocka_unit_test(test_write_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
