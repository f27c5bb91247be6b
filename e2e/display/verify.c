/* The sequence of `vgpuenv verify-display` on one node: prepare an mdev with
 * a DMABUF display, reproduce KubeVirt's "opengl not available" with a
 * VNC-only domain, show the onDefineDomain hook's domain starting with a live
 * display, then the negative controls. With the fake T4 in region mode the
 * table is another one: KubeVirt's VNC-only domain starting with no GL at
 * all, and the region plane live. Each node-side step is one verb of
 * e2e/display/node-check.sh (embedded, uploaded to /var/lib/vgpuenv-display);
 * the hook is webhook/hook/onDefineDomain byte for byte (embedded by
 * webhook/build.mk), so the proof runs exactly what the webhook ships. The
 * fake T4 is set up by provision/vgpu/, as node setup does. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "e2e/display/display.h"
#include "provision/base/context.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"
#include "provision/vgpu/vgpu.h"

#include "display_node_script.h" /* generated from e2e/display/node-check.sh */
#include "hook_script.h"         /* generated from webhook/hook/onDefineDomain */

#define NODE_DIR "/var/lib/vgpuenv-display"
#define NODE_SCRIPT NODE_DIR "/check.sh"
#define DOMAIN_NAME "vgpuenv-verify-display"
#define DOMAIN_MEMORY_MIB 128
#define RENDER_NODE "/dev/dri/renderD128"
#define OPENGL_ERROR "vfio-display-dmabuf: opengl not available"

/* What KubeVirt's sidecar-shim passes as --vmi: the hook ignores it, but it
 * is called the same way. */
static const char vmi_json[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachineInstance\","
    "\"metadata\":{\"name\":\"vgpuenv-verify-display\",\"namespace\":\"default\"},"
    "\"spec\":{\"domain\":{\"devices\":{\"gpus\":[{\"name\":\"gpu1\","
    "\"deviceName\":\"vgpuenv/mbochs\"}]}}}}";

/* Run one verb of the node script; *ret_out gets stdout followed by stderr.
 * Returns the script's exit code or negative errno when ssh failed. */
static int node_verb(struct ssh_node *n, char **ret_out, const char *verb, ...)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_proc_result_ struct proc_result res = {0};
        va_list ap;
        int r;

        if (strv_extend(&argv, "sh") < 0 || strv_extend(&argv, NODE_SCRIPT) < 0 ||
            strv_extend(&argv, verb) < 0)
                return -ENOMEM;
        va_start(ap, verb);
        for (const char *a; (a = va_arg(ap, const char *));)
                if (strv_extend(&argv, a) < 0) {
                        va_end(ap);
                        return -ENOMEM;
                }
        va_end(ap);
        r = ssh_node_run(n, argv, &res);
        if (r < 0)
                return log_error_errno(r, "running '%s' on the node over ssh: %m", verb);
        log_debug("node %s: exit %d\n%s%s", verb, res.exit_code, res.out.data, res.err.data);
        *ret_out = strdup_printf("%s%s", res.out.data, res.err.data);
        return *ret_out ? res.exit_code : -ENOMEM;
}

