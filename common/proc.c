/* The process runner (see proc.h): fork/exec with pipes, one poll loop for
 * stdin, stdout, stderr and the child's exit (a pidfd), a cancel token. */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

extern char **environ;

/* What is kept of a program's output for the error message. */
#define TAIL_BYTES 6144

void proc_result_done(struct proc_result *r)
{
        buf_done(&r->out);
        buf_done(&r->err);
        buf_done(&r->tail);
}

char *find_program(const char *name)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = NULL;

        if (isempty(name))
                return NULL;
        if (strchr(name, '/'))
                return access(name, X_OK) == 0 ? strdup(name) : NULL;
        copy = strdup(isempty(path) ? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" : path);
        if (!copy)
                return NULL;
        for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir;
             dir = strtok_r(NULL, ":", &save)) {
                char *p = strdup_printf("%s/%s", dir, name);
                if (p && access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

char **proc_build_env(char *const *env_set, char *const *env_unset)
{
        _cleanup_strv_free_ char **env = NULL;

        for (char **e = environ; e && *e; e++) {
                size_t k = strcspn(*e, "=");
                bool drop = false;
                for (size_t i = 0; env_unset && env_unset[i] && !drop; i++)
                        drop = strlen(env_unset[i]) == k && strneq(*e, env_unset[i], k);
                for (size_t i = 0; env_set && env_set[i] && !drop; i++)
                        drop = strneq(*e, env_set[i], k + 1);
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

/* ---- the child: async-signal-safe calls only ------------------------------ */

struct child_plan {
        const char *exe, *cwd;
        char *const *argv;
        char **env;
        int in, out, err; /* fds to become 0, 1, 2 */
        int report;       /* close-on-exec pipe for an exec failure's errno */
};

static _noreturn_ void child_run(const struct child_plan *c)
{
        static const int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGCHLD, SIGHUP};
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t none;
        int e;

        /* An ignored signal stays ignored across exec: the program must
         * start with default dispositions and no blocked signals. */
        for (size_t i = 0; i < ELEMENTSOF(reset); i++)
                sigaction(reset[i], &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        if (dup2(c->in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0)
                goto fail;
        if (c->cwd && chdir(c->cwd) < 0)
                goto fail;
        execve(c->exe, c->argv, c->env);
fail:
        e = errno;
        (void)!write(c->report, &e, sizeof(e));
        _exit(127);
}

/* ---- the parent --------------------------------------------------------- */

struct stream {
        int fd; /* read end, -1 when closed */
        enum proc_output mode;
        struct buf *capture;
        struct buf partial; /* an unfinished line for the log */
        int number;         /* 1 or 2 */
};

struct runner {
        const struct proc_opts *o;
        struct proc_result *res;
        struct stream s[2];
        int in_fd;
        size_t in_off;
        pid_t pid;
        int pidfd;
        bool reaped;
        int status;
        bool signalled, killed;
        double kill_at, drain_until;
};

static void close_fd(int *fd)
{
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
}

static void close_pair(int p[2])
{
        close_fd(&p[0]);
        close_fd(&p[1]);
}

static void log_line(struct runner *u, const char *line, size_t n)
{
        const struct proc_opts *o = u->o;
        _cleanup_buf_ struct buf b = {0};

        if (buf_printf(&b, "%s| ", o->log_prefix ? o->log_prefix : "") < 0 ||
            buf_append(&b, line, n) < 0 || buf_puts(&b, "\n") < 0)
                return;
        (void)write_all(o->log_fd, b.data, b.len);
}

static void to_log(struct runner *u, struct stream *s, const char *data, size_t n)
{
        while (n > 0) {
                const char *nl = memchr(data, '\n', n);
                size_t k = nl ? (size_t)(nl - data) : n;
                if (!nl) {
                        (void)buf_append(&s->partial, data, k);
                        return;
                }
                if (s->partial.len) {
                        (void)buf_append(&s->partial, data, k);
                        log_line(u, s->partial.data, s->partial.len);
                        buf_consume(&s->partial, s->partial.len);
                } else
                        log_line(u, data, k);
                data += k + 1;
                n -= k + 1;
        }
}

static void keep_tail(struct buf *t, const char *data, size_t n)
{
        if (buf_append(t, data, n) < 0 || t->len <= TAIL_BYTES)
                return;
        const char *cut = t->data + (t->len - TAIL_BYTES);
        const char *nl = memchr(cut, '\n', t->len - (size_t)(cut - t->data));
        buf_consume(t, nl ? (size_t)(nl + 1 - t->data) : (size_t)(cut - t->data));
}

static void deliver(struct runner *u, struct stream *s, const char *data, size_t n)
{
        const struct proc_opts *o = u->o;

        if (s->mode == PROC_CAPTURE)
                (void)buf_append(s->capture, data, n);
        else if (s->mode == PROC_INHERIT)
                (void)write_all(s->number, data, n);
        else if (s->mode == PROC_TO_STDERR)
                (void)write_all(2, data, n);
        if (o->echo && s->mode != PROC_INHERIT && s->mode != PROC_TO_STDERR)
                (void)write_all(2, data, n);
        if (o->log_fd >= 0)
                to_log(u, s, data, n);
        keep_tail(&u->res->tail, data, n);
        if (o->on_output)
                o->on_output(o->userdata, s->number, data, n);
}

static void read_stream(struct runner *u, struct stream *s)
{
        char chunk[16384];
        ssize_t k = read(s->fd, chunk, sizeof(chunk));

        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (k <= 0) {
                if (s->partial.len && u->o->log_fd >= 0)
                        log_line(u, s->partial.data, s->partial.len);
                buf_consume(&s->partial, s->partial.len);
                close_fd(&s->fd);
                return;
        }
        deliver(u, s, chunk, (size_t)k);
}

static void write_stdin(struct runner *u)
{
        const char *data = u->o->stdin_data;
        size_t size = u->o->stdin_size;
        ssize_t k = write(u->in_fd, data + u->in_off, size - u->in_off);

        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (k < 0) {
                /* EPIPE: the program stopped reading; its exit status tells
                 * whether that was a problem. */
                close_fd(&u->in_fd);
                return;
        }
        u->in_off += (size_t)k;
        if (u->in_off >= size)
                close_fd(&u->in_fd);
}

static void try_reap(struct runner *u)
{
        if (u->reaped)
                return;
        pid_t w = waitpid(u->pid, &u->status, WNOHANG);
        if (w == u->pid) {
                u->reaped = true;
                /* A grandchild may keep the pipes open: read what is there,
                 * then stop waiting for it. */
                u->drain_until = now_seconds() + 0.5;
        }
}

static void watch_cancel(struct runner *u)
{
        const struct proc_opts *o = u->o;
        double now = now_seconds();
        int r;

        if (u->reaped || !o->cancel)
                return;
        if (!u->signalled && (r = cancel_check(o->cancel)) < 0) {
                u->res->stopped_by = r;
                kill(-u->pid, o->cancel_signal ? o->cancel_signal : SIGTERM);
                u->signalled = true;
                u->kill_at = now + (o->kill_grace > 0 ? o->kill_grace : 1.0);
        }
        if (u->signalled && !u->killed && (now >= u->kill_at || cancel_is_hard(o->cancel))) {
                kill(-u->pid, SIGKILL);
                u->killed = true;
        }
}

static int poll_timeout(struct runner *u)
{
        double t = 1.0;

        if (u->o->cancel && !u->reaped)
                t = 0.1; /* the token is polled: a Ctrl-C is seen within 100 ms */
        if (u->reaped)
                t = u->drain_until - now_seconds();
        if (u->pidfd < 0 && !u->reaped && t > 0.05)
                t = 0.05; /* no pidfd: waitpid is polled */
        return t <= 0 ? 0 : (int)(t * 1000) + 1;
}

static void run_loop(struct runner *u)
{
        for (;;) {
                struct pollfd pfd[4];
                int n = 0, ip = -1, is[2] = {-1, -1}, id = -1;

                try_reap(u);
                watch_cancel(u);
                if (u->reaped &&
                    ((u->s[0].fd < 0 && u->s[1].fd < 0) || now_seconds() >= u->drain_until))
                        return;
                if (u->in_fd >= 0 && !u->reaped) {
                        ip = n;
                        pfd[n++] = (struct pollfd){.fd = u->in_fd, .events = POLLOUT};
                }
                for (int i = 0; i < 2; i++)
                        if (u->s[i].fd >= 0) {
                                is[i] = n;
                                pfd[n++] = (struct pollfd){.fd = u->s[i].fd, .events = POLLIN};
                        }
                if (u->pidfd >= 0 && !u->reaped) {
                        id = n;
                        pfd[n++] = (struct pollfd){.fd = u->pidfd, .events = POLLIN};
                }
                int k = poll(pfd, (nfds_t)n, poll_timeout(u));
                if (k < 0 && errno != EINTR)
                        return;
                if (k == 0 && u->o->on_idle)
                        u->o->on_idle(u->o->userdata);
                if (k <= 0)
                        continue;
                if (ip >= 0 && pfd[ip].revents)
                        write_stdin(u);
                for (int i = 0; i < 2; i++)
                        if (is[i] >= 0 && pfd[is[i]].revents)
                                read_stream(u, &u->s[i]);
                if (id >= 0 && pfd[id].revents)
                        try_reap(u);
        }
}

static bool wants_pipe(const struct proc_opts *o, enum proc_output mode)
{
        if (mode == PROC_TO_STDOUT)
                return false;
        return mode == PROC_CAPTURE || o->log_fd >= 0 || o->echo || o->on_output;
}

/* The child's end of one output stream. */
static int child_end(const struct proc_opts *o, enum proc_output mode, int number, int pipe_w,
                     int devnull)
{
        if (pipe_w >= 0)
                return pipe_w;
        if (mode == PROC_INHERIT)
                return number;
        if (mode == PROC_TO_STDERR)
                return 2;
        (void)o;
        return devnull;
}

/* SIGPIPE, blocked in this thread while we feed a child's stdin: writing to
 * a program that exited raises it here, not in the whole process. */
struct pipe_guard {
        sigset_t set, old;
        bool was_pending;
};

static void pipe_guard_begin(struct pipe_guard *g)
{
        sigset_t pending;

        sigemptyset(&g->set);
        sigaddset(&g->set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
        sigpending(&pending);
        g->was_pending = sigismember(&pending, SIGPIPE);
}

static void pipe_guard_end(struct pipe_guard *g)
{
        sigset_t pending;

        sigpending(&pending);
        if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
                struct timespec zero = {0, 0};
                sigtimedwait(&g->set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* The parent's side once the child exists: the exec report, the loop, the
 * reap. Returns 0 or the errno of a failed exec (negative). */
static int supervise(struct runner *u, int report_fd)
{
        const struct proc_opts *o = u->o;
        int e = 0;

        setpgid(u->pid, u->pid);
        cancel_registry_add(o->cancel ? o->cancel->registry : NULL, u->pid);
        /* EOF at exec (close-on-exec), or the errno of a failed exec. */
        while (read(report_fd, &e, sizeof(e)) < 0 && errno == EINTR)
                ;
        if (e == 0) {
                if (u->in_fd >= 0)
                        fcntl(u->in_fd, F_SETFL, O_NONBLOCK);
                u->pidfd = (int)syscall(SYS_pidfd_open, u->pid, 0);
                run_loop(u);
        }
        if (!u->reaped) {
                if (e == 0) /* the loop gave up (poll failed): do not leave it running */
                        kill(-u->pid, SIGKILL);
                while (waitpid(u->pid, &u->status, 0) < 0 && errno == EINTR)
                        ;
        }
        cancel_registry_remove(o->cancel ? o->cancel->registry : NULL, u->pid);
        close_fd(&u->pidfd);
        close_fd(&u->in_fd);
        for (int i = 0; i < 2; i++) {
                close_fd(&u->s[i].fd);
                buf_done(&u->s[i].partial);
        }
        return -e;
}

static int finish_result(const struct proc_opts *o, const struct runner *u, struct proc_result *ret,
                         double t0)
{
        if (WIFEXITED(u->status))
                ret->exit_code = WEXITSTATUS(u->status);
        else if (WIFSIGNALED(u->status))
                ret->exit_code = 128 + WTERMSIG(u->status);
        ret->elapsed = now_seconds() - t0;
        if (o->out == PROC_CAPTURE && !ret->out.data && buf_append(&ret->out, "", 0) < 0)
                return -ENOMEM;
        if (o->err == PROC_CAPTURE && !ret->err.data && buf_append(&ret->err, "", 0) < 0)
                return -ENOMEM;
        return 0;
}

int proc_run(const struct proc_opts *o, struct proc_result *ret)
{
        _cleanup_free_ char *exe = NULL;
        _cleanup_strv_free_ char **env = NULL;
        int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1};
        _cleanup_close_ int devnull = -1;
        struct pipe_guard guard;
        double t0 = now_seconds();
        int r;

        *ret = (struct proc_result){0};
        if (!o->argv || !o->argv[0])
                return -EINVAL;
        if (!(exe = find_program(o->argv[0])))
                return -ENOENT;
        if (!(env = proc_build_env(o->env_set, o->env_unset)))
                return -ENOMEM;
        if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                return negative_errno();
        if ((o->stdin_data && pipe2(in, O_CLOEXEC) < 0) ||
            (wants_pipe(o, o->out) && pipe2(out, O_CLOEXEC) < 0) ||
            (wants_pipe(o, o->err) && pipe2(err, O_CLOEXEC) < 0) || pipe2(rep, O_CLOEXEC) < 0) {
                r = negative_errno();
                goto out;
        }
        struct child_plan cp = {
            .exe = exe,
            .cwd = o->cwd,
            .argv = o->argv,
            .env = env,
            .in = o->stdin_data      ? in[0]
                  : o->stdin_inherit ? 0
                                     : devnull,
            .out = child_end(o, o->out, 1, out[1], devnull),
            .err = child_end(o, o->err, 2, err[1], devnull),
            .report = rep[1],
        };
        if (o->err == PROC_TO_STDOUT)
                cp.err = cp.out;
        struct runner u = {
            .o = o,
            .res = ret,
            .in_fd = in[1],
            .pidfd = -1,
            .s = {{.fd = out[0], .mode = o->out, .capture = &ret->out, .number = 1},
                  {.fd = err[0], .mode = o->err, .capture = &ret->err, .number = 2}},
        };
        pipe_guard_begin(&guard);
        u.pid = fork();
        if (u.pid == 0)
                child_run(&cp);
        if (u.pid < 0) {
                r = negative_errno();
                pipe_guard_end(&guard);
                goto out;
        }
        in[1] = -1; /* the runner owns it now */
        close_fd(&in[0]);
        close_fd(&out[1]);
        close_fd(&err[1]);
        close_fd(&rep[1]);
        out[0] = err[0] = -1; /* the runner's streams */
        r = supervise(&u, rep[0]);
        pipe_guard_end(&guard);
        if (r < 0)
                proc_result_done(ret);
        else
                r = finish_result(o, &u, ret, t0);
out:
        close_pair(in);
        close_pair(out);
        close_pair(err);
        close_pair(rep);
        return r;
}

int proc_run_checked(const char *what, char *const *argv, const struct cancel *cancel, int log_fd,
                     char **ret_out)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        struct proc_opts o = {
            .argv = argv,
            .out = ret_out ? PROC_CAPTURE : PROC_DISCARD,
            .err = PROC_DISCARD,
            .log_fd = log_fd,
            .log_prefix = what,
            .cancel = cancel,
        };
        int r = proc_run(&o, &res);

        if (r == -ENOENT)
                return log_error_errno(r, "%s: %s not found in PATH", what, argv[0]);
        if (r < 0)
                return log_error_errno(r, "%s: cannot run %s: %s", what, argv[0], strerror(-r));
        if (res.stopped_by == -ETIMEDOUT) {
                const struct cancel *k = cancel_culprit(cancel);
                return log_error_errno(ETIMEDOUT, "%s: stopped, %s ran out of time", what,
                                       k && k->what ? k->what : "its deadline");
        }
        if (res.stopped_by < 0)
                return log_error_errno(ECANCELED, "%s: stopped, interrupted", what);
        if (res.exit_code != 0)
                return log_error_errno(EIO, "%s: %s exited with %d%s%s", what, argv[0],
                                       res.exit_code, res.tail.len ? ":\n" : "",
                                       res.tail.len ? res.tail.data : "");
        if (ret_out)
                *ret_out = buf_steal(&res.out);
        return ret_out && !*ret_out ? -ENOMEM : 0;
}
