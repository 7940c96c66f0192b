/*
 * Unit tests of server/api/form.c: application/x-www-form-urlencoded bodies
 * as the OAuth token endpoint reads them. Decoding ('+', %XX in either case,
 * the reserved characters a password may hold), what is refused (bad escapes,
 * a NUL, too many pairs, too many bytes), repeated keys counted, empty values
 * and keys without '='. Each case is named test_form_<claim>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/form.h"

/* A body, and the pairs it must give, in order ("name=value" each, decoded). */
typedef struct decode_case {
    const char *body;
    size_t n;
    const char *pairs[6][2];
} decode_case;

static const decode_case k_decode[] = {
    {"", 0, {{NULL}}},
    {"a=1", 1, {{"a", "1"}}},
    {"grant_type=password&username=admin%40acme.test",
     2,
     {{"grant_type", "password"}, {"username", "admin@acme.test"}}},
    /* '+' is a space; an encoded '+' (%2B) is a plus sign. */
    {"q=a+b%2Bc", 1, {{"q", "a b+c"}}},
    /* The characters a password may hold that the format reserves. */
    {"password=p%26ss%3Dw%25rd%2B1", 1, {{"password", "p&ss=w%rd+1"}}},
    /* Hex digits in either case; UTF-8 passes through as bytes. */
    {"n=%c3%A9%C3%a9", 1, {{"n", "\xc3\xa9\xc3\xa9"}}},
    /* The first '=' splits; later ones belong to the value. */
    {"assertion=aGk=.e30=", 1, {{"assertion", "aGk=.e30="}}},
    /* Empty values, keys without '=', an empty key. */
    {"a=&b&=c", 3, {{"a", ""}, {"b", ""}, {"", "c"}}},
    /* Empty segments are skipped. */
    {"&&a=1&&b=2&", 2, {{"a", "1"}, {"b", "2"}}},
    /* Names are decoded too. */
    {"client%5Fid=x+y", 1, {{"client_id", "x y"}}},
};

static void test_form_decodes_pairs_in_order(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(k_decode) / sizeof(k_decode[0]); i++) {
        const decode_case *c = &k_decode[i];
        sfm_form f;
        int rc = sfm_form_parse(&f, c->body, strlen(c->body));
        if (rc != 0)
            fail_msg("case %zu (%s): rc %d", i, c->body, rc);
        if (f.n != c->n)
            fail_msg("case %zu (%s): %zu pairs, want %zu", i, c->body, f.n, c->n);
        for (size_t p = 0; p < c->n; p++) {
            assert_string_equal(f.pairs[p].name, c->pairs[p][0]);
            assert_string_equal(f.pairs[p].value, c->pairs[p][1]);
        }
        sfm_form_free(&f);
    }
}

/* Bodies that must be refused with -EINVAL: a '%' without two hex digits, a NUL. */
static const char *const k_bad[] = {
    "a=%",   "a=%4",  "a=%4g", "a=%zz",      "a=1&b=%", "%=1",         "a=100%",      "a=%%41",
    "a=%00", "%00=1", "a=x%2", "p=ab%2&c=d", "a=%+1",   "token=%E2%8", "user=a%40b%", "k%G1=v",
};

static void test_form_refuses_bad_escapes_and_nul(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(k_bad) / sizeof(k_bad[0]); i++) {
        sfm_form f;
        int rc = sfm_form_parse(&f, k_bad[i], strlen(k_bad[i]));
        if (rc != -EINVAL)
            fail_msg("\"%s\": rc %d, want -EINVAL", k_bad[i], rc);
        /* A refused form is left empty and safe to free. */
        assert_int_equal(f.n, 0);
        assert_null(f._buf);
        sfm_form_free(&f);
    }
    /* A raw NUL byte inside the body, not escaped. */
    static const char raw[] = {'a', '=', 'x', '\0', 'y'};
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, raw, sizeof(raw)), -EINVAL);
    sfm_form_free(&f);
}

static void test_form_counts_repeated_keys_and_returns_the_first(void **state)
{
    (void)state;
    static const char body[] = "grant_type=password&username=a&username=b&x=1&username=c";
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, body, strlen(body)), 0);
    int count = -1;
    assert_string_equal(sfm_form_get(&f, "username", &count), "a");
    assert_int_equal(count, 3);
    assert_string_equal(sfm_form_get(&f, "grant_type", &count), "password");
    assert_int_equal(count, 1);
    /* Absent: NULL and a count of 0; NULL count pointer is allowed. */
    assert_null(sfm_form_get(&f, "password", &count));
    assert_int_equal(count, 0);
    assert_string_equal(sfm_form_get(&f, "x", NULL), "1");
    /* Names are exact and case-sensitive. */
    assert_null(sfm_form_get(&f, "Username", &count));
    assert_int_equal(count, 0);
    assert_null(sfm_form_get(&f, "user", NULL));
    sfm_form_free(&f);
}

static void test_form_tells_empty_from_absent(void **state)
{
    (void)state;
    static const char body[] = "client_secret=&code";
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, body, strlen(body)), 0);
    int count = 0;
    assert_string_equal(sfm_form_get(&f, "client_secret", &count), "");
    assert_int_equal(count, 1);
    assert_string_equal(sfm_form_get(&f, "code", &count), "");
    assert_int_equal(count, 1);
    assert_null(sfm_form_get(&f, "client_id", &count));
    sfm_form_free(&f);
}

