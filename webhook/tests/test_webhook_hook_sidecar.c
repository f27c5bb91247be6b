/* Unit tests for the hook sidecar's answers (webhook/hook_sidecar_rpc.c),
 * with packed protobuf in and out and no gRPC: the method paths of each hook
 * API version, Info as virt-launcher's hook manager reads it (kubevirt
 * d923fdb8 pkg/hooks/manager.go processSideCarSocket: versions, hook
 * points), OnDefineDomain on a KubeVirt-shaped domain (once, idempotent),
 * bad bodies and documents, Shutdown, methods we do not serve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "hook_callbacks.pb-c.h"
#include "hook_info.pb-c.h"
#include "webhook/hook_sidecar_rpc.h"
#include "tests/unit/fixture_tests.h"

#define RN "/dev/dri/renderD128"
#define CB(v, m) "/kubevirt.hooks." v ".Callbacks/" m

static struct grpc_reply call(struct hook_rpc *rpc, const char *path, const void *req, size_t len)
{
        struct grpc_reply out = {};
        assert_int_equal(hook_rpc_answer(rpc, path, strlen(path), req, len, &out), 0);
        return out;
}

static size_t count(const char *s, size_t n, const char *needle)
{
        size_t k = 0;
        for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), needle, strlen(needle))); p++)
                k++;
        return k;
}

static void test_lookup(void **state)
{
        (void)state;
        const char *v = NULL;
        static const struct {
                const char *path, *version;
                enum hook_method m;
        } cases[] = {
            {"/kubevirt.hooks.info.Info/Info", NULL, HOOK_INFO},
            {CB("v1alpha1", "OnDefineDomain"), "v1alpha1", HOOK_ON_DEFINE_DOMAIN},
            {CB("v1alpha2", "OnDefineDomain"), "v1alpha2", HOOK_ON_DEFINE_DOMAIN},
            {CB("v1alpha3", "OnDefineDomain"), "v1alpha3", HOOK_ON_DEFINE_DOMAIN},
            {CB("v1alpha2", "PreCloudInitIso"), "v1alpha2", HOOK_PRE_CLOUD_INIT_ISO},
            {CB("v1alpha3", "Shutdown"), "v1alpha3", HOOK_SHUTDOWN},
            /* what a version does not have */
            {CB("v1alpha1", "PreCloudInitIso"), NULL, HOOK_UNKNOWN},
            {CB("v1alpha2", "Shutdown"), NULL, HOOK_UNKNOWN},
            {CB("v1alpha4", "OnDefineDomain"), NULL, HOOK_UNKNOWN},
            {CB("v1alpha3", "OnDefineDomainX"), NULL, HOOK_UNKNOWN},
            {"/kubevirt.hooks.v1alpha3.Callbacks/", NULL, HOOK_UNKNOWN},
            {"/v1beta1.DevicePlugin/Allocate", NULL, HOOK_UNKNOWN},
            {"/kubevirt.hooks.info.Info/InfoX", NULL, HOOK_UNKNOWN},
            {"", NULL, HOOK_UNKNOWN},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(hook_method_lookup(cases[i].path, strlen(cases[i].path), &v),
                                 cases[i].m);
                if (cases[i].version)
                        assert_string_equal(v, cases[i].version);
                else
                        assert_null(v);
        }
}

static void test_info(void **state)
{
        (void)state;
        struct hook_rpc rpc = {.render_node = RN};
        struct grpc_reply out = call(&rpc, "/kubevirt.hooks.info.Info/Info", "", 0);
        assert_int_equal(out.status, GRPC_STATUS_OK);
        Kubevirt__Hooks__Info__InfoResult *r =
            kubevirt__hooks__info__info_result__unpack(NULL, out.len, out.data);
        assert_non_null(r);
        assert_string_equal(r->name, "mesa-injector");
        /* The manager matches v1alpha3 first: listing it first or not does
         * not matter to it, but every version we serve must be named. */
        assert_int_equal(r->n_versions, 3);
        assert_string_equal(r->versions[0], "v1alpha3");
        assert_string_equal(r->versions[1], "v1alpha2");
        assert_string_equal(r->versions[2], "v1alpha1");
        assert_int_equal(r->n_hookpoints, 2);
        assert_string_equal(r->hookpoints[0]->name, "OnDefineDomain");
        assert_string_equal(r->hookpoints[1]->name, "Shutdown");
        kubevirt__hooks__info__info_result__free_unpacked(r, NULL);
        grpc_reply_done(&out);
        assert_false(rpc.shutdown_requested);

        /* A body that is not an InfoParams (field 1 as a truncated varint). */
        out = call(&rpc, "/kubevirt.hooks.info.Info/Info", "\x08\xff", 2);
        assert_int_equal(out.status, GRPC_STATUS_INVALID_ARGUMENT);
        assert_non_null(out.message);
        grpc_reply_done(&out);
}

