/* CA and serving certificate generation with GnuTLS (see certs.h). */
#include "webhook/certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit)
DEFINE_TRIVIAL_CLEANUP_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit)

#define GT(call)                                                                                   \
        do {                                                                                       \
                int _g = (call);                                                                   \
                if (_g < 0)                                                                        \
                        return log_error_errno(-EINVAL, "certs: %s failed: %s", #call,             \
                                               gnutls_strerror(_g));                               \
        } while (0)

static int new_key(gnutls_x509_privkey_t *k)
{
        /* ECDSA P-256: accepted by the API server's Go TLS stack, and the
         * handshake is far cheaper than RSA's. */
        GT(gnutls_x509_privkey_init(k));
        GT(gnutls_x509_privkey_generate(*k, GNUTLS_PK_ECDSA,
                                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
        return 0;
}

static int set_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn,
                      unsigned days)
{
        unsigned char serial[16];
        time_t now = time(NULL);

        GT(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)));
        serial[0] &= 0x7f; /* positive */
        GT(gnutls_x509_crt_set_version(crt, 3));
        GT(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)));
        /* An hour of slack for clocks that lag the machine that signed. */
        GT(gnutls_x509_crt_set_activation_time(crt, now - 3600));
        GT(gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400));
        GT(gnutls_x509_crt_set_key(crt, key));
        GT(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                         (unsigned)strlen(cn)));
        unsigned char id[64];
        size_t idlen = sizeof(id);
        GT(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &idlen));
        GT(gnutls_x509_crt_set_subject_key_id(crt, id, idlen));
        return 0;
}

static int export_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **crt_pem,
                      char **key_pem)
{
        gnutls_datum_t d = {};
        if (crt_pem) {
                GT(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d));
                *crt_pem = strndup((char *)d.data, d.size);
                gnutls_free(d.data);
                if (!*crt_pem)
                        return -ENOMEM;
        }
        if (key_pem) {
                /* PKCS#8 "PRIVATE KEY": what Go, nginx and GnuTLS all read. */
                GT(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                                     GNUTLS_PKCS_PLAIN, &d));
                *key_pem = strndup((char *)d.data, d.size);
                gnutls_free(d.data);
                if (!*key_pem)
                        return -ENOMEM;
        }
        return 0;
}

