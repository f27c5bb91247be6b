/* The KVM/TCG verdict (see accel.h): a kernel booted under KVM with a tiny
 * initramfs, watched on the serial console, cached per host boot. */
#include "provision/base/accel.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/plan.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

void accel_evidence_done(struct accel_evidence *e)
{
        if (!e)
                return;
        FREE_ALL(e->command, e->kernel, e->output, e->reason);
        *e = (struct accel_evidence){0};
}

/* The newest readable /boot/vmlinuz-*: make deps installs Debian's. */
static char *find_kernel(void)
{
        struct dirent **ents = NULL;
        int n = scandir("/boot", &ents, NULL, NULL);
        const char *best = NULL;
        char *path = NULL;

        for (int i = 0; i < n; i++) {
                const char *name = ents[i]->d_name;
                if (!startswith(name, "vmlinuz-") || (best && strverscmp(name, best) <= 0))
                        continue;
                _cleanup_free_ char *p = strdup_printf("/boot/%s", name);
                if (p && access(p, R_OK) == 0)
                        best = name;
        }
        if (best)
                path = strdup_printf("/boot/%s", best);
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);
        return path;
}

/* One entry of a cpio "newc" archive, the format the kernel unpacks an
 * initramfs from (Documentation/driver-api/early-userspace/buffer-format). */
static int cpio_entry(struct buf *b, unsigned ino, const char *name, unsigned mode, unsigned rmajor,
                      unsigned rminor, const void *data, size_t size)
{
        static const char zeros[4] = {0};
        size_t namesize = strlen(name) + 1;
        int r = buf_printf(b, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino,
                           mode, 0u, 0u, 1u, 0u, size, 0u, 0u, rmajor, rminor, namesize, 0u);

        if (r >= 0)
                r = buf_append(b, name, namesize);
        if (r >= 0)
                r = buf_append(b, zeros, (4 - b->len % 4) % 4);
        if (r >= 0 && size)
                r = buf_append(b, data, size);
        if (r >= 0)
                r = buf_append(b, zeros, (4 - b->len % 4) % 4);
        return r;
}

