/* JUnit parsing and writing for e2e results (see junit.h). */
#include "e2e/junit.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/util.h"

static const char *const status_names[_JUNIT_STATUS_MAX] = {
    [JUNIT_PASSED] = "passed",
    [JUNIT_FAILED] = "failed",
    [JUNIT_SKIPPED] = "skipped",
    [JUNIT_ERROR] = "error",
};

const char *junit_status_name(enum junit_status s)
{
        return s < _JUNIT_STATUS_MAX ? status_names[s] : "unknown";
}

static void junit_case_done(struct junit_case *c)
{
        free(c->name);
        free(c->classname);
        free(c->status);
        free(c->message);
        free(c->detail);
        free(c->location);
        free(c->file);
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
static char *prop(xmlNode *n, const char *name)
{
        xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
        char *r;

        if (!v)
                return NULL;
        r = strdup((const char *)v);
        xmlFree(v);
        return r;
}

static char *content(xmlNode *n)
{
        xmlChar *v = xmlNodeGetContent(n);
        char *r;

        if (!v)
                return NULL;
        r = strdup((const char *)v);
        xmlFree(v);
        return r;
}

static bool is_elem(xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && streq((const char *)n->name, name);
}

/* Seconds as written by ginkgo ("12.345"): finite and not negative. */
static int parse_seconds(const char *s, double *ret)
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

/* The first "path.go:LINE" in a failure text. Ginkgo v2 writes
 * "In [It] at: /go/src/kubevirt.io/kubevirt/tests/x_test.go:312 @ <time>",
 * older reporters put the location on the first line. */
static char *find_location(const char *text)
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

static int set_err(char **ret_err, int r, const char *fmt, ...) _printf_(3, 4);
static int set_err(char **ret_err, int r, const char *fmt, ...)
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

static int parse_case(const char *path, xmlNode *tc, struct junit_case *c, char **ret_err)
{
        _cleanup_free_ char *time_s = NULL;
        unsigned line = (unsigned)xmlGetLineNo(tc);
        bool have_status = false;

        c->file = strdup(path);
        c->line = line;
        c->name = prop(tc, "name");
        c->classname = prop(tc, "classname");
        c->status = prop(tc, "status");
        if (!c->file)
                return -ENOMEM;
        if (isempty(c->name))
                return set_err(ret_err, -EINVAL, "%s:%u: <testcase> without a name attribute", path,
                               line);
        time_s = prop(tc, "time");
        if (time_s && parse_seconds(time_s, &c->time) < 0)
                return set_err(ret_err, -EINVAL,
                               "%s:%u: testcase \"%s\": bad time attribute \"%s\" (expected "
                               "seconds, e.g. 1.25)",
                               path, line, c->name, time_s);
        if (c->status) {
                if (map_status(c->status, &c->outcome) < 0)
                        return set_err(ret_err, -EINVAL,
                                       "%s:%u: testcase \"%s\": unknown status \"%s\"", path, line,
                                       c->name, c->status);
                have_status = true;
        } else
                c->outcome = JUNIT_PASSED;

        for (xmlNode *k = tc->children; k; k = k->next) {
                enum junit_status from_child;

                if (is_elem(k, "failure"))
                        from_child = JUNIT_FAILED;
                else if (is_elem(k, "error"))
                        from_child = JUNIT_ERROR;
                else if (is_elem(k, "skipped"))
                        from_child = JUNIT_SKIPPED;
                else
                        continue;
                /* Ginkgo marks aborted specs with <failure type="aborted">
                 * but counts them as errors; the status attribute wins. */
                if (!have_status) {
                        c->outcome = from_child;
                        free(c->status);
                        c->status = strdup(status_names[from_child]);
                }
                free(c->message);
                c->message = prop(k, "message");
                if (from_child != JUNIT_SKIPPED) {
                        free(c->detail);
                        c->detail = content(k);
                        free(c->location);
                        c->location = find_location(c->detail);
                }
        }
        if (!c->status && !(c->status = strdup("passed")))
                return -ENOMEM;
        return 0;
}

static int check_count(const char *path, xmlNode *suite, const char *attr, unsigned have,
                       char **ret_err)
{
        _cleanup_free_ char *v = prop(suite, attr);
        unsigned long long n;

        if (!v)
                return 0;
        if (parse_uint64(v, 0, 10000000, &n) < 0)
                return set_err(ret_err, -EINVAL,
                               "%s:%ld: <testsuite> has a bad %s attribute \"%s\"", path,
                               xmlGetLineNo(suite), attr, v);
        if (n != have)
                return set_err(ret_err, -EINVAL,
                               "%s:%ld: <testsuite> declares %s=%llu but contains %u <testcase> "
                               "elements (truncated or hand-edited file?)",
                               path, xmlGetLineNo(suite), attr, n, have);
        return 0;
}

static int parse_suite(const char *path, xmlNode *suite, struct junit_result *tmp, char **ret_err)
{
        _cleanup_free_ char *time_s = prop(suite, "time");
        unsigned n = 0;
        double t = 0;
        int r;

        if (time_s && parse_seconds(time_s, &t) < 0)
                return set_err(ret_err, -EINVAL,
                               "%s:%ld: <testsuite>: bad time attribute \"%s\" (expected seconds)",
                               path, xmlGetLineNo(suite), time_s);
        tmp->time += t;
        for (xmlNode *k = suite->children; k; k = k->next) {
                struct junit_case *cases;

                if (!is_elem(k, "testcase"))
                        continue;
                cases = realloc(tmp->cases, (tmp->n_cases + 1) * sizeof(*cases));
                if (!cases)
                        return -ENOMEM;
                tmp->cases = cases;
                cases[tmp->n_cases] = (struct junit_case){0};
                r = parse_case(path, k, &cases[tmp->n_cases], ret_err);
                tmp->n_cases++; /* so junit_result_done frees a half-filled case */
                if (r < 0)
                        return r;
                tmp->counts[cases[tmp->n_cases - 1].outcome]++;
                n++;
        }
        return check_count(path, suite, "tests", n, ret_err);
}

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
        dst->time += src->time;
        for (size_t i = 0; src->files && src->files[i]; i++)
                if (strv_extend(&dst->files, src->files[i]) < 0)
                        return -ENOMEM;
        free(src->cases);
        src->cases = NULL;
        src->n_cases = 0;
        return 0;
}

