/*
 * Unit tests of ca/pki.c: facts of known certificates, PEM splitting, the dev CA,
 * the upload check and trust anchors. Each case is named test_pki_<claim>.
 *
 * The fixture certificate below was made once with OpenSSL 3.0 from a request whose
 * subject exercises RFC 4514 escaping (",", "+", '"', "<", ">", ";", "\", a leading
 * "#", a trailing space), a multi-valued RDN, UTF-8, an attribute type with no name
 * (2.3.4) and emailAddress. It is a v1 self-signed certificate, serial 0x00ABCDEF0123,
 * valid 2026-11-27T08:15:02Z to 2126-11-03T08:15:02Z (a GeneralizedTime).
 */
#include "pki.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** Longest path the tests build. */
#define T_PATH_MAX 4096
/** Largest file the tests read. */
#define T_FILE_MAX (4 * 1024 * 1024)

static const char k_names_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                  "MIICKTCCAc8CBgCrze8BIzAKBggqhkjOPQQDAjCBnDELMAkGA1UEBhMCVVMxEDAO\n"
                                  "BgNVBAgMB1rDvHJpY2gxEzARBgNVBAoMCkFjbWUsIEluYy4xGjAKBgNVBAsMA1Ir\n"
                                  "RDAMBgNVBAsMBUxhYjsxMR4wHAYDVQQDDBUjbGVhZCAicXVvdGVkIiA8eD5ceSAx\n"
                                  "DjAMBgJTBAwGY3VzdG9tMRowGAYJKoZIhvcNAQkBFgthQGIuZXhhbXBsZTAgFw0y\n"
                                  "NjExMjcwODE1MDJaGA8yMTI2MTEwMzA4MTUwMlowgZwxCzAJBgNVBAYTAlVTMRAw\n"
                                  "DgYDVQQIDAdaw7xyaWNoMRMwEQYDVQQKDApBY21lLCBJbmMuMRowCgYDVQQLDANS\n"
                                  "K0QwDAYDVQQLDAVMYWI7MTEeMBwGA1UEAwwVI2xlYWQgInF1b3RlZCIgPHg+XHkg\n"
                                  "MQ4wDAYCUwQMBmN1c3RvbTEaMBgGCSqGSIb3DQEJARYLYUBiLmV4YW1wbGUwWTAT\n"
                                  "BgcqhkjOPQIBBggqhkjOPQMBBwNCAAROuu+ycAu52QFI+eGGc8CV4gUdQQ6Amwfj\n"
                                  "UT+k7V2DlYbIyoGDGjAbWkWuZlEB+PxNlB23n6VqpLL5pIyDIBjFMAoGCCqGSM49\n"
                                  "BAMCA0gAMEUCIQDaTigy9IgZBF3o/woYu6EjPbjx2DJR7knZINe+kawwUwIgF8DU\n"
                                  "l/pCyk3f7zp0xuFhJsawo88ubJ59MjUQ/LuduQI=\n"
                                  "-----END CERTIFICATE-----\n";

/* RFC 4514: most specific RDN first; within the multi-valued RDN, DER (SET OF) order. */
static const char k_names_rfc4514[] =
    "emailAddress=a@b.example,2.3.4=#0C06637573746F6D,"
    "CN=\\#lead \\\"quoted\\\" \\<x\\>\\\\y\\ ,OU=R\\+D+OU=Lab\\;1,O=Acme\\, Inc.,"
    "ST=Z\xc3\xbcrich,C=US";
/* `openssl x509 -fingerprint -sha256`, lowercased, colons removed */
static const char k_names_sha256[] = "f62aa5aec236448838161b7e25f842fd83e5d579e662b387d560de78be9d45e0";
#define K_NAMES_NOT_BEFORE ((time_t)1795767302)
#define K_NAMES_NOT_AFTER  ((time_t)4949367302LL)

/* ---- helpers ----------------------------------------------------------------------------- */

/* Everything the dev CA tests share: one CA directory and the certificates issued from it. */
typedef struct fixture {
    char root[T_PATH_MAX]; /* temp dir */
    char ca[T_PATH_MAX];   /* root/ca */
} fixture;

static char *path_of(char *buf, const fixture *fx, const char *rel)
{
    int n = snprintf(buf, T_PATH_MAX, "%s/%s", fx->ca, rel);

    assert_true(n > 0 && n < T_PATH_MAX);
    return buf;
}

static char *slurp(const char *path, size_t *len)
{
    char err[SFM_PKI_ERR_LEN];
    char *text = NULL;

    assert_int_equal(sfm_pki_read_file(path, T_FILE_MAX, &text, len, err), 0);
    return text;
}

/* The first certificate of a PEM file (owned by *out). */
static void first_cert(const char *path, sfm_der *out)
{
    size_t len = 0, n = 0;
    char *text = slurp(path, &len);
    sfm_der ders[SFM_PKI_MAX_CHAIN];
    char err[SFM_PKI_ERR_LEN];

    assert_int_equal(sfm_pki_pem_certs(text, len, ders, SFM_PKI_MAX_CHAIN, &n, NULL, err), 0);
    assert_true(n >= 1);
    *out = ders[0];
    sfm_pki_ders_free(ders + 1, n - 1);
    free(text);
}

