#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "pki.h"

/* Salesforce's suites (SPEC section 2): all five TLS 1.3 suites, and the
 * ECDHE TLS 1.2 suites of its published list in its order. */
#define TLS13_SUITES                                                           \
    "TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:TLS13-AES128-CCM-SHA256:" \
    "TLS13-AES128-CCM-8-SHA256:TLS13-CHACHA20-POLY1305-SHA256"
#define TLS12_RSA_SUITES                                                               \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:" \
    "ECDHE-RSA-AES128-SHA256"
#define TLS12_EC_SUITES                                            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256"

/* Session tickets carry, after wolfSSL's own state, this many bytes of ours:
 * the id of the layer-1 outcome in the ticket table, the listener, and
 * whether there was a client certificate. wolfSSL leaves 32 bytes of room. */
#define TICKET_SUFFIX 16
#define TICKET_NONCE  12
#define TICKET_TAG    16
/* Layer-1 outcomes that resumed sessions can recover. An evicted one makes
 * the resumption fail over to a full handshake, which is always correct. */
#define TICKET_SLOTS 16384u
/* Per context (one worker, one listener); a power of two. */
#define CERT_INFO_CACHE 64u

struct ticket_slot {
    uint64_t id;
    sfm_cert_info *ci;
};

struct sfm_tls_shared {
    atomic_int refs; /* main's, and one per context built on it */
    char *chain;
    size_t chain_len;
    char *key;
    size_t key_len;
    WOLFSSL_X509 **anchors; /* parsed once; read-only, shared by the workers */
    size_t n_anchors;
    sfm_der *crls;
    char **crl_names;
    size_t n_crls;
    int required, alert, allow_no_eku;

    unsigned char ticket_key[32];
    unsigned char key_name[WOLFSSL_TICKET_NAME_SZ];
    pthread_mutex_t lock; /* guards the ticket table below, nothing else */
    uint64_t next_id;
    struct ticket_slot *slots;
};

struct sfm_tls_ctx {
    int refs; /* the worker's and one per connection; one thread only */
    WOLFSSL_CTX *wctx;
    sfm_tls_shared *sh;
    enum sfm_listener listener;
    int cm_clean_size; /* wolfSSL's size of a certificate manager holding the anchors only */
    WC_RNG rng;
    int rng_ok;
    Aes aes;
    int aes_ok;
    /* Recent layer-1 outcomes, so that a client that comes back shares one
     * copy of its leaf across its connections and tickets. */
    sfm_cert_info *recent[CERT_INFO_CACHE];
};

const char *sfm_listener_name(enum sfm_listener l)
{
    switch (l) {
    case SFM_LISTENER_MTLS: return "mtls";
    case SFM_LISTENER_STANDARD: return "standard";
    }
    return "mtls";
}

sfm_cert_info *sfm_cert_info_ref(sfm_cert_info *ci)
{
    if (ci)
        atomic_fetch_add_explicit(&ci->refs, 1, memory_order_relaxed);
    return ci;
}

void sfm_cert_info_unref(sfm_cert_info *ci)
{
    if (ci && atomic_fetch_sub_explicit(&ci->refs, 1, memory_order_acq_rel) == 1)
        free(ci);
}

static int dup_blobs(sfm_der **out, const sfm_der *src, size_t n)
{
    *out = NULL;
    if (n == 0)
        return 0;
    sfm_der *d = calloc(n, sizeof(*d));
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        d[i].der = malloc(src[i].len ? src[i].len : 1);
        if (!d[i].der) {
            sfm_pki_ders_free(d, i);
            free(d);
            return -ENOMEM;
        }
        memcpy(d[i].der, src[i].der, src[i].len);
        d[i].len = src[i].len;
    }
    *out = d;
    return 0;
}

