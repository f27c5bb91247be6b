/* The logger: the one piece of global mutable state vgpuenv allows.
 *
 * Errors are logged once, where they are understood; the caller then only
 * propagates the -errno. Progress lines carry the elapsed time of long steps
 * (image build, appliance launch, boot, ssh wait) so a user sees movement. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#include "common/macro.h"

enum log_level { LOG_ERR = 0, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Also write every line, whatever the level, to fd (the run's log; -1:
 * stop). */
void log_set_file(int fd);
/* Prefix for every line (the program name); not owned. */
void log_set_prefix(const char *prefix);

/* Log and return -abs(err) (or -EIO when err is 0), so callers can write
 * "return log_error_errno(r, ...)". */
int log_full_errno(enum log_level level, int err, const char *fmt, ...) _printf_(3, 4);
void log_full(enum log_level level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(err, ...) log_full_errno(LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(LOG_WARNING, (err), __VA_ARGS__)

/* Monotonic seconds since an arbitrary point, for step timings. */
double now_seconds(void);

/* A long step: "step_begin" prints "==> what", "step_end" prints
 * "<== what: ok (12.3s)" or "failed". */
struct log_step {
        const char *what;
        double started;
};
struct log_step step_begin(const char *what);
void step_end(const struct log_step *s, int r);
