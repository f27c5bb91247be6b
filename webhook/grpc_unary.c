/* A unary-only gRPC server on a unix socket (see grpc_unary.h).
 *
 * Each call keeps a count of its batches in flight and is freed when the
 * count is zero and its RECV_CLOSE_ON_SERVER has completed (after our
 * status went out, or the client went away). */
#include "webhook/grpc_unary.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/grpc_socket.h"

/* Per connection: the hook callbacks come one at a time. */
#define MAX_STREAMS 16

enum tag_kind { TAG_NEW, TAG_RECV, TAG_STATUS, TAG_CLOSE, TAG_SHUTDOWN };

struct ucall;
struct utag {
        struct ucall *call;
        enum tag_kind kind;
};

struct ucall {
        struct grpc_unary_server *s;
        struct grpc_call_core g;
        struct utag t_new, t_recv, t_status, t_close;
};

struct grpc_unary_server {
        grpc_server *server;
        grpc_completion_queue *cq;
        pthread_t thread;
        bool thread_started;
        grpc_unary_handler handler;
        void *userdata;
        char *path;
        ino_t ino;
        dev_t dev;
        pthread_mutex_t lock; /* stopping, shutdown_done */
        pthread_cond_t cond;
        bool stopping, shutdown_done;
        struct utag t_shutdown;
};

static void call_free(struct ucall *c)
{
        grpc_call_core_done(&c->g);
        free(c);
}

static void batch(struct ucall *c, const grpc_op *ops, size_t n, struct utag *tag)
{
        grpc_call_core_batch(&c->g, ops, n, tag);
}

static void send_status(struct ucall *c, int status, const char *message, const uint8_t *data,
                        size_t len)
{
        grpc_call_core_send_status(&c->g, status, message, data, len, &c->t_status);
}

static bool request_call(struct grpc_unary_server *s)
{
        struct ucall *c = calloc(1, sizeof(*c));
        if (!c)
                return false;
        c->s = s;
        c->t_new = (struct utag){c, TAG_NEW};
        c->t_recv = (struct utag){c, TAG_RECV};
        c->t_status = (struct utag){c, TAG_STATUS};
        c->t_close = (struct utag){c, TAG_CLOSE};
        if (!grpc_call_core_request(&c->g, s->server, s->cq, &c->t_new)) {
                free(c);
                return false;
        }
        return true;
}

static void on_new_call(struct ucall *c, bool ok)
{
        struct grpc_unary_server *s = c->s;
        if (!ok) { /* the server is shutting down */
                c->g.call = NULL;
                call_free(c);
                return;
        }
        pthread_mutex_lock(&s->lock);
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (!stopping && !request_call(s))
                log_error("out of memory; not accepting more calls");
        grpc_op close = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
        close.data.recv_close_on_server.cancelled = &c->g.cancelled;
        batch(c, &close, 1, &c->t_close);
        grpc_op ops[2] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_RECV_MESSAGE}};
        ops[1].data.recv_message.recv_message = &c->g.recv;
        batch(c, ops, 2, &c->t_recv);
}

static void on_request(struct ucall *c, bool ok)
{
        _cleanup_free_ uint8_t *req = NULL;
        size_t len = 0;
        struct grpc_reply reply = {};

        if (!ok)
                return; /* cancelled */
        if (!c->g.recv) {
                send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "the call carries no request message",
                            NULL, 0);
                return;
        }
        int r = grpc_buffer_read(c->g.recv, &req, &len);
        grpc_byte_buffer_destroy(c->g.recv);
        c->g.recv = NULL;
        if (r >= 0)
                r = c->s->handler(c->s->userdata,
                                  (const char *)GRPC_SLICE_START_PTR(c->g.details.method),
                                  GRPC_SLICE_LENGTH(c->g.details.method), req, len, &reply);
        if (r == -ENOMEM)
                send_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        else if (r < 0)
                send_status(c, GRPC_STATUS_INTERNAL, "cannot read the request", NULL, 0);
        else if (reply.status != GRPC_STATUS_OK)
                send_status(c, reply.status, reply.message, NULL, 0);
        else
                send_status(c, GRPC_STATUS_OK, NULL, reply.data ? reply.data : (uint8_t *)"",
                            reply.len);
        grpc_reply_done(&reply);
}