static int new_uuid(char **ret)
{
        char *s = NULL;
        int r = read_full_file("/proc/sys/kernel/random/uuid", &s, NULL);

        if (r < 0)
                return log_error_errno(r, "cannot read a UUID from the kernel: %m");
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

static const struct node_target *pick_node(const struct node_target *t, size_t n, const char *want)
{
        if (!want)
                return n > 0 ? &t[0] : NULL;
        for (size_t i = 0; i < n; i++) {
                const char *dash = strrchr(t[i].name, '-');
                if (streq(t[i].name, want) || (dash && streq(dash + 1, want)))
                        return &t[i];
        }
        return NULL;
}

/* The rows, in the order they run; all are listed up front so a run that
 * stops early shows what it did not get to. */
enum {
        ROW_RENDER,
        ROW_EGL,
        ROW_MDEV,
        ROW_PLANE, /* fake T4, dmabuf */
        ROW_NO_HOOK,
        ROW_HOOK,
        ROW_HOOKED_START,
        ROW_DISPLAY,
        ROW_SHOWN, /* fake T4, dmabuf */
        ROW_NO_MESA,
        ROW_NO_RENDER,
        ROW_NO_GL, /* region mode */
        ROW_N,
};

struct row_def {
        const char *id, *check, *expected, *meaning;
};

static const struct row_def rows[ROW_N] = {
    [ROW_RENDER] = {"render-node", "link 1: render node on the node",
                    RENDER_NODE " exists (virtio-gpu)",
                    "link 1: the node is a VM with a virtio-gpu device, whose driver creates "
                    "a render node even without virgl"},
    [ROW_EGL] = {"mesa-egl", "link 2: mesa EGL on the render node",
                 "EGL on GBM initializes, dmabuf export offered",
                 "link 2: mesa initializes EGL on that render node and can export dmabufs "
                 "(EGL_MESA_image_dma_buf_export), with no host GPU"},
    [ROW_MDEV] = {"mdev", "vGPU (mdev) with a DMABUF display",
                  "an mdev instance and its /dev/vfio group",
                  "an emulated vGPU whose display offers DMABUF, like KubeVirt's fake vGPU: "
                  "the device that makes QEMU demand a GL display"},
    [ROW_NO_HOOK] = {"hook-not-applied", "KubeVirt's domain, hook not applied",
                     "start fails: " OPENGL_ERROR,
                     "the reported bug, reproduced: QEMU finds a DMABUF display on the vGPU "
                     "(display='on') and no GL display to show it, because KubeVirt "
                     "configures VNC only; mesa and the render node are present and do not "
                     "help by themselves"},
    [ROW_HOOK] = {"hook", "link 4: onDefineDomain hook", "adds egl-headless on " RENDER_NODE,
                  "the webhook's hook script, run as KubeVirt's sidecar-shim runs it "
                  "(--vmi JSON --domain XML), adds a GL display to the domain"},
    [ROW_HOOKED_START] = {"hook-applied", "same domain after the hook",
                          "starts; QEMU gets -display egl-headless,rendernode=" RENDER_NODE,
                          "the fix: with an egl-headless display QEMU realizes the vGPU's "
                          "DMABUF display and the domain starts"},
    [ROW_DISPLAY] = {"display-live", "vGPU display is live",
                     "vGPU console follows the guest; display egl-headless",
                     "QEMU shows the vGPU's own console (QMP screendump by device): paused, "
                     "its placeholder; running, the guest firmware's output on the vGPU's "
                     "ramfb (until a guest driver sets a DMABUF plane), with egl-headless as "
                     "the display"},
    [ROW_NO_MESA] = {"control-no-mesa", "control: mesa hidden from QEMU",
                     "start fails: Couldn't open libGL.so.1",
                     "control for link 2: without mesa's GL libraries (libGL.so.1, "
                     "libOpenGL.so.0 made unloadable) egl-headless cannot start; the message "
                     "names the missing library"},
    [ROW_NO_RENDER] = {"control-no-render-node", "control: node without render node",
                       "start fails: render node " RENDER_NODE " missing",
                       "control for link 1: with the virtio-gpu unbound the node has no "
                       "render node, as with gpu: none (and as in a Kind container), and the "
                       "GL display has nothing to render on"},
};

/* The fake T4 in dmabuf mode: the same table, with these rows. */
static const struct row_def fake_dmabuf_rows[ROW_N] = {
    [ROW_MDEV] = {"mdev", "vGPU (mdev) with a DMABUF display",
                  "an nvidia-222 instance (GRID T4-1B), display dmabuf, and its /dev/vfio group",
                  "the fake NVIDIA T4 (provision/vgpu/) in dmabuf mode answers QEMU's DMABUF plane "
                  "probe like a real DMABUF vGPU: the device that makes QEMU demand a GL display"},
    [ROW_PLANE] = {"vgpu-plane", "the vGPU's DMABUF plane",
                   "a dma-buf of the framebuffer holding the test pattern",
                   "read as QEMU gets it (VFIO_DEVICE_QUERY_GFX_PLANE, VFIO_DEVICE_GET_GFX_DMABUF) "
                   "with the scanout on, and mapped as a software importer maps it: the vGPU "
                   "exports real dma-bufs of its framebuffer"},
    [ROW_DISPLAY] = {"display-live", "vGPU display is live",
                     "ramfb at boot, then QEMU takes the vGPU's dma-buf; display egl-headless",
                     "QEMU shows the vGPU's own console (QMP screendump by device): paused, its "
                     "placeholder; running, the firmware on the ramfb (KubeVirt's ramfb=on); with "
                     "the plane turned on as a guest driver would, QEMU's DMABUF display fetches "
                     "the plane's dma-buf (VFIO_DEVICE_GET_GFX_DMABUF) for egl-headless"},
    [ROW_SHOWN] = {"dmabuf-shown", "the DMABUF plane on the console",
                   "the test pattern on the vGPU's console, through egl-headless",
                   "egl-headless imports the dma-buf (EGL_EXT_image_dma_buf_import) and shows "
                   "it; a GL driver that cannot import foreign dma-bufs makes this N/A, not "
                   "a failure of the chain"},
};

/* The fake T4 in region mode: a table of its own. */
static const struct row_def region_rows[] = {
    {"mdev", "vGPU (mdev) with a region display",
     "an nvidia-222 instance (GRID T4-1B), display region, and its /dev/vfio group",
     "the fake NVIDIA T4 in region mode refuses QEMU's DMABUF plane probe (as the kernel's mdpy "
     "sample does) and offers its framebuffer as a region plane"},
    {"no-gl", "KubeVirt's domain, no GL at all", "starts: VNC only, mesa hidden, no render node",
     "with a region display QEMU needs no GL: KubeVirt's VNC-only domain starts with mesa's "
     "libraries unloadable and no render node, as in a Kind container, so display=on works "
     "with KubeVirt unchanged"},
    {"display-live", "vGPU region plane is live",
     "ramfb at boot, then the vGPU's region plane (test pattern), no GL display",
     "QEMU maps the vGPU's framebuffer region and shows it without GL: paused, its "
     "placeholder; running, the firmware on the ramfb; with the plane turned on, the "
     "module's test pattern"},
};

struct run {
        struct run_ctx *ctx;
        struct ssh_node *n;
        struct display_report *rep;
        struct display_check *row[ROW_N]; /* NULL: not in this table */
        char *hooked_xml;                 /* NODE_DIR/hooked.xml once the hook ran */
        const char *artifacts;
        char *scanout;    /* the fake T4 instance's vgpuenv/scanout, else NULL */
        char *egl_driver; /* from the mesa-egl row */
        bool region;
};

static int step_time(struct run *R, const char *what, double t0)
{
        report_step(R->rep, what, now_seconds() - t0);
        return 0;
}

/* Start xml with one of the start verbs and judge a start that must fail
 * with one of needles (NULL-terminated) in libvirt's or QEMU's words. */
static int expect_start_failure(struct run *R, struct display_check *c, const char *verb,
                                const char *xml, const char *const *needles,
                                const char *why_missing)
{
        _cleanup_free_ char *out = NULL, *result = NULL, *hit = NULL, *err = NULL;
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, verb, DOMAIN_NAME, xml, NULL);
        if (r < 0)
                return r;
        result = kv_get(out, "result");
        for (const char *const *n = needles; !hit && *n; n++)
                hit = line_with(out, *n);
        err = start_error_line(out);
        if (r != 0 || !result) {
                _cleanup_free_ char *e = kv_get(out, "error");
                report_set_observed(c, false, now_seconds() - t0, "could not run: %s", e ? e : out);
        } else if (streq(result, "started"))
                report_set_observed(c, false, now_seconds() - t0, "the domain started (%s): %s",
                                    why_missing, "the control did not take away what it should");
        else if (hit)
                report_set_observed(c, true, now_seconds() - t0, "%s", hit);
        else
                report_set_observed(c, false, now_seconds() - t0, "failed for another reason: %s",
                                    err ? err : out);
        _cleanup_free_ char *stop_out = NULL;
        (void)node_verb(R->n, &stop_out, "stop", DOMAIN_NAME, NULL);
        return 0;
}

