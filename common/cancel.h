/* Cancellation: the one model every long operation of vgpuenv honours.
 *
 * A token says "stop": because the user pressed Ctrl-C (the root token,
 * fired by the signal thread) or because a deadline passed (a child token
 * made for one step, one command, one appliance call). Tokens form a chain
 * to the root; checking a token checks the whole chain, so a node command
 * inside a step stops on its own deadline, the step's, or Ctrl-C. Nothing
 * is fired from signal handlers: the signal thread sets an atomic and the
 * code that waits (the process runner, ssh, the appliance watchdog) polls
 * with short timeouts, so every wait ends within a fraction of a second.
 *
 * The registry records the process groups of running children, so that a
 * second Ctrl-C can kill them all before vgpuenv exits: they run in their
 * own process groups (we decide when they get a signal) and would otherwise
 * outlive us. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

struct cancel_registry {
        pthread_mutex_t lock;
        pid_t *pgids;
        size_t n, cap;
};

struct cancel {
        atomic_int fired;                 /* 0, or the positive errno it was fired with */
        atomic_bool hard;                 /* a second Ctrl-C: kill children at once */
        const struct cancel *parent;      /* NULL for a root */
        double deadline;                  /* monotonic seconds; 0: none */
        const char *what;                 /* for messages: "step 'network'", not owned */
        bool after_interrupt;             /* ancestors count only once hard */
        struct cancel_registry *registry; /* shared down the chain */
};

/* A root token (the run's, fired by Ctrl-C), with its registry. */
void cancel_init_root(struct cancel *c, struct cancel_registry *reg);
void cancel_registry_done(struct cancel_registry *reg);

/* A child token: fires when parent does, or seconds from now (0: never on
 * its own). parent may be NULL (a rollback's token must outlive the
 * cancelled run's): then registry names where children are recorded. */
void cancel_init_child(struct cancel *c, const struct cancel *parent, double seconds,
                       const char *what);
void cancel_init_detached(struct cancel *c, struct cancel_registry *reg, double seconds,
                          const char *what);

/* A token for work that must still run after a first Ctrl-C (e2e's
 * artifact collection after the tests were stopped, so the report is
 * complete): it fires at its own deadline or on the second Ctrl-C, not on
 * the first. Its children record into parent's registry. */
void cancel_init_after_interrupt(struct cancel *c, const struct cancel *parent, double seconds,
                                 const char *what);

void cancel_fire(struct cancel *c, int err);

/* 0 while nothing fired; otherwise -ECANCELED (interrupted), -ETIMEDOUT (a
 * deadline passed), or the -errno a token was fired with (the plan engine
 * stops the other lanes with -ECONNABORTED). An interruption outranks
 * everything. NULL never fires. */
int cancel_check(const struct cancel *c);
/* The token of the chain that made cancel_check fail (for its what and
 * deadline), or NULL. */
const struct cancel *cancel_culprit(const struct cancel *c);
/* Seconds until the nearest deadline of the chain; a negative value when
 * one passed; 1e9 when there is none. */
double cancel_remaining(const struct cancel *c);
/* A second Ctrl-C asked to kill at once. */
bool cancel_is_hard(const struct cancel *c);

/* Sleep up to seconds, waking within 100 ms when c fires; cancel_check(). */
int cancel_sleep(const struct cancel *c, double seconds);

/* Record / forget a child's process group. */
void cancel_registry_add(struct cancel_registry *reg, pid_t pgid);
void cancel_registry_remove(struct cancel_registry *reg, pid_t pgid);
/* SIGKILL every recorded process group (the second Ctrl-C). */
void cancel_registry_kill_all(struct cancel_registry *reg);

/* What the second SIGINT/SIGTERM does. */
enum cancel_second {
        CANCEL_SECOND_EXITS,       /* kill the children, exit 130 at once (up, down) */
        CANCEL_SECOND_KILLS_CHILD, /* kill the children, go on (e2e: still write the report) */
};

/* Block SIGINT/SIGTERM in every thread (call before starting threads) and
 * start the thread that turns them into cancel_fire(root, ECANCELED). */
int cancel_watch_signals(struct cancel *root, enum cancel_second second);
