/* Unit tests for mesa-injector's connection guard (webhook/conn_guard.c):
 * per-source caps, the reservation between accept and start, eviction when
 * the table is full, and the three deadlines. Connections are socketpairs,
 * so a cut is seen as the EOF the peer reads; time is passed to the reaper,
 * so deadlines are checked without waiting for them; the listener's filter
 * of refused sources, on a real listening socket. The server-level
 * behaviour (real TLS clients from two source addresses) is
 * tests/integration/webhook_hostile.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "webhook/conn_guard.h"
#include "webhook/source_filter.h"

struct fake_conn {
        int server_fd, client_fd;
        struct conn_track *t;
};

static struct sockaddr_in addr_of(const char *ip)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(40000)};
        assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
        return a;
}

static bool admit(struct conn_guard *g, const char *ip)
{
        struct sockaddr_in a = addr_of(ip);
        return conn_guard_admit(g, (struct sockaddr *)&a, sizeof(a));
}

/* Admitted and started, as libmicrohttpd does it; false if refused. */
static bool connect_from(struct conn_guard *g, const char *ip, struct fake_conn *c)
{
        if (!admit(g, ip))
                return false;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        c->server_fd = sv[0];
        c->client_fd = sv[1];
        fcntl(c->client_fd, F_SETFL, O_NONBLOCK);
        struct sockaddr_in a = addr_of(ip);
        c->t = conn_guard_open(g, (struct sockaddr *)&a, c->server_fd, NULL);
        assert_non_null(c->t);
        /* A TLS connection starts not handshaken (no session: the guard
         * counts it as done). */
        atomic_store(&c->t->tt.handshaken, false);
        return true;
}

/* Whether the server side was shut down: the peer reads EOF. */
static bool was_cut(const struct fake_conn *c)
{
        char b;
        return recv(c->client_fd, &b, 1, 0) == 0;
}

static void disconnect(struct conn_guard *g, struct fake_conn *c)
{
        conn_guard_close(g, c->t);
        close(c->server_fd);
        close(c->client_fd);
        c->t = NULL;
}

/* The end of a test: the connections it still holds closed, then the guard
 * freed. */
static void close_guard_(struct conn_guard *g, struct fake_conn **c)
{
        for (; *c; c++)
                disconnect(g, *c);
        conn_guard_free(g);
}
#define close_guard(g, ...) close_guard_((g), (struct fake_conn *[]){__VA_ARGS__, NULL})

static struct conn_guard *guard(unsigned connections, unsigned per_source)
{
        struct conn_guard_limits l = {.connections = connections,
                                      .per_source = per_source,
                                      .handshake_s = 3,
                                      .idle_s = 10,
                                      .request_s = 20};
        struct conn_guard *g = NULL;
        assert_int_equal(conn_guard_new(&l, &g), 0);
        return g;
}

static void test_per_source_cap(void **state)
{
        (void)state;
        struct conn_guard *g = guard(100, 3);
        struct fake_conn a[3], b;
        for (size_t i = 0; i < 3; i++)
                assert_true(connect_from(g, "10.0.0.2", &a[i]));
        assert_false(admit(g, "10.0.0.2"));
        /* Another source is not affected, and one closed connection gives
         * its source a place back. */
        assert_true(connect_from(g, "10.0.0.3", &b));
        struct conn_guard_stats st;
        conn_guard_stats(g, &st);
        assert_int_equal(st.open, 4);
        assert_int_equal(st.sources, 2);
        assert_int_equal(st.largest_source, 3);
        disconnect(g, &a[0]);
        assert_true(connect_from(g, "10.0.0.2", &a[0]));
        for (size_t i = 0; i < 3; i++)
                disconnect(g, &a[i]);
        disconnect(g, &b);
        conn_guard_stats(g, &st);
        assert_int_equal(st.open, 0);
        assert_int_equal(st.sources, 0);
        conn_guard_free(g);
}

static void test_reservation_given_back(void **state)
{
        (void)state;
        struct conn_guard *g = guard(2, 2);
        /* Admitted, then dropped by libmicrohttpd before it started: the
         * next admit in this thread gives the place back. */
        assert_true(admit(g, "10.0.0.2"));
        struct fake_conn c, c2, e;
        assert_true(connect_from(g, "10.0.0.2", &c));
        assert_true(connect_from(g, "10.0.0.2", &c2));
        struct conn_guard_stats st;
        conn_guard_stats(g, &st);
        assert_int_equal(st.open, 2);
        assert_int_equal(st.largest_source, 2);
        /* Full with answered connections: nothing to evict. */
        atomic_store(&c.t->served, true);
        atomic_store(&c2.t->served, true);
        assert_false(admit(g, "10.0.0.3"));
        atomic_store(&c2.t->served, false);
        assert_true(connect_from(g, "10.0.0.3", &e));
        assert_false(was_cut(&c));
        assert_true(was_cut(&c2));
        close_guard(g, &c, &c2, &e);
}

