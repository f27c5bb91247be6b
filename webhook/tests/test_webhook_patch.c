/* Unit tests for mesa-injector's JSON patch builder (webhook/patch.c,
 * patch_resource.c) and AdmissionReview handling (webhook/admission.c): JSON
 * pointer escaping, arrays created whole, appends, the device plugin's
 * resource in every shape of resources, idempotence, name clashes, review
 * validation. The integration tests apply the same patches with
 * python3-jsonpatch; here we pin the exact operations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/admission.h"
#include "webhook/config.h"
#include "webhook/patch.h"
#include "webhook/server.h"
#include "webhook/tests/gunzip.h"

static struct injector_config cfg;
static cJSON *parsed;

static int setup(void **state)
{
        (void)state;
        log_set_level(LOG_WARNING);
        assert_int_equal(admission_init(), 0);
        return injector_config_load(&cfg, NULL, NULL);
}

static int teardown(void **state)
{
        (void)state;
        cJSON_Delete(parsed);
        injector_config_done(&cfg);
        return 0;
}

static cJSON *pod(const char *extra_spec, bool with_labels)
{
        char buf[4096];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"namespace\":\"kubevirt-test-default\"%s},"
                 "\"spec\":{\"containers\":[{\"name\":\"guest-console-log\"},{\"name\":\"compute\"%"
                 "s}]%s}}",
                 with_labels ? ",\"labels\":{\"kubevirt.io\":\"virt-launcher\"}" : "",
                 strstr(extra_spec, "MOUNTS")
                     ? ",\"volumeMounts\":[{\"name\":\"private\",\"mountPath\":\"/p\"}]"
                     : "",
                 strstr(extra_spec, "VOLUMES")
                     ? ",\"volumes\":[{\"name\":\"private\",\"emptyDir\":{}}]"
                     : "");
        cJSON *p = cJSON_Parse(buf);
        assert_non_null(p);
        return p;
}

/* The patch as a cJSON array, re-parsed from the text the webhook sends;
 * kept until the next call. */
static cJSON *ops_of(struct patch *p)
{
        cJSON_Delete(parsed);
        parsed = cJSON_Parse(patch_json(p));
        assert_non_null(parsed);
        assert_int_equal(cJSON_GetArraySize(parsed), (int)patch_count(p));
        return parsed;
}

static const char *op_path(struct patch *p, int i)
{
        return cJSON_GetObjectItem(cJSON_GetArrayItem(ops_of(p), i), "path")->valuestring;
}

static const char *op_op(struct patch *p, int i)
{
        return cJSON_GetObjectItem(cJSON_GetArrayItem(ops_of(p), i), "op")->valuestring;
}

static void test_pointer_escape(void **state)
{
        (void)state;
        char *s = json_pointer_escape("hooks.kubevirt.io/hookSidecars");
        assert_string_equal(s, "hooks.kubevirt.io~1hookSidecars");
        free(s);
        s = json_pointer_escape("a~b/c~/");
        assert_string_equal(s, "a~0b~1c~0~1");
        free(s);
        s = json_pointer_escape("");
        assert_string_equal(s, "");
        free(s);
}

static void test_missing_arrays_created_whole(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = pod("", true);
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_PATCHED);
        assert_int_equal(patch_count(&p), 4);
        assert_string_equal(op_path(&p, 0), "/spec/volumes");
        assert_string_equal(op_path(&p, 1), "/spec/containers/1/volumeMounts");
        assert_string_equal(op_path(&p, 2), "/spec/containers/1/resources");
        assert_string_equal(op_path(&p, 3), "/metadata/annotations");
        for (int i = 0; i < 4; i++)
                assert_string_equal(op_op(&p, i), "add");
        cJSON *ops = cJSON_Parse(patch_json(&p));
        cJSON *vols = cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 0), "value");
        cJSON *mounts = cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 1), "value");
        assert_true(cJSON_IsArray(vols));
        assert_int_equal(cJSON_GetArraySize(vols), (int)cfg.n_resolved);
        assert_int_equal(cJSON_GetArraySize(mounts), (int)cfg.n_resolved);
        cJSON *m0 = cJSON_GetArrayItem(mounts, 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m0, "readOnly")));
        char *res =
            cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 2), "value"));
        assert_string_equal(res, "{\"limits\":{\"vgpuenv.io/render\":\"1\"}}");
        free(res);
        cJSON *ann = cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 3), "value");
        assert_string_equal(cJSON_GetObjectItem(ann, INJECTED_ANNOTATION)->valuestring, "hostpath");
        /* Neither the render node as a hostPath nor a CDI pod annotation. */
        assert_null(strstr(patch_json(&p), "/dev/dri"));
        assert_null(strstr(patch_json(&p), "cdi.k8s.io"));
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(vols, 0), "name")->valuestring,
                            cfg.resolved[0].name);
        cJSON_Delete(ops);
        patch_done(&p);
        free(reason);
        cJSON_Delete(o);
}