static void facts_of_file(const char *path, sfm_pki_facts *f)
{
    sfm_der d;

    first_cert(path, &d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, f), 0);
    free(d.der);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static sfm_pki_trust *trust_of(const char *path)
{
    sfm_pki_trust *t = NULL;
    char err[SFM_PKI_ERR_LEN];
    size_t skipped = 0;

    assert_int_equal(sfm_pki_trust_new(&t), 0);
    assert_int_equal(sfm_pki_trust_add_file(t, path, &skipped, err), 0);
    return t;
}

/* Judges a file; returns its problem bits. */
static unsigned check_file(const sfm_pki_trust *t, const char *path, time_t now, char *detail, size_t cap)
{
    size_t len = 0;
    char *text = slurp(path, &len);
    unsigned p = 0xffff;

    assert_int_equal(sfm_pki_check_pem(t, text, len, now, &p, detail, cap), 0);
    free(text);
    return p;
}

static void issue(const fixture *fx, enum sfm_pki_kind kind, const char *cn, enum sfm_pki_key key,
                  sfm_pki_issue_opts *extra)
{
    char err[SFM_PKI_ERR_LEN] = "", prefix[T_PATH_MAX];
    sfm_pki_issue_opts o;

    if (extra != NULL)
        o = *extra;
    else
        memset(&o, 0, sizeof o);
    o.kind = kind;
    o.cn = cn;
    o.key = key;
    int n = snprintf(prefix, sizeof prefix, "%s/out/%s", fx->ca, cn);
    assert_true(n > 0 && n < (int)sizeof prefix);
    o.out_prefix = prefix;
    if (sfm_pki_issue(fx->ca, &o, err) != 0)
        fail_msg("issue %s: %s", cn, err);
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[SFM_PKI_ERR_LEN] = "";
    const char *tmp = getenv("TMPDIR");

    if (fx == NULL)
        return -1;
    snprintf(fx->root, sizeof fx->root, "%s/sfmtls-test-pki.XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(fx->root) == NULL)
        return -1;
    if (snprintf(fx->ca, sizeof fx->ca, "%s/ca", fx->root) >= (int)sizeof fx->ca)
        return -1;
    if (sfm_pki_ca_init(fx->ca, SFM_PKI_KEY_EC_P256, err) != 0) {
        fprintf(stderr, "ca_init: %s\n", err);
        return -1;
    }
    static const char *const sans[] = {"localhost", "127.0.0.1", "::1", "api.example.test"};
    struct {
        enum sfm_pki_kind kind;
        const char *cn;
        enum sfm_pki_key key;
        sfm_pki_issue_opts opts;
    } certs[] = {
        {SFM_PKI_CLIENT, "alice", SFM_PKI_KEY_EC_P256, {0}},
        {SFM_PKI_SERVER, "server", SFM_PKI_KEY_RSA2048, {.sans = sans, .n_sans = 4}},
        {SFM_PKI_CLIENT, "self", SFM_PKI_KEY_EC_P256, {.self_signed = 1}},
        {SFM_PKI_CLIENT, "expired", SFM_PKI_KEY_EC_P256, {.expired = 1, .days = 10}},
        {SFM_PKI_CLIENT, "future", SFM_PKI_KEY_EC_P256, {.not_yet_valid = 1}},
        {SFM_PKI_CLIENT, "untrusted", SFM_PKI_KEY_EC_P256, {.untrusted = 1}},
        {SFM_PKI_CLIENT, "ekuserver", SFM_PKI_KEY_EC_P256, {.eku_server = 1}},
        {SFM_PKI_CLIENT, "withp12", SFM_PKI_KEY_EC_P256, {.p12_password = "pw"}},
    };
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        issue(fx, certs[i].kind, certs[i].cn, certs[i].key, &certs[i].opts);
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;

    if (fx != NULL && fx->root[0] != '\0')
        nftw(fx->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ---- facts ------------------------------------------------------------------------------- */

static void names_cert(sfm_der *out)
{
    size_t n = 0;
    char err[SFM_PKI_ERR_LEN];

    assert_int_equal(sfm_pki_pem_certs(k_names_pem, strlen(k_names_pem), out, 1, &n, NULL, err), 0);
    assert_int_equal(n, 1);
}

static void test_pki_facts_subject_and_issuer_are_rfc4514_escaped_most_specific_first(void **state)
{
    sfm_der d;
    sfm_pki_facts f;

    (void)state;
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_string_equal(f.subject, k_names_rfc4514);
    assert_string_equal(f.issuer, k_names_rfc4514);
    free(d.der);
}

static void test_pki_facts_serial_is_uppercase_hex_without_sign_octet(void **state)
{
    sfm_der d;
    sfm_pki_facts f;

    (void)state;
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_string_equal(f.serial, "ABCDEF0123");
    free(d.der);
}

static void test_pki_facts_fingerprint_is_sha256_of_der(void **state)
{
    sfm_der d;
    sfm_pki_facts f;
    char hex[65];

    (void)state;
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_string_equal(f.sha256, k_names_sha256);
    assert_int_equal(sfm_pki_sha256_hex(d.der, d.len, hex), 0);
    assert_string_equal(hex, k_names_sha256);
    free(d.der);
}

static void test_pki_facts_dates_read_utctime_and_generalizedtime(void **state)
{
    sfm_der d;
    sfm_pki_facts f;

    (void)state;
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_true(f.not_before == K_NAMES_NOT_BEFORE);
    assert_true(f.not_after == K_NAMES_NOT_AFTER);
    free(d.der);
}

static void test_pki_facts_v1_self_signed_is_self_issued_and_self_signed(void **state)
{
    sfm_der d;
    sfm_pki_facts f;

    (void)state;
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_int_equal(f.self_issued, 1);
    assert_int_equal(f.self_signed, 1);
    assert_int_equal(f.is_ca, 0);
    assert_int_equal(f.eku, 0);
    free(d.der);
}

static void test_pki_facts_rejects_garbage_and_truncation(void **state)
{
    sfm_der d;
    sfm_pki_facts f;
    static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};

    (void)state;
    assert_int_equal(sfm_pki_facts_of(junk, sizeof junk, &f), SFM_PKI_EPARSE);
    names_cert(&d);
    assert_int_equal(sfm_pki_facts_of(d.der, d.len - 10, &f), SFM_PKI_EPARSE);
    assert_int_equal(sfm_pki_facts_of(d.der, 0, &f), SFM_PKI_EPARSE);
    free(d.der);
}

static void test_pki_facts_signature_tampering_clears_self_signed(void **state)
{
    sfm_der d;
    sfm_pki_facts f;

    (void)state;
    names_cert(&d);
    d.der[d.len - 3] ^= 0x01; /* inside the ECDSA signature's s */
    assert_int_equal(sfm_pki_facts_of(d.der, d.len, &f), 0);
    assert_int_equal(f.self_issued, 1);
    assert_int_equal(f.self_signed, 0);
    free(d.der);
}

static void test_pki_sha256_hex_matches_the_fips_vector(void **state)
{
    char hex[65];

    (void)state;
    assert_int_equal(sfm_pki_sha256_hex((const unsigned char *)"abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_pki_iso8601_is_utc_with_milliseconds(void **state)
{
    char out[32];

    (void)state;
    sfm_pki_iso8601(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    sfm_pki_iso8601(1700000000, out);
    assert_string_equal(out, "2023-11-14T22:13:20.000Z");
    sfm_pki_iso8601(K_NAMES_NOT_AFTER, out);
    assert_string_equal(out, "2126-11-03T08:15:02.000Z");
}

static void test_pki_key_parse_knows_the_four_names(void **state)
{
    enum sfm_pki_key k;

    (void)state;
    assert_int_equal(sfm_pki_key_parse("ec", &k), 0);
    assert_int_equal(k, SFM_PKI_KEY_EC_P256);
    assert_int_equal(sfm_pki_key_parse("rsa2048", &k), 0);
    assert_int_equal(k, SFM_PKI_KEY_RSA2048);
    assert_int_equal(sfm_pki_key_parse("rsa3072", &k), 0);
    assert_int_equal(k, SFM_PKI_KEY_RSA3072);
    assert_int_equal(sfm_pki_key_parse("rsa4096", &k), 0);
    assert_int_equal(k, SFM_PKI_KEY_RSA4096);
    assert_int_equal(sfm_pki_key_parse("dsa", &k), SFM_PKI_EARG);
    assert_int_equal(sfm_pki_key_parse("EC", &k), SFM_PKI_EARG);
}

static void test_pki_problem_codes_are_spec_names(void **state)
{
    (void)state;
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED), "PRIVATE_KEY_NOT_ALLOWED");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_MALFORMED_CERTIFICATE), "MALFORMED_CERTIFICATE");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_CERTIFICATE_TOO_LARGE), "CERTIFICATE_TOO_LARGE");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_SELF_SIGNED_CERTIFICATE), "SELF_SIGNED_CERTIFICATE");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_UNTRUSTED_CERTIFICATE), "UNTRUSTED_CERTIFICATE");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_CERTIFICATE_EXPIRED), "CERTIFICATE_EXPIRED");
    assert_string_equal(sfm_pki_problem_code(SFM_PKI_P_CERTIFICATE_NOT_YET_VALID),
                        "CERTIFICATE_NOT_YET_VALID");
}

