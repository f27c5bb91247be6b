/* How KubeVirt's functional suite learns which cluster to test, as upstream
 * reads it (kubevirt main d923fdb, kubevirtci main 39bd494):
 *
 *   hack/functests.sh -> hack/config.sh -> kubevirtci/cluster-up/hack/config.sh
 *   unsets kubeconfig and docker_prefix, then sources
 *   ${KUBEVIRTCI_CONFIG_PATH}/$KUBEVIRT_PROVIDER/config-provider-$KUBEVIRT_PROVIDER.sh
 *   and runs the suite with -kubeconfig=${kubeconfig} -container-prefix=...
 *
 * $KUBECONFIG is never read by the suite itself. For kubevirtci and kind
 * clusters that file is the one their `make cluster-up` wrote (kubeconfig=
 * an absolute path, docker_prefix=${DOCKER_PREFIX:-localhost:PORT/kubevirt}).
 * Local and kcli clusters are "external" to KubeVirt; for them vgpuenv
 * writes the file `KUBEVIRT_PROVIDER=external make cluster-up` would write
 * (cluster-up/cluster/external/provider.sh, prepare_config), which defers
 * kubeconfig, docker_prefix and docker_tag to ${KUBECONFIG}, ${DOCKER_PREFIX}
 * and ${DOCKER_TAG}: those are exported to make functest, and must be known. */
#pragma once

#include <stdbool.h>

#include "provision/base/config.h"

struct provider_ops;
struct run_ctx;
struct state;

struct suite_config {
        const char *kubevirt_provider; /* KUBEVIRT_PROVIDER */
        bool external;                 /* vgpuenv writes provider_config */
        char *ci_config_path;          /* KUBEVIRTCI_CONFIG_PATH given to make */
        char *provider_config;         /* the file the suite sources */
        char *kubeconfig;              /* the suite's kubeconfig, exported as KUBECONFIG */
        char *docker_prefix;           /* exported DOCKER_PREFIX, or NULL */
        char *docker_tag;              /* exported DOCKER_TAG, or NULL */
        char *kubectl;                 /* kubectl= of an external provider config */
};

struct suite_config_in {
        const struct config *cfg;
        const struct provider_ops *ops;
        struct run_ctx *ctx;
        struct state *st;
        const char *kubeconfig; /* --kubeconfig, or NULL */
        const char *run_dir;    /* where an external provider config goes */
};

/* Work out everything above without writing anything. A value that cannot
 * be known (image prefix/tag of an external cluster, a kubeconfig, the
 * provider config of a kubevirtci cluster) is named in the logged message:
 * -EINVAL for the config's fault, -ENOENT for a cluster that is not up. */
int suite_config_resolve(const struct suite_config_in *in, struct suite_config *ret);
void suite_config_done(struct suite_config *sc);

/* External clusters: write provider_config (its directory is created). */
int suite_config_write(const struct suite_config *sc);

/* The environment make functest gets from this (added to set/unset). */
int suite_config_env(const struct suite_config *sc, char ***set, char ***unset);
