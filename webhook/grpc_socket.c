/* gRPC C core pieces both of our servers use (see grpc_socket.h). */
#include "webhook/grpc_socket.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"

bool grpc_call_core_request(struct grpc_call_core *c, grpc_server *server,
                            grpc_completion_queue *cq, void *tag)
{
        grpc_call_details_init(&c->details);
        grpc_metadata_array_init(&c->md);
        grpc_call_error e =
            grpc_server_request_call(server, &c->call, &c->details, &c->md, cq, cq, tag);
        if (e == GRPC_CALL_OK)
                return true;
        log_error("cannot accept calls: %s", grpc_call_error_to_string(e));
        grpc_call_core_done(c);
        return false;
}

void grpc_call_core_done(struct grpc_call_core *c)
{
        if (c->call)
                grpc_call_unref(c->call);
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->md);
        if (c->recv)
                grpc_byte_buffer_destroy(c->recv);
        if (c->send)
                grpc_byte_buffer_destroy(c->send);
        *c = (struct grpc_call_core){};
}

void grpc_call_core_batch(struct grpc_call_core *c, const grpc_op *ops, size_t n, void *tag)
{
        grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
        if (e == GRPC_CALL_OK) {
                c->pending++;
                return;
        }
        log_error("gRPC batch refused: %s", grpc_call_error_to_string(e));
        grpc_call_cancel(c->call, NULL);
}

void grpc_call_core_send_status(struct grpc_call_core *c, int status, const char *message,
                                const uint8_t *data, size_t len, void *tag)
{
        grpc_op ops[2] = {};
        size_t n = 0;
        grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
        if (data) {
                c->send = grpc_buffer_copy(data, len);
                ops[n].op = GRPC_OP_SEND_MESSAGE;
                ops[n++].data.send_message.send_message = c->send;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = (grpc_status_code)status;
        ops[n++].data.send_status_from_server.status_details = message ? &details : NULL;
        grpc_call_core_batch(c, ops, n, tag);
        grpc_slice_unref(details);
}

int grpc_buffer_read(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
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

grpc_byte_buffer *grpc_buffer_copy(const uint8_t *data, size_t len)
{
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        return bb;
}

gpr_timespec grpc_deadline_ms(long ms)
{
        return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

struct timespec realtime_after_ms(long ms)
{
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        return until;
}

int grpc_unix_server_bind(const char *path, int max_message, int max_streams, grpc_server **server,
                          grpc_completion_queue **cq, dev_t *dev, ino_t *ino)
{
        grpc_arg args[] = {
            {.type = GRPC_ARG_INTEGER,
             .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
             .value.integer = max_message},
            {.type = GRPC_ARG_INTEGER,
             .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
             .value.integer = max_streams},
        };
        grpc_channel_args ca = {ELEMENTSOF(args), args};
        _cleanup_free_ char *addr = strdup_printf("unix:%s", path);
        struct stat st;
        if (!addr)
                return -ENOMEM;
        *server = grpc_server_create(&ca, NULL);
        *cq = grpc_completion_queue_create_for_next(NULL);
        if (!*server || !*cq)
                return -ENOMEM;
        grpc_server_register_completion_queue(*server, *cq, NULL);
        /* A socket left by an earlier run would make bind() fail. */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                unlink(path);
        grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
        int port = grpc_server_add_http2_port(*server, addr, creds);
        grpc_server_credentials_release(creds);
        if (port == 0)
                return log_error_errno(-EADDRNOTAVAIL, "cannot listen on %s", path);
        grpc_server_start(*server);
        if (stat(path, &st) < 0)
                return log_error_errno(-errno, "%s vanished after bind", path);
        *ino = st.st_ino;
        *dev = st.st_dev;
        return 0;
}

bool grpc_unix_socket_is_ours(const char *path, dev_t dev, ino_t ino)
{
        struct stat st;
        return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == ino &&
               st.st_dev == dev;
}

void grpc_server_abort(grpc_server *server, grpc_completion_queue *cq, void *shutdown_tag,
                       void (*complete)(void *userdata, void *tag), void *userdata)
{
        grpc_server_shutdown_and_notify(server, cq, shutdown_tag);
        grpc_server_cancel_all_calls(server);
        for (bool done = false; !done;) {
                grpc_event ev =
                    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                done = ev.type == GRPC_OP_COMPLETE && ev.tag == shutdown_tag;
                if (!done && ev.type == GRPC_OP_COMPLETE)
                        complete(userdata, ev.tag);
        }
}

void grpc_server_queue_destroy(grpc_server *server, grpc_completion_queue *cq,
                               const pthread_t *thread)
{
        if (server)
                grpc_server_destroy(server);
        if (!cq)
                return;
        grpc_completion_queue_shutdown(cq);
        if (thread)
                pthread_join(*thread, NULL);
        else /* never started: drain here */
                while (
                    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                    GRPC_QUEUE_SHUTDOWN)
                        ;
        grpc_completion_queue_destroy(cq);
}
