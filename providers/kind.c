/* Provider kind: kubevirtci's Kind vGPU provider (KUBEVIRT_PROVIDER=
 * kind-1.35-vgpu) runs the nodes as containers, where no safe render node
 * exists: no node setup runs, and with KubeVirt main (display always on) a
 * DMABUF fake vGPU fails there with "opengl not available" while a region one
 * works. VGPU_DISPLAY is removed from the environment (`env -u`, visible in
 * the dry-run plan): only the branch of kubevirt PR 16712 reads it, and there
 * Kind's display stays off. The fake vGPU goes into this host's kernel, which
 * the Kind nodes share: a step of the plan before the cluster (host-vgpu,
 * provision/vgpu/vgpu_host.c). The e2e matrix compares Kind and VM providers
 * on the same MediatedDevices focus. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "providers/kubevirtci_cluster.h"
#include "providers/provider.h"
#include "provision/base/plan.h"
#include "provision/vgpu/vgpu.h"

static int kind_env(struct run_ctx *ctx, char ***ret)
{
        const struct config *c = ctx->cfg;
        _cleanup_strv_free_ char **env = NULL;
        if (strv_push(&env, strdup_printf("KUBEVIRT_PROVIDER=%s", c->kind.provider)) < 0 ||
            strv_push(&env, strdup_printf("KUBEVIRT_NUM_NODES=%u", c->nodes.count)) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        *ret = TAKE_PTR(env);
        return 0;
}

/* Explicitly unset, whatever the user's shell exported. */
static char *const no_display[] = {"env", "-u", "VGPU_DISPLAY", NULL};

static int kind_plan_up(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        const struct config *c = ctx->cfg;
        struct kubevirtci_cluster *k;
        char **env = NULL;
        int r;

        (void)st;
        if (!startswith(c->kind.provider, "kind-"))
                return log_error_errno(EINVAL,
                                       "kind.provider must be a kubevirtci Kind provider "
                                       "(kind-1.35-vgpu), not %s",
                                       c->kind.provider);
        if ((r = kind_env(ctx, &env)) < 0)
                return r;
        if (!(k = kubevirtci_cluster_new(p, ctx, env, no_display)))
                return -ENOMEM;
        /* The fake vGPU goes into this host's kernel, which the Kind nodes
         * share (provision/vgpu/; vgpu: region by default here), before the
         * cluster: its undo runs after make cluster-down. */
        if ((r = vgpu_host_plan_up(p, ctx)) < 0)
                return r;
        step_progress(kubevirtci_cluster_plan_up(p, k, "Kind"),
                      "make cluster-up (KUBEVIRT_PROVIDER=%s, display off: VGPU_DISPLAY "
                      "unset)",
                      c->kind.provider);
        return plan_error(p);
}

static int kind_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        char **env = NULL;
        int r = kind_env(ctx, &env);

        if (r >= 0)
                r = kubevirtci_cluster_plan_down(p, ctx, st, env, no_display);
        /* Then the host's fake vGPU, when this cluster's up loaded it. */
        return r < 0 ? r : vgpu_host_plan_down(p, ctx, st);
}

static int kind_status(struct run_ctx *ctx, struct state *st, cJSON *out)
{
        (void)st;
        cJSON *o = cJSON_AddObjectToObject(out, "kind");
        cJSON_AddStringToObject(o, "dir", ctx->cfg->kind.dir ? ctx->cfg->kind.dir : "");
        cJSON_AddStringToObject(o, "provider", ctx->cfg->kind.provider);
        cJSON_AddBoolToObject(o, "display", false);
        return 0;
}

const struct provider_ops provider_kind = {
    .name = "kind",
    .vm_nodes = false,
    .makes_kubernetes = true,
    .labels_nodes = false,    /* containers: no render-node probe ran */
    .deploys_webhook = false, /* the display-off baseline */
    .plan_up = kind_plan_up,
    .plan_down = kind_plan_down,
    .status = kind_status,
    .kubeconfig = kubevirtci_cluster_kubeconfig,
    .kubevirt_provider = kubevirtci_cluster_kubevirt_provider,
    .ci_config_dir = kubevirtci_cluster_ci_config_dir,
};
