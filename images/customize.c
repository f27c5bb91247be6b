/* Customizing a base image for vgpuenv nodes, in ONE libguestfs appliance
 * launch, cached by content.
 *
 * The cache key covers everything that changes the result: the base image's
 * digest, the distro family, the package set, the profile, the authorized key
 * and the customization script itself. A hit returns without launching the
 * appliance. The result is a qcow2 overlay on the base, written to a
 * temporary directory and renamed into place, so an interrupted run never
 * leaves a half-made cache entry. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
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
#include "provision/base/node_files.h"
#include "provision/base/ssh.h"

/* Bump when the customization steps change, to invalidate cached images. */
#define CUSTOMIZE_VERSION "custom-v3"
#define GUEST_PKG_DIR "/var/tmp/vgpuenv-pkgs"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

void node_image_done(struct node_image *img)
{
        FREE_ALL(img->disk, img->kernel, img->initrd, img->root_arg, img->host_key_pub,
                 img->identity, img->key);
        *img = (struct node_image){0};
}

/* Packages a profile adds on top of mesa (the display profile runs libvirt
 * and QEMU inside the node for the display-chain proof). */
static char **profile_packages(const struct config *c, enum distro_family family)
{
        _cleanup_strv_free_ char **l = strv_copy(config_mesa_packages(c, family));

        if (!l)
                return NULL;
        if (c->image.profile == PROFILE_DISPLAY) {
                static const char *const deb[] = {"libvirt-daemon-system", "libvirt-clients",
                                                  "qemu-system-x86",       "qemu-utils",
                                                  "mesa-utils-bin",        NULL};
                static const char *const rpm[] = {"libvirt-daemon-kvm", "libvirt-client",
                                                  "qemu-kvm",           "qemu-ui-egl-headless",
                                                  "mesa-demos",         NULL};
                for (const char *const *p = family == FAMILY_RHEL ? rpm : deb; *p; p++)
                        if (strv_extend(&l, *p) < 0)
                                return NULL;
        }
        for (size_t i = 0; c->image.extra_packages && c->image.extra_packages[i]; i++)
                if (strv_extend(&l, c->image.extra_packages[i]) < 0)
                        return NULL;
        return TAKE_PTR(l);
}

/* Names and sizes of the local package files, for the cache key. */
static char *local_dir_fingerprint(const char *dir)
{
        _cleanup_strv_free_ char **l = NULL;
        struct dirent **ents = NULL;
        int n;

        if (isempty(dir))
                return strdup("-");
        n = scandir(dir, &ents, NULL, alphasort);
        if (n < 0)
                return NULL;
        for (int i = 0; i < n; i++) {
                struct stat st;
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, ents[i]->d_name);
                if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode))
                        strv_push(&l, strdup_printf("%s:%lld:%lld", ents[i]->d_name,
                                                    (long long)st.st_size, (long long)st.st_mtime));
                free(ents[i]);
        }
        free(ents);
        return l ? strv_join(l, ",") : strdup("-");
}

int image_user_identity(struct run_ctx *ctx, char **ret_path, char **ret_pub)
{
        _cleanup_free_ char *path = NULL, *pub_path = NULL, *pub = NULL, *dir = NULL;
        int r;

        if (!isempty(ctx->cfg->ssh.key))
                path = strdup(ctx->cfg->ssh.key);
        else {
                dir = strdup_printf("%s/keys", ctx->cache_dir);
                path = strdup_printf("%s/id_ed25519", dir);
        }
        if (!path)
                return -ENOMEM;
        pub_path = strdup_printf("%s.pub", path);
        if (!pub_path)
                return -ENOMEM;
        if (!file_exists(path)) {
                if (!dir)
                        return log_error_errno(ENOENT, "ssh.key %s does not exist", path);
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return log_error_errno(r, "creating %s: %m", dir);
                r = ssh_keygen(path, "vgpuenv", &pub);
                if (r < 0)
                        return log_error_errno(r, "generating an ssh key at %s: %m", path);
        } else {
                r = ssh_read_pubkey(pub_path, &pub);
                if (r < 0)
                        return log_error_errno(r, "ssh.key %s needs its public key at %s: %m", path,
                                               pub_path);
        }
        *ret_path = TAKE_PTR(path);
        *ret_pub = TAKE_PTR(pub);
        return 0;
}

