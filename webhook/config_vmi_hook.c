/* The vmiHook section of mesa-injector's configuration: the schema, the
 * defaults and the checks (file:line:column).
 *
 * Why the rules: virt-controller reads a hook's ConfigMap from the VMI's own
 * namespace when it renders the virt-launcher pod and renders no pod at all
 * when it is missing (kubevirt d923fdb8, pkg/virt-controller/services/
 * template.go, RenderLaunchManifest: ConfigMaps(vmi.Namespace).Get). KubeVirt's
 * functional suite creates its namespaces itself, at test time
 * (kubevirt-test-default1, kubevirt-test-alternative1, ...: testsuite
 * CalculateNamespaces appends GinkgoParallelProcess()), and fails when they
 * exist beforehand. So the configMap source can only serve namespaces that
 * exist before the VMI and are never the suite's; the image source serves
 * any namespace, patterns included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/config.h"

#define F(m) offsetof(struct injector_vmi_hook, m)

static const char *const source_values[] = {"image", "configMap", NULL};
static const char *const pull_values[] = {"IfNotPresent", "Always", "Never", NULL};
static const char *const version_values[] = {"v1alpha1", "v1alpha2", "v1alpha3", NULL};

const struct schema_field vmi_hook_fields[] = {
    {.key = "enabled",
     .type = SCHEMA_BOOL,
     .offset = F(enabled),
     .doc = "annotate VMIs with GPUs so the onDefineDomain hook adds an egl-headless display"},
    {.key = "source",
     .type = SCHEMA_ENUM,
     .offset = F(source),
     .enum_values = source_values,
     .doc = "image: our hook sidecar image (nothing needed in the VMI's namespace); configMap: "
            "KubeVirt's sidecar-shim with the hook script from a ConfigMap in the VMI's "
            "namespace"},
    {.key = "image",
     .type = SCHEMA_STRING,
     .offset = F(image),
     .doc = "image source: image with mesa-injector-hook-sidecar (default: deploy.image)"},
    {.key = "imagePullPolicy",
     .type = SCHEMA_ENUM,
     .offset = F(image_pull_policy),
     .enum_values = pull_values,
     .doc = "image source: the sidecar's imagePullPolicy (a :latest image would default to "
            "Always)"},
    {.key = "configMap",
     .type = SCHEMA_STRING,
     .offset = F(configmap),
     .doc = "configMap source: ConfigMap holding the hook script (manifests create it in each "
            "namespace)"},
    {.key = "key",
     .type = SCHEMA_STRING,
     .offset = F(key),
     .doc = "configMap source: key of the script in the ConfigMap"},
    {.key = "version",
     .type = SCHEMA_STRING,
     .offset = F(version),
     .doc = "configMap source: sidecar-shim hook API version (v1alpha1, v1alpha2, v1alpha3)"},
    {.key = "shimImage",
     .type = SCHEMA_STRING,
     .offset = F(shim_image),
     .doc = "configMap source: sidecar-shim image (default: KubeVirt's)"},
    {.key = "namespaces",
     .type = SCHEMA_STRV,
     .offset = F(namespaces),
     .doc = "namespaces (shell globs) whose VMIs get the hook; empty means any"},
    {}};

static int set(char **p, const char *v)
{
        free(*p);
        *p = v ? strdup(v) : NULL;
        return !v || *p ? 0 : -ENOMEM;
}

int vmi_hook_config_defaults(struct injector_vmi_hook *h)
{
        *h = (struct injector_vmi_hook){
            .enabled = true, .source = HOOK_SOURCE_IMAGE, .image_pull_policy = PULL_IF_NOT_PRESENT};
        /* The suite's namespaces, whatever its parallel process number. */
        h->namespaces = strv_copy((char *const[]){"default", "kubevirt-test-*", NULL});
        if (!h->namespaces || set(&h->configmap, "mesa-injector-hook") < 0 ||
            set(&h->key, "onDefineDomain") < 0 || set(&h->version, "v1alpha2") < 0)
                return -ENOMEM;
        return 0;
}