/* ---- PEM splitting ----------------------------------------------------------------------- */

static char *concat(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);

    assert_non_null(s);
    snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static void test_pki_pem_certs_splits_in_order_ignoring_text_between(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], err[SFM_PKI_ERR_LEN];
    size_t len = 0, n = 0;
    char *chain = slurp(path_of(path, fx, "out/alice.chain.pem"), &len);
    char *text = concat("subject=whatever\n", chain, k_names_pem);
    sfm_der d[4];
    sfm_pki_facts f;
    int has_key = -1;

    assert_int_equal(sfm_pki_pem_certs(text, strlen(text), d, 4, &n, &has_key, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(has_key, 0);
    assert_int_equal(sfm_pki_facts_of(d[0].der, d[0].len, &f), 0);
    assert_string_equal(f.subject, "CN=alice,O=sfmtls");
    assert_int_equal(sfm_pki_facts_of(d[1].der, d[1].len, &f), 0);
    assert_non_null(strstr(f.subject, "Intermediate CA"));
    assert_int_equal(sfm_pki_facts_of(d[2].der, d[2].len, &f), 0);
    assert_string_equal(f.sha256, k_names_sha256);
    sfm_pki_ders_free(d, n);
    free(text);
    free(chain);
}

static void test_pki_pem_certs_flags_every_private_key_armour(void **state)
{
    static const char *const keys[] = {
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", /* even unterminated */
    };
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[2];

    (void)state;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *text = concat(k_names_pem, keys[i], "");
        size_t n = 0;
        int has_key = 0;
        assert_int_equal(sfm_pki_pem_certs(text, strlen(text), d, 2, &n, &has_key, err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(has_key, 1);
        sfm_pki_ders_free(d, n);
        free(text);
    }
}

static void test_pki_pem_certs_ignores_public_keys_and_csrs(void **state)
{
    static const char other[] =
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[2];
    size_t n = 9;
    int has_key = 9;

    (void)state;
    assert_int_equal(sfm_pki_pem_certs(other, strlen(other), d, 2, &n, &has_key, err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(has_key, 0);
}

static void test_pki_pem_certs_rejects_bad_base64(void **state)
{
    static const char bad[] = "-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n";
    static const char bad_pad[] = "-----BEGIN CERTIFICATE-----\nMI=B\n-----END CERTIFICATE-----\n";
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[2];
    size_t n = 0;

    (void)state;
    assert_int_equal(sfm_pki_pem_certs(bad, strlen(bad), d, 2, &n, NULL, err), SFM_PKI_EPARSE);
    assert_int_equal(sfm_pki_pem_certs(bad_pad, strlen(bad_pad), d, 2, &n, NULL, err), SFM_PKI_EPARSE);
}

static void test_pki_pem_certs_rejects_a_block_without_end(void **state)
{
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[2];
    size_t n = 0;
    size_t cut = strlen(k_names_pem) - 10; /* inside the END line */

    (void)state;
    assert_int_equal(sfm_pki_pem_certs(k_names_pem, cut, d, 2, &n, NULL, err), SFM_PKI_EPARSE);
}

static void test_pki_pem_certs_more_than_max_is_earg(void **state)
{
    char *text = concat(k_names_pem, k_names_pem, k_names_pem);
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[2];
    size_t n = 0;

    (void)state;
    assert_int_equal(sfm_pki_pem_certs(text, strlen(text), d, 2, &n, NULL, err), SFM_PKI_EARG);
    free(text);
}

static void test_pki_pem_certs_without_certificates_finds_none(void **state)
{
    char err[SFM_PKI_ERR_LEN];
    sfm_der d[1];
    size_t n = 7;

    (void)state;
    assert_int_equal(sfm_pki_pem_certs("hello", 5, d, 1, &n, NULL, err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sfm_pki_pem_certs("", 0, d, 1, &n, NULL, err), 0);
    assert_int_equal(n, 0);
}

/* ---- the dev CA -------------------------------------------------------------------------- */

static void test_pki_ca_init_writes_four_files_keys_0600(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    struct stat st;

    assert_int_equal(sfm_pki_ca_exists(fx->ca), 1);
    /* The certificates are there too, as regular files. */
    assert_int_equal(stat(path_of(path, fx, "ca.pem"), &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
    assert_int_equal(stat(path_of(path, fx, "intermediate.pem"), &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size > 0);
    assert_int_equal(stat(path_of(path, fx, "ca.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path_of(path, fx, "intermediate.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(fx->ca, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_pki_ca_init_refuses_a_directory_that_holds_a_ca(void **state)
{
    fixture *fx = *state;
    char err[SFM_PKI_ERR_LEN] = "";

    assert_int_equal(sfm_pki_ca_init(fx->ca, SFM_PKI_KEY_EC_P256, err), SFM_PKI_EARG);
    assert_non_null(strstr(err, "already holds a CA"));
}

static void test_pki_ca_exists_is_false_for_an_empty_directory(void **state)
{
    fixture *fx = *state;

    assert_int_equal(sfm_pki_ca_exists(fx->root), 0);
    assert_int_equal(sfm_pki_ca_exists("/nonexistent/sfmtls"), 0);
}

static void test_pki_ca_root_is_a_self_signed_ca_and_signs_the_intermediate(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts root, inter;

    facts_of_file(path_of(path, fx, "ca.pem"), &root);
    facts_of_file(path_of(path, fx, "intermediate.pem"), &inter);
    assert_int_equal(root.is_ca, 1);
    assert_int_equal(root.self_signed, 1);
    assert_int_equal(inter.is_ca, 1);
    assert_int_equal(inter.self_issued, 0);
    assert_string_equal(inter.issuer, root.subject);
    assert_non_null(strstr(root.subject, "CN=sfmtls Dev Root CA "));
    assert_int_equal(strlen(root.serial), 32);
}

static void test_pki_issue_client_has_client_eku_and_a_trusted_chain(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], detail[1024];
    sfm_pki_facts leaf, inter;
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));

    facts_of_file(path_of(path, fx, "out/alice.crt"), &leaf);
    facts_of_file(path_of(path, fx, "intermediate.pem"), &inter);
    assert_string_equal(leaf.subject, "CN=alice,O=sfmtls");
    assert_string_equal(leaf.issuer, inter.subject);
    assert_int_equal(leaf.eku, SFM_PKI_EKU_PRESENT | SFM_PKI_EKU_CLIENT);
    assert_int_equal(leaf.is_ca, 0);
    assert_true(leaf.not_before <= time(NULL) && leaf.not_after > time(NULL) + 364 * 86400);
    assert_int_equal(
        check_file(t, path_of(path, fx, "out/alice.chain.pem"), time(NULL), detail, sizeof detail), 0);
    assert_string_equal(detail, "");
    sfm_pki_trust_free(t);
}

static void test_pki_issue_server_is_rsa_with_server_eku(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts f;
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    size_t len = 0;
    char *key = slurp(path_of(path, fx, "out/server.key"), &len);

    facts_of_file(path_of(path, fx, "out/server.crt"), &f);
    assert_int_equal(f.eku, SFM_PKI_EKU_PRESENT | SFM_PKI_EKU_SERVER);
    assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
    assert_true(len > 1500); /* RSA-2048 PKCS#8 PEM; P-256 would be ~240 bytes */
    assert_int_equal(check_file(t, path_of(path, fx, "out/server.chain.pem"), time(NULL), NULL, 0), 0);
    free(key);
    sfm_pki_trust_free(t);
}

static void test_pki_issue_server_with_a_long_host_name_uses_a_generic_cn(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    static const char host[] = "a-host-name-longer-than-sixty-four-bytes.eu-west.my.salesforce.example.com";
    sfm_pki_facts f;

    issue(fx, SFM_PKI_SERVER, host, SFM_PKI_KEY_EC_P256, NULL);
    facts_of_file(
        path_of(path, fx,
                "out/a-host-name-longer-than-sixty-four-bytes.eu-west.my.salesforce.example.com.crt"),
        &f);
    assert_string_equal(f.subject, "CN=sfmtls server,O=sfmtls");
    assert_int_equal(f.eku, SFM_PKI_EKU_PRESENT | SFM_PKI_EKU_SERVER);
}

static void test_pki_issue_self_signed_writes_the_leaf_alone(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], err[SFM_PKI_ERR_LEN];
    sfm_pki_facts f;
    size_t len = 0, n = 0;
    char *chain = slurp(path_of(path, fx, "out/self.chain.pem"), &len);
    sfm_der d[4];

    facts_of_file(path_of(path, fx, "out/self.crt"), &f);
    assert_int_equal(f.self_signed, 1);
    assert_int_equal(f.is_ca, 0);
    assert_int_equal(f.eku, SFM_PKI_EKU_PRESENT | SFM_PKI_EKU_CLIENT);
    assert_int_equal(sfm_pki_pem_certs(chain, len, d, 4, &n, NULL, err), 0);
    assert_int_equal(n, 1);
    sfm_pki_ders_free(d, n);
    free(chain);
}

static void test_pki_issue_expired_ended_before_now(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts f;

    facts_of_file(path_of(path, fx, "out/expired.crt"), &f);
    assert_true(f.not_after < time(NULL));
    assert_true(f.not_after - f.not_before == 10 * 86400);
}

static void test_pki_issue_not_yet_valid_starts_after_now(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts f;

    facts_of_file(path_of(path, fx, "out/future.crt"), &f);
    assert_true(f.not_before > time(NULL));
}

static void test_pki_issue_untrusted_comes_from_the_untrusted_ca(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts leaf, uca;

    facts_of_file(path_of(path, fx, "out/untrusted.crt"), &leaf);
    facts_of_file(path_of(path, fx, "untrusted-ca.pem"), &uca);
    assert_string_equal(leaf.issuer, uca.subject);
    assert_int_equal(uca.self_signed, 1);
    assert_int_equal(uca.is_ca, 1);
}

static void test_pki_issue_eku_server_has_server_auth_only(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_facts f;

    facts_of_file(path_of(path, fx, "out/ekuserver.crt"), &f);
    assert_int_equal(f.eku, SFM_PKI_EKU_PRESENT | SFM_PKI_EKU_SERVER);
}

static void test_pki_issue_p12_writes_a_0600_file(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    struct stat st;

    assert_int_equal(stat(path_of(path, fx, "out/withp12.p12"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(st.st_size > 500);
    assert_int_not_equal(stat(path_of(path, fx, "out/alice.p12"), &st), 0);
}

static void test_pki_issue_rejects_bad_options(void **state)
{
    fixture *fx = *state;
    char err[SFM_PKI_ERR_LEN], prefix[T_PATH_MAX];
    const char *bad_san[] = {"not a name"};
    sfm_pki_issue_opts o;

    assert_true(snprintf(prefix, sizeof prefix, "%s/out/bad", fx->ca) < (int)sizeof prefix);
    memset(&o, 0, sizeof o);
    o.out_prefix = prefix;
    o.cn = "";
    assert_int_equal(sfm_pki_issue(fx->ca, &o, err), SFM_PKI_EARG);
    o.cn = "x";
    o.expired = 1;
    o.untrusted = 1;
    assert_int_equal(sfm_pki_issue(fx->ca, &o, err), SFM_PKI_EARG);
    o.expired = o.untrusted = 0;
    o.sans = bad_san;
    o.n_sans = 1;
    assert_int_equal(sfm_pki_issue(fx->ca, &o, err), SFM_PKI_EARG);
    o.n_sans = 0;
    o.cn = "0123456789012345678901234567890123456789012345678901234567890123456789";
    assert_int_equal(sfm_pki_issue(fx->ca, &o, err), SFM_PKI_EARG);
    o.cn = "x";
    o.p12_password = "caf\xc3\xa9";
    assert_int_equal(sfm_pki_issue(fx->ca, &o, err), SFM_PKI_EARG);
    o.p12_password = NULL;
    assert_int_equal(sfm_pki_issue(fx->root, &o, err), SFM_PKI_EARG); /* no CA there */
}

/* ---- the upload check -------------------------------------------------------------------- */

static void test_pki_check_pem_private_key_is_not_allowed(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], detail[1024];
    size_t a = 0, b = 0;
    char *chain = slurp(path_of(path, fx, "out/alice.chain.pem"), &a);
    char *key = slurp(path_of(path, fx, "out/alice.key"), &b);
    char *text = concat(chain, key, "");
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    unsigned p = 0;

    assert_int_equal(sfm_pki_check_pem(t, text, strlen(text), time(NULL), &p, detail, sizeof detail), 0);
    assert_int_equal(p, SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED);
    assert_true(strncmp(detail, "PRIVATE_KEY_NOT_ALLOWED: ", 25) == 0);
    sfm_pki_trust_free(t);
    free(text);
    free(key);
    free(chain);
}

static void test_pki_check_pem_malformed_when_no_certificate_or_bad_der(void **state)
{
    static const char not_x509[] = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    unsigned p = 0;

    (void)state;
    assert_int_equal(sfm_pki_check_pem(NULL, "nothing", 7, time(NULL), &p, NULL, 0), 0);
    assert_int_equal(p, SFM_PKI_P_MALFORMED_CERTIFICATE);
    assert_int_equal(sfm_pki_check_pem(NULL, not_x509, strlen(not_x509), time(NULL), &p, NULL, 0), 0);
    assert_int_equal(p, SFM_PKI_P_MALFORMED_CERTIFICATE);
}

static void test_pki_check_pem_more_than_ten_certificates_is_too_large(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    size_t a = 0, b = 0;
    char *chain = slurp(path_of(path, fx, "out/alice.chain.pem"), &a);
    char *inter = slurp(path_of(path, fx, "intermediate.pem"), &b);
    char *text = malloc(a + 9 * b + 1);
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    unsigned p = 0;

    memcpy(text, chain, a);
    for (size_t i = 0; i < 8; i++)
        memcpy(text + a + i * b, inter, b);
    text[a + 8 * b] = '\0'; /* 10 certificates: fine */
    assert_int_equal(sfm_pki_check_pem(t, text, strlen(text), time(NULL), &p, NULL, 0), 0);
    assert_int_equal(p, 0);
    memcpy(text + a + 8 * b, inter, b);
    text[a + 9 * b] = '\0'; /* 11 */
    assert_int_equal(sfm_pki_check_pem(t, text, strlen(text), time(NULL), &p, NULL, 0), 0);
    assert_int_equal(p, SFM_PKI_P_CERTIFICATE_TOO_LARGE);
    sfm_pki_trust_free(t);
    free(text);
    free(inter);
    free(chain);
}

static void test_pki_check_pem_over_one_megabyte_is_too_large(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    size_t a = 0, big = SFM_PKI_UPLOAD_MAX_BYTES + 1;
    char *chain = slurp(path_of(path, fx, "out/alice.chain.pem"), &a);
    char *text = malloc(big + a + 1);
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    unsigned p = 0;

    memcpy(text, chain, a);
    memset(text + a, '\n', big);
    text[a + big] = '\0';
    assert_int_equal(sfm_pki_check_pem(t, text, a + big, time(NULL), &p, NULL, 0), 0);
    assert_int_equal(p, SFM_PKI_P_CERTIFICATE_TOO_LARGE);
    sfm_pki_trust_free(t);
    free(text);
    free(chain);
}

static void test_pki_check_pem_self_signed_leaf_is_self_signed_and_untrusted(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], detail[1024];
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));

    assert_int_equal(check_file(t, path_of(path, fx, "out/self.crt"), time(NULL), detail, sizeof detail),
                     SFM_PKI_P_SELF_SIGNED_CERTIFICATE | SFM_PKI_P_UNTRUSTED_CERTIFICATE);
    assert_true(strncmp(detail, "SELF_SIGNED_CERTIFICATE: ", 25) == 0);
    assert_non_null(strstr(detail, "\nUNTRUSTED_CERTIFICATE: "));
    sfm_pki_trust_free(t);
}

static void test_pki_check_pem_untrusted_ca_leaf_and_bare_leaf_are_untrusted(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));

    assert_int_equal(check_file(t, path_of(path, fx, "out/untrusted.chain.pem"), time(NULL), NULL, 0),
                     SFM_PKI_P_UNTRUSTED_CERTIFICATE);
    /* the intermediate must come with the leaf: nothing else completes a chain */
    assert_int_equal(check_file(t, path_of(path, fx, "out/alice.crt"), time(NULL), NULL, 0),
                     SFM_PKI_P_UNTRUSTED_CERTIFICATE);
    assert_int_equal(check_file(NULL, path_of(path, fx, "out/alice.chain.pem"), time(NULL), NULL, 0),
                     SFM_PKI_P_UNTRUSTED_CERTIFICATE);
    sfm_pki_trust_free(t);
}

static void test_pki_check_pem_judges_dates_against_now(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX];
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    sfm_pki_facts f;

    assert_int_equal(check_file(t, path_of(path, fx, "out/expired.chain.pem"), time(NULL), NULL, 0),
                     SFM_PKI_P_CERTIFICATE_EXPIRED);
    assert_int_equal(check_file(t, path_of(path, fx, "out/future.chain.pem"), time(NULL), NULL, 0),
                     SFM_PKI_P_CERTIFICATE_NOT_YET_VALID);
    facts_of_file(path_of(path, fx, "out/alice.crt"), &f);
    assert_int_equal(check_file(t, path_of(path, fx, "out/alice.chain.pem"), f.not_after + 1, NULL, 0),
                     SFM_PKI_P_CERTIFICATE_EXPIRED);
    assert_int_equal(check_file(t, path_of(path, fx, "out/alice.chain.pem"), f.not_before - 1, NULL, 0),
                     SFM_PKI_P_CERTIFICATE_NOT_YET_VALID);
    /* a chain certificate counts too: the intermediate expires after the leaf */
    facts_of_file(path_of(path, fx, "intermediate.pem"), &f);
    assert_int_equal(check_file(t, path_of(path, fx, "out/alice.chain.pem"), f.not_after + 1, NULL, 0),
                     SFM_PKI_P_CERTIFICATE_EXPIRED);
    sfm_pki_trust_free(t);
}

static void test_pki_check_pem_reports_every_problem(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], detail[2048];
    size_t a = 0, b = 0;
    char *self = slurp(path_of(path, fx, "out/self.crt"), &a);
    char *key = slurp(path_of(path, fx, "out/self.key"), &b);
    char *text = concat(self, key, "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n");
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));
    sfm_pki_facts f;
    unsigned p = 0;

    facts_of_file(path_of(path, fx, "out/self.crt"), &f);
    assert_int_equal(sfm_pki_check_pem(t, text, strlen(text), f.not_after + 1, &p, detail, sizeof detail), 0);
    assert_int_equal(p, SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED | SFM_PKI_P_MALFORMED_CERTIFICATE |
                            SFM_PKI_P_SELF_SIGNED_CERTIFICATE | SFM_PKI_P_UNTRUSTED_CERTIFICATE |
                            SFM_PKI_P_CERTIFICATE_EXPIRED);
    /* one line per problem, in SPEC order */
    const char *order[] = {"PRIVATE_KEY_NOT_ALLOWED: ", "MALFORMED_CERTIFICATE: ",
                           "SELF_SIGNED_CERTIFICATE: ", "UNTRUSTED_CERTIFICATE: ", "CERTIFICATE_EXPIRED: "};
    const char *at = detail;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        assert_true(strncmp(at, order[i], strlen(order[i])) == 0);
        at = strchr(at, '\n');
        assert_non_null(at);
        at++;
    }
    assert_string_equal(at, "");
    sfm_pki_trust_free(t);
    free(text);
    free(key);
    free(self);
}

static void test_pki_check_pem_detail_is_cut_safely_when_small(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], detail[16], full[1024];
    sfm_pki_trust *t = trust_of(path_of(path, fx, "ca.pem"));

    memset(detail, 'x', sizeof detail);
    assert_int_not_equal(check_file(t, path_of(path, fx, "out/self.crt"), time(NULL), detail, sizeof detail),
                         0);
    assert_true(memchr(detail, '\0', sizeof detail) != NULL);
    /* What fits is the start of the full text, filling the buffer. */
    assert_int_not_equal(check_file(t, path_of(path, fx, "out/self.crt"), time(NULL), full, sizeof full), 0);
    assert_int_equal(strlen(detail), sizeof detail - 1);
    assert_memory_equal(detail, full, sizeof detail - 1);
    sfm_pki_trust_free(t);
}

