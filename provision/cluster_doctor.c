/* The five links of the display chain on a live cluster (see
 * cluster_doctor.h). Names it relies on: the webhook configuration
 * mesa-injector with its webhook vmis.mesa-injector.vgpuenv.io and the
 * device plugin's pods app.kubernetes.io/name=mesa-injector-device-plugin
 * (webhook/manifests*.c); KubeVirt's virt-controller Deployment with
 * `--launcher-image` (kubevirt d923fdb8 pkg/virt-operator/resource/
 * generate/components/deployments.go) and the KubeVirt CR's
 * developerConfiguration.featureGates, which must hold Sidecar for the
 * hookSidecars annotation to be accepted (pkg/virt-api/webhooks/
 * validating-webhook/admitters/vmi-create-admitter.go). */
#include "provision/cluster_doctor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "provision/base/cdi_contract.h"
#include "provision/cluster_check.h"
#include "provision/cluster_images.h"

#define DP_LABEL "app.kubernetes.io/name=mesa-injector-device-plugin"
#define VMI_WEBHOOK "vmis.mesa-injector.vgpuenv.io"
#define PROBE_SECONDS 180

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete)

static int add(cJSON *links, int n, const char *check, bool ok, const char *detail, const char *fix)
{
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddNumberToObject(o, "link", n) ||
            !cJSON_AddStringToObject(o, "check", check) ||
            !cJSON_AddStringToObject(o, "status", ok ? "ok" : "fail") ||
            !cJSON_AddStringToObject(o, "detail", detail ? detail : "") ||
            !cJSON_AddStringToObject(o, "fix", ok ? "" : fix)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        cJSON_AddItemToArray(links, o);
        return ok ? 0 : 1;
}

/* kubectl ARGS -o json, parsed into *ret; NULL with *err set (kubectl's
 * first line) when it failed. */
static int kget(const struct cluster_doctor *d, const char *what, const char *const *args,
                cJSON **ret, char **err)
{
        struct cluster_check cc = {.cancel = d->cancel,
                                   .log_fd = -1,
                                   .kubectl_deadline = d->cfg->deadlines.kubectl,
                                   .kubectl = d->cfg->kubevirt.kubectl,
                                   .kubeconfig = d->kubeconfig};
        _cleanup_proc_result_ struct proc_result res = {0};
        int r = cluster_kubectl_run(&cc, what, args, &res);
        *ret = NULL;
        *err = NULL;
        if (r < 0)
                return (*err = strdup_printf("%s: %s", what, strerror(-r))) ? 0 : -ENOMEM;
        if (res.exit_code != 0) {
                const char *e = res.err.data ? res.err.data : "";
                return (*err = strndup(e, strcspn(e, "\n"))) ? 0 : -ENOMEM;
        }
        if (!(*ret = cJSON_Parse(res.out.data ? res.out.data : "")))
                *err = strdup_printf("%s: kubectl printed no JSON", what);
        return 0;
}

static const cJSON *at(const cJSON *o, const char *const *path)
{
        for (size_t i = 0; o && path[i]; i++)
                o = cJSON_GetObjectItemCaseSensitive(o, path[i]);
        return o;
}

/* ---- links 1 and 2: the nodes' own probe (ssh) --------------------------- */

static bool node_check(const cJSON *verdict, const char *name, const char **detail)
{
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(verdict, "checks"))
        {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
                if (!cJSON_IsString(n) || !streq(n->valuestring, name))
                        continue;
                const cJSON *dt = cJSON_GetObjectItemCaseSensitive(c, "detail");
                *detail = cJSON_IsString(dt) ? dt->valuestring : "";
                return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ok"));
        }
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(verdict, "error");
        *detail = cJSON_IsString(e) ? e->valuestring : "not checked";
        return false;
}