static uint8_t *define_params(const char *xml, size_t *len)
{
        Kubevirt__Hooks__V1alpha3__OnDefineDomainParams p =
            KUBEVIRT__HOOKS__V1ALPHA3__ON_DEFINE_DOMAIN_PARAMS__INIT;
        p.domainxml.data = (uint8_t *)xml;
        p.domainxml.len = xml ? strlen(xml) : 0;
        p.vmi.data = (uint8_t *)"{\"kind\":\"VirtualMachineInstance\"}";
        p.vmi.len = strlen((char *)p.vmi.data);
        *len = protobuf_c_message_get_packed_size(&p.base);
        uint8_t *b = malloc(*len + 1);
        protobuf_c_message_pack(&p.base, b);
        return b;
}

/* The domain XML out of an OK OnDefineDomainResult (caller frees). */
static char *define(struct hook_rpc *rpc, const char *path, const char *xml, size_t *n)
{
        size_t len;
        _cleanup_free_ uint8_t *req = define_params(xml, &len);
        struct grpc_reply out = call(rpc, path, req, len);
        assert_int_equal(out.status, GRPC_STATUS_OK);
        Kubevirt__Hooks__V1alpha3__OnDefineDomainResult *r =
            kubevirt__hooks__v1alpha3__on_define_domain_result__unpack(NULL, out.len, out.data);
        assert_non_null(r);
        *n = r->domainxml.len;
        char *s = strndup((const char *)r->domainxml.data, r->domainxml.len);
        kubevirt__hooks__v1alpha3__on_define_domain_result__free_unpacked(r, NULL);
        grpc_reply_done(&out);
        return s;
}

static void test_define(void **state)
{
        (void)state;
        _cleanup_free_ char *xml = NULL;
        assert_int_equal(read_full_file("webhook/tests/fixtures/domain-vgpu.xml", &xml, NULL), 0);
        struct hook_rpc rpc = {.render_node = RN};
        static const char *const paths[] = {CB("v1alpha1", "OnDefineDomain"),
                                            CB("v1alpha2", "OnDefineDomain"),
                                            CB("v1alpha3", "OnDefineDomain")};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                size_t n = 0, m = 0;
                _cleanup_free_ char *once = define(&rpc, paths[i], xml, &n);
                assert_int_equal(count(once, n, "type=\"egl-headless\""), 1);
                assert_int_equal(count(once, n, "<gl rendernode=\"" RN "\"/>"), 1);
                /* KubeVirt's own devices stay: VNC and the vGPU's display. */
                assert_int_equal(count(once, n, "type=\"vnc\""),
                                 count(xml, strlen(xml), "type=\"vnc\""));
                assert_int_equal(count(once, n, "display=\"on\""), 1);
                _cleanup_free_ char *twice = define(&rpc, paths[i], once, &m);
                assert_int_equal(n, m);
                assert_memory_equal(once, twice, n);
        }
        assert_false(rpc.shutdown_requested);

        rpc.render_node = "/dev/dri/renderD129";
        size_t n = 0;
        _cleanup_free_ char *other = define(&rpc, paths[2], xml, &n);
        assert_int_equal(count(other, n, "<gl rendernode=\"/dev/dri/renderD129\"/>"), 1);
}

static void test_define_bad(void **state)
{
        (void)state;
        struct hook_rpc rpc = {.render_node = RN};
        static const char *const docs[] = {NULL, "not xml", "<network><name>x</name></network>",
                                           "<domain><devices>"};
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                size_t len;
                _cleanup_free_ uint8_t *req = define_params(docs[i], &len);
                struct grpc_reply out = call(&rpc, CB("v1alpha3", "OnDefineDomain"), req, len);
                assert_int_equal(out.status, GRPC_STATUS_INVALID_ARGUMENT);
                assert_non_null(strstr(out.message, "domainXML"));
                grpc_reply_done(&out);
        }
        /* Not an OnDefineDomainParams at all: field 1 claims 100 bytes. */
        struct grpc_reply out = call(&rpc, CB("v1alpha2", "OnDefineDomain"), "\x0a\x64x", 3);
        assert_int_equal(out.status, GRPC_STATUS_INVALID_ARGUMENT);
        grpc_reply_done(&out);
}

static void test_shutdown_and_others(void **state)
{
        (void)state;
        struct hook_rpc rpc = {.render_node = RN};
        struct grpc_reply out = call(&rpc, CB("v1alpha3", "PreCloudInitIso"), "", 0);
        assert_int_equal(out.status, GRPC_STATUS_UNIMPLEMENTED);
        grpc_reply_done(&out);
        out = call(&rpc, CB("v1alpha2", "Shutdown"), "", 0);
        assert_int_equal(out.status, GRPC_STATUS_UNIMPLEMENTED);
        assert_non_null(strstr(out.message, "Shutdown"));
        grpc_reply_done(&out);
        out = call(&rpc, "/v1beta1.DevicePlugin/Allocate", "", 0);
        assert_int_equal(out.status, GRPC_STATUS_UNIMPLEMENTED);
        assert_non_null(strstr(out.message, "hook sidecar"));
        grpc_reply_done(&out);
        assert_false(rpc.shutdown_requested);
        out = call(&rpc, CB("v1alpha3", "Shutdown"), "", 0);
        assert_int_equal(out.status, GRPC_STATUS_OK);
        assert_int_equal(out.len, 0);
        assert_true(rpc.shutdown_requested);
        grpc_reply_done(&out);
}

int main(void)
{
        return run_plain_tests(test_lookup, test_info, test_define, test_define_bad,
                               test_shutdown_and_others);
}
