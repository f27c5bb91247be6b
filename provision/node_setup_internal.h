/* The pieces of node setup that unit tests drive without a real node.
 *
 * node_setup.c talks to a node only through struct node_io, so the same
 * per-node logic runs over libssh in production and against a recording
 * fake in tests/unit/test_node_setup.c (command generation, idempotency:
 * a second run on an unchanged node issues no write). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/proc.h"
#include "provision/base/config.h"
#include "provision/base/context.h"
#include "provision/node_setup.h"

struct node_io {
        void *userdata;
        int (*run)(void *u, char *const *argv, struct proc_result *ret);
        int (*run_script)(void *u, const char *script, struct proc_result *ret);
        int (*upload_data)(void *u, const void *data, size_t size, const char *remote, mode_t mode);
        int (*upload)(void *u, const char *local, const char *remote, mode_t mode);
        /* The token the step runs under, for work a step does on this host
         * on the node's behalf (a module build); NULL: none. */
        const struct cancel *cancel;
};

#define NODE_PROBE_PATH "/usr/local/bin/vgpuenv-probe"
/* Fixed script listing the mesa files present on the node, one per line. */
extern const char node_mesa_paths_script[];

/* FAMILY_DEBIAN / FAMILY_RHEL from /etc/os-release text, FAMILY_AUTO when
 * neither ID nor ID_LIKE names a family we know. */
enum distro_family node_family_from_os_release(const char *text);

/* The CDI spec for the render node, with one read-only mount per path. */
char *node_cdi_spec(char *const *mount_paths);

/* Argv that lists which of pkgs are installed, and the parser for its
 * output: *ret_missing gets the packages not installed. */
char **node_pkg_query_argv(enum distro_family family, char *const *pkgs);
int node_pkg_parse_missing(enum distro_family family, char *const *pkgs, const char *out,
                           char ***ret_missing);
char **node_pkg_install_argv(enum distro_family family, char *const *pkgs);

/* Turn `vgpuenv-probe --json` output into verdict fields ("ok", "checks"). */
int node_probe_parse(const char *json_text, int exit_code, cJSON *verdict);

/* One step of node setup on one node: fills verdict ("changed", "checks",
 * "ok"); 0, or -errno when the step could not be done (a command failed,
 * ssh was lost). A failed probe is not an error: verdict "ok" says it. */
typedef int (*node_step_fn)(struct run_ctx *ctx, const struct node_io *io, const char *node,
                            enum distro_family family, cJSON *verdict);
struct node_step_def {
        const char *name;     /* "mesa": the plan's step is "mesa NODE" */
        const char *progress; /* its progress line */
        node_step_fn run;
        bool setup_only; /* false: also for `vgpuenv probe` (the probe itself) */
        /* What --dry-run shows under the step (the commands), or NULL for
         * none: a heap string. */
        char *(*detail)(const struct config *c);
        /* Its deadline in seconds; NULL: deadlines.node_command. */
        double (*deadline)(const struct config *c);
};
/* In order; NULL-terminated. */
extern const struct node_step_def node_step_defs[];

int node_step_mesa(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict);
int node_step_module(struct run_ctx *ctx, const struct node_io *io, const char *node,
                     enum distro_family family, cJSON *verdict);
int node_step_udev(struct run_ctx *ctx, const struct node_io *io, const char *node,
                   enum distro_family family, cJSON *verdict);
int node_step_cdi(struct run_ctx *ctx, const struct node_io *io, const char *node,
                  enum distro_family family, cJSON *verdict);
int node_step_probe(struct run_ctx *ctx, const struct node_io *io, const char *node,
                    enum distro_family family, cJSON *verdict);

/* The family /etc/os-release names, else recorded. */
enum distro_family node_detect_family(const struct node_io *io, const char *node,
                                      enum distro_family recorded);
/* The verdict's members ("node", "ok": false, "changed", "checks"). */
void node_verdict_init(cJSON *verdict, const char *name);
/* Setup failed: "error" and "ok": false. */
void node_verdict_error(cJSON *verdict, int r);

/* Every step in a row on one node (unit tests; the plan runs them as
 * steps). family: the family recorded or configured for the node, used when
 * /etc/os-release names none we know (FAMILY_AUTO: then the node is
 * refused). Returns 0 when every step could be done, the probe's verdict
 * in verdict "ok"; -errno (and verdict "error") when one could not. */
int node_setup_one(struct run_ctx *ctx, const struct node_io *io, const char *name,
                   enum distro_family family, bool setup, cJSON *verdict);
