/* The display-chain proof behind `vgpuenv verify-display`: on a node, an
 * emulated vGPU (mbochs) with a DMABUF display, libvirtd and QEMU as
 * virt-launcher runs them, KubeVirt's domain failing with "opengl not
 * available", the same domain passed through the onDefineDomain hook
 * starting, and negative controls. docs/display-chain.md explains the links.
 *
 * Files: mbochs.c (build the sample driver for the node's kernel, cached),
 * domain_xml.c (KubeVirt-shaped domain), observe.c (reading what the node
 * driver printed), results.c (table and JSON), verify.c (the sequence). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct run_ctx;
struct state;

/* ---- mbochs.c ------------------------------------------------------------ */

/* Build samples/vfio-mdev/mbochs.c for Debian kernel kver (e.g.
 * "6.1.0-50-amd64") whose package version is pkgver (e.g. "6.1.176-1"), from
 * the matching linux-headers/linux-kbuild/linux-source packages fetched with
 * `apt-get download`. Cached as <cache>/mbochs/<kver>/mbochs.ko with the
 * version recorded next to it: a second call does not rebuild. *ret_path is
 * the module's path. Each step prints its time. */
struct cancel;
int mbochs_build(const struct cancel *cancel, const char *kver, const char *pkgver,
                 char **ret_path);

/* Debian package names for kver, or -EINVAL when kver is not shaped like a
 * Debian kernel release ("<upstream>-<abi>-<flavour>"). Exposed for tests.
 * ret gets 4 strings: headers, headers-common, kbuild, source. */
int mbochs_debian_packages(const char *kver, char ***ret);

/* ---- domain_xml.c -------------------------------------------------------- */

/* The hostdev alias the domain gives the vGPU (QEMU's device id), so its own
 * console can be addressed by QMP screendump. */
#define DISPLAY_HOSTDEV_ALIAS "ua-gpu-gpu1"

/* A domain shaped like the one virt-launcher defines for a VMI with a vGPU:
 * q35, VGA video, VNC graphics only, the mdev as
 * <hostdev mode='subsystem' type='mdev' model='vfio-pci' display='on'
 * ramfb='on'>. No disk: it is started paused, display init happens at device
 * realize. -EINVAL for a name or UUID that is not plain. */
int display_domain_xml(const char *name, const char *mdev_uuid, unsigned memory_mib, char **ret);

/* ---- observe.c ----------------------------------------------------------- */

/* Value of the first "key=value" line of out, or NULL. */
char *kv_get(const char *out, const char *key);
/* The first line of out containing needle (without its "virsh: " /
 * "qemu-log: " prefix), or NULL. */
char *line_with(const char *out, const char *needle);
/* The most telling error line of a failed start: the first QEMU log line
 * that is not a timestamped libvirt note, else the last virsh error line. */
char *start_error_line(const char *out);

/* Parse a binary PPM (P6) header; *ret_data_off is where the pixels start.
 * -EBADMSG when it is not one or the pixel data is short. */
int ppm_parse_header(const char *buf, size_t size, unsigned *ret_w, unsigned *ret_h,
                     size_t *ret_data_off);

/* How many of the sample points of a PPM screendump show the fake vGPU's
 * test pattern (within 3 per channel), of *ret_points. -EBADMSG when buf is
 * not a PPM image. */
int vgpu_pattern_match(const char *buf, size_t size, unsigned *ret_hits, unsigned *ret_points);

/* ---- results.c ----------------------------------------------------------- */

struct display_check {
        char *id;       /* stable key for scripts: "render-node", "hook-not-applied", ... */
        char *check;    /* what is checked */
        char *expected; /* what must be observed */
        char *observed; /* what libvirt/QEMU/the node said (one line) */
        char *meaning;  /* why it matters / what the failure means */
        double seconds;
        bool ok;
        bool ran; /* false: skipped because an earlier step failed */
        bool na;  /* cannot be observed on this node: observed says why */
};

struct display_report {
        char *node;
        char *kernel;
        char *mdev_parent;
        char *mdev_type;
        char *mdev_uuid;
        char *mdev_display; /* the fake vGPU's display mode, NULL for others */
        struct display_check *checks;
        size_t n_checks;
        cJSON *steps; /* { "step": seconds } for the setup steps */
};

struct display_check *report_add(struct display_report *r, const char *id, const char *check,
                                 const char *expected, const char *meaning);
void report_set_observed(struct display_check *c, bool ok, double seconds, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The check cannot be made on this node (not a failure of the chain, and
 * not passed either): observed says why, in the table as N/A. */
void report_set_na(struct display_check *c, double seconds, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void report_step(struct display_report *r, const char *step, double seconds);
bool report_ok(const struct display_report *r);
void report_print_table(const struct display_report *r, FILE *out);
cJSON *report_json(const struct display_report *r);
void report_done(struct display_report *r);

/* ---- verify.c ------------------------------------------------------------ */

enum display_vgpu {
        DISPLAY_VGPU_FAKE_T4, /* our fake NVIDIA T4 (provision/vgpu/), the default */
        DISPLAY_VGPU_MBOCHS,  /* the kernel's mbochs sample, built and loaded */
        DISPLAY_VGPU_PARENT,  /* an existing parent (mdev_parent) */
};

struct display_opts {
        const char *node;        /* NULL: the cluster's first node */
        enum display_vgpu vgpu;  /* which vGPU */
        bool region;             /* fake T4: its region display (else DMABUF) */
        const char *mdev_parent; /* DISPLAY_VGPU_PARENT: the parent's name */
        const char *mdev_type;   /* NULL: nvidia-222 (fake T4), else the first with room */
        const char *mbochs_ko;   /* prebuilt module instead of building one */
        const char *artifacts;   /* where the screendumps are saved */
};

/* Run every check on the node; the report is filled as far as it got. The
 * mdev instance, the test domains and every temporary change on the node are
 * undone before returning, on failure too. Returns 0 when the checks could
 * run (see report_ok() for the verdict), negative errno when the node could
 * not be prepared. */
int display_verify(struct run_ctx *ctx, struct state *st, const struct display_opts *o,
                   struct display_report *rep);
