/* Parse ginkgo's console output into a progress count (see progress.h). */
#include "e2e/progress.h"

#include <stdio.h>
#include <string.h>

#define BULLET "\xe2\x80\xa2" /* U+2022, ginkgo's spec marker */

static bool has_bad_tag(const char *line)
{
        static const char *const tags[] = {"[FAILED]", "[PANICKED]", "[TIMEDOUT]", "[INTERRUPTED]",
                                           "[ABORTED]"};
        for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
                if (strstr(line, tags[i]))
                        return true;
        return false;
}

void ginkgo_progress_feed(struct ginkgo_progress *p, const char *line)
{
        const char *s;
        unsigned n, m, bullets = 0;

        if ((s = strstr(line, "Will run ")) && sscanf(s, "Will run %u of %u specs", &n, &m) == 2) {
                /* A new pass; the previous pass's count is already final. */
                p->total += n;
                p->passes++;
                p->pass_base = p->done;
                p->finished = false;
                return;
        }
        if ((s = strstr(line, "Ran ")) && sscanf(s, "Ran %u of %u Specs", &n, &m) == 2) {
                /* Authoritative for this pass, e.g. when -v output has no
                 * bullets. */
                if (p->done < p->pass_base + n)
                        p->done = p->pass_base + n;
                p->finished = true;
                return;
        }
        for (s = strstr(line, BULLET); s; s = strstr(s + 3, BULLET))
                bullets++;
        if (bullets == 0)
                return;
        p->done += bullets;
        /* A bad spec is printed alone on its line: "• [FAILED] [12.3 seconds]". */
        if (has_bad_tag(line))
                p->failed++;
        if (p->total > 0 && p->done > p->total)
                p->done = p->total;
}

void ginkgo_progress_format(const struct ginkgo_progress *p, double elapsed, char *buf, size_t size)
{
        unsigned secs = elapsed > 0 ? (unsigned)elapsed : 0;
        char el[32];

        if (secs >= 3600)
                snprintf(el, sizeof(el), "%u:%02u:%02u", secs / 3600, secs / 60 % 60, secs % 60);
        else
                snprintf(el, sizeof(el), "%02u:%02u", secs / 60, secs % 60);
        if (p->total > 0)
                snprintf(buf, size, "%u/%u specs, %u failed, %s elapsed", p->done, p->total,
                         p->failed, el);
        else if (p->done > 0)
                snprintf(buf, size, "%u specs, %u failed, %s elapsed", p->done, p->failed, el);
        else
                snprintf(buf, size, "waiting for specs, %s elapsed", el);
}
