/* Cluster wiring after the nodes are up (see provision/cluster_setup.h).
 *
 * Plan steps (kubeconfig, label-nodes, webhook, kubevirt-cr, mdev-rules),
 * each kubectl
 * call with deadlines.kubectl; manifests are written to the state directory
 * first and applied
 * from there (`kubectl apply -f FILE`), which also leaves a record of what
 * was applied. The KubeVirt CR gets a JSON merge patch built from its
 * current content: merge patches replace arrays, so the feature gates and
 * mediated devices already there are read first and kept. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/cluster_check.h"
#include "provision/cluster_images.h"
#include "provision/cluster_setup.h"
#include "provision/cluster_setup_internal.h"
#include "provision/base/plan.h"

#define KUBEVIRT_CR "kubevirt"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

struct cluster_run {
        struct run_ctx *ctx;
        char *kubeconfig;
};

static void cluster_run_free(void *p)
{
        struct cluster_run *c = p;
        free(c->kubeconfig);
        free(c);
}

static char **kubectl_argv_for(const struct config *cfg, const char *kubeconfig,
                               const char *const *args)
{
        _cleanup_strv_free_ char **argv = NULL;
        if (strv_extend(&argv, cfg->kubevirt.kubectl) < 0 ||
            strv_extend(&argv, "--kubeconfig") < 0 || strv_extend(&argv, kubeconfig) < 0)
                return NULL;
        for (size_t i = 0; args[i]; i++)
                if (strv_extend(&argv, args[i]) < 0)
                        return NULL;
        return TAKE_PTR(argv);
}

int cluster_kubectl(struct step_run *sr, const struct config *cfg, const char *kubeconfig,
                    const char *what, const char *const *args, struct proc_result *res)
{
        _cleanup_strv_free_ char **argv = kubectl_argv_for(cfg, kubeconfig, args);
        double deadline = cfg->deadlines.kubectl;

        if (!argv)
                return log_error_errno(ENOMEM, "out of memory");
        if (res)
                return step_run_program_until(sr, deadline, what, argv, NULL, NULL, NULL, res);
        return step_run_program_checked(sr, deadline, what, argv, NULL, NULL, NULL);
}

char *cluster_kubectl_text(const struct config *cfg, const char *kubeconfig,
                           const char *const *args)
{
        _cleanup_strv_free_ char **argv = kubectl_argv_for(cfg, kubeconfig, args);
        return argv ? shell_join(argv) : NULL;
}

/* One kubectl call with deadlines.kubectl; res gets the whole result (the
 * caller judges the exit status), else a non-zero exit is an error. */
static int kubectl(struct step_run *sr, const struct cluster_run *c, const char *what,
                   const char *const *args, struct proc_result *res)
{
        return cluster_kubectl(sr, c->ctx->cfg, c->kubeconfig, what, args, res);
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

/* The patch replaces whole lists, so each one it sets starts as a copy of the
 * configured list (conf.section.key; a new list when there is none) and goes
 * into the patch at out.section.key. */
static cJSON *keep_list(const cJSON *conf, cJSON *out, const char *section, const char *key)
{
        cJSON *l = cJSON_Duplicate(get_path(conf, (const char *const[]){section, key, NULL}), true);
        if (!cJSON_IsArray(l)) {
                cJSON_Delete(l);
                l = cJSON_CreateArray();
        }
        cJSON_AddItemToObject(cJSON_AddObjectToObject(out, section), key, l);
        return l;
}

char *cluster_kubevirt_patch(const char *current_json)
{
        _cleanup_(cJSON_Deletep) cJSON *cur = current_json ? cJSON_Parse(current_json) : NULL;
        const cJSON *conf = get_path(cur, (const char *const[]){"spec", "configuration", NULL});

        _cleanup_(cJSON_Deletep) cJSON *patch = cJSON_CreateObject();
        cJSON *c = cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "spec"), "configuration");

        /* Types: keep the ones configured, add nvidia-222 (GRID T4-1B). */
        add_unique_string(keep_list(conf, c, "mediatedDevicesConfiguration", "mediatedDeviceTypes"),
                          "nvidia-222");

        /* Permitted mediated devices: keep others, add the two fake-vGPU ones. */
        cJSON *mdevs = keep_list(conf, c, "permittedHostDevices", "mediatedDevices");
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

        /* Feature gates: keep them all, add Sidecar (the display hook). */
        add_unique_string(keep_list(conf, c, "developerConfiguration", "featureGates"), "Sidecar");
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

