/* The self-contained HTML report: inline CSS, no scripts, no external
 * assets, so it opens from a CI artifact zip or a file:// URL as is.
 *
 * Three tables, each cell carrying data-* attributes that tests (and
 * scripts) can read back:
 *   #grid   provider x fake-vGPU display (dmabuf, region, none), the
 *           Kind-vs-VM picture at a glance; a failure the cell expected
 *           (Kind with DMABUF: "opengl not available") is "xfail", not red
 *   #cells  one row per matrix cell: what it ran (KubeVirt ref, fake vGPU,
 *           display), outcome, verdict, counts and artifact links
 *   #tests  one row per spec that ran somewhere, one column per cell */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/report.h"

static void esc(FILE *f, const char *s)
{
        static const char *const entity[256] = {
            ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
        };

        for (; s && *s; s++)
                if (entity[(unsigned char)*s])
                        fputs(entity[(unsigned char)*s], f);
                else
                        fputc(*s, f);
}

/* href values: relative paths of our own files; escape and percent-encode
 * the few characters that would change the meaning of the URL. */
static void href(FILE *f, const char *s)
{
        for (; s && *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '%' || ch == '#' || ch == '?' || ch == ' ' || ch == '"' || ch < 0x20)
                        fprintf(f, "%%%02X", ch);
                else if (ch == '&')
                        fputs("&amp;", f);
                else
                        fputc(ch, f);
        }
}

static const char css[] =
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;"
    "color:#1f2328;background:#fff}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{border:1px solid #d0d7de;padding:.35em .6em;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}"
    "td.num{text-align:right}"
    ".passed{background:#dafbe1}.failed{background:#ffd7d5}"
    ".error{background:#fff1c2}.interrupted{background:#ddf4ff}"
    ".unfinished{background:#fff1c2}.skipped{background:#eaeef2;color:#57606a}"
    ".missing{background:#fff;color:#8c959f}"
    ".xfail{background:#efe2ff}.notselected{background:#fff;color:#8c959f}"
    "td.test{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;"
    "max-width:60em}"
    "pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:.85em}"
    ".muted{color:#57606a}";

/* The CSS class of an outcome: its name, without the underscore. */
static const char *case_class(enum junit_status s)
{
        return s == JUNIT_NOT_SELECTED ? "notselected" : junit_status_name(s);
}

static void artifact_link(FILE *f, const struct e2e_cell *c, const char *what, const char *label,
                          const char *base)
{
        _cleanup_free_ char *p = strdup_printf("%s/%s", c->dir, what);
        _cleanup_free_ char *rel = p ? report_relpath(p, base) : NULL;

        if (!rel)
                return;
        fputs("<a href=\"", f);
        href(f, rel);
        fprintf(f, "\">%s</a> ", label);
}

static void grid_cell(FILE *f, const struct e2e_cell *c)
{
        _cleanup_free_ char *verdict = report_cell_verdict(c);

        fprintf(f, "<td class=\"%s\" data-cell=\"", report_cell_class(c));
        esc(f, c->name);
        fprintf(f,
                "\" data-outcome=\"%s\" data-expected=\"%s\" data-verdict=\"%s\" "
                "data-display=\"%s\" data-kubevirt=\"",
                e2e_outcome_name(c->outcome), c->expect.failure ? "failed" : "passed",
                c->as_expected ? "as-expected" : "unexpected", c->display ? "on" : "off");
        esc(f, c->kubevirt_ref ? c->kubevirt_ref : "?");
        fputs("\"><b>", f);
        esc(f, verdict);
        fputs("</b> ", f);
        esc(f, c->name);
        fputs("<br><span class=\"muted\">KubeVirt ", f);
        esc(f, c->kubevirt_ref ? c->kubevirt_ref : "?");
        fprintf(f, ", display %s; %u passed, %u failed, %u skipped, %u errors</span></td>",
                c->display ? "on" : "off", c->res.counts[JUNIT_PASSED], c->res.counts[JUNIT_FAILED],
                c->res.counts[JUNIT_SKIPPED], c->res.counts[JUNIT_ERROR]);
}

