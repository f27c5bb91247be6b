/* The device plugin's gRPC server (see device_plugin_server.h).
 *
 * Every call is requested generically (grpc_server_request_call) and
 * dispatched on its :path, so an unknown method gets UNIMPLEMENTED from us
 * with a message. Each call keeps a count of its batches in flight and is
 * freed when the count is zero and its RECV_CLOSE_ON_SERVER has completed
 * (after our status went out, or the client went away). */
#include "webhook/device_plugin_server.h"

#include <errno.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/grpc_socket.h"
#include "webhook/device_plugin_rpc.h"

#define MAX_MESSAGE (1 << 20) /* the kubelet's requests are a few KiB */
#define MAX_STREAMS_PER_CONNECTION 16
#define MAX_WATCHERS 8 /* the kubelet holds one ListAndWatch */
#define STOP_GRACE_MS 1000

enum tag_kind { TAG_NEW, TAG_RECV, TAG_SEND, TAG_STATUS, TAG_CLOSE, TAG_SHUTDOWN };

struct dp_call;
struct dp_tag {
        struct dp_call *call;
        enum tag_kind kind;
};

struct dp_call {
        struct dp_server *s;
        struct grpc_call_core g;
        enum dp_method method;
        bool status_started, sending, watching;
        uint64_t sent_generation;
        struct dp_call *next_watcher;
        struct dp_tag t_new, t_recv, t_send, t_status, t_close;
};

struct dp_server {
        struct dp_shared *sh;
        grpc_server *server;
        grpc_completion_queue *cq;
        pthread_t thread;
        char *path;
        ino_t ino;
        dev_t dev;
        bool stopping, shutdown_done; /* under sh->lock */
        pthread_cond_t cond;          /* shutdown_done */
        struct dp_call *watchers;     /* ListAndWatch streams */
        size_t n_watchers;
        struct dp_tag t_shutdown;
};

static void call_free(struct dp_call *c)
{
        grpc_call_core_done(&c->g);
        free(c);
}

static void batch(struct dp_call *c, const grpc_op *ops, size_t n, struct dp_tag *tag)
{
        grpc_call_core_batch(&c->g, ops, n, tag);
}

static void send_status(struct dp_call *c, int status, const char *message, const uint8_t *data,
                        size_t len)
{
        c->status_started = true;
        grpc_call_core_send_status(&c->g, status, message, data, len, &c->t_status);
}

/* Requests the next incoming call; false when out of memory. */
static bool request_call(struct dp_server *s)
{
        struct dp_call *c = calloc(1, sizeof(*c));
        if (!c)
                return false;
        c->s = s;
        c->t_new = (struct dp_tag){c, TAG_NEW};
        c->t_recv = (struct dp_tag){c, TAG_RECV};
        c->t_send = (struct dp_tag){c, TAG_SEND};
        c->t_status = (struct dp_tag){c, TAG_STATUS};
        c->t_close = (struct dp_tag){c, TAG_CLOSE};
        if (!grpc_call_core_request(&c->g, s->server, s->cq, &c->t_new)) {
                free(c);
                return false;
        }
        return true;
}

static void unwatch(struct dp_call *c)
{
        if (!c->watching)
                return;
        for (struct dp_call **p = &c->s->watchers; *p; p = &(*p)->next_watcher)
                if (*p == c) {
                        *p = c->next_watcher;
                        break;
                }
        c->watching = false;
        c->s->n_watchers--;
}

/* The current list (or, stopping, an empty one with the final status). */
static void push_list(struct dp_call *c)
{
        struct dp_shared *sh = c->s->sh;
        if (c->sending || c->status_started || c->g.closed)
                return;
        if (c->s->stopping) {
                _cleanup_free_ uint8_t *none = NULL;
                size_t len = 0;
                unwatch(c);
                if (dp_rpc_device_list(&sh->inv, true, &none, &len) < 0)
                        send_status(c, GRPC_STATUS_UNAVAILABLE, "device plugin stopping", NULL, 0);
                else
                        send_status(c, GRPC_STATUS_OK, NULL, none, len);
                return;
        }
        if (c->sent_generation == sh->generation) /* generations start at 1 */
                return;
        grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
        c->g.send = grpc_buffer_copy(sh->list, sh->list_len);
        op.data.send_message.send_message = c->g.send;
        c->sending = true;
        c->sent_generation = sh->generation;
        batch(c, &op, 1, &c->t_send);
}

