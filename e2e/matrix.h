/* `vgpuenv e2e matrix -c MATRIX.yaml`: several (provider, display) cells,
 * each an `e2e run` in its own run directory under the matrix directory,
 * then the reports of all of them (report.md, report.html, report.json,
 * junit.xml) in the matrix directory.
 *
 * Cells run in sequence, or all at once when the file says `parallel: true`
 * (the host must hold every cluster at the same time). By default the matrix
 * expects every cell's cluster to be up already; with --up it runs
 * `vgpuenv up` before and `vgpuenv down` after each cell (down always, also
 * after a failure or Ctrl-C). Each cell says what it runs (the fake vGPU's
 * display mode) and what it is expected to show; the matrix passes when
 * every cell shows its expected result. Every step is this same binary
 * (/proc/self/exe) in its own process group, so Ctrl-C is forwarded once
 * and each run still writes its partial results (the scheduler:
 * matrix_run.c). See configs/matrix.yaml. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/yaml_schema.h"

/* The fake vGPU the cell's nodes run (until the cluster config says it
 * itself: then this must agree). */
struct matrix_cell_vgpu {
        int display; /* enum vgpu_display: dmabuf (default), region, none */
};

/* The result the cell is expected to show (e2e/verdict.h). */
struct matrix_cell_expect {
        int outcome;   /* 0 passed (default), 1 failed */
        char *message; /* failed: text every failing spec shows */
};

enum matrix_display { MATRIX_DISPLAY_AUTO, MATRIX_DISPLAY_ON, MATRIX_DISPLAY_OFF };

struct matrix_cell {
        char *name;     /* [a-z0-9._-], the run directory's name */
        char *config;   /* cluster config (relative to the matrix file) */
        int display;    /* enum matrix_display: VGPU_DISPLAY for a KubeVirt that reads it */
        char *kubevirt; /* overrides the top-level kubevirt */
        char *focus;
        char *skip;
        struct matrix_cell_vgpu vgpu;
        struct matrix_cell_expect expect;
        const char *provider; /* from the cell's config, set by matrix_load */
        int kubevirt_ref;     /* enum kubevirt_ref of the cell's checkout, set by matrix_load */
};

struct matrix {
        char *path;
        bool parallel;
        char *kubevirt; /* KubeVirt checkout for every cell */
        char *focus;    /* default MediatedDevices */
        char *skip;
        char *out; /* matrix directory (relative to the current directory) */
        struct matrix_cell *cells;
        size_t n_cells;
};

extern const struct schema_field matrix_schema[];
/* The values of a cell's display and expect.outcome, as written. */
extern const char *const matrix_display_names[];
extern const char *const matrix_outcome_names[];

/* Load and validate (names unique and usable as directory names, a KubeVirt
 * checkout for every cell, display off only for a KubeVirt that can turn it
 * off, an expected message only with an expected failure). Errors are
 * logged as file:line:column; returns -EINVAL for a bad file.
 * kubevirt_override (--kubevirt) replaces the file's top-level value. */
int matrix_load(struct matrix *m, const char *path, const char *kubevirt_override);
void matrix_done(struct matrix *m);

struct matrix_opts {
        const char *path;
        const char *kubevirt; /* --kubevirt */
        const char *out;      /* --out, overrides the file */
        bool up;              /* --up: vgpuenv up/down around each cell */
        const char *self;     /* the vgpuenv binary, default /proc/self/exe */
};

/* 0 when the matrix ran and its reports were written; *ret_as_expected
 * says whether every cell showed its expected result (and nothing was
 * interrupted). -EINVAL for a bad matrix file, another negative errno
 * (logged) when it could not run. */
int e2e_matrix(const struct matrix_opts *o, bool *ret_as_expected);
