/* Implementation of the logger (see log.h). Lines go to stderr, whole lines
 * at a time, so output of parallel node workers does not interleave. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_INFO;
static const char *log_prefix = "vgpuenv";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The run's log file: every line, whatever the level, with a time stamp. */
static int log_file_fd = -1;

void log_set_file(int fd)
{
        log_file_fd = fd;
}

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
            [LOG_ERR] = "error: ", [LOG_WARNING] = "warning: ", [LOG_NOTICE] = "",
            [LOG_INFO] = "",       [LOG_DEBUG] = "debug: ",
        };
        char buf[4096];

        if (level > max_level && log_file_fd < 0)
                return;
        vsnprintf(buf, sizeof(buf), fmt, ap);
        pthread_mutex_lock(&log_lock);
        if (level <= max_level) {
                fprintf(stderr, "%s: %s%s\n", log_prefix, tags[level], buf);
                fflush(stderr);
        }
        if (log_file_fd >= 0) {
                struct timespec ts;
                struct tm tm;
                char line[4200];
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                int n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s%s\n", tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tags[level], buf);
                if (n > 0)
                        (void)!write(log_file_fd, line,
                                     (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        }
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

        /* So that %m in fmt names err, not whatever errno is by now. */
        errno = err < 0 ? -err : err;
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

struct log_step step_begin(const char *what)
{
        log_info("==> %s", what);
        return (struct log_step){.what = what, .started = now_seconds()};
}

void step_end(const struct log_step *s, int r)
{
        double dt = now_seconds() - s->started;

        if (r >= 0)
                log_info("<== %s: ok (%.1fs)", s->what, dt);
        else
                log_info("<== %s: failed after %.1fs (%s)", s->what, dt, strerror(-r));
}
