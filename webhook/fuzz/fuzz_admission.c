/* libFuzzer target for mesa-injector's request handler: the bytes after the
 * first are an HTTP body handed to admission_handle() on the route the first
 * byte picks. Besides the sanitizers, it checks the handler's promises:
 * every answer is a 200 AdmissionReview echoing the uid or a 4xx JSON
 * error, and a patch decodes to a non-empty JSON array of operations. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "webhook/admission.h"
#include "webhook/config.h"
#include "webhook/tests/gunzip.h"

static struct injector_config config;
static int ready;

static int b64val(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static char *b64decode(const char *s)
{
        size_t n = strlen(s);
        if (n % 4)
                abort();
        char *out = malloc(n / 4 * 3 + 1), *o = out;
        for (size_t i = 0; i < n; i += 4) {
                int v[4];
                for (int k = 0; k < 4; k++)
                        v[k] = s[i + k] == '=' ? 0 : b64val(s[i + k]);
                if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
                        abort();
                unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                             (unsigned)v[3];
                *o++ = (char)(x >> 16);
                if (s[i + 2] != '=')
                        *o++ = (char)(x >> 8);
                if (s[i + 3] != '=')
                        *o++ = (char)x;
        }
        *o = '\0';
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!ready) {
                log_set_level(LOG_ERR);
                if (admission_init() < 0 || injector_config_load(&config, NULL, NULL) < 0)
                        abort();
                ready = 1;
        }
        if (size < 1)
                return 0;
        enum admission_kind kind = data[0] & 1 ? ADMIT_VMIS : ADMIT_PODS;
        unsigned flags = data[0] & 2 ? ADMIT_ACCEPT_GZIP : 0;
        struct admission_result r;
        if (admission_handle(&config, kind, (const char *)data + 1, size - 1, flags, &r) < 0)
                abort(); /* only -ENOMEM may fail, and libFuzzer's malloc does not */

        char *text = r.body;
        if (r.content_encoding) {
                /* Only a patched answer for a client that asked is gzip. */
                if (!flags || strcmp(r.content_encoding, "gzip") != 0 || r.http_status != 200 ||
                    !(text = gunzip_member(r.body, r.body_len, NULL)))
                        abort();
        } else if (strlen(r.body) != r.body_len)
                abort();
        cJSON *body = cJSON_Parse(text);
        if (text != r.body)
                free(text);
        if (!body)
                abort();
        if (r.http_status == 200) {
                cJSON *resp = cJSON_GetObjectItem(body, "response");
                cJSON *uid = cJSON_GetObjectItem(resp, "uid");
                if (!cJSON_IsString(uid) || !r.uid || strcmp(uid->valuestring, r.uid) != 0)
                        abort();
                cJSON *patch = cJSON_GetObjectItem(resp, "patch");
                if (patch) {
                        char *json = b64decode(patch->valuestring);
                        cJSON *ops = cJSON_Parse(json);
                        if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) == 0)
                                abort();
                        cJSON *op;
                        cJSON_ArrayForEach(op, ops)
                        {
                                cJSON *path = cJSON_GetObjectItem(op, "path");
                                if (!cJSON_IsString(path) || path->valuestring[0] != '/')
                                        abort();
                        }
                        cJSON_Delete(ops);
                        free(json);
                }
        } else if (r.http_status != 400 || !cJSON_IsString(cJSON_GetObjectItem(body, "error")))
                abort();
        cJSON_Delete(body);
        admission_result_done(&r);
        return 0;
}
