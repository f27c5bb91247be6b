/* mesa-injector's HTTPS server on libmicrohttpd (see server.h). */
#include "webhook/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/admission.h"
#include "webhook/admission_log.h"
#include "webhook/conn_guard.h"
#include "webhook/metrics.h"
#include "webhook/program.h"
#include "webhook/source_filter.h"
#include "webhook/tls_store.h"
#include "webhook/tls_transport.h"

/* Only TLS 1.3 and 1.2: what the API server speaks, nothing older. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

/* One libmicrohttpd daemon per thread, each with its own SO_REUSEPORT
 * listening socket: the kernel spreads connections over them by hash. A
 * thread pool sharing one socket lets whichever thread wakes first accept a
 * burst of connections, and a client that opens its connections at once
 * (the API server, a load test) often lands on one thread entirely. */
#define MAX_LISTENERS 64

struct server {
        const struct injector_config *config;
        struct tls_store *tls;
        atomic_int inflight;
        atomic_bool draining;
        /* Every open connection, across all listeners: limits, deadlines. */
        struct conn_guard *guard;
        pthread_t reaper;
        atomic_bool stop_reaper;
        struct admission_log *log;
        /* The listening sockets, for the filter of refused sources (the
         * reaper sets it; SIGTERM closes them): under listen_lock. */
        pthread_mutex_t listen_lock;
        int listen_fds[MAX_LISTENERS];
        unsigned n_listen;
};

struct request {
        enum metric_route route;
        double start;
        char *buf;
        size_t len, cap;
        bool too_large;
        bool answered;
};

static enum metric_route route_of(const char *url)
{
        if (streq(url, "/mutate-pods"))
                return ROUTE_PODS;
        if (streq(url, "/mutate-vmis"))
                return ROUTE_VMIS;
        if (streq(url, "/healthz"))
                return ROUTE_HEALTHZ;
        if (streq(url, "/readyz"))
                return ROUTE_READYZ;
        if (streq(url, "/metrics"))
                return ROUTE_METRICS;
        return ROUTE_OTHER;
}

/* One structured line per admission, handed to the batching writer. */
static void log_admission(struct server *srv, const struct request *rq,
                          const struct admission_result *res, double seconds)
{
        char line[ADMISSION_LOG_LINE_MAX];
        size_t n = admission_log_format(line, rq->route, res, seconds);
        admission_log_append(srv->log, line, n);
}

