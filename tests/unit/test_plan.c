/* Unit tests for the plan engine (provision/base/plan.c): order, the printed
 * plan, undo in reverse order of exactly what started, a halt that keeps
 * everything, lanes running side by side and a failing lane stopping the
 * others, a step's deadline, Ctrl-C (the undo still runs), the test-only
 * failure injection, skipped steps and broken plans. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/fixture_tests.h"

#include "common/log.h"
#include "common/util.h"
#include "provision/base/context.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"

struct fixture {
        struct config cfg;
        struct run_ctx ctx;
        struct state st;
        /* What ran, in order: "run:a", "undo:a", ... */
        pthread_mutex_t lock;
        char **events;
};

struct behave {
        struct fixture *fx;
        const char *name;
        int result;      /* what run returns */
        double sleep;    /* honouring the token */
        bool ignore;     /* sleep without looking at the token */
        bool wait_other; /* wait (up to 3 s) until *other is set */
        bool *mine, *other;
};

static void event(struct fixture *fx, const char *what, const char *name)
{
        pthread_mutex_lock(&fx->lock);
        strv_push(&fx->events, strdup_printf("%s:%s", what, name));
        pthread_mutex_unlock(&fx->lock);
}

static int run_fn(struct step_run *sr, void *data)
{
        struct behave *b = data;
        int r;

        event(b->fx, "run", b->name);
        if (b->mine)
                __atomic_store_n(b->mine, true, __ATOMIC_SEQ_CST);
        if (b->wait_other) {
                for (int i = 0; i < 300 && !__atomic_load_n(b->other, __ATOMIC_SEQ_CST); i++)
                        usleep(10000);
                if (!__atomic_load_n(b->other, __ATOMIC_SEQ_CST))
                        return -EDEADLK; /* the lanes did not run side by side */
        }
        if (b->ignore)
                usleep((useconds_t)(b->sleep * 1e6));
        else if (b->sleep > 0 && (r = cancel_sleep(&sr->cancel, b->sleep)) < 0) {
                step_waiting(sr, "the test's sleep");
                return r;
        }
        return b->result;
}

static int undo_fn(struct step_run *sr, void *data)
{
        struct behave *b = data;
        /* An undo runs with a token of its own: never already fired. */
        assert_int_equal(cancel_check(&sr->cancel), 0);
        assert_true(sr->undoing);
        event(b->fx, "undo", b->name);
        return 0;
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        setenv("VGPUENV_STATE_DIR", "/tmp/vgpuenv-test-plan-state", 1);
        config_init_defaults(&fx->cfg);
        if (run_ctx_init(&fx->ctx, &fx->cfg) < 0)
                return -1;
        fx->st.root = cJSON_CreateObject();
        pthread_mutex_init(&fx->lock, NULL);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        strv_free(fx->events);
        cJSON_Delete(fx->st.root);
        run_ctx_done(&fx->ctx);
        config_done(&fx->cfg);
        free(fx);
        unsetenv("VGPUENV_TEST_FAIL_AT");
        unsetenv("VGPUENV_TEST_FAIL_AFTER");
        return 0;
}

static struct step *add(struct plan *p, struct behave *b, bool with_undo)
{
        struct step *s = plan_add(p, b->name, run_fn, b);
        step_progress(s, "doing %s", b->name);
        step_acts_on(s, "thing %s", b->name);
        if (with_undo)
                step_undo(s, undo_fn, "undoing %s", b->name);
        return s;
}

static char *events(struct fixture *fx)
{
        return fx->events ? strv_join(fx->events, " ") : strdup("");
}

/* The steps and undos ran exactly as want says; the record starts anew. */
static void events_are(struct fixture *fx, const char *want)
{
        _cleanup_free_ char *ev = events(fx);

        assert_string_equal(ev, want);
        strv_free(fx->events);
        fx->events = NULL;
}

static void test_order_and_print(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b"}, c = {fx, "c"};
        _cleanup_plan_ struct plan *p = plan_new("test plan");
        char *text = NULL;
        size_t size = 0;

        add(p, &a, true);
        step_deadline(add(p, &b, false), 42);
        add(p, &c, true);
        FILE *f = open_memstream(&text, &size);
        assert_int_equal(plan_print(p, f), 0);
        fclose(f);
        assert_non_null(strstr(text, "test plan: 3 steps\n  1. a\n     acts on:  thing a\n"
                                     "     progress: doing a\n"));
        assert_non_null(strstr(text, "  2. b\n"));
        assert_non_null(strstr(text, "     deadline: 42s\n     undo:     nothing to undo\n"));
        assert_non_null(strstr(text, "     undo:     undoing c\n"));
        assert_null(fx->events); /* printing ran nothing */
        free(text);

        struct plan_result res;
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, &res), 0);
        events_are(fx, "run:a run:b run:c");
        assert_int_equal(res.ran, 3);
}

/* The third step fails: the second and first are undone, last first; the
 * failed one's own undo runs too (it may have made something); the fourth
 * never starts and is not undone. */
static void test_failure_undoes_in_reverse(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b"}, c = {fx, "c", .result = -EIO}, d = {fx, "d"};
        _cleanup_plan_ struct plan *p = plan_new("t");
        struct plan_result res;

        add(p, &a, true);
        add(p, &b, true);
        add(p, &c, true);
        add(p, &d, true);
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, &res), -EIO);
        events_are(fx, "run:a run:b run:c undo:c undo:b undo:a");
        assert_int_equal(res.failed_at, 3);
        assert_false(res.undo_incomplete);
}

static void test_halt_keeps_everything(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b", .result = STEP_HALT}, c = {fx, "c"};
        _cleanup_plan_ struct plan *p = plan_new("t");
        struct plan_result res;

        add(p, &a, true);
        add(p, &b, true);
        add(p, &c, true);
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, &res), STEP_HALT);
        events_are(fx, "run:a run:b");
        assert_true(res.halted);
}