static void test_existing_arrays_appended(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = pod("VOLUMES MOUNTS", true);
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_PATCHED);
        assert_int_equal(patch_count(&p), 2 * cfg.n_resolved + 2);
        assert_string_equal(op_path(&p, 0), "/spec/volumes/-");
        assert_string_equal(op_path(&p, (int)cfg.n_resolved), "/spec/containers/1/volumeMounts/-");
        assert_string_equal(op_path(&p, (int)(2 * cfg.n_resolved)), "/spec/containers/1/resources");
        assert_string_equal(op_path(&p, (int)(2 * cfg.n_resolved + 1)), "/metadata/annotations");
        patch_done(&p);
        free(reason);
        cJSON_Delete(o);
}

/* Apply our own "add" ops (only the shapes we emit) to check idempotence
 * without an external library; the integration tests use python3-jsonpatch. */
static void apply_simple(cJSON *doc, struct patch *p)
{
        cJSON *op, *ops = cJSON_Parse(patch_json(p));
        cJSON_ArrayForEach(op, ops)
        {
                char *path = strdup(cJSON_GetObjectItem(op, "path")->valuestring);
                cJSON *val = cJSON_Duplicate(cJSON_GetObjectItem(op, "value"), 1);
                cJSON *cur = doc;
                char *save = NULL, *tok = strtok_r(path + 1, "/", &save), *next;
                for (; (next = strtok_r(NULL, "/", &save)); tok = next) {
                        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(tok))
                                                 : cJSON_GetObjectItem(cur, tok);
                        assert_non_null(cur);
                }
                if (cJSON_IsArray(cur))
                        cJSON_AddItemToArray(cur, val);
                else {
                        /* unescape ~1 and ~0 */
                        char key[256], *k = key;
                        for (const char *s = tok; *s; s++) {
                                if (s[0] == '~' && s[1] == '1') {
                                        *k++ = '/';
                                        s++;
                                } else if (s[0] == '~' && s[1] == '0') {
                                        *k++ = '~';
                                        s++;
                                } else
                                        *k++ = *s;
                        }
                        *k = '\0';
                        cJSON_DeleteItemFromObject(cur, key);
                        cJSON_AddItemToObject(cur, key, val);
                }
                free(path);
        }
        cJSON_Delete(ops);
}

static void test_idempotent(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = pod("VOLUMES", true);
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_PATCHED);
        apply_simple(o, &p);
        patch_done(&p);
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_UNCHANGED);
        assert_int_equal(patch_count(&p), 0);
        free(reason);
        cJSON_Delete(o);
}

/* The second pod of a shape is served from the cache: same text, and the
 * base64 the response carries decodes to it. */
static void test_cached_full_injection(void **state)
{
        (void)state;
        struct patch p1 = {}, p2 = {};
        char *reason = NULL;
        cJSON *a = pod("VOLUMES MOUNTS", true), *b = pod("VOLUMES MOUNTS", true);
        assert_int_equal(mutate_pod(&cfg, a, NULL, &p1, &reason), DECISION_PATCHED);
        assert_int_equal(mutate_pod(&cfg, b, NULL, &p2, &reason), DECISION_PATCHED);
        assert_non_null(p2.shared);
        assert_string_equal(patch_json(&p1), patch_json(&p2));
        assert_int_equal(patch_count(&p1), patch_count(&p2));
        size_t len = 0;
        const char *b64 = patch_base64(&p2, &len);
        char *expect = base64_encode(patch_json(&p1), strlen(patch_json(&p1)));
        assert_int_equal(len, strlen(expect));
        assert_memory_equal(b64, expect, len);
        free(expect);
        /* compute with requests is another shape: its own patch, with the
         * request, never the first pod's. */
        cJSON *cpt = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(b, "spec"), "containers"), 1);
        cJSON_AddItemToObject(cpt, "resources", cJSON_Parse("{\"requests\":{\"cpu\":\"1\"}}"));
        struct patch p3 = {};
        assert_int_equal(mutate_pod(&cfg, b, NULL, &p3, &reason), DECISION_PATCHED);
        assert_non_null(strstr(patch_json(&p3), "resources/requests/vgpuenv.io~1render"));
        assert_null(strstr(patch_json(&p1), "requests"));
        patch_done(&p3);
        cJSON_DeleteItemFromObject(cpt, "resources");
        /* A pod that already has one of our volumes is not a full injection. */
        patch_done(&p2);
        cJSON *vols = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "spec"), "volumes");
        char v[512];
        snprintf(v, sizeof(v), "%s", cfg.resolved[0].volume_json);
        cJSON_AddItemToArray(vols, cJSON_Parse(v));
        assert_int_equal(mutate_pod(&cfg, b, NULL, &p2, &reason), DECISION_PATCHED);
        assert_null(p2.shared);
        assert_int_equal(patch_count(&p2), patch_count(&p1) - 1);
        patch_done(&p1);
        patch_done(&p2);
        free(reason);
        cJSON_Delete(a);
        cJSON_Delete(b);
}

