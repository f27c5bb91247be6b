/* Running a cmocka test file whose tests all share the file's setup() and
 * teardown() (webhook/tests may include it too): the list of tests is all
 * that differs between those files' main(), so it is all they write.
 * Include after <cmocka.h>; handles up to 10 tests. */
#pragma once

#include "common/macro.h"

#define FIXTURE_TEST_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define FIXTURE_EACH_1_(a) FIXTURE_TEST_(a)
#define FIXTURE_EACH_2_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_1_(__VA_ARGS__)
#define FIXTURE_EACH_3_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_2_(__VA_ARGS__)
#define FIXTURE_EACH_4_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_3_(__VA_ARGS__)
#define FIXTURE_EACH_5_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_4_(__VA_ARGS__)
#define FIXTURE_EACH_6_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_5_(__VA_ARGS__)
#define FIXTURE_EACH_7_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_6_(__VA_ARGS__)
#define FIXTURE_EACH_8_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_7_(__VA_ARGS__)
#define FIXTURE_EACH_9_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_8_(__VA_ARGS__)
#define FIXTURE_EACH_10_(a, ...) FIXTURE_TEST_(a), FIXTURE_EACH_9_(__VA_ARGS__)
#define FIXTURE_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, n, ...) FIXTURE_EACH_##n##_
#define FIXTURE_EACH_(...) FIXTURE_PICK_(__VA_ARGS__, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)(__VA_ARGS__)

/* Runs the named tests, each between setup() and teardown(); main's result. */
#define run_fixture_tests(...)                                                                     \
        ({                                                                                         \
                const struct CMUnitTest tests_[] = {FIXTURE_EACH_(__VA_ARGS__)};                   \
                _cmocka_run_group_tests("tests", tests_, ELEMENTSOF(tests_), NULL, NULL);          \
        })
