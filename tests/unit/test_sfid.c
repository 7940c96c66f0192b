/*
 * Unit tests of server/sfid.c: Salesforce's 18-character checksum, the 15/18
 * conversion, and the stable ids derived from names. Each case is named
 * test_sfid_<claim>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sfid.h"

/*
 * Each block of 5 gives a 5-bit number, bit i set when character i is 'A'..'Z',
 * read in "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345":
 *   001D000000IqhSL: "001D0" D is char 3 -> 8 -> I; "00000" -> 0 -> A;
 *                    "IqhSL" I, S, L are chars 0, 3, 4 -> 1+8+16 = 25 -> Z.  => IAZ
 *   00D000000000001: "00D00" D is char 2 -> 4 -> E; "00000" -> A; "00001" -> A.  => EAA
 *   005000000000001: no capitals -> AAA
 *   ABCDEABCDEABCDE: all five bits in every block -> 31 -> 5.  => 555
 *   aBcDeAbCdE00000: "aBcDe" chars 1, 3 -> 2+8 = 10 -> K; "AbCdE" chars 0, 2, 4 ->
 *                    1+4+16 = 21 -> V; "00000" -> A.  => KVA
 *   zzzzzZZZZZ0000Z: lowercase counts for nothing -> A; "ZZZZZ" -> 5;
 *                    "0000Z" char 4 -> 16 -> Q.  => A5Q
 */
static const char *const k_checksums[][2] = {
    {"001D000000IqhSL", "IAZ"}, /* a real Account id from Salesforce's docs */
    {"00D000000000001", "EAA"}, {"005000000000001", "AAA"}, {"ABCDEABCDEABCDE", "555"},
    {"aBcDeAbCdE00000", "KVA"}, {"zzzzzZZZZZ0000Z", "A5Q"},
};

static void test_sfid_checksum_matches_salesforce(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(k_checksums) / sizeof(k_checksums[0]); i++) {
        char sum[4] = {0};
        sfm_sfid_checksum(k_checksums[i][0], sum);
        assert_string_equal(sum, k_checksums[i][1]);
    }
}

static void test_sfid_to18_adds_the_checksum_and_accepts_either_form(void **state)
{
    (void)state;
    char out[SFM_SFID_LEN + 1];
    assert_int_equal(sfm_sfid_to18("001D000000IqhSL", out), 0);
    assert_string_equal(out, "001D000000IqhSLIAZ");
    assert_int_equal(sfm_sfid_to18("001D000000IqhSLIAZ", out), 0);
    assert_string_equal(out, "001D000000IqhSLIAZ");
    /* The suffix is for case-insensitive systems: its case does not matter, and it comes out upper. */
    assert_int_equal(sfm_sfid_to18("001D000000IqhSLiaz", out), 0);
    assert_string_equal(out, "001D000000IqhSLIAZ");
    assert_int_equal(sfm_sfid_to18("00D000000000001", out), 0);
    assert_string_equal(out, "00D000000000001EAA");
    assert_int_equal(sfm_sfid_to18("005000000000001", out), 0);
    assert_string_equal(out, "005000000000001AAA");
}

static void test_sfid_to18_rejects_bad_ids(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "001D000000IqhSLIAA",  /* wrong checksum */
        "001d000000IqhSLIAZ",  /* the 15 characters are case-sensitive: this one's sum is AAZ */
        "001D000000IqhS",      /* 14 */
        "001D000000IqhSLI",    /* 16 */
        "001D000000IqhSLIA",   /* 17 */
        "001D000000IqhSLIAZ0", /* 19 */
        "",
        "001D000000Iqh-L",         /* not base 62 */
        "001D000000Iqh L",         /* not base 62 */
        "001D000000IqhSL\xc3\xa9", /* UTF-8: 17 bytes, not alphanumeric */
        "001D000000IqhSLI.Z",      /* not alphanumeric in the suffix */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[SFM_SFID_LEN + 1] = "untouched";
        assert_int_equal(sfm_sfid_to18(bad[i], out), -EINVAL);
        assert_string_equal(out, "untouched");
    }
}

static void test_sfid_valid_checks_prefix_and_form(void **state)
{
    (void)state;
    assert_true(sfm_sfid_valid("00D000000000001EAA", "00D"));
    assert_true(sfm_sfid_valid("00D000000000001", "00D"));
    assert_false(sfm_sfid_valid("00D000000000001EAA", "005"));
    assert_false(sfm_sfid_valid("00d000000000001", "00D")); /* the prefix is case-sensitive */
    assert_false(sfm_sfid_valid("00D000000000001EAB", "00D"));
    assert_false(sfm_sfid_valid("00D00000000001", "00D"));
}