static void test_name_clash(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = pod("VOLUMES", true);
        cJSON *vols = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "volumes");
        char v[256];
        snprintf(v, sizeof(v), "{\"name\":\"%s\",\"hostPath\":{\"path\":\"/somewhere/else\"}}",
                 cfg.resolved[0].name);
        cJSON_AddItemToArray(vols, cJSON_Parse(v));
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_CONFLICT);
        assert_int_equal(patch_count(&p), 0);
        assert_non_null(strstr(reason, cfg.resolved[0].name));
        free(reason);
        reason = NULL;
        cJSON_Delete(o);

        /* Same mount path taken by another volume. */
        o = pod("MOUNTS", true);
        cJSON *mounts = cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "containers"),
                               1),
            "volumeMounts");
        cJSON_AddItemToArray(
            mounts,
            cJSON_Parse("{\"name\":\"theirs\",\"mountPath\":\"/usr/share/glvnd/egl_vendor.d\"}"));
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_CONFLICT);
        assert_non_null(strstr(reason, "/usr/share/glvnd/egl_vendor.d"));
        free(reason);
        cJSON_Delete(o);
}

/* A virt-launcher pod whose compute container carries resources_json
 * (NULL: no resources), with our volumes already there so only the
 * resource remains to add. */
static cJSON *pod_with_resources(const char *resources_json)
{
        cJSON *o = pod("", true);
        cJSON *compute = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "containers"), 1);
        if (resources_json)
                cJSON_AddItemToObject(compute, "resources", cJSON_Parse(resources_json));
        return o;
}

/* The ops of mutating o as one compact JSON text (caller frees). */
static char *ops_text(const struct injector_config *c, cJSON *o, enum mutate_decision want)
{
        struct patch p = {};
        char *reason = NULL;
        assert_int_equal(mutate_pod(c, o, NULL, &p, &reason), want);
        char *t = strdup(patch_json(&p));
        patch_done(&p);
        free(reason);
        return t;
}

/* With the volumes done, what the resource alone adds, for each shape of
 * resources the API server can send: limits only, and requests equal when
 * requests exist (it defaults missing requests to the limits and wants
 * them equal for extended resources). */
static void test_resource_shapes(void **state)
{
        (void)state;
        struct injector_config c;
        static const struct {
                const char *resources, *want;
        } cases[] = {
            {NULL,
             "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources\",\"value\":{\"limits\":"
             "{\"vgpuenv.io/render\":\"1\"}}}"},
            {"{}", "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/limits\",\"value\":"
                   "{\"vgpuenv.io/render\":\"1\"}}"},
            {"{\"limits\":{\"cpu\":\"1\"}}",
             "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/limits/vgpuenv.io~1render\","
             "\"value\":\"1\"}"},
            {"{\"requests\":{\"memory\":\"1Gi\"}}",
             "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/limits\",\"value\":"
             "{\"vgpuenv.io/render\":\"1\"}},{\"op\":\"add\",\"path\":\"/spec/containers/1/"
             "resources/requests/vgpuenv.io~1render\",\"value\":\"1\"}"},
            {"{\"limits\":{\"vgpuenv.io/render\":\"1\"},\"requests\":{\"cpu\":\"100m\"}}",
             "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/requests/"
             "vgpuenv.io~1render\","
             "\"value\":\"1\"}"},
        };
        assert_int_equal(injector_config_load(&c, NULL, "libraryProfile: none\n"), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                cJSON *o = pod_with_resources(cases[i].resources);
                char *t = ops_text(&c, o, DECISION_PATCHED);
                if (!strstr(t, cases[i].want) || !strstr(t, INJECTED_ANNOTATION))
                        fail_msg("resources %s: got %s", cases[i].resources, t);
                free(t);
                cJSON_Delete(o);
        }
        /* Ours already there (the string "1" or the number 1): no patch. */
        const char *done[] = {"{\"limits\":{\"vgpuenv.io/render\":\"1\"}}",
                              "{\"limits\":{\"vgpuenv.io/render\":1},\"requests\":{\"vgpuenv.io/"
                              "render\":\"1\",\"cpu\":\"1\"}}"};
        for (size_t i = 0; i < ELEMENTSOF(done); i++) {
                cJSON *o = pod_with_resources(done[i]);
                free(ops_text(&c, o, DECISION_UNCHANGED));
                cJSON_Delete(o);
        }
        /* Another quantity of ours: reported, not overwritten. */
        const char *clash[] = {
            "{\"limits\":{\"vgpuenv.io/render\":\"2\"}}",
            "{\"limits\":{\"vgpuenv.io/render\":\"1\"},\"requests\":{\"vgpuenv.io/"
            "render\":\"0\"}}"};
        for (size_t i = 0; i < ELEMENTSOF(clash); i++) {
                struct patch p = {};
                char *reason = NULL;
                cJSON *o = pod_with_resources(clash[i]);
                assert_int_equal(mutate_pod(&c, o, NULL, &p, &reason), DECISION_CONFLICT);
                assert_int_equal(patch_count(&p), 0);
                assert_non_null(strstr(reason, "vgpuenv.io/render"));
                free(reason);
                cJSON_Delete(o);
        }
        /* Not shaped as Kubernetes writes it. */
        cJSON *o = pod_with_resources("{\"limits\":[]}");
        free(ops_text(&c, o, DECISION_INVALID));
        cJSON_Delete(o);
        injector_config_done(&c);

        /* devicePlugin disabled: libraries only, no resource. */
        assert_int_equal(injector_config_load(&c, NULL, "devicePlugin: {enabled: false}\n"), 0);
        o = pod("", true);
        char *t = ops_text(&c, o, DECISION_PATCHED);
        assert_null(strstr(t, "resources"));
        free(t);
        cJSON_Delete(o);
        injector_config_done(&c);
}

