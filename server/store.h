/*
 * store: the SQLite database of runtime changes (SPEC section 7): uploaded
 * certificates (and preloads deleted at runtime), user changes and the login
 * history. The only module that calls SQLite.
 *
 * The database is in WAL mode with synchronous=FULL: a call that changes
 * something returns only once the change is on disk, so a change that was
 * acknowledged survives a kill -9. Every function is thread-safe (one
 * connection behind a mutex).
 *
 * The schema carries a version (PRAGMA user_version). A database written by
 * a newer version is refused with a message that says so, and is not
 * touched.
 */
#ifndef SFM_STORE_H
#define SFM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define SFM_NODISCARD     __attribute__((warn_unused_result))
#define SFM_STORE_ERR_LEN 512
/** The schema version this build writes. */
#define SFM_STORE_SCHEMA 1

typedef struct sfm_store sfm_store;

/** Opens (creating when needed) the database at `path`; NULL: in memory (--ephemeral). */
SFM_NODISCARD int sfm_store_open(sfm_store **out, const char *path, char err[SFM_STORE_ERR_LEN]);
/** NULL-safe. */
void sfm_store_close(sfm_store *st);
/** Copies the message of the last failed call on `st` (SQLite's words) into `err` ("" when none). */
void sfm_store_last_error(sfm_store *st, char err[SFM_STORE_ERR_LEN]);

/** Deletes every runtime change and the whole history (POST /__admin/reset, --reset). */
SFM_NODISCARD int sfm_store_reset(sfm_store *st);

/* Certificates, keyed by the lowercase hex fingerprint of the leaf. */

/** Records an upload (label and PEM as uploaded). Durable when it returns 0. */
SFM_NODISCARD int sfm_store_cert_put(sfm_store *st, const char *fp_hex, const char *label, const char *pem,
                                     size_t pem_len, int64_t created_ms);
/**
 * Records a deletion: the upload's row, if any, goes; with `tombstone` (the
 * fixture preloads this certificate) a tombstone row is written too, so that
 * the preload stays deleted across restarts. One transaction, durable when
 * it returns 0.
 */
SFM_NODISCARD int sfm_store_cert_delete(sfm_store *st, const char *fp_hex, int tombstone);

typedef struct sfm_store_cert {
    const char *fp_hex;
    const char *label; /* NULL for a tombstone */
    const char *pem;   /* NULL for a tombstone */
    size_t pem_len;
    int64_t created_ms;
} sfm_store_cert;

/** Calls `fn` for every certificate row, oldest first; stops when `fn` returns non-zero (that value is
 * returned). */
SFM_NODISCARD int sfm_store_certs_each(sfm_store *st, int (*fn)(void *arg, const sfm_store_cert *c),
                                       void *arg);

/* User changes, keyed by the lowercase username. */

typedef struct sfm_store_user {
    const char *username;
    const char *profile;         /* NULL: unchanged */
    const char *const *permsets; /* NULL (n_permsets 0): unchanged */
    size_t n_permsets;
    int has_permsets; /* 1: permsets replaces the fixture's list (even when empty) */
    int active;       /* -1 unchanged, 0 or 1 */
} sfm_store_user;

/** Stores the user's whole runtime change (replacing the previous one). Durable when it returns 0. */
SFM_NODISCARD int sfm_store_user_put(sfm_store *st, const sfm_store_user *u);
/** Forgets a user's change (it named something the fixture no longer has). */
SFM_NODISCARD int sfm_store_user_delete(sfm_store *st, const char *username);
SFM_NODISCARD int sfm_store_users_each(sfm_store *st, int (*fn)(void *arg, const sfm_store_user *u),
                                       void *arg);

/* Login history (used by history.c). */

/**
 * Appends `n` entries in one transaction, then deletes the oldest rows past
 * `max`; *deleted (may be NULL) gets how many were deleted.
 */
SFM_NODISCARD int sfm_store_history_append(sfm_store *st, const sfm_history_entry *e, size_t n, long max,
                                           uint64_t *deleted);
/** Matching entries, newest first, as a JSON array text (malloc'd). */
SFM_NODISCARD int sfm_store_history_query_json(sfm_store *st, const sfm_history_filter *f, char **out);
SFM_NODISCARD int sfm_store_history_clear(sfm_store *st);

#endif
