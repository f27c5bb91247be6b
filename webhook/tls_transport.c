/* GnuTLS push and pull functions for one connection (see tls_transport.h). */
#include "webhook/tls_transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/macro.h"

/* One TLS record at its largest (16 KiB of data plus header, padding and
 * tag): a read never takes more than GnuTLS's next record or two. */
#define AHEAD_CAPACITY (16384 + 2048 + 5)

/* Bytes handed to GnuTLS after the handshake: a request has begun.
 * Noted as they reach GnuTLS, not when read: the client's Finished and the
 * start of its request often share a segment. */
static void note_data(struct tls_transport *tt)
{
        if (atomic_load_explicit(&tt->handshaken, memory_order_relaxed) &&
            !atomic_load_explicit(&tt->data_in, memory_order_relaxed))
                atomic_store_explicit(&tt->data_in, true, memory_order_relaxed);
}

/* libmicrohttpd (in epoll mode) keeps reading a TLS connection until a read
 * reports EAGAIN, and this reports EAGAIN only when the socket did with
 * nothing held here: bytes held here are never left waiting for an epoll
 * event that will not come. The buffer exists only while it holds bytes, so
 * an idle connection costs nothing. */
static ssize_t pull_ahead(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
        struct tls_transport *tt = ptr;
        if (tt->ahead_len == 0) {
                if (len >= AHEAD_CAPACITY ||
                    (!tt->ahead && !(tt->ahead = malloc(AHEAD_CAPACITY)))) {
                        ssize_t n = recv(tt->fd, data, len, 0);
                        if (n > 0)
                                note_data(tt);
                        return n;
                }
                ssize_t n = recv(tt->fd, tt->ahead, AHEAD_CAPACITY, 0);
                if (n <= 0) {
                        int e = errno;
                        free(TAKE_PTR(tt->ahead));
                        errno = e;
                        return n;
                }
                tt->ahead_off = 0;
                tt->ahead_len = (size_t)n;
        }
        size_t n = len < tt->ahead_len ? len : tt->ahead_len;
        note_data(tt);
        memcpy(data, tt->ahead + tt->ahead_off, n);
        tt->ahead_off += n;
        tt->ahead_len -= n;
        if (tt->ahead_len == 0)
                free(TAKE_PTR(tt->ahead));
        return (ssize_t)n;
}

/* GnuTLS asks this before a read it bounds in time (the handshake): bytes
 * held here are ready at once. */
static int pull_ahead_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
        struct tls_transport *tt = ptr;
        if (tt->ahead_len > 0)
                return 1;
        struct pollfd pfd = {.fd = tt->fd, .events = POLLIN};
        return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static ssize_t push_records(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
        struct tls_transport *tt = ptr;
        size_t total = 0;
        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        /* giovec_t is laid out as struct iovec (GnuTLS's own default push
         * passes it to sendmsg the same way). */
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        int flags = MSG_NOSIGNAL | (tt->records_left > 1 ? MSG_MORE : 0);
        ssize_t n = sendmsg(tt->fd, &msg, flags);
        /* A short send leaves the rest of the record for GnuTLS's next push:
         * the record counts as sent when its last byte is. */
        if (n >= 0 && (size_t)n == total && tt->records_left > 0)
                tt->records_left--;
        return n;
}

/* Called after each handshake message; the client's Finished is the last
 * one the client owes (TLS 1.3, and 1.2 without resumption, which
 * libmicrohttpd does not enable): past it the handshake cannot stall on it. */
static int on_handshake_message(gnutls_session_t session, unsigned htype, unsigned when,
                                unsigned incoming, const gnutls_datum_t *msg)
{
        (void)htype;
        (void)when;
        (void)msg;
        struct tls_transport *tt = gnutls_transport_get_ptr(session);
        if (incoming && tt)
                atomic_store(&tt->handshaken, true);
        return 0;
}

void tls_transport_attach(struct tls_transport *tt, gnutls_session_t session, int fd)
{
        *tt = (struct tls_transport){.session = session, .fd = fd};
        gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST,
                                           on_handshake_message);
        gnutls_transport_set_ptr(session, tt);
        gnutls_transport_set_pull_function(session, pull_ahead);
        gnutls_transport_set_pull_timeout_function(session, pull_ahead_timeout);
        gnutls_transport_set_vec_push_function(session, push_records);
}

void tls_transport_answer_begins(struct tls_transport *tt, size_t body_len)
{
        if (!tt->session)
                return;
        size_t max = gnutls_record_get_max_size(tt->session);
        if (max == 0)
                max = 16384;
        /* The head in one record, the body in records of at most max bytes. */
        tt->records_left = 1 + (unsigned)((body_len + max - 1) / max);
}

void tls_transport_answer_done(struct tls_transport *tt)
{
        if (tt->records_left == 0)
                return;
        /* Not every counted record came: one may be held under MSG_MORE.
         * Setting TCP_NODELAY (already on) pushes pending segments out. */
        int one = 1;
        (void)setsockopt(tt->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        tt->records_left = 0;
}

void tls_transport_phase_begins(struct tls_transport *tt)
{
        atomic_store_explicit(&tt->data_in, false, memory_order_relaxed);
}

void tls_transport_release(struct tls_transport *tt)
{
        free(TAKE_PTR(tt->ahead));
        tt->ahead_len = 0;
}
