/* AdmissionReview handling for mesa-injector (see admission.h). */
#include "webhook/admission.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/util.h"
#include "webhook/patch.h"

static const char b64_tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/* Two output characters per 12 input bits: half the lookups of the plain
 * table; the patch is the bulk of every response. Filled once. */
static char b64_pairs[4096][2];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_init(void)
{
        for (unsigned v = 0; v < 4096; v++) {
                b64_pairs[v][0] = b64_tbl[v >> 6];
                b64_pairs[v][1] = b64_tbl[v & 63];
        }
}

/* Writes 4*ceil(size/3) characters and a NUL at out. */
static void base64_into(char *out, const void *data, size_t size)
{
        const unsigned char *in = data;
        char *o = out;
        size_t i = 0;

        pthread_once(&b64_once, b64_init);
        for (; i + 2 < size; i += 3, o += 4) {
                unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
                memcpy(o, b64_pairs[v >> 12], 2);
                memcpy(o + 2, b64_pairs[v & 4095], 2);
        }
        if (i < size) {
                unsigned v = (unsigned)in[i] << 16 | (i + 1 < size ? (unsigned)in[i + 1] << 8 : 0);
                *o++ = b64_tbl[v >> 18];
                *o++ = b64_tbl[(v >> 12) & 63];
                *o++ = i + 1 < size ? b64_tbl[(v >> 6) & 63] : '=';
                *o++ = '=';
        }
        *o = '\0';
}

char *base64_encode(const void *data, size_t size)
{
        char *out = malloc(4 * ((size + 2) / 3) + 1);
        if (out)
                base64_into(out, data, size);
        return out;
}

/* The request's cJSON tree comes from a per-thread bump allocator: parsing
 * a pod is a thousand small allocations, and malloc/free were a third of
 * the handler's instructions. Only the parse and the final delete run with
 * the arena active; everything else cJSON allocates (prints, new objects)
 * uses malloc as usual, so no arena pointer can reach free(). Off under
 * AddressSanitizer, whose checks need real allocations. */
#if defined(__SANITIZE_ADDRESS__)
#define USE_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USE_ARENA 0
#endif
#endif
#ifndef USE_ARENA
#define USE_ARENA 1
#endif

#define ARENA_SIZE (256u * 1024u) /* a virt-launcher pod takes about 60 KiB */

struct arena {
        char *base;
        size_t used;
        bool overflowed; /* some node came from malloc: the tree must be walked */
};
static _Thread_local struct arena *active_arena;
/* Set once by admission_init(), before any other thread exists, and only
 * read afterwards: whether the hooks and the key are in place. */
static pthread_key_t arena_key;
static bool arena_ready;

static void *arena_malloc(size_t n)
{
        struct arena *a = active_arena;
        size_t need = (n + 15) & ~(size_t)15;
        if (a && need <= ARENA_SIZE - a->used) {
                void *p = a->base + a->used;
                a->used += need;
                return p;
        }
        if (a)
                a->overflowed = true;
        return malloc(n); /* overflow: bodies up to 3 MiB still parse */
}

static void arena_free(void *p)
{
        struct arena *a = active_arena;
        if (a && (char *)p >= a->base && (char *)p < a->base + ARENA_SIZE)
                return;
        free(p);
}

static void arena_destroy(void *p)
{
        struct arena *a = p;
        free(a->base);
        free(a);
}

/* cJSON's hooks are one process-wide struct that cJSON_InitHooks() writes
 * field by field and every cJSON call reads without a lock: set while
 * another thread parses or prints, that thread may allocate with one hook
 * and free with another. Hence once, at startup, before the first thread;
 * installed in every build (under ASan too, where arena_malloc falls
 * through to malloc), so the order of startup does not depend on it. */
int admission_init(void)
{
        if (arena_ready)
                return 0;
        int r = pthread_key_create(&arena_key, arena_destroy);
        if (r != 0)
                return -r;
        cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = arena_malloc, .free_fn = arena_free});
        arena_ready = true;
        return 0;
}

/* The calling thread's arena, emptied; NULL to go without (also when
 * admission_init() was not called: cJSON then runs on plain malloc). */
static struct arena *arena_begin(void)
{
        if (!USE_ARENA || !arena_ready)
                return NULL;
        struct arena *a = pthread_getspecific(arena_key);
        if (!a) {
                a = calloc(1, sizeof(*a));
                if (!a || !(a->base = malloc(ARENA_SIZE)) ||
                    pthread_setspecific(arena_key, a) != 0) {
                        if (a)
                                free(a->base);
                        free(a);
                        return NULL;
                }
        }
        a->used = 0;
        a->overflowed = false;
        return a;
}