int sfm_tls_shared_new(sfm_tls_shared **out, const sfm_tls_settings *s, char err[SFM_TLS_ERR_LEN])
{
    sfm_tls_shared *sh = calloc(1, sizeof(*sh));
    int rc = -ENOMEM;
    WC_RNG rng;
    int rng_ok = 0;
    if (!sh)
        goto fail;
    atomic_init(&sh->refs, 1);
    pthread_mutex_init(&sh->lock, NULL);
    sh->chain = malloc(s->cert_chain_len + 1);
    sh->key = malloc(s->key_len + 1);
    sh->slots = calloc(TICKET_SLOTS, sizeof(*sh->slots));
    if (!sh->chain || !sh->key || !sh->slots)
        goto fail;
    memcpy(sh->chain, s->cert_chain_pem, s->cert_chain_len);
    sh->chain_len = s->cert_chain_len;
    memcpy(sh->key, s->key_pem, s->key_len);
    sh->key_len = s->key_len;
    if (dup_blobs(&sh->crls, s->crls, s->n_crls) < 0)
        goto fail;
    sh->anchors = calloc(s->n_anchors + 1, sizeof(*sh->anchors));
    if (!sh->anchors)
        goto fail;
    for (size_t i = 0; i < s->n_anchors; i++) {
        sh->anchors[i] = wolfSSL_X509_d2i(NULL, s->anchors[i].der, (int)s->anchors[i].len);
        if (!sh->anchors[i]) {
            snprintf(err, SFM_TLS_ERR_LEN, "trust anchor %zu is not a valid certificate", i + 1);
            rc = -EINVAL;
            goto fail;
        }
        sh->n_anchors++;
    }
    sh->n_crls = s->n_crls;
    if (s->n_crls) {
        sh->crl_names = calloc(s->n_crls, sizeof(char *));
        if (!sh->crl_names)
            goto fail;
        for (size_t i = 0; i < s->n_crls; i++) {
            sh->crl_names[i] = strdup(s->crl_names[i]);
            if (!sh->crl_names[i])
                goto fail;
        }
    }
    sh->required = s->client_cert_required;
    sh->alert = s->cert_failure_alert;
    sh->allow_no_eku = s->allow_no_eku;

    if (wc_InitRng(&rng) != 0) {
        snprintf(err, SFM_TLS_ERR_LEN, "cannot start wolfCrypt's random generator");
        rc = -EIO;
        goto fail;
    }
    rng_ok = 1;
    if (wc_RNG_GenerateBlock(&rng, sh->ticket_key, sizeof(sh->ticket_key)) != 0 ||
        wc_RNG_GenerateBlock(&rng, sh->key_name, sizeof(sh->key_name)) != 0) {
        snprintf(err, SFM_TLS_ERR_LEN, "cannot generate the session ticket key");
        rc = -EIO;
        goto fail;
    }
    wc_FreeRng(&rng);
    *out = sh;
    return 0;

fail:
    if (rng_ok)
        wc_FreeRng(&rng);
    if (rc == -ENOMEM)
        snprintf(err, SFM_TLS_ERR_LEN, "out of memory");
    sfm_tls_shared_unref(sh);
    return rc;
}

sfm_tls_shared *sfm_tls_shared_ref(sfm_tls_shared *sh)
{
    if (sh)
        atomic_fetch_add(&sh->refs, 1);
    return sh;
}

void sfm_tls_shared_unref(sfm_tls_shared *sh)
{
    if (!sh || atomic_fetch_sub(&sh->refs, 1) != 1)
        return;
    if (sh->slots) {
        for (size_t i = 0; i < TICKET_SLOTS; i++)
            sfm_cert_info_unref(sh->slots[i].ci);
        free(sh->slots);
    }
    pthread_mutex_destroy(&sh->lock);
    free(sh->chain);
    if (sh->key)
        memset(sh->key, 0, sh->key_len);
    free(sh->key);
    for (size_t i = 0; i < sh->n_anchors; i++)
        wolfSSL_X509_free(sh->anchors[i]);
    free(sh->anchors);
    sfm_pki_ders_free(sh->crls, sh->n_crls);
    free(sh->crls);
    for (size_t i = 0; sh->crl_names && i < sh->n_crls; i++)
        free(sh->crl_names[i]);
    free(sh->crl_names);
    memset(sh->ticket_key, 0, sizeof(sh->ticket_key));
    free(sh);
}

static uint64_t ticket_table_put(sfm_tls_shared *sh, sfm_cert_info *ci)
{
    pthread_mutex_lock(&sh->lock);
    uint64_t id = ++sh->next_id;
    struct ticket_slot *s = &sh->slots[id % TICKET_SLOTS];
    sfm_cert_info *old = s->ci;
    s->id = id;
    s->ci = sfm_cert_info_ref(ci);
    pthread_mutex_unlock(&sh->lock);
    sfm_cert_info_unref(old);
    return id;
}

static sfm_cert_info *ticket_table_get(sfm_tls_shared *sh, uint64_t id)
{
    sfm_cert_info *ci = NULL;
    pthread_mutex_lock(&sh->lock);
    struct ticket_slot *s = &sh->slots[id % TICKET_SLOTS];
    if (s->id == id)
        ci = sfm_cert_info_ref(s->ci);
    pthread_mutex_unlock(&sh->lock);
    return ci;
}