static enum distro_family family_of_distro(const char *distro)
{
        static const char *const rhel[] = {"rhel",      "centos",      "fedora",       "rocky",
                                           "almalinux", "oraclelinux", "redhat-based", NULL};

        for (size_t i = 0; rhel[i]; i++)
                if (streq(distro, rhel[i]))
                        return FAMILY_RHEL;
        return FAMILY_DEBIAN;
}

/* The package installation, run inside the image by the appliance. Every
 * name from the config is shell-quoted. */
static char *install_script(const struct config *c, enum distro_family family, char **pkgs,
                            bool local)
{
        _cleanup_free_ char *names = NULL;

        if (local)
                names =
                    strdup(family == FAMILY_RHEL ? GUEST_PKG_DIR "/*.rpm" : GUEST_PKG_DIR "/*.deb");
        else
                names = shell_join(pkgs);
        if (!names)
                return NULL;
        (void)c;
        if (family == FAMILY_RHEL)
                return strdup_printf("set -e\n"
                                     "dnf install -y -q --setopt=install_weak_deps=False "
                                     "--setopt=tsflags=nodocs %s%s\n"
                                     "dnf clean all >/dev/null\nrm -rf " GUEST_PKG_DIR "\n",
                                     local ? "--disablerepo='*' " : "", names);
        /* Lists in our base image are usually fresh enough: try without
         * 'apt-get update' first, which saves a slow index download and parse
         * under TCG. force-unsafe-io: the image is thrown away if this fails,
         * so dpkg's fsyncs buy nothing. */
        return strdup_printf(
            "set -e\nexport DEBIAN_FRONTEND=noninteractive\n"
            "o='-y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "
            "-o Dpkg::Use-Pty=0'\n"
            "if ! apt-get install $o %s; then\n"
            "  %s\n  apt-get install $o %s\nfi\n"
            "apt-get clean\nrm -rf " GUEST_PKG_DIR "\n",
            names, local ? "false" : "apt-get update -q", names);
}

static int gfs_write(guestfs_h *g, const char *path, const char *content, int mode)
{
        if (guestfs_write(g, path, content, strlen(content)) < 0 ||
            guestfs_chmod(g, mode, path) < 0)
                return log_error_errno(EIO, "writing %s in the image: %s", path,
                                       image_guestfs_error(g));
        return 0;
}

static int mount_inspected(guestfs_h *g, enum distro_family *family)
{
        _cleanup_strv_free_ char **roots = guestfs_inspect_os(g);
        _cleanup_strv_free_ char **mps = NULL;
        _cleanup_free_ char *distro = NULL;
        size_t n;

        if (!roots || !roots[0])
                return log_error_errno(ENOENT, "no operating system found in the base image%s%s",
                                       roots ? "" : ": ", roots ? "" : image_guestfs_error(g));
        mps = guestfs_inspect_get_mountpoints(g, roots[0]);
        if (!mps)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        n = strv_length(mps) / 2;
        /* Mount parents first: sort pairs by mount point length. */
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strlen(mps[2 * j]) < strlen(mps[2 * i])) {
                                char *a = mps[2 * i], *b = mps[2 * i + 1];
                                mps[2 * i] = mps[2 * j];
                                mps[2 * i + 1] = mps[2 * j + 1];
                                mps[2 * j] = a;
                                mps[2 * j + 1] = b;
                        }
        for (size_t i = 0; i < n; i++)
                if (guestfs_mount(g, mps[2 * i + 1], mps[2 * i]) < 0)
                        return log_error_errno(EIO, "mounting %s: %s", mps[2 * i],
                                               image_guestfs_error(g));
        distro = guestfs_inspect_get_distro(g, roots[0]);
        if (*family == FAMILY_AUTO)
                *family = family_of_distro(distro ? distro : "unknown");
        log_info("image: %s (%s family)", distro ? distro : "unknown", family_names[*family]);
        return 0;
}

