/* The plan engine (see plan.h): building, printing and running plans. */
#include "provision/base/plan.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "provision/base/context.h"

struct step {
        char *name, *acts_on, *progress, *detail, *undo_text, *lane_name, *skip_why;
        double deadline;
        unsigned lane;
        step_fn run, undo;
        void *data;
        int broken; /* a setter's allocation failed */
        /* Filled while running. */
        bool started, done;
        int result;
        double elapsed;
};

struct owned {
        void *data;
        void (*free_fn)(void *);
};

struct plan {
        char *title;
        struct step **steps;
        size_t n, cap;
        struct owned *owned;
        size_t n_owned;
        int error;
};

struct plan *plan_new(const char *title)
{
        struct plan *p = calloc(1, sizeof(*p));

        if (p && !(p->title = strdup(title ? title : "plan"))) {
                free(p);
                return NULL;
        }
        return p;
}

static void step_free(struct step *s)
{
        if (!s)
                return;
        FREE_ALL(s->name, s->acts_on, s->progress, s->detail, s->undo_text, s->lane_name,
                 s->skip_why);
        free(s);
}

void plan_free(struct plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                step_free(p->steps[i]);
        /* Last owned first: later data may point into earlier data. */
        for (size_t i = p->n_owned; i-- > 0;)
                p->owned[i].free_fn(p->owned[i].data);
        free(p->owned);
        free(p->steps);
        free(p->title);
        free(p);
}

void *plan_own(struct plan *p, void *data, void (*free_fn)(void *))
{
        struct owned *o;

        if (!data) {
                p->error = -ENOMEM;
                return NULL;
        }
        o = realloc(p->owned, (p->n_owned + 1) * sizeof(*o));
        if (!o) {
                free_fn(data);
                p->error = -ENOMEM;
                return NULL;
        }
        p->owned = o;
        p->owned[p->n_owned++] = (struct owned){data, free_fn};
        return data;
}

struct step *plan_add(struct plan *p, const char *name, step_fn run, void *data)
{
        struct step *s;

        for (size_t i = 0; i < p->n; i++)
                if (streq(p->steps[i]->name, name)) {
                        log_error("plan %s: two steps named '%s'", p->title, name);
                        p->error = -EINVAL;
                        return NULL;
                }
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 16;
                struct step **n = realloc(p->steps, cap * sizeof(*n));
                if (!n) {
                        p->error = -ENOMEM;
                        return NULL;
                }
                p->steps = n;
                p->cap = cap;
        }
        s = calloc(1, sizeof(*s));
        if (!s || !(s->name = strdup(name))) {
                free(s);
                p->error = -ENOMEM;
                return NULL;
        }
        s->run = run;
        s->data = data;
        s->deadline = 600;
        p->steps[p->n++] = s;
        return s;
}

/* The setters: a failed allocation marks the step, and so the plan. */
static void set_text(struct step *s, char **field, const char *fmt, va_list ap)
{
        char *t = strdup_vprintf(fmt, ap);

        free(*field);
        *field = t;
        if (!t)
                s->broken = -ENOMEM;
}

#define SETTER(fn, field)                                                                          \
        void fn(struct step *s, const char *fmt, ...)                                              \
        {                                                                                          \
                va_list ap;                                                                        \
                if (!s)                                                                            \
                        return;                                                                    \
                va_start(ap, fmt);                                                                 \
                set_text(s, &s->field, fmt, ap);                                                   \
                va_end(ap);                                                                        \
        }
SETTER(step_acts_on, acts_on)
SETTER(step_progress, progress)
SETTER(step_detail, detail)

void step_deadline(struct step *s, double seconds)
{
        if (s)
                s->deadline = seconds;
}

void step_lane(struct step *s, unsigned lane, const char *lane_name)
{
        if (!s)
                return;
        s->lane = lane;
        free(s->lane_name);
        s->lane_name = lane_name ? strdup(lane_name) : NULL;
        if (lane_name && !s->lane_name)
                s->broken = -ENOMEM;
}

void step_undo(struct step *s, step_fn undo, const char *fmt, ...)
{
        va_list ap;

        if (!s)
                return;
        s->undo = undo;
        va_start(ap, fmt);
        set_text(s, &s->undo_text, fmt, ap);
        va_end(ap);
}