/* Mode cdi: the resource and the marker only; no volumes, no pod
 * annotation for CDI (the kubelet would never pass it to the runtime). */
static void test_cdi_mode(void **state)
{
        (void)state;
        struct injector_config c;
        assert_int_equal(injector_config_load(&c, NULL, "mode: cdi\n"), 0);
        cJSON *o = pod("VOLUMES MOUNTS", true);
        struct patch p = {};
        char *reason = NULL;
        assert_int_equal(mutate_pod(&c, o, NULL, &p, &reason), DECISION_PATCHED);
        assert_int_equal(patch_count(&p), 2);
        assert_string_equal(op_path(&p, 0), "/spec/containers/1/resources");
        assert_string_equal(op_path(&p, 1), "/metadata/annotations");
        assert_null(strstr(patch_json(&p), "cdi.k8s.io"));
        assert_non_null(strstr(patch_json(&p), "\"" INJECTED_ANNOTATION "\":\"cdi\""));
        apply_simple(o, &p);
        patch_done(&p);
        assert_int_equal(mutate_pod(&c, o, NULL, &p, &reason), DECISION_UNCHANGED);
        free(reason);
        cJSON_Delete(o);
        injector_config_done(&c);
}

static void test_not_selected(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = pod("", false);
        assert_int_equal(mutate_pod(&cfg, o, NULL, &p, &reason), DECISION_SKIPPED);
        assert_int_equal(patch_count(&p), 0);
        free(reason);
        reason = NULL;
        cJSON_Delete(o);
        o = pod("", true);
        assert_int_equal(mutate_pod(&cfg, o, "kube-system", &p, &reason), DECISION_SKIPPED);
        assert_int_equal(mutate_pod(&cfg, o, "mesa-injector", &p, &reason), DECISION_SKIPPED);
        free(reason);
        cJSON_Delete(o);
}

static cJSON *gpu_vmi(const char *ns, const char *annotations)
{
        char buf[1024];
        snprintf(buf, sizeof(buf),
                 "{\"metadata\":{\"namespace\":\"%s\",\"annotations\":{%s}},"
                 "\"spec\":{\"domain\":{\"devices\":{\"gpus\":[{\"name\":\"g\","
                 "\"deviceName\":\"nvidia.com/GRID_T4-1B\"}]}}}}",
                 ns, annotations);
        cJSON *o = cJSON_Parse(buf);
        assert_non_null(o);
        return o;
}

/* The annotation's list, parsed from the patch's value. */
static cJSON *sidecars_of(struct patch *p)
{
        cJSON *val = cJSON_GetObjectItem(cJSON_GetArrayItem(ops_of(p), 0), "value");
        cJSON *list = cJSON_Parse(val->valuestring);
        assert_true(cJSON_IsArray(list));
        return list;
}