static int inject_access(guestfs_h *g, const struct config *c, const char *user_pub,
                         const char *host_priv, const char *host_pub)
{
        const char *user = c->ssh.user;
        _cleanup_free_ char *home = NULL, *ssh_dir = NULL, *ak = NULL, *keys = NULL;
        int r;

        if (!streq(user, "root")) {
                _cleanup_free_ char *q = shell_quote(user);
                _cleanup_free_ char *cmd = strdup_printf(
                    "id %s >/dev/null 2>&1 || useradd -m -s /bin/sh %s; "
                    "if [ -d /etc/sudoers.d ]; then echo %s' ALL=(ALL) NOPASSWD:ALL' > "
                    "/etc/sudoers.d/vgpuenv; chmod 0440 /etc/sudoers.d/vgpuenv; fi",
                    q, q, q);
                char *out = cmd ? guestfs_sh(g, cmd) : NULL;
                if (!out)
                        return log_error_errno(EIO, "creating user %s: %s", user,
                                               image_guestfs_error(g));
                free(out);
        }
        home = streq(user, "root") ? strdup("/root") : strdup_printf("/home/%s", user);
        ssh_dir = strdup_printf("%s/.ssh", home);
        ak = strdup_printf("%s/authorized_keys", ssh_dir);
        keys = strdup_printf("%s\n", user_pub);
        if (!home || !ssh_dir || !ak || !keys)
                return -ENOMEM;
        if (guestfs_mkdir_p(g, ssh_dir) < 0 || guestfs_chmod(g, 0700, ssh_dir) < 0)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        r = gfs_write(g, ak, keys, 0600);
        if (r < 0)
                return r;
        if (!streq(user, "root")) {
                _cleanup_free_ char *q = shell_quote(user), *qd = shell_quote(ssh_dir);
                _cleanup_free_ char *cmd = strdup_printf("chown -R %s: %s", q, qd);
                char *out = cmd ? guestfs_sh(g, cmd) : NULL;
                if (!out)
                        return log_error_errno(EIO, "%s", image_guestfs_error(g));
                free(out);
        }
        /* Only our host key: the client pins it, and sshd must not offer or
         * regenerate others. */
        _cleanup_free_ char *rm = guestfs_sh(g, "rm -f /etc/ssh/ssh_host_*");
        if (!rm)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        if ((r = gfs_write(g, "/etc/ssh/ssh_host_ed25519_key", host_priv, 0600)) < 0 ||
            (r = gfs_write(g, "/etc/ssh/ssh_host_ed25519_key.pub", host_pub, 0644)) < 0)
                return r;
        if (guestfs_mkdir_p(g, "/etc/ssh/sshd_config.d") < 0)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        return gfs_write(g, "/etc/ssh/sshd_config.d/10-vgpuenv.conf",
                         "# Written by vgpuenv: the host key is pinned by the client.\n"
                         "HostKey /etc/ssh/ssh_host_ed25519_key\n"
                         "PasswordAuthentication no\n",
                         0644);
}

/* Units a test node does without. Under TCG every unit costs CPU that three
 * booting nodes share with each other on the host: these were 1.7 s of a
 * 19 s boot (systemd-analyze, Debian bookworm). Kept: kmod-static-nodes
 * (/dev/vhost-net, /dev/vfio/vfio for the display proof), random-seed,
 * udev, networkd, and everything sshd waits for. */
static const char *const masked_units[] = {
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "modprobe@dm_mod.service",
    "modprobe@efi_pstore.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@configfs.service",
    "systemd-pstore.service",
    "systemd-journal-flush.service", /* the journal stays in /run */
    "systemd-network-generator.service",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "getty@tty1.service", /* console is ttyS0 */
    "dpkg-db-backup.timer",
    NULL,
};

