/* The e2e matrix: schema, validation, and a small scheduler that runs each
 * cell's steps (up, run, down) as child processes (see matrix.h). */
#include "e2e/matrix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "e2e/checkout.h"
#include "e2e/report.h"
#include "e2e/run.h"
#include "e2e/verdict.h"
#include "provision/base/config.h"

static const char *const display_names[] = {"auto", "on", "off", NULL};
static const char *const outcome_names[] = {"passed", "failed", NULL};

static const struct schema_field vgpu_fields[] = {
    {.key = "display",
     .type = SCHEMA_ENUM,
     .offset = offsetof(struct matrix_cell_vgpu, display),
     .enum_values = vgpu_display_names,
     .doc = "The fake vGPU's display: dmabuf (QEMU needs a GL display), region (no GL), none"},
    {},
};

static const struct schema_field expect_fields[] = {
    {.key = "outcome",
     .type = SCHEMA_ENUM,
     .offset = offsetof(struct matrix_cell_expect, outcome),
     .enum_values = outcome_names,
     .doc = "The cell's expected result: passed (default) or failed"},
    {.key = "message",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell_expect, message),
     .doc = "With failed: text every failing spec shows (message, failure text or output)"},
    {},
};

static const struct schema_field cell_fields[] = {
    {.key = "name",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell, name),
     .required = true,
     .doc = "Cell name, also its run directory: [a-z0-9._-]"},
    {.key = "config",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell, config),
     .required = true,
     .doc = "Cluster config file, relative to the matrix file"},
    {.key = "display",
     .type = SCHEMA_ENUM,
     .offset = offsetof(struct matrix_cell, display),
     .enum_values = display_names,
     .doc = "VGPU_DISPLAY for a KubeVirt that reads it: auto (on for VM nodes, off on kind), "
            "on, off; KubeVirt main always runs it on"},
    {.key = "kubevirt",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell, kubevirt),
     .doc = "KubeVirt checkout for this cell (default: the top-level kubevirt)"},
    {.key = "focus",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell, focus),
     .doc = "KUBEVIRT_E2E_FOCUS for this cell (default: the top-level focus)"},
    {.key = "skip",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix_cell, skip),
     .doc = "KUBEVIRT_E2E_SKIP for this cell"},
    {.key = "vgpu",
     .type = SCHEMA_SECTION,
     .offset = offsetof(struct matrix_cell, vgpu),
     .children = vgpu_fields,
     .doc = "The fake vGPU of the cell's nodes"},
    {.key = "expect",
     .type = SCHEMA_SECTION,
     .offset = offsetof(struct matrix_cell, expect),
     .children = expect_fields,
     .doc = "The result the cell is expected to show"},
    {},
};

const struct schema_field matrix_schema[] = {
    {.key = "parallel",
     .type = SCHEMA_BOOL,
     .offset = offsetof(struct matrix, parallel),
     .doc = "Run all cells at once (the host must hold every cluster)"},
    {.key = "kubevirt",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix, kubevirt),
     .doc = "KubeVirt checkout, relative to the matrix file (--kubevirt overrides)"},
    {.key = "focus",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix, focus),
     .doc = "KUBEVIRT_E2E_FOCUS, default MediatedDevices"},
    {.key = "skip",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix, skip),
     .doc = "KUBEVIRT_E2E_SKIP"},
    {.key = "out",
     .type = SCHEMA_STRING,
     .offset = offsetof(struct matrix, out),
     .doc = "Matrix directory (default _e2e/matrix-<UTC time>; --out overrides)"},
    {.key = "cells",
     .type = SCHEMA_LIST,
     .offset = offsetof(struct matrix, cells),
     .children = cell_fields,
     .elem_size = sizeof(struct matrix_cell),
     .count_offset = offsetof(struct matrix, n_cells),
     .required = true,
     .doc = "The cells: one e2e run each"},
    {},
};

void matrix_done(struct matrix *m)
{
        free(m->path);
        m->path = NULL;
        schema_free(matrix_schema, m);
        *m = (struct matrix){0};
}

static int mark_error(const struct matrix *m, const struct schema_marks *marks, const char *key,
                      const char *fmt, ...) _printf_(4, 5);
static int mark_error(const struct matrix *m, const struct schema_marks *marks, const char *key,
                      const char *fmt, ...)
{
        /* Point at the offending value (the key when there is none). */
        struct schema_mark mk = schema_marks_find_value(marks, key);
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (mk.line == 0)
                mk = schema_marks_find(marks, key);
        log_error("%s:%u:%u: %s", m->path, mk.line ? mk.line : 1, mk.column ? mk.column : 1, buf);
        return -EINVAL;
}

