/* mesa-injector's HTTPS server: libmicrohttpd with GnuTLS (TLS 1.2+ only),
 * routes /mutate-pods, /mutate-vmis, /healthz, /readyz, /metrics; body,
 * connection and time limits; certificate reload; graceful SIGTERM. */
#pragma once

#include <stdbool.h>

#include "webhook/config.h"

struct server_opts {
        const char *listen; /* "ADDR:PORT", "[V6]:PORT" */
        const char *cert_file, *key_file;
        const struct injector_config *config;
};

/* Runs until SIGTERM or SIGINT, then stops accepting, lets in-flight
 * requests finish (limits.shutdownGraceSeconds) and returns 0. */
int server_run(const struct server_opts *o);

/* Whether an Accept-Encoding header value admits gzip (RFC 9110 12.5.3:
 * "gzip", "x-gzip" or "*" with a non-zero q). */
bool accepts_gzip(const char *accept_encoding);
