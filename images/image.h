/* Node disk images: a base image (built locally or given as a qcow2 path)
 * and its customization with mesa, keys and boot settings, cached by content.
 *
 * image_prepare() is what `up` calls: it returns a customized image, building
 * the base and launching the libguestfs appliance only when the cache has no
 * entry for these exact inputs. */
#pragma once

#include <stdbool.h>

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

/* Base image for image.base "debian-bookworm": cache dir holding disk.qcow2,
 * vmlinuz, initrd.img. Builds with mmdebstrap + one appliance launch. */
int image_build_base(struct run_ctx *ctx, char **ret_dir);

/* Base + customization, from cache when possible. */
int image_prepare(struct run_ctx *ctx, struct node_image *ret);

/* The user's ssh key (config ssh.key or one generated in the cache). */
int image_user_identity(struct run_ctx *ctx, char **ret_path, char **ret_pub);

/* Cached SHA-256 of a file, keyed by path+size+mtime+inode so an unchanged
 * multi-GB base image is hashed once. */
int image_file_digest(struct run_ctx *ctx, const char *path, char out[65]);

/* Open a libguestfs handle set up for this host: TCG when KVM is broken,
 * errors captured rather than printed. Shared by the files of images/. */
struct guestfs_h;
typedef struct guestfs_h guestfs_h;
int image_guestfs_open(struct run_ctx *ctx, guestfs_h **ret);
/* The last libguestfs error of g, for messages. */
const char *image_guestfs_error(guestfs_h *g);

/* Virtual size in bytes of a qcow2 image, from its header (an overlay must
 * be at least this large or the guest's file system exceeds its disk). */
int image_qcow2_virtual_size(const char *path, unsigned long long *ret);
