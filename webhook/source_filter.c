/* The listening sockets' filter of refused sources (see source_filter.h). */
#include "webhook/source_filter.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

struct program {
        struct sock_filter *ins;
        size_t n;
};

static void emit(struct program *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
        p->ins[p->n++] = (struct sock_filter){code, jt, jf, k};
}

static uint32_t word(const unsigned char *b)
{
        return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Offsets into the IP header (SKF_NET_OFF: a TCP socket's filter sees the
 * packet from its TCP header on): the source address is at 12 in IPv4, 8
 * in IPv6. Each address drops on a match and falls through otherwise, so
 * no jump spans more than the 8 bits a conditional jump has. */
static void emit_v4(struct program *p, const struct filter_addr *a, size_t n)
{
        emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_NET_OFF + 12));
        for (size_t i = 0; i < n; i++)
                if (memcmp(a[i].b, v4_mapped, sizeof(v4_mapped)) == 0) {
                        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, word(a[i].b + 12));
                        emit(p, BPF_RET | BPF_K, 0, 0, 0);
                }
        emit(p, BPF_RET | BPF_K, 0, 0, UINT32_MAX);
}

static void emit_v6(struct program *p, const struct filter_addr *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (memcmp(a[i].b, v4_mapped, sizeof(v4_mapped)) == 0)
                        continue;
                for (unsigned w = 0; w < 4; w++) {
                        emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0,
                             (uint32_t)(SKF_NET_OFF + 8 + 4 * w));
                        /* On a mismatch, past the rest of this address. */
                        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(2 * (3 - w) + 1),
                             word(a[i].b + 4 * w));
                }
                emit(p, BPF_RET | BPF_K, 0, 0, 0);
        }
        emit(p, BPF_RET | BPF_K, 0, 0, UINT32_MAX);
}

int source_filter_attach(int fd, const struct filter_addr *addrs, size_t n)
{
        if (n == 0) {
                int zero = 0;
                if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)) < 0 &&
                    errno != ENOENT)
                        return -errno;
                return 0;
        }
        if (n > SOURCE_FILTER_MAX)
                n = SOURCE_FILTER_MAX;
        struct program p = {.ins = calloc(16 + 11 * n, sizeof(struct sock_filter))};
        if (!p.ins)
                return -ENOMEM;
        /* The IP version, then a jump (32-bit) to its section. */
        emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, (uint32_t)SKF_NET_OFF);
        emit(&p, BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4);
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 4);
        size_t to_v4 = p.n;
        emit(&p, BPF_JMP | BPF_JA, 0, 0, 0);
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 6);
        size_t to_v6 = p.n;
        emit(&p, BPF_JMP | BPF_JA, 0, 0, 0);
        emit(&p, BPF_RET | BPF_K, 0, 0, UINT32_MAX);
        p.ins[to_v4].k = (uint32_t)(p.n - to_v4 - 1);
        emit_v4(&p, addrs, n);
        p.ins[to_v6].k = (uint32_t)(p.n - to_v6 - 1);
        emit_v6(&p, addrs, n);
        struct sock_fprog prog = {.len = (unsigned short)p.n, .filter = p.ins};
        int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
        free(p.ins);
        return r;
}
