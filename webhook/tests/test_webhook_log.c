/* Unit tests for the batched admission log (webhook/admission_log.c): the
 * line format, and that the writer thread loses, reorders or interleaves
 * nothing, also when its output is stuck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "webhook/admission_log.h"
#include "tests/unit/fixture_tests.h"

static const char *field(const cJSON *o, const char *k)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_format_fields(void **state)
{
        (void)state;
        char line[ADMISSION_LOG_LINE_MAX];
        struct admission_result res = {.http_status = 200,
                                       .outcome = OUTCOME_PATCHED,
                                       .patch_ops = 111,
                                       .uid = "7c0e-\"quoted\"",
                                       .kind = "v1/Pod",
                                       .namespace = "ns\\with\\backslash",
                                       .name = "tab\there\nnewline",
                                       .reason = NULL};
        size_t n = admission_log_format(line, ROUTE_PODS, &res, 0.0012345);
        assert_true(n > 0 && n < sizeof(line));
        assert_int_equal(line[n - 1], '\n');
        assert_null(memchr(line, '\n', n - 1)); /* one line, whatever the fields hold */
        line[n] = '\0';
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_string_equal(field(o, "msg"), "admission");
        assert_string_equal(field(o, "route"), "/mutate-pods");
        assert_string_equal(field(o, "uid"), "7c0e-\"quoted\"");
        assert_string_equal(field(o, "kind"), "v1/Pod");
        assert_string_equal(field(o, "namespace"), "ns\\with\\backslash");
        assert_string_equal(field(o, "name"), "tab\there\nnewline");
        assert_string_equal(field(o, "decision"), "patched");
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "reason")));
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "status")->valueint, 200);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "patchOps")->valueint, 111);
        /* 1.2345 ms, three decimals, rounded */
        assert_non_null(strstr(line, "\"durationMs\":1.235,"));
        double ts = cJSON_GetObjectItemCaseSensitive(o, "ts")->valuedouble;
        assert_true(ts > (double)time(NULL) - 5 && ts < (double)time(NULL) + 5);
        cJSON_Delete(o);
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
        for (size_t i = 0; i < n;) {
                unsigned c = s[i], k = c < 0x80             ? 0
                                       : (c & 0xE0) == 0xC0 ? 1
                                       : (c & 0xF0) == 0xE0 ? 2
                                                            : 3;
                if (i + k >= n)
                        return false;
                for (unsigned j = 1; j <= k; j++)
                        if ((s[i + j] & 0xC0) != 0x80)
                                return false;
                i += k + 1;
        }
        return true;
}

static void test_format_cuts_long_fields(void **state)
{
        (void)state;
        /* Every field at its longest, the reason in 2-byte characters so a
         * cut can fall inside one, the name all escapes (6 bytes each). */
        size_t big = 20000;
        char *reason = malloc(2 * big + 1), *name = malloc(big + 1), *uid = malloc(big + 1);
        assert_non_null(reason);
        assert_non_null(name);
        assert_non_null(uid);
        for (size_t i = 0; i < big; i++) {
                reason[2 * i] = (char)0xC3;
                reason[2 * i + 1] = (char)0xA9; /* é */
                name[i] = '\x01';
                uid[i] = 'u';
        }
        reason[2 * big] = name[big] = uid[big] = '\0';
        struct admission_result res = {.http_status = 409,
                                       .outcome = OUTCOME_CONFLICT,
                                       .uid = uid,
                                       .kind = uid,
                                       .namespace = uid,
                                       .name = name,
                                       .reason = reason};
        char line[ADMISSION_LOG_LINE_MAX + 1];
        size_t n = admission_log_format(line, ROUTE_VMIS, &res, 1e9);
        assert_true(n <= ADMISSION_LOG_LINE_MAX);
        assert_true(valid_utf8((const unsigned char *)line, n));
        line[n] = '\0';
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const char *r = field(o, "reason");
        assert_non_null(r);
        assert_true(strlen(r) <= ADMISSION_LOG_FIELD_MAX);
        assert_string_equal(r + strlen(r) - 3, "...");
        assert_int_equal(strncmp(r, "\xC3\xA9\xC3\xA9", 4), 0);
        assert_true(strlen(field(o, "name")) > 10);
        cJSON_Delete(o);
        free(reason);
        free(name);
        free(uid);
}

/* ---- the writer thread ------------------------------------------------------ */

struct sink {
        int fd;
        unsigned start_after_ms; /* a stuck output until then */
        char *data;
        size_t len;
};

