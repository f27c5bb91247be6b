/* Build an out-of-tree kernel module for a node's Debian kernel on the build
 * host, cached by kernel release (see kmod.h).
 *
 * Why on the host: compiling in a TCG node is slow, and the headers would
 * make every node image bigger. Debian ships the headers for each kernel ABI
 * as packages that unpack anywhere (the flavour's Makefile includes the
 * common tree by absolute path, which we rewrite), so `apt-get download` +
 * `dpkg-deb -x` need no installation and no root. The compiler is the one
 * the headers name (gcc-12 for bookworm), so vermagic matches. Kernel
 * samples (mbochs) come from linux-source-<major>, of which only the named
 * files are extracted. */
#include "provision/vgpu/kmod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

/* Kernel releases and package versions end up in paths and apt arguments. */
static bool plain_token(const char *s)
{
        if (isempty(s) || strlen(s) > 64 || s[0] == '-' || s[0] == '.')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.+~-") == strlen(s);
}

int kmod_debian_packages(const char *kver, bool with_source, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        unsigned a, b, c, abi, deb;
        int n = 0, m = 0;

        if (!plain_token(kver))
                return -EINVAL;
        /* Debian 12: "6.1.0-50-amd64", upstream 6.1.0, ABI 50, flavour amd64
         * (flavours may have dashes: "cloud-amd64", "rt-amd64"). Headers
         * common to the flavours and kbuild are per ABI and per major. */
        if (sscanf(kver, "%u.%u.%u-%u-%n", &a, &b, &c, &abi, &n) == 4 && n > 0 && kver[n]) {
                if (strv_push(&l, strdup_printf("linux-headers-%s", kver)) < 0 ||
                    strv_push(&l, strdup_printf("linux-headers-%u.%u.%u-%u-common", a, b, c, abi)) <
                        0 ||
                    strv_push(&l, strdup_printf("linux-kbuild-%u.%u", a, b)) < 0)
                        return -ENOMEM;
        } else if (sscanf(kver, "%u.%u.%u+deb%u-%n", &a, &b, &c, &deb, &m) == 4 && m > 0 &&
                   kver[m]) {
                /* Debian 13: "6.12.117+deb13-amd64", both per upstream release. */
                if (strv_push(&l, strdup_printf("linux-headers-%s", kver)) < 0 ||
                    strv_push(&l, strdup_printf("linux-headers-%u.%u.%u+deb%u-common", a, b, c,
                                                deb)) < 0 ||
                    strv_push(&l, strdup_printf("linux-kbuild-%u.%u.%u+deb%u", a, b, c, deb)) < 0)
                        return -ENOMEM;
        } else
                return -EINVAL;
        if (with_source && strv_push(&l, strdup_printf("linux-source-%u.%u", a, b)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* Run argv under the build's token with a deadline of its own, logging
 * the end of its output (the interesting part) when it fails. */
static int run_logged(const struct kmod_spec *s, char *const *argv, const char *cwd, double timeout,
                      const char *what)
{
        _cleanup_proc_result_ struct proc_result res = {0};
        struct cancel c;
        int r;

        cancel_init_child(&c, s->cancel, timeout, what);
        struct proc_opts o = {.argv = argv,
                              .cwd = cwd,
                              .out = PROC_DISCARD,
                              .err = PROC_DISCARD,
                              .log_fd = -1,
                              .cancel = &c};
        r = proc_run(&o, &res);
        if (r < 0)
                return log_error_errno(r, "%s: cannot run %s: %m", what, argv[0]);
        if (res.stopped_by == -ECANCELED)
                return log_error_errno(-ECANCELED, "%s: interrupted", what);
        if (res.stopped_by < 0)
                return log_error_errno(res.stopped_by, "%s: %s did not finish within %.0f s", what,
                                       argv[0], timeout);
        if (res.exit_code != 0)
                return log_error_errno(-EIO, "%s: %s exited with %d:\n%s", what, argv[0],
                                       res.exit_code, res.tail.data ? res.tail.data : "");
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

static char *stamp_text(const struct kmod_spec *s, const char *pkgver)
{
        return strdup_printf("%s %s", pkgver, s->key ? s->key : "-");
}

static char *cache_dir_for(const struct kmod_spec *s, const char *kver)
{
        _cleanup_free_ char *cache = vgpuenv_cache_dir();
        return cache ? strdup_printf("%s/%s/%s", cache, s->cache_name, kver) : NULL;
}

char *kmod_cached(const struct kmod_spec *s, const char *kver, const char *pkgver)
{
        _cleanup_free_ char *dir = NULL, *ko = NULL, *stamp = NULL, *have = NULL, *want = NULL;

        if (!plain_token(kver) || !plain_token(pkgver))
                return NULL;
        dir = cache_dir_for(s, kver);
        ko = dir ? strdup_printf("%s/%s.ko", dir, s->module) : NULL;
        stamp = dir ? strdup_printf("%s/version", dir) : NULL;
        want = stamp_text(s, pkgver);
        if (!ko || !stamp || !want || !file_exists(ko) || read_full_file(stamp, &have, NULL) < 0)
                return NULL;
        have[strcspn(have, "\n")] = 0;
        /* The same release rebuilt under another package version (a Debian
         * upload without ABI bump), or changed sources, get a fresh module. */
        return streq(have, want) ? TAKE_PTR(ko) : NULL;
}

/* 1. The packages of exactly the node kernel's version. */
static int download(const struct kmod_spec *s, char *const *pkgs, const char *pkgver,
                    const char *debs)
{
        _cleanup_strv_free_ char **argv = NULL;
        struct log_step st =
            step_begin(s->from_source ? "kernel headers: apt-get download (headers, kbuild, source)"
                                      : "kernel headers: apt-get download (headers, kbuild)");
        int r = strv_extend(&argv, "apt-get") < 0 || strv_extend(&argv, "download") < 0 ||
                        strv_extend(&argv, "-q") < 0
                    ? -ENOMEM
                    : 0;

        for (size_t i = 0; r >= 0 && pkgs[i]; i++)
                r = strv_push(&argv, strdup_printf("%s=%s", pkgs[i], pkgver));
        if (r >= 0)
                r = run_logged(s, argv, debs, KMOD_DOWNLOAD_TIMEOUT,
                               "downloading the node kernel's packages");
        if (r < 0 && r != -ECANCELED)
                log_error("%s.ko needs %s %s from this host's apt sources (the node's kernel)%s%s",
                          s->module, pkgs[0], pkgver, s->hint ? ": " : "", s->hint ? s->hint : "");
        return step_done(&st, r);
}

/* 2. Unpack headers and kbuild; point the flavour's Makefile at the unpacked
 *    common tree instead of /usr/src. Sets *ret_kdir. */
static int unpack_headers(const struct kmod_spec *s, char *const *pkgs, const char *pkgver,
                          const char *debs, const char *root, char **ret_kdir)
{
        struct log_step st = step_begin("kernel headers: unpacking");
        _cleanup_free_ char *kdir = NULL, *mk = NULL, *text = NULL;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < 3; i++) {
                _cleanup_free_ char *deb = NULL;
                r = find_deb(debs, pkgs[i], pkgver, &deb);
                if (r >= 0) {
                        char *argv[] = {"dpkg-deb", "-x", deb, (char *)root, NULL};
                        r = run_logged(s, argv, NULL, KMOD_DOWNLOAD_TIMEOUT,
                                       "unpacking the kernel headers");
                }
        }
        if (r >= 0) {
                kdir = strdup_printf("%s/usr/src/%s", root, pkgs[0]);
                mk = strdup_printf("%s/usr/src/%s/Makefile", root, pkgs[0]);
                text = strdup_printf("include %s/usr/src/%s/Makefile\n", root, pkgs[1]);
                r = !kdir || !mk || !text ? -ENOMEM
                                          : write_file_atomic(mk, text, strlen(text), 0644);
                if (r < 0)
                        log_error_errno(r, "cannot rewrite %s: %m", mk);
        }
        if (r >= 0)
                *ret_kdir = TAKE_PTR(kdir);
        return step_done(&st, r);
}

/* 3. The module's own files, and the ones it takes from the kernel source. */
static int write_sources(const struct kmod_spec *s, char *const *pkgs, const char *kver,
                         const char *pkgver, const char *debs, const char *src, const char *mod)
{
        struct log_step st = step_begin("module sources");
        int r = 0;

        for (const struct kmod_file *f = s->files; r >= 0 && f && f->name; f++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", mod, f->name);
                r = p ? write_file_atomic(p, f->text, strlen(f->text), 0644) : -ENOMEM;
                if (r < 0)
                        log_error_errno(r, "cannot write %s: %m", p ? p : f->name);
        }
        for (size_t i = 0; r >= 0 && s->from_source && s->from_source[i]; i++) {
                _cleanup_free_ char *deb = NULL, *tarball = NULL, *member = NULL, *from = NULL;
                _cleanup_free_ char *to = NULL;
                const char *base = strrchr(s->from_source[i], '/');
                unsigned a, b;

                base = base ? base + 1 : s->from_source[i];
                if (i == 0) {
                        r = find_deb(debs, pkgs[3], pkgver, &deb);
                        if (r >= 0) {
                                char *argv[] = {"dpkg-deb", "-x", deb, (char *)src, NULL};
                                r = run_logged(s, argv, NULL, KMOD_DOWNLOAD_TIMEOUT,
                                               "unpacking linux-source");
                        }
                }
                if (r < 0 || sscanf(kver, "%u.%u", &a, &b) != 2)
                        break;
                tarball = strdup_printf("%s/usr/src/linux-source-%u.%u.tar.xz", src, a, b);
                member = strdup_printf("linux-source-%u.%u/%s", a, b, s->from_source[i]);
                from = strdup_printf("%s/%s", src, member);
                to = strdup_printf("%s/%s", mod, base);
                if (!tarball || !member || !from || !to) {
                        r = -ENOMEM;
                        break;
                }
                /* tar stops at the first match instead of reading 140 MB on. */
                char *argv[] = {"tar", "-xJf",      tarball, "--occurrence=1",
                                "-C",  (char *)src, member,  NULL};
                r = run_logged(s, argv, NULL, KMOD_DOWNLOAD_TIMEOUT,
                               "extracting from linux-source");
                if (r >= 0)
                        r = copy_file(from, to, 0644);
                if (r < 0)
                        log_error_errno(r, "cannot extract %s: %m", member);
        }
        return step_done(&st, r);
}

/* 4. Compile, check vermagic, store in the cache. */
static int compile_and_store(const struct kmod_spec *s, const char *kver, const char *pkgver,
                             const char *kdir, const char *mod, const char *dir)
{
        _cleanup_free_ char *what = strdup_printf("compiling %s.ko", s->module);
        struct log_step st = step_begin(what ? what : "compiling the module");
        _cleanup_free_ char *m = strdup_printf("M=%s", mod);
        _cleanup_free_ char *built = strdup_printf("%s/%s.ko", mod, s->module);
        _cleanup_free_ char *ko = strdup_printf("%s/%s.ko", dir, s->module);
        _cleanup_free_ char *stamp = strdup_printf("%s/version", dir);
        _cleanup_free_ char *text = stamp_text(s, pkgver);
        int r;

        if (!m || !built || !ko || !stamp || !text)
                return step_done(&st, -ENOMEM);
        char *argv[] = {"make", "-C", (char *)kdir, m, "modules", NULL};
        r = run_logged(s, argv, NULL, KMOD_COMPILE_TIMEOUT, "compiling the module");
        if (r >= 0) {
                /* The module loads only when its vermagic names this kernel. */
                char *mi[] = {"modinfo", "-F", "vermagic", built, NULL};
                _cleanup_free_ char *vermagic = NULL;
                r = proc_run_checked("modinfo", mi, s->cancel, -1, &vermagic);
                if (r >= 0 && (!startswith(vermagic, kver) || vermagic[strlen(kver)] != ' '))
                        r = log_error_errno(-EBADMSG, "built %s has vermagic '%s', not %s", built,
                                            vermagic, kver);
        }
        if (r >= 0) {
                r = copy_file(built, ko, 0644);
                if (r >= 0)
                        r = write_file_atomic(stamp, text, strlen(text), 0644);
                if (r < 0)
                        log_error_errno(r, "cannot store %s: %m", ko);
        }
        return step_done(&st, r);
}

int kmod_build_debian(const struct kmod_spec *s, const char *kver, const char *pkgver,
                      char **ret_path)
{
        _cleanup_free_ char *dir = NULL, *ko = NULL, *work = NULL, *kdir = NULL;
        _cleanup_free_ char *debs = NULL, *root = NULL, *src = NULL, *mod = NULL;
        _cleanup_strv_free_ char **pkgs = NULL;
        int r;

        r = kmod_debian_packages(kver, s->from_source != NULL, &pkgs);
        if (r < 0)
                return log_error_errno(r, "kernel release '%s' is not a Debian kernel release%s%s",
                                       kver, s->hint ? ": " : "", s->hint ? s->hint : "");
        if (!plain_token(pkgver))
                return log_error_errno(-EINVAL, "kernel package version '%s' is not plain", pkgver);
        ko = kmod_cached(s, kver, pkgver);
        if (ko) {
                log_info("%s: cached %s (kernel %s, %s)", s->module, ko, kver, pkgver);
                *ret_path = TAKE_PTR(ko);
                return 0;
        }
        dir = cache_dir_for(s, kver);
        if (!dir)
                return log_error_errno(-ENOMEM, "out of memory");
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "cannot create %s: %m", dir);
        work = strdup_printf("%s/work.XXXXXX", dir);
        if (!work)
                return -ENOMEM;
        if (!mkdtemp(work))
                return log_error_errno(-errno, "cannot create a directory under %s: %m", dir);

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
                r = log_error_errno(-errno, "cannot create directories under %s: %m", work);
                goto out;
        }
        r = download(s, pkgs, pkgver, debs);
        if (r >= 0)
                r = unpack_headers(s, pkgs, pkgver, debs, root, &kdir);
        if (r >= 0)
                r = write_sources(s, pkgs, kver, pkgver, debs, src, mod);
        if (r >= 0)
                r = compile_and_store(s, kver, pkgver, kdir, mod, dir);
        if (r < 0)
                goto out;
        ko = strdup_printf("%s/%s.ko", dir, s->module);
        if (!ko) {
                r = -ENOMEM;
                goto out;
        }
        log_info("%s: built %s for kernel %s (%s)", s->module, ko, kver, pkgver);
        *ret_path = TAKE_PTR(ko);
out:
        /* The packages are up to 150 MB; only the module is worth keeping. */
        rm_rf(work);
        return r < 0 ? r : 0;
}