static void test_eviction_when_full(void **state)
{
        (void)state;
        struct conn_guard *g = guard(4, 4);
        struct fake_conn a[4], b, b2, d;
        for (size_t i = 0; i < 4; i++)
                assert_true(connect_from(g, "10.0.0.2", &a[i]));
        /* a[0] has been answered: a keep-alive connection, never taken. */
        atomic_store(&a[0].t->served, true);
        /* A source with none evicts the oldest unanswered one of the source
         * with four. */
        assert_true(connect_from(g, "10.0.0.3", &b));
        assert_false(was_cut(&a[0]));
        assert_true(was_cut(&a[1]));
        assert_false(was_cut(&a[2]));
        /* Until that one is closed it still counts: with 10.0.0.2 at 4 and
         * 10.0.0.3 at 1, the next of 10.0.0.3 takes a[2]. */
        assert_true(connect_from(g, "10.0.0.3", &b2));
        assert_true(was_cut(&a[2]));
        disconnect(g, &a[1]);
        disconnect(g, &a[2]);
        /* 10.0.0.2 holds 2, 10.0.0.3 holds 2: full, and balanced, so neither
         * gets another, while a new source still gets in, in place of the
         * oldest unanswered connection (a[3]). */
        struct conn_guard_stats st;
        conn_guard_stats(g, &st);
        assert_int_equal(st.open, 4);
        assert_false(admit(g, "10.0.0.3"));
        assert_false(admit(g, "10.0.0.2"));
        assert_true(connect_from(g, "10.0.0.4", &d));
        assert_true(was_cut(&a[3]));
        close_guard(g, &a[0], &a[3], &b, &b2, &d);
}

static void test_deadlines(void **state)
{
        (void)state;
        struct conn_guard *g = guard(10, 10);
        struct fake_conn hs, idle, req, busy;
        assert_true(connect_from(g, "10.0.0.2", &hs));
        assert_true(connect_from(g, "10.0.0.2", &idle));
        assert_true(connect_from(g, "10.0.0.2", &req));
        assert_true(connect_from(g, "10.0.0.2", &busy));
        double t0 = now_seconds();
        atomic_store(&idle.t->tt.handshaken, true);
        atomic_store(&req.t->tt.handshaken, true);
        atomic_store(&req.t->request_line, true);
        atomic_store(&busy.t->tt.handshaken, true);
        atomic_store(&busy.t->received, true); /* being answered */

        conn_guard_reap(g, t0 + 2);
        assert_false(was_cut(&hs));
        conn_guard_reap(g, t0 + 3.5); /* handshake: 3 s */
        assert_true(was_cut(&hs));
        assert_false(was_cut(&idle));
        conn_guard_reap(g, t0 + 10.5); /* idle: 10 s */
        assert_true(was_cut(&idle));
        assert_false(was_cut(&req));
        conn_guard_reap(g, t0 + 20.5); /* request: 20 s */
        assert_true(was_cut(&req));
        conn_guard_reap(g, t0 + 1000);
        assert_false(was_cut(&busy));
        /* After its answer the idle clock starts again at the answer. */
        atomic_store(&busy.t->phase_start, t0 + 1000);
        atomic_store(&busy.t->received, false);
        conn_guard_reap(g, t0 + 1005);
        assert_false(was_cut(&busy));
        conn_guard_reap(g, t0 + 1010.5);
        assert_true(was_cut(&busy));
        close_guard(g, &hs, &idle, &req, &busy);
}

static void test_ipv4_mapped_is_one_source(void **state)
{
        (void)state;
        struct conn_guard *g = guard(10, 1);
        struct fake_conn c;
        assert_true(connect_from(g, "10.0.0.2", &c));
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
        assert_int_equal(inet_pton(AF_INET6, "::ffff:10.0.0.2", &a6.sin6_addr), 1);
        assert_false(conn_guard_admit(g, (struct sockaddr *)&a6, sizeof(a6)));
        assert_int_equal(inet_pton(AF_INET6, "fd00::2", &a6.sin6_addr), 1);
        assert_true(conn_guard_admit(g, (struct sockaddr *)&a6, sizeof(a6)));
        assert_true(admit(g, "10.0.0.3")); /* gives the fd00::2 reservation back */
        assert_true(admit(g, "10.0.0.4"));
        close_guard(g, &c);
}

/* A nonblocking connect from src to the listener: 1 connected, 0 still
 * waiting after 300 ms (its SYN dropped), -1 refused. */