static int write_initramfs(const char *init_bin, const char *path)
{
        _cleanup_free_ char *init = NULL;
        _cleanup_buf_ struct buf b = {0};
        size_t size = 0;
        int r = read_full_file(init_bin, &init, &size);

        if (r < 0)
                return log_error_errno(r, "cannot read %s (run make): %m", init_bin);
        if ((r = cpio_entry(&b, 1, "dev", 040755, 0, 0, NULL, 0)) < 0 ||
            (r = cpio_entry(&b, 2, "dev/console", 020600, 5, 1, NULL, 0)) < 0 ||
            (r = cpio_entry(&b, 3, "init", 0100755, 0, 0, init, size)) < 0 ||
            (r = cpio_entry(&b, 4, "TRAILER!!!", 0, 0, 0, NULL, 0)) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        r = write_file_atomic(path, b.data, b.len, 0644);
        return r < 0 ? log_error_errno(r, "cannot write %s: %m", path) : 0;
}

struct console_watch {
        struct buf seen;
        struct cancel *stop;
        bool marker;
};

/* Output as it comes: the marker ends the probe at once. */
static void on_console(void *u, int stream, const char *data, size_t n)
{
        struct console_watch *w = u;

        (void)stream;
        (void)buf_append(&w->seen, data, n);
        if (!w->marker && w->seen.data && strstr(w->seen.data, ACCEL_PROBE_MARKER)) {
                w->marker = true;
                cancel_fire(w->stop, ESHUTDOWN);
        }
}

static char *last_lines(const char *text, unsigned lines)
{
        const char *p = text ? text + strlen(text) : NULL;
        unsigned k = 0;

        if (!p)
                return strdup("");
        while (p > text && p[-1] == '\n')
                p--;
        const char *end = p;
        while (p > text && k < lines)
                if (*--p == '\n')
                        k++;
        if (*p == '\n')
                p++;
        return strndup(p, (size_t)(end - p));
}

int accel_probe_kernel(struct run_ctx *ctx, const char *accel, double timeout,
                       const struct cancel *cancel, struct accel_evidence *ev)
{
        _cleanup_free_ char *init = strdup_printf("%s/vgpuenv-kvm-init", ctx->build_dir);
        char initrd[] = "/tmp/vgpuenv-kvm-probe-XXXXXX";
        _cleanup_close_ int fd = mkstemp(initrd);
        _cleanup_proc_result_ struct proc_result res = {0};
        struct console_watch w = {0};
        struct cancel stop;
        int r;

        *ev = (struct accel_evidence){.verdict = ACCEL_VERDICT_TCG};
        if (!init || fd < 0)
                return log_error_errno(fd < 0 ? errno : ENOMEM, "cannot make the probe: %m");
        ev->kernel = find_kernel();
        if (!ev->kernel) {
                unlink(initrd);
                ev->reason = strdup("no kernel under /boot to boot (install linux-image-amd64)");
                return -ENOENT;
        }
        r = write_initramfs(init, initrd);
        if (r < 0) {
                unlink(initrd);
                return r;
        }
        /* -cpu host under KVM, as the libguestfs appliance runs; quiet so
         * the console carries little besides our marker. */
        char *argv[] = {"qemu-system-x86_64",
                        "-accel",
                        (char *)accel,
                        "-cpu",
                        streq(accel, "kvm") ? "host" : "max",
                        "-machine",
                        "pc",
                        "-m",
                        "256",
                        "-nodefaults",
                        "-no-user-config",
                        "-display",
                        "none",
                        "-serial",
                        "stdio",
                        "-no-reboot",
                        "-kernel",
                        ev->kernel,
                        "-initrd",
                        initrd,
                        "-append",
                        "console=ttyS0 quiet panic=-1 rdinit=/init",
                        NULL};
        ev->command = shell_join(argv);
        cancel_init_child(&stop, cancel, timeout, "the KVM probe");
        w.stop = &stop;
        struct proc_opts o = {.argv = argv,
                              .out = PROC_DISCARD,
                              .err = PROC_DISCARD,
                              .log_fd = ctx->log_fd,
                              .log_prefix = "kvm-probe",
                              .on_output = on_console,
                              .userdata = &w,
                              .cancel = &stop,
                              .kill_grace = 0.5};
        r = proc_run(&o, &res);
        unlink(initrd);
        ev->seconds = res.elapsed;
        ev->output = last_lines(w.seen.data, 8);
        buf_done(&w.seen);
        if (r < 0) {
                ev->reason = strdup_printf("cannot run qemu-system-x86_64: %s", strerror(-r));
                return r == -ENOENT ? -ENOENT : -ENODEV;
        }
        if (w.marker) {
                ev->verdict = streq(accel, "kvm") ? ACCEL_VERDICT_KVM : ACCEL_VERDICT_TCG;
                ev->reason = strdup_printf("%s booted %s to its init in %.1fs", accel, ev->kernel,
                                           ev->seconds);
                return 0;
        }
        if (res.stopped_by == -ECANCELED) {
                ev->reason = strdup("interrupted");
                return -ECANCELED;
        }
        if (res.stopped_by == -ETIMEDOUT) {
                ev->reason = strdup_printf("%s did not boot %s to its init within %.0fs (it ran "
                                           "but printed no %s)",
                                           accel, ev->kernel, timeout, ACCEL_PROBE_MARKER);
                return -ETIMEDOUT;
        }
        ev->reason = strdup_printf("qemu -accel %s exited with %d before the kernel's init ran",
                                   accel, res.exit_code);
        return -ENODEV;
}

static char *cache_path(struct run_ctx *ctx)
{
        _cleanup_free_ char *boot_id = NULL;

        if (read_full_file("/proc/sys/kernel/random/boot_id", &boot_id, NULL) < 0)
                return NULL;
        boot_id[strcspn(boot_id, "\n")] = 0;
        return strdup_printf("%s/accel-%s.json", ctx->cache_dir, boot_id);
}

static const char *json_str(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int read_cache(const char *path, struct accel_evidence *ev)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_(cJSON_Deletep) cJSON *j = NULL;
        const char *v;

        if (read_full_file(path, &text, NULL) < 0 || !(j = cJSON_Parse(text)))
                return -ENOENT;
        v = json_str(j, "verdict");
        if (!v || (!streq(v, "kvm") && !streq(v, "tcg")))
                return -EBADMSG; /* an older or foreign file: probe again */
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(j, "seconds");
        *ev = (struct accel_evidence){
            .verdict = streq(v, "kvm") ? ACCEL_VERDICT_KVM : ACCEL_VERDICT_TCG,
            .command = json_str(j, "command") ? strdup(json_str(j, "command")) : NULL,
            .kernel = json_str(j, "kernel") ? strdup(json_str(j, "kernel")) : NULL,
            .output = json_str(j, "output") ? strdup(json_str(j, "output")) : NULL,
            .reason = json_str(j, "reason") ? strdup(json_str(j, "reason")) : NULL,
            .seconds = cJSON_IsNumber(secs) ? secs->valuedouble : 0,
            .cached = true,
        };
        return 0;
}

static void write_cache(struct run_ctx *ctx, const char *path, const struct accel_evidence *ev)
{
        _cleanup_(cJSON_Deletep) cJSON *j = cJSON_CreateObject();
        _cleanup_free_ char *text = NULL;

        if (!j || !path || mkdir_p(ctx->cache_dir, 0755) < 0)
                return;
        cJSON_AddStringToObject(j, "verdict", ev->verdict == ACCEL_VERDICT_KVM ? "kvm" : "tcg");
        cJSON_AddStringToObject(j, "kernel", ev->kernel ? ev->kernel : "");
        cJSON_AddStringToObject(j, "command", ev->command ? ev->command : "");
        cJSON_AddNumberToObject(j, "seconds", ev->seconds);
        cJSON_AddStringToObject(j, "output", ev->output ? ev->output : "");
        cJSON_AddStringToObject(j, "reason", ev->reason ? ev->reason : "");
        text = cJSON_Print(j);
        if (text)
                (void)write_file_atomic(path, text, strlen(text), 0644);
}

int accel_choose(struct run_ctx *ctx, const struct cancel *cancel, enum accel_verdict *ret,
                 struct accel_evidence *ev_out)
{
        struct accel_evidence ev = {0};
        _cleanup_free_ char *cache = NULL;
        int mode = ctx->cfg->local.accel, r;

        if (mode == ACCEL_TCG) {
                *ret = ACCEL_VERDICT_TCG;
                if (ev_out)
                        *ev_out = (struct accel_evidence){.verdict = ACCEL_VERDICT_TCG,
                                                          .reason = strdup("local.accel is tcg")};
                return 0;
        }
        cache = cache_path(ctx);
        if (mode == ACCEL_AUTO && cache && read_cache(cache, &ev) == 0)
                goto done;
        if (access("/dev/kvm", R_OK | W_OK) < 0) {
                ev = (struct accel_evidence){.verdict = ACCEL_VERDICT_TCG,
                                             .reason = strdup("/dev/kvm is missing or not "
                                                              "accessible")};
                r = -ENODEV;
        } else
                r = accel_probe_kernel(ctx, "kvm", ctx->cfg->deadlines.kvm_probe, cancel, &ev);
        if (r == -ECANCELED) {
                accel_evidence_done(&ev);
                return r;
        }
        if (mode == ACCEL_KVM && ev.verdict != ACCEL_VERDICT_KVM) {
                r = log_error_errno(
                    ENODEV, "local.accel is kvm but KVM does not work here: %s%s%s%s%s",
                    ev.reason ? ev.reason : "the probe failed", ev.command ? "\n  ran: " : "",
                    ev.command ? ev.command : "", !isempty(ev.output) ? "\n  it printed:\n" : "",
                    !isempty(ev.output) ? ev.output : "");
                accel_evidence_done(&ev);
                return r;
        }
        write_cache(ctx, cache, &ev);
done:
        *ret = ev.verdict;
        if (ev.verdict == ACCEL_VERDICT_TCG)
                log_notice("KVM is not used: %s%s; TCG, expect slower VMs", ev.reason,
                           ev.cached ? " (probed earlier this boot)" : "");
        else
                log_info("KVM works: %s", ev.reason ? ev.reason : "");
        if (ev_out)
                *ev_out = ev;
        else
                accel_evidence_done(&ev);
        return 0;
}

static int run_verdict(struct step_run *sr, void *data)
{
        step_waiting(sr, "a kernel booted under KVM to reach its init");
        return accel_choose(sr->ctx, &sr->cancel, data, NULL);
}

void accel_plan(struct plan *p, struct run_ctx *ctx, enum accel_verdict *ret)
{
        struct step *s = plan_add(p, "kvm-verdict", run_verdict, ret);
        const char *mode = ctx->cfg->local.accel == ACCEL_TCG   ? "tcg"
                           : ctx->cfg->local.accel == ACCEL_KVM ? "kvm"
                                                                : "auto";

        step_acts_on(s, "/dev/kvm and this host's kernel (local.accel: %s)", mode);
        step_progress(s, "deciding between KVM and TCG: %s",
                      ctx->cfg->local.accel == ACCEL_TCG
                          ? "TCG, as configured"
                          : "booting this host's kernel under KVM (cached per boot)");
        /* The probe's own deadline, plus QEMU's start and the grace to stop it. */
        step_deadline(s, ctx->cfg->deadlines.kvm_probe + 30.0);
}