static int trim_boot(guestfs_h *g, enum distro_family family)
{
        if (guestfs_mkdir_p(g, "/etc/systemd/system") < 0 ||
            guestfs_mkdir_p(g, "/etc/systemd/journald.conf.d") < 0)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        for (const char *const *u = masked_units; *u; u++) {
                _cleanup_free_ char *link = strdup_printf("/etc/systemd/system/%s", *u);
                if (!link)
                        return -ENOMEM;
                if (guestfs_ln_sf(g, "/dev/null", link) < 0)
                        return log_error_errno(EIO, "masking %s: %s", *u, image_guestfs_error(g));
        }
        int r = gfs_write(g, "/etc/systemd/journald.conf.d/vgpuenv.conf",
                          "# Written by vgpuenv: a test node keeps its journal in memory.\n"
                          "[Journal]\nStorage=volatile\n",
                          0644);
        if (r < 0 || family != FAMILY_DEBIAN)
                return r;
        /* Every command vgpuenv runs is an ssh session, and Debian's PAM
         * session stack (motd scripts, env, limits) doubled what each costs
         * under TCG (150 -> 80 ms). Keys are the only way in, which sshd
         * checks itself. RHEL's sshd does not support UsePAM no. */
        return gfs_write(g, "/etc/ssh/sshd_config.d/20-vgpuenv-nopam.conf",
                         "# Written by vgpuenv: key login only, no PAM session per command.\n"
                         "UsePAM no\n",
                         0644);
}

static int inject_boot_settings(guestfs_h *g)
{
        int r;

        /* Node setup's own files, byte for byte: it finds nothing to do. */
        if (guestfs_mkdir_p(g, "/etc/modules-load.d") < 0 ||
            guestfs_mkdir_p(g, "/etc/udev/rules.d") < 0)
                return log_error_errno(EIO, "%s", image_guestfs_error(g));
        r = gfs_write(g, NODE_MODULES_LOAD_PATH, node_modules_load_text, 0644);
        if (r < 0)
                return r;
        r = gfs_write(g, NODE_UDEV_RULE_PATH, node_udev_rule_text, 0644);
        if (r < 0)
                return r;
        r = gfs_write(g, "/etc/hostname", "vgpuenv-node\n", 0644);
        if (r < 0)
                return r;
        /* cloud-init would wait for a datasource and replace our host keys. */
        if (guestfs_is_dir(g, "/etc/cloud") > 0)
                return gfs_write(g, "/etc/cloud/cloud-init.disabled", "vgpuenv\n", 0644);
        return 0;
}

static int upload_local_packages(guestfs_h *g, const char *dir)
{
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort), r = 0, copied = 0;

        if (n < 0)
                return log_error_errno(errno, "mesa.local_dir %s: %m", dir);
        if (guestfs_mkdir_p(g, GUEST_PKG_DIR) < 0)
                r = log_error_errno(EIO, "%s", image_guestfs_error(g));
        for (int i = 0; i < n; i++) {
                const char *name = ents[i]->d_name;
                if (r >= 0 && (endswith(name, ".deb") || endswith(name, ".rpm"))) {
                        _cleanup_free_ char *src = strdup_printf("%s/%s", dir, name);
                        _cleanup_free_ char *dst = strdup_printf(GUEST_PKG_DIR "/%s", name);
                        if (!src || !dst || guestfs_upload(g, src, dst) < 0)
                                r = log_error_errno(EIO, "uploading %s: %s", name,
                                                    image_guestfs_error(g));
                        copied++;
                }
                free(ents[i]);
        }
        free(ents);
        if (r >= 0 && copied == 0)
                r = log_error_errno(ENOENT, "mesa.local_dir %s has no .deb or .rpm files", dir);
        return r;
}

/* SELinux images need labels on the files we wrote, or sshd cannot read
 * them. Relabel now when the appliance can, else at first boot. */
static int relabel_if_selinux(guestfs_h *g)
{
        const char *spec = "/etc/selinux/targeted/contexts/files/file_contexts";

        if (guestfs_is_file(g, spec) <= 0)
                return 0;
        if (guestfs_selinux_relabel(g, spec, "/", -1) == 0)
                return 0;
        log_warning("SELinux relabel in the appliance failed (%s): relabelling at first boot",
                    image_guestfs_error(g));
        return gfs_write(g, "/.autorelabel", "", 0644);
}

struct customize_job {
        const char *base;
        const char *tmp;
        const char *user_pub;
        enum distro_family family;
        char **pkgs; /* NULL until the family is known */
        char *host_pub;
};

