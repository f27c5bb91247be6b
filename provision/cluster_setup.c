/* Cluster wiring after the nodes are up (see provision/cluster_setup.h).
 *
 * Every step is a kubectl command through ctx_run, so `up --dry-run` lists
 * them; manifests are written to the state directory first and applied
 * from there (`kubectl apply -f FILE`), which also leaves a record of what
 * was applied. The KubeVirt CR gets a JSON merge patch built from its
 * current content: merge patches replace arrays, so the feature gates and
 * mediated devices already there are read first and kept. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/cluster_setup.h"

#include "e2e/cluster_check.h"
#include "provision/cluster_setup_internal.h"

#define KUBEVIRT_CR "kubevirt"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static char **kubectl_argv(struct run_ctx *ctx, const char *kubeconfig, const char *const *args)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_extend(&argv, ctx->cfg->kubevirt.kubectl) < 0 ||
            strv_extend(&argv, "--kubeconfig") < 0 || strv_extend(&argv, kubeconfig) < 0)
                return NULL;
        for (size_t i = 0; args[i]; i++)
                if (strv_extend(&argv, args[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}

static int kubectl(struct run_ctx *ctx, const char *kubeconfig, const char *what,
                   const char *const *args, struct spawn_result *res)
{
        _cleanup_strv_free_ char **argv = kubectl_argv(ctx, kubeconfig, args);
        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        return ctx_run(ctx, what, argv, NULL, NULL, res);
}

/* Add s to a JSON string array unless present. */
static void add_unique_string(cJSON *arr, const char *s)
{
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) && streq(e->valuestring, s)) return;
        cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

static cJSON *get_path(const cJSON *o, const char *const *path)
{
        for (size_t i = 0; o && path[i]; i++)
                o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
        return (cJSON *)o;
}

static const struct {
        const char *selector, *resource;
} fake_vgpu_devices[] = {
    {"GRID T4-1B", "nvidia.com/GRID_T4-1B"},
    {"GRID T4-2B", "nvidia.com/GRID_T4-2B"},
};

char *cluster_kubevirt_patch(const char *current_json)
{
        _cleanup_(cJSON_Deletep) cJSON *cur = current_json ? cJSON_Parse(current_json) : NULL;
        const cJSON *conf = get_path(cur, (const char *const[]){"spec", "configuration", NULL});

        _cleanup_(cJSON_Deletep) cJSON *patch = cJSON_CreateObject();
        cJSON *c = cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "spec"), "configuration");

        /* Types: keep the ones configured, add nvidia-222 (GRID T4-1B). */
        cJSON *types =
            cJSON_Duplicate(get_path(conf, (const char *const[]){"mediatedDevicesConfiguration",
                                                                 "mediatedDeviceTypes", NULL}),
                            true);
        if (!cJSON_IsArray(types)) {
                cJSON_Delete(types);
                types = cJSON_CreateArray();
        }
        add_unique_string(types, "nvidia-222");
        cJSON_AddItemToObject(cJSON_AddObjectToObject(c, "mediatedDevicesConfiguration"),
                              "mediatedDeviceTypes", types);

        /* Permitted mediated devices: keep others, add the two fake-vGPU ones. */
        cJSON *mdevs = cJSON_Duplicate(
            get_path(conf, (const char *const[]){"permittedHostDevices", "mediatedDevices", NULL}),
            true);
        if (!cJSON_IsArray(mdevs)) {
                cJSON_Delete(mdevs);
                mdevs = cJSON_CreateArray();
        }
        for (size_t i = 0; i < ELEMENTSOF(fake_vgpu_devices); i++) {
                bool have = false;
                const cJSON *e;
                cJSON_ArrayForEach(e, mdevs)
                {
                        const cJSON *sel = cJSON_GetObjectItemCaseSensitive(e, "mdevNameSelector");
                        if (cJSON_IsString(sel) &&
                            streq(sel->valuestring, fake_vgpu_devices[i].selector))
                                have = true;
                }
                if (have)
                        continue;
                cJSON *d = cJSON_CreateObject();
                cJSON_AddStringToObject(d, "mdevNameSelector", fake_vgpu_devices[i].selector);
                cJSON_AddStringToObject(d, "resourceName", fake_vgpu_devices[i].resource);
                cJSON_AddItemToArray(mdevs, d);
        }
        cJSON_AddItemToObject(cJSON_AddObjectToObject(c, "permittedHostDevices"), "mediatedDevices",
                              mdevs);

        /* Feature gates: keep them all, add Sidecar (the display hook). */
        cJSON *gates = cJSON_Duplicate(
            get_path(conf, (const char *const[]){"developerConfiguration", "featureGates", NULL}),
            true);
        if (!cJSON_IsArray(gates)) {
                cJSON_Delete(gates);
                gates = cJSON_CreateArray();
        }
        add_unique_string(gates, "Sidecar");
        cJSON_AddItemToObject(cJSON_AddObjectToObject(c, "developerConfiguration"), "featureGates",
                              gates);
        return cJSON_PrintUnformatted(patch);
}

