/* Serving certificate store with change detection (see tls_store.h). */
#include "webhook/tls_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/thread.h"
#include "common/log.h"
#include "common/util.h"
#include "webhook/metrics.h"

#define MAX_CHAIN 8

struct cert_gen {
        gnutls_pcert_st pcert[MAX_CHAIN];
        unsigned n;
        gnutls_privkey_t key;
        double retired_at;
        struct cert_gen *next;
};

struct file_id {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
        bool valid;
};

struct tls_store {
        pthread_mutex_t lock;
        struct cert_gen *cur;
        struct cert_gen *retired;
        unsigned generation;
        char *cert_file, *key_file;
        struct file_id cert_id, key_id;         /* of the installed pair */
        struct file_id failed_cert, failed_key; /* last unusable state, to log once */
        unsigned poll_ms;
        pthread_t thread;
        bool running;
        pthread_cond_t stop_cond;
        bool stop;
};

static struct tls_store *global_store;

static void gen_free(struct cert_gen *g)
{
        if (!g)
                return;
        for (unsigned i = 0; i < g->n; i++)
                gnutls_pcert_deinit(&g->pcert[i]);
        if (g->key)
                gnutls_privkey_deinit(g->key);
        free(g);
}

static struct file_id file_id_of(const char *path)
{
        struct stat st;
        /* stat() follows symlinks: a Kubernetes Secret volume swaps its
         * "..data" symlink, which changes the inode we see here. */
        if (stat(path, &st) < 0)
                return (struct file_id){};
        return (struct file_id){.dev = st.st_dev,
                                .ino = st.st_ino,
                                .size = st.st_size,
                                .mtime = st.st_mtim,
                                .ctime = st.st_ctim,
                                .valid = true};
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
        return a->valid == b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static int key_id(gnutls_pubkey_t pub, unsigned char out[64], size_t *len)
{
        *len = 64;
        return gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, out, len) < 0 ? -EINVAL : 0;
}

/* Parse both files into a generation; logs nothing (the caller decides
 * whether this is fatal or a transient half-rotation). */
static int gen_load(const char *cert_file, const char *key_file, struct cert_gen **ret,
                    const char **why)
{
        _cleanup_free_ char *cert_pem = NULL, *key_pem = NULL;
        size_t cert_len = 0, key_len = 0;
        gnutls_x509_crt_t *crts = NULL;
        unsigned ncrts = 0;
        int r;

        r = read_full_file(cert_file, &cert_pem, &cert_len);
        if (r < 0) {
                *why = "cannot read certificate file";
                return r;
        }
        r = read_full_file(key_file, &key_pem, &key_len);
        if (r < 0) {
                *why = "cannot read key file";
                return r;
        }
        struct cert_gen *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)cert_len};
        gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)key_len};
        if (gnutls_x509_crt_list_import2(&crts, &ncrts, &cd, GNUTLS_X509_FMT_PEM, 0) < 0 ||
            ncrts == 0) {
                *why = "certificate file holds no PEM certificate";
                r = -EINVAL;
                goto fail;
        }
        for (unsigned i = 0; i < ncrts && i < MAX_CHAIN; i++) {
                if (gnutls_pcert_import_x509(&g->pcert[i], crts[i], 0) < 0) {
                        *why = "cannot import certificate";
                        r = -EINVAL;
                        goto fail;
                }
                g->n++;
        }
        if (gnutls_privkey_init(&g->key) < 0 ||
            gnutls_privkey_import_x509_raw(g->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
                *why = "key file holds no usable PEM private key";
                r = -EINVAL;
                goto fail;
        }
        gnutls_pubkey_t kpub = NULL;
        unsigned char a[64], b[64];
        size_t alen, blen;
        if (gnutls_pubkey_init(&kpub) < 0 || gnutls_pubkey_import_privkey(kpub, g->key, 0, 0) < 0 ||
            key_id(kpub, a, &alen) < 0 || key_id(g->pcert[0].pubkey, b, &blen) < 0 ||
            alen != blen || memcmp(a, b, alen) != 0) {
                if (kpub)
                        gnutls_pubkey_deinit(kpub);
                *why = "key does not match the certificate";
                r = -EINVAL;
                goto fail;
        }
        gnutls_pubkey_deinit(kpub);
        for (unsigned i = 0; i < ncrts; i++)
                gnutls_x509_crt_deinit(crts[i]);
        gnutls_free(crts);
        *ret = g;
        return 0;
fail:
        for (unsigned i = 0; i < ncrts; i++)
                gnutls_x509_crt_deinit(crts[i]);
        gnutls_free(crts);
        gen_free(g);
        return r;
}

int tls_store_new(const char *cert_file, const char *key_file, unsigned poll_ms,
                  struct tls_store **ret)
{
        struct tls_store *s = calloc(1, sizeof(*s));
        const char *why = NULL;
        int r;

