/* The provider config and environment KubeVirt's suite is given (see
 * suite_config.h). */
#include "e2e/suite_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "providers/provider.h"

#define EXTERNAL_CONFIG_DIR "kubevirtci-config"

void suite_config_done(struct suite_config *sc)
{
        FREE_ALL(sc->ci_config_path, sc->provider_config, sc->kubeconfig, sc->docker_prefix,
                 sc->docker_tag, sc->kubectl);
        *sc = (struct suite_config){0};
}

/* An absolute path for p, which need not exist yet. */
static char *absolute(const char *p)
{
        char cwd[PATH_MAX];

        if (p[0] == '/')
                return strdup(p);
        if (!getcwd(cwd, sizeof(cwd)))
                return NULL;
        return strdup_printf("%s/%s", cwd, p);
}

/* hack/functests.sh passes -kubeconfig=${kubeconfig} unquoted: one file,
 * no list, nothing the shell would split. */
static int check_one_path(const char *what, const char *path)
{
        if (strpbrk(path, ": \t\n"))
                return log_error_errno(EINVAL,
                                       "%s \"%s\": KubeVirt's suite takes one kubeconfig file "
                                       "(hack/functests.sh passes -kubeconfig=${kubeconfig} "
                                       "unquoted): no ':'-separated list, no spaces",
                                       what, path);
        if (!file_exists(path))
                return log_error_errno(ENOENT, "%s %s does not exist", what, path);
        return 0;
}

/* The kubeconfig of a cluster KubeVirt reaches as external. */
static int external_kubeconfig(const struct suite_config_in *in, char **ret)
{
        const struct config *c = in->cfg;
        const char *env = getenv("KUBECONFIG");
        int r;

        if (in->kubeconfig)
                return (*ret = strdup(in->kubeconfig)) ? 0 : -ENOMEM;
        r = in->ops->kubeconfig ? in->ops->kubeconfig(in->ctx, ret) : -ENOENT;
        if (r == 0 && !file_exists(*ret)) {
                free(*ret);
                *ret = NULL;
                r = -ENOENT; /* the provider's cluster is down */
        }
        if (r != -ENOENT)
                return r;
        /* Bare VM nodes: the Kubernetes on them is the user's. A provider
         * that makes the cluster has none while it is down, and falling back
         * to KUBECONFIG could test another cluster. */
        if (!in->ops->makes_kubernetes && !isempty(env))
                return (*ret = strdup(env)) ? 0 : -ENOMEM;
        if (!in->ops->makes_kubernetes)
                return log_error_errno(ENOENT,
                                       "Provider %s makes no Kubernetes cluster of its own: pass "
                                       "--kubeconfig or set KUBECONFIG to the cluster on the %s "
                                       "nodes.",
                                       in->ops->name, c->name);
        return log_error_errno(ENOENT,
                               "Cluster %s (provider %s) has no kubeconfig: is it up? (`vgpuenv "
                               "status -c %s`), or pass --kubeconfig.",
                               c->name, in->ops->name, c->path);
}

/* DOCKER_PREFIX/DOCKER_TAG: the environment, then the config. */
static char *image_value(const char *env_name, const char *cfg_value)
{
        const char *env = getenv(env_name);

        if (!isempty(env))
                return strdup(env);
        return cfg_value ? strdup(cfg_value) : NULL;
}

