/*
 * pki.c: the X.509 toolbox of sfmtls (see pki.h), on wolfCrypt only.
 *
 * Layout: small helpers (errors, hex, time, base64, PEM, DER), then certificate
 * facts and RFC 4514 names, trust anchors and the upload check, then key and
 * certificate generation for the dev CA. Nothing here prints or keeps global
 * state; every buffer has a named cap below.
 */
#include "pki.h"

/* options.h must come before any other wolfSSL header: it fixes struct layouts. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/signature.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- caps ------------------------------------------------------------------------------ */

/** Certificates judged by one sfm_pki_check_pem() (more than the upload limit anyway). */
#define PKI_CHECK_MAX_CERTS 64
/** Certificates read from one trust bundle (the Debian system bundle holds ~150). */
#define PKI_BUNDLE_MAX_CERTS 4096
/** Anchors in one sfm_pki_trust. */
#define PKI_TRUST_MAX_ANCHORS 4096
/** Largest trust bundle file. */
#define PKI_BUNDLE_MAX_BYTES (16 * 1024 * 1024)
/** Largest file of our own CA directory (a key or a certificate). */
#define PKI_CA_FILE_MAX (256 * 1024)
/** Largest certificate we generate (DER). */
#define PKI_CERT_DER_MAX 16384
/** Largest private key we generate (DER, PKCS#1/SEC1 or PKCS#8; RSA-4096 is ~2.4 KB). */
#define PKI_KEY_DER_MAX 8192
/** PEM of the above: base64 (4/3), line breaks and armour. */
#define PKI_PEM_MAX (PKI_CERT_DER_MAX * 2)
/** DER of the subjectAltName GeneralNames we build (wolfSSL holds up to CTC_MAX_ALT_SIZE). */
#define PKI_SAN_DER_MAX 8192
/** Steps of one chain search (a real upload needs a handful). */
#define PKI_PATH_BUDGET 4096
/** RDNs in one distinguished name. */
#define PKI_NAME_MAX_RDNS 64
/** Longest path we build. */
#define PKI_PATH_MAX 4096
/** Longest PEM label ("ENCRYPTED PRIVATE KEY"). */
#define PKI_PEM_LABEL_MAX 64
/** Longest DNS name in a SAN. */
#define PKI_DNS_MAX 253
/** Longest issued validity, in days (100 years). */
#define PKI_MAX_DAYS 36500

/* Validity of the dev CA certificates. */
#define PKI_ROOT_DAYS         3650
#define PKI_INTERMEDIATE_DAYS 1825
/* Leaves start a little in the past so that a peer with a slow clock accepts them. */
#define PKI_BACKDATE_SECONDS 300
/* --expired ends a day ago; --not-yet-valid starts in 30 days. */
#define PKI_EXPIRED_AGO_SECONDS      86400
#define PKI_NOT_YET_VALID_IN_SECONDS (30 * 86400)
/* Random serial numbers: 16 bytes (RFC 5280 allows 20; CA/B Forum wants >= 64 bits). */
#define PKI_SERIAL_LEN 16
/* PKCS#12 key derivation and MAC iterations (OpenSSL's default is 2048 for both). */
#define PKI_P12_ITERATIONS 2048
/* Keys made at most for one PKCS#12 before giving up (see p12_key_encrypts; 1 in 8 fails). */
#define PKI_P12_KEY_TRIES 32

/* ---- errors ---------------------------------------------------------------------------- */

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err, SFM_PKI_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* ---- hex, hashes, time ----------------------------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t n, char *out, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

int sfm_pki_sha256(const unsigned char *der, size_t len, unsigned char out[32])
{
    if (der == NULL || len > UINT32_MAX)
        return SFM_PKI_EARG;
    return wc_Sha256Hash(der, (word32)len, out) == 0 ? SFM_PKI_OK : SFM_PKI_ECRYPTO;
}

void sfm_pki_hex(const unsigned char *in, size_t n, char *out)
{
    hex_encode(in, n, out, 0);
}

int sfm_pki_sha256_hex(const unsigned char *der, size_t len, char out[65])
{
    unsigned char digest[WC_SHA256_DIGEST_SIZE];
    int rc = sfm_pki_sha256(der, len, digest);
    if (rc == SFM_PKI_OK)
        hex_encode(digest, sizeof digest, out, 0);
    return rc;
}

void sfm_pki_iso8601(time_t t, char out[32])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, 32, "%s", "1970-01-01T00:00:00.000Z");
        return;
    }
    /* the modulos only bound the widths for the compiler: gmtime_r's fields are in range */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.000Z", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int digits_at(const unsigned char *p, size_t n, unsigned *out)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Converts a DER UTCTime (tag 0x17, "YYMMDDHHMMSSZ") or GeneralizedTime (tag 0x18,
 * "YYYYMMDDHHMMSSZ"), the forms RFC 5280 4.1.2.5 allows, to UTC seconds.
 */
static int der_time_decode(unsigned char tag, const unsigned char *p, size_t n, time_t *out)
{
    unsigned y, mo, d, h, mi, s;
    size_t off;

    if (tag == 0x17 && n == 13) {
        if (digits_at(p, 2, &y) != 0)
            return -1;
        y += y >= 50 ? 1900 : 2000; /* RFC 5280: YY >= 50 is 19YY */
        off = 2;
    } else if (tag == 0x18 && n == 15) {
        if (digits_at(p, 4, &y) != 0)
            return -1;
        off = 4;
    } else {
        return -1;
    }
    if (p[n - 1] != 'Z' || digits_at(p + off, 2, &mo) != 0 || digits_at(p + off + 2, 2, &d) != 0 ||
        digits_at(p + off + 4, 2, &h) != 0 || digits_at(p + off + 6, 2, &mi) != 0 ||
        digits_at(p + off + 8, 2, &s) != 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    if (s == 60)
        s = 59; /* a leap second: time_t cannot say it */
    long long days = days_from_civil(y, mo, d);
    *out = (time_t)(days * 86400 + h * 3600 + mi * 60 + s);
    return 0;
}

/* Encodes `t` as the DER time RFC 5280 wants: UTCTime through 2049, else GeneralizedTime. */
static int der_time_encode(time_t t, unsigned char *out, size_t cap, int *len)
{
    struct tm tm;
    char buf[32];
    int n;

    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    int year = tm.tm_year + 1900;
    if (year < 1950 || year > 9999)
        return -1;
    if (year < 2050)
        n = snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        n = snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n <= 0 || (size_t)n + 2 > cap)
        return -1;
    out[0] = year < 2050 ? 0x17 : 0x18;
    out[1] = (unsigned char)n;
    memcpy(out + 2, buf, (size_t)n);
    *len = n + 2;
    return 0;
}

/* ---- base64 and PEM -------------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Decodes base64, skipping white space. Returns 0 with a heap buffer in *out (caller
 * frees), SFM_PKI_EPARSE on a bad character, bad padding or an empty result, or
 * SFM_PKI_ENOMEM.
 */
static int b64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len)
{
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0, pad = 0, rc = SFM_PKI_EPARSE;
    size_t len = 0, quads = 0;

    if (buf == NULL)
        return SFM_PKI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        quads++;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0)
            goto out; /* data after padding */
        int v = b64_value(c);
        if (v < 0)
            goto out;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (quads % 4 != 0 || pad > 2 || len == 0)
        goto out;
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = SFM_PKI_OK;
out:
    free(buf);
    return rc;
}

typedef struct pem_block {
    const char *label;
    size_t label_len;
    const char *body;
    size_t body_len;
} pem_block;

/*
 * Finds the next "-----BEGIN X-----" ... "-----END X-----" block at or after *pos.
 * Returns 1 with *blk filled and *pos past the block, 0 when there is none, or
 * SFM_PKI_EPARSE for a BEGIN line that is not closed (its label, when one was read,
 * is still in *blk).
 */
static int pem_next(const char *text, size_t len, size_t *pos, pem_block *blk)
{
    static const char begin[] = "-----BEGIN ";
    static const char dashes[] = "-----";
    char end_marker[sizeof "-----END " + PKI_PEM_LABEL_MAX + sizeof dashes];

    memset(blk, 0, sizeof *blk);
    if (*pos >= len)
        return 0;
    const char *b = memmem(text + *pos, len - *pos, begin, sizeof begin - 1);
    if (b == NULL) {
        *pos = len;
        return 0;
    }
    const char *label = b + sizeof begin - 1;
    const char *limit = text + len;
    const char *l_end = label;
    while (l_end < limit && *l_end != '-' && *l_end != '\n' && *l_end != '\r')
        l_end++;
    *pos = len; /* an error consumes the rest */
    if ((size_t)(limit - l_end) < sizeof dashes - 1 || memcmp(l_end, dashes, sizeof dashes - 1) != 0 ||
        (size_t)(l_end - label) > PKI_PEM_LABEL_MAX || l_end == label)
        return SFM_PKI_EPARSE;
    blk->label = label;
    blk->label_len = (size_t)(l_end - label);
    const char *body = l_end + sizeof dashes - 1;
    int m = snprintf(end_marker, sizeof end_marker, "-----END %.*s-----", (int)blk->label_len, label);
    const char *e = memmem(body, (size_t)(limit - body), end_marker, (size_t)m);
    if (e == NULL)
        return SFM_PKI_EPARSE;
    blk->body = body;
    blk->body_len = (size_t)(e - body);
    *pos = (size_t)(e + m - text);
    return 1;
}

static int label_is(const pem_block *blk, const char *s)
{
    return blk->label_len == strlen(s) && memcmp(blk->label, s, blk->label_len) == 0;
}

/* Any private key armour: "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ... */
static int label_is_key(const pem_block *blk)
{
    static const char suffix[] = "PRIVATE KEY";
    size_t n = sizeof suffix - 1;

    return blk->label_len >= n && memcmp(blk->label + blk->label_len - n, suffix, n) == 0;
}

static int label_is_cert(const pem_block *blk)
{
    return label_is(blk, "CERTIFICATE") || label_is(blk, "X509 CERTIFICATE");
}

/* What a scan of a PEM text found. */
typedef struct pem_scan {
    size_t n;           /* slots filled in the caller's array (bad blocks hold der == NULL) */
    size_t cert_blocks; /* certificate blocks seen, stored or not */
    size_t bad_blocks;  /* certificate blocks that did not decode, and unclosed blocks */
    size_t unclosed;    /* BEGIN lines without their END (a scan stops at the first) */
    int has_key;
} pem_scan;

/*
 * Reads every block of a PEM text. Certificate blocks fill out[0..max) in order; one
 * that does not decode takes a slot with der == NULL so that positions keep meaning
 * (slot 0 is the leaf). Blocks past `max` are counted, not stored. Returns 0 or
 * SFM_PKI_ENOMEM (nothing kept).
 */
static int pem_scan_text(const char *pem, size_t len, sfm_der *out, size_t max, pem_scan *res)
{
    size_t pos = 0;
    pem_block blk;
    int r;

    memset(res, 0, sizeof *res);
    while ((r = pem_next(pem, len, &pos, &blk)) != 0) {
        if (r < 0) {
            /* an unclosed block: a truncated key is still a key, anything else is malformed */
            if (blk.label != NULL && label_is_key(&blk)) {
                res->has_key = 1;
            } else {
                res->bad_blocks++;
                res->unclosed++;
            }
            if (blk.label != NULL && label_is_cert(&blk))
                res->cert_blocks++;
            break;
        }
        if (label_is_key(&blk)) {
            res->has_key = 1;
            continue;
        }
        if (!label_is_cert(&blk))
            continue; /* public keys, CSRs, CRLs, parameters: not ours to judge */
        res->cert_blocks++;
        if (res->n >= max)
            continue;
        unsigned char *der = NULL;
        size_t der_len = 0;
        int rc = b64_decode(blk.body, blk.body_len, &der, &der_len);
        if (rc == SFM_PKI_ENOMEM) {
            sfm_pki_ders_free(out, res->n);
            res->n = 0;
            return SFM_PKI_ENOMEM;
        }
        if (rc != SFM_PKI_OK)
            res->bad_blocks++;
        out[res->n].der = der;
        out[res->n].len = der_len;
        res->n++;
    }
    return SFM_PKI_OK;
}

void sfm_pki_ders_free(sfm_der *ders, size_t n)
{
    if (ders == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(ders[i].der);
        ders[i].der = NULL;
        ders[i].len = 0;
    }
}