        if (!s)
                return log_error_errno(-ENOMEM, "out of memory");
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->stop_cond, NULL);
        s->poll_ms = poll_ms;
        s->cert_file = strdup(cert_file);
        s->key_file = strdup(key_file);
        s->cert_id = file_id_of(cert_file);
        s->key_id = file_id_of(key_file);
        r = gen_load(cert_file, key_file, &s->cur, &why);
        if (r < 0) {
                tls_store_free(s);
                /* -EBADMSG, not -EINVAL: the caller maps -EINVAL to "bad usage". */
                return log_error_errno(r == -EINVAL ? -EBADMSG : r, "TLS: %s (%s, %s)",
                                       why ? why : "cannot load", cert_file, key_file);
        }
        s->generation = 1;
        *ret = s;
        return 0;
}

int tls_store_check(struct tls_store *s)
{
        struct file_id c = file_id_of(s->cert_file), k = file_id_of(s->key_file);
        struct cert_gen *g = NULL;
        const char *why = NULL;
        int r;

        if (file_id_eq(&c, &s->cert_id) && file_id_eq(&k, &s->key_id))
                return 0;
        r = gen_load(s->cert_file, s->key_file, &g, &why);
        if (r < 0) {
                /* Usually a rotation in progress: keep serving the old pair and
                 * look again next time; say so once per state. */
                if (!file_id_eq(&c, &s->failed_cert) || !file_id_eq(&k, &s->failed_key)) {
                        log_warning(
                            "TLS: not reloading yet: %s; still serving the previous certificate",
                            why ? why : "cannot load");
                        metrics_cert_reload(0);
                        s->failed_cert = c;
                        s->failed_key = k;
                }
                return r;
        }
        /* The files may have changed again while we read them: if so the
         * next poll picks that up, as the ids recorded are the old ones. */
        double now = now_seconds();
        pthread_mutex_lock(&s->lock);
        struct cert_gen *old = s->cur;
        s->cur = g;
        s->generation++;
        old->retired_at = now;
        old->next = s->retired;
        s->retired = old;
        /* GnuTLS keeps pointers to the pair for the session; sessions that
         * picked an old pair are long closed after ten minutes. */
        for (struct cert_gen **pp = &s->retired->next; *pp;) {
                if (now - (*pp)->retired_at > 600) {
                        struct cert_gen *dead = *pp;
                        *pp = dead->next;
                        gen_free(dead);
                } else
                        pp = &(*pp)->next;
        }
        unsigned gen = s->generation;
        pthread_mutex_unlock(&s->lock);
        s->cert_id = c;
        s->key_id = k;
        metrics_cert_reload(1);
        log_info("TLS: loaded new certificate (generation %u) from %s", gen, s->cert_file);
        return 1;
}

unsigned tls_store_generation(struct tls_store *s)
{
        pthread_mutex_lock(&s->lock);
        unsigned g = s->generation;
        pthread_mutex_unlock(&s->lock);
        return g;
}

static void *poll_thread(void *arg)
{
        struct tls_store *s = arg;

        pthread_mutex_lock(&s->lock);
        while (!s->stop) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += s->poll_ms / 1000;
                ts.tv_nsec += (long)(s->poll_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->stop_cond, &s->lock, &ts);
                if (s->stop)
                        break;
                pthread_mutex_unlock(&s->lock);
                (void)tls_store_check(s);
                pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int tls_store_start(struct tls_store *s)
{
        int r = pthread_create(&s->thread, NULL, poll_thread, s);
        if (r != 0)
                return log_error_errno(-r, "TLS: cannot start the certificate watcher");
        s->running = true;
        return 0;
}

void tls_store_free(struct tls_store *s)
{
        if (!s)
                return;
        if (s->running)
                thread_stop(s->thread, &s->lock, &s->stop_cond, &s->stop);
        if (global_store == s)
                global_store = NULL;
        gen_free(s->cur);
        while (s->retired) {
                struct cert_gen *n = s->retired->next;
                gen_free(s->retired);
                s->retired = n;
        }
        free(s->cert_file);
        free(s->key_file);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->stop_cond);
        free(s);
}

void tls_store_set_global(struct tls_store *s)
{
        global_store = s;
}

int tls_store_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                       gnutls_pcert_st **pcert, unsigned int *pcert_length,
                       gnutls_privkey_t *privkey)
{
        (void)session;
        (void)req_ca_dn;
        (void)nreqs;
        (void)pk_algos;
        (void)pk_algos_length;
        struct tls_store *s = global_store;
        if (!s)
                return -1;
        pthread_mutex_lock(&s->lock);
        *pcert = s->cur->pcert;
        *pcert_length = s->cur->n;
        *privkey = s->cur->key;
        pthread_mutex_unlock(&s->lock);
        return 0;
}
