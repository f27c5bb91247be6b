/* A gRPC answer as plain bytes: a status with its message, and the packed
 * response when the status is OK. What the device plugin's and the hook
 * sidecar's methods return; no gRPC call in here, so unit tests drive
 * those methods without a server. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"

struct grpc_reply {
        int status;    /* a grpc_status_code */
        char *message; /* status details; NULL when OK */
        uint8_t *data; /* the packed response when OK */
        size_t len;
};
void grpc_reply_done(struct grpc_reply *r);
/* out becomes OK with m packed; 0 or -ENOMEM. */
int grpc_reply_pack(const ProtobufCMessage *m, struct grpc_reply *out);
/* out becomes the status with the message; 0 or -ENOMEM. */
int grpc_reply_fail(struct grpc_reply *out, int status, const char *fmt, ...) _printf_(3, 4);
/* Whether req is a well-formed d message: 1 when it is; else 0 with out
 * failed (INVALID_ARGUMENT, "the request is not <what>"), or -ENOMEM. For
 * methods that answer without reading their request. */
int grpc_request_is(const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len,
                    const char *what, struct grpc_reply *out);
