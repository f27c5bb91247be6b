/* The e2e matrix's scheduler (see matrix.h): each cell's phases (up, run,
 * down) are this same binary run with the process runner, one worker
 * thread per cell that may run at once (all of them when the matrix is
 * parallel, else one), the cells handed out in file order.
 *
 * Ctrl-C: the signal thread fires the matrix's root token. The up and run
 * phases hold child tokens of it, so each running vgpuenv gets one SIGINT
 * (it rolls back, or stops its tests and writes its partial report) and no
 * new cell starts; the down phase holds an after-interrupt token, so a
 * cluster that came up is still taken down. A second Ctrl-C kills what
 * runs at once. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/cancel.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/proc.h"
#include "common/util.h"
#include "e2e/matrix.h"
#include "e2e/report.h"
#include "e2e/run.h"
#include "e2e/verdict.h"

/* A cell's vgpuenv gets this long after its SIGINT to roll back or write
 * its report before SIGKILL (a second Ctrl-C kills at once). */
#define PHASE_GRACE 3600.0

enum phase { PH_UP, PH_RUN, PH_DOWN };

static const char *const phase_logs[] = {
    [PH_UP] = "up.log", [PH_RUN] = "console.log", [PH_DOWN] = "down.log"};
static const char *const phase_what[] = {
    [PH_UP] = "vgpuenv up", [PH_RUN] = "e2e run", [PH_DOWN] = "vgpuenv down"};

struct cell_state {
        const struct matrix_cell *cell;
        char *dir;
        bool started, done;
        int up_exit, run_exit, down_exit;
};

/* What the workers share; next is taken under lock. */
struct matrix_run {
        const struct matrix_opts *o;
        const struct matrix *m;
        struct cell_state *cs;
        struct cancel root;
        struct cancel_registry children;
        pthread_mutex_t lock;
        size_t next;
        atomic_size_t workers_done;
};

static char **step_argv(const struct matrix_opts *o, const struct matrix *m,
                        const struct cell_state *cs, enum phase ph)
{
        const struct matrix_cell *c = cs->cell;
        _cleanup_strv_free_ char **a = NULL;
        const char *focus = c->focus ? c->focus : m->focus ? m->focus : E2E_DEFAULT_FOCUS;
        const char *skip = c->skip ? c->skip : m->skip;
        int r = 0;

        r |= strv_extend(&a, o->self);
        if (ph == PH_UP || ph == PH_DOWN) {
                r |= strv_extend(&a, ph == PH_UP ? "up" : "down");
                r |= strv_extend(&a, "-c");
                r |= strv_extend(&a, c->config);
                return r < 0 ? NULL : TAKE_PTR(a);
        }
        r |= strv_extend(&a, "e2e");
        r |= strv_extend(&a, "run");
        r |= strv_extend(&a, "-c");
        r |= strv_extend(&a, c->config);
        r |= strv_extend(&a, "--kubevirt");
        r |= strv_extend(&a, c->kubevirt ? c->kubevirt : m->kubevirt);
        r |= strv_extend(&a, "--run-dir");
        r |= strv_extend(&a, cs->dir);
        r |= strv_extend(&a, "--name");
        r |= strv_extend(&a, c->name);
        r |= strv_extend(&a, "--display");
        r |= strv_extend(&a, matrix_display_names[c->display]);
        r |= strv_extend(&a, "--vgpu-display");
        r |= strv_extend(&a, vgpu_display_name(c->vgpu.display));
        if (c->expect.outcome) {
                r |= strv_extend(&a, "--expect");
                r |= strv_extend(&a, "failed");
        }
        if (c->expect.message) {
                r |= strv_extend(&a, "--expect-message");
                r |= strv_extend(&a, c->expect.message);
        }
        if (focus) {
                r |= strv_extend(&a, "--focus");
                r |= strv_extend(&a, focus);
        }
        if (skip) {
                r |= strv_extend(&a, "--skip");
                r |= strv_extend(&a, skip);
        }
        return r < 0 ? NULL : TAKE_PTR(a);
}

/* A cell whose cluster did not come up still gets a run.json, so the report
 * shows it as an error instead of leaving a hole. */
static void write_setup_failure(const struct cell_state *cs, const char *what, int code,
                                const char *log_name)
{
        _cleanup_free_ char *path = strdup_printf("%s/" RUN_INFO_FILE, cs->dir);
        _cleanup_free_ char *text = NULL, *why = NULL;
        const struct matrix_cell *c = cs->cell;
        cJSON *root, *x, *errs;

        /* e2e run writes run.json once it got going; keep that one. */
        if (!path || (streq(what, "e2e run") && file_exists(path)))
                return;
        why = strdup_printf("%s failed with status %d (see %s in the cell directory)", what, code,
                            log_name);
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "name", c->name);
        cJSON_AddStringToObject(root, "provider", c->provider ? c->provider : "unknown");
        cJSON_AddStringToObject(root, "vgpu_display", vgpu_display_name(c->vgpu.display));
        x = cJSON_AddObjectToObject(root, "expect");
        cJSON_AddStringToObject(x, "outcome", matrix_outcome_names[c->expect.outcome]);
        if (c->expect.message)
                cJSON_AddStringToObject(x, "message", c->expect.message);
        cJSON_AddBoolToObject(root, "finished", true);
        cJSON_AddNumberToObject(root, "make_exit", -1);
        cJSON_AddBoolToObject(root, "interrupted", false);
        errs = cJSON_AddArrayToObject(root, "setup_errors");
        cJSON_AddItemToArray(errs, cJSON_CreateString(why ? why : what));
        text = cJSON_Print(root);
        cJSON_Delete(root);
        if (text)
                write_file_atomic(path, text, strlen(text), 0644);
}

