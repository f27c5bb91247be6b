/* Unit tests for common/yaml_schema.c: every error class with its exact
 * file:line:column and message, the happy paths of every field type
 * (including SCHEMA_LIST and SCHEMA_MAP), marks, and the reference table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "common/util.h"
#include "common/yaml_schema.h"

struct elem {
        char *name;
        unsigned weight;
        bool on;
};

struct sub {
        unsigned count;
        char *label;
        int mode;
};

struct obj {
        char *name;
        bool flag;
        unsigned num;
        int color;
        char **tags;
        char **env;
        struct sub sub;
        struct elem *items;
        size_t n_items;
};

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const modes[] = {"fast", "slow", NULL};

static void elem_init(void *p)
{
        ((struct elem *)p)->weight = 50;
}

static const struct schema_field elem_fields[] = {
    {"name", SCHEMA_STRING, offsetof(struct elem, name), .doc = "element name", .required = true},
    {"weight", SCHEMA_UINT, offsetof(struct elem, weight), .min = 0, .max = 100, .doc = "weight"},
    {"on", SCHEMA_BOOL, offsetof(struct elem, on), .doc = "switch"},
    {},
};

static const struct schema_field sub_fields[] = {
    {"count", SCHEMA_UINT, offsetof(struct sub, count), .min = 1, .max = 16, .doc = "how many"},
    {"label", SCHEMA_STRING, offsetof(struct sub, label), .doc = "a label | with pipe"},
    {"mode", SCHEMA_ENUM, offsetof(struct sub, mode), .enum_values = modes, .doc = "mode"},
    {},
};

static const struct schema_field fields[] = {
    {"name", SCHEMA_STRING, offsetof(struct obj, name), .doc = "the name"},
    {"flag", SCHEMA_BOOL, offsetof(struct obj, flag), .doc = "a flag"},
    {"num", SCHEMA_UINT, offsetof(struct obj, num), .min = 0, .max = 1000, .doc = "a number"},
    {"color", SCHEMA_ENUM, offsetof(struct obj, color), .enum_values = colors, .doc = "a color"},
    {"tags", SCHEMA_STRV, offsetof(struct obj, tags), .doc = "tags"},
    {"env", SCHEMA_MAP, offsetof(struct obj, env), .doc = "environment"},
    {"sub", SCHEMA_SECTION, offsetof(struct obj, sub), .children = sub_fields, .doc = "a section"},
    {"items", SCHEMA_LIST, offsetof(struct obj, items), .children = elem_fields,
     .elem_size = sizeof(struct elem), .count_offset = offsetof(struct obj, n_items),
     .elem_init = elem_init, .doc = "a list"},
    {},
};

/* A schema with required keys, at the top and inside a section. */
struct req {
        char *id;
        struct sub sub;
};
static const struct schema_field req_sub_fields[] = {
    {"label", SCHEMA_STRING, offsetof(struct sub, label), .required = true, .doc = "x"},
    {"count", SCHEMA_UINT, offsetof(struct sub, count), .min = 0, .max = 9, .doc = "x"},
    {},
};
static const struct schema_field req_fields[] = {
    {"id", SCHEMA_STRING, offsetof(struct req, id), .required = true, .doc = "x"},
    {"sub", SCHEMA_SECTION, offsetof(struct req, sub), .children = req_sub_fields, .doc = "x"},
    {},
};

static void obj_defaults(struct obj *o)
{
        *o = (struct obj){.num = 7, .color = 2, .sub = {.count = 1}};
        o->name = strdup("default-name");
        o->sub.label = strdup("default-label");
        o->tags = NULL;
        assert_non_null(o->name);
        assert_non_null(o->sub.label);
        assert_int_equal(strv_extend(&o->tags, "default-tag"), 0);
}

/* Load text into a defaulted object; returns the error as
 * "file:line:column: message" (caller frees) or NULL on success. */
static char *load(const char *text, struct obj *o, int *ret)
{
        struct schema_error err = {};
        char *msg = NULL;

        obj_defaults(o);
        *ret = schema_load(fields, o, "t.yaml", text, &err);
        if (*ret < 0) {
                assert_non_null(err.message);
                msg = schema_error_format(&err);
        } else
                assert_null(err.message);
        schema_error_done(&err);
        return msg;
}

