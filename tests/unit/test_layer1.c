/* layer1: the mapping from wolfSSL's verify errors to SPEC's reason codes,
 * their precedence, and what each reason shows a client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "layer1.h"

struct error_case {
    int err;
    enum sfm_l1_reason want;
};

static void test_layer1_maps_each_verify_error_to_its_reason(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {0, SFM_L1_OK},
        {CRL_MISSING, SFM_L1_OK}, /* an issuer without a CRL is not checked */
        {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, SFM_L1_SELF_SIGNED},
        {ASN_SELF_SIGNED_E, SFM_L1_SELF_SIGNED},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, SFM_L1_UNTRUSTED},
        {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, SFM_L1_UNTRUSTED},
        {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, SFM_L1_UNTRUSTED},
        {ASN_NO_SIGNER_E, SFM_L1_UNTRUSTED},
        {X509_V_ERR_CERT_REVOKED, SFM_L1_REVOKED},
        {CRL_CERT_REVOKED, SFM_L1_REVOKED},
        {X509_V_ERR_CERT_HAS_EXPIRED, SFM_L1_EXPIRED},
        {X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, SFM_L1_EXPIRED},
        {ASN_AFTER_DATE_E, SFM_L1_EXPIRED},
        {X509_V_ERR_CERT_NOT_YET_VALID, SFM_L1_NOT_YET_VALID},
        {X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, SFM_L1_NOT_YET_VALID},
        {ASN_BEFORE_DATE_E, SFM_L1_NOT_YET_VALID},
        {X509_V_ERR_CERT_SIGNATURE_FAILURE, SFM_L1_INVALID},
        {ASN_SIG_CONFIRM_E, SFM_L1_INVALID},
        {X509_V_ERR_PATH_LENGTH_EXCEEDED, SFM_L1_INVALID},
        {ASN_PARSE_E, SFM_L1_INVALID},
        {-123456, SFM_L1_INVALID}, /* unknown: fails closed */
        {987654, SFM_L1_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sfm_l1_reason got = sfm_l1_reason_of(sfm_l1_flag_of_error(cases[i].err));
        if (got != cases[i].want)
            fail_msg("error %d: got reason %d, want %d", cases[i].err, got, cases[i].want);
    }
}

static void test_layer1_first_row_of_the_table_wins(void **state)
{
    (void)state;
    assert_int_equal(sfm_l1_reason_of(0), SFM_L1_OK);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_INVALID | SFM_L1_F_SELF_SIGNED), SFM_L1_SELF_SIGNED);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_EXPIRED | SFM_L1_F_UNTRUSTED), SFM_L1_UNTRUSTED);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_EXPIRED | SFM_L1_F_REVOKED), SFM_L1_REVOKED);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_NOT_YET_VALID | SFM_L1_F_EXPIRED), SFM_L1_EXPIRED);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_INVALID | SFM_L1_F_NOT_YET_VALID), SFM_L1_NOT_YET_VALID);
    assert_int_equal(sfm_l1_reason_of(SFM_L1_F_INVALID), SFM_L1_INVALID);
    assert_int_equal(sfm_l1_reason_of(1u << 20), SFM_L1_INVALID); /* unknown bit fails closed */
}

struct face {
    enum sfm_l1_reason r;
    const char *code, *sentence;
    int alert;
};

static void test_layer1_each_reason_has_specs_code_sentence_and_alert(void **state)
{
    (void)state;
    static const struct face faces[] = {
        {SFM_L1_SELF_SIGNED, "CERTIFICATE_SELF_SIGNED", "Client certificate is self-signed.",
         bad_certificate},
        {SFM_L1_UNTRUSTED, "CERTIFICATE_UNTRUSTED", "Client certificate chain is not trusted.", unknown_ca},
        {SFM_L1_REVOKED, "CERTIFICATE_REVOKED", "Client certificate has been revoked.", certificate_revoked},
        {SFM_L1_EXPIRED, "CERTIFICATE_EXPIRED", "Client certificate has expired.", certificate_expired},
        {SFM_L1_NOT_YET_VALID, "CERTIFICATE_NOT_YET_VALID", "Client certificate is not yet valid.",
         certificate_expired},
        {SFM_L1_INVALID, "CERTIFICATE_INVALID", "Client certificate is invalid.", bad_certificate},
    };
    for (size_t i = 0; i < sizeof(faces) / sizeof(faces[0]); i++) {
        assert_string_equal(sfm_l1_code(faces[i].r), faces[i].code);
        assert_string_equal(sfm_l1_sentence(faces[i].r), faces[i].sentence);
        assert_int_equal(sfm_l1_alert(faces[i].r), faces[i].alert);
    }
    assert_null(sfm_l1_code(SFM_L1_OK));
    assert_int_equal(sfm_l1_alert(SFM_L1_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer1_maps_each_verify_error_to_its_reason),
        cmocka_unit_test(test_layer1_first_row_of_the_table_wins),
        cmocka_unit_test(test_layer1_each_reason_has_specs_code_sentence_and_alert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
