/* The fake vGPU on this machine for the Kind provider, whose nodes are
 * containers sharing this host's kernel: the step of kind's up plan (build,
 * load, check; its undo unloads what this run loaded) and of its down plan,
 * and the struct node_io over ssh and over this host that `vgpuenv vgpu`
 * and verify-display use (see vgpu.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/plan.h"
#include "provision/base/ssh.h"
#include "provision/base/state.h"
#include "provision/vgpu/vgpu.h"

/* The state's record of a module this cluster's `up` loaded. */
#define HOST_RESOURCE "host-kernel-module"

/* ---- node_io over ssh and over this host ----------------------------------- */

static int ssh_run(void *u, char *const *argv, struct proc_result *ret)
{
        return ssh_node_run(u, argv, ret);
}
static int ssh_script(void *u, const char *script, struct proc_result *ret)
{
        return ssh_node_run_script(u, script, ret);
}
static int ssh_upload_data(void *u, const void *data, size_t size, const char *remote, mode_t mode)
{
        return ssh_node_upload_data(u, data, size, remote, mode);
}
static int ssh_upload(void *u, const char *local, const char *remote, mode_t mode)
{
        return ssh_node_upload(u, local, remote, mode);
}

void vgpu_ssh_io(struct ssh_node *n, const struct cancel *cancel, struct node_io *ret)
{
        *ret = (struct node_io){
            .userdata = n,
            .run = ssh_run,
            .run_script = ssh_script,
            .upload_data = ssh_upload_data,
            .upload = ssh_upload,
            .cancel = cancel,
        };
}

/* Every host command has a deadline of its own inside the caller's, the
 * in-place build included. */
#define LOCAL_TIMEOUT 900

static int local_run(void *u, char *const *argv, struct proc_result *ret)
{
        struct cancel c;

        cancel_init_child(&c, u, LOCAL_TIMEOUT, "a command on this host");
        struct proc_opts o = {
            .argv = argv, .out = PROC_CAPTURE, .err = PROC_CAPTURE, .log_fd = -1, .cancel = &c};
        int r = proc_run(&o, ret);
        return r < 0 ? r : ret->stopped_by;
}
static int local_script(void *u, const char *script, struct proc_result *ret)
{
        char *const argv[] = {"sh", "-c", (char *)script, NULL};
        return local_run(u, argv, ret);
}
static int local_upload_data(void *u, const void *data, size_t size, const char *path, mode_t mode)
{
        _cleanup_free_ char *dir = strdup(path);
        (void)u;
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        int r = mkdir_p(dir, 0755);
        return r < 0 ? r : write_file_atomic(path, data, size, mode);
}
static int local_upload(void *u, const char *from, const char *to, mode_t mode)
{
        _cleanup_free_ char *dir = strdup(to);
        (void)u;
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        int r = mkdir_p(dir, 0755);
        return r < 0 ? r : copy_file(from, to, mode);
}

void vgpu_local_io(const struct cancel *cancel, struct node_io *ret)
{
        *ret = (struct node_io){
            .userdata = (void *)cancel,
            .run = local_run,
            .run_script = local_script,
            .upload_data = local_upload_data,
            .upload = local_upload,
            .cancel = cancel,
        };
}

/* ---- the Kind host ------------------------------------------------------- */

static void print_row(const cJSON *verdict)
{
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(verdict, "checks"))
        {
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "detail");
                const cJSON *ok = cJSON_GetObjectItemCaseSensitive(c, "ok");
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
                fprintf(stderr, "%-24s %-34s %-6s %s\n", "host", "vgpu",
                        cJSON_IsString(st) ? "skip"
                        : cJSON_IsTrue(ok) ? "ok"
                                           : "FAIL",
                        cJSON_IsString(d) ? d->valuestring : "");
        }
}

/* Tests (tests/run.sh) forbid it: a module bug must not take the machine
 * that runs them down. The Kind host is tested in a node. */
static bool host_kernel_forbidden(void)
{
        const char *no = getenv("VGPUENV_NO_HOST_KERNEL");
        return no && streq(no, "1");
}

#define FORBIDDEN_WHY                                                                              \
        "VGPUENV_NO_HOST_KERNEL=1: not loading " VGPU_MODULE " into this machine's kernel"