static void test_vmi_annotation_escaped(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = gpu_vmi("default", "\"x\":\"y\"");
        assert_int_equal(mutate_vmi(&cfg, o, NULL, &p, &reason), DECISION_PATCHED);
        assert_int_equal(patch_count(&p), 1);
        assert_string_equal(op_path(&p, 0),
                            "/metadata/annotations/hooks.kubevirt.io~1hookSidecars");
        /* The image source (default): our image, our sidecar program, the
         * render node; no ConfigMap. */
        cJSON *list = sidecars_of(&p);
        cJSON *e = cJSON_GetArrayItem(list, 0);
        assert_int_equal(cJSON_GetArraySize(list), 1);
        assert_string_equal(cJSON_GetObjectItem(e, "image")->valuestring,
                            "localhost/vgpuenv/mesa-injector:latest");
        assert_string_equal(cJSON_GetObjectItem(e, "imagePullPolicy")->valuestring, "IfNotPresent");
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "command"), 0)->valuestring,
                            "/usr/local/bin/mesa-injector-hook-sidecar");
        assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(e, "args"), 1)->valuestring,
                            "/dev/dri/renderD128");
        assert_null(cJSON_GetObjectItem(e, "configMap"));
        cJSON_Delete(list);
        patch_done(&p);
        /* A non-JSON annotation of that name: reported, not overwritten. */
        cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "annotations");
        cJSON_AddStringToObject(ann, HOOK_SIDECARS_ANNOTATION, "not json");
        assert_int_equal(mutate_vmi(&cfg, o, NULL, &p, &reason), DECISION_CONFLICT);
        free(reason);
        cJSON_Delete(o);
}

/* KubeVirt's suite creates kubevirt-test-default1, -alternative1, and with
 * more parallel processes -default2... (CalculateNamespaces): all of them
 * get the hook with the default config; a namespace outside the list none. */
static void test_vmi_suite_namespaces(void **state)
{
        (void)state;
        static const char *const yes[] = {"kubevirt-test-default1", "kubevirt-test-alternative1",
                                          "kubevirt-test-default2", "kubevirt-test-alternative2",
                                          "default"};
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                struct patch p = {};
                char *reason = NULL;
                cJSON *o = gpu_vmi(yes[i], "");
                /* request.namespace wins over metadata (CREATE may lack it). */
                assert_int_equal(mutate_vmi(&cfg, o, yes[i], &p, &reason), DECISION_PATCHED);
                patch_done(&p);
                free(reason);
                cJSON_Delete(o);
        }
        static const char *const no[] = {"kubevirt", "kube-system", "mesa-injector", "other"};
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                struct patch p = {};
                char *reason = NULL;
                cJSON *o = gpu_vmi(no[i], "");
                assert_int_equal(mutate_vmi(&cfg, o, no[i], &p, &reason), DECISION_SKIPPED);
                assert_int_equal(patch_count(&p), 0);
                patch_done(&p);
                free(reason);
                cJSON_Delete(o);
        }
}

/* Re-invocation: our entry is there, nothing to add; another sidecar's
 * entry is kept and ours appended. */
static void test_vmi_reinvocation(void **state)
{
        (void)state;
        struct patch p = {};
        char *reason = NULL;
        cJSON *entry = hook_sidecar_entry(&cfg);
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, entry);
        char *list = cJSON_PrintUnformatted(arr);
        cJSON *js = cJSON_CreateString(list);
        char *quoted = cJSON_PrintUnformatted(js);
        char *ann = strdup_printf("\"hooks.kubevirt.io/hookSidecars\":%s", quoted);
        cJSON *o = gpu_vmi("kubevirt-test-default1", ann);
        assert_int_equal(mutate_vmi(&cfg, o, NULL, &p, &reason), DECISION_UNCHANGED);
        assert_int_equal(patch_count(&p), 0);
        patch_done(&p);
        cJSON_Delete(o);
        free(reason);
        reason = NULL;
        o = gpu_vmi("kubevirt-test-default1",
                    "\"hooks.kubevirt.io/hookSidecars\":\"[{\\\"args\\\":[\\\"--version\\\","
                    "\\\"v1alpha2\\\"],\\\"image\\\":\\\"registry:5000/smbios:devel\\\"}]\"");
        assert_int_equal(mutate_vmi(&cfg, o, NULL, &p, &reason), DECISION_PATCHED);
        assert_string_equal(op_op(&p, 0), "replace");
        cJSON *l = sidecars_of(&p);
        assert_int_equal(cJSON_GetArraySize(l), 2);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 0), "image")->valuestring,
                            "registry:5000/smbios:devel");
        assert_true(hook_sidecar_is_ours(&cfg, cJSON_GetArrayItem(l, 1)));
        assert_false(hook_sidecar_is_ours(&cfg, cJSON_GetArrayItem(l, 0)));
        cJSON_Delete(l);
        patch_done(&p);
        cJSON_Delete(o);
        free(reason);
        free(ann);
        free(quoted);
        cJSON_Delete(js);
        free(list);
        cJSON_Delete(arr);
}

/* The configMap source: KubeVirt's shim and our ConfigMap, only where the
 * config names literal namespaces. */
