/* Pieces of providers/kcli.c that unit tests check directly: the kcli
 * parameter file, the kcli command line and the key-exchange command. */
#pragma once

#include "provision/base/config.h"

char *kcli_params_text(const struct config *c);
/* kcli [-C CLIENT] args... */
char **kcli_argv(const struct config *c, const char *const *args);
/* The one argument given to `kcli ssh NODE`: installs pubkey for root and
 * prints the node's ed25519 host key. */
char *kcli_bootstrap_command(const char *pubkey);