static int upload_text(struct ssh_node *n, const char *text, const char *remote, mode_t mode)
{
        int r = ssh_node_upload_data(n, text, strlen(text), remote, mode);

        if (r < 0)
                return log_error_errno(r, "cannot upload %s to the node: %m", remote);
        return 0;
}

static int check_node_facts(struct run *R, char **ret_kernel, char **ret_pkgver)
{
        _cleanup_free_ char *out = NULL, *rn = NULL;
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, "facts", NULL);
        if (r < 0)
                return r;
        *ret_kernel = kv_get(out, "kernel");
        *ret_pkgver = kv_get(out, "kernel-package-version");
        rn = kv_get(out, "render-node");
        if (R->row[ROW_RENDER])
                report_set_observed(R->row[ROW_RENDER], !isempty(rn), now_seconds() - t0, "%s",
                                    !isempty(rn) ? rn
                                                 : "no " RENDER_NODE " on the node (gpu: none?)");
        if (!*ret_kernel)
                return log_error_errno(-EBADMSG, "the node did not report its kernel:\n%s", out);
        return 0;
}

static int check_egl(struct run *R)
{
        _cleanup_free_ char *out = NULL, *ver = NULL, *drv = NULL, *exp = NULL, *e = NULL;
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, "egl", NULL);
        if (r < 0)
                return r;
        ver = kv_get(out, "egl-version");
        drv = kv_get(out, "egl-driver");
        free(R->egl_driver);
        R->egl_driver = drv ? strdup(drv) : NULL;
        exp = kv_get(out, "dmabuf-export");
        e = kv_get(out, "error");
        if (e)
                report_set_observed(R->row[ROW_EGL], false, now_seconds() - t0, "%s", e);
        else
                report_set_observed(R->row[ROW_EGL], ver && exp && streq(exp, "yes"),
                                    now_seconds() - t0, "EGL %s, driver %s, dmabuf export %s",
                                    ver ? ver : "not initialized", drv ? drv : "-",
                                    exp ? exp : "-");
        return 0;
}

/* mbochs.ko for the node: given, cached or built on this host. */
static int prepare_mbochs(struct run *R, const struct display_opts *o, const char *kernel,
                          const char *pkgver)
{
        _cleanup_free_ char *ko = NULL, *out = NULL, *e = NULL;
        double t0 = now_seconds();
        int r;

        if (o->mbochs_ko) {
                if (!file_exists(o->mbochs_ko))
                        return log_error_errno(-ENOENT, "--mbochs-ko %s: no such file",
                                               o->mbochs_ko);
                ko = strdup(o->mbochs_ko);
                if (!ko)
                        return -ENOMEM;
        } else {
                if (!pkgver)
                        return log_error_errno(-ENOPKG,
                                               "the node's kernel %s does not come from a Debian "
                                               "package (dpkg-query): build mbochs.ko for it and "
                                               "pass --mbochs-ko FILE, or use an existing vGPU "
                                               "with --mdev-parent",
                                               kernel);
                struct cancel build;
                cancel_init_child(&build, &R->ctx->cancel, R->ctx->cfg->deadlines.module_build,
                                  "the mbochs build (deadlines.module_build)");
                r = mbochs_build(&build, kernel, pkgver, &ko);
                if (r < 0)
                        return r;
        }
        step_time(R, "mbochs.ko ready (build or cache)", t0);

        t0 = now_seconds();
        r = ssh_node_upload(R->n, ko, NODE_DIR "/mbochs.ko", 0644);
        if (r < 0)
                return log_error_errno(r, "cannot upload %s to the node: %m", ko);
        r = node_verb(R->n, &out, "mdev-load", NODE_DIR "/mbochs.ko", NULL);
        if (r < 0)
                return r;
        if (r != 0) {
                e = kv_get(out, "error");
                return log_error_errno(-EIO, "loading vfio, mdev and mbochs on the node: %s",
                                       e ? e : out);
        }
        step_time(R, "vfio, vfio_iommu_type1, mdev, mbochs loaded", t0);
        return 0;
}

/* The fake T4 with the display of this run: node setup's module when it is
 * loaded (only the display of new instances is switched, and put back by
 * cleanup), else set up here as node setup would and removed afterwards. */