static void test_vmi_configmap_source(void **state)
{
        (void)state;
        struct injector_config c = {};
        assert_int_equal(
            injector_config_load(&c, NULL,
                                 "vmiHook:\n  source: configMap\n  namespaces: [lab]\n"
                                 "  shimImage: quay.io/kubevirt/sidecar-shim:v1.6.0\n"),
            0);
        struct patch p = {};
        char *reason = NULL;
        cJSON *o = gpu_vmi("lab", "");
        assert_int_equal(mutate_vmi(&c, o, NULL, &p, &reason), DECISION_PATCHED);
        cJSON *l = sidecars_of(&p);
        cJSON *e = cJSON_GetArrayItem(l, 0);
        cJSON *cm = cJSON_GetObjectItem(e, "configMap");
        assert_string_equal(cJSON_GetObjectItem(cm, "name")->valuestring, "mesa-injector-hook");
        assert_string_equal(cJSON_GetObjectItem(cm, "hookPath")->valuestring,
                            "/usr/bin/onDefineDomain");
        assert_string_equal(cJSON_GetObjectItem(e, "image")->valuestring,
                            "quay.io/kubevirt/sidecar-shim:v1.6.0");
        assert_null(cJSON_GetObjectItem(e, "command"));
        assert_true(hook_sidecar_is_ours(&c, e));
        cJSON_Delete(l);
        patch_done(&p);
        cJSON_Delete(o);
        free(reason);
        reason = NULL;
        o = gpu_vmi("kubevirt-test-default1", "");
        assert_int_equal(mutate_vmi(&c, o, NULL, &p, &reason), DECISION_SKIPPED);
        patch_done(&p);
        cJSON_Delete(o);
        free(reason);
        injector_config_done(&c);
}

static void test_volume_names(void **state)
{
        (void)state;
        char *n = host_path_volume_name("/usr/lib/x86_64-linux-gnu/libGL.so.1");
        assert_string_equal(n, "mesa-usr-lib-x86-64-linux-gnu-libgl-so-1");
        free(n);
        n = host_path_volume_name(
            "/usr/lib/x86_64-linux-gnu/a-very-long-library-name-that-goes-on-and-on.so.1");
        assert_true(strlen(n) <= 63);
        char *m = host_path_volume_name(
            "/usr/lib/x86_64-linux-gnu/a-very-long-library-name-that-goes-on-and-on.so.2");
        assert_string_not_equal(n, m);
        free(n);
        free(m);
}

static void test_path_allowed(void **state)
{
        (void)state;
        char *prefixes[] = {"/usr/lib64", "/dev/dri/", NULL};
        assert_true(path_allowed("/usr/lib64/libGL.so.1", prefixes));
        assert_true(path_allowed("/dev/dri", prefixes));
        assert_false(path_allowed("/usr/lib64evil/x", prefixes));
        assert_false(path_allowed("/usr/lib64/../../etc/shadow", prefixes));
        assert_false(path_allowed("/usr/lib64/./x", prefixes));
        assert_false(path_allowed("usr/lib64/x", prefixes));
        assert_false(path_allowed("/etc", prefixes));
}

static void test_base64(void **state)
{
        (void)state;
        const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < 7; i++) {
                char *s = base64_encode(in[i], strlen(in[i]));
                assert_string_equal(s, out[i]);
                free(s);
        }
}

static void expect_400(const char *body, const char *needle)
{
        struct admission_result r;
        assert_int_equal(admission_handle(&cfg, ADMIT_PODS, body, strlen(body), 0, &r), 0);
        assert_int_equal(r.http_status, 400);
        assert_non_null(strstr(r.body, needle));
        admission_result_done(&r);
}

static void test_review_validation(void **state)
{
        (void)state;
        expect_400("{", "malformed JSON");
        expect_400("[]", "JSON object");
        expect_400("{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\"}",
                   "v1beta1");
        expect_400("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}", "unsupported kind");
        expect_400(
            "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}}",
            "request.uid");

        const char *ok =
            "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
            "\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
            "\"namespace\":\"ns\",\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"labels\":"
            "{\"kubevirt.io\":\"virt-launcher\"}},\"spec\":{\"containers\":[{\"name\":\"compute\"}]"
            "}}}}";
        struct admission_result r;
        assert_int_equal(admission_handle(&cfg, ADMIT_PODS, ok, strlen(ok), 0, &r), 0);
        assert_int_equal(r.http_status, 200);
        cJSON *resp = cJSON_Parse(r.body);
        cJSON *rr = cJSON_GetObjectItem(resp, "response");
        assert_string_equal(cJSON_GetObjectItem(rr, "uid")->valuestring, "u-1");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rr, "allowed")));
        assert_string_equal(cJSON_GetObjectItem(rr, "patchType")->valuestring, "JSONPatch");
        cJSON_Delete(resp);
        admission_result_done(&r);

        /* The same review on the VMI route: allowed, not mutated, warned. */
        assert_int_equal(admission_handle(&cfg, ADMIT_VMIS, ok, strlen(ok), ADMIT_ACCEPT_GZIP, &r),
                         0);
        assert_int_equal(r.http_status, 200);
        assert_non_null(strstr(r.body, "\"allowed\":true"));
        assert_null(strstr(r.body, "patch"));
        assert_non_null(strstr(r.body, "unexpected kind v1/Pod"));
        assert_null(r.content_encoding); /* nothing worth compressing */
        admission_result_done(&r);
}

