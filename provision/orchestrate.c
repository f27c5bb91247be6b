/* up/down/status orchestration (see orchestrate.h). */
#include "provision/orchestrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/provider.h"
#include "provision/cluster_setup.h"
#include "provision/node_setup.h"
#include "provision/base/state.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static int open_state(struct run_ctx *ctx, const struct provider_ops *p, struct state *st)
{
        int r = state_open(st, ctx->state_dir, ctx->cfg->name, p->name);

        if (r < 0)
                return log_error_errno(r, "opening the state in %s: %m", ctx->state_dir);
        return 0;
}

int provision_up(struct run_ctx *ctx)
{
        const struct provider_ops *p = provider_for_config(ctx->cfg);
        _cleanup_(cJSON_Deletep) cJSON *verdicts = NULL;
        _cleanup_free_ char *kubeconfig = NULL;
        struct state st = {0};
        double t0 = now_seconds();
        int r;

        if (!p)
                return log_error_errno(ENOTSUP, "provider %s is not built in",
                                       provider_names[ctx->cfg->provider]);
        if (ctx->dry_run)
                ctx_plan(ctx, "plan for cluster '%s' (provider %s, %u node(s), gpu %s), from %s",
                         ctx->cfg->name, p->name, ctx->cfg->nodes.count, gpu_names[ctx->cfg->gpu],
                         ctx->cfg->path);
        if (ctx->dry_run) {
                /* A dry run must not create the state dir either. */
                st.root = cJSON_CreateObject();
                st.run_id = strdup("dry-run");
                st.path = strdup_printf("%s/state.json", ctx->state_dir);
        } else if ((r = open_state(ctx, p, &st)) < 0)
                return r;

        r = p->up(ctx, &st);
        if (r < 0)
                goto forget_if_empty;
        if (!ctx->dry_run && getenv("VGPUENV_TEST_FAIL_AFTER_UP")) {
                r = log_error_errno(EIO, "failure injected after the nodes came up "
                                         "(VGPUENV_TEST_FAIL_AFTER_UP)");
                goto rollback;
        }
        if (p->vm_nodes) {
                r = node_setup_all(ctx, &st, &verdicts);
                if (verdicts && !ctx->dry_run) {
                        printf("\nnode verdicts:\n");
                        node_verdicts_print(verdicts, stdout);
                        fflush(stdout);
                }
                if (r < 0 && r != -EIO)
                        goto rollback;
                if (r == -EIO) {
                        log_error("the render-node probe failed on at least one node (see the "
                                  "table above); the nodes stay up for inspection");
                        goto out;
                }
        }
        if (p->kubeconfig && p->kubeconfig(ctx, &st, &kubeconfig) >= 0) {
                r = cluster_setup(ctx, &st, kubeconfig);
                if (r < 0)
                        goto rollback;
        }
        if (!ctx->dry_run)
                log_info("cluster %s is up (%.0fs)", ctx->cfg->name, now_seconds() - t0);
        goto out;

rollback:
        /* The nodes came up but a later step failed or was interrupted: what
         * this run made goes, as if up itself had failed. A failed probe
         * (-EIO) does not get here: those nodes stay for inspection. */
        if (!ctx->dry_run && p->rollback) {
                log_notice("%s: removing what this run created",
                           r == -ECANCELED || ctx_cancelled(ctx) ? "interrupted" : "up failed");
                if (p->rollback(ctx, &st) < 0)
                        log_error("rollback incomplete: run 'vgpuenv down -c %s' to finish",
                                  ctx->cfg->path);
        }
forget_if_empty:
        /* A first run that rolled everything back leaves no state. */
        if (!ctx->dry_run &&
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st.root, "resources")) == 0) {
                state_remove(&st);
                rm_rf(ctx->state_dir);
        }
out:
        state_done(&st);
        return r;
}

int provision_down(struct run_ctx *ctx)
{
        const struct provider_ops *p = provider_for_config(ctx->cfg);
        struct state st = {0};
        int r;

        if (!p)
                return log_error_errno(ENOTSUP, "provider %s is not built in",
                                       provider_names[ctx->cfg->provider]);
        if (ctx->dry_run) {
                st.root = cJSON_CreateObject();
                st.path = strdup_printf("%s/state.json", ctx->state_dir);
                r = p->down(ctx, &st);
                state_done(&st);
                return r;
        }
        r = open_state(ctx, p, &st);
        if (r < 0)
                return r;
        r = p->down(ctx, &st);
        if (r >= 0) {
                state_remove(&st);
                rm_rf(ctx->state_dir);
                log_info("cluster %s is down; nothing of it is left", ctx->cfg->name);
        }
        state_done(&st);
        return r;
}

int provision_status(struct run_ctx *ctx, cJSON **ret)
{
        const struct provider_ops *p = provider_for_config(ctx->cfg);
        _cleanup_(cJSON_Deletep) cJSON *out = cJSON_CreateObject();
        struct state st = {0};
        int r;

        if (!p || !out)
                return -ENOMEM;
        cJSON_AddStringToObject(out, "cluster", ctx->cfg->name);
        cJSON_AddStringToObject(out, "provider", p->name);
        _cleanup_free_ char *path = strdup_printf("%s/state.json", ctx->state_dir);
        if (!path || !file_exists(path)) {
                cJSON_AddBoolToObject(out, "up", false);
                cJSON_AddItemToObject(out, "nodes", cJSON_CreateArray());
                *ret = TAKE_PTR(out);
                return 0;
        }
        r = open_state(ctx, p, &st);
        if (r < 0)
                return r;
        cJSON_AddBoolToObject(out, "up", true);
        const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(st.root, "nodes");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(st.root, "resources");
        cJSON_AddItemToObject(out, "nodes",
                              nodes ? cJSON_Duplicate(nodes, true) : cJSON_CreateArray());
        cJSON_AddItemToObject(out, "resources",
                              res ? cJSON_Duplicate(res, true) : cJSON_CreateArray());
        if (p->status)
                r = p->status(ctx, &st, out);
        state_done(&st);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}
