/* Node access over libssh (see ssh.h): wait for sshd, pin the host key, run
 * commands, copy files, generate keys.
 *
 * Nothing here reads ~/.ssh or /etc/ssh: known_hosts is /dev/null, the ssh
 * config files are not processed, only ed25519 host keys are negotiated and
 * the key the server shows must equal the one vgpuenv generated and injected
 * into the image. One struct ssh_node is used by one thread at a time;
 * several nodes are driven in parallel from different threads (libssh >= 0.8
 * initializes its pthread support itself). */
#include "provision/base/ssh.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

struct ssh_node {
        ssh_session session;
        char *name;
        char *host;
        unsigned port;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_key, ssh_key_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_session, ssh_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(sftp_session, sftp_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(sftp_attributes, sftp_attributes_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_event, ssh_event_free)

static inline void ssh_string_free_charp(char **p)
{
        if (*p)
                ssh_string_free_char(*p);
}

/* ---- keys ------------------------------------------------------------------ */

/* Split "type base64 [comment]" into its first two fields. */
static int split_pub_line(const char *line, char **ret_type, char **ret_b64)
{
        _cleanup_free_ char *type = NULL, *b64 = NULL;
        const char *p = line, *e;

        p += strspn(p, " \t");
        e = p + strcspn(p, " \t\r\n");
        if (e == p)
                return -EINVAL;
        type = strndup(p, e - p);
        p = e + strspn(e, " \t");
        e = p + strcspn(p, " \t\r\n");
        if (e == p)
                return -EINVAL;
        b64 = strndup(p, e - p);
        if (!type || !b64)
                return -ENOMEM;
        *ret_type = TAKE_PTR(type);
        *ret_b64 = TAKE_PTR(b64);
        return 0;
}

static int import_pub_line(const char *line, ssh_key *ret)
{
        _cleanup_free_ char *type = NULL, *b64 = NULL;
        enum ssh_keytypes_e kt;
        int r;

        r = split_pub_line(line, &type, &b64);
        if (r < 0)
                return r;
        kt = ssh_key_type_from_name(type);
        if (kt == SSH_KEYTYPE_UNKNOWN)
                return -EINVAL;
        if (ssh_pki_import_pubkey_base64(b64, kt, ret) != SSH_OK)
                return -EINVAL;
        return 0;
}

static char *key_fingerprint(const ssh_key key)
{
        unsigned char *hash = NULL;
        size_t hlen = 0;
        char *fp, *r;

        if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0)
                return NULL;
        /* libssh prints "SHA256:" + unpadded base64, the same as ssh-keygen -l. */
        fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
        ssh_clean_pubkey_hash(&hash);
        if (!fp)
                return NULL;
        r = strdup(fp);
        ssh_string_free_char(fp);
        return r;
}

char *ssh_fingerprint(const char *pub_line)
{
        _cleanup_(ssh_key_freep) ssh_key key = NULL;

        if (!pub_line || import_pub_line(pub_line, &key) < 0)
                return NULL;
        return key_fingerprint(key);
}

int ssh_keygen(const char *path, const char *comment, char **ret_pub)
{
        _cleanup_(ssh_key_freep) ssh_key key = NULL;
        _cleanup_(ssh_string_free_charp) char *b64 = NULL;
        _cleanup_free_ char *tmp = NULL, *pub_path = NULL, *line = NULL;
        int fd, r;

        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
                return log_error_errno(EIO, "cannot generate an ed25519 key for %s", path);

        /* libssh writes with fopen(), honouring the umask; create the file
         * 0600 first so the private key is never readable by others, then
         * rename it into place so a reader never sees half a key. */
        tmp = strdup_printf("%s.tmp.%d", path, (int)getpid());
        pub_path = strdup_printf("%s.pub", path);
        if (!tmp || !pub_path)
                return log_error_errno(ENOMEM, "out of memory");
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_error_errno(errno, "cannot create %s: %m", tmp);
        (void)fchmod(fd, 0600);
        close(fd);
        if (ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp) != SSH_OK) {
                unlink(tmp);
                return log_error_errno(EIO, "cannot write private key %s", path);
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return log_error_errno(r, "cannot rename %s to %s: %m", tmp, path);
        }

