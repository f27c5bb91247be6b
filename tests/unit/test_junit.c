/* Unit tests of e2e/junit.c: the KubeVirt/ginkgo JUnit samples parse to the
 * right counts, every malformed sample gives its own clear error naming the
 * file (and line), partial files of a parallel run merge, and a merged file
 * written by junit_write() parses back to the same results. Runs from the
 * repository root (make test). */
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

static const struct junit_case *find(const struct junit_result *r, const char *needle)
{
        for (size_t i = 0; i < r->n_cases; i++)
                if (strstr(r->cases[i].name, needle))
                        return &r->cases[i];
        return NULL;
}

static void test_passed(void **state)
{
        struct junit_result r = {0};
        char *err = NULL;
        (void)state;

        assert_int_equal(junit_parse_file(FIX "ginkgo-passed.xml", &r, &err), 0);
        assert_null(err);
        assert_int_equal(r.n_cases, 9);
        assert_int_equal(r.counts[JUNIT_PASSED], 7);
        assert_int_equal(r.counts[JUNIT_SKIPPED], 2);
        assert_int_equal(r.counts[JUNIT_FAILED], 0);
        assert_int_equal(r.counts[JUNIT_ERROR], 0);
        assert_true(r.time > 1042.41 && r.time < 1042.42);
        const struct junit_case *c =
            find(&r, "Should successfully passthrough a mediated device [");
        assert_non_null(c);
        assert_string_equal(c->classname, "Tests Suite");
        assert_string_equal(c->status, "passed");
        assert_true(c->time > 251.0 && c->time < 251.1);
        assert_null(c->message);
        /* The line of the <testcase>, for messages about it. */
        assert_int_equal(c->line, 30);
        junit_result_done(&r);
}

static void test_failed(void **state)
{
        struct junit_result r = {0};
        char *err = NULL;
        (void)state;

        assert_int_equal(junit_parse_file(FIX "ginkgo-failed.xml", &r, &err), 0);
        assert_int_equal(r.counts[JUNIT_PASSED], 3);
        assert_int_equal(r.counts[JUNIT_FAILED], 3);  /* 2 failed + 1 timedout */
        assert_int_equal(r.counts[JUNIT_ERROR], 1);   /* panicked */
        assert_int_equal(r.counts[JUNIT_SKIPPED], 2); /* skipped + pending */
        assert_int_equal(junit_total(&r), 9);

        const struct junit_case *c =
            find(&r, "Should successfully passthrough a mediated device [");
        assert_non_null(c);
        assert_int_equal(c->outcome, JUNIT_FAILED);
        assert_non_null(strstr(c->message, "vfio-display-dmabuf: opengl not available"));
        assert_non_null(strstr(c->message, "Timed out after 360.001s."));
        assert_string_equal(
            c->location,
            "/go/src/kubevirt.io/kubevirt/tests/mdev_configuration_allocation_test.go:236");

        c = find(&r, "on a specific node");
        assert_string_equal(c->status, "timedout");
        assert_int_equal(c->outcome, JUNIT_FAILED);
        assert_string_equal(c->message, "A node timeout occurred");
        assert_string_equal(
            c->location,
            "/go/src/kubevirt.io/kubevirt/tests/mdev_configuration_allocation_test.go:261");

        c = find(&r, "non nvidia parent device [");
        assert_string_equal(c->status, "panicked");
        assert_int_equal(c->outcome, JUNIT_ERROR);
        assert_string_equal(c->message, "runtime error: index out of range [0] with length 0");
        /* The first .go:LINE of the text: where ginkgo says it happened. */
        assert_string_equal(c->location, "/usr/local/go/src/runtime/panic.go:114");

        c = find(&r, "feature is gated");
        assert_int_equal(c->outcome, JUNIT_SKIPPED);
        assert_string_equal(
            c->message, "skipped - Skipping test: the fake vGPU driver is not loaded on any node");
        c = find(&r, "via CR");
        assert_string_equal(c->status, "pending");
        assert_int_equal(c->outcome, JUNIT_SKIPPED);
        junit_result_done(&r);
}

static void test_interrupted(void **state)
{
        struct junit_result r = {0};
        char *err = NULL;
        (void)state;

        assert_int_equal(junit_parse_file(FIX "ginkgo-interrupted.xml", &r, &err), 0);
        assert_int_equal(r.counts[JUNIT_PASSED], 2);
        assert_int_equal(r.counts[JUNIT_ERROR], 1);
        const struct junit_case *c = find(&r, "passthrough a mediated device [");
        assert_string_equal(c->status, "interrupted");
        assert_string_equal(c->message, "interrupted");
        junit_result_done(&r);
}

/* No status attribute (other JUnit producers): children decide. */
static void test_plain_junit(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *path = NULL;
        struct junit_result r = {0};
        char *err = NULL;
        static const char doc[] =
            "<testsuite name=\"x\" tests=\"3\"><testcase name=\"a\" time=\"1\"/>"
            "<testcase name=\"b\"><failure message=\"boom\">x_test.go:12</failure></testcase>"
            "<testcase name=\"c\"><skipped/></testcase></testsuite>";
        (void)state;

        assert_non_null(mkdtemp(dir));
        path = strdup_printf("%s/j.xml", dir);
        assert_int_equal(write_file_atomic(path, doc, strlen(doc), 0644), 0);
        assert_int_equal(junit_parse_file(path, &r, &err), 0);
        assert_int_equal(r.counts[JUNIT_PASSED], 1);
        assert_int_equal(r.counts[JUNIT_FAILED], 1);
        assert_int_equal(r.counts[JUNIT_SKIPPED], 1);
        assert_string_equal(find(&r, "b")->status, "failed");
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
        struct junit_result r = {0};
        char *err = NULL;
        (void)state;

        assert_int_equal(junit_parse_file(FIX "bad/external-entity.xml", &r, &err), 0);
        assert_int_equal(r.counts[JUNIT_PASSED], 1);
        junit_result_done(&r);
}