static const char *vgpu_of(const struct e2e_cell *c)
{
        return c->vgpu_display ? c->vgpu_display : "unknown";
}

static void write_grid(FILE *f, const struct e2e_cell *cells, size_t n)
{
        static const char *const modes[] = {"dmabuf", "region", "none", "unknown"};
        _cleanup_strv_free_ char **providers = NULL;
        bool used[ELEMENTSOF(modes)] = {false};

        for (size_t i = 0; i < n; i++) {
                if (!strv_contains(providers, cells[i].provider))
                        strv_extend(&providers, cells[i].provider);
                for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                        used[m] = used[m] || streq(vgpu_of(&cells[i]), modes[m]);
        }
        fputs("<h2>Matrix</h2>\n<table id=\"grid\">\n<thead><tr><th>Provider</th>", f);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++)
                if (used[m])
                        fprintf(f, "<th data-vgpu=\"%s\">%s fake vGPU</th>", modes[m], modes[m]);
        fputs("</tr></thead>\n<tbody>\n", f);
        for (size_t p = 0; providers && providers[p]; p++) {
                fputs("<tr><th>", f);
                esc(f, providers[p]);
                fputs("</th>", f);
                for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
                        bool any = false;

                        if (!used[m])
                                continue;
                        /* Several cells may share a slot (same provider,
                         * other config); one <td> each keeps them apart. */
                        for (size_t i = 0; i < n; i++)
                                if (streq(cells[i].provider, providers[p]) &&
                                    streq(vgpu_of(&cells[i]), modes[m])) {
                                        grid_cell(f, &cells[i]);
                                        any = true;
                                }
                        if (!any)
                                fputs("<td class=\"missing\" data-outcome=\"none\">not run</td>",
                                      f);
                }
                fputs("</tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
}

static void cells_row(FILE *f, const struct e2e_cell *c, const char *base)
{
        _cleanup_free_ char *verdict = report_cell_verdict(c);
        const char *const text[] = {c->name, c->provider, c->kubevirt_ref ? c->kubevirt_ref : "?",
                                    vgpu_of(c)};

        fputs("<tr data-cell=\"", f);
        esc(f, c->name);
        fputs("\">", f);
        for (size_t i = 0; i < ELEMENTSOF(text); i++) {
                fputs("<td>", f);
                esc(f, text[i]);
                fputs("</td>", f);
        }
        fprintf(f, "<td>%s</td><td class=\"%s\">%s</td><td>", c->display ? "on" : "off",
                report_cell_class(c), e2e_outcome_name(c->outcome));
        esc(f, c->as_expected ? "as expected" : verdict);
        /* The counts in junit_status order: the table's column order. */
        for (int s = 0; s < _JUNIT_STATUS_MAX; s++)
                fprintf(f, "</td><td class=\"num\">%u", c->res.counts[s]);
        fprintf(f, "</td><td class=\"num\">%.0fs</td><td>", c->duration);
        artifact_link(f, c, RUN_ARTIFACTS_DIR, "artifacts", base);
        artifact_link(f, c, RUN_LOG_FILE, "log", base);
        artifact_link(f, c, RUN_COLLECTED_DIR, "collected", base);
        fputs("</td></tr>\n", f);
}

static void write_cells(FILE *f, const struct e2e_cell *cells, size_t n, const char *base)
{
        fputs("<h2>Cells</h2>\n<table id=\"cells\">\n<thead><tr><th>Cell</th><th>Provider</th>"
              "<th>KubeVirt</th><th>Fake vGPU</th><th>Display</th><th>Outcome</th>"
              "<th>Verdict</th><th>Passed</th><th>Failed</th><th>Skipped</th><th>Errors</th>"
              "<th>Not selected</th><th>Duration</th><th>Artifacts</th></tr></thead>\n<tbody>\n",
              f);
        for (size_t i = 0; i < n; i++)
                cells_row(f, &cells[i], base);
        fputs("</tbody></table>\n", f);
}

static const struct junit_case *find_case(const struct e2e_cell *c, const char *name)
{
        for (size_t k = 0; k < c->res.n_cases; k++)
                if (streq(c->res.cases[k].name, name))
                        return &c->res.cases[k];
        return NULL;
}

