/* The growable byte buffer every part of vgpuenv uses for output it
 * collects (a program's stdout, a YAML document, a generated spec): one
 * implementation, so growth, NUL-termination and out-of-memory behave the
 * same everywhere. data is NUL-terminated whenever it is not NULL, so a
 * buffer of text can be handed on as a C string. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "common/macro.h"

struct buf {
        char *data;
        size_t len, cap;
};

/* 0 or -ENOMEM (the buffer is left as it was). */
int buf_append(struct buf *b, const void *p, size_t n);
/* Room for n more bytes (and the NUL) without another allocation; 0 or
 * -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* The contents as a heap string ("" when empty; NULL only on ENOMEM); the
 * buffer is empty afterwards. */
char *buf_steal(struct buf *b);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_done(struct buf *b);
#define _cleanup_buf_ _cleanup_(buf_done)
