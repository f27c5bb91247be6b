/* Helpers shared by the JUnit readers (junit.c: ginkgo v2 and generic JUnit,
 * junit_v1.c: KubeVirt's V1 reporter) and the writer (junit_write.c). */
#pragma once

#include <libxml/tree.h>
#include <stdbool.h>

#include "common/macro.h"
#include "e2e/junit.h"

/* Attribute / text content copied into malloc'ed memory (NULL when absent). */
char *junit_prop(xmlNode *n, const char *name);
char *junit_content(xmlNode *n);
bool junit_is_elem(xmlNode *n, const char *name);
/* Seconds as Go writes them ("12.345", "0", "1.5e-05"): finite, >= 0. */
int junit_parse_seconds(const char *s, double *ret);
/* The first "path.go:LINE" in a text, or NULL. */
char *junit_find_location(const char *text);
/* Replace *ret_err with the formatted message; returns r. */
int junit_set_err(char **ret_err, int r, const char *fmt, ...) _printf_(3, 4);
/* Read name, classname, time of a <testcase> into c. */
int junit_case_basics(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err);

/* A <testsuite> count attribute (tests=, failures=): *ret -1 when absent. */
int junit_suite_count(const char *path, xmlNode *suite, const char *attr, long long *ret,
                      char **ret_err);

/* A shape's reader of one <testcase> into a zeroed case: 0, a negative
 * errno, or JUNIT_CASE_DROP for a case that is no result (freed, not
 * counted). */
typedef int (*junit_case_parser)(const char *path, xmlNode *tc, struct junit_case *c,
                                 char **ret_err);
#define JUNIT_CASE_DROP 1
/* What every shape does with a <testsuite>: its time added to tmp's, each
 * <testcase> child read by parse into a new case of tmp and its outcome
 * counted. *ret_n (may be NULL): how many <testcase> elements it has. */
int junit_parse_cases(const char *path, xmlNode *suite, struct junit_result *tmp,
                      junit_case_parser parse, unsigned *ret_n, char **ret_err);

/* KubeVirt's V1 reporter shape (junit_v1.c). */
int junit_parse_v1_suite(const char *path, xmlNode *suite, struct junit_result *tmp,
                         char **ret_err);
