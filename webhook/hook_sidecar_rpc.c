/* KubeVirt hook API answers of the hook sidecar (see hook_sidecar_rpc.h). */
#include "webhook/hook_sidecar_rpc.h"

#include <errno.h>
#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hook_callbacks.pb-c.h" /* generated in build/gen */
#include "hook_info.pb-c.h"
#include "webhook/domain_hook.h"

#define INFO_PATH "/kubevirt.hooks.info.Info/Info"

/* The newest first: virt-launcher takes the first of its own list
 * (v1alpha3, v1alpha2, v1alpha1) that we name, so older launchers still
 * find one they know. */
static const char *const versions[] = {"v1alpha3", "v1alpha2", "v1alpha1"};

enum hook_method hook_method_lookup(const char *path, size_t len, const char **version)
{
        static const char prefix[] = "/kubevirt.hooks.";
        *version = NULL;
        if (len == strlen(INFO_PATH) && memcmp(path, INFO_PATH, len) == 0)
                return HOOK_INFO;
        if (len < strlen(prefix) || memcmp(path, prefix, strlen(prefix)) != 0)
                return HOOK_UNKNOWN;
        const char *p = path + strlen(prefix), *end = path + len;
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                size_t vn = strlen(versions[i]);
                static const char svc[] = ".Callbacks/";
                if ((size_t)(end - p) <= vn + strlen(svc) || memcmp(p, versions[i], vn) != 0 ||
                    memcmp(p + vn, svc, strlen(svc)) != 0)
                        continue;
                const char *m = p + vn + strlen(svc);
                size_t mn = (size_t)(end - m);
                *version = versions[i];
                /* v1alpha1 has OnDefineDomain only, v1alpha2 adds
                 * PreCloudInitIso, v1alpha3 Shutdown. */
                if (mn == strlen("OnDefineDomain") && memcmp(m, "OnDefineDomain", mn) == 0)
                        return HOOK_ON_DEFINE_DOMAIN;
                if (i <= 1 && mn == strlen("PreCloudInitIso") &&
                    memcmp(m, "PreCloudInitIso", mn) == 0)
                        return HOOK_PRE_CLOUD_INIT_ISO;
                if (i == 0 && mn == strlen("Shutdown") && memcmp(m, "Shutdown", mn) == 0)
                        return HOOK_SHUTDOWN;
                break;
        }
        *version = NULL;
        return HOOK_UNKNOWN;
}

static int answer_info(const uint8_t *req, size_t len, struct grpc_reply *out)
{
        int r = grpc_request_is(&kubevirt__hooks__info__info_params__descriptor, req, len,
                                "a kubevirt.hooks.info.InfoParams", out);
        if (r <= 0)
                return r;
        /* OnDefineDomain is what we are for; Shutdown lets a v1alpha3
         * launcher end us with the domain, as it ends KubeVirt's shim. No
         * PreCloudInitIso: we leave cloud-init alone. */
        Kubevirt__Hooks__Info__HookPoint define = KUBEVIRT__HOOKS__INFO__HOOK_POINT__INIT,
                                         shutdown = KUBEVIRT__HOOKS__INFO__HOOK_POINT__INIT;
        define.name = "OnDefineDomain";
        shutdown.name = "Shutdown";
        Kubevirt__Hooks__Info__HookPoint *points[] = {&define, &shutdown};
        Kubevirt__Hooks__Info__InfoResult res = KUBEVIRT__HOOKS__INFO__INFO_RESULT__INIT;
        res.name = HOOK_SIDECAR_NAME;
        res.n_hookpoints = ELEMENTSOF(points);
        res.hookpoints = points;
        res.n_versions = ELEMENTSOF(versions);
        res.versions = (char **)versions;
        return grpc_reply_pack(&res.base, out);
}

static int answer_define(const struct hook_rpc *rpc, const uint8_t *req, size_t len,
                         struct grpc_reply *out)
{
        Kubevirt__Hooks__V1alpha3__OnDefineDomainParams *in =
            kubevirt__hooks__v1alpha3__on_define_domain_params__unpack(NULL, len, req);
        if (!in)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "the request is not an OnDefineDomainParams");
        _cleanup_free_ char *xml = NULL;
        int r = in->domainxml.len > 0
                    ? domain_add_egl_headless((const char *)in->domainxml.data, in->domainxml.len,
                                              rpc->render_node, &xml)
                    : -EINVAL;
        kubevirt__hooks__v1alpha3__on_define_domain_params__free_unpacked(in, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "domainXML is not a libvirt domain XML document");
        log_info("OnDefineDomain: %s", r > 0 ? "added the egl-headless display"
                                             : "the domain has an egl-headless display already");
        Kubevirt__Hooks__V1alpha3__OnDefineDomainResult res =
            KUBEVIRT__HOOKS__V1ALPHA3__ON_DEFINE_DOMAIN_RESULT__INIT;
        res.domainxml.data = (uint8_t *)xml;
        res.domainxml.len = strlen(xml);
        return grpc_reply_pack(&res.base, out);
}

int hook_rpc_answer(struct hook_rpc *rpc, const char *path, size_t path_len, const uint8_t *req,
                    size_t len, struct grpc_reply *out)
{
        const char *version = NULL;
        enum hook_method m = hook_method_lookup(path, path_len, &version);
        switch (m) {
        case HOOK_INFO:
                return answer_info(req, len, out);
        case HOOK_ON_DEFINE_DOMAIN:
                return answer_define(rpc, req, len, out);
        case HOOK_SHUTDOWN: {
                int r = grpc_request_is(&kubevirt__hooks__v1alpha3__shutdown_params__descriptor,
                                        req, len, "a ShutdownParams", out);
                if (r <= 0)
                        return r;
                rpc->shutdown_requested = true;
                Kubevirt__Hooks__V1alpha3__ShutdownResult res =
                    KUBEVIRT__HOOKS__V1ALPHA3__SHUTDOWN_RESULT__INIT;
                return grpc_reply_pack(&res.base, out);
        }
        case HOOK_PRE_CLOUD_INIT_ISO:
                return grpc_reply_fail(out, GRPC_STATUS_UNIMPLEMENTED,
                                       "PreCloudInitIso: this hook does not subscribe to it (Info "
                                       "lists OnDefineDomain and Shutdown)");
        default:
                return grpc_reply_fail(
                    out, GRPC_STATUS_UNIMPLEMENTED,
                    "unknown method %.*s: this is a KubeVirt hook sidecar "
                    "(kubevirt.hooks.info.Info, kubevirt.hooks.v1alpha1..3.Callbacks)",
                    (int)(path_len > 128 ? 128 : path_len), path);
        }
}
