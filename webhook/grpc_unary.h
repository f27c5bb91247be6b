/* A gRPC server for unary calls only, on a unix socket, over gRPC's C core:
 * one completion queue drained by one thread, every call requested
 * generically and handed to one handler with its :path and its request as
 * bytes. The hook sidecar (webhook/hook_sidecar*.c) serves KubeVirt's hook
 * API with it. (The device plugin has a server of its own: it streams.) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "webhook/grpc_reply.h"

/* Runs on the server's thread, one call at a time. method is the HTTP/2
 * :path ("/pkg.Service/Method", not NUL-terminated). Returns 0 with out
 * filled, or -ENOMEM (the client gets RESOURCE_EXHAUSTED). */
typedef int (*grpc_unary_handler)(void *userdata, const char *method, size_t method_len,
                                  const uint8_t *req, size_t len, struct grpc_reply *out);

struct grpc_unary_server;

/* Serve on path (a stale socket there is replaced); requests larger than
 * max_message bytes get RESOURCE_EXHAUSTED from gRPC. 0 or negative errno. */
int grpc_unary_server_start(const char *path, int max_message, grpc_unary_handler handler,
                            void *userdata, struct grpc_unary_server **ret);
/* Stop accepting, give open calls grace_ms, cancel the rest, remove the
 * socket if it is still ours. */
void grpc_unary_server_stop(struct grpc_unary_server *s, long grace_ms);