int sfm_pki_pem_certs(const char *pem, size_t len, sfm_der *out, size_t max, size_t *n, int *has_key,
                      char err[SFM_PKI_ERR_LEN])
{
    pem_scan res;
    int rc;

    if (pem == NULL || out == NULL || n == NULL) {
        set_err(err, "bad argument");
        return SFM_PKI_EARG;
    }
    rc = pem_scan_text(pem, len, out, max, &res);
    if (rc != SFM_PKI_OK) {
        set_err(err, "out of memory");
        return rc;
    }
    if (res.bad_blocks > 0) {
        sfm_pki_ders_free(out, res.n);
        set_err(err, "a PEM block does not decode (bad base64 or no END line)");
        return SFM_PKI_EPARSE;
    }
    if (res.cert_blocks > max) {
        sfm_pki_ders_free(out, res.n);
        set_err(err, "%zu certificates, at most %zu allowed", res.cert_blocks, max);
        return SFM_PKI_EARG;
    }
    *n = res.n;
    if (has_key != NULL)
        *has_key = res.has_key;
    return SFM_PKI_OK;
}

/* ---- DER and RFC 4514 names ------------------------------------------------------------ */

/*
 * Reads the TLV at in[*pos] (ending before `end`): its tag, content offset and content
 * length. Definite lengths of up to 4 bytes only (DER). Returns 0 or -1.
 */
static int der_tlv(const unsigned char *in, size_t end, size_t *pos, unsigned char *tag, size_t *cstart,
                   size_t *clen)
{
    size_t p = *pos, len;

    if (p + 2 > end)
        return -1;
    *tag = in[p++];
    if ((*tag & 0x1f) == 0x1f)
        return -1; /* high tag numbers do not occur in names */
    unsigned char b = in[p++];
    if (b < 0x80) {
        len = b;
    } else {
        size_t nb = b & 0x7f;
        if (nb == 0 || nb > 4 || p + nb > end)
            return -1;
        len = 0;
        for (size_t i = 0; i < nb; i++)
            len = (len << 8) | in[p++];
    }
    if (len > end - p)
        return -1;
    *cstart = p;
    *clen = len;
    *pos = p + len;
    return 0;
}

/* Writes a DER length; returns its size. */
static size_t der_len_put(unsigned char *out, size_t len)
{
    if (len < 0x80) {
        out[0] = (unsigned char)len;
        return 1;
    }
    if (len < 0x100) {
        out[0] = 0x81;
        out[1] = (unsigned char)len;
        return 2;
    }
    out[0] = 0x82;
    out[1] = (unsigned char)(len >> 8);
    out[2] = (unsigned char)len;
    return 3;
}

/* A bounded string builder: pieces are appended whole or not at all, then "..." marks the cut. */
typedef struct sbuf {
    char *p;
    size_t cap; /* including the NUL */
    size_t len;
    int truncated;
} sbuf;

static void sb_init(sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->truncated = 0;
    p[0] = '\0';
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    /* keep room for "..." and the NUL */
    if (b->truncated || b->len + n + 4 > b->cap) {
        b->truncated = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_finish(sbuf *b)
{
    if (b->truncated) {
        memcpy(b->p + b->len, "...", 4);
        b->len += 3;
    }
}

static void sb_hex_escape(sbuf *b, unsigned char c)
{
    char esc[4];

    snprintf(esc, sizeof esc, "\\%02X", c);
    sb_put(b, esc, 3);
}

/* Appends one Unicode code point of an attribute value, escaped per RFC 4514 section 2.4. */
static void sb_put_char(sbuf *b, unsigned long cp, int first, int last)
{
    char u[4];

    if (cp < 0x80) {
        char c = (char)cp;
        if (cp < 0x20 || cp == 0x7f) {
            sb_hex_escape(b, (unsigned char)cp); /* NUL must be \00; other controls for legibility */
        } else if (strchr("\",+;<>\\", c) != NULL || (first && (c == ' ' || c == '#')) ||
                   (last && c == ' ')) {
            char esc[2] = {'\\', c};
            sb_put(b, esc, 2);
        } else {
            sb_put(b, &c, 1);
        }
        return;
    }
    size_t n;
    if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sb_put(b, u, n);
}

/* Decodes one UTF-8 sequence at p[0..n); returns its length, or 0 when it is not valid UTF-8. */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
{
    size_t need;
    unsigned long v, min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0) {
        need = 2;
        v = p[0] & 0x1f;
        min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        need = 3;
        v = p[0] & 0x0f;
        min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        need = 4;
        v = p[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (need > n)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need;
}

/* ASN.1 string types a name value may use, and how their bytes become characters. */
enum str_kind { STR_NONE, STR_UTF8, STR_LATIN1, STR_BMP, STR_UNIVERSAL };

static enum str_kind string_kind(unsigned char tag)
{
    switch (tag) {
    case 0x0c: /* UTF8String */
    case 0x12: /* NumericString */
    case 0x13: /* PrintableString */
    case 0x16: /* IA5String */
    case 0x1a: /* VisibleString */ return STR_UTF8;
    case 0x14: /* T61String: read as Latin-1, as OpenSSL does */ return STR_LATIN1;
    case 0x1e: return STR_BMP;
    case 0x1c: return STR_UNIVERSAL;
    default: return STR_NONE;
    }
}

/* Appends a string value; returns -1 when its bytes do not fit its type (the caller uses #hex). */
static int sb_put_string(sbuf *b, enum str_kind kind, const unsigned char *v, size_t n)
{
    size_t i = 0;

    if ((kind == STR_BMP && n % 2 != 0) || (kind == STR_UNIVERSAL && n % 4 != 0))
        return -1;
    while (i < n) {
        unsigned long cp = 0;
        size_t step = 1;
        switch (kind) {
        case STR_UTF8:
            step = utf8_decode(v + i, n - i, &cp);
            if (step == 0) {
                /* not UTF-8: keep the octet, escaped, so the output stays valid UTF-8 */
                sb_hex_escape(b, v[i]);
                i++;
                continue;
            }
            break;
        case STR_LATIN1:
            cp = v[i];
            step = 1;
            break;
        case STR_BMP:
            cp = ((unsigned long)v[i] << 8) | v[i + 1];
            step = 2;
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd;
            break;
        case STR_UNIVERSAL:
            cp = ((unsigned long)v[i] << 24) | ((unsigned long)v[i + 1] << 16) |
                 ((unsigned long)v[i + 2] << 8) | v[i + 3];
            step = 4;
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                cp = 0xfffd;
            break;
        case STR_NONE: return -1;
        }
        sb_put_char(b, cp, i == 0, i + step == n);
        i += step;
    }
    return 0;
}

static void sb_put_hex_value(sbuf *b, const unsigned char *tlv, size_t n)
{
    char pair[3];

    sb_put(b, "#", 1);
    for (size_t i = 0; i < n; i++) {
        snprintf(pair, sizeof pair, "%02X", tlv[i]);
        sb_put(b, pair, 2);
    }
}

/* Attribute types we print by name (RFC 4514 section 3, then OpenSSL's short names). */
static const struct {
    unsigned char oid[10];
    unsigned char len;
    const char *name;
} k_attr_names[] = {
    {{0x55, 0x04, 0x03}, 3, "CN"},
    {{0x55, 0x04, 0x07}, 3, "L"},
    {{0x55, 0x04, 0x08}, 3, "ST"},
    {{0x55, 0x04, 0x0a}, 3, "O"},
    {{0x55, 0x04, 0x0b}, 3, "OU"},
    {{0x55, 0x04, 0x06}, 3, "C"},
    {{0x55, 0x04, 0x09}, 3, "STREET"},
    {{0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19}, 10, "DC"},
    {{0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01}, 10, "UID"},
    {{0x55, 0x04, 0x04}, 3, "SN"},
    {{0x55, 0x04, 0x05}, 3, "serialNumber"},
    {{0x55, 0x04, 0x0c}, 3, "title"},
    {{0x55, 0x04, 0x0f}, 3, "businessCategory"},
    {{0x55, 0x04, 0x11}, 3, "postalCode"},
    {{0x55, 0x04, 0x2a}, 3, "GN"},
    {{0x55, 0x04, 0x2b}, 3, "initials"},
    {{0x55, 0x04, 0x2c}, 3, "generationQualifier"},
    {{0x55, 0x04, 0x2e}, 3, "dnQualifier"},
    {{0x55, 0x04, 0x41}, 3, "pseudonym"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01}, 9, "emailAddress"},
};

/* Appends an OID in dotted-decimal form. Returns -1 when it is not a valid encoding. */
static int sb_put_oid(sbuf *b, const unsigned char *oid, size_t n)
{
    char num[32];
    unsigned long long v = 0;
    int first = 1;

    if (n == 0 || (oid[n - 1] & 0x80) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v > (1ULL << 56))
            return -1;
        v = (v << 7) | (oid[i] & 0x7f);
        if (oid[i] & 0x80)
            continue;
        int m;
        if (first) {
            unsigned long long top = v < 80 ? v / 40 : 2;
            m = snprintf(num, sizeof num, "%llu.%llu", top, v - top * 40);
            first = 0;
        } else {
            m = snprintf(num, sizeof num, ".%llu", v);
        }
        sb_put(b, num, (size_t)m);
        v = 0;
    }
    return 0;
}

/* Appends one AttributeTypeAndValue (content of its SEQUENCE). */
static int sb_put_atv(sbuf *b, const unsigned char *in, size_t start, size_t end)
{
    size_t pos = start, oid_at, oid_len, v_at, v_len, v_tlv;
    unsigned char tag, vtag;
    const char *name = NULL;

    if (der_tlv(in, end, &pos, &tag, &oid_at, &oid_len) != 0 || tag != 0x06)
        return -1;
    v_tlv = pos;
    if (der_tlv(in, end, &pos, &vtag, &v_at, &v_len) != 0 || pos != end)
        return -1;
    for (size_t i = 0; i < sizeof k_attr_names / sizeof k_attr_names[0]; i++) {
        if (k_attr_names[i].len == oid_len && memcmp(k_attr_names[i].oid, in + oid_at, oid_len) == 0) {
            name = k_attr_names[i].name;
            break;
        }
    }
    if (name == NULL) {
        /* RFC 4514 2.4: a type in dotted form takes its value as #hex of the BER */
        if (sb_put_oid(b, in + oid_at, oid_len) != 0)
            return -1;
        sb_put(b, "=", 1);
        sb_put_hex_value(b, in + v_tlv, end - v_tlv);
        return 0;
    }
    sb_put(b, name, strlen(name));
    sb_put(b, "=", 1);
    enum str_kind kind = string_kind(vtag);
    /* try the string form on a scratch copy: an ill-formed one falls back to #hex */
    sbuf save = *b;
    if (kind == STR_NONE || sb_put_string(b, kind, in + v_at, v_len) != 0) {
        *b = save;
        b->p[b->len] = '\0';
        sb_put_hex_value(b, in + v_tlv, end - v_tlv);
    }
    return 0;
}

/*
 * Formats the content of a DER Name (a SEQUENCE OF RDN) as RFC 4514: RDNs in reverse
 * order (most specific first), multi-valued RDNs joined with '+'. Returns 0 or -1.
 */
static int name_to_rfc4514(const unsigned char *in, size_t len, char out[SFM_PKI_NAME_MAX])
{
    size_t rdn_at[PKI_NAME_MAX_RDNS], rdn_len[PKI_NAME_MAX_RDNS];
    size_t n = 0, pos = 0;
    sbuf b;

    sb_init(&b, out, SFM_PKI_NAME_MAX);
    while (pos < len) {
        unsigned char tag;
        size_t at, clen;
        if (n == PKI_NAME_MAX_RDNS || der_tlv(in, len, &pos, &tag, &at, &clen) != 0 || tag != 0x31)
            return -1;
        rdn_at[n] = at;
        rdn_len[n] = clen;
        n++;
    }
    for (size_t i = n; i-- > 0;) {
        size_t p = rdn_at[i], end = rdn_at[i] + rdn_len[i];
        int first_atv = 1;
        if (i + 1 != n)
            sb_put(&b, ",", 1);
        while (p < end) {
            unsigned char tag;
            size_t at, clen;
            if (der_tlv(in, end, &p, &tag, &at, &clen) != 0 || tag != 0x30)
                return -1;
            if (!first_atv)
                sb_put(&b, "+", 1);
            if (sb_put_atv(&b, in, at, at + clen) != 0)
                return -1;
            first_atv = 0;
        }
    }
    sb_finish(&b);
    return 0;
}

/* ---- certificate facts ----------------------------------------------------------------- */

/* What one parse of a certificate yields: the public facts plus what chain building needs. */
typedef struct cert_info {
    sfm_pki_facts f;
    const unsigned char *der; /* borrowed: the parsed buffer */
    size_t len;
    size_t subj_at, subj_len; /* raw subject Name content, offsets into der */
    size_t iss_at, iss_len;   /* raw issuer Name content */
    unsigned char *pub;       /* owned copy of the public key as wolfSSL stores it, or NULL */
    word32 pub_len;
    int key_oid; /* RSAk, ECDSAk, ... */
    int version; /* 0 for v1, 2 for v3 */
} cert_info;

static void cert_info_cleanup(cert_info *ci)
{
    if (ci == NULL)
        return;
    free(ci->pub);
    ci->pub = NULL;
}

static int raw_offset(const unsigned char *der, size_t len, const byte *p, int plen, size_t *at, size_t *n)
{
    if (p == NULL || plen < 0 || p < der || (size_t)(p - der) + (size_t)plen > len)
        return -1;
    *at = (size_t)(p - der);
    *n = (size_t)plen;
    return 0;
}

/*
 * Parses a certificate once (wc_ParseCert without verification) and fills *ci.
 * keep_pub: also copy the public key (for verifying what this certificate signed).
 * The self-signature is checked only when the names match (one more signature check,
 * no more file I/O). Returns 0, SFM_PKI_EPARSE or SFM_PKI_ENOMEM.
 */
static int parse_cert(const unsigned char *der, size_t len, cert_info *ci, int keep_pub)
{
    DecodedCert *dc = NULL;
    int rc = SFM_PKI_EPARSE, inited = 0;
    unsigned char tag;
    size_t at, n, pos;

    memset(ci, 0, sizeof *ci);
    if (der == NULL || len == 0 || len > UINT32_MAX)
        goto out;
    dc = malloc(sizeof *dc);
    if (dc == NULL) {
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    inited = 1;
    /* NO_VERIFY: dates and signatures are judged by the callers, against their own "now" */
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) != 0)
        goto out;
    /* wolfSSL tolerates trailing bytes; a certificate is exactly one SEQUENCE */
    if (dc->srcIdx > len || der[0] != 0x30)
        goto out;
    ci->der = der;
    ci->len = len;
    if (raw_offset(der, len, dc->subjectRaw, dc->subjectRawLen, &ci->subj_at, &ci->subj_len) != 0 ||
        raw_offset(der, len, dc->issuerRaw, dc->issuerRawLen, &ci->iss_at, &ci->iss_len) != 0)
        goto out;
    if (name_to_rfc4514(der + ci->subj_at, ci->subj_len, ci->f.subject) != 0 ||
        name_to_rfc4514(der + ci->iss_at, ci->iss_len, ci->f.issuer) != 0)
        goto out;

    /* serial: the INTEGER's value in uppercase hex, without the DER sign octet */
    const unsigned char *s = dc->serial;
    int s_len = dc->serialSz;
    while (s_len > 1 && s[0] == 0x00) {
        s++;
        s_len--;
    }
    if (s_len <= 0 || s_len > 20)
        goto out; /* RFC 5280 4.1.2.2: at most 20 octets */
    hex_encode(s, (size_t)s_len, ci->f.serial, 1);

    /* validity: wolfSSL points at the whole TLV of each time */
    pos = 0;
    if (dc->beforeDate == NULL || dc->afterDate == NULL ||
        der_tlv(dc->beforeDate, (size_t)dc->beforeDateLen, &pos, &tag, &at, &n) != 0 ||
        der_time_decode(tag, dc->beforeDate + at, n, &ci->f.not_before) != 0)
        goto out;
    pos = 0;
    if (der_tlv(dc->afterDate, (size_t)dc->afterDateLen, &pos, &tag, &at, &n) != 0 ||
        der_time_decode(tag, dc->afterDate + at, n, &ci->f.not_after) != 0)
        goto out;

    ci->f.is_ca = dc->isCA ? 1 : 0;
    ci->version = dc->version;
    ci->key_oid = (int)dc->keyOID;
    if (dc->extExtKeyUsageSet) {
        ci->f.eku |= SFM_PKI_EKU_PRESENT;
        if (dc->extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH)
            ci->f.eku |= SFM_PKI_EKU_CLIENT;
        if (dc->extExtKeyUsage & EXTKEYUSE_SERVER_AUTH)
            ci->f.eku |= SFM_PKI_EKU_SERVER;
        if (dc->extExtKeyUsage & EXTKEYUSE_ANY)
            ci->f.eku |= SFM_PKI_EKU_ANY;
    }
    ci->f.self_issued =
        ci->subj_len == ci->iss_len && memcmp(der + ci->subj_at, der + ci->iss_at, ci->subj_len) == 0;
    if (ci->f.self_issued && dc->publicKey != NULL)
        ci->f.self_signed = wc_CheckCertSigPubKey(der, (word32)len, NULL, dc->publicKey, dc->pubKeySize,
                                                  (int)dc->keyOID) == 0;
    if (sfm_pki_sha256(der, len, ci->f.fp) != SFM_PKI_OK)
        goto out;
    hex_encode(ci->f.fp, sizeof ci->f.fp, ci->f.sha256, 0);
    if (keep_pub) {
        if (dc->publicKey == NULL || dc->pubKeySize == 0)
            goto out;
        ci->pub = malloc(dc->pubKeySize);
        if (ci->pub == NULL) {
            rc = SFM_PKI_ENOMEM;
            goto out;
        }
        memcpy(ci->pub, dc->publicKey, dc->pubKeySize);
        ci->pub_len = dc->pubKeySize;
    }
    rc = SFM_PKI_OK;
out:
    if (inited)
        wc_FreeDecodedCert(dc);
    free(dc);
    if (rc != SFM_PKI_OK)
        cert_info_cleanup(ci);
    return rc;
}

