/* The table-driven YAML loader declared in yaml_schema.h.
 *
 * libyaml's document API gives us the whole node graph with a start mark per
 * node, so every error can name the exact line and column of the key or
 * value at fault. Aliases are resolved by libyaml into shared nodes; since the
 * walk follows the schema (whose depth is fixed) and never the graph, alias
 * bombs cannot make it expand exponentially. */
#include "common/yaml_schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "common/macro.h"
#include "common/util.h"

struct mark_entry {
        char *key;
        struct schema_mark key_mark, value_mark;
};

struct schema_marks {
        struct mark_entry *v;
        size_t n, cap;
};

struct loader {
        yaml_document_t *doc;
        const char *file;
        struct schema_error *err;
        struct schema_marks *marks; /* NULL when the caller does not want them */
};

void schema_error_done(struct schema_error *e)
{
        if (!e)
                return;
        free(e->file);
        free(e->message);
        *e = (struct schema_error){};
}

char *schema_error_format(const struct schema_error *e)
{
        const char *file = e->file ? e->file : "<input>";
        const char *msg = e->message ? e->message : "unknown error";

        if (e->line == 0)
                return strdup_printf("%s: %s", file, msg);
        return strdup_printf("%s:%u:%u: %s", file, e->line, e->column, msg);
}

static int error_va(struct schema_error *err, const char *file, unsigned line, unsigned column,
                    int code, const char *fmt, va_list ap)
{
        if (!err)
                return code;
        schema_error_done(err);
        char *msg = strdup_vprintf(fmt, ap);
        if (!msg)
                return -ENOMEM;
        err->message = msg;
        err->file = strdup(file ? file : "<input>");
        if (!err->file) {
                schema_error_done(err);
                return -ENOMEM;
        }
        err->line = line;
        err->column = column;
        return code;
}

static int error_code(struct schema_error *err, const char *file, unsigned line, unsigned column,
                      int code, const char *fmt, ...) _printf_(6, 7);
static int error_code(struct schema_error *err, const char *file, unsigned line, unsigned column,
                      int code, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_va(err, file, line, column, code, fmt, ap);
        va_end(ap);
        return r;
}

int schema_error_at(struct schema_error *err, const char *file, struct schema_mark mark,
                    const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_va(err, file, mark.line, mark.column, -EINVAL, fmt, ap);
        va_end(ap);
        return r;
}

/* libyaml marks are 0-based; everything we show is 1-based like editors. */
static int ld_error(struct loader *ld, yaml_mark_t m, const char *fmt, ...) _printf_(3, 4);
static int ld_error(struct loader *ld, yaml_mark_t m, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_va(ld->err, ld->file, (unsigned)m.line + 1, (unsigned)m.column + 1, -EINVAL, fmt,
                     ap);
        va_end(ap);
        return r;
}

static struct schema_mark to_mark(yaml_mark_t m)
{
        return (struct schema_mark){.line = (unsigned)m.line + 1, .column = (unsigned)m.column + 1};
}

static int marks_add(struct loader *ld, const char *key, yaml_mark_t km, yaml_mark_t vm)
{
        struct schema_marks *m = ld->marks;

        if (!m)
                return 0;
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 32;
                struct mark_entry *v = realloc(m->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                m->v = v;
                m->cap = cap;
        }
        m->v[m->n].key = strdup(key);
        if (!m->v[m->n].key)
                return -ENOMEM;
        m->v[m->n].key_mark = to_mark(km);
        m->v[m->n].value_mark = to_mark(vm);
        m->n++;
        return 0;
}

static const struct mark_entry *marks_lookup(const struct schema_marks *m, const char *key)
{
        for (size_t i = 0; m && i < m->n; i++)
                if (streq(m->v[i].key, key))
                        return &m->v[i];
        return NULL;
}

struct schema_mark schema_marks_find(const struct schema_marks *m, const char *dotted_key)
{
        const struct mark_entry *e = marks_lookup(m, dotted_key);

        return e ? e->key_mark : (struct schema_mark){};
}

struct schema_mark schema_marks_find_value(const struct schema_marks *m, const char *dotted_key)
{
        const struct mark_entry *e = marks_lookup(m, dotted_key);

        return e ? e->value_mark : (struct schema_mark){};
}

