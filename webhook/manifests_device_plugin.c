/* The device plugin's part of `mesa-injector manifests`: a DaemonSet on the
 * nodes of devicePlugin.nodeSelector, running `mesa-injector device-plugin`
 * as root with every capability dropped and a read-only root file system
 * (root because the kubelet's socket directory is root's, 0750), with the
 * kubelet's device plugin directory and the render nodes' directory as
 * hostPaths, and a ServiceAccount without a token: the plugin talks to the
 * kubelet's socket only, so it needs no RBAC at all. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "webhook/manifests.h"

#define q manifests_quote
#define DP_NAME "mesa-injector-device-plugin"

static void labels(FILE *f, const char *indent)
{
        manifests_labels(f, indent, DP_NAME);
}

static void node_selector(FILE *f, char *const *sel)
{
        if (!sel || !*sel)
                return;
        fputs("      nodeSelector:\n", f);
        manifests_label_map(f, "        ", sel);
}

/* hostPath volumes: the kubelet's directory at the same path (the plugin's
 * socketDir), the render nodes' directory where the plugin looks for it
 * (deviceRoot + the glob's directory), read-only. */
static void mounts_and_volumes(FILE *f, const struct injector_config *c, bool config)
{
        const struct injector_device_plugin *d = &c->device_plugin;
        const char *g = d->device_glob, *slash = strrchr(g, '/');
        _cleanup_free_ char *dir = strndup(g, slash == g ? 1 : (size_t)(slash - g));
        _cleanup_free_ char *seen = dir ? strdup_printf("%s%s", d->device_root, dir) : NULL;
        if (!seen)
                return;
        fputs("        volumeMounts:\n        - name: device-plugins\n          mountPath: ", f);
        q(f, d->socket_dir);
        fputs("\n        - name: render-nodes\n          mountPath: ", f);
        q(f, seen);
        fputs("\n          readOnly: true\n", f);
        if (config)
                fputs("        - name: config\n          mountPath: /config\n          "
                      "readOnly: true\n",
                      f);
        fputs("      volumes:\n      - name: device-plugins\n        hostPath:\n          path: ",
              f);
        q(f, d->socket_dir);
        fputs("\n          type: Directory\n      - name: render-nodes\n        hostPath:\n"
              "          path: ",
              f);
        q(f, dir);
        fputs("\n          type: Directory\n", f);
        if (config)
                fputs("      - name: config\n        configMap:\n          name: "
                      "mesa-injector-config\n",
                      f);
}

void device_plugin_manifests_print(const struct manifests_opts *o, FILE *f, bool in_cluster_printed)
{
        const struct injector_config *c = o->config;
        const char *ns = c->deploy.namespace;
        if (!c->device_plugin.enabled || !c->device_plugin.daemon_set)
                return;
        if (!in_cluster_printed) {
                manifests_head(f, "Namespace", "v1", ns, NULL);
                labels(f, "  ");
                manifests_config_map(o, f);
        }
        manifests_head(f, "ServiceAccount", "v1", DP_NAME, ns);
        labels(f, "  ");
        fputs("automountServiceAccountToken: false\n", f);

        manifests_head(f, "DaemonSet", "apps/v1", DP_NAME, ns);
        labels(f, "  ");
        fputs("spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: " DP_NAME "\n"
              "  updateStrategy:\n    type: RollingUpdate\n"
              "  template:\n    metadata:\n",
              f);
        labels(f, "      ");
        fputs("    spec:\n      serviceAccountName: " DP_NAME "\n"
              "      automountServiceAccountToken: false\n"
              "      securityContext:\n        seccompProfile:\n          type: RuntimeDefault\n",
              f);
        node_selector(f, c->device_plugin.node_selector);
        /* Single-node test clusters schedule on the control plane. */
        fputs("      tolerations:\n      - key: node-role.kubernetes.io/control-plane\n"
              "        operator: Exists\n        effect: NoSchedule\n"
              "      terminationGracePeriodSeconds: 10\n"
              "      containers:\n      - name: device-plugin\n        image: ",
              f);
        q(f, c->deploy.image);
        fprintf(f,
                "\n        imagePullPolicy: IfNotPresent\n"
                "        args: [\"device-plugin\"%s]\n"
                "        securityContext:\n"
                "          runAsUser: 0\n"
                "          readOnlyRootFilesystem: true\n"
                "          allowPrivilegeEscalation: false\n"
                "          capabilities:\n            drop: [\"ALL\"]\n"
                "        resources:\n"
                "          requests:\n            cpu: 10m\n            memory: 16Mi\n"
                "          limits:\n            cpu: 200m\n            memory: 64Mi\n",
                o->config_text ? ", \"--config\", \"/config/config.yaml\"" : "");
        mounts_and_volumes(f, c, o->config_text != NULL);
}
