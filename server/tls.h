/*
 * tls: wolfSSL for both listeners. The only module that holds wolfSSL
 * session objects. It builds the contexts, runs layer 1 (SPEC section 2) in
 * the verify callback, keeps the layer-1 outcome across session resumption,
 * and maps wolfSSL results to I/O intent.
 *
 * Threading: an sfm_tls_shared is built once and read by every worker; an
 * sfm_tls_ctx and its connections belong to one worker thread.
 */
#ifndef SFM_TLS_H
#define SFM_TLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "layer1.h"
#include "pki.h"

#define SFM_NODISCARD   __attribute__((warn_unused_result))
#define SFM_TLS_ERR_LEN 256

enum sfm_listener { SFM_LISTENER_MTLS, SFM_LISTENER_STANDARD };

/** "mtls" or "standard". */
const char *sfm_listener_name(enum sfm_listener l);

/**
 * What layer 1 learned of a client's certificate. Immutable once built and
 * shared between threads by reference count (a resumed session on another
 * worker holds the same one).
 */
typedef struct sfm_cert_info {
    atomic_int refs;
    enum sfm_l1_reason reason; /* SFM_L1_OK: the chain verified */
    unsigned flags;            /* every SFM_L1_F_* problem seen */
    int chain_len;             /* certificates the client sent */
    char sha256[65];           /* lowercase hex of the leaf DER */
    unsigned char fp[32];      /* the same, raw */
    const char *subject;       /* RFC 4514 ("" when the leaf does not parse) */
    const char *issuer;
    size_t der_len;
    unsigned char der[]; /* the leaf */
} sfm_cert_info;

/** Takes a reference; NULL-safe. Returns `ci`. */
sfm_cert_info *sfm_cert_info_ref(sfm_cert_info *ci);
/** Drops a reference; NULL-safe. */
void sfm_cert_info_unref(sfm_cert_info *ci);

/** What the server-wide TLS state is built from (borrowed during the call). */
typedef struct sfm_tls_settings {
    const char *cert_chain_pem; /* server leaf first, then intermediates */
    size_t cert_chain_len;
    const char *key_pem;
    size_t key_len;
    const sfm_der *anchors; /* DER trust anchors */
    size_t n_anchors;
    const sfm_der *crls;    /* CRLs, PEM or DER */
    char *const *crl_names; /* for messages: the files they came from */
    size_t n_crls;
    int client_cert_required;
    int cert_failure_alert;
    int allow_no_eku;
} sfm_tls_settings;

typedef struct sfm_tls_shared sfm_tls_shared;

/**
 * Builds the server-wide state: a copy of the settings and a ticket key (so
 * a new one, after a reload, refuses to resume sessions of the old one).
 * Reference counted: each context built on it holds a reference.
 */
SFM_NODISCARD int sfm_tls_shared_new(sfm_tls_shared **out, const sfm_tls_settings *s,
                                     char err[SFM_TLS_ERR_LEN]);
sfm_tls_shared *sfm_tls_shared_ref(sfm_tls_shared *sh);
/** Drops a reference; the last frees it. Thread-safe, NULL-safe. */
void sfm_tls_shared_unref(sfm_tls_shared *sh);

/** One listener's wolfSSL context, owned by one worker. */
typedef struct sfm_tls_ctx sfm_tls_ctx;

SFM_NODISCARD int sfm_tls_ctx_new(sfm_tls_ctx **out, sfm_tls_shared *sh, enum sfm_listener l,
                                  char err[SFM_TLS_ERR_LEN]);
/** Drops the creator's reference; each connection holds one of its own, so
 *  the context goes with its last connection. Owner thread only; NULL-safe. */
void sfm_tls_ctx_unref(sfm_tls_ctx *ctx);

/** I/O intent of a TLS step (STYLE 19). */
enum sfm_io { SFM_IO_OK, SFM_IO_WANT_READ, SFM_IO_WANT_WRITE, SFM_IO_CLOSED, SFM_IO_ERROR };

/** One TLS connection; lives inside the worker's connection. */
typedef struct sfm_tls_conn {
    /* private */
    void *ssl;
    sfm_tls_ctx *ctx;
    unsigned l1_flags;
    int saw_chain_ca;
    int l1_ran; /* the verify callback judged a chain in this handshake */
    uint64_t ticket_id;
    int fd;
    unsigned char *rx; /* bytes read ahead of what wolfSSL asked for */
    size_t rx_len, rx_off;
    int readable; /* the socket may hold bytes (sfm_tls_readable; cleared when a read drains it) */
    /* read-only for the caller */
    sfm_cert_info *cert;         /* NULL: no client certificate (owned reference) */
    char error[SFM_TLS_ERR_LEN]; /* why the last step failed */
    /* Why a failed handshake was a refusal of the client (and not a broken
     * peer): a layer-1 problem in `alert` mode, or no certificate when one
     * is required. */
    enum sfm_l1_reason refused_l1; /* SFM_L1_OK: not for a layer-1 problem */
    int refused_no_cert;
} sfm_tls_conn;

/** Starts server-side TLS on a connected, non-blocking socket. */
SFM_NODISCARD int sfm_tls_conn_init(sfm_tls_conn *t, sfm_tls_ctx *ctx, int fd);
/** Frees the session (no close_notify: see sfm_tls_close_notify). */
void sfm_tls_conn_cleanup(sfm_tls_conn *t);

/** One handshake step. SFM_IO_OK: done. SFM_IO_ERROR: t->error says why. */
enum sfm_io sfm_tls_handshake(sfm_tls_conn *t);
/** Reads plaintext; *n > 0 with SFM_IO_OK. SFM_IO_CLOSED: close_notify or EOF. */
enum sfm_io sfm_tls_read(sfm_tls_conn *t, void *buf, size_t len, size_t *n);
/** Writes all of buf or nothing; after SFM_IO_WANT_WRITE call again with the same buf. */
enum sfm_io sfm_tls_write(sfm_tls_conn *t, const void *buf, size_t len);
/**
 * The socket may hold bytes: epoll said so. A read drains it and clears
 * this; until it is set again, wolfSSL's reads are told "want read" without
 * a system call (a TLS 1.3 handshake step otherwise asks the socket up to a
 * dozen times in a row). Level-triggered epoll makes this safe.
 */
void sfm_tls_readable(sfm_tls_conn *t);
/**
 * Whether a read could make progress now: bytes read ahead, plaintext
 * decrypted inside wolfSSL, or a socket not known to be drained.
 */
int sfm_tls_may_read(const sfm_tls_conn *t);
/** Sends close_notify once, without waiting for the peer's. */
void sfm_tls_close_notify(sfm_tls_conn *t);

/** Frees what wolfCrypt caches per thread (the fixed-point ECC tables); call at thread exit. */
void sfm_tls_thread_cleanup(void);

/** The protocol after the handshake ("TLSv1.3"); a static string. */
const char *sfm_tls_version(const sfm_tls_conn *t);
/** The negotiated suite's IANA name; a static string. */
const char *sfm_tls_cipher(const sfm_tls_conn *t);
/** 1 when the session was resumed from a ticket. */
int sfm_tls_resumed(const sfm_tls_conn *t);

#endif
