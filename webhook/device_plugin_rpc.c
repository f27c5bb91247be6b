/* The device plugin's answers (see device_plugin_rpc.h). Allocate adds a
 * DeviceSpec per render node (host path = container path, "rw"), and in cdi
 * mode the node's CDI device name; never an environment variable:
 * virt-launcher counts PCI_RESOURCE_* / MDEV_PCI_RESOURCE_* entries against
 * the domain's host devices (kubevirt d923fdb,
 * pkg/virt-launcher/virtwrap/device/hostdevice/gpu/hostdev.go,
 * validateCreationOfDevicePluginsDevices). */
#include "webhook/device_plugin_rpc.h"

#include <errno.h>
#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "webhook/device_plugin_pb.h"

#define DP_SERVICE "/v1beta1.DevicePlugin/"
static const char *const method_names[] = {
    [DP_UNKNOWN] = "unknown method",      [DP_GET_OPTIONS] = "GetDevicePluginOptions",
    [DP_LIST_AND_WATCH] = "ListAndWatch", [DP_GET_PREFERRED] = "GetPreferredAllocation",
    [DP_ALLOCATE] = "Allocate",           [DP_PRE_START] = "PreStartContainer",
};

enum dp_method dp_method_lookup(const char *path, size_t len)
{
        size_t n = strlen(DP_SERVICE);
        if (len <= n || memcmp(path, DP_SERVICE, n) != 0)
                return DP_UNKNOWN;
        for (size_t m = DP_GET_OPTIONS; m < ELEMENTSOF(method_names); m++)
                if (len - n == strlen(method_names[m]) &&
                    memcmp(path + n, method_names[m], len - n) == 0)
                        return (enum dp_method)m;
        return DP_UNKNOWN;
}

const char *dp_method_name(enum dp_method m)
{
        return m < ELEMENTSOF(method_names) ? method_names[m] : method_names[DP_UNKNOWN];
}

int dp_rpc_check_empty(const uint8_t *req, size_t len, struct grpc_reply *out)
{
        V1beta1__Empty *e = v1beta1__empty__unpack(NULL, len, req);
        if (!e)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "the request is not a v1beta1.Empty message");
        v1beta1__empty__free_unpacked(e, NULL);
        out->status = GRPC_STATUS_OK;
        return 0;
}

static int get_options(const uint8_t *req, size_t len, struct grpc_reply *out)
{
        int r = dp_rpc_check_empty(req, len, out);
        if (r < 0 || out->status != GRPC_STATUS_OK)
                return r;
        V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        o.pre_start_required = DP_PRE_START_REQUIRED;
        o.get_preferred_allocation_available = DP_PREFERRED_ALLOCATION;
        return grpc_reply_pack(&o.base, out);
}

const struct dp_node *dp_known_id(const struct dp_rpc *rpc, const char *id, struct grpc_reply *out,
                                  int *r)
{
        const struct dp_node *n = dp_inventory_find(rpc->inv, id);
        if (!n)
                *r = grpc_reply_fail(
                    out, GRPC_STATUS_INVALID_ARGUMENT,
                    "unknown device ID '%.64s' (this plugin lists <render node>-<0..%u>)", id,
                    rpc->inv->cfg->shares - 1);
        return n;
}

/* One container's devices: a DeviceSpec (and a CDI name) per render node,
 * each node once however many of its shares the container got. */
static int allocate_container(const struct dp_rpc *rpc, const V1beta1__ContainerAllocateRequest *c,
                              V1beta1__ContainerAllocateResponse *resp, struct arena *a,
                              struct grpc_reply *out)
{
        bool cdi = rpc->config->mode == MODE_CDI;
        int r = 0;
        if (c->n_devices_ids == 0)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "a container request names no device");
        resp->devices = arena_alloc(a, c->n_devices_ids * sizeof(*resp->devices));
        resp->cdi_devices =
            cdi ? arena_alloc(a, c->n_devices_ids * sizeof(*resp->cdi_devices)) : NULL;
        for (size_t i = 0; !a->failed && i < c->n_devices_ids; i++) {
                const struct dp_node *n = dp_known_id(rpc, c->devices_ids[i], out, &r);
                if (!n)
                        return r;
                if (!n->present)
                        return grpc_reply_fail(out, GRPC_STATUS_FAILED_PRECONDITION,
                                               "device %s: render node %s is gone",
                                               c->devices_ids[i], n->host_path);
                bool dup = false;
                for (size_t k = 0; k < resp->n_devices; k++)
                        dup = dup || streq(resp->devices[k]->host_path, n->host_path);
                if (dup)
                        continue;
                V1beta1__DeviceSpec *d = arena_alloc(a, sizeof(*d));
                if (!d)
                        break;
                v1beta1__device_spec__init(d);
                d->host_path = d->container_path = n->host_path;
                d->permissions = "rw";
                resp->devices[resp->n_devices++] = d;
                if (!cdi)
                        continue;
                V1beta1__CDIDevice *cd = arena_alloc(a, sizeof(*cd));
                if (!cd)
                        break;
                v1beta1__cdidevice__init(cd);
                cd->name = arena_printf(a, "%s/%s=%s", rpc->config->cdi.vendor,
                                        rpc->config->cdi.class, n->name);
                resp->cdi_devices[resp->n_cdi_devices++] = cd;
        }
        return a->failed ? -ENOMEM : 0;
}