/* The package installation: apt/dnf inside the appliance, its output into
 * the run's log (shown on failure), not onto the terminal. */
static int install_packages(struct step_run *sr, struct appliance *a, const char *script,
                            const char *list)
{
        _cleanup_free_ char *what = strdup_printf("installing %s in the appliance "
                                                  "(deadlines.appliance_call)",
                                                  list ? list : "packages");
        struct cancel call;
        char *out;
        int r;

        log_info("    installing %s in the image (its output: the log)", list ? list : "packages");
        appliance_begin(a, &call, sr->ctx->cfg->deadlines.appliance_call,
                        what ? what : "the package installation");
        out = guestfs_sh(appliance_handle(a), script);
        r = appliance_end(a, &call, out ? 0 : -EIO);
        if (out && sr->log_fd >= 0) {
                (void)write_all(sr->log_fd, "install| ", 9);
                (void)write_all(sr->log_fd, out, strlen(out));
        }
        free(out);
        if (r == -EIO)
                log_error("package installation in the image failed: %s", appliance_error(a));
        return r;
}

static int customize_files(struct step_run *sr, struct appliance *a, struct customize_job *job,
                           const char *host_priv)
{
        const struct config *c = sr->ctx->cfg;
        guestfs_h *g = appliance_handle(a);
        bool local = !isempty(c->mesa.local_dir);
        struct cancel call;
        int r;

        appliance_begin(a, &call, c->deadlines.appliance_call,
                        "the appliance writing keys and boot settings (deadlines.appliance_call)");
        r = mount_inspected(g, &job->family);
        if (r >= 0 && !(job->pkgs = profile_packages(c, job->family)))
                r = -ENOMEM;
        if (r >= 0)
                r = inject_access(g, c, job->user_pub, host_priv, job->host_pub);
        if (r >= 0)
                r = inject_boot_settings(g);
        if (r >= 0)
                r = trim_boot(g, job->family);
        if (r >= 0 && local)
                r = upload_local_packages(g, c->mesa.local_dir);
        return appliance_end(a, &call, r);
}

static int customize_in_appliance(struct step_run *sr, enum accel_verdict accel,
                                  struct customize_job *job)
{
        const struct config *c = sr->ctx->cfg;
        _cleanup_free_ char *disk = strdup_printf("%s/disk.qcow2", job->tmp);
        _cleanup_free_ char *hk = strdup_printf("%s/ssh_host_ed25519_key", job->tmp);
        _cleanup_free_ char *host_priv = NULL, *script = NULL, *list = NULL;
        bool local = !isempty(c->mesa.local_dir);
        struct appliance *a = NULL;
        struct cancel call;
        int r;

        if (!disk || !hk)
                return -ENOMEM;
        r = ssh_keygen(hk, "vgpuenv-node", &job->host_pub);
        if (r < 0)
                return log_error_errno(r, "generating the node host key: %m");
        r = read_full_file(hk, &host_priv, NULL);
        if (r < 0)
                return log_error_errno(r, "reading %s: %m", hk);
        r = appliance_open(sr, accel, &a);
        if (r < 0)
                return r;
        guestfs_h *g = appliance_handle(a);
        if (guestfs_disk_create(g, disk, "qcow2", -1, GUESTFS_DISK_CREATE_BACKINGFILE, job->base,
                                GUESTFS_DISK_CREATE_BACKINGFORMAT, "qcow2", -1) < 0 ||
            guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) < 0) {
                r = log_error_errno(EIO, "creating %s: %s", disk, appliance_error(a));
                goto out;
        }
        guestfs_set_network(g, !local);
        if ((r = appliance_launch(a)) < 0 || (r = customize_files(sr, a, job, host_priv)) < 0)
                goto out;
        script = install_script(c, job->family, job->pkgs, local);
        list = strv_join(job->pkgs, " ");
        if (!script) {
                r = -ENOMEM;
                goto out;
        }
        r = install_packages(sr, a, script, list);
        if (r < 0)
                goto out;
        appliance_begin(a, &call, c->deadlines.appliance_call,
                        "the appliance closing the image (deadlines.appliance_call)");
        r = relabel_if_selinux(g);
        if (r >= 0 && (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0))
                r = log_error_errno(EIO, "closing the image: %s", appliance_error(a));
        r = appliance_end(a, &call, r);