static int resolve_external(const struct suite_config_in *in, struct suite_config *sc)
{
        const struct config *c = in->cfg;
        _cleanup_free_ char *run_dir = absolute(in->run_dir);
        int r;

        sc->external = true;
        sc->docker_prefix = image_value("DOCKER_PREFIX", c->kubevirt.docker_prefix);
        sc->docker_tag = image_value("DOCKER_TAG", c->kubevirt.docker_tag);
        if (!sc->docker_prefix || !sc->docker_tag)
                return log_error_errno(EINVAL,
                                       "%s: cluster %s (provider %s) is external to KubeVirt's "
                                       "suite, whose provider config takes docker_prefix from "
                                       "${DOCKER_PREFIX} and docker_tag from ${DOCKER_TAG}; "
                                       "vgpuenv cannot know which KubeVirt images the cluster "
                                       "runs. Missing: %s%s%s. Set them to the registry and tag "
                                       "`make cluster-sync` pushed (e.g. docker_prefix: "
                                       "registry.example:5000/kubevirt, docker_tag: devel), or "
                                       "export DOCKER_PREFIX and DOCKER_TAG.",
                                       c->path, c->name, in->ops->name,
                                       sc->docker_prefix ? "" : "kubevirt.docker_prefix",
                                       !sc->docker_prefix && !sc->docker_tag ? ", " : "",
                                       sc->docker_tag ? "" : "kubevirt.docker_tag");
        r = external_kubeconfig(in, &sc->kubeconfig);
        if (r < 0)
                return r;
        if ((r = check_one_path("KUBECONFIG", sc->kubeconfig)) < 0)
                return r;
        sc->kubectl = find_program(c->kubevirt.kubectl);
        sc->ci_config_path = run_dir ? strdup_printf("%s/" EXTERNAL_CONFIG_DIR, run_dir) : NULL;
        sc->provider_config =
            sc->ci_config_path
                ? strdup_printf("%s/external/config-provider-external.sh", sc->ci_config_path)
                : NULL;
        return sc->provider_config ? 0 : -ENOMEM;
}

/* The value of "kubeconfig=" in a provider config: absolute for the files
 * kubevirtci's ephemeral and kind providers write; NULL when deferred to
 * the environment ("${KUBECONFIG}") or absent. */
static char *provider_config_kubeconfig(const char *text)
{
        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (!startswith(p, "kubeconfig="))
                        continue;
                p += strlen("kubeconfig=");
                size_t n = strcspn(p, "\n");
                if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0]) {
                        p++;
                        n -= 2;
                }
                return memchr(p, '$', n) ? NULL : strndup(p, n);
        }
        return NULL;
}

static int resolve_ci(const struct suite_config_in *in, struct suite_config *sc)
{
        const struct config *c = in->cfg;
        _cleanup_free_ char *text = NULL;
        int r = in->ops->ci_config_dir(in->ctx, &sc->ci_config_path);

        if (r < 0)
                return r;
        if (in->kubeconfig)
                return log_error_errno(EINVAL,
                                       "--kubeconfig: KubeVirt's suite reads the kubeconfig of a "
                                       "%s cluster from its provider config (%s/%s/config-provider-"
                                       "%s.sh, kubeconfig=...); --kubeconfig is for clusters it "
                                       "reaches as external (local, kcli)",
                                       in->ops->name, sc->ci_config_path, sc->kubevirt_provider,
                                       sc->kubevirt_provider);
        sc->provider_config = strdup_printf("%s/%s/config-provider-%s.sh", sc->ci_config_path,
                                            sc->kubevirt_provider, sc->kubevirt_provider);
        if (!sc->provider_config)
                return -ENOMEM;
        if (read_full_file(sc->provider_config, &text, NULL) < 0)
                return log_error_errno(ENOENT,
                                       "Cluster %s (provider %s) has no provider config %s: "
                                       "kubevirtci's `make cluster-up` writes it (prepare_config) "
                                       "and KubeVirt's suite reads the kubeconfig from it. Is the "
                                       "cluster up? (`vgpuenv up -c %s`)",
                                       c->name, in->ops->name, sc->provider_config, c->path);
        sc->kubeconfig = provider_config_kubeconfig(text);
        if (!sc->kubeconfig && in->ops->kubeconfig &&
            (r = in->ops->kubeconfig(in->ctx, &sc->kubeconfig)) < 0)
                return log_error_errno(r, "Cluster %s has no kubeconfig: is it up?", c->name);
        if (!sc->kubeconfig)
                return log_error_errno(ENOENT, "%s sets no kubeconfig", sc->provider_config);
        if ((r = check_one_path(sc->provider_config, sc->kubeconfig)) < 0)
                return r;
        /* Unset, the provider config's own default applies
         * (${DOCKER_PREFIX:-localhost:PORT/kubevirt}). */
        sc->docker_prefix = image_value("DOCKER_PREFIX", c->kubevirt.docker_prefix);
        sc->docker_tag = image_value("DOCKER_TAG", c->kubevirt.docker_tag);
        return 0;
}

