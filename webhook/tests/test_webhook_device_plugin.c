/* Unit tests for the device plugin's inventory and answers
 * (webhook/device_plugin_devices.c, _rpc.c, _preferred.c): which files count
 * as render nodes, the exact device IDs accepted, health across a node's
 * disappearance, Allocate's DeviceSpecs and CDI names, preferred
 * allocation, and the statuses of bad requests. No gRPC here: requests are
 * packed with the same protobuf-c code; tests/integration/device_plugin_grpc.sh
 * drives the real server from an independent gRPC peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/fixture_tests.h"

#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/config.h"
#include "webhook/device_plugin_devices.h"
#include "webhook/device_plugin_pb.h"
#include "webhook/device_plugin_rpc.h"

struct fixture {
        char dir[64];
        struct injector_config cfg;
        struct dp_inventory inv;
};

static void node(struct fixture *f, const char *name, bool present)
{
        _cleanup_free_ char *p = strdup_printf("%s/dev/dri/%s", f->dir, name);
        if (present)
                assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
        else
                assert_int_equal(unlink(p), 0);
}

static int setup(void **state)
{
        if (geteuid() != 0) {
                print_message("SKIP: mknod of the stand-in render nodes needs root\n");
                skip();
        }
        struct fixture *f = calloc(1, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/dp-unit-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        _cleanup_free_ char *dri = strdup_printf("%s/dev/dri", f->dir);
        assert_int_equal(mkdir_p(dri, 0755), 0);
        _cleanup_free_ char *cfg =
            strdup_printf("devicePlugin:\n  sharesPerNode: 3\n  deviceRoot: %s\n", f->dir);
        assert_int_equal(injector_config_load(&f->cfg, NULL, cfg), 0);
        f->inv.cfg = &f->cfg.device_plugin;
        node(f, "renderD128", true);
        _cleanup_free_ char *card = strdup_printf("%s/card0", dri);
        assert_int_equal(mknod(card, S_IFCHR | 0666, makedev(1, 3)), 0); /* not renderD* */
        _cleanup_free_ char *plain = strdup_printf("%s/renderD200", dri);
        assert_int_equal(write_file_atomic(plain, "", 0, 0644), 0); /* not a device */
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        dp_inventory_done(&f->inv);
        injector_config_done(&f->cfg);
        rm_rf(f->dir);
        free(f);
        return 0;
}

static void test_inventory(void **state)
{
        struct fixture *f = *state;
        assert_int_equal(f->inv.n_nodes, 1);
        assert_string_equal(f->inv.nodes[0].name, "renderD128");
        assert_string_equal(f->inv.nodes[0].host_path, "/dev/dri/renderD128");
        assert_true(f->inv.nodes[0].present);
        assert_int_equal(dp_inventory_scan(&f->inv), 0); /* nothing changed */
        node(f, "renderD129", true);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        node(f, "renderD128", false);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        assert_int_equal(f->inv.n_nodes, 2);
        assert_false(f->inv.nodes[0].present); /* listed, Unhealthy */
        assert_true(f->inv.nodes[1].present);
        node(f, "renderD128", true);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        assert_true(f->inv.nodes[0].present);
        _cleanup_free_ char *dir = dp_inventory_watch_dir(&f->inv);
        _cleanup_free_ char *want = strdup_printf("%s/dev/dri", f->dir);
        assert_string_equal(dir, want);
}

