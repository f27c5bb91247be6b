/* A table-driven YAML loader on top of libyaml.
 *
 * Each program describes its configuration once, as a table of fields with
 * types, ranges and documentation; this module walks the YAML document and
 * fills a C struct. Every error carries file:line:column and the exit code for
 * a bad config is 2. The same tables feed `--help`-style reference output, so
 * the docs and the parser cannot drift apart. Used by vgpuenv's cluster
 * config, mesa-injector's config and the e2e matrix. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum schema_type {
        SCHEMA_STRING,  /* char *            */
        SCHEMA_BOOL,    /* bool              */
        SCHEMA_UINT,    /* unsigned          (min..max) */
        SCHEMA_ENUM,    /* int index into enum_values */
        SCHEMA_STRV,    /* char ** (sequence of scalars, NULL-terminated) */
        SCHEMA_MAP,     /* char ** of "key=value" (mapping of scalars) */
        SCHEMA_SECTION, /* nested struct at offset, fields in children */
        SCHEMA_LIST,    /* sequence of mappings: element array at offset
                         * (void *), element count (size_t) at count_offset,
                         * each element elem_size bytes described by children */
};

struct schema_field {
        const char *key;
        enum schema_type type;
        size_t offset;
        unsigned min, max;                   /* SCHEMA_UINT */
        const char *const *enum_values;      /* SCHEMA_ENUM, NULL-terminated */
        const struct schema_field *children; /* SECTION / LIST, {0}-terminated */
        size_t elem_size;                    /* LIST */
        size_t count_offset;                 /* LIST */
        const char *doc;                     /* one line for the reference */
        bool required;
        /* LIST: sets the defaults of a freshly zeroed element before its
         * mapping is parsed; NULL leaves it zeroed. */
        void (*elem_init)(void *elem);
};

/* Where a value came from, for messages raised after parsing (e.g. "nodes.count
 * is too large for the subnet"). */
struct schema_mark {
        unsigned line, column; /* 1-based; 0 when the key was not present */
};

struct schema_error {
        char *file;
        unsigned line, column;
        char *message;
};

void schema_error_done(struct schema_error *e);
/* "file:line:column: message" */
char *schema_error_format(const struct schema_error *e);

/* Parse file (or, when text != NULL, the text named file) into object, whose
 * fields must already hold the defaults. Strings and vectors already present
 * are freed when overwritten. Returns 0, or -EINVAL with *err filled for a
 * bad document, or another negative errno (-ENOENT...) with *err filled. */
int schema_load(const struct schema_field *fields, void *object, const char *file, const char *text,
                struct schema_error *err);

/* Look up the position of a dotted key ("nodes.count") from the last load;
 * marks are kept per object in a side table owned by the caller. */
struct schema_marks;
int schema_load_with_marks(const struct schema_field *fields, void *object, const char *file,
                           const char *text, struct schema_error *err,
                           struct schema_marks **ret_marks);
struct schema_mark schema_marks_find(const struct schema_marks *m, const char *dotted_key);
/* Position of the value of a dotted key (a list element is "list[0]"). */
struct schema_mark schema_marks_find_value(const struct schema_marks *m, const char *dotted_key);
void schema_marks_free(struct schema_marks *m);
/* Fill *err from a mark found above, for validation after parsing; returns
 * -EINVAL (or -ENOMEM). */
int schema_error_at(struct schema_error *err, const char *file, struct schema_mark mark,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Free every heap member the table describes (strings, vectors, lists). */
void schema_free(const struct schema_field *fields, void *object);

/* Write a Markdown reference table of the fields, dotted keys, with type,
 * range/enum and doc. */
void schema_print_reference(const struct schema_field *fields, FILE *out);
/* The same with a Default column read from an object holding the defaults. */
void schema_print_reference_defaults(const struct schema_field *fields, const void *defaults,
                                     FILE *out);
