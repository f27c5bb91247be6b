/* Running a cmocka test file's tests: the list of tests is all that differs
 * between those files' main(), so it is all they write (webhook/tests may
 * include it too). run_fixture_tests for files whose tests all share the
 * file's setup() and teardown(), run_plain_tests for tests without one.
 * Include after <cmocka.h>; handles up to 10 tests. */
#pragma once

#include "common/macro.h"

#define FIXTURE_TEST_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define FIXTURE_EACH_1_(m, a) m(a)
#define FIXTURE_EACH_2_(m, a, ...) m(a), FIXTURE_EACH_1_(m, __VA_ARGS__)
#define FIXTURE_EACH_3_(m, a, ...) m(a), FIXTURE_EACH_2_(m, __VA_ARGS__)
#define FIXTURE_EACH_4_(m, a, ...) m(a), FIXTURE_EACH_3_(m, __VA_ARGS__)
#define FIXTURE_EACH_5_(m, a, ...) m(a), FIXTURE_EACH_4_(m, __VA_ARGS__)
#define FIXTURE_EACH_6_(m, a, ...) m(a), FIXTURE_EACH_5_(m, __VA_ARGS__)
#define FIXTURE_EACH_7_(m, a, ...) m(a), FIXTURE_EACH_6_(m, __VA_ARGS__)
#define FIXTURE_EACH_8_(m, a, ...) m(a), FIXTURE_EACH_7_(m, __VA_ARGS__)
#define FIXTURE_EACH_9_(m, a, ...) m(a), FIXTURE_EACH_8_(m, __VA_ARGS__)
#define FIXTURE_EACH_10_(m, a, ...) m(a), FIXTURE_EACH_9_(m, __VA_ARGS__)
#define FIXTURE_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, n, ...) FIXTURE_EACH_##n##_
#define FIXTURE_EACH_(m, ...)                                                                      \
        FIXTURE_PICK_(__VA_ARGS__, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)(m, __VA_ARGS__)
#define FIXTURE_RUN_(m, ...)                                                                       \
        ({                                                                                         \
                const struct CMUnitTest tests_[] = {FIXTURE_EACH_(m, __VA_ARGS__)};                \
                _cmocka_run_group_tests("tests", tests_, ELEMENTSOF(tests_), NULL, NULL);          \
        })

/* Runs the named tests, each between setup() and teardown(); main's result. */
#define run_fixture_tests(...) FIXTURE_RUN_(FIXTURE_TEST_, __VA_ARGS__)
/* Runs the named tests, none with a fixture; main's result. */
#define run_plain_tests(...) FIXTURE_RUN_(cmocka_unit_test, __VA_ARGS__)
