/*
 * Unit tests of server/jsonlines.c: the scanner that records the line where
 * each value of a JSON text starts, keyed by its JSON path, and the functions
 * that spell paths the way the scanner does. Nested objects and arrays, keys
 * that need quoting, escapes and \u sequences in keys, values that start on a
 * later line than their key, unknown paths, paths too long to record, and
 * truncated or garbage text (a partial index, never a crash). Each case is
 * named test_jsonlines_<claim>.
 *
 * Every text is scanned from an exact-size heap copy without a terminator,
 * freed before the lookups, so a sanitizer build catches a read past its end
 * and an index that kept pointers into it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlines.h"

/** Pseudo-random garbage texts scanned, and their longest length. */
#define T_GARBAGE_TEXTS 5000
#define T_GARBAGE_MAX   64

/* One expected path and the line of its value (0: not recorded). */
typedef struct expect {
    const char *path;
    int line;
} expect;

/* The index of the first `len` bytes of `text`, scanned from an exact-size copy freed on return. */
static sfm_jsonlines *build_n(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    sfm_jsonlines *x = NULL;
    assert_int_equal(sfm_jsonlines_build(&x, copy, len), 0);
    assert_non_null(x);
    memset(copy, '#', len); /* the index must not read the text again */
    free(copy);
    return x;
}

static sfm_jsonlines *build(const char *text)
{
    return build_n(text, strlen(text));
}

static void check_lines(const sfm_jsonlines *x, const expect *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = sfm_jsonlines_line(x, e[i].path);
        if (got != e[i].line)
            fail_msg("%s: line %d, expected %d", e[i].path, got, e[i].line);
    }
}

/* ---- structure ------------------------------------------------------------------------------ */

static const char k_nested[] = "{\n"                                              /* 1 */
                               "  \"users\": [\n"                                 /* 2 */
                               "    {\"name\": \"a\",\n"                          /* 3 */
                               "     \"tags\": [\"x\",\n"                         /* 4 */
                               "              \"y\"]},\n"                         /* 5 */
                               "    {\"name\": \"b\"},\n"                         /* 6 */
                               "    [],\n"                                        /* 7 */
                               "    [[1, 2],\n"                                   /* 8 */
                               "     [3]]\n"                                      /* 9 */
                               "  ],\n"                                           /* 10 */
                               "  \"org\": {\"id\": 5}, \"n\": null, \"e\": {}\n" /* 11 */
                               "}\n";

static const expect k_nested_lines[] = {
    {"$", 1},
    {"$.users", 2},
    {"$.users[0]", 3},
    {"$.users[0].name", 3},
    {"$.users[0].tags", 4},
    {"$.users[0].tags[0]", 4},
    {"$.users[0].tags[1]", 5},
    {"$.users[1]", 6},
    {"$.users[1].name", 6},
    {"$.users[2]", 7},
    {"$.users[3]", 8},
    {"$.users[3][0]", 8},
    {"$.users[3][0][0]", 8},
    {"$.users[3][0][1]", 8},
    {"$.users[3][1]", 9},
    {"$.users[3][1][0]", 9},
    {"$.org", 11},
    {"$.org.id", 11},
    {"$.n", 11},
    {"$.e", 11},
};

static void test_jsonlines_nested_objects_and_arrays_give_each_value_its_line(void **state)
{
    (void)state;
    sfm_jsonlines *x = build(k_nested);
    check_lines(x, k_nested_lines, sizeof(k_nested_lines) / sizeof(k_nested_lines[0]));
    sfm_jsonlines_free(x);
}

