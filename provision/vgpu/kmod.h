/* Out-of-tree kernel modules built on this host for a node's Debian kernel,
 * cached by kernel release (kmod.c): our fake vGPU (provision/vgpu/) and the
 * kernel's mbochs sample (e2e/display/mbochs.c). */
#pragma once

#include <stdbool.h>

#include "common/cancel.h"

/* One source file written into the module's build directory. */
struct kmod_file {
        const char *name;
        const char *text;
};

struct kmod_spec {
        const char *cache_name;         /* <cache>/<cache_name>/<kver>/ */
        const char *module;             /* builds <module>.ko */
        const struct kmod_file *files;  /* ends with {NULL}; may be NULL */
        const char *const *from_source; /* members of linux-source-X.Y to extract into the
                                           build directory (kernel samples); NULL: none, and
                                           the 140 MB source package is not downloaded */
        const char *key;                /* identifies the sources: another key rebuilds */
        const char *hint;               /* appended to a failure: what the user can do */
        const struct cancel *cancel;    /* Ctrl-C or the step's deadline stop a download or
                                           compile */
};

/* Deadlines of the steps, in seconds: the downloads (up to 150 MB from the
 * mirror) and the compile. */
#define KMOD_DOWNLOAD_TIMEOUT 900
#define KMOD_COMPILE_TIMEOUT 300

/* Debian's packages for kernel release kver ("6.1.0-50-amd64"): headers,
 * headers-common, kbuild and, with_source, linux-source-X.Y. -EINVAL when
 * kver is not shaped like a Debian kernel release. */
int kmod_debian_packages(const char *kver, bool with_source, char ***ret);

/* Build spec's module for Debian kernel kver whose package version is pkgver
 * ("6.1.176-1"), with the headers of exactly that version fetched by
 * `apt-get download` and unpacked (no installation, the host's own kernel
 * untouched). Cached as <cache>/<cache_name>/<kver>/<module>.ko with the
 * package version and key recorded next to it: a second call returns the
 * cached file. The module's vermagic is checked against kver. *ret_path is
 * the module's path. Each step prints its time. */
int kmod_build_debian(const struct kmod_spec *spec, const char *kver, const char *pkgver,
                      char **ret_path);

/* The cached module for (kver, pkgver, key) if there is one, else NULL. */
char *kmod_cached(const struct kmod_spec *spec, const char *kver, const char *pkgver);
