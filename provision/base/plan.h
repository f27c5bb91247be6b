/* The plan engine: `up` and `down` are plans, lists of steps that are data.
 *
 * A step has a name, what it acts on, a deadline, a progress line and an
 * undo; providers, images, node setup and cluster setup only add steps
 * (plan_add) and write their run/undo functions. The engine does the rest
 * for every step alike: `--dry-run` prints the plan and runs nothing (the
 * very list `up` then runs, in the same order); a run prints each step's
 * progress, gives it a cancel token with its deadline (Ctrl-C fires the
 * parent), writes what its programs print to the run's log, and on a
 * failure, a missed deadline or Ctrl-C undoes the steps that ran, in
 * reverse order, each undo with a deadline of its own.
 *
 * Steps with a lane (node 1, node 2, ...) that follow each other form a
 * stage: each lane runs its steps in order in a thread of its own, the
 * lanes side by side; a failing lane stops the others. docs/plan-engine.md
 * walks through a step's life and how to add one. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "common/cancel.h"
#include "common/macro.h"
#include "common/proc.h"

struct run_ctx;
struct state;
struct plan;
struct step;

/* What a running step (or undo) gets. */
struct step_run {
        struct run_ctx *ctx;
        struct state *st;
        const struct step *step;
        /* Fires at the step's deadline, or on Ctrl-C. */
        struct cancel cancel;
        /* Where its programs' output goes (the run's log), -1 for none. */
        int log_fd;
        bool verbose;
        bool undoing;
        /* Set by the step: what it waits for now, for the deadline message. */
        char waiting_for[160];
};

/* A step's run or undo: 0 done, STEP_HALT to stop the plan here without
 * undoing anything (e.g. a failed render-node probe: the nodes stay up for
 * inspection), a negative errno to fail. */
typedef int (*step_fn)(struct step_run *sr, void *data);
#define STEP_HALT 1

struct plan *plan_new(const char *title);
void plan_free(struct plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct plan *, plan_free)
#define _cleanup_plan_ _cleanup_(plan_freep)

/* Free data with free_fn when the plan is freed (shared step data). */
void *plan_own(struct plan *p, void *data, void (*free_fn)(void *));

/* Append a step named name (unique in the plan). The setters below take
 * NULL (an allocation failed): the plan remembers the failure and
 * plan_run/plan_print refuse it, so builders need not check each call. */
struct step *plan_add(struct plan *p, const char *name, step_fn run, void *data);
void step_acts_on(struct step *s, const char *fmt, ...) _printf_(2, 3);
void step_progress(struct step *s, const char *fmt, ...) _printf_(2, 3);
void step_detail(struct step *s, const char *fmt, ...) _printf_(2, 3);
void step_deadline(struct step *s, double seconds);
void step_lane(struct step *s, unsigned lane, const char *lane_name);
/* undo may be NULL: the text then says why nothing needs undoing. */
void step_undo(struct step *s, step_fn undo, const char *fmt, ...) _printf_(3, 4);
/* A step that stays in the plan for the record but is always skipped:
 * printed in the plan, reported as "skipped (why)" when run. */
void step_skip(struct step *s, const char *why);

size_t plan_steps(const struct plan *p);
const char *plan_step_name(const struct plan *p, size_t i);
/* The plan is broken (allocation failure, duplicate name): -ENOMEM/-EINVAL. */
int plan_error(const struct plan *p);

/* --dry-run: the plan, every step with what it acts on, its deadline, its
 * progress line, its undo and its details. */
int plan_print(const struct plan *p, FILE *out);

struct plan_result {
        size_t ran, failed_at; /* failed_at: index+1 of the failed step, 0 none */
        bool halted;
        bool undo_incomplete;
        double elapsed;
};

/* Run the plan. Returns 0, STEP_HALT, or the failing step's -errno after
 * the undo; -ECANCELED for Ctrl-C. */
int plan_run(struct plan *p, struct run_ctx *ctx, struct state *st, struct plan_result *res);

/* In a step: say what it waits for (shown when its deadline passes). */
void step_waiting(struct step_run *sr, const char *fmt, ...) _printf_(2, 3);
/* In a step: 0, or -ECANCELED / -ETIMEDOUT when it must stop. */
int step_check(struct step_run *sr);
/* Run a program for a step: its output to the run's log (and our stderr
 * with -v), the step's token, stdout captured into *ret_out when given. A
 * failure is logged with what, the exit status and the last lines. */
int step_run_program(struct step_run *sr, const char *what, char *const *argv, char *const *env_set,
                     const char *cwd, char **ret_out);
/* The same with the whole result (exit status judged by the caller). */
int step_run_program_full(struct step_run *sr, const char *what, char *const *argv,
                          char *const *env_set, char *const *env_unset, const char *cwd,
                          struct proc_result *ret);
/* Both with a deadline of their own (seconds > 0) inside the step's. */
int step_run_program_checked(struct step_run *sr, double seconds, const char *what,
                             char *const *argv, char *const *env_set, const char *cwd,
                             char **ret_out);
int step_run_program_until(struct step_run *sr, double seconds, const char *what, char *const *argv,
                           char *const *env_set, char *const *env_unset, const char *cwd,
                           struct proc_result *ret);
