/* gRPC answers as plain bytes (see grpc_reply.h). */
#include "webhook/grpc_reply.h"

#include <errno.h>
#include <grpc/status.h>
#include <stdarg.h>
#include <stdlib.h>

#include "common/util.h"

void grpc_reply_done(struct grpc_reply *r)
{
        free(r->message);
        free(r->data);
        *r = (struct grpc_reply){};
}

int grpc_reply_pack(const ProtobufCMessage *m, struct grpc_reply *out)
{
        out->len = protobuf_c_message_get_packed_size(m);
        out->data = malloc(out->len ? out->len : 1);
        if (!out->data)
                return -ENOMEM;
        protobuf_c_message_pack(m, out->data);
        out->status = GRPC_STATUS_OK;
        return 0;
}

int grpc_reply_fail(struct grpc_reply *out, int status, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        out->status = status;
        free(out->message);
        out->message = strdup_vprintf(fmt, ap);
        va_end(ap);
        return out->message ? 0 : -ENOMEM;
}

int grpc_request_is(const ProtobufCMessageDescriptor *d, const uint8_t *req, size_t len,
                    const char *what, struct grpc_reply *out)
{
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, req);
        if (!m)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT, "the request is not %s",
                                       what);
        protobuf_c_message_free_unpacked(m, NULL);
        return 1;
}