static void to_cell_log(void *userdata, int stream, const char *data, size_t n)
{
        (void)stream;
        (void)!write_all(*(int *)userdata, data, n);
}

/* One phase of a cell: its exit status (127 when it could not start). In
 * a parallel matrix the output goes to the phase's log in the cell
 * directory, else to ours. */
static int run_phase(struct matrix_run *mr, struct cell_state *cs, enum phase ph)
{
        _cleanup_strv_free_ char **argv = step_argv(mr->o, mr->m, cs, ph);
        _cleanup_free_ char *log_path = strdup_printf("%s/%s", cs->dir, phase_logs[ph]);
        _cleanup_close_ int fd = -1;
        _cleanup_proc_result_ struct proc_result res = {0};
        struct cancel token;
        int r;

        if (!argv || !log_path)
                return log_error_errno(ENOMEM, "Out of memory"), 127;
        if (mr->m->parallel &&
            (fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
                return log_error_errno(errno, "Cannot create %s: %m", log_path), 127;
        if (ph == PH_DOWN)
                cancel_init_after_interrupt(&token, &mr->root, 0, "vgpuenv down");
        else
                cancel_init_child(&token, &mr->root, 0, phase_what[ph]);
        struct proc_opts po = {
            .argv = argv,
            .out = fd >= 0 ? PROC_DISCARD : PROC_INHERIT,
            .err = PROC_TO_STDOUT,
            .log_fd = -1,
            .on_output = fd >= 0 ? to_cell_log : NULL,
            .userdata = &fd,
            .cancel = &token,
            .cancel_signal = SIGINT,
            .kill_grace = PHASE_GRACE,
        };
        log_info("matrix: cell %s: %s", cs->cell->name, phase_what[ph]);
        r = proc_run(&po, &res);
        if (r < 0) {
                log_error_errno(r, "Cannot start %s: %m", argv[0]);
                return 127;
        }
        if (ph == PH_RUN)
                log_info("matrix: cell %s: e2e run exited with status %d", cs->cell->name,
                         res.exit_code);
        else if (res.exit_code != 0)
                log_warning("matrix: cell %s: %s exited with status %d", cs->cell->name,
                            phase_what[ph], res.exit_code);
        return res.exit_code;
}

/* up (with --up), run unless up failed or Ctrl-C came, down (with --up)
 * whatever happened: whatever up made must go. */
static void run_cell(struct matrix_run *mr, struct cell_state *cs)
{
        bool up = mr->o->up;

        cs->started = true;
        if (up && (cs->up_exit = run_phase(mr, cs, PH_UP)) != 0)
                write_setup_failure(cs, "vgpuenv up", cs->up_exit, "up.log");
        if (cs->up_exit == 0 && cancel_check(&mr->root) == 0 &&
            (cs->run_exit = run_phase(mr, cs, PH_RUN)) != 0)
                write_setup_failure(cs, "e2e run", cs->run_exit,
                                    mr->m->parallel ? "console.log" : "the matrix output");
        if (up)
                cs->down_exit = run_phase(mr, cs, PH_DOWN);
        cs->done = true;
}

static void *worker(void *arg)
{
        struct matrix_run *mr = arg;

        for (;;) {
                struct cell_state *cs = NULL;

                pthread_mutex_lock(&mr->lock);
                if (mr->next < mr->m->n_cells && cancel_check(&mr->root) == 0)
                        cs = &mr->cs[mr->next++];
                pthread_mutex_unlock(&mr->lock);
                if (!cs)
                        break;
                run_cell(mr, cs);
        }
        atomic_fetch_add(&mr->workers_done, 1);
        return NULL;
}

/* Start the workers and wait for them, saying once when Ctrl-C came. */
static int run_cells(struct matrix_run *mr)
{
        size_t n = mr->m->parallel ? mr->m->n_cells : 1, started = 0;
        _cleanup_free_ pthread_t *threads = calloc(n, sizeof(*threads));
        bool told = false;
        int r = 0;

        if (!threads)
                return log_error_errno(ENOMEM, "Out of memory");
        for (; started < n; started++)
                if ((r = -pthread_create(&threads[started], NULL, worker, mr)) < 0) {
                        log_error_errno(r, "Cannot start a matrix worker: %m");
                        cancel_fire(&mr->root, ECANCELED);
                        break;
                }
        while (atomic_load(&mr->workers_done) < started) {
                if (!told && cancel_check(&mr->root) == -ECANCELED) {
                        log_notice("matrix: interrupted, stopping running cells (their partial "
                                   "results are kept; clusters that came up are taken down)");
                        told = true;
                }
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        return r;
}

static char *matrix_out_dir(const struct matrix_opts *o, const struct matrix *m)
{
        char stamp[32];
        time_t t = time(NULL);
        struct tm tm;

        if (o->out || m->out)
                return strdup(o->out ? o->out : m->out);
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
        return strdup_printf("_e2e/matrix-%s", stamp);
}

static int make_cell_dirs(const struct matrix *m, struct cell_state *cs, const char *out)
{
        for (size_t i = 0; i < m->n_cells; i++) {
                cs[i].cell = &m->cells[i];
                cs[i].dir = strdup_printf("%s/%s", out, m->cells[i].name);
                if (!cs[i].dir || mkdir_p(cs[i].dir, 0755) < 0)
                        return log_error_errno(EIO, "Cannot create %s",
                                               cs[i].dir ? cs[i].dir : out);
        }
        return 0;
}

/* The reports, whatever happened; false when a cell did not show what it
 * was expected to, or a report could not be written. */
static bool write_reports(const char *out)
{
        static const struct {
                enum report_format f;
                const char *name;
        } outs[] = {{REPORT_MARKDOWN, "report.md"},
                    {REPORT_HTML, "report.html"},
                    {REPORT_JSON, "report.json"},
                    {REPORT_JUNIT, "junit.xml"}};
        char *dirs[] = {(char *)out, NULL};
        struct e2e_cell *cells = NULL;
        size_t n = 0;
        bool ok = true;

        if (e2e_cells_load(dirs, &cells, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                ok = ok && cells[i].as_expected;
        for (size_t i = 0; i < ELEMENTSOF(outs); i++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", out, outs[i].name);
                if (!p || report_write(outs[i].f, cells, n, p) < 0)
                        ok = false;
        }
        e2e_cells_free(cells, n);
        log_info("matrix: reports in %s/report.{md,html,json} and %s/junit.xml", out, out);
        return ok;
}

/* Run the cells and write the reports; *ret_ok: every cell finished, its
 * cluster came up, it showed what it was expected to, and no Ctrl-C. */
static int run_matrix(struct matrix_run *mr, const char *out, bool *ret_ok)
{
        const struct matrix *m = mr->m;
        size_t started = 0;
        bool ok = true;
        int r;

        log_info("matrix: %zu cell%s %s, results in %s", m->n_cells, m->n_cells == 1 ? "" : "s",
                 m->parallel ? "in parallel" : "in sequence", out);
        r = run_cells(mr);
        for (size_t i = 0; i < m->n_cells; i++) {
                started += mr->cs[i].started;
                if (!mr->cs[i].done || mr->cs[i].up_exit != 0)
                        ok = false;
        }
        ok = write_reports(out) && ok;
        if (cancel_check(&mr->root) == -ECANCELED) {
                log_notice("matrix: interrupted; %zu of %zu cells started", started, m->n_cells);
                ok = false;
        }
        *ret_ok = ok;
        return r;
}

int e2e_matrix(const struct matrix_opts *o_in, bool *ret_as_expected)
{
        struct matrix_opts opts = *o_in;
        _cleanup_free_ char *self = NULL, *out = NULL;
        _cleanup_(matrix_done) struct matrix m = {0};
        struct matrix_run mr = {.o = &opts, .m = &m, .lock = PTHREAD_MUTEX_INITIALIZER};
        int r;

        *ret_as_expected = false;
        r = matrix_load(&m, o_in->path, o_in->kubevirt);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (!opts.self) {
                /* The binary's real path, resolved once: exec'ing
                 * /proc/self/exe itself would break under wrappers such as
                 * valgrind, and the path reads better in logs. */
                self = realpath("/proc/self/exe", NULL);
                if (!self)
                        return log_error_errno(errno, "Cannot resolve /proc/self/exe: %m");
                opts.self = self;
        }
        out = matrix_out_dir(&opts, &m);
        mr.cs = calloc(m.n_cells, sizeof(*mr.cs));
        cancel_init_root(&mr.root, &mr.children);
        r = !out || !mr.cs ? log_error_errno(ENOMEM, "Out of memory")
                           : make_cell_dirs(&m, mr.cs, out);
        if (r >= 0)
                r = cancel_watch_signals(&mr.root, CANCEL_SECOND_KILLS_CHILD);
        if (r >= 0)
                r = run_matrix(&mr, out, ret_as_expected);
        for (size_t i = 0; mr.cs && i < m.n_cells; i++)
                free(mr.cs[i].dir);
        free(mr.cs);
        cancel_registry_done(&mr.children);
        return r;
}
