/* Running commands on nodes (see ssh.h): captured, or streamed with our
 * stdin forwarded, or interactive on a PTY. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/ssh_internal.h"

/* ---- running commands ------------------------------------------------------ */

struct channel_io {
        bool stream; /* write to our fds 1/2 instead of capturing */
        struct buf out, err, tail;
        /* What the command reads: our stdin (in_fd), a buffer, or EOF. */
        int in_fd;
        const char *in_data;
        size_t in_size, in_off;
        int exit_signal; /* signal number, 0 none */
        bool got_signal;
        bool closed;
        int error; /* -ENOMEM while capturing */
};

static const struct {
        const char *name;
        int sig;
} signal_names[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"HUP", SIGHUP},   {"ILL", SIGILL},   {"INT", SIGINT},   {"KILL", SIGKILL},
    {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV}, {"TERM", SIGTERM},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"SYS", SIGSYS},   {"TRAP", SIGTRAP},
};

static int on_data(ssh_session session _unused_, ssh_channel channel _unused_, void *data,
                   uint32_t len, int is_stderr, void *userdata)
{
        struct channel_io *io = userdata;

        if (io->stream) {
                (void)write_all(is_stderr ? STDERR_FILENO : STDOUT_FILENO, data, len);
                return (int)len;
        }
        if (buf_append(is_stderr ? &io->err : &io->out, data, len) < 0)
                io->error = -ENOMEM;
        /* The last 4 KiB of both streams, for error messages. */
        if (buf_append(&io->tail, data, len) == 0 && io->tail.len > 4096)
                buf_consume(&io->tail, io->tail.len - 4096);
        return (int)len; /* consumed: nothing is left in libssh's buffers */
}

static void on_close(ssh_session session _unused_, ssh_channel channel _unused_, void *userdata)
{
        ((struct channel_io *)userdata)->closed = true;
}

static void on_exit_signal(ssh_session session _unused_, ssh_channel channel _unused_,
                           const char *signal, int core _unused_, const char *errmsg _unused_,
                           const char *lang _unused_, void *userdata)
{
        struct channel_io *io = userdata;

        io->got_signal = true;
        for (size_t i = 0; i < ELEMENTSOF(signal_names); i++)
                if (signal && streq(signal, signal_names[i].name))
                        io->exit_signal = signal_names[i].sig;
}

/* Terminal state for an interactive session; restored on every exit path. */
struct term_state {
        bool raw;
        struct termios saved;
        int sigfd;
        bool sigmask_changed;
        sigset_t oldmask;
};

static void term_restore(struct term_state *ts)
{
        if (ts->raw)
                (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &ts->saved);
        if (ts->sigfd >= 0)
                close(ts->sigfd);
        if (ts->sigmask_changed)
                pthread_sigmask(SIG_SETMASK, &ts->oldmask, NULL);
}

/* Open a session channel with our callbacks, optionally with a PTY, and start
 * cmd (NULL: the login shell). */
static int channel_start(struct ssh_node *n, const char *cmd, bool pty,
                         struct ssh_channel_callbacks_struct *cb, ssh_channel *ret)
{
        ssh_channel ch;

        ch = ssh_channel_new(n->session);
        if (!ch)
                return log_error_errno(ENOMEM, "cannot create an ssh channel to %s: %s", n->name,
                                       ssh_get_error(n->session));
        if (ssh_channel_open_session(ch) != SSH_OK) {
                log_error("cannot open an ssh session channel on %s (%s:%u): %s", n->name, n->host,
                          n->port, ssh_get_error(n->session));
                ssh_channel_free(ch);
                return -EIO;
        }
        ssh_callbacks_init(cb);
        if (ssh_set_channel_callbacks(ch, cb) != SSH_OK) {
                ssh_channel_free(ch);
                return log_error_errno(EIO, "cannot set ssh channel callbacks");
        }
        if (pty) {
                struct winsize ws = {.ws_col = 80, .ws_row = 24};
                const char *term = getenv("TERM");

                (void)ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
                if (ssh_channel_request_pty_size(ch, isempty(term) ? "xterm" : term,
                                                 ws.ws_col ?: 80, ws.ws_row ?: 24) != SSH_OK) {
                        log_error("cannot get a terminal on %s: %s", n->name,
                                  ssh_get_error(n->session));
                        ssh_channel_free(ch);
                        return -EIO;
                }
        }
        if ((cmd ? ssh_channel_request_exec(ch, cmd) : ssh_channel_request_shell(ch)) != SSH_OK) {
                log_error("cannot start %s on %s (%s:%u): %s", cmd ? "the command" : "a shell",
                          n->name, n->host, n->port, ssh_get_error(n->session));
                ssh_channel_free(ch);
                return -EIO;
        }
        *ret = ch;
        return 0;
}

