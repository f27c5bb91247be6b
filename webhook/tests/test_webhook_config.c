/* Unit tests for mesa-injector's configuration (webhook/config.c,
 * config_device_plugin.c): defaults, library profiles, hostPaths outside the
 * allowlist and bad devicePlugin values rejected with file:line:column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/config.h"

/* Capture stderr (the logger's output) around a load. */
static int load_capture(const char *text, struct injector_config *c, char **ret_err)
{
        char path[] = "/tmp/mi-config-err-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        int r = injector_config_load(c, "test.yaml", text);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        assert_int_equal(read_full_file(path, ret_err, NULL), 0);
        unlink(path);
        return r;
}

/* Load a config that must be accepted; a refusal fails with its message. */
static void load_accepted(const char *text, struct injector_config *c)
{
        char *err = NULL;
        int r = load_capture(text, c, &err);
        if (r < 0)
                fail_msg("%s: r=%d, message: %s", text, r, err);
        free(err);
}

static bool has_resolved(const struct injector_config *c, const char *path)
{
        for (size_t i = 0; i < c->n_resolved; i++)
                if (streq(c->resolved[i].path, path))
                        return true;
        return false;
}

/* A config the loader must refuse, and the words its message must carry:
 * the position first, then what tells the user why. */
struct bad_config {
        const char *yaml;
        const char *words[3];
};

static const struct bad_config rejected[] = {
    /* hostPaths and the render node outside the allowlist or with characters
     * a shell or a path would misread. */
    {"libraryProfile: none\n"
     "hostPaths:\n"
     "  - path: /usr/lib64/libGL.so.1\n"
     "  - path: /etc/shadow\n",
     {"test.yaml:4:11:", "/etc/shadow", "allowedHostPathPrefixes"}},
    {"allowedHostPathPrefixes: [/usr/lib64]\nlibraryProfile: rhel\nrenderNode: "
     "/dev/dri/renderD128\n",
     {"test.yaml:3:13:", "renderNode"}},
    {"renderNode: \"/dev/dri/render'D128\"\n", {"test.yaml:1:13:", "may only contain"}},
    {"hostPaths:\n  - path: /usr/lib64/../../etc/passwd\n", {"test.yaml:2:11:"}},
    /* Values the schema refuses. */
    {"mode: magic\n", {"test.yaml:1:7"}},
    {"limits:\n  maxBodyBytes: 10\n", {"test.yaml:2:"}},
    /* vmiHook: the configMap source only for literal namespaces that are not
     * the suite's. */
    {"vmiHook:\n  source: configMap\n  namespaces: [lab, \"kubevirt-test-*\"]\n",
     {"test.yaml:3:", "a pattern"}},
    {"vmiHook:\n  source: configMap\n  namespaces: [kubevirt-test-default1]\n",
     {"test.yaml:3:", "creates itself"}},
    {"vmiHook:\n  source: configMap\n  namespaces: []\n", {"test.yaml:3:", "each namespace"}},
    {"vmiHook:\n  source: configMap\n  namespaces: [lab]\n  version: v2\n",
     {"test.yaml:4:12", "v1alpha"}},
    {"vmiHook:\n  image: \"a b\"\n", {"test.yaml:2:10", "image reference"}},
    {"vmiHook:\n  source: sidecar\n", {"test.yaml:2:11", "image"}},
    {"vmiHook:\n  imagePullPolicy: Sometimes\n", {"test.yaml:2:20", "IfNotPresent"}},
    /* devicePlugin values. */
    {"devicePlugin:\n  resourceName: nvidia.com/render\n", {"test.yaml:2:17:", "nvidia.com"}},
    {"devicePlugin:\n  resourceName: render\n", {"test.yaml:2:17:", "extended resource"}},
    {"devicePlugin:\n  resourceName: kubernetes.io/render\n",
     {"test.yaml:2:17:", "extended resource"}},
    {"devicePlugin:\n  resourceName: Vgpuenv.io/render\n", {"test.yaml:2:17:", "DNS"}},
    {"devicePlugin:\n  resourceName: vgpuenv.io/a/b\n", {"test.yaml:2:17:", "one '/'"}},
    {"devicePlugin:\n  resourceName: vgpuenv.io/-x\n", {"test.yaml:2:17:", "alphanumeric"}},
    {"devicePlugin:\n  resourceName: requests.vgpuenv.io/x\n", {"test.yaml:2:17:", "requests."}},
    {"devicePlugin:\n  deviceGlob: dev/dri/renderD*\n", {"test.yaml:2:15:", "absolute"}},
    {"devicePlugin:\n  deviceGlob: /dev/*/renderD128\n", {"test.yaml:2:15:", "last"}},
    {"devicePlugin:\n  deviceGlob: /dev/dri/../renderD*\n", {"test.yaml:2:15:", ".."}},
    {"devicePlugin:\n  deviceGlob: /dev/dri/\n", {"test.yaml:2:15:", "not a directory"}},
    {"devicePlugin:\n  socketName: kubelet.sock\n", {"test.yaml:2:15:", "kubelet.sock"}},
    {"devicePlugin:\n  socketName: a/b.sock\n", {"test.yaml:2:15:", "file name"}},
    {"devicePlugin:\n  socketDir: relative\n", {"test.yaml:2:14:", "absolute"}},
    {"devicePlugin:\n  deviceRoot: host\n", {"test.yaml:2:15:", "absolute"}},
    {"devicePlugin:\n  sharesPerNode: 0\n", {"test.yaml:2:18", "1"}},
    {"devicePlugin:\n  sharesPerNode: 2000\n", {"test.yaml:2:18", "1000"}},
    {"devicePlugin:\n  resoureName: x\n", {"test.yaml:2:3", "resoureName"}},
    {"cdi:\n  annotationKey: x\n", {"test.yaml:2:3", "annotationKey"}},
    /* The limits against hostile clients. */
    {"limits:\n  handshakeTimeoutSeconds: 0\n", {"test.yaml:2:28"}},
    {"limits:\n  threads: 2\n  connectionsPerSource: 0\n", {"test.yaml:3:25"}},
    {"limits:\n  connectionMemoryBytes: 1024\n", {"test.yaml:2:26"}},
    {"limits:\n  connectionsPerSource: many\n", {"test.yaml:2:25"}},
};