/* "https://HOST:PORT/..." -> HOST (without brackets) into buf. */
static const char *url_host(const char *url, char *buf, size_t size)
{
        const char *h = startswith(url, "https://") ? url + strlen("https://") : url;
        size_t n = *h == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/");
        if (*h == '[')
                h++;
        snprintf(buf, size, "%.*s", (int)n, h);
        return buf;
}

static const char *url_port(const char *url)
{
        const char *h = startswith(url, "https://") ? url + strlen("https://") : url;
        if (*h == '[')
                h = strchr(h, ']') ?: h;
        const char *colon = strchr(h, ':');
        static __thread char port[8];
        snprintf(port, sizeof(port), "%.*s", colon ? (int)strcspn(colon + 1, "/") : 3,
                 colon ? colon + 1 : "443");
        return port;
}

static int webhook_certs(struct run_ctx *ctx, const char *bin, const char *dir)
{
        _cleanup_free_ char *crt = strdup_printf("%s/tls.crt", dir);
        if (!crt)
                return log_error_errno(ENOMEM, "out of memory");
        if (!ctx->dry_run && file_exists(crt))
                return 0;
        char host[256];
        url_host(ctx->cfg->webhook.url, host, sizeof(host));
        struct in_addr a4;
        struct in6_addr a6;
        bool ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
        char *const argv[] = {(char *)bin,
                              "certs",
                              "--service",
                              "mesa-injector",
                              "--namespace",
                              "mesa-injector",
                              "--out",
                              (char *)dir,
                              ip ? "--ip" : NULL,
                              host,
                              NULL};
        return ctx_run(ctx, "mesa-injector certs", argv, NULL, NULL, NULL);
}

