/* Connection admission, per-source caps, eviction and deadlines for
 * mesa-injector's server (see conn_guard.h). */
#include "webhook/conn_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "common/macro.h"
#include "webhook/metrics.h"
#include "webhook/source_filter.h"

/* A source address: IPv6, or IPv4 as ::ffff:a.b.c.d (what an IPv6 listener
 * reports for IPv4 clients anyway), so both spellings are one source.
 * Per address, not per IPv6 prefix: a pod has one address and cannot pick
 * another, and several pods must not share a cap. */
struct source_key {
        unsigned char b[16];
};

struct conn_source {
        struct source_key key;
        unsigned conns;         /* reserved and open */
        bool filtered;          /* its new connections are dropped by the kernel */
        atomic_size_t buffered; /* request bodies of its connections */
        struct conn_source *next;
};

struct conn_guard {
        struct conn_guard_limits limits;
        pthread_mutex_t lock;
        struct conn_track *conns;
        unsigned open;     /* reserved and open, all sources */
        unsigned tracked;  /* open (in conns) */
        unsigned evicting; /* cut by eviction, not yet closed */
        unsigned sources;
        unsigned filtered; /* sources with .filtered */
        bool filter_changed;
        atomic_size_t buffered; /* request bodies, all connections */
        struct conn_source **buckets;
        size_t mask;
        uint64_t seed; /* source addresses are the client's to choose */
        /* Since the last summary line. */
        unsigned refused[_REFUSED_MAX], cut[_CUT_MAX];
        struct source_key last_refused, last_cut;
        double last_summary;
};

/* conn_guard_admit() reserves a place that the conn_guard_open() which
 * libmicrohttpd runs right after, in the same thread, takes. libmicrohttpd
 * may drop the connection in between (out of memory for its pool, a failed
 * TLS setup) without calling back: a reservation still here at the next
 * admit is given back then. Per thread by nature: each listener thread
 * accepts and starts its own connections. */
static _Thread_local struct {
        struct conn_guard *guard;
        struct conn_source *source;
} reserved;

static void source_key_of(const struct sockaddr *a, struct source_key *k)
{
        memset(k, 0, sizeof(*k));
        if (a && a->sa_family == AF_INET) {
                k->b[10] = k->b[11] = 0xff;
                memcpy(k->b + 12, &((const struct sockaddr_in *)a)->sin_addr, 4);
        } else if (a && a->sa_family == AF_INET6)
                memcpy(k->b, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
}

static const char *source_name(const struct source_key *k, char buf[INET6_ADDRSTRLEN])
{
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        bool v4 = memcmp(k->b, mapped, sizeof(mapped)) == 0;
        if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? k->b + 12 : k->b, buf, INET6_ADDRSTRLEN))
                snprintf(buf, INET6_ADDRSTRLEN, "?");
        return buf;
}

static struct conn_source **bucket_of(struct conn_guard *g, const struct source_key *k)
{
        uint64_t h = g->seed;
        for (size_t i = 0; i < sizeof(k->b); i++)
                h = (h ^ k->b[i]) * 0x100000001b3ull;
        return &g->buckets[(h ^ h >> 29) & g->mask];
}

static struct conn_source *source_find(struct conn_guard *g, const struct source_key *k)
{
        for (struct conn_source *s = *bucket_of(g, k); s; s = s->next)
                if (memcmp(&s->key, k, sizeof(*k)) == 0)
                        return s;
        return NULL;
}

/* One more connection of source k; NULL on out-of-memory. */
static struct conn_source *source_take(struct conn_guard *g, const struct source_key *k)
{
        struct conn_source *s = source_find(g, k);
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return NULL;
                struct conn_source **b = bucket_of(g, k);
                s->key = *k;
                s->next = *b;
                *b = s;
                g->sources++;
        }
        s->conns++;
        g->open++;
        return s;
}

static void unfilter(struct conn_guard *g, struct conn_source *s)
{
        if (!s->filtered)
                return;
        s->filtered = false;
        g->filtered--;
        g->filter_changed = true;
}