/* A pod review with OBJECT as request.object (a JSON text). */
static struct admission_result review_pod(const char *object, enum admission_kind kind)
{
        char body[4096];
        int n = snprintf(body, sizeof(body),
                         "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                         "\"request\":{\"uid\":\"u-nul\",\"kind\":%s,\"namespace\":\"default\","
                         "\"operation\":\"CREATE\",\"object\":%s}}",
                         kind == ADMIT_PODS ? "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"}"
                                            : "{\"group\":\"kubevirt.io\",\"version\":\"v1\","
                                              "\"kind\":\"VirtualMachineInstance\"}",
                         object);
        assert_true(n > 0 && (size_t)n < sizeof(body));
        struct admission_result r;
        assert_int_equal(admission_handle(&cfg, kind, body, (size_t)n, 0, &r), 0);
        return r;
}

static void test_nul_in_strings(void **state)
{
        (void)state;
        /* Which text holds a NUL: only an escape whose backslash is not
         * itself escaped, or a raw NUL byte. */
        assert_true(json_text_has_nul("\"a\\u0000\"", 9));
        assert_true(json_text_has_nul("\"\\\\\\u0000\"", 10));
        assert_true(json_text_has_nul("\"a\0b\"", 5));
        assert_false(json_text_has_nul("\"\\\\u0000\"", 9));
        assert_false(json_text_has_nul("\"\\u0001\\n\\\"\"", 12));
        assert_false(json_text_has_nul("\"\\u005cu0000\"", 13));
        assert_false(json_text_has_nul("\"\\u000", 6));

        /* Each would match ours if strings were compared up to the NUL:
         * the selector's label, the target container, our volume (with
         * another source behind the NUL), a mount point of ours. None may
         * be patched, and the warning says why. */
        const char *objects[] = {
            "{\"metadata\":{\"labels\":{\"kubevirt.io\":\"virt-launcher\\u0000x\"}},"
            "\"spec\":{\"containers\":[{\"name\":\"compute\"}]}}",
            "{\"metadata\":{\"labels\":{\"kubevirt.io\":\"virt-launcher\"}},"
            "\"spec\":{\"containers\":[{\"name\":\"compute\\u0000x\"}]}}",
            "{\"metadata\":{\"labels\":{\"kubevirt.io\\u0000\":\"virt-launcher\"}},"
            "\"spec\":{\"containers\":[{\"name\":\"compute\"}]}}",
            "{\"metadata\":{\"labels\":{\"kubevirt.io\":\"virt-launcher\"}},"
            "\"spec\":{\"containers\":[{\"name\":\"compute\",\"volumeMounts\":[{\"name\":\"x\","
            "\"mountPath\":\"/dev/dri\\u0000/x\"}]}]}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(objects); i++) {
                struct admission_result r = review_pod(objects[i], ADMIT_PODS);
                assert_int_equal(r.http_status, 200);
                assert_non_null(strstr(r.body, "\"allowed\":true"));
                assert_null(strstr(r.body, "patch"));
                assert_non_null(strstr(r.body, "NUL character"));
                assert_int_equal(r.outcome, OUTCOME_INVALID);
                admission_result_done(&r);
        }
        /* A raw NUL byte is no JSON at all. */
        static const char raw[] = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Admission"
                                  "Review\",\"request\":{\"uid\":\"u\0x\"}}";
        struct admission_result r;
        assert_int_equal(admission_handle(&cfg, ADMIT_PODS, raw, sizeof(raw) - 1, 0, &r), 0);
        assert_int_equal(r.http_status, 400);
        assert_non_null(strstr(r.body, "NUL byte"));
        admission_result_done(&r);

        /* The hook annotation is JSON inside a string: a NUL escaped in it
         * must not make another ConfigMap's name pass for ours, nor be cut
         * when the list is printed back. */
        r = review_pod("{\"metadata\":{\"annotations\":{\"hooks.kubevirt.io/hookSidecars\":"
                       "\"[{\\\"configMap\\\":{\\\"name\\\":\\\"mesa-injector-hook\\\\u0000x\\\"}}]"
                       "\"}},\"spec\":{\"domain\":{\"devices\":{\"gpus\":[{\"name\":\"g\"}]}}}}",
                       ADMIT_VMIS);
        assert_int_equal(r.outcome, OUTCOME_CONFLICT);
        assert_null(strstr(r.body, "patch"));
        admission_result_done(&r);
}

/* A client that takes gzip gets the same AdmissionReview, byte for byte,
 * as a gzip member zlib decodes and checks (CRC-32 and length); uids of any
 * length and with characters JSON escapes land in the stored block. */
