/* A classic BPF socket filter on the listening sockets that drops the
 * packets of some source addresses (see conn_guard.h: sources at
 * limits.connectionsPerSource that kept connecting). The kernel runs a
 * listener's filter on each SYN it receives (and on the handshake's last
 * ACK): a dropped SYN costs the server no accept, no close and no turn of a
 * worker's event loop, and the client's TCP stack backs off by itself (a
 * retry after 1 s, then 3 s, ...). Established connections are not seen by
 * it: their packets go to their own sockets. */
#pragma once

#include <stddef.h>

/* A source address as conn_guard keeps it: IPv6, or IPv4 as ::ffff:a.b.c.d. */
struct filter_addr {
        unsigned char b[16];
};

/* At most this many addresses in one filter (about 9 instructions an IPv6
 * address, of cBPF's 4096). */
#define SOURCE_FILTER_MAX 128

/* Drops connections from the n addresses on listening socket fd (n == 0
 * removes the filter). 0 or -errno. */
int source_filter_attach(int fd, const struct filter_addr *addrs, size_t n);
