/* The one place that opens libguestfs handles, so every appliance launch
 * gets the same host-specific settings and the same watchdog.
 *
 * Settings: the direct backend forced onto TCG when the KVM verdict says so
 * (the appliance spins or crashes on a broken nested KVM), QEMU from PATH
 * (what `qemu-system-x86_64` runs here runs the appliance too), enough
 * memory for a package manager, one vCPU, errors kept for our messages,
 * the library's messages in the run's log.
 *
 * The watchdog: a libguestfs launch or call blocks, and nothing inside
 * libguestfs honours our deadlines or Ctrl-C. A thread per handle watches
 * the token of the current launch or call (its own deadline, the step's,
 * Ctrl-C) and, when it fires, kills the appliance's QEMU: the blocked call
 * then returns at once with an error, which the caller turns into the
 * token's -ETIMEDOUT / -ECANCELED. Before the launch has told us QEMU's pid
 * (guestfs_get_pid), the appliance is found as a child of ours that was not
 * there before the launch. */
#include <dirent.h>
#include <errno.h>
#include <guestfs.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "images/image.h"
#include "provision/base/plan.h"

struct appliance {
        guestfs_h *g;
        struct step_run *sr;
        pthread_t watchdog;
        bool watching;
        atomic_bool stop;
        /* The token of the launch or call under way (its parent is the
         * step's); NULL between calls. */
        _Atomic(const struct cancel *) current;
        atomic_int qemu_pid;
        atomic_bool killed;
        bool tcg;
        pid_t *before; /* our children before the launch */
        size_t n_before;
};

/* Our children now, from /proc/<pid>/stat (field 4 is the parent). */
static size_t children_of(pid_t parent, pid_t *out, size_t max)
{
        DIR *d = opendir("/proc");
        size_t n = 0;

        if (!d)
                return 0;
        for (struct dirent *e; (e = readdir(d)) && n < max;) {
                char path[64], buf[512];
                int pid = atoi(e->d_name), ppid = 0;
                if (pid <= 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/stat", pid);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                size_t k = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                buf[k] = 0;
                const char *rp = strrchr(buf, ')'); /* comm may hold spaces */
                if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == parent)
                        out[n++] = pid;
        }
        closedir(d);
        return n;
}

static void kill_appliance(struct appliance *a)
{
        pid_t now[256];
        pid_t qemu = atomic_load(&a->qemu_pid);

        if (qemu > 0)
                kill(qemu, SIGKILL);
        /* Not launched yet, or more than QEMU (libguestfs' recovery process):
         * every child that the launch added. */
        size_t n = children_of(getpid(), now, ELEMENTSOF(now));
        for (size_t i = 0; i < n; i++) {
                bool old = false;
                for (size_t k = 0; k < a->n_before && !old; k++)
                        old = a->before[k] == now[i];
                if (!old)
                        kill(now[i], SIGKILL);
        }
        atomic_store(&a->killed, true);
}

static void *watchdog_thread(void *p)
{
        struct appliance *a = p;

        while (!atomic_load(&a->stop)) {
                const struct cancel *c = atomic_load(&a->current);
                if (c && cancel_check(c) < 0 && !atomic_load(&a->killed)) {
                        const struct cancel *k = cancel_culprit(c);
                        log_notice("stopping the libguestfs appliance: %s",
                                   cancel_check(c) == -ECANCELED
                                       ? "interrupted"
                                       : (k && k->what ? k->what : "deadline passed"));
                        kill_appliance(a);
                }
                usleep(100 * 1000);
        }
        return NULL;
}

/* Library messages go to the run's log, never to the terminal. */
static void on_event(guestfs_h *g, void *opaque, uint64_t event, int handle, int flags,
                     const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
        struct appliance *a = opaque;
        (void)g, (void)event, (void)handle, (void)flags, (void)array, (void)array_len;

        if (a->sr->log_fd < 0 || len == 0)
                return;
        (void)write_all(a->sr->log_fd, "appliance| ", 11);
        (void)write_all(a->sr->log_fd, buf, len);
        if (buf[len - 1] != '\n')
                (void)write_all(a->sr->log_fd, "\n", 1);
}