        if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
                return log_error_errno(EIO, "cannot export the public key of %s", path);
        line = isempty(comment) ? strdup_printf("ssh-ed25519 %s", b64)
                                : strdup_printf("ssh-ed25519 %s %s", b64, comment);
        if (!line)
                return log_error_errno(ENOMEM, "out of memory");
        {
                _cleanup_free_ char *text = strdup_printf("%s\n", line);
                if (!text)
                        return log_error_errno(ENOMEM, "out of memory");
                r = write_file_atomic(pub_path, text, strlen(text), 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %s", pub_path, strerror(-r));
        }
        if (ret_pub)
                *ret_pub = TAKE_PTR(line);
        return 0;
}

int ssh_read_pubkey(const char *pub_path, char **ret_pub)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_(ssh_key_freep) ssh_key key = NULL;
        char *line, *save = NULL;
        int r;

        r = read_full_file(pub_path, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot read public key %s: %s", pub_path, strerror(-r));
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                size_t n;

                line += strspn(line, " \t");
                n = strlen(line);
                while (n > 0 && strchr(" \t\r", line[n - 1]))
                        line[--n] = 0;
                if (n == 0 || line[0] == '#')
                        continue;
                if (import_pub_line(line, &key) < 0)
                        break;
                if (!ret_pub)
                        return 0;
                *ret_pub = strdup(line);
                return *ret_pub ? 0 : log_error_errno(ENOMEM, "out of memory");
        }
        return log_error_errno(
            EINVAL, "%s does not hold an OpenSSH public key line (\"ssh-ed25519 AAAA...\")",
            pub_path);
}

/* ---- connecting ------------------------------------------------------------ */

/* Is anything accepting TCP connections at host:port yet? We probe ourselves
 * to tell "sshd is not up yet" (retry) from ssh-level errors by errno, not by
 * libssh's error text. The socket is closed again: handing it to libssh with
 * SSH_OPTIONS_FD leaves its ownership ambiguous in 0.10 (closed on some error
 * paths, not on ssh_disconnect), which risks a double close when several
 * threads open descriptors. */