static void source_give_back(struct conn_guard *g, struct conn_source *s)
{
        g->open--;
        if (--s->conns > 0)
                return;
        unfilter(g, s);
        for (struct conn_source **p = bucket_of(g, &s->key); *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        g->sources--;
        free(s);
}

int conn_guard_new(const struct conn_guard_limits *limits, struct conn_guard **ret)
{
        _cleanup_free_ struct conn_guard *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->limits = *limits;
        /* Sources never outnumber connections: a load factor under one. */
        size_t n = 64;
        while (n < 2 * ((size_t)limits->connections + CONN_GUARD_EVICTING_MAX))
                n *= 2;
        g->buckets = calloc(n, sizeof(*g->buckets));
        if (!g->buckets)
                return -ENOMEM;
        g->mask = n - 1;
        if (getrandom(&g->seed, sizeof(g->seed), GRND_NONBLOCK) != sizeof(g->seed))
                g->seed = (uint64_t)(now_seconds() * 1e9) ^ (uint64_t)(uintptr_t)g;
        g->seed |= 1;
        g->last_summary = now_seconds();
        int r = pthread_mutex_init(&g->lock, NULL);
        if (r != 0) {
                free(g->buckets);
                return -r;
        }
        *ret = TAKE_PTR(g);
        return 0;
}

void conn_guard_free(struct conn_guard *g)
{
        if (!g)
                return;
        if (reserved.guard == g)
                reserved.guard = NULL, reserved.source = NULL;
        for (struct conn_track *t = g->conns, *next; t; t = next) {
                next = t->next;
                tls_transport_release(&t->tt);
                free(t);
        }
        for (size_t i = 0; i <= g->mask; i++)
                for (struct conn_source *s = g->buckets[i], *next; s; s = next) {
                        next = s->next;
                        free(s);
                }
        free(g->buckets);
        pthread_mutex_destroy(&g->lock);
        free(g);
}

static void cut(struct conn_guard *g, struct conn_track *t, enum metric_cut why)
{
        /* The descriptor cannot be reused under us: conn_guard_close()
         * unlinks t under the lock before libmicrohttpd closes it. */
        shutdown(t->fd, SHUT_RDWR);
        t->cut = true;
        g->cut[why]++;
        g->last_cut = t->source->key;
        metrics_connection_cut(why);
}

/* The table is full and a connection of a source holding `have` comes: the
 * oldest connection that has never been answered (stuck in its handshake
 * or first request) of a source holding at least two more gives way. The
 * margin keeps two sources from evicting each other back and forth; a
 * connection that has been answered is never taken, so the API server's
 * keep-alive connections stay whatever the count. */
static bool evict_for(struct conn_guard *g, unsigned have)
{
        struct conn_track *victim = NULL;
        if (g->evicting >= CONN_GUARD_EVICTING_MAX)
                return false;
        for (struct conn_track *t = g->conns; t; t = t->next)
                if (!t->cut && t->source->conns >= have + 2 && !atomic_load(&t->served) &&
                    !atomic_load(&t->received) && (!victim || t->opened < victim->opened))
                        victim = t;
        if (!victim)
                return false;
        cut(g, victim, CUT_EVICTED);
        victim->evicted = true;
        g->evicting++;
        return true;
}

static void give_back_reservation(void)
{
        if (reserved.guard && reserved.source)
                source_give_back(reserved.guard, reserved.source);
        reserved.guard = NULL;
        reserved.source = NULL;
}

bool conn_guard_admit(struct conn_guard *g, const struct sockaddr *addr, socklen_t len)
{
        struct source_key k;
        enum metric_refusal why;
        (void)len;
        source_key_of(addr, &k);

        pthread_mutex_lock(&g->lock);
        if (reserved.guard == g)
                give_back_reservation();
        struct conn_source *s = source_find(g, &k);
        unsigned have = s ? s->conns : 0;
        if (have >= g->limits.per_source) {
                why = REFUSED_PER_SOURCE;
                /* Full and still connecting: until it holds fewer, the
                 * kernel drops its SYNs (source_filter.h). */
                if (!s->filtered && g->filtered < SOURCE_FILTER_MAX) {
                        s->filtered = true;
                        g->filtered++;
                        g->filter_changed = true;
                }
        } else if (g->open >= g->limits.connections && !evict_for(g, have))
                why = REFUSED_LIMIT;
        else if ((s = source_take(g, &k))) {
                reserved.guard = g;
                reserved.source = s;
                pthread_mutex_unlock(&g->lock);
                return true;
        } else
                why = REFUSED_LIMIT; /* out of memory */
        g->refused[why]++;
        g->last_refused = k;
        pthread_mutex_unlock(&g->lock);
        metrics_connection_refused(why);
        return false;
}

struct conn_track *conn_guard_open(struct conn_guard *g, const struct sockaddr *addr, int fd,
                                   gnutls_session_t session)
{
        struct conn_track *t = calloc(1, sizeof(*t));
        struct conn_source *s = NULL;

        pthread_mutex_lock(&g->lock);
        if (reserved.guard == g) {
                s = reserved.source;
                reserved.guard = NULL;
                reserved.source = NULL;
        } else {
                /* Not seen by conn_guard_admit() (no accept policy ran):
                 * counted, though not refused, all the same. */
                struct source_key k;
                source_key_of(addr, &k);
                s = source_take(g, &k);
        }
        if (!t || !s) {
                if (s)
                        source_give_back(g, s);
                pthread_mutex_unlock(&g->lock);
                free(t);
                return NULL;
        }
        t->fd = fd;
        t->source = s;
        t->opened = now_seconds();
        t->phase_start = t->opened;
        t->next = g->conns;
        if (g->conns)
                g->conns->prev = t;
        g->conns = t;
        g->tracked++;
        if (session)
                tls_transport_attach(&t->tt, session, fd);
        else
                atomic_store(&t->tt.handshaken, true);
        pthread_mutex_unlock(&g->lock);
        return t;
}

void conn_guard_close(struct conn_guard *g, struct conn_track *t)
{
        pthread_mutex_lock(&g->lock);
        if (t->prev)
                t->prev->next = t->next;
        else
                g->conns = t->next;
        if (t->next)
                t->next->prev = t->prev;
        g->tracked--;
        if (t->evicted)
                g->evicting--;
        source_give_back(g, t->source);
        pthread_mutex_unlock(&g->lock);
        tls_transport_release(&t->tt);
        free(t);
}

static void count_cut(struct conn_guard *g, struct conn_track *t, enum metric_cut why)
{
        pthread_mutex_lock(&g->lock);
        g->cut[why]++;
        if (t)
                g->last_cut = t->source->key;
        pthread_mutex_unlock(&g->lock);
        metrics_connection_cut(why);
}

/* 256 connections x 3 MiB would exceed any sane memory limit, and one
 * source sending 2 MiB bodies slowly on a dozen connections would take all
 * of a total budget: both are checked. */
int conn_guard_buffer_take(struct conn_guard *g, struct conn_track *t, size_t n)
{
        size_t before = atomic_fetch_add(&g->buffered, n);
        if (before + n > g->limits.buffered) {
                atomic_fetch_sub(&g->buffered, n);
                count_cut(g, t, CUT_BUFFERED);
                return -ENOBUFS;
        }
        if (!t)
                return 0;
        before = atomic_fetch_add(&t->source->buffered, n);
        if (before + n > g->limits.buffered_per_source) {
                atomic_fetch_sub(&t->source->buffered, n);
                atomic_fetch_sub(&g->buffered, n);
                count_cut(g, t, CUT_SOURCE_BUFFERED);
                return -ENOBUFS;
        }
        return 0;
}

void conn_guard_buffer_give(struct conn_guard *g, struct conn_track *t, size_t n)
{
        atomic_fetch_sub(&g->buffered, n);
        if (t)
                atomic_fetch_sub(&t->source->buffered, n);
}

/* Which deadline t is past, if any (-1). Connections whose request has
 * fully arrived are being answered: a client that stops reading the answer
 * is libmicrohttpd's idle timeout's to end. */
static int deadline_passed(const struct conn_guard *g, const struct conn_track *t, double now)
{
        if (t->cut || atomic_load(&t->received))
                return -1;
        if (!atomic_load(&t->tt.handshaken))
                return now - t->opened > g->limits.handshake_s ? CUT_HANDSHAKE : -1;
        double since = now - atomic_load(&t->phase_start);
        if (!atomic_load(&t->tt.data_in) && !atomic_load(&t->request_line))
                return since > g->limits.idle_s ? CUT_IDLE : -1;
        return since > g->limits.request_s ? CUT_REQUEST : -1;
}

static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
        va_list ap;
        if (*n >= size)
                return;
        va_start(ap, fmt);
        int k = vsnprintf(buf + *n, size - *n, fmt, ap);
        va_end(ap);
        if (k > 0)
                *n += (size_t)k;
}