/*
 * Session tickets are sealed with AES-256-GCM under a key that lives only in
 * this process, and carry the id of the full handshake's layer-1 outcome. A
 * ticket from another listener, another process, or whose outcome is gone is
 * rejected, and the client then gets a full handshake (SPEC section 2).
 */
static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                     int enc, unsigned char *ticket, int in_len, int *out_len, void *user)
{
    sfm_tls_ctx *ctx = user;
    sfm_tls_shared *sh = ctx->sh;
    sfm_tls_conn *t = wolfSSL_get_app_data(ssl);
    if (!t || !ctx->aes_ok || !ctx->rng_ok)
        return WOLFSSL_TICKET_RET_REJECT;

    if (enc) {
        if (in_len < 0 || *out_len < in_len + TICKET_SUFFIX)
            return WOLFSSL_TICKET_RET_FATAL;
        if (t->cert && !t->ticket_id)
            t->ticket_id = ticket_table_put(sh, t->cert);
        unsigned char *suffix = ticket + in_len;
        uint64_t id = t->cert ? t->ticket_id : 0;
        memset(suffix, 0, TICKET_SUFFIX);
        memcpy(suffix, &id, sizeof(id));
        suffix[8] = (unsigned char)ctx->listener;
        suffix[9] = t->cert != NULL;
        memcpy(key_name, sh->key_name, WOLFSSL_TICKET_NAME_SZ);
        memset(iv, 0, WOLFSSL_TICKET_IV_SZ);
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        if (wc_RNG_GenerateBlock(&ctx->rng, iv, TICKET_NONCE) != 0)
            return WOLFSSL_TICKET_RET_FATAL;
        int len = in_len + TICKET_SUFFIX;
        if (wc_AesGcmEncrypt(&ctx->aes, ticket, ticket, (word32)len, iv, TICKET_NONCE, mac, TICKET_TAG,
                             key_name, WOLFSSL_TICKET_NAME_SZ) != 0)
            return WOLFSSL_TICKET_RET_FATAL;
        *out_len = len;
        return WOLFSSL_TICKET_RET_OK;
    }

    if (memcmp(key_name, sh->key_name, WOLFSSL_TICKET_NAME_SZ) != 0 || in_len < TICKET_SUFFIX)
        return WOLFSSL_TICKET_RET_REJECT;
    if (wc_AesGcmDecrypt(&ctx->aes, ticket, ticket, (word32)in_len, iv, TICKET_NONCE, mac, TICKET_TAG,
                         key_name, WOLFSSL_TICKET_NAME_SZ) != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    const unsigned char *suffix = ticket + in_len - TICKET_SUFFIX;
    uint64_t id;
    memcpy(&id, suffix, sizeof(id));
    if (suffix[8] != (unsigned char)ctx->listener)
        return WOLFSSL_TICKET_RET_REJECT;
    sfm_cert_info *ci = NULL;
    if (suffix[9]) {
        ci = ticket_table_get(sh, id);
        if (!ci)
            return WOLFSSL_TICKET_RET_REJECT;
    } else if (sh->required && ctx->listener == SFM_LISTENER_MTLS) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    sfm_cert_info_unref(t->cert);
    t->cert = ci;
    t->ticket_id = id;
    *out_len = in_len - TICKET_SUFFIX;
    return WOLFSSL_TICKET_RET_OK;
}

/* The outcome for this leaf, chain length and problems: a recent one of this
 * context when it matches, else a new one. Returns a new reference or NULL. */
static sfm_cert_info *cert_info_get(sfm_tls_ctx *ctx, const unsigned char *der, size_t len, int chain_len,
                                    unsigned flags)
{
    unsigned char fp[32];
    if (sfm_pki_sha256(der, len, fp) != 0)
        return NULL;
    unsigned slot = ((unsigned)fp[0] << 8 | fp[1]) & (CERT_INFO_CACHE - 1);
    sfm_cert_info *ci = ctx->recent[slot];
    if (ci && ci->flags == flags && ci->chain_len == chain_len && ci->der_len == len &&
        memcmp(ci->fp, fp, sizeof(fp)) == 0)
        return sfm_cert_info_ref(ci);

    /* The names go with the leaf, so that whoever logs or records the
     * certificate later does not parse it again. */
    sfm_pki_facts f;
    if (sfm_pki_facts_of(der, len, &f) != 0)
        f.subject[0] = f.issuer[0] = '\0';
    size_t sl = strlen(f.subject) + 1, il = strlen(f.issuer) + 1;
    ci = malloc(sizeof(*ci) + len + sl + il);
    if (!ci)
        return NULL;
    atomic_init(&ci->refs, 1);
    ci->flags = flags;
    ci->reason = sfm_l1_reason_of(flags);
    ci->chain_len = chain_len;
    ci->der_len = len;
    memcpy(ci->der, der, len);
    memcpy(ci->fp, fp, sizeof(fp));
    sfm_pki_hex(fp, sizeof(fp), ci->sha256);
    char *names = (char *)ci->der + len;
    memcpy(names, f.subject, sl);
    memcpy(names + sl, f.issuer, il);
    ci->subject = names;
    ci->issuer = names + sl;
    sfm_cert_info_unref(ctx->recent[slot]);
    ctx->recent[slot] = sfm_cert_info_ref(ci);
    return ci;
}

/*
 * wolfSSL 5.5.4 does not keep a chain CA that had any error as the signer of
 * the next certificate (ProcessPeerCerts sets skipAddCA), even when the
 * verify callback forgives the error. Then the leaf finds no signer and every
 * such chain reads CERTIFICATE_UNTRUSTED, hiding the real reason: an expired
 * or revoked intermediate, or merely a missing CRL for its issuer (which
 * SPEC forgives). So when we go on past an error, we keep the CA ourselves;
 * it goes when the handshake step ends, like every chain CA.
 */
static void keep_chain_ca(sfm_tls_conn *t, WOLFSSL_X509_STORE_CTX *store)
{
    /* Dates are not checked here: an expired intermediate must stay the
     * leaf's signer for its real reason, CERTIFICATE_EXPIRED, to show. */
    const WOLFSSL_BUFFER_INFO *c = &store->certs[store->error_depth];
    (void)wolfSSL_CTX_load_verify_buffer_ex(t->ctx->wctx, c->buffer, (long)c->length, WOLFSSL_FILETYPE_ASN1,
                                            0, WOLFSSL_LOAD_FLAG_DATE_ERR_OKAY);
}

/*
 * Layer 1. wolfSSL calls this for every certificate the client sent, root-most
 * first, the leaf (depth 0) last, whether it verified or not. It records the
 * problems; it never prints. In `page` mode it accepts, so that the handshake
 * completes and the HTTP layer answers with the Certificate Error page; in
 * `alert` mode the first problem aborts the handshake, and wolfSSL picks the
 * alert from its own error (certificate_expired, unknown_ca, ...), which is
 * the alert of SPEC's table for that problem.
 */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    sfm_tls_conn *t = store->userCtx;
    if (!t)
        return 0;
    sfm_tls_shared *sh = t->ctx->sh;
    if (!store->certs || store->totalCerts <= 0) {
        /* An empty Certificate message: no client certificate. wolfSSL
         * itself aborts when --client-cert=required. */
        return 1;
    }
    unsigned flags = preverify ? 0 : sfm_l1_flag_of_error(store->error);

    int accept = !(sh->alert && flags);
    if (store->error_depth > 0) {
        if (!preverify && accept && store->error_depth < store->totalCerts)
            keep_chain_ca(t, store);
        /* wolfSSL adds every chain CA that verifies to the context's
         * certificate manager; sfm_tls_handshake() undoes that. */
        t->saw_chain_ca = 1;
    } else {
        /* XKU flags are 0 both without the extension and with only unknown
         * purposes: either way, no clientAuth. */
        unsigned xku = store->current_cert ? wolfSSL_X509_get_extended_key_usage(store->current_cert) : 0;
        int eku_ok = (xku & (XKU_SSL_CLIENT | XKU_ANYEKU)) || (xku == 0 && sh->allow_no_eku);
        if (!eku_ok)
            flags |= SFM_L1_F_INVALID;
        t->l1_flags |= flags;

        sfm_cert_info *ci = cert_info_get(t->ctx, store->certs[0].buffer, store->certs[0].length,
                                          store->totalCerts, t->l1_flags);
        if (!ci)
            return 0; /* out of memory: fail closed */
        sfm_cert_info_unref(t->cert);
        t->cert = ci;
        t->ticket_id = 0;
        t->l1_ran = 1;
        /* We keep the leaf ourselves: wolfSSL need not keep a copy of the
         * chain in the session. */
        store->discardSessionCerts = 1;
        return (sh->alert && t->l1_flags) ? 0 : 1;
    }
    t->l1_flags |= flags;
    return accept;
}

