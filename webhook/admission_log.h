/* The admission log: one JSON line per admission, written by a background
 * thread in batches instead of one write(2) per line by the worker that
 * answered. At saturation the write was 5% of a worker's time and the only
 * syscall on the answer path that carries no network traffic.
 *
 * A worker formats its line on the stack (admission_log_format) and copies
 * it into a shared buffer under a short lock; the writer waits for a first
 * line, lets the batch gather for a few milliseconds, swaps buffers and
 * writes (sooner when the buffer is half full). Lines of one thread keep
 * their order and never interleave. A line is never dropped: when the
 * output is stuck for so long that the buffer fills, workers wait for it,
 * as they did when each wrote its own line. A crash loses at most the
 * batch being gathered. */
#pragma once

#include <stddef.h>

#include "webhook/admission.h"
#include "webhook/metrics.h"

struct admission_log;

/* fd: where lines go (stderr's descriptor), not closed; capacity: bytes
 * held per buffer; gather_ms: how long a batch may gather. */
int admission_log_new(int fd, size_t capacity, unsigned gather_ms, struct admission_log **ret);
/* Writes what is buffered and stops the writer. NULL is fine. */
void admission_log_free(struct admission_log *al);

/* Copies one line (with its '\n', at most ADMISSION_LOG_LINE_MAX bytes). */
void admission_log_append(struct admission_log *al, const char *line, size_t n);

/* The longest line admission_log_format writes: every string field is cut
 * at ADMISSION_LOG_FIELD_MAX bytes of output. */
#define ADMISSION_LOG_FIELD_MAX 512
#define ADMISSION_LOG_LINE_MAX (8 * ADMISSION_LOG_FIELD_MAX)

/* Formats the admission's line into buf (ADMISSION_LOG_LINE_MAX bytes);
 * returns its length including the '\n'. */
size_t admission_log_format(char *buf, enum metric_route route, const struct admission_result *res,
                            double seconds);
