/* Writing one merged JUnit file of several runs (see junit.h). */
#include <errno.h>
#include <libxml/xmlwriter.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/junit.h"

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

static int write_properties(xmlTextWriterPtr w, char *const *props)
{
        int r = 0;

        if (!props)
                return 0;
        if (xmlTextWriterStartElement(w, (const xmlChar *)"properties") < 0)
                return -EIO;
        for (size_t i = 0; props[i] && r >= 0; i++) {
                _cleanup_free_ char *name = strndup(props[i], strcspn(props[i], "="));
                const char *eq = strchr(props[i], '=');

                if (!name)
                        return -ENOMEM;
                if (xmlTextWriterStartElement(w, (const xmlChar *)"property") < 0)
                        return -EIO;
                r |= w_attr(w, "name", name);
                r |= w_attr(w, "value", eq ? eq + 1 : "");
                if (xmlTextWriterEndElement(w) < 0)
                        return -EIO;
        }
        if (xmlTextWriterEndElement(w) < 0)
                return -EIO;
        return r < 0 ? -EIO : 0;
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
                if (r >= 0)
                        r = write_properties(w, suites[i].properties);
                for (size_t k = 0; k < res->n_cases && r >= 0; k++)
                        if (res->cases[k].outcome != JUNIT_NOT_SELECTED)
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