/* Relative paths in the file are relative to the file, like the cluster
 * config's. */
static int absolutize(char **p, const char *base_dir)
{
        char *n;

        if (!*p || (*p)[0] == '/')
                return 0;
        n = strdup_printf("%s/%s", base_dir, *p);
        if (!n)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

static bool valid_name(const char *s)
{
        if (isempty(s) || strlen(s) > 64 || s[0] == '.')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_' || *s == '.'))
                        return false;
        return true;
}

/* The cell's checkout: which KubeVirt it is decides whether its display
 * can be turned off. */
static int check_cell_checkout(const struct matrix *m, const struct schema_marks *marks, size_t i)
{
        struct matrix_cell *c = &m->cells[i];
        struct kubevirt_checkout kv = {0};
        const char *dir = c->kubevirt ? c->kubevirt : m->kubevirt;
        char key[64];
        int r;

        snprintf(key, sizeof(key), c->kubevirt ? "cells[%zu].kubevirt" : "kubevirt", i);
        if (kubevirt_checkout_inspect(dir, &kv) < 0)
                return mark_error(m, marks, key,
                                  "cell \"%s\": %s is no usable KubeVirt checkout "
                                  "(see above)",
                                  c->name, dir);
        c->kubevirt_ref = kv.ref;
        kubevirt_checkout_done(&kv);
        snprintf(key, sizeof(key), "cells[%zu].display", i);
        if (c->display == MATRIX_DISPLAY_OFF && c->kubevirt_ref == KUBEVIRT_REF_MAIN)
                return mark_error(m, marks, key,
                                  "cell \"%s\": display off, but KubeVirt in %s is main-like (%s "
                                  "does not read VGPU_DISPLAY): its vGPU display is always on",
                                  c->name, dir, KUBEVIRT_MDEV_TEST_FILE);
        snprintf(key, sizeof(key), "cells[%zu].expect.message", i);
        r = c->expect.message && c->expect.outcome == 0
                ? mark_error(m, marks, key,
                             "cell \"%s\": expect.message needs expect.outcome: failed", c->name)
                : 0;
        return r;
}

static int check_cell(struct matrix *m, const struct schema_marks *marks, size_t i, const char *dir)
{
        struct matrix_cell *c = &m->cells[i];
        _cleanup_(config_done) struct config cfg = {0};
        _cleanup_free_ char *cerr = NULL;
        char key[64];
        int r;

        snprintf(key, sizeof(key), "cells[%zu].name", i);
        if (!valid_name(c->name))
                return mark_error(m, marks, key,
                                  "cell name \"%s\" must be 1-64 characters of a-z 0-9 . _ - (it "
                                  "names the cell's run directory)",
                                  c->name ? c->name : "");
        for (size_t k = 0; k < i; k++)
                if (streq(m->cells[k].name, c->name))
                        return mark_error(m, marks, key, "duplicate cell name \"%s\"", c->name);
        if ((r = absolutize(&c->config, dir)) < 0 || (r = absolutize(&c->kubevirt, dir)) < 0)
                return r;
        if (!c->kubevirt && !m->kubevirt) {
                snprintf(key, sizeof(key), "cells[%zu]", i);
                return mark_error(m, marks, key,
                                  "cell \"%s\" has no KubeVirt checkout: set kubevirt in the cell "
                                  "or at the top level, or pass --kubevirt",
                                  c->name);
        }
        /* Check the cell's cluster config now, not an hour into the matrix. */
        snprintf(key, sizeof(key), "cells[%zu].config", i);
        if (config_load_quiet(&cfg, c->config, &cerr) < 0)
                return mark_error(m, marks, key, "cell \"%s\": bad cluster config: %s", c->name,
                                  cerr ? cerr : c->config);
        c->provider = provider_names[cfg.provider];
        /* At once on one cluster, KubeVirt's suites would create the same
         * kubevirt-test-* namespaces and the second would fail. */
        for (size_t k = 0; m->parallel && k < i; k++)
                if (streq(m->cells[k].config, c->config))
                        return mark_error(m, marks, key,
                                          "cells \"%s\" and \"%s\" would run on the same cluster "
                                          "(%s) at once: their KubeVirt test namespaces would "
                                          "clash; give them clusters of their own or set "
                                          "parallel: false",
                                          m->cells[k].name, c->name, c->config);
        return check_cell_checkout(m, marks, i);
}

static char *dir_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
}

