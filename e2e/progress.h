/* Progress of a ginkgo v2 run, read from its console output line by line.
 *
 * Ginkgo prints "Will run N of M specs" before the first spec, one "•" per
 * finished spec ("• [FAILED]", "• [PANICKED]" ... for bad ones; several
 * "•" may share a line in succinct mode) and "Ran N of M Specs in X
 * seconds" at the end. KubeVirt's parallel mode runs two ginkgo passes
 * (parallel, then [Serial]), so totals add up across "Will run" lines. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct ginkgo_progress {
        unsigned total;     /* specs announced by "Will run N of M specs" */
        unsigned done;      /* specs finished ("•" markers) */
        unsigned failed;    /* of which failed/panicked/timed out/interrupted */
        unsigned passes;    /* ginkgo passes seen ("Will run" lines) */
        unsigned pass_base; /* done when the current pass started */
        bool finished;      /* the last pass printed "Ran N of M Specs" */
};

void ginkgo_progress_feed(struct ginkgo_progress *p, const char *line);

/* "3/5 specs, 1 failed, 00:42 elapsed" (or "3 specs" when no total). */
void ginkgo_progress_format(const struct ginkgo_progress *p, double elapsed, char *buf,
                            size_t size);