static const char *url_port(const char *url, char *buf, size_t size)
{
        const char *h = startswith(url, "https://") ? url + strlen("https://") : url;
        if (*h == '[')
                h = strchr(h, ']') ?: h;
        const char *colon = strchr(h, ':');
        snprintf(buf, size, "%.*s", colon ? (int)strcspn(colon + 1, "/") : 3,
                 colon ? colon + 1 : "443");
        return buf;
}

/* A kubeconfig the provider's steps should have written: its absence is an
 * error, never a reason to skip cluster setup and still say "up". */
static int run_kubeconfig(struct step_run *sr, void *data)
{
        struct cluster_run *c = data;
        (void)sr;
        if (access(c->kubeconfig, R_OK) < 0)
                return log_error_errno(errno,
                                       "the cluster's kubeconfig %s cannot be read (%m): the "
                                       "provider did not make the cluster, or made it elsewhere",
                                       c->kubeconfig);
        return 0;
}

static int webhook_certs(struct step_run *sr, const struct cluster_run *c, const char *bin,
                         const char *dir)
{
        const struct config *cfg = c->ctx->cfg;
        _cleanup_free_ char *crt = strdup_printf("%s/tls.crt", dir);
        char host[256];
        struct in_addr a4;
        struct in6_addr a6;

        if (!crt)
                return log_error_errno(ENOMEM, "out of memory");
        if (file_exists(crt))
                return 0;
        url_host(cfg->webhook.url, host, sizeof(host));
        bool ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
        /* A host name is one of the certificate's names already (the
         * service's); an address needs --ip. */
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
        return step_run_program(sr, "mesa-injector certs", argv, NULL, NULL, NULL);
}

/* mesa-injector's --image (the one webhook-image pushed) and
 * --library-profile none (the launcher image has its own GL libraries). */
static char **webhook_overrides(const struct config *cfg, const struct state *st)
{
        _cleanup_strv_free_ char **o = calloc(1, sizeof(char *));
        const char *img = cluster_image(st, "mesa-injector");
        if (!o || (img && (strv_extend(&o, "--image") < 0 || strv_extend(&o, img) < 0)) ||
            (cluster_libraries_from_image(cfg) &&
             (strv_extend(&o, "--library-profile") < 0 || strv_extend(&o, "none") < 0)))
                return NULL;
        return TAKE_PTR(o);
}

