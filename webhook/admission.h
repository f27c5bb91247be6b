/* AdmissionReview (admission.k8s.io/v1) in, AdmissionReview out: validates
 * the review, dispatches to the pod or VMI mutation and encodes the JSON
 * patch. No HTTP here, so the fuzzer and unit tests call it directly. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "webhook/config.h"
#include "webhook/metrics.h"

enum admission_kind { ADMIT_PODS, ADMIT_VMIS };

/* What the client takes besides identity (from its Accept-Encoding). */
enum admission_flags { ADMIT_ACCEPT_GZIP = 1 << 0 };

struct admission_result {
        unsigned http_status; /* 200, or 400 for a body that is no usable review */
        char *body;           /* JSON: AdmissionReview, or {"error": "..."} for 4xx */
        size_t body_len;
        /* "gzip" when body is the gzip of the JSON, else NULL. */
        const char *content_encoding;
        enum metric_outcome outcome; /* for metrics */
        unsigned patch_ops;
        /* for the log line (may be NULL) */
        char *uid, *kind, *namespace, *name, *reason;
};
void admission_result_done(struct admission_result *r);

/* Installs cJSON's allocation hooks (the per-thread parse arena). Call once
 * at startup, before any thread that may use cJSON is started; without it
 * requests are parsed on plain malloc. 0 or -errno. */
int admission_init(void);

/* Whether JSON text holds a string with a NUL character: a \u0000 escape
 * (its backslash not itself escaped) or a raw NUL byte. cJSON decodes both
 * into its NUL-terminated strings, which keep no length. */
bool json_text_has_nul(const char *text, size_t len);

/* Never fails except on out-of-memory (-ENOMEM). */
int admission_handle(const struct injector_config *c, enum admission_kind kind, const char *body,
                     size_t size, unsigned flags, struct admission_result *out);

/* Standard base64 (RFC 4648, with padding). */
char *base64_encode(const void *data, size_t size);
/* JSON error body {"error": msg}. */
char *json_error_body(const char *msg);