static void dispatch(struct grpc_unary_server *s, struct utag *t, bool ok)
{
        struct ucall *c = t->call;
        if (t->kind == TAG_SHUTDOWN) {
                pthread_mutex_lock(&s->lock);
                s->shutdown_done = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->lock);
                return;
        }
        if (t->kind == TAG_NEW) {
                on_new_call(c, ok);
                return;
        }
        c->g.pending--;
        if (t->kind == TAG_RECV)
                on_request(c, ok);
        else if (t->kind == TAG_CLOSE)
                c->g.closed = true;
        if (c->g.pending == 0 && c->g.closed)
                call_free(c);
}

static void *serve(void *userdata)
{
        struct grpc_unary_server *s = userdata;
        for (;;) {
                grpc_event ev =
                    grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        return NULL;
                if (ev.type == GRPC_OP_COMPLETE)
                        dispatch(s, ev.tag, ev.success != 0);
        }
}

static int bind_server(struct grpc_unary_server *s, int max_message)
{
        return grpc_unix_server_bind(s->path, max_message, MAX_STREAMS, &s->server, &s->cq, &s->dev,
                                     &s->ino);
}

static void destroy(struct grpc_unary_server *s)
{
        grpc_server_queue_destroy(s->server, s->cq, s->thread_started ? &s->thread : NULL);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->path);
        free(s);
}

static void complete_aborted(void *userdata, void *tag)
{
        dispatch(userdata, tag, false);
}

/* Shut down and wait for the shutdown tag; the calls still open after
 * grace_ms are cancelled. */
static void shutdown_server(struct grpc_unary_server *s, long grace_ms)
{
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_mutex_unlock(&s->lock);
        if (!s->thread_started) { /* start failed after the bind: drain here */
                grpc_server_abort(s->server, s->cq, &s->t_shutdown, complete_aborted, s);
                return;
        }
        grpc_server_shutdown_and_notify(s->server, s->cq, &s->t_shutdown);
        struct timespec until = realtime_after_ms(grace_ms);
        pthread_mutex_lock(&s->lock);
        while (!s->shutdown_done)
                if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
                        break;
        bool done = s->shutdown_done;
        pthread_mutex_unlock(&s->lock);
        if (!done) {
                log_debug("cancelling the calls still open");
                grpc_server_cancel_all_calls(s->server);
                pthread_mutex_lock(&s->lock);
                while (!s->shutdown_done)
                        pthread_cond_wait(&s->cond, &s->lock);
                pthread_mutex_unlock(&s->lock);
        }
}

int grpc_unary_server_start(const char *path, int max_message, grpc_unary_handler handler,
                            void *userdata, struct grpc_unary_server **ret)
{
        struct grpc_unary_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct grpc_unary_server){
            .handler = handler, .userdata = userdata, .path = strdup(path)};
        s->t_shutdown = (struct utag){NULL, TAG_SHUTDOWN};
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        int r = s->path ? bind_server(s, max_message) : -ENOMEM;
        if (r >= 0 && !request_call(s))
                r = -ENOMEM;
        if (r >= 0) {
                r = -pthread_create(&s->thread, NULL, serve, s);
                s->thread_started = r == 0;
        }
        if (r < 0) {
                if (s->server && s->ino)
                        shutdown_server(s, 0);
                destroy(s);
                return r;
        }
        *ret = s;
        return 0;
}

void grpc_unary_server_stop(struct grpc_unary_server *s, long grace_ms)
{
        if (!s)
                return;
        shutdown_server(s, grace_ms);
        if (grpc_unix_socket_is_ours(s->path, s->dev, s->ino))
                unlink(s->path);
        destroy(s);
}
