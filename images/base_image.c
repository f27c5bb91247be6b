/* The default node base image: Debian bookworm built from the Debian mirror
 * alone (mmdebstrap), made into a qcow2 with one libguestfs appliance launch.
 *
 * The root file system fills the whole virtual disk (no partition table) and
 * nodes boot it with libvirt's direct kernel boot, using the kernel and
 * initrd copied out next to the disk: no bootloader to install or maintain,
 * and a few seconds less per boot under TCG. The initrd carries only the
 * virtio and ext4 modules (MODULES=list), which keeps it at ~6 MiB. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <guestfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"
#include "images/image_internal.h"
#include "provision/base/plan.h"

#define BASE_DISK_SIZE (4LL << 30) /* sparse; the root fs grows to the overlay */

static const char base_packages[] = "systemd-sysv,udev,kmod,openssh-server,openssh-sftp-server,"
                                    "linux-image-amd64,iproute2,e2fsprogs";

/* Files a node never needs: docs, translations, and driver trees for
 * hardware a VM does not have (they are most of the kernel's modules). */
static const char *const path_excludes[] = {
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/info/*",
    "/usr/lib/modules/*/kernel/drivers/net/wireless/*",
    "/usr/lib/modules/*/kernel/drivers/net/ethernet/*",
    "/usr/lib/modules/*/kernel/drivers/media/*",
    "/usr/lib/modules/*/kernel/drivers/infiniband/*",
    "/usr/lib/modules/*/kernel/drivers/gpu/drm/amd/*",
    "/usr/lib/modules/*/kernel/drivers/gpu/drm/nouveau/*",
    "/usr/lib/modules/*/kernel/drivers/gpu/drm/i915/*",
    "/usr/lib/modules/*/kernel/drivers/gpu/drm/radeon/*",
    "/usr/lib/modules/*/kernel/drivers/staging/*",
    "/usr/lib/modules/*/kernel/drivers/bluetooth/*",
    "/usr/lib/modules/*/kernel/sound/*",
    NULL,
};

/* Before the kernel is installed: a small initrd with what the VM needs to
 * mount its root. */
static const char essential_hook[] =
    "set -e; mkdir -p \"$1/etc/initramfs-tools/conf.d\"; "
    "echo MODULES=list > \"$1/etc/initramfs-tools/conf.d/vgpuenv.conf\"; "
    "printf 'virtio_pci\\nvirtio_blk\\nvirtio_net\\ncrc32c_generic\\next4\\n' >> "
    "\"$1/etc/initramfs-tools/modules\"";

/* After everything is installed: networking by DHCP (static leases from
 * libvirt), no host keys (each customization injects its own), root on the
 * whole disk growing to the overlay size, no timers that wake apt. */
static const char customize_hook[] =
    "set -e; r=\"$1\"; rm -f \"$r\"/etc/ssh/ssh_host_*; "
    "mkdir -p \"$r/etc/systemd/network\"; "
    "printf '[Match]\\nName=en*\\n\\n[Network]\\nDHCP=ipv4\\n' > "
    "\"$r/etc/systemd/network/80-vgpuenv.network\"; "
    "chroot \"$r\" systemctl enable systemd-networkd.service; "
    "chroot \"$r\" systemctl mask systemd-networkd-wait-online.service apt-daily.timer "
    "apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service getty-static.service "
    "fstrim.timer; "
    "printf '/dev/vda / ext4 defaults,x-systemd.growfs 0 1\\n' > \"$r/etc/fstab\"; "
    ": > \"$r/etc/machine-id\"; echo vgpuenv-node > \"$r/etc/hostname\"";

static int base_key(struct run_ctx *ctx, char out[65])
{
        _cleanup_free_ char *excl = strv_join((char **)path_excludes, "\n");
        _cleanup_free_ char *text = NULL;

        if (!excl)
                return -ENOMEM;
        text = strdup_printf("base-v1\n%s\n%s\n%s\n%s\n%s\n%lld\n", ctx->cfg->image.mirror,
                             base_packages, excl, essential_hook, customize_hook, BASE_DISK_SIZE);
        if (!text)
                return -ENOMEM;
        return sha256_hex(text, strlen(text), out);
}

static int run_mmdebstrap(struct step_run *sr, const char *tar)
{
        struct run_ctx *ctx = sr->ctx;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *include = strdup_printf("--include=%s", base_packages);
        _cleanup_free_ char *ess = strdup_printf("--essential-hook=%s", essential_hook);
        _cleanup_free_ char *cust = strdup_printf("--customize-hook=%s", customize_hook);

        if (!include || !ess || !cust)
                return -ENOMEM;
        if (strv_extend(&argv, "mmdebstrap") < 0 || strv_extend(&argv, "--variant=minbase") < 0 ||
            strv_extend(&argv, "--mode=root") < 0 ||
            strv_extend(&argv, "--skip=cleanup/apt/lists") < 0 || strv_extend(&argv, include) < 0 ||
            strv_extend(&argv, ess) < 0 || strv_extend(&argv, cust) < 0)
                return -ENOMEM;
        for (size_t i = 0; path_excludes[i]; i++)
                if (strv_push(&argv, strdup_printf("--dpkgopt=path-exclude=%s", path_excludes[i])) <
                    0)
                        return -ENOMEM;
        if (strv_extend(&argv, "bookworm") < 0 || strv_extend(&argv, tar) < 0 ||
            strv_extend(&argv, ctx->cfg->image.mirror) < 0)
                return -ENOMEM;
        log_info("    mmdebstrap: downloading and unpacking Debian bookworm (its output: the log)");
        return step_run_program_checked(
            sr, ctx->cfg->deadlines.mmdebstrap,
            "mmdebstrap building the Debian root file system (deadlines.mmdebstrap)", argv, NULL,
            NULL, NULL);
}

/* Copy the newest /boot/vmlinuz-* and its initrd out of the mounted image. */
static int extract_boot_files(guestfs_h *g, struct appliance *a, const char *dir)
{
        _cleanup_strv_free_ char **files = guestfs_ls(g, "/boot");
        const char *kernel = NULL;
        _cleanup_free_ char *kpath = NULL, *ipath = NULL, *kout = NULL, *iout = NULL;

        if (!files)
                return log_error_errno(EIO, "listing /boot in the image: %s", appliance_error(a));
        for (size_t i = 0; files[i]; i++)
                if (startswith(files[i], "vmlinuz-") &&
                    (!kernel || strverscmp(files[i], kernel) > 0))
                        kernel = files[i];
        if (!kernel)
                return log_error_errno(ENOENT, "the base image has no /boot/vmlinuz-*");
        kpath = strdup_printf("/boot/%s", kernel);
        ipath = strdup_printf("/boot/initrd.img-%s", kernel + strlen("vmlinuz-"));
        kout = strdup_printf("%s/vmlinuz", dir);
        iout = strdup_printf("%s/initrd.img", dir);
        if (!kpath || !ipath || !kout || !iout)
                return -ENOMEM;
        if (guestfs_download(g, kpath, kout) < 0 || guestfs_download(g, ipath, iout) < 0)
                return log_error_errno(EIO, "copying the kernel out of the image: %s",
                                       appliance_error(a));
        return 0;
}

static int fill_disk(struct step_run *sr, struct appliance *a, const char *tar, const char *dir)
{
        guestfs_h *g = appliance_handle(a);
        struct cancel call;
        int r = 0;

        appliance_begin(a, &call, sr->ctx->cfg->deadlines.appliance_call,
                        "the appliance writing the root file system (deadlines.appliance_call)");
        if (guestfs_mke2fs(g, "/dev/sda", GUESTFS_MKE2FS_FSTYPE, "ext4", GUESTFS_MKE2FS_LABEL,
                           "vgpuroot", -1) < 0 ||
            guestfs_mount(g, "/dev/sda", "/") < 0 || guestfs_tar_in(g, tar, "/") < 0)
                r = -EIO;
        if (r >= 0)
                r = extract_boot_files(g, a, dir);
        if (r >= 0 && (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0))
                r = -EIO;
        r = appliance_end(a, &call, r);
        if (r == -EIO)
                log_error("filling the base image: %s", appliance_error(a));
        return r;
}

static int make_disk(struct step_run *sr, enum accel_verdict accel, const char *tar,
                     const char *dir)
{
        _cleanup_free_ char *disk = strdup_printf("%s/disk.qcow2", dir);
        struct appliance *a = NULL;
        int r;

        if (!disk)
                return -ENOMEM;
        r = appliance_open(sr, accel, &a);
        if (r < 0)
                return r;
        guestfs_h *g = appliance_handle(a);
        if (guestfs_disk_create(g, disk, "qcow2", BASE_DISK_SIZE, -1) < 0 ||
            guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) < 0)
                r = log_error_errno(EIO, "creating %s: %s", disk, appliance_error(a));
        if (r >= 0)
                r = appliance_launch(a);
        if (r >= 0)
                r = fill_disk(sr, a, tar, dir);
        appliance_close(a);
        return r;
}