static void test_jsonlines_a_path_not_in_the_text_has_no_line(void **state)
{
    (void)state;
    sfm_jsonlines *x = build(k_nested);
    static const expect absent[] = {
        {"$.users[4]", 0},    /* past the end of a list */
        {"$.users[2][0]", 0}, /* an empty list has no elements */
        {"$.e.x", 0},         /* nor an empty object members */
        {"$.org.name", 0},    /* a key of another object */
        {"$.user", 0},        /* a prefix of a key */
        {"$[\"users\"]", 0},  /* an identifier key spelled the other way */
        {"$.users.0", 0},     /* an index spelled as a key */
        {"users", 0},         /* no "$" */
        {"", 0},
    };
    check_lines(x, absent, sizeof(absent) / sizeof(absent[0]));
    sfm_jsonlines_free(x);
    assert_int_equal(sfm_jsonlines_line(NULL, "$"), 0);
    sfm_jsonlines_free(NULL);
}

static void test_jsonlines_a_scalar_document_is_at_its_first_character(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("\n\r\n \t 42 \n");
    assert_int_equal(sfm_jsonlines_line(x, "$"), 3);
    sfm_jsonlines_free(x);
    x = build("");
    assert_int_equal(sfm_jsonlines_line(x, "$"), 0);
    sfm_jsonlines_free(x);
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void test_jsonlines_keys_that_are_not_identifiers_are_quoted(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("{\"Weird Type\": 1,\n"
                             " \"1abc\": 2,\n"
                             " \"\": 3,\n"
                             " \"_x9\": 4,\n"
                             " \"a-b\": {\"c d\": [5]},\n"
                             " \"caf\xc3\xa9\": 6}\n");
    static const expect lines[] = {
        {"$[\"Weird Type\"]", 1},
        {"$[\"1abc\"]", 2},
        {"$.1abc", 0},
        {"$[\"\"]", 3},
        {"$._x9", 4},
        {"$[\"_x9\"]", 0},
        {"$[\"a-b\"]", 5},
        {"$[\"a-b\"][\"c d\"]", 5},
        {"$[\"a-b\"][\"c d\"][0]", 5},
        {"$[\"caf\xc3\xa9\"]", 6},
    };
    check_lines(x, lines, sizeof(lines) / sizeof(lines[0]));
    sfm_jsonlines_free(x);
}

static void test_jsonlines_keys_are_decoded_then_escaped_in_the_path(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("{\"a\\\"b\\u00e9\": 1,\n"       /* a"bé */
                             " \"tab\\there\": 2,\n"          /* a control character */
                             " \"\\u0041b\\u0063\": 3,\n"     /* Abc: an identifier once decoded */
                             " \"sl\\/ash\\\\\": 4,\n"        /* sl/ash\ */
                             " \"\\ud83d\\ude00\": 5,\n"      /* a surrogate pair: U+1F600 */
                             " \"n\\u0000l\": 6,\n"           /* NUL stays in the key */
                             " \"\\u007F\\b\\f\\n\\r\": 7,\n" /* DEL and the short escapes */
                             " \"\\u20AC\": 8}\n");           /* upper-case hex: U+20AC */
    static const expect lines[] = {
        {"$[\"a\\\"b\xc3\xa9\"]", 1},
        {"$[\"tab\\u0009here\"]", 2},
        {"$.Abc", 3},
        {"$[\"sl/ash\\\\\"]", 4},
        {"$[\"\xf0\x9f\x98\x80\"]", 5},
        {"$[\"n\\u0000l\"]", 6},
        {"$[\"n\"]", 0},
        {"$[\"\\u007f\\u0008\\u000c\\u000a\\u000d\"]", 7},
        {"$[\"\xe2\x82\xac\"]", 8},
    };
    check_lines(x, lines, sizeof(lines) / sizeof(lines[0]));
    sfm_jsonlines_free(x);
}

/* The loader names values with sfm_jsonlines_path_key()/_index(): those paths find the scanner's lines. */
static void test_jsonlines_path_functions_spell_paths_as_the_scanner_does(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("{\"records\": {\n"
                             "  \"Weird Type\": [\n"
                             "    {\"Name\": \"a \\\"quoted\\\" ], {name\",\n"
                             "     \"a\\\"b\\u00e9\": {\"nested\": 1},\n"
                             "     \"tab\\t\": 2, \"ok_1\": 3}]}}\n");
    char p[SFM_JSONLINES_MAX_PATH], q[SFM_JSONLINES_MAX_PATH], r[SFM_JSONLINES_MAX_PATH];
    sfm_jsonlines_path_key(p, "$", "records");
    sfm_jsonlines_path_key(q, p, "Weird Type");
    assert_string_equal(q, "$.records[\"Weird Type\"]");
    assert_int_equal(sfm_jsonlines_line(x, q), 2);
    sfm_jsonlines_path_index(p, q, 0);
    assert_int_equal(sfm_jsonlines_line(x, p), 3);
    sfm_jsonlines_path_key(r, p, "Name");
    assert_int_equal(sfm_jsonlines_line(x, r), 3);
    sfm_jsonlines_path_key(r, p, "a\"b\xc3\xa9");
    assert_string_equal(r, "$.records[\"Weird Type\"][0][\"a\\\"b\xc3\xa9\"]");
    assert_int_equal(sfm_jsonlines_line(x, r), 4);
    sfm_jsonlines_path_key(q, r, "nested");
    assert_int_equal(sfm_jsonlines_line(x, q), 4);
    sfm_jsonlines_path_key(r, p, "tab\t");
    assert_int_equal(sfm_jsonlines_line(x, r), 5);
    sfm_jsonlines_path_key(r, p, "ok_1");
    assert_string_equal(r, "$.records[\"Weird Type\"][0].ok_1");
    assert_int_equal(sfm_jsonlines_line(x, r), 5);
    sfm_jsonlines_free(x);
}

static void test_jsonlines_path_functions_cut_long_paths(void **state)
{
    (void)state;
    char p[SFM_JSONLINES_MAX_PATH];
    sfm_jsonlines_path_index(p, "$.users", 0);
    assert_string_equal(p, "$.users[0]");
    char want[64];
    snprintf(want, sizeof(want), "$[%zu]", SIZE_MAX);
    sfm_jsonlines_path_index(p, "$", SIZE_MAX);
    assert_string_equal(p, want);
    char parent[SFM_JSONLINES_MAX_PATH];
    memset(parent, 'a', sizeof(parent) - 4);
    parent[sizeof(parent) - 4] = '\0';
    sfm_jsonlines_path_key(p, parent, "bcdef");
    assert_int_equal(strlen(p), SFM_JSONLINES_MAX_PATH - 1);
    assert_memory_equal(p, parent, strlen(parent));
    assert_memory_equal(p + strlen(parent), ".b", 2);
    sfm_jsonlines_path_index(p, parent, 123);
    assert_int_equal(strlen(p), SFM_JSONLINES_MAX_PATH - 1);
    assert_memory_equal(p + strlen(parent), "[12", 3);
}

/* The loader quotes names in its messages with sfm_jsonlines_quote(): escaped as JSON, and cut with "..."
 * when too long, never inside a character. */
static void test_jsonlines_quote_escapes_and_cuts_between_characters(void **state)
{
    (void)state;
    char out[64];
    assert_ptr_equal(sfm_jsonlines_quote(out, sizeof(out), "a\"b\\c\td\x7f\xc3\xa9"), out);
    assert_string_equal(out, "\"a\\\"b\\\\c\\u0009d\\u007f\xc3\xa9\"");
    assert_string_equal(sfm_jsonlines_quote(out, sizeof(out), ""), "\"\"");

    static const char abc[] = "abcdefghijklmnopqrstuvwxyz";
    char small[24];
    sfm_jsonlines_quote(small, sizeof(small), abc);
    size_t n = strlen(small);
    assert_true(n > 5 && n < sizeof(small));
    assert_int_equal(small[0], '"');
    assert_memory_equal(small + 1, abc, n - 5); /* a prefix of the name */
    assert_string_equal(small + n - 4, "...\"");

    /* Two-byte characters after one ASCII letter, so that the cut could fall inside one: the part kept is
     * whole characters. */
    sfm_jsonlines_quote(small, sizeof(small),
                        "a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    n = strlen(small);
    assert_true(n > 6 && n < sizeof(small));
    assert_memory_equal(small, "\"a", 2);
    assert_string_equal(small + n - 4, "...\"");
    assert_int_equal((n - 6) % 2, 0);
    for (size_t i = 2; i + 4 < n; i += 2)
        assert_memory_equal(small + i, "\xc3\xa9", 2);
    /* A run of stray continuation bytes (never a character start) is cut all the same. */
    char stray[300];
    memset(stray, 0x80, sizeof(stray) - 1);
    stray[sizeof(stray) - 1] = '\0';
    sfm_jsonlines_quote(small, sizeof(small), stray);
    n = strlen(small);
    assert_true(n < sizeof(small));
    assert_string_equal(small + n - 4, "...\"");
}

static void test_jsonlines_identifiers_are_ascii_letters_digits_underscores(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ident;
    } cases[] = {
        {"a", 1},   {"_", 1},   {"Z9_z", 1}, {"users", 1},       {"", 0},    {"9a", 0},
        {"a b", 0}, {"a-b", 0}, {"a.b", 0},  {"caf\xc3\xa9", 0}, {"a\"", 0}, {"[0]", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sfm_jsonlines_is_identifier(cases[i].s, strlen(cases[i].s)) != cases[i].ident)
            fail_msg("\"%s\": expected %d", cases[i].s, cases[i].ident);
    }
    assert_int_equal(sfm_jsonlines_is_identifier("ab", 1), 1); /* only `n` bytes count */
    assert_int_equal(sfm_jsonlines_is_identifier("a\0b", 3), 0);
}

/* ---- lines ---------------------------------------------------------------------------------- */

static void test_jsonlines_a_value_is_on_the_line_where_it_starts(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("{\"a\":\n"                             /* 1 */
                             "   [\n"                                /* 2: $.a */
                             "     1,\n"                             /* 3 */
                             "     {\n"                              /* 4: $.a[1] */
                             "       \"b\"\n"                        /* 5 */
                             "         :\n"                          /* 6 */
                             "           \"x\"\n"                    /* 7: $.a[1].b */
                             "     }\n"                              /* 8 */
                             "   ]\r\n"                              /* 9 */
                             ",\r\n"                                 /* 10 */
                             " \"s\": \"x ], } \\\" {\\n\", \"t\"\n" /* 11 */
                             ": true}\n");                           /* 12 */
    static const expect lines[] = {
        {"$", 1}, {"$.a", 2}, {"$.a[0]", 3}, {"$.a[1]", 4}, {"$.a[1].b", 7}, {"$.s", 11}, {"$.t", 12},
    };
    check_lines(x, lines, sizeof(lines) / sizeof(lines[0]));
    sfm_jsonlines_free(x);
}

static void test_jsonlines_a_repeated_key_keeps_its_first_line(void **state)
{
    (void)state;
    sfm_jsonlines *x = build("{\"a\": 1,\n \"a\": 2,\n \"\\u0061\": 3}");
    assert_int_equal(sfm_jsonlines_line(x, "$.a"), 1);
    sfm_jsonlines_free(x);
}

/* Paths the path functions would cut are not recorded (a cut path must not find a line), and the
 * scan goes on after them. */
static void test_jsonlines_paths_too_long_are_left_out_and_the_scan_goes_on(void **state)
{
    (void)state;
    size_t fits = SFM_JSONLINES_MAX_PATH - 2 - 2; /* "$." + key: SFM_JSONLINES_MAX_PATH - 2 bytes */
    char key[SFM_JSONLINES_MAX_PATH + 64];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    char text[3 * sizeof(key) + 64], p[SFM_JSONLINES_MAX_PATH];
    snprintf(text, sizeof(text), "{\"%.*s\": 1,\n \"%.*s\": 2,\n \"%s\": {\"x\": 3},\n \"b\": 4}", (int)fits,
             key, (int)fits + 1, key, key);
    sfm_jsonlines *x = build(text);
    key[fits] = '\0';
    sfm_jsonlines_path_key(p, "$", key);
    assert_int_equal(strlen(p), SFM_JSONLINES_MAX_PATH - 2);
    assert_int_equal(sfm_jsonlines_line(x, p), 1);
    key[fits] = 'k';
    key[fits + 1] = '\0';
    sfm_jsonlines_path_key(p, "$", key); /* fits the buffer exactly, but is not recorded */
    assert_int_equal(strlen(p), SFM_JSONLINES_MAX_PATH - 1);
    assert_int_equal(sfm_jsonlines_line(x, p), 0);
    key[fits + 1] = 'k';
    sfm_jsonlines_path_key(p, "$", key); /* cut */
    assert_int_equal(sfm_jsonlines_line(x, p), 0);
    assert_int_equal(sfm_jsonlines_line(x, "$.b"), 4);
    sfm_jsonlines_free(x);

    /* Deep nesting: the path of the innermost values is too long; their neighbours are found. */
    size_t depth = SFM_JSONLINES_MAX_PATH; /* "[0]" per level */
    char *deep = malloc(2 * depth + 64);
    assert_non_null(deep);
    size_t n = 0;
    n += (size_t)snprintf(deep + n, 16, "[1,\n");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    n += (size_t)snprintf(deep + n, 16, ",\n3]");
    x = build_n(deep, n);
    free(deep);
    assert_int_equal(sfm_jsonlines_line(x, "$[0]"), 1);
    assert_int_equal(sfm_jsonlines_line(x, "$[1]"), 2);
    assert_int_equal(sfm_jsonlines_line(x, "$[1][0][0]"), 2);
    assert_int_equal(sfm_jsonlines_line(x, "$[2]"), 3);
    sfm_jsonlines_free(x);
}

/* ---- text that is not JSON ------------------------------------------------------------------ */

/* Every prefix of a document: the scan succeeds, and every line it records is the full text's. The
 * index only grows as the prefix does, up to the whole document. */
static void test_jsonlines_truncated_text_keeps_the_lines_before_the_cut(void **state)
{
    (void)state;
    size_t n_expect = sizeof(k_nested_lines) / sizeof(k_nested_lines[0]);
    size_t last_found = 0;
    for (size_t len = 0; len <= strlen(k_nested); len++) {
        sfm_jsonlines *x = build_n(k_nested, len);
        size_t found = 0;
        for (size_t i = 0; i < n_expect; i++) {
            int got = sfm_jsonlines_line(x, k_nested_lines[i].path);
            if (got != 0 && got != k_nested_lines[i].line)
                fail_msg("%zu bytes: %s: line %d, expected %d", len, k_nested_lines[i].path, got,
                         k_nested_lines[i].line);
            found += got != 0;
        }
        if (found < last_found)
            fail_msg("%zu bytes: %zu paths found, %zu with a byte less", len, found, last_found);
        last_found = found;
        sfm_jsonlines_free(x);
    }
    assert_int_equal(last_found, n_expect);

    /* Cut inside a key, a string, an escape: what came before is kept. */
    static const char *const cuts[] = {
        "{\"a\": 1,\n \"bb",     "{\"a\": 1,\n \"b\": \"unterminated",
        "{\"a\": 1,\n \"b\\u00", "{\"a\": 1,\n \"b\\",
        "{\"a\": 1,\n \"b\":",   "{\"a\": 1,\n \"b\"",
    };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        sfm_jsonlines *x = build(cuts[i]);
        assert_int_equal(sfm_jsonlines_line(x, "$"), 1);
        assert_int_equal(sfm_jsonlines_line(x, "$.a"), 1);
        sfm_jsonlines_free(x);
    }
}