const char *pull_policy_name(int p)
{
        return p >= 0 && p <= PULL_NEVER ? pull_values[p] : pull_values[0];
}

static int bad(const struct injector_config *c, const struct schema_marks *marks, const char *key,
               const char *msg)
{
        _cleanup_free_ char *dotted = strdup_printf("vmiHook.%s", key);
        /* "namespaces[1]" points at the element, when the loader kept it. */
        const char *bracket = strchr(key, '[');
        _cleanup_free_ char *shown = bracket ? strndup(key, (size_t)(bracket - key)) : NULL;
        struct schema_mark m =
            marks && dotted ? schema_marks_find_value(marks, dotted) : (struct schema_mark){};
        if (!m.line && marks && dotted)
                m = schema_marks_find(marks, dotted);
        const char *src = c->source ? c->source : "<defaults>";
        if (!m.line && marks && shown) {
                free(dotted);
                dotted = strdup_printf("vmiHook.%s", shown);
                m = dotted ? schema_marks_find_value(marks, dotted) : m;
        }
        key = shown ? shown : key;
        if (m.line)
                log_error("%s:%u:%u: vmiHook.%s %s", src, m.line, m.column, key, msg);
        else
                log_error("%s: vmiHook.%s %s", src, key, msg);
        return -EINVAL;
}

/* An image reference goes into a JSON annotation and the pod spec: no
 * blanks, quotes or control characters. */
static bool image_ok(const char *s)
{
        if (isempty(s))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\'' || *p == '\\' || *p == 0x7f)
                        return false;
        return true;
}

static int check_configmap_source(const struct injector_config *c, const struct schema_marks *marks)
{
        const struct injector_vmi_hook *h = &c->vmi_hook;
        if (!h->namespaces || !h->namespaces[0])
                return bad(c, marks, "namespaces",
                           "must name each namespace with vmiHook.source configMap: the "
                           "ConfigMap has to exist in the VMI's namespace");
        for (char **n = h->namespaces; *n; n++) {
                _cleanup_free_ char *msg = NULL;
                _cleanup_free_ char *key =
                    strdup_printf("namespaces[%zu]", (size_t)(n - h->namespaces));
                if (strpbrk(*n, "*?["))
                        msg = strdup_printf(
                            "'%s' is a pattern: with vmiHook.source configMap the ConfigMap "
                            "must exist in each namespace before its VMIs, and a pattern "
                            "names namespaces created later (KubeVirt's suite creates "
                            "kubevirt-test-* at test time); use vmiHook.source: image",
                            *n);
                else if (startswith(*n, "kubevirt-test-"))
                        msg = strdup_printf("'%s' is a namespace KubeVirt's suite creates itself "
                                            "(and fails if it exists): a ConfigMap cannot be "
                                            "there in time; use vmiHook.source: image",
                                            *n);
                if (msg)
                        return bad(c, marks, key ? key : "namespaces", msg);
        }
        if (!strv_contains((char **)version_values, h->version ? h->version : ""))
                return bad(c, marks, "version", "must be v1alpha1, v1alpha2 or v1alpha3");
        if (isempty(h->configmap) || isempty(h->key))
                return bad(c, marks, "configMap", "and vmiHook.key must be set");
        if (!isempty(h->shim_image) && !image_ok(h->shim_image))
                return bad(c, marks, "shimImage", "is not an image reference");
        return 0;
}

int vmi_hook_config_check(struct injector_config *c, const struct schema_marks *marks)
{
        struct injector_vmi_hook *h = &c->vmi_hook;
        if (!h->enabled)
                return 0;
        if (h->source == HOOK_SOURCE_CONFIGMAP)
                return check_configmap_source(c, marks);
        /* The sidecar is mesa-injector's own image: the one the device
         * plugin's DaemonSet runs on the nodes already. */
        if (isempty(h->image) && set(&h->image, c->deploy.image) < 0)
                return -ENOMEM;
        if (!image_ok(h->image))
                return bad(c, marks, "image", "is not an image reference");
        return 0;
}