static int run_webhook(struct step_run *sr, void *data)
{
        struct cluster_run *c = data;
        const struct config *cfg = c->ctx->cfg;
        _cleanup_free_ char *bin = strdup_printf("%s/mesa-injector", c->ctx->build_dir);
        _cleanup_free_ char *out = strdup_printf("%s/mesa-injector.yaml", c->ctx->state_dir);
        _cleanup_free_ char *certs = strdup_printf("%s/webhook-certs", c->ctx->state_dir);
        _cleanup_free_ char *yaml = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        char port[8];
        int r;

        if (!bin || !out || !certs)
                return log_error_errno(ENOMEM, "out of memory");
        /* The caBundle must be the CA of the certificate the webhook on
         * this host serves: made once, kept across runs so a running
         * `mesa-injector serve` stays valid. */
        if (cfg->webhook.deploy == DEPLOY_URL && (r = webhook_certs(sr, c, bin, certs)) < 0)
                return r;
        _cleanup_strv_free_ char **over = webhook_overrides(cfg, sr->st);
        if (!over || strv_extend(&argv, bin) < 0 || strv_extend(&argv, "manifests") < 0 ||
            (cfg->webhook.deploy == DEPLOY_URL &&
             (strv_extend(&argv, "--url") < 0 || strv_extend(&argv, cfg->webhook.url) < 0 ||
              strv_extend(&argv, "--certs") < 0 || strv_extend(&argv, certs) < 0)) ||
            (cfg->webhook.config &&
             (strv_extend(&argv, "--config") < 0 || strv_extend(&argv, cfg->webhook.config) < 0)))
                return log_error_errno(ENOMEM, "out of memory");
        for (char **o = over; *o; o++)
                if (strv_extend(&argv, *o) < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        if ((r = step_run_program(sr, "mesa-injector manifests", argv, NULL, NULL, &yaml)) < 0)
                return r;
        if (isempty(yaml))
                return log_error_errno(EIO, "mesa-injector manifests printed nothing");
        if ((r = write_file_atomic(out, yaml, strlen(yaml), 0600)) < 0)
                return log_error_errno(r, "cannot write %s: %m", out);
        const char *apply[] = {"apply", "-f", out, NULL};
        if ((r = kubectl(sr, c, "kubectl apply (mesa-injector)", apply, NULL)) < 0)
                return r;
        log_info("    applied mesa-injector manifests (%s mode%s%s), kept in %s",
                 cfg->webhook.deploy == DEPLOY_URL ? "url" : "in-cluster",
                 cfg->webhook.deploy == DEPLOY_URL ? ", webhook at " : "",
                 cfg->webhook.deploy == DEPLOY_URL ? cfg->webhook.url : "", out);
        _cleanup_free_ char *over_text = shell_join(over);
        if (cfg->webhook.deploy == DEPLOY_URL)
                log_notice("url mode: run `%s serve --listen 0.0.0.0:%s --cert %s/tls.crt --key "
                           "%s/tls.key%s%s%s%s` on this host so %s answers",
                           bin, url_port(cfg->webhook.url, port, sizeof(port)), certs, certs,
                           cfg->webhook.config ? " --config " : "",
                           cfg->webhook.config ? cfg->webhook.config : "",
                           isempty(over_text) ? "" : " ", over_text ? over_text : "",
                           cfg->webhook.url);
        return 0;
}

/* The CR is read first: a merge patch replaces arrays, so what it has of
 * feature gates and mediated devices is kept. */
static int run_kubevirt(struct step_run *sr, void *data)
{
        struct cluster_run *c = data;
        const char *ns = c->ctx->cfg->kubevirt.namespace;
        _cleanup_proc_result_ struct proc_result res = {0};
        const char *get[] = {"get", "kubevirt", KUBEVIRT_CR, "-n", ns, "-o", "json", NULL};
        int r = kubectl(sr, c, "kubectl get kubevirt", get, &res);

        if (r < 0)
                return r;
        if (res.exit_code != 0) {
                const char *err = res.err.data ? res.err.data : "";
                if (strstr(err, "NotFound") || strstr(err, "not found") ||
                    strstr(err, "the server doesn't have a resource type")) {
                        log_notice("KubeVirt is not deployed in namespace %s yet: the fake-vGPU "
                                   "configuration is applied by running `vgpuenv up` again after "
                                   "KubeVirt is installed (e.g. make cluster-sync)",
                                   ns);
                        return 0;
                }
                return log_error_errno(EIO, "kubectl get kubevirt %s -n %s failed (exit %d): %s",
                                       KUBEVIRT_CR, ns, res.exit_code, err);
        }
        _cleanup_free_ char *patch = cluster_kubevirt_patch(res.out.data);
        if (!patch)
                return log_error_errno(ENOMEM, "out of memory");
        const char *p[] = {"patch",  "kubevirt", KUBEVIRT_CR, "-n",  ns,
                           "--type", "merge",    "-p",        patch, NULL};
        if ((r = kubectl(sr, c, "kubectl patch kubevirt", p, NULL)) < 0)
                return r;
        log_info("    patched KubeVirt CR %s/%s: %s", ns, KUBEVIRT_CR, patch);
        const char *w[] = {"wait",  "kubevirt/" KUBEVIRT_CR, "-n",        ns,
                           "--for", "condition=Available",   "--timeout", "600s",
                           NULL};
        return kubectl(sr, c, "kubectl wait kubevirt Available", w, NULL);
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

static int run_label(struct step_run *sr, void *data)
{
        struct cluster_run *c = data;
        const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(sr->st->root, "nodes"), *n;
        const char *get[] = {"get", "nodes", "-o", "jsonpath={.items[*].metadata.name}", NULL};
        _cleanup_proc_result_ struct proc_result res = {0};
        _cleanup_strv_free_ char **k8s = NULL;
        char *save = NULL;
        int r;

        if (cJSON_GetArraySize(nodes) == 0)
                return 0;
        if ((r = kubectl(sr, c, "kubectl get nodes", get, &res)) < 0)
                return r;
        if (res.exit_code != 0)
                return log_error_errno(EIO, "kubectl get nodes failed (exit %d): %s", res.exit_code,
                                       res.err.data ? res.err.data : "");
        for (char *t = res.out.data ? strtok_r(res.out.data, " \n", &save) : NULL; t;
             t = strtok_r(NULL, " \n", &save))
                if (strv_extend(&k8s, t) < 0)
                        return log_error_errno(ENOMEM, "out of memory");
        cJSON_ArrayForEach(n, nodes)
        {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(n, "name");
                if (!cJSON_IsString(name) ||
                    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n, "probe_ok")))
                        continue;
                const char *kn = k8s_node_name(k8s, name->valuestring);
                const char *a[] = {"label", "node", kn, VGPUENV_NODE_LABEL, "--overwrite", NULL};
                if ((r = kubectl(sr, c, "kubectl label node", a, NULL)) < 0)
                        return r;
                log_info("    labelled node %s %s", kn, VGPUENV_NODE_LABEL);
        }
        return 0;
}

