/* The fake NVIDIA T4 vGPU (module/vgpuenv_t4.c) on the nodes and on the
 * Kind host: built for the kernel, installed, loaded with the display mode
 * of the config's `vgpu:`, and checked the way KubeVirt's MediatedDevices
 * tests read it. Everything runs over struct node_io (the node's ssh, or
 * this host for Kind) through one embedded script, vgpu-node.sh. */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "provision/base/config.h"
#include "provision/base/context.h"
#include "provision/node_setup_internal.h"

struct plan;
struct ssh_node;
struct state;

#define VGPU_MODULE "vgpuenv_t4"
#define VGPU_NODE_SCRIPT "/usr/local/lib/vgpuenv/vgpu-node.sh"
#define VGPU_NODE_WORK "/var/lib/vgpuenv/vgpu"
/* What the types must say (kubevirt tests/mdev_configuration_allocation_test.go). */
#define VGPU_TYPE_1B "nvidia-222"
#define VGPU_TYPE_2B "nvidia-223"

/* Node setup's step on one VM node (the "vgpu" row of node_step_defs):
 * applies config_vgpu_mode() and adds a "vgpu" check to the verdict (FAIL
 * with the reason when the vGPU could not be set up; SKIP for vgpu: none).
 * Returns negative errno only when the node could not be talked to. */
int vgpu_node_step(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict);
/* That step's --dry-run detail (the node script's verbs, the host build; a
 * heap string) and its deadline (the node's commands and the build). */
char *vgpu_node_detail(const struct config *c);
double vgpu_node_deadline(const struct config *c);

/* The Kind provider's host (Kind nodes share its kernel, vgpu_host.c). up:
 * a step "host-vgpu" that builds, loads and checks the module as root with
 * config_vgpu_mode() (none for vgpu: none or host), skipped under
 * VGPUENV_NO_HOST_KERNEL=1 (tests/run.sh sets it); it records the module in
 * the state when this run loaded it, and its undo removes exactly that.
 * down: a step that removes it when the state records it. */
int vgpu_host_plan_up(struct plan *p, struct run_ctx *ctx);
int vgpu_host_plan_down(struct plan *p, struct run_ctx *ctx, const struct state *st);
/* What that step runs (also `vgpuenv vgpu load --host`, st NULL): prints
 * the verdict row. */
int vgpu_host_load(const struct cancel *cancel, struct state *st, enum vgpu_mode mode);

/* A node_io over an ssh connection, or over this host (processes and files
 * here), under cancel (may be NULL). */
void vgpu_ssh_io(struct ssh_node *n, const struct cancel *cancel, struct node_io *ret);
void vgpu_local_io(const struct cancel *cancel, struct node_io *ret);

/* Set up the vGPU on a node or host (mode: dmabuf or region) and fill
 * verdict as vgpu_node_step does; host: a Kind host rather than a VM node.
 * Exposed for `vgpuenv vgpu` and verify-display. Returns 0 when the vGPU is
 * ready, -EIO when it could not be set up (the verdict says why), other
 * negative errno when the node could not be talked to. */
int vgpu_apply(const struct node_io *io, const char *node, enum vgpu_mode mode, bool host,
               cJSON *verdict);

/* Run one verb of the node script (uploading it first when it differs).
 * *ret_out: stdout then stderr. Returns the script's exit code, or negative
 * errno when the node could not be reached. */
int vgpu_node_verb(const struct node_io *io, const char *node, char **ret_out, const char *verb,
                   ...) __attribute__((sentinel));

/* The first parent of ours listed by `check` output, or NULL. */
char *vgpu_first_parent(const char *check_out);

/* Helpers shared with the tests: "key=value" lookup in script output, and the
 * check of `check` output against what KubeVirt's tests read. *ret_detail is
 * the verdict row's text. Returns true when every parent offers both types
 * with the right names and NVIDIA-format descriptions. */
char *vgpu_kv(const char *out, const char *key);
bool vgpu_judge_check(const char *check_out, const char *mode_name, char **ret_detail);

/* The digest of the module's sources (what the node records as installed). */
int vgpu_source_digest(char out[65]);
