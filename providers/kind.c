/* Provider kind: kubevirtci's Kind vGPU provider (KUBEVIRT_PROVIDER=
 * kind-1.35-vgpu) runs the nodes as containers, where no safe render node
 * exists: no node setup runs, and with KubeVirt main (display always on) a
 * DMABUF fake vGPU fails there with "opengl not available" while a region one
 * works. VGPU_DISPLAY is removed from the environment (`env -u`, visible in
 * the dry-run plan): only the branch of kubevirt PR 16712 reads it, and there
 * Kind's display stays off. The e2e matrix compares Kind and VM providers on
 * the same MediatedDevices focus. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "providers/kubevirtci_preflight.h"
#include "providers/provider.h"
#include "provision/base/plan.h"

#define KIND_RESOURCE "kind-cluster"

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

struct kind_run {
        struct run_ctx *ctx;
        char **env;
};

static void kind_run_free(void *p)
{
        struct kind_run *k = p;
        strv_free(k->env);
        free(k);
}

static int run_record(struct step_run *sr, void *data)
{
        struct kind_run *k = data;
        const struct config *c = k->ctx->cfg;
        int r;

        if (!file_exists(c->kind.dir))
                return log_error_errno(ENOENT, "kind.dir %s does not exist", c->kind.dir);
        if ((r = kubevirtci_check_provider(c->kind.dir, c->kind.provider)) < 0)
                return r;
        r = state_add_resource(sr->st, KIND_RESOURCE, c->kind.provider);
        return r < 0 ? log_error_errno(r, "saving the state file: %m") : 0;
}

static int undo_cluster(struct step_run *sr, void *data)
{
        struct kind_run *k = data;
        const struct config *c = k->ctx->cfg;
        int r;

        if (!state_resource_is_ours_this_run(sr->st, KIND_RESOURCE, c->kind.provider))
                return 0;
        r = kubevirtci_run_make(sr, c->kind.dir, "cluster-down", k->env, no_display);
        if (r >= 0)
                state_drop_resource(sr->st, KIND_RESOURCE, c->kind.provider);
        return r;
}

static int kind_plan_up(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        const struct config *c = ctx->cfg;
        struct kind_run *k = plan_own(p, calloc(1, sizeof(struct kind_run)), kind_run_free);
        struct step *s;
        int r;

        (void)st;
        if (!k)
                return log_error_errno(ENOMEM, "out of memory");
        k->ctx = ctx;
        if (!startswith(c->kind.provider, "kind-"))
                return log_error_errno(EINVAL,
                                       "kind.provider must be a kubevirtci Kind provider "
                                       "(kind-1.35-vgpu), not %s",
                                       c->kind.provider);
        if ((r = kind_env(ctx, &k->env)) < 0)
                return r;
        s = plan_add(p, "kind-record", run_record, k);
        step_acts_on(s, "the state of cluster %s", c->name);
        step_progress(s, "recording Kind cluster %s before it is made", c->kind.provider);
        step_deadline(s, 30);
        step_undo(s, undo_cluster, "make cluster-down, if this run started the cluster");
        s = kubevirtci_plan_make(p, ctx, "kind-up", c->kind.dir, "cluster-up", k->env, no_display);
        step_progress(s,
                      "make cluster-up (KUBEVIRT_PROVIDER=%s, display off: VGPU_DISPLAY "
                      "unset)",
                      c->kind.provider);
        step_undo(s, NULL, "the record step's undo runs make cluster-down");
        return plan_error(p);
}

static int run_forget(struct step_run *sr, void *data)
{
        struct run_ctx *ctx = data;
        state_drop_resource(sr->st, KIND_RESOURCE, ctx->cfg->kind.provider);
        return state_save(sr->st);
}

static int kind_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st)
{
        _cleanup_strv_free_ char **env = NULL;
        struct step *s;
        int r;

        if (!state_has_resource(st, KIND_RESOURCE, ctx->cfg->kind.provider)) {
                log_notice("the state lists no Kind cluster: nothing to take down");
                return 0;
        }
        if ((r = kind_env(ctx, &env)) < 0)
                return r;
        s = kubevirtci_plan_make(p, ctx, "kind-down", ctx->cfg->kind.dir, "cluster-down", env,
                                 no_display);
        step_progress(s, "make cluster-down (KUBEVIRT_PROVIDER=%s)", ctx->cfg->kind.provider);
        s = plan_add(p, "kind-forget", run_forget, ctx);
        step_progress(s, "dropping the cluster from the state");
        step_deadline(s, 30);
        return plan_error(p);
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

static int kind_kubeconfig(struct run_ctx *ctx, char **ret)
{
        *ret = kubevirtci_kubeconfig_path(ctx->cfg->kind.dir, ctx->cfg->kind.provider);
        return *ret ? 0 : -ENOMEM;
}

static int kind_ci_config_dir(struct run_ctx *ctx, char **ret)
{
        *ret = kubevirtci_config_path(ctx->cfg->kind.dir);
        return *ret ? 0 : -ENOMEM;
}

static const char *kind_kubevirt_provider(struct run_ctx *ctx)
{
        return ctx->cfg->kind.provider;
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
    .kubeconfig = kind_kubeconfig,
    .kubevirt_provider = kind_kubevirt_provider,
    .ci_config_dir = kind_ci_config_dir,
};
