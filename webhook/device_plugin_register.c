/* The plugin's side of /v1beta1.Registration/Register (see
 * device_plugin_register.h). The kubelet dials our socket back, asks for the
 * options and opens ListAndWatch before it answers (kubernetes v1.36.3,
 * pkg/kubelet/cm/devicemanager/plugin/v1beta1/handler.go connectClient), so
 * our server must already serve, from another thread. */
#include "webhook/device_plugin_register.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "webhook/grpc_socket.h"
#include "webhook/device_plugin_rpc.h"

/* How often a wait for the answer looks at stop(). */
#define STOP_POLL_MS 100

struct reg_call {
        grpc_metadata_array initial, trailing;
        grpc_byte_buffer *request, *answer;
        grpc_status_code status;
        grpc_slice details;
};

static int to_errno(grpc_status_code st)
{
        switch (st) {
        case GRPC_STATUS_OK:
                return 0;
        case GRPC_STATUS_DEADLINE_EXCEEDED:
                return -ETIMEDOUT;
        case GRPC_STATUS_UNAVAILABLE:
                return -ECONNREFUSED;
        case GRPC_STATUS_CANCELLED:
                return -ECANCELED;
        default:
                return -EPROTO;
        }
}

/* Starts the batch and waits for it; false when gRPC refused the batch. */
static bool run_call(grpc_call *call, grpc_completion_queue *cq, struct reg_call *rc,
                     bool (*stop)(void *), void *userdata)
{
        grpc_op ops[6] = {
            {.op = GRPC_OP_SEND_INITIAL_METADATA},
            {.op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = rc->request},
            {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT},
            {.op = GRPC_OP_RECV_INITIAL_METADATA,
             .data.recv_initial_metadata.recv_initial_metadata = &rc->initial},
            {.op = GRPC_OP_RECV_MESSAGE, .data.recv_message.recv_message = &rc->answer},
            {.op = GRPC_OP_RECV_STATUS_ON_CLIENT,
             .data.recv_status_on_client = {&rc->trailing, &rc->status, &rc->details, NULL}},
        };
        grpc_call_error e = grpc_call_start_batch(call, ops, ELEMENTSOF(ops), rc, NULL);
        if (e != GRPC_CALL_OK) {
                log_error("cannot start Register: %s", grpc_call_error_to_string(e));
                return false;
        }
        bool cancelled = false;
        for (;;) {
                grpc_event ev =
                    grpc_completion_queue_pluck(cq, rc, grpc_deadline_ms(STOP_POLL_MS), NULL);
                if (ev.type == GRPC_OP_COMPLETE)
                        return true;
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        return false;
                if (!cancelled && stop(userdata)) {
                        grpc_call_cancel(call, NULL);
                        cancelled = true;
                }
        }
}

int dp_register(const struct injector_device_plugin *d, bool (*stop)(void *), void *userdata)
{
        _cleanup_free_ char *target = strdup_printf("unix:%s/kubelet.sock", d->socket_dir);
        _cleanup_free_ uint8_t *req = NULL;
        size_t len = 0;
        struct reg_call rc = {.details = grpc_empty_slice()};
        if (!target || dp_rpc_register_request(d, &req, &len) < 0)
                return log_error_errno(-ENOMEM, "out of memory");

        grpc_metadata_array_init(&rc.initial);
        grpc_metadata_array_init(&rc.trailing);
        rc.request = grpc_buffer_copy(req, len);
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        grpc_channel *ch = grpc_channel_create(target, creds, NULL);
        grpc_channel_credentials_release(creds);
        grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
        grpc_call *call =
            grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                     grpc_slice_from_static_string(DP_REGISTER_METHOD), NULL,
                                     grpc_deadline_ms((long)d->register_timeout_s * 1000), NULL);
        int r = run_call(call, cq, &rc, stop, userdata) ? to_errno(rc.status) : -EIO;
        if (r == 0)
                log_info("registered %s (socket %s) with the kubelet", d->resource_name,
                         d->socket_name);
        else if (r != -ECANCELED) {
                char *why = grpc_slice_to_c_string(rc.details);
                log_warning("Register on %s failed: status %d: %s", target + 5, rc.status,
                            why && *why ? why : strerror(-r));
                gpr_free(why);
        }
        grpc_call_unref(call);
        grpc_channel_destroy(ch);
        grpc_completion_queue_shutdown(cq);
        while (
            grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
            GRPC_QUEUE_SHUTDOWN)
                ;
        grpc_completion_queue_destroy(cq);
        grpc_metadata_array_destroy(&rc.initial);
        grpc_metadata_array_destroy(&rc.trailing);
        grpc_byte_buffer_destroy(rc.request);
        if (rc.answer)
                grpc_byte_buffer_destroy(rc.answer);
        grpc_slice_unref(rc.details);
        return r;
}