/* One line for everything refused and one for everything cut since the
 * last: a flood of thousands of connections a second must not turn into as
 * many log lines. */
static void log_summary(const struct conn_guard_limits *l, double span,
                        const unsigned refused[_REFUSED_MAX], const struct source_key *last_refused,
                        const unsigned cuts[_CUT_MAX], const struct source_key *last_cut)
{
        char buf[512], addr[INET6_ADDRSTRLEN];
        size_t n = 0;
        if (refused[REFUSED_PER_SOURCE] + refused[REFUSED_LIMIT]) {
                append(buf, sizeof(buf), &n, "refused in the last %.1fs:", span);
                if (refused[REFUSED_PER_SOURCE])
                        append(buf, sizeof(buf), &n,
                               " %u over limits.connectionsPerSource (%u) of one source",
                               refused[REFUSED_PER_SOURCE], l->per_source);
                if (refused[REFUSED_LIMIT])
                        append(buf, sizeof(buf), &n, " %u over limits.connectionLimit (%u)",
                               refused[REFUSED_LIMIT], l->connections);
                log_warning("connections %s; last from %s", buf, source_name(last_refused, addr));
        }
        n = 0;
        if (cuts[CUT_HANDSHAKE])
                append(buf, sizeof(buf), &n, ", %u TLS handshake not done within %gs",
                       cuts[CUT_HANDSHAKE], l->handshake_s);
        if (cuts[CUT_IDLE])
                append(buf, sizeof(buf), &n, ", %u idle for %gs", cuts[CUT_IDLE], l->idle_s);
        if (cuts[CUT_REQUEST])
                append(buf, sizeof(buf), &n, ", %u request did not arrive within %gs",
                       cuts[CUT_REQUEST], l->request_s);
        if (cuts[CUT_EVICTED])
                append(buf, sizeof(buf), &n,
                       ", %u never answered, evicted for a source holding fewer",
                       cuts[CUT_EVICTED]);
        if (cuts[CUT_BUFFERED])
                append(buf, sizeof(buf), &n,
                       ", %u as request bodies in flight exceed limits.maxBufferedBytes (%zu)",
                       cuts[CUT_BUFFERED], l->buffered);
        if (cuts[CUT_SOURCE_BUFFERED])
                append(buf, sizeof(buf), &n,
                       ", %u as one source's request bodies exceed limits.bufferedBytesPerSource "
                       "(%zu)",
                       cuts[CUT_SOURCE_BUFFERED], l->buffered_per_source);
        if (n)
                log_warning("connections closed in the last %.1fs%s; last from %s", span, buf,
                            source_name(last_cut, addr));
}

