/* Run `make functest` with streamed output and a progress line (see
 * functest.h). spawn_run() captures whole outputs; here we need the bytes as
 * they come, to count ginkgo's spec markers live, so the loop is our own. */
#include "e2e/functest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/spawn.h"
#include "common/util.h"

extern char **environ;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
        got_signal = sig;
}

char **functest_build_env(char *const *env_set, char *const *env_unset)
{
        _cleanup_strv_free_ char **env = NULL;

        for (char **e = environ; e && *e; e++) {
                size_t k = strcspn(*e, "=");
                bool drop = false;

                for (size_t i = 0; env_unset && env_unset[i]; i++)
                        if (strlen(env_unset[i]) == k && strneq(*e, env_unset[i], k))
                                drop = true;
                for (size_t i = 0; env_set && env_set[i]; i++)
                        if (strneq(*e, env_set[i], k + 1))
                                drop = true;
                if (!drop && strv_extend(&env, *e) < 0)
                        return NULL;
        }
        for (size_t i = 0; env_set && env_set[i]; i++)
                if (strv_extend(&env, env_set[i]) < 0)
                        return NULL;
        if (!env)
                env = calloc(1, sizeof(char *));
        return TAKE_PTR(env);
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

static void emit(struct streamer *s, const char *data, size_t n)
{
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

static void child_exec(const struct functest_opts *o, int out_fd, char **env)
{
        static char *const default_argv[] = {"make", "functest", NULL};
        char *const *argv = o->argv ? o->argv : default_argv;
        _cleanup_free_ char *exe = NULL;
        int devnull = open("/dev/null", O_RDONLY);
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        /* Own process group: we decide when the tests get SIGINT, and can
         * kill every process make started. */
        setpgid(0, 0);
        dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        if (chdir(o->dir) < 0) {
                fprintf(stderr, "vgpuenv: cannot enter %s: %s\n", o->dir, strerror(errno));
                _exit(127);
        }
        environ = env;
        exe = find_program(argv[0]);
        if (!exe) {
                fprintf(stderr, "vgpuenv: %s: command not found\n", argv[0]);
                _exit(127);
        }
        execve(exe, argv, env);
        fprintf(stderr, "vgpuenv: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
}

int functest_run(const struct functest_opts *o, struct functest_result *ret)
{
        _cleanup_strv_free_ char **env = functest_build_env(o->env_set, o->env_unset);
        _cleanup_fclose_ FILE *log = NULL;
        struct streamer s = {.o = o, .at_line_start = true};
        struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
        double grace = o->grace > 0 ? o->grace : 30, kill_at = 0;
        int pipefd[2], status = 0, r = 0;
        bool sent_int = false, eof = false;
        pid_t pid;

        *ret = (struct functest_result){0};
        if (!env)
                return log_error_errno(ENOMEM, "Out of memory");
        if (o->log_path) {
                log = fopen(o->log_path, "we");
                if (!log)
                        return log_error_errno(errno, "Cannot create %s: %m", o->log_path);
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return log_error_errno(errno, "pipe: %m");

        got_signal = 0;
        /* No SA_RESTART: poll() returns EINTR and we react at once. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);

        pid = fork();
        if (pid < 0) {
                r = log_error_errno(errno, "fork: %m");
                close(pipefd[0]);
                close(pipefd[1]);
                goto restore;
        }
        if (pid == 0)
                child_exec(o, pipefd[1], env);
        setpgid(pid, pid);
        close(pipefd[1]);

        s.log = log;
        s.tty = isatty(STDERR_FILENO);
        s.started = s.last_print = now_seconds();
        draw_progress(&s, true);

        while (!eof) {
                struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
                char buf[16384];
                int k;

                if (got_signal && !sent_int) {
                        clear_progress(&s);
                        log_notice("Got %s, stopping the tests (again to kill them at once)...",
                                   strsignal(got_signal));
                        kill(-pid, SIGINT);
                        sent_int = true;
                        ret->interrupted = true;
                        kill_at = now_seconds() + grace;
                        got_signal = 0;
                } else if (got_signal && sent_int) {
                        kill_at = now_seconds();
                        got_signal = 0;
                }
                if (kill_at > 0 && now_seconds() >= kill_at) {
                        kill(-pid, SIGKILL);
                        kill_at = 0;
                }

                k = poll(&pfd, 1, 1000);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(errno, "poll: %m");
                        kill(-pid, SIGKILL);
                        break;
                }
                if (k == 0) {
                        draw_progress(&s, false);
                        continue;
                }
                ssize_t n = read(pipefd[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        eof = true;
                        break;
                }
                emit(&s, buf, (size_t)n);
        }
        close(pipefd[0]);
        /* Make may have exited while a grandchild keeps the pipe; the
         * group kill above covers the interrupted case. */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (WIFEXITED(status))
                ret->exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                ret->exit_code = 128 + WTERMSIG(status);
        /* A signal that arrived after the output ended still marks the run. */
        if (got_signal)
                ret->interrupted = true;
        ret->elapsed = now_seconds() - s.started;
        ret->progress = s.cur;
        if (s.len > 0 && s.log)
                fputc('\n', s.log);
        if (!s.at_line_start && !o->quiet)
                fputc('\n', stdout);
        s.at_line_start = true;
        clear_progress(&s);
        /* The final count, unless the last line already said it. */
        draw_progress(&s, s.tty || s.cur.done != s.last_reported);
        if (s.tty)
                fputc('\n', stderr);
        free(s.line);
restore:
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return r;
}
