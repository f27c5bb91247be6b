/* JUnit parsing for e2e results: the model, the helpers every shape uses,
 * ginkgo v2's --junit-report shape, and loading a run's file (see junit.h;
 * KubeVirt's V1 shape is in junit_v1.c, the writer in junit_write.c). */
#include "e2e/junit.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/junit_internal.h"

static const char *const status_names[_JUNIT_STATUS_MAX] = {
    [JUNIT_PASSED] = "passed",
    [JUNIT_FAILED] = "failed",
    [JUNIT_SKIPPED] = "skipped",
    [JUNIT_ERROR] = "error",
    [JUNIT_NOT_SELECTED] = "not_selected",
};

const char *junit_status_name(enum junit_status s)
{
        return s < _JUNIT_STATUS_MAX ? status_names[s] : "unknown";
}

static void junit_case_done(struct junit_case *c)
{
        FREE_ALL(c->name, c->classname, c->status, c->message, c->detail, c->output, c->location,
                 c->file);
}

void junit_result_done(struct junit_result *res)
{
        for (size_t i = 0; i < res->n_cases; i++)
                junit_case_done(&res->cases[i]);
        free(res->cases);
        strv_free(res->files);
        *res = (struct junit_result){0};
}

/* xmlGetProp returns libxml-allocated memory; copy into malloc'ed memory so
 * the model frees with free() only. */
static char *strdup_xml(xmlChar *v)
{
        char *r;

        if (!v)
                return NULL;
        r = strdup((const char *)v);
        xmlFree(v);
        return r;
}

char *junit_prop(xmlNode *n, const char *name)
{
        return strdup_xml(xmlGetProp(n, (const xmlChar *)name));
}

char *junit_content(xmlNode *n)
{
        return strdup_xml(xmlNodeGetContent(n));
}

bool junit_is_elem(xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && streq((const char *)n->name, name);
}

int junit_parse_seconds(const char *s, double *ret)
{
        char *end = NULL;
        double v;

        if (isempty(s))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || !end || *end != 0 || !isfinite(v) || v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Ginkgo v2 writes "In [It] at: /go/src/kubevirt.io/kubevirt/tests/x_test.go:312
 * @ <time>"; V1 puts a location on a line of its own. */
char *junit_find_location(const char *text)
{
        for (const char *p = text ? strstr(text, ".go:") : NULL; p; p = strstr(p + 1, ".go:")) {
                const char *start = p, *end = p + 4;

                if (!isdigit((unsigned char)*end))
                        continue;
                while (isdigit((unsigned char)*end))
                        end++;
                while (start > text && !isspace((unsigned char)start[-1]))
                        start--;
                return strndup(start, (size_t)(end - start));
        }
        return NULL;
}

int junit_set_err(char **ret_err, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        char *s = strdup_vprintf(fmt, ap);
        va_end(ap);
        if (ret_err) {
                free(*ret_err);
                *ret_err = s;
        } else
                free(s);
        return r;
}

/* A zeroed case appended to tmp (counted in n_cases at once, so a
 * half-filled one is still freed). */
static struct junit_case *new_case(struct junit_result *tmp)
{
        struct junit_case *cases = realloc(tmp->cases, (tmp->n_cases + 1) * sizeof(*cases));

        if (!cases)
                return NULL;
        tmp->cases = cases;
        cases[tmp->n_cases] = (struct junit_case){0};
        return &cases[tmp->n_cases++];
}

int junit_case_basics(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err)
{
        _cleanup_free_ char *time_s = junit_prop(tc, "time");

        c->line = (unsigned)xmlGetLineNo(tc);
        c->file = strdup(path);
        c->name = junit_prop(tc, "name");
        c->classname = junit_prop(tc, "classname");
        if (!c->file)
                return -ENOMEM;
        if (isempty(c->name))
                return junit_set_err(ret_err, -EINVAL, "%s:%u: <testcase> without a name attribute",
                                     path, c->line);
        if (time_s && junit_parse_seconds(time_s, &c->time) < 0)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%u: testcase \"%s\": bad time attribute \"%s\" (expected "
                                     "seconds, e.g. 1.25)",
                                     path, c->line, c->name, time_s);
        return 0;
}

