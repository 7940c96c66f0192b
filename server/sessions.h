/*
 * sessions: the tokens the org hands out (SPEC section 5): access tokens
 * (OAuth access_token, SOAP sessionId, the UI's sid), refresh tokens and
 * authorization codes. A token is "<orgId15>!<86 characters>" from wolfCrypt's
 * RNG (512 bits), opaque and unguessable; the table maps it to the user and
 * the app it was issued for.
 *
 * An access token expires after the timeout of inactivity, reset by each use
 * [SF]; a refresh token lasts until it is revoked; a code is good once, for
 * 15 minutes. At most 131,072 tokens are kept: past that, the least
 * recently used eighth of the new one's shard ends first. Thread-safe: the
 * table is split into shards, each behind its own mutex, so workers rarely
 * meet. In memory only: a restart ends every
 * session, as a real org's sessions end with their server.
 */
#ifndef SFM_SESSIONS_H
#define SFM_SESSIONS_H

#include <stdint.h>

#include "sfid.h"

#define SFM_NODISCARD __attribute__((warn_unused_result))
/** Room for a token and its terminator. */
#define SFM_TOKEN_MAX 112

enum sfm_token_kind { SFM_TOKEN_ACCESS, SFM_TOKEN_REFRESH, SFM_TOKEN_CODE };

/** What a token stands for. */
typedef struct sfm_session {
    char user_id[SFM_SFID_LEN + 1];
    char username[256];     /* looked up in the snapshot at each use (the user's id must still match) */
    char client_id[128];    /* the connected app's consumer key; "" for SOAP and UI logins */
    char redirect_uri[256]; /* codes: the redirect_uri of the authorize request */
    int64_t issued_ms;      /* epoch milliseconds */
} sfm_session;

typedef struct sfm_sessions sfm_sessions;

/** An empty table for org `org_id` (15 or 18 characters); access tokens expire after `timeout_s`. */
SFM_NODISCARD int sfm_sessions_new(sfm_sessions **out, const char *org_id, int timeout_s);
void sfm_sessions_free(sfm_sessions *s);

/**
 * Issues a token of `kind` for `info`. An access token issued from a refresh
 * token names it in `parent` (else NULL), so revoking the refresh token ends
 * it too. 0, -ENOMEM, or -EIO when the RNG fails.
 */
SFM_NODISCARD int sfm_sessions_issue(sfm_sessions *s, enum sfm_token_kind kind, const sfm_session *info,
                                     const char *parent, int64_t now_ms, char token[SFM_TOKEN_MAX]);

/**
 * Looks a token of `kind` up at `now_ms`. An access token that is known and
 * active has its inactivity timer reset; a code is consumed. 0 and *out, or
 * -ENOENT (unknown, of another kind, expired, revoked or used).
 */
SFM_NODISCARD int sfm_sessions_use(sfm_sessions *s, enum sfm_token_kind kind, const char *token,
                                   int64_t now_ms, sfm_session *out);

/** Ends a token of any kind (a refresh token with its access tokens). 0, or -ENOENT when unknown. */
int sfm_sessions_revoke(sfm_sessions *s, const char *token);

/** Ends every token of one user (the user was deactivated or removed). */
void sfm_sessions_revoke_user(sfm_sessions *s, const char *user_id);

/** The number of live tokens (expired ones may still be counted until swept). */
size_t sfm_sessions_count(sfm_sessions *s);

/** Ends every token (POST /__admin/reset). */
void sfm_sessions_clear(sfm_sessions *s);

#endif
