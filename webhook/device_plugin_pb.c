/* protobuf-c message building for the device plugin (see device_plugin_pb.h). */
#include "webhook/device_plugin_pb.h"

#include <errno.h>
#include <grpc/status.h>
#include <stdarg.h>
#include <stdlib.h>

#include "common/util.h"

static bool arena_keep(struct arena *a, void *v)
{
        void **p = v && !a->failed ? realloc(a->ptrs, (a->n + 1) * sizeof(void *)) : NULL;
        if (!p) {
                free(v);
                a->failed = true;
                return false;
        }
        a->ptrs = p;
        a->ptrs[a->n++] = v;
        return true;
}

void *arena_alloc(struct arena *a, size_t size)
{
        void *v = calloc(1, size ? size : 1);
        return arena_keep(a, v) ? v : NULL;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = strdup_vprintf(fmt, ap);
        va_end(ap);
        return arena_keep(a, s) ? s : NULL;
}

void arena_done(struct arena *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->ptrs[i]);
        free(a->ptrs);
        *a = (struct arena){};
}