static void write_tests(FILE *f, const struct e2e_cell *cells, size_t n)
{
        _cleanup_strv_free_ char **names = NULL;

        /* Specs that ran somewhere, in first-seen order across cells. */
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < cells[i].res.n_cases; k++)
                        if (cells[i].res.cases[k].outcome != JUNIT_NOT_SELECTED &&
                            !strv_contains(names, cells[i].res.cases[k].name))
                                strv_extend(&names, cells[i].res.cases[k].name);
        fputs("<h2>Specs</h2>\n<table id=\"tests\">\n<thead><tr><th>Spec</th>", f);
        for (size_t i = 0; i < n; i++) {
                fputs("<th>", f);
                esc(f, cells[i].name);
                fputs("</th>", f);
        }
        fputs("</tr></thead>\n<tbody>\n", f);
        for (size_t t = 0; names && names[t]; t++) {
                fputs("<tr><td class=\"test\">", f);
                esc(f, names[t]);
                fputs("</td>", f);
                for (size_t i = 0; i < n; i++) {
                        const struct junit_case *tc = find_case(&cells[i], names[t]);
                        if (!tc) {
                                fputs("<td class=\"missing\" data-status=\"none\">-</td>", f);
                                continue;
                        }
                        fprintf(f, "<td class=\"%s\" data-status=\"%s\" title=\"",
                                case_class(tc->outcome), tc->status);
                        esc(f, tc->message ? tc->message : tc->status);
                        fprintf(f, "\">%s</td>", tc->status);
                }
                fputs("</tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
}

static void write_failures(FILE *f, const struct e2e_cell *cells, size_t n)
{
        bool header = false;

        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < cells[i].res.n_cases; k++) {
                        const struct junit_case *tc = &cells[i].res.cases[k];
                        if (tc->outcome != JUNIT_FAILED && tc->outcome != JUNIT_ERROR)
                                continue;
                        if (!header)
                                fputs("<h2>Failures</h2>\n", f);
                        header = true;
                        fprintf(f, "<details class=\"failure\" data-expected=\"%s\"><summary><b>",
                                streq(report_cell_class(&cells[i]), "xfail") ? "true" : "false");
                        esc(f, cells[i].name);
                        fputs(streq(report_cell_class(&cells[i]), "xfail") ? "</b> (expected): "
                                                                           : "</b>: ",
                              f);
                        esc(f, tc->name);
                        fputs("</summary>\n<pre>", f);
                        esc(f, tc->message);
                        if (tc->location) {
                                fputs("\n\nat ", f);
                                esc(f, tc->location);
                        }
                        fputs("</pre></details>\n", f);
                }
        }
        header = false;
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; cells[i].errors && cells[i].errors[k]; k++) {
                        if (!header)
                                fputs("<h2>Problems</h2>\n<ul id=\"problems\">\n", f);
                        header = true;
                        fputs("<li>", f);
                        esc(f, cells[i].errors[k]);
                        fputs("</li>\n", f);
                }
        if (header)
                fputs("</ul>\n", f);
}

int report_html(FILE *f, const struct e2e_cell *cells, size_t n, const char *base)
{
        unsigned passed = 0, expected = 0;

        for (size_t i = 0; i < n; i++) {
                passed += cells[i].outcome == E2E_PASSED;
                expected += cells[i].as_expected;
        }
        fprintf(f,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                "<title>vgpuenv e2e report</title>\n<style>%s</style></head>\n<body>\n",
                css);
        fprintf(f,
                "<h1>MediatedDevices with the vGPU display: Kind vs VM nodes</h1>\n"
                "<p id=\"summary\">%zu cell%s, %u passed, %u as expected.</p>\n",
                n, n == 1 ? "" : "s", passed, expected);
        write_grid(f, cells, n);
        write_cells(f, cells, n, base);
        write_tests(f, cells, n);
        write_failures(f, cells, n);
        fputs("</body></html>\n", f);
        return ferror(f) ? -EIO : 0;
}
