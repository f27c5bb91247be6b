/* Test-side gzip decoding of mesa-injector answers (zlib's inflate, not
 * the server's code), shared by the unit tests and the fuzzer. */
#pragma once

#include <stdlib.h>
#include <zlib.h>

/* The decoded bytes NUL-terminated (*out_len without the NUL), or NULL when
 * data is not one complete, valid gzip member. */
static inline char *gunzip_member(const void *data, size_t len, size_t *out_len)
{
        z_stream zs = {};
        if (inflateInit2(&zs, 16 + 15) != Z_OK)
                return NULL;
        size_t cap = 4 * len + 1024, used = 0;
        char *out = malloc(cap);
        int r = Z_OK;
        zs.next_in = (Bytef *)data;
        zs.avail_in = (uInt)len;
        while (out && r == Z_OK) {
                if (cap - used < 2) {
                        char *b = realloc(out, cap *= 2);
                        if (!b) {
                                free(out);
                                out = NULL;
                                break;
                        }
                        out = b;
                }
                zs.next_out = (Bytef *)out + used;
                zs.avail_out = (uInt)(cap - used - 1);
                r = inflate(&zs, Z_NO_FLUSH);
                used = cap - 1 - zs.avail_out;
        }
        inflateEnd(&zs);
        if (!out || r != Z_STREAM_END || zs.avail_in != 0) {
                free(out);
                return NULL;
        }
        out[used] = '\0';
        if (out_len)
                *out_len = used;
        return out;
}