static int prepare_fake_t4(struct run *R, const struct display_opts *o)
{
        _cleanup_free_ char *out = NULL, *e = NULL;
        const char *mode = o->region ? "region" : "dmabuf";
        char *const test[] = {"test", "-d", "/sys/module/" VGPU_MODULE, NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        struct node_io io;
        struct cancel setup;
        double t0 = now_seconds();
        int r;

        /* A host build of the module may be part of it. */
        cancel_init_child(&setup, &R->ctx->cancel, vgpu_node_deadline(R->ctx->cfg),
                          "the fake vGPU's setup (deadlines.node_command + module_build)");
        vgpu_ssh_io(R->n, &setup, &io);
        r = ssh_node_run(R->n, test, &res);
        bool loaded = r >= 0 && res.exit_code == 0;
        if (r < 0)
                return log_error_errno(r, "asking the node for %s: %m", VGPU_MODULE);
        if (loaded) {
                r = node_verb(R->n, &out, "vgpu-display", mode, NULL);
                if (r < 0)
                        return r;
                if (r != 0) {
                        e = kv_get(out, "error");
                        return log_error_errno(-EIO, "the fake vGPU on the node: %s", e ? e : out);
                }
                step_time(R, "fake T4 loaded by node setup: display of new instances set", t0);
        } else {
                cJSON *v = cJSON_CreateObject();
                const cJSON *c;
                if (!v)
                        return -ENOMEM;
                r = vgpu_apply(&io, R->rep->node, o->region ? VGPU_REGION : VGPU_DMABUF, false, v);
                cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(v, "checks"))
                {
                        const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "detail");
                        if (r < 0 && cJSON_IsString(d))
                                log_error("the fake vGPU on the node: %s", d->valuestring);
                }
                cJSON_Delete(v);
                if (r < 0)
                        return r == -EIO ? log_error_errno(r, "the fake vGPU could not be set up")
                                         : r;
                free(out);
                out = NULL;
                r = node_verb(R->n, &out, "vgpu-loaded", NULL);
                if (r != 0)
                        return r < 0 ? r : -EIO;
                step_time(R, "fake T4 built or cached, installed and loaded", t0);
        }
        free(out);
        out = NULL;
        r = vgpu_node_verb(&io, R->rep->node, &out, "check", NULL);
        if (r < 0)
                return r;
        free(R->rep->mdev_parent);
        R->rep->mdev_parent = vgpu_first_parent(out);
        if (r != 0 || !R->rep->mdev_parent)
                return log_error_errno(-ENODEV, "the fake vGPU offers no parent on the node:\n%s",
                                       out);
        R->rep->mdev_display = strdup(mode);
        return R->rep->mdev_display ? 0 : -ENOMEM;
}

static int check_mdev(struct run *R, const struct display_opts *o)
{
        _cleanup_free_ char *out = NULL, *type = NULL, *name = NULL, *group = NULL, *e = NULL;
        _cleanup_free_ char *disp = NULL;
        const char *want = o->mdev_type                      ? o->mdev_type
                           : o->vgpu == DISPLAY_VGPU_FAKE_T4 ? VGPU_TYPE_1B
                                                             : "";
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, "mdev-create", R->rep->mdev_parent, want, R->rep->mdev_uuid,
                      NULL);
        if (r < 0)
                return r;
        type = kv_get(out, "type");
        name = kv_get(out, "type-name");
        group = kv_get(out, "vfio-group");
        e = kv_get(out, "error");
        if (r != 0 || e) {
                report_set_observed(R->row[ROW_MDEV], false, now_seconds() - t0, "%s", e ? e : out);
                return log_error_errno(-EIO, "creating the mdev instance on the node: %s",
                                       e ? e : out);
        }
        free(R->rep->mdev_type);
        R->rep->mdev_type = TAKE_PTR(type);
        disp = kv_get(out, "vgpu-display");
        /* The fake T4's instance must have the display this run asked for. */
        bool ok = !R->rep->mdev_display || (disp && streq(disp, R->rep->mdev_display));
        report_set_observed(R->row[ROW_MDEV], ok, now_seconds() - t0,
                            "%s of type %s (%s), group %s%s%s", R->rep->mdev_uuid,
                            R->rep->mdev_type ? R->rep->mdev_type : "?", name ? name : "?",
                            group ? group : "?", disp ? ", display " : "", disp ? disp : "");
        if (R->rep->mdev_display) {
                R->scanout =
                    strdup_printf("/sys/bus/mdev/devices/%s/vgpuenv/scanout", R->rep->mdev_uuid);
                if (!R->scanout)
                        return -ENOMEM;
        }
        return 0;
}

static int start_libvirtd(struct run *R)
{
        _cleanup_free_ char *out = NULL, *lv = NULL, *qv = NULL, *e = NULL;
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, "libvirtd", NULL);
        if (r < 0)
                return r;
        if (r != 0) {
                e = kv_get(out, "error");
                return log_error_errno(-EIO, "libvirtd on the node: %s", e ? e : out);
        }
        lv = kv_get(out, "libvirt");
        qv = kv_get(out, "qemu");
        log_info("node: libvirt %s, QEMU %s", lv ? lv : "?", qv ? qv : "?");
        step_time(R, "libvirtd running in the node", t0);
        return 0;
}

static int check_hook(struct run *R)
{
        _cleanup_free_ char *out = NULL, *added = NULL, *e = NULL;
        double t0 = now_seconds();
        int r;

        r = upload_text(R->n, vmi_json, NODE_DIR "/vmi.json", 0644);
        if (r < 0)
                return r;
        r = node_verb(R->n, &out, "hook", NODE_DIR "/vmi.json", NODE_DIR "/domain.xml",
                      NODE_DIR "/hooked.xml", NULL);
        if (r < 0)
                return r;
        added = kv_get(out, "hook-added");
        e = kv_get(out, "error");
        bool ok = r == 0 && added && strstr(added, "type=\"egl-headless\"") &&
                  strstr(added, "rendernode=\"" RENDER_NODE "\"");
        report_set_observed(R->row[ROW_HOOK], ok, now_seconds() - t0, "%s",
                            added ? added
                            : e   ? e
                                  : out);
        if (r == 0)
                R->hooked_xml = strdup(NODE_DIR "/hooked.xml");
        return 0;
}