static void on_new_call(struct dp_call *c, bool ok)
{
        struct dp_server *s = c->s;
        if (!ok) { /* the server is shutting down */
                c->g.call = NULL;
                call_free(c);
                return;
        }
        if (!s->stopping && !request_call(s))
                log_error("out of memory; not accepting more calls");
        c->method = dp_method_lookup((const char *)GRPC_SLICE_START_PTR(c->g.details.method),
                                     GRPC_SLICE_LENGTH(c->g.details.method));
        grpc_op close = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
        close.data.recv_close_on_server.cancelled = &c->g.cancelled;
        batch(c, &close, 1, &c->t_close);
        grpc_op ops[2] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_RECV_MESSAGE}};
        if (c->method == DP_UNKNOWN) {
                char *m = grpc_slice_to_c_string(c->g.details.method);
                log_debug("unknown method %s", m ? m : "?");
                _cleanup_free_ char *msg =
                    strdup_printf("unknown method %.128s: this is a kubelet device plugin "
                                  "(v1beta1.DevicePlugin)",
                                  m ? m : "?");
                gpr_free(m);
                batch(c, ops, 1, &c->t_recv); /* initial metadata only */
                send_status(c, GRPC_STATUS_UNIMPLEMENTED, msg ? msg : "unknown method", NULL, 0);
                return;
        }
        ops[1].data.recv_message.recv_message = &c->g.recv;
        batch(c, ops, 2, &c->t_recv);
}

static void on_request(struct dp_call *c, bool ok)
{
        struct dp_server *s = c->s;
        _cleanup_free_ uint8_t *req = NULL;
        size_t len = 0;
        struct grpc_reply reply = {};
        int r;

        if (!ok || c->method == DP_UNKNOWN || c->status_started)
                return; /* cancelled; or the unknown-method path, already answered */
        if (!c->g.recv) {
                send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "the call carries no request message",
                            NULL, 0);
                return;
        }
        r = grpc_buffer_read(c->g.recv, &req, &len);
        grpc_byte_buffer_destroy(c->g.recv);
        c->g.recv = NULL;
        if (r < 0) {
                send_status(c, r == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INTERNAL,
                            r == -ENOMEM ? "out of memory" : "cannot read the request", NULL, 0);
                return;
        }
        if (c->method != DP_LIST_AND_WATCH)
                r = dp_rpc_unary(&(struct dp_rpc){s->sh->config, &s->sh->inv}, c->method, req, len,
                                 &reply);
        else
                r = dp_rpc_check_empty(req, len, &reply);
        log_debug("%s: %zu bytes, status %d%s%s", dp_method_name(c->method), len, reply.status,
                  reply.message ? ": " : "", reply.message ? reply.message : "");
        if (r < 0) {
                send_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        } else if (reply.status != GRPC_STATUS_OK) {
                log_info("answered %s with status %d: %s", dp_method_name(c->method), reply.status,
                         reply.message);
                send_status(c, reply.status, reply.message, NULL, 0);
        } else if (c->method != DP_LIST_AND_WATCH) {
                send_status(c, GRPC_STATUS_OK, NULL, reply.data, reply.len);
        } else if (s->n_watchers >= MAX_WATCHERS) {
                send_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many ListAndWatch streams open",
                            NULL, 0);
        } else {
                c->watching = true;
                c->next_watcher = s->watchers;
                s->watchers = c;
                s->n_watchers++;
                push_list(c);
        }
        grpc_reply_done(&reply);
}

static void on_sent(struct dp_call *c, bool ok)
{
        c->sending = false;
        grpc_byte_buffer_destroy(c->g.send);
        c->g.send = NULL;
        if (!ok) { /* the stream broke: the kubelet went away */
                unwatch(c);
                return;
        }
        push_list(c);
}

/* One completion, with sh->lock held. */
static void dispatch(struct dp_server *s, struct dp_tag *t, bool ok)
{
        struct dp_call *c = t->call;
        if (t->kind == TAG_SHUTDOWN) {
                s->shutdown_done = true;
                pthread_cond_broadcast(&s->cond);
                return;
        }
        if (t->kind == TAG_NEW) {
                on_new_call(c, ok);
                return;
        }
        c->g.pending--;
        switch (t->kind) {
        case TAG_RECV:
                on_request(c, ok);
                break;
        case TAG_SEND:
                on_sent(c, ok);
                break;
        case TAG_CLOSE:
                c->g.closed = true;
                unwatch(c);
                break;
        default: /* TAG_STATUS: nothing more to say */
                if (c->g.send) {
                        grpc_byte_buffer_destroy(c->g.send);
                        c->g.send = NULL;
                }
                break;
        }
        if (c->g.pending == 0 && c->g.closed)
                call_free(c);
}