/* "kubectl --kubeconfig KC ARGS..." as the plan shows it. */
static char *kubectl_text(const struct cluster_run *c, const char *const *args)
{
        return cluster_kubectl_text(c->ctx->cfg, c->kubeconfig, args);
}

static void detail_label(struct step *s, const struct cluster_run *c)
{
        const char *get[] = {"get", "nodes", "-o", "jsonpath={.items[*].metadata.name}", NULL};
        const char *lab[] = {"label", "node", "NODE", VGPUENV_NODE_LABEL, "--overwrite", NULL};
        _cleanup_free_ char *a = kubectl_text(c, get), *b = kubectl_text(c, lab);
        step_detail(s, "run: %s\nrun: %s   (each node whose probe passed)", a ? a : "", b ? b : "");
}

static void detail_webhook(struct step *s, const struct cluster_run *c)
{
        const struct config *cfg = c->ctx->cfg;
        _cleanup_free_ char *out = strdup_printf("%s/mesa-injector.yaml", c->ctx->state_dir);
        const char *apply[] = {"apply", "-f", out, NULL};
        _cleanup_free_ char *a = out ? kubectl_text(c, apply) : NULL;
        bool url = cfg->webhook.deploy == DEPLOY_URL;
        step_detail(s, "run: %s/mesa-injector %s%s%s%s%s%s%s%s%s > %s\nrun: %s", c->ctx->build_dir,
                    url ? "certs ... --out " : "", url ? c->ctx->state_dir : "",
                    url ? "/webhook-certs (once); manifests --url " : "manifests",
                    url ? cfg->webhook.url : "", url ? " --certs " : "",
                    url ? c->ctx->state_dir : "", url ? "/webhook-certs" : "",
                    cfg->webhook.build_image ? " --image <the image webhook-image pushed>" : "",
                    cluster_libraries_from_image(cfg) ? " --library-profile none" : "",
                    out ? out : "", a ? a : "");
}

static void detail_kubevirt(struct step *s, const struct cluster_run *c)
{
        const char *ns = c->ctx->cfg->kubevirt.namespace;
        _cleanup_free_ char *patch = cluster_kubevirt_patch(NULL);
        const char *get[] = {"get", "kubevirt", KUBEVIRT_CR, "-n", ns, "-o", "json", NULL};
        const char *pt[] = {"patch", "kubevirt", KUBEVIRT_CR,        "-n", ns, "--type",
                            "merge", "-p",       patch ? patch : "", NULL};
        const char *w[] = {"wait",  "kubevirt/" KUBEVIRT_CR, "-n",        ns,
                           "--for", "condition=Available",   "--timeout", "600s",
                           NULL};
        _cleanup_free_ char *a = kubectl_text(c, get), *b = kubectl_text(c, pt),
                            *d = kubectl_text(c, w);
        step_detail(s,
                    "run: %s\nrun: %s\n   (the patch keeps the feature gates and mediated "
                    "devices already in the CR; shown for a CR without any)\nrun: %s",
                    a ? a : "", b ? b : "", d ? d : "");
}

/* The rules KubeVirt's MediatedDevices tests set for the cluster
 * (provision/cluster_check.h), as warnings: up does not fail on them. */