/*
 * Empties the context's certificate manager and loads the trust anchors.
 * Through the X509_STORE, from certificates parsed once at start: one parse
 * per anchor inside wolfSSL, where wolfSSL_CTX_load_verify_buffer would also
 * add each anchor as a "trusted peer" (a second parse, and a client could
 * then present a root as its own certificate).
 */
static int reload_anchors(sfm_tls_ctx *ctx, char err[SFM_TLS_ERR_LEN])
{
    sfm_tls_shared *sh = ctx->sh;
    WOLFSSL_X509_STORE *store = wolfSSL_CTX_get_cert_store(ctx->wctx);
    (void)wolfSSL_CTX_UnloadCAs(ctx->wctx);
    /* keep_chain_ca's loads also made trusted peers of those CAs (Debian's
     * OPENSSL_COMPATIBLE_DEFAULTS): they go too. */
    (void)wolfSSL_CTX_Unload_trust_peers(ctx->wctx);
    for (size_t i = 0; i < sh->n_anchors; i++) {
        if (!store || wolfSSL_X509_STORE_add_cert(store, sh->anchors[i]) != WOLFSSL_SUCCESS) {
            snprintf(err, SFM_TLS_ERR_LEN, "trust anchor %zu cannot be loaded", i + 1);
            return -EINVAL;
        }
    }
    return 0;
}