static int allocate(const struct dp_rpc *rpc, const uint8_t *req, size_t len,
                    struct grpc_reply *out)
{
        V1beta1__AllocateRequest *q = v1beta1__allocate_request__unpack(NULL, len, req);
        if (!q)
                return grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                       "the request is not a v1beta1.AllocateRequest message");
        struct arena a = {};
        V1beta1__AllocateResponse resp = V1BETA1__ALLOCATE_RESPONSE__INIT;
        int r = 0;
        out->status = GRPC_STATUS_OK;
        if (q->n_container_requests == 0)
                r = grpc_reply_fail(out, GRPC_STATUS_INVALID_ARGUMENT,
                                    "the request has no container requests");
        else
                resp.container_responses =
                    arena_alloc(&a, q->n_container_requests * sizeof(*resp.container_responses));
        for (size_t i = 0;
             r >= 0 && out->status == GRPC_STATUS_OK && !a.failed && i < q->n_container_requests;
             i++) {
                V1beta1__ContainerAllocateResponse *c = arena_alloc(&a, sizeof(*c));
                if (!c)
                        break;
                v1beta1__container_allocate_response__init(c);
                resp.container_responses[resp.n_container_responses++] = c;
                r = allocate_container(rpc, q->container_requests[i], c, &a, out);
        }
        if (a.failed)
                r = -ENOMEM;
        if (r >= 0 && out->status == GRPC_STATUS_OK)
                r = grpc_reply_pack(&resp.base, out);
        arena_done(&a);
        v1beta1__allocate_request__free_unpacked(q, NULL);
        return r;
}

static int pre_start(const struct dp_rpc *rpc, const uint8_t *req, size_t len,
                     struct grpc_reply *out)
{
        V1beta1__PreStartContainerRequest *q =
            v1beta1__pre_start_container_request__unpack(NULL, len, req);
        if (!q)
                return grpc_reply_fail(
                    out, GRPC_STATUS_INVALID_ARGUMENT,
                    "the request is not a v1beta1.PreStartContainerRequest message");
        int r = 0;
        out->status = GRPC_STATUS_OK;
        /* Nothing to prepare (the options do not ask for this call), but
         * an answer about devices that are not ours would be a lie. */
        for (size_t i = 0; r >= 0 && out->status == GRPC_STATUS_OK && i < q->n_devices_ids; i++)
                dp_known_id(rpc, q->devices_ids[i], out, &r);
        v1beta1__pre_start_container_request__free_unpacked(q, NULL);
        if (r < 0 || out->status != GRPC_STATUS_OK)
                return r;
        V1beta1__PreStartContainerResponse resp = V1BETA1__PRE_START_CONTAINER_RESPONSE__INIT;
        return grpc_reply_pack(&resp.base, out);
}

int dp_rpc_device_list(const struct dp_inventory *inv, bool none, uint8_t **data, size_t *len)
{
        size_t n = none ? 0 : inv->n_nodes * inv->cfg->shares;
        V1beta1__ListAndWatchResponse resp = V1BETA1__LIST_AND_WATCH_RESPONSE__INIT;
        struct arena a = {};
        struct grpc_reply out = {};
        resp.devices = n ? arena_alloc(&a, n * sizeof(*resp.devices)) : NULL;
        for (size_t i = 0; !none && !a.failed && i < inv->n_nodes; i++)
                for (unsigned k = 0; k < inv->cfg->shares; k++) {
                        V1beta1__Device *d = arena_alloc(&a, sizeof(*d));
                        if (!d)
                                break;
                        v1beta1__device__init(d);
                        d->id = arena_printf(&a, "%s-%u", inv->nodes[i].name, k);
                        d->health = inv->nodes[i].present ? "Healthy" : "Unhealthy";
                        resp.devices[resp.n_devices++] = d;
                }
        int r = a.failed ? -ENOMEM : grpc_reply_pack(&resp.base, &out);
        arena_done(&a);
        *data = TAKE_PTR(out.data);
        *len = out.len;
        return r;
}

int dp_rpc_register_request(const struct injector_device_plugin *d, uint8_t **data, size_t *len)
{
        V1beta1__RegisterRequest q = V1BETA1__REGISTER_REQUEST__INIT;
        V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
        struct grpc_reply out = {};
        o.pre_start_required = DP_PRE_START_REQUIRED;
        o.get_preferred_allocation_available = DP_PREFERRED_ALLOCATION;
        q.version = DP_API_VERSION;
        q.endpoint = d->socket_name;
        q.resource_name = d->resource_name;
        q.options = &o;
        int r = grpc_reply_pack(&q.base, &out);
        *data = TAKE_PTR(out.data);
        *len = out.len;
        return r;
}

int dp_rpc_unary(const struct dp_rpc *rpc, enum dp_method m, const uint8_t *req, size_t len,
                 struct grpc_reply *out)
{
        *out = (struct grpc_reply){};
        switch (m) {
        case DP_GET_OPTIONS:
                return get_options(req, len, out);
        case DP_ALLOCATE:
                return allocate(rpc, req, len, out);
        case DP_GET_PREFERRED:
                return dp_rpc_preferred(rpc, req, len, out);
        case DP_PRE_START:
                return pre_start(rpc, req, len, out);
        default:
                return grpc_reply_fail(out, GRPC_STATUS_UNIMPLEMENTED,
                                       "not a unary method of this plugin");
        }
}
