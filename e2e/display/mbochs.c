/* Build the kernel's sample mdev driver mbochs (samples/vfio-mdev/mbochs.c)
 * for a node's Debian kernel, on the build host, cached by kernel release.
 *
 * Why on the host: compiling in a TCG node is slow, and the headers + the
 * 140 MB source package would make every display image bigger. Debian ships
 * the headers for each kernel ABI as packages that unpack anywhere (the
 * flavour's Makefile includes the common tree by absolute path, which we
 * rewrite), so `apt-get download` + `dpkg-deb -x` need no installation and
 * no root. mbochs is not built by Debian (no CONFIG_SAMPLES); its source is
 * in linux-source-<major>, of which we keep only mbochs.c. The compiler is
 * the one the headers name (gcc-12 for bookworm), so vermagic matches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "e2e/display/display.h"

/* Kernel releases and package versions end up in paths and apt arguments. */
static bool plain_token(const char *s)
{
        if (isempty(s) || strlen(s) > 64 || s[0] == '-' || s[0] == '.')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.+~-") == strlen(s);
}

int mbochs_debian_packages(const char *kver, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        unsigned a, b, c, abi;
        int n = 0;

        /* "6.1.0-50-amd64": upstream 6.1.0, ABI 50, flavour amd64 (flavours
         * may have dashes: "cloud-amd64", "rt-amd64"). */
        if (!plain_token(kver) || sscanf(kver, "%u.%u.%u-%u-%n", &a, &b, &c, &abi, &n) != 4 ||
            n == 0 || !kver[n])
                return -EINVAL;
        if (strv_push(&l, strdup_printf("linux-headers-%s", kver)) < 0 ||
            strv_push(&l, strdup_printf("linux-headers-%u.%u.%u-%u-common", a, b, c, abi)) < 0 ||
            strv_push(&l, strdup_printf("linux-kbuild-%u.%u", a, b)) < 0 ||
            strv_push(&l, strdup_printf("linux-source-%u.%u", a, b)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* Run argv with the module build's deadline; the end of its output names
 * the problem when it fails. */
static int run_logged(const struct cancel *cancel, char *const *argv, const char *cwd,
                      const char *what)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        struct proc_opts o = {.argv = argv,
                              .cwd = cwd,
                              .out = PROC_DISCARD,
                              .err = PROC_DISCARD,
                              .log_fd = -1,
                              .cancel = cancel};
        int r = proc_run(&o, &res);

        if (r < 0)
                return log_error_errno(r, "%s: cannot run %s: %m", what, argv[0]);
        if (res.stopped_by < 0)
                return log_error_errno(res.stopped_by, "%s: stopped (%s)", what,
                                       res.stopped_by == -ECANCELED ? "interrupted"
                                                                    : "deadlines.module_build");
        if (res.exit_code != 0)
                return log_error_errno(EIO, "%s: %s exited with %d:\n%s", what, argv[0],
                                       res.exit_code, res.tail.data ? res.tail.data : "");
        return 0;
}

static int read_stamp(const char *path, char **ret)
{
        char *s = NULL;
        int r = read_full_file(path, &s, NULL);

        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        *ret = s;
        return 0;
}

static int find_deb(const char *dir, const char *pkg, const char *pkgver, char **ret)
{
        /* apt-get download names files <pkg>_<version with ':' as %3a>_<arch>.deb */
        for (const char *arch = "amd64"; arch; arch = streq(arch, "amd64") ? "all" : NULL) {
                _cleanup_free_ char *p = strdup_printf("%s/%s_%s_%s.deb", dir, pkg, pkgver, arch);
                if (!p)
                        return -ENOMEM;
                if (file_exists(p)) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return log_error_errno(-ENOENT, "apt-get download left no .deb for %s %s in %s", pkg,
                               pkgver, dir);
}

/* End a timed step and pass its result on. */
static int step_done(const struct log_step *s, int r)
{
        step_end(s, r);
        return r;
}

int mbochs_build(const struct cancel *cancel, const char *kver, const char *pkgver, char **ret_path)
{
        _cleanup_free_ char *cache = vgpuenv_cache_dir();
        _cleanup_free_ char *dir = NULL, *ko = NULL, *stamp = NULL, *work = NULL, *have = NULL;
        _cleanup_free_ char *debs = NULL, *root = NULL, *src = NULL, *mod = NULL, *kdir = NULL;
        _cleanup_strv_free_ char **pkgs = NULL;
        struct log_step s;
        int r;

        if (!cache)
                return log_error_errno(-ENOMEM, "out of memory");
        r = mbochs_debian_packages(kver, &pkgs);
        if (r < 0)
                return log_error_errno(r,
                                       "kernel release '%s' is not a Debian kernel release: "
                                       "build mbochs.ko yourself and pass --mbochs-ko FILE",
                                       kver);
        if (!plain_token(pkgver))
                return log_error_errno(-EINVAL, "kernel package version '%s' is not plain", pkgver);
        dir = strdup_printf("%s/mbochs/%s", cache, kver);
        ko = strdup_printf("%s/mbochs.ko", dir);
        stamp = strdup_printf("%s/version", dir);
        if (!dir || !ko || !stamp)
                return -ENOMEM;

        /* The same release rebuilt under another package version (a Debian
         * upload without ABI bump) gets a fresh module. */
        if (file_exists(ko) && read_stamp(stamp, &have) >= 0 && streq(have, pkgver)) {
                log_info("mbochs: cached %s (kernel %s, %s)", ko, kver, pkgver);
                *ret_path = TAKE_PTR(ko);
                return 0;
        }

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "cannot create %s: %m", dir);
        work = strdup_printf("%s/work.XXXXXX", dir);
        if (!work)
                return -ENOMEM;
        if (!mkdtemp(work))
                return log_error_errno(errno, "cannot create a directory under %s: %m", dir);

        debs = strdup_printf("%s/debs", work);
        root = strdup_printf("%s/root", work);
        src = strdup_printf("%s/src", work);
        mod = strdup_printf("%s/mod", work);
        if (!debs || !root || !src || !mod) {
                r = -ENOMEM;
                goto out;
        }
        if (mkdir_p(debs, 0755) < 0 || mkdir_p(root, 0755) < 0 || mkdir_p(src, 0755) < 0 ||
            mkdir_p(mod, 0755) < 0) {
                r = log_error_errno(errno, "cannot create directories under %s: %m", work);
                goto out;
        }

        /* 1. Download the four packages of exactly the node kernel's version. */
        s = step_begin("mbochs: apt-get download of the kernel headers, kbuild and source");
        {
                _cleanup_strv_free_ char **argv = NULL;
                r = strv_extend(&argv, "apt-get") < 0 || strv_extend(&argv, "download") < 0 ||
                            strv_extend(&argv, "-q") < 0
                        ? -ENOMEM
                        : 0;
                for (size_t i = 0; r >= 0 && pkgs[i]; i++)
                        r = strv_push(&argv, strdup_printf("%s=%s", pkgs[i], pkgver));
                if (r >= 0)
                        r = run_logged(cancel, argv, debs,
                                       "downloading the node kernel's packages");
                if (r < 0)
                        log_error("mbochs needs %s %s from this host's apt sources (the node's "
                                  "kernel); when they are gone from the mirror, build mbochs.ko "
                                  "elsewhere and pass --mbochs-ko FILE",
                                  pkgs[0], pkgver);
        }
        if (step_done(&s, r) < 0)
                goto out;

        /* 2. Unpack headers and kbuild; point the flavour's Makefile at the
         *    unpacked common tree instead of /usr/src. */
        s = step_begin("mbochs: unpacking the headers");
        for (size_t i = 0; r >= 0 && i < 3; i++) {
                _cleanup_free_ char *deb = NULL;
                r = find_deb(debs, pkgs[i], pkgver, &deb);
                if (r >= 0) {
                        char *argv[] = {"dpkg-deb", "-x", deb, root, NULL};
                        r = run_logged(cancel, argv, NULL, "unpacking the kernel headers");
                }
        }
        kdir = strdup_printf("%s/usr/src/%s", root, pkgs[0]);
        if (r >= 0 && !kdir)
                r = -ENOMEM;
        if (r >= 0) {
                _cleanup_free_ char *mk = strdup_printf("%s/Makefile", kdir);
                _cleanup_free_ char *text =
                    strdup_printf("include %s/usr/src/%s/Makefile\n", root, pkgs[1]);
                r = !mk || !text ? -ENOMEM : write_file_atomic(mk, text, strlen(text), 0644);
                if (r < 0)
                        log_error_errno(r, "cannot rewrite %s/Makefile: %m", kdir);
        }
        if (step_done(&s, r) < 0)
                goto out;

        /* 3. Only samples/vfio-mdev/mbochs.c from the source tarball; tar stops
         *    at the first match. */
        s = step_begin("mbochs: extracting samples/vfio-mdev/mbochs.c from the kernel source");
        {
                _cleanup_free_ char *deb = NULL, *tarball = NULL, *member = NULL;
                unsigned a, b;
                r = find_deb(debs, pkgs[3], pkgver, &deb);
                if (r >= 0) {
                        char *argv[] = {"dpkg-deb", "-x", deb, src, NULL};
                        r = run_logged(cancel, argv, NULL, "unpacking linux-source");
                }
                if (r >= 0 && sscanf(kver, "%u.%u", &a, &b) == 2) {
                        tarball = strdup_printf("%s/usr/src/linux-source-%u.%u.tar.xz", src, a, b);
                        member =
                            strdup_printf("linux-source-%u.%u/samples/vfio-mdev/mbochs.c", a, b);
                        if (!tarball || !member)
                                r = -ENOMEM;
                }
                if (r >= 0) {
                        char *argv[] = {"tar",
                                        "-xJf",
                                        tarball,
                                        "--occurrence=1",
                                        "-C",
                                        src,
                                        "--strip-components=3",
                                        member,
                                        NULL};
                        r = run_logged(cancel, argv, NULL, "extracting mbochs.c");
                }
                if (r >= 0) {
                        _cleanup_free_ char *from = strdup_printf("%s/mbochs.c", src);
                        _cleanup_free_ char *to = strdup_printf("%s/mbochs.c", mod);
                        _cleanup_free_ char *kb = strdup_printf("%s/Kbuild", mod);
                        r = !from || !to || !kb ? -ENOMEM : copy_file(from, to, 0644);
                        if (r >= 0)
                                r = write_file_atomic(kb, "obj-m += mbochs.o\n", 18, 0644);
                        if (r < 0)
                                log_error_errno(r, "cannot set up %s: %m", mod);
                }
        }
        if (step_done(&s, r) < 0)
                goto out;

        /* 4. Compile against the unpacked headers. */
        s = step_begin("mbochs: compiling mbochs.ko");
        {
                _cleanup_free_ char *m = strdup_printf("M=%s", mod);
                char *argv[] = {"make", "-C", kdir, m, "modules", NULL};
                r = m ? run_logged(cancel, argv, NULL, "compiling mbochs.ko") : -ENOMEM;
        }
        if (r >= 0) {
                /* The module loads only when its vermagic names this kernel. */
                _cleanup_free_ char *built = strdup_printf("%s/mbochs.ko", mod);
                char *argv[] = {"modinfo", "-F", "vermagic", built, NULL};
                _cleanup_free_ char *vermagic = NULL;
                r = proc_run_checked("modinfo", argv, cancel, -1, &vermagic);
                if (r >= 0 && (!startswith(vermagic, kver) || vermagic[strlen(kver)] != ' '))
                        r = log_error_errno(EBADMSG, "built %s has vermagic '%s', not %s", built,
                                            vermagic, kver);
                if (r >= 0) {
                        r = copy_file(built, ko, 0644);
                        if (r >= 0)
                                r = write_file_atomic(stamp, pkgver, strlen(pkgver), 0644);
                        if (r < 0)
                                log_error_errno(r, "cannot store %s: %m", ko);
                }
        }
        if (step_done(&s, r) < 0)
                goto out;
        log_info("mbochs: built %s for kernel %s (%s)", ko, kver, pkgver);
        *ret_path = TAKE_PTR(ko);
out:
        /* The packages are 150 MB; only the module is worth keeping. */
        rm_rf(work);
        return r < 0 ? r : 0;
}