static int run_mdev_rules(struct step_run *sr, void *data)
{
        const struct cluster_run *c = data;
        struct cluster_check cc = {
            .cancel = &sr->cancel,
            .log_fd = sr->log_fd,
            .kubectl_deadline = c->ctx->cfg->deadlines.kubectl,
            .kubectl = c->ctx->cfg->kubevirt.kubectl,
            .kubeconfig = c->kubeconfig,
        };
        step_waiting(sr, "kubectl get kubevirts / get nodes -l kubevirt.io/schedulable=true");
        return cluster_check_after_up(&cc);
}

static void detail_mdev_rules(struct step *s, const struct cluster_run *c)
{
        const char *kv[] = {"get", "kubevirts", "--all-namespaces", NULL};
        const char *nodes[] = {"get", "nodes", "-l", "kubevirt.io/schedulable=true", NULL};
        _cleanup_free_ char *a = kubectl_text(c, kv), *b = kubectl_text(c, nodes);
        step_detail(s,
                    "run: %s   (exactly one CR: libkubevirt.GetCurrentKv)\nrun: %s   (exactly "
                    "one node: the MediatedDevices BeforeEach)\n   (a broken rule is a warning)",
                    a ? a : "", b ? b : "");
}

int cluster_setup_plan(struct plan *p, struct run_ctx *ctx, const char *kubeconfig,
                       bool label_nodes, bool deploy_webhook)
{
        const struct config *cfg = ctx->cfg;
        struct cluster_run *c = plan_own(p, calloc(1, sizeof(*c)), cluster_run_free);
        struct step *s;

        if (!c || !(c->kubeconfig = strdup(kubeconfig)))
                return log_error_errno(ENOMEM, "out of memory");
        c->ctx = ctx;
        s = plan_add(p, "kubeconfig", run_kubeconfig, c);
        step_acts_on(s, "%s", kubeconfig);
        step_progress(s, "the cluster's kubeconfig %s", kubeconfig);
        step_deadline(s, 10);
        if (label_nodes) {
                s = plan_add(p, "label-nodes", run_label, c);
                step_acts_on(s, "the cluster's nodes (kubectl --kubeconfig %s)", kubeconfig);
                step_progress(s, "labelling the nodes whose render-node probe passed %s",
                              VGPUENV_NODE_LABEL);
                step_deadline(s, 4.0 * cfg->deadlines.kubectl);
                step_undo(s, NULL, "nothing: the label is harmless on nodes that stay");
                detail_label(s, c);
        }
        if (deploy_webhook && cfg->webhook.deploy != DEPLOY_NONE) {
                if (cfg->webhook.deploy == DEPLOY_URL && isempty(cfg->webhook.url))
                        return log_error_errno(EINVAL,
                                               "webhook.deploy is url but webhook.url is not "
                                               "set (https://HOST:PORT where the cluster reaches "
                                               "`mesa-injector serve` on this host)");
                s = plan_add(p, "webhook", run_webhook, c);
                step_acts_on(s, "the cluster (mesa-injector manifests, kubectl apply)");
                step_progress(s, "deploying mesa-injector (%s)",
                              cfg->webhook.deploy == DEPLOY_URL ? "url mode" : "in-cluster");
                step_deadline(s, 2.0 * cfg->deadlines.kubectl + 60);
                detail_webhook(s, c);
                step_undo(s, NULL, "nothing: the cluster's own undo removes it with the cluster");
        }
        if (cfg->kubevirt.configure) {
                s = plan_add(p, "kubevirt-cr", run_kubevirt, c);
                step_acts_on(s, "KubeVirt CR %s/%s", cfg->kubevirt.namespace, KUBEVIRT_CR);
                step_progress(s, "KubeVirt for the fake vGPU (nvidia-222, GRID T4-1B/2B, "
                                 "Sidecar), then waiting for it to be Available");
                step_deadline(s, 3.0 * cfg->deadlines.kubectl + 60);
                detail_kubevirt(s, c);
                step_undo(s, NULL, "nothing: the patch only adds to the CR");
                s = plan_add(p, "mdev-rules", run_mdev_rules, c);
                step_acts_on(s, "the cluster (read only)");
                step_progress(s, "checking the rules of KubeVirt's MediatedDevices tests (one "
                                 "KubeVirt CR, one schedulable node)");
                step_deadline(s, 2.0 * cfg->deadlines.kubectl + 10);
                detail_mdev_rules(s, c);
                step_undo(s, NULL, "nothing: it only reads");
        }
        return plan_error(p);
}
