/* The serving certificate and key, re-read when their files change.
 *
 * New TLS handshakes ask the store for the current pair through GnuTLS's
 * certificate-retrieve callback, so a rotation takes effect for the next
 * handshake while established connections carry on. A pair is swapped in
 * only when both files parse and the key matches the certificate, so a
 * rotation caught halfway (new cert, old key) keeps serving the old pair
 * until the key arrives. */
#pragma once

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>

struct tls_store;

/* Loads the pair once (failure is fatal at startup). */
int tls_store_new(const char *cert_file, const char *key_file, unsigned poll_ms,
                  struct tls_store **ret);
/* Starts the thread that polls the files. */
int tls_store_start(struct tls_store *s);
void tls_store_free(struct tls_store *s);

/* Checks the files now; returns 1 when a new pair was installed, 0 when
 * nothing changed, negative errno when the new files are unusable. */
int tls_store_check(struct tls_store *s);
unsigned tls_store_generation(struct tls_store *s);

/* For MHD_OPTION_HTTPS_CERT_CALLBACK. GnuTLS gives the callback no user
 * pointer, so it serves the store registered here (one per process). */
void tls_store_set_global(struct tls_store *s);
int tls_store_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                       gnutls_pcert_st **pcert, unsigned int *pcert_length,
                       gnutls_privkey_t *privkey);