static void *serve(void *userdata)
{
        struct dp_server *s = userdata;
        for (;;) {
                grpc_event ev =
                    grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        return NULL;
                if (ev.type != GRPC_OP_COMPLETE)
                        continue;
                pthread_mutex_lock(&s->sh->lock);
                dispatch(s, ev.tag, ev.success != 0);
                pthread_mutex_unlock(&s->sh->lock);
        }
}

static int bind_server(struct dp_server *s)
{
        return grpc_unix_server_bind(s->path, MAX_MESSAGE, MAX_STREAMS_PER_CONNECTION, &s->server,
                                     &s->cq, &s->dev, &s->ino);
}

static void destroy(struct dp_server *s)
{
        grpc_server_queue_destroy(s->server, s->cq, s->thread ? &s->thread : NULL);
        pthread_cond_destroy(&s->cond);
        free(s->path);
        free(s);
}

static void complete_aborted(void *userdata, void *tag)
{
        dispatch(userdata, tag, false);
}

int dp_server_start(struct dp_shared *sh, const char *path, struct dp_server **ret)
{
        struct dp_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct dp_server){.sh = sh, .path = strdup(path)};
        s->t_shutdown = (struct dp_tag){NULL, TAG_SHUTDOWN};
        pthread_cond_init(&s->cond, NULL);
        int r = s->path ? bind_server(s) : -ENOMEM;
        pthread_mutex_lock(&sh->lock);
        if (r >= 0 && !request_call(s))
                r = -ENOMEM;
        pthread_mutex_unlock(&sh->lock);
        if (r >= 0 && (r = -pthread_create(&s->thread, NULL, serve, s)) < 0)
                s->thread = 0;
        if (r < 0) {
                if (s->server && s->ino) /* started: shut down properly */
                        grpc_server_abort(s->server, s->cq, &s->t_shutdown, complete_aborted, s);
                destroy(s);
                return r;
        }
        log_info("serving on %s", path);
        *ret = s;
        return 0;
}

void dp_server_devices_changed(struct dp_server *s)
{
        pthread_mutex_lock(&s->sh->lock);
        for (struct dp_call *c = s->watchers, *next; c; c = next) {
                next = c->next_watcher; /* push_list may unwatch c */
                push_list(c);
        }
        pthread_mutex_unlock(&s->sh->lock);
}

bool dp_server_socket_intact(const struct dp_server *s)
{
        return grpc_unix_socket_is_ours(s->path, s->dev, s->ino);
}

/* Waits for the shutdown tag up to ms; true when it came. */
static bool wait_shutdown(struct dp_server *s, long ms)
{
        struct timespec until = realtime_after_ms(ms);
        while (!s->shutdown_done)
                if (pthread_cond_timedwait(&s->cond, &s->sh->lock, &until) == ETIMEDOUT)
                        break;
        return s->shutdown_done;
}

void dp_server_stop(struct dp_server *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->sh->lock);
        s->stopping = true;
        for (struct dp_call *c = s->watchers, *next; c; c = next) {
                next = c->next_watcher;
                push_list(c); /* the empty list and status OK */
        }
        grpc_server_shutdown_and_notify(s->server, s->cq, &s->t_shutdown);
        if (!wait_shutdown(s, STOP_GRACE_MS)) {
                log_debug("cancelling the calls still open");
                pthread_mutex_unlock(&s->sh->lock);
                grpc_server_cancel_all_calls(s->server);
                pthread_mutex_lock(&s->sh->lock);
                while (!s->shutdown_done)
                        pthread_cond_wait(&s->cond, &s->sh->lock);
        }
        pthread_mutex_unlock(&s->sh->lock);
        /* Only our own socket: the kubelet may have removed it already. */
        if (dp_server_socket_intact(s))
                unlink(s->path);
        log_info("stopped serving on %s", s->path);
        destroy(s);
}
