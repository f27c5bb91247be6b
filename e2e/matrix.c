/* The e2e matrix file: schema and validation (see matrix.h; the scheduler
 * that runs the cells is matrix_run.c). */
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

const char *const matrix_display_names[] = {"auto", "on", "off", NULL};
const char *const matrix_outcome_names[] = {"passed", "failed", NULL};

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
     .enum_values = matrix_outcome_names,
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
     .enum_values = matrix_display_names,
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
