/* The KubeVirt CR merge patch of cluster setup: a JSON merge patch replaces
 * arrays, so what the CR already has (feature gates, mediated device types,
 * permitted mediated devices) must be carried over, and ours added once. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "provision/cluster_setup.h"
#include "provision/cluster_setup_internal.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"

static void check(const char *cr, const char *want)
{
        char *p = cluster_kubevirt_patch(cr);
        assert_non_null(p);
        assert_string_equal(p, want);
        free(p);
}

#define TYPES(x)                                                                                   \
        "{\"spec\":{\"configuration\":{\"mediatedDevicesConfiguration\":{"                         \
        "\"mediatedDeviceTypes\":" x "},"
#define MDEVS(x) "\"permittedHostDevices\":{\"mediatedDevices\":" x "},"
#define GATES(x) "\"developerConfiguration\":{\"featureGates\":" x "}}}}"
#define T4                                                                                         \
        "{\"mdevNameSelector\":\"GRID T4-1B\",\"resourceName\":\"nvidia.com/GRID_T4-1B\"},"        \
        "{\"mdevNameSelector\":\"GRID T4-2B\",\"resourceName\":\"nvidia.com/GRID_T4-2B\"}"

static void test_no_cr(void **state)
{
        (void)state;
        check(NULL, TYPES("[\"nvidia-222\"]") MDEVS("[" T4 "]") GATES("[\"Sidecar\"]"));
        check("garbage", TYPES("[\"nvidia-222\"]") MDEVS("[" T4 "]") GATES("[\"Sidecar\"]"));
}

static void test_keeps_existing(void **state)
{
        (void)state;
        check("{\"spec\":{\"configuration\":{"
              "\"developerConfiguration\":{\"featureGates\":[\"LiveMigration\",\"Snapshot\"]},"
              "\"mediatedDevicesConfiguration\":{\"mediatedDeviceTypes\":[\"nvidia-105\"]},"
              "\"permittedHostDevices\":{\"mediatedDevices\":[{\"mdevNameSelector\":\"GRID P4-1Q\","
              "\"resourceName\":\"nvidia.com/P4\"}]}}}}",
              TYPES("[\"nvidia-105\",\"nvidia-222\"]") MDEVS(
                  "[{\"mdevNameSelector\":\"GRID P4-1Q\",\"resourceName\":\"nvidia.com/P4\"}," T4
                  "]") GATES("[\"LiveMigration\",\"Snapshot\",\"Sidecar\"]"));
}

static void test_idempotent(void **state)
{
        (void)state;
        /* Applying the patch to a CR that already has it yields the same patch. */
        const char *full = TYPES("[\"nvidia-222\"]") MDEVS("[" T4 "]") GATES("[\"Sidecar\"]");
        check(full, full);
}

/* Labels go to nodes whose probe passed, under the name Kubernetes knows
 * (kubelet may have registered the FQDN); run against the kubectl stand-in. */
static void test_labels(void **state)
{
        (void)state;
        char dir[] = "/tmp/test_cluster_setup.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char *log = strdup_printf("%s/standins.log", dir);
        char cwd[4096];
        assert_non_null(getcwd(cwd, sizeof(cwd))); /* tests run from the top of the tree */
        char *path = strdup_printf("%s/tests/standins:%s", cwd, getenv("PATH"));
        setenv("STANDIN_LOG", log, 1);
        setenv("PATH", path, 1);
        setenv("KUBECTL_STANDIN_NODES", "c-ctlplane-0.karmalabs.corp c-worker-0 c-worker-1", 1);

        struct config cfg;
        config_init_defaults(&cfg);
        cfg.provider = PROVIDER_KCLI;
        cfg.webhook.deploy = DEPLOY_NONE;
        cfg.kubevirt.configure = false;
        setenv("VGPUENV_STATE_DIR", dir, 1);
        struct run_ctx ctx;
        assert_int_equal(run_ctx_init(&ctx, &cfg), 0);
        struct state st = {
            .root = cJSON_Parse("{\"nodes\":[{\"name\":\"c-ctlplane-0\",\"probe_ok\":true},"
                                "{\"name\":\"c-worker-0\",\"probe_ok\":false},"
                                "{\"name\":\"c-worker-1\",\"probe_ok\":true}]}")};
        char *kc = strdup_printf("%s/kc", dir);
        assert_int_equal(write_file_atomic(kc, "x", 1, 0600), 0);
        struct plan *p = plan_new("test");
        assert_int_equal(cluster_setup_plan(p, &ctx, kc, true, false), 0);
        assert_int_equal(plan_run(p, &ctx, &st, NULL), 0);

        char *text = NULL;
        assert_int_equal(read_full_file(log, &text, NULL), 0);
        assert_non_null(strstr(text, "arg: label\narg: node\narg: c-ctlplane-0.karmalabs.corp\n"
                                     "arg: vgpuenv.io/render-node=true\narg: --overwrite\n"));
        assert_non_null(strstr(text, "arg: label\narg: node\narg: c-worker-1\n"));
        assert_null(strstr(text, "arg: c-worker-0\narg: vgpuenv.io/render-node=true"));
        char *want = strdup_printf("arg: --kubeconfig\narg: %s\narg: get\narg: nodes\n", kc);
        assert_non_null(strstr(text, want));
        free(want);
        free(text);

        /* a failing kubectl is an error, not a silent skip */
        setenv("STANDIN_FAIL_KUBECTL", "label", 1);
        assert_true(plan_run(p, &ctx, &st, NULL) < 0);
        unsetenv("STANDIN_FAIL_KUBECTL");
        plan_free(p);

        /* a kubeconfig that cannot be read fails the plan (it used to skip
         * cluster setup and say "is up") */
        unlink(kc);
        p = plan_new("test");
        assert_int_equal(cluster_setup_plan(p, &ctx, kc, true, false), 0);
        assert_int_equal(plan_run(p, &ctx, &st, NULL), -ENOENT);
        plan_free(p);

        free(kc);
        cJSON_Delete(st.root);
        run_ctx_done(&ctx);
        config_done(&cfg);
        rm_rf(dir);
        free(log);
        free(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_no_cr),
            cmocka_unit_test(test_keeps_existing),
            cmocka_unit_test(test_idempotent),
            cmocka_unit_test(test_labels),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
