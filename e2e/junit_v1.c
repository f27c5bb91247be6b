/* KubeVirt's junit.functest.xml: the V1 reporter's shape (see junit.h).
 *
 * Mirrors staging/src/kubevirt.io/client-go/reporter/reporter.go and the
 * ginkgo v2 bridge that feeds it, reporters/deprecated_reporter.go (kubevirt
 * main d923fdb, ginkgo v2.28.1): tests= is PreRunStats.SpecsThatWillRun,
 * failures= counts failed, panicked and interrupted specs, every It spec is
 * a case, and a spec that never started (filtered out, or left when the run
 * was interrupted) has RunTime 0, so time="0". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "e2e/junit_internal.h"

/* "NODE-LOCATION\nMESSAGE\nFAILURE-LOCATION", for a panic followed by
 * "\n\nPanic: ...\n\nFull stack:\n...": failureMessage() in reporter.go. */
static int split_failure(struct junit_case *c)
{
        const char *text = c->detail ? c->detail : "";
        const char *panic = strstr(text, "\n\nPanic: ");
        size_t body = panic ? (size_t)(panic - text) : strlen(text);
        const char *first = memchr(text, '\n', body), *last = NULL;

        for (const char *p = text; p < text + body; p++)
                if (*p == '\n')
                        last = p;
        if (first && last > first) {
                c->message = strndup(first + 1, (size_t)(last - first - 1));
                c->location = strndup(last + 1, body - (size_t)(last + 1 - text));
        } else
                c->message = strndup(text, body);
        if (c->location && !strstr(c->location, ".go:")) {
                free(c->location);
                c->location = NULL;
        }
        if (!c->location)
                c->location = junit_find_location(text);
        if (panic && c->message && isempty(c->message)) {
                free(c->message);
                c->message = strndup(panic + 2, strcspn(panic + 2, "\n"));
        }
        return c->message ? 0 : -ENOMEM;
}

static enum junit_status failure_outcome(const char *type, const char **ret_status)
{
        if (type && streq(type, "Interrupted")) {
                *ret_status = "interrupted";
                return JUNIT_ERROR;
        }
        if (type && streq(type, "Panic")) {
                *ret_status = "panicked";
                return JUNIT_ERROR;
        }
        *ret_status = "failed";
        return JUNIT_FAILED;
}

static int parse_v1_case(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err)
{
        const char *status = "passed";
        int r = junit_case_basics(path, tc, c, ret_err);

        if (r < 0)
                return r;
        c->outcome = JUNIT_PASSED;
        c->setup = streq(c->name, "BeforeSuite") || streq(c->name, "AfterSuite");
        for (xmlNode *k = tc->children; k; k = k->next) {
                if (junit_is_elem(k, "system-out")) {
                        free(c->output);
                        c->output = junit_content(k);
                } else if (junit_is_elem(k, "failure")) {
                        _cleanup_free_ char *type = junit_prop(k, "type");

                        c->outcome = failure_outcome(type, &status);
                        free(c->detail);
                        c->detail = junit_content(k);
                        if ((r = split_failure(c)) < 0)
                                return r;
                        /* Not V1's, but other bare-<testsuite> writers say it. */
                        _cleanup_free_ char *msg = junit_prop(k, "message");
                        if (msg) {
                                free(c->message);
                                c->message = TAKE_PTR(msg);
                        }
                } else if (junit_is_elem(k, "skipped")) {
                        /* Never started: ginkgo leaves RunTime at 0. */
                        c->outcome = c->time == 0 ? JUNIT_NOT_SELECTED : JUNIT_SKIPPED;
                        status = c->time == 0 ? "not selected" : "skipped";
                }
        }
        c->status = strdup(status);
        return c->status ? 0 : -ENOMEM;
}

/* tests= is what was selected; the cases say what ran. Anything selected
 * that did not run was left by an interrupt: skipped, not "not selected". */
static int reconcile(const char *path, xmlNode *suite, struct junit_result *tmp, unsigned ran,
                     unsigned failed, char **ret_err)
{
        unsigned never = tmp->counts[JUNIT_NOT_SELECTED];
        long long tests, failures;
        int r;

        if ((r = junit_suite_count(path, suite, "tests", &tests, ret_err)) < 0 ||
            (r = junit_suite_count(path, suite, "failures", &failures, ret_err)) < 0)
                return r;
        if (tests >= 0 && (tests < ran || tests > ran + never))
                return junit_set_err(
                    ret_err, -EINVAL,
                    "%s:%ld: <testsuite> declares tests=%lld specs selected to run, "
                    "but %u ran and %u never started (truncated or hand-edited "
                    "file?)",
                    path, xmlGetLineNo(suite), tests, ran, never);
        if (failures >= 0 && failures != failed)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%ld: <testsuite> declares failures=%lld but %u specs "
                                     "failed, panicked or were interrupted (truncated or "
                                     "hand-edited file?)",
                                     path, xmlGetLineNo(suite), failures, failed);
        if (tests > ran) {
                tmp->never_ran = (unsigned)(tests - ran);
                tmp->counts[JUNIT_SKIPPED] += tmp->never_ran;
                tmp->counts[JUNIT_NOT_SELECTED] -= tmp->never_ran;
        }
        return 0;
}

int junit_parse_v1_suite(const char *path, xmlNode *suite, struct junit_result *tmp, char **ret_err)
{
        unsigned ran = 0, failed = 0;
        size_t first = tmp->n_cases;
        int r = junit_parse_cases(path, suite, tmp, parse_v1_case, NULL, ret_err);

        if (r < 0)
                return r;
        for (size_t i = first; i < tmp->n_cases; i++) {
                const struct junit_case *c = &tmp->cases[i];

                if (c->setup)
                        continue;
                if (c->outcome != JUNIT_NOT_SELECTED)
                        ran++;
                if (c->outcome == JUNIT_FAILED || c->outcome == JUNIT_ERROR)
                        failed++;
        }
        return reconcile(path, suite, tmp, ran, failed, ret_err);
}
