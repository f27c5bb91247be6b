/* Which connections mesa-injector lets in and how long it keeps them, so
 * that the API server is served while other clients misbehave: any pod in
 * a cluster can reach the webhook's Service, and the API server itself
 * needs only a few keep-alive connections from one or a few addresses.
 *
 * - limits.connectionsPerSource: concurrent connections per source address;
 *   beyond, a new one is closed at accept, before any TLS work, and until
 *   the source holds fewer the listeners drop its SYNs in the kernel
 *   (source_filter.h). One source (a pod opening thousands of idle
 *   sockets) never takes the whole table, and its flood costs no accept.
 * - limits.connectionLimit: all connections. When full, a newcomer whose
 *   source holds at least two fewer connections than another takes the
 *   place of that source's oldest connection that has never completed a
 *   request (one stuck in its handshake or its first request), so sources
 *   that hold many idle sockets cannot lock out one that holds few.
 * - Deadlines, checked by a reaper thread several times a second: the TLS
 *   handshake (limits.handshakeTimeoutSeconds, short: a client that sends
 *   nothing or half a hello gives way quickly), an idle connection
 *   (limits.connectionTimeoutSeconds since it opened or since its last
 *   answer, with no byte of a request since) and a request that has begun
 *   but not fully arrived (limits.requestTimeoutSeconds, however slowly it
 *   trickles). A request has begun when bytes came after the handshake
 *   (tls_transport.h) or its request line has been parsed (for bytes that
 *   GnuTLS took in with the client's Finished).
 * - Request bodies held in memory: limits.maxBufferedBytes for all, and
 *   limits.bufferedBytesPerSource for one source, so that one source
 *   sending large bodies slowly cannot leave no room for the API server's.
 * A connection cut (past a deadline, or evicted) is shut down where that is
 * decided; libmicrohttpd sees the EOF and closes it in its own thread. Every refusal and cut is
 * counted in /metrics and logged as one summary line per second. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "webhook/metrics.h"
#include "webhook/tls_transport.h"

struct conn_guard_limits {
        unsigned connections; /* limits.connectionLimit */
        unsigned per_source;  /* limits.connectionsPerSource */
        double handshake_s, idle_s, request_s;
        size_t buffered, buffered_per_source; /* limits.maxBufferedBytes, ...PerSource */
};

/* Connections may exceed limits.connectionLimit by those being evicted,
 * until their threads close them (a few milliseconds): libmicrohttpd's own
 * limit must leave this much room. */
#define CONN_GUARD_EVICTING_MAX 8

struct conn_source;

/* One open connection. */
struct conn_track {
        int fd;
        struct conn_source *source;
        double opened;
        /* Written by the connection's own thread on every request, read by
         * the reaper: atomics, so the answer path takes no lock. Stored in
         * this order (phase_start first), a reaper that sees !received
         * also sees the phase_start that goes with it. */
        _Atomic double phase_start; /* opened, or the end of the previous request */
        atomic_bool request_line;   /* the current request's first line has arrived */
        atomic_bool received;       /* the current request has fully arrived */
        atomic_bool served;         /* a request has been answered on it */
        bool cut, evicted;          /* under the guard's lock */
        struct conn_track *prev, *next;
        struct tls_transport tt; /* only the connection's own thread touches it */
};

struct conn_guard_stats {
        unsigned open, sources, largest_source;
        unsigned filtered; /* sources whose SYNs the listeners drop */
};

struct conn_guard;
int conn_guard_new(const struct conn_guard_limits *limits, struct conn_guard **ret);
void conn_guard_free(struct conn_guard *g);

/* At accept (libmicrohttpd's accept policy callback), before any TLS work:
 * true lets the connection in and reserves its place, which the next
 * conn_guard_open() in the same thread takes. */
bool conn_guard_admit(struct conn_guard *g, const struct sockaddr *addr, socklen_t len);
/* The connection admitted last in this thread has started (NULL on
 * out-of-memory: it is then not tracked, and not counted either). */
struct conn_track *conn_guard_open(struct conn_guard *g, const struct sockaddr *addr, int fd,
                                   gnutls_session_t session);
/* Before its socket is closed; t is freed. */
void conn_guard_close(struct conn_guard *g, struct conn_track *t);
/* n more bytes of request body for t (NULL: an untracked connection, only
 * the total counts): 0, or -ENOBUFS over either budget (counted; the caller
 * closes the connection). */
int conn_guard_buffer_take(struct conn_guard *g, struct conn_track *t, size_t n);
void conn_guard_buffer_give(struct conn_guard *g, struct conn_track *t, size_t n);
/* Cuts every connection past its deadline; once a second logs what was
 * refused and cut since the last time. */
void conn_guard_reap(struct conn_guard *g, double now);
void conn_guard_stats(struct conn_guard *g, struct conn_guard_stats *out);
/* The sources the listeners should drop (out: SOURCE_FILTER_MAX entries):
 * true when that set changed since the last call. */
struct filter_addr;
bool conn_guard_filter(struct conn_guard *g, struct filter_addr *out, size_t *n);
