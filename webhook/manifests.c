/* Deployment YAML and the CDI spec for mesa-injector (see manifests.h).
 * Every string goes out as a JSON-style double-quoted scalar, which YAML
 * reads back exactly whatever it contains. */
#include "webhook/manifests.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hook_script.h" /* generated from webhook/hook/onDefineDomain */
#include "provision/base/cdi_contract.h"
#include "webhook/admission.h"
#include "webhook/certs.h"
#include "webhook/patch.h"

/* A YAML double-quoted scalar (JSON string syntax is a subset). */
static void q(FILE *f, const char *s)
{
        cJSON *j = cJSON_CreateString(s ? s : "");
        char *t = j ? cJSON_PrintUnformatted(j) : NULL;
        fputs(t ? t : "\"\"", f);
        free(t);
        cJSON_Delete(j);
}

/* A literal block scalar: keeps the script byte for byte (it ends with
 * exactly one newline, which "|" preserves). */
static void block(FILE *f, const char *indent, const char *text)
{
        fputs("|\n", f);
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                if (n > 0)
                        fprintf(f, "%s%.*s", indent, (int)n, p);
                fputc('\n', f);
                p += n;
                if (*p == '\n')
                        p++;
        }
}

char *hook_script_render(const struct injector_config *c)
{
        static const char marker[] = "RENDER_NODE='" VGPUENV_RENDER_NODE "'";
        const char *at = strstr(hook_script, marker);
        if (!at)
                return NULL;
        return strdup_printf("%.*sRENDER_NODE='%s'%s", (int)(at - hook_script), hook_script,
                             c->render_node, at + strlen(marker));
}

void manifests_quote(FILE *f, const char *s)
{
        q(f, s);
}

/* The labels every object of the webhook's carries. */
void manifests_labels(FILE *f, const char *indent, const char *app)
{
        fprintf(f,
                "%slabels:\n%s  app.kubernetes.io/name: %s\n%s  "
                "app.kubernetes.io/part-of: vgpuenv\n",
                indent, indent, app, indent);
}

static void labels(FILE *f, const char *indent)
{
        manifests_labels(f, indent, "mesa-injector");
}