static void test_device_ids(void **state)
{
        struct fixture *f = *state;
        static const char *const good[] = {"renderD128-0", "renderD128-2"};
        static const char *const bad[] = {"renderD128-3",
                                          "renderD128-",
                                          "renderD128",
                                          "renderD128-01",
                                          "renderD128-+1",
                                          "renderD128- 1",
                                          "renderD128--1",
                                          "-0",
                                          "",
                                          "renderD12-0",
                                          "renderD1280-0",
                                          "card0-0",
                                          "renderD128-1x",
                                          "renderD128-99999999999999999999"};
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_non_null(dp_inventory_find(&f->inv, good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (dp_inventory_find(&f->inv, bad[i]))
                        fail_msg("accepted device ID '%s'", bad[i]);
}

/* Pack an AllocateRequest of containers, each a NULL-terminated ID list. */
static struct grpc_reply allocate(struct fixture *f, const char *const *const *containers, size_t n)
{
        V1beta1__AllocateRequest q = V1BETA1__ALLOCATE_REQUEST__INIT;
        V1beta1__ContainerAllocateRequest c[4], *cp[4];
        for (size_t i = 0; i < n; i++) {
                v1beta1__container_allocate_request__init(&c[i]);
                c[i].devices_ids = (char **)containers[i];
                while (containers[i][c[i].n_devices_ids])
                        c[i].n_devices_ids++;
                cp[i] = &c[i];
        }
        q.n_container_requests = n;
        q.container_requests = cp;
        uint8_t buf[1024];
        size_t len = v1beta1__allocate_request__pack(&q, buf);
        struct grpc_reply r;
        assert_int_equal(
            dp_rpc_unary(&(struct dp_rpc){&f->cfg, &f->inv}, DP_ALLOCATE, buf, len, &r), 0);
        return r;
}

static void test_allocate(void **state)
{
        struct fixture *f = *state;
        node(f, "renderD129", true);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        const char *const a[] = {"renderD128-0", "renderD128-2", NULL};
        const char *const b[] = {"renderD129-1", "renderD128-1", NULL};
        const char *const *both[] = {a, b};
        struct grpc_reply r = allocate(f, both, 2);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        V1beta1__AllocateResponse *resp = v1beta1__allocate_response__unpack(NULL, r.len, r.data);
        assert_non_null(resp);
        assert_int_equal(resp->n_container_responses, 2);
        V1beta1__ContainerAllocateResponse *c0 = resp->container_responses[0];
        assert_int_equal(c0->n_devices, 1);
        assert_string_equal(c0->devices[0]->host_path, "/dev/dri/renderD128");
        assert_string_equal(c0->devices[0]->container_path, "/dev/dri/renderD128");
        assert_string_equal(c0->devices[0]->permissions, "rw");
        assert_int_equal(c0->n_envs + c0->n_mounts + c0->n_annotations + c0->n_cdi_devices, 0);
        assert_int_equal(resp->container_responses[1]->n_devices, 2);
        v1beta1__allocate_response__free_unpacked(resp, NULL);
        grpc_reply_done(&r);

        /* In cdi mode the node's CDI name comes along. */
        f->cfg.mode = MODE_CDI;
        const char *const *one[] = {a};
        r = allocate(f, one, 1);
        resp = v1beta1__allocate_response__unpack(NULL, r.len, r.data);
        assert_int_equal(resp->container_responses[0]->n_cdi_devices, 1);
        assert_string_equal(resp->container_responses[0]->cdi_devices[0]->name,
                            "vgpuenv.io/render=renderD128");
        v1beta1__allocate_response__free_unpacked(resp, NULL);
        grpc_reply_done(&r);
        f->cfg.mode = MODE_HOSTPATH;

        /* Bad requests: the status and a message. */
        const char *const unknown[] = {"renderD128-7", NULL};
        const char *const none[] = {NULL};
        const char *const *u[] = {unknown}, *const * e[] = {none};
        r = allocate(f, u, 1);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(r.message, "renderD128-7"));
        grpc_reply_done(&r);
        r = allocate(f, e, 1);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_reply_done(&r);
        r = allocate(f, NULL, 0);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_reply_done(&r);
        node(f, "renderD129", false);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        r = allocate(f, both, 2);
        assert_int_equal(r.status, GRPC_STATUS_FAILED_PRECONDITION);
        assert_non_null(strstr(r.message, "/dev/dri/renderD129"));
        grpc_reply_done(&r);
        static const uint8_t garbage[] = {0xff, 0xff, 0xff};
        assert_int_equal(dp_rpc_unary(&(struct dp_rpc){&f->cfg, &f->inv}, DP_ALLOCATE, garbage,
                                      sizeof(garbage), &r),
                         0);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_reply_done(&r);
}

static void test_preferred_and_list(void **state)
{
        struct fixture *f = *state;
        node(f, "renderD129", true);
        assert_int_equal(dp_inventory_scan(&f->inv), 1);
        char *avail[] = {"renderD128-0", "renderD129-0", "renderD129-1", "renderD128-1"};
        char *must[] = {"renderD128-1"};
        V1beta1__ContainerPreferredAllocationRequest
            c = V1BETA1__CONTAINER_PREFERRED_ALLOCATION_REQUEST__INIT,
            *cp = &c;
        c.available_deviceids = avail;
        c.n_available_deviceids = 4;
        c.must_include_deviceids = must;
        c.n_must_include_deviceids = 1;
        c.allocation_size = 2;
        V1beta1__PreferredAllocationRequest q = V1BETA1__PREFERRED_ALLOCATION_REQUEST__INIT;
        q.container_requests = &cp;
        q.n_container_requests = 1;
        uint8_t buf[512];
        size_t len = v1beta1__preferred_allocation_request__pack(&q, buf);
        struct grpc_reply r;
        assert_int_equal(
            dp_rpc_unary(&(struct dp_rpc){&f->cfg, &f->inv}, DP_GET_PREFERRED, buf, len, &r), 0);
        assert_int_equal(r.status, GRPC_STATUS_OK);
        V1beta1__PreferredAllocationResponse *p =
            v1beta1__preferred_allocation_response__unpack(NULL, r.len, r.data);
        assert_int_equal(p->container_responses[0]->n_deviceids, 2);
        assert_string_equal(p->container_responses[0]->deviceids[0], "renderD128-1");
        assert_string_equal(p->container_responses[0]->deviceids[1], "renderD128-0");
        v1beta1__preferred_allocation_response__free_unpacked(p, NULL);
        grpc_reply_done(&r);
        c.allocation_size = 5; /* more than available */
        len = v1beta1__preferred_allocation_request__pack(&q, buf);
        assert_int_equal(
            dp_rpc_unary(&(struct dp_rpc){&f->cfg, &f->inv}, DP_GET_PREFERRED, buf, len, &r), 0);
        assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_reply_done(&r);

        uint8_t *list = NULL;
        assert_int_equal(dp_rpc_device_list(&f->inv, false, &list, &len), 0);
        V1beta1__ListAndWatchResponse *l =
            v1beta1__list_and_watch_response__unpack(NULL, len, list);
        assert_int_equal(l->n_devices, 6);
        assert_string_equal(l->devices[0]->id, "renderD128-0");
        assert_string_equal(l->devices[5]->id, "renderD129-2");
        assert_string_equal(l->devices[5]->health, "Healthy");
        v1beta1__list_and_watch_response__free_unpacked(l, NULL);
        free(list);
        assert_int_equal(dp_rpc_device_list(&f->inv, true, &list, &len), 0);
        assert_int_equal(len, 0); /* the empty list of a stopping plugin */
        free(list);
        assert_int_equal(dp_method_lookup("/v1beta1.DevicePlugin/Allocate", 30), DP_ALLOCATE);
        assert_int_equal(dp_method_lookup("/v1beta1.DevicePlugin/Allocatex", 31), DP_UNKNOWN);
        assert_int_equal(dp_method_lookup("/v1beta1.DevicePlugin/Allocate", 29), DP_UNKNOWN);
}

int main(void)
{
        log_set_level(LOG_WARNING);
        return run_fixture_tests(test_inventory, test_device_ids, test_allocate,
                                 test_preferred_and_list);
}