/* text loads without an error into *o (over its defaults). */
static void load_ok(const char *text, struct obj *o)
{
        int r;
        _cleanup_free_ char *msg = load(text, o, &r);

        if (msg)
                fail_msg("unexpected error: %s", msg);
        assert_int_equal(r, 0);
}

/* Every error case: exact message, -EINVAL, and the object stays freeable. */
static void expect_error(const char *text, const char *expected)
{
        struct obj o;
        int r;
        _cleanup_free_ char *msg = load(text, &o, &r);

        assert_int_equal(r, -EINVAL);
        assert_non_null(msg);
        assert_string_equal(msg, expected);
        schema_free(fields, &o);
}

static void test_happy_all_types(void **state)
{
        (void)state;
        static const char text[] = "name: cluster-a\n"
                                   "flag: yes\n"
                                   "num: 1000\n"
                                   "color: green\n"
                                   "tags: [x, \"y z\"]\n"
                                   "env:\n"
                                   "  A: 1\n"
                                   "  B: \"two words\"\n"
                                   "sub:\n"
                                   "  count: 16\n"
                                   "  label: 'quoted'\n"
                                   "  mode: slow\n"
                                   "items:\n"
                                   "  - name: first\n"
                                   "    on: true\n"
                                   "  - name: second\n"
                                   "    weight: 0\n";
        struct obj o;
        struct schema_error err = {};
        struct schema_marks *marks = NULL;

        obj_defaults(&o);
        assert_int_equal(schema_load_with_marks(fields, &o, "t.yaml", text, &err, &marks), 0);
        assert_string_equal(o.name, "cluster-a");
        assert_true(o.flag);
        assert_int_equal(o.num, 1000);
        assert_int_equal(o.color, 1);
        assert_int_equal(strv_length(o.tags), 2);
        assert_string_equal(o.tags[0], "x");
        assert_string_equal(o.tags[1], "y z");
        assert_int_equal(strv_length(o.env), 2);
        assert_string_equal(o.env[0], "A=1");
        assert_string_equal(o.env[1], "B=two words");
        assert_int_equal(o.sub.count, 16);
        assert_string_equal(o.sub.label, "quoted");
        assert_int_equal(o.sub.mode, 1);
        assert_int_equal(o.n_items, 2);
        assert_string_equal(o.items[0].name, "first");
        assert_int_equal(o.items[0].weight, 50); /* elem_init default */
        assert_true(o.items[0].on);
        assert_string_equal(o.items[1].name, "second");
        assert_int_equal(o.items[1].weight, 0);
        assert_false(o.items[1].on);

        /* Where each key (or, with value, its value) stands; 0:0 unknown. */
        static const struct {
                const char *path;
                bool value;
                unsigned line, column;
        } where[] = {
            {"sub.count", false, 10, 3},
            {"sub.count", true, 10, 10},
            {"items[1].weight", false, 17, 5},
            {"items[1]", false, 16, 5},
            {"env.B", false, 8, 3},
            {"name", false, 1, 1},
            {"sub.mode.nothing", false, 0, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(where); i++) {
                struct schema_mark m = where[i].value
                                           ? schema_marks_find_value(marks, where[i].path)
                                           : schema_marks_find(marks, where[i].path);
                assert_int_equal(m.line, where[i].line);
                assert_int_equal(m.column, where[i].column);
        }

        schema_marks_free(marks);
        schema_error_done(&err);
        schema_free(fields, &o);
        assert_null(o.name);
        assert_null(o.items);
        assert_int_equal(o.n_items, 0);
}

static void test_empty_keeps_defaults(void **state)
{
        (void)state;
        static const char *const texts[] = {"", "# only a comment\n", "---\n", "~\n",
                                            "sub:\n  # count: 3\n"};

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                struct obj o;

                load_ok(texts[i], &o);
                assert_string_equal(o.name, "default-name");
                assert_int_equal(o.num, 7);
                assert_int_equal(o.color, 2);
                assert_int_equal(o.sub.count, 1);
                assert_string_equal(o.sub.label, "default-label");
                assert_string_equal(o.tags[0], "default-tag");
                schema_free(fields, &o);
        }
}