/* Sources filtered for being full that now hold fewer get through again. */
static void unfilter_sources_below_cap(struct conn_guard *g)
{
        if (g->filtered == 0)
                return;
        for (size_t i = 0; i <= g->mask; i++)
                for (struct conn_source *s = g->buckets[i]; s; s = s->next)
                        if (s->filtered && s->conns < g->limits.per_source)
                                unfilter(g, s);
}

void conn_guard_reap(struct conn_guard *g, double now)
{
        unsigned refused[_REFUSED_MAX], cuts[_CUT_MAX];
        struct source_key last_refused, last_cut;
        double span = 0;

        pthread_mutex_lock(&g->lock);
        for (struct conn_track *t = g->conns; t; t = t->next) {
                int why = deadline_passed(g, t, now);
                if (why < 0)
                        continue;
                cut(g, t, (enum metric_cut)why);
                if (why == CUT_REQUEST)
                        metrics_request(ROUTE_OTHER, OUTCOME_TIMEOUT,
                                        now - atomic_load(&t->phase_start));
        }
        unfilter_sources_below_cap(g);
        if (now - g->last_summary >= 1.0) {
                span = now - g->last_summary;
                memcpy(refused, g->refused, sizeof(refused));
                memcpy(cuts, g->cut, sizeof(cuts));
                last_refused = g->last_refused;
                last_cut = g->last_cut;
                memset(g->refused, 0, sizeof(g->refused));
                memset(g->cut, 0, sizeof(g->cut));
                g->last_summary = now;
        }
        pthread_mutex_unlock(&g->lock);
        if (span > 0)
                log_summary(&g->limits, span, refused, &last_refused, cuts, &last_cut);
}

bool conn_guard_filter(struct conn_guard *g, struct filter_addr *out, size_t *n)
{
        pthread_mutex_lock(&g->lock);
        bool changed = g->filter_changed;
        g->filter_changed = false;
        *n = 0;
        for (size_t i = 0; changed && i <= g->mask; i++)
                for (const struct conn_source *s = g->buckets[i]; s; s = s->next)
                        if (s->filtered && *n < SOURCE_FILTER_MAX)
                                memcpy(out[(*n)++].b, s->key.b, sizeof(s->key.b));
        pthread_mutex_unlock(&g->lock);
        return changed;
}

void conn_guard_stats(struct conn_guard *g, struct conn_guard_stats *out)
{
        *out = (struct conn_guard_stats){};
        pthread_mutex_lock(&g->lock);
        out->open = g->tracked;
        out->sources = g->sources;
        out->filtered = g->filtered;
        for (size_t i = 0; i <= g->mask; i++)
                for (const struct conn_source *s = g->buckets[i]; s; s = s->next)
                        if (s->conns > out->largest_source)
                                out->largest_source = s->conns;
        pthread_mutex_unlock(&g->lock);
}