static void test_rejected(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(rejected); i++) {
                const struct bad_config *bad = &rejected[i];
                struct injector_config c;
                char *err = NULL;
                int r = load_capture(bad->yaml, &c, &err);
                bool told = r == -EINVAL;
                for (size_t w = 0; told && w < ELEMENTSOF(bad->words) && bad->words[w]; w++)
                        told = strstr(err, bad->words[w]) != NULL;
                if (!told)
                        fail_msg("%s: r=%d, message: %s", bad->yaml, r, err);
                free(err);
                injector_config_done(&c);
        }
}

static void test_defaults(void **state)
{
        (void)state;
        struct injector_config c;
        assert_int_equal(injector_config_load(&c, NULL, NULL), 0);
        assert_string_equal(c.target_container, "compute");
        assert_int_equal(c.mode, MODE_HOSTPATH);
        assert_int_equal(c.failure_policy, FAILURE_IGNORE);
        assert_int_equal(c.limits.max_body_bytes, 3u << 20);
        assert_true(has_resolved(&c, "/usr/lib/x86_64-linux-gnu/libGL.so.1"));
        assert_true(has_resolved(&c, "/usr/lib/x86_64-linux-gnu/libdrm.so.2"));
        assert_true(has_resolved(&c, "/usr/lib/x86_64-linux-gnu/dri"));
        assert_true(has_resolved(&c, "/usr/share/glvnd/egl_vendor.d"));
        /* The render node reaches the container through the device plugin,
         * never as a hostPath (the device cgroup would deny it). */
        assert_false(has_resolved(&c, "/dev/dri"));
        for (size_t i = 0; i < c.n_resolved; i++)
                assert_false(startswith(c.resolved[i].path, "/dev/"));
        assert_true(c.device_plugin.enabled);
        assert_string_equal(c.device_plugin.resource_name, "vgpuenv.io/render");
        assert_int_equal(c.device_plugin.shares, 110);
        assert_string_equal(c.device_plugin.device_glob, "/dev/dri/renderD*");
        assert_string_equal(c.device_plugin.socket_dir, "/var/lib/kubelet/device-plugins");
        assert_true(strv_contains(c.device_plugin.node_selector, "vgpuenv.io/render-node=true"));
        assert_true(strv_contains(c.selector.exclude_namespaces, "kube-system"));
        assert_true(strv_contains(c.selector.exclude_namespaces, "mesa-injector"));
        injector_config_done(&c);
}