out:
        appliance_close(a);
        return r;
}

static int write_meta(const char *tmp, const struct customize_job *job)
{
        _cleanup_(cJSON_Deletep) cJSON *m = cJSON_CreateObject();
        _cleanup_free_ char *path = strdup_printf("%s/meta.json", tmp), *text = NULL;

        if (!m || !path)
                return -ENOMEM;
        cJSON_AddStringToObject(m, "base", job->base);
        cJSON_AddStringToObject(m, "family", family_names[job->family]);
        cJSON_AddStringToObject(m, "host_key", job->host_pub);
        cJSON *pk = cJSON_AddArrayToObject(m, "packages");
        for (size_t i = 0; job->pkgs && job->pkgs[i]; i++)
                cJSON_AddItemToArray(pk, cJSON_CreateString(job->pkgs[i]));
        text = cJSON_Print(m);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0644);
}

static int read_meta(const char *dir, struct node_image *img)
{
        _cleanup_free_ char *path = strdup_printf("%s/meta.json", dir), *text = NULL;
        _cleanup_(cJSON_Deletep) cJSON *m = NULL;
        const cJSON *hk, *fam;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, &text, NULL);
        if (r < 0)
                return r;
        m = cJSON_Parse(text);
        hk = cJSON_GetObjectItemCaseSensitive(m, "host_key");
        fam = cJSON_GetObjectItemCaseSensitive(m, "family");
        if (!cJSON_IsString(hk) || !cJSON_IsString(fam))
                return -EBADMSG;
        img->host_key_pub = strdup(hk->valuestring);
        img->family = streq(fam->valuestring, "rhel") ? FAMILY_RHEL : FAMILY_DEBIAN;
        return img->host_key_pub ? 0 : -ENOMEM;
}

static int cache_key(struct run_ctx *ctx, const char *base_digest, const char *user_pub,
                     char out[65])
{
        const struct config *c = ctx->cfg;
        _cleanup_strv_free_ char **deb = profile_packages(c, FAMILY_DEBIAN);
        _cleanup_strv_free_ char **rpm = profile_packages(c, FAMILY_RHEL);
        _cleanup_free_ char *d = deb ? strv_join(deb, " ") : NULL;
        _cleanup_free_ char *rp = rpm ? strv_join(rpm, " ") : NULL;
        _cleanup_free_ char *local = local_dir_fingerprint(c->mesa.local_dir);
        _cleanup_free_ char *text = NULL;

        if (!d || !rp || !local)
                return -ENOMEM;
        text = strdup_printf("%s\nbase=%s\nfamily=%s\nprofile=%d\ndeb=%s\nrpm=%s\nlocal=%s\n"
                             "user=%s\nkey=%s\n",
                             CUSTOMIZE_VERSION, base_digest, family_names[c->image.family],
                             c->image.profile, d, rp, local, c->ssh.user, user_pub);
        if (!text)
                return -ENOMEM;
        return sha256_hex(text, strlen(text), out);
}

struct image_job {
        struct run_ctx *ctx;
        const enum accel_verdict *accel;
        struct node_image *img;
        char *base_dir; /* the base image's cache dir, owned by its step */
        char *tmp;      /* this run's work dir, while it exists */
};

static void image_job_free(void *p)
{
        struct image_job *j = p;
        free(j->tmp);
        free(j);
}

/* Where the node-image step starts from: the built base (its disk and the
 * kernel and initrd for direct boot) or the configured qcow2. */
static int base_of(struct image_job *j, char **ret_base)
{
        const struct config *c = j->ctx->cfg;
        struct node_image *img = j->img;

        if (!j->base_dir)
                return (*ret_base = strdup(c->image.base)) ? 0 : -ENOMEM;
        *ret_base = strdup_printf("%s/disk.qcow2", j->base_dir);
        img->kernel = strdup_printf("%s/vmlinuz", j->base_dir);
        img->initrd = strdup_printf("%s/initrd.img", j->base_dir);
        img->root_arg = strdup("root=/dev/vda rootfstype=ext4");
        img->family = FAMILY_DEBIAN;
        return *ret_base && img->kernel && img->initrd && img->root_arg ? 0 : -ENOMEM;
}