void step_skip(struct step *s, const char *why)
{
        if (!s)
                return;
        free(s->skip_why);
        s->skip_why = strdup(why ? why : "not needed");
        if (!s->skip_why)
                s->broken = -ENOMEM;
}

size_t plan_steps(const struct plan *p)
{
        return p->n;
}

const char *plan_step_name(const struct plan *p, size_t i)
{
        return i < p->n ? p->steps[i]->name : NULL;
}

int plan_error(const struct plan *p)
{
        if (p->error)
                return p->error;
        for (size_t i = 0; i < p->n; i++) {
                if (p->steps[i]->broken < 0)
                        return p->steps[i]->broken;
                if (!p->steps[i]->progress)
                        return -EINVAL; /* a builder forgot it: every step says what it does */
        }
        return 0;
}

/* ---- printing -------------------------------------------------------------- */

static void print_indented(FILE *out, const char *text)
{
        for (const char *l = text; l && *l;) {
                size_t k = strcspn(l, "\n");
                fprintf(out, "       | %.*s\n", (int)k, l);
                l += k + (l[k] == '\n');
        }
}

int plan_print(const struct plan *p, FILE *out)
{
        int r = plan_error(p);

        if (r < 0)
                return log_error_errno(r, "the plan could not be made: %s", strerror(-r));
        fprintf(out, "%s: %zu steps%s\n", p->title, p->n, p->n ? "" : " (nothing to do)");
        for (size_t i = 0; i < p->n; i++) {
                const struct step *s = p->steps[i];
                fprintf(out, "%3zu. %s%s%s%s\n", i + 1, s->lane_name ? "[" : "",
                        s->lane_name ? s->lane_name : "", s->lane_name ? "] " : "", s->name);
                if (s->acts_on)
                        fprintf(out, "     acts on:  %s\n", s->acts_on);
                fprintf(out, "     progress: %s\n", s->progress);
                fprintf(out, "     deadline: %.0fs\n", s->deadline);
                fprintf(out, "     undo:     %s\n",
                        s->undo_text ? s->undo_text : "nothing to undo");
                if (s->skip_why)
                        fprintf(out, "     skipped:  %s\n", s->skip_why);
                if (s->detail)
                        print_indented(out, s->detail);
        }
        fflush(out);
        return 0;
}

/* ---- running --------------------------------------------------------------- */

/* How often a step that runs long says what it waits for. */
#define PROGRESS_EVERY 30.0

struct engine {
        struct plan *p;
        struct run_ctx *ctx;
        struct state *st;
        const struct cancel *parent; /* the stage's token, or the root */
        pthread_mutex_t lock;        /* the fields below, shared by lanes */
        pthread_cond_t wake;
        size_t ran;
        struct step_run *running[64]; /* what the progress thread reports on */
        double started[64];
        bool stop;
};

static void track(struct engine *e, struct step_run *sr, bool on)
{
        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; i < ELEMENTSOF(e->running); i++)
                if (on ? !e->running[i] : e->running[i] == sr) {
                        e->running[i] = on ? sr : NULL;
                        e->started[i] = now_seconds();
                        break;
                }
        pthread_mutex_unlock(&e->lock);
}

/* Every PROGRESS_EVERY seconds, each step still running says what it waits
 * for and how long it has left: a silent TCG boot or apt in the appliance
 * is not a hang to the user watching. */
static void *progress_thread(void *arg)
{
        struct engine *e = arg;
        struct timespec ts;

        pthread_mutex_lock(&e->lock);
        while (!e->stop) {
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)PROGRESS_EVERY;
                if (pthread_cond_timedwait(&e->wake, &e->lock, &ts) != ETIMEDOUT || e->stop)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(e->running); i++) {
                        const struct step_run *sr = e->running[i];
                        if (!sr)
                                continue;
                        double t = now_seconds() - e->started[i];
                        log_info("    ... %s: %s (%.0f s so far; the step's deadline: %.0f s)",
                                 sr->step->name,
                                 sr->waiting_for[0] ? sr->waiting_for : sr->step->progress, t,
                                 sr->step->deadline);
                }
        }
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

void step_waiting(struct step_run *sr, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(sr->waiting_for, sizeof(sr->waiting_for), fmt, ap);
        va_end(ap);
}

int step_check(struct step_run *sr)
{
        return cancel_check(&sr->cancel);
}

