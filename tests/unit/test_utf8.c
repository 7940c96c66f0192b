/* utf8: the validator every JSON text of the server goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"

static void test_utf8_seq_is_the_length_of_a_valid_sequence_else_0(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len, want;
    } cases[] = {
        {"A", 1, 1},
        {"\0", 1, 1},
        {"\xc3\xa9", 2, 2},         /* é */
        {"\xe2\x82\xac", 3, 3},     /* € */
        {"\xf0\x9f\x98\x80", 4, 4}, /* U+1F600 */
        {"\x80", 1, 0},
        {"\xc3", 1, 0},
        {"\xc3\x28", 2, 0}, /* bad continuation */
        {"\xc0\xaf", 2, 0},
        {"\xe0\x80\xaf", 3, 0},
        {"\xf0\x80\x80\xaf", 4, 0}, /* overlong */
        {"\xed\xa0\x80", 3, 0},     /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */
        {"\xff", 1, 0},
        {"\xe2\x82", 2, 0}, /* truncated */
        /* The edges of each range. */
        {"\x7f", 1, 1},
        {"\xc2\x80", 2, 2},         /* U+0080, the first 2-byte one */
        {"\xc1\xbf", 2, 0},         /* U+007F, overlong */
        {"\xdf\xbf", 2, 2},         /* U+07FF */
        {"\xe0\xa0\x80", 3, 3},     /* U+0800, the first 3-byte one */
        {"\xe0\x9f\xbf", 3, 0},     /* U+07FF, overlong */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF, just below the surrogates */
        {"\xed\xbf\xbf", 3, 0},     /* U+DFFF, the last surrogate */
        {"\xee\x80\x80", 3, 3},     /* U+E000, just above them */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, 4}, /* U+10000, the first 4-byte one */
        {"\xf0\x8f\xbf\xbf", 4, 0}, /* U+FFFF, overlong */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF, the last code point */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xf0\x9f\x28\x80", 4, 0}, /* bad third byte */
        {"\xf0\x9f\x98\x80", 3, 0}, /* cut by `avail` */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = sfm_utf8_seq((const unsigned char *)cases[i].bytes, cases[i].len);
        if (got != cases[i].want)
            fail_msg("case %zu: length %zu, expected %zu", i, got, cases[i].want);
    }
    assert_int_equal(sfm_utf8_seq((const unsigned char *)"A", 0), 0);
}

static void test_utf8_count_counts_code_points_or_refuses_bad_text(void **state)
{
    (void)state;
    assert_int_equal(sfm_utf8_count("", 0), 0);
    assert_int_equal(sfm_utf8_count("abc", 3), 3);
    assert_int_equal(sfm_utf8_count("caf\xc3\xa9 \xe2\x82\xac", 9), 6);
    assert_int_equal(sfm_utf8_count("ab\xff", 3), -1);
    assert_int_equal(sfm_utf8_count("\xc3\xa9", 1), -1); /* cut inside a character */
}

static void test_utf8_repair_puts_u_fffd_for_each_bad_byte(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(sfm_utf8_repair("ok \xc3\xa9", 5, out), 5);
    assert_string_equal(out, "ok \xc3\xa9");
    size_t n = sfm_utf8_repair("a\xff"
                               "b\xc3",
                               4, out);
    assert_int_equal(n, 8);
    assert_memory_equal(out,
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd",
                        8);
    assert_int_equal(out[8], '\0');
}

static void test_hex_digit_takes_both_cases_and_nothing_else(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdef", *upper = "ABCDEF";
    for (int v = 0; v < 16; v++)
        assert_int_equal(sfm_hex_digit(digits[v]), v);
    for (int v = 0; v < 6; v++)
        assert_int_equal(sfm_hex_digit(upper[v]), 10 + v);
    /* the neighbours of each range, NUL and a high byte */
    const int others[] = {'/', ':', '@', 'G', '`', 'g', ' ', '%', 0, 0xff};
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++)
        assert_int_equal(sfm_hex_digit(others[k]), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_seq_is_the_length_of_a_valid_sequence_else_0),
        cmocka_unit_test(test_utf8_count_counts_code_points_or_refuses_bad_text),
        cmocka_unit_test(test_utf8_repair_puts_u_fffd_for_each_bad_byte),
        cmocka_unit_test(test_hex_digit_takes_both_cases_and_nothing_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