static int customize_into(struct step_run *sr, struct image_job *j, const char *base,
                          const char *user_pub, const char *dir)
{
        struct node_image *img = j->img;
        struct customize_job job = {
            .base = base, .tmp = j->tmp, .user_pub = user_pub, .family = img->family};
        int r = mkdir_p(j->tmp, 0755);

        if (r < 0)
                return log_error_errno(r, "creating %s: %m", j->tmp);
        r = customize_in_appliance(sr, *j->accel, &job);
        if (r >= 0)
                r = write_meta(j->tmp, &job);
        if (r >= 0)
                r = step_check(sr);
        if (r >= 0 && rename(j->tmp, dir) < 0) {
                if (errno != ENOTEMPTY && errno != EEXIST)
                        r = log_error_errno(errno, "moving %s into place: %m", j->tmp);
                else /* a concurrent run made the same entry: theirs is as good */
                        r = read_meta(dir, img);
        } else if (r >= 0) {
                img->host_key_pub = TAKE_PTR(job.host_pub);
        }
        if (r >= 0)
                img->family = job.family;
        free(job.host_pub);
        strv_free(job.pkgs);
        return r;
}

static int prepare_image(struct step_run *sr, void *data)
{
        struct image_job *j = data;
        struct node_image *img = j->img;
        _cleanup_free_ char *base = NULL, *user_pub = NULL, *dir = NULL, *disk = NULL;
        char digest[65], key[65];
        int r;

        node_image_done(img);
        img->family = j->ctx->cfg->image.family;
        if ((r = image_user_identity(j->ctx, &img->identity, &user_pub)) < 0 ||
            (r = base_of(j, &base)) < 0 || (r = image_file_digest(j->ctx, base, digest)) < 0 ||
            (r = cache_key(j->ctx, digest, user_pub, key)) < 0)
                return r;
        img->key = strdup(key);
        dir = strdup_printf("%s/images/%.16s", j->ctx->cache_dir, key);
        disk = dir ? strdup_printf("%s/disk.qcow2", dir) : NULL;
        free(j->tmp);
        j->tmp = dir ? strdup_printf("%s.tmp-%d", dir, (int)getpid()) : NULL;
        if (!img->key || !disk || !j->tmp)
                return -ENOMEM;
        image_cache_sweep(j->ctx);
        if (file_exists(disk) && read_meta(dir, img) >= 0) {
                log_info("    node image: cached %s (no appliance launch)", dir);
                img->cached = true;
        } else {
                r = customize_into(sr, j, base, user_pub, dir);
                rm_rf(j->tmp); /* nothing half-made stays */
                if (r < 0)
                        return r;
        }
        img->disk = TAKE_PTR(disk);
        return 0;
}

int image_plan(struct plan *p, struct run_ctx *ctx, const enum accel_verdict *accel,
               struct node_image *img)
{
        const struct config *c = ctx->cfg;
        struct image_job *j = plan_own(p, calloc(1, sizeof(struct image_job)), image_job_free);
        bool built = streq(c->image.base, "debian-bookworm");
        struct step *s;

        if (!j)
                return -ENOMEM;
        *j = (struct image_job){.ctx = ctx, .accel = accel, .img = img};
        if (built)
                image_plan_base(p, ctx, accel, &j->base_dir);
        s = plan_add(p, "node-image", prepare_image, j);
        step_acts_on(s, "the image cache: %s/images/", ctx->cache_dir);
        step_progress(s,
                      "node image: %s customized with mesa%s, keys and boot settings "
                      "(cached; else one appliance launch)",
                      built ? "the base image" : c->image.base,
                      c->image.profile == PROFILE_DISPLAY ? ", libvirt and QEMU" : "");
        step_deadline(s, (double)c->deadlines.appliance_launch + 3.0 * c->deadlines.appliance_call);
        step_undo(s, NULL,
                  "nothing: a finished image stays in the cache (content-addressed, "
                  "reused by later runs); a half-made one is removed at once");
        return plan_error(p);
}
