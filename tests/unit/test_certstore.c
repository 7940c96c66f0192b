/* certstore: the Mutual Authentication Certificate set, its ids, lookups and copy on write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "certstore.h"
#include "sfid.h"

/* splitmix64: fingerprints that look as random as SHA-256 ones, reproducibly. */
static uint64_t mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The fingerprint of test certificate number `i`. */
static void fp_of(uint64_t i, unsigned char fp[32])
{
    uint64_t x = i * 4;
    for (int w = 0; w < 4; w++) {
        uint64_t v = mix(&x);
        for (int b = 0; b < 8; b++)
            fp[w * 8 + b] = (unsigned char)(v >> (8 * b));
    }
}

static sfm_cert_entry *entry_fp(const unsigned char fp[32], int64_t created_ms)
{
    sfm_cert_entry *e =
        sfm_cert_entry_new("label", "CN=client", "CN=dev CA", "0a1b", 1000, 2000, fp, 1, 0, created_ms);
    assert_non_null(e);
    return e;
}

static sfm_cert_entry *entry_n(uint64_t i)
{
    unsigned char fp[32];
    fp_of(i, fp);
    return entry_fp(fp, (int64_t)i);
}

/* *s = *s plus `e`; the caller's references to the old set and to `e` are given up. */
static void add(sfm_certs **s, sfm_cert_entry *e)
{
    sfm_certs *next = NULL;
    assert_int_equal(sfm_certs_with(*s, e, &next), 0);
    sfm_certs_unref(*s);
    sfm_cert_entry_unref(e);
    *s = next;
}

/* A set of entries 0..n-1. */
static sfm_certs *set_of(uint64_t n)
{
    sfm_certs *s = sfm_certs_new();
    assert_non_null(s);
    for (uint64_t i = 0; i < n; i++)
        add(&s, entry_n(i));
    return s;
}

/* The checksum rule written out again, so the ids are not checked only against sfid.c. */
static void checksum_ref(const char id15[15], char out[3])
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int b = 0; b < 3; b++) {
        int bits = 0;
        for (int i = 0; i < 5; i++) {
            char c = id15[b * 5 + i];
            if (c >= 'A' && c <= 'Z')
                bits |= 1 << i;
        }
        out[b] = map[bits];
    }
}

static int digit62(char c)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return (int)(strchr(digits, c) - digits);
}

/* out = a + b, 11 base-62 digits each (the sum must fit). */
static void add_base62(const char a[11], const char b[11], char out[11])
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    int carry = 0;
    for (int i = 10; i >= 0; i--) {
        int d = digit62(a[i]) + digit62(b[i]) + carry;
        out[i] = digits[d % 62];
        carry = d / 62;
    }
    assert_int_equal(carry, 0);
}

