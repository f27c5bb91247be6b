/* The device plugin's gRPC server on its unix socket (gRPC's C core, one
 * completion queue drained by one thread). Unary calls are answered by
 * device_plugin_rpc.c; ListAndWatch streams get the device list at once and
 * again whenever dp_server_devices_changed() is called. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook/config.h"
#include "webhook/device_plugin_devices.h"

/* What the supervisor (device_plugin.c) and the server thread share; every
 * field below lock is read and written with it held, and so are all gRPC
 * batches on the server's calls (gRPC wants batches of one call
 * serialised). */
struct dp_shared {
        const struct injector_config *config;
        pthread_mutex_t lock;
        struct dp_inventory inv;
        uint64_t generation; /* bumped on every change of inv */
        uint8_t *list;       /* the packed ListAndWatchResponse of inv */
        size_t list_len;
};

struct dp_server;

/* Serve on path (a stale socket there is replaced). 0 or negative errno. */
int dp_server_start(struct dp_shared *sh, const char *path, struct dp_server **ret);
/* Push the new list (sh->list, already updated under the lock) to every
 * ListAndWatch stream. */
void dp_server_devices_changed(struct dp_server *s);
/* Whether our socket file is still at its path (the kubelet removes every
 * socket in the directory when it starts). */
bool dp_server_socket_intact(const struct dp_server *s);
/* Streams get an empty list and status OK (so the kubelet drops the
 * capacity at once, as KubeVirt's plugins do), calls get a short grace,
 * then are cancelled; the socket file is removed if it is still ours. */
void dp_server_stop(struct dp_server *s);
