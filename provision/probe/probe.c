/* vgpuenv-probe: does this node have what QEMU's egl-headless display needs?
 *
 * Runs ON a node (copied there by `vgpuenv up`), so it links nothing but libc
 * and libdl: mesa's libraries are dlopen()ed, and a missing one is named in
 * the verdict instead of the program failing to start. The EGL/GBM headers
 * only give types and constants; every function is resolved with dlsym or
 * eglGetProcAddress.
 *
 * Checks, in order (a failed check skips the ones that need it):
 *   render-node    /dev/dri/renderD* exists and opens read-write
 *   gbm            libgbm creates a device on it
 *   egl-init       EGL initializes on the GBM platform of that device
 *   dmabuf-ext     the display offers EGL_MESA_image_dma_buf_export
 *   dmabuf-export  a surfaceless GL ES context works (QEMU needs one), and a
 *                  GL texture (else a GBM bo) becomes an EGLImage that is
 *                  exported as a dmabuf fd. Mesa's software driver on a 2D
 *                  virtio-gpu (kms_swrast) cannot allocate on a render node
 *                  (DRM forbids dumb buffers there), so the probe then
 *                  exports a GBM bo through the same device's primary node
 *                  and says so (--render-node-only turns this off).
 *
 * Output: one "PASS name detail" / "FAIL name: reason" / "SKIP name: reason"
 * line per check, or with --json one object
 *   {"ok": bool, "device": "...", "checks": [{"name","ok","status","detail"}]}
 * printed by hand (no JSON library on the node). Exit 0 when every check
 * passed, 1 when one failed, 2 for bad usage. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <gbm.h>

/* GL ES 2 constants we use; their values are fixed by the GL spec, and this
 * saves a build dependency on the GLES headers. */
#define PROBE_GL_TEXTURE_2D 0x0DE1
#define PROBE_GL_RGBA 0x1908
#define PROBE_GL_UNSIGNED_BYTE 0x1401
#define PROBE_GL_RENDERER 0x1F01
#define PROBE_GL_NO_ERROR 0

/* DRM_IOCTL_VERSION from the kernel's uapi drm.h (a stable ABI), spelled out
 * so the probe builds without libdrm headers. */
struct probe_drm_version {
        int version_major;
        int version_minor;
        int version_patchlevel;
        size_t name_len;
        char *name;
        size_t date_len;
        char *date;
        size_t desc_len;
        char *desc;
};
#define PROBE_DRM_IOCTL_VERSION _IOWR('d', 0x00, struct probe_drm_version)

enum check_id { C_RENDER, C_GBM, C_EGL, C_EXT, C_EXPORT, N_CHECKS };
enum status { ST_NOT_RUN, ST_PASS, ST_FAIL, ST_SKIP };

static const char *const check_names[N_CHECKS] = {
    [C_RENDER] = "render-node",   [C_GBM] = "gbm", [C_EGL] = "egl-init", [C_EXT] = "dmabuf-ext",
    [C_EXPORT] = "dmabuf-export",
};

struct check {
        enum status status;
        char detail[1536];
};

typedef void *(*gl_getproc_t)(const char *);

/* Everything one run of the probe holds; no global state. */
struct probe {
        const char *device_opt;
        bool no_primary; /* --render-node-only: no export through cardN */
        bool any_device; /* tests: accept a non-DRM file to reach later checks */
        const char *gbm_lib, *egl_lib, *gles_lib;
        char device[256];
        char drm_driver[64];
        bool is_drm;
        int fd;

        void *gbm_handle, *egl_handle, *gles_handle;
        struct gbm_device *gbm;
        struct gbm_device *(*gbm_create_device)(int);
        struct gbm_bo *(*gbm_bo_create)(struct gbm_device *, uint32_t, uint32_t, uint32_t,
                                        uint32_t);
        void (*gbm_bo_destroy)(struct gbm_bo *);
        void (*gbm_device_destroy)(struct gbm_device *);
        const char *(*gbm_device_get_backend_name)(struct gbm_device *);

        EGLDisplay dpy;
        PFNEGLGETPLATFORMDISPLAYEXTPROC get_platform_display;
        void *(*eglGetProcAddress)(const char *);
        const char *(*eglQueryString)(EGLDisplay, EGLint);
        EGLint (*eglGetError)(void);
        EGLBoolean (*eglInitialize)(EGLDisplay, EGLint *, EGLint *);
        EGLBoolean (*eglTerminate)(EGLDisplay);
        EGLBoolean (*eglBindAPI)(EGLenum);
        EGLBoolean (*eglChooseConfig)(EGLDisplay, const EGLint *, EGLConfig *, EGLint, EGLint *);
        EGLContext (*eglCreateContext)(EGLDisplay, EGLConfig, EGLContext, const EGLint *);
        EGLBoolean (*eglDestroyContext)(EGLDisplay, EGLContext);
        EGLBoolean (*eglMakeCurrent)(EGLDisplay, EGLSurface, EGLSurface, EGLContext);