int sfm_pki_facts_of(const unsigned char *der, size_t len, sfm_pki_facts *out)
{
    cert_info ci;
    int rc = parse_cert(der, len, &ci, 0);

    if (rc == SFM_PKI_OK)
        *out = ci.f;
    cert_info_cleanup(&ci);
    return rc == SFM_PKI_ENOMEM ? rc : (rc == SFM_PKI_OK ? SFM_PKI_OK : SFM_PKI_EPARSE);
}

int sfm_pki_verify_rs256(const char *cert_pem, size_t pem_len, const unsigned char *msg, size_t msg_len,
                         const unsigned char *sig, size_t sig_len)
{
    sfm_der ders[SFM_PKI_MAX_CHAIN];
    size_t n = 0;
    char err[SFM_PKI_ERR_LEN];
    DecodedCert *dc = NULL;
    RsaKey *key = NULL;
    int rc, dc_inited = 0, key_inited = 0;
    word32 idx = 0;

    if (cert_pem == NULL || msg == NULL || sig == NULL || msg_len > UINT32_MAX || sig_len > UINT32_MAX)
        return SFM_PKI_EARG;
    rc = sfm_pki_pem_certs(cert_pem, pem_len, ders, SFM_PKI_MAX_CHAIN, &n, NULL, err);
    if (rc != SFM_PKI_OK)
        return rc == SFM_PKI_EARG ? SFM_PKI_EPARSE : rc;
    rc = SFM_PKI_EPARSE;
    if (n == 0 || ders[0].len > UINT32_MAX)
        goto out;
    dc = malloc(sizeof *dc);
    key = malloc(sizeof *key);
    if (dc == NULL || key == NULL) {
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    /* The certificate only carries the key: its dates and issuer are not judged (the connected app's
     * certificate is the one the admin configured, as Salesforce takes it). */
    wc_InitDecodedCert(dc, ders[0].der, (word32)ders[0].len, NULL);
    dc_inited = 1;
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) != 0 || dc->publicKey == NULL)
        goto out;
    rc = SFM_PKI_EARG;
    if (dc->keyOID != RSAk)
        goto out;
    rc = SFM_PKI_ECRYPTO;
    if (wc_InitRsaKey(key, NULL) != 0)
        goto out;
    key_inited = 1;
    if (wc_RsaPublicKeyDecode(dc->publicKey, &idx, key, dc->pubKeySize) != 0)
        goto out;
    /* RFC 7518 3.3 and RFC 8017 8.2.2: the signature is exactly k octets long. */
    if (wc_RsaEncryptSize(key) <= 0 || sig_len != (size_t)wc_RsaEncryptSize(key))
        goto out;
    /* PKCS #1 v1.5 with the DigestInfo of SHA-256 ("W_ENC"): what RS256 is. */
    if (wc_SignatureVerify(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, msg, (word32)msg_len, sig,
                           (word32)sig_len, key, sizeof *key) != 0)
        goto out;
    rc = SFM_PKI_OK;
out:
    if (key_inited)
        wc_FreeRsaKey(key);
    free(key);
    if (dc_inited)
        wc_FreeDecodedCert(dc);
    free(dc);
    sfm_pki_ders_free(ders, n);
    return rc;
}

/* 1 when `parent` names and signed `child` (subject/issuer match, signature verifies). */
static int issued_by(const cert_info *child, const cert_info *parent)
{
    if (parent->pub == NULL || child->iss_len != parent->subj_len ||
        memcmp(child->der + child->iss_at, parent->der + parent->subj_at, child->iss_len) != 0)
        return 0;
    return wc_CheckCertSigPubKey(child->der, (word32)child->len, NULL, parent->pub, parent->pub_len,
                                 parent->key_oid) == 0;
}

/* May this certificate sign others? basicConstraints cA, or a v1 certificate (no extensions). */
static int can_sign(const cert_info *ci)
{
    return ci->f.is_ca || ci->version == 0;
}

/* ---- trust anchors --------------------------------------------------------------------- */

typedef struct anchor {
    sfm_der d;    /* owned */
    cert_info ci; /* points into d.der */
} anchor;

struct sfm_pki_trust {
    anchor *a;
    size_t n, cap;
};

int sfm_pki_trust_new(sfm_pki_trust **out)
{
    sfm_pki_trust *t = calloc(1, sizeof *t);

    if (t == NULL)
        return SFM_PKI_ENOMEM;
    *out = t;
    return SFM_PKI_OK;
}

void sfm_pki_trust_free(sfm_pki_trust *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        cert_info_cleanup(&t->a[i].ci);
        free(t->a[i].d.der);
    }
    free(t->a);
    free(t);
}

size_t sfm_pki_trust_count(const sfm_pki_trust *t)
{
    return t == NULL ? 0 : t->n;
}

const sfm_der *sfm_pki_trust_at(const sfm_pki_trust *t, size_t i)
{
    return t != NULL && i < t->n ? &t->a[i].d : NULL;
}

const sfm_pki_facts *sfm_pki_trust_facts_at(const sfm_pki_trust *t, size_t i)
{
    return t != NULL && i < t->n ? &t->a[i].ci.f : NULL;
}

/* Adds one anchor, taking ownership of `der` (freed on failure too). 1 added, 0 skipped. */
static int trust_take(sfm_pki_trust *t, unsigned char *der, size_t len, char *err)
{
    cert_info ci;
    int rc = parse_cert(der, len, &ci, 1);

    if (rc == SFM_PKI_ENOMEM) {
        set_err(err, "out of memory");
        goto fail;
    }
    /* Only self-signed CA certificates anchor a chain [SF: roots only]. */
    if (rc != SFM_PKI_OK || !ci.f.self_signed || !can_sign(&ci)) {
        rc = 0;
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->a[i].ci.f.sha256, ci.f.sha256) == 0) {
            rc = 1; /* already an anchor */
            goto fail;
        }
    }
    if (t->n == PKI_TRUST_MAX_ANCHORS) {
        set_err(err, "more than %d trust anchors", PKI_TRUST_MAX_ANCHORS);
        rc = SFM_PKI_EARG;
        goto fail;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        anchor *a = realloc(t->a, cap * sizeof *a);
        if (a == NULL) {
            set_err(err, "out of memory");
            rc = SFM_PKI_ENOMEM;
            goto fail;
        }
        t->a = a;
        t->cap = cap;
    }
    t->a[t->n].d.der = der;
    t->a[t->n].d.len = len;
    t->a[t->n].ci = ci;
    t->n++;
    return 1;
fail:
    cert_info_cleanup(&ci);
    free(der);
    return rc;
}

int sfm_pki_trust_add_pem(sfm_pki_trust *t, const char *pem, size_t len, size_t *skipped,
                          char err[SFM_PKI_ERR_LEN])
{
    sfm_der *ders = NULL;
    pem_scan res;
    size_t skip = 0, i = 0;
    int rc;

    memset(&res, 0, sizeof res);
    if (t == NULL || pem == NULL) {
        set_err(err, "bad argument");
        return SFM_PKI_EARG;
    }
    ders = calloc(PKI_BUNDLE_MAX_CERTS, sizeof *ders);
    if (ders == NULL) {
        set_err(err, "out of memory");
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    rc = pem_scan_text(pem, len, ders, PKI_BUNDLE_MAX_CERTS, &res);
    if (rc != SFM_PKI_OK) {
        set_err(err, "out of memory");
        goto out;
    }
    if (res.bad_blocks > 0) {
        set_err(err, "a PEM block does not decode (bad base64 or no END line)");
        rc = SFM_PKI_EPARSE;
        goto out;
    }
    if (res.cert_blocks == 0) {
        set_err(err, "no certificate in the bundle");
        rc = SFM_PKI_EPARSE;
        goto out;
    }
    if (res.cert_blocks > PKI_BUNDLE_MAX_CERTS) {
        set_err(err, "more than %d certificates in one bundle", PKI_BUNDLE_MAX_CERTS);
        rc = SFM_PKI_EARG;
        goto out;
    }
    for (i = 0; i < res.n; i++) {
        unsigned char *der = ders[i].der;
        ders[i].der = NULL; /* trust_take owns it from here */
        int r = trust_take(t, der, ders[i].len, err);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r == 0)
            skip++;
    }
    if (skipped != NULL)
        *skipped = skip;
    rc = SFM_PKI_OK;
out:
    sfm_pki_ders_free(ders, res.n);
    free(ders);
    return rc;
}