/* ---- trust anchors ----------------------------------------------------------------------- */

static void test_pki_trust_add_pem_keeps_roots_and_skips_intermediates_and_leaves(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], err[SFM_PKI_ERR_LEN];
    size_t a = 0, b = 0, skipped = 99;
    char *root = slurp(path_of(path, fx, "ca.pem"), &a);
    char *chain = slurp(path_of(path, fx, "out/alice.chain.pem"), &b);
    char *bundle = concat(chain, root, "");
    sfm_pki_trust *t = NULL;
    sfm_pki_facts f, r;

    assert_int_equal(sfm_pki_trust_new(&t), 0);
    assert_int_equal(sfm_pki_trust_add_pem(t, bundle, strlen(bundle), &skipped, err), 0);
    assert_int_equal(skipped, 2); /* the leaf and the intermediate */
    assert_int_equal(sfm_pki_trust_count(t), 1);
    const sfm_der *d = sfm_pki_trust_at(t, 0);
    assert_non_null(d);
    assert_int_equal(sfm_pki_facts_of(d->der, d->len, &f), 0);
    facts_of_file(path_of(path, fx, "ca.pem"), &r);
    assert_string_equal(f.sha256, r.sha256);
    assert_null(sfm_pki_trust_at(t, 1));
    /* the same root again is not a second anchor */
    assert_int_equal(sfm_pki_trust_add_pem(t, root, a, &skipped, err), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(sfm_pki_trust_count(t), 1);
    sfm_pki_trust_free(t);
    free(bundle);
    free(chain);
    free(root);
}