static int link_nodes(const struct cluster_doctor *d, cJSON *links, int link, const char *check,
                      const char *probe, const char *fix)
{
        _cleanup_free_ char *detail = NULL;
        bool ok = cJSON_GetArraySize(d->verdicts) > 0;
        const cJSON *v;
        if (!d->verdicts)
                return add(links, link, check, false,
                           "no node reachable over ssh (the state lists none)",
                           "vgpuenv up (it records the nodes and their ssh access)");
        cJSON_ArrayForEach(v, d->verdicts)
        {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "node");
                const char *what = "";
                bool good = node_check(v, probe, &what);
                ok = ok && good;
                char *next = strdup_printf("%s%s%s: %s%s", detail ? detail : "", detail ? "; " : "",
                                           cJSON_IsString(n) ? n->valuestring : "?",
                                           good ? "" : "FAILED ", what);
                free(detail);
                if (!(detail = next))
                        return -ENOMEM;
        }
        return add(links, link, check, ok, detail, fix);
}

/* ---- link 3: the device plugin's resource on the nodes ----------------- */

static int link_resource(const struct cluster_doctor *d, cJSON *links)
{
        static const char check[] = "device plugin resource on the nodes";
        static const char *const args[] = {"get", "nodes", "-o", "json", NULL};
        _cleanup_(cJSON_Deletep) cJSON *nodes = NULL;
        _cleanup_free_ char *err = NULL, *detail = NULL;
        int r = kget(d, "kubectl get nodes", args, &nodes, &err), have = 0;
        const cJSON *n;
        if (r < 0)
                return r;
        if (!nodes)
                return add(links, 3, check, false, err, "check the kubeconfig: kubectl get nodes");
        cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(nodes, "items"))
        {
                const cJSON *name = at(n, (const char *const[]){"metadata", "name", NULL});
                const cJSON *q = cJSON_GetObjectItemCaseSensitive(
                    at(n, (const char *const[]){"status", "allocatable", NULL}), d->resource);
                bool some = cJSON_IsString(q) && strtoll(q->valuestring, NULL, 10) > 0;
                have += some;
                char *next =
                    strdup_printf("%s%s%s: %s %s", detail ? detail : "", detail ? "; " : "",
                                  cJSON_IsString(name) ? name->valuestring : "?", d->resource,
                                  cJSON_IsString(q) ? q->valuestring : "none");
                free(detail);
                if (!(detail = next))
                        return -ENOMEM;
        }
        _cleanup_free_ char *fix = strdup_printf(
            "run the device plugin on the render nodes: kubectl -n %s get daemonset,pods -l %s "
            "(nodes labelled %s; vgpuenv up labels them)",
            d->webhook_namespace, DP_LABEL, VGPUENV_NODE_LABEL);
        return fix ? add(links, 3, check, have > 0, detail ? detail : "no nodes", fix) : -ENOMEM;
}

/* ---- link 4: the hook ------------------------------------------------------ */

static bool has_vmi_webhook(const cJSON *mwc)
{
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(mwc, "webhooks"))
        {
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(w, "name");
                if (cJSON_IsString(n) && streq(n->valuestring, VMI_WEBHOOK))
                        return true;
        }
        return false;
}

static bool has_sidecar_gate(const cJSON *kvs)
{
        const cJSON *kv, *g;
        cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(kvs, "items")) cJSON_ArrayForEach(
            g,
            at(kv, (const char *const[]){"spec", "configuration", "developerConfiguration",
                                         "featureGates", NULL})) if (cJSON_IsString(g) &&
                                                                     streq(g->valuestring,
                                                                           "Sidecar")) return true;
        return false;
}

/* The hook sidecar's image is the device plugin's: running plugin pods
 * show the nodes can pull it. */
