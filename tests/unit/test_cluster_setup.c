/* The KubeVirt CR merge patch of cluster setup: a JSON merge patch replaces
 * arrays, so what the CR already has (feature gates, mediated device types,
 * permitted mediated devices) must be carried over, and ours added once.
 * Cluster setup's kubectl calls (labels, manifests, the patch itself) run
 * against the test harness's real API server in
 * tests/integration/k8s_cluster_setup.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "provision/cluster_setup.h"
#include "provision/cluster_setup_internal.h"
#include "provision/base/plan.h"
#include "provision/base/state.h"
#include "tests/unit/fixture_tests.h"

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

/* A kubeconfig that cannot be read fails the plan at its kubeconfig step,
 * before any kubectl runs (it used to skip cluster setup and say "is up"). */
static void test_unreadable_kubeconfig(void **state)
{
        (void)state;
        char dir[] = "/tmp/test_cluster_setup.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *kc = strdup_printf("%s/missing-kubeconfig", dir);
        struct config cfg;
        struct run_ctx ctx;
        struct state st = {.root = cJSON_Parse("{\"nodes\":[]}")};
        struct plan *p = plan_new("test");

        config_init_defaults(&cfg);
        cfg.provider = PROVIDER_KCLI;
        cfg.webhook.deploy = DEPLOY_NONE;
        cfg.kubevirt.configure = false;
        setenv("VGPUENV_STATE_DIR", dir, 1);
        assert_int_equal(run_ctx_init(&ctx, &cfg), 0);
        assert_int_equal(cluster_setup_plan(p, &ctx, kc, true, false), 0);
        assert_int_equal(plan_run(p, &ctx, &st, NULL), -ENOENT);
        plan_free(p);
        cJSON_Delete(st.root);
        run_ctx_done(&ctx);
        config_done(&cfg);
        rm_rf(dir);
}

int main(void)
{
        return run_plain_tests(test_no_cr, test_keeps_existing, test_idempotent,
                               test_unreadable_kubeconfig);
}