int junit_parse_file(const char *path, struct junit_result *res, char **ret_err)
{
        _cleanup_(junit_result_done) struct junit_result tmp = {0};
        xmlParserCtxtPtr ctxt = NULL;
        xmlDocPtr doc = NULL;
        xmlNode *root;
        struct stat st;
        int r = 0;

        if (stat(path, &st) < 0)
                return set_err(ret_err, negative_errno(), "%s: cannot read JUnit file: %s", path,
                               strerror(errno));
        if (!S_ISREG(st.st_mode))
                return set_err(ret_err, -EINVAL, "%s: not a regular file", path);
        if (st.st_size == 0)
                return set_err(ret_err, -EINVAL,
                               "%s: empty file (the test run probably died before writing it)",
                               path);

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
                r = set_err(ret_err, -EINVAL, "%s:%d: not well-formed XML: %s", path,
                            e ? e->line : 0, msg ? msg : "parse error");
                goto out;
        }
        root = xmlDocGetRootElement(doc);
        if (!root) {
                r = set_err(ret_err, -EINVAL, "%s: XML document has no root element", path);
                goto out;
        }
        if (is_elem(root, "testsuite"))
                r = parse_suite(path, root, &tmp, ret_err);
        else if (is_elem(root, "testsuites")) {
                for (xmlNode *k = root->children; k && r >= 0; k = k->next)
                        if (is_elem(k, "testsuite"))
                                r = parse_suite(path, k, &tmp, ret_err);
        } else
                r = set_err(ret_err, -EINVAL,
                            "%s:%ld: root element is <%s>, expected <testsuites> or <testsuite>",
                            path, xmlGetLineNo(root), (const char *)root->name);
        if (r < 0)
                goto out;
        if (strv_extend(&tmp.files, path) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = append_result(res, &tmp);
out:
        if (doc)
                xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        return r;
}

int junit_load_dir(const char *dir, struct junit_result *res, char ***errors)
{
        _cleanup_free_ char *main_file = strdup_printf("%s/junit.functest.xml", dir);
        _cleanup_free_ char *pattern = strdup_printf("%s/partial.*.xml", dir);
        glob_t g = {0};
        bool any = false;
        int r;

        if (!main_file || !pattern)
                return -ENOMEM;
        if (file_exists(main_file)) {
                _cleanup_free_ char *err = NULL;

                r = junit_parse_file(main_file, res, &err);
                if (r >= 0)
                        return 0;
                if (r == -ENOMEM)
                        return r;
                if (err && strv_push(errors, TAKE_PTR(err)) < 0)
                        return -ENOMEM;
                any = true;
                /* A broken merged file: the partial files may still hold the
                 * results, fall through. */
        }
        if (glob(pattern, 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        _cleanup_free_ char *err = NULL;

                        any = true;
                        r = junit_parse_file(g.gl_pathv[i], res, &err);
                        if (r == -ENOMEM) {
                                globfree(&g);
                                return r;
                        }
                        if (r < 0 && err && strv_push(errors, TAKE_PTR(err)) < 0) {
                                globfree(&g);
                                return -ENOMEM;
                        }
                }
                globfree(&g);
        }
        if (!any) {
                char *msg = strdup_printf("%s: no JUnit results: neither junit.functest.xml nor "
                                          "partial.*.xml exists",
                                          dir);
                if (!msg || strv_push(errors, msg) < 0)
                        return -ENOMEM;
                return -ENOENT;
        }
        return 0;
}

