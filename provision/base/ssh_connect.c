/* Waiting for a node's sshd and logging in (see ssh.h).
 *
 * Nothing here reads ~/.ssh or /etc/ssh: known_hosts is /dev/null, the ssh
 * config files are not processed, only ed25519 host keys are negotiated and
 * the key the server shows must equal the one vgpuenv generated and injected
 * into the image. One struct ssh_node is used by one thread at a time;
 * several nodes are driven in parallel from different threads (libssh >= 0.8
 * initializes its pthread support itself). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/ssh.h"
#include "provision/base/ssh_internal.h"

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

/* Wait for s's socket, at most 100 ms so the token is seen at once. */
static void wait_socket(ssh_session s)
{
        struct pollfd p = {.fd = ssh_get_fd(s), .events = POLLIN};
        int dir = ssh_get_poll_flags(s);

        if (dir & SSH_WRITE_PENDING)
                p.events |= POLLOUT;
        if (p.fd >= 0)
                (void)poll(&p, 1, 100);
}

/* ssh_connect / ssh_userauth_publickey block for up to their timeout, which
 * no Ctrl-C could cut short: they run non-blocking here, polled with the
 * token, then the session goes back to blocking for the rest. */
static int nonblocking_connect(ssh_session s, const struct cancel *cancel, double timeout)
{
        double until = now_seconds() + (timeout < 5 ? 5 : timeout);
        int r;

        ssh_set_blocking(s, 0);
        while ((r = ssh_connect(s)) == SSH_AGAIN && cancel_check(cancel) == 0 &&
               now_seconds() < until)
                wait_socket(s);
        ssh_set_blocking(s, 1);
        return r == SSH_AGAIN ? SSH_ERROR : r;
}

static int nonblocking_auth(ssh_session s, ssh_key identity, const struct cancel *cancel,
                            double timeout)
{
        double until = now_seconds() + (timeout < 5 ? 5 : timeout);
        int r;

        ssh_set_blocking(s, 0);
        while ((r = ssh_userauth_publickey(s, NULL, identity)) == SSH_AUTH_AGAIN &&
               cancel_check(cancel) == 0 && now_seconds() < until)
                wait_socket(s);
        ssh_set_blocking(s, 1);
        return r == SSH_AUTH_AGAIN ? SSH_AUTH_ERROR : r;
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

        if (nonblocking_connect(s, t->cancel, timeout) != SSH_OK) {
                if ((r = cancel_check(t->cancel)) < 0)
                        return r;
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
                _cleanup_free_ char *want = ssh_key_fingerprint(c->pinned);
                _cleanup_free_ char *got = ssh_key_fingerprint(server_key);

                log_error(
                    "host key of %s (%s:%u) changed: expected %s, got %s — refusing to connect",
                    t->name, t->host, c->port, want ?: "?", got ?: "?");
                ssh_disconnect(s);
                return -EPERM;
        }

        r = nonblocking_auth(s, c->identity, t->cancel, timeout);
        if (cancel_check(t->cancel) < 0) {
                ssh_disconnect(s);
                return cancel_check(t->cancel);
        }
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

/* The target's token stopped the wait: say which deadline, or Ctrl-C. */
static int stopped_waiting(const struct node_target *t, unsigned port, int r, double waited,
                           const char *last_error)
{
        const struct cancel *k = cancel_culprit(t->cancel);

        if (r == -ECANCELED) {
                log_debug("stopped waiting for ssh on %s: interrupted", t->name);
                return r;
        }
        return log_error_errno(r,
                               "stopped waiting for ssh on %s (%s:%u) after %.0fs: %s ran out of "
                               "time (last error: %s)",
                               t->name, t->host, port, waited,
                               k && k->what ? k->what : "the deadline",
                               isempty(last_error) ? "none" : last_error);
}

void ssh_node_set_cancel(struct ssh_node *n, const struct cancel *c)
{
        n->cancel = c;
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
        if (isempty(t->host_key) || ssh_split_pub_line(t->host_key, &type, &b64) < 0 ||
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

                if ((r = cancel_check(t->cancel)) < 0)
                        return stopped_waiting(t, c.port, r, now - start, c.last_error);
                if (cancel_remaining(t->cancel) < left)
                        left = cancel_remaining(t->cancel);

                r = tcp_connect(t->host, c.port, left < 3 ? (left > 0.2 ? left : 0.2) : 3, &fd,
                                c.last_error, sizeof(c.last_error));
                if (r >= 0) {
                        close(fd);
                        r = ssh_attempt(&c, left, &session);
                } else
                        r = -EAGAIN; /* refused, unreachable, timed out: not up yet */
                if (r < 0 && r != -EAGAIN && cancel_check(t->cancel) < 0)
                        return stopped_waiting(t, c.port, cancel_check(t->cancel),
                                               now_seconds() - start, c.last_error);
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
                (void)cancel_sleep(t->cancel, deadline - now < 0.5 ? deadline - now : 0.5);
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
        n->cancel = t->cancel;
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