void schema_marks_free(struct schema_marks *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                free(m->v[i].key);
        free(m->v);
        free(m);
}

/* ---- scalars -------------------------------------------------------------- */

static const char *scalar(const yaml_node_t *n)
{
        return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
        return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML's null: an empty plain value ("key:"), "~" or "null". */
static bool is_null(const yaml_node_t *n)
{
        if (!is_plain(n))
                return false;
        const char *s = scalar(n);
        return !*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL");
}

/* "a mapping", "'abc'", ...: what the user wrote, for "expected X, got Y". */
static void describe(const yaml_node_t *n, char *buf, size_t size)
{
        switch (n->type) {
        case YAML_MAPPING_NODE:
                snprintf(buf, size, "a mapping");
                return;
        case YAML_SEQUENCE_NODE:
                snprintf(buf, size, "a list");
                return;
        case YAML_SCALAR_NODE:
                break;
        default:
                snprintf(buf, size, "nothing");
                return;
        }
        if (is_null(n)) {
                snprintf(buf, size, "an empty value");
                return;
        }
        const char *s = scalar(n);
        int len = (int)strnlen(s, 40);
        const char *ellipsis = s[len] ? "..." : "";
        if (is_plain(n))
                snprintf(buf, size, "'%.*s%s'", len, s, ellipsis);
        else
                snprintf(buf, size, "the quoted string \"%.*s%s\"", len, s, ellipsis);
}

static int type_error(struct loader *ld, const yaml_node_t *n, const char *path,
                      const char *expected)
{
        char got[96];

        describe(n, got, sizeof(got));
        return ld_error(ld, n->start_mark, "%s: expected %s, got %s", path, expected, got);
}

/* Any non-null scalar as a C string; NUL bytes (from "\0" escapes) would
 * silently truncate, so they are refused. */
static int get_string(struct loader *ld, const yaml_node_t *n, const char *path, char **ret)
{
        if (n->type != YAML_SCALAR_NODE || is_null(n))
                return type_error(ld, n, path, "a string");
        if (strlen(scalar(n)) != n->data.scalar.length)
                return ld_error(ld, n->start_mark, "%s: string contains a NUL byte", path);
        *ret = strdup(scalar(n));
        return *ret ? 0 : -ENOMEM;
}

static int get_bool(struct loader *ld, const yaml_node_t *n, const char *path, bool *ret)
{
        static const char *const yes[] = {"true", "yes"}, *const no[] = {"false", "no"};

        if (is_plain(n) && !is_null(n))
                for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                        if (strcasecmp(scalar(n), yes[i]) == 0) {
                                *ret = true;
                                return 0;
                        }
                        if (strcasecmp(scalar(n), no[i]) == 0) {
                                *ret = false;
                                return 0;
                        }
                }
        return type_error(ld, n, path, "a boolean (true, false, yes, no)");
}

/* Decimal only: YAML 1.1 reads 010 as octal and 0x10 as hex, which would
 * surprise anyone writing "memory: 010", so both are refused. */
static int get_uint(struct loader *ld, const yaml_node_t *n, const struct schema_field *f,
                    const char *path, unsigned *ret)
{
        const char *s;
        unsigned long long v;

        if (!is_plain(n) || is_null(n))
                return type_error(ld, n, path, "an integer");
        s = scalar(n);
        bool negative = s[0] == '-' && all_digits(s + 1);
        if (!negative && !all_digits(s))
                return type_error(ld, n, path, "an integer");
        if (!negative && s[0] == '0' && s[1])
                return ld_error(ld, n->start_mark,
                                "%s: expected a decimal integer without leading zeros, got '%s'",
                                path, s);
        errno = 0;
        v = negative ? 0 : strtoull(s, NULL, 10);
        if (negative || errno == ERANGE || v < f->min || v > f->max)
                return ld_error(ld, n->start_mark, "%s must be between %u and %u, got %s", path,
                                f->min, f->max, s);
        *ret = (unsigned)v;
        return 0;
}

static char *join_values(const char *const *values)
{
        size_t n = 1;
        char *r, *p;

        for (size_t i = 0; values && values[i]; i++)
                n += strlen(values[i]) + 2;
        r = p = malloc(n);
        if (!r)
                return NULL;
        *p = 0;
        for (size_t i = 0; values && values[i]; i++) {
                if (i > 0)
                        p = stpcpy(p, ", ");
                p = stpcpy(p, values[i]);
        }
        return r;
}

