/*
 * pki: the X.509 toolbox of sfmtls, built on wolfCrypt only.
 *
 * Parses certificates and reports their facts in the formats SPEC section 6
 * fixes (RFC 4514 names, uppercase hex serials, lowercase hex SHA-256
 * fingerprints), generates keys and certificates for the dev CA, and judges
 * whether a PEM file would pass Salesforce's Mutual Authentication
 * Certificate upload checks. It knows nothing of HTTP, TLS sessions or the
 * org. Every function returns 0 or a negative code (SFM_PKI_E*) and, where it
 * takes `err`, writes a human-readable reason there (never prints).
 */
#ifndef SFM_PKI_H
#define SFM_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))

#define SFM_PKI_ERR_LEN 256
/** Longest RFC 4514 string we produce; longer names are truncated with "...". */
#define SFM_PKI_NAME_MAX 512
/** Most certificates accepted in one PEM bundle. */
#define SFM_PKI_MAX_CHAIN 16
/** Most subjectAltName entries sfm_pki_issue() accepts. */
#define SFM_PKI_MAX_SANS 32
/** Upload limits of SPEC section 6 (CERTIFICATE_TOO_LARGE above either). */
#define SFM_PKI_UPLOAD_MAX_BYTES (1024 * 1024)
#define SFM_PKI_UPLOAD_MAX_CERTS 10

enum {
    SFM_PKI_OK = 0,
    SFM_PKI_EIO = -5001,     /* file could not be read or written */
    SFM_PKI_EPARSE = -5002,  /* malformed PEM or DER */
    SFM_PKI_ECRYPTO = -5003, /* wolfCrypt refused an operation */
    SFM_PKI_EARG = -5004,    /* bad argument */
    SFM_PKI_ENOMEM = -5005,
};

/** Key types the dev CA and `sfmtls-ca` can generate. */
enum sfm_pki_key {
    SFM_PKI_KEY_EC_P256,
    SFM_PKI_KEY_RSA2048,
    SFM_PKI_KEY_RSA3072,
    SFM_PKI_KEY_RSA4096,
};

/** Parses "ec", "rsa2048", "rsa3072", "rsa4096". Returns 0 or SFM_PKI_EARG. */
SFM_NODISCARD int sfm_pki_key_parse(const char *name, enum sfm_pki_key *out);

/** A DER blob. `der` is owned by whoever filled the struct (see each API). */
typedef struct sfm_der {
    unsigned char *der;
    size_t len;
} sfm_der;

/** Frees the blobs of an array filled by sfm_pki_pem_certs(); NULL-safe. */
void sfm_pki_ders_free(sfm_der *ders, size_t n);

/**
 * Splits a PEM text into its certificates, in order.
 * @param pem, len   the text (need not be NUL-terminated)
 * @param out        array of `max` slots; on success slots [0, *n) own their DER
 * @param n          out: how many certificates were found (0 is not an error)
 * @param has_key    out, may be NULL: set to 1 when the text holds a private key
 * Returns 0, SFM_PKI_EPARSE (a block that does not decode; nothing is kept),
 * or SFM_PKI_EARG when there are more than `max` certificates.
 */
SFM_NODISCARD int sfm_pki_pem_certs(const char *pem, size_t len, sfm_der *out, size_t max, size_t *n,
                                    int *has_key, char err[SFM_PKI_ERR_LEN]);

/** Extended key usage bits of a certificate. */
enum {
    SFM_PKI_EKU_PRESENT = 1 << 0, /* the extension exists */
    SFM_PKI_EKU_CLIENT = 1 << 1,
    SFM_PKI_EKU_SERVER = 1 << 2,
    SFM_PKI_EKU_ANY = 1 << 3,
};