static int make_ca(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t *key)
{
        int r = new_key(key);
        if (r < 0)
                return r;
        GT(gnutls_x509_crt_init(crt));
        r = set_common(*crt, *key, "mesa-injector-ca", 3650);
        if (r < 0)
                return r;
        GT(gnutls_x509_crt_set_basic_constraints(*crt, 1, 0));
        GT(gnutls_x509_crt_set_key_usage(*crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
        GT(gnutls_x509_crt_sign2(*crt, *crt, *key, GNUTLS_DIG_SHA256, 0));
        return 0;
}

static int load_ca(const char *dir, gnutls_x509_crt_t *crt, gnutls_x509_privkey_t *key)
{
        _cleanup_free_ char *cp = strdup_printf("%s/ca.crt", dir),
                            *kp = strdup_printf("%s/ca.key", dir);
        _cleanup_free_ char *c = NULL, *k = NULL;
        size_t cl, kl;
        if (!cp || !kp)
                return -ENOMEM;
        if (read_full_file(cp, &c, &cl) < 0 || read_full_file(kp, &k, &kl) < 0)
                return -ENOENT;
        gnutls_datum_t cd = {(unsigned char *)c, (unsigned)cl},
                       kd = {(unsigned char *)k, (unsigned)kl};
        GT(gnutls_x509_crt_init(crt));
        GT(gnutls_x509_privkey_init(key));
        if (gnutls_x509_crt_import(*crt, &cd, GNUTLS_X509_FMT_PEM) < 0 ||
            gnutls_x509_privkey_import2(*key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
                return log_error_errno(
                    -EINVAL, "certs: %s/ca.crt or ca.key exists but cannot be read as PEM", dir);
        return 1;
}

static int make_serving(const struct certs_opts *o, gnutls_x509_crt_t ca,
                        gnutls_x509_privkey_t ca_key, gnutls_x509_crt_t *crt,
                        gnutls_x509_privkey_t *key)
{
        _cleanup_free_ char *n1 = strdup(o->service);
        _cleanup_free_ char *n2 = strdup_printf("%s.%s", o->service, o->namespace);
        _cleanup_free_ char *n3 = strdup_printf("%s.%s.svc", o->service, o->namespace);
        _cleanup_free_ char *n4 =
            strdup_printf("%s.%s.svc.cluster.local", o->service, o->namespace);
        int r;

        if (!n1 || !n2 || !n3 || !n4)
                return -ENOMEM;
        r = new_key(key);
        if (r < 0)
                return r;
        GT(gnutls_x509_crt_init(crt));
        r = set_common(*crt, *key, n3, o->days ? o->days : 365);
        if (r < 0)
                return r;
        const char *names[] = {n1, n2, n3, n4};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                GT(gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_DNSNAME, names[i],
                                                        (unsigned)strlen(names[i]),
                                                        GNUTLS_FSAN_APPEND));
        for (char **ip = o->ips; ip && *ip; ip++) {
                unsigned char a[16];
                unsigned alen;
                if (inet_pton(AF_INET, *ip, a) == 1)
                        alen = 4;
                else if (inet_pton(AF_INET6, *ip, a) == 1)
                        alen = 16;
                else
                        return log_error_errno(
                            -EINVAL, "certs: --ip %s is not an IPv4 or IPv6 address", *ip);
                GT(gnutls_x509_crt_set_subject_alt_name(*crt, GNUTLS_SAN_IPADDRESS, a, alen,
                                                        GNUTLS_FSAN_APPEND));
        }
        GT(gnutls_x509_crt_set_basic_constraints(*crt, 0, -1));
        GT(gnutls_x509_crt_set_key_usage(*crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                                   GNUTLS_KEY_KEY_ENCIPHERMENT));
        GT(gnutls_x509_crt_set_key_purpose_oid(*crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
        unsigned char id[64];
        size_t idlen = sizeof(id);
        GT(gnutls_x509_crt_get_subject_key_id(ca, id, &idlen, NULL));
        GT(gnutls_x509_crt_set_authority_key_id(*crt, id, idlen));
        GT(gnutls_x509_crt_sign2(*crt, ca, ca_key, GNUTLS_DIG_SHA256, 0));
        return 0;
}

static int check_opts(const struct certs_opts *o)
{
        if (isempty(o->service) || isempty(o->namespace))
                return log_error_errno(-EINVAL, "certs: --service and --namespace are required");
        return 0;
}

int certs_generate_mem(const struct certs_opts *o, char **ca_pem, char **crt_pem, char **key_pem)
{
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t ca = NULL, crt = NULL;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t ca_key = NULL, key = NULL;
        int r = check_opts(o);
        if (r >= 0)
                r = make_ca(&ca, &ca_key);
        if (r >= 0)
                r = make_serving(o, ca, ca_key, &crt, &key);
        if (r >= 0)
                r = export_pem(ca, NULL, ca_pem, NULL);
        if (r >= 0)
                r = export_pem(crt, key, crt_pem, key_pem);
        return r;
}

static int write_pem(const char *dir, const char *name, const char *pem, mode_t mode)
{
        _cleanup_free_ char *p = strdup_printf("%s/%s", dir, name);
        if (!p)
                return -ENOMEM;
        int r = write_file_atomic(p, pem, strlen(pem), mode);
        if (r < 0)
                return log_error_errno(r, "certs: cannot write %s: %s", p, strerror(-r));
        return 0;
}

/* A certificate and its key as PEM files in dir, the key first: a watcher
 * that sees the new cert then finds its key. */
static int write_pair(const char *dir, gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
                      const char *crt_name, const char *key_name)
{
        _cleanup_free_ char *crt_pem = NULL, *key_pem = NULL;
        int r = export_pem(crt, key, &crt_pem, &key_pem);
        if (r >= 0)
                r = write_pem(dir, key_name, key_pem, 0600);
        if (r >= 0)
                r = write_pem(dir, crt_name, crt_pem, 0644);
        return r;
}

int certs_generate(const struct certs_opts *o)
{
        _cleanup_(gnutls_x509_crt_deinitp) gnutls_x509_crt_t ca = NULL, crt = NULL;
        _cleanup_(gnutls_x509_privkey_deinitp) gnutls_x509_privkey_t ca_key = NULL, key = NULL;
        int r;

        r = check_opts(o);
        if (r < 0)
                return r;
        if (isempty(o->out_dir))
                return log_error_errno(-EINVAL, "certs: --out DIR is required");
        r = mkdir_p(o->out_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "certs: cannot create %s: %s", o->out_dir, strerror(-r));
        r = load_ca(o->out_dir, &ca, &ca_key);
        if (r == -ENOENT) {
                if (ca)
                        gnutls_x509_crt_deinit(TAKE_PTR(ca));
                if (ca_key)
                        gnutls_x509_privkey_deinit(TAKE_PTR(ca_key));
                r = make_ca(&ca, &ca_key);
                if (r >= 0)
                        r = write_pair(o->out_dir, ca, ca_key, "ca.crt", "ca.key");
        } else if (r > 0)
                log_info("certs: reusing the CA in %s", o->out_dir);
        if (r < 0)
                return r;
        r = make_serving(o, ca, ca_key, &crt, &key);
        if (r >= 0)
                r = write_pair(o->out_dir, crt, key, "tls.crt", "tls.key");
        return r;
}
