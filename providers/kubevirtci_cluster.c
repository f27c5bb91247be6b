/* One cluster in a kubevirt or kubevirtci checkout (see kubevirtci_cluster.h). */
#include "providers/kubevirtci_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"
#include "providers/kubevirtci.h"
#include "providers/kubevirtci_preflight.h"
#include "provision/base/plan.h"

/* Which section of the config names the checkout: only the two providers
 * that drive one use this file. */
static void checkout_of(const struct config *c, const char **dir, const char **provider)
{
        if (c->provider == PROVIDER_KIND) {
                *dir = c->kind.dir;
                *provider = c->kind.provider;
        } else {
                *dir = c->kubevirtci.dir;
                *provider = c->kubevirtci.provider;
        }
}

static void cluster_free(void *p)
{
        struct kubevirtci_cluster *k = p;
        strv_free(k->env);
        free(k);
}

static void cluster_init(struct kubevirtci_cluster *k, struct run_ctx *ctx)
{
        const char *name = provider_names[ctx->cfg->provider];

        k->ctx = ctx;
        checkout_of(ctx->cfg, &k->dir, &k->provider);
        snprintf(k->resource, sizeof(k->resource), "%s-cluster", name);
        snprintf(k->dir_key, sizeof(k->dir_key), "%s.dir", name);
}

struct kubevirtci_cluster *kubevirtci_cluster_new(struct plan *p, struct run_ctx *ctx, char **env,
                                                  char *const *argv_prefix)
{
        struct kubevirtci_cluster *k = calloc(1, sizeof(*k));

        if (!k || !plan_own(p, k, cluster_free)) {
                strv_free(env);
                log_error_errno(ENOMEM, "out of memory");
                return NULL;
        }
        cluster_init(k, ctx);
        k->env = env;
        k->argv_prefix = argv_prefix;
        return k;
}

int kubevirtci_cluster_check(const struct kubevirtci_cluster *k)
{
        if (!file_exists(k->dir))
                return log_error_errno(ENOENT, "%s %s does not exist", k->dir_key, k->dir);
        return kubevirtci_check_provider(k->dir, k->provider);
}

int kubevirtci_cluster_record(struct step_run *sr, void *data)
{
        const struct kubevirtci_cluster *k = data;
        int r;

        if ((r = kubevirtci_cluster_check(k)) < 0)
                return r;
        r = state_add_resource(sr->st, k->resource, k->provider);
        return r < 0 ? log_error_errno(r, "saving the state file: %m") : 0;
}

int kubevirtci_cluster_undo(struct step_run *sr, void *data)
{
        const struct kubevirtci_cluster *k = data;
        int r;

        if (!state_resource_is_ours_this_run(sr->st, k->resource, k->provider))
                return 0;
        r = kubevirtci_run_make(sr, k->dir, "cluster-down", k->env, k->argv_prefix);
        if (r >= 0)
                state_drop_resource(sr->st, k->resource, k->provider);
        return r;
}

struct step *kubevirtci_cluster_plan_up(struct plan *p, struct kubevirtci_cluster *k,
                                        const char *what)
{
        const struct config *c = k->ctx->cfg;
        const char *name = provider_names[c->provider];
        char step[48];
        struct step *s;

        snprintf(step, sizeof(step), "%s-record", name);
        s = plan_add(p, step, kubevirtci_cluster_record, k);
        step_acts_on(s, "the state of cluster %s", c->name);
        step_progress(s, "recording %s cluster %s before it is made", what, k->provider);
        step_deadline(s, 30);
        step_undo(s, kubevirtci_cluster_undo, "make cluster-down, if this run started the cluster");
        snprintf(step, sizeof(step), "%s-up", name);
        s = kubevirtci_plan_make(p, k->ctx, step, k->dir, "cluster-up", k->env, k->argv_prefix);
        step_undo(s, NULL, "the record step's undo runs make cluster-down");
        return s;
}

static int run_forget(struct step_run *sr, void *data)
{
        const struct kubevirtci_cluster *k = data;
        state_drop_resource(sr->st, k->resource, k->provider);
        return state_save(sr->st);
}

int kubevirtci_cluster_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st,
                                 char **env, char *const *argv_prefix)
{
        struct kubevirtci_cluster *k = kubevirtci_cluster_new(p, ctx, env, argv_prefix);
        const char *name = provider_names[ctx->cfg->provider];
        char step[48];
        struct step *s;

        if (!k)
                return -ENOMEM;
        if (!state_has_resource(st, k->resource, k->provider)) {
                log_notice("the state lists no %s cluster: nothing to take down", name);
                return 0;
        }
        snprintf(step, sizeof(step), "%s-down", name);
        s = kubevirtci_plan_make(p, ctx, step, k->dir, "cluster-down", k->env, argv_prefix);
        step_progress(s, "make cluster-down (KUBEVIRT_PROVIDER=%s)", k->provider);
        snprintf(step, sizeof(step), "%s-forget", name);
        s = plan_add(p, step, run_forget, k);
        step_progress(s, "dropping the cluster from the state");
        step_deadline(s, 30);
        return plan_error(p);
}

int kubevirtci_cluster_kubeconfig(struct run_ctx *ctx, char **ret)
{
        const char *dir, *provider;

        checkout_of(ctx->cfg, &dir, &provider);
        *ret = kubevirtci_kubeconfig_path(dir, provider);
        return *ret ? 0 : -ENOMEM;
}

int kubevirtci_cluster_ci_config_dir(struct run_ctx *ctx, char **ret)
{
        const char *dir, *provider;

        checkout_of(ctx->cfg, &dir, &provider);
        *ret = kubevirtci_config_path(dir);
        return *ret ? 0 : -ENOMEM;
}

const char *kubevirtci_cluster_kubevirt_provider(struct run_ctx *ctx)
{
        const char *dir, *provider;

        checkout_of(ctx->cfg, &dir, &provider);
        return provider;
}