int appliance_open(struct step_run *sr, enum accel_verdict accel, struct appliance **ret)
{
        _cleanup_free_ struct appliance *a = calloc(1, sizeof(*a));
        _cleanup_free_ char *hv = NULL;

        if (!a)
                return log_error_errno(ENOMEM, "out of memory");
        a->sr = sr;
        a->tcg = accel == ACCEL_VERDICT_TCG;
        a->g = guestfs_create();
        if (!a->g)
                return log_error_errno(ENOMEM, "cannot create a libguestfs handle");
        guestfs_set_error_handler(a->g, NULL, NULL);
        /* The user's own LIBGUESTFS_BACKEND / _SETTINGS / _HV win. */
        if (accel == ACCEL_VERDICT_TCG) {
                char *settings[] = {"force_tcg", NULL};
                if (isempty(getenv("LIBGUESTFS_BACKEND")))
                        guestfs_set_backend(a->g, "direct");
                if (isempty(getenv("LIBGUESTFS_BACKEND_SETTINGS")))
                        guestfs_set_backend_settings(a->g, settings);
        }
        if (isempty(getenv("LIBGUESTFS_HV")) && (hv = find_program("qemu-system-x86_64")))
                guestfs_set_hv(a->g, hv);
        guestfs_set_memsize(a->g, 1280);
        /* One vCPU: under TCG a second one slowed apt in the appliance from
         * 60 s to 75 s (cross-vCPU synchronisation, 2 host cores). */
        guestfs_set_smp(a->g, 1);
        /* Not verbose: the appliance's debug output (a line per 8 KiB chunk
         * of a tar-in) slowed the base image build under TCG; a launch that
         * hangs is reported by the watchdog instead. */
        if (sr->log_fd >= 0)
                guestfs_set_event_callback(a->g, on_event,
                                           GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING, 0, a);
        atomic_init(&a->current, NULL);
        if (pthread_create(&a->watchdog, NULL, watchdog_thread, a) != 0) {
                guestfs_close(a->g);
                return log_error_errno(EAGAIN, "cannot start the appliance watchdog");
        }
        a->watching = true;
        *ret = TAKE_PTR(a);
        return 0;
}

guestfs_h *appliance_handle(struct appliance *a)
{
        return a->g;
}

void appliance_close(struct appliance *a)
{
        if (!a)
                return;
        if (a->watching) {
                atomic_store(&a->stop, true);
                pthread_join(a->watchdog, NULL);
        }
        if (a->g)
                guestfs_close(a->g);
        free(a->before);
        free(a);
}

const char *appliance_error(struct appliance *a)
{
        const char *e = guestfs_last_error(a->g);

        return e ? e : "unknown libguestfs error";
}

void appliance_begin(struct appliance *a, struct cancel *call, double seconds, const char *what)
{
        cancel_init_child(call, &a->sr->cancel, seconds, what);
        step_waiting(a->sr, "%s, at most %.0f s", what, seconds);
        atomic_store(&a->current, call);
}

int appliance_end(struct appliance *a, struct cancel *call, int r)
{
        int c = cancel_check(call);

        atomic_store(&a->current, NULL);
        /* A call that failed because the watchdog killed QEMU failed for the
         * token's reason, not libguestfs'. */
        return c < 0 ? c : r;
}

int appliance_launch(struct appliance *a)
{
        struct cancel call;
        pid_t now[256];
        size_t n = children_of(getpid(), now, ELEMENTSOF(now));
        int r;

        a->before = malloc((n ? n : 1) * sizeof(pid_t));
        if (!a->before)
                return log_error_errno(ENOMEM, "out of memory");
        memcpy(a->before, now, n * sizeof(pid_t));
        a->n_before = n;
        log_info("    launching the libguestfs appliance (%s)", a->tcg ? "TCG" : "KVM");
        appliance_begin(a, &call, a->sr->ctx->cfg->deadlines.appliance_launch,
                        "the libguestfs appliance launch (deadlines.appliance_launch)");
        r = guestfs_launch(a->g) < 0 ? -EIO : 0;
        if (r == 0)
                atomic_store(&a->qemu_pid, guestfs_get_pid(a->g));
        r = appliance_end(a, &call, r);
        if (r == -EIO)
                log_error("the libguestfs appliance did not start: %s", appliance_error(a));
        return r;
}
