/* Unit tests for mesa-injector's configuration (webhook/config.c): defaults,
 * library profiles, and hostPaths outside the allowlist rejected with
 * file:line:column. */
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

static bool has_resolved(const struct injector_config *c, const char *path)
{
        for (size_t i = 0; i < c->n_resolved; i++)
                if (streq(c->resolved[i].path, path))
                        return true;
        return false;
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
        assert_true(has_resolved(&c, "/dev/dri"));
        assert_true(strv_contains(c.selector.exclude_namespaces, "kube-system"));
        assert_true(strv_contains(c.selector.exclude_namespaces, "mesa-injector"));
        injector_config_done(&c);
}

static void test_rhel_and_extra_paths(void **state)
{
        (void)state;
        struct injector_config c;
        char *err = NULL;
        int r = load_capture("libraryProfile: rhel\n"
                             "failurePolicy: Fail\n"
                             "hostPaths:\n"
                             "  - path: /usr/lib64/libLLVM-17.so\n"
                             "    type: File\n",
                             &c, &err);
        assert_int_equal(r, 0);
        assert_true(has_resolved(&c, "/usr/lib64/libEGL_mesa.so.0"));
        assert_true(has_resolved(&c, "/usr/lib64/libLLVM-17.so"));
        assert_false(has_resolved(&c, "/usr/lib/x86_64-linux-gnu/libGL.so.1"));
        assert_int_equal(c.failure_policy, FAILURE_FAIL);
        free(err);
        injector_config_done(&c);
}

static void test_path_outside_allowlist(void **state)
{
        (void)state;
        struct injector_config c;
        char *err = NULL;
        int r = load_capture("libraryProfile: none\n"
                             "hostPaths:\n"
                             "  - path: /usr/lib64/libGL.so.1\n"
                             "  - path: /etc/shadow\n",
                             &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:4:11:"));
        assert_non_null(strstr(err, "/etc/shadow"));
        assert_non_null(strstr(err, "allowedHostPathPrefixes"));
        free(err);
        injector_config_done(&c);

        r = load_capture("allowedHostPathPrefixes: [/usr/lib64]\nlibraryProfile: rhel\nrenderNode: "
                         "/dev/dri/renderD128\n",
                         &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:3:13:"));
        assert_non_null(strstr(err, "renderNode"));
        free(err);
        injector_config_done(&c);

        r = load_capture("renderNode: \"/dev/dri/render'D128\"\n", &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:1:13:"));
        assert_non_null(strstr(err, "may only contain"));
        free(err);
        injector_config_done(&c);

        r = load_capture("hostPaths:\n  - path: /usr/lib64/../../etc/passwd\n", &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:2:11:"));
        free(err);
        injector_config_done(&c);
}

static void test_schema_errors(void **state)
{
        (void)state;
        struct injector_config c;
        char *err = NULL;
        int r = load_capture("mode: magic\n", &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:1:7"));
        free(err);
        injector_config_done(&c);
        r = load_capture("limits:\n  maxBodyBytes: 10\n", &c, &err);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(err, "test.yaml:2:"));
        free(err);
        injector_config_done(&c);
}

/* The limits against hostile clients: defaults, and bad values with the
 * line of the value. */
static void test_client_limits(void **state)
{
        (void)state;
        struct injector_config c;
        char *err = NULL;
        assert_int_equal(injector_config_load(&c, NULL, NULL), 0);
        assert_int_equal(c.limits.handshake_timeout_s, 3);
        assert_int_equal(c.limits.connections_per_source, 64);
        assert_int_equal(c.limits.connection_memory_bytes, 32768);
        assert_int_equal(c.limits.buffered_bytes_per_source, 8u << 20);
        injector_config_done(&c);
        assert_int_equal(load_capture("limits:\n  handshakeTimeoutSeconds: 1\n"
                                      "  connectionsPerSource: 8\n",
                                      &c, &err),
                         0);
        assert_int_equal(c.limits.handshake_timeout_s, 1);
        assert_int_equal(c.limits.connections_per_source, 8);
        free(err);
        injector_config_done(&c);
        const char *bad[][2] = {
            {"limits:\n  handshakeTimeoutSeconds: 0\n", "test.yaml:2:28"},
            {"limits:\n  threads: 2\n  connectionsPerSource: 0\n", "test.yaml:3:25"},
            {"limits:\n  connectionMemoryBytes: 1024\n", "test.yaml:2:26"},
            {"limits:\n  connectionsPerSource: many\n", "test.yaml:2:25"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(load_capture(bad[i][0], &c, &err), -EINVAL);
                if (!strstr(err, bad[i][1]))
                        fail_msg("%s: got %s", bad[i][1], err);
                free(err);
                injector_config_done(&c);
        }
}

int main(void)
{
        log_set_prefix("mesa-injector");
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_rhel_and_extra_paths),
            cmocka_unit_test(test_path_outside_allowlist),
            cmocka_unit_test(test_schema_errors),
            cmocka_unit_test(test_client_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