static struct conn_track *track_of(struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

/* body: len bytes, taken over; encoding: its Content-Encoding or NULL. */
static enum MHD_Result respond_bytes(struct MHD_Connection *conn, struct server *srv,
                                     struct request *rq, unsigned status, const char *content_type,
                                     char *body, size_t len, const char *encoding,
                                     enum metric_outcome outcome, const char *allow)
{
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(body ? len : 0, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        if (encoding)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
        if (rq->route == ROUTE_PODS || rq->route == ROUTE_VMIS)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
                                        MHD_HTTP_HEADER_ACCEPT_ENCODING);
        if (allow)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        /* While draining, move keep-alive clients to another replica. */
        if (atomic_load(&srv->draining))
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        struct conn_track *t = track_of(conn);
        if (t) {
                atomic_store(&t->received, true);
                tls_transport_answer_begins(&t->tt, body ? len : 0);
        }
        enum MHD_Result r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        rq->answered = true;
        metrics_request(rq->route, outcome, now_seconds() - rq->start);
        return r;
}

/* body: a NUL-terminated string, taken over. */
static enum MHD_Result respond(struct MHD_Connection *conn, struct server *srv, struct request *rq,
                               unsigned status, const char *content_type, char *body,
                               enum metric_outcome outcome, const char *allow)
{
        return respond_bytes(conn, srv, rq, status, content_type, body, body ? strlen(body) : 0,
                             NULL, outcome, allow);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, struct server *srv,
                                     struct request *rq, unsigned status, const char *msg,
                                     enum metric_outcome outcome, const char *allow)
{
        struct admission_result res = {
            .http_status = status, .outcome = outcome, .reason = (char *)msg};
        if (rq->route == ROUTE_PODS || rq->route == ROUTE_VMIS)
                log_admission(srv, rq, &res, now_seconds() - rq->start);
        return respond(conn, srv, rq, status, "application/json", json_error_body(msg), outcome,
                       allow);
}

/* Accept-Encoding is a comma list of codings with optional ";q=" weights;
 * "identity" and unknown codings do not matter here. An explicit gzip entry
 * wins over "*". */
bool accepts_gzip(const char *accept_encoding)
{
        int gzip = -1, star = -1; /* -1 absent, else whether q > 0 */
        const char *s = accept_encoding;
        while (s && *s) {
                size_t n = strcspn(s, ",");
                const char *end = s + n;
                while (s < end && (*s == ' ' || *s == '\t'))
                        s++;
                size_t name = strcspn(s, ";, \t");
                if (name > (size_t)(end - s))
                        name = (size_t)(end - s);
                bool q_positive = true;
                const char *q = memchr(s, ';', (size_t)(end - s));
                while (q && q < end) {
                        q++;
                        while (q < end && (*q == ' ' || *q == '\t'))
                                q++;
                        if (end - q >= 2 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                                /* q=0, q=0.0, q=0.000: all zero */
                                const char *v = q + 2;
                                bool zero = v < end && *v == '0';
                                for (v++; zero && v < end && *v != ';' && *v != ' ' && *v != '\t';
                                     v++)
                                        zero = *v == '.' || *v == '0';
                                q_positive = !zero;
                        }
                        q = memchr(q, ';', (size_t)(end - q));
                }
                if ((name == 4 && strncasecmp(s, "gzip", 4) == 0) ||
                    (name == 6 && strncasecmp(s, "x-gzip", 6) == 0))
                        gzip = q_positive;
                else if (name == 1 && *s == '*')
                        star = q_positive;
                s = *end ? end + 1 : end;
        }
        return gzip >= 0 ? gzip == 1 : star == 1;
}

static bool json_content_type(const char *ct)
{
        if (!ct)
                return false;
        size_t n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
                n--;
        return n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0;
}

/* Everything decided from the request line and headers. Returns -1 to go
 * on to the body, else the result of queueing the answer. */
static int answer_head(struct MHD_Connection *conn, struct server *srv, struct request *rq,
                       const char *method)
{
        const struct injector_config *c = srv->config;
        bool is_get = streq(method, "GET") || streq(method, "HEAD");

        switch (rq->route) {
        case ROUTE_OTHER:
                return respond_error(conn, srv, rq, 404, "not found", OUTCOME_NOT_FOUND, NULL);
        case ROUTE_HEALTHZ:
        case ROUTE_READYZ:
        case ROUTE_METRICS:
                if (!is_get)
                        return respond_error(conn, srv, rq, 405, "method not allowed: use GET",
                                             OUTCOME_METHOD, "GET, HEAD");
                if (rq->route == ROUTE_METRICS) {
                        struct conn_guard_stats st;
                        conn_guard_stats(srv->guard, &st);
                        struct metric_gauges g = {.connections = st.open,
                                                  .sources = st.sources,
                                                  .largest_source = st.largest_source,
                                                  .filtered = st.filtered,
                                                  .config = c};
                        return respond(conn, srv, rq, 200, "text/plain; version=0.0.4",
                                       metrics_render(&g), OUTCOME_OK, NULL);
                }
                if (rq->route == ROUTE_READYZ && atomic_load(&srv->draining))
                        return respond(conn, srv, rq, 503, "text/plain", strdup("shutting down\n"),
                                       OUTCOME_ERROR, NULL);
                return respond(conn, srv, rq, 200, "text/plain", strdup("ok\n"), OUTCOME_OK, NULL);
        default:
                break;
        }
        if (!streq(method, "POST"))
                return respond_error(conn, srv, rq, 405, "method not allowed: use POST",
                                     OUTCOME_METHOD, "POST");
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!json_content_type(ct))
                return respond_error(
                    conn, srv, rq, 415,
                    "unsupported content type: AdmissionReview must be application/json",
                    OUTCOME_MEDIA_TYPE, NULL);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long len = 0;
        if (cl && parse_uint64(cl, 0, ~0ULL, &len) == 0 && len > c->limits.max_body_bytes)
                return respond_error(conn, srv, rq, 413, "request body too large",
                                     OUTCOME_TOO_LARGE, NULL);
        return -1;
}

/* The first call for a request: its state, and the answer now to a body we
 * will refuse. */
