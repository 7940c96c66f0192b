/*
 * What the fuzz targets that drive sfm_http_handle share: the org of a
 * fixture on an in-memory store, with its state, login history, sessions,
 * records and API counter wired into an sfm_app, as main.c wires them.
 */
#ifndef SFM_FUZZ_SERVER_H
#define SFM_FUZZ_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "http.h"

typedef struct sfm_fuzz_server {
    char dir[SFM_FUZZ_PATH_MAX]; /* a fresh dev CA, also the state directory */
    sfm_org *org;
    sfm_store *store;
    sfm_history *history;
    sfm_state *state;
    sfm_sessions *sessions;
    sfm_records *records;
    sfm_api_usage usage;
    sfm_app app;
    sfm_snapshot *held;        /* the worker's reference, refreshed per request */
    uint64_t clean_generation; /* the snapshot generation right after the last reset */
} sfm_fuzz_server;

/**
 * Builds `s` on `fixture`: the dev CA root (and `extra_pem`, when not NULL)
 * as trust anchors, `admin_token`, 403 for mutual-authentication failures,
 * sessions of `session_secs`, at most `history_kept` history entries. Dies on
 * failure. Free with sfm_fuzz_server_free.
 */
void sfm_fuzz_server_new(sfm_fuzz_server *s, const char *fixture, const char *extra_pem, size_t extra_len,
                         const char *admin_token, int session_secs, long history_kept);

/** The snapshot a request sees now (the worker's refresh). */
const sfm_snapshot *sfm_fuzz_server_snapshot(sfm_fuzz_server *s);

/**
 * Back to a clean start: the fixture (reset only when a change moved the
 * generation), an empty login history, the fixture's records, no sessions,
 * no API calls counted. Dies on failure.
 */
void sfm_fuzz_server_clean(sfm_fuzz_server *s);

void sfm_fuzz_server_free(sfm_fuzz_server *s);

/**
 * Splits a request target "/path?a=1&b&c=" in place as the bridge hands it
 * to the handlers: the path percent-decoded, the query as decoded fields
 * ('+' a space; a bare name has the value ""), pointing into `target`.
 * Returns how many query fields.
 */
size_t sfm_fuzz_server_target(char *target, sfm_field *query);

#endif
