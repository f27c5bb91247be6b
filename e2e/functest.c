/* Run `make functest` with streamed output and a progress line (see
 * functest.h). The process runner (common/proc.h) hands us the bytes as
 * they come, so ginkgo's spec markers are counted live; the run's cancel
 * token turns the first Ctrl-C into SIGINT for the tests and the second
 * into SIGKILL. */
#include "e2e/functest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/proc.h"
#include "common/util.h"

char **functest_build_env(char *const *env_set, char *const *env_unset)
{
        return proc_build_env(env_set, env_unset);
}

struct streamer {
        const struct functest_opts *o;
        FILE *log;
        bool tty;           /* progress redrawn in place on stderr */
        bool at_line_start; /* our stdout cursor is at column 0 */
        /* What of the progress is on the terminal: nothing, a line of its
         * own, or a tail after a half-printed output line. */
        enum { DRAWN_NONE, DRAWN_LINE, DRAWN_TAIL } drawn;
        char *line; /* the current, incomplete output line */
        size_t len, cap;
        struct ginkgo_progress base; /* progress before the current line */
        struct ginkgo_progress cur;
        unsigned last_reported; /* done count last printed (non-tty) */
        double started, last_print;
        bool told_stop; /* the "stopping the tests" notice was printed */
};

static void draw_progress(struct streamer *s, bool force)
{
        char buf[128];
        double now = now_seconds();

        ginkgo_progress_format(&s->cur, now - s->started, buf, sizeof(buf));
        if (s->tty) {
                if (s->at_line_start || s->o->quiet) {
                        fprintf(stderr, "\r\033[K[e2e] %s", buf);
                        s->drawn = DRAWN_LINE;
                } else {
                        /* Behind ginkgo's "•••" line: save the cursor, print,
                         * restore; the next output erases it with \033[K. */
                        fprintf(stderr, "\0337  [e2e] %s\0338", buf);
                        s->drawn = DRAWN_TAIL;
                }
        } else if (force || s->cur.done != s->last_reported || now - s->last_print >= 60) {
                /* CI logs: one line per change, and a heartbeat each minute. */
                if (!s->at_line_start && !s->o->quiet)
                        return;
                fprintf(stderr, "vgpuenv: e2e progress: %s\n", buf);
                s->last_reported = s->cur.done;
                s->last_print = now;
        }
        fflush(stderr);
}

static void clear_progress(struct streamer *s)
{
        if (s->tty && s->drawn != DRAWN_NONE) {
                fputs(s->drawn == DRAWN_LINE ? "\r\033[K" : "\033[K", stderr);
                s->drawn = DRAWN_NONE;
        }
}

static int line_append(struct streamer *s, const char *p, size_t n)
{
        if (s->len + n + 1 > s->cap) {
                size_t cap = (s->len + n + 1) * 2;
                char *l = realloc(s->line, cap);
                if (!l)
                        return -ENOMEM;
                s->line = l;
                s->cap = cap;
        }
        memcpy(s->line + s->len, p, n);
        s->len += n;
        s->line[s->len] = 0;
        return 0;
}

/* Re-evaluate the current line from the progress before it: ginkgo's
 * succinct mode prints "•" markers without a newline, so the count must move
 * while the line is still open. */
static int feed(struct streamer *s, const char *data, size_t n)
{
        while (n > 0) {
                const char *nl = memchr(data, '\n', n);
                size_t k = nl ? (size_t)(nl - data) : n;

                if (line_append(s, data, k) < 0)
                        return -ENOMEM;
                s->cur = s->base;
                ginkgo_progress_feed(&s->cur, s->line);
                if (!nl)
                        break;
                s->base = s->cur;
                s->len = 0;
                s->line[0] = 0;
                data += k + 1;
                n -= k + 1;
        }
        return 0;
}

static void notice_stop(struct streamer *s)
{
        if (s->told_stop || !s->o->cancel || cancel_check(s->o->cancel) != -ECANCELED)
                return;
        clear_progress(s);
        log_notice("Interrupted: stopping the tests with SIGINT (%.0f s to finish; Ctrl-C again "
                   "kills them at once)...",
                   s->o->grace > 0 ? s->o->grace : FUNCTEST_GRACE);
        s->told_stop = true;
}

static void on_output(void *userdata, int stream, const char *data, size_t n)
{
        struct streamer *s = userdata;

        (void)stream; /* stderr is merged into stdout, in order */
        notice_stop(s);
        if (s->log) {
                fwrite(data, 1, n, s->log);
                fflush(s->log);
        }
        if (!s->o->quiet) {
                clear_progress(s);
                fwrite(data, 1, n, stdout);
                fflush(stdout);
                s->at_line_start = data[n - 1] == '\n';
        }
        feed(s, data, n);
        draw_progress(s, false);
}

static void on_idle(void *userdata)
{
        struct streamer *s = userdata;

        notice_stop(s);
        draw_progress(s, false);
}

/* The output ended: finish the open line and print the final count. */
static void finish_output(struct streamer *s)
{
        if (s->len > 0 && s->log)
                fputc('\n', s->log);
        if (!s->at_line_start && !s->o->quiet)
                fputc('\n', stdout);
        s->at_line_start = true;
        clear_progress(s);
        /* The final count, unless the last line already said it. */
        draw_progress(s, s->tty || s->cur.done != s->last_reported);
        if (s->tty)
                fputc('\n', stderr);
}

int functest_run(const struct functest_opts *o, struct functest_result *ret)
{
        static char *const default_argv[] = {"make", "functest", NULL};
        _cleanup_fclose_ FILE *log = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        struct streamer s = {.o = o, .at_line_start = true};
        int r;

        *ret = (struct functest_result){0};
        if (o->log_path && !(log = fopen(o->log_path, "we")))
                return log_error_errno(errno, "Cannot create %s: %m", o->log_path);
        s.log = log;
        s.tty = isatty(STDERR_FILENO);
        s.started = s.last_print = now_seconds();
        draw_progress(&s, true);
        struct proc_opts po = {
            .argv = o->argv ? o->argv : default_argv,
            .env_set = o->env_set,
            .env_unset = o->env_unset,
            .cwd = o->dir,
            .out = PROC_DISCARD, /* delivered through on_output */
            .err = PROC_TO_STDOUT,
            .log_fd = -1,
            .on_output = on_output,
            .on_idle = on_idle,
            .userdata = &s,
            .cancel = o->cancel,
            .cancel_signal = SIGINT, /* ginkgo reports what ran when interrupted */
            .kill_grace = o->grace > 0 ? o->grace : FUNCTEST_GRACE,
        };
        r = proc_run(&po, &res);
        finish_output(&s);
        free(s.line);
        if (r == -ENOENT)
                return log_error_errno(ENOENT, "%s: command not found (or %s does not exist)",
                                       po.argv[0], o->dir);
        if (r < 0)
                return log_error_errno(r, "Cannot run %s in %s: %m", po.argv[0], o->dir);
        ret->exit_code = res.exit_code;
        ret->interrupted = res.stopped_by == -ECANCELED;
        ret->elapsed = res.elapsed;
        ret->progress = s.cur;
        return 0;
}