static void test_form_reads_only_len_bytes(void **state)
{
    (void)state;
    /* The body is not NUL-terminated where it ends. */
    static const char body[] = "a=1&b=2GARBAGE";
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, body, 7), 0);
    assert_int_equal(f.n, 2);
    assert_string_equal(sfm_form_get(&f, "b", NULL), "2");
    sfm_form_free(&f);
    /* An escape cut by the length is a bad escape, whatever follows. */
    static const char cut[] = "a=%41";
    assert_int_equal(sfm_form_parse(&f, cut, 4), -EINVAL);
    sfm_form_free(&f);
}

static void test_form_caps_pairs_at_the_maximum(void **state)
{
    (void)state;
    char body[SFM_FORM_MAX * 8 + 16];
    size_t len = 0;
    for (int i = 0; i < SFM_FORM_MAX; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "%sk%d=%d", i ? "&" : "", i, i);
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, body, len), 0);
    assert_int_equal(f.n, SFM_FORM_MAX);
    char key[16];
    snprintf(key, sizeof(key), "k%d", SFM_FORM_MAX - 1);
    assert_non_null(sfm_form_get(&f, key, NULL));
    sfm_form_free(&f);

    /* One pair more is -E2BIG, and nothing is kept. */
    len += (size_t)snprintf(body + len, sizeof(body) - len, "&one=more");
    assert_int_equal(sfm_form_parse(&f, body, len), -E2BIG);
    assert_int_equal(f.n, 0);
    assert_null(f._buf);
    sfm_form_free(&f);

    /* Empty segments do not count as pairs. */
    char sparse[SFM_FORM_MAX * 8 + 64];
    size_t sl = 0;
    for (int i = 0; i < SFM_FORM_MAX; i++)
        sl += (size_t)snprintf(sparse + sl, sizeof(sparse) - sl, "&&x=%d", i);
    assert_int_equal(sfm_form_parse(&f, sparse, sl), 0);
    int count = 0;
    assert_string_equal(sfm_form_get(&f, "x", &count), "0");
    assert_int_equal(count, SFM_FORM_MAX);
    sfm_form_free(&f);
}

static void test_form_caps_the_body_size(void **state)
{
    (void)state;
    char *body = malloc(SFM_FORM_BYTES + 1);
    assert_non_null(body);
    /* Exactly the maximum: one pair with a long value, accepted whole. */
    memcpy(body, "assertion=", 10);
    memset(body + 10, 'A', SFM_FORM_BYTES - 10);
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, body, SFM_FORM_BYTES), 0);
    assert_int_equal(strlen(sfm_form_get(&f, "assertion", NULL)), SFM_FORM_BYTES - 10);
    sfm_form_free(&f);
    /* One byte more is -E2BIG before anything is read. */
    body[SFM_FORM_BYTES] = 'A';
    assert_int_equal(sfm_form_parse(&f, body, SFM_FORM_BYTES + 1), -E2BIG);
    assert_int_equal(f.n, 0);
    sfm_form_free(&f);
    free(body);
}

static void test_form_worst_case_layout_fits(void **state)
{
    (void)state;
    /* Keys without '=' and one-character pairs take the most room per
     * input byte: every pair must still come out whole (ASan checks the
     * buffer). */
    static const char keys[] = "a&b&c&d&e&f&g&h";
    sfm_form f;
    assert_int_equal(sfm_form_parse(&f, keys, strlen(keys)), 0);
    assert_int_equal(f.n, 8);
    assert_string_equal(f.pairs[7].name, "h");
    assert_string_equal(f.pairs[7].value, "");
    sfm_form_free(&f);
    static const char mixed[] = "a=&=&b&=b&&%41";
    assert_int_equal(sfm_form_parse(&f, mixed, strlen(mixed)), 0);
    assert_int_equal(f.n, 5);
    assert_string_equal(f.pairs[0].name, "a");
    assert_string_equal(f.pairs[1].name, "");
    assert_string_equal(f.pairs[1].value, "");
    assert_string_equal(f.pairs[3].value, "b");
    assert_string_equal(f.pairs[4].name, "A");
    sfm_form_free(&f);
}

static void test_form_free_is_safe_on_a_zeroed_form(void **state)
{
    (void)state;
    sfm_form f;
    memset(&f, 0, sizeof(f));
    sfm_form_free(&f);
    sfm_form_free(&f);
    assert_int_equal(f.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_decodes_pairs_in_order),
        cmocka_unit_test(test_form_refuses_bad_escapes_and_nul),
        cmocka_unit_test(test_form_counts_repeated_keys_and_returns_the_first),
        cmocka_unit_test(test_form_tells_empty_from_absent),
        cmocka_unit_test(test_form_reads_only_len_bytes),
        cmocka_unit_test(test_form_caps_pairs_at_the_maximum),
        cmocka_unit_test(test_form_caps_the_body_size),
        cmocka_unit_test(test_form_worst_case_layout_fits),
        cmocka_unit_test(test_form_free_is_safe_on_a_zeroed_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