static void test_jsonlines_garbage_stops_the_scan_quietly(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *path; /* a value that starts before the garbage */
        int line;
    } cases[] = {
        {"}", "$", 1},
        {"]]]", "$", 1},
        {"{{{{", "$", 1},
        {"[,,]", "$", 1},
        {"{\"a\" 1}", "$", 1},
        {"{\"a\":}", "$", 1},
        {"{1: 2}", "$", 1},
        {"{\"\\x\": 1}", "$", 1},
        {"{\"\\u12G4\": 1}", "$", 1},
        {"{\"\\ud800\\u", "$", 1},
        {"\xff\xfe{\"a\": 1}", "$", 1},
        {"\"\\", "$", 1},
        {"nul", "$", 1},
        {" \n ", "$", 0},
        {"{\"a\": 1,\n garbage: 2}", "$.a", 1},
        {"[1,\n2, }", "$[1]", 2},
        {"[1,\n2 3 4]", "$[1]", 2},
        {"{\"a\": [1,\n2}, \"b\": 3}", "$.a[1]", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sfm_jsonlines *x = build(cases[i].text);
        if (sfm_jsonlines_line(x, cases[i].path) != cases[i].line)
            fail_msg("\"%s\": %s is on line %d, expected %d", cases[i].text, cases[i].path,
                     sfm_jsonlines_line(x, cases[i].path), cases[i].line);
        sfm_jsonlines_free(x);
    }
}