static int tcp_connect(const char *host, unsigned port, double timeout, int *ret_fd, char *err,
                       size_t errlen)
{
        /* No AI_ADDRCONFIG: it hides 127.0.0.1 on hosts with only loopback. */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        struct addrinfo *ai = NULL;
        char portstr[16];
        int r = -EHOSTUNREACH;

        snprintf(portstr, sizeof(portstr), "%u", port);
        r = getaddrinfo(host, portstr, &hints, &ai);
        if (r != 0) {
                snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(r));
                return r == EAI_AGAIN ? -EAGAIN : -EHOSTUNREACH;
        }
        r = -EHOSTUNREACH;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                struct pollfd p;
                int fd, soerr = 0, flags;
                socklen_t sl = sizeof(soerr);

                fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        r = -errno;
                        close(fd);
                        continue;
                }
                p = (struct pollfd){.fd = fd, .events = POLLOUT};
                do
                        r = poll(&p, 1, (int)(timeout * 1000) + 1);
                while (r < 0 && errno == EINTR);
                if (r == 0) {
                        r = -ETIMEDOUT;
                        close(fd);
                        continue;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                        soerr = errno;
                if (soerr != 0) {
                        r = -soerr;
                        close(fd);
                        continue;
                }
                /* libssh expects a blocking socket for a blocking session. */
                flags = fcntl(fd, F_GETFL);
                (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
                freeaddrinfo(ai);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(ai);
        snprintf(err, errlen, "%s", strerror(-r));
        return r;
}

struct connect_ctx {
        const struct node_target *t;
        unsigned port;
        ssh_key pinned;
        ssh_key identity;
        char last_error[256];
};

/* One connection attempt. -EAGAIN: retry (sshd still starting, or closed the
 * connection on us); other negative errno: final, logged. */
/* A node that vanishes mid-command (destroyed VM, dropped bridge) sends no
 * FIN or RST: without keepalive a read of a long command's output would
 * wait forever. Dead peers are noticed within about 40 s. */
static void enable_keepalive(int fd)
{
        int on = 1, idle = 20, intvl = 5, cnt = 4;

        if (fd < 0)
                return;
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static int ssh_attempt(struct connect_ctx *c, double timeout, ssh_session *ret)
{
        const struct node_target *t = c->t;
        _cleanup_(ssh_freep) ssh_session s = NULL;
        _cleanup_(ssh_key_freep) ssh_key server_key = NULL;
        long tmo = timeout < 5 ? 5 : (long)timeout + 1;
        int off = 0, r;
        const char *msg;

        s = ssh_new();
        if (!s)
                return log_error_errno(ENOMEM, "out of memory");
        if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &off) < 0 ||
            ssh_options_set(s, SSH_OPTIONS_HOST, t->host) < 0 ||
            ssh_options_set(s, SSH_OPTIONS_PORT, &c->port) < 0 ||
            ssh_options_set(s, SSH_OPTIONS_USER, t->user) < 0 ||
            ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
            ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
            ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519") < 0 ||
            ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &tmo) < 0)
                return log_error_errno(EINVAL, "cannot set ssh options for %s: %s", t->name,
                                       ssh_get_error(s));

        if (ssh_connect(s) != SSH_OK) {
                msg = ssh_get_error(s);
                /* A server that cannot do ed25519 will never be able to. */
                if (strstr(msg, "no match for method")) {
                        return log_error_errno(
                            EPROTO, "ssh on %s (%s:%u) offers no ssh-ed25519 host key: %s", t->name,
                            t->host, c->port, msg);
                }
                snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
                return -EAGAIN;
        }

        if (ssh_get_server_publickey(s, &server_key) != SSH_OK)
                return log_error_errno(EPROTO, "ssh on %s (%s:%u) sent no host key: %s", t->name,
                                       t->host, c->port, ssh_get_error(s));
        if (ssh_key_cmp(server_key, c->pinned, SSH_KEY_CMP_PUBLIC) != 0) {
                _cleanup_free_ char *want = key_fingerprint(c->pinned);
                _cleanup_free_ char *got = key_fingerprint(server_key);

                log_error(
                    "host key of %s (%s:%u) changed: expected %s, got %s — refusing to connect",
                    t->name, t->host, c->port, want ?: "?", got ?: "?");
                ssh_disconnect(s);
                return -EPERM;
        }

        r = ssh_userauth_publickey(s, NULL, c->identity);
        if (r != SSH_AUTH_SUCCESS) {
                _cleanup_(ssh_string_free_charp) char *b64 = NULL;
                _cleanup_free_ char *fp = NULL;

                if (ssh_pki_export_pubkey_base64(c->identity, &b64) == SSH_OK) {
                        _cleanup_free_ char *line = strdup_printf(
                            "%s %s", ssh_key_type_to_char(ssh_key_type(c->identity)), b64);
                        fp = line ? ssh_fingerprint(line) : NULL;
                }
                if (r == SSH_AUTH_ERROR)
                        log_error("ssh authentication as %s on %s (%s:%u) failed: %s", t->user,
                                  t->name, t->host, c->port, ssh_get_error(s));
                else
                        log_error("ssh authentication as %s on %s (%s:%u) failed: the server "
                                  "refused key %s (%s); "
                                  "is its public key in the node's authorized_keys?",
                                  t->user, t->name, t->host, c->port, t->identity, fp ?: "?");
                ssh_disconnect(s);
                return -EACCES;
        }
        /* The connect timeout may have been cut short by the deadline; later
         * blocking calls (channel open, SFTP) get a fixed, generous one that
         * a busy TCG node still meets. */
        tmo = 120;
        (void)ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &tmo);
        enable_keepalive(ssh_get_fd(s));
        *ret = TAKE_PTR(s);
        return 0;
}