/* Feed the command from a buffer, as far as the channel's window allows. */
static int feed_data(ssh_channel ch, struct channel_io *io)
{
        while (io->in_data && io->in_off < io->in_size) {
                uint32_t win = ssh_channel_window_size(ch);
                size_t k = io->in_size - io->in_off;
                if (win == 0)
                        return 0;
                if (k > win)
                        k = win;
                if (k > 32768)
                        k = 32768;
                if (ssh_channel_write(ch, io->in_data + io->in_off, (uint32_t)k) == SSH_ERROR)
                        return -EIO;
                io->in_off += k;
        }
        if (io->in_data) {
                io->in_data = NULL;
                (void)ssh_channel_send_eof(ch);
        }
        return 0;
}

/* Copy what our stdin has to the command; EOF travels on as EOF. */
static void feed_fd(ssh_channel ch, struct channel_io *io)
{
        char b[16384];
        ssize_t k = read(io->in_fd, b, sizeof(b));

        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (k <= 0 || ssh_channel_write(ch, b, (uint32_t)k) == SSH_ERROR) {
                io->in_fd = -1;
                (void)ssh_channel_send_eof(ch);
        }
}

/* The node's token fired: ask the remote side to stop, drop the channel,
 * and say which command ran out of time. */
static int stop_command(struct ssh_node *n, ssh_channel ch, const char *cmd, int r)
{
        const struct cancel *k = cancel_culprit(n->cancel);

        (void)ssh_channel_request_send_signal(ch, "TERM");
        if (r == -ECANCELED)
                return log_error_errno(r, "%s: stopped '%.200s': interrupted", n->name,
                                       cmd ? cmd : "shell");
        return log_error_errno(r, "%s: stopped '%.200s': %s ran out of time", n->name,
                               cmd ? cmd : "shell", k && k->what ? k->what : "its deadline");
}

/* Drive the channel until the server closes it, feeding its stdin and, for
 * a terminal, following our window size. Returns the exit code. */
static int channel_pump(struct ssh_node *n, ssh_channel ch, struct channel_io *io, const char *cmd,
                        struct term_state *ts)
{
        _cleanup_(ssh_event_freep) ssh_event ev = ssh_event_new();
        int status, r;

        if (!ev || ssh_event_add_session(ev, n->session) != SSH_OK)
                return log_error_errno(ENOMEM, "cannot set up ssh event loop");
        if (io->in_fd < 0 && !io->in_data)
                (void)ssh_channel_send_eof(ch); /* like ssh -n: remote reads see EOF */

        while (!io->closed && !ssh_channel_is_closed(ch)) {
                struct pollfd p[3];
                int np = 0;

                if ((r = cancel_check(n->cancel)) < 0) {
                        ssh_event_remove_session(ev, n->session);
                        return stop_command(n, ch, cmd, r);
                }
                /* Process whatever is already buffered (never blocks). */
                if (ssh_event_dopoll(ev, 0) == SSH_ERROR || feed_data(ch, io) < 0) {
                        ssh_event_remove_session(ev, n->session);
                        return log_error_errno(EIO, "connection to %s (%s:%u) lost: %s", n->name,
                                               n->host, n->port, ssh_get_error(n->session));
                }
                if (io->closed || ssh_channel_is_closed(ch))
                        break;
                p[np++] = (struct pollfd){.fd = ssh_get_fd(n->session), .events = POLLIN};
                if (io->in_fd >= 0)
                        p[np++] = (struct pollfd){.fd = io->in_fd, .events = POLLIN};
                if (ts && ts->sigfd >= 0)
                        p[np++] = (struct pollfd){.fd = ts->sigfd, .events = POLLIN};
                r = poll(p, np, 100);
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        ssh_event_remove_session(ev, n->session);
                        return log_error_errno(r, "poll: %m");
                }
                for (int i = 1; r > 0 && i < np; i++) {
                        if (!p[i].revents)
                                continue;
                        if (p[i].fd == io->in_fd)
                                feed_fd(ch, io);
                        else {
                                struct signalfd_siginfo si;
                                struct winsize ws;

                                if (read(ts->sigfd, &si, sizeof(si)) > 0 &&
                                    ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                                        (void)ssh_channel_change_pty_size(ch, ws.ws_col, ws.ws_row);
                        }
                }
        }
        ssh_event_remove_session(ev, n->session);

