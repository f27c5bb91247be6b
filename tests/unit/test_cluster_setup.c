/* The KubeVirt CR merge patch of cluster setup: a JSON merge patch replaces
 * arrays, so what the CR already has (feature gates, mediated device types,
 * permitted mediated devices) must be carried over, and ours added once.
 * Cluster setup's kubectl calls (labels, manifests, the patch itself) run
 * against the test harness's real API server in
 * tests/integration/k8s_cluster_setup.sh. */
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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_no_cr),
            cmocka_unit_test(test_keeps_existing),
            cmocka_unit_test(test_idempotent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