void manifests_head(FILE *f, const char *kind, const char *api, const char *name, const char *ns)
{
        fprintf(f, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: ", api, kind);
        q(f, name);
        if (ns) {
                fputs("\n  namespace: ", f);
                q(f, ns);
        }
        fputc('\n', f);
}

void manifests_label_map(FILE *f, const char *indent, char *const *sel)
{
        for (char *const *l = sel; l && *l; l++) {
                const char *eq = strchr(*l, '=');
                _cleanup_free_ char *k = eq ? strndup(*l, (size_t)(eq - *l)) : NULL;
                if (!k)
                        continue;
                fputs(indent, f);
                q(f, k);
                fputs(": ", f);
                q(f, eq + 1);
                fputc('\n', f);
        }
}

static void namespace_selector(FILE *f, const struct injector_config *c)
{
        fputs("    namespaceSelector:\n      matchExpressions:\n      - key: "
              "kubernetes.io/metadata.name\n"
              "        operator: NotIn\n        values:\n",
              f);
        for (char **n = c->selector.exclude_namespaces; n && *n; n++) {
                fputs("        - ", f);
                q(f, *n);
                fputc('\n', f);
        }
}

static void client_config(FILE *f, const struct manifests_opts *o, const char *path,
                          const char *ca_b64)
{
        const struct injector_config *c = o->config;
        fputs("    clientConfig:\n", f);
        if (o->url) {
                _cleanup_free_ char *u = strdup_printf("%s%s", o->url, path);
                fputs("      url: ", f);
                q(f, u);
                fputc('\n', f);
        } else {
                fputs("      service:\n        namespace: ", f);
                q(f, c->deploy.namespace);
                fputs("\n        name: ", f);
                q(f, c->deploy.service);
                fprintf(f, "\n        path: \"%s\"\n        port: 443\n", path);
        }
        fprintf(f, "      caBundle: \"%s\"\n", ca_b64);
}

static void webhook_common(FILE *f, const struct injector_config *c)
{
        fprintf(f,
                "    admissionReviewVersions: [\"v1\"]\n"
                "    sideEffects: None\n"
                "    timeoutSeconds: 5\n"
                "    failurePolicy: %s\n"
                "    reinvocationPolicy: IfNeeded\n"
                "    matchPolicy: Equivalent\n",
                failure_policy_name(c->failure_policy));
        namespace_selector(f, c);
}

static int read_certs(const struct manifests_opts *o, char **ca, char **crt, char **key)
{
        const struct injector_config *c = o->config;
        if (o->certs_dir) {
                _cleanup_free_ char *cp = strdup_printf("%s/ca.crt", o->certs_dir);
                _cleanup_free_ char *tp = strdup_printf("%s/tls.crt", o->certs_dir);
                _cleanup_free_ char *kp = strdup_printf("%s/tls.key", o->certs_dir);
                int r;
                if (!cp || !tp || !kp)
                        return -ENOMEM;
                r = read_full_file(cp, ca, NULL);
                if (r < 0)
                        return log_error_errno(r,
                                               "manifests: cannot read %s: %s (run `mesa-injector "
                                               "certs --out %s` first)",
                                               cp, strerror(-r), o->certs_dir);
                if (o->url)
                        return 0;
                r = read_full_file(tp, crt, NULL);
                if (r >= 0)
                        r = read_full_file(kp, key, NULL);
                if (r < 0)
                        return log_error_errno(r,
                                               "manifests: cannot read %s/tls.crt and tls.key: %s",
                                               o->certs_dir, strerror(-r));
                return 0;
        }
        if (o->url)
                return log_error_errno(
                    -EINVAL,
                    "manifests: --url needs --certs DIR: the caBundle must be the CA of the "
                    "certificate the webhook on the host serves");
        /* In-cluster without --certs: a fresh CA and pair, shipped as the
         * Secret the Deployment mounts. */
        struct certs_opts co = {.service = c->deploy.service, .namespace = c->deploy.namespace};
        return certs_generate_mem(&co, ca, crt, key);
}

/* The --image/--library-profile the Deployment's serve gets, as the rest
 * of its args: ', "--image", "IMG"'. */
static char *serve_overrides(const struct injector_overrides *o)
{
        char *out = strdup("");
        const char *keys[] = {"--image", "--library-profile"};
        const char *vals[] = {o ? o->image : NULL, o ? o->library_profile : NULL};
        for (size_t i = 0; out && i < ELEMENTSOF(keys); i++) {
                if (!vals[i])
                        continue;
                cJSON *j = cJSON_CreateString(vals[i]);
                char *q = j ? cJSON_PrintUnformatted(j) : NULL;
                char *n = q ? strdup_printf("%s, \"%s\", %s", out, keys[i], q) : NULL;
                free(q);
                cJSON_Delete(j);
                free(out);
                out = n;
        }
        return out;
}

static char *b64(const char *s)
{
        return base64_encode(s, strlen(s));
}

static int print_account_and_secret(const struct manifests_opts *o, FILE *f, const char *crt,
                                    const char *key)
{
        const struct injector_config *c = o->config;
        const char *ns = c->deploy.namespace;
        manifests_head(f, "Namespace", "v1", ns, NULL);
        labels(f, "  ");
        manifests_head(f, "ServiceAccount", "v1", "mesa-injector", ns);
        labels(f, "  ");
        fputs("automountServiceAccountToken: false\n", f);

        _cleanup_free_ char *crt_b64 = b64(crt), *key_b64 = b64(key);
        if (!crt_b64 || !key_b64)
                return log_error_errno(-ENOMEM, "manifests: out of memory");
        fputs("---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n  name: ", f);
        q(f, c->deploy.cert_secret);
        fputs("\n  namespace: ", f);
        q(f, ns);
        fputc('\n', f);
        labels(f, "  ");
        fprintf(f, "data:\n  tls.crt: \"%s\"\n  tls.key: \"%s\"\n", crt_b64, key_b64);
        return 0;
}

/* The --config file, for the Deployment (and the device plugin) to mount. */
void manifests_config_map(const struct manifests_opts *o, FILE *f)
{
        if (!o->config_text)
                return;
        manifests_head(f, "ConfigMap", "v1", "mesa-injector-config", o->config->deploy.namespace);
        fputs("data:\n  config.yaml: ", f);
        q(f, o->config_text);
        fputc('\n', f);
}

static void print_deployment(const struct manifests_opts *o, FILE *f)
{
        const struct injector_config *c = o->config;
        _cleanup_free_ char *over = serve_overrides(o->overrides);
        manifests_head(f, "Deployment", "apps/v1", "mesa-injector", c->deploy.namespace);
        labels(f, "  ");
        fputs("spec:\n"
              "  replicas: 2\n"
              "  selector:\n    matchLabels:\n      app.kubernetes.io/name: mesa-injector\n"
              "  template:\n"
              "    metadata:\n",
              f);
        labels(f, "      ");
        fputs("    spec:\n"
              "      serviceAccountName: mesa-injector\n"
              "      automountServiceAccountToken: false\n"
              "      securityContext:\n"
              "        runAsNonRoot: true\n"
              "        runAsUser: 65532\n"
              "        runAsGroup: 65532\n"
              "        seccompProfile:\n          type: RuntimeDefault\n"
              "      containers:\n"
              "      - name: mesa-injector\n"
              "        image: ",
              f);
        q(f, c->deploy.image);
        fprintf(f,
                "\n        imagePullPolicy: IfNotPresent\n"
                "        args: [\"serve\", \"--listen\", \"0.0.0.0:%u\", \"--cert\", "
                "\"/tls/tls.crt\", "
                "\"--key\", \"/tls/tls.key\"%s%s]\n"
                "        ports:\n        - name: https\n          containerPort: %u\n"
                "        securityContext:\n"
                "          readOnlyRootFilesystem: true\n"
                "          allowPrivilegeEscalation: false\n"
                "          capabilities:\n            drop: [\"ALL\"]\n"
                "        resources:\n"
                "          requests:\n            cpu: 20m\n            memory: 32Mi\n"
                /* Room for limits.maxBufferedBytes of bodies
                 * plus their parse trees. */
                "          limits:\n            cpu: 500m\n            memory: 256Mi\n"
                "        livenessProbe:\n          httpGet:\n            path: /healthz\n"
                "            port: https\n            scheme: HTTPS\n          "
                "periodSeconds: 10\n"
                "        readinessProbe:\n          httpGet:\n            path: /readyz\n"
                "            port: https\n            scheme: HTTPS\n          "
                "periodSeconds: 5\n"
                "        volumeMounts:\n        - name: tls\n          mountPath: /tls\n   "
                "       readOnly: true\n",
                c->deploy.port, o->config_text ? ", \"--config\", \"/config/config.yaml\"" : "",
                over ? over : "", c->deploy.port);
        if (o->config_text)
                fputs("        - name: config\n          mountPath: /config\n          "
                      "readOnly: true\n",
                      f);
        fputs("      terminationGracePeriodSeconds: 30\n      volumes:\n      - name: "
              "tls\n        secret:\n"
              "          secretName: ",
              f);
        q(f, c->deploy.cert_secret);
        fputc('\n', f);
        if (o->config_text)
                fputs("      - name: config\n        configMap:\n          name: "
                      "mesa-injector-config\n",
                      f);
}

static void print_service(const struct injector_config *c, FILE *f)
{
        manifests_head(f, "Service", "v1", c->deploy.service, c->deploy.namespace);
        labels(f, "  ");
        fputs("spec:\n  selector:\n    app.kubernetes.io/name: mesa-injector\n"
              "  ports:\n  - name: https\n    port: 443\n    targetPort: https\n",
              f);
}

/* The configMap source only: the hook script in every namespace whose
 * VMIs get the annotation, because virt-controller reads it from the
 * VMI's own namespace (literal names, never the suite's kubevirt-test-*:
 * config_vmi_hook.c). The image source needs nothing there. */
static void print_hook_config_maps(const struct injector_config *c, FILE *f, const char *script)
{
        if (!c->vmi_hook.enabled || c->vmi_hook.source != HOOK_SOURCE_CONFIGMAP)
                return;
        for (char **n = c->vmi_hook.namespaces; n && *n; n++) {
                manifests_head(f, "ConfigMap", "v1", c->vmi_hook.configmap, *n);
                labels(f, "  ");
                fputs("data:\n  ", f);
                q(f, c->vmi_hook.key);
                fputs(": ", f);
                block(f, "    ", script);
        }
}

static void print_webhook_configuration(const struct manifests_opts *o, FILE *f, const char *ca_b64)
{
        const struct injector_config *c = o->config;
        manifests_head(f, "MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1",
                       "mesa-injector", NULL);
        labels(f, "  ");
        fputs("webhooks:\n  - name: pods.mesa-injector.vgpuenv.io\n", f);
        client_config(f, o, "/mutate-pods", ca_b64);
        fputs("    rules:\n    - operations: [\"CREATE\"]\n      apiGroups: [\"\"]\n      "
              "apiVersions: [\"v1\"]\n"
              "      resources: [\"pods\"]\n      scope: Namespaced\n",
              f);
        fputs("    objectSelector:\n      matchLabels:\n", f);
        manifests_label_map(f, "        ", c->selector.labels);
        webhook_common(f, c);
        if (!c->vmi_hook.enabled)
                return;
        fputs("  - name: vmis.mesa-injector.vgpuenv.io\n", f);
        client_config(f, o, "/mutate-vmis", ca_b64);
        fputs("    rules:\n    - operations: [\"CREATE\"]\n      apiGroups: "
              "[\"kubevirt.io\"]\n"
              "      apiVersions: [\"v1\"]\n      resources: [\"virtualmachineinstances\"]\n"
              "      scope: Namespaced\n",
              f);
        webhook_common(f, c);
}

int manifests_print(const struct manifests_opts *o, FILE *f)
{
        const struct injector_config *c = o->config;
        _cleanup_free_ char *ca = NULL, *crt = NULL, *key = NULL;
        int r;

        if (o->url && (!startswith(o->url, "https://") || strlen(o->url) <= strlen("https://")))
                return log_error_errno(
                    -EINVAL, "manifests: --url must start with https:// (got '%s')", o->url);
        r = read_certs(o, &ca, &crt, &key);
        if (r < 0)
                return r;
        _cleanup_free_ char *ca_b64 = b64(ca);
        _cleanup_free_ char *script = hook_script_render(c);
        if (!ca_b64 || !script)
                return log_error_errno(-ENOMEM, "manifests: out of memory");

        fprintf(
            f, "# mesa-injector (vgpuenv): %s mode, %s\n", c->mode == MODE_CDI ? "cdi" : "hostpath",
            o->url ? "webhook running outside the cluster (URL mode)" : "in-cluster deployment");
        if (!o->url) {
                r = print_account_and_secret(o, f, crt, key);
                if (r < 0)
                        return r;
                manifests_config_map(o, f);
                print_deployment(o, f);
                print_service(c, f);
        }
        /* The plugin runs on the nodes wherever the webhook runs. */
        device_plugin_manifests_print(o, f, !o->url);
        print_hook_config_maps(c, f, script);
        print_webhook_configuration(o, f, ca_b64);
        return fflush(f) == 0 ? 0 : log_error_errno(-errno, "manifests: write failed");
}

int cdi_spec_print(const struct injector_config *c, FILE *f)
{
        /* Matches what node setup writes (provision/cdi_contract.h): the
         * render node for QEMU's uid/gid 107, the libraries bind-mounted
         * read-only at the same paths. */
        fprintf(f, "# CDI spec for mesa-injector's cdi mode; install as %s on every node\n",
                c->cdi.spec_path);
        fputs("cdiVersion: \"0.5.0\"\nkind: ", f);
        _cleanup_free_ char *kind = strdup_printf("%s/%s", c->cdi.vendor, c->cdi.class);
        q(f, kind);
        /* Named after the render node: the device plugin's Allocate names
         * vendor/class=<node> for the node it hands out. */
        fputs("\ndevices:\n- name: ", f);
        q(f, strrchr(c->render_node, '/') + 1);
        fputs("\n  containerEdits:\n    deviceNodes:\n    - path: ", f);
        q(f, c->render_node);
        fprintf(f,
                "\n      type: c\n      permissions: rw\n      fileMode: 438  # 0666\n      uid: "
                "%d\n      gid: %d\n",
                VGPUENV_QEMU_UID, VGPUENV_QEMU_GID);
        fputs("    env:\n    - \"__EGL_VENDOR_LIBRARY_DIRS=/usr/share/glvnd/egl_vendor.d\"\n    "
              "mounts:\n",
              f);
        for (size_t i = 0; i < c->n_resolved; i++) {
                const struct host_path *h = &c->resolved[i];
                /* Devices come from deviceNodes, which also set the cgroup
                 * rule; a bind mount of /dev/dri would not. */
                if (startswith(h->path, "/dev/"))
                        continue;
                fputs("    - hostPath: ", f);
                q(f, h->path);
                fputs("\n      containerPath: ", f);
                q(f, h->container_path ? h->container_path : h->path);
                fputs("\n      options: [\"ro\", \"nosuid\", \"nodev\", \"rbind\"]\n", f);
        }
        return fflush(f) == 0 ? 0 : -errno;
}
