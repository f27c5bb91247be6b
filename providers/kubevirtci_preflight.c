/* Checks before kubevirtci's `make cluster-up` (see kubevirtci_preflight.h). */
#include "providers/kubevirtci_preflight.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "provision/base/plan.h"

#define GPU_PACKAGES "qemu-device-display-virtio-gpu qemu-device-display-virtio-gpu-pci"

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The providers a checkout has: cluster-up/cluster/NAME/provider.sh. */
static char *available_providers(const char *cluster_dir)
{
        _cleanup_strv_free_ char **names = NULL;
        DIR *d = opendir(cluster_dir);

        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *p =
                    strdup_printf("%s/%s/provider.sh", cluster_dir, de->d_name);
                if (de->d_name[0] != '.' && p && file_exists(p))
                        strv_extend(&names, de->d_name);
        }
        if (d)
                closedir(d);
        if (!names)
                return strdup("none");
        qsort(names, strv_length(names), sizeof(char *), cmp_str);
        return strv_join(names, ", ");
}

int kubevirtci_check_provider(const char *checkout, const char *provider)
{
        _cleanup_free_ char *up = kubevirtci_cluster_up_dir(checkout);
        _cleanup_free_ char *cluster = up ? strdup_printf("%s/cluster", up) : NULL;
        _cleanup_free_ char *sh =
            cluster ? strdup_printf("%s/%s/provider.sh", cluster, provider) : NULL;
        _cleanup_free_ char *list = NULL;

        if (!sh)
                return log_error_errno(ENOMEM, "out of memory");
        if (!file_exists(up))
                return log_error_errno(EINVAL,
                                       "%s is neither a kubevirtci nor a kubevirt checkout: no "
                                       "cluster-up/ (or kubevirtci/cluster-up/) in it",
                                       checkout);
        if (strchr(provider, '/') == NULL && file_exists(sh))
                return 0;
        list = available_providers(cluster);
        return log_error_errno(EINVAL,
                               "KUBEVIRT_PROVIDER %s does not exist in %s (no %s); it has: %s",
                               provider, checkout, sh, list ? list : "?");
}

/* KUBEVIRTCI_TAG=${KUBEVIRTCI_TAG:-TAG} in a kubevirt checkout's vendored
 * kubevirtci/cluster-up/hack/common.sh. */
static char *pinned_tag(const char *checkout)
{
        _cleanup_free_ char *p = strdup_printf("%s/kubevirtci/cluster-up/hack/common.sh", checkout);
        _cleanup_free_ char *text = NULL;
        static const char key[] = "KUBEVIRTCI_TAG=${KUBEVIRTCI_TAG:-";
        const char *s;

        if (!p || read_full_file(p, &text, NULL) < 0 || !(s = strstr(text, key)))
                return NULL;
        s += strlen(key);
        return strcspn(s, "}\n") > 0 && s[strcspn(s, "}\n")] == '}' ? strndup(s, strcspn(s, "}"))
                                                                    : NULL;
}

int kubevirtci_tag_env(const struct config *c, const char *checkout, char ***env)
{
        const char *from_env = getenv("KUBEVIRTCI_TAG");
        _cleanup_free_ char *pinned = NULL;
        const char *tag = !isempty(from_env) ? from_env : c->kubevirtci.tag;

        if (!tag && (pinned = pinned_tag(checkout)))
                tag = pinned;
        if (tag)
                return strv_push(env, strdup_printf("KUBEVIRTCI_TAG=%s", tag)) < 0
                           ? log_error_errno(ENOMEM, "out of memory")
                           : 0;
        /* kubevirtci accepts a gocli image of the user's instead. */
        if (!isempty(getenv("KUBEVIRTCI_GOCLI_CONTAINER")))
                return 0;
        return log_error_errno(EINVAL,
                               "%s: KUBEVIRTCI_TAG is not set and %s pins none (a kubevirt "
                               "checkout pins it in kubevirtci/cluster-up/hack/common.sh; a "
                               "kubevirtci checkout's Makefile would fetch the latest with curl "
                               "from storage.googleapis.com, and without it cluster-up dies with "
                               "\"FATAL: either KUBEVIRTCI_TAG or KUBEVIRTCI_GOCLI_CONTAINER must "
                               "be set\"). Set kubevirtci.tag in the config or export "
                               "KUBEVIRTCI_TAG, e.g. the tag your kubevirt checkout pins.",
                               c->path, checkout);
}

