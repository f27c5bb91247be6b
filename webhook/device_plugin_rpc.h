/* What the device plugin answers, method by method, as packed protobuf
 * (protoc-c code generated from webhook/device_plugin_api.proto): no gRPC
 * in here, so unit tests drive it with plain bytes. Every answer is a gRPC
 * status with a message, and a body when the status is OK. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/config.h"
#include "webhook/device_plugin_devices.h"
#include "webhook/grpc_reply.h"

#define DP_API_VERSION "v1beta1"
#define DP_REGISTER_METHOD "/v1beta1.Registration/Register"

enum dp_method {
        DP_UNKNOWN = 0,
        DP_GET_OPTIONS,
        DP_LIST_AND_WATCH,
        DP_GET_PREFERRED,
        DP_ALLOCATE,
        DP_PRE_START,
};
/* From the HTTP/2 :path, "/v1beta1.DevicePlugin/Allocate"; not NUL-terminated. */
enum dp_method dp_method_lookup(const char *path, size_t len);
/* "Allocate", ... for logs. */
const char *dp_method_name(enum dp_method m);

struct dp_rpc {
        const struct injector_config *config; /* mode, cdi names */
        const struct dp_inventory *inv;
};

/* A unary method (not ListAndWatch); 0, or -ENOMEM with nothing to answer. */
int dp_rpc_unary(const struct dp_rpc *rpc, enum dp_method m, const uint8_t *req, size_t len,
                 struct grpc_reply *out);
/* ListAndWatch's request must be an Empty: 0 when it parses. */
int dp_rpc_check_empty(const uint8_t *req, size_t len, struct grpc_reply *out);
/* One ListAndWatchResponse: every device with its health, or none (what a
 * stopping plugin sends so the kubelet drops the capacity at once). */
int dp_rpc_device_list(const struct dp_inventory *inv, bool none, uint8_t **data, size_t *len);
/* The RegisterRequest for the kubelet. */
int dp_rpc_register_request(const struct injector_device_plugin *d, uint8_t **data, size_t *len);
/* The options the plugin announces (GetDevicePluginOptions and Register). */
#define DP_PRE_START_REQUIRED false
#define DP_PREFERRED_ALLOCATION true
