/* `mesa-injector certs`: a CA and a serving certificate for the webhook,
 * made with GnuTLS. The serving certificate names <svc>, <svc>.<ns>,
 * <svc>.<ns>.svc (and .cluster.local) plus any IPs for URL mode. An
 * existing ca.crt/ca.key in the output directory is reused, so running it
 * again rotates the serving pair without changing the caBundle. */
#pragma once

#include <stddef.h>

struct certs_opts {
        const char *service, *namespace, *out_dir;
        char **ips;
        unsigned days; /* serving certificate validity */
};

int certs_generate(const struct certs_opts *o);

/* In-memory variant for `manifests` without --certs: PEM strings. */
int certs_generate_mem(const struct certs_opts *o, char **ca_pem, char **crt_pem, char **key_pem);