int vgpu_host_load(const struct cancel *cancel, struct state *st, enum vgpu_mode mode)
{
        struct node_io io;
        cJSON *verdict;
        int r;

        if (mode != VGPU_DMABUF && mode != VGPU_REGION) {
                log_info("host: vgpu: %s: no fake vGPU is loaded", vgpu_names[mode]);
                return 0;
        }
        if (host_kernel_forbidden()) {
                log_notice("host: " FORBIDDEN_WHY " (vgpu: %s)", vgpu_names[mode]);
                return 0;
        }
        if (geteuid() != 0)
                return log_error_errno(-EPERM, "loading the fake vGPU into this host's kernel for "
                                               "Kind needs root (or set vgpu: none)");
        vgpu_local_io(cancel, &io);
        bool was_loaded = access("/sys/module/" VGPU_MODULE, F_OK) == 0;
        verdict = cJSON_CreateObject();
        if (!verdict)
                return -ENOMEM;
        cJSON_AddStringToObject(verdict, "node", "host");
        r = vgpu_apply(&io, "host", mode, true, verdict);
        print_row(verdict);
        cJSON_Delete(verdict);
        /* Recorded only when this run loaded it, so down and the undo leave
         * a module someone else loaded alone. */
        if (r >= 0 && !was_loaded && st &&
            (r = state_add_resource(st, HOST_RESOURCE, VGPU_MODULE)) < 0)
                return log_error_errno(r, "saving the state file: %m");
        if (r == -EIO)
                return log_error_errno(r, "host: the fake vGPU is not ready (see the vgpu row)");
        return r;
}

static int host_remove(const struct cancel *cancel, struct state *st)
{
        _cleanup_free_ char *out = NULL, *e = NULL;
        struct node_io io;
        int r;

        vgpu_local_io(cancel, &io);
        r = vgpu_node_verb(&io, "host", &out, "remove", NULL);
        if (r < 0)
                return r;
        if (r != 0) {
                e = vgpu_kv(out, "error");
                return log_error_errno(-EBUSY, "host: %s stays loaded: %s", VGPU_MODULE,
                                       e ? e : out);
        }
        log_info("host: %s unloaded and uninstalled", VGPU_MODULE);
        state_drop_resource(st, HOST_RESOURCE, VGPU_MODULE);
        return state_save(st);
}

static int run_host_load(struct step_run *sr, void *data)
{
        (void)data;
        step_waiting(sr, "the build and load of %s on this host", VGPU_MODULE);
        return vgpu_host_load(&sr->cancel, sr->st, config_vgpu_mode(sr->ctx->cfg));
}

static int undo_host_load(struct step_run *sr, void *data)
{
        (void)data;
        if (!state_resource_is_ours_this_run(sr->st, HOST_RESOURCE, VGPU_MODULE))
                return 0;
        return host_remove(&sr->cancel, sr->st);
}

static int run_host_remove(struct step_run *sr, void *data)
{
        (void)data;
        return host_remove(&sr->cancel, sr->st);
}

int vgpu_host_plan_up(struct plan *p, struct run_ctx *ctx)
{
        enum vgpu_mode mode = config_vgpu_mode(ctx->cfg);
        struct step *s;

        if (mode != VGPU_DMABUF && mode != VGPU_REGION)
                return 0; /* vgpu: none or host: this host's kernel is left alone */
        s = plan_add(p, "host-vgpu", run_host_load, NULL);
        step_acts_on(s, "this host's kernel (Kind's nodes share it): module %s", VGPU_MODULE);
        step_progress(s, "fake NVIDIA T4 vGPU %s on this host, display %s", VGPU_MODULE,
                      vgpu_names[mode]);
        step_deadline(s, vgpu_node_deadline(ctx->cfg));
        step_undo(s, undo_host_load, "unload and uninstall %s, if this run loaded it", VGPU_MODULE);
        step_detail(s,
                    "build %s.ko for this host's kernel (Kind nodes share it), load it with "
                    "display=%s (virtual parent when no pci-testdev), check types %s and %s: "
                    "sh %s facts, install, load %s, check (as root)",
                    VGPU_MODULE, vgpu_names[mode], VGPU_TYPE_1B, VGPU_TYPE_2B, VGPU_NODE_SCRIPT,
                    vgpu_names[mode]);
        if (host_kernel_forbidden())
                step_skip(s, FORBIDDEN_WHY);
        return plan_error(p);
}

int vgpu_host_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        struct step *s;

        if (!state_has_resource(st, HOST_RESOURCE, VGPU_MODULE))
                return 0;
        s = plan_add(p, "host-vgpu-remove", run_host_remove, NULL);
        step_acts_on(s, "this host's kernel: module %s (this cluster's up loaded it)", VGPU_MODULE);
        step_progress(s, "unloading and uninstalling %s", VGPU_MODULE);
        step_deadline(s, ctx->cfg->deadlines.node_command);
        step_undo(s, NULL, "nothing: an unloaded module stays out");
        step_detail(s, "sh %s remove (refused while mdev instances exist)", VGPU_NODE_SCRIPT);
        return plan_error(p);
}