/* In valid JSON a backslash occurs only inside strings, and in a run of
 * them each pair is one escaped backslash: an odd run escapes what follows,
 * so "u0000" after an odd run is a NUL and after an even one is text. */
bool json_text_has_nul(const char *text, size_t len)
{
        const char *end = text + len;
        if (memchr(text, '\0', len))
                return true;
        for (const char *p = memchr(text, '\\', len); p; p = memchr(p, '\\', (size_t)(end - p))) {
                size_t run = 0;
                while (p < end && *p == '\\') {
                        run++;
                        p++;
                }
                if ((run & 1) && end - p >= 5 && memcmp(p, "u0000", 5) == 0)
                        return true;
        }
        return false;
}

char *json_error_body(const char *msg)
{
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        cJSON_AddStringToObject(o, "error", msg);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return s;
}

void admission_result_done(struct admission_result *r)
{
        FREE_ALL(r->body, r->uid, r->kind, r->namespace, r->name, r->reason);
        *r = (struct admission_result){};
}

static const char *str_at(const cJSON *o, const char *key)
{
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

static int bad_request(struct admission_result *out, const char *msg)
{
        out->http_status = 400;
        out->outcome = OUTCOME_BAD_REQUEST;
        free(out->reason);
        out->reason = strdup(msg);
        out->body = json_error_body(msg);
        return out->body && out->reason ? 0 : -ENOMEM;
}

/* A review response. allowed=false carries status {code, message}; allowed
 * requests that were not mutated for a reason worth knowing carry it as a
 * warning, which kubectl and the API server's audit log show. */
/* The patched answer, written directly: its base64 patch runs to tens of
 * kilobytes and cJSON would scan it twice for characters to escape. */
static const char patched_head[] =
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
    "\"response\":{\"uid\":";
static const char patched_mid[] = ",\"allowed\":true,\"patchType\":\"JSONPatch\",\"patch\":\"";
static const char patched_tail[] = "\"}}";

static unsigned char *put_le16(unsigned char *o, unsigned v)
{
        *o++ = v & 0xff;
        *o++ = (v >> 8) & 0xff;
        return o;
}

static unsigned char *put_le32(unsigned char *o, unsigned long v)
{
        o = put_le16(o, v & 0xffff);
        return put_le16(o, (v >> 16) & 0xffff);
}

/* The header of one stored deflate block of n bytes (RFC 1951 3.2.4): the
 * block header padded to a byte, LEN and its complement; the n bytes follow.
 * The stream is byte-aligned before it (a gzip header, or the cached
 * stream's sync flush). */
static unsigned char *put_stored_header(unsigned char *o, bool final, size_t n)
{
        *o++ = final ? 1 : 0;
        o = put_le16(o, (unsigned)n);
        return put_le16(o, (unsigned)~n & 0xffff);
}

/* The answer up to its base64 patch: head, the uid as JSON, mid. */
static void *put_answer_head(void *o, const char *uid_json, size_t ulen)
{
        o = mempcpy(o, patched_head, sizeof(patched_head) - 1);
        o = mempcpy(o, uid_json, ulen);
        return mempcpy(o, patched_mid, sizeof(patched_mid) - 1);
}

/* The same answer as gzip (RFC 1952) without compressing anything per
 * request: the head with this request's uid as a stored block, the cached
 * deflate stream of the patch's base64, the tail as a final stored block;
 * the CRC-32 is combined from the parts. The API server's Go client asks
 * for gzip, and the answer shrinks about tenfold, which is most of what
 * TLS and the socket spend on it. Returns 1 when the cache has no
 * compressed form (the caller answers uncompressed). */
static int patched_response_gzip(struct admission_result *out, const char *uid_json,
                                 const struct patch *p)
{
        const struct deflated_base64 *z = patch_base64_deflated(p);
        if (!z)
                return 1;
        size_t ulen = strlen(uid_json);
        size_t head_len = sizeof(patched_head) - 1 + ulen + sizeof(patched_mid) - 1;
        size_t tail_len = sizeof(patched_tail) - 1;
        if (head_len > 0xffff)
                return 1; /* an absurd uid: one stored block would not hold it */

        static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
        size_t total = sizeof(gzip_header) + 5 + head_len + z->len + 5 + tail_len + 8;
        unsigned char *body = malloc(total), *o = body;
        if (!body)
                return -ENOMEM;
        o = mempcpy(o, gzip_header, sizeof(gzip_header));
        o = put_stored_header(o, false, head_len);
        unsigned char *head = o;
        o = put_answer_head(o, uid_json, ulen);
        uLong crc = crc32(0L, head, (uInt)head_len);
        o = mempcpy(o, z->data, z->len);
        o = put_stored_header(o, true, tail_len);
        o = mempcpy(o, patched_tail, tail_len);
        crc = crc32_combine_op(crc, z->crc, z->crc_combine_op);
        crc = crc32(crc, (const Bytef *)patched_tail, (uInt)tail_len);
        o = put_le32(o, crc);
        o = put_le32(o, (unsigned long)((head_len + z->plain_len + tail_len) & 0xffffffffu));
        out->http_status = 200;
        out->body = (char *)body;
        out->body_len = (size_t)(o - body);
        out->content_encoding = "gzip";
        return 0;
}

static int patched_response(struct admission_result *out, const char *uid, const struct patch *p,
                            unsigned flags)
{
        size_t cached_len = 0;
        cJSON *u = cJSON_CreateString(uid);
        _cleanup_free_ char *uid_json = u ? cJSON_PrintUnformatted(u) : NULL;
        cJSON_Delete(u);
        if (!uid_json)
                return -ENOMEM;
        if (flags & ADMIT_ACCEPT_GZIP) {
                int r = patched_response_gzip(out, uid_json, p);
                if (r <= 0)
                        return r;
        }
        const char *cached = patch_base64(p, &cached_len);
        const char *json = cached ? NULL : patch_json((struct patch *)p);
        size_t jlen = json ? strlen(json) : 0;
        /* Base64 straight into the body: no copy of the largest part. */
        size_t ulen = strlen(uid_json), blen = cached ? cached_len : 4 * ((jlen + 2) / 3);
        size_t total = sizeof(patched_head) - 1 + ulen + sizeof(patched_mid) - 1 + blen +
                       sizeof(patched_tail) - 1;
        char *body = malloc(total + 1), *o = body;
        if (!body)
                return -ENOMEM;
        o = put_answer_head(o, uid_json, ulen);
        if (cached)
                memcpy(o, cached, blen);
        else
                base64_into(o, json, jlen);
        o += blen;
        o = mempcpy(o, patched_tail, sizeof(patched_tail) - 1);
        *o = '\0';
        out->http_status = 200;
        out->body = body;
        out->body_len = total;
        return 0;
}

static int review_response(struct admission_result *out, const char *uid, bool allowed,
                           unsigned code, const char *message, const char *warning,
                           const struct patch *p, unsigned flags)
{
        if (p && patch_count(p) > 0 && allowed && !warning)
                return patched_response(out, uid, p, flags);
        cJSON *root = cJSON_CreateObject();
        if (!root)
                return -ENOMEM;
        cJSON_AddStringToObject(root, "apiVersion", "admission.k8s.io/v1");
        cJSON_AddStringToObject(root, "kind", "AdmissionReview");
        cJSON *resp = cJSON_AddObjectToObject(root, "response");
        cJSON_AddStringToObject(resp, "uid", uid);
        cJSON_AddBoolToObject(resp, "allowed", allowed);
        if (!allowed) {
                cJSON *st = cJSON_AddObjectToObject(resp, "status");
                cJSON_AddNumberToObject(st, "code", code);
                cJSON_AddStringToObject(st, "message", message);
        }
        if (warning) {
                cJSON *w = cJSON_AddArrayToObject(resp, "warnings");
                cJSON_AddItemToArray(w, cJSON_CreateString(warning));
        }
        out->http_status = 200;
        out->body = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        return out->body ? 0 : -ENOMEM;
}

/* What a helper returns when it has written the answer itself. */
static int answered(int r)
{
        return r < 0 ? r : 1;
}

/* The envelope: an admission.k8s.io/v1 AdmissionReview with a request that
 * has a uid. 0 with *ret_req set, 1 with a 400 answer written, or -errno. */
static int review_request(const cJSON *root, struct admission_result *out, const cJSON **ret_req)
{
        if (!cJSON_IsObject(root))
                return answered(
                    bad_request(out, "the body must be a JSON object (AdmissionReview)"));
        const char *api = str_at(root, "apiVersion"), *k = str_at(root, "kind");
        if (!api || !streq(api, "admission.k8s.io/v1")) {
                _cleanup_free_ char *m =
                    strdup_printf("unsupported apiVersion '%s': only admission.k8s.io/v1 "
                                  "AdmissionReview is accepted",
                                  api ? api : "(missing)");
                return m ? answered(bad_request(out, m)) : -ENOMEM;
        }
        if (!k || !streq(k, "AdmissionReview")) {
                _cleanup_free_ char *m = strdup_printf(
                    "unsupported kind '%s': expected AdmissionReview", k ? k : "(missing)");
                return m ? answered(bad_request(out, m)) : -ENOMEM;
        }
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(root, "request");
        if (!cJSON_IsObject(req))
                return answered(bad_request(out, "AdmissionReview has no request object"));
        const char *uid = str_at(req, "uid");
        if (!uid || !*uid)
                return answered(bad_request(out, "AdmissionReview request.uid is missing"));
        *ret_req = req;
        return 0;
}

/* The request's uid, namespace, name and group/version/kind, for the answer
 * and the admission log. */
static int record_request(const cJSON *req, struct admission_result *out)
{
        out->uid = strdup(str_at(req, "uid"));
        out->namespace = dup_or_null(str_at(req, "namespace"));
        out->name = dup_or_null(str_at(req, "name"));
        const cJSON *rk = cJSON_GetObjectItemCaseSensitive(req, "kind");
        const char *group = str_at(rk, "group"), *version = str_at(rk, "version"),
                   *okind = str_at(rk, "kind");
        out->kind = strdup_printf("%s%s%s/%s", group ? group : "", group && *group ? "/" : "",
                                  version ? version : "?", okind ? okind : "?");
        return out->uid && out->kind ? 0 : -ENOMEM;
}

static bool kind_expected(const cJSON *req, enum admission_kind kind)
{
        const cJSON *rk = cJSON_GetObjectItemCaseSensitive(req, "kind");
        const char *group = str_at(rk, "group"), *version = str_at(rk, "version"),
                   *okind = str_at(rk, "kind");
        if (!group || !version || !streq(version, "v1") || !okind)
                return false;
        return kind == ADMIT_PODS
                   ? !*group && streq(okind, "Pod")
                   : streq(group, "kubevirt.io") && streq(okind, "VirtualMachineInstance");
}

/* Requests allowed without looking at the object: a kind this path was not
 * written for, an operation other than CREATE, a string with a NUL. 1 with
 * the answer written, 0 to go on, or -errno. */
static int allow_unlooked(const cJSON *req, enum admission_kind kind, const char *body, size_t size,
                          struct admission_result *out)
{
        const char *uid = out->uid;
        if (!kind_expected(req, kind)) {
                /* Misrouted by a webhook configuration: allow, never block
                 * objects we were not written for. */
                _cleanup_free_ char *m =
                    strdup_printf("mesa-injector: unexpected kind %s on %s; not mutated", out->kind,
                                  kind == ADMIT_PODS ? "/mutate-pods" : "/mutate-vmis");
                out->outcome = OUTCOME_INVALID;
                out->reason = m ? strdup(m) : NULL;
                return m ? answered(review_response(out, uid, true, 0, NULL, m, NULL, 0)) : -ENOMEM;
        }
        const char *op = str_at(req, "operation");
        if (!op || !streq(op, "CREATE")) {
                out->outcome = OUTCOME_SKIPPED;
                out->reason = strdup_printf("operation %s is not CREATE", op ? op : "(missing)");
                return answered(review_response(out, uid, true, 0, NULL, NULL, NULL, 0));
        }
        /* cJSON (1.7.15) decodes \u0000 into strings that end at their first
         * NUL and keeps no length, so "virt-launcher\u0000x" would compare
         * equal to "virt-launcher", "compute\u0000x" name our container, a
         * volume or path would pass for ours, and printing such a string
         * back would cut it. Past the parse the true length of a string is
         * nowhere to be had; the raw text tells whether any string has a
         * NUL, and then nothing in the object is matched. Kubernetes names,
         * label values and paths cannot hold a NUL (validation, which runs
         * after mutating webhooks, rejects them); a pod with a NUL in some
         * other string (an annotation value, say) also goes unmutated, and
         * the warning says why. Without a NUL, strlen() is each string's
         * true length and every comparison below is exact. */
        if (json_text_has_nul(body, size)) {
                const char *m = "mesa-injector: a string in the object contains a NUL character "
                                "(\\u0000); not mutated";
                out->outcome = OUTCOME_INVALID;
                out->reason = strdup("a string contains a NUL character (\\u0000)");
                return out->reason ? answered(review_response(out, uid, true, 0, NULL, m, NULL, 0))
                                   : -ENOMEM;
        }
        return 0;
}

/* The object through mutate_pod/mutate_vmi, and the answer its decision
 * asks for. */
static int answer_mutation(const struct injector_config *c, enum admission_kind kind,
                           const cJSON *req, unsigned flags, struct admission_result *out)
{
        const char *uid = out->uid;
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(req, "object");
        int r;
        if (isempty(out->name)) {
                /* Pods on CREATE usually have only generateName. */
                const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
                const char *n = str_at(m, "name");
                free(out->name);
                out->name = dup_or_null(!isempty(n) ? n : str_at(m, "generateName"));
        }

        struct patch p = {};
        char *reason = NULL;
        enum mutate_decision d = kind == ADMIT_PODS
                                     ? mutate_pod(c, obj, out->namespace, &p, &reason)
                                     : mutate_vmi(c, obj, out->namespace, &p, &reason);
        out->reason = reason;
        switch (d) {
        case DECISION_PATCHED:
                out->outcome = OUTCOME_PATCHED;
                out->patch_ops = (unsigned)patch_count(&p);
                r = review_response(out, uid, true, 0, NULL, NULL, &p, flags);
                break;
        case DECISION_UNCHANGED:
                out->outcome = OUTCOME_UNCHANGED;
                r = review_response(out, uid, true, 0, NULL, NULL, NULL, 0);
                break;
        case DECISION_SKIPPED:
                out->outcome = OUTCOME_SKIPPED;
                r = review_response(out, uid, true, 0, NULL, NULL, NULL, 0);
                break;
        case DECISION_CONFLICT: {
                _cleanup_free_ char *m =
                    strdup_printf("mesa-injector: %s", reason ? reason : "conflict");
                out->outcome = OUTCOME_CONFLICT;
                if (!m)
                        r = -ENOMEM;
                else if (c->on_conflict == CONFLICT_DENY)
                        r = review_response(out, uid, false, 409, m, NULL, NULL, 0);
                else
                        r = review_response(out, uid, true, 0, NULL, m, NULL, 0);
                break;
        }
        default: {
                _cleanup_free_ char *m = strdup_printf("mesa-injector: %s; not mutated",
                                                       reason ? reason : "invalid object");
                out->outcome = OUTCOME_INVALID;
                r = m ? review_response(out, uid, true, 0, NULL, m, NULL, 0) : -ENOMEM;
                break;
        }
        }
        patch_done(&p);
        return r;
}

int admission_handle(const struct injector_config *c, enum admission_kind kind, const char *body,
                     size_t size, unsigned flags, struct admission_result *out)
{
        *out = (struct admission_result){};
        struct arena *arena = NULL;
        const cJSON *req = NULL;
        cJSON *root = NULL;
        int r;

        /* JSON forbids raw control characters in strings (RFC 8259 7); cJSON
         * takes a raw NUL into the string, where it ends it early. */
        if (memchr(body, '\0', size)) {
                r = bad_request(out, "malformed JSON: a raw NUL byte (control characters in "
                                     "strings must be escaped)");
                goto done;
        }
        arena = arena_begin();
        active_arena = arena;
        root = cJSON_ParseWithLength(body, size);
        active_arena = NULL;

        if (!root) {
                r = bad_request(out, "malformed JSON: the body must be an AdmissionReview object");
                goto done;
        }
        r = review_request(root, out, &req);
        if (r == 0)
                r = record_request(req, out);
        if (r == 0)
                r = allow_unlooked(req, kind, body, size, out);
        if (r == 0)
                r = answer_mutation(c, kind, req, flags, out);
        if (r > 0)
                r = 0;
done:
        /* A tree wholly inside the arena is dropped with it (the next
         * arena_begin() reuses the space); walking it would free nothing. */
        if (!arena || arena->overflowed) {
                active_arena = arena;
                cJSON_Delete(root);
                active_arena = NULL;
        }
        if (r < 0) {
                free(out->body);
                out->body = NULL;
                out->content_encoding = NULL;
                out->http_status = 500;
                out->outcome = OUTCOME_ERROR;
        }
        if (out->body && !out->content_encoding)
                out->body_len = strlen(out->body);
        return r;
}
