/* The default node base image: Debian bookworm built from the Debian mirror
 * alone (mmdebstrap), made into a qcow2 with one libguestfs appliance launch.
 *
 * The root file system fills the whole virtual disk (no partition table) and
 * nodes boot it with libvirt's direct kernel boot, using the kernel and
 * initrd copied out next to the disk: no bootloader to install or maintain,
 * and a few seconds less per boot under TCG. The initrd carries only the
 * virtio and ext4 modules (MODULES=list), which keeps it at ~6 MiB. */
#include <errno.h>
#include <guestfs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "images/image.h"

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

static int run_mmdebstrap(struct run_ctx *ctx, const char *tar)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *include = strdup_printf("--include=%s", base_packages);
        _cleanup_free_ char *ess = strdup_printf("--essential-hook=%s", essential_hook);
        _cleanup_free_ char *cust = strdup_printf("--customize-hook=%s", customize_hook);
        struct heartbeat *hb;
        int r;

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
        hb = ctx->dry_run ? NULL : heartbeat_start("mmdebstrap: downloading and unpacking", 15);
        r = ctx_run(ctx, "building the Debian root file system (mmdebstrap)", argv, NULL, NULL,
                    NULL);
        heartbeat_stop(hb);
        return r;
}

/* Copy the newest /boot/vmlinuz-* and its initrd out of the mounted image. */
static int extract_boot_files(guestfs_h *g, const char *dir)
{
        _cleanup_strv_free_ char **files = guestfs_ls(g, "/boot");
        const char *kernel = NULL;
        _cleanup_free_ char *kpath = NULL, *ipath = NULL, *kout = NULL, *iout = NULL;

        if (!files)
                return log_error_errno(EIO, "listing /boot in the image: %s",
                                       image_guestfs_error(g));
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
                                       image_guestfs_error(g));
        return 0;
}

static int make_disk(struct run_ctx *ctx, const char *tar, const char *dir)
{
        _cleanup_free_ char *disk = strdup_printf("%s/disk.qcow2", dir);
        guestfs_h *g = NULL;
        struct step s;
        int r;

        if (!disk)
                return -ENOMEM;
        r = image_guestfs_open(ctx, &g);
        if (r < 0)
                return r;
        if (guestfs_disk_create(g, disk, "qcow2", BASE_DISK_SIZE, -1) < 0 ||
            guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) < 0) {
                r = log_error_errno(EIO, "creating %s: %s", disk, image_guestfs_error(g));
                goto out;
        }
        s = step_begin("launching the libguestfs appliance");
        r = guestfs_launch(g) < 0 ? -EIO : 0;
        step_end(&s, r);
        if (r < 0) {
                log_error("libguestfs appliance: %s", image_guestfs_error(g));
                goto out;
        }
        s = step_begin("writing the root file system into the qcow2");
        if (guestfs_mke2fs(g, "/dev/sda", GUESTFS_MKE2FS_FSTYPE, "ext4", GUESTFS_MKE2FS_LABEL,
                           "vgpuroot", -1) < 0 ||
            guestfs_mount(g, "/dev/sda", "/") < 0 || guestfs_tar_in(g, tar, "/") < 0)
                r = log_error_errno(EIO, "filling the base image: %s", image_guestfs_error(g));
        step_end(&s, r);
        if (r >= 0)
                r = extract_boot_files(g, dir);
        if (r >= 0 && (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0))
                r = log_error_errno(EIO, "closing the base image: %s", image_guestfs_error(g));
out:
        guestfs_close(g);
        return r;
}

int image_build_base(struct run_ctx *ctx, char **ret_dir)
{
        char key[65];
        _cleanup_free_ char *dir = NULL, *tmp = NULL, *tar = NULL, *disk = NULL;
        struct step s;
        int r;

        r = base_key(ctx, key);
        if (r < 0)
                return r;
        dir = strdup_printf("%s/base/debian-bookworm-%.16s", ctx->cache_dir, key);
        tmp = strdup_printf("%s.tmp-%d", dir, (int)getpid());
        disk = strdup_printf("%s/disk.qcow2", dir);
        if (!dir || !tmp || !disk)
                return -ENOMEM;
        if (file_exists(disk)) {
                log_info("base image: cached %s", dir);
                *ret_dir = TAKE_PTR(dir);
                return 0;
        }
        if (ctx->dry_run) {
                ctx_plan(ctx,
                         "image: build base image %s (mmdebstrap bookworm from %s, then one "
                         "appliance launch)",
                         dir, ctx->cfg->image.mirror);
                *ret_dir = TAKE_PTR(dir);
                return 0;
        }
        s = step_begin("building the base image (Debian bookworm)");
        r = mkdir_p(tmp, 0755);
        if (r < 0) {
                log_error_errno(r, "creating %s: %m", tmp);
                goto fail;
        }
        tar = strdup_printf("%s/rootfs.tar", tmp);
        if (!tar) {
                r = -ENOMEM;
                goto fail;
        }
        r = run_mmdebstrap(ctx, tar);
        if (r < 0)
                goto fail;
        if (ctx_cancelled(ctx)) {
                r = -ECANCELED;
                goto fail;
        }
        r = make_disk(ctx, tar, tmp);
        if (r < 0)
                goto fail;
        unlink(tar);
        chmod(tmp, 0755);
        if (rename(tmp, dir) < 0) {
                /* Another run built the same key meanwhile: use theirs. */
                if (errno != ENOTEMPTY && errno != EEXIST) {
                        r = log_error_errno(errno, "moving %s into place: %m", tmp);
                        goto fail;
                }
                rm_rf(tmp);
        }
        step_end(&s, 0);
        *ret_dir = TAKE_PTR(dir);
        return 0;
fail:
        step_end(&s, r);
        rm_rf(tmp);
        return r;
}