static void test_sfid_derive_is_stable(void **state)
{
    (void)state;
    char a[SFM_SFID_LEN + 1], b[SFM_SFID_LEN + 1];
    sfm_sfid_derive("005", "admin@acme.test", 0, a);
    sfm_sfid_derive("005", "admin@acme.test", 0, b);
    assert_string_equal(a, b);
    /* Pinned: ids outlive restarts (state, tokens, tests of clients), so the algorithm must not
     * change. FNV-1a 64 of the name = 0xc9cfeca15ff87ae0 -> 11 base-62 digits "HKEyotDw3kG"; then the
     * checksum of "0050HKEyotDw3kG": "0050H" -> 16 -> Q, "KEyot" -> 3 -> D, "Dw3kG" -> 17 -> R. */
    assert_string_equal(a, "0050HKEyotDw3kGQDR");
    sfm_sfid_derive("005", "admin@acme.test", 1, b);
    assert_string_equal(b, "0050Jdpxe3PqygdQAB");
}

static void test_sfid_derive_gives_valid_ids_of_the_prefix(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"005", "00e", "0PS", "001", "a0N"};
    static const char *const names[] = {"x", "System Administrator", "Enforce_mTLS", "", "\xc3\xa9t\xc3\xa9"};
    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
            char id[SFM_SFID_LEN + 1], again[SFM_SFID_LEN + 1];
            sfm_sfid_derive(prefixes[p], names[n], 0, id);
            assert_int_equal(strlen(id), SFM_SFID_LEN);
            assert_memory_equal(id, prefixes[p], 3);
            assert_int_equal(id[3], '0');
            assert_true(sfm_sfid_valid(id, prefixes[p]));
            assert_int_equal(sfm_sfid_to18(id, again), 0);
            assert_string_equal(again, id);
        }
    }
}

static void test_sfid_derive_separates_names_and_salts(void **state)
{
    (void)state;
    /* 2,000 names and 2,000 salts of one name: no two ids alike (a 64-bit hash; a collision here
     * would mean the name or the salt is not reaching it). */
    enum { N = 2000 };
    static char ids[2 * N][SFM_SFID_LEN + 1];
    for (unsigned i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "user%u@acme.test", i);
        sfm_sfid_derive("005", name, 0, ids[i]);
        sfm_sfid_derive("005", "same@acme.test", i + 1, ids[N + i]);
    }
    for (size_t i = 0; i < 2 * N; i++) {
        for (size_t j = i + 1; j < 2 * N; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    /* Salts above 255 still count (more than one byte of salt). */
    char a[SFM_SFID_LEN + 1], b[SFM_SFID_LEN + 1];
    sfm_sfid_derive("005", "same@acme.test", 256, a);
    sfm_sfid_derive("005", "same@acme.test", 0, b);
    assert_string_not_equal(a, b);
}

static void test_sfid_equal_compares_the_first_15(void **state)
{
    (void)state;
    assert_true(sfm_sfid_equal("001D000000IqhSL", "001D000000IqhSLIAZ"));
    assert_true(sfm_sfid_equal("001D000000IqhSLIAZ", "001D000000IqhSL"));
    assert_true(sfm_sfid_equal("001D000000IqhSL", "001D000000IqhSL"));
    assert_false(sfm_sfid_equal("001D000000IqhSL", "001D000000IqhSl"));
    assert_false(sfm_sfid_equal("001D000000IqhSL", "001D000000IqhSLI"));
    assert_false(sfm_sfid_equal("001D000000IqhS", "001D000000IqhS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sfid_checksum_matches_salesforce),
        cmocka_unit_test(test_sfid_to18_adds_the_checksum_and_accepts_either_form),
        cmocka_unit_test(test_sfid_to18_rejects_bad_ids),
        cmocka_unit_test(test_sfid_valid_checks_prefix_and_form),
        cmocka_unit_test(test_sfid_derive_is_stable),
        cmocka_unit_test(test_sfid_derive_gives_valid_ids_of_the_prefix),
        cmocka_unit_test(test_sfid_derive_separates_names_and_salts),
        cmocka_unit_test(test_sfid_equal_compares_the_first_15),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
