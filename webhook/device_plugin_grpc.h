/* Small bridges between gRPC's C core and the device plugin: messages as
 * flat bytes, deadlines from seconds. */
#pragma once

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

/* The whole message of a received buffer (the reader undoes compression);
 * *data is malloc()ed. 0 or -ENOMEM. */
int dp_grpc_read(grpc_byte_buffer *bb, uint8_t **data, size_t *len);
/* A buffer holding a copy of data; NULL on ENOMEM. */
grpc_byte_buffer *dp_grpc_buffer(const uint8_t *data, size_t len);
/* Now plus ms on the monotonic clock. */
gpr_timespec dp_grpc_deadline_ms(long ms);