/* Takes the CRL (freed here). -EINVAL: not loadable; -ESTALE: past its
 * nextUpdate, which wolfSSL would silently treat as no CRL at all. */
static int add_crl(sfm_tls_ctx *ctx, WOLFSSL_X509_CRL *crl)
{
    const WOLFSSL_ASN1_TIME *next = wolfSSL_X509_CRL_get_nextUpdate(crl);
    int rc = -ESTALE;
    if (!next || wolfSSL_X509_cmp_current_time(next) > 0)
        rc = wolfSSL_X509_STORE_add_crl(wolfSSL_CTX_get_cert_store(ctx->wctx), crl) == WOLFSSL_SUCCESS
                 ? 0
                 : -EINVAL;
    wolfSSL_X509_CRL_free(crl);
    return rc;
}

/*
 * CRLs go in unverified; wolfSSL checks a CRL's signature the first time a
 * certificate of its issuer is checked, against that issuer: an anchor, or
 * the intermediate the client sent. So a CRL signed by an intermediate needs
 * nothing else loaded. A CRL whose signature fails is then treated as no CRL
 * (wolfSSL 5.5.4 reports CRL_MISSING), as is one past its nextUpdate: that one
 * is refused here, at start, rather than ignored in silence.
 */
static int load_crls(sfm_tls_ctx *ctx, char err[SFM_TLS_ERR_LEN])
{
    sfm_tls_shared *sh = ctx->sh;
    for (size_t i = 0; i < sh->n_crls; i++) {
        const sfm_der *c = &sh->crls[i];
        int n = 0, rc = 0;
        if (memmem(c->der, c->len, "-----BEGIN", 10)) {
            WOLFSSL_BIO *bio = wolfSSL_BIO_new_mem_buf(c->der, (int)c->len);
            WOLFSSL_X509_CRL *crl;
            while (bio && rc == 0 && (crl = wolfSSL_PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
                rc = add_crl(ctx, crl);
                n++;
            }
            wolfSSL_BIO_free(bio);
        } else {
            const unsigned char *p = c->der;
            WOLFSSL_X509_CRL *crl = wolfSSL_d2i_X509_CRL(NULL, p, (int)c->len);
            if (crl) {
                rc = add_crl(ctx, crl);
                n++;
            }
        }
        if (rc == -ESTALE) {
            snprintf(err, SFM_TLS_ERR_LEN, "--crl %s: its nextUpdate has passed (a stale CRL checks nothing)",
                     sh->crl_names[i]);
            return rc;
        }
        if (rc < 0 || n == 0) {
            snprintf(err, SFM_TLS_ERR_LEN, "--crl %s: not a valid X.509 CRL", sh->crl_names[i]);
            return -EINVAL;
        }
    }
    return 0;
}

int sfm_tls_ctx_new(sfm_tls_ctx **out, sfm_tls_shared *sh, enum sfm_listener l, char err[SFM_TLS_ERR_LEN])
{
    int rc = -EIO;
    sfm_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, SFM_TLS_ERR_LEN, "out of memory");
        return -ENOMEM;
    }
    ctx->refs = 1;
    ctx->sh = sfm_tls_shared_ref(sh);
    ctx->listener = l;
    ctx->wctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!ctx->wctx) {
        snprintf(err, SFM_TLS_ERR_LEN, "wolfSSL_CTX_new failed");
        goto fail;
    }
    if (wolfSSL_CTX_SetMinVersion(ctx->wctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        snprintf(err, SFM_TLS_ERR_LEN, "cannot restrict TLS to 1.2 and 1.3");
        goto fail;
    }
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx->wctx, (const unsigned char *)sh->chain,
                                                 (long)sh->chain_len) != WOLFSSL_SUCCESS) {
        snprintf(err, SFM_TLS_ERR_LEN, "the server certificate chain is not valid PEM");
        rc = -EINVAL;
        goto fail;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx->wctx, (const unsigned char *)sh->key, (long)sh->key_len,
                                          WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_check_private_key(ctx->wctx) != WOLFSSL_SUCCESS) {
        snprintf(err, SFM_TLS_ERR_LEN, "the server key is not valid PEM or does not match the certificate");
        rc = -EINVAL;
        goto fail;
    }
    /* The TLS 1.2 suites follow the key: ECDHE-ECDSA for EC, ECDHE-RSA for RSA. */
    WOLFSSL_EVP_PKEY *pkey = wolfSSL_CTX_get0_privatekey(ctx->wctx);
    int key_is_ec = pkey && wolfSSL_EVP_PKEY_base_id(pkey) == EVP_PKEY_EC;
    const char *suites = key_is_ec ? TLS13_SUITES ":" TLS12_EC_SUITES : TLS13_SUITES ":" TLS12_RSA_SUITES;
    if (wolfSSL_CTX_set_cipher_list(ctx->wctx, suites) != WOLFSSL_SUCCESS) {
        snprintf(err, SFM_TLS_ERR_LEN, "cannot set the cipher suites");
        goto fail;
    }
    /* Resumption goes through tickets only, so that it always carries the
     * layer-1 outcome; session IDs are never looked up. */
    wolfSSL_CTX_set_session_cache_mode(ctx->wctx, WOLFSSL_SESS_CACHE_OFF);
    if (wc_InitRng(&ctx->rng) == 0)
        ctx->rng_ok = 1;
    if (wc_AesInit(&ctx->aes, NULL, INVALID_DEVID) == 0 &&
        wc_AesGcmSetKey(&ctx->aes, sh->ticket_key, sizeof(sh->ticket_key)) == 0)
        ctx->aes_ok = 1;
    if (!ctx->rng_ok || !ctx->aes_ok) {
        snprintf(err, SFM_TLS_ERR_LEN, "cannot set up session tickets");
        goto fail;
    }
    wolfSSL_CTX_set_TicketEncCb(ctx->wctx, ticket_cb);
    wolfSSL_CTX_set_TicketEncCtx(ctx->wctx, ctx);

    if (l == SFM_LISTENER_STANDARD) {
        wolfSSL_CTX_set_verify(ctx->wctx, WOLFSSL_VERIFY_NONE, NULL);
        *out = ctx;
        return 0;
    }

    /* The CertificateRequest names no CA (SPEC section 2): we never call
     * wolfSSL_CTX_set_client_CA_list. The mode is set before the anchors are
     * loaded, because it changes how they load, and every later reload must
     * load them the same way. */
    int mode = WOLFSSL_VERIFY_PEER;
    if (sh->required)
        mode |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    wolfSSL_CTX_set_verify(ctx->wctx, mode, verify_cb);
    rc = reload_anchors(ctx, err);
    if (rc < 0)
        goto fail;
    rc = load_crls(ctx, err);
    if (rc < 0)
        goto fail;
    ctx->cm_clean_size = wolfSSL_CTX_get_cert_cache_memsize(ctx->wctx);
    *out = ctx;
    return 0;

