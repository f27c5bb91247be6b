/* What the ssh_*.c files share and nobody else sees: the node handle and
 * libssh cleanup helpers. */
#pragma once

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "common/cancel.h"
#include "common/macro.h"

struct ssh_node {
        ssh_session session;
        char *name;
        char *host;
        unsigned port;
        const struct cancel *cancel;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_key, ssh_key_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_session, ssh_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(sftp_session, sftp_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(sftp_attributes, sftp_attributes_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ssh_event, ssh_event_free)

static inline void ssh_string_free_charp(char **p)
{
        if (*p)
                ssh_string_free_char(*p);
}

/* Split "type base64 [comment]" into its first two fields. */
int ssh_split_pub_line(const char *line, char **ret_type, char **ret_b64);
/* SHA256 fingerprint of a key, as ssh-keygen -l prints it. */
char *ssh_key_fingerprint(const ssh_key key);