/** What sfmtls reports about a certificate (plain values, caller-owned). */
typedef struct sfm_pki_facts {
    char subject[SFM_PKI_NAME_MAX]; /* RFC 4514, most specific RDN first */
    char issuer[SFM_PKI_NAME_MAX];  /* RFC 4514 */
    char serial[2 * 20 + 1];        /* uppercase hex, no separators */
    char sha256[2 * 32 + 1];        /* lowercase hex of SHA-256(DER) */
    unsigned char fp[32];           /* SHA-256(DER), raw */
    time_t not_before, not_after;   /* UTC seconds */
    int is_ca;                      /* basicConstraints cA */
    int self_issued;                /* subject == issuer (raw names) */
    int self_signed;                /* self-issued and its own key verifies it */
    unsigned eku;                   /* SFM_PKI_EKU_* */
} sfm_pki_facts;

/**
 * Fills `out` from a DER certificate. Returns 0, SFM_PKI_EPARSE or SFM_PKI_ENOMEM.
 * One parse of the DER, no file I/O (a few microseconds); a self-issued certificate
 * costs one signature check more (to set self_signed). Thread-safe.
 */
SFM_NODISCARD int sfm_pki_facts_of(const unsigned char *der, size_t len, sfm_pki_facts *out);

/** SHA-256 of `der` into out[32]. Returns 0, SFM_PKI_EARG or SFM_PKI_ECRYPTO. */
SFM_NODISCARD int sfm_pki_sha256(const unsigned char *der, size_t len, unsigned char out[32]);

/** `n` bytes as lowercase hex into out[2 * n + 1]. */
void sfm_pki_hex(const unsigned char *in, size_t n, char *out);

/** Lowercase hex SHA-256 of `der` into out[65]. Returns 0 or SFM_PKI_ECRYPTO. */
SFM_NODISCARD int sfm_pki_sha256_hex(const unsigned char *der, size_t len, char out[65]);

/**
 * Verifies an RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3), as a JWT
 * bearer assertion carries, over msg[0, msg_len) with the RSA key of the first certificate of
 * `cert_pem` (need not be NUL-terminated). The signature must be as long as the modulus.
 * Returns 0 when it verifies, SFM_PKI_ECRYPTO when it does not, SFM_PKI_EPARSE when the PEM
 * holds no readable certificate, SFM_PKI_EARG when that certificate's key is not RSA (or an
 * argument is NULL), SFM_PKI_ENOMEM. Thread-safe.
 */
SFM_NODISCARD int sfm_pki_verify_rs256(const char *cert_pem, size_t pem_len, const unsigned char *msg,
                                       size_t msg_len, const unsigned char *sig, size_t sig_len);

/** Formats `t` as ISO 8601 UTC with milliseconds ("2026-11-27T08:00:00.000Z"). */
void sfm_pki_iso8601(time_t t, char out[32]);

/*
 * The dev CA lives in a directory:
 *   ca.pem ca.key                  the root (self-signed, the trust anchor)
 *   intermediate.pem intermediate.key   signs every leaf
 *   untrusted-ca.pem untrusted-ca.key   made on demand by --untrusted; trusted by nothing
 * Keys are written with mode 0600.
 */

/** Creates the root and intermediate in `dir` (created, mode 0700, if missing).
 *  Fails with SFM_PKI_EARG when `dir` already holds a CA. */
SFM_NODISCARD int sfm_pki_ca_init(const char *dir, enum sfm_pki_key key, char err[SFM_PKI_ERR_LEN]);

/** 1 when `dir` holds a complete CA (all four files), else 0. */
int sfm_pki_ca_exists(const char *dir);

/** What an issued certificate is for: EKU clientAuth or serverAuth. */
enum sfm_pki_kind { SFM_PKI_CLIENT, SFM_PKI_SERVER };

/** Options of one issued certificate (SPEC section 9). */
typedef struct sfm_pki_issue_opts {
    enum sfm_pki_kind kind;
    const char *cn;          /* required */
    const char *const *sans; /* DNS names or IP literals; n_sans of them */
    size_t n_sans;
    int days; /* validity; 0 means 365 */
    enum sfm_pki_key key;
    const char *out_prefix;   /* writes PREFIX.crt, .key, .chain.pem (and .p12) */
    const char *p12_password; /* NULL: no PKCS#12 */
    int self_signed;          /* negative kinds, at most one of these set */
    int expired;              /* notAfter in the past */
    int not_yet_valid;        /* notBefore in the future */
    int untrusted;            /* issued by the directory's untrusted CA */
    int eku_server;           /* EKU serverAuth only (a client cert Salesforce rejects) */
} sfm_pki_issue_opts;