        if (io->error < 0)
                return log_error_errno(io->error, "out of memory capturing output from %s",
                                       n->name);
        if (io->got_signal)
                return io->exit_signal > 0 ? 128 + io->exit_signal : 255;
        status = ssh_channel_get_exit_status(ch);
        if (status < 0) {
                log_warning("%s (%s:%u) closed the channel without an exit status", n->name,
                            n->host, n->port);
                return 255;
        }
        return status;
}

static void channel_io_done(struct channel_io *io)
{
        buf_done(&io->out);
        buf_done(&io->err);
        buf_done(&io->tail);
}

static int run_command(struct ssh_node *n, const char *cmd, const void *in, size_t in_size,
                       struct proc_result *ret)
{
        struct channel_io io = {.in_fd = -1, .in_data = in, .in_size = in_size};
        struct ssh_channel_callbacks_struct cb = {
            .userdata = &io,
            .channel_data_function = on_data,
            .channel_close_function = on_close,
            .channel_exit_signal_function = on_exit_signal,
        };
        ssh_channel ch = NULL;
        double t0 = now_seconds();
        int r;

        *ret = (struct proc_result){0};
        r = channel_start(n, cmd, false, &cb, &ch);
        if (r < 0)
                return r;
        r = channel_pump(n, ch, &io, cmd, NULL);
        ssh_channel_close(ch);
        ssh_channel_free(ch);
        if (r < 0) {
                channel_io_done(&io);
                return r;
        }
        *ret = (struct proc_result){.exit_code = r, .out = io.out, .err = io.err, .tail = io.tail};
        ret->elapsed = now_seconds() - t0;
        if (buf_append(&ret->out, "", 0) < 0 || buf_append(&ret->err, "", 0) < 0) {
                proc_result_done(ret);
                return log_error_errno(ENOMEM, "out of memory");
        }
        return 0;
}

int ssh_node_run_input(struct ssh_node *n, char *const *argv, const void *data, size_t size,
                       struct proc_result *ret)
{
        _cleanup_free_ char *cmd = NULL;

        *ret = (struct proc_result){0};
        if (!argv || !argv[0])
                return log_error_errno(EINVAL, "no command to run on %s", n->name);
        /* sshd hands the string to the user's shell: quote every argument. */
        cmd = shell_join(argv);
        if (!cmd)
                return log_error_errno(ENOMEM, "out of memory");
        return run_command(n, cmd, data, data ? size : 0, ret);
}

int ssh_node_run(struct ssh_node *n, char *const *argv, struct proc_result *ret)
{
        return ssh_node_run_input(n, argv, NULL, 0, ret);
}

int ssh_node_run_script(struct ssh_node *n, const char *script, struct proc_result *ret)
{
        char *const argv[] = {(char *)"sh", (char *)"-c", (char *)script, NULL};

        return ssh_node_run(n, argv, ret);
}

/* Raw mode so keys (Ctrl-C too) go to the remote side, whose PTY does the
 * line editing and echo; window size changes arrive on a signalfd (no
 * handler, no global flag). */
static void term_enter(struct term_state *ts)
{
        struct termios raw;
        sigset_t winch;

        if (tcgetattr(STDIN_FILENO, &ts->saved) == 0) {
                raw = ts->saved;
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
                        ts->raw = true;
        }
        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        if (pthread_sigmask(SIG_BLOCK, &winch, &ts->oldmask) == 0) {
                ts->sigmask_changed = true;
                ts->sigfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
        }
}

int ssh_node_run_streaming(struct ssh_node *n, char *const *argv, enum ssh_stdin in)
{
        struct channel_io io = {.stream = true, .in_fd = -1};
        struct ssh_channel_callbacks_struct cb = {
            .userdata = &io,
            .channel_data_function = on_data,
            .channel_close_function = on_close,
            .channel_exit_signal_function = on_exit_signal,
        };
        struct term_state ts = {.sigfd = -1};
        _cleanup_free_ char *cmd = NULL;
        bool tty = in == SSH_STDIN_TTY && isatty(STDIN_FILENO);
        ssh_channel ch = NULL;
        int r;

        /* No command: the login shell, as "ssh host" or "ssh host < script". */
        if (argv && argv[0]) {
                cmd = shell_join(argv);
                if (!cmd)
                        return log_error_errno(ENOMEM, "out of memory");
        }
        r = channel_start(n, cmd, tty, &cb, &ch);
        if (r < 0)
                return r;
        /* Like ssh(1): our stdin goes to the command unless told otherwise. */
        if (in != SSH_STDIN_NONE)
                io.in_fd = STDIN_FILENO;
        if (tty)
                term_enter(&ts);
        r = channel_pump(n, ch, &io, cmd, &ts);
        term_restore(&ts);
        ssh_channel_close(ch);
        ssh_channel_free(ch);
        return r;
}
