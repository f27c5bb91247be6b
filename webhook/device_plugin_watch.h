/* What the device plugin waits for, in one poll(): SIGINT/SIGTERM, render
 * nodes appearing or going in the glob's directory, kubelet.sock being
 * created (the kubelet restarted) and our socket being removed (the kubelet
 * clears the directory when it starts). inotify, with a one-second poll
 * while a directory (or its parent) does not exist. */
#pragma once

#include <stdbool.h>

enum {
        DPW_STOP = 1 << 0,    /* SIGINT or SIGTERM */
        DPW_DEVICES = 1 << 1, /* look at the render nodes again */
        DPW_KUBELET = 1 << 2, /* kubelet.sock appeared: register again */
        DPW_SOCKET = 1 << 3,  /* our socket may be gone */
};

struct dp_watch;

/* device_dir: where the glob's matches live; device_pattern: the glob's
 * last component. SIGINT and SIGTERM must be blocked in every thread. */
int dpw_open(const char *device_dir, const char *device_pattern, const char *socket_dir,
             const char *socket_name, struct dp_watch **ret);
/* Up to timeout_ms (-1: no limit); the DPW_* bits seen (0: timed out) or a
 * negative errno. */
int dpw_wait(struct dp_watch *w, int timeout_ms);
/* Whether a stop signal is waiting (not consumed). */
bool dpw_stop_pending(struct dp_watch *w);
void dpw_close(struct dp_watch *w);
