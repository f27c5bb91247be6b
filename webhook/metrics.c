/* Prometheus counters for mesa-injector (see metrics.h). */
#include "webhook/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "webhook/config.h"

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Process-wide by nature: one registry per process, like any Prometheus
 * client library. */
static struct {
        atomic_ullong requests[_ROUTE_MAX][_OUTCOME_MAX];
        atomic_ullong patches, patch_ops;
        atomic_ullong bucket[_ROUTE_MAX][N_BUCKETS + 1];
        atomic_ullong sum_ns[_ROUTE_MAX];
        atomic_ullong count[_ROUTE_MAX];
        atomic_ullong cert_reloads[2];
        atomic_ullong refused[_REFUSED_MAX], cut[_CUT_MAX];
} m;

const char *metric_route_name(enum metric_route r)
{
        static const char *const n[] = {"/mutate-pods", "/mutate-vmis", "/healthz",
                                        "/readyz",      "/metrics",     "other"};
        return r < _ROUTE_MAX ? n[r] : "other";
}

const char *metric_outcome_name(enum metric_outcome o)
{
        static const char *const n[] = {"patched",
                                        "unchanged",
                                        "skipped",
                                        "conflict",
                                        "invalid",
                                        "bad_request",
                                        "too_large",
                                        "ok",
                                        "not_found",
                                        "method_not_allowed",
                                        "unsupported_media_type",
                                        "timeout",
                                        "error"};
        return o < _OUTCOME_MAX ? n[o] : "error";
}