static void *drain(void *arg)
{
        struct sink *s = arg;
        struct timespec ts = {.tv_sec = s->start_after_ms / 1000,
                              .tv_nsec = (long)(s->start_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        size_t cap = 1 << 20;
        s->data = malloc(cap);
        for (;;) {
                if (s->len + 65536 > cap)
                        s->data = realloc(s->data, cap *= 2);
                ssize_t n = read(s->fd, s->data + s->len, 65536);
                if (n <= 0)
                        break;
                s->len += (size_t)n;
        }
        return NULL;
}

struct writer {
        struct admission_log *log;
        unsigned id, lines, width;
};

static void *append_lines(void *arg)
{
        struct writer *w = arg;
        char line[512];
        for (unsigned i = 0; i < w->lines; i++) {
                int n = snprintf(line, sizeof(line), "w%u %u ", w->id, i);
                memset(line + n, 'x', w->width - (size_t)n - 1);
                line[w->width - 1] = '\n';
                admission_log_append(w->log, line, w->width);
        }
        return NULL;
}

/* Runs `writers` threads of `lines` lines each through a log of the given
 * capacity into a pipe drained from start_after_ms on, then checks every
 * line arrived whole, once, and in its thread's order. */
static void run_writers(unsigned writers, unsigned lines, unsigned width, size_t capacity,
                        unsigned start_after_ms)
{
        int p[2];
        assert_int_equal(pipe(p), 0);
        struct sink sink = {.fd = p[0], .start_after_ms = start_after_ms};
        pthread_t reader, th[8];
        assert_int_equal(pthread_create(&reader, NULL, drain, &sink), 0);
        struct admission_log *log = NULL;
        assert_int_equal(admission_log_new(p[1], capacity, 5, &log), 0);
        struct writer w[8];
        assert_true(writers <= 8);
        for (unsigned i = 0; i < writers; i++) {
                w[i] = (struct writer){.log = log, .id = i, .lines = lines, .width = width};
                assert_int_equal(pthread_create(&th[i], NULL, append_lines, &w[i]), 0);
        }
        for (unsigned i = 0; i < writers; i++)
                pthread_join(th[i], NULL);
        admission_log_free(log); /* writes what is left */
        close(p[1]);
        pthread_join(reader, NULL);
        close(p[0]);

        assert_int_equal(sink.len, (size_t)writers * lines * width);
        unsigned next[8] = {0};
        for (size_t off = 0; off < sink.len; off += width) {
                unsigned id, seq;
                char head[32]; /* sscanf on the whole buffer would strlen it each time */
                memcpy(head, sink.data + off, sizeof(head) - 1);
                head[sizeof(head) - 1] = '\0';
                assert_int_equal(sscanf(head, "w%u %u ", &id, &seq), 2);
                assert_true(id < writers);
                assert_int_equal(seq, next[id]); /* in order, none lost or repeated */
                next[id]++;
                assert_int_equal(sink.data[off + width - 1], '\n');
                assert_int_equal(sink.data[off + width - 2], 'x'); /* not interleaved */
        }
        for (unsigned i = 0; i < writers; i++)
                assert_int_equal(next[i], lines);
        free(sink.data);
}

static void test_threads_lose_nothing(void **state)
{
        (void)state;
        run_writers(4, 20000, 200, 256 * 1024, 0);
}

/* The pipe holds 64 KiB and the log 2 x 8 KiB: with the reader away for
 * 300 ms the workers must wait, not drop. */
static void test_stuck_output_waits(void **state)
{
        (void)state;
        run_writers(3, 2000, 100, 8 * 1024, 300);
}

/* A single line, with nothing after it, still goes out (the writer wakes
 * for the first line of a batch). */
static void test_lone_line_is_written(void **state)
{
        (void)state;
        int p[2];
        assert_int_equal(pipe(p), 0);
        struct admission_log *log = NULL;
        assert_int_equal(admission_log_new(p[1], 64 * 1024, 10, &log), 0);
        admission_log_append(log, "lone\n", 5);
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        char buf[16];
        assert_int_equal(read(p[0], buf, sizeof(buf)), 5);
        assert_memory_equal(buf, "lone\n", 5);
        admission_log_free(log);
        close(p[0]);
        close(p[1]);
}

int main(void)
{
        return run_plain_tests(test_format_fields, test_format_cuts_long_fields,
                               test_threads_lose_nothing, test_stuck_output_waits,
                               test_lone_line_is_written);
}