static void test_empty_file_on_disk(void **state)
{
        (void)state;
        char path[] = "/tmp/test-yaml-schema-XXXXXX";
        int fd = mkstemp(path);
        struct obj o;
        struct schema_error err = {};

        assert_true(fd >= 0);
        close(fd);
        obj_defaults(&o);
        assert_int_equal(schema_load(fields, &o, path, NULL, &err), 0);
        assert_string_equal(o.name, "default-name");
        schema_free(fields, &o);
        unlink(path);
}

static void test_missing_file(void **state)
{
        (void)state;
        struct obj o;
        struct schema_error err = {};
        _cleanup_free_ char *msg = NULL;

        obj_defaults(&o);
        assert_int_equal(schema_load(fields, &o, "/nonexistent/x.yaml", NULL, &err), -ENOENT);
        msg = schema_error_format(&err);
        assert_string_equal(msg, "/nonexistent/x.yaml: cannot read: No such file or directory");
        schema_error_done(&err);
        free(msg);

        assert_int_equal(schema_load(fields, &o, "/tmp", NULL, &err), -EISDIR);
        msg = schema_error_format(&err);
        assert_string_equal(msg, "/tmp: is a directory, not a YAML file");
        schema_error_done(&err);
        schema_free(fields, &o);
}

static void test_overwrite_and_clear(void **state)
{
        (void)state;
        struct obj o;

        load_ok("tags: []\nenv: {}\nitems: []\n", &o);
        /* [] is an explicit empty list, distinct from unset. */
        assert_non_null(o.tags);
        assert_int_equal(strv_length(o.tags), 0);
        assert_non_null(o.env);
        assert_int_equal(strv_length(o.env), 0);
        assert_int_equal(o.n_items, 0);
        schema_free(fields, &o);

        load_ok("tags:\nenv:\n", &o);
        assert_null(o.tags);
        assert_null(o.env);
        schema_free(fields, &o);
}

static void test_booleans(void **state)
{
        (void)state;
        static const struct {
                const char *text;
                bool value;
        } cases[] = {{"flag: true", true}, {"flag: yes", true},  {"flag: false", false},
                     {"flag: no", false},  {"flag: True", true}, {"flag: NO", false}};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct obj o;

                load_ok(cases[i].text, &o);
                assert_int_equal(o.flag, cases[i].value);
                schema_free(fields, &o);
        }
}

static void test_aliases(void **state)
{
        (void)state;
        struct obj o;

        load_ok("num: &n 5\nsub: {count: *n}\n", &o);
        assert_int_equal(o.num, 5);
        assert_int_equal(o.sub.count, 5);
        schema_free(fields, &o);
}

static void test_unknown_key(void **state)
{
        (void)state;
        expect_error("name: x\nbogus: 1\n",
                     "t.yaml:2:1: unknown top-level key 'bogus' (valid: name, flag, num, color, "
                     "tags, env, sub, items)");
        expect_error("sub:\n  cnt: 1\n",
                     "t.yaml:2:3: unknown key 'cnt' in sub (valid: count, label, mode)");
        expect_error("items:\n  - name: a\n    bad: 1\n",
                     "t.yaml:3:5: unknown key 'bad' in items[0] (valid: name, weight, on)");
        expect_error("? [a]\n: 1\n", "t.yaml:1:3: expected a key name, got a list");
}

