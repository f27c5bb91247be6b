/* What mesa-injector's hook sidecar answers on KubeVirt's hook API, method
 * by method, as packed protobuf (protoc-c code generated from
 * webhook/hook_info.proto and webhook/hook_callbacks.proto): no gRPC in
 * here, so unit tests drive it with plain bytes.
 *
 * The calls and their order are virt-launcher's (kubevirt d923fdb8,
 * pkg/hooks/manager.go): Info on every socket while it collects the
 * sidecars; OnDefineDomain of the newest version both sides know whenever
 * it defines the domain; Shutdown (v1alpha3) when the domain is gone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/grpc_unary.h"

#define HOOK_SIDECAR_NAME "mesa-injector"

enum hook_method {
        HOOK_UNKNOWN = 0,
        HOOK_INFO,
        HOOK_ON_DEFINE_DOMAIN,
        HOOK_PRE_CLOUD_INIT_ISO,
        HOOK_SHUTDOWN,
};

/* From the :path, e.g. "/kubevirt.hooks.v1alpha2.Callbacks/OnDefineDomain";
 * *version gets "v1alpha1".."v1alpha3" for the callbacks (static). A method
 * a version does not have (Shutdown of v1alpha2) is HOOK_UNKNOWN. */
enum hook_method hook_method_lookup(const char *path, size_t len, const char **version);

struct hook_rpc {
        const char *render_node;
        bool shutdown_requested; /* set by a Shutdown call */
};

/* The answer to one call; 0, or -ENOMEM with nothing to answer. */
int hook_rpc_answer(struct hook_rpc *rpc, const char *path, size_t path_len, const uint8_t *req,
                    size_t len, struct grpc_reply *out);