static int try_connect(const char *src, const struct sockaddr_in *to)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = addr_of(src);
        a.sin_port = 0;
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        int r = connect(fd, (const struct sockaddr *)to, sizeof(*to));
        if (r < 0 && errno == EINPROGRESS) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                r = poll(&p, 1, 300);
                if (r == 0) {
                        close(fd);
                        return 0;
                }
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                r = err ? -1 : 0;
        }
        close(fd);
        return r == 0 ? 1 : -1;
}

/* The listener's filter drops the SYNs of the sources it names, and only
 * those; an empty list removes it. The kernel answers the SYN before
 * accept(), so connected means let through. */
static void test_source_filter(void **state)
{
        (void)state;
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in to = addr_of("127.0.0.1");
        to.sin_port = 0;
        socklen_t len = sizeof(to);
        assert_int_equal(bind(l, (struct sockaddr *)&to, sizeof(to)), 0);
        assert_int_equal(listen(l, 64), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *)&to, &len), 0);

        struct filter_addr blocked[3] = {};
        blocked[0].b[10] = blocked[0].b[11] = 0xff;
        blocked[1] = blocked[0];
        assert_int_equal(inet_pton(AF_INET, "127.0.0.2", blocked[0].b + 12), 1);
        assert_int_equal(inet_pton(AF_INET, "127.0.0.9", blocked[1].b + 12), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd00::2", blocked[2].b), 1);
        assert_int_equal(source_filter_attach(l, blocked, 3), 0);
        assert_int_equal(try_connect("127.0.0.2", &to), 0);
        assert_int_equal(try_connect("127.0.0.9", &to), 0);
        assert_int_equal(try_connect("127.0.0.3", &to), 1);
        assert_int_equal(source_filter_attach(l, blocked + 1, 2), 0);
        assert_int_equal(try_connect("127.0.0.2", &to), 1);
        assert_int_equal(try_connect("127.0.0.9", &to), 0);
        assert_int_equal(source_filter_attach(l, NULL, 0), 0);
        assert_int_equal(try_connect("127.0.0.9", &to), 1);
        close(l);

        /* IPv6 on ::1: the address compared word by word. */
        int l6 = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 to6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        len = sizeof(to6);
        assert_int_equal(bind(l6, (struct sockaddr *)&to6, sizeof(to6)), 0);
        assert_int_equal(listen(l6, 64), 0);
        assert_int_equal(getsockname(l6, (struct sockaddr *)&to6, &len), 0);
        struct filter_addr one = {};
        one.b[15] = 1;
        struct filter_addr near = one;
        near.b[0] = 0xfd; /* fd00::1: all but the first word equal */
        for (int round = 0; round < 2; round++) {
                assert_int_equal(source_filter_attach(l6, round ? &one : &near, 1), 0);
                int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
                int r = connect(fd, (struct sockaddr *)&to6, sizeof(to6));
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                assert_true(r == 0 || errno == EINPROGRESS);
                assert_int_equal(poll(&p, 1, 300), round ? 0 : 1);
                close(fd);
        }
        close(l6);
}

/* Refused for being full, a source is named for the filter until it holds
 * fewer; the guard reports each change once. */
static void test_filter_follows_refusals(void **state)
{
        (void)state;
        struct conn_guard *g = guard(10, 2);
        struct filter_addr addrs[SOURCE_FILTER_MAX];
        size_t n = 99;
        struct fake_conn a[2];
        assert_false(conn_guard_filter(g, addrs, &n));
        assert_true(connect_from(g, "10.0.0.2", &a[0]));
        assert_true(connect_from(g, "10.0.0.2", &a[1]));
        assert_false(conn_guard_filter(g, addrs, &n)); /* at the cap, not yet over */
        assert_false(admit(g, "10.0.0.2"));
        assert_true(conn_guard_filter(g, addrs, &n));
        assert_int_equal(n, 1);
        assert_int_equal(addrs[0].b[15], 2);
        assert_int_equal(addrs[0].b[10], 0xff);
        assert_false(admit(g, "10.0.0.2"));
        assert_false(conn_guard_filter(g, addrs, &n)); /* no change */
        struct conn_guard_stats st;
        conn_guard_stats(g, &st);
        assert_int_equal(st.filtered, 1);
        disconnect(g, &a[0]);
        conn_guard_reap(g, now_seconds());
        assert_true(conn_guard_filter(g, addrs, &n));
        assert_int_equal(n, 0);
        close_guard(g, &a[1]);
}

int main(void)
{
        log_set_level(LOG_ERR);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_per_source_cap),
            cmocka_unit_test(test_reservation_given_back),
            cmocka_unit_test(test_eviction_when_full),
            cmocka_unit_test(test_deadlines),
            cmocka_unit_test(test_ipv4_mapped_is_one_source),
            cmocka_unit_test(test_source_filter),
            cmocka_unit_test(test_filter_follows_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