char *image_base_dir(struct run_ctx *ctx)
{
        char key[65];

        if (base_key(ctx, key) < 0)
                return NULL;
        return strdup_printf("%s/base/debian-bookworm-%.16s", ctx->cache_dir, key);
}

/* "NAME.tmp-PID" whose PID no longer runs. */
static bool stale_tmp(const char *name)
{
        const char *t = strstr(name, ".tmp-");
        unsigned long long pid;

        if (!t || parse_uint64(t + 5, 1, 4194304, &pid) < 0)
                return false;
        return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

void image_cache_sweep(struct run_ctx *ctx)
{
        static const char *const dirs[] = {"base", "images"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *dir = strdup_printf("%s/%s", ctx->cache_dir, dirs[i]);
                DIR *d = dir ? opendir(dir) : NULL;
                if (!d)
                        continue;
                for (struct dirent *e; (e = readdir(d));) {
                        if (!stale_tmp(e->d_name))
                                continue;
                        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, e->d_name);
                        if (p && rm_rf(p) >= 0)
                                log_notice("removed %s, left by a run that was killed", p);
                }
                closedir(d);
        }
}

struct base_job {
        struct run_ctx *ctx;
        const enum accel_verdict *accel;
        char *dir; /* the cache entry, owned by the plan */
};

