/* GetPreferredAllocation: which of the available devices a container should
 * get. The kubelet asks (manager.go, callGetPreferredAllocationIfAvailable)
 * because the options announce it, and takes the answer as a hint. Ours:
 * the must-include devices, then shares of the render node(s) they are on,
 * then of the node with the most shares free, so one container's shares sit
 * on as few render nodes as possible (QEMU opens one). */
#include <errno.h>
#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "webhook/device_plugin_pb.h"

struct pick {
        const char *id;
        size_t node; /* index in the inventory */
        bool taken;
};

static bool take(struct pick *p, size_t n, const char *id, char **out, size_t *n_out)
{
        for (size_t i = 0; i < n; i++)
                if (!p[i].taken && streq(p[i].id, id)) {
                        p[i].taken = true;
                        out[(*n_out)++] = (char *)p[i].id;
                        return true;
                }
        return false;
}

/* The node to take the next share from: one already used, else the one
 * with the most shares left; SIZE_MAX when nothing is left. */
static size_t best_node(const struct pick *p, size_t n, size_t n_nodes, const bool *used)
{
        size_t best = SIZE_MAX, best_free = 0;
        for (size_t node = 0; node < n_nodes; node++) {
                size_t free_shares = 0;
                for (size_t i = 0; i < n; i++)
                        free_shares += !p[i].taken && p[i].node == node;
                if (free_shares == 0)
                        continue;
                if (used[node])
                        return node;
                if (free_shares > best_free) {
                        best = node;
                        best_free = free_shares;
                }
        }
        return best;
}

static int prefer_container(const struct dp_rpc *rpc,
                            const V1beta1__ContainerPreferredAllocationRequest *q,
                            V1beta1__ContainerPreferredAllocationResponse *resp, struct arena *a,
                            struct grpc_reply *out)
{
        size_t n = q->n_available_deviceids, n_nodes = rpc->inv->n_nodes;
        int r = 0;
        /* Each ID must be a distinct one of ours: this also bounds the
         * quadratic work below by the inventory, not by the request. */
        if (n > n_nodes * rpc->inv->cfg->shares)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "%zu available devices, but this plugin has %zu", n,
                                       n_nodes * rpc->inv->cfg->shares);
        if (q->allocation_size < 0 || (size_t)q->allocation_size > n ||
            q->n_must_include_deviceids > (size_t)q->allocation_size)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "allocation_size %d does not fit %zu available and %zu "
                                       "must-include devices",
                                       q->allocation_size, n, q->n_must_include_deviceids);
        struct pick *p = arena_alloc(a, n * sizeof(*p));
        bool *used = arena_alloc(a, n_nodes * sizeof(*used));
        resp->deviceids = arena_alloc(a, (size_t)q->allocation_size * sizeof(char *));
        if (a->failed)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct dp_node *node = dp_known_id(rpc, q->available_deviceids[i], out, &r);
                if (!node)
                        return r;
                p[i] = (struct pick){q->available_deviceids[i], (size_t)(node - rpc->inv->nodes)};
        }
        for (size_t i = 0; i < q->n_must_include_deviceids; i++) {
                const char *id = q->must_include_deviceids[i];
                const struct dp_node *node = dp_known_id(rpc, id, out, &r);
                if (!node)
                        return r;
                if (!take(p, n, id, resp->deviceids, &resp->n_deviceids))
                        return grpc_reply_fail(
                            out, GRPC_STATUS_INVALID_ARGUMENT,
                            "must-include device '%.64s' is not available (or twice)", id);
                used[node - rpc->inv->nodes] = true;
        }
        while (resp->n_deviceids < (size_t)q->allocation_size) {
                size_t node = best_node(p, n, n_nodes, used);
                if (node == SIZE_MAX)
                        break; /* duplicates in available: nothing more to give */
                used[node] = true;
                for (size_t i = 0; i < n && resp->n_deviceids < (size_t)q->allocation_size; i++)
                        if (!p[i].taken && p[i].node == node)
                                take(p, n, p[i].id, resp->deviceids, &resp->n_deviceids);
        }
        return 0;
}

int dp_rpc_preferred(const struct dp_rpc *rpc, const uint8_t *req, size_t len,
                     struct grpc_reply *out)
{
        V1beta1__PreferredAllocationRequest *q =
            v1beta1__preferred_allocation_request__unpack(NULL, len, req);
        if (!q)
                return grpc_reply_fail(
                    out, GRPC_STATUS_INVALID_ARGUMENT,
                    "the request is not a v1beta1.PreferredAllocationRequest message");
        struct arena a = {};
        V1beta1__PreferredAllocationResponse resp = V1BETA1__PREFERRED_ALLOCATION_RESPONSE__INIT;
        int r = 0;
        out->status = GRPC_STATUS_OK;
        resp.container_responses =
            arena_alloc(&a, q->n_container_requests * sizeof(*resp.container_responses));
        for (size_t i = 0;
             r >= 0 && !a.failed && out->status == GRPC_STATUS_OK && i < q->n_container_requests;
             i++) {
                V1beta1__ContainerPreferredAllocationResponse *c = arena_alloc(&a, sizeof(*c));
                if (!c)
                        break;
                v1beta1__container_preferred_allocation_response__init(c);
                resp.container_responses[resp.n_container_responses++] = c;
                r = prefer_container(rpc, q->container_requests[i], c, &a, out);
        }
        if (a.failed)
                r = -ENOMEM;
        if (r >= 0 && out->status == GRPC_STATUS_OK)
                r = grpc_reply_pack(&resp.base, out);
        arena_done(&a);
        v1beta1__preferred_allocation_request__free_unpacked(q, NULL);
        return r;
}