int junit_parse_cases(const char *path, xmlNode *suite, struct junit_result *tmp,
                      junit_case_parser parse, unsigned *ret_n, char **ret_err)
{
        _cleanup_free_ char *time_s = junit_prop(suite, "time");
        unsigned n = 0;
        double t = 0;
        int r;

        if (time_s && junit_parse_seconds(time_s, &t) < 0)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%ld: <testsuite>: bad time attribute \"%s\" (expected "
                                     "seconds)",
                                     path, xmlGetLineNo(suite), time_s);
        tmp->time += t;
        for (xmlNode *k = suite->children; k; k = k->next) {
                struct junit_case *c;

                if (!junit_is_elem(k, "testcase"))
                        continue;
                if (!(c = new_case(tmp)))
                        return -ENOMEM;
                if ((r = parse(path, k, c, ret_err)) < 0)
                        return r;
                n++;
                if (r == JUNIT_CASE_DROP) {
                        junit_case_done(c);
                        tmp->n_cases--;
                        continue;
                }
                tmp->counts[c->outcome]++;
        }
        if (ret_n)
                *ret_n = n;
        return 0;
}

/* ---- ginkgo v2 (and plain JUnit) ------------------------------------------ */

static int map_status(const char *status, enum junit_status *ret)
{
        static const struct {
                const char *name;
                enum junit_status outcome;
        } table[] = {
            {"passed", JUNIT_PASSED},     {"failed", JUNIT_FAILED},   {"timedout", JUNIT_FAILED},
            {"skipped", JUNIT_SKIPPED},   {"pending", JUNIT_SKIPPED}, {"panicked", JUNIT_ERROR},
            {"interrupted", JUNIT_ERROR}, {"aborted", JUNIT_ERROR},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(status, table[i].name)) {
                        *ret = table[i].outcome;
                        return 0;
                }
        return -EINVAL;
}

/* Suite nodes ginkgo v2 reports as test cases ("[SynchronizedBeforeSuite]",
 * "[ReportAfterSuite] TestTests" ...): types.NodeType names. */
static bool is_suite_node(const char *name)
{
        static const char *const nodes[] = {
            "[BeforeSuite]",          "[SynchronizedBeforeSuite]",
            "[AfterSuite]",           "[SynchronizedAfterSuite]",
            "[ReportBeforeSuite]",    "[ReportAfterSuite]",
            "[DeferCleanup (Suite)]",
        };
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++)
                if (startswith(name, nodes[i]))
                        return true;
        return false;
}

static void take_child(struct junit_case *c, xmlNode *k, enum junit_status from_child)
{
        free(c->message);
        c->message = junit_prop(k, "message");
        if (from_child == JUNIT_SKIPPED)
                return;
        free(c->detail);
        c->detail = junit_content(k);
        free(c->location);
        c->location = junit_find_location(c->detail);
}