/* ---- writer --------------------------------------------------------------- */

static int w_attr(xmlTextWriterPtr w, const char *name, const char *value)
{
        return xmlTextWriterWriteAttribute(w, (const xmlChar *)name,
                                           (const xmlChar *)(value ? value : "")) < 0
                   ? -EIO
                   : 0;
}

static int w_attrf(xmlTextWriterPtr w, const char *name, const char *fmt, ...) _printf_(3, 4);
static int w_attrf(xmlTextWriterPtr w, const char *name, const char *fmt, ...)
{
        char buf[64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return w_attr(w, name, buf);
}

static int write_case(xmlTextWriterPtr w, const char *suite, const struct junit_case *c)
{
        const char *child = c->outcome == JUNIT_FAILED    ? "failure"
                            : c->outcome == JUNIT_ERROR   ? "error"
                            : c->outcome == JUNIT_SKIPPED ? "skipped"
                                                          : NULL;
        int r = 0;

        if (xmlTextWriterStartElement(w, (const xmlChar *)"testcase") < 0)
                return -EIO;
        r |= w_attr(w, "name", c->name);
        r |= w_attr(w, "classname", suite);
        r |= w_attr(w, "status", c->status);
        r |= w_attrf(w, "time", "%.3f", c->time);
        if (child) {
                if (xmlTextWriterStartElement(w, (const xmlChar *)child) < 0)
                        return -EIO;
                r |= w_attr(w, "message", c->message);
                if (c->outcome != JUNIT_SKIPPED) {
                        r |= w_attr(w, "type", c->status);
                        if (c->detail &&
                            xmlTextWriterWriteString(w, (const xmlChar *)c->detail) < 0)
                                return -EIO;
                }
                if (xmlTextWriterEndElement(w) < 0)
                        return -EIO;
        }
        if (xmlTextWriterEndElement(w) < 0)
                return -EIO;
        return r < 0 ? -EIO : 0;
}

int junit_write(const char *path, const struct junit_suite_ref *suites, size_t n)
{
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp", path);
        xmlTextWriterPtr w;
        unsigned total[_JUNIT_STATUS_MAX] = {0}, all = 0;
        double time = 0;
        int r = 0;

        if (!tmp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                for (int s = 0; s < _JUNIT_STATUS_MAX; s++)
                        total[s] += suites[i].res->counts[s];
                all += junit_total(suites[i].res);
                time += suites[i].res->time;
        }
        w = xmlNewTextWriterFilename(tmp, 0);
        if (!w)
                return -EIO;
        xmlTextWriterSetIndent(w, 1);
        xmlTextWriterSetIndentString(w, (const xmlChar *)"  ");
        if (xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL) < 0 ||
            xmlTextWriterStartElement(w, (const xmlChar *)"testsuites") < 0) {
                r = -EIO;
                goto out;
        }
        r |= w_attrf(w, "tests", "%u", all);
        r |= w_attrf(w, "disabled", "%u", total[JUNIT_SKIPPED]);
        r |= w_attrf(w, "errors", "%u", total[JUNIT_ERROR]);
        r |= w_attrf(w, "failures", "%u", total[JUNIT_FAILED]);
        r |= w_attrf(w, "time", "%.3f", time);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct junit_result *res = suites[i].res;

                if (xmlTextWriterStartElement(w, (const xmlChar *)"testsuite") < 0) {
                        r = -EIO;
                        break;
                }
                r |= w_attr(w, "name", suites[i].name);
                r |= w_attrf(w, "tests", "%u", junit_total(res));
                r |= w_attrf(w, "skipped", "%u", res->counts[JUNIT_SKIPPED]);
                r |= w_attrf(w, "errors", "%u", res->counts[JUNIT_ERROR]);
                r |= w_attrf(w, "failures", "%u", res->counts[JUNIT_FAILED]);
                r |= w_attrf(w, "time", "%.3f", res->time);
                for (size_t k = 0; k < res->n_cases && r >= 0; k++)
                        r = write_case(w, suites[i].name, &res->cases[k]);
                if (xmlTextWriterEndElement(w) < 0)
                        r = -EIO;
        }
        if (r >= 0 && xmlTextWriterEndDocument(w) < 0)
                r = -EIO;
out:
        xmlFreeTextWriter(w);
        if (r < 0) {
                unlink(tmp);
                return -EIO;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                unlink(tmp);
                return r;
        }
        return 0;
}
