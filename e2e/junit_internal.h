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
/* A zeroed case appended to tmp (counted in n_cases at once, so a
 * half-filled one is still freed). */
struct junit_case *junit_new_case(struct junit_result *tmp);
/* Read name, classname, time of a <testcase> into c. */
int junit_case_basics(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err);
/* The <testsuite> time attribute. */
int junit_suite_time(const char *path, xmlNode *suite, double *ret, char **ret_err);

/* KubeVirt's V1 reporter shape (junit_v1.c). */
int junit_parse_v1_suite(const char *path, xmlNode *suite, struct junit_result *tmp,
                         char **ret_err);
