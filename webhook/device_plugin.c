/* The device plugin's supervisor: serve, register, follow the render nodes
 * and the kubelet, stop cleanly.
 *
 * What it mirrors: KubeVirt's own device plugins (kubevirt d923fdb,
 * pkg/virt-handler/device-manager/generic_device.go): serve first, then
 * Register; on our socket's removal (the kubelet's CleanupPluginDirectory at
 * start, kubernetes v1.36.3 pkg/kubelet/cm/devicemanager/manager.go) serve
 * again on a fresh socket and register again; the kubelet's own test stub
 * (plugin/v1beta1/stub.go Watch) registers again when kubelet.sock is
 * created. A Register that fails (the kubelet not up yet) is retried with
 * a backoff of 1 s doubling to 30 s, and at once when kubelet.sock appears. */
#include "webhook/device_plugin.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/device_plugin_register.h"
#include "webhook/device_plugin_rpc.h"
#include "webhook/device_plugin_server.h"
#include "webhook/device_plugin_watch.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

struct supervisor {
        const struct injector_config *config;
        struct dp_shared sh;
        struct dp_watch *watch;
        struct dp_server *server;
        char *socket_path;
        bool registered;
        double register_at; /* monotonic seconds: next Register attempt */
        long backoff_ms;
};

static bool stop_requested(void *userdata)
{
        struct supervisor *s = userdata;
        return dpw_stop_pending(s->watch);
}

/* Rescans the render nodes; pushes the list when it changed. */
static int refresh_devices(struct supervisor *s, bool force)
{
        pthread_mutex_lock(&s->sh.lock);
        int r = dp_inventory_scan(&s->sh.inv);
        if (r > 0 || (r == 0 && force)) {
                uint8_t *list = NULL;
                size_t len = 0;
                r = dp_rpc_device_list(&s->sh.inv, false, &list, &len);
                if (r >= 0) {
                        free(s->sh.list);
                        s->sh.list = list;
                        s->sh.list_len = len;
                        s->sh.generation++;
                        r = 1;
                }
        }
        pthread_mutex_unlock(&s->sh.lock);
        if (r > 0 && s->server)
                dp_server_devices_changed(s->server);
        return r < 0 ? r : 0;
}

static void schedule_register(struct supervisor *s, bool now)
{
        s->registered = false;
        if (now)
                s->backoff_ms = BACKOFF_MIN_MS;
        s->register_at = now_seconds() + (now ? 0 : s->backoff_ms / 1000.0);
}

/* Serve (again) when we do not; then register when it is time. */
static void step(struct supervisor *s)
{
        if (!s->server) {
                int r = dp_server_start(&s->sh, s->socket_path, &s->server);
                if (r < 0) {
                        s->server = NULL;
                        schedule_register(s, false);
                        s->backoff_ms =
                            s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
                        return;
                }
        }
        if (s->registered || now_seconds() < s->register_at)
                return;
        int r = dp_register(&s->config->device_plugin, stop_requested, s);
        if (r == 0) {
                s->registered = true;
                s->backoff_ms = BACKOFF_MIN_MS;
        } else if (r != -ECANCELED) {
                schedule_register(s, false);
                log_info("next Register in %ld ms (or when kubelet.sock appears)", s->backoff_ms);
                s->backoff_ms =
                    s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
        }
}

/* How long to sleep: until the next Register attempt, or for events only. */
static int wait_ms(const struct supervisor *s)
{
        if (s->server && s->registered)
                return -1;
        double left = s->register_at - now_seconds();
        return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

static int loop(struct supervisor *s)
{
        for (;;) {
                step(s);
                int ev = dpw_wait(s->watch, wait_ms(s));
                if (ev < 0)
                        return log_error_errno(ev, "waiting failed: %s", strerror(-ev));
                if (ev & DPW_STOP)
                        return 0;
                if ((ev & DPW_DEVICES) && refresh_devices(s, false) < 0)
                        log_warning("could not look at the render nodes");
                if ((ev & DPW_SOCKET) && s->server && !dp_server_socket_intact(s->server)) {
                        log_info("%s was removed (the kubelet restarted?): "
                                 "serving again",
                                 s->socket_path);
                        dp_server_stop(s->server);
                        s->server = NULL;
                        schedule_register(s, true);
                }
                if (ev & DPW_KUBELET) {
                        log_info("kubelet.sock appeared: registering again");
                        schedule_register(s, true);
                }
        }
}

static int supervisor_init(struct supervisor *s, const struct injector_config *c)
{
        const struct injector_device_plugin *d = &c->device_plugin;
        *s = (struct supervisor){.config = c, .backoff_ms = BACKOFF_MIN_MS};
        s->sh.config = c;
        s->sh.inv.cfg = d;
        pthread_mutex_init(&s->sh.lock, NULL);
        s->socket_path = strdup_printf("%s/%s", d->socket_dir, d->socket_name);
        _cleanup_free_ char *dir = dp_inventory_watch_dir(&s->sh.inv);
        if (!s->socket_path || !dir)
                return -ENOMEM;
        int r = dpw_open(dir, strrchr(d->device_glob, '/') + 1, d->socket_dir, d->socket_name,
                         &s->watch);
        if (r < 0)
                return r;
        r = refresh_devices(s, true);
        if (r < 0)
                return r;
        log_info("%s: %zu render node(s) under %s, %u devices each", d->resource_name,
                 s->sh.inv.n_nodes, dir, d->shares);
        return 0;
}

static void supervisor_done(struct supervisor *s)
{
        dp_server_stop(s->server);
        dpw_close(s->watch);
        dp_inventory_done(&s->sh.inv);
        free(s->sh.list);
        free(s->socket_path);
        pthread_mutex_destroy(&s->sh.lock);
}

int device_plugin_run(const struct injector_config *c)
{
        struct supervisor s;
        grpc_init();
        int r = supervisor_init(&s, c);
        if (r >= 0)
                r = loop(&s);
        supervisor_done(&s);
        grpc_shutdown_blocking();
        return r;
}
