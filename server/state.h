/*
 * state: the org as requests see it. The fixture (org.c) plus the runtime
 * changes (uploads, deletions, user patches) form an immutable snapshot.
 * A change builds a new snapshot, stores the change durably (store.c) and
 * only then swaps the snapshot in and returns, so a change that was
 * acknowledged applies to every request that starts afterwards, and a reader
 * never sees half a change (ARCHITECTURE rule 4).
 *
 * Readers: sfm_state_acquire() hands out a reference; a worker keeps one and
 * calls sfm_state_refresh() per request, which costs one atomic load unless
 * the generation moved. Writers (the admin API, SIGHUP) are serialised by a
 * mutex.
 */
#ifndef SFM_STATE_H
#define SFM_STATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "certstore.h"
#include "org.h"
#include "pki.h"
#include "store.h"

#define SFM_NODISCARD     __attribute__((warn_unused_result))
#define SFM_STATE_ERR_LEN 1024

/** A user as the snapshot sees it: the fixture's user with the runtime changes applied. */
typedef struct sfm_user_view {
    size_t profile;   /* index into org->profiles */
    size_t *permsets; /* indexes into org->permsets */
    size_t n_permsets;
    int active;
    unsigned perms; /* effective SFM_PERM_* bits: the profile's and the permission sets' */
} sfm_user_view;

typedef struct sfm_snapshot {
    atomic_int refs;
    uint64_t generation;
    sfm_org *org;         /* a reference */
    sfm_user_view *users; /* parallel to org->users */
    sfm_certs *certs;     /* the Mutual Authentication Certificates in force (a reference) */
} sfm_snapshot;

sfm_snapshot *sfm_snapshot_ref(sfm_snapshot *s);
void sfm_snapshot_unref(sfm_snapshot *s);

typedef struct sfm_state sfm_state;

/**
 * Builds the state from a loaded fixture: issues the fixture's "issue"
 * certificates into <state_dir>/clients/ when they are not there yet,
 * loads the runtime changes from `store` (dropping, with a warning, those
 * that name something the fixture no longer has), and makes the first
 * snapshot. Takes a reference to `org` and ownership of `trust` (the anchors
 * uploads are checked against), even on failure. `store` is borrowed.
 */
SFM_NODISCARD int sfm_state_new(sfm_state **out, sfm_org *org, sfm_pki_trust *trust, sfm_store *store,
                                const char *state_dir, char err[SFM_STATE_ERR_LEN]);
void sfm_state_free(sfm_state *st);

/** The current snapshot, with a reference for the caller. */
sfm_snapshot *sfm_state_acquire(sfm_state *st);
/**
 * Replaces *held by the current snapshot when a newer one exists (dropping
 * the old reference) and returns *held. One atomic load when nothing changed.
 */
const sfm_snapshot *sfm_state_refresh(sfm_state *st, sfm_snapshot **held);

/**
 * The facts of the trust store's anchors (the roots /cacerts.jsp lists), a
 * copy taken under the state's lock: *n entries in a malloc'd array (NULL and
 * 0 when there are none). 0 or -ENOMEM.
 */
SFM_NODISCARD int sfm_state_roots(sfm_state *st, sfm_pki_facts **out, size_t *n);

/** The answer to an admin change: 0 and an entity, or an HTTP status with a Salesforce-shaped error. */
typedef struct sfm_state_error {
    int status;       /* 400, 404, 409, 413, 500 */
    const char *code; /* static: "INVALID_LABEL", "NOT_FOUND", ... */
    char message[512];
} sfm_state_error;

/**
 * Uploads a Mutual Authentication Certificate, checked in SPEC section 6's
 * order. On success *entry (a reference for the caller) is the new entry.
 * Returns 0 or -1 with *e filled.
 */
SFM_NODISCARD int sfm_state_upload(sfm_state *st, const char *label, size_t label_len, const char *pem,
                                   size_t pem_len, sfm_cert_entry **entry, sfm_state_error *e);
/** Deletes a certificate by id (an upload, or a preload: it stays deleted). 0 or -1 with *e. */
SFM_NODISCARD int sfm_state_delete_cert(sfm_state *st, const char *id, sfm_state_error *e);

/** A user patch; NULL / -1 fields are left as they are. */
typedef struct sfm_user_patch {
    const char *profile;
    const char *const *permsets;
    size_t n_permsets;
    int has_permsets;
    int active; /* -1, 0 or 1 */
} sfm_user_patch;

/** Patches a user (SPEC section 6). 0 or -1 with *e (404 unknown user, 400 unknown profile or set). */
SFM_NODISCARD int sfm_state_patch_user(sfm_state *st, const char *username, const sfm_user_patch *p,
                                       sfm_state_error *e);

/** Back to the fixture: forgets every runtime change (the store's too). 0 or -1 with *e. */
SFM_NODISCARD int sfm_state_reset(sfm_state *st, sfm_state_error *e);

/**
 * SIGHUP: puts a new fixture and new anchors in force, keeping the runtime
 * changes that still apply. All or nothing: on failure nothing changes,
 * `err` says why, and `org` / `trust` stay the caller's. On success the state
 * takes a reference to `org` and ownership of `trust`.
 */
SFM_NODISCARD int sfm_state_reload(sfm_state *st, sfm_org *org, sfm_pki_trust *trust,
                                   char err[SFM_STATE_ERR_LEN]);

#endif
