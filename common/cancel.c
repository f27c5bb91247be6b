/* Cancellation tokens and the signal thread (see cancel.h). */
#include "common/cancel.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

void cancel_init_root(struct cancel *c, struct cancel_registry *reg)
{
        *c = (struct cancel){.registry = reg, .what = "the run"};
        atomic_init(&c->fired, 0);
        atomic_init(&c->hard, false);
        if (reg)
                *reg = (struct cancel_registry){.lock = PTHREAD_MUTEX_INITIALIZER};
}

void cancel_registry_done(struct cancel_registry *reg)
{
        if (!reg)
                return;
        free(reg->pgids);
        reg->pgids = NULL;
        reg->n = reg->cap = 0;
}

void cancel_init_child(struct cancel *c, const struct cancel *parent, double seconds,
                       const char *what)
{
        *c = (struct cancel){
            .parent = parent,
            .deadline = seconds > 0 ? now_seconds() + seconds : 0,
            .what = what,
            .registry = parent ? parent->registry : NULL,
        };
        atomic_init(&c->fired, 0);
        atomic_init(&c->hard, false);
}

void cancel_init_detached(struct cancel *c, struct cancel_registry *reg, double seconds,
                          const char *what)
{
        cancel_init_child(c, NULL, seconds, what);
        c->registry = reg;
}

void cancel_init_after_interrupt(struct cancel *c, const struct cancel *parent, double seconds,
                                 const char *what)
{
        cancel_init_child(c, parent, seconds, what);
        c->after_interrupt = true;
}

void cancel_fire(struct cancel *c, int err)
{
        int zero = 0;

        atomic_compare_exchange_strong(&c->fired, &zero, err > 0 ? err : -err);
}

const struct cancel *cancel_culprit(const struct cancel *c)
{
        const struct cancel *late = NULL;
        double now = 0;
        bool hard_only = false;

        for (; c; c = c->parent) {
                int f = atomic_load(&c->fired);
                if (hard_only) {
                        if (atomic_load(&c->hard))
                                return c;
                        continue;
                }
                hard_only = c->after_interrupt;
                if (f == ECANCELED)
                        return c; /* an interruption outranks any deadline */
                if (f && !late)
                        late = c;
                if (!late && c->deadline > 0) {
                        if (now == 0)
                                now = now_seconds();
                        if (now >= c->deadline)
                                late = c;
                }
        }
        return late;
}

int cancel_check(const struct cancel *c)
{
        const struct cancel *k = cancel_culprit(c);

        if (!k)
                return 0;
        int f = atomic_load(&k->fired);
        return f ? -f : -ETIMEDOUT;
}

double cancel_remaining(const struct cancel *c)
{
        double left = 1e9, now = now_seconds();

        for (; c; c = c->parent)
                if (c->deadline > 0 && c->deadline - now < left)
                        left = c->deadline - now;
        return left;
}

bool cancel_is_hard(const struct cancel *c)
{
        for (; c; c = c->parent)
                if (atomic_load(&c->hard))
                        return true;
        return false;
}

int cancel_sleep(const struct cancel *c, double seconds)
{
        double until = now_seconds() + seconds;
        int r;

        while ((r = cancel_check(c)) == 0) {
                double left = until - now_seconds();
                if (left <= 0)
                        return 0;
                if (left > 0.1)
                        left = 0.1;
                struct timespec ts = {0, (long)(left * 1e9)};
                nanosleep(&ts, NULL);
        }
        return r;
}

void cancel_registry_add(struct cancel_registry *reg, pid_t pgid)
{
        if (!reg)
                return;
        pthread_mutex_lock(&reg->lock);
        if (reg->n == reg->cap) {
                size_t cap = reg->cap ? reg->cap * 2 : 16;
                pid_t *p = realloc(reg->pgids, cap * sizeof(*p));
                if (p) {
                        reg->pgids = p;
                        reg->cap = cap;
                }
        }
        /* Out of memory: the child still runs, it only escapes the second
         * Ctrl-C's kill (the first one reaches it through its runner). */
        if (reg->n < reg->cap)
                reg->pgids[reg->n++] = pgid;
        pthread_mutex_unlock(&reg->lock);
}

void cancel_registry_remove(struct cancel_registry *reg, pid_t pgid)
{
        if (!reg)
                return;
        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < reg->n; i++)
                if (reg->pgids[i] == pgid) {
                        reg->pgids[i] = reg->pgids[--reg->n];
                        break;
                }
        pthread_mutex_unlock(&reg->lock);
}

void cancel_registry_kill_all(struct cancel_registry *reg)
{
        if (!reg)
                return;
        pthread_mutex_lock(&reg->lock);
        for (size_t i = 0; i < reg->n; i++)
                kill(-reg->pgids[i], SIGKILL);
        pthread_mutex_unlock(&reg->lock);
}

struct signal_watch {
        struct cancel *root;
        enum cancel_second second;
};

static void *signal_thread(void *arg)
{
        struct signal_watch w = *(struct signal_watch *)arg;
        sigset_t set;
        int sig;

        free(arg);
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        for (;;) {
                if (sigwait(&set, &sig) != 0)
                        continue;
                const char *name = sig == SIGINT ? "Ctrl-C" : "SIGTERM";
                if (atomic_load(&w.root->fired) != ECANCELED) {
                        cancel_fire(w.root, ECANCELED);
                        log_warning("interrupted: stopping what runs and rolling back (%s again "
                                    "%s)",
                                    name,
                                    w.second == CANCEL_SECOND_EXITS ? "exits at once"
                                                                    : "kills it at once");
                        continue;
                }
                atomic_store(&w.root->hard, true);
                cancel_registry_kill_all(w.root->registry);
                if (w.second == CANCEL_SECOND_EXITS) {
                        log_error("interrupted again: exiting without rolling back (run "
                                  "'vgpuenv down' to remove what is left)");
                        _exit(130);
                }
                log_warning("interrupted again: killing what runs");
        }
        return NULL;
}

int cancel_watch_signals(struct cancel *root, enum cancel_second second)
{
        struct signal_watch *w = malloc(sizeof(*w));
        pthread_attr_t attr;
        pthread_t t;
        sigset_t set;
        int r;

        if (!w)
                return log_error_errno(ENOMEM, "out of memory");
        *w = (struct signal_watch){.root = root, .second = second};
        /* Blocked before any other thread exists, so every thread created
         * later inherits the mask and only sigwait() sees these signals. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        r = pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (r != 0) {
                free(w);
                return log_error_errno(r, "cannot block SIGINT/SIGTERM: %s", strerror(r));
        }
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, signal_thread, w);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                free(w);
                return log_error_errno(r, "cannot start the signal thread: %s", strerror(r));
        }
        return 0;
}