static void test_wrong_type(void **state)
{
        (void)state;
        expect_error("num: abc\n", "t.yaml:1:6: num: expected an integer, got 'abc'");
        expect_error("num: 1.5\n", "t.yaml:1:6: num: expected an integer, got '1.5'");
        expect_error("num: 0x10\n", "t.yaml:1:6: num: expected an integer, got '0x10'");
        expect_error("num: \"5\"\n",
                     "t.yaml:1:6: num: expected an integer, got the quoted string \"5\"");
        expect_error("num:\n", "t.yaml:1:5: num: expected an integer, got an empty value");
        expect_error("num: 010\n",
                     "t.yaml:1:6: num: expected a decimal integer without leading zeros, got "
                     "'010'");
        expect_error("flag: maybe\n",
                     "t.yaml:1:7: flag: expected a boolean (true, false, yes, no), got 'maybe'");
        expect_error("flag: 1\n",
                     "t.yaml:1:7: flag: expected a boolean (true, false, yes, no), got '1'");
        expect_error("name: {a: 1}\n", "t.yaml:1:7: name: expected a string, got a mapping");
        expect_error("name:\n", "t.yaml:1:6: name: expected a string, got an empty value");
        expect_error("tags: abc\n", "t.yaml:1:7: tags: expected a list of strings, got 'abc'");
        expect_error("tags: [a, {b: 1}]\n",
                     "t.yaml:1:11: tags[1]: expected a string, got a mapping");
        expect_error("env: [a]\n", "t.yaml:1:6: env: expected a mapping of strings, got a list");
        expect_error("env:\n  A: [1]\n", "t.yaml:2:6: env.A: expected a string, got a list");
        expect_error("env:\n  A=B: 1\n", "t.yaml:2:3: env: key 'A=B' must not contain '='");
        expect_error("sub: [1]\n", "t.yaml:1:6: sub: expected a mapping, got a list");
        expect_error("sub: 3\n", "t.yaml:1:6: sub: expected a mapping, got '3'");
        expect_error("items: {a: 1}\n",
                     "t.yaml:1:8: items: expected a list of mappings, got a mapping");
        expect_error("items: [1]\n", "t.yaml:1:9: items[0]: expected a mapping, got '1'");
        expect_error("color: [red]\n",
                     "t.yaml:1:8: color: expected one of red, green, blue, got a list");
        expect_error("- a\n- b\n", "t.yaml:1:1: expected a mapping at the top level, got a list");
        expect_error("just text\n",
                     "t.yaml:1:1: expected a mapping at the top level, got 'just text'");
        expect_error("name: \"a\\0b\"\n", "t.yaml:1:7: name: string contains a NUL byte");
}

static void test_out_of_range(void **state)
{
        (void)state;
        expect_error("sub:\n  count: 40\n",
                     "t.yaml:2:10: sub.count must be between 1 and 16, got 40");
        expect_error("sub:\n  count: 0\n",
                     "t.yaml:2:10: sub.count must be between 1 and 16, got 0");
        expect_error("num: -3\n", "t.yaml:1:6: num must be between 0 and 1000, got -3");
        expect_error("num: 99999999999999999999999\n",
                     "t.yaml:1:6: num must be between 0 and 1000, got 99999999999999999999999");
        expect_error("items:\n  - name: a\n    weight: 101\n",
                     "t.yaml:3:13: items[0].weight must be between 0 and 100, got 101");
}

static void test_bad_enum(void **state)
{
        (void)state;
        expect_error("color: pink\n", "t.yaml:1:8: invalid color 'pink' (valid: red, green, blue)");
        expect_error("sub:\n  mode: Fast\n",
                     "t.yaml:2:9: invalid sub.mode 'Fast' (valid: fast, slow)");
}

static void test_duplicate_key(void **state)
{
        (void)state;
        expect_error("name: a\nflag: no\nname: b\n",
                     "t.yaml:3:1: duplicate key 'name' (first at line 1, column 1)");
        expect_error("sub:\n  count: 1\n  count: 2\n",
                     "t.yaml:3:3: duplicate key 'count' in sub (first at line 2, column 3)");
        expect_error("env:\n  A: 1\n  A: 2\n",
                     "t.yaml:3:3: duplicate key 'A' in env (first at line 2, column 3)");
}

static void test_syntax_error(void **state)
{
        (void)state;
        expect_error("name: a\n  b: c\n",
                     "t.yaml:2:4: YAML syntax error: mapping values are not allowed in this "
                     "context");
        expect_error("tags: [a, b\n",
                     "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' (while "
                     "parsing a flow sequence at line 1, column 7)");
        expect_error("name: \"open\n",
                     "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while "
                     "scanning a quoted scalar at line 1, column 7)");
        expect_error("num: *nope\n", "t.yaml:1:6: YAML syntax error: found undefined alias");
        expect_error("name: a\n---\nname: b\n", "t.yaml:3:1: only one YAML document is allowed");
        expect_error("name: ok\nflag: \xff\n",
                     "t.yaml:2:7: YAML syntax error: invalid leading UTF-8 octet");
}