        struct check checks[N_CHECKS];
};

static void set(struct probe *p, enum check_id id, enum status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set(struct probe *p, enum check_id id, enum status st, const char *fmt, ...)
{
        va_list ap;

        p->checks[id].status = st;
        va_start(ap, fmt);
        vsnprintf(p->checks[id].detail, sizeof(p->checks[id].detail), fmt, ap);
        va_end(ap);
}

static const char *egl_error_name(EGLint e)
{
        static const char *const names[] = {
            "EGL_SUCCESS",       "EGL_NOT_INITIALIZED",     "EGL_BAD_ACCESS",
            "EGL_BAD_ALLOC",     "EGL_BAD_ATTRIBUTE",       "EGL_BAD_CONFIG",
            "EGL_BAD_CONTEXT",   "EGL_BAD_CURRENT_SURFACE", "EGL_BAD_DISPLAY",
            "EGL_BAD_MATCH",     "EGL_BAD_NATIVE_PIXMAP",   "EGL_BAD_NATIVE_WINDOW",
            "EGL_BAD_PARAMETER", "EGL_BAD_SURFACE",         "EGL_CONTEXT_LOST",
        };

        if (e >= EGL_SUCCESS && e <= EGL_CONTEXT_LOST)
                return names[e - EGL_SUCCESS];
        return "unknown EGL error";
}

static const char *egl_err(struct probe *p)
{
        return egl_error_name(p->eglGetError());
}

/* Whole-word search in a space-separated extension list. */
static bool has_ext(const char *list, const char *ext)
{
        size_t n = strlen(ext);

        for (const char *s = list; s && (s = strstr(s, ext)); s += n)
                if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == 0))
                        return true;
        return false;
}

/* dlsym that names the missing symbol. */
static bool sym(void *handle, const char *lib, const char *name, void *ret, char *err,
                size_t errlen)
{
        void *f = dlsym(handle, name);

        if (!f) {
                snprintf(err, errlen, "%s has no %s: %s", lib, name, dlerror());
                return false;
        }
        memcpy(ret, &f, sizeof(f));
        return true;
}

/* ---- (a) render node -------------------------------------------------------- */

