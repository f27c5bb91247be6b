/* Prometheus counters for mesa-injector: requests by route and outcome,
 * patches emitted, a request latency histogram, connections refused and
 * cut, and the gauges the server passes in (open connections, the limits).
 * Lock-free (C11 atomics) because every worker thread updates them on each
 * request. */
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

/* Connections refused at accept, and cut by the server (conn_guard.h). */
enum metric_refusal { REFUSED_PER_SOURCE = 0, REFUSED_LIMIT, _REFUSED_MAX };
enum metric_cut {
        CUT_HANDSHAKE = 0,
        CUT_IDLE,
        CUT_REQUEST,
        CUT_EVICTED,
        CUT_BUFFERED,        /* its body would exceed limits.maxBufferedBytes */
        CUT_SOURCE_BUFFERED, /* ... or its source's limits.bufferedBytesPerSource */
        _CUT_MAX
};

/* What /metrics shows besides the counters. */
struct injector_config;
struct metric_gauges {
        unsigned connections, sources, largest_source, filtered;
        /* Its limits section, every integer key as mesa_injector_limit{limit=KEY}. */
        const struct injector_config *config;
};

const char *metric_route_name(enum metric_route r);
const char *metric_outcome_name(enum metric_outcome o);

void metrics_request(enum metric_route r, enum metric_outcome o, double seconds);
void metrics_patch_ops(unsigned n);
void metrics_cert_reload(int ok);
void metrics_connection_refused(enum metric_refusal why);
void metrics_connection_cut(enum metric_cut why);
/* Prometheus text exposition format 0.0.4; caller frees. g may be NULL. */
char *metrics_render(const struct metric_gauges *g);