static int hook_image(const struct cluster_doctor *d, char **detail, bool *ok)
{
        const char *args[] = {"get", "pods", "-n", d->webhook_namespace, "-l", DP_LABEL,
                              "-o",  "json", NULL};
        _cleanup_(cJSON_Deletep) cJSON *pods = NULL;
        _cleanup_free_ char *err = NULL;
        int r = kget(d, "kubectl get pods (device plugin)", args, &pods, &err), running = 0,
            all = 0;
        const cJSON *p;
        const char *image = NULL;
        if (r < 0)
                return r;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(pods, "items"))
        {
                const cJSON *ph = at(p, (const char *const[]){"status", "phase", NULL});
                const cJSON *im = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetArrayItem(at(p, (const char *const[]){"spec", "containers", NULL}), 0),
                    "image");
                all++;
                running += cJSON_IsString(ph) && streq(ph->valuestring, "Running");
                if (cJSON_IsString(im))
                        image = im->valuestring;
        }
        *ok = running > 0;
        *detail = pods ? strdup_printf("image %s: %d of %d device plugin pods running",
                                       image ? image : "?", running, all)
                       : strdup(err ? err : "no answer");
        return *detail ? 0 : -ENOMEM;
}

static int link_hook(const struct cluster_doctor *d, cJSON *links)
{
        static const char check[] = "onDefineDomain hook";
        static const char *const mwc_args[] = {
            "get", "mutatingwebhookconfiguration", "mesa-injector", "-o", "json", NULL};
        static const char *const kv_args[] = {"get", "kubevirts", "--all-namespaces",
                                              "-o",  "json",      NULL};
        _cleanup_(cJSON_Deletep) cJSON *mwc = NULL, *kvs = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *img = NULL, *detail = NULL;
        bool img_ok = false;
        int r;

        if ((r = kget(d, "kubectl get mutatingwebhookconfiguration", mwc_args, &mwc, &e1)) < 0 ||
            (r = kget(d, "kubectl get kubevirts", kv_args, &kvs, &e2)) < 0 ||
            (r = hook_image(d, &img, &img_ok)) < 0)
                return r;
        bool wh = has_vmi_webhook(mwc), gate = has_sidecar_gate(kvs);
        detail = strdup_printf("webhook %s: %s; KubeVirt Sidecar gate: %s; %s", VMI_WEBHOOK,
                               wh ? "present" : (e1 ? e1 : "missing"),
                               gate ? "on" : (e2 ? e2 : "off"), img);
        if (!detail)
                return -ENOMEM;
        const char *fix = !wh     ? "deploy mesa-injector: vgpuenv up (webhook.deploy), or "
                                    "mesa-injector manifests | kubectl apply -f -"
                          : !gate ? "add Sidecar to the KubeVirt CR's developerConfiguration."
                                    "featureGates (vgpuenv up does with kubevirt.configure: true)"
                                  : "put mesa-injector's image where the nodes pull it: "
                                    "webhook.build_image: true with registry.push (vgpuenv up)";
        return add(links, 4, check, wh && gate && img_ok, detail, fix);
}

/* ---- link 5: the launcher's QEMU --------------------------------------------- */

static char *first_node(const struct cluster_doctor *d)
{
        const char *args[] = {"get", "nodes", "-l", VGPUENV_NODE_LABEL, "-o", "json", NULL};
        _cleanup_(cJSON_Deletep) cJSON *nodes = NULL;
        _cleanup_free_ char *err = NULL;
        if (kget(d, "kubectl get nodes -l " VGPUENV_NODE_LABEL, args, &nodes, &err) < 0 || !nodes)
                return NULL;
        const cJSON *n = at(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(nodes, "items"), 0),
                            (const char *const[]){"metadata", "name", NULL});
        return cJSON_IsString(n) ? strdup(n->valuestring) : NULL;
}

/* The probe pod: the launcher image's QEMU lists its displays into its
 * termination message (read from the pod's status: no `kubectl logs`, which
 * needs the kubelet's own endpoint). On a render node (the launcher runs
 * there); host network, so no pod network is needed. */
