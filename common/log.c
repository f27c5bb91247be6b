/* Implementation of the logger (see log.h). Lines go to stderr, whole lines
 * at a time, so output of parallel node workers does not interleave. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level max_level = LOG_INFO;
static const char *log_prefix = "vgpuenv";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level level)
{
        max_level = level;
}

enum log_level log_get_level(void)
{
        return max_level;
}

void log_set_prefix(const char *prefix)
{
        log_prefix = prefix;
}

static void log_va(enum log_level level, const char *fmt, va_list ap)
{
        static const char *const tags[] = {
                [LOG_ERR] = "error: ",
                [LOG_WARNING] = "warning: ",
                [LOG_NOTICE] = "",
                [LOG_INFO] = "",
                [LOG_DEBUG] = "debug: ",
        };
        char buf[4096];

        if (level > max_level)
                return;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        pthread_mutex_lock(&log_lock);
        fprintf(stderr, "%s: %s%s\n", log_prefix, tags[level], buf);
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
}

void log_full(enum log_level level, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
}

int log_full_errno(enum log_level level, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
        if (err == 0)
                return -EIO;
        return err < 0 ? err : -err;
}

double now_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct step step_begin(const char *what)
{
        log_info("==> %s", what);
        return (struct step){ .what = what, .started = now_seconds() };
}

void step_end(const struct step *s, int r)
{
        double dt = now_seconds() - s->started;

        if (r >= 0)
                log_info("<== %s: ok (%.1fs)", s->what, dt);
        else
                log_info("<== %s: failed after %.1fs (%s)", s->what, dt, strerror(-r));
}
