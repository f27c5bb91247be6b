/* Prometheus counters for mesa-injector: requests by route and outcome,
 * patches emitted, and a request latency histogram. Lock-free (C11
 * atomics) because every worker thread updates them on each request. */
#pragma once

#include <stdio.h>

enum metric_route {
        ROUTE_PODS = 0,
        ROUTE_VMIS,
        ROUTE_HEALTHZ,
        ROUTE_READYZ,
        ROUTE_METRICS,
        ROUTE_OTHER,
        _ROUTE_MAX
};
enum metric_outcome {
        OUTCOME_PATCHED = 0,
        OUTCOME_UNCHANGED,
        OUTCOME_SKIPPED,
        OUTCOME_CONFLICT,
        OUTCOME_INVALID,
        OUTCOME_BAD_REQUEST,
        OUTCOME_TOO_LARGE,
        OUTCOME_OK,
        OUTCOME_NOT_FOUND,
        OUTCOME_METHOD,
        OUTCOME_MEDIA_TYPE,
        OUTCOME_TIMEOUT,
        OUTCOME_ERROR,
        _OUTCOME_MAX
};

const char *metric_route_name(enum metric_route r);
const char *metric_outcome_name(enum metric_outcome o);

void metrics_request(enum metric_route r, enum metric_outcome o, double seconds);
void metrics_patch_ops(unsigned n);
void metrics_cert_reload(int ok);
/* Prometheus text exposition format 0.0.4; caller frees. */
char *metrics_render(void);