static void test_pki_trust_add_pem_accepts_a_v1_self_signed_root(void **state)
{
    char err[SFM_PKI_ERR_LEN];
    sfm_pki_trust *t = NULL;
    size_t skipped = 9;

    (void)state;
    assert_int_equal(sfm_pki_trust_new(&t), 0);
    assert_int_equal(sfm_pki_trust_add_pem(t, k_names_pem, strlen(k_names_pem), &skipped, err), 0);
    assert_int_equal(skipped, 0);
    assert_int_equal(sfm_pki_trust_count(t), 1);
    sfm_pki_trust_free(t);
}

static void test_pki_trust_add_pem_rejects_bad_pem_and_empty_bundles(void **state)
{
    static const char bad[] = "-----BEGIN CERTIFICATE-----\nMIIB!!!!\n-----END CERTIFICATE-----\n";
    char err[SFM_PKI_ERR_LEN];
    sfm_pki_trust *t = NULL;

    (void)state;
    assert_int_equal(sfm_pki_trust_new(&t), 0);
    assert_int_equal(sfm_pki_trust_add_pem(t, bad, strlen(bad), NULL, err), SFM_PKI_EPARSE);
    assert_int_equal(sfm_pki_trust_add_pem(t, "nothing", 7, NULL, err), SFM_PKI_EPARSE);
    assert_int_equal(sfm_pki_trust_count(t), 0);
    assert_int_equal(sfm_pki_trust_add_file(t, "/nonexistent/bundle.pem", NULL, err), SFM_PKI_EIO);
    sfm_pki_trust_free(t);
    sfm_pki_trust_free(NULL);
}