static const char *label(const struct step *s, char *buf, size_t size)
{
        snprintf(buf, size, "%s%s%s", s->lane_name ? s->lane_name : "", s->lane_name ? ": " : "",
                 s->name);
        return buf;
}

/* Tests prove rollback at every step: VGPUENV_TEST_FAIL_AT=NAME fails the
 * step instead of running it, VGPUENV_TEST_FAIL_AFTER=NAME after it ran. */
static bool injected(const char *var, const struct step *s)
{
        const char *v = getenv(var);

        return !isempty(v) && streq(v, s->name);
}

static void report_failure(const struct step_run *sr, const struct step *s, int r, double dt)
{
        const struct run_ctx *ctx = sr->ctx;
        const char *log = ctx->log_path ? ctx->log_path : "(no log)";
        const char *waiting = sr->waiting_for[0] ? sr->waiting_for : "it to finish";

        if (r == -ETIMEDOUT && cancel_culprit(&sr->cancel) == &sr->cancel)
                log_error("step '%s' missed its deadline of %gs waiting for %s; its log: %s",
                          s->name, s->deadline, waiting, log);
        else if (r == -ETIMEDOUT)
                log_error("step '%s' stopped after %.1fs: a deadline passed waiting for %s; its "
                          "log: %s",
                          s->name, dt, waiting, log);
        else if (r == -ECANCELED)
                log_notice("step '%s' stopped after %.1fs: interrupted", s->name, dt);
        else if (r == -ECONNABORTED)
                log_notice("step '%s' stopped after %.1fs: a step of another lane failed", s->name,
                           dt);
        else
                log_error("step '%s' failed after %.1fs (%s); its log: %s", s->name, dt,
                          strerror(-r), log);
}

static int run_step(struct engine *e, size_t i)
{
        struct step *s = e->p->steps[i];
        char lb[256];
        struct step_run sr = {
            .ctx = e->ctx,
            .st = e->st,
            .step = s,
            .log_fd = e->ctx->log_fd,
            .verbose = e->ctx->verbose,
        };
        double t0 = now_seconds();
        int r;

        label(s, lb, sizeof(lb));
        /* For tests and the curious: exactly the names --dry-run printed. */
        log_debug("step %zu/%zu %s", i + 1, e->p->n, s->name);
        if (s->skip_why) {
                log_info("[%zu/%zu] %s: skipped (%s)", i + 1, e->p->n, lb, s->skip_why);
                s->done = true;
                return 0;
        }
        if ((r = cancel_check(e->parent)) < 0)
                return r; /* another lane failed, or Ctrl-C: not started */
        log_info("[%zu/%zu] %s: %s", i + 1, e->p->n, lb, s->progress);
        log_debug("step %s acts on %s, deadline %.0fs", s->name, s->acts_on ? s->acts_on : "-",
                  s->deadline);
        cancel_init_child(&sr.cancel, e->parent, s->deadline, NULL);
        _cleanup_free_ char *what =
            strdup_printf("step '%s' (deadline %.0fs)", s->name, s->deadline);
        sr.cancel.what = what;
        if (injected("VGPUENV_TEST_FAIL_AT", s))
                r = log_error_errno(EIO, "failure injected at step '%s' (VGPUENV_TEST_FAIL_AT)",
                                    s->name);
        else {
                s->started = true;
                track(e, &sr, true);
                r = s->run(&sr, s->data);
                track(e, &sr, false);
        }
        if (r >= 0 && r != STEP_HALT && injected("VGPUENV_TEST_FAIL_AFTER", s))
                r = log_error_errno(EIO,
                                    "failure injected after step '%s' "
                                    "(VGPUENV_TEST_FAIL_AFTER)",
                                    s->name);
        /* A step that ignored its token but came back late still failed. */
        if (r >= 0 && r != STEP_HALT && cancel_check(&sr.cancel) < 0)
                r = cancel_check(&sr.cancel);
        s->elapsed = now_seconds() - t0;
        s->result = r;
        s->done = r >= 0;
        if (r == STEP_HALT)
                log_info("[%zu/%zu] %s: stops the plan here (%.1fs)", i + 1, e->p->n, lb,
                         s->elapsed);
        else if (r >= 0)
                log_info("[%zu/%zu] %s: ok (%.1fs)", i + 1, e->p->n, lb, s->elapsed);
        else
                report_failure(&sr, s, r, s->elapsed);
        pthread_mutex_lock(&e->lock);
        e->ran++;
        pthread_mutex_unlock(&e->lock);
        return r;
}