static int get_enum(struct loader *ld, const yaml_node_t *n, const struct schema_field *f,
                    const char *path, int *ret)
{
        _cleanup_free_ char *valid = join_values(f->enum_values);

        if (!valid)
                return -ENOMEM;
        if (n->type != YAML_SCALAR_NODE || is_null(n)) {
                _cleanup_free_ char *what = strdup_printf("one of %s", valid);
                return what ? type_error(ld, n, path, what) : -ENOMEM;
        }
        for (int i = 0; f->enum_values[i]; i++)
                if (streq(f->enum_values[i], scalar(n))) {
                        *ret = i;
                        return 0;
                }
        return ld_error(ld, n->start_mark, "invalid %s '%s' (valid: %s)", path, scalar(n), valid);
}

/* ---- structure ------------------------------------------------------------ */

static char *child_path(const char *path, const char *key)
{
        return isempty(path) ? strdup(key) : strdup_printf("%s.%s", path, key);
}

/* " in nodes" / "" for the top level, for messages about keys. */
static char *where_suffix(const char *path)
{
        return isempty(path) ? strdup("") : strdup_printf(" in %s", path);
}

static char *valid_keys(const struct schema_field *fields)
{
        size_t n = 0;

        for (const struct schema_field *f = fields; f->key; f++)
                n++;
        const char **keys = calloc(n + 1, sizeof(char *));
        if (!keys)
                return NULL;
        for (size_t i = 0; i < n; i++)
                keys[i] = fields[i].key;
        char *r = join_values(keys);
        free(keys);
        return r;
}

static const struct schema_field *find_field(const struct schema_field *fields, const char *key)
{
        for (const struct schema_field *f = fields; f->key; f++)
                if (streq(f->key, key))
                        return f;
        return NULL;
}

static int load_fields(struct loader *ld, const struct schema_field *fields, void *object,
                       const yaml_node_t *map, const char *path, yaml_mark_t where);

/* Report a repeated key at its second occurrence, naming the first. libyaml
 * itself accepts duplicates and the last would silently win. */
static int check_duplicate(struct loader *ld, const yaml_node_t *map, yaml_node_pair_t *pair,
                           const char *path)
{
        const yaml_node_t *key = yaml_document_get_node(ld->doc, pair->key);

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
                const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
                if (k->type != YAML_SCALAR_NODE || !streq(scalar(k), scalar(key)))
                        continue;
                _cleanup_free_ char *in = where_suffix(path);
                if (!in)
                        return -ENOMEM;
                return ld_error(ld, key->start_mark,
                                "duplicate key '%s'%s (first at line %zu, column %zu)", scalar(key),
                                in, k->start_mark.line + 1, k->start_mark.column + 1);
        }
        return 0;
}

static int key_of(struct loader *ld, const yaml_node_t *k, const char *path)
{
        char got[96];
        _cleanup_free_ char *in = NULL;

        if (k->type == YAML_SCALAR_NODE && !is_null(k))
                return 0;
        in = where_suffix(path);
        if (!in)
                return -ENOMEM;
        describe(k, got, sizeof(got));
        return ld_error(ld, k->start_mark, "expected a key name%s, got %s", in, got);
}

/* The entries of a SCHEMA_STRV sequence or SCHEMA_MAP mapping, appended to
 * *l. */
typedef int (*entries_fn)(struct loader *ld, const yaml_node_t *n, const char *path, char ***l);

/* SCHEMA_STRV and SCHEMA_MAP: null clears the field; else node n must be of
 * type (what, for the message) and its entries replace the field's once all
 * are read. An explicit [] or {} is an empty list, not "unset". */
static int load_string_list(struct loader *ld, const yaml_node_t *n, const char *path, char ***p,
                            yaml_node_type_t type, const char *what, entries_fn read_entries)
{
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (is_null(n)) {
                strv_free(*p);
                *p = NULL;
                return 0;
        }
        if (n->type != type)
                return type_error(ld, n, path, what);
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if ((r = read_entries(ld, n, path, &l)) < 0)
                return r;
        strv_free(*p);
        *p = TAKE_PTR(l);
        return 0;
}