fail:
    sfm_tls_ctx_unref(ctx);
    return rc;
}

void sfm_tls_ctx_unref(sfm_tls_ctx *ctx)
{
    if (!ctx || --ctx->refs > 0)
        return;
    if (ctx->wctx)
        wolfSSL_CTX_free(ctx->wctx);
    if (ctx->rng_ok)
        wc_FreeRng(&ctx->rng);
    if (ctx->aes_ok)
        wc_AesFree(&ctx->aes);
    for (size_t i = 0; i < CERT_INFO_CACHE; i++)
        sfm_cert_info_unref(ctx->recent[i]);
    sfm_tls_shared_unref(ctx->sh);
    free(ctx);
}

/*
 * wolfSSL asks for a record in two reads, its 5-byte header and then its
 * body, and then once more to learn that nothing else came: three receive
 * calls for one request. This callback receives up to READ_AHEAD bytes at
 * once and keeps what wolfSSL did not ask for yet (only while there is
 * some: an idle connection holds no buffer), so a request costs one.
 */
#define READ_AHEAD (16 * 1024 + 512)

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    sfm_tls_conn *t = arg;
    size_t want = (size_t)sz;
    if (t->rx_off < t->rx_len) {
        size_t n = t->rx_len - t->rx_off < want ? t->rx_len - t->rx_off : want;
        memcpy(buf, t->rx + t->rx_off, n);
        t->rx_off += n;
        if (t->rx_off == t->rx_len) {
            free(t->rx);
            t->rx = NULL;
            t->rx_len = t->rx_off = 0;
        }
        return (int)n;
    }
    if (!t->readable)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    unsigned char ahead[READ_AHEAD];
    int direct = want >= sizeof(ahead);
    size_t cap = direct ? want : sizeof(ahead);
    ssize_t got = recv(t->fd, direct ? (void *)buf : (void *)ahead, cap, 0);
    if (got < 0) {
        t->readable = 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return WOLFSSL_CBIO_ERR_WANT_READ;
        if (errno == EINTR)
            return WOLFSSL_CBIO_ERR_ISR;
        if (errno == ECONNRESET)
            return WOLFSSL_CBIO_ERR_CONN_RST;
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    if (got == 0)
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    t->readable = (size_t)got == cap; /* a short read drained the socket */
    if (direct || (size_t)got <= want) {
        if (!direct)
            memcpy(buf, ahead, (size_t)got);
        return (int)got;
    }
    /* Keep the rest for wolfSSL's next read. */
    size_t rest = (size_t)got - want;
    t->rx = malloc(rest);
    if (!t->rx)
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(t->rx, ahead + want, rest);
    t->rx_len = rest;
    t->rx_off = 0;
    memcpy(buf, ahead, want);
    return sz;
}

