/* up/down/status orchestration (see orchestrate.h). */
#include "provision/orchestrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/provider.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"
#include "provision/cluster_images.h"
#include "provision/cluster_setup.h"
#include "provision/node_setup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static const struct provider_ops *provider_of(struct run_ctx *ctx)
{
        const struct provider_ops *p = provider_for_config(ctx->cfg);

        if (!p)
                log_error("provider %s is not built in", provider_names[ctx->cfg->provider]);
        return p;
}

static int build_up(struct plan *plan, struct run_ctx *ctx, const struct provider_ops *p,
                    const struct state *st)
{
        _cleanup_free_ char *kubeconfig = NULL;
        int r = p->plan_up(plan, ctx, st);

        if (r < 0)
                return r;
        if (p->vm_nodes) {
                _cleanup_strv_free_ char **names = p->node_names ? p->node_names(ctx->cfg) : NULL;
                if (!names)
                        return log_error_errno(ENOMEM, "out of memory");
                if ((r = node_setup_plan(plan, ctx, names, true, true, NULL)) < 0)
                        return r;
        }
        if (!p->makes_kubernetes)
                return plan_error(plan);
        if ((r = p->kubeconfig(ctx, &kubeconfig)) < 0)
                return log_error_errno(r, "provider %s gives no kubeconfig path: %m", p->name);
        /* The images first (the webhook's manifests name mesa-injector's),
         * the GL launcher once KubeVirt is configured. */
        if (p->deploys_webhook && (r = cluster_images_plan_webhook(plan, ctx, p->registry)) < 0)
                return r;
        if ((r = cluster_setup_plan(plan, ctx, kubeconfig, p->labels_nodes, p->deploys_webhook)) <
            0)
                return r;
        return p->deploys_webhook ? cluster_images_plan_launcher(plan, ctx, kubeconfig, p->registry)
                                  : 0;
}

static struct plan *new_plan(struct run_ctx *ctx, const struct provider_ops *p, const char *verb)
{
        const struct config *c = ctx->cfg;
        _cleanup_free_ char *title =
            strdup_printf("%s cluster '%s' (provider %s, %u node(s), gpu %s), from %s", verb,
                          c->name, p->name, c->nodes.count, gpu_names[c->gpu], c->path);

        return title ? plan_new(title) : NULL;
}

static int build_plan(struct plan *plan, struct run_ctx *ctx, const struct provider_ops *p,
                      struct state *st, bool up)
{
        return up ? build_up(plan, ctx, p, st) : p->plan_down(plan, ctx, st);
}

/* Dry run: plan from the state as it is, create nothing, print. */
static int print_plan(struct run_ctx *ctx, const struct provider_ops *p, bool up)
{
        _cleanup_plan_ struct plan *plan = new_plan(ctx, p, up ? "up" : "down");
        _cleanup_(state_done) struct state st = {0};
        int r = state_peek(&st, ctx->state_dir, ctx->cfg->name, p->name);

        if (r < 0 || !plan)
                return r < 0 ? r : log_error_errno(ENOMEM, "out of memory");
        r = build_plan(plan, ctx, p, &st, up);
        if (r < 0)
                return r;
        return plan_print(plan, stdout);
}

/* Lock, log, state: what a real up or down needs before planning. */
static int begin_run(struct run_ctx *ctx, const struct provider_ops *p, const char *verb,
                     struct state *st)
{
        int r = run_ctx_lock(ctx, verb, ctx->cfg->deadlines.lock);

        if (r < 0)
                return r;
        if ((r = run_ctx_open_log(ctx, verb)) < 0)
                return r;
        r = state_open(st, ctx->state_dir, ctx->cfg->name, p->name);
        return r < 0 ? log_error_errno(r, "opening the state in %s: %m", ctx->state_dir) : 0;
}

/* A first run that rolled everything back leaves no state behind. */
static void forget_if_empty(struct run_ctx *ctx, struct state *st)
{
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st->root, "resources")) != 0)
                return;
        state_remove(st);
        rm_rf(ctx->state_dir);
}

/* What up and down do before running their plan: a dry run prints it and
 * ends there (0); a real run locks, opens its log and the state, and builds
 * the plan (1). An up whose plan cannot be built forgets an empty state. */
static int prepare(struct run_ctx *ctx, bool up, bool dry_run, struct state *st,
                   struct plan **ret_plan)
{
        const struct provider_ops *p = provider_of(ctx);
        const char *verb = up ? "up" : "down";
        int r;