static int build_base(struct step_run *sr, void *data)
{
        struct base_job *j = data;
        _cleanup_free_ char *disk = strdup_printf("%s/disk.qcow2", j->dir);
        _cleanup_free_ char *tmp = NULL, *tar = NULL; /* this run's work dir */
        int r;

        if (!disk)
                return -ENOMEM;
        image_cache_sweep(sr->ctx);
        if (file_exists(disk)) {
                log_info("    base image: cached %s", j->dir);
                return 0;
        }
        tmp = strdup_printf("%s.tmp-%d", j->dir, (int)getpid());
        tar = tmp ? strdup_printf("%s/rootfs.tar", tmp) : NULL;
        if (!tar)
                return -ENOMEM;
        r = mkdir_p(tmp, 0755);
        if (r < 0)
                return log_error_errno(r, "creating %s: %m", tmp);
        r = run_mmdebstrap(sr, tar);
        if (r >= 0)
                r = make_disk(sr, *j->accel, tar, tmp);
        if (r >= 0 && (r = step_check(sr)) >= 0) {
                unlink(tar);
                chmod(tmp, 0755);
                if (rename(tmp, j->dir) < 0) {
                        /* Another run built the same key meanwhile: use theirs. */
                        if (errno != ENOTEMPTY && errno != EEXIST)
                                r = log_error_errno(errno, "moving %s into place: %m", tmp);
                }
        }
        /* Nothing half-made stays: a failure or Ctrl-C removes the work dir
         * here, a kill -9 leaves it to the next run's sweep. */
        rm_rf(tmp);
        return r;
}

void image_plan_base(struct plan *p, struct run_ctx *ctx, const enum accel_verdict *accel,
                     char **ret_dir)
{
        struct base_job *j = plan_own(p, calloc(1, sizeof(struct base_job)), free);
        struct step *s;

        if (!j)
                return;
        j->ctx = ctx;
        j->accel = accel;
        j->dir = plan_own(p, image_base_dir(ctx), free);
        *ret_dir = j->dir;
        s = plan_add(p, "base-image", build_base, j);
        step_acts_on(s, "the image cache: %s", j->dir ? j->dir : "?");
        step_progress(s,
                      "Debian bookworm base image (cached; else mmdebstrap from %s and one "
                      "appliance launch)",
                      ctx->cfg->image.mirror);
        step_deadline(s, (double)ctx->cfg->deadlines.mmdebstrap +
                             ctx->cfg->deadlines.appliance_launch +
                             ctx->cfg->deadlines.appliance_call);
        step_undo(s, NULL,
                  "nothing: a finished image stays in the cache (content-addressed, "
                  "reused by later runs); a half-made one is removed at once");
}