int matrix_load(struct matrix *m, const char *path, const char *kubevirt_override)
{
        struct schema_error err = {0};
        struct schema_marks *marks = NULL;
        _cleanup_free_ char *dir = NULL;
        int r;

        *m = (struct matrix){0};
        m->path = strdup(path);
        if (!m->path)
                return log_error_errno(ENOMEM, "Out of memory");
        r = schema_load_with_marks(matrix_schema, m, path, NULL, &err, &marks);
        if (r < 0) {
                _cleanup_free_ char *msg = schema_error_format(&err);
                log_error("%s", msg ? msg : path);
                schema_error_done(&err);
                schema_marks_free(marks);
                return r == -ENOMEM ? r : -EINVAL;
        }
        dir = dir_of(path);
        if (!dir)
                r = -ENOMEM;
        else if (kubevirt_override) {
                free(m->kubevirt);
                m->kubevirt = strdup(kubevirt_override);
        } else
                r = absolutize(&m->kubevirt, dir);
        if (r >= 0 && m->n_cells == 0)
                r = mark_error(m, marks, "cells", "cells: the matrix needs at least one cell");
        for (size_t i = 0; r >= 0 && i < m->n_cells; i++)
                r = check_cell(m, marks, i, dir);
        schema_marks_free(marks);
        if (r == -ENOMEM)
                log_error("Out of memory");
        return r < 0 ? r : 0;
}

/* ---- scheduler ---------------------------------------------------------------- */

enum phase { PH_PENDING, PH_UP, PH_RUN, PH_DOWN, PH_DONE };

struct cell_state {
        const struct matrix_cell *cell;
        enum phase phase;
        pid_t pid;
        int up_exit, run_exit, down_exit;
        char *dir;
};

static volatile sig_atomic_t matrix_signal;

static void on_signal(int sig)
{
        matrix_signal = sig;
}

static int child_log(const char *dir, const char *name)
{
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
        return p ? open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
}

/* Start argv in its own process group (Ctrl-C reaches it only through us,
 * exactly once), output to log_name in the cell directory when parallel. */