struct lane_job {
        struct engine *e;
        struct cancel *stage;
        size_t from, to;
        unsigned lane;
        int r;
};

static void *lane_thread(void *arg)
{
        struct lane_job *j = arg;

        for (size_t i = j->from; i < j->to && j->r == 0; i++)
                if (j->e->p->steps[i]->lane == j->lane) {
                        j->r = run_step(j->e, i);
                        if (j->r == STEP_HALT)
                                break;
                }
        /* A failing lane stops the others; a halt lets them finish. */
        if (j->r < 0)
                cancel_fire(j->stage, ECONNABORTED);
        return NULL;
}

/* Steps from..to all have lanes: one thread per lane. */
static int run_stage(struct engine *e, size_t from, size_t to)
{
        _cleanup_free_ struct lane_job *jobs = calloc(to - from, sizeof(*jobs));
        _cleanup_free_ pthread_t *th = calloc(to - from, sizeof(*th));
        struct cancel stage;
        const struct cancel *outer = e->parent;
        size_t nl = 0;
        int r = 0;

        if (!jobs || !th)
                return log_error_errno(ENOMEM, "out of memory");
        cancel_init_child(&stage, outer, 0, "the stage");
        e->parent = &stage;
        for (size_t i = from; i < to; i++) {
                unsigned lane = e->p->steps[i]->lane;
                bool seen = false;
                for (size_t k = 0; k < nl; k++)
                        seen = seen || jobs[k].lane == lane;
                if (!seen)
                        jobs[nl++] = (struct lane_job){
                            .e = e, .stage = &stage, .from = from, .to = to, .lane = lane};
        }
        for (size_t k = 0; k < nl; k++)
                if (pthread_create(&th[k], NULL, lane_thread, &jobs[k]) != 0)
                        lane_thread(&jobs[k]);
        for (size_t k = 0; k < nl; k++) {
                if (th[k])
                        pthread_join(th[k], NULL);
                /* The failure wins over the stops it caused in other lanes. */
                if (jobs[k].r < 0 && (r >= 0 || (r == -ECONNABORTED && jobs[k].r != r)))
                        r = jobs[k].r;
                else if (jobs[k].r == STEP_HALT && r == 0)
                        r = STEP_HALT;
        }
        e->parent = outer;

        return r;
}

/* Undo what ran, last first, each with a deadline of its own that does not
 * descend from the (maybe interrupted) run: a first Ctrl-C must not stop
 * the rollback; a second one exits (common/cancel.c). */
static bool undo_all(struct engine *e)
{
        bool complete = true;
        size_t todo = 0;

        for (size_t i = 0; i < e->p->n; i++)
                todo += e->p->steps[i]->started && e->p->steps[i]->undo;
        if (todo == 0)
                return true;
        log_notice("rolling back: undoing %zu step(s) of this run, last first", todo);
        for (size_t i = e->p->n; i-- > 0;) {
                struct step *s = e->p->steps[i];
                if (!s->started || !s->undo)
                        continue;
                struct step_run sr = {.ctx = e->ctx,
                                      .st = e->st,
                                      .step = s,
                                      .log_fd = e->ctx->log_fd,
                                      .verbose = e->ctx->verbose,
                                      .undoing = true};
                _cleanup_free_ char *what = strdup_printf("undo of '%s'", s->name);
                cancel_init_detached(&sr.cancel, e->ctx->cancel.registry,
                                     e->ctx->cfg->deadlines.undo, what);
                log_info("[undo %zu] %s: %s", i + 1, s->name, s->undo_text ? s->undo_text : "");
                track(e, &sr, true);
                int r = s->undo(&sr, s->data);
                track(e, &sr, false);
                if (r < 0) {
                        complete = false;
                        log_error("[undo %zu] %s: failed (%s)", i + 1, s->name, strerror(-r));
                }
        }
        return complete;
}