static enum MHD_Result begin_request(struct MHD_Connection *conn, struct server *srv,
                                     const char *url, const char *method, void **con_cls)
{
        struct request *rq = calloc(1, sizeof(*rq));
        int h;
        if (!rq)
                return MHD_NO;
        rq->start = now_seconds();
        rq->route = route_of(url);
        *con_cls = rq;
        atomic_fetch_add(&srv->inflight, 1);

        /* A request with a body we will refuse is answered now, which
         * makes libmicrohttpd close the connection instead of reading
         * the body. Everything else is answered once the request is
         * complete: an answer queued earlier costs the keep-alive. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        bool has_body =
            (cl && !streq(cl, "0")) ||
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (has_body && (h = answer_head(conn, srv, rq, method)) >= 0)
                return (enum MHD_Result)h;
        return MHD_YES;
}

/* One chunk of the body into rq->buf, within the time and size limits and
 * the guard's buffer budget. */
static enum MHD_Result take_body(struct MHD_Connection *conn, struct server *srv,
                                 struct request *rq, const char *data, size_t n)
{
        const struct injector_config *c = srv->config;
        /* Slow clients: the whole body must arrive in time, whatever
         * the pace of the individual chunks. */
        if (now_seconds() - rq->start > c->limits.request_timeout_s) {
                log_warning("request body not received within %us; closing",
                            c->limits.request_timeout_s);
                return MHD_NO;
        }
        if (rq->too_large || rq->len + n > c->limits.max_body_bytes) {
                /* Chunked bodies have no Content-Length: stop keeping
                 * data and answer 413 once the client is done, or
                 * close when it goes on far past the limit. */
                rq->too_large = true;
                rq->len += n;
                free(rq->buf);
                conn_guard_buffer_give(srv->guard, track_of(conn), rq->cap);
                rq->buf = NULL;
                rq->cap = 0;
                return rq->len > 4ull * c->limits.max_body_bytes ? MHD_NO : MHD_YES;
        }
        if (rq->len + n > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 16384;
                while (cap < rq->len + n)
                        cap *= 2;
                /* Over the budget of all connections or of this
                 * source, the connection is closed (counted and
                 * logged by the guard); the API server's
                 * failurePolicy decides. */
                struct conn_track *t = track_of(conn);
                if (conn_guard_buffer_take(srv->guard, t, cap - rq->cap) < 0)
                        return MHD_NO;
                char *b = realloc(rq->buf, cap);
                if (!b) {
                        conn_guard_buffer_give(srv->guard, t, cap - rq->cap);
                        return MHD_NO;
                }
                rq->buf = b;
                rq->cap = cap;
        }
        memcpy(rq->buf + rq->len, data, n);
        rq->len += n;
        return MHD_YES;
}

/* The whole body is in: the AdmissionReview's answer. */
static enum MHD_Result answer_review(struct MHD_Connection *conn, struct server *srv,
                                     struct request *rq)
{
        struct admission_result res;
        const char *ae =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
        int r = admission_handle(srv->config, rq->route == ROUTE_PODS ? ADMIT_PODS : ADMIT_VMIS,
                                 rq->buf ? rq->buf : "", rq->len,
                                 accepts_gzip(ae) ? ADMIT_ACCEPT_GZIP : 0, &res);
        double dt = now_seconds() - rq->start;
        if (r < 0) {
                admission_result_done(&res);
                return respond_error(conn, srv, rq, 500, "internal error", OUTCOME_ERROR, NULL);
        }
        log_admission(srv, rq, &res, dt);
        if (res.patch_ops)
                metrics_patch_ops(res.patch_ops);
        char *body = TAKE_PTR(res.body);
        enum MHD_Result ret =
            respond_bytes(conn, srv, rq, res.http_status, "application/json", body, res.body_len,
                          res.content_encoding, res.outcome, NULL);
        admission_result_done(&res);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct server *srv = cls;
        struct request *rq = *con_cls;
        int h;
        (void)version;

        if (!rq)
                return begin_request(conn, srv, url, method, con_cls);
        if (rq->answered)
                return MHD_YES;
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                return take_body(conn, srv, rq, upload_data, n);
        }
        if ((h = answer_head(conn, srv, rq, method)) >= 0)
                return (enum MHD_Result)h;
        if (rq->too_large)
                return respond_error(conn, srv, rq, 413, "request body too large",
                                     OUTCOME_TOO_LARGE, NULL);
        return answer_review(conn, srv, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct server *srv = cls;
        struct request *rq = *con_cls;
        bool answered = rq && rq->answered;
        if (rq) {
                if (!rq->answered)
                        metrics_request(rq->route,
                                        toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
                                            ? OUTCOME_TIMEOUT
                                            : OUTCOME_ERROR,
                                        now_seconds() - rq->start);
                free(rq->buf);
                conn_guard_buffer_give(srv->guard, track_of(conn), rq->cap);
                free(rq);
                *con_cls = NULL;
                atomic_fetch_sub(&srv->inflight, 1);
        }

        struct conn_track *t = track_of(conn);
        if (t) {
                tls_transport_answer_done(&t->tt);
                /* The next request on this keep-alive connection starts its clock. */
                atomic_store(&t->phase_start, now_seconds());
                if (answered)
                        atomic_store(&t->served, true);
                tls_transport_phase_begins(&t->tt);
                atomic_store(&t->request_line, false);
                atomic_store(&t->received, false);
        }
}

/* libmicrohttpd's URI log callback: the request line has arrived, so from
 * now on the connection is not idle but sending a request (the deadline
 * becomes limits.requestTimeoutSeconds). NULL: *con_cls stays unset. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
        (void)cls;
        (void)uri;
        struct conn_track *t = track_of(conn);
        if (t)
                atomic_store(&t->request_line, true);
        return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        struct server *srv = cls;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                const union MHD_ConnectionInfo *ai =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                const union MHD_ConnectionInfo *si =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
                if (!ci)
                        return;
                /* Responses leave in more than one TLS record; without
                 * TCP_NODELAY, Nagle waits for the client's delayed ACK
                 * (40 ms) between them on keep-alive connections. */
                int one = 1;
                (void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                /* Inherited from the listener (see adopt_listener): an
                 * admitted connection closes gracefully. */
                struct linger graceful = {0, 0};
                (void)setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &graceful,
                                 sizeof(graceful));
                *socket_context = conn_guard_open(srv->guard, ai ? ai->client_addr : NULL,
                                                  ci->connect_fd, si ? si->tls_session : NULL);
                return;
        }
        struct conn_track *t = *socket_context;
        if (!t)
                return;
        /* Called before libmicrohttpd closes the socket: once unlinked, the
         * reaper can no longer touch a reused descriptor. */
        conn_guard_close(srv->guard, t);
        *socket_context = NULL;
}