static int parse_v2_case(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err)
{
        int r = junit_case_basics(path, tc, c, ret_err);
        bool have_status;

        if (r < 0)
                return r;
        c->status = junit_prop(tc, "status");
        have_status = c->status != NULL;
        c->outcome = JUNIT_PASSED;
        if (have_status && map_status(c->status, &c->outcome) < 0)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%u: testcase \"%s\": unknown status \"%s\"", path, c->line,
                                     c->name, c->status);
        for (xmlNode *k = tc->children; k; k = k->next) {
                enum junit_status from_child;

                if (junit_is_elem(k, "system-out")) {
                        free(c->output);
                        c->output = junit_content(k);
                        continue;
                }
                if (junit_is_elem(k, "failure"))
                        from_child = JUNIT_FAILED;
                else if (junit_is_elem(k, "error"))
                        from_child = JUNIT_ERROR;
                else if (junit_is_elem(k, "skipped"))
                        from_child = JUNIT_SKIPPED;
                else
                        continue;
                /* Ginkgo marks aborted specs <failure type="aborted"> but
                 * counts them as errors: the status attribute wins. */
                if (!have_status)
                        c->outcome = from_child;
                take_child(c, k, from_child);
        }
        /* Never started: ginkgo writes "skipped" alone for a filtered spec,
         * "skipped - REASON" when the spec called Skip(REASON). */
        if (c->outcome == JUNIT_SKIPPED && c->time == 0 && c->message &&
            streq(c->message, "skipped"))
                c->outcome = JUNIT_NOT_SELECTED;
        c->setup = is_suite_node(c->name);
        if (!c->status && !(c->status = strdup(status_names[c->outcome])))
                return -ENOMEM;
        /* A suite node that passed is plumbing, not a result. */
        return c->setup && c->outcome == JUNIT_PASSED ? JUNIT_CASE_DROP : 0;
}

int junit_suite_count(const char *path, xmlNode *suite, const char *attr, long long *ret,
                      char **ret_err)
{
        _cleanup_free_ char *v = junit_prop(suite, attr);
        unsigned long long n;

        *ret = -1;
        if (!v)
                return 0;
        if (parse_uint64(v, 0, 10000000, &n) < 0)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%ld: <testsuite> has a bad %s attribute \"%s\"", path,
                                     xmlGetLineNo(suite), attr, v);
        *ret = (long long)n;
        return 0;
}

static int check_count(const char *path, xmlNode *suite, unsigned have, char **ret_err)
{
        long long n;
        int r = junit_suite_count(path, suite, "tests", &n, ret_err);

        if (r < 0)
                return r;
        if (n >= 0 && n != have)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s:%ld: <testsuite> declares tests=%lld but contains %u "
                                     "<testcase> elements (truncated or hand-edited file?)",
                                     path, xmlGetLineNo(suite), n, have);
        return 0;
}

static int parse_v2_suite(const char *path, xmlNode *suite, struct junit_result *tmp,
                          char **ret_err)
{
        unsigned n;
        int r = junit_parse_cases(path, suite, tmp, parse_v2_case, &n, ret_err);

        return r < 0 ? r : check_count(path, suite, n, ret_err);
}

/* ---- one file ----------------------------------------------------------------- */

static int append_result(struct junit_result *dst, struct junit_result *src)
{
        struct junit_case *cases;

        if (src->n_cases > 0) {
                cases = realloc(dst->cases, (dst->n_cases + src->n_cases) * sizeof(*cases));
                if (!cases)
                        return -ENOMEM;
                memcpy(cases + dst->n_cases, src->cases, src->n_cases * sizeof(*cases));
                dst->cases = cases;
                dst->n_cases += src->n_cases;
        }
        for (int i = 0; i < _JUNIT_STATUS_MAX; i++)
                dst->counts[i] += src->counts[i];
        dst->never_ran += src->never_ran;
        dst->time += src->time;
        dst->shape = src->shape;
        for (size_t i = 0; src->files && src->files[i]; i++)
                if (strv_extend(&dst->files, src->files[i]) < 0)
                        return -ENOMEM;
        free(src->cases);
        src->cases = NULL;
        src->n_cases = 0;
        return 0;
}

/* KubeVirt's V1 reporter writes a bare <testsuite> and no status attributes;
 * ginkgo v2 always writes <testsuites> with a status on every case. */
static bool is_v1_suite(xmlNode *root)
{
        if (!junit_is_elem(root, "testsuite"))
                return false;
        for (xmlNode *k = root->children; k; k = k->next)
                if (junit_is_elem(k, "testcase") && xmlHasProp(k, (const xmlChar *)"status"))
                        return false;
        return true;
}