static char *probe_pod_json(const char *name, const char *ns, const char *image, const char *node)
{
        cJSON *p = cJSON_CreateObject(), *meta, *spec, *c, *cmd;
        cJSON_AddStringToObject(p, "apiVersion", "v1");
        cJSON_AddStringToObject(p, "kind", "Pod");
        meta = cJSON_AddObjectToObject(p, "metadata");
        cJSON_AddStringToObject(meta, "name", name);
        cJSON_AddStringToObject(meta, "namespace", ns);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "labels"),
                                "app.kubernetes.io/part-of", "vgpuenv");
        spec = cJSON_AddObjectToObject(p, "spec");
        cJSON_AddStringToObject(spec, "restartPolicy", "Never");
        cJSON_AddBoolToObject(spec, "hostNetwork", true);
        cJSON_AddBoolToObject(spec, "automountServiceAccountToken", false);
        if (node)
                cJSON_AddStringToObject(spec, "nodeName", node);
        c = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), c);
        cJSON_AddStringToObject(c, "name", "qemu");
        cJSON_AddStringToObject(c, "image", image);
        cJSON_AddStringToObject(c, "imagePullPolicy", "IfNotPresent");
        cmd = cJSON_AddArrayToObject(c, "command");
        cJSON_AddItemToArray(cmd, cJSON_CreateString("/bin/sh"));
        cJSON_AddItemToArray(cmd, cJSON_CreateString("-c"));
        cJSON_AddItemToArray(
            cmd,
            cJSON_CreateString("for q in /usr/libexec/qemu-kvm /usr/bin/qemu-system-x86_64; do "
                               "if [ -x \"$q\" ]; then exec \"$q\" -display help "
                               ">/dev/termination-log 2>/dev/null; fi; done; "
                               "echo 'no QEMU in this image' >/dev/termination-log; exit 3"));
        char *s = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        return s;
}

static int kubectl_plain(const struct cluster_doctor *d, const char *what, const char *const *args,
                         struct proc_result *res)
{
        struct cluster_check cc = {.cancel = d->cancel,
                                   .log_fd = -1,
                                   .kubectl_deadline = d->cfg->deadlines.kubectl,
                                   .kubectl = d->cfg->kubevirt.kubectl,
                                   .kubeconfig = d->kubeconfig};
        return cluster_kubectl_run(&cc, what, args, res);
}

/* Run the probe pod; *out gets its log, *phase how it ended. The pod is
 * deleted whatever happened. */
static int run_probe(const struct cluster_doctor *d, const char *image, char **out, char **phase)
{
        _cleanup_free_ char *name = strdup_printf("vgpuenv-doctor-qemu-%ld", (long)getpid());
        _cleanup_free_ char *node = first_node(d);
        _cleanup_free_ char *json =
            name ? probe_pod_json(name, d->webhook_namespace, image, node) : NULL;
        char file[] = "/tmp/vgpuenv-doctor-pod.XXXXXX";
        int fd = json ? mkstemp(file) : -1, r = 0;
        if (fd < 0)
                return -ENOMEM;
        r = write_all(fd, json, strlen(json));
        close(fd);
        const char *apply[] = {"apply", "-f", file, NULL};
        _cleanup_proc_result_ struct proc_result a = {0};
        if (r >= 0)
                r = kubectl_plain(d, "kubectl apply (probe pod)", apply, &a);
        unlink(file);
        if (r < 0 || a.exit_code != 0) {
                *phase = strdup_printf("not created: %s", a.err.data ? a.err.data : strerror(-r));
                return *phase ? 0 : -ENOMEM;
        }
        const char *get[] = {"get", "pod", name, "-n", d->webhook_namespace, "-o", "json", NULL};
        for (unsigned waited = 0; r >= 0 && waited < PROBE_SECONDS; waited += 2) {
                _cleanup_(cJSON_Deletep) cJSON *pod = NULL;
                _cleanup_free_ char *err = NULL;
                if ((r = kget(d, "kubectl get pod (probe)", get, &pod, &err)) < 0)
                        break;
                const cJSON *ph = at(pod, (const char *const[]){"status", "phase", NULL});
                if (cJSON_IsString(ph) &&
                    (streq(ph->valuestring, "Succeeded") || streq(ph->valuestring, "Failed"))) {
                        const cJSON *cs = cJSON_GetArrayItem(
                            at(pod, (const char *const[]){"status", "containerStatuses", NULL}), 0);
                        const cJSON *msg =
                            at(cs, (const char *const[]){"state", "terminated", "message", NULL});
                        *phase = strdup(ph->valuestring);
                        *out = strdup(cJSON_IsString(msg) ? msg->valuestring : "");
                        break;
                }
                r = cancel_sleep(d->cancel, 2);
        }
        const char *del[] = {
            "delete", "pod", name, "-n", d->webhook_namespace, "--wait=false", "--ignore-not-found",
            NULL};
        _cleanup_proc_result_ struct proc_result x = {0};
        (void)kubectl_plain(d, "kubectl delete (probe pod)", del, &x);
        if (!*phase)
                *phase = strdup_printf("did not end within %d s (image pull?)", PROBE_SECONDS);
        return *phase ? 0 : -ENOMEM;
}