int sfm_tls_conn_init(sfm_tls_conn *t, sfm_tls_ctx *ctx, int fd)
{
    memset(t, 0, sizeof(*t));
    WOLFSSL *ssl = wolfSSL_new(ctx->wctx);
    if (!ssl)
        return -ENOMEM;
    if (wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return -EIO;
    }
    t->fd = fd;
    t->readable = 1;
    wolfSSL_SSLSetIORecv(ssl, io_recv);
    wolfSSL_SetIOReadCtx(ssl, t);
    wolfSSL_set_app_data(ssl, t);
    wolfSSL_SetCertCbCtx(ssl, t);
    t->ssl = ssl;
    t->ctx = ctx;
    ctx->refs++;
    return 0;
}

void sfm_tls_conn_cleanup(sfm_tls_conn *t)
{
    if (t->ssl)
        wolfSSL_free(t->ssl);
    t->ssl = NULL;
    sfm_cert_info_unref(t->cert);
    t->cert = NULL;
    sfm_tls_ctx_unref(t->ctx);
    t->ctx = NULL;
    free(t->rx);
    t->rx = NULL;
    t->rx_len = t->rx_off = 0;
}

static void describe(sfm_tls_conn *t, int err)
{
    char buf[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)err, buf, sizeof(buf));
    enum sfm_l1_reason r = sfm_l1_reason_of(t->l1_flags);
    if (r != SFM_L1_OK)
        snprintf(t->error, sizeof(t->error), "client certificate rejected: %s", sfm_l1_code(r));
    else
        snprintf(t->error, sizeof(t->error), "%s (%d)", buf, err);
}

/*
 * --client-cert=required under TLS 1.2: wolfSSL 5.5.4 notices the missing
 * certificate while reading ClientKeyExchange and closes without an alert;
 * SPEC wants handshake_failure. The server has not sent ChangeCipherSpec yet,
 * so its records are still plaintext and the alert is seven plain bytes.
 */