static void sleep_seconds(double s)
{
        struct timespec ts;

        if (s <= 0)
                return;
        ts.tv_sec = (time_t)s;
        ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int ssh_node_connect(const struct node_target *t, double timeout_seconds, struct ssh_node **ret)
{
        struct connect_ctx c = {.t = t};
        _cleanup_(ssh_key_freep) ssh_key pinned = NULL, identity = NULL;
        _cleanup_free_ char *type = NULL, *b64 = NULL;
        ssh_session session = NULL;
        double start = now_seconds(), deadline = start + timeout_seconds, next_log = start + 10;
        struct ssh_node *n;
        int r;

        if (!t || isempty(t->name) || isempty(t->host) || isempty(t->user) || isempty(t->identity))
                return log_error_errno(EINVAL,
                                       "ssh target is missing its name, host, user or identity");
        c.port = t->port ? t->port : 22;

        /* The pinned key is mandatory: there is no trust on first use. */
        if (isempty(t->host_key) || split_pub_line(t->host_key, &type, &b64) < 0 ||
            !streq(type, "ssh-ed25519") ||
            ssh_pki_import_pubkey_base64(b64, SSH_KEYTYPE_ED25519, &pinned) != SSH_OK)
                return log_error_errno(
                    EINVAL,
                    "pinned host key of %s is not an \"ssh-ed25519 AAAA...\" public key: %s",
                    t->name, isempty(t->host_key) ? "(none)" : t->host_key);
        if (access(t->identity, R_OK) < 0)
                return log_error_errno(errno, "cannot read ssh identity %s for %s: %m", t->identity,
                                       t->name);
        if (ssh_pki_import_privkey_file(t->identity, NULL, NULL, NULL, &identity) != SSH_OK)
                return log_error_errno(
                    EINVAL, "ssh identity %s is not an unencrypted private key libssh can read",
                    t->identity);
        c.pinned = pinned;
        c.identity = identity;

        for (;;) {
                double now = now_seconds(), left = deadline - now;
                int fd = -1;

                if (t->cancelled && atomic_load(t->cancelled)) {
                        log_debug("stopped waiting for ssh on %s: cancelled", t->name);
                        return -ECANCELED;
                }

                r = tcp_connect(t->host, c.port, left < 3 ? (left > 0.2 ? left : 0.2) : 3, &fd,
                                c.last_error, sizeof(c.last_error));
                if (r >= 0) {
                        close(fd);
                        r = ssh_attempt(&c, deadline - now_seconds(), &session);
                } else
                        r = -EAGAIN; /* refused, unreachable, timed out: not up yet */
                if (r != -EAGAIN)
                        break;

                now = now_seconds();
                if (now >= deadline)
                        return log_error_errno(
                            ETIMEDOUT,
                            "ssh on %s (%s:%u) did not come up within %.0fs (last error: %s)",
                            t->name, t->host, c.port, timeout_seconds, c.last_error);
                if (now >= next_log) {
                        log_info("waiting for ssh on %s (%s:%u) %.0fs", t->name, t->host, c.port,
                                 now - start);
                        next_log += 10;
                }
                sleep_seconds(deadline - now < 0.5 ? deadline - now : 0.5);
        }
        if (r < 0)
                return r;

        n = calloc(1, sizeof(*n));
        if (!n || !(n->name = strdup(t->name)) || !(n->host = strdup(t->host))) {
                ssh_disconnect(session);
                ssh_free(session);
                if (n)
                        free(n->name);
                free(n);
                return log_error_errno(ENOMEM, "out of memory");
        }
        n->session = session;
        n->port = c.port;
        log_debug("connected to %s (%s:%u) after %.1fs", t->name, t->host, c.port,
                  now_seconds() - start);
        *ret = n;
        return 0;
}

void ssh_node_free(struct ssh_node *n)
{
        if (!n)
                return;
        if (n->session) {
                ssh_disconnect(n->session);
                ssh_free(n->session);
        }
        free(n->name);
        free(n->host);
        free(n);
}

/* ---- running commands ------------------------------------------------------ */

struct buf {
        char *data;
        size_t len, cap;
};

static int buf_append(struct buf *b, const void *p, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                char *d;

                while (cap < b->len + n + 1)
                        cap *= 2;
                d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

struct channel_io {
        bool stream; /* write to our fds 1/2 instead of capturing */
        struct buf out, err;
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

        if (io->stream)
                (void)write_all(is_stderr ? STDERR_FILENO : STDOUT_FILENO, data, len);
        else if (buf_append(is_stderr ? &io->err : &io->out, data, len) < 0)
                io->error = -ENOMEM;
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

/* Drive the channel until the server closes it; with forward_stdin, copy our
 * stdin to it and follow our window size. Returns the exit code. */
static int channel_pump(struct ssh_node *n, ssh_channel ch, struct channel_io *io,
                        bool forward_stdin, struct term_state *ts)
{
        _cleanup_(ssh_event_freep) ssh_event ev = ssh_event_new();
        bool stdin_open = forward_stdin;
        int status;

        if (!ev || ssh_event_add_session(ev, n->session) != SSH_OK)
                return log_error_errno(ENOMEM, "cannot set up ssh event loop");
        if (!forward_stdin)
                (void)ssh_channel_send_eof(ch); /* like ssh -n: remote reads see EOF */

        while (!io->closed && !ssh_channel_is_closed(ch)) {
                struct pollfd p[3];
                int np = 0, r;

                /* Process whatever is already buffered (never blocks). */
                if (ssh_event_dopoll(ev, 0) == SSH_ERROR) {
                        ssh_event_remove_session(ev, n->session);
                        return log_error_errno(EIO, "connection to %s (%s:%u) lost: %s", n->name,
                                               n->host, n->port, ssh_get_error(n->session));
                }
                if (io->closed || ssh_channel_is_closed(ch))
                        break;
                p[np++] = (struct pollfd){.fd = ssh_get_fd(n->session), .events = POLLIN};
                if (stdin_open)
                        p[np++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
                if (ts && ts->sigfd >= 0)
                        p[np++] = (struct pollfd){.fd = ts->sigfd, .events = POLLIN};
                r = poll(p, np, 1000);
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        ssh_event_remove_session(ev, n->session);
                        return log_error_errno(r, "poll: %m");
                }
                for (int i = 1; r > 0 && i < np; i++) {
                        if (!p[i].revents)
                                continue;
                        if (p[i].fd == STDIN_FILENO) {
                                char b[4096];
                                ssize_t k = read(STDIN_FILENO, b, sizeof(b));

                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k <= 0) {
                                        stdin_open = false;
                                        (void)ssh_channel_send_eof(ch);
                                } else if (ssh_channel_write(ch, b, (uint32_t)k) == SSH_ERROR) {
                                        stdin_open = false;
                                }
                        } else {
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

static int run_command(struct ssh_node *n, const char *cmd, struct spawn_result *ret)
{
        struct channel_io io = {};
        struct ssh_channel_callbacks_struct cb = {
            .userdata = &io,
            .channel_data_function = on_data,
            .channel_close_function = on_close,
            .channel_exit_signal_function = on_exit_signal,
        };
        ssh_channel ch = NULL;
        int r;

        r = channel_start(n, cmd, false, &cb, &ch);
        if (r < 0)
                return r;
        r = channel_pump(n, ch, &io, false, NULL);
        ssh_channel_close(ch);
        ssh_channel_free(ch);
        if (r < 0) {
                free(io.out.data);
                free(io.err.data);
                return r;
        }
        *ret = (struct spawn_result){
            .exit_code = r,
            .out = io.out.data ?: strdup(""),
            .err = io.err.data ?: strdup(""),
        };
        if (!ret->out || !ret->err) {
                spawn_result_done(ret);
                return log_error_errno(ENOMEM, "out of memory");
        }
        return 0;
}

int ssh_node_run(struct ssh_node *n, char *const *argv, struct spawn_result *ret)
{
        _cleanup_free_ char *cmd = NULL;

        if (!argv || !argv[0])
                return log_error_errno(EINVAL, "no command to run on %s", n->name);
        /* sshd hands the string to the user's shell: quote every argument. */
        cmd = shell_join(argv);
        if (!cmd)
                return log_error_errno(ENOMEM, "out of memory");
        return run_command(n, cmd, ret);
}

int ssh_node_run_script(struct ssh_node *n, const char *script, struct spawn_result *ret)
{
        char *const argv[] = {(char *)"sh", (char *)"-c", (char *)script, NULL};

        return ssh_node_run(n, argv, ret);
}

int ssh_node_run_streaming(struct ssh_node *n, char *const *argv, int interactive)
{
        struct channel_io io = {.stream = true};
        struct ssh_channel_callbacks_struct cb = {
            .userdata = &io,
            .channel_data_function = on_data,
            .channel_close_function = on_close,
            .channel_exit_signal_function = on_exit_signal,
        };
        struct term_state ts = {.sigfd = -1};
        _cleanup_free_ char *cmd = NULL;
        bool tty = interactive && isatty(STDIN_FILENO);
        ssh_channel ch = NULL;
        int r;

        /* No command: the login shell, fed from our stdin (a PTY only when
         * interactive on a terminal), as "ssh host < script" would. */
        if (argv && argv[0]) {
                cmd = shell_join(argv);
                if (!cmd)
                        return log_error_errno(ENOMEM, "out of memory");
        }

        r = channel_start(n, cmd, tty, &cb, &ch);
        if (r < 0)
                return r;
        if (tty) {
                struct termios raw;
                sigset_t winch;

                /* Raw mode so keys (Ctrl-C too) go to the remote side; the
                 * remote PTY does the line editing and echo. */
                if (tcgetattr(STDIN_FILENO, &ts.saved) == 0) {
                        raw = ts.saved;
                        cfmakeraw(&raw);
                        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
                                ts.raw = true;
                }
                /* Window size changes arrive on a signalfd: no handler and
                 * no global flag needed. */
                sigemptyset(&winch);
                sigaddset(&winch, SIGWINCH);
                if (pthread_sigmask(SIG_BLOCK, &winch, &ts.oldmask) == 0) {
                        ts.sigmask_changed = true;
                        ts.sigfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
                }
        }
        r = channel_pump(n, ch, &io, interactive || !cmd, &ts);
        term_restore(&ts);
        ssh_channel_close(ch);
        ssh_channel_free(ch);
        return r;
}

/* ---- file transfer --------------------------------------------------------- */

static int sftp_open_session(struct ssh_node *n, sftp_session *ret)
{
        _cleanup_(sftp_freep) sftp_session sftp = sftp_new(n->session);

        if (!sftp)
                return log_error_errno(EIO, "cannot start SFTP on %s (%s:%u): %s", n->name, n->host,
                                       n->port, ssh_get_error(n->session));
        if (sftp_init(sftp) != SSH_OK)
                return log_error_errno(EIO, "SFTP is not available on %s (%s:%u): %s (error %d)",
                                       n->name, n->host, n->port, ssh_get_error(n->session),
                                       sftp_get_error(sftp));
        *ret = TAKE_PTR(sftp);
        return 0;
}

static const char *sftp_strerror(sftp_session sftp)
{
        switch (sftp_get_error(sftp)) {
        case SSH_FX_NO_SUCH_FILE:
                return "no such file or directory";
        case SSH_FX_PERMISSION_DENIED:
                return "permission denied";
        case SSH_FX_FAILURE:
                return "failure";
        case SSH_FX_FILE_ALREADY_EXISTS:
                return "file exists";
        default:
                return "SFTP error";
        }
}

/* Where the bytes of an upload come from: a memory buffer or a file. */
struct source {
        const char *data;
        size_t size;
        int fd;
};

static int upload(struct ssh_node *n, struct source *src, const char *label, const char *remote,
                  mode_t mode)
{
        _cleanup_(sftp_freep) sftp_session sftp = NULL;
        _cleanup_free_ char *tmp = NULL;
        struct spawn_result res = {};
        sftp_file f;
        size_t off = 0;
        int r;

        if (isempty(remote))
                return log_error_errno(EINVAL, "no remote path for %s", label);
        r = sftp_open_session(n, &sftp);
        if (r < 0)
                return r;
        /* Write beside the target and rename, so a reader on the node (or a
         * crash of ours) never sees a half-written file. */
        tmp = strdup_printf("%s.vgpuenv-tmp", remote);
        if (!tmp)
                return log_error_errno(ENOMEM, "out of memory");
        f = sftp_open(sftp, tmp, O_WRONLY | O_CREAT | O_TRUNC, (mode & 07777) | 0200);
        if (!f)
                return log_error_errno(EIO, "cannot create %s on %s: %s", tmp, n->name,
                                       sftp_strerror(sftp));
        for (;;) {
                char b[32768];
                const char *p;
                size_t k;

                if (src->fd >= 0) {
                        ssize_t got = read(src->fd, b, sizeof(b));
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got < 0) {
                                r = log_error_errno(errno, "cannot read %s: %m", label);
                                break;
                        }
                        p = b;
                        k = (size_t)got;
                } else {
                        p = src->data + off;
                        k = src->size - off < sizeof(b) ? src->size - off : sizeof(b);
                        off += k;
                }
                if (k == 0)
                        break;
                while (k > 0) {
                        ssize_t w = sftp_write(f, p, k);
                        if (w <= 0) {
                                r = log_error_errno(EIO, "cannot write %s on %s: %s", tmp, n->name,
                                                    sftp_strerror(sftp));
                                break;
                        }
                        p += w;
                        k -= (size_t)w;
                }
                if (r < 0)
                        break;
        }
        if (sftp_close(f) != SSH_NO_ERROR && r >= 0)
                r = log_error_errno(EIO, "cannot finish writing %s on %s: %s", tmp, n->name,
                                    sftp_strerror(sftp));
        /* The server's umask may have trimmed the mode given to open(). */
        if (r >= 0 && sftp_chmod(sftp, tmp, mode & 07777) < 0)
                r = log_error_errno(EIO, "cannot chmod %s on %s: %s", tmp, n->name,
                                    sftp_strerror(sftp));
        if (r < 0) {
                (void)sftp_unlink(sftp, tmp);
                return r;
        }
        /* SFTP v3 rename refuses to replace an existing file and libssh 0.10
         * has no posix-rename; mv -f is rename(2), atomic on one file system. */
        {
                char *const mv[] = {(char *)"mv", (char *)"-f",   (char *)"--",
                                    tmp,          (char *)remote, NULL};

                r = ssh_node_run(n, mv, &res);
                if (r >= 0 && res.exit_code != 0) {
                        log_error("cannot move %s into place as %s on %s: %s", tmp, remote, n->name,
                                  isempty(res.err) ? "mv failed" : res.err);
                        r = -EIO;
                }
                spawn_result_done(&res);
        }
        if (r < 0)
                (void)sftp_unlink(sftp, tmp);
        return r;
}

int ssh_node_upload(struct ssh_node *n, const char *local, const char *remote, mode_t mode)
{
        _cleanup_close_ int fd = open(local, O_RDONLY | O_CLOEXEC);
        struct source src = {.fd = -1};

        if (fd < 0)
                return log_error_errno(errno, "cannot open %s for upload to %s: %m", local,
                                       n->name);
        src.fd = fd;
        return upload(n, &src, local, remote, mode);
}

int ssh_node_upload_data(struct ssh_node *n, const void *data, size_t size, const char *remote,
                         mode_t mode)
{
        struct source src = {.data = data, .size = size, .fd = -1};

        return upload(n, &src, remote, remote, mode);
}

int ssh_node_download(struct ssh_node *n, const char *remote, const char *local)
{
        _cleanup_(sftp_freep) sftp_session sftp = NULL;
        _cleanup_(sftp_attributes_freep) sftp_attributes attr = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        mode_t mode = 0644;
        sftp_file f;
        int r = 0;

        r = sftp_open_session(n, &sftp);
        if (r < 0)
                return r;
        f = sftp_open(sftp, remote, O_RDONLY, 0);
        if (!f)
                return log_error_errno(sftp_get_error(sftp) == SSH_FX_NO_SUCH_FILE ? ENOENT : EIO,
                                       "cannot open %s on %s: %s", remote, n->name,
                                       sftp_strerror(sftp));
        attr = sftp_fstat(f);
        if (attr && (attr->flags & SSH_FILEXFER_ATTR_PERMISSIONS))
                mode = attr->permissions & 07777;
        tmp = strdup_printf("%s.tmp.%d", local, (int)getpid());
        if (!tmp) {
                sftp_close(f);
                return log_error_errno(ENOMEM, "out of memory");
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = log_error_errno(errno, "cannot create %s: %m", tmp);
                sftp_close(f);
                return r;
        }
        for (;;) {
                char b[32768];
                ssize_t k = sftp_read(f, b, sizeof(b));

                if (k < 0) {
                        r = log_error_errno(EIO, "cannot read %s on %s: %s", remote, n->name,
                                            sftp_strerror(sftp));
                        break;
                }
                if (k == 0)
                        break;
                r = write_all(fd, b, (size_t)k);
                if (r < 0) {
                        r = log_error_errno(r, "cannot write %s: %s", tmp, strerror(-r));
                        break;
                }
        }
        sftp_close(f);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = log_error_errno(errno, "cannot chmod %s: %m", tmp);
        if (r >= 0 && rename(tmp, local) < 0)
                r = log_error_errno(errno, "cannot rename %s to %s: %m", tmp, local);
        if (r < 0)
                unlink(tmp);
        return r;
}
