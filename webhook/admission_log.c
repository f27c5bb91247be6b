/* The admission log, batched by a writer thread (see admission_log.h). */
#include "webhook/admission_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/thread.h"
#include "common/log.h"
#include "common/util.h"

struct admission_log {
        int fd;
        unsigned gather_ms;
        pthread_mutex_t lock;
        pthread_cond_t wake;  /* the writer: a first line, a half-full buffer, stop */
        pthread_cond_t space; /* workers: the buffer was swapped */
        char *fill;           /* workers append here, under lock */
        char *drain;          /* the writer's, outside the lock */
        size_t len, capacity;
        bool stop;
        pthread_t writer;
};

/* Lets a batch gather for gather_ms, or until the buffer is half full. */
static void gather(struct admission_log *al)
{
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += (long)al->gather_ms * 1000000L;
        deadline.tv_sec += deadline.tv_nsec / 1000000000L;
        deadline.tv_nsec %= 1000000000L;
        while (!al->stop && al->len < al->capacity / 2)
                if (pthread_cond_timedwait(&al->wake, &al->lock, &deadline) == ETIMEDOUT)
                        break;
}

static void *writer_thread(void *arg)
{
        struct admission_log *al = arg;

        pthread_mutex_lock(&al->lock);
        for (;;) {
                while (al->len == 0 && !al->stop)
                        pthread_cond_wait(&al->wake, &al->lock);
                if (al->len == 0)
                        break; /* stopping, and everything is out */
                /* Under load this is what turns thousands of lines a second
                 * into a few hundred writes. */
                if (!al->stop && al->gather_ms > 0)
                        gather(al);
                char *out = al->fill;
                size_t n = al->len;
                al->fill = al->drain;
                al->drain = out;
                al->len = 0;
                pthread_cond_broadcast(&al->space);
                pthread_mutex_unlock(&al->lock);

                (void)write_all(al->fd, out, n); /* nowhere to report a failure: this is the log */
                pthread_mutex_lock(&al->lock);
        }
        pthread_mutex_unlock(&al->lock);
        return NULL;
}

int admission_log_new(int fd, size_t capacity, unsigned gather_ms, struct admission_log **ret)
{
        struct admission_log *al = calloc(1, sizeof(*al));
        if (!al)
                return log_error_errno(-ENOMEM, "admission log: out of memory");
        al->fd = fd;
        al->capacity =
            capacity < 2 * ADMISSION_LOG_LINE_MAX ? 2 * ADMISSION_LOG_LINE_MAX : capacity;
        al->gather_ms = gather_ms;
        /* Pages are touched only as lines arrive: an idle server keeps
         * none of this resident. */
        al->fill = malloc(al->capacity);
        al->drain = malloc(al->capacity);
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&al->wake, &attr);
        pthread_condattr_destroy(&attr);
        pthread_cond_init(&al->space, NULL);
        pthread_mutex_init(&al->lock, NULL);
        if (!al->fill || !al->drain) {
                admission_log_free(al);
                return log_error_errno(-ENOMEM, "admission log: out of memory");
        }
        int r = pthread_create(&al->writer, NULL, writer_thread, al);
        if (r != 0) {
                al->writer = 0;
                admission_log_free(al);
                return log_error_errno(-r, "cannot start the admission log writer");
        }
        *ret = al;
        return 0;
}

void admission_log_free(struct admission_log *al)
{
        if (!al)
                return;
        if (al->writer)
                thread_stop(al->writer, &al->lock, &al->wake, &al->stop);
        pthread_cond_destroy(&al->wake);
        pthread_cond_destroy(&al->space);
        pthread_mutex_destroy(&al->lock);
        free(al->fill);
        free(al->drain);
        free(al);
}

