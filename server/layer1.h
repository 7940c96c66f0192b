/*
 * layer1: the outcome of checking the chain a client presented (SPEC
 * section 2, "Layer 1"). Pure functions of plain values: the mapping from
 * wolfSSL's verify errors to reason codes, their precedence, and what each
 * reason looks like to a client (code, page sentence, TLS alert).
 */
#ifndef SFM_LAYER1_H
#define SFM_LAYER1_H

/**
 * One bit per problem, in SPEC's precedence order (lowest bit wins): a chain
 * with several problems reports the first row of SPEC's table that matches.
 */
enum sfm_l1_flag {
    SFM_L1_F_SELF_SIGNED = 1u << 0,
    SFM_L1_F_UNTRUSTED = 1u << 1,
    SFM_L1_F_REVOKED = 1u << 2,
    SFM_L1_F_EXPIRED = 1u << 3,
    SFM_L1_F_NOT_YET_VALID = 1u << 4,
    SFM_L1_F_INVALID = 1u << 5,
};

/** A layer-1 outcome; SFM_L1_OK means the chain verified. */
enum sfm_l1_reason {
    SFM_L1_OK = 0,
    SFM_L1_SELF_SIGNED,
    SFM_L1_UNTRUSTED,
    SFM_L1_REVOKED,
    SFM_L1_EXPIRED,
    SFM_L1_NOT_YET_VALID,
    SFM_L1_INVALID,
};

/**
 * The problem a verify error stands for. `err` is what wolfSSL puts in
 * WOLFSSL_X509_STORE_CTX.error: an X509_V_ERR_* code (Debian's build has
 * OPENSSL_COMPATIBLE_DEFAULTS) or, for errors wolfSSL does not translate, its
 * own negative code. Returns 0 for "no problem" (0, and CRL_MISSING: an
 * issuer with no CRL loaded is not checked for revocation), and
 * SFM_L1_F_INVALID for anything unknown, so that the decision fails closed.
 */
unsigned sfm_l1_flag_of_error(int err);

/** The reason that wins among `flags` (0 gives SFM_L1_OK). */
enum sfm_l1_reason sfm_l1_reason_of(unsigned flags);

/** SPEC's reason code ("CERTIFICATE_EXPIRED"); NULL for SFM_L1_OK. */
const char *sfm_l1_code(enum sfm_l1_reason r);

/** The Certificate Error page's sentence ("Client certificate has expired."). */
const char *sfm_l1_sentence(enum sfm_l1_reason r);

/** The TLS alert description (RFC 8446 numbers) sent in `alert` mode. */
int sfm_l1_alert(enum sfm_l1_reason r);

#endif
