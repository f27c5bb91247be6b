/* Expected results of e2e runs (see verdict.h). */
#include "e2e/verdict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/util.h"
#include "e2e/report.h"

const char *const vgpu_display_names[] = {
    [VGPU_DISPLAY_DMABUF] = "dmabuf",
    [VGPU_DISPLAY_REGION] = "region",
    [VGPU_DISPLAY_NONE] = "none",
    NULL,
};

int vgpu_display_from_name(const char *s)
{
        for (int i = 0; s && vgpu_display_names[i]; i++)
                if (streq(s, vgpu_display_names[i]))
                        return i;
        return -EINVAL;
}

const char *vgpu_display_name(int mode)
{
        return mode >= 0 && mode <= VGPU_DISPLAY_NONE ? vgpu_display_names[mode] : "unknown";
}

void e2e_expect_done(struct e2e_expect *x)
{
        free(x->message);
        *x = (struct e2e_expect){0};
}

/* The failure shows the message in what it says, its text, or the output
 * KubeVirt's reporter adds (the warning events of the spec's last seconds). */
static bool case_shows(const struct junit_case *c, const char *message)
{
        return (c->message && strstr(c->message, message)) ||
               (c->detail && strstr(c->detail, message)) ||
               (c->output && strstr(c->output, message));
}

static bool set_why(char **ret_why, char *why)
{
        if (ret_why)
                *ret_why = why;
        else
                free(why);
        return false;
}

bool e2e_expect_met(const struct e2e_expect *x, int outcome, const struct junit_result *res,
                    char **ret_why)
{
        unsigned bad = 0;

        if (ret_why)
                *ret_why = NULL;
        if (!x->failure)
                return outcome == E2E_PASSED ||
                       set_why(ret_why,
                               strdup_printf("expected passed, got %s", e2e_outcome_name(outcome)));
        if (outcome != E2E_FAILED)
                return set_why(ret_why,
                               strdup_printf("expected failed%s%s%s, got %s",
                                             x->message ? " with \"" : "",
                                             x->message ? x->message : "", x->message ? "\"" : "",
                                             e2e_outcome_name(outcome)));
        for (size_t i = 0; res && i < res->n_cases; i++) {
                const struct junit_case *c = &res->cases[i];

                if (c->outcome != JUNIT_FAILED && c->outcome != JUNIT_ERROR)
                        continue;
                bad++;
                if (x->message && !case_shows(c, x->message))
                        return set_why(ret_why, strdup_printf("expected every failure to show "
                                                              "\"%s\"; \"%s\" does not",
                                                              x->message, c->name));
        }
        return bad > 0 || set_why(ret_why, strdup("expected failed, but no spec failed"));
}
