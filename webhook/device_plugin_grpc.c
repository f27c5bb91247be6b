/* gRPC C core helpers of the device plugin (see device_plugin_grpc.h). */
#include "webhook/device_plugin_grpc.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

int dp_grpc_read(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init(&reader, bb))
                return -EIO; /* a compressed message that does not decompress */
        grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        *len = GRPC_SLICE_LENGTH(all);
        *data = malloc(*len ? *len : 1);
        if (*data)
                memcpy(*data, GRPC_SLICE_START_PTR(all), *len);
        grpc_slice_unref(all);
        return *data ? 0 : -ENOMEM;
}

grpc_byte_buffer *dp_grpc_buffer(const uint8_t *data, size_t len)
{
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        return bb;
}

gpr_timespec dp_grpc_deadline_ms(long ms)
{
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}
