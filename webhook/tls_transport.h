/* How mesa-injector's TLS records cross the socket: GnuTLS's push and pull
 * functions for one connection, replacing GnuTLS's defaults once
 * libmicrohttpd has set the session up.
 *
 * Reading: GnuTLS reads a record in two recv calls (its 5-byte header, then
 * the rest); pull_ahead reads up to a whole record at once and hands GnuTLS
 * the bytes from memory.
 *
 * Writing: libmicrohttpd sends an answer as two records in two sends (the
 * head, then the body). Sent as they come, the head leaves alone in its own
 * segment: two wake-ups of the client and two trips through the TCP stack.
 * Every record of an answer but the last goes out with MSG_MORE, so the
 * kernel holds it until the last one joins it. Where the records do not come
 * as counted (a HEAD answer, a client that shrank the record size below what
 * GnuTLS reports), answer_done pushes whatever is held.
 *
 * Watching: a GnuTLS hook notes the end of the handshake and the pull
 * function notes the bytes that come after it, which tell the server's
 * deadlines apart (a handshake not done, an idle connection, a request
 * that does not arrive). */
#pragma once

#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_transport {
        gnutls_session_t session;
        int fd;
        /* Bytes read ahead of what GnuTLS asked for. */
        char *ahead;
        size_t ahead_off, ahead_len;
        /* Records of the answer being written not yet fully sent. */
        unsigned records_left;
        /* Written by the connection's thread, read by the deadline reaper:
         * whether the client's Finished has arrived, and whether bytes have
         * come after it since tls_transport_phase_begins(). */
        atomic_bool handshaken, data_in;
};

/* Takes over the session's reads and writes on fd. */
void tls_transport_attach(struct tls_transport *tt, gnutls_session_t session, int fd);
/* An answer with a body of body_len bytes is about to be queued. */
void tls_transport_answer_begins(struct tls_transport *tt, size_t body_len);
/* The answer has been handed to the socket. */
void tls_transport_answer_done(struct tls_transport *tt);
/* A new request may come: data_in is cleared. */
void tls_transport_phase_begins(struct tls_transport *tt);
/* Frees what the connection holds (call when it closes). */
void tls_transport_release(struct tls_transport *tt);
