/* Implementation of spawn.h with posix_spawn-like fork/exec and poll() for
 * the captured pipes and the time limit. */
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

extern char **environ;

void spawn_result_done(struct spawn_result *r)
{
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
}

char *find_program(const char *name)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = NULL;

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

static char **build_env(const struct spawn_opts *o)
{
        _cleanup_strv_free_ char **env = NULL;

        for (char **e = environ; *e; e++) {
                size_t k = strcspn(*e, "=");
                bool drop = false;
                for (size_t i = 0; o->env_unset && o->env_unset[i]; i++)
                        if (strlen(o->env_unset[i]) == k && strneq(*e, o->env_unset[i], k))
                                drop = true;
                for (size_t i = 0; o->env_set && o->env_set[i]; i++)
                        if (strneq(*e, o->env_set[i], k + 1))
                                drop = true;
                if (!drop && strv_extend(&env, *e) < 0)
                        return NULL;
        }
        for (size_t i = 0; o->env_set && o->env_set[i]; i++)
                if (strv_extend(&env, o->env_set[i]) < 0)
                        return NULL;
        if (!env)
                env = calloc(1, sizeof(char *));
        return TAKE_PTR(env);
}

struct buf {
        char *data;
        size_t len, cap;
};

static int buf_read(struct buf *b, int fd)
{
        char tmp[8192];
        ssize_t k = read(fd, tmp, sizeof(tmp));

        if (k <= 0)
                return k < 0 && errno == EINTR ? 1 : 0;
        if (b->len + (size_t)k + 1 > b->cap) {
                size_t cap = (b->cap + (size_t)k + 1) * 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, tmp, (size_t)k);
        b->len += (size_t)k;
        b->data[b->len] = 0;
        return 1;
}

int spawn_run(char *const *argv, const struct spawn_opts *opts, struct spawn_result *ret)
{
        static const struct spawn_opts defaults = {0};
        const struct spawn_opts *o = opts ? opts : &defaults;
        _cleanup_strv_free_ char **env = build_env(o);
        _cleanup_free_ char *exe = find_program(argv[0]);
        int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
        struct buf out = {0}, err = {0};
        int status = 0;
        pid_t pid;
        double deadline = o->timeout > 0 ? now_seconds() + o->timeout : 0;

        *ret = (struct spawn_result){0};
        if (!env)
                return -ENOMEM;
        if (!exe)
                return -ENOENT;
        if ((o->capture_stdout && pipe2(outp, O_CLOEXEC) < 0) ||
            (o->capture_stderr && pipe2(errp, O_CLOEXEC) < 0) ||
            (o->stdin_data && pipe2(inp, O_CLOEXEC) < 0))
                return negative_errno();

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR);
                sigset_t all;

                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                setpgid(0, 0);
                dup2(o->stdin_data ? inp[0] : devnull, 0);
                if (o->capture_stdout)
                        dup2(outp[1], 1);
                else if (o->stdout_to_stderr)
                        dup2(2, 1);
                if (o->capture_stderr)
                        dup2(errp[1], 2);
                if (o->cwd && chdir(o->cwd) < 0)
                        _exit(127);
                execve(exe, argv, env);
                _exit(127);
        }
        setpgid(pid, pid);
        if (o->stdin_data) {
                close(inp[0]);
                signal(SIGPIPE, SIG_IGN);
                /* A child that exits without reading all of it is its own
                 * business: its exit status tells. */
                (void)write_all(inp[1], o->stdin_data, strlen(o->stdin_data));
                close(inp[1]);
        }
        if (o->capture_stdout)
                close(outp[1]);
        if (o->capture_stderr)
                close(errp[1]);

        for (;;) {
                struct pollfd pfd[2];
                int n = 0, timeout_ms = -1;

                if (o->capture_stdout && outp[0] >= 0)
                        pfd[n++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
                if (o->capture_stderr && errp[0] >= 0)
                        pfd[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
                if (deadline > 0) {
                        double left = deadline - now_seconds();
                        if (left <= 0) {
                                ret->timed_out = true;
                                kill(-pid, SIGKILL);
                                break;
                        }
                        timeout_ms = (int)(left * 1000) + 1;
                }
                if (o->cancel && !ret->cancelled) {
                        if (atomic_load(o->cancel)) {
                                ret->cancelled = true;
                                kill(-pid, SIGTERM);
                        } else if (timeout_ms < 0 || timeout_ms > 200)
                                timeout_ms = 200;
                }
                if (n == 0) {
                        /* Nothing to read: wait for the child, watching the
                         * deadline and the cancel flag. */
                        if (deadline == 0 && !o->cancel)
                                break;
                        pid_t w = waitpid(pid, &status, WNOHANG);
                        if (w == pid)
                                goto reaped;
                        usleep(20000);
                        continue;
                }
                int k = poll(pfd, (nfds_t)n, timeout_ms);
                if (k < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < n; i++) {
                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        bool is_out = pfd[i].fd == outp[0];
                        int rr = buf_read(is_out ? &out : &err, pfd[i].fd);
                        if (rr <= 0) {
                                close(pfd[i].fd);
                                if (is_out)
                                        outp[0] = -1;
                                else
                                        errp[0] = -1;
                        }
                }
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
reaped:
        if (outp[0] >= 0)
                close(outp[0]);
        if (errp[0] >= 0)
                close(errp[0]);
        if (WIFEXITED(status))
                ret->exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
                ret->exit_code = 128 + WTERMSIG(status);
        if (o->capture_stdout)
                ret->out = out.data ? out.data : strdup("");
        if (o->capture_stderr)
                ret->err = err.data ? err.data : strdup("");
        return 0;
}