static int no_node_image(const struct config *c, const char *why)
{
        const char *p = c->kubevirtci.provider;

        return log_error_errno(
            EINVAL,
            "%s: %s. kubevirtci's node image quay.io/kubevirtci/%s is built from its centos9 "
            "image, Fedora 43 with only qemu-kvm-core (cluster-provision/centos9/Dockerfile), "
            "whose QEMU has no virtio-gpu-pci device (Fedora packages it as "
            "qemu-device-display-virtio-gpu-pci, pulled in only by the full qemu-system-x86): "
            "the node's QEMU would exit at start on `--qemu-args '-device virtio-gpu-pci'`. "
            "Build one that has it, push it to a registry, and name it in kubevirtci.node_image:\n"
            "  printf 'FROM quay.io/kubevirtci/%s:TAG\\nRUN dnf -y install " GPU_PACKAGES
            " && dnf clean all\\n' | docker build -t REGISTRY/ORG/%s:TAG -\n"
            "  docker push REGISTRY/ORG/%s:TAG   # then kubevirtci.node_image: "
            "REGISTRY/ORG/%s:TAG\n"
            "(TAG: the KUBEVIRTCI_TAG of the cluster; docs/providers.md)",
            c->path, why, p, p, p, p, p);
}

int kubevirtci_node_image_env(const struct config *c, char ***env)
{
        const char *img = c->kubevirtci.node_image, *provider = c->kubevirtci.provider;
        const char *first, *last, *colon;
        _cleanup_free_ char *why = NULL;
        int r = 0;

        if (isempty(img))
                return no_node_image(c, "kubevirtci.node_image is not set");
        first = strchr(img, '/');
        last = strrchr(img, '/');
        colon = last ? strchr(last, ':') : NULL;
        /* gocli pulls REGISTRY/ORG/PROVIDER + ":" KUBEVIRTCI_CONTAINER_SUFFIX. */
        if (!first || first == last || !colon || colon[1] == 0 ||
            (size_t)(colon - last - 1) != strlen(provider) ||
            !strneq(last + 1, provider, strlen(provider))) {
                why = strdup_printf("kubevirtci.node_image %s is not REGISTRY/ORG/%s:TAG (gocli "
                                    "pulls REGISTRY/ORG/KUBEVIRT_PROVIDER:SUFFIX)",
                                    img, provider);
                return no_node_image(c, why ? why : "kubevirtci.node_image is malformed");
        }
        r |= strv_push(
            env, strdup_printf("KUBEVIRTCI_CONTAINER_REGISTRY=%.*s", (int)(first - img), img));
        r |= strv_push(env, strdup_printf("KUBEVIRTCI_CONTAINER_ORG=%.*s", (int)(last - first - 1),
                                          first + 1));
        r |= strv_push(env, strdup_printf("KUBEVIRTCI_CONTAINER_SUFFIX=%s", colon + 1));
        return r < 0 ? log_error_errno(ENOMEM, "out of memory") : 0;
}

/* As cluster/ephemeral-provider-common.sh picks it: KUBEVIRTCI_RUNTIME,
 * else docker when there is one, else podman. */
const char *kubevirtci_container_cli(void)
{
        const char *rt = getenv("KUBEVIRTCI_RUNTIME");
        _cleanup_free_ char *docker = NULL;

        if (rt && (streq(rt, "podman") || streq(rt, "docker")))
                return rt;
        docker = find_program("docker");
        return docker ? "docker" : "podman";
}

/* QEMU's "Display devices:" section of `-device help`, for the message. */
static char *display_devices(const char *out)
{
        const char *s = out ? strstr(out, "Display devices:") : NULL;
        const char *end = s ? strstr(s, "\n\n") : NULL;

        if (!s)
                return strdup("(no \"Display devices\" section in its -device help)");
        return end ? strndup(s, (size_t)(end - s)) : strdup(s);
}

int kubevirtci_check_node_image(struct step_run *sr)
{
        const char *img = sr->ctx->cfg->kubevirtci.node_image;
        char *const argv[] = {(char *)kubevirtci_container_cli(),
                              "run",
                              "--rm",
                              "--entrypoint",
                              "/usr/bin/qemu-kvm",
                              (char *)img,
                              "-device",
                              "help",
                              NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        _cleanup_free_ char *shown = NULL;
        int r = step_run_program_full(sr, "node image: does its QEMU have virtio-gpu-pci?", argv,
                                      NULL, NULL, NULL, &res);

        if (r < 0)
                return r;
        if (res.exit_code == 0 && res.out.data && strstr(res.out.data, "\"virtio-gpu-pci\""))
                return 0;
        shown = res.exit_code == 0 ? display_devices(res.out.data)
                                   : strdup(res.err.data ? res.err.data : "");
        r = log_error_errno(EINVAL,
                            "kubevirtci.node_image %s: its QEMU %s virtio-gpu-pci (%s run "
                            "--rm --entrypoint /usr/bin/qemu-kvm %s -device help exited %d):\n%s\n"
                            "Install " GPU_PACKAGES " into it (docs/providers.md).",
                            img, res.exit_code == 0 ? "has no" : "could not be asked about",
                            argv[0], img, res.exit_code, shown ? shown : "");
        return r;
}