int suite_config_resolve(const struct suite_config_in *in, struct suite_config *ret)
{
        const char *kp = in->ops->kubevirt_provider ? in->ops->kubevirt_provider(in->ctx) : NULL;
        int r;

        *ret = (struct suite_config){.kubevirt_provider = isempty(kp) ? "external" : kp};
        r = in->ops->ci_config_dir ? resolve_ci(in, ret) : resolve_external(in, ret);
        if (r == -ENOMEM)
                log_error("Out of memory");
        return r;
}

int suite_config_write(const struct suite_config *sc)
{
        _cleanup_free_ char *dir = NULL, *text = NULL;
        int r;

        if (!sc->external)
                return 0;
        dir = strdup(sc->provider_config);
        if (!dir)
                return log_error_errno(ENOMEM, "Out of memory");
        *strrchr(dir, '/') = 0;
        /* The lines of prepare_config in kubevirtci's
         * cluster-up/cluster/external/provider.sh (39bd494), values deferred
         * to the environment of the shell that sources the file. */
        text = strdup_printf("# Written by vgpuenv e2e run as `KUBEVIRT_PROVIDER=external make "
                             "cluster-up` would\n# (kubevirtci cluster-up/cluster/external/"
                             "provider.sh, prepare_config).\n"
                             "kubeconfig=${KUBECONFIG}\n"
                             "docker_tag=${DOCKER_TAG}\n"
                             "docker_prefix=${DOCKER_PREFIX}\n"
                             "manifest_docker_prefix=${MANIFEST_DOCKER_PREFIX:-$DOCKER_PREFIX}\n"
                             "image_pull_policy=${IMAGE_PULL_POLICY:-Always}\n"
                             "%s%s%s",
                             sc->kubectl ? "kubectl=" : "", sc->kubectl ? sc->kubectl : "",
                             sc->kubectl ? "\n" : "");
        if (!text)
                return log_error_errno(ENOMEM, "Out of memory");
        if ((r = mkdir_p(dir, 0755)) < 0)
                return log_error_errno(r, "Cannot create %s: %s", dir, strerror(-r));
        r = write_file_atomic(sc->provider_config, text, strlen(text), 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %s", sc->provider_config, strerror(-r));
        return 0;
}

int suite_config_env(const struct suite_config *sc, char ***set, char ***unset)
{
        int r = 0;

        r |= strv_push(set, strdup_printf("KUBEVIRT_PROVIDER=%s", sc->kubevirt_provider));
        r |= strv_push(set, strdup_printf("KUBEVIRTCI_CONFIG_PATH=%s", sc->ci_config_path));
        r |= strv_push(set, strdup_printf("KUBECONFIG=%s", sc->kubeconfig));
        if (sc->docker_prefix)
                r |= strv_push(set, strdup_printf("DOCKER_PREFIX=%s", sc->docker_prefix));
        else /* an empty one would still override the provider config's default */
                r |= strv_extend(unset, "DOCKER_PREFIX");
        if (sc->docker_tag)
                r |= strv_push(set, strdup_printf("DOCKER_TAG=%s", sc->docker_tag));
        else
                r |= strv_extend(unset, "DOCKER_TAG");
        return r < 0 ? log_error_errno(ENOMEM, "Out of memory") : 0;
}
