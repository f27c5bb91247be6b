/* The verdict of `vgpuenv verify-display`: one row per check with what was
 * expected, what libvirt/QEMU/the node actually said and how long it took,
 * printed as a table or as JSON for scripts (tests/integration/
 * display_chain.sh asserts the JSON). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "e2e/display/display.h"

struct display_check *report_add(struct display_report *r, const char *id, const char *check,
                                 const char *expected, const char *meaning)
{
        struct display_check *n = realloc(r->checks, (r->n_checks + 1) * sizeof(*n));
        struct display_check *c;

        if (!n)
                return NULL;
        r->checks = n;
        c = &n[r->n_checks];
        *c = (struct display_check){.id = strdup(id),
                                    .check = strdup(check),
                                    .expected = strdup(expected),
                                    .meaning = strdup(meaning)};
        if (!c->id || !c->check || !c->expected || !c->meaning) {
                free(c->id);
                free(c->check);
                free(c->expected);
                free(c->meaning);
                return NULL;
        }
        r->n_checks++;
        return c;
}

/* A check's outcome: passed, failed, or not applicable (na: neither). */
static void set_outcome(struct display_check *c, bool ok, bool na, double seconds, const char *fmt,
                        va_list ap)
{
        char *s = strdup_vprintf(fmt, ap);

        free(c->observed);
        c->observed = s;
        c->ok = ok;
        c->na = na;
        c->ran = true;
        c->seconds = seconds;
}

void report_set_observed(struct display_check *c, bool ok, double seconds, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        set_outcome(c, ok, false, seconds, fmt, ap);
        va_end(ap);
}

void report_set_na(struct display_check *c, double seconds, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        set_outcome(c, false, true, seconds, fmt, ap);
        va_end(ap);
}

void report_step(struct display_report *r, const char *step, double seconds)
{
        if (!r->steps)
                r->steps = cJSON_CreateObject();
        if (r->steps)
                cJSON_AddNumberToObject(r->steps, step, (double)(long)(seconds * 10 + 0.5) / 10);
}

bool report_ok(const struct display_report *r)
{
        if (r->n_checks == 0)
                return false;
        for (size_t i = 0; i < r->n_checks; i++)
                if (!r->checks[i].ran || (!r->checks[i].ok && !r->checks[i].na))
                        return false;
        return true;
}

/* Cut a cell to width (observations can be long QEMU lines). */
static void cell(FILE *out, const char *s, int width)
{
        int len = (int)strlen(s);

        if (len <= width)
                fprintf(out, "%-*s", width, s);
        else
                fprintf(out, "%.*s...", width - 3, s);
}

void report_print_table(const struct display_report *r, FILE *out)
{
        fprintf(out, "display chain on %s (kernel %s), mdev %s/%s %s%s%s%s\n\n",
                r->node ? r->node : "?", r->kernel ? r->kernel : "?",
                r->mdev_parent ? r->mdev_parent : "-", r->mdev_type ? r->mdev_type : "-",
                r->mdev_uuid ? r->mdev_uuid : "", r->mdev_display ? ", display " : "",
                r->mdev_display ? r->mdev_display : "", r->mdev_display ? " (fake T4)" : "");
        fprintf(out, "%-4s  %-34s  %-50s  %-60s  %6s\n", "", "check", "expected", "observed",
                "time");
        for (size_t i = 0; i < r->n_checks; i++) {
                const struct display_check *c = &r->checks[i];
                char t[16];
                fprintf(out, "%-4s  ", !c->ran ? "SKIP" : c->na ? "N/A" : c->ok ? "PASS" : "FAIL");
                cell(out, c->check, 34);
                fputs("  ", out);
                cell(out, c->expected, 50);
                fputs("  ", out);
                cell(out, c->ran ? (c->observed ? c->observed : "") : "(not run)", 60);
                snprintf(t, sizeof(t), "%.1fs", c->seconds);
                fprintf(out, "  %6s\n", c->ran ? t : "-");
        }
        fputs("\n", out);
        for (size_t i = 0; i < r->n_checks; i++) {
                const struct display_check *c = &r->checks[i];
                if (!c->ran)
                        continue;
                fprintf(out, "%s %s: %s\n", c->ok ? "*" : c->na ? "-" : "!", c->check, c->meaning);
                /* A cut observation is printed whole below the table. */
                if (c->observed && strlen(c->observed) > 60)
                        fprintf(out, "    observed: %s\n", c->observed);
        }
        fprintf(out, "\nverdict: %s\n", report_ok(r) ? "PASS" : "FAIL");
}

cJSON *report_json(const struct display_report *r)
{
        cJSON *o = cJSON_CreateObject(), *a;

        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "node", r->node ? r->node : "");
        cJSON_AddStringToObject(o, "kernel", r->kernel ? r->kernel : "");
        cJSON *m = cJSON_AddObjectToObject(o, "mdev");
        if (m) {
                cJSON_AddStringToObject(m, "parent", r->mdev_parent ? r->mdev_parent : "");
                cJSON_AddStringToObject(m, "type", r->mdev_type ? r->mdev_type : "");
                cJSON_AddStringToObject(m, "uuid", r->mdev_uuid ? r->mdev_uuid : "");
                if (r->mdev_display)
                        cJSON_AddStringToObject(m, "display", r->mdev_display);
        }
        a = cJSON_AddArrayToObject(o, "checks");
        for (size_t i = 0; a && i < r->n_checks; i++) {
                const struct display_check *c = &r->checks[i];
                cJSON *e = cJSON_CreateObject();
                if (!e)
                        break;
                cJSON_AddStringToObject(e, "id", c->id);
                cJSON_AddStringToObject(e, "check", c->check);
                cJSON_AddStringToObject(e, "expected", c->expected);
                if (c->ran)
                        cJSON_AddStringToObject(e, "observed", c->observed ? c->observed : "");
                else
                        cJSON_AddNullToObject(e, "observed");
                cJSON_AddStringToObject(e, "result",
                                        !c->ran ? "skipped"
                                        : c->na ? "n/a"
                                        : c->ok ? "pass"
                                                : "fail");
                cJSON_AddNumberToObject(e, "seconds", (double)(long)(c->seconds * 10 + 0.5) / 10);
                cJSON_AddStringToObject(e, "meaning", c->meaning);
                cJSON_AddItemToArray(a, e);
        }
        if (r->steps)
                cJSON_AddItemToObject(o, "steps", cJSON_Duplicate(r->steps, true));
        cJSON_AddBoolToObject(o, "ok", report_ok(r));
        return o;
}

void report_done(struct display_report *r)
{
        for (size_t i = 0; i < r->n_checks; i++) {
                free(r->checks[i].id);
                free(r->checks[i].check);
                free(r->checks[i].expected);
                free(r->checks[i].observed);
                free(r->checks[i].meaning);
        }
        free(r->checks);
        free(r->node);
        free(r->kernel);
        free(r->mdev_parent);
        free(r->mdev_type);
        free(r->mdev_uuid);
        free(r->mdev_display);
        cJSON_Delete(r->steps);
        *r = (struct display_report){0};
}
