#include "layer1.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

unsigned sfm_l1_flag_of_error(int err)
{
    switch (err) {
    case 0:
    case CRL_MISSING: return 0;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case ASN_SELF_SIGNED_E: return SFM_L1_F_SELF_SIGNED;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case ASN_NO_SIGNER_E: return SFM_L1_F_UNTRUSTED;
    case X509_V_ERR_CERT_REVOKED:
    case CRL_CERT_REVOKED: return SFM_L1_F_REVOKED;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case ASN_AFTER_DATE_E: return SFM_L1_F_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case ASN_BEFORE_DATE_E: return SFM_L1_F_NOT_YET_VALID;
    default:
        /* Bad signatures, malformed certificates, path length, and anything
         * this table does not know: never let an unknown error pass. */
        return SFM_L1_F_INVALID;
    }
}

enum sfm_l1_reason sfm_l1_reason_of(unsigned flags)
{
    static const enum sfm_l1_reason by_bit[] = {
        SFM_L1_SELF_SIGNED, SFM_L1_UNTRUSTED,     SFM_L1_REVOKED,
        SFM_L1_EXPIRED,     SFM_L1_NOT_YET_VALID, SFM_L1_INVALID,
    };
    for (unsigned i = 0; i < sizeof(by_bit) / sizeof(by_bit[0]); i++) {
        if (flags & (1u << i))
            return by_bit[i];
    }
    /* A bit this table does not know still fails closed. */
    return flags ? SFM_L1_INVALID : SFM_L1_OK;
}

const char *sfm_l1_code(enum sfm_l1_reason r)
{
    switch (r) {
    case SFM_L1_OK: return NULL;
    case SFM_L1_SELF_SIGNED: return "CERTIFICATE_SELF_SIGNED";
    case SFM_L1_UNTRUSTED: return "CERTIFICATE_UNTRUSTED";
    case SFM_L1_REVOKED: return "CERTIFICATE_REVOKED";
    case SFM_L1_EXPIRED: return "CERTIFICATE_EXPIRED";
    case SFM_L1_NOT_YET_VALID: return "CERTIFICATE_NOT_YET_VALID";
    case SFM_L1_INVALID: return "CERTIFICATE_INVALID";
    }
    return "CERTIFICATE_INVALID";
}

const char *sfm_l1_sentence(enum sfm_l1_reason r)
{
    switch (r) {
    case SFM_L1_OK: return NULL;
    case SFM_L1_SELF_SIGNED: return "Client certificate is self-signed.";
    case SFM_L1_UNTRUSTED: return "Client certificate chain is not trusted.";
    case SFM_L1_REVOKED: return "Client certificate has been revoked.";
    case SFM_L1_EXPIRED: return "Client certificate has expired.";
    case SFM_L1_NOT_YET_VALID: return "Client certificate is not yet valid.";
    case SFM_L1_INVALID: return "Client certificate is invalid.";
    }
    return "Client certificate is invalid.";
}

int sfm_l1_alert(enum sfm_l1_reason r)
{
    switch (r) {
    case SFM_L1_OK: return 0;
    case SFM_L1_SELF_SIGNED: return bad_certificate;
    case SFM_L1_UNTRUSTED: return unknown_ca;
    case SFM_L1_REVOKED: return certificate_revoked;
    case SFM_L1_EXPIRED: return certificate_expired;
    case SFM_L1_NOT_YET_VALID: return certificate_expired;
    case SFM_L1_INVALID: return bad_certificate;
    }
    return bad_certificate;
}