static void test_pki_read_file_enforces_its_cap(void **state)
{
    fixture *fx = *state;
    char path[T_PATH_MAX], err[SFM_PKI_ERR_LEN];
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(sfm_pki_read_file(path_of(path, fx, "ca.pem"), 10, &text, &len, err), SFM_PKI_EARG);
    assert_null(text);
    assert_int_equal(sfm_pki_read_file(path_of(path, fx, "ca.pem"), T_FILE_MAX, &text, &len, err), 0);
    assert_int_equal(strlen(text), len);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pki_facts_subject_and_issuer_are_rfc4514_escaped_most_specific_first),
        cmocka_unit_test(test_pki_facts_serial_is_uppercase_hex_without_sign_octet),
        cmocka_unit_test(test_pki_facts_fingerprint_is_sha256_of_der),
        cmocka_unit_test(test_pki_facts_dates_read_utctime_and_generalizedtime),
        cmocka_unit_test(test_pki_facts_v1_self_signed_is_self_issued_and_self_signed),
        cmocka_unit_test(test_pki_facts_rejects_garbage_and_truncation),
        cmocka_unit_test(test_pki_facts_signature_tampering_clears_self_signed),
        cmocka_unit_test(test_pki_sha256_hex_matches_the_fips_vector),
        cmocka_unit_test(test_pki_iso8601_is_utc_with_milliseconds),
        cmocka_unit_test(test_pki_key_parse_knows_the_four_names),
        cmocka_unit_test(test_pki_problem_codes_are_spec_names),
        cmocka_unit_test(test_pki_pem_certs_splits_in_order_ignoring_text_between),
        cmocka_unit_test(test_pki_pem_certs_flags_every_private_key_armour),
        cmocka_unit_test(test_pki_pem_certs_ignores_public_keys_and_csrs),
        cmocka_unit_test(test_pki_pem_certs_rejects_bad_base64),
        cmocka_unit_test(test_pki_pem_certs_rejects_a_block_without_end),
        cmocka_unit_test(test_pki_pem_certs_more_than_max_is_earg),
        cmocka_unit_test(test_pki_pem_certs_without_certificates_finds_none),
        cmocka_unit_test(test_pki_ca_init_writes_four_files_keys_0600),
        cmocka_unit_test(test_pki_ca_init_refuses_a_directory_that_holds_a_ca),
        cmocka_unit_test(test_pki_ca_exists_is_false_for_an_empty_directory),
        cmocka_unit_test(test_pki_ca_root_is_a_self_signed_ca_and_signs_the_intermediate),
        cmocka_unit_test(test_pki_issue_client_has_client_eku_and_a_trusted_chain),
        cmocka_unit_test(test_pki_issue_server_is_rsa_with_server_eku),
        cmocka_unit_test(test_pki_issue_server_with_a_long_host_name_uses_a_generic_cn),
        cmocka_unit_test(test_pki_issue_self_signed_writes_the_leaf_alone),
        cmocka_unit_test(test_pki_issue_expired_ended_before_now),
        cmocka_unit_test(test_pki_issue_not_yet_valid_starts_after_now),
        cmocka_unit_test(test_pki_issue_untrusted_comes_from_the_untrusted_ca),
        cmocka_unit_test(test_pki_issue_eku_server_has_server_auth_only),
        cmocka_unit_test(test_pki_issue_p12_writes_a_0600_file),
        cmocka_unit_test(test_pki_issue_rejects_bad_options),
        cmocka_unit_test(test_pki_check_pem_private_key_is_not_allowed),
        cmocka_unit_test(test_pki_check_pem_malformed_when_no_certificate_or_bad_der),
        cmocka_unit_test(test_pki_check_pem_more_than_ten_certificates_is_too_large),
        cmocka_unit_test(test_pki_check_pem_over_one_megabyte_is_too_large),
        cmocka_unit_test(test_pki_check_pem_self_signed_leaf_is_self_signed_and_untrusted),
        cmocka_unit_test(test_pki_check_pem_untrusted_ca_leaf_and_bare_leaf_are_untrusted),
        cmocka_unit_test(test_pki_check_pem_judges_dates_against_now),
        cmocka_unit_test(test_pki_check_pem_reports_every_problem),
        cmocka_unit_test(test_pki_check_pem_detail_is_cut_safely_when_small),
        cmocka_unit_test(test_pki_trust_add_pem_keeps_roots_and_skips_intermediates_and_leaves),
        cmocka_unit_test(test_pki_trust_add_pem_accepts_a_v1_self_signed_root),
        cmocka_unit_test(test_pki_trust_add_pem_rejects_bad_pem_and_empty_bundles),
        cmocka_unit_test(test_pki_read_file_enforces_its_cap),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