static void test_certstore_entry_keeps_the_facts_of_its_leaf(void **state)
{
    (void)state;
    unsigned char fp[32];
    for (int i = 0; i < 32; i++)
        fp[i] = (unsigned char)(0xa0 + i);
    sfm_cert_entry *e =
        sfm_cert_entry_new("partner", "CN=partner,O=Acme", "CN=Acme CA", "0a1b2c", 100, 200, fp, 3, 1, 42);
    assert_non_null(e);
    assert_string_equal(e->label, "partner");
    assert_string_equal(e->subject, "CN=partner,O=Acme");
    assert_string_equal(e->issuer, "CN=Acme CA");
    assert_string_equal(e->serial, "0A1B2C");
    assert_int_equal(e->not_before, 100);
    assert_int_equal(e->not_after, 200);
    assert_memory_equal(e->fp, fp, 32);
    assert_string_equal(e->fp_hex, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
    assert_int_equal(e->chain_length, 3);
    assert_int_equal(e->preloaded, 1);
    assert_int_equal(e->created_ms, 42);
    char id[SFM_SFID_LEN + 1];
    sfm_certs_id_of(fp, id);
    assert_string_equal(e->id, id);
    assert_string_equal(e->id, "0P10Dn2Ie2x6yUpSEI"); /* 0xa0a1a2a3a4a5a6a7 in base 62, then the checksum */
    sfm_cert_entry_unref(e);
}

static void test_certstore_id_encodes_the_first_8_bytes_in_base62(void **state)
{
    (void)state;
    static const struct {
        uint64_t prefix;
        const char *id;
    } cases[] = {
        {0, "0P1000000000000CAA"},
        {UINT64_MAX, "0P10LygHa16AHYFSE4"},
        {0x0123456789abcdefULL, "0P10063UfDVRKBzCUP"},
        {0xab00000000000001ULL, "0P10EgECE8005QXSOY"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char fp[32];
        memset(fp, 0x5a, sizeof(fp));
        for (int b = 0; b < 8; b++)
            fp[b] = (unsigned char)(cases[i].prefix >> (56 - 8 * b));
        char id[SFM_SFID_LEN + 1];
        sfm_certs_id_of(fp, id);
        assert_string_equal(id, cases[i].id);
        /* Only the first 8 bytes count. */
        fp[31] ^= 0xff;
        char again[SFM_SFID_LEN + 1];
        sfm_certs_id_of(fp, again);
        assert_string_equal(again, id);
    }
}

static void test_certstore_ids_are_stable_and_salesforce_shaped(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < 2000; i++) {
        unsigned char fp[32];
        fp_of(i, fp);
        char id[SFM_SFID_LEN + 1], again[SFM_SFID_LEN + 1];
        sfm_certs_id_of(fp, id);
        sfm_certs_id_of(fp, again);
        assert_string_equal(id, again);
        assert_int_equal(strlen(id), 18);
        assert_memory_equal(id, "0P10", 4);
        assert_true(sfm_sfid_valid(id, "0P1"));
        char ck[3];
        checksum_ref(id, ck);
        assert_memory_equal(id + 15, ck, 3);
    }
}

static void test_certstore_finds_by_fingerprint_id_and_hex(void **state)
{
    (void)state;
    sfm_certs *s = set_of(3);
    assert_int_equal(sfm_certs_count(s), 3);
    for (uint64_t i = 0; i < 3; i++) {
        unsigned char fp[32];
        fp_of(i, fp);
        const sfm_cert_entry *e = sfm_certs_find_fp(s, fp);
        assert_non_null(e);
        assert_memory_equal(e->fp, fp, 32);

        assert_ptr_equal(sfm_certs_find_id(s, e->id), e);
        char id15[16];
        memcpy(id15, e->id, 15);
        id15[15] = '\0';
        assert_ptr_equal(sfm_certs_find_id(s, id15), e);
        char lower[SFM_SFID_LEN + 1];
        memcpy(lower, e->id, sizeof(lower));
        for (int k = 15; k < 18; k++)
            lower[k] = (char)(lower[k] >= 'A' && lower[k] <= 'Z' ? lower[k] - 'A' + 'a' : lower[k]);
        assert_ptr_equal(sfm_certs_find_id(s, lower), e);

        assert_ptr_equal(sfm_certs_find_fp_hex(s, e->fp_hex), e);
        char upper[65];
        for (int k = 0; k < 65; k++)
            upper[k] =
                (char)(e->fp_hex[k] >= 'a' && e->fp_hex[k] <= 'f' ? e->fp_hex[k] - 'a' + 'A' : e->fp_hex[k]);
        assert_ptr_equal(sfm_certs_find_fp_hex(s, upper), e);
    }
    sfm_certs_unref(s);
}

static void test_certstore_unknown_or_malformed_lookups_find_nothing(void **state)
{
    (void)state;
    sfm_certs *empty = sfm_certs_new();
    sfm_certs *s = set_of(20);
    unsigned char fp[32];
    fp_of(0, fp);
    const sfm_cert_entry *e = sfm_certs_find_fp(s, fp);
    assert_non_null(e);
    char id[SFM_SFID_LEN + 1], hex[65];
    memcpy(id, e->id, sizeof(id));
    memcpy(hex, e->fp_hex, sizeof(hex));

    assert_null(sfm_certs_find_fp(empty, fp));
    assert_null(sfm_certs_find_id(empty, id));
    assert_null(sfm_certs_find_fp_hex(empty, hex));

    /* Same shard and same first 8 bytes (so the same id), another certificate. */
    unsigned char near[32];
    memcpy(near, fp, 32);
    near[31] ^= 1;
    assert_null(sfm_certs_find_fp(s, near));
    fp_of(999, near);
    near[0] = fp[0];
    assert_null(sfm_certs_find_fp(s, near));
    char other[SFM_SFID_LEN + 1];
    sfm_certs_id_of(near, other);
    assert_null(sfm_certs_find_id(s, other));

    /* Not 64 hex digits. */
    char bad[130];
    memcpy(bad, hex, 63);
    bad[63] = '\0';
    assert_null(sfm_certs_find_fp_hex(s, bad));
    memcpy(bad, hex, 64);
    bad[64] = '0';
    bad[65] = '\0';
    assert_null(sfm_certs_find_fp_hex(s, bad));
    memcpy(bad, hex, 65);
    bad[10] = 'g';
    assert_null(sfm_certs_find_fp_hex(s, bad));
    bad[10] = ' ';
    assert_null(sfm_certs_find_fp_hex(s, bad));
    assert_null(sfm_certs_find_fp_hex(s, ""));
    assert_null(sfm_certs_find_fp_hex(s, NULL));

    /* Ids that are not ids of this set, or not ids at all. */
    memcpy(bad, id, sizeof(id));
    bad[17] = bad[17] == 'A' ? 'B' : 'A'; /* wrong checksum */
    assert_null(sfm_certs_find_id(s, bad));
    memcpy(bad, id, sizeof(id));
    bad[2] = '2'; /* another key prefix */
    assert_null(sfm_certs_find_id(s, bad));
    memcpy(bad, id, 15);
    bad[15] = 'A';
    bad[16] = '\0'; /* 16 characters */
    assert_null(sfm_certs_find_id(s, bad));
    /* Eleven base-62 digits can exceed 2^64: "zzzzzzzzzzz" names no fingerprint. */
    char over[SFM_SFID_LEN + 1] = "0P10zzzzzzzzzzz";
    checksum_ref(over, over + 15);
    over[18] = '\0';
    assert_null(sfm_certs_find_id(s, over));
    char over1[SFM_SFID_LEN + 1] = "0P10LygHa16AHYG"; /* 2^64 */
    checksum_ref(over1, over1 + 15);
    over1[18] = '\0';
    assert_null(sfm_certs_find_id(s, over1));
    /* Nor may an id that wraps around to the entry's own value: its digits + 2^64. */
    char alias[SFM_SFID_LEN + 1];
    memcpy(alias, id, 4);
    add_base62(id + 4, "LygHa16AHYG", alias + 4);
    checksum_ref(alias, alias + 15);
    alias[18] = '\0';
    assert_true(sfm_sfid_valid(alias, "0P1"));
    assert_null(sfm_certs_find_id(s, alias));
    sfm_certs *none = NULL;
    assert_int_equal(sfm_certs_without(s, alias, &none), -ENOENT);
    /* A valid 0P1 id that this module never makes (fourth character not '0'). */
    char fourth[SFM_SFID_LEN + 1];
    memcpy(fourth, id, sizeof(id));
    fourth[3] = '1';
    checksum_ref(fourth, fourth + 15);
    assert_null(sfm_certs_find_id(s, fourth));
    assert_null(sfm_certs_find_id(s, ""));
    assert_null(sfm_certs_find_id(s, NULL));
    assert_null(sfm_certs_find_id(s, "0P1\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
    char long_id[4096];
    memset(long_id, 'A', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    memcpy(long_id, id, 18);
    assert_null(sfm_certs_find_id(s, long_id));
    memset(long_id, 0xe9, sizeof(long_id) - 1);
    assert_null(sfm_certs_find_id(s, long_id));
    assert_null(sfm_certs_find_fp_hex(s, long_id));

    sfm_certs_unref(s);
    sfm_certs_unref(empty);
}

static void test_certstore_duplicate_fingerprint_is_eexist(void **state)
{
    (void)state;
    sfm_certs *s = set_of(10);
    sfm_certs *out = NULL;
    sfm_cert_entry *same = entry_n(3);
    assert_int_equal(sfm_certs_with(s, same, &out), -EEXIST);
    assert_null(out);
    assert_int_equal(atomic_load(&same->refs), 1);
    sfm_cert_entry_unref(same);

    /* The first 8 bytes make the id: another certificate with them would share it. */
    unsigned char fp[32];
    fp_of(4, fp);
    fp[20] ^= 0x40;
    sfm_cert_entry *twin = entry_fp(fp, 0);
    assert_int_equal(sfm_certs_with(s, twin, &out), -EEXIST);
    assert_null(out);
    sfm_cert_entry_unref(twin);

    assert_int_equal(sfm_certs_count(s), 10);
    sfm_certs_unref(s);
}

static void test_certstore_without_an_unknown_id_is_enoent(void **state)
{
    (void)state;
    sfm_certs *s = set_of(10);
    sfm_certs *out = NULL;
    char id[SFM_SFID_LEN + 1];
    unsigned char fp[32];
    fp_of(10, fp);
    sfm_certs_id_of(fp, id);
    assert_int_equal(sfm_certs_without(s, id, &out), -ENOENT);
    assert_int_equal(sfm_certs_without(s, "not an id", &out), -ENOENT);
    assert_int_equal(sfm_certs_without(s, "0P1000000000000CAB", &out), -ENOENT);
    assert_int_equal(sfm_certs_without(s, NULL, &out), -ENOENT);
    assert_null(out);

    /* Gone after removal: removing it again is -ENOENT too. */
    fp_of(2, fp);
    sfm_certs_id_of(fp, id);
    assert_int_equal(sfm_certs_without(s, id, &out), 0);
    sfm_certs *again = NULL;
    assert_int_equal(sfm_certs_without(out, id, &again), -ENOENT);
    assert_null(again);
    /* 15 characters name it as well. */
    char id15[16];
    memcpy(id15, id, 15);
    id15[15] = '\0';
    assert_int_equal(sfm_certs_without(s, id15, &again), 0);
    assert_int_equal(sfm_certs_count(again), 9);
    assert_null(sfm_certs_find_fp(again, fp));
    sfm_certs_unref(again);
    sfm_certs_unref(out);
    sfm_certs_unref(s);
}

static void test_certstore_with_and_without_leave_the_base_unchanged(void **state)
{
    (void)state;
    sfm_certs *base = set_of(50);
    sfm_cert_entry *e = entry_n(50);
    sfm_certs *more = NULL;
    assert_int_equal(sfm_certs_with(base, e, &more), 0);
    assert_int_equal(atomic_load(&e->refs), 2);
    assert_int_equal(sfm_certs_count(base), 50);
    assert_int_equal(sfm_certs_count(more), 51);
    assert_null(sfm_certs_find_fp(base, e->fp));
    assert_null(sfm_certs_find_id(base, e->id));
    assert_ptr_equal(sfm_certs_find_fp(more, e->fp), e);
    assert_ptr_equal(sfm_certs_find_id(more, e->id), e);

    unsigned char fp[32];
    fp_of(7, fp);
    const sfm_cert_entry *seven = sfm_certs_find_fp(base, fp);
    assert_non_null(seven);
    sfm_certs *less = NULL;
    assert_int_equal(sfm_certs_without(more, seven->id, &less), 0);
    assert_int_equal(sfm_certs_count(more), 51);
    assert_int_equal(sfm_certs_count(less), 50);
    assert_ptr_equal(sfm_certs_find_fp(more, fp), seven);
    assert_ptr_equal(sfm_certs_find_fp(base, fp), seven);
    assert_null(sfm_certs_find_fp(less, fp));
    assert_null(sfm_certs_find_id(less, seven->id));
    assert_ptr_equal(sfm_certs_find_fp(less, e->fp), e);

    /* Everything else is the same entry in all three sets. */
    for (uint64_t i = 0; i < 50; i++) {
        fp_of(i, fp);
        const sfm_cert_entry *b = sfm_certs_find_fp(base, fp);
        assert_non_null(b);
        assert_ptr_equal(sfm_certs_find_fp(more, fp), b);
        if (i != 7)
            assert_ptr_equal(sfm_certs_find_fp(less, fp), b);
    }
    sfm_certs_unref(less);
    sfm_certs_unref(more);
    sfm_certs_unref(base);
    /* The sets gave back every reference they took. */
    assert_int_equal(atomic_load(&e->refs), 1);
    sfm_cert_entry_unref(e);
}

static void test_certstore_sets_outlive_each_other(void **state)
{
    (void)state;
    unsigned char fp[32];
    /* The new set freed first: the old one still reads. */
    sfm_certs *old = set_of(300);
    sfm_certs *young = NULL;
    fp_of(1, fp);
    assert_int_equal(sfm_certs_without(old, sfm_certs_find_fp(old, fp)->id, &young), 0);
    sfm_cert_entry *e = entry_n(300);
    sfm_certs *younger = NULL;
    assert_int_equal(sfm_certs_with(young, e, &younger), 0);
    sfm_certs_unref(young);
    sfm_certs_unref(younger);
    for (uint64_t i = 0; i < 300; i++) {
        fp_of(i, fp);
        const sfm_cert_entry *x = sfm_certs_find_fp(old, fp);
        assert_non_null(x);
        assert_ptr_equal(sfm_certs_find_id(old, x->id), x);
    }
    assert_null(sfm_certs_find_fp(old, e->fp));
    assert_int_equal(atomic_load(&e->refs), 1);

    /* The old set freed first: the new one still reads, the removed entry included nowhere. */
    sfm_certs *next = NULL;
    assert_int_equal(sfm_certs_with(old, e, &next), 0);
    sfm_cert_entry_unref(e);
    sfm_certs *last = NULL;
    fp_of(2, fp);
    assert_int_equal(sfm_certs_without(next, sfm_certs_find_fp(next, fp)->id, &last), 0);
    sfm_certs_unref(old);
    sfm_certs_unref(next);
    assert_int_equal(sfm_certs_count(last), 300);
    for (uint64_t i = 0; i <= 300; i++) {
        fp_of(i, fp);
        const sfm_cert_entry *x = sfm_certs_find_fp(last, fp);
        if (i == 2) {
            assert_null(x);
            continue;
        }
        assert_non_null(x);
        assert_memory_equal(x->fp, fp, 32);
        assert_string_equal(x->subject, "CN=client");
    }
    sfm_certs_unref(last);
}

static void test_certstore_list_orders_by_creation_then_id(void **state)
{
    (void)state;
    sfm_certs *s = sfm_certs_new();
    const sfm_cert_entry **v = NULL;
    size_t n = 99;
    assert_int_equal(sfm_certs_list(s, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);

    static const int64_t created[] = {30, 10, 20, 10, 10, 40, 20};
    for (size_t i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
        unsigned char fp[32];
        fp_of(i, fp);
        add(&s, entry_fp(fp, created[i]));
    }
    assert_int_equal(sfm_certs_list(s, &v, &n), 0);
    assert_int_equal(n, 7);
    for (size_t i = 1; i < n; i++) {
        assert_true(v[i - 1]->created_ms <= v[i]->created_ms);
        if (v[i - 1]->created_ms == v[i]->created_ms)
            assert_true(strcmp(v[i - 1]->id, v[i]->id) < 0);
    }
    assert_int_equal(v[0]->created_ms, 10);
    assert_int_equal(v[2]->created_ms, 10);
    assert_int_equal(v[3]->created_ms, 20);
    assert_int_equal(v[6]->created_ms, 40);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(sfm_certs_find_id(s, v[i]->id), v[i]);
    free(v);

    /* Uploaded in the same millisecond into one shard, where they sit in the
     * reverse of their id order: the list still orders them by id. */
    for (int k = 1; k <= 3; k++) {
        unsigned char fp[32] = {0x42, (unsigned char)k, 0, 0, 0, 0, 0, (unsigned char)(3 - k)};
        add(&s, entry_fp(fp, 5));
    }
    assert_int_equal(sfm_certs_list(s, &v, &n), 0);
    assert_int_equal(n, 10);
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(v[k - 1]->created_ms, 5);
        assert_int_equal(v[k - 1]->fp[1], k);
    }
    free(v);
    sfm_certs_unref(s);
}

static void test_certstore_holds_100000_entries_added_one_by_one(void **state)
{
    (void)state;
    enum { N = 100000 };
    sfm_certs *s = set_of(N);
    assert_int_equal(sfm_certs_count(s), N);
    for (uint64_t i = 0; i < N; i++) {
        unsigned char fp[32];
        fp_of(i, fp);
        const sfm_cert_entry *e = sfm_certs_find_fp(s, fp);
        assert_non_null(e);
        assert_int_equal(e->created_ms, (int64_t)i);
        assert_ptr_equal(sfm_certs_find_id(s, e->id), e);
    }
    for (uint64_t i = N; i < N + 1000; i++) {
        unsigned char fp[32];
        fp_of(i, fp);
        assert_null(sfm_certs_find_fp(s, fp));
    }
    const sfm_cert_entry **v = NULL;
    size_t n = 0;
    assert_int_equal(sfm_certs_list(s, &v, &n), 0);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i]->created_ms, (int64_t)i);
    free(v);
    sfm_certs_unref(s);
}

/*
 * sfm_certs_build: the same set as adding one by one (what the server loads
 * at start), and the first entry with a key stays, as an upload stays over
 * the preload of the same certificate.
 */
static void test_certstore_build_matches_adding_one_by_one(void **state)
{
    (void)state;
    enum { N = 5000 };
    sfm_cert_entry **v = calloc(N + 2, sizeof(*v));
    assert_non_null(v);
    for (uint64_t i = 0; i < N; i++)
        v[i] = entry_n(i);
    v[N] = entry_n(7); /* the same fingerprint again: left out */
    unsigned char fp[32];
    fp_of(8, fp);
    fp[31] ^= 1;
    v[N + 1] = entry_fp(fp, 0); /* another certificate with entry 8's id: left out */

    sfm_certs *built = NULL;
    assert_int_equal(sfm_certs_build(v, N + 2, &built), 0);
    sfm_certs *added = set_of(N);
    assert_int_equal(sfm_certs_count(built), N);
    for (uint64_t i = 0; i < N; i++) {
        unsigned char f[32];
        fp_of(i, f);
        const sfm_cert_entry *e = sfm_certs_find_fp(built, f);
        assert_ptr_equal(e, v[i]); /* the first, not the duplicate */
        assert_string_equal(sfm_certs_find_fp(added, f)->id, e->id);
        assert_ptr_equal(sfm_certs_find_id(built, e->id), e);
    }
    assert_null(sfm_certs_find_fp(built, fp));
    /* The set holds references of its own. */
    assert_int_equal(atomic_load(&v[0]->refs), 2);
    assert_int_equal(atomic_load(&v[N]->refs), 1);
    for (size_t i = 0; i < N + 2; i++)
        sfm_cert_entry_unref(v[i]);
    free(v);
    sfm_certs_unref(added);

    /* And it is a set like any other: a change copies one shard. */
    sfm_certs *next = NULL;
    sfm_cert_entry *more = entry_n(N);
    assert_int_equal(sfm_certs_with(built, more, &next), 0);
    sfm_cert_entry_unref(more);
    assert_int_equal(sfm_certs_count(next), N + 1);
    assert_int_equal(sfm_certs_count(built), N);
    sfm_certs_unref(next);
    sfm_certs_unref(built);

    sfm_certs *empty = NULL;
    assert_int_equal(sfm_certs_build(NULL, 0, &empty), 0);
    assert_int_equal(sfm_certs_count(empty), 0);
    sfm_certs_unref(empty);
}

/* The multi-threaded case: the server's current set, swapped by one writer. */
enum { STABLE = 2000, CHURN_ROUNDS = 3000, READERS = 4 };

struct shared {
    pthread_mutex_t lock;
    sfm_certs *current; /* under lock */
    atomic_int stop;
    atomic_int ready;
};

struct reader {
    pthread_t thread;
    struct shared *sh;
    unsigned seed;
    long lookups;
    long failures;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint64_t x = r->seed;
    int announced = 0;
    while (!atomic_load(&r->sh->stop)) {
        pthread_mutex_lock(&r->sh->lock);
        sfm_certs *s = sfm_certs_ref(r->sh->current);
        pthread_mutex_unlock(&r->sh->lock);
        for (int k = 0; k < 64; k++) {
            unsigned char fp[32];
            fp_of(mix(&x) % STABLE, fp);
            const sfm_cert_entry *e = sfm_certs_find_fp(s, fp);
            if (!e || memcmp(e->fp, fp, 32) != 0 || sfm_certs_find_id(s, e->id) != e)
                r->failures++;
            /* An entry that comes and goes: absent, or whole. */
            fp_of(STABLE + mix(&x) % CHURN_ROUNDS, fp);
            e = sfm_certs_find_fp(s, fp);
            if (e && (memcmp(e->fp, fp, 32) != 0 || strcmp(e->label, "label") != 0))
                r->failures++;
            r->lookups += 2;
        }
        sfm_certs_unref(s);
        if (!announced) {
            atomic_fetch_add(&r->sh->ready, 1);
            announced = 1;
        }
    }
    return NULL;
}

static void swap_in(struct shared *sh, sfm_certs *next)
{
    pthread_mutex_lock(&sh->lock);
    sfm_certs *old = sh->current;
    sh->current = next;
    pthread_mutex_unlock(&sh->lock);
    sfm_certs_unref(old);
}

static void test_certstore_readers_need_no_lock_while_a_writer_swaps_sets(void **state)
{
    (void)state;
    struct shared sh = {.current = set_of(STABLE)};
    pthread_mutex_init(&sh.lock, NULL);
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.ready, 0);
    struct reader r[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.sh = &sh, .seed = (unsigned)(i + 1)};
        assert_int_equal(pthread_create(&r[i].thread, NULL, reader_main, &r[i]), 0);
    }
    while (atomic_load(&sh.ready) < READERS)
        sched_yield();

    /* Only this thread changes the set, so it may read `current` without the lock. */
    for (uint64_t i = 0; i < CHURN_ROUNDS; i++) {
        sfm_certs *next = NULL;
        sfm_cert_entry *e = entry_n(STABLE + i);
        assert_int_equal(sfm_certs_with(sh.current, e, &next), 0);
        sfm_cert_entry_unref(e);
        swap_in(&sh, next);
        if (i >= 8) {
            unsigned char fp[32];
            char id[SFM_SFID_LEN + 1];
            fp_of(STABLE + i - 8, fp);
            sfm_certs_id_of(fp, id);
            assert_int_equal(sfm_certs_without(sh.current, id, &next), 0);
            swap_in(&sh, next);
        }
    }
    atomic_store(&sh.stop, 1);
    long lookups = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(r[i].thread, NULL);
        assert_int_equal(r[i].failures, 0);
        lookups += r[i].lookups;
    }
    assert_true(lookups > 0);
    assert_int_equal(sfm_certs_count(sh.current), STABLE + 8);
    sfm_certs_unref(sh.current);
    pthread_mutex_destroy(&sh.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certstore_entry_keeps_the_facts_of_its_leaf),
        cmocka_unit_test(test_certstore_id_encodes_the_first_8_bytes_in_base62),
        cmocka_unit_test(test_certstore_ids_are_stable_and_salesforce_shaped),
        cmocka_unit_test(test_certstore_finds_by_fingerprint_id_and_hex),
        cmocka_unit_test(test_certstore_unknown_or_malformed_lookups_find_nothing),
        cmocka_unit_test(test_certstore_duplicate_fingerprint_is_eexist),
        cmocka_unit_test(test_certstore_without_an_unknown_id_is_enoent),
        cmocka_unit_test(test_certstore_with_and_without_leave_the_base_unchanged),
        cmocka_unit_test(test_certstore_sets_outlive_each_other),
        cmocka_unit_test(test_certstore_list_orders_by_creation_then_id),
        cmocka_unit_test(test_certstore_holds_100000_entries_added_one_by_one),
        cmocka_unit_test(test_certstore_build_matches_adding_one_by_one),
        cmocka_unit_test(test_certstore_readers_need_no_lock_while_a_writer_swaps_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