static int parse_root(const char *path, xmlNode *root, struct junit_result *tmp, char **ret_err)
{
        int r = 0;

        if (is_v1_suite(root)) {
                tmp->shape = JUNIT_SHAPE_KUBEVIRT_V1;
                return junit_parse_v1_suite(path, root, tmp, ret_err);
        }
        tmp->shape = JUNIT_SHAPE_GINKGO_V2;
        if (junit_is_elem(root, "testsuite"))
                return parse_v2_suite(path, root, tmp, ret_err);
        if (junit_is_elem(root, "testsuites")) {
                for (xmlNode *k = root->children; k && r >= 0; k = k->next)
                        if (junit_is_elem(k, "testsuite"))
                                r = parse_v2_suite(path, k, tmp, ret_err);
                return r;
        }
        return junit_set_err(ret_err, -EINVAL,
                             "%s:%ld: root element is <%s>, expected <testsuites> or <testsuite>",
                             path, xmlGetLineNo(root), (const char *)root->name);
}

static int check_file(const char *path, char **ret_err)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return junit_set_err(ret_err, negative_errno(), "%s: cannot read JUnit file: %s",
                                     path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return junit_set_err(ret_err, -EINVAL, "%s: not a regular file", path);
        if (st.st_size == 0)
                return junit_set_err(ret_err, -EINVAL,
                                     "%s: empty file (the test run probably died before writing "
                                     "it)",
                                     path);
        return 0;
}

int junit_parse_file(const char *path, struct junit_result *res, char **ret_err)
{
        _cleanup_(junit_result_done) struct junit_result tmp = {0};
        xmlParserCtxtPtr ctxt = NULL;
        xmlDocPtr doc = NULL;
        xmlNode *root;
        int r = check_file(path, ret_err);

        if (r < 0)
                return r;
        ctxt = xmlNewParserCtxt();
        if (!ctxt)
                return -ENOMEM;
        /* NONET: a report never makes us fetch a DTD or entity. NOERROR and
         * NOWARNING: libxml2 must not print on its own; we report once. */
        doc = xmlCtxtReadFile(ctxt, path, NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                  XML_PARSE_NOCDATA);
        if (!doc) {
                const xmlError *e = xmlCtxtGetLastError(ctxt);
                _cleanup_free_ char *msg = strdup(e && e->message ? e->message : "parse error");

                if (msg) /* libxml2 messages end with a newline */
                        msg[strcspn(msg, "\n")] = 0;
                r = junit_set_err(ret_err, -EINVAL, "%s:%d: not well-formed XML: %s", path,
                                  e ? e->line : 0, msg ? msg : "parse error");
                goto out;
        }
        root = xmlDocGetRootElement(doc);
        if (!root)
                r = junit_set_err(ret_err, -EINVAL, "%s: XML document has no root element", path);
        else
                r = parse_root(path, root, &tmp, ret_err);
        if (r >= 0 && strv_extend(&tmp.files, path) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = append_result(res, &tmp);
out:
        if (doc)
                xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        return r;
}

int junit_load_dir(const char *dir, struct junit_result *res, char ***errors)
{
        _cleanup_free_ char *path = strdup_printf("%s/" JUNIT_FUNCTEST_FILE, dir);
        _cleanup_free_ char *err = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        if (!file_exists(path))
                err = strdup_printf("%s: no JUnit results: " JUNIT_FUNCTEST_FILE " does not exist "
                                    "(the suite writes it when it ends; a run killed before "
                                    "that leaves none)",
                                    dir);
        else if ((r = junit_parse_file(path, res, &err)) >= 0 || r == -ENOMEM)
                return r;
        if (!err || strv_push(errors, TAKE_PTR(err)) < 0)
                return -ENOMEM;
        return file_exists(path) ? -EINVAL : -ENOENT;
}
