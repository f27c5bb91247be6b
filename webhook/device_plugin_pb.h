/* Helpers shared by the device plugin's answers: building protobuf-c
 * messages in an arena freed in one go, packing them into a reply, and
 * failing with a gRPC status. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/macro.h"
#include "device_plugin_api.pb-c.h" /* generated in build/gen */
#include "webhook/device_plugin_rpc.h"

struct arena {
        void **ptrs;
        size_t n;
        bool failed; /* an allocation failed: the message is incomplete */
};
/* Zeroed memory that lives until arena_done(); NULL (and failed) on ENOMEM. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_printf(struct arena *a, const char *fmt, ...) _printf_(2, 3);
void arena_done(struct arena *a);

/* The node of a device ID in a request; NULL with out failed
 * (INVALID_ARGUMENT) when it is not ours, *r set to grpc_reply_fail's result. */
const struct dp_node *dp_known_id(const struct dp_rpc *rpc, const char *id, struct grpc_reply *out,
                                  int *r);
int dp_rpc_preferred(const struct dp_rpc *rpc, const uint8_t *req, size_t len,
                     struct grpc_reply *out);