static int sequence_entries(struct loader *ld, const yaml_node_t *n, const char *path, char ***l)
{
        size_t i = 0;
        int r;

        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++, i++) {
                const yaml_node_t *e = yaml_document_get_node(ld->doc, *it);
                _cleanup_free_ char *ep = strdup_printf("%s[%zu]", path, i);
                char *s;
                if (!ep)
                        return -ENOMEM;
                r = get_string(ld, e, ep, &s);
                if (r < 0)
                        return r;
                r = strv_push(l, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int mapping_entries(struct loader *ld, const yaml_node_t *n, const char *path, char ***l)
{
        int r;

        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
             pair++) {
                const yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
                const yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
                _cleanup_free_ char *kp = NULL, *val = NULL;

                r = key_of(ld, k, path);
                if (r < 0)
                        return r;
                r = check_duplicate(ld, n, pair, path);
                if (r < 0)
                        return r;
                /* Entries are stored as "key=value", so '=' in a key would be
                 * read back wrongly. */
                if (strchr(scalar(k), '='))
                        return ld_error(ld, k->start_mark, "%s: key '%s' must not contain '='",
                                        path, scalar(k));
                kp = child_path(path, scalar(k));
                if (!kp)
                        return -ENOMEM;
                r = get_string(ld, v, kp, &val);
                if (r < 0)
                        return r;
                r = marks_add(ld, kp, k->start_mark, v->start_mark);
                if (r < 0)
                        return r;
                r = strv_push(l, strdup_printf("%s=%s", scalar(k), val));
                if (r < 0)
                        return r;
        }
        return 0;
}

static void free_list(const struct schema_field *f, void *p)
{
        void **array = p;
        size_t *count = (size_t *)((char *)p - f->offset + f->count_offset);

        for (size_t i = 0; *array && i < *count; i++)
                schema_free(f->children, (char *)*array + i * f->elem_size);
        free(*array);
        *array = NULL;
        *count = 0;
}

/* p points at the field inside its parent; the count lives at count_offset
 * of the same parent, hence "p - offset + count_offset". */
static int load_list(struct loader *ld, const struct schema_field *f, const yaml_node_t *n,
                     const char *path, void *p)
{
        void **array = p;
        size_t *count = (size_t *)((char *)p - f->offset + f->count_offset);
        size_t k;
        int r;

        if (is_null(n)) {
                free_list(f, p);
                return 0;
        }
        if (n->type != YAML_SEQUENCE_NODE)
                return type_error(ld, n, path, "a list of mappings");
        free_list(f, p);
        k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (k == 0)
                return 0;
        *array = calloc(k, f->elem_size);
        if (!*array)
                return -ENOMEM;
        *count = k;
        /* Every element gets its defaults before any is parsed, so the object
         * stays freeable by schema_free() whatever fails. */
        for (size_t i = 0; f->elem_init && i < k; i++)
                f->elem_init((char *)*array + i * f->elem_size);
        for (size_t i = 0; i < k; i++) {
                const yaml_node_t *e =
                    yaml_document_get_node(ld->doc, n->data.sequence.items.start[i]);
                _cleanup_free_ char *ep = strdup_printf("%s[%zu]", path, i);
                if (!ep)
                        return -ENOMEM;
                if (e->type != YAML_MAPPING_NODE)
                        return type_error(ld, e, ep, "a mapping");
                r = marks_add(ld, ep, e->start_mark, e->start_mark);
                if (r < 0)
                        return r;
                r = load_fields(ld, f->children, (char *)*array + i * f->elem_size, e, ep,
                                e->start_mark);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_value(struct loader *ld, const struct schema_field *f, void *p,
                      const yaml_node_t *n, const char *path, yaml_mark_t key_mark)
{
        int r;

        switch (f->type) {
        case SCHEMA_STRING: {
                char *s;
                r = get_string(ld, n, path, &s);
                if (r < 0)
                        return r;
                free(*(char **)p);
                *(char **)p = s;
                return 0;
        }
        case SCHEMA_BOOL:
                return get_bool(ld, n, path, p);
        case SCHEMA_UINT:
                return get_uint(ld, n, f, path, p);
        case SCHEMA_ENUM:
                return get_enum(ld, n, f, path, p);
        case SCHEMA_STRV:
                return load_string_list(ld, n, path, p, YAML_SEQUENCE_NODE, "a list of strings",
                                        sequence_entries);
        case SCHEMA_MAP:
                return load_string_list(ld, n, path, p, YAML_MAPPING_NODE, "a mapping of strings",
                                        mapping_entries);
        case SCHEMA_SECTION:
                /* "nodes:" with everything below commented out is null: treat
                 * it as an empty section rather than an error. */
                if (is_null(n))
                        return load_fields(ld, f->children, p, NULL, path, key_mark);
                if (n->type != YAML_MAPPING_NODE)
                        return type_error(ld, n, path, "a mapping");
                return load_fields(ld, f->children, p, n, path, key_mark);
        case SCHEMA_LIST:
                return load_list(ld, f, n, path, p);
        }
        return -EINVAL;
}

static bool map_has_key(struct loader *ld, const yaml_node_t *map, const char *key)
{
        if (!map)
                return false;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
                const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
                if (k->type == YAML_SCALAR_NODE && streq(scalar(k), key))
                        return true;
        }
        return false;
}

/* Required keys of fields absent from map (NULL: the whole section is
 * absent), reported at where: the section's key, or the document start. */
static int check_required(struct loader *ld, const struct schema_field *fields,
                          const yaml_node_t *map, const char *path, yaml_mark_t where)
{
        for (const struct schema_field *f = fields; f->key; f++) {
                if (map_has_key(ld, map, f->key))
                        continue;
                if (f->required) {
                        _cleanup_free_ char *in = where_suffix(path);
                        if (!in)
                                return -ENOMEM;
                        return ld_error(ld, where, "missing required key '%s'%s", f->key, in);
                }
                if (f->type == SCHEMA_SECTION) {
                        _cleanup_free_ char *cp = child_path(path, f->key);
                        int r;
                        if (!cp)
                                return -ENOMEM;
                        r = check_required(ld, f->children, NULL, cp, where);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int load_fields(struct loader *ld, const struct schema_field *fields, void *object,
                       const yaml_node_t *map, const char *path, yaml_mark_t where)
{
        int r;

        for (yaml_node_pair_t *pair = map ? map->data.mapping.pairs.start : NULL;
             map && pair < map->data.mapping.pairs.top; pair++) {
                const yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
                const yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
                const struct schema_field *f;
                _cleanup_free_ char *kp = NULL;

                r = key_of(ld, k, path);
                if (r < 0)
                        return r;
                r = check_duplicate(ld, map, pair, path);
                if (r < 0)
                        return r;
                f = find_field(fields, scalar(k));
                if (!f) {
                        _cleanup_free_ char *valid = valid_keys(fields);
                        if (!valid)
                                return -ENOMEM;
                        if (isempty(path))
                                return ld_error(ld, k->start_mark,
                                                "unknown top-level key '%s' (valid: %s)", scalar(k),
                                                valid);
                        return ld_error(ld, k->start_mark, "unknown key '%s' in %s (valid: %s)",
                                        scalar(k), path, valid);
                }
                kp = child_path(path, f->key);
                if (!kp)
                        return -ENOMEM;
                r = marks_add(ld, kp, k->start_mark, v->start_mark);
                if (r < 0)
                        return r;
                r = load_value(ld, f, (char *)object + f->offset, v, kp, k->start_mark);
                if (r < 0)
                        return r;
        }
        return check_required(ld, fields, map, path, where);
}

/* Line and column of a byte offset, for reader errors (bad UTF-8) that
 * libyaml reports without a mark. */
static void offset_to_mark(const char *text, size_t size, size_t offset, yaml_mark_t *m)
{
        *m = (yaml_mark_t){};
        for (size_t i = 0; i < offset && i < size; i++) {
                if (text[i] == '\n') {
                        m->line++;
                        m->column = 0;
                } else
                        m->column++;
        }
}

static int parser_error(struct loader *ld, yaml_parser_t *p, const char *text, size_t size)
{
        yaml_mark_t m = p->problem_mark;
        const char *problem = p->problem ? p->problem : "unknown error";

        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        if (p->error == YAML_READER_ERROR) {
                offset_to_mark(text, size, p->problem_offset, &m);
                return ld_error(ld, m, "YAML syntax error: %s", problem);
        }
        if (p->context)
                return ld_error(ld, m, "YAML syntax error: %s (%s at line %zu, column %zu)",
                                problem, p->context, p->context_mark.line + 1,
                                p->context_mark.column + 1);
        return ld_error(ld, m, "YAML syntax error: %s", problem);
}

static int load_text(struct loader *ld, const struct schema_field *fields, void *object,
                     const char *text, size_t size)
{
        yaml_parser_t parser;
        yaml_document_t doc, extra;
        const yaml_node_t *root;
        yaml_mark_t start = {};
        int r;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
        if (!yaml_parser_load(&parser, &doc)) {
                r = parser_error(ld, &parser, text, size);
                yaml_parser_delete(&parser);
                return r;
        }
        ld->doc = &doc;
        root = yaml_document_get_root_node(&doc);
        if (root && is_null(root))
                root = NULL; /* "---" alone, or "~": no settings at all */
        if (root && root->type != YAML_MAPPING_NODE) {
                char got[96];
                describe(root, got, sizeof(got));
                r = ld_error(ld, root->start_mark, "expected a mapping at the top level, got %s",
                             got);
                goto out;
        }
        if (root)
                start = root->start_mark;
        r = load_fields(ld, fields, object, root, "", start);
        if (r < 0)
                goto out;
        /* A second document would otherwise be ignored without a word. */
        if (!yaml_parser_load(&parser, &extra)) {
                r = parser_error(ld, &parser, text, size);
                goto out;
        }
        if (yaml_document_get_root_node(&extra))
                r = ld_error(ld, yaml_document_get_root_node(&extra)->start_mark,
                             "only one YAML document is allowed");
        yaml_document_delete(&extra);
out:
        ld->doc = NULL;
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return r;
}

int schema_load_with_marks(const struct schema_field *fields, void *object, const char *file,
                           const char *text, struct schema_error *err,
                           struct schema_marks **ret_marks)
{
        _cleanup_free_ char *buf = NULL;
        struct loader ld = {.file = file, .err = err};
        size_t size;
        int r;

        if (err)
                *err = (struct schema_error){};
        if (ret_marks)
                *ret_marks = NULL;
        if (text)
                size = strlen(text);
        else {
                struct stat st;
                /* fopen() succeeds on a directory and reading it fails with a
                 * bare EIO; say what is actually wrong. */
                if (stat(file, &st) == 0 && S_ISDIR(st.st_mode))
                        return error_code(err, file, 0, 0, -EISDIR,
                                          "is a directory, not a YAML file");
                r = read_full_file(file, &buf, &size);
                if (r < 0)
                        return error_code(err, file, 0, 0, r, "cannot read: %s", strerror(-r));
                text = buf;
        }
        if (ret_marks) {
                ld.marks = calloc(1, sizeof(*ld.marks));
                if (!ld.marks)
                        return -ENOMEM;
        }
        r = load_text(&ld, fields, object, text, size);
        if (r == -ENOMEM && err && !err->message)
                error_code(err, file, 0, 0, r, "out of memory");
        if (r < 0) {
                schema_marks_free(ld.marks);
                return r;
        }
        if (ret_marks)
                *ret_marks = ld.marks;
        return 0;
}

int schema_load(const struct schema_field *fields, void *object, const char *file, const char *text,
                struct schema_error *err)
{
        return schema_load_with_marks(fields, object, file, text, err, NULL);
}

void schema_free(const struct schema_field *fields, void *object)
{
        for (const struct schema_field *f = fields; f->key; f++) {
                void *p = (char *)object + f->offset;
                switch (f->type) {
                case SCHEMA_STRING:
                        free(*(char **)p);
                        *(char **)p = NULL;
                        break;
                case SCHEMA_STRV:
                case SCHEMA_MAP:
                        strv_free(*(char ***)p);
                        *(char ***)p = NULL;
                        break;
                case SCHEMA_SECTION:
                        schema_free(f->children, p);
                        break;
                case SCHEMA_LIST:
                        free_list(f, p);
                        break;
                default:
                        break;
                }
        }
}

/* ---- reference ------------------------------------------------------------ */

/* Markdown table cells cannot hold '|' or newlines. */
static void md_cell(FILE *out, const char *s)
{
        for (; s && *s; s++) {
                if (*s == '|')
                        fputs("\\|", out);
                else if (*s == '\n')
                        fputc(' ', out);
                else
                        fputc(*s, out);
        }
}

static const char *type_name(enum schema_type t)
{
        static const char *const names[] = {
            [SCHEMA_STRING] = "string",        [SCHEMA_BOOL] = "boolean",
            [SCHEMA_UINT] = "integer",         [SCHEMA_ENUM] = "enum",
            [SCHEMA_STRV] = "list of strings", [SCHEMA_MAP] = "mapping of strings",
            [SCHEMA_SECTION] = "mapping",      [SCHEMA_LIST] = "list of mappings",
        };

        return (size_t)t < ELEMENTSOF(names) && names[t] ? names[t] : "?";
}

static void print_default(FILE *out, const struct schema_field *f, const void *p)
{
        switch (f->type) {
        case SCHEMA_STRING:
                if (*(char *const *)p) {
                        fputc('`', out);
                        md_cell(out, *(char *const *)p);
                        fputc('`', out);
                } else
                        fputs("(unset)", out);
                break;
        case SCHEMA_BOOL:
                fprintf(out, "`%s`", *(const bool *)p ? "true" : "false");
                break;
        case SCHEMA_UINT:
                fprintf(out, "`%u`", *(const unsigned *)p);
                break;
        case SCHEMA_ENUM: {
                int i = *(const int *)p, n = 0;
                while (f->enum_values[n])
                        n++;
                if (i >= 0 && i < n)
                        fprintf(out, "`%s`", f->enum_values[i]);
                break;
        }
        case SCHEMA_STRV:
        case SCHEMA_MAP: {
                char *const *l = *(char **const *)p;
                if (!l) {
                        fputs("(unset)", out);
                        break;
                }
                fputs("`[", out);
                for (size_t i = 0; l[i]; i++) {
                        if (i)
                                fputs(", ", out);
                        md_cell(out, l[i]);
                }
                fputs("]`", out);
                break;
        }
        case SCHEMA_LIST:
                fputs("`[]`", out);
                break;
        case SCHEMA_SECTION:
                break;
        }
}

static void print_rows(const struct schema_field *fields, bool default_column, const void *defaults,
                       const char *prefix, FILE *out)
{
        for (const struct schema_field *f = fields; f->key; f++) {
                _cleanup_free_ char *key =
                    isempty(prefix) ? strdup(f->key) : strdup_printf("%s.%s", prefix, f->key);
                if (!key)
                        return;
                fprintf(out, "| `%s` | %s | ", key, type_name(f->type));
                if (default_column) {
                        if (defaults)
                                print_default(out, f, (const char *)defaults + f->offset);
                        fputs(" | ", out);
                }
                if (f->type == SCHEMA_UINT)
                        fprintf(out, "%u..%u", f->min, f->max);
                else if (f->type == SCHEMA_ENUM)
                        for (size_t i = 0; f->enum_values[i]; i++)
                                fprintf(out, "%s`%s`", i ? ", " : "", f->enum_values[i]);
                fputs(" | ", out);
                if (f->required)
                        fputs("**Required.** ", out);
                md_cell(out, f->doc);
                fputs(" |\n", out);
                if (f->type == SCHEMA_SECTION)
                        print_rows(f->children, default_column,
                                   defaults ? (const char *)defaults + f->offset : NULL, key, out);
                else if (f->type == SCHEMA_LIST) {
                        _cleanup_free_ char *elem = strdup_printf("%s[]", key);
                        if (!elem)
                                return;
                        /* Elements have no defaults object to read from. */
                        print_rows(f->children, default_column, NULL, elem, out);
                }
        }
}

void schema_print_reference_defaults(const struct schema_field *fields, const void *defaults,
                                     FILE *out)
{
        if (defaults) {
                fputs("| Key | Type | Default | Values | Description |\n", out);
                fputs("|-----|------|---------|--------|-------------|\n", out);
        } else {
                fputs("| Key | Type | Values | Description |\n", out);
                fputs("|-----|------|--------|-------------|\n", out);
        }
        print_rows(fields, defaults != NULL, defaults, "", out);
}

void schema_print_reference(const struct schema_field *fields, FILE *out)
{
        schema_print_reference_defaults(fields, NULL, out);
}