/**
 * Issues a certificate from the CA in `dir`. A client certificate carries
 * EKU clientAuth, a server certificate serverAuth and its SANs (a server
 * certificate with no SAN gets the CN as DNS name; a server CN of 64 bytes or more,
 * too long for X.520, becomes "sfmtls server" in the subject). PREFIX.chain.pem is the
 * leaf followed by the intermediate (for --self-signed: the leaf alone; for
 * --untrusted: the leaf and the untrusted CA).
 */
SFM_NODISCARD int sfm_pki_issue(const char *dir, const sfm_pki_issue_opts *o, char err[SFM_PKI_ERR_LEN]);

/** Upload-check problems, as SPEC section 6 names them, in its order. */
enum sfm_pki_problem {
    SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED = 1 << 0,
    SFM_PKI_P_MALFORMED_CERTIFICATE = 1 << 1,
    SFM_PKI_P_CERTIFICATE_TOO_LARGE = 1 << 2,
    SFM_PKI_P_SELF_SIGNED_CERTIFICATE = 1 << 3,
    SFM_PKI_P_UNTRUSTED_CERTIFICATE = 1 << 4,
    SFM_PKI_P_CERTIFICATE_EXPIRED = 1 << 5,
    SFM_PKI_P_CERTIFICATE_NOT_YET_VALID = 1 << 6,
};

/** The error code string of one problem bit ("SELF_SIGNED_CERTIFICATE"). */
const char *sfm_pki_problem_code(unsigned bit);

/** A set of trust anchors (self-signed CA certificates), immutable once built. */
typedef struct sfm_pki_trust sfm_pki_trust;

/** Builds an empty anchor set. Returns 0 or SFM_PKI_ENOMEM. */
SFM_NODISCARD int sfm_pki_trust_new(sfm_pki_trust **out);
/** Frees the set and its anchors; NULL-safe. */
void sfm_pki_trust_free(sfm_pki_trust *t);
/**
 * Adds every self-signed CA certificate of a PEM bundle as an anchor; other
 * certificates are skipped and counted in *skipped (may be NULL).
 */
SFM_NODISCARD int sfm_pki_trust_add_pem(sfm_pki_trust *t, const char *pem, size_t len, size_t *skipped,
                                        char err[SFM_PKI_ERR_LEN]);
/** Same, from a file. */
SFM_NODISCARD int sfm_pki_trust_add_file(sfm_pki_trust *t, const char *path, size_t *skipped,
                                         char err[SFM_PKI_ERR_LEN]);
/** Number of anchors, and the DER of anchor i (borrowed, valid while t lives). */
size_t sfm_pki_trust_count(const sfm_pki_trust *t);
const sfm_der *sfm_pki_trust_at(const sfm_pki_trust *t, size_t i);
/** The facts of anchor i, parsed when it was added (borrowed, valid while t lives). */
const sfm_pki_facts *sfm_pki_trust_facts_at(const sfm_pki_trust *t, size_t i);

/**
 * Judges a PEM text as an upload: every problem found, as SFM_PKI_P_* bits,
 * in *problems (0: acceptable). Chain building uses only the certificates in
 * the text plus the anchors of `trust` (NULL: no anchors, so UNTRUSTED). `now` is the
 * time to judge against.
 * Returns 0 when the judgement was made (whatever it is), or a negative code.
 * `detail` receives one line per problem ("CODE: explanation\n").
 */
SFM_NODISCARD int sfm_pki_check_pem(const sfm_pki_trust *trust, const char *pem, size_t len, time_t now,
                                    unsigned *problems, char *detail, size_t detail_len);

/** Reads a whole file into a NUL-terminated heap buffer (caller frees). Returns 0,
 *  SFM_PKI_EIO, SFM_PKI_ENOMEM, or SFM_PKI_EARG when the file holds more than `max` bytes. */
SFM_NODISCARD int sfm_pki_read_file(const char *path, size_t max, char **out, size_t *len,
                                    char err[SFM_PKI_ERR_LEN]);

#endif