int sfm_pki_trust_add_file(sfm_pki_trust *t, const char *path, size_t *skipped, char err[SFM_PKI_ERR_LEN])
{
    char *text = NULL;
    size_t len = 0;
    char inner[SFM_PKI_ERR_LEN];
    int rc;

    rc = sfm_pki_read_file(path, PKI_BUNDLE_MAX_BYTES, &text, &len, err);
    if (rc != SFM_PKI_OK)
        return rc;
    rc = sfm_pki_trust_add_pem(t, text, len, skipped, inner);
    if (rc != SFM_PKI_OK)
        set_err(err, "%s: %s", path, inner);
    free(text);
    return rc;
}

/* ---- the upload check (SPEC section 6) ------------------------------------------------- */

const char *sfm_pki_problem_code(unsigned bit)
{
    switch (bit) {
    case SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED: return "PRIVATE_KEY_NOT_ALLOWED";
    case SFM_PKI_P_MALFORMED_CERTIFICATE: return "MALFORMED_CERTIFICATE";
    case SFM_PKI_P_CERTIFICATE_TOO_LARGE: return "CERTIFICATE_TOO_LARGE";
    case SFM_PKI_P_SELF_SIGNED_CERTIFICATE: return "SELF_SIGNED_CERTIFICATE";
    case SFM_PKI_P_UNTRUSTED_CERTIFICATE: return "UNTRUSTED_CERTIFICATE";
    case SFM_PKI_P_CERTIFICATE_EXPIRED: return "CERTIFICATE_EXPIRED";
    case SFM_PKI_P_CERTIFICATE_NOT_YET_VALID: return "CERTIFICATE_NOT_YET_VALID";
    }
    return "UNKNOWN_PROBLEM";
}