static void test_missing_required(void **state)
{
        (void)state;
        static const struct {
                const char *text, *expected;
        } cases[] = {
            {"", "t.yaml:1:1: missing required key 'id'"},
            {"sub:\n  label: x\n", "t.yaml:1:1: missing required key 'id'"},
            {"id: a\n", "t.yaml:1:1: missing required key 'label' in sub"},
            {"id: a\nsub:\n  count: 1\n", "t.yaml:2:1: missing required key 'label' in sub"},
            {"id: a\nsub:\n", "t.yaml:2:1: missing required key 'label' in sub"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct req o = {};
                struct schema_error err = {};
                _cleanup_free_ char *msg = NULL;

                assert_int_equal(schema_load(req_fields, &o, "t.yaml", cases[i].text, &err),
                                 -EINVAL);
                msg = schema_error_format(&err);
                assert_string_equal(msg, cases[i].expected);
                schema_error_done(&err);
                schema_free(req_fields, &o);
        }
        expect_error("items:\n  - weight: 1\n",
                     "t.yaml:2:5: missing required key 'name' in items[0]");

        struct req o = {};
        struct schema_error err = {};
        assert_int_equal(schema_load(req_fields, &o, "t.yaml", "id: a\nsub: {label: b}\n", &err),
                         0);
        assert_string_equal(o.id, "a");
        assert_string_equal(o.sub.label, "b");
        schema_free(req_fields, &o);
}

static void test_error_at(void **state)
{
        (void)state;
        struct schema_error err = {};
        _cleanup_free_ char *msg = NULL;

        assert_int_equal(schema_error_at(&err, "c.yaml", (struct schema_mark){4, 9},
                                         "nodes.count %u is too large", 300u),
                         -EINVAL);
        msg = schema_error_format(&err);
        assert_string_equal(msg, "c.yaml:4:9: nodes.count 300 is too large");
        schema_error_done(&err);
        assert_null(err.message);
}

static void test_reference(void **state)
{
        (void)state;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct obj o;

        assert_non_null(f);
        schema_print_reference(fields, f);
        obj_defaults(&o);
        schema_print_reference_defaults(fields, &o, f);
        fclose(f);
        schema_free(fields, &o);

        assert_non_null(strstr(buf, "| Key | Type | Values | Description |\n"));
        assert_non_null(strstr(buf, "| `sub.count` | integer | 1..16 | how many |\n"));
        assert_non_null(strstr(buf, "| `sub.label` | string |  | a label \\| with pipe |\n"));
        assert_non_null(
            strstr(buf, "| `items[].name` | string |  | **Required.** element name |\n"));
        assert_non_null(strstr(buf, "| `color` | enum | `red`, `green`, `blue` | a color |\n"));
        assert_non_null(strstr(buf, "| Key | Type | Default | Values | Description |\n"));
        assert_non_null(
            strstr(buf, "| `color` | enum | `blue` | `red`, `green`, `blue` | a color |\n"));
        assert_non_null(strstr(buf, "| `tags` | list of strings | `[default-tag]` |  | tags |\n"));
        assert_non_null(strstr(buf, "| `sub.count` | integer | `1` | 1..16 | how many |\n"));
        assert_non_null(strstr(buf, "| `items[].weight` | integer |  | 0..100 | weight |\n"));
        free(buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_happy_all_types),
            cmocka_unit_test(test_empty_keeps_defaults),
            cmocka_unit_test(test_empty_file_on_disk),
            cmocka_unit_test(test_missing_file),
            cmocka_unit_test(test_overwrite_and_clear),
            cmocka_unit_test(test_booleans),
            cmocka_unit_test(test_aliases),
            cmocka_unit_test(test_unknown_key),
            cmocka_unit_test(test_wrong_type),
            cmocka_unit_test(test_out_of_range),
            cmocka_unit_test(test_bad_enum),
            cmocka_unit_test(test_duplicate_key),
            cmocka_unit_test(test_syntax_error),
            cmocka_unit_test(test_missing_required),
            cmocka_unit_test(test_error_at),
            cmocka_unit_test(test_reference),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