static int check_hooked_start(struct run *R, bool *ret_running)
{
        _cleanup_free_ char *out = NULL, *result = NULL, *arg = NULL, *state = NULL, *err = NULL;
        double t0 = now_seconds();
        int r;

        *ret_running = false;
        r = node_verb(R->n, &out, "start", DOMAIN_NAME, R->hooked_xml, NULL);
        if (r < 0)
                return r;
        result = kv_get(out, "result");
        arg = kv_get(out, "display-arg");
        state = kv_get(out, "state");
        if (!result || !streq(result, "started")) {
                err = start_error_line(out);
                report_set_observed(R->row[ROW_HOOKED_START], false, now_seconds() - t0,
                                    "start failed: %s", err ? err : out);
                return 0;
        }
        *ret_running = true;
        bool ok = arg && startswith(arg, "egl-headless") && strstr(arg, "rendernode=" RENDER_NODE);
        report_set_observed(R->row[ROW_HOOKED_START], ok, now_seconds() - t0,
                            "started (%s), -display %s", state ? state : "?",
                            arg ? arg : "(none in the QEMU log)");
        return 0;
}

/* Copy a screendump from the node into the artifacts and read it. */
static int fetch_ppm(struct run *R, const char *remote, const char *name, char **ret_local,
                     char **ret_data, size_t *ret_size)
{
        _cleanup_free_ char *local = NULL;
        int r = mkdir_p(R->artifacts, 0755);

        local = strdup_printf("%s/%s", R->artifacts, name);
        if (!local)
                return -ENOMEM;
        if (r >= 0)
                r = ssh_node_download(R->n, remote, local);
        if (r >= 0)
                r = read_full_file(local, ret_data, ret_size);
        *ret_local = TAKE_PTR(local);
        return r;
}

/* Pixels that differ from the first one: something is drawn. */
static size_t drawn_pixels(const char *data, size_t off, unsigned w, unsigned h)
{
        size_t drawn = 0;

        for (size_t i = 0; i < (size_t)w * h; i++)
                if (memcmp(data + off + i * 3, data + off, 3) != 0)
                        drawn++;
        return drawn;
}

/* The fake T4's plane on the console: the screendump taken after the
 * scanout was turned on must show the module's test pattern. *ret_shown:
 * what it showed, for the row that judges it. */
static bool plane_on_console(struct run *R, const char *out, char **ret_shown)
{
        _cleanup_free_ char *plane_after = kv_get(out, "plane-after");
        _cleanup_free_ char *file = kv_get(out, "screendump");
        _cleanup_free_ char *local = NULL, *data = NULL;
        unsigned w = 0, h = 0, hits = 0, points = 0;
        size_t size = 0, off;

        if (isempty(plane_after)) {
                *ret_shown = strdup("the console never left the ramfb");
                return false;
        }
        if (fetch_ppm(R, file, "screendump.ppm", &local, &data, &size) < 0 ||
            ppm_parse_header(data, size, &w, &h, &off) < 0) {
                *ret_shown = strdup_printf("cannot fetch the screendump %s", file);
                return false;
        }
        (void)vgpu_pattern_match(data, size, &hits, &points);
        *ret_shown =
            strdup_printf("the vGPU's %s plane after %ss: %ux%u, test pattern at %u of %u "
                          "points (%s)",
                          R->region ? "region" : "DMABUF", plane_after, w, h, hits, points, local);
        return points > 0 && hits == points;
}

/* Rows of the fake T4: ramfb first (the firmware), then the plane. */
static void judge_fake(struct run *R, const char *out, double t0, const char *paused,
                       const char *changed, const char *display)
{
        _cleanup_free_ char *rfile = kv_get(out, "screendump-ramfb"), *shown = NULL;
        _cleanup_free_ char *rlocal = NULL, *rdata = NULL, *perr = kv_get(out, "plane-error");
        _cleanup_free_ char *before = kv_get(out, "dmabufs-before");
        _cleanup_free_ char *after = kv_get(out, "dmabufs-after");
        _cleanup_free_ char *egl_err = line_with(out, "eglCreateImageKHR failed");
        struct display_check *d = R->row[ROW_DISPLAY], *sh = R->row[ROW_SHOWN];
        size_t rsize = 0;

        if (isempty(changed) || !rfile ||
            fetch_ppm(R, rfile, "screendump-ramfb.ppm", &rlocal, &rdata, &rsize) < 0) {
                report_set_observed(d, false, now_seconds() - t0,
                                    "paused %s, the ramfb never showed the firmware (60+ s)",
                                    paused ? paused : "?");
                return;
        }
        bool on_console = plane_on_console(R, out, &shown);
        if (R->region) {
                report_set_observed(d, on_console, now_seconds() - t0,
                                    "paused %s, ramfb after %ss (%s), then %s, display %s",
                                    paused ? paused : "?", changed, rlocal, shown ? shown : "?",
                                    display);
                return;
        }
        /* DMABUF: QEMU took the dma-buf when the counter moved. */
        unsigned long b = before ? strtoul(before, NULL, 10) : 0;
        unsigned long a = after ? strtoul(after, NULL, 10) : 0;
        report_set_observed(
            d, a > b, now_seconds() - t0,
            "paused %s, ramfb after %ss (%s); plane on: QEMU took %lu dma-buf(s) of "
            "the vGPU (VFIO_DEVICE_GET_GFX_DMABUF), display %s",
            paused ? paused : "?", changed, rlocal, a - b, display);
        if (on_console)
                report_set_observed(sh, true, now_seconds() - t0, "%s", shown);
        else if (a > b && egl_err && R->egl_driver && streq(R->egl_driver, "kms_swrast"))
                /* Measured (docs/display-chain.md): virtio-gpu imports no
                 * foreign dma-buf, and kms_swrast cannot map an imported
                 * buffer (DRM refuses dumb-mapping it), in mesa 22.3 and
                 * 25.0 alike; a hardware GPU's driver can. */
                report_set_na(sh, now_seconds() - t0,
                              "not on this node: egl-headless could not import the dma-buf "
                              "(%s%s%s): mesa's software driver (kms_swrast on virtio-gpu) "
                              "imports no foreign dma-buf; the console shows no plane",
                              egl_err, perr ? "; screendump: " : "", perr ? perr : "");
        else
                report_set_observed(sh, false, now_seconds() - t0, "%s%s%s", shown ? shown : "?",
                                    egl_err ? "; QEMU: " : "", egl_err ? egl_err : "");
}

