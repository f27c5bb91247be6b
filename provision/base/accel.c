/* KVM/TCG probe (see accel.h). */
#include "provision/base/accel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"

#define BIOS_SIZE 65536

/* Real-mode code at the reset vector (F000:FFF0): mov al,1; out 0xf4,al;
 * hlt; jmp $-1. isa-debug-exit turns the 1 into exit status (1<<1)|1 = 3. */
static const unsigned char reset_vector[] = {0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd};

static int write_bios(char **ret_path)
{
        _cleanup_free_ unsigned char *bios = calloc(1, BIOS_SIZE);
        char tmpl[] = "/tmp/vgpuenv-accel-XXXXXX";
        _cleanup_close_ int fd = mkstemp(tmpl);

        if (!bios)
                return -ENOMEM;
        if (fd < 0)
                return negative_errno();
        memcpy(bios + BIOS_SIZE - 16, reset_vector, sizeof(reset_vector));
        if (write(fd, bios, BIOS_SIZE) != BIOS_SIZE) {
                unlink(tmpl);
                return -EIO;
        }
        *ret_path = strdup(tmpl);
        return *ret_path ? 0 : -ENOMEM;
}

int accel_probe(const char *accel, double timeout, char **detail)
{
        _cleanup_free_ char *bios = NULL, *accel_arg = NULL;
        struct spawn_opts o = {.timeout = timeout, .capture_stdout = true, .capture_stderr = true};
        struct spawn_result res;
        int r;

        r = write_bios(&bios);
        if (r < 0)
                return r;
        accel_arg = strdup(accel);
        char *argv[] = {"qemu-system-x86_64",
                        "-accel",
                        accel_arg,
                        "-machine",
                        "pc",
                        "-cpu",
                        streq(accel, "kvm") ? "host" : "qemu64",
                        "-m",
                        "16",
                        "-display",
                        "none",
                        "-nodefaults",
                        "-no-user-config",
                        "-bios",
                        bios,
                        "-device",
                        "isa-debug-exit,iobase=0xf4,iosize=0x04",
                        NULL};
        r = spawn_run(argv, &o, &res);
        unlink(bios);
        if (r < 0)
                return r;
        if (detail)
                *detail = strdup(res.timed_out       ? "no progress within the time limit"
                                 : !isempty(res.err) ? strtok(res.err, "\n")
                                                     : "unexpected exit");
        r = res.timed_out ? -ETIMEDOUT : res.exit_code == 3 ? 0 : -ENODEV;
        spawn_result_done(&res);
        return r;
}

static char *verdict_cache_path(struct run_ctx *ctx)
{
        _cleanup_free_ char *boot_id = NULL;

        if (read_full_file("/proc/sys/kernel/random/boot_id", &boot_id, NULL) < 0)
                return NULL;
        boot_id[strcspn(boot_id, "\n")] = 0;
        return strdup_printf("%s/accel-%s", ctx->cache_dir, boot_id);
}

int accel_choose(struct run_ctx *ctx, enum accel_verdict *ret)
{
        _cleanup_free_ char *cache = NULL, *cached = NULL, *detail = NULL;
        int r;

        if (ctx->cfg->local.accel == ACCEL_TCG) {
                *ret = ACCEL_VERDICT_TCG;
                return 0;
        }
        cache = verdict_cache_path(ctx);
        if (ctx->cfg->local.accel == ACCEL_AUTO && cache &&
            read_full_file(cache, &cached, NULL) >= 0) {
                *ret = startswith(cached, "kvm") ? ACCEL_VERDICT_KVM : ACCEL_VERDICT_TCG;
                if (*ret == ACCEL_VERDICT_TCG)
                        log_notice("KVM does not work on this host (probed earlier this boot): "
                                   "using TCG, expect slower VMs");
                return 0;
        }
        if (access("/dev/kvm", R_OK | W_OK) < 0) {
                r = -ENODEV;
                detail = strdup("/dev/kvm is missing or not accessible");
        } else
                r = accel_probe("kvm", 3.0, &detail);
        if (r == 0)
                *ret = ACCEL_VERDICT_KVM;
        else if (ctx->cfg->local.accel == ACCEL_KVM)
                return log_error_errno(r, "local.accel is kvm but KVM does not work: %s",
                                       detail ? detail : "probe failed");
        else {
                *ret = ACCEL_VERDICT_TCG;
                log_notice("KVM does not work on this host (%s): using TCG, expect slower VMs",
                           detail ? detail : "probe failed");
        }
        if (cache && !ctx->dry_run && mkdir_p(ctx->cache_dir, 0755) >= 0)
                (void)write_file_atomic(cache, r == 0 ? "kvm\n" : "tcg\n", 4, 0644);
        return 0;
}