static void test_rhel_and_extra_paths(void **state)
{
        (void)state;
        struct injector_config c;
        load_accepted("libraryProfile: rhel\n"
                      "failurePolicy: Fail\n"
                      "hostPaths:\n"
                      "  - path: /usr/lib64/libLLVM-17.so\n"
                      "    type: File\n",
                      &c);
        assert_true(has_resolved(&c, "/usr/lib64/libEGL_mesa.so.0"));
        assert_true(has_resolved(&c, "/usr/lib64/libLLVM-17.so"));
        assert_false(has_resolved(&c, "/usr/lib/x86_64-linux-gnu/libGL.so.1"));
        assert_int_equal(c.failure_policy, FAILURE_FAIL);
        injector_config_done(&c);
}

/* vmiHook: the image source by default, its image following deploy.image. */
static void test_vmi_hook(void **state)
{
        (void)state;
        struct injector_config c;
        load_accepted("deploy:\n  image: registry:5000/vgpuenv/mesa-injector:v1\n", &c);
        assert_int_equal(c.vmi_hook.source, HOOK_SOURCE_IMAGE);
        assert_string_equal(c.vmi_hook.image, "registry:5000/vgpuenv/mesa-injector:v1");
        assert_int_equal(c.vmi_hook.image_pull_policy, PULL_IF_NOT_PRESENT);
        assert_true(strv_contains(c.vmi_hook.namespaces, "kubevirt-test-*"));
        assert_true(strv_contains(c.vmi_hook.namespaces, "default"));
        injector_config_done(&c);
        load_accepted("vmiHook:\n  image: example.org/hook:1\n  imagePullPolicy: Always\n"
                      "  namespaces: []\n",
                      &c);
        assert_string_equal(c.vmi_hook.image, "example.org/hook:1");
        assert_int_equal(c.vmi_hook.image_pull_policy, PULL_ALWAYS);
        injector_config_done(&c);

        /* The command line's --image and --library-profile win; the
         * sidecar follows the image. */
        struct injector_overrides o = {.image = "registry:5000/vgpuenv/mesa-injector:1a2b",
                                       .library_profile = "none"};
        assert_int_equal(injector_config_load_with(&c, NULL, "libraryProfile: rhel\n", &o), 0);
        assert_string_equal(c.deploy.image, o.image);
        assert_string_equal(c.vmi_hook.image, o.image);
        assert_int_equal(c.library_profile, PROFILE_NONE);
        assert_int_equal(c.n_resolved, 0);
        injector_config_done(&c);
}

/* devicePlugin: a valid non-default config, and the resource name check. */
static void test_device_plugin(void **state)
{
        (void)state;
        struct injector_config c;
        load_accepted("devicePlugin:\n  resourceName: example.com/gpu.render_1\n"
                      "  enabled: false\n  nodeSelector: {a: b}\n",
                      &c);
        assert_false(c.device_plugin.enabled);
        assert_true(strv_contains(c.device_plugin.node_selector, "a=b"));
        assert_null(resource_name_problem("vgpuenv.io/render"));
        assert_non_null(resource_name_problem("foo.kubernetes.io/render"));
        injector_config_done(&c);
}

/* The limits against hostile clients: defaults and accepted values. */
static void test_client_limits(void **state)
{
        (void)state;
        struct injector_config c;
        assert_int_equal(injector_config_load(&c, NULL, NULL), 0);
        assert_int_equal(c.limits.handshake_timeout_s, 3);
        assert_int_equal(c.limits.connections_per_source, 64);
        assert_int_equal(c.limits.connection_memory_bytes, 32768);
        assert_int_equal(c.limits.buffered_bytes_per_source, 8u << 20);
        injector_config_done(&c);
        load_accepted("limits:\n  handshakeTimeoutSeconds: 1\n  connectionsPerSource: 8\n", &c);
        assert_int_equal(c.limits.handshake_timeout_s, 1);
        assert_int_equal(c.limits.connections_per_source, 8);
        injector_config_done(&c);
}

int main(void)
{
        log_set_prefix("mesa-injector");
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),      cmocka_unit_test(test_rhel_and_extra_paths),
            cmocka_unit_test(test_rejected),      cmocka_unit_test(test_device_plugin),
            cmocka_unit_test(test_client_limits), cmocka_unit_test(test_vmi_hook),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