/* The dma-buf itself, read on the node before any domain holds the
 * instance (build/vgpuenv-plane-read does what QEMU does). */
static int check_plane(struct run *R)
{
        _cleanup_free_ char *out = NULL, *e = NULL, *local = NULL, *data = NULL, *w = NULL;
        _cleanup_free_ char *h = NULL, *stride = NULL, *fd = NULL;
        struct display_check *c = R->row[ROW_PLANE];
        unsigned hits = 0, points = 0;
        double t0 = now_seconds();
        size_t size = 0;
        int r;

        r = node_verb(R->n, &out, "plane-read", R->rep->mdev_uuid, NULL);
        if (r < 0)
                return r;
        e = kv_get(out, "error");
        if (r != 0 || e) {
                report_set_observed(c, false, now_seconds() - t0, "%s", e ? e : out);
                return 0;
        }
        w = kv_get(out, "width");
        h = kv_get(out, "height");
        stride = kv_get(out, "stride");
        fd = kv_get(out, "dmabuf-fd");
        r = fetch_ppm(R, NODE_DIR "/plane.ppm", "vgpu-plane.ppm", &local, &data, &size);
        if (r < 0 || vgpu_pattern_match(data, size, &hits, &points) < 0) {
                report_set_observed(c, false, now_seconds() - t0, "cannot read %s: %s",
                                    NODE_DIR "/plane.ppm", strerror(r < 0 ? -r : EBADMSG));
                return 0;
        }
        report_set_observed(c, fd && points > 0 && hits == points, now_seconds() - t0,
                            "%s a dma-buf of %sx%s XR24 (stride %s), mapped: test pattern at %u "
                            "of %u points (%s)",
                            fd ? "VFIO_DEVICE_GET_GFX_DMABUF gave" : "NO dma-buf, but", w ? w : "?",
                            h ? h : "?", stride ? stride : "?", hits, points, local);
        return 0;
}

static int check_display(struct run *R)
{
        _cleanup_free_ char *out = NULL, *file = NULL, *opts = NULL, *e = NULL, *local = NULL;
        _cleanup_free_ char *data = NULL, *paused = NULL, *changed = NULL;
        struct display_check *c = R->row[ROW_DISPLAY];
        double t0 = now_seconds();
        size_t size = 0, off;
        unsigned w = 0, h = 0;
        int r;

        r = node_verb(R->n, &out, "display", DOMAIN_NAME, DISPLAY_HOSTDEV_ALIAS,
                      R->scanout ? R->scanout : "", NULL);
        if (r < 0)
                return r;
        file = kv_get(out, "screendump");
        opts = kv_get(out, "display-options");
        e = kv_get(out, "error");
        paused = kv_get(out, "paused-size");
        changed = kv_get(out, "changed-after");
        if (r != 0 || !file) {
                report_set_observed(c, false, now_seconds() - t0, "%s", e ? e : out);
                return 0;
        }
        bool egl = opts && strstr(opts, "\"egl-headless\"");
        /* QMP's {"return":{"type":"none"},...}: the type is what matters. */
        _cleanup_free_ char *type = NULL;
        const char *t = opts ? strstr(opts, "\"type\":\"") : NULL;
        if (t) {
                t += strlen("\"type\":\"");
                type = strndup(t, strcspn(t, "\""));
        }
        const char *display = egl ? "egl-headless" : type ? type : opts ? opts : "unknown";
        if (R->scanout) {
                judge_fake(R, out, t0, paused, changed, display);
                /* DMABUF needs the GL display; a region plane must not. */
                if (c->ok && egl == R->region) {
                        c->ok = false;
                        free(c->observed);
                        c->observed = strdup_printf("display %s: %s", display,
                                                    R->region ? "a GL display was configured"
                                                              : "not egl-headless");
                }
                return 0;
        }
        r = fetch_ppm(R, file, "screendump.ppm", &local, &data, &size);
        if (r < 0) {
                report_set_observed(c, false, now_seconds() - t0, "cannot fetch %s into %s: %s",
                                    file, R->artifacts, strerror(-r));
                return 0;
        }
        if (ppm_parse_header(data, size, &w, &h, &off) < 0) {
                report_set_observed(c, false, now_seconds() - t0,
                                    "%s is not a complete PPM image (%zu bytes)", local, size);
                return 0;
        }
        /* Live means the console follows the guest: it changed from what QEMU
         * showed while paused (its placeholder), and shows something. */
        size_t drawn = drawn_pixels(data, off, w, h);
        bool live = !isempty(changed) && drawn > 0;
        report_set_observed(c, egl && live, now_seconds() - t0,
                            "paused %s, running %ux%u after %ss (%zu pixels drawn, %s), display %s",
                            paused ? paused : "?", w, h,
                            !isempty(changed) ? changed : "60+ (never changed)", drawn, local,
                            display);
        return 0;
}

/* Runs after a Ctrl-C too: the node must be left clean, so it has a token
 * of its own that only its deadline or a second Ctrl-C fires. */