static void test_load_dir_partials(void **state)
{
        struct junit_result r = {0};
        _cleanup_strv_free_ char **errors = NULL;
        (void)state;

        assert_int_equal(junit_load_dir(FIX "parallel", &r, &errors), 0);
        assert_null(errors);
        assert_int_equal(strv_length(r.files), 2);
        assert_non_null(strstr(r.files[0], "partial.junit.functest.1.xml"));
        assert_non_null(strstr(r.files[1], "partial.junit.functest.2.xml"));
        assert_int_equal(r.counts[JUNIT_PASSED], 4);
        assert_int_equal(r.counts[JUNIT_FAILED], 1);
        assert_string_equal(find(&r, "on a specific node")->location,
                            "/go/src/kubevirt.io/kubevirt/tests/libnode/node.go:412");
        assert_true(r.time > 732.6 && r.time < 732.8);
        junit_result_done(&r);
}

/* A killed parallel run: one good partial, one truncated. The good one
 * counts, the bad one is named in the errors. */
static void test_load_dir_mixed(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct junit_result r = {0};
        _cleanup_strv_free_ char **errors = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        a = strdup_printf("%s/partial.junit.functest.1.xml", dir);
        b = strdup_printf("%s/partial.junit.functest.2.xml", dir);
        assert_int_equal(copy_file(FIX "parallel/partial.junit.functest.1.xml", a, 0644), 0);
        assert_int_equal(copy_file(FIX "bad/truncated.xml", b, 0644), 0);
        assert_int_equal(junit_load_dir(dir, &r, &errors), 0);
        assert_int_equal(r.counts[JUNIT_PASSED], 3);
        assert_int_equal(strv_length(errors), 1);
        assert_non_null(strstr(errors[0], "partial.junit.functest.2.xml:9: not well-formed XML"));
        junit_result_done(&r);
        rm_rf(dir);
}

static void test_load_dir_missing(void **state)
{
        struct junit_result r = {0};
        _cleanup_strv_free_ char **errors = NULL;
        (void)state;

        assert_int_equal(junit_load_dir(FIX "bad", &r, &errors), -ENOENT);
        assert_int_equal(strv_length(errors), 1);
        assert_non_null(strstr(errors[0], FIX "bad: no JUnit results: neither "
                                              "junit.functest.xml nor partial.*.xml exists"));
}

/* junit.functest.xml wins over partial files (functests.sh merged them). */
static void test_load_dir_prefers_merged(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct junit_result r = {0};
        _cleanup_strv_free_ char **errors = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        a = strdup_printf("%s/junit.functest.xml", dir);
        b = strdup_printf("%s/partial.junit.functest.1.xml", dir);
        assert_int_equal(copy_file(FIX "ginkgo-passed.xml", a, 0644), 0);
        assert_int_equal(copy_file(FIX "parallel/partial.junit.functest.1.xml", b, 0644), 0);
        assert_int_equal(junit_load_dir(dir, &r, &errors), 0);
        assert_int_equal(strv_length(r.files), 1);
        assert_int_equal(junit_total(&r), 9);
        junit_result_done(&r);
        rm_rf(dir);
}

static void test_write_roundtrip(void **state)
{
        _cleanup_free_ char *dir = strdup("/tmp/test-junit-XXXXXX");
        _cleanup_free_ char *out = NULL;
        struct junit_result a = {0}, b = {0}, back = {0};
        char *err = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        out = strdup_printf("%s/merged.xml", dir);
        assert_int_equal(junit_parse_file(FIX "ginkgo-passed.xml", &a, &err), 0);
        assert_int_equal(junit_parse_file(FIX "ginkgo-failed.xml", &b, &err), 0);
        struct junit_suite_ref refs[] = {{"kcli-display-on", &a}, {"kind-display-on", &b}};
        assert_int_equal(junit_write(out, refs, 2), 0);
        assert_int_equal(junit_parse_file(out, &back, &err), 0);
        assert_int_equal(junit_total(&back), 18);
        assert_int_equal(back.counts[JUNIT_PASSED], 10);
        assert_int_equal(back.counts[JUNIT_FAILED], 3);
        assert_int_equal(back.counts[JUNIT_ERROR], 1);
        assert_int_equal(back.counts[JUNIT_SKIPPED], 4);
        /* Messages with quotes, <, > and newlines survive the round trip. */
        const struct junit_case *c = NULL;
        for (size_t i = 0; i < back.n_cases; i++)
                if (streq(back.cases[i].classname, "kind-display-on") &&
                    strstr(back.cases[i].name, "passthrough a mediated device ["))
                        c = &back.cases[i];
        assert_non_null(c);
        assert_string_equal(c->message, find(&b, "passthrough a mediated device [")->message);
        assert_string_equal(
            c->location,
            "/go/src/kubevirt.io/kubevirt/tests/mdev_configuration_allocation_test.go:236");
        junit_result_done(&a);
        junit_result_done(&b);
        junit_result_done(&back);
        rm_rf(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_passed),
            cmocka_unit_test(test_failed),
            cmocka_unit_test(test_interrupted),
            cmocka_unit_test(test_plain_junit),
            cmocka_unit_test(test_bad_inputs),
            cmocka_unit_test(test_no_network),
            cmocka_unit_test(test_load_dir_partials),
            cmocka_unit_test(test_load_dir_mixed),
            cmocka_unit_test(test_load_dir_missing),
            cmocka_unit_test(test_load_dir_prefers_merged),
            cmocka_unit_test(test_write_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