/* Random texts made of JSON's own characters: the scan never fails or reads out of bounds (the
 * sanitizer build checks that), and "$" is always the line of the first character that is not
 * whitespace. */
static void test_jsonlines_random_text_never_breaks_the_scan(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\",:\\u0dD8ab \n\t\r1-e.tfn";
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char text[T_GARBAGE_MAX];
    for (int round = 0; round < T_GARBAGE_TEXTS; round++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t len = (size_t)(seed % T_GARBAGE_MAX);
        uint64_t r = seed;
        for (size_t i = 0; i < len; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            text[i] = alphabet[(r >> 33) % (sizeof(alphabet) - 1)];
        }
        int want = 1;
        size_t i = 0;
        for (; i < len && strchr(" \t\r\n", text[i]); i++)
            want += text[i] == '\n';
        if (i == len)
            want = 0;
        sfm_jsonlines *x = build_n(text, len);
        if (sfm_jsonlines_line(x, "$") != want)
            fail_msg("\"%.*s\": $ on line %d, expected %d", (int)len, text, sfm_jsonlines_line(x, "$"), want);
        sfm_jsonlines_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonlines_nested_objects_and_arrays_give_each_value_its_line),
        cmocka_unit_test(test_jsonlines_a_path_not_in_the_text_has_no_line),
        cmocka_unit_test(test_jsonlines_a_scalar_document_is_at_its_first_character),
        cmocka_unit_test(test_jsonlines_keys_that_are_not_identifiers_are_quoted),
        cmocka_unit_test(test_jsonlines_keys_are_decoded_then_escaped_in_the_path),
        cmocka_unit_test(test_jsonlines_path_functions_spell_paths_as_the_scanner_does),
        cmocka_unit_test(test_jsonlines_path_functions_cut_long_paths),
        cmocka_unit_test(test_jsonlines_quote_escapes_and_cuts_between_characters),
        cmocka_unit_test(test_jsonlines_identifiers_are_ascii_letters_digits_underscores),
        cmocka_unit_test(test_jsonlines_a_value_is_on_the_line_where_it_starts),
        cmocka_unit_test(test_jsonlines_a_repeated_key_keeps_its_first_line),
        cmocka_unit_test(test_jsonlines_paths_too_long_are_left_out_and_the_scan_goes_on),
        cmocka_unit_test(test_jsonlines_truncated_text_keeps_the_lines_before_the_cut),
        cmocka_unit_test(test_jsonlines_garbage_stops_the_scan_quietly),
        cmocka_unit_test(test_jsonlines_random_text_never_breaks_the_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