void admission_log_append(struct admission_log *al, const char *line, size_t n)
{
        pthread_mutex_lock(&al->lock);
        /* A full buffer means the output is stuck: wait for it, as a direct
         * write would have, rather than lose an admission's record. */
        while (al->len + n > al->capacity)
                pthread_cond_wait(&al->space, &al->lock);
        size_t before = al->len;
        memcpy(al->fill + al->len, line, n);
        al->len += n;
        /* Only the first line of a batch wakes the writer, and the line that
         * fills half the buffer ends its gathering early (signalling a
         * writer that is busy writing costs no syscall). */
        if (before == 0 || (before < al->capacity / 2 && al->len >= al->capacity / 2))
                pthread_cond_signal(&al->wake);
        pthread_mutex_unlock(&al->lock);
}

/* ---- formatting ------------------------------------------------------------ */

struct line {
        char *p;
        size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
        memcpy(l->p + l->len, s, n);
        l->len += n;
}

#define PUT_LITERAL(l, s) put((l), (s), sizeof(s) - 1)

/* ,"key":"escaped value" (or null), the value cut at a character boundary
 * once its output reaches ADMISSION_LOG_FIELD_MAX. */
static void put_field(struct line *l, const char *key, const char *v)
{
        static const char hex[] = "0123456789abcdef";
        PUT_LITERAL(l, ",\"");
        put(l, key, strlen(key));
        PUT_LITERAL(l, "\":");
        if (!v) {
                PUT_LITERAL(l, "null");
                return;
        }
        l->p[l->len++] = '"';
        size_t budget = ADMISSION_LOG_FIELD_MAX - 8; /* room for the worst escape and "..." */
        const unsigned char *s = (const unsigned char *)v;
        size_t start = l->len;
        for (; *s && l->len - start < budget; s++) {
                if (*s == '"' || *s == '\\') {
                        l->p[l->len++] = '\\';
                        l->p[l->len++] = (char)*s;
                } else if (*s < 0x20) {
                        put(l, "\\u00", 4);
                        l->p[l->len++] = hex[*s >> 4];
                        l->p[l->len++] = hex[*s & 15];
                } else
                        l->p[l->len++] = (char)*s;
        }
        if (*s) {
                /* Cut: drop a partial UTF-8 sequence so the line stays valid. */
                while (l->len > start && ((unsigned char)l->p[l->len - 1] & 0xC0) == 0x80)
                        l->len--;
                if (l->len > start && ((unsigned char)l->p[l->len - 1] & 0xC0) == 0xC0)
                        l->len--;
                PUT_LITERAL(l, "...");
        }
        l->p[l->len++] = '"';
}

static void put_uint(struct line *l, unsigned long long v)
{
        char tmp[24];
        size_t n = 0;
        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (n)
                l->p[l->len++] = tmp[--n];
}

/* v / 1000 with exactly three decimals, as "%.3f" would print it. */
static void put_thousandths(struct line *l, unsigned long long v)
{
        put_uint(l, v / 1000);
        l->p[l->len++] = '.';
        l->p[l->len++] = (char)('0' + v / 100 % 10);
        l->p[l->len++] = (char)('0' + v / 10 % 10);
        l->p[l->len++] = (char)('0' + v % 10);
}

size_t admission_log_format(char *buf, enum metric_route route, const struct admission_result *res,
                            double seconds)
{
        struct line l = {.p = buf};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        PUT_LITERAL(&l, "{\"ts\":");
        put_thousandths(&l, (unsigned long long)ts.tv_sec * 1000 +
                                (unsigned long long)ts.tv_nsec / 1000000);
        PUT_LITERAL(&l, ",\"msg\":\"admission\"");
        put_field(&l, "route", metric_route_name(route));
        put_field(&l, "uid", res->uid);
        put_field(&l, "kind", res->kind);
        put_field(&l, "namespace", res->namespace);
        put_field(&l, "name", res->name);
        put_field(&l, "decision", metric_outcome_name(res->outcome));
        PUT_LITERAL(&l, ",\"status\":");
        put_uint(&l, res->http_status);
        PUT_LITERAL(&l, ",\"patchOps\":");
        put_uint(&l, res->patch_ops);
        PUT_LITERAL(&l, ",\"durationMs\":");
        put_thousandths(&l, seconds > 0 ? (unsigned long long)(seconds * 1e6 + 0.5) : 0);
        put_field(&l, "reason", res->reason);
        PUT_LITERAL(&l, "}\n");
        return l.len;
}
