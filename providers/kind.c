/* Provider kind: the display-off baseline. kubevirtci's Kind vGPU provider
 * (KUBEVIRT_PROVIDER=kind-1.xx-vgpu) runs the nodes as containers, where no
 * safe render node exists, so the display stays disabled: VGPU_DISPLAY is
 * removed from the environment (`env -u`, visible in the dry-run plan) and
 * no node setup runs. The e2e matrix then compares Kind and VM providers on
 * the same MediatedDevices focus. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "providers/provider.h"
#include "providers/rollback.h"
#include "provision/vgpu/vgpu.h"

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

static int kind_make(struct run_ctx *ctx, struct state *st, const char *target)
{
        _cleanup_strv_free_ char **env = NULL;
        int r = kind_env(ctx, &env);
        if (r < 0)
                return r;
        r = kubevirtci_make(ctx, ctx->cfg->kind.dir, target, env, no_display);
        if (r < 0 || ctx->dry_run)
                return r;
        if (streq(target, "cluster-down")) {
                state_drop_resource(st, KIND_RESOURCE, ctx->cfg->kind.provider);
                return state_save(st);
        }
        return 0;
}

static int kind_up(struct run_ctx *ctx, struct state *st)
{
        const struct config *c = ctx->cfg;
        int r;
        if (!startswith(c->kind.provider, "kind-"))
                return log_error_errno(EINVAL,
                                       "kind.provider must be a kubevirtci Kind provider "
                                       "(kind-1.xx-vgpu), not %s",
                                       c->kind.provider);
        if (!ctx->dry_run && !file_exists(c->kind.dir))
                return log_error_errno(ENOENT, "kind.dir %s does not exist", c->kind.dir);
        /* The fake vGPU goes into this host's kernel, which the Kind nodes
         * share (provision/vgpu/; vgpu: region by default here). */
        if ((r = vgpu_host_setup(ctx, st, config_vgpu_mode(c))) < 0)
                return r;
        if (!ctx->dry_run) {
                state_add_resource(st, KIND_RESOURCE, c->kind.provider);
                if ((r = state_save(st)) < 0)
                        return r;
        }
        r = kind_make(ctx, st, "cluster-up");
        if (r < 0 && !ctx->dry_run &&
            state_resource_is_ours_this_run(st, KIND_RESOURCE, c->kind.provider)) {
                log_notice("rolling back: make cluster-down for the Kind cluster this run started");
                bool was = rollback_begin(ctx);
                (void)kind_make(ctx, st, "cluster-down");
                (void)vgpu_host_teardown(ctx, st);
                rollback_end(ctx, was);
        }
        return r;
}

static int kind_down(struct run_ctx *ctx, struct state *st)
{
        if (!ctx->dry_run && !state_has_resource(st, KIND_RESOURCE, ctx->cfg->kind.provider)) {
                log_notice("the state lists no Kind cluster: nothing to take down");
                return vgpu_host_teardown(ctx, st);
        }
        int r = kind_make(ctx, st, "cluster-down");
        if (r < 0)
                return r;
        return vgpu_host_teardown(ctx, st);
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

static int kind_kubeconfig(struct run_ctx *ctx, struct state *st, char **ret)
{
        (void)st;
        return kubevirtci_find_kubeconfig(ctx, ctx->cfg->kind.dir, ctx->cfg->kind.provider, ret);
}

static const char *kind_kubevirt_provider(struct run_ctx *ctx)
{
        return ctx->cfg->kind.provider;
}

const struct provider_ops provider_kind = {
    .name = "kind",
    .vm_nodes = false,
    .up = kind_up,
    .down = kind_down,
    .status = kind_status,
    .kubeconfig = kind_kubeconfig,
    .kubevirt_provider = kind_kubevirt_provider,
};