static bool lists_egl_headless(const char *out)
{
        for (const char *p = out; p && *p;) {
                size_t n = strcspn(p, "\n");
                if (n == strlen("egl-headless") && strncmp(p, "egl-headless", n) == 0)
                        return true;
                p += n;
                p += *p == '\n';
        }
        return false;
}

static int link_launcher(const struct cluster_doctor *d, cJSON *links)
{
        static const char check[] = "egl-headless in the launcher's QEMU";
        static const char fix[] = "kubevirt.launcher_gl: true (vgpuenv up builds "
                                  "images/launcher/Containerfile and sets virt-operator's "
                                  "VIRT_LAUNCHER_IMAGE)";
        const char *args[] = {
            "get",  "deployment", "virt-controller", "-n", d->cfg->kubevirt.namespace, "-o",
            "json", NULL};
        _cleanup_(cJSON_Deletep) cJSON *dep = NULL;
        _cleanup_free_ char *err = NULL, *image = NULL, *out = NULL, *phase = NULL, *detail = NULL;
        int r = kget(d, "kubectl get deployment virt-controller", args, &dep, &err);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = dep ? cJSON_PrintUnformatted(dep) : NULL;
        if (!dep || !(image = cluster_launcher_image_of(text)))
                return add(links, 5, check, false,
                           err ? err : "virt-controller has no --launcher-image",
                           "deploy KubeVirt (make cluster-sync), then vgpuenv up");
        if ((r = run_probe(d, image, &out, &phase)) < 0)
                return r;
        bool ok = lists_egl_headless(out);
        detail = strdup_printf("%s: QEMU %s (probe pod %s)", image,
                               ok ? "lists egl-headless" : "lists no egl-headless display", phase);
        return detail ? add(links, 5, check, ok, detail, fix) : -ENOMEM;
}

int cluster_doctor_links(const struct cluster_doctor *d, cJSON *links)
{
        int failed = 0, r;
        if ((r = link_nodes(d, links, 1, "render node on the nodes", "render-node",
                            "give the node VMs a virtio-gpu device and load virtio_gpu (vgpuenv up "
                            "with gpu: virtio does both)")) < 0)
                return r;
        failed += r;
        if ((r = link_nodes(d, links, 2, "mesa EGL/GBM on the nodes", "egl-init",
                            "install mesa on the nodes (vgpuenv up's node setup; "
                            "mesa.packages)")) < 0)
                return r;
        failed += r;
        if ((r = link_resource(d, links)) < 0)
                return r;
        failed += r;
        if ((r = link_hook(d, links)) < 0)
                return r;
        failed += r;
        if ((r = link_launcher(d, links)) < 0)
                return r;
        return failed + r;
}