static void test_gzip_answer(void **state)
{
        (void)state;
        const char *uids[] = {"u-1", "a\"quote\\and\ttab", NULL};
        char long_uid[3000];
        memset(long_uid, 'x', sizeof(long_uid) - 1);
        long_uid[sizeof(long_uid) - 1] = '\0';
        uids[2] = long_uid;
        for (int round = 0; round < 2; round++) /* the first fills the cache */
                for (size_t i = 0; i < 3; i++) {
                        cJSON *review = cJSON_CreateObject();
                        cJSON_AddStringToObject(review, "apiVersion", "admission.k8s.io/v1");
                        cJSON_AddStringToObject(review, "kind", "AdmissionReview");
                        cJSON *rq = cJSON_AddObjectToObject(review, "request");
                        cJSON_AddStringToObject(rq, "uid", uids[i]);
                        cJSON *k = cJSON_AddObjectToObject(rq, "kind");
                        cJSON_AddStringToObject(k, "group", "");
                        cJSON_AddStringToObject(k, "version", "v1");
                        cJSON_AddStringToObject(k, "kind", "Pod");
                        cJSON_AddStringToObject(rq, "namespace", "kubevirt-test-default");
                        cJSON_AddStringToObject(rq, "operation", "CREATE");
                        cJSON_AddItemToObject(rq, "object", pod("VOLUMES MOUNTS", true));
                        char *body = cJSON_PrintUnformatted(review);
                        cJSON_Delete(review);

                        struct admission_result plain, gz;
                        assert_int_equal(
                            admission_handle(&cfg, ADMIT_PODS, body, strlen(body), 0, &plain), 0);
                        assert_int_equal(admission_handle(&cfg, ADMIT_PODS, body, strlen(body),
                                                          ADMIT_ACCEPT_GZIP, &gz),
                                         0);
                        assert_null(plain.content_encoding);
                        assert_int_equal(plain.body_len, strlen(plain.body));
                        assert_non_null(strstr(plain.body, "\"patchType\":\"JSONPatch\""));
                        assert_non_null(gz.content_encoding);
                        assert_string_equal(gz.content_encoding, "gzip");
                        assert_true(gz.body_len < plain.body_len / 4);
                        size_t n = 0;
                        char *text = gunzip_member(gz.body, gz.body_len, &n);
                        assert_non_null(text);
                        assert_int_equal(n, plain.body_len);
                        assert_memory_equal(text, plain.body, n);
                        /* A flipped byte in the trailer is caught by zlib:
                         * the CRC is really computed, not zero. */
                        gz.body[gz.body_len - 8] ^= 1;
                        assert_null(gunzip_member(gz.body, gz.body_len, NULL));
                        free(text);
                        free(body);
                        admission_result_done(&plain);
                        admission_result_done(&gz);
                }
}

static void test_accepts_gzip(void **state)
{
        (void)state;
        assert_true(accepts_gzip("gzip"));
        assert_true(accepts_gzip("GZip"));
        assert_true(accepts_gzip("x-gzip"));
        assert_true(accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert_true(accepts_gzip("br ,  gzip ; q=0.3"));
        assert_true(accepts_gzip("*"));
        assert_true(accepts_gzip("gzip;q=0.001"));
        assert_false(accepts_gzip(NULL));
        assert_false(accepts_gzip(""));
        assert_false(accepts_gzip("identity"));
        assert_false(accepts_gzip("deflate, br"));
        assert_false(accepts_gzip("gzip;q=0"));
        assert_false(accepts_gzip("gzip; q=0.000"));
        assert_false(accepts_gzip("gzip;q=0, *")); /* explicit refusal wins */
        assert_false(accepts_gzip("*;q=0"));
        assert_false(accepts_gzip("gzipx, xgzip"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pointer_escape),
            cmocka_unit_test(test_missing_arrays_created_whole),
            cmocka_unit_test(test_existing_arrays_appended),
            cmocka_unit_test(test_idempotent),
            cmocka_unit_test(test_cached_full_injection),
            cmocka_unit_test(test_name_clash),
            cmocka_unit_test(test_resource_shapes),
            cmocka_unit_test(test_cdi_mode),
            cmocka_unit_test(test_not_selected),
            cmocka_unit_test(test_vmi_annotation_escaped),
            cmocka_unit_test(test_vmi_suite_namespaces),
            cmocka_unit_test(test_vmi_reinvocation),
            cmocka_unit_test(test_vmi_configmap_source),
            cmocka_unit_test(test_volume_names),
            cmocka_unit_test(test_path_allowed),
            cmocka_unit_test(test_base64),
            cmocka_unit_test(test_review_validation),
            cmocka_unit_test(test_gzip_answer),
            cmocka_unit_test(test_accepts_gzip),
            cmocka_unit_test(test_nul_in_strings),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