static int deploy_webhook(struct run_ctx *ctx, const char *kubeconfig)
{
        const struct config *c = ctx->cfg;
        if (c->provider == PROVIDER_KIND) {
                ctx_plan(ctx, "webhook: not deployed on kind (display-off baseline)");
                log_info("kind is the display-off baseline: mesa-injector is not deployed");
                return 0;
        }
        if (c->webhook.deploy == DEPLOY_NONE) {
                log_info("webhook.deploy is none: mesa-injector is not deployed");
                return 0;
        }
        if (c->webhook.deploy == DEPLOY_URL && isempty(c->webhook.url))
                return log_error_errno(EINVAL, "webhook.deploy is url but webhook.url is not set "
                                               "(https://HOST:PORT where the cluster reaches "
                                               "`mesa-injector serve` on this host)");

        _cleanup_free_ char *bin = strdup_printf("%s/mesa-injector", ctx->build_dir);
        _cleanup_free_ char *out = strdup_printf("%s/mesa-injector.yaml", ctx->state_dir);
        _cleanup_free_ char *certs = strdup_printf("%s/webhook-certs", ctx->state_dir);
        _cleanup_strv_free_ char **argv = NULL;
        if (!bin || !out || !certs)
                return log_error_errno(ENOMEM, "out of memory");

        if (c->webhook.deploy == DEPLOY_URL) {
                /* The caBundle must be the CA of the certificate the webhook
                 * on this host serves: make it once, keep it across runs so
                 * a running `mesa-injector serve` stays valid. */
                int r = webhook_certs(ctx, bin, certs);
                if (r < 0)
                        return r;
        }
        if (strv_extend(&argv, bin) < 0 || strv_extend(&argv, "manifests") < 0 ||
            (c->webhook.deploy == DEPLOY_URL &&
             (strv_extend(&argv, "--url") < 0 || strv_extend(&argv, c->webhook.url) < 0 ||
              strv_extend(&argv, "--certs") < 0 || strv_extend(&argv, certs) < 0)) ||
            (c->webhook.config &&
             (strv_extend(&argv, "--config") < 0 || strv_extend(&argv, c->webhook.config) < 0)))
                return log_error_errno(ENOMEM, "out of memory");

        struct spawn_result res = {};
        int r = ctx_run(ctx, "mesa-injector manifests", argv, NULL, NULL, &res);
        if (r >= 0 && !ctx->dry_run) {
                if (res.exit_code != 0 || isempty(res.out))
                        r = log_error_errno(EIO, "mesa-injector manifests failed (exit %d): %s",
                                            res.exit_code, res.err ? res.err : "");
                else if ((r = write_file_atomic(out, res.out, strlen(res.out), 0600)) < 0)
                        log_error_errno(r, "cannot write %s", out);
        }
        spawn_result_done(&res);
        if (r < 0)
                return r;
        if (ctx->dry_run)
                ctx_plan(ctx, "write the output of mesa-injector manifests to %s", out);

        const char *apply[] = {"apply", "-f", out, NULL};
        r = kubectl(ctx, kubeconfig, "kubectl apply (mesa-injector)", apply, NULL);
        if (r < 0)
                return r;
        if (!ctx->dry_run)
                log_info("applied mesa-injector manifests (%s mode%s%s), kept in %s",
                         c->webhook.deploy == DEPLOY_URL ? "url" : "in-cluster",
                         c->webhook.deploy == DEPLOY_URL ? ", webhook at " : "",
                         c->webhook.deploy == DEPLOY_URL ? c->webhook.url : "", out);
        if (c->webhook.deploy == DEPLOY_URL)
                log_notice("url mode: run `%s serve --listen 0.0.0.0:%s --cert %s/tls.crt --key "
                           "%s/tls.key%s%s` on this host so %s answers",
                           bin, url_port(c->webhook.url), certs, certs,
                           c->webhook.config ? " --config " : "",
                           c->webhook.config ? c->webhook.config : "", c->webhook.url);
        return 0;
}

static int configure_kubevirt(struct run_ctx *ctx, const char *kubeconfig)
{
        const struct config *c = ctx->cfg;
        if (!c->kubevirt.configure)
                return 0;
        const char *ns = c->kubevirt.namespace;

        const char *get[] = {"get", "kubevirt", KUBEVIRT_CR, "-n", ns, "-o", "json", NULL};
        struct spawn_result res = {};
        int r = kubectl(ctx, kubeconfig, "kubectl get kubevirt", get, &res);
        if (r < 0) {
                spawn_result_done(&res);
                return r;
        }
        if (!ctx->dry_run && res.exit_code != 0) {
                bool missing =
                    res.err && (strstr(res.err, "NotFound") || strstr(res.err, "not found") ||
                                strstr(res.err, "the server doesn't have a resource type"));
                if (missing) {
                        log_notice("KubeVirt is not deployed in namespace %s yet: the fake-vGPU "
                                   "configuration is applied by running `vgpuenv up` again after "
                                   "KubeVirt is installed (e.g. make cluster-sync)",
                                   ns);
                        spawn_result_done(&res);
                        return 0;
                }
                r = log_error_errno(EIO, "kubectl get kubevirt %s -n %s failed (exit %d): %s",
                                    KUBEVIRT_CR, ns, res.exit_code, res.err ? res.err : "");
                spawn_result_done(&res);
                return r;
        }
        _cleanup_free_ char *patch = cluster_kubevirt_patch(ctx->dry_run ? NULL : res.out);
        spawn_result_done(&res);
        if (!patch)
                return log_error_errno(ENOMEM, "out of memory");

        const char *p[] = {"patch",  "kubevirt", KUBEVIRT_CR, "-n",  ns,
                           "--type", "merge",    "-p",        patch, NULL};
        r = kubectl(ctx, kubeconfig, "kubectl patch kubevirt", p, NULL);
        if (r < 0)
                return r;
        if (!ctx->dry_run)
                log_info("patched KubeVirt CR %s/%s: %s", ns, KUBEVIRT_CR, patch);
        else
                ctx_plan(ctx, "(the patch keeps the feature gates and mediated devices already "
                              "in the CR; shown here for a CR without any)");

        const char *w[] = {"wait",  "kubevirt/" KUBEVIRT_CR, "-n",        ns,
                           "--for", "condition=Available",   "--timeout", "600s",
                           NULL};
        struct step s = step_begin("KubeVirt settling (condition Available)");
        r = kubectl(ctx, kubeconfig, "kubectl wait kubevirt Available", w, NULL);
        step_end(&s, r);
        return r;
}

