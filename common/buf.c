/* The growable buffer (see buf.h). */
#include "common/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(struct buf *b, size_t more)
{
        if (b->len + more + 1 <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + more + 1) {
                if (cap > SIZE_MAX / 2)
                        return -ENOMEM;
                cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->cap = cap;
        return 0;
}

int buf_reserve(struct buf *b, size_t n)
{
        return grow(b, n);
}

int buf_append(struct buf *b, const void *p, size_t n)
{
        if (grow(b, n) < 0)
                return -ENOMEM;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

int buf_puts(struct buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        if (grow(b, (size_t)n) < 0)
                return -ENOMEM;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

char *buf_steal(struct buf *b)
{
        char *d = b->data ? b->data : strdup("");
        *b = (struct buf){0};
        return d;
}

void buf_consume(struct buf *b, size_t n)
{
        if (n >= b->len) {
                b->len = 0;
                if (b->data)
                        b->data[0] = 0;
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
        b->data[b->len] = 0;
}

void buf_done(struct buf *b)
{
        free(b->data);
        *b = (struct buf){0};
}