static void send_tls12_handshake_failure(WOLFSSL *ssl)
{
    static const unsigned char alert[] = {
        0x15,       /* content type: alert */
        0x03, 0x03, /* TLS 1.2 */
        0x00, 0x02, /* length */
        0x02,       /* level: fatal */
        0x28,       /* description: handshake_failure (40) */
    };
    (void)!send(wolfSSL_get_fd(ssl), alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
}

enum sfm_io sfm_tls_handshake(sfm_tls_conn *t)
{
    WOLFSSL *ssl = t->ssl;
    wolfSSL_ERR_clear_error();
    int rc = wolfSSL_accept(ssl);
    int err = rc == WOLFSSL_SUCCESS ? 0 : wolfSSL_get_error(ssl, rc);
    if (t->saw_chain_ca) {
        /* wolfSSL keeps every chain CA that verified (WOLFSSL_CHAIN_CA). Drop
         * them before any other handshake of this worker (the only user of
         * this context) can see them: a chain is built only from what its
         * client sent. The manager's size tells whether anything was added
         * (a client that also sends the root adds nothing). wolfSSL 5.5.4
         * cannot remove single signers, and its memsave/memrestore loses
         * path length and key usage, so the anchors are loaded again. */
        t->saw_chain_ca = 0;
        if (wolfSSL_CTX_get_cert_cache_memsize(t->ctx->wctx) != t->ctx->cm_clean_size) {
            if (reload_anchors(t->ctx, t->error) < 0)
                return SFM_IO_ERROR;
        }
    }
    if (rc == WOLFSSL_SUCCESS) {
        /* A ticket that was decrypted but then not used leaves an outcome
         * that belongs to another connection; a full handshake without a
         * certificate has none. */
        if (!wolfSSL_session_reused(ssl) && !t->l1_ran && t->cert) {
            sfm_cert_info_unref(t->cert);
            t->cert = NULL;
        }
        /* The handshake secrets are no longer needed: tickets went out
         * inside wolfSSL_accept, and resumption secrets fall back to the
         * session's master secret. Debian's build keeps them otherwise
         * (WOLFSSL_OPENVPN sets saveArrays): 5.4 KiB per connection. */
        wolfSSL_FreeArrays(ssl);
        return SFM_IO_OK;
    }
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ: return SFM_IO_WANT_READ;
    case WOLFSSL_ERROR_WANT_WRITE: return SFM_IO_WANT_WRITE;
    default:
        if (err == NO_PEER_CERT) {
            t->refused_no_cert = 1;
            if (wolfSSL_version(ssl) == TLS1_2_VERSION)
                send_tls12_handshake_failure(ssl);
        } else if (t->ctx->sh->alert && t->l1_flags) {
            t->refused_l1 = sfm_l1_reason_of(t->l1_flags);
        }
        describe(t, err);
        return SFM_IO_ERROR;
    }
}

enum sfm_io sfm_tls_read(sfm_tls_conn *t, void *buf, size_t len, size_t *n)
{
    wolfSSL_ERR_clear_error();
    int rc = wolfSSL_read(t->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
    if (rc > 0) {
        *n = (size_t)rc;
        return SFM_IO_OK;
    }
    int err = wolfSSL_get_error(t->ssl, rc);
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ: return SFM_IO_WANT_READ;
    case WOLFSSL_ERROR_WANT_WRITE: return SFM_IO_WANT_WRITE;
    case WOLFSSL_ERROR_ZERO_RETURN: return SFM_IO_CLOSED;
    case SOCKET_PEER_CLOSED_E:
        snprintf(t->error, sizeof(t->error), "peer closed without close_notify");
        return SFM_IO_CLOSED;
    default: describe(t, err); return SFM_IO_ERROR;
    }
}

enum sfm_io sfm_tls_write(sfm_tls_conn *t, const void *buf, size_t len)
{
    wolfSSL_ERR_clear_error();
    int rc = wolfSSL_write(t->ssl, buf, (int)len);
    if (rc == (int)len)
        return SFM_IO_OK;
    int err = wolfSSL_get_error(t->ssl, rc);
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ: return SFM_IO_WANT_READ;
    case WOLFSSL_ERROR_WANT_WRITE: return SFM_IO_WANT_WRITE;
    default: describe(t, err); return SFM_IO_ERROR;
    }
}

void sfm_tls_readable(sfm_tls_conn *t)
{
    t->readable = 1;
}

int sfm_tls_may_read(const sfm_tls_conn *t)
{
    return t->rx_off < t->rx_len || t->readable || wolfSSL_pending(t->ssl) > 0 || wolfSSL_has_pending(t->ssl);
}

void sfm_tls_close_notify(sfm_tls_conn *t)
{
    wolfSSL_ERR_clear_error();
    (void)wolfSSL_shutdown(t->ssl);
}

const char *sfm_tls_version(const sfm_tls_conn *t)
{
    return wolfSSL_get_version(t->ssl);
}

const char *sfm_tls_cipher(const sfm_tls_conn *t)
{
    /* The IANA name ("TLS_AES_256_GCM_SHA384"), as Java, .NET and
     * Salesforce's TLS 1.3 list spell it. */
    int suite = wolfSSL_get_current_cipher_suite(t->ssl);
    const char *name =
        wolfSSL_get_cipher_name_iana_from_suite((unsigned char)(suite >> 8), (unsigned char)suite);
    return name ? name : "";
}

int sfm_tls_resumed(const sfm_tls_conn *t)
{
    return wolfSSL_session_reused(t->ssl);
}

void sfm_tls_thread_cleanup(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}
