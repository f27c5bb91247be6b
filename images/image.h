/* Node disk images: a base image (built locally or given as a qcow2 path)
 * and its customization with mesa, keys and boot settings, cached by content.
 *
 * image_prepare() is what `up` calls: it returns a customized image, building
 * the base and launching the libguestfs appliance only when the cache has no
 * entry for these exact inputs. */
#pragma once

#include <stdbool.h>

#include "provision/base/accel.h"
#include "provision/base/context.h"

struct node_image {
        char *disk;   /* customized qcow2 (backed by the base) */
        char *kernel; /* for direct kernel boot; NULL: boot from disk */
        char *initrd;
        char *root_arg;     /* kernel command line root=... */
        char *host_key_pub; /* pinned sshd host key, "ssh-ed25519 AAAA..." */
        char *identity;     /* private key that logs in */
        int family;         /* enum distro_family */
        char *key;          /* cache key (hex) */
        bool cached;        /* true when no appliance was launched */
};

void node_image_done(struct node_image *img);

struct plan;
/* Add the image steps to a plan: "base-image" (built with mmdebstrap and
 * one appliance launch, or skipped for a qcow2 path) and "node-image" (the
 * customization, one appliance launch); both read the cache first and
 * launch nothing on a hit. *accel is the KVM verdict a step before them
 * fills; *img is filled when they ran. Finished cache entries stay when a
 * later step fails (they are content-addressed and reused); half-made ones
 * are never used and are swept by the next run. */
int image_plan(struct plan *p, struct run_ctx *ctx, const enum accel_verdict *accel,
               struct node_image *img);

/* The base image's cache directory for the config (built or not). */
char *image_base_dir(struct run_ctx *ctx);

/* Remove <cache>/base/ and <cache>/images/ entries "*.tmp-PID" whose
 * process is gone (a killed or interrupted run's). */
void image_cache_sweep(struct run_ctx *ctx);

/* The user's ssh key (config ssh.key or one generated in the cache). */
int image_user_identity(struct run_ctx *ctx, char **ret_path, char **ret_pub);

/* Cached SHA-256 of a file, keyed by path+size+mtime+inode so an unchanged
 * multi-GB base image is hashed once. */
int image_file_digest(struct run_ctx *ctx, const char *path, char out[65]);

/* Virtual size in bytes of a qcow2 image, from its header (an overlay must
 * be at least this large or the guest's file system exceeds its disk). */
int image_qcow2_virtual_size(const char *path, unsigned long long *ret);

/* ---- the libguestfs appliance (guestfs_handle.c) ------------------------ */

struct guestfs_h;
typedef struct guestfs_h guestfs_h;
struct appliance;
struct step_run;
struct cancel;

/* A handle with this host's settings and the watchdog that stops the
 * appliance when the token of the launch or call under way fires. */
int appliance_open(struct step_run *sr, enum accel_verdict accel, struct appliance **ret);
void appliance_close(struct appliance *a);
guestfs_h *appliance_handle(struct appliance *a);
const char *appliance_error(struct appliance *a);
/* Launch within deadlines.appliance_launch; -ETIMEDOUT / -ECANCELED when
 * the watchdog stopped it. */
int appliance_launch(struct appliance *a);
/* Bracket a long call: its own deadline (seconds) inside the step's. end
 * returns the token's error when it fired, else r. */
void appliance_begin(struct appliance *a, struct cancel *call, double seconds, const char *what);
int appliance_end(struct appliance *a, struct cancel *call, int r);