/* Deadlines (conn_guard_reap): a tenth of a second is well inside the
 * shortest of them, and costs a walk of at most connectionLimit entries. */
static void *reaper_thread(void *arg)
{
        struct server *srv = arg;
        struct filter_addr addrs[SOURCE_FILTER_MAX];
        size_t n;

        while (!atomic_load(&srv->stop_reaper)) {
                usleep(100000);
                conn_guard_reap(srv->guard, now_seconds());
                if (!conn_guard_filter(srv->guard, addrs, &n))
                        continue;
                pthread_mutex_lock(&srv->listen_lock);
                for (unsigned i = 0; i < srv->n_listen; i++) {
                        int r = source_filter_attach(srv->listen_fds[i], addrs, n);
                        if (r < 0)
                                log_warning("cannot filter refused sources on the listener: %s",
                                            strerror(-r));
                }
                pthread_mutex_unlock(&srv->listen_lock);
        }
        return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        (void)cls;
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_debug("microhttpd: %s", buf);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
        _cleanup_free_ char *host = NULL;
        const char *port;

        if (listen[0] == '[') {
                const char *end = strchr(listen, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(listen + 1, (size_t)(end - listen - 1));
                port = end + 2;
        } else {
                const char *colon = strrchr(listen, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(listen, (size_t)(colon - listen));
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        unsigned long long p;
        if (parse_uint64(port, 1, 65535, &p) < 0)
                return -EINVAL;
        struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
                                 .ai_socktype = SOCK_STREAM},
                        *ai;
        if (getaddrinfo(*host ? host : NULL, port, &hints, &ai) != 0)
                return -EINVAL;
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        *len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

/* SO_REUSEPORT would also let a second mesa-injector of the same user join
 * this port and take half its connections without a word; a bind without
 * it first turns that, like any other listener, into "address in use".
 * SO_REUSEADDR on that probe: connections of a previous instance still in
 * TIME_WAIT must not stop a restart (Linux refuses it only a listener). */
static int address_free(const struct sockaddr_storage *ss, socklen_t len)
{
        int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        int r = bind(fd, (const struct sockaddr *)ss, len) < 0 ? -errno : 0;
        close(fd);
        return r;
}

static void stop_listeners(struct MHD_Daemon **daemons, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                MHD_stop_daemon(daemons[i]);
}

/* libmicrohttpd's accept policy callback, before any TLS work: the limits
 * of conn_guard.h, across all listeners. */
static enum MHD_Result admit_connection(void *cls, const struct sockaddr *addr, socklen_t len)
{
        struct server *srv = cls;
        return conn_guard_admit(srv->guard, addr, len) ? MHD_YES : MHD_NO;
}

/* A listening socket, once started: kept for the filter of refused sources
 * (source_filter.h), and given SO_LINGER 0. A connection refused at accept
 * is closed by libmicrohttpd right away, and with SO_LINGER 0 that close is
 * a reset: no FIN exchange and no TIME_WAIT entry for each of the
 * thousands a flood brings. Accepted sockets inherit the option from the
 * listener; on_connection turns it off for those admitted, before any byte
 * is read or written. */
static void adopt_listener(struct server *srv, struct MHD_Daemon *d)
{
        const union MHD_DaemonInfo *li = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
        struct linger reset = {1, 0};
        if (!li)
                return;
        (void)setsockopt(li->listen_fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        pthread_mutex_lock(&srv->listen_lock);
        if (srv->n_listen < ELEMENTSOF(srv->listen_fds))
                srv->listen_fds[srv->n_listen++] = li->listen_fd;
        pthread_mutex_unlock(&srv->listen_lock);
}

/* Returns how many started (all of limits.threads, or fewer on failure). */
static unsigned start_listeners(struct server *srv, const struct sockaddr_storage *ss,
                                struct MHD_Daemon **daemons)
{
        const struct injector_config *c = srv->config;
        unsigned n = c->limits.threads < MAX_LISTENERS ? c->limits.threads : MAX_LISTENERS;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG;
        if (ss->ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        unsigned backstop_s = (c->limits.connection_timeout_s > c->limits.request_timeout_s
                                   ? c->limits.connection_timeout_s
                                   : c->limits.request_timeout_s) +
                              1;
        struct MHD_OptionItem ops[] = {
            {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_store_retrieve},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
            {MHD_OPTION_SOCK_ADDR, 0, (void *)ss},
            /* The guard decides; libmicrohttpd's own limit, per listener,
             * only leaves room for connections being evicted. */
            {MHD_OPTION_CONNECTION_LIMIT, c->limits.connection_limit + CONN_GUARD_EVICTING_MAX,
             NULL},
            /* The guard closes idle and slow connections at their deadlines
             * and counts them; this, a second past the later of the two,
             * only ends a client that stopped reading its answer (there the
             * guard does not look), never one of the guard's first. */
            {MHD_OPTION_CONNECTION_TIMEOUT, backstop_s, NULL},
            {MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->limits.connection_memory_bytes, NULL},
            {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
            {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_line, srv},
            {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv},
            {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
            {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
            {MHD_OPTION_END, 0, NULL},
        };
        for (unsigned i = 0; i < n; i++) {
                daemons[i] = MHD_start_daemon(flags, 0, admit_connection, srv, on_request, srv,
                                              MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
                if (!daemons[i])
                        return i;
                adopt_listener(srv, daemons[i]);
        }
        return n;
}

/* SIGTERM/SIGINT came: stop accepting (the listening sockets close), wait
 * for every open connection, not only requests whose headers were parsed
 * (a client mid-way through sending counts too), up to
 * limits.shutdownGraceSeconds, then stop the reaper and the listeners. Idle
 * keep-alive connections end at the idle deadline, and answers now carry
 * "Connection: close". */
static void drain(struct server *srv, struct MHD_Daemon **daemons, unsigned n)
{
        const struct injector_config *c = srv->config;
        atomic_store(&srv->draining, true);
        pthread_mutex_lock(&srv->listen_lock);
        srv->n_listen = 0;
        for (unsigned i = 0; i < n; i++) {
                MHD_socket lfd = MHD_quiesce_daemon(daemons[i]);
                if (lfd != MHD_INVALID_SOCKET)
                        close(lfd);
        }
        pthread_mutex_unlock(&srv->listen_lock);
        double deadline = now_seconds() + c->limits.shutdown_grace_s;
        struct conn_guard_stats st;
        for (;;) {
                conn_guard_stats(srv->guard, &st);
                if (st.open == 0 || now_seconds() >= deadline)
                        break;
                usleep(10000);
        }
        int left = atomic_load(&srv->inflight);
        atomic_store(&srv->stop_reaper, true);
        pthread_join(srv->reaper, NULL);
        stop_listeners(daemons, n);
        if (st.open > 0)
                log_warning("shutdown: %u connection(s), %d request(s) still open after %us; "
                            "stopped anyway",
                            st.open, left, c->limits.shutdown_grace_s);
}

int server_run(const struct server_opts *o)
{
        const struct injector_config *c = o->config;
        struct server srv = {.config = c, .listen_lock = PTHREAD_MUTEX_INITIALIZER};
        struct sockaddr_storage ss;
        socklen_t sslen;
        sigset_t mask;
        struct MHD_Daemon *daemons[MAX_LISTENERS] = {};
        unsigned n = 0;
        int r;

        r = parse_listen(o->listen, &ss, &sslen);
        if (r < 0)
                return log_error_errno(r, "--listen %s: expected ADDR:PORT with a numeric address",
                                       o->listen);
        struct conn_guard_limits gl = {.connections = c->limits.connection_limit,
                                       .per_source = c->limits.connections_per_source,
                                       .handshake_s = c->limits.handshake_timeout_s,
                                       .idle_s = c->limits.connection_timeout_s,
                                       .request_s = c->limits.request_timeout_s,
                                       .buffered = c->limits.max_buffered_bytes,
                                       .buffered_per_source = c->limits.buffered_bytes_per_source};
        r = conn_guard_new(&gl, &srv.guard);
        if (r < 0)
                return log_error_errno(r, "cannot set up connection tracking");
        r = tls_store_new(o->cert_file, o->key_file, c->limits.cert_poll_ms, &srv.tls);
        if (r < 0) {
                conn_guard_free(srv.guard);
                return r;
        }
        tls_store_set_global(srv.tls);

        /* Signals are taken by sigwait() below; worker threads inherit the
         * blocked mask so a signal never interrupts a request. */
        program_stop_signals(&mask);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = tls_store_start(srv.tls);
        if (r < 0)
                goto out;
        /* 256 KiB per buffer: a 10 ms batch at the bench's 37k lines/s is ~100 KiB,
         * and a busier one wakes the writer early at half full. */
        r = admission_log_new(STDERR_FILENO, 256 * 1024, 10, &srv.log);
        if (r < 0)
                goto out;
        r = address_free(&ss, sslen);
        if (r < 0) {
                log_error_errno(r, "cannot listen on %s: %s", o->listen,
                                r == -EADDRINUSE ? "address in use" : strerror(-r));
                goto out;
        }
        n = start_listeners(&srv, &ss, daemons);
        if (n < c->limits.threads) {
                stop_listeners(daemons, n);
                r = log_error_errno(-EADDRNOTAVAIL, "cannot start the HTTPS server on %s",
                                    o->listen);
                goto out;
        }
        r = pthread_create(&srv.reaper, NULL, reaper_thread, &srv);
        if (r != 0) {
                stop_listeners(daemons, n);
                r = log_error_errno(-r, "cannot start the request timeout thread");
                goto out;
        }
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(daemons[0], MHD_DAEMON_INFO_BIND_PORT);
        log_info("serving HTTPS on %s (port %u), %u threads, TLS 1.2+", o->listen,
                 info ? info->port : 0, c->limits.threads);

        int sig = 0;
        while (sigwait(&mask, &sig) != 0)
                ;
        log_info("received %s: no new connections, finishing in-flight requests", strsignal(sig));
        drain(&srv, daemons, n);
        admission_log_free(TAKE_PTR(srv.log));
        log_info("stopped");
        r = 0;
out:
        admission_log_free(srv.log);
        tls_store_free(srv.tls);
        conn_guard_free(srv.guard);
        return r;
}
