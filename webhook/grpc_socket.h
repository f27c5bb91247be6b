/* What the device plugin's server (device_plugin_server.c) and the hook
 * sidecar's (grpc_unary.c) do alike over gRPC's C core: messages as flat
 * bytes, deadlines, a server bound to a unix socket whose identity is kept
 * so that stopping removes only our own socket, and its teardown. */
#pragma once

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* What each call of either server holds: the call, what the request named,
 * the buffers in flight, and the count of its batches in flight. A call is
 * freed when that count is zero and RECV_CLOSE_ON_SERVER has completed
 * (after our status went out, or the client went away). */
struct grpc_call_core {
        grpc_call *call;
        grpc_call_details details;
        grpc_metadata_array md;
        grpc_byte_buffer *recv, *send;
        int cancelled;
        unsigned pending; /* batches in flight */
        bool closed;      /* RECV_CLOSE_ON_SERVER completed */
};
/* Asks server for its next call into c, completing with tag on cq; false
 * (logged, c done) when gRPC refuses. */
bool grpc_call_core_request(struct grpc_call_core *c, grpc_server *server,
                            grpc_completion_queue *cq, void *tag);
void grpc_call_core_done(struct grpc_call_core *c);
/* A batch on c; when gRPC refuses it the call is cancelled, which completes
 * the batches already in flight, so the call is still freed. */
void grpc_call_core_batch(struct grpc_call_core *c, const grpc_op *ops, size_t n, void *tag);
/* The response (data, when not NULL) and the status in one batch. */
void grpc_call_core_send_status(struct grpc_call_core *c, int status, const char *message,
                                const uint8_t *data, size_t len, void *tag);

/* The whole message of a received buffer (the reader undoes compression);
 * *data is malloc()ed. 0, -EIO or -ENOMEM. */
int grpc_buffer_read(grpc_byte_buffer *bb, uint8_t **data, size_t *len);
/* A buffer holding a copy of data; NULL on ENOMEM. */
grpc_byte_buffer *grpc_buffer_copy(const uint8_t *data, size_t len);
/* Now plus ms on the monotonic clock. */
gpr_timespec grpc_deadline_ms(long ms);
/* Now plus ms on CLOCK_REALTIME, for pthread_cond_timedwait(). */
struct timespec realtime_after_ms(long ms);

/* A started server on unix:path (a stale socket there is replaced) with
 * its completion queue; *dev and *ino name the socket it made. Requests
 * over max_message bytes get RESOURCE_EXHAUSTED from gRPC. 0 or -errno;
 * on failure what was created is in *server and *cq for the caller. */
int grpc_unix_server_bind(const char *path, int max_message, int max_streams, grpc_server **server,
                          grpc_completion_queue **cq, dev_t *dev, ino_t *ino);
/* Whether path is still the socket the bind made. */
bool grpc_unix_socket_is_ours(const char *path, dev_t dev, ino_t ino);
/* A bound server whose queue no thread drains: shut down, every call
 * cancelled, each completion but the shutdown's handed to complete (ok
 * false) until the shutdown's. */
void grpc_server_abort(grpc_server *server, grpc_completion_queue *cq, void *shutdown_tag,
                       void (*complete)(void *userdata, void *tag), void *userdata);
/* The server destroyed and its queue shut down, drained by thread (joined)
 * or, NULL, here, and destroyed. Either may be NULL. */
void grpc_server_queue_destroy(grpc_server *server, grpc_completion_queue *cq,
                               const pthread_t *thread);