static void check_render_node(struct probe *p)
{
        struct probe_drm_version v = {};
        char name[64] = "";

        if (p->device_opt) {
                snprintf(p->device, sizeof(p->device), "%s", p->device_opt);
        } else {
                glob_t g = {};

                if (glob("/dev/dri/renderD*", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
                        globfree(&g);
                        set(p, C_RENDER, ST_FAIL,
                            "no DRM render node under /dev/dri: the node has no GPU device (gpu: "
                            "none?) or "
                            "the virtio_gpu module is not loaded");
                        return;
                }
                snprintf(p->device, sizeof(p->device), "%s", g.gl_pathv[0]);
                globfree(&g);
        }

        p->fd = open(p->device, O_RDWR | O_CLOEXEC);
        if (p->fd < 0) {
                int e = errno;
                set(p, C_RENDER, ST_FAIL, "cannot open %s: %s%s", p->device, strerror(e),
                    e == EACCES || e == EPERM ? " (run as root or as a member of the render group)"
                                              : "");
                return;
        }
        /* The driver name tells 2D virtio-gpu from virgl, and a non-DRM file
         * apart from a render node when GBM later refuses it. */
        v.name = name;
        v.name_len = sizeof(name) - 1;
        if (ioctl(p->fd, PROBE_DRM_IOCTL_VERSION, &v) == 0) {
                p->is_drm = true;
                snprintf(p->drm_driver, sizeof(p->drm_driver), "%.*s", (int)v.name_len, name);
                set(p, C_RENDER, ST_PASS, "%s (kernel driver %s)", p->device, p->drm_driver);
        } else if (p->any_device) {
                set(p, C_RENDER, ST_PASS, "%s (not a DRM device; accepted by --any-device)",
                    p->device);
        } else {
                /* Mesa would fall back to software on any file descriptor and
                 * report a working EGL that QEMU could not use. */
                set(p, C_RENDER, ST_FAIL, "%s is not a DRM device (DRM_IOCTL_VERSION: %s)",
                    p->device, strerror(errno));
        }
}

/* ---- (b) GBM ------------------------------------------------------------------ */

static void check_gbm(struct probe *p)
{
        char err[512];

        p->gbm_handle = dlopen(p->gbm_lib, RTLD_NOW | RTLD_LOCAL);
        if (!p->gbm_handle) {
                set(p, C_GBM, ST_FAIL,
                    "cannot load %s (%s): mesa's GBM library is missing (Debian: libgbm1, RHEL: "
                    "mesa-libgbm)",
                    p->gbm_lib, dlerror());
                return;
        }
        if (!sym(p->gbm_handle, p->gbm_lib, "gbm_create_device", &p->gbm_create_device, err,
                 sizeof(err)) ||
            !sym(p->gbm_handle, p->gbm_lib, "gbm_device_destroy", &p->gbm_device_destroy, err,
                 sizeof(err)) ||
            !sym(p->gbm_handle, p->gbm_lib, "gbm_device_get_backend_name",
                 &p->gbm_device_get_backend_name, err, sizeof(err)) ||
            !sym(p->gbm_handle, p->gbm_lib, "gbm_bo_create", &p->gbm_bo_create, err, sizeof(err)) ||
            !sym(p->gbm_handle, p->gbm_lib, "gbm_bo_destroy", &p->gbm_bo_destroy, err,
                 sizeof(err))) {
                set(p, C_GBM, ST_FAIL, "%s", err);
                return;
        }
        p->gbm = p->gbm_create_device(p->fd);
        if (!p->gbm) {
                if (!p->is_drm)
                        set(p, C_GBM, ST_FAIL,
                            "gbm_create_device on %s failed: %s is not a DRM device", p->device,
                            p->device);
                else
                        set(p, C_GBM, ST_FAIL,
                            "gbm_create_device on %s failed: no GBM backend for kernel driver %s "
                            "(is mesa's "
                            "DRI driver package installed? Debian: libgl1-mesa-dri, RHEL: "
                            "mesa-dri-drivers)",
                            p->device, p->drm_driver);
                return;
        }
        set(p, C_GBM, ST_PASS, "backend %s", p->gbm_device_get_backend_name(p->gbm) ?: "?");
}

/* ---- (c) EGL on the GBM device ---------------------------------------------- */

static void check_egl(struct probe *p)
{
        PFNEGLGETPLATFORMDISPLAYEXTPROC get_platform_display;
        const char *client_ext, *vendor;

        const char *(*get_driver_name)(EGLDisplay) = NULL;
        EGLint major = 0, minor = 0;
        char err[512];

        p->egl_handle = dlopen(p->egl_lib, RTLD_NOW | RTLD_LOCAL);
        if (!p->egl_handle) {
                set(p, C_EGL, ST_FAIL,
                    "cannot load %s (%s): the EGL library is missing (Debian: libegl1 and "
                    "libegl-mesa0, "
                    "RHEL: libglvnd-egl and mesa-libEGL)",
                    p->egl_lib, dlerror());
                return;
        }
#define EGL_SYM(name)                                                                              \
        if (!sym(p->egl_handle, p->egl_lib, #name, &p->name, err, sizeof(err))) {                  \
                set(p, C_EGL, ST_FAIL, "%s", err);                                                 \
                return;                                                                            \
        }
        EGL_SYM(eglGetProcAddress);
        EGL_SYM(eglQueryString);
        EGL_SYM(eglGetError);
        EGL_SYM(eglInitialize);
        EGL_SYM(eglTerminate);
        EGL_SYM(eglBindAPI);
        EGL_SYM(eglChooseConfig);
        EGL_SYM(eglCreateContext);
        EGL_SYM(eglDestroyContext);
        EGL_SYM(eglMakeCurrent);
#undef EGL_SYM

        /* With glvnd, the GBM platform exists only if a vendor library
         * (mesa's libEGL_mesa.so.0) was found. */
        client_ext = p->eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
        if (!has_ext(client_ext, "EGL_KHR_platform_gbm") &&
            !has_ext(client_ext, "EGL_MESA_platform_gbm")) {
                set(p, C_EGL, ST_FAIL,
                    "EGL offers no GBM platform (client extensions: %s): is mesa's EGL vendor "
                    "library "
                    "installed? (Debian: libegl-mesa0, RHEL: mesa-libEGL)",
                    client_ext ? client_ext : "none");
                return;
        }
        get_platform_display =
            (PFNEGLGETPLATFORMDISPLAYEXTPROC)p->eglGetProcAddress("eglGetPlatformDisplayEXT");
        if (!get_platform_display) {
                set(p, C_EGL, ST_FAIL, "%s has no eglGetPlatformDisplayEXT", p->egl_lib);
                return;
        }
        p->get_platform_display = get_platform_display;
        p->dpy = get_platform_display(EGL_PLATFORM_GBM_KHR, p->gbm, NULL);
        if (p->dpy == EGL_NO_DISPLAY) {
                set(p, C_EGL, ST_FAIL, "eglGetPlatformDisplayEXT(GBM, %s) failed: %s", p->device,
                    egl_err(p));
                return;
        }
        if (!p->eglInitialize(p->dpy, &major, &minor)) {
                set(p, C_EGL, ST_FAIL,
                    "eglInitialize on %s failed: %s (mesa found no driver that works with kernel "
                    "driver %s)",
                    p->device, egl_err(p), p->drm_driver[0] ? p->drm_driver : "?");
                p->dpy = EGL_NO_DISPLAY;
                return;
        }
        vendor = p->eglQueryString(p->dpy, EGL_VENDOR);
        if (has_ext(p->eglQueryString(p->dpy, EGL_EXTENSIONS), "EGL_MESA_query_driver"))
                get_driver_name =
                    (const char *(*)(EGLDisplay))p->eglGetProcAddress("eglGetDisplayDriverName");
        set(p, C_EGL, ST_PASS, "EGL %d.%d (vendor %s), driver %s", major, minor, vendor ?: "?",
            get_driver_name ? (get_driver_name(p->dpy) ?: "?") : "unknown");
}

/* ---- (d) the dmabuf export extension -------------------------------------- */

static void check_ext(struct probe *p)
{
        const char *ext = p->eglQueryString(p->dpy, EGL_EXTENSIONS);

        if (!has_ext(ext, "EGL_MESA_image_dma_buf_export")) {
                set(p, C_EXT, ST_FAIL,
                    "EGL_MESA_image_dma_buf_export is not offered on %s: QEMU could not export the "
                    "display "
                    "as a dmabuf",
                    p->device);
                return;
        }
        set(p, C_EXT, ST_PASS, "EGL_MESA_image_dma_buf_export");
}

/* ---- (e) export one dmabuf ---------------------------------------------------- */

static bool streq_card(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

struct export_fns {
        PFNEGLCREATEIMAGEKHRPROC create_image;
        PFNEGLDESTROYIMAGEKHRPROC destroy_image;
        PFNEGLEXPORTDMABUFIMAGEQUERYMESAPROC query;
        PFNEGLEXPORTDMABUFIMAGEMESAPROC export;
};

/* Export image as dmabuf(s); true with a description in out, false with the
 * reason in out. */
static bool export_image(struct probe *p, const struct export_fns *f, EGLDisplay dpy,
                         EGLImageKHR image, char *out, size_t outlen)
{
        int fourcc = 0, nplanes = 0, fds[4] = {-1, -1, -1, -1};
        EGLint strides[4] = {}, offsets[4] = {};
        EGLuint64KHR modifiers[4] = {};
        char path[64], link[128] = "", mod[40];
        struct stat st;
        bool ok = false;
        ssize_t k;

        if (!f->query(dpy, image, &fourcc, &nplanes, modifiers)) {
                snprintf(out, outlen, "eglExportDMABUFImageQueryMESA failed: %s", egl_err(p));
                return false;
        }
        if (nplanes < 1 || nplanes > 4) {
                snprintf(out, outlen, "eglExportDMABUFImageQueryMESA reported %d planes", nplanes);
                return false;
        }
        if (!f->export(dpy, image, fds, strides, offsets)) {
                snprintf(out, outlen, "eglExportDMABUFImageMESA failed: %s", egl_err(p));
                goto out;
        }
        if (fds[0] < 0 || fstat(fds[0], &st) < 0) {
                snprintf(out, outlen, "eglExportDMABUFImageMESA returned no valid fd (%d)", fds[0]);
                goto out;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
        k = readlink(path, link, sizeof(link) - 1);
        link[k > 0 ? k : 0] = 0;
        if (modifiers[0] == 0x00ffffffffffffffULL) /* DRM_FORMAT_MOD_INVALID */
                snprintf(mod, sizeof(mod), "none (implicit layout)");
        else
                snprintf(mod, sizeof(mod), "0x%llx", (unsigned long long)modifiers[0]);
        snprintf(out, outlen,
                 "fourcc %c%c%c%c (0x%08x), %d plane(s), stride %d, modifier %s, fd %s",
                 fourcc & 0xff, (fourcc >> 8) & 0xff, (fourcc >> 16) & 0xff, (fourcc >> 24) & 0xff,
                 (unsigned)fourcc, nplanes, strides[0], mod, link[0] ? link : "valid");
        ok = true;
out:
        for (int i = 0; i < 4; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return ok;
}

/* A GBM buffer object wrapped as an EGLImage (EGL_NATIVE_PIXMAP_KHR). */
static bool export_via_bo(struct probe *p, const struct export_fns *f, EGLDisplay dpy,
                          struct gbm_device *gbm, char *out, size_t outlen)
{
        struct gbm_bo *bo;
        EGLImageKHR image;
        bool ok;

        bo = p->gbm_bo_create(gbm, 64, 64, GBM_FORMAT_ARGB8888, GBM_BO_USE_RENDERING);
        if (!bo) {
                snprintf(out, outlen, "gbm_bo_create(64x64 ARGB8888) failed: %s", strerror(errno));
                return false;
        }
        image =
            f->create_image(dpy, EGL_NO_CONTEXT, EGL_NATIVE_PIXMAP_KHR, (EGLClientBuffer)bo, NULL);
        if (image == EGL_NO_IMAGE_KHR) {
                snprintf(out, outlen, "eglCreateImageKHR(GBM bo) failed: %s", egl_err(p));
                p->gbm_bo_destroy(bo);
                return false;
        }
        ok = export_image(p, f, dpy, image, out, outlen);
        f->destroy_image(dpy, image);
        p->gbm_bo_destroy(bo);
        return ok;
}

struct gl_fns {
        void (*gen_textures)(int, unsigned *);
        void (*bind_texture)(unsigned, unsigned);
        void (*tex_image_2d)(unsigned, int, int, int, int, int, unsigned, unsigned, const void *);
        void (*delete_textures)(int, const unsigned *);
        const unsigned char *(*get_string)(unsigned);
        unsigned (*get_error)(void);
};

/* A GL texture wrapped as an EGLImage, the way QEMU exports its display. */
static bool export_via_texture(struct probe *p, const struct export_fns *f, const struct gl_fns *gl,
                               EGLContext ctx, char *out, size_t outlen)
{
        EGLImageKHR image;
        unsigned tex = 0;
        bool ok;

        gl->gen_textures(1, &tex);
        gl->bind_texture(PROBE_GL_TEXTURE_2D, tex);
        gl->tex_image_2d(PROBE_GL_TEXTURE_2D, 0, PROBE_GL_RGBA, 64, 64, 0, PROBE_GL_RGBA,
                         PROBE_GL_UNSIGNED_BYTE, NULL);
        if (gl->get_error() != PROBE_GL_NO_ERROR) {
                snprintf(out, outlen, "glTexImage2D(64x64 RGBA) failed");
                gl->delete_textures(1, &tex);
                return false;
        }
        image = f->create_image(p->dpy, ctx, EGL_GL_TEXTURE_2D_KHR, (EGLClientBuffer)(uintptr_t)tex,
                                NULL);
        if (image == EGL_NO_IMAGE_KHR) {
                snprintf(out, outlen, "eglCreateImageKHR(GL texture) failed: %s", egl_err(p));
                gl->delete_textures(1, &tex);
                return false;
        }
        ok = export_image(p, f, p->dpy, image, out, outlen);
        f->destroy_image(p->dpy, image);
        gl->delete_textures(1, &tex);
        return ok;
}

/* The primary node (/dev/dri/cardN) of the device behind our render node.
 * Mesa's software driver (kms_swrast, used on a 2D virtio-gpu) allocates
 * with dumb buffers, which DRM refuses on render nodes, so on such a node a
 * dmabuf can only come from the primary node of the same device. */
static bool export_via_primary(struct probe *p, const struct export_fns *f, char *card,
                               size_t cardlen, char *out, size_t outlen)
{
        struct gbm_device *gbm = NULL;
        EGLDisplay dpy = EGL_NO_DISPLAY;
        char pattern[96];
        struct stat st;
        glob_t g = {};
        bool ok = false;
        int fd = -1;

        if (fstat(p->fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
                snprintf(out, outlen, "not a character device");
                return false;
        }
        snprintf(pattern, sizeof(pattern), "/sys/dev/char/%u:%u/device/drm/card*",
                 major(st.st_rdev), minor(st.st_rdev));
        if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
                snprintf(out, outlen, "no primary node for %.200s", p->device);
                globfree(&g);
                return false;
        }
        snprintf(card, cardlen, "/dev/dri/%s", strrchr(g.gl_pathv[0], '/') + 1);
        globfree(&g);
        if (streq_card(card, p->device)) {
                snprintf(out, outlen, "%s is already the primary node", card);
                return false;
        }
        fd = open(card, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                snprintf(out, outlen, "cannot open %s: %s", card, strerror(errno));
                return false;
        }
        gbm = p->gbm_create_device(fd);
        if (!gbm) {
                snprintf(out, outlen, "gbm_create_device on %s failed", card);
                goto out;
        }
        dpy = p->get_platform_display(EGL_PLATFORM_GBM_KHR, gbm, NULL);
        if (dpy == EGL_NO_DISPLAY || !p->eglInitialize(dpy, NULL, NULL)) {
                snprintf(out, outlen, "EGL on %s failed: %s", card, egl_err(p));
                dpy = EGL_NO_DISPLAY;
                goto out;
        }
        ok = export_via_bo(p, f, dpy, gbm, out, outlen);
out:
        if (dpy != EGL_NO_DISPLAY)
                p->eglTerminate(dpy);
        if (gbm)
                p->gbm_device_destroy(gbm);
        close(fd);
        return ok;
}

/* The dmabuf export entry points; false (the check failed) when absent. */
static bool load_export_fns(struct probe *p, struct export_fns *f)
{
        f->create_image = (PFNEGLCREATEIMAGEKHRPROC)p->eglGetProcAddress("eglCreateImageKHR");
        f->destroy_image = (PFNEGLDESTROYIMAGEKHRPROC)p->eglGetProcAddress("eglDestroyImageKHR");
        f->query = (PFNEGLEXPORTDMABUFIMAGEQUERYMESAPROC)p->eglGetProcAddress(
            "eglExportDMABUFImageQueryMESA");
        f->export =
            (PFNEGLEXPORTDMABUFIMAGEMESAPROC)p->eglGetProcAddress("eglExportDMABUFImageMESA");
        if (f->create_image && f->destroy_image && f->query && f->export)
                return true;
        set(p, C_EXPORT, ST_FAIL, "%s lacks eglCreateImageKHR or the dmabuf export functions",
            p->egl_lib);
        return false;
}

/* The GL ES calls the texture path makes, from p->gles_lib. */
static bool load_gl_fns(struct probe *p, struct gl_fns *gl)
{
        char err[512];

        p->gles_handle = dlopen(p->gles_lib, RTLD_NOW | RTLD_LOCAL);
        if (!p->gles_handle) {
                set(p, C_EXPORT, ST_FAIL,
                    "cannot load %s (%s): the GL ES library is missing (Debian: libgles2, RHEL: "
                    "libglvnd-gles)",
                    p->gles_lib, dlerror());
                return false;
        }
        if (!sym(p->gles_handle, p->gles_lib, "glGenTextures", &gl->gen_textures, err,
                 sizeof(err)) ||
            !sym(p->gles_handle, p->gles_lib, "glBindTexture", &gl->bind_texture, err,
                 sizeof(err)) ||
            !sym(p->gles_handle, p->gles_lib, "glTexImage2D", &gl->tex_image_2d, err,
                 sizeof(err)) ||
            !sym(p->gles_handle, p->gles_lib, "glDeleteTextures", &gl->delete_textures, err,
                 sizeof(err)) ||
            !sym(p->gles_handle, p->gles_lib, "glGetString", &gl->get_string, err, sizeof(err)) ||
            !sym(p->gles_handle, p->gles_lib, "glGetError", &gl->get_error, err, sizeof(err))) {
                set(p, C_EXPORT, ST_FAIL, "%s", err);
                return false;
        }
        return true;
}

/* QEMU's egl-headless makes a GL ES context current without a surface; the
 * probe does the same before exporting. EGL_NO_CONTEXT (the check failed)
 * when it cannot. */
static EGLContext make_surfaceless_context(struct probe *p)
{
        static const EGLint ctx_attr[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
        const char *ext = p->eglQueryString(p->dpy, EGL_EXTENSIONS);
        EGLConfig config = EGL_NO_CONFIG_KHR;
        EGLContext ctx;

        if (!has_ext(ext, "EGL_KHR_surfaceless_context")) {
                set(p, C_EXPORT, ST_FAIL,
                    "EGL_KHR_surfaceless_context is not offered: QEMU's egl-headless needs it");
                return EGL_NO_CONTEXT;
        }
        if (!p->eglBindAPI(EGL_OPENGL_ES_API)) {
                set(p, C_EXPORT, ST_FAIL, "eglBindAPI(GL ES) failed: %s", egl_err(p));
                return EGL_NO_CONTEXT;
        }
        if (!has_ext(ext, "EGL_KHR_no_config_context") &&
            !has_ext(ext, "EGL_MESA_configless_context")) {
                static const EGLint want[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
                EGLint n = 0;

                if (!p->eglChooseConfig(p->dpy, want, &config, 1, &n) || n < 1) {
                        set(p, C_EXPORT, ST_FAIL, "no EGL config for GL ES 2: %s", egl_err(p));
                        return EGL_NO_CONTEXT;
                }
        }
        ctx = p->eglCreateContext(p->dpy, config, EGL_NO_CONTEXT, ctx_attr);
        if (ctx == EGL_NO_CONTEXT) {
                set(p, C_EXPORT, ST_FAIL, "eglCreateContext (GL ES 2) failed: %s", egl_err(p));
                return EGL_NO_CONTEXT;
        }
        if (!p->eglMakeCurrent(p->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
                set(p, C_EXPORT, ST_FAIL, "eglMakeCurrent without a surface failed: %s",
                    egl_err(p));
                p->eglDestroyContext(p->dpy, ctx);
                return EGL_NO_CONTEXT;
        }
        return ctx;
}

/* Two ways to get an exportable image, then the primary node; any one
 * proves the driver can hand out dmabufs. The texture path is what QEMU
 * does. */
static void try_exports(struct probe *p, const struct export_fns *f, const struct gl_fns *gl,
                        EGLContext ctx)
{
        const unsigned char *r = gl->get_string(PROBE_GL_RENDERER);
        const char *renderer = r ? (const char *)r : "?";
        char bo_msg[320], tex_msg[320], card_msg[320], card[64] = "";

        if (export_via_texture(p, f, gl, ctx, tex_msg, sizeof(tex_msg)))
                set(p, C_EXPORT, ST_PASS, "GL texture exported: %s; GL renderer %s", tex_msg,
                    renderer);
        else if (export_via_bo(p, f, p->dpy, p->gbm, bo_msg, sizeof(bo_msg)))
                set(p, C_EXPORT, ST_PASS,
                    "GBM bo exported: %s (GL texture path failed: %s); GL renderer %s", bo_msg,
                    tex_msg, renderer);
        else if (!p->no_primary &&
                 export_via_primary(p, f, card, sizeof(card), card_msg, sizeof(card_msg)))
                set(p, C_EXPORT, ST_PASS,
                    "GBM bo exported through the primary node %s: %s; the render node itself "
                    "cannot allocate with GL renderer %s (GL texture: %s; GBM bo: %s)",
                    card, card_msg, renderer, tex_msg, bo_msg);
        else if (p->no_primary)
                set(p, C_EXPORT, ST_FAIL,
                    "no dmabuf could be exported from %s: GL texture: %s; GBM bo: %s", p->device,
                    tex_msg, bo_msg);
        else
                set(p, C_EXPORT, ST_FAIL,
                    "no dmabuf could be exported: GL texture: %s; GBM bo: %s; primary node: %s",
                    tex_msg, bo_msg, card_msg);
}

static void check_export(struct probe *p)
{
        struct export_fns f = {};
        struct gl_fns gl = {};
        EGLContext ctx;

        if (!load_export_fns(p, &f) || !load_gl_fns(p, &gl))
                return;
        if ((ctx = make_surfaceless_context(p)) == EGL_NO_CONTEXT)
                return;
        try_exports(p, &f, &gl, ctx);
        p->eglMakeCurrent(p->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
        p->eglDestroyContext(p->dpy, ctx);
}

/* ---- output ------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *)s; c && *c; c++) {
                switch (*c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*c < 0x20 || *c == 0x7f)
                                fprintf(f, "\\u%04x", *c);
                        else
                                fputc(*c, f);
                }
        }
        fputc('"', f);
}

static const char *status_word(enum status s)
{
        return s == ST_PASS ? "pass" : s == ST_FAIL ? "fail" : "skip";
}

static void print_json(const struct probe *p, bool ok)
{
        printf("{\"ok\": %s, \"device\": ", ok ? "true" : "false");
        if (p->device[0])
                json_string(stdout, p->device);
        else
                fputs("null", stdout);
        fputs(", \"checks\": [", stdout);
        for (int i = 0; i < N_CHECKS; i++) {
                printf("%s\n  {\"name\": ", i ? "," : "");
                json_string(stdout, check_names[i]);
                printf(", \"ok\": %s, \"status\": \"%s\", \"detail\": ",
                       p->checks[i].status == ST_PASS ? "true" : "false",
                       status_word(p->checks[i].status));
                json_string(stdout, p->checks[i].detail);
                fputc('}', stdout);
        }
        fputs("\n]}\n", stdout);
}

static void print_text(const struct probe *p, bool quiet)
{
        for (int i = 0; i < N_CHECKS; i++) {
                const struct check *c = &p->checks[i];

                if (c->status == ST_PASS && !quiet)
                        printf("PASS %s %s\n", check_names[i], c->detail);
                else if (c->status == ST_FAIL)
                        printf("FAIL %s: %s\n", check_names[i], c->detail);
                else if (c->status == ST_SKIP && !quiet)
                        printf("SKIP %s: %s\n", check_names[i], c->detail);
        }
}

static void usage(FILE *f)
{
        fputs("usage: vgpuenv-probe [--device PATH] [--json] [--quiet]\n"
              "\n"
              "Checks that this node can give QEMU a GL display that exports dmabufs:\n"
              "  render-node    a DRM render node (/dev/dri/renderD*) opens read-write\n"
              "  gbm            libgbm.so.1 creates a GBM device on it\n"
              "  egl-init       libEGL.so.1 initializes on that GBM device\n"
              "  dmabuf-ext     EGL_MESA_image_dma_buf_export is offered\n"
              "  dmabuf-export  a GL texture is exported as a dmabuf (as QEMU does)\n"
              "\n"
              "  --device PATH  probe PATH instead of the first /dev/dri/renderD*\n"
              "  --json         print one JSON object instead of lines\n"
              "  --quiet        print only failures\n"
              "  --render-node-only  do not fall back to the primary node (cardN) for the\n"
              "                 dmabuf export when the render node cannot allocate\n"
              "  --help         this text\n"
              "\n"
              "Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.\n",
              f);
}

/* Parse the command line into p, *json and *quiet: -1 to go on, else the
 * exit status (0 for --help, 2 for bad usage). */
static int parse_args(int argc, char **argv, struct probe *p, bool *json, bool *quiet)
{
        enum { OPT_EGL_LIB = 0x100, OPT_GBM_LIB, OPT_GLES_LIB, OPT_ANY_DEVICE, OPT_RENDER_ONLY };
        static const struct option opts[] = {
            {"device", required_argument, NULL, 'd'},
            {"json", no_argument, NULL, 'j'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            /* Hidden, for tests: load another library name. */
            {"egl-lib", required_argument, NULL, OPT_EGL_LIB},
            {"gbm-lib", required_argument, NULL, OPT_GBM_LIB},
            {"gles-lib", required_argument, NULL, OPT_GLES_LIB},
            {"any-device", no_argument, NULL, OPT_ANY_DEVICE},
            {"render-node-only", no_argument, NULL, OPT_RENDER_ONLY},
            {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "d:jqh", opts, NULL)) >= 0) {
                switch (c) {
                case 'd':
                        p->device_opt = optarg;
                        break;
                case 'j':
                        *json = true;
                        break;
                case 'q':
                        *quiet = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case OPT_EGL_LIB:
                        p->egl_lib = optarg;
                        break;
                case OPT_GBM_LIB:
                        p->gbm_lib = optarg;
                        break;
                case OPT_GLES_LIB:
                        p->gles_lib = optarg;
                        break;
                case OPT_ANY_DEVICE:
                        p->any_device = true;
                        break;
                case OPT_RENDER_ONLY:
                        p->no_primary = true;
                        break;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vgpuenv-probe: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        if (p->device_opt && !*p->device_opt) {
                fprintf(stderr, "vgpuenv-probe: --device needs a path\n");
                return 2;
        }
        return -1;
}

int main(int argc, char **argv)
{
        struct probe p = {
            .gbm_lib = "libgbm.so.1",
            .egl_lib = "libEGL.so.1",
            .gles_lib = "libGLESv2.so.2",
            .fd = -1,
            .dpy = EGL_NO_DISPLAY,
        };
        bool json = false, quiet = false, ok = true;
        int rc = parse_args(argc, argv, &p, &json, &quiet);

        if (rc >= 0)
                return rc;
        /* Each check runs only when the one it builds on passed. */
        check_render_node(&p);
        if (p.checks[C_RENDER].status == ST_PASS)
                check_gbm(&p);
        if (p.checks[C_GBM].status == ST_PASS)
                check_egl(&p);
        if (p.checks[C_EGL].status == ST_PASS)
                check_ext(&p);
        if (p.checks[C_EXT].status == ST_PASS)
                check_export(&p);
        for (int i = 1; i < N_CHECKS; i++)
                if (p.checks[i].status == ST_NOT_RUN)
                        set(&p, i, ST_SKIP, "not run: %s did not pass", check_names[i - 1]);
        for (int i = 0; i < N_CHECKS; i++)
                ok = ok && p.checks[i].status == ST_PASS;

        if (json)
                print_json(&p, ok);
        else
                print_text(&p, quiet);

        /* Tear down in reverse order; mesa's atexit handlers expect it. */
        if (p.dpy != EGL_NO_DISPLAY)
                p.eglTerminate(p.dpy);
        if (p.gbm)
                p.gbm_device_destroy(p.gbm);
        if (p.fd >= 0)
                close(p.fd);
        fflush(stdout);
        return ok ? 0 : 1;
}