int plan_run(struct plan *p, struct run_ctx *ctx, struct state *st, struct plan_result *res)
{
        struct engine e = {.p = p, .ctx = ctx, .st = st, .parent = &ctx->cancel};
        struct plan_result dummy;
        double t0 = now_seconds();
        int r = plan_error(p);

        if (!res)
                res = &dummy;
        *res = (struct plan_result){0};
        if (r < 0)
                return log_error_errno(r, "the plan could not be made: %s", strerror(-r));
        pthread_t progress;
        pthread_mutex_init(&e.lock, NULL);
        pthread_cond_init(&e.wake, NULL);
        bool have_progress = pthread_create(&progress, NULL, progress_thread, &e) == 0;
        log_debug("%s: %zu steps", p->title, p->n);
        for (size_t i = 0; i < p->n && r == 0;) {
                size_t j = i + 1;
                if (p->steps[i]->lane == 0)
                        r = run_step(&e, i);
                else {
                        while (j < p->n && p->steps[j]->lane != 0)
                                j++;
                        r = run_stage(&e, i, j);
                }
                if (r < 0 || r == STEP_HALT)
                        for (size_t k = i; k < j && !res->failed_at; k++)
                                if (p->steps[k]->result == r)
                                        res->failed_at = k + 1;
                i = j;
        }
        res->ran = e.ran;
        res->halted = r == STEP_HALT;
        if (r < 0)
                res->undo_incomplete = !undo_all(&e);
        res->elapsed = now_seconds() - t0;
        pthread_mutex_lock(&e.lock);
        e.stop = true;
        pthread_cond_signal(&e.wake);
        pthread_mutex_unlock(&e.lock);
        if (have_progress)
                pthread_join(progress, NULL);
        pthread_cond_destroy(&e.wake);
        pthread_mutex_destroy(&e.lock);
        return r;
}

int step_run_program_full(struct step_run *sr, const char *what, char *const *argv,
                          char *const *env_set, char *const *env_unset, const char *cwd,
                          struct proc_result *ret)
{
        return step_run_program_until(sr, 0, what, argv, env_set, env_unset, cwd, ret);
}

int step_run_program_until(struct step_run *sr, double seconds, const char *what, char *const *argv,
                           char *const *env_set, char *const *env_unset, const char *cwd,
                           struct proc_result *ret)
{
        struct cancel own;
        struct proc_opts o = {
            .argv = argv,
            .env_set = env_set,
            .env_unset = env_unset,
            .cwd = cwd,
            .out = PROC_CAPTURE,
            .err = PROC_CAPTURE,
            .log_fd = sr->log_fd,
            .log_prefix = sr->step ? sr->step->name : what,
            .echo = sr->verbose,
            .cancel = &sr->cancel,
        };
        _cleanup_free_ char *cmd = shell_join(argv);
        int r;

        if (seconds > 0) {
                cancel_init_child(&own, &sr->cancel, seconds, what);
                o.cancel = &own;
        }
        step_waiting(sr, "%s", what);

        log_debug("%s: run %s%s%s", what, cwd ? "[in " : "", cwd ? cwd : "", cwd ? "] " : "");
        log_debug("    %s", cmd ? cmd : argv[0]);
        r = proc_run(&o, ret);
        if (r == -ENOENT)
                return log_error_errno(r, "%s: %s not found in PATH", what, argv[0]);
        if (r < 0)
                return log_error_errno(r, "%s: cannot run %s: %s", what, argv[0], strerror(-r));
        if (ret->stopped_by < 0) {
                /* The engine reports the deadline (with what the step waited
                 * for: this program) or the interruption. */
                r = ret->stopped_by;
                proc_result_done(ret);
                return r;
        }
        return 0;
}

int step_run_program(struct step_run *sr, const char *what, char *const *argv, char *const *env_set,
                     const char *cwd, char **ret_out)
{
        return step_run_program_checked(sr, 0, what, argv, env_set, cwd, ret_out);
}

int step_run_program_checked(struct step_run *sr, double seconds, const char *what,
                             char *const *argv, char *const *env_set, const char *cwd,
                             char **ret_out)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = step_run_program_until(sr, seconds, what, argv, env_set, NULL, cwd, &res);

        if (r < 0)
                return r;
        if (res.exit_code != 0)
                return log_error_errno(EIO, "%s: %s exited with %d%s%.*s", what, argv[0],
                                       res.exit_code, res.tail.len ? "; its last output:\n" : "",
                                       (int)res.tail.len, res.tail.len ? res.tail.data : "");
        if (ret_out && !(*ret_out = buf_steal(&res.out)))
                return log_error_errno(ENOMEM, "out of memory");
        return 0;
}
