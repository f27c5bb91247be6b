/* Build the kernel's sample mdev driver mbochs (samples/vfio-mdev/mbochs.c)
 * for a node's Debian kernel, on the build host, cached by kernel release:
 * provision/vgpu/kmod.c does the work (headers fetched with apt-get
 * download, no installation); mbochs is not built by Debian (no
 * CONFIG_SAMPLES), so its source comes from linux-source-<major>, of which
 * only mbochs.c is extracted. */
#include <errno.h>

#include "e2e/display/display.h"
#include "provision/vgpu/kmod.h"

static const struct kmod_file mbochs_files[] = {
    {"Kbuild", "obj-m += mbochs.o\n"},
    {NULL, NULL},
};

static const char *const mbochs_from_source[] = {"samples/vfio-mdev/mbochs.c", NULL};

static const struct kmod_spec mbochs_spec_base = {
    .cache_name = "mbochs",
    .module = "mbochs",
    .files = mbochs_files,
    .from_source = mbochs_from_source,
    .hint = "build mbochs.ko for it and pass --mbochs-ko FILE",
};

int mbochs_debian_packages(const char *kver, char ***ret)
{
        return kmod_debian_packages(kver, true, ret);
}

int mbochs_build(const struct cancel *cancel, const char *kver, const char *pkgver, char **ret_path)
{
        struct kmod_spec spec = mbochs_spec_base;

        spec.cancel = cancel;
        return kmod_build_debian(&spec, kver, pkgver, ret_path);
}