/* Appends "CODE: message\n" to the detail buffer, cutting it short when full. */
static void detail_add(char *detail, size_t cap, unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void detail_add(char *detail, size_t cap, unsigned bit, const char *fmt, ...)
{
    va_list ap;

    if (detail == NULL || cap == 0)
        return;
    size_t used = strnlen(detail, cap);
    if (used + 1 >= cap)
        return;
    int n = snprintf(detail + used, cap - used, "%s: ", sfm_pki_problem_code(bit));
    if (n < 0 || (size_t)n >= cap - used)
        return;
    used += (size_t)n;
    va_start(ap, fmt);
    n = vsnprintf(detail + used, cap - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - used)
        return;
    used += (size_t)n;
    if (used + 1 < cap) {
        detail[used] = '\n';
        detail[used + 1] = '\0';
    }
}

typedef struct chain_ctx {
    const cert_info *certs; /* from the text; certs[i].der == NULL when it did not parse */
    size_t n;
    const sfm_pki_trust *trust;
    /* edge[i][j]: 0 unknown, 1 certs[j] issued certs[i], 2 it did not (signatures are checked once) */
    unsigned char edge[PKI_CHECK_MAX_CERTS][PKI_CHECK_MAX_CERTS];
    unsigned budget; /* path steps left: crafted cross-signed sets must not explode the search */
} chain_ctx;

static int text_issued_by(chain_ctx *c, size_t child, size_t parent)
{
    if (c->edge[child][parent] == 0)
        c->edge[child][parent] = issued_by(&c->certs[child], &c->certs[parent]) ? 1 : 2;
    return c->edge[child][parent] == 1;
}

/*
 * Depth-first search for a path from certs[cur] to an anchor through the text's CA
 * certificates, each used once (the `used` mask bounds the depth). Sets *anchor_out.
 */
static int find_path(chain_ctx *c, size_t cur, unsigned long long used, const cert_info **anchor_out)
{
    const cert_info *ci = &c->certs[cur];

    if (c->budget == 0)
        return 0;
    c->budget--;
    for (size_t i = 0; c->trust != NULL && i < c->trust->n; i++) {
        if (issued_by(ci, &c->trust->a[i].ci)) {
            *anchor_out = &c->trust->a[i].ci;
            return 1;
        }
    }
    if (ci->f.self_signed)
        return 0; /* a root nobody trusts: the path ends here */
    for (size_t j = 0; j < c->n; j++) {
        if ((used >> j) & 1 || c->certs[j].der == NULL || !can_sign(&c->certs[j]))
            continue;
        if (text_issued_by(c, cur, j) && find_path(c, j, used | (1ULL << j), anchor_out))
            return 1;
    }
    return 0;
}

int sfm_pki_check_pem(const sfm_pki_trust *trust, const char *pem, size_t len, time_t now, unsigned *problems,
                      char *detail, size_t detail_len)
{
    sfm_der ders[PKI_CHECK_MAX_CERTS];
    cert_info *certs = NULL;
    pem_scan res;
    unsigned p = 0;
    size_t parsed = 0;
    int rc;
    char when[32];

    memset(&res, 0, sizeof res);
    if (pem == NULL || problems == NULL)
        return SFM_PKI_EARG;
    if (detail != NULL && detail_len > 0)
        detail[0] = '\0';
    rc = pem_scan_text(pem, len, ders, PKI_CHECK_MAX_CERTS, &res);
    if (rc != SFM_PKI_OK)
        return rc;
    certs = calloc(PKI_CHECK_MAX_CERTS, sizeof *certs);
    if (certs == NULL) {
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < res.n; i++) {
        if (ders[i].der == NULL)
            continue;
        int r = parse_cert(ders[i].der, ders[i].len, &certs[i], 1);
        if (r == SFM_PKI_ENOMEM) {
            rc = r;
            goto out;
        }
        if (r == SFM_PKI_OK)
            parsed++;
        else
            memset(&certs[i], 0, sizeof certs[i]); /* der == NULL marks it unusable */
    }

    if (res.has_key) {
        p |= SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED;
        detail_add(detail, detail_len, SFM_PKI_P_PRIVATE_KEY_NOT_ALLOWED,
                   "the text holds a private key; upload the certificate only");
    }
    if (res.cert_blocks == 0) {
        p |= SFM_PKI_P_MALFORMED_CERTIFICATE;
        detail_add(detail, detail_len, SFM_PKI_P_MALFORMED_CERTIFICATE,
                   "no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    } else if (res.bad_blocks > 0 || parsed < res.n) {
        p |= SFM_PKI_P_MALFORMED_CERTIFICATE;
        detail_add(detail, detail_len, SFM_PKI_P_MALFORMED_CERTIFICATE,
                   "%zu of %zu certificate blocks do not decode as X.509", (res.n - parsed) + res.unclosed,
                   res.cert_blocks);
    }
    if (len > SFM_PKI_UPLOAD_MAX_BYTES || res.cert_blocks > SFM_PKI_UPLOAD_MAX_CERTS) {
        p |= SFM_PKI_P_CERTIFICATE_TOO_LARGE;
        detail_add(detail, detail_len, SFM_PKI_P_CERTIFICATE_TOO_LARGE,
                   "%zu bytes and %zu certificates; the limit is %d bytes and %d certificates", len,
                   res.cert_blocks, SFM_PKI_UPLOAD_MAX_BYTES, SFM_PKI_UPLOAD_MAX_CERTS);
    }
    if (res.n == 0 || certs[0].der == NULL)
        goto judged; /* no leaf to judge further */

    const cert_info *leaf = &certs[0];
    if (leaf->f.self_signed) {
        p |= SFM_PKI_P_SELF_SIGNED_CERTIFICATE;
        detail_add(detail, detail_len, SFM_PKI_P_SELF_SIGNED_CERTIFICATE,
                   "the leaf (%s) is self-signed; a CA-signed certificate is required", leaf->f.subject);
    }
    const cert_info *anchor_ci = NULL;
    chain_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    c->certs = certs;
    c->n = res.n;
    c->trust = trust;
    c->budget = PKI_PATH_BUDGET;
    int found = find_path(c, 0, 1ULL, &anchor_ci);
    free(c);
    if (!found) {
        p |= SFM_PKI_P_UNTRUSTED_CERTIFICATE;
        detail_add(detail, detail_len, SFM_PKI_P_UNTRUSTED_CERTIFICATE,
                   "no chain from the leaf (issuer %s) to a trusted root through the certificates given "
                   "(trust anchors: %zu)",
                   leaf->f.issuer, sfm_pki_trust_count(trust));
    }
    /* dates: the leaf, every certificate of the text, and the anchor the path reached */
    for (size_t i = 0; i <= res.n; i++) {
        const cert_info *ci = i < res.n ? &certs[i] : anchor_ci;
        if (ci == NULL || ci->der == NULL)
            continue;
        if (now > ci->f.not_after && !(p & SFM_PKI_P_CERTIFICATE_EXPIRED)) {
            p |= SFM_PKI_P_CERTIFICATE_EXPIRED;
            sfm_pki_iso8601(ci->f.not_after, when);
            detail_add(detail, detail_len, SFM_PKI_P_CERTIFICATE_EXPIRED, "%s expired at %s", ci->f.subject,
                       when);
        }
    }
    for (size_t i = 0; i <= res.n; i++) {
        const cert_info *ci = i < res.n ? &certs[i] : anchor_ci;
        if (ci == NULL || ci->der == NULL)
            continue;
        if (now < ci->f.not_before && !(p & SFM_PKI_P_CERTIFICATE_NOT_YET_VALID)) {
            p |= SFM_PKI_P_CERTIFICATE_NOT_YET_VALID;
            sfm_pki_iso8601(ci->f.not_before, when);
            detail_add(detail, detail_len, SFM_PKI_P_CERTIFICATE_NOT_YET_VALID, "%s is valid from %s",
                       ci->f.subject, when);
        }
    }
judged:
    *problems = p;
    rc = SFM_PKI_OK;
out:
    if (certs != NULL) {
        for (size_t i = 0; i < res.n; i++)
            cert_info_cleanup(&certs[i]);
        free(certs);
    }
    sfm_pki_ders_free(ders, res.n);
    return rc;
}

/* ---- files ----------------------------------------------------------------------------- */

int sfm_pki_read_file(const char *path, size_t max, char **out, size_t *len, char err[SFM_PKI_ERR_LEN])
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1, rc = SFM_PKI_EIO;

    if (path == NULL || out == NULL || len == NULL) {
        set_err(err, "bad argument");
        return SFM_PKI_EARG;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        set_err(err, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
        goto out;
    }
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > max) {
        set_err(err, "%s: larger than %zu bytes", path, max);
        rc = SFM_PKI_EARG;
        goto out;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        set_err(err, "out of memory");
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    for (;;) {
        if (n == max) {
            /* one more byte would make it too large (pipes and growing files) */
            char extra;
            ssize_t r = read(fd, &extra, 1);
            if (r > 0) {
                set_err(err, "%s: larger than %zu bytes", path, max);
                rc = SFM_PKI_EARG;
                goto out;
            }
            break;
        }
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    /* Give back what the cap reserved beyond the file (a shrinking realloc
     * that fails leaves the block as it was). */
    char *fit = realloc(buf, n + 1);
    *out = fit ? fit : buf;
    *len = n;
    buf = NULL;
    rc = SFM_PKI_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Creates `dir` and its missing parents with `mode`. */
static int mkdir_p(const char *dir, mode_t mode, char *err)
{
    char tmp[PKI_PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof tmp) {
        set_err(err, "bad directory name");
        return SFM_PKI_EARG;
    }
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
            set_err(err, "%s: %s", tmp, strerror(errno));
            return SFM_PKI_EIO;
        }
        tmp[i] = c;
    }
    return SFM_PKI_OK;
}

static int path_join(char *out, size_t cap, const char *a, const char *b, char *err)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    if (n < 0 || (size_t)n >= cap) {
        set_err(err, "path too long: %s/%s", a, b);
        return SFM_PKI_EARG;
    }
    return SFM_PKI_OK;
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Writes a file atomically: a temporary sibling, fsync, then rename, so that a crash
 * never leaves half a key or certificate behind. `mode` applies even when the file
 * existed (keys are 0600).
 */
static int write_file(const char *path, const void *data, size_t len, mode_t mode, char *err)
{
    char tmp[PKI_PATH_MAX];
    const unsigned char *p = data;
    int fd = -1, rc = SFM_PKI_EIO;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof tmp) {
        set_err(err, "path too long: %s", path);
        return SFM_PKI_EARG;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || fchmod(fd, mode) != 0) {
        set_err(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            set_err(err, "%s: %s", tmp, strerror(errno));
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        set_err(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(err, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        set_err(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = SFM_PKI_OK;
out:
    if (fd >= 0)
        close(fd);
    if (rc != SFM_PKI_OK)
        unlink(tmp);
    return rc;
}

/* ---- keys ------------------------------------------------------------------------------ */

int sfm_pki_key_parse(const char *name, enum sfm_pki_key *out)
{
    static const struct {
        const char *name;
        enum sfm_pki_key key;
    } k_keys[] = {
        {"ec", SFM_PKI_KEY_EC_P256},
        {"rsa2048", SFM_PKI_KEY_RSA2048},
        {"rsa3072", SFM_PKI_KEY_RSA3072},
        {"rsa4096", SFM_PKI_KEY_RSA4096},
    };

    if (name == NULL || out == NULL)
        return SFM_PKI_EARG;
    for (size_t i = 0; i < sizeof k_keys / sizeof k_keys[0]; i++) {
        if (strcmp(name, k_keys[i].name) == 0) {
            *out = k_keys[i].key;
            return SFM_PKI_OK;
        }
    }
    return SFM_PKI_EARG;
}

/* A private key of either family. `type` is wolfSSL's RSA_TYPE or ECC_TYPE. */
typedef struct pki_key {
    int type;
    int ready;
    RsaKey rsa;
    ecc_key ecc;
} pki_key;

static void *key_ptr(pki_key *k)
{
    return k->type == RSA_TYPE ? (void *)&k->rsa : (void *)&k->ecc;
}

static void key_free(pki_key *k)
{
    if (k == NULL)
        return;
    if (k->ready) {
        if (k->type == RSA_TYPE)
            wc_FreeRsaKey(&k->rsa);
        else
            wc_ecc_free(&k->ecc);
    }
    free(k);
}

static int key_generate(pki_key **out, enum sfm_pki_key kind, WC_RNG *rng, char *err)
{
    pki_key *k = calloc(1, sizeof *k);
    int bits = 0, rc = SFM_PKI_ECRYPTO, ret;

    if (k == NULL) {
        set_err(err, "out of memory");
        return SFM_PKI_ENOMEM;
    }
    switch (kind) {
    case SFM_PKI_KEY_EC_P256: k->type = ECC_TYPE; break;
    case SFM_PKI_KEY_RSA2048: bits = 2048; break;
    case SFM_PKI_KEY_RSA3072: bits = 3072; break;
    case SFM_PKI_KEY_RSA4096: bits = 4096; break;
    }
    if (bits > 0) {
        k->type = RSA_TYPE;
        ret = wc_InitRsaKey(&k->rsa, NULL);
        if (ret == 0) {
            k->ready = 1;
            ret = wc_MakeRsaKey(&k->rsa, bits, WC_RSA_EXPONENT, rng);
        }
    } else if (k->type == ECC_TYPE) {
        ret = wc_ecc_init(&k->ecc);
        if (ret == 0) {
            k->ready = 1;
            ret = wc_ecc_make_key_ex(rng, 32, &k->ecc, ECC_SECP256R1);
        }
    } else {
        set_err(err, "unknown key type %d", (int)kind);
        rc = SFM_PKI_EARG;
        goto out;
    }
    if (ret != 0) {
        set_err(err, "key generation failed: %s", wc_GetErrorString(ret));
        goto out;
    }
    *out = k;
    k = NULL;
    rc = SFM_PKI_OK;
out:
    key_free(k);
    return rc;
}

/* The key in its traditional DER form (PKCS#1 RSAPrivateKey or SEC 1 ECPrivateKey). */
static int key_to_der(pki_key *k, unsigned char *out, size_t cap, size_t *len, char *err)
{
    int n = k->type == RSA_TYPE ? wc_RsaKeyToDer(&k->rsa, out, (word32)cap)
                                : wc_EccKeyToDer(&k->ecc, out, (word32)cap);

    if (n <= 0) {
        set_err(err, "key encoding failed: %s", wc_GetErrorString(n));
        return SFM_PKI_ECRYPTO;
    }
    *len = (size_t)n;
    return SFM_PKI_OK;
}

/*
 * The key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): the one form that Java,
 * .NET, curl, OpenSSL and wolfSSL all read.
 */
static int key_to_pem(pki_key *k, char *pem, size_t cap, size_t *len, char *err)
{
    unsigned char trad[PKI_KEY_DER_MAX], p8[PKI_KEY_DER_MAX + 64];
    size_t trad_len = 0;
    word32 p8_len = sizeof p8;
    int rc = key_to_der(k, trad, sizeof trad, &trad_len, err);
    int ret;

    if (rc != SFM_PKI_OK)
        goto out;
    rc = SFM_PKI_ECRYPTO;
    if (k->type == RSA_TYPE)
        ret = wc_CreatePKCS8Key(p8, &p8_len, trad, (word32)trad_len, RSAk, NULL, 0);
    else
        ret = wc_EccKeyToPKCS8(&k->ecc, p8, &p8_len);
    if (ret <= 0) {
        set_err(err, "PKCS#8 encoding failed: %s", wc_GetErrorString(ret));
        goto out;
    }
    ret = wc_DerToPem(p8, (word32)ret, (byte *)pem, (word32)cap, PKCS8_PRIVATEKEY_TYPE);
    if (ret <= 0) {
        set_err(err, "PEM encoding failed: %s", wc_GetErrorString(ret));
        goto out;
    }
    *len = (size_t)ret;
    rc = SFM_PKI_OK;
out:
    explicit_bzero(trad, sizeof trad);
    explicit_bzero(p8, sizeof p8);
    return rc;
}

/* Loads a PEM private key of the family `key_oid` names (RSAk or ECDSAk). */
static int key_load(pki_key **out, const char *path, int key_oid, char *err)
{
    char *text = NULL;
    size_t len = 0, pos = 0;
    unsigned char *der = NULL;
    size_t der_len = 0;
    pem_block blk;
    pki_key *k = NULL;
    int rc, ret, r;
    word32 idx = 0;

    rc = sfm_pki_read_file(path, PKI_CA_FILE_MAX, &text, &len, err);
    if (rc != SFM_PKI_OK)
        goto out;
    rc = SFM_PKI_EPARSE;
    while ((r = pem_next(text, len, &pos, &blk)) == 1 && !label_is_key(&blk))
        ;
    if (r != 1 || label_is(&blk, "ENCRYPTED PRIVATE KEY") ||
        b64_decode(blk.body, blk.body_len, &der, &der_len) != SFM_PKI_OK) {
        set_err(err, "%s: no unencrypted PEM private key", path);
        goto out;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL) {
        set_err(err, "out of memory");
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    /* both decoders skip a PKCS#8 wrapper themselves */
    if (key_oid == RSAk) {
        k->type = RSA_TYPE;
        ret = wc_InitRsaKey(&k->rsa, NULL);
        if (ret == 0) {
            k->ready = 1;
            ret = wc_RsaPrivateKeyDecode(der, &idx, &k->rsa, (word32)der_len);
        }
    } else if (key_oid == ECDSAk) {
        k->type = ECC_TYPE;
        ret = wc_ecc_init(&k->ecc);
        if (ret == 0) {
            k->ready = 1;
            ret = wc_EccPrivateKeyDecode(der, &idx, &k->ecc, (word32)der_len);
        }
    } else {
        set_err(err, "%s: unsupported key algorithm", path);
        goto out;
    }
    if (ret != 0) {
        set_err(err, "%s: key does not decode: %s", path, wc_GetErrorString(ret));
        goto out;
    }
    *out = k;
    k = NULL;
    rc = SFM_PKI_OK;
out:
    key_free(k);
    if (der != NULL) {
        explicit_bzero(der, der_len);
        free(der);
    }
    if (text != NULL) {
        explicit_bzero(text, len);
        free(text);
    }
    return rc;
}

/* ---- certificates ---------------------------------------------------------------------- */

/* A loaded CA: its certificate and key. */
typedef struct pki_ca {
    unsigned char *der; /* owned */
    size_t len;
    pki_key *key;
} pki_ca;

static void ca_cleanup(pki_ca *ca)
{
    free(ca->der);
    ca->der = NULL;
    key_free(ca->key);
    ca->key = NULL;
}

static int ca_load(pki_ca *ca, const char *cert_path, const char *key_path, char *err)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    sfm_der one[1];
    cert_info ci;
    int rc;

    memset(ca, 0, sizeof *ca);
    memset(&ci, 0, sizeof ci);
    rc = sfm_pki_read_file(cert_path, PKI_CA_FILE_MAX, &text, &len, err);
    if (rc != SFM_PKI_OK)
        goto out;
    /* the first certificate of the file is the CA's own */
    pem_scan res;
    rc = pem_scan_text(text, len, one, 1, &res);
    if (rc != SFM_PKI_OK)
        goto out;
    n = res.n;
    if (n == 0 || one[0].der == NULL || parse_cert(one[0].der, one[0].len, &ci, 0) != SFM_PKI_OK) {
        set_err(err, "%s: no certificate", cert_path);
        rc = SFM_PKI_EPARSE;
        goto out;
    }
    rc = key_load(&ca->key, key_path, ci.key_oid, err);
    if (rc != SFM_PKI_OK)
        goto out;
    ca->der = one[0].der;
    ca->len = one[0].len;
    one[0].der = NULL;
out:
    cert_info_cleanup(&ci);
    sfm_pki_ders_free(one, n);
    free(text);
    if (rc != SFM_PKI_OK)
        ca_cleanup(ca);
    return rc;
}

/* What one certificate is made of. */
typedef struct cert_spec {
    const char *cn;
    const char *org;
    int is_ca;
    int path_len;              /* -1: no pathLenConstraint */
    const char *key_usage;     /* wc_SetKeyUsage tokens */
    const char *ext_key_usage; /* wc_SetExtKeyUsage tokens, or NULL */
    const unsigned char *san;  /* GeneralNames DER, or NULL */
    size_t san_len;
    time_t not_before, not_after;
    pki_key *subject_key;
    pki_key *issuer_key;         /* the subject key when self-signed */
    const unsigned char *issuer; /* issuer certificate DER; NULL when self-signed */
    size_t issuer_len;
} cert_spec;

/* A random positive serial (see PKI_SERIAL_LEN). */
static int make_serial(unsigned char *s, WC_RNG *rng)
{
    if (wc_RNG_GenerateBlock(rng, s, PKI_SERIAL_LEN) != 0)
        return -1;
    /* The top bit clear keeps the INTEGER positive without a 0x00 pad; a non-zero first
     * octet keeps its DER minimal (a leading 0x00 before a byte < 0x80 is not DER). */
    s[0] &= 0x7f;
    if (s[0] == 0)
        s[0] = 0x01;
    return 0;
}

static int make_cert(const cert_spec *s, WC_RNG *rng, unsigned char *der, size_t cap, size_t *len, char *err)
{
    Cert *c = malloc(sizeof *c);
    int rc = SFM_PKI_ECRYPTO, ret, n;

    if (c == NULL) {
        set_err(err, "out of memory");
        return SFM_PKI_ENOMEM;
    }
    if (strlen(s->cn) >= CTC_NAME_SIZE || strlen(s->org) >= CTC_NAME_SIZE) {
        set_err(err, "common name longer than %d bytes", CTC_NAME_SIZE - 1);
        rc = SFM_PKI_EARG;
        goto out;
    }
    if (s->san_len > sizeof c->altNames) {
        set_err(err, "too many subjectAltNames");
        rc = SFM_PKI_EARG;
        goto out;
    }
    ret = wc_InitCert(c);
    if (ret != 0) {
        set_err(err, "wc_InitCert: %s", wc_GetErrorString(ret));
        goto out;
    }
    if (make_serial(c->serial, rng) != 0) {
        set_err(err, "random number generator failed");
        goto out;
    }
    c->serialSz = PKI_SERIAL_LEN;
    c->sigType = s->issuer_key->type == ECC_TYPE ? CTC_SHA256wECDSA : CTC_SHA256wRSA;
    snprintf(c->subject.commonName, CTC_NAME_SIZE, "%s", s->cn);
    c->subject.commonNameEnc = CTC_UTF8;
    snprintf(c->subject.org, CTC_NAME_SIZE, "%s", s->org);
    c->subject.orgEnc = CTC_UTF8;
    if (s->issuer != NULL) {
        c->selfSigned = 0;
        /* the issuer's subject bytes verbatim, so that name chaining matches exactly */
        ret = wc_SetIssuerRaw(c, s->issuer, (int)s->issuer_len);
        if (ret == 0)
            ret = wc_SetAuthKeyIdFromCert(c, s->issuer, (int)s->issuer_len);
        if (ret != 0) {
            set_err(err, "issuer certificate: %s", wc_GetErrorString(ret));
            goto out;
        }
    } else {
        c->selfSigned = 1;
    }
    if (der_time_encode(s->not_before, c->beforeDate, sizeof c->beforeDate, &c->beforeDateSz) != 0 ||
        der_time_encode(s->not_after, c->afterDate, sizeof c->afterDate, &c->afterDateSz) != 0) {
        set_err(err, "validity out of range");
        rc = SFM_PKI_EARG;
        goto out;
    }
    c->isCA = s->is_ca;
    if (s->is_ca && s->path_len >= 0) {
        c->pathLen = (byte)s->path_len;
        c->pathLenSet = 1;
    }
    if (!s->is_ca)
        c->basicConstSet = 1; /* an explicit CA:FALSE */
    ret = wc_SetKeyUsage(c, s->key_usage);
    if (ret == 0 && s->ext_key_usage != NULL)
        ret = wc_SetExtKeyUsage(c, s->ext_key_usage);
    if (ret == 0)
        ret = wc_SetSubjectKeyIdFromPublicKey_ex(c, s->subject_key->type, key_ptr(s->subject_key));
    if (ret != 0) {
        set_err(err, "certificate extensions: %s", wc_GetErrorString(ret));
        goto out;
    }
    if (s->issuer == NULL && c->skidSz > 0 && (size_t)c->skidSz <= sizeof c->akid) {
        memcpy(c->akid, c->skid, (size_t)c->skidSz); /* self-signed: AKID is its own SKID */
        c->akidSz = c->skidSz;
    }
    if (s->san_len > 0) {
        memcpy(c->altNames, s->san, s->san_len);
        c->altNamesSz = (int)s->san_len;
    }
    ret = wc_MakeCert_ex(c, der, (word32)cap, s->subject_key->type, key_ptr(s->subject_key), rng);
    if (ret <= 0) {
        set_err(err, "wc_MakeCert: %s", wc_GetErrorString(ret));
        goto out;
    }
    n = wc_SignCert_ex(c->bodySz, c->sigType, der, (word32)cap, s->issuer_key->type, key_ptr(s->issuer_key),
                       rng);
    if (n <= 0) {
        set_err(err, "wc_SignCert: %s", wc_GetErrorString(n));
        goto out;
    }
    *len = (size_t)n;
    rc = SFM_PKI_OK;
out:
    free(c);
    return rc;
}

/* Builds the subjectAltName GeneralNames: IP literals as iPAddress, the rest as dNSName. */
static int build_san(const char *const *sans, size_t n, unsigned char *out, size_t cap, size_t *len,
                     char *err)
{
    unsigned char body[PKI_SAN_DER_MAX];
    size_t used = 0;

    if (n > SFM_PKI_MAX_SANS) {
        set_err(err, "at most %d subjectAltNames", SFM_PKI_MAX_SANS);
        return SFM_PKI_EARG;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ip[16];
        const unsigned char *v;
        size_t vlen;
        unsigned char tag;
        if (sans[i] == NULL) {
            set_err(err, "empty subjectAltName");
            return SFM_PKI_EARG;
        }
        if (inet_pton(AF_INET, sans[i], ip) == 1) {
            tag = 0x87;
            v = ip;
            vlen = 4;
        } else if (inet_pton(AF_INET6, sans[i], ip) == 1) {
            tag = 0x87;
            v = ip;
            vlen = 16;
        } else {
            vlen = strlen(sans[i]);
            if (vlen == 0 || vlen > PKI_DNS_MAX ||
                strspn(sans[i], "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789.-*_") != vlen) {
                set_err(err, "subjectAltName \"%s\" is neither a DNS name nor an IP address", sans[i]);
                return SFM_PKI_EARG;
            }
            tag = 0x82;
            v = (const unsigned char *)sans[i];
        }
        if (used + vlen + 4 > sizeof body) {
            set_err(err, "subjectAltNames too long");
            return SFM_PKI_EARG;
        }
        body[used++] = tag;
        used += der_len_put(body + used, vlen);
        memcpy(body + used, v, vlen);
        used += vlen;
    }
    if (used + 4 > cap) {
        set_err(err, "subjectAltNames too long");
        return SFM_PKI_EARG;
    }
    out[0] = 0x30;
    size_t h = 1 + der_len_put(out + 1, used);
    memcpy(out + h, body, used);
    *len = h + used;
    return SFM_PKI_OK;
}

static int cert_to_pem(const unsigned char *der, size_t len, char *pem, size_t cap, size_t *pem_len,
                       char *err)
{
    int n = wc_DerToPem(der, (word32)len, (byte *)pem, (word32)cap, CERT_TYPE);

    if (n <= 0) {
        set_err(err, "PEM encoding failed: %s", wc_GetErrorString(n));
        return SFM_PKI_ECRYPTO;
    }
    *pem_len = (size_t)n;
    return SFM_PKI_OK;
}

/* Writes a certificate PEM and its key (0600). */
static int write_cert_and_key(const char *cert_path, const unsigned char *der, size_t len,
                              const char *key_path, pki_key *key, char *err)
{
    char *pem = malloc(PKI_PEM_MAX);
    size_t pem_len = 0;
    int rc = SFM_PKI_ENOMEM;

    if (pem == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    rc = key_to_pem(key, pem, PKI_PEM_MAX, &pem_len, err);
    if (rc == SFM_PKI_OK)
        rc = write_file(key_path, pem, pem_len, 0600, err);
    if (rc == SFM_PKI_OK)
        rc = cert_to_pem(der, len, pem, PKI_PEM_MAX, &pem_len, err);
    if (rc == SFM_PKI_OK)
        rc = write_file(cert_path, pem, pem_len, 0644, err);
out:
    if (pem != NULL) {
        explicit_bzero(pem, PKI_PEM_MAX);
        free(pem);
    }
    return rc;
}

/* A short random tag that tells apart the CAs of different directories. */
static int ca_tag(WC_RNG *rng, char out[9])
{
    unsigned char r[4];

    if (wc_RNG_GenerateBlock(rng, r, sizeof r) != 0)
        return -1;
    hex_encode(r, sizeof r, out, 1);
    return 0;
}

/* Makes a self-signed root CA named "<cn> <tag>", writes it and hands it back in *out (may be NULL). */
static int make_root(const char *dir, const char *cert_name, const char *key_name, const char *cn,
                     const char *tag, const char *org, enum sfm_pki_key kind, WC_RNG *rng, pki_ca *out,
                     char *err)
{
    char cert_path[PKI_PATH_MAX], key_path[PKI_PATH_MAX], full_cn[CTC_NAME_SIZE];
    unsigned char *der = malloc(PKI_CERT_DER_MAX);
    pki_key *key = NULL;
    size_t len = 0;
    time_t now = time(NULL);
    int rc = SFM_PKI_ENOMEM;

    if (der == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    rc = path_join(cert_path, sizeof cert_path, dir, cert_name, err);
    if (rc == SFM_PKI_OK)
        rc = path_join(key_path, sizeof key_path, dir, key_name, err);
    if (rc != SFM_PKI_OK)
        goto out;
    snprintf(full_cn, sizeof full_cn, "%s %s", cn, tag);
    rc = key_generate(&key, kind, rng, err);
    if (rc != SFM_PKI_OK)
        goto out;
    cert_spec s = {
        .cn = full_cn,
        .org = org,
        .is_ca = 1,
        .path_len = -1,
        .key_usage = "keyCertSign,cRLSign",
        .not_before = now - PKI_BACKDATE_SECONDS,
        .not_after = now + (time_t)PKI_ROOT_DAYS * 86400,
        .subject_key = key,
        .issuer_key = key,
    };
    rc = make_cert(&s, rng, der, PKI_CERT_DER_MAX, &len, err);
    if (rc == SFM_PKI_OK)
        rc = write_cert_and_key(cert_path, der, len, key_path, key, err);
    if (rc != SFM_PKI_OK)
        goto out;
    if (out != NULL) {
        out->der = der;
        out->len = len;
        out->key = key;
        der = NULL;
        key = NULL;
    }
out:
    free(der);
    key_free(key);
    return rc;
}

int sfm_pki_ca_exists(const char *dir)
{
    static const char *const k_files[] = {"ca.pem", "ca.key", "intermediate.pem", "intermediate.key"};
    char path[PKI_PATH_MAX];

    if (dir == NULL)
        return 0;
    for (size_t i = 0; i < sizeof k_files / sizeof k_files[0]; i++) {
        if (path_join(path, sizeof path, dir, k_files[i], NULL) != SFM_PKI_OK || !file_exists(path))
            return 0;
    }
    return 1;
}

int sfm_pki_ca_init(const char *dir, enum sfm_pki_key key, char err[SFM_PKI_ERR_LEN])
{
    char cert_path[PKI_PATH_MAX], key_path[PKI_PATH_MAX], full_cn[CTC_NAME_SIZE], tag[9];
    unsigned char *der = NULL;
    pki_ca root;
    pki_key *ikey = NULL;
    WC_RNG rng;
    int rng_ready = 0, rc;
    size_t len = 0;
    time_t now = time(NULL);

    memset(&root, 0, sizeof root);
    if (dir == NULL || *dir == '\0') {
        set_err(err, "no directory given");
        return SFM_PKI_EARG;
    }
    if (sfm_pki_ca_exists(dir)) {
        set_err(err, "%s already holds a CA", dir);
        return SFM_PKI_EARG;
    }
    /* A partial CA (a crash during an earlier init) is replaced: no leaf can exist
     * without intermediate.pem, and nothing else trusts a half-made directory. */
    rc = mkdir_p(dir, 0700, err);
    if (rc != SFM_PKI_OK)
        return rc;
    if (wc_InitRng(&rng) != 0) {
        set_err(err, "random number generator failed");
        rc = SFM_PKI_ECRYPTO;
        goto out;
    }
    rng_ready = 1;
    if (ca_tag(&rng, tag) != 0) {
        set_err(err, "random number generator failed");
        rc = SFM_PKI_ECRYPTO;
        goto out;
    }
    rc = make_root(dir, "ca.pem", "ca.key", "sfmtls Dev Root CA", tag, "sfmtls", key, &rng, &root, err);
    if (rc != SFM_PKI_OK)
        goto out;
    rc = key_generate(&ikey, key, &rng, err);
    if (rc != SFM_PKI_OK)
        goto out;
    der = malloc(PKI_CERT_DER_MAX);
    if (der == NULL) {
        set_err(err, "out of memory");
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    /* the intermediate carries the root's tag: "... Root CA 1A2B3C4D", "... Intermediate CA 1A2B3C4D" */
    snprintf(full_cn, sizeof full_cn, "sfmtls Dev Intermediate CA %s", tag);
    cert_spec s = {
        .cn = full_cn,
        .org = "sfmtls",
        .is_ca = 1,
        .path_len = 0, /* signs leaves only */
        .key_usage = "keyCertSign,cRLSign",
        .not_before = now - PKI_BACKDATE_SECONDS,
        .not_after = now + (time_t)PKI_INTERMEDIATE_DAYS * 86400,
        .subject_key = ikey,
        .issuer_key = root.key,
        .issuer = root.der,
        .issuer_len = root.len,
    };
    rc = make_cert(&s, &rng, der, PKI_CERT_DER_MAX, &len, err);
    if (rc == SFM_PKI_OK)
        rc = path_join(cert_path, sizeof cert_path, dir, "intermediate.pem", err);
    if (rc == SFM_PKI_OK)
        rc = path_join(key_path, sizeof key_path, dir, "intermediate.key", err);
    if (rc == SFM_PKI_OK)
        rc = write_cert_and_key(cert_path, der, len, key_path, ikey, err);
out:
    free(der);
    key_free(ikey);
    ca_cleanup(&root);
    if (rng_ready)
        wc_FreeRng(&rng);
    return rc;
}

/*
 * wolfSSL 5.5.4's wc_EncryptPKCS8Key, which encrypts the PKCS#12 key bag, pads with
 * (8 - len % 8) % 8 bytes: a PKCS#8 key whose length is a multiple of 8 gets no PKCS#5
 * padding block, and OpenSSL, Java and .NET then fail with "bad decrypt". Returns 1 when
 * `k` does not hit that (its PKCS#8 form, as wolfSSL builds it there, is not a multiple
 * of 8 bytes). RSA key lengths vary by a byte or two, so 1 RSA key in 8 hits it; the
 * caller makes another key. P-256 keys have one fixed length, which is fine.
 */
static int p12_key_encrypts(pki_key *k)
{
    unsigned char trad[PKI_KEY_DER_MAX], p8[PKI_KEY_DER_MAX + 64];
    size_t trad_len = 0;
    word32 p8_len = sizeof p8;
    const byte *curve = NULL;
    word32 curve_len = 0;
    int ok = 0, n;

    if (key_to_der(k, trad, sizeof trad, &trad_len, NULL) != SFM_PKI_OK)
        goto out;
    if (k->type == ECC_TYPE &&
        (k->ecc.dp == NULL || wc_ecc_get_oid(k->ecc.dp->oidSum, &curve, &curve_len) < 0))
        goto out;
    /* really encoded: a NULL output only yields an upper bound */
    n = wc_CreatePKCS8Key(p8, &p8_len, trad, (word32)trad_len, k->type == RSA_TYPE ? RSAk : ECDSAk, curve,
                          curve_len);
    ok = n > 0 && n % 8 != 0;
out:
    explicit_bzero(trad, sizeof trad);
    explicit_bzero(p8, sizeof p8);
    return ok;
}

/* A capped DER output buffer: writes past `cap` set `overflow` and are dropped. */
typedef struct dbuf {
    unsigned char *p;
    size_t len, cap;
    int overflow;
} dbuf;

static void db_put(dbuf *b, const void *data, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* Appends tag, length and `n` bytes of content. */
static void db_tlv(dbuf *b, unsigned char tag, const void *content, size_t n)
{
    unsigned char hdr[4];

    hdr[0] = tag;
    if (n > 0xffff) {
        b->overflow = 1;
        return;
    }
    db_put(b, hdr, 1 + der_len_put(hdr + 1, n));
    db_put(b, content, n);
}

/* DER of the object identifiers a PKCS#12 file needs (RFC 7292, RFC 2985). */
static const unsigned char k_oid_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
static const unsigned char k_oid_cert_bag[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03};
static const unsigned char k_oid_shrouded_key_bag[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                       0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02};
static const unsigned char k_oid_x509_cert[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01};
static const unsigned char k_oid_local_key_id[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                   0xf7, 0x0d, 0x01, 0x09, 0x15};
static const unsigned char k_oid_friendly_name[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                    0xf7, 0x0d, 0x01, 0x09, 0x14};
static const unsigned char k_alg_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                             0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00};

/** Largest PKCS#12 file we write (a leaf with 32 long SANs and an RSA-4096 key fit). */
#define PKI_P12_MAX (256 * 1024)
/** Longest PKCS#12 password. */
#define PKI_P12_PASSWORD_MAX 128
/** Salt of the PKCS#12 MAC. */
#define PKI_P12_SALT_LEN 8

/* bagAttributes: localKeyId (ties the key to its certificate) and friendlyName (the alias). */
static void p12_attributes(dbuf *out, const unsigned char *key_id, size_t key_id_len, const char *name)
{
    unsigned char buf[1024], set[1024], bmp[2 * CTC_NAME_SIZE];
    dbuf attrs = {buf, 0, sizeof buf, 0}, one = {set, 0, sizeof set, 0};
    size_t bmp_len = 0, i = 0, n = strlen(name);

    /* localKeyId: SEQUENCE { OID, SET { OCTET STRING } } */
    db_tlv(&one, 0x04, key_id, key_id_len);
    unsigned char tmp[256];
    dbuf attr = {tmp, 0, sizeof tmp, 0};
    db_put(&attr, k_oid_local_key_id, sizeof k_oid_local_key_id);
    db_tlv(&attr, 0x31, one.p, one.len);
    db_tlv(&attrs, 0x30, attr.p, attr.len);
    /* friendlyName: BMPString of the name (outside the BMP: '?') */
    while (i < n && bmp_len + 2 <= sizeof bmp) {
        unsigned long cp = '?';
        size_t step = utf8_decode((const unsigned char *)name + i, n - i, &cp);
        if (step == 0)
            step = 1;
        if (cp > 0xffff)
            cp = '?';
        bmp[bmp_len++] = (unsigned char)(cp >> 8);
        bmp[bmp_len++] = (unsigned char)cp;
        i += step;
    }
    one.len = 0;
    db_tlv(&one, 0x1e, bmp, bmp_len);
    attr.len = 0;
    db_put(&attr, k_oid_friendly_name, sizeof k_oid_friendly_name);
    db_tlv(&attr, 0x31, one.p, one.len);
    db_tlv(&attrs, 0x30, attr.p, attr.len);
    if (one.overflow || attr.overflow || attrs.overflow)
        out->overflow = 1;
    db_tlv(out, 0x31, attrs.p, attrs.len);
}

/* A CertBag SafeBag, with attributes when key_id is not NULL. */
static void p12_cert_bag(dbuf *out, const unsigned char *der, size_t len, const unsigned char *key_id,
                         size_t key_id_len, const char *name, unsigned char *scratch, size_t cap)
{
    dbuf a = {scratch, 0, cap / 2, 0}, b = {scratch + cap / 2, 0, cap / 2, 0};

    /* CertBag ::= SEQUENCE { x509Certificate, [0] { OCTET STRING cert } } */
    db_tlv(&a, 0x04, der, len);
    db_put(&b, k_oid_x509_cert, sizeof k_oid_x509_cert);
    db_tlv(&b, 0xa0, a.p, a.len);
    a.len = 0;
    db_tlv(&a, 0x30, b.p, b.len);
    /* SafeBag ::= SEQUENCE { certBag, [0] CertBag, attributes } */
    b.len = 0;
    db_put(&b, k_oid_cert_bag, sizeof k_oid_cert_bag);
    db_tlv(&b, 0xa0, a.p, a.len);
    if (key_id != NULL)
        p12_attributes(&b, key_id, key_id_len, name);
    if (a.overflow || b.overflow)
        out->overflow = 1;
    db_tlv(out, 0x30, b.p, b.len);
}

/* ContentInfo { id-data, [0] { OCTET STRING content } } */
static void p12_data(dbuf *out, const unsigned char *content, size_t len, unsigned char *scratch, size_t cap)
{
    dbuf a = {scratch, 0, cap / 2, 0}, b = {scratch + cap / 2, 0, cap / 2, 0};

    db_tlv(&a, 0x04, content, len);
    db_put(&b, k_oid_data, sizeof k_oid_data);
    db_tlv(&b, 0xa0, a.p, a.len);
    if (a.overflow || b.overflow)
        out->overflow = 1;
    db_tlv(out, 0x30, b.p, b.len);
}

/*
 * Writes PREFIX.p12 (RFC 7292), built here rather than with wc_PKCS12_create, which
 * in wolfSSL 5.5.4 writes no localKeyId: Java 17 then loads the key with an empty
 * certificate chain. Layout, as OpenSSL writes it with -certpbe NONE:
 *   - the key: a pkcs8ShroudedKeyBag, pbeWithSHAAnd3-KeyTripleDES-CBC (OpenSSL 3 opens it
 *     without -legacy; RC2 and RC4 would need the legacy provider; Java and .NET read it);
 *   - the leaf and its issuer: CertBags in plain Data (certificates are public);
 *   - localKeyId (SHA-256 of the leaf) and friendlyName (the CN) on the key and the leaf;
 *   - an HMAC-SHA-256 MAC keyed with the PKCS#12 KDF.
 */
static int write_p12(const char *path, const char *password, const char *name, pki_key *key,
                     const unsigned char *leaf, size_t leaf_len, const unsigned char *ca, size_t ca_len,
                     WC_RNG *rng, char *err)
{
    unsigned char keyder[PKI_KEY_DER_MAX], key_id[WC_SHA256_DIGEST_SIZE], salt[PKI_P12_SALT_LEN];
    unsigned char mac[WC_SHA256_DIGEST_SIZE], mac_key[WC_SHA256_DIGEST_SIZE],
        bmp[2 * PKI_P12_PASSWORD_MAX + 2];
    unsigned char *mem = NULL;
    size_t keylen = 0, pw_len = strlen(password), bmp_len = 0;
    word32 enc_len = 0;
    Hmac hmac;
    int hmac_ready = 0, rc, ret;

    if (pw_len == 0 || pw_len > PKI_P12_PASSWORD_MAX) {
        set_err(err, "the PKCS#12 password must have 1 to %d characters", PKI_P12_PASSWORD_MAX);
        return SFM_PKI_EARG;
    }
    for (size_t i = 0; i < pw_len; i++) {
        unsigned char c = (unsigned char)password[i];
        if (c < 0x20 || c > 0x7e) {
            /* wolfSSL widens each byte to BMP; only ASCII matches what other readers derive */
            set_err(err, "the PKCS#12 password must be printable ASCII");
            return SFM_PKI_EARG;
        }
        bmp[bmp_len++] = 0x00;
        bmp[bmp_len++] = c;
    }
    bmp[bmp_len++] = 0x00; /* RFC 7292 B.1: the BMPString ends with a NUL */
    bmp[bmp_len++] = 0x00;
    if (!p12_key_encrypts(key)) {
        set_err(err, "wolfSSL cannot encrypt this key for PKCS#12 (see p12_key_encrypts)");
        rc = SFM_PKI_ECRYPTO;
        goto out;
    }
    rc = key_to_der(key, keyder, sizeof keyder, &keylen, err);
    if (rc != SFM_PKI_OK)
        goto out;
    rc = SFM_PKI_ENOMEM;
    /* one allocation, cut into: the encrypted key, scratch, bags, safes, the file */
    enum { SLICE = PKI_P12_MAX / 8 };
    mem = malloc(8 * (size_t)SLICE);
    if (mem == NULL) {
        set_err(err, "out of memory");
        goto out;
    }
    unsigned char *enc = mem, *scratch = mem + SLICE;
    dbuf certs = {mem + 3 * SLICE, 0, SLICE, 0}, keys = {mem + 4 * SLICE, 0, SLICE, 0};
    dbuf safe = {mem + 5 * SLICE, 0, SLICE, 0}, pfx = {mem + 6 * SLICE, 0, 2 * SLICE, 0};
    /* slices: 0 enc (reused for each level's output), 1-2 scratch, 3 certs, 4 keys, 5 safe, 6-7 pfx */
    rc = SFM_PKI_ECRYPTO;
    if (wc_Sha256Hash(leaf, (word32)leaf_len, key_id) != 0 ||
        wc_RNG_GenerateBlock(rng, salt, sizeof salt) != 0) {
        set_err(err, "PKCS#12: hash or random number generator failed");
        goto out;
    }

    /* the key: EncryptedPrivateKeyInfo, PKCS#12 v1 PBE (vPKCS 1) with SHA-1 and 3DES */
    enc_len = SLICE;
    ret = wc_CreateEncryptedPKCS8Key(keyder, (word32)keylen, enc, &enc_len, password, (int)pw_len, 1,
                                     PBE_SHA1_DES3, 0, NULL, 0, PKI_P12_ITERATIONS, rng, NULL);
    if (ret <= 0) {
        set_err(err, "PKCS#12 key encryption failed: %s", wc_GetErrorString(ret));
        goto out;
    }
    {
        dbuf bag = {scratch, 0, SLICE, 0}, inner = {scratch + SLICE, 0, SLICE, 0};
        db_put(&bag, k_oid_shrouded_key_bag, sizeof k_oid_shrouded_key_bag);
        db_tlv(&bag, 0xa0, enc, (size_t)ret);
        p12_attributes(&bag, key_id, sizeof key_id, name);
        db_tlv(&inner, 0x30, bag.p, bag.len);    /* the SafeBag */
        db_tlv(&keys, 0x30, inner.p, inner.len); /* SafeContents: one bag */
        if (bag.overflow || inner.overflow)
            keys.overflow = 1;
    }
    /* the certificates: SafeContents of the leaf and its issuer */
    {
        dbuf bags = {enc, 0, SLICE, 0};
        p12_cert_bag(&bags, leaf, leaf_len, key_id, sizeof key_id, name, scratch, 2 * SLICE);
        if (ca != NULL)
            p12_cert_bag(&bags, ca, ca_len, NULL, 0, name, scratch, 2 * SLICE);
        db_tlv(&certs, 0x30, bags.p, bags.len);
        if (bags.overflow)
            certs.overflow = 1;
    }
    /* AuthenticatedSafe: SEQUENCE OF ContentInfo (certificates, then the key, as OpenSSL) */
    {
        dbuf cis = {enc, 0, SLICE, 0};
        p12_data(&cis, certs.p, certs.len, scratch, 2 * SLICE);
        p12_data(&cis, keys.p, keys.len, scratch, 2 * SLICE);
        db_tlv(&safe, 0x30, cis.p, cis.len);
        if (cis.overflow)
            safe.overflow = 1;
    }
    if (certs.overflow || keys.overflow || safe.overflow) {
        set_err(err, "PKCS#12 larger than %d bytes", PKI_P12_MAX);
        goto out;
    }
    /* the MAC over the AuthenticatedSafe (RFC 7292 B.3: KDF purpose 3) */
    ret = wc_PKCS12_PBKDF_ex(mac_key, bmp, (int)bmp_len, salt, sizeof salt, PKI_P12_ITERATIONS,
                             sizeof mac_key, WC_HASH_TYPE_SHA256, 3, NULL);
    if (ret == 0)
        ret = wc_HmacInit(&hmac, NULL, INVALID_DEVID);
    if (ret == 0) {
        hmac_ready = 1;
        ret = wc_HmacSetKey(&hmac, WC_SHA256, mac_key, sizeof mac_key);
    }
    if (ret == 0)
        ret = wc_HmacUpdate(&hmac, safe.p, (word32)safe.len);
    if (ret == 0)
        ret = wc_HmacFinal(&hmac, mac);
    if (ret != 0) {
        set_err(err, "PKCS#12 MAC failed: %s", wc_GetErrorString(ret));
        goto out;
    }
    /* PFX ::= SEQUENCE { version 3, authSafe ContentInfo, macData } */
    {
        static const unsigned char version[] = {0x02, 0x01, 0x03};
        unsigned char iter[] = {0x02, 0x02, (unsigned char)(PKI_P12_ITERATIONS >> 8),
                                (unsigned char)(PKI_P12_ITERATIONS & 0xff)};
        unsigned char md_buf[256], di_buf[256];
        dbuf body = {enc, 0, SLICE, 0};
        dbuf md = {md_buf, 0, sizeof md_buf, 0}, di = {di_buf, 0, sizeof di_buf, 0};
        db_put(&body, version, sizeof version);
        p12_data(&body, safe.p, safe.len, scratch, 2 * SLICE);
        /* MacData ::= SEQUENCE { DigestInfo, macSalt, iterations } */
        db_put(&di, k_alg_sha256, sizeof k_alg_sha256);
        db_tlv(&di, 0x04, mac, sizeof mac);
        db_tlv(&md, 0x30, di.p, di.len);
        db_tlv(&md, 0x04, salt, sizeof salt);
        db_put(&md, iter, sizeof iter);
        db_tlv(&body, 0x30, md.p, md.len);
        db_tlv(&pfx, 0x30, body.p, body.len);
        if (body.overflow || md.overflow || di.overflow || pfx.overflow) {
            set_err(err, "PKCS#12 larger than %d bytes", PKI_P12_MAX);
            goto out;
        }
    }
    rc = write_file(path, pfx.p, pfx.len, 0600, err);
out:
    if (hmac_ready)
        wc_HmacFree(&hmac);
    if (mem != NULL) {
        explicit_bzero(mem, 8 * (size_t)SLICE);
        free(mem);
    }
    explicit_bzero(keyder, sizeof keyder);
    explicit_bzero(mac_key, sizeof mac_key);
    explicit_bzero(bmp, sizeof bmp);
    return rc;
}

static int check_issue_opts(const sfm_pki_issue_opts *o, char *err)
{
    int negatives;

    if (o == NULL || o->cn == NULL || *o->cn == '\0') {
        set_err(err, "a common name is required");
        return SFM_PKI_EARG;
    }
    if (o->out_prefix == NULL || *o->out_prefix == '\0') {
        set_err(err, "an output prefix is required");
        return SFM_PKI_EARG;
    }
    if (o->days < 0 || o->days > PKI_MAX_DAYS) {
        set_err(err, "days must be between 1 and %d", PKI_MAX_DAYS);
        return SFM_PKI_EARG;
    }
    if (o->n_sans > 0 && o->sans == NULL) {
        set_err(err, "bad argument");
        return SFM_PKI_EARG;
    }
    negatives = !!o->self_signed + !!o->expired + !!o->not_yet_valid + !!o->untrusted + !!o->eku_server;
    if (negatives > 1) {
        set_err(err, "at most one of self-signed, expired, not-yet-valid, untrusted, eku-server");
        return SFM_PKI_EARG;
    }
    return SFM_PKI_OK;
}

/* Makes sure the directory's untrusted CA exists, and loads it. */
static int untrusted_ca(const char *dir, WC_RNG *rng, pki_ca *out, char *err)
{
    char cert_path[PKI_PATH_MAX], key_path[PKI_PATH_MAX];
    int rc = path_join(cert_path, sizeof cert_path, dir, "untrusted-ca.pem", err);

    if (rc == SFM_PKI_OK)
        rc = path_join(key_path, sizeof key_path, dir, "untrusted-ca.key", err);
    if (rc != SFM_PKI_OK)
        return rc;
    if (file_exists(cert_path) && file_exists(key_path))
        return ca_load(out, cert_path, key_path, err);
    rc = mkdir_p(dir, 0700, err);
    if (rc != SFM_PKI_OK)
        return rc;
    char tag[9];
    if (ca_tag(rng, tag) != 0) {
        set_err(err, "random number generator failed");
        return SFM_PKI_ECRYPTO;
    }
    return make_root(dir, "untrusted-ca.pem", "untrusted-ca.key", "sfmtls Untrusted CA", tag,
                     "sfmtls untrusted", SFM_PKI_KEY_EC_P256, rng, out, err);
}

int sfm_pki_issue(const char *dir, const sfm_pki_issue_opts *o, char err[SFM_PKI_ERR_LEN])
{
    char path[PKI_PATH_MAX], cert_path[PKI_PATH_MAX], key_path[PKI_PATH_MAX];
    unsigned char san[PKI_SAN_DER_MAX];
    size_t san_len = 0, len = 0, pem_len = 0, used = 0;
    unsigned char *der = NULL;
    char *chain = NULL;
    pki_ca ca;
    pki_key *key = NULL;
    cert_info ca_ci, leaf_ci;
    WC_RNG rng;
    int rng_ready = 0, rc;
    time_t now = time(NULL);

    memset(&ca, 0, sizeof ca);
    memset(&ca_ci, 0, sizeof ca_ci);
    memset(&leaf_ci, 0, sizeof leaf_ci);
    rc = check_issue_opts(o, err);
    if (rc != SFM_PKI_OK)
        return rc;
    if (wc_InitRng(&rng) != 0) {
        set_err(err, "random number generator failed");
        rc = SFM_PKI_ECRYPTO;
        goto out;
    }
    rng_ready = 1;

    /* the signer */
    if (o->untrusted) {
        if (dir == NULL || *dir == '\0') {
            set_err(err, "no CA directory given");
            rc = SFM_PKI_EARG;
            goto out;
        }
        rc = untrusted_ca(dir, &rng, &ca, err);
    } else if (!o->self_signed) {
        if (dir == NULL || !sfm_pki_ca_exists(dir)) {
            set_err(err, "%s holds no CA (run: sfmtls-ca init --dir %s)", dir ? dir : "(null)",
                    dir ? dir : "DIR");
            rc = SFM_PKI_EARG;
            goto out;
        }
        rc = path_join(cert_path, sizeof cert_path, dir, "intermediate.pem", err);
        if (rc == SFM_PKI_OK)
            rc = path_join(key_path, sizeof key_path, dir, "intermediate.key", err);
        if (rc == SFM_PKI_OK)
            rc = ca_load(&ca, cert_path, key_path, err);
    }
    if (rc != SFM_PKI_OK)
        goto out;

    /* the subjectAltNames: a server certificate always names its host */
    /* X.520 caps a CN at 64 characters, host names reach 253: a server certificate for a
     * longer name keeps it in the SAN (what TLS clients match) under a generic CN */
    const char *subject_cn = o->cn;
    if (o->kind == SFM_PKI_SERVER && strlen(o->cn) >= CTC_NAME_SIZE)
        subject_cn = "sfmtls server";
    const char *const cn_only[1] = {o->cn};
    if (o->n_sans > 0)
        rc = build_san(o->sans, o->n_sans, san, sizeof san, &san_len, err);
    else if (o->kind == SFM_PKI_SERVER)
        rc = build_san(cn_only, 1, san, sizeof san, &san_len, err);
    if (rc != SFM_PKI_OK)
        goto out;

    for (int tries = 0;; tries++) {
        rc = key_generate(&key, o->key, &rng, err);
        if (rc != SFM_PKI_OK)
            goto out;
        if (o->p12_password == NULL || p12_key_encrypts(key) || tries == PKI_P12_KEY_TRIES)
            break;
        key_free(key); /* see p12_key_encrypts */
        key = NULL;
    }

    time_t days = (time_t)(o->days == 0 ? 365 : o->days) * 86400;
    time_t nb = now - PKI_BACKDATE_SECONDS, na = now + days;
    if (o->expired) {
        na = now - PKI_EXPIRED_AGO_SECONDS;
        nb = na - days;
    } else if (o->not_yet_valid) {
        nb = now + PKI_NOT_YET_VALID_IN_SECONDS;
        na = nb + days;
    }
    const char *eku = o->kind == SFM_PKI_CLIENT ? "clientAuth" : "serverAuth";
    if (o->eku_server)
        eku = "serverAuth";
    cert_spec s = {
        .cn = subject_cn,
        .org = o->untrusted ? "sfmtls untrusted" : "sfmtls",
        .is_ca = 0,
        .path_len = -1,
        .key_usage = key->type == RSA_TYPE ? "digitalSignature,keyEncipherment" : "digitalSignature",
        .ext_key_usage = eku,
        .san = san_len > 0 ? san : NULL,
        .san_len = san_len,
        .not_before = nb,
        .not_after = na,
        .subject_key = key,
        .issuer_key = o->self_signed ? key : ca.key,
        .issuer = o->self_signed ? NULL : ca.der,
        .issuer_len = o->self_signed ? 0 : ca.len,
    };
    der = malloc(PKI_CERT_DER_MAX);
    chain = malloc(2 * PKI_PEM_MAX);
    if (der == NULL || chain == NULL) {
        set_err(err, "out of memory");
        rc = SFM_PKI_ENOMEM;
        goto out;
    }
    rc = make_cert(&s, &rng, der, PKI_CERT_DER_MAX, &len, err);
    if (rc != SFM_PKI_OK)
        goto out;

    /* self-check: the issuer's public key verifies the new leaf (catches a CA key that
     * does not belong to its certificate) */
    rc = parse_cert(der, len, &leaf_ci, 0);
    if (rc == SFM_PKI_OK && !o->self_signed)
        rc = parse_cert(ca.der, ca.len, &ca_ci, 1);
    if (rc != SFM_PKI_OK || (o->self_signed ? !leaf_ci.f.self_signed : !issued_by(&leaf_ci, &ca_ci))) {
        set_err(err, "the issued certificate does not verify with its issuer's key (mismatched CA key?)");
        rc = SFM_PKI_ECRYPTO;
        goto out;
    }

    /* the files */
    char *slash = NULL;
    if (snprintf(path, sizeof path, "%s", o->out_prefix) >= (int)sizeof path) {
        set_err(err, "output prefix too long");
        rc = SFM_PKI_EARG;
        goto out;
    }
    slash = strrchr(path, '/');
    if (slash != NULL && slash != path) {
        *slash = '\0';
        rc = mkdir_p(path, 0700, err);
        if (rc != SFM_PKI_OK)
            goto out;
    }
    if (snprintf(cert_path, sizeof cert_path, "%s.crt", o->out_prefix) >= (int)sizeof cert_path ||
        snprintf(key_path, sizeof key_path, "%s.key", o->out_prefix) >= (int)sizeof key_path ||
        snprintf(path, sizeof path, "%s.chain.pem", o->out_prefix) >= (int)sizeof path) {
        set_err(err, "output prefix too long");
        rc = SFM_PKI_EARG;
        goto out;
    }
    rc = write_cert_and_key(cert_path, der, len, key_path, key, err);
    if (rc != SFM_PKI_OK)
        goto out;
    rc = cert_to_pem(der, len, chain, 2 * PKI_PEM_MAX, &used, err);
    if (rc == SFM_PKI_OK && !o->self_signed) {
        rc = cert_to_pem(ca.der, ca.len, chain + used, 2 * PKI_PEM_MAX - used, &pem_len, err);
        used += pem_len;
    }
    if (rc == SFM_PKI_OK)
        rc = write_file(path, chain, used, 0644, err);
    if (rc == SFM_PKI_OK && o->p12_password != NULL) {
        if (snprintf(path, sizeof path, "%s.p12", o->out_prefix) >= (int)sizeof path) {
            set_err(err, "output prefix too long");
            rc = SFM_PKI_EARG;
            goto out;
        }
        rc = write_p12(path, o->p12_password, o->cn, key, der, len, o->self_signed ? NULL : ca.der,
                       o->self_signed ? 0 : ca.len, &rng, err);
    }
out:
    cert_info_cleanup(&ca_ci);
    cert_info_cleanup(&leaf_ci);
    free(der);
    free(chain);
    key_free(key);
    ca_cleanup(&ca);
    if (rng_ready)
        wc_FreeRng(&rng);
    return rc;
}