static void cleanup_node(struct run *R)
{
        _cleanup_free_ char *out = NULL;
        char *argv[] = {"rm", "-rf", NODE_DIR, NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        struct cancel after;
        int r;

        cancel_init_after_interrupt(&after, &R->ctx->cancel, 120, "cleaning up the node");
        ssh_node_set_cancel(R->n, &after);
        r = node_verb(R->n, &out, "cleanup", DOMAIN_NAME, "--mdev",
                      R->rep->mdev_uuid ? R->rep->mdev_uuid : "none", "--final", NULL);
        if (r != 0)
                log_warning("cleaning up the node did not finish (exit %d):\n%s", r,
                            out ? out : "");
        else
                log_info("node cleaned up: %s", out);
        if (ssh_node_run(R->n, argv, &res) < 0 || res.exit_code != 0)
                log_warning("could not remove %s on the node", NODE_DIR);
        ssh_node_set_cancel(R->n, &R->ctx->cancel);
}

/* The rows of this run's table, in order; all are listed up front so a run
 * that stops early shows what it did not get to. */
static int add_rows(struct run *R, const struct display_opts *o)
{
        static const int region_order[] = {ROW_MDEV, ROW_NO_GL, ROW_DISPLAY};
        struct display_report *rep = R->rep;
        const struct row_def *def[ROW_N] = {0};
        int order[ROW_N], n = 0;

        if (o->region) {
                for (size_t i = 0; i < ELEMENTSOF(region_order); i++) {
                        order[n] = region_order[i];
                        def[order[n]] = &region_rows[i];
                        n++;
                }
        } else {
                bool fake = o->vgpu == DISPLAY_VGPU_FAKE_T4;
                for (int i = ROW_RENDER; i <= ROW_NO_RENDER; i++) {
                        def[i] = fake && fake_dmabuf_rows[i].id ? &fake_dmabuf_rows[i] : &rows[i];
                        if (def[i]->id)
                                order[n++] = i;
                }
        }
        for (int i = 0; i < n; i++) {
                const struct row_def *d = def[order[i]];
                if (!report_add(rep, d->id, d->check, d->expected, d->meaning))
                        return -ENOMEM;
        }
        /* Only now: report_add reallocates the array. */
        for (int i = 0; i < n; i++)
                R->row[order[i]] = &rep->checks[rep->n_checks - n + i];
        return 0;
}

/* KubeVirt's domain as it is, with the region display: no GL at all. */
static int run_region(struct run *R)
{
        _cleanup_free_ char *out = NULL, *result = NULL, *err = NULL, *hidden = NULL;
        _cleanup_free_ char *unbound = NULL, *arg = NULL, *stop_out = NULL;
        double t0 = now_seconds();
        int r;

        r = node_verb(R->n, &out, "start-without-gl", DOMAIN_NAME, NODE_DIR "/domain.xml", NULL);
        if (r < 0)
                return r;
        result = kv_get(out, "result");
        hidden = kv_get(out, "hidden");
        unbound = kv_get(out, "unbound");
        arg = kv_get(out, "display-arg");
        if (!result || !streq(result, "started")) {
                err = start_error_line(out);
                _cleanup_free_ char *e = kv_get(out, "error");
                report_set_observed(R->row[ROW_NO_GL], false, now_seconds() - t0,
                                    "start failed: %s",
                                    e     ? e
                                    : err ? err
                                          : out);
        } else {
                bool no_gl = !arg || !strstr(arg, "egl-headless");
                report_set_observed(
                    R->row[ROW_NO_GL], no_gl && hidden && unbound, now_seconds() - t0,
                    "started (paused), %s%s; mesa hidden (%s...), virtio-gpu %s unbound: "
                    "no render node",
                    arg ? "-display " : "no -display option", arg ? arg : "",
                    hidden ? hidden : "nothing", unbound ? unbound : "nothing");
                r = check_display(R);
                (void)node_verb(R->n, &stop_out, "stop", DOMAIN_NAME, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* KubeVirt's domain with the DMABUF display: the bug, the fix, the controls. */
static int run_dmabuf(struct run *R)
{
        struct run_ctx *ctx = R->ctx;
        bool running = false;
        int r;

        /* 1. KubeVirt's domain as it is: the bug. */
        static const char *const opengl[] = {OPENGL_ERROR, NULL};
        r = expect_start_failure(R, R->row[ROW_NO_HOOK], "start", NODE_DIR "/domain.xml", opengl,
                                 "no error although only VNC is configured");
        if (r < 0 || (cancel_check(&ctx->cancel) < 0))
                return r;

        /* 2. The hook, then the same domain again: the fix. */
        r = check_hook(R);
        if (r < 0 || !R->hooked_xml || (cancel_check(&ctx->cancel) < 0))
                return r;
        r = check_hooked_start(R, &running);
        if (r < 0)
                return r;
        if (running) {
                r = check_display(R);
                _cleanup_free_ char *stop_out = NULL;
                (void)node_verb(R->n, &stop_out, "stop", DOMAIN_NAME, NULL);
                if (r < 0)
                        return r;
        }
        if ((cancel_check(&ctx->cancel) < 0))
                return 0;

        /* 3. Controls: the hooked domain with one link taken away each. */
        static const char *const libgl[] = {"Couldn't open libGL.so.1", NULL};
        r = expect_start_failure(R, R->row[ROW_NO_MESA], "start-without-mesa", R->hooked_xml, libgl,
                                 "libGL.so.1 still loadable");
        if (r < 0 || (cancel_check(&ctx->cancel) < 0))
                return r;
        /* libvirt refuses a rendernode path that does not exist before QEMU
         * runs (9.0's words first); QEMU's own are for a GL display without a
         * rendernode attribute. Not just any line naming the render node: a
         * permission or labelling error would be another failure. */
        static const char *const no_render[] = {"'" RENDER_NODE "' is not accessible",
                                                RENDER_NODE ": No such file or directory",
                                                "no drm render node", NULL};
        return expect_start_failure(R, R->row[ROW_NO_RENDER], "start-without-render-node",
                                    R->hooked_xml, no_render, RENDER_NODE " still present");
}

/* Reach the node, upload the scripts, undo what a killed run left. */
static int connect_node(struct run *R, const struct node_target *t)
{
        _cleanup_free_ char *out = NULL;
        char *argv[] = {"mkdir", "-p", "-m", "0700", NODE_DIR, NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        struct node_target tt = *t;
        int r;

        tt.cancel = &R->ctx->cancel;
        r = ssh_node_connect(&tt, 60, &R->n);
        if (r < 0)
                return r;
        r = ssh_node_run(R->n, argv, &res);
        if (r >= 0 && res.exit_code != 0)
                r = log_error_errno(-EIO, "mkdir %s on the node: %s", NODE_DIR,
                                    res.err.data ? res.err.data : "");
        if (r >= 0)
                r = upload_text(R->n, display_node_script, NODE_SCRIPT, 0755);
        if (r >= 0)
                r = upload_text(R->n, hook_script, NODE_DIR "/onDefineDomain", 0755);
        if (r >= 0) {
                _cleanup_free_ char *tool =
                    strdup_printf("%s/vgpuenv-plane-read", R->ctx->build_dir);
                if (!tool)
                        return -ENOMEM;
                r = ssh_node_upload(R->n, tool, NODE_DIR "/plane-read", 0755);
                if (r < 0)
                        log_error_errno(r, "cannot upload %s (run make): %m", tool);
        }
        if (r < 0)
                return r;
        r = node_verb(R->n, &out, "cleanup", DOMAIN_NAME, NULL);
        if (r != 0)
                return log_error_errno(-EIO, "cleaning up an earlier run on the node:\n%s",
                                       out ? out : "");
        return 0;
}

static int prepare_vgpu(struct run *R, const struct display_opts *o, const char *kernel,
                        const char *pkgver)
{
        switch (o->vgpu) {
        case DISPLAY_VGPU_FAKE_T4:
                return prepare_fake_t4(R, o);
        case DISPLAY_VGPU_MBOCHS:
                R->rep->mdev_parent = strdup("mbochs");
                return R->rep->mdev_parent ? prepare_mbochs(R, o, kernel, pkgver) : -ENOMEM;
        case DISPLAY_VGPU_PARENT:
                R->rep->mdev_parent = strdup(o->mdev_parent);
                return R->rep->mdev_parent ? 0 : -ENOMEM;
        }
        return -EINVAL;
}

int display_verify(struct run_ctx *ctx, struct state *st, const struct display_opts *o,
                   struct display_report *rep)
{
        _cleanup_free_ struct node_target *targets = NULL;
        _cleanup_free_ char *kernel = NULL, *pkgver = NULL, *xml = NULL;
        _cleanup_free_ char *artifacts = NULL;
        const struct node_target *t;
        struct run R = {.ctx = ctx, .rep = rep, .region = o->region};
        bool prepared = false;
        size_t n = 0;
        double t0;
        int r;

        if (o->region && o->vgpu != DISPLAY_VGPU_FAKE_T4)
                return log_error_errno(-EINVAL, "the region table needs the fake T4");
        r = add_rows(&R, o);
        if (r < 0)
                return r;
        artifacts = o->artifacts ? strdup(o->artifacts)
                                 : strdup_printf("%s/verify-display", ctx->state_dir);
        if (!artifacts)
                return -ENOMEM;
        R.artifacts = artifacts;

        r = state_get_nodes(st, &targets, &n);
        if (r < 0)
                return log_error_errno(r, "reading the cluster's nodes: %m");
        t = pick_node(targets, n, o->node);
        if (!t)
                return log_error_errno(-ENOENT, "no node '%s' in cluster %s (%zu node(s))",
                                       o->node ? o->node : "(first)", ctx->cfg->name, n);
        rep->node = strdup(t->name);

        t0 = now_seconds();
        r = connect_node(&R, t);
        if (r < 0)
                goto done;
        prepared = true;
        step_time(&R, "node reached, scripts uploaded", t0);

        r = check_node_facts(&R, &kernel, &pkgver);
        if (r < 0)
                goto done;
        rep->kernel = strdup(kernel);
        if (!o->region) {
                r = check_egl(&R);
                if (r < 0 || (cancel_check(&ctx->cancel) < 0))
                        goto done;
        }

        r = new_uuid(&rep->mdev_uuid);
        if (r >= 0)
                r = prepare_vgpu(&R, o, kernel, pkgver);
        if (r >= 0 && !(cancel_check(&ctx->cancel) < 0))
                r = check_mdev(&R, o);
        if (r >= 0 && R.row[ROW_PLANE] && R.row[ROW_MDEV]->ok && !(cancel_check(&ctx->cancel) < 0))
                r = check_plane(&R);
        if (r < 0 || (cancel_check(&ctx->cancel) < 0))
                goto done;

        r = start_libvirtd(&R);
        if (r < 0)
                goto done;
        r = display_domain_xml(DOMAIN_NAME, rep->mdev_uuid, DOMAIN_MEMORY_MIB, &xml);
        if (r < 0) {
                log_error_errno(r, "building the domain XML: %m");
                goto done;
        }
        r = upload_text(R.n, xml, NODE_DIR "/domain.xml", 0644);
        if (r < 0)
                goto done;
        r = o->region ? run_region(&R) : run_dmabuf(&R);

done:
        if ((cancel_check(&ctx->cancel) < 0) && r >= 0)
                r = -ECANCELED;
        if (prepared)
                cleanup_node(&R);
        free(R.hooked_xml);
        free(R.scanout);
        free(R.egl_driver);
        ssh_node_free(R.n);
        return r < 0 ? r : 0;
}