void metrics_request(enum metric_route r, enum metric_outcome o, double seconds)
{
        if (r >= _ROUTE_MAX)
                r = ROUTE_OTHER;
        if (o >= _OUTCOME_MAX)
                o = OUTCOME_ERROR;
        atomic_fetch_add_explicit(&m.requests[r][o], 1, memory_order_relaxed);
        size_t b = 0;
        while (b < N_BUCKETS && seconds > buckets[b])
                b++;
        atomic_fetch_add_explicit(&m.bucket[r][b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m.sum_ns[r], (unsigned long long)(seconds * 1e9),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&m.count[r], 1, memory_order_relaxed);
}

void metrics_patch_ops(unsigned n)
{
        atomic_fetch_add_explicit(&m.patches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m.patch_ops, n, memory_order_relaxed);
}

void metrics_cert_reload(int ok)
{
        atomic_fetch_add_explicit(&m.cert_reloads[ok ? 1 : 0], 1, memory_order_relaxed);
}

void metrics_connection_refused(enum metric_refusal why)
{
        if (why < _REFUSED_MAX)
                atomic_fetch_add_explicit(&m.refused[why], 1, memory_order_relaxed);
}

void metrics_connection_cut(enum metric_cut why)
{
        if (why < _CUT_MAX)
                atomic_fetch_add_explicit(&m.cut[why], 1, memory_order_relaxed);
}

static void render_connections(FILE *f, const struct metric_gauges *g)
{
        static const char *const refused[] = {"per_source", "limit"};
        static const char *const cut[] = {"handshake_timeout", "idle_timeout",
                                          "request_timeout",   "evicted",
                                          "buffer_budget",     "source_buffer_budget"};
        fputs("# HELP mesa_injector_connections_refused_total Connections closed at accept, "
              "by the limit they exceeded.\n"
              "# TYPE mesa_injector_connections_refused_total counter\n",
              f);
        for (size_t i = 0; i < _REFUSED_MAX; i++)
                fprintf(f, "mesa_injector_connections_refused_total{reason=\"%s\"} %llu\n",
                        refused[i], atomic_load(&m.refused[i]));
        fputs("# HELP mesa_injector_connections_cut_total Connections the server closed: "
              "deadlines passed, evicted for a source holding fewer, request bodies over "
              "budget.\n"
              "# TYPE mesa_injector_connections_cut_total counter\n",
              f);
        for (size_t i = 0; i < _CUT_MAX; i++)
                fprintf(f, "mesa_injector_connections_cut_total{reason=\"%s\"} %llu\n", cut[i],
                        atomic_load(&m.cut[i]));
        if (!g)
                return;
        fprintf(f,
                "# HELP mesa_injector_connections Open connections.\n"
                "# TYPE mesa_injector_connections gauge\n"
                "mesa_injector_connections %u\n"
                "# HELP mesa_injector_connection_sources Source addresses with open "
                "connections.\n"
                "# TYPE mesa_injector_connection_sources gauge\n"
                "mesa_injector_connection_sources %u\n"
                "# HELP mesa_injector_connections_largest_source Open connections of the source "
                "holding the most.\n"
                "# TYPE mesa_injector_connections_largest_source gauge\n"
                "mesa_injector_connections_largest_source %u\n"
                "# HELP mesa_injector_sources_filtered Sources at limits.connectionsPerSource "
                "whose new connections the kernel drops until they hold fewer.\n"
                "# TYPE mesa_injector_sources_filtered gauge\n"
                "mesa_injector_sources_filtered %u\n",
                g->connections, g->sources, g->largest_source, g->filtered);
        if (!g->config)
                return;
        /* From the schema, so a limit added there shows here too. */
        fputs("# HELP mesa_injector_limit The configured limits (limits.* in the config).\n"
              "# TYPE mesa_injector_limit gauge\n",
              f);
        for (const struct schema_field *s = injector_config_schema; s->key; s++) {
                if (s->type != SCHEMA_SECTION || strcmp(s->key, "limits") != 0)
                        continue;
                for (const struct schema_field *l = s->children; l->key; l++)
                        if (l->type == SCHEMA_UINT)
                                fprintf(f, "mesa_injector_limit{limit=\"%s\"} %u\n", l->key,
                                        *(const unsigned *)((const char *)g->config + s->offset +
                                                            l->offset));
        }
}

char *metrics_render(const struct metric_gauges *g)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fputs("# HELP mesa_injector_requests_total HTTP requests by route and outcome.\n"
              "# TYPE mesa_injector_requests_total counter\n",
              f);
        for (int r = 0; r < _ROUTE_MAX; r++)
                for (int o = 0; o < _OUTCOME_MAX; o++) {
                        unsigned long long v = atomic_load(&m.requests[r][o]);
                        if (v)
                                fprintf(f,
                                        "mesa_injector_requests_total{route=\"%s\",outcome=\"%s\"} "
                                        "%llu\n",
                                        metric_route_name(r), metric_outcome_name(o), v);
                }
        fprintf(f,
                "# HELP mesa_injector_patches_total AdmissionReview responses that carried a JSON "
                "patch.\n"
                "# TYPE mesa_injector_patches_total counter\n"
                "mesa_injector_patches_total %llu\n"
                "# HELP mesa_injector_patch_operations_total JSON patch operations emitted.\n"
                "# TYPE mesa_injector_patch_operations_total counter\n"
                "mesa_injector_patch_operations_total %llu\n"
                "# HELP mesa_injector_cert_reloads_total Certificate reloads by result.\n"
                "# TYPE mesa_injector_cert_reloads_total counter\n"
                "mesa_injector_cert_reloads_total{result=\"ok\"} %llu\n"
                "mesa_injector_cert_reloads_total{result=\"error\"} %llu\n"
                "# HELP mesa_injector_request_duration_seconds Time from first byte to response.\n"
                "# TYPE mesa_injector_request_duration_seconds histogram\n",
                atomic_load(&m.patches), atomic_load(&m.patch_ops), atomic_load(&m.cert_reloads[1]),
                atomic_load(&m.cert_reloads[0]));
        for (int r = 0; r < _ROUTE_MAX; r++) {
                unsigned long long count = atomic_load(&m.count[r]), cum = 0;
                if (!count && r != ROUTE_PODS && r != ROUTE_VMIS)
                        continue;
                for (size_t b = 0; b <= N_BUCKETS; b++) {
                        cum += atomic_load(&m.bucket[r][b]);
                        if (b < N_BUCKETS)
                                fprintf(f,
                                        "mesa_injector_request_duration_seconds_bucket{route=\"%"
                                        "s\",le=\"%g\"} %llu\n",
                                        metric_route_name(r), buckets[b], cum);
                        else
                                fprintf(f,
                                        "mesa_injector_request_duration_seconds_bucket{route=\"%"
                                        "s\",le=\"+Inf\"} %llu\n",
                                        metric_route_name(r), cum);
                }
                fprintf(f, "mesa_injector_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                        metric_route_name(r), (double)atomic_load(&m.sum_ns[r]) / 1e9);
                fprintf(f, "mesa_injector_request_duration_seconds_count{route=\"%s\"} %llu\n",
                        metric_route_name(r), count);
        }
        render_connections(f, g);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