        if (!p)
                return -ENOTSUP;
        if (dry_run)
                return print_plan(ctx, p, up);
        if ((r = begin_run(ctx, p, verb, st)) < 0)
                return r;
        *ret_plan = new_plan(ctx, p, verb);
        if (!*ret_plan)
                return log_error_errno(ENOMEM, "out of memory");
        r = build_plan(*ret_plan, ctx, p, st, up);
        if (r < 0 && up)
                forget_if_empty(ctx, st);
        return r < 0 ? r : 1;
}

int provision_up(struct run_ctx *ctx, bool dry_run)
{
        _cleanup_(state_done) struct state st = {0};
        _cleanup_plan_ struct plan *plan = NULL;
        struct plan_result res = {0};
        int r = prepare(ctx, true, dry_run, &st, &plan);

        if (r <= 0)
                return r;
        r = plan_run(plan, ctx, &st, &res);
        if (r < 0) {
                if (res.undo_incomplete)
                        log_error("rollback incomplete: run 'vgpuenv down -c %s' to finish",
                                  ctx->cfg->path);
                forget_if_empty(ctx, &st);
                return r;
        }
        if (r == STEP_HALT)
                return -EIO; /* the verdicts step said which node failed */
        log_info("cluster %s is up (%.0fs)", ctx->cfg->name, res.elapsed);
        return 0;
}

int provision_down(struct run_ctx *ctx, bool dry_run)
{
        _cleanup_(state_done) struct state st = {0};
        _cleanup_plan_ struct plan *plan = NULL;
        int r = prepare(ctx, false, dry_run, &st, &plan);

        if (r <= 0)
                return r;
        r = plan_run(plan, ctx, &st, NULL);
        if (r < 0)
                return r;
        state_remove(&st);
        rm_rf(ctx->state_dir);
        log_info("cluster %s is down; nothing of it is left", ctx->cfg->name);
        return 0;
}

int provision_status(struct run_ctx *ctx, cJSON **ret)
{
        const struct provider_ops *p = provider_of(ctx);
        _cleanup_(cJSON_Deletep) cJSON *out = cJSON_CreateObject();
        _cleanup_(state_done) struct state st = {0};
        _cleanup_free_ char *path = strdup_printf("%s/state.json", ctx->state_dir);
        int r;

        if (!p || !out || !path)
                return -ENOMEM;
        cJSON_AddStringToObject(out, "cluster", ctx->cfg->name);
        cJSON_AddStringToObject(out, "provider", p->name);
        if (!file_exists(path)) {
                cJSON_AddBoolToObject(out, "up", false);
                cJSON_AddItemToObject(out, "nodes", cJSON_CreateArray());
                *ret = TAKE_PTR(out);
                return 0;
        }
        r = state_peek(&st, ctx->state_dir, ctx->cfg->name, p->name);
        if (r < 0)
                return log_error_errno(r, "opening the state in %s: %m", ctx->state_dir);
        cJSON_AddBoolToObject(out, "up", true);
        const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(st.root, "nodes");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(st.root, "resources");
        cJSON_AddItemToObject(out, "nodes",
                              nodes ? cJSON_Duplicate(nodes, true) : cJSON_CreateArray());
        cJSON_AddItemToObject(out, "resources",
                              res ? cJSON_Duplicate(res, true) : cJSON_CreateArray());
        if (p->status && (r = p->status(ctx, &st, out)) < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

int provision_probe(struct run_ctx *ctx, cJSON **ret_verdicts)
{
        const struct provider_ops *p = provider_of(ctx);
        _cleanup_(state_done) struct state st = {0};
        _cleanup_plan_ struct plan *plan = NULL;
        _cleanup_strv_free_ char **names = NULL;
        cJSON *verdicts = NULL;
        const cJSON *n;
        int r;

        if (!p)
                return -ENOTSUP;
        if ((r = begin_run(ctx, p, "probe", &st)) < 0)
                return r;
        /* The nodes the state lists: those a provider really brought up. */
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(st.root, "nodes"))
        {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(n, "name");
                if (cJSON_IsString(nm) && strv_extend(&names, nm->valuestring) < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        }
        if (!names)
                return log_error_errno(ENOENT, "cluster %s lists no nodes: is it up?",
                                       ctx->cfg->name);
        plan = new_plan(ctx, p, "probe");
        if (!plan)
                return log_error_errno(ENOMEM, "out of memory");
        bool json = ctx->json;
        ctx->json = true; /* the caller prints the verdicts */
        r = node_setup_plan(plan, ctx, names, false, false, &verdicts);
        ctx->json = json;
        if (r >= 0)
                r = plan_run(plan, ctx, &st, NULL);
        if (verdicts && ret_verdicts)
                *ret_verdicts = cJSON_Duplicate(verdicts, true);
        if (r < 0)
                return r;
        cJSON_ArrayForEach(
            n, verdicts) if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "ok"))) return -EIO;
        return 0;
}