/* The Kubernetes name of a node we know by its VM name: kubelet registers
 * the hostname, which may be the FQDN (kcli sets a domain). */
static const char *k8s_node_name(char *const *k8s_names, const char *vm)
{
        for (size_t i = 0; k8s_names && k8s_names[i]; i++)
                if (streq(k8s_names[i], vm))
                        return k8s_names[i];
        for (size_t i = 0; k8s_names && k8s_names[i]; i++)
                if (startswith(k8s_names[i], vm) && k8s_names[i][strlen(vm)] == '.')
                        return k8s_names[i];
        return vm;
}

static int label_nodes(struct run_ctx *ctx, struct state *st, const char *kubeconfig)
{
        if (ctx->dry_run)
                ctx_plan(ctx,
                         "label every node whose render-node probe passed: kubectl label node "
                         "NODE %s --overwrite",
                         VGPUENV_NODE_LABEL);
        const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(st->root, "nodes");
        if (cJSON_GetArraySize(nodes) == 0)
                return 0;

        const char *get[] = {"get", "nodes", "-o", "jsonpath={.items[*].metadata.name}", NULL};
        struct spawn_result res = {};
        int r = kubectl(ctx, kubeconfig, "kubectl get nodes", get, &res);
        _cleanup_strv_free_ char **k8s = NULL;
        if (r >= 0 && res.exit_code == 0 && res.out)
                for (char *t = strtok(res.out, " \n"); t; t = strtok(NULL, " \n"))
                        strv_extend(&k8s, t);
        spawn_result_done(&res);
        if (r < 0)
                return r;

        const cJSON *n;
        cJSON_ArrayForEach(n, nodes)
        {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(n, "name");
                if (!cJSON_IsString(name) ||
                    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "probe_ok")))
                        continue;
                const char *kn = k8s_node_name(k8s, name->valuestring);
                const char *a[] = {"label", "node", kn, VGPUENV_NODE_LABEL, "--overwrite", NULL};
                r = kubectl(ctx, kubeconfig, "kubectl label node", a, NULL);
                if (r < 0)
                        return r;
                if (!ctx->dry_run)
                        log_info("labelled node %s %s", kn, VGPUENV_NODE_LABEL);
        }
        return 0;
}

int cluster_setup(struct run_ctx *ctx, struct state *st, const char *kubeconfig)
{
        struct step s = step_begin("cluster setup");
        /* Kind nodes are containers: no probe ran, nothing to label. */
        int r = ctx->cfg->provider == PROVIDER_KIND ? 0 : label_nodes(ctx, st, kubeconfig);
        if (r >= 0)
                r = deploy_webhook(ctx, kubeconfig);
        if (r >= 0)
                r = configure_kubevirt(ctx, kubeconfig);
        /* KubeVirt's MediatedDevices rules (one CR, one schedulable node):
         * warnings only; a plan step of its own once up is a plan. */
        if (r >= 0 && ctx->cfg->kubevirt.configure)
                r = e2e_cluster_check_after_up(ctx, kubeconfig);
        step_end(&s, r);
        return r;
}