/* Two lanes run at the same time (each waits for the other to start); a
 * failure in one stops the other's next step, and every step that started
 * is undone. */
static void test_lanes(void **state)
{
        struct fixture *fx = *state;
        bool x_on = false, y_on = false, y2_on = false;
        struct behave x1 = {fx, "x1", .wait_other = true, .mine = &x_on, .other = &y_on};
        struct behave y1 = {fx, "y1", .wait_other = true, .mine = &y_on, .other = &x_on};
        /* x2 fails only once y2 runs: on a loaded machine lane 2 may not
         * have started y2 yet, and then there is no y2 to undo. */
        struct behave x2 = {fx, "x2", .result = -EPROTO, .wait_other = true, .other = &y2_on};
        struct behave y2 = {fx, "y2", .sleep = 10, .mine = &y2_on};
        struct behave y3 = {fx, "y3"}, z = {fx, "z"};
        _cleanup_plan_ struct plan *p = plan_new("t");

        step_lane(add(p, &x1, true), 1, "node1");
        step_lane(add(p, &y1, true), 2, "node2");
        step_lane(add(p, &x2, true), 1, "node1");
        step_lane(add(p, &y2, true), 2, "node2");
        step_lane(add(p, &y3, true), 2, "node2");
        add(p, &z, true);
        double t0 = now_seconds();
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, NULL), -EPROTO);
        assert_true(now_seconds() - t0 < 5); /* y2 was stopped, not waited for */
        char *ev = events(fx);
        assert_non_null(strstr(ev, "run:x1"));
        assert_non_null(strstr(ev, "run:y1"));
        assert_non_null(strstr(ev, "run:x2"));
        assert_null(strstr(ev, "run:y3"));
        assert_null(strstr(ev, "run:z"));
        /* undone in reverse plan order: y2 x2 y1 x1 */
        assert_non_null(strstr(ev, "undo:y2 undo:x2 undo:y1 undo:x1"));
        free(ev);
}

static void test_deadline(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b", .sleep = 30};
        _cleanup_plan_ struct plan *p = plan_new("t");

        add(p, &a, true);
        step_deadline(add(p, &b, true), 0.3);
        double t0 = now_seconds();
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, NULL), -ETIMEDOUT);
        assert_true(now_seconds() - t0 < 3);
        events_are(fx, "run:a run:b undo:b undo:a");
}

/* A step that does not look at its token and comes back after its deadline
 * still failed. */
static void test_late_step_fails(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a", .sleep = 0.5, .ignore = true};
        _cleanup_plan_ struct plan *p = plan_new("t");

        step_deadline(add(p, &a, true), 0.2);
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, NULL), -ETIMEDOUT);
}

struct firer {
        struct cancel *c;
};

static void *fire_soon(void *arg)
{
        struct firer *f = arg;
        usleep(300000);
        cancel_fire(f->c, ECANCELED);
        return NULL;
}

/* Ctrl-C during a step: it stops, and the rollback runs all the same. */
static void test_interrupt(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b", .sleep = 30}, c = {fx, "c"};
        _cleanup_plan_ struct plan *p = plan_new("t");
        struct firer f = {&fx->ctx.cancel};
        pthread_t t;

        add(p, &a, true);
        add(p, &b, true);
        add(p, &c, true);
        pthread_create(&t, NULL, fire_soon, &f);
        double t0 = now_seconds();
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, NULL), -ECANCELED);
        pthread_join(t, NULL);
        assert_true(now_seconds() - t0 < 2);
        events_are(fx, "run:a run:b undo:b undo:a");
}

static void test_injection(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b"}, c = {fx, "c"};
        static const struct {
                const char *var, *want;
        } cases[] = {
            /* b did not run (injected before it): only what ran is undone */
            {"VGPUENV_TEST_FAIL_AT", "run:a undo:a"},
            {"VGPUENV_TEST_FAIL_AFTER", "run:a run:b undo:b undo:a"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_plan_ struct plan *p = plan_new("t");
                int r;

                add(p, &a, true);
                add(p, &b, true);
                add(p, &c, true);
                setenv(cases[i].var, "b", 1);
                r = plan_run(p, &fx->ctx, &fx->st, NULL);
                unsetenv(cases[i].var);
                assert_int_equal(r, -EIO);
                events_are(fx, cases[i].want);
        }
}

static void test_skip_and_broken(void **state)
{
        struct fixture *fx = *state;
        struct behave a = {fx, "a"}, b = {fx, "b"};
        struct plan *p = plan_new("t");

        step_skip(add(p, &a, true), "not here");
        add(p, &b, true);
        assert_int_equal(plan_run(p, &fx->ctx, &fx->st, NULL), 0);
        events_are(fx, "run:b");
        plan_free(p);

        /* two steps of one name, and a step without a progress line */
        p = plan_new("t");
        add(p, &a, true);
        assert_null(add(p, &a, true));
        assert_int_equal(plan_error(p), -EINVAL);
        assert_true(plan_run(p, &fx->ctx, &fx->st, NULL) < 0);
        plan_free(p);
        p = plan_new("t");
        assert_non_null(plan_add(p, "silent", run_fn, &b));
        assert_int_equal(plan_error(p), -EINVAL);
        plan_free(p);
}

int main(void)
{
        log_set_level(LOG_ERR);
        return run_fixture_tests(test_order_and_print, test_failure_undoes_in_reverse,
                                 test_halt_keeps_everything, test_lanes, test_deadline,
                                 test_late_step_fails, test_interrupt, test_injection,
                                 test_skip_and_broken);
}