static pid_t start(char **argv, const char *dir, const char *log_name, bool to_log)
{
        int fd = to_log ? child_log(dir, log_name) : -1;
        pid_t pid;

        if (to_log && fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                setpgid(0, 0);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(argv[0], argv);
                fprintf(stderr, "vgpuenv: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        setpgid(pid, pid);
        if (fd >= 0)
                close(fd);
        return pid;
}

static char **step_argv(const struct matrix_opts *o, const struct matrix *m,
                        const struct cell_state *cs, enum phase ph)
{
        const struct matrix_cell *c = cs->cell;
        _cleanup_strv_free_ char **a = NULL;
        const char *focus = c->focus ? c->focus : m->focus ? m->focus : E2E_DEFAULT_FOCUS;
        const char *skip = c->skip ? c->skip : m->skip;
        int r = 0;

        r |= strv_extend(&a, o->self ? o->self : "/proc/self/exe");
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
        r |= strv_extend(&a, display_names[c->display]);
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
        cJSON_AddStringToObject(x, "outcome", outcome_names[c->expect.outcome]);
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

static int advance(const struct matrix_opts *o, const struct matrix *m, struct cell_state *cs,
                   bool interrupted)
{
        static const char *const log_names[] = {
            [PH_UP] = "up.log", [PH_RUN] = "console.log", [PH_DOWN] = "down.log"};
        enum phase next;

        switch (cs->phase) {
        case PH_PENDING:
                next = o->up ? PH_UP : PH_RUN;
                break;
        case PH_UP:
                if (cs->up_exit != 0)
                        write_setup_failure(cs, "vgpuenv up", cs->up_exit, "up.log");
                next = cs->up_exit == 0 && !interrupted ? PH_RUN : PH_DOWN;
                break;
        case PH_RUN:
                if (cs->run_exit != 0)
                        write_setup_failure(cs, "e2e run", cs->run_exit,
                                            m->parallel ? "console.log" : "the matrix output");
                next = o->up ? PH_DOWN : PH_DONE;
                break;
        default:
                next = PH_DONE;
        }
        cs->phase = next;
        if (next == PH_DONE)
                return 0;
        _cleanup_strv_free_ char **argv = step_argv(o, m, cs, next);
        if (!argv)
                return -ENOMEM;
        log_info("matrix: cell %s: %s", cs->cell->name,
                 next == PH_UP    ? "vgpuenv up"
                 : next == PH_RUN ? "e2e run"
                                  : "vgpuenv down");
        cs->pid = start(argv, cs->dir, log_names[next], m->parallel);
        if (cs->pid < 0) {
                int r = (int)cs->pid;
                cs->pid = 0;
                return log_error_errno(r, "Cannot start %s: %s", argv[0], strerror(-r));
        }
        return 0;
}

static void record_exit(struct cell_state *cs, int status)
{
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

        if (cs->phase == PH_UP)
                cs->up_exit = code;
        else if (cs->phase == PH_RUN)
                cs->run_exit = code;
        else if (cs->phase == PH_DOWN)
                cs->down_exit = code;
        cs->pid = 0;
        if (cs->phase == PH_RUN)
                log_info("matrix: cell %s: e2e run exited with status %d", cs->cell->name, code);
        else if (code != 0)
                log_warning("matrix: cell %s: vgpuenv %s exited with status %d", cs->cell->name,
                            cs->phase == PH_UP ? "up" : "down", code);
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

/* The scheduler: start cells up to the limit, reap children, advance each
 * cell through its phases; Ctrl-C stops new cells and is forwarded once. */
static bool run_cells(const struct matrix_opts *o, const struct matrix *m, struct cell_state *cs,
                      bool *ret_interrupted, size_t *ret_started)
{
        struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
        bool interrupted = false, ok = true;
        size_t running = 0, next = 0;
        int r;

        matrix_signal = 0;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);

        for (;;) {
                size_t limit = m->parallel ? m->n_cells : 1;
                int status;
                pid_t pid;

                while (!interrupted && running < limit && next < m->n_cells) {
                        r = advance(o, m, &cs[next], false);
                        if (cs[next].pid > 0)
                                running++;
                        next++;
                        if (r < 0)
                                ok = false;
                }
                if (running == 0)
                        break;
                pid = waitpid(-1, &status, 0);
                if (pid < 0) {
                        if (errno != EINTR)
                                break;
                        if (matrix_signal && !interrupted) {
                                interrupted = true;
                                log_notice("matrix: interrupted, stopping running cells "
                                           "(their partial results are kept)");
                                for (size_t i = 0; i < m->n_cells; i++)
                                        if (cs[i].pid > 0 && cs[i].phase != PH_DOWN)
                                                kill(-cs[i].pid, SIGINT);
                        }
                        matrix_signal = 0;
                        continue;
                }
                for (size_t i = 0; i < m->n_cells; i++) {
                        if (cs[i].pid != pid)
                                continue;
                        record_exit(&cs[i], status);
                        running--;
                        /* The next phase of this cell (down runs even when
                         * interrupted: whatever up made must go). */
                        if (advance(o, m, &cs[i], interrupted) < 0)
                                ok = false;
                        if (cs[i].pid > 0)
                                running++;
                        break;
                }
        }
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        *ret_interrupted = interrupted;
        *ret_started = next;
        return ok;
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

int e2e_matrix(const struct matrix_opts *o_in, bool *ret_as_expected)
{
        struct matrix_opts opts = *o_in;
        _cleanup_free_ char *self = NULL, *out = NULL;
        _cleanup_(matrix_done) struct matrix m = {0};
        struct cell_state *cs = NULL;
        bool interrupted = false, ok;
        size_t started = 0;
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
        cs = calloc(m.n_cells, sizeof(*cs));
        r = !out || !cs ? log_error_errno(ENOMEM, "Out of memory") : make_cell_dirs(&m, cs, out);
        if (r >= 0) {
                log_info("matrix: %zu cell%s %s, results in %s", m.n_cells,
                         m.n_cells == 1 ? "" : "s", m.parallel ? "in parallel" : "in sequence",
                         out);
                ok = run_cells(&opts, &m, cs, &interrupted, &started);
                for (size_t i = 0; i < m.n_cells; i++)
                        if (cs[i].phase != PH_DONE || cs[i].up_exit != 0)
                                ok = false;
                ok = write_reports(out) && ok;
                if (interrupted)
                        log_notice("matrix: interrupted; %zu of %zu cells started", started,
                                   m.n_cells);
                *ret_as_expected = ok && !interrupted;
        }
        for (size_t i = 0; cs && i < m.n_cells; i++)
                free(cs[i].dir);
        free(cs);
        return r;
}
