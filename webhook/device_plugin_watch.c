/* inotify and signalfd for the device plugin (see device_plugin_watch.h). */
#include "webhook/device_plugin_watch.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/program.h"

#define WATCH_MASK                                                                                 \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
         IN_ONLYDIR)
#define MISSING_POLL_MS 1000

enum role { DEVICE_DIR, SOCKET_DIR, DEVICE_PARENT, SOCKET_PARENT, N_ROLES };

struct dp_watch {
        int inotify_fd, signal_fd;
        struct {
                char *path;
                int wd; /* -1: not watched (missing) */
        } w[N_ROLES];
        char *pattern, *socket_name, *device_base, *socket_base;
};

static char *parent_of(const char *dir)
{
        const char *slash = strrchr(dir, '/');
        return slash && slash != dir ? strndup(dir, (size_t)(slash - dir)) : strdup("/");
}

/* Bits for a directory of this role that (re)appeared or vanished. */
static int role_bits(enum role r)
{
        return r == DEVICE_DIR || r == DEVICE_PARENT ? DPW_DEVICES : DPW_SOCKET | DPW_KUBELET;
}

/* Watches whatever is missing; bits for directories that came back. */
static int rewatch(struct dp_watch *w)
{
        int bits = 0;
        for (int r = 0; r < N_ROLES; r++) {
                if (w->w[r].wd >= 0)
                        continue;
                w->w[r].wd = inotify_add_watch(w->inotify_fd, w->w[r].path, WATCH_MASK);
                if (w->w[r].wd >= 0 && (r == DEVICE_DIR || r == SOCKET_DIR))
                        bits |= role_bits(r);
        }
        return bits;
}

static bool any_missing(const struct dp_watch *w)
{
        for (int r = 0; r < N_ROLES; r++)
                if (w->w[r].wd < 0)
                        return true;
        return false;
}

int dpw_open(const char *device_dir, const char *device_pattern, const char *socket_dir,
             const char *socket_name, struct dp_watch **ret)
{
        struct dp_watch *w = calloc(1, sizeof(*w));
        sigset_t mask;
        if (!w)
                return -ENOMEM;
        w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        program_stop_signals(&mask);
        w->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        w->w[DEVICE_DIR].path = strdup(device_dir);
        w->w[SOCKET_DIR].path = strdup(socket_dir);
        w->w[DEVICE_PARENT].path = parent_of(device_dir);
        w->w[SOCKET_PARENT].path = parent_of(socket_dir);
        w->pattern = strdup(device_pattern);
        w->socket_name = strdup(socket_name);
        w->device_base =
            strdup(strrchr(device_dir, '/') ? strrchr(device_dir, '/') + 1 : device_dir);
        w->socket_base =
            strdup(strrchr(socket_dir, '/') ? strrchr(socket_dir, '/') + 1 : socket_dir);
        int r = w->inotify_fd < 0 || w->signal_fd < 0 ? -errno : 0;
        for (int i = 0; i < N_ROLES; i++) {
                w->w[i].wd = -1;
                if (!w->w[i].path)
                        r = -ENOMEM;
        }
        if (r >= 0 && (!w->pattern || !w->socket_name || !w->device_base || !w->socket_base))
                r = -ENOMEM;
        if (r < 0) {
                dpw_close(w);
                return log_error_errno(r, "cannot watch: %s", strerror(-r));
        }
        rewatch(w);
        *ret = w;
        return 0;
}

/* The bits one inotify event means for the watch of role r. */
static int event_bits(struct dp_watch *w, enum role r, const struct inotify_event *ev)
{
        const char *name = ev->len ? ev->name : "";
        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                if (ev->mask & IN_IGNORED)
                        w->w[r].wd = -1;
                return r == DEVICE_DIR || r == SOCKET_DIR ? role_bits(r) : 0;
        }
        switch (r) {
        case DEVICE_DIR:
                return fnmatch(w->pattern, name, FNM_PERIOD) == 0 ? DPW_DEVICES : 0;
        case SOCKET_DIR:
                if (streq(name, "kubelet.sock") && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
                        return DPW_KUBELET;
                return streq(name, w->socket_name) ? DPW_SOCKET : 0;
        case DEVICE_PARENT:
                return streq(name, w->device_base) ? DPW_DEVICES : 0;
        default:
                return streq(name, w->socket_base) ? DPW_SOCKET | DPW_KUBELET : 0;
        }
}

static int read_inotify(struct dp_watch *w)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        int bits = 0;
        for (;;) {
                ssize_t n = read(w->inotify_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        if (ev->mask & IN_Q_OVERFLOW)
                                bits |= DPW_DEVICES | DPW_SOCKET | DPW_KUBELET;
                        for (int r = 0; r < N_ROLES; r++)
                                if (w->w[r].wd >= 0 && w->w[r].wd == ev->wd)
                                        bits |= event_bits(w, r, ev);
                        p += sizeof(*ev) + ev->len;
                }
        }
        return bits | rewatch(w);
}

int dpw_wait(struct dp_watch *w, int timeout_ms)
{
        struct pollfd p[2] = {{.fd = w->signal_fd, .events = POLLIN},
                              {.fd = w->inotify_fd, .events = POLLIN}};
        if (any_missing(w) && (timeout_ms < 0 || timeout_ms > MISSING_POLL_MS))
                timeout_ms = MISSING_POLL_MS;
        int n = poll(p, 2, timeout_ms);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        int bits = 0;
        if (p[0].revents & POLLIN) {
                struct signalfd_siginfo si;
                while (read(w->signal_fd, &si, sizeof(si)) == sizeof(si))
                        log_info("signal %u: stopping", si.ssi_signo);
                bits |= DPW_STOP;
        }
        if (p[1].revents & POLLIN)
                bits |= read_inotify(w);
        else
                bits |= rewatch(w);
        return bits;
}

bool dpw_stop_pending(struct dp_watch *w)
{
        struct pollfd p = {.fd = w->signal_fd, .events = POLLIN};
        return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

void dpw_close(struct dp_watch *w)
{
        if (!w)
                return;
        if (w->inotify_fd >= 0)
                close(w->inotify_fd);
        if (w->signal_fd >= 0)
                close(w->signal_fd);
        for (int r = 0; r < N_ROLES; r++)
                free(w->w[r].path);
        FREE_ALL(w->pattern, w->socket_name, w->device_base, w->socket_base);
        free(w);
}
