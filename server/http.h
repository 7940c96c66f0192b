/*
 * http: request and response values, and the route table. Handlers are
 * functions of values (ARCHITECTURE rule 2): no socket, libmicrohttpd or
 * wolfSSL object reaches them. bridge.c turns libmicrohttpd's calls into
 * these values and back.
 */
#ifndef SFM_HTTP_H
#define SFM_HTTP_H

#include <stddef.h>

#include <stdatomic.h>

#include "history.h"
#include "peer.h"
#include "records.h"
#include "sessions.h"
#include "state.h"

/** Request bodies above this are refused with 413 (SPEC section 6). */
#define SFM_HTTP_MAX_BODY        (2 * 1024 * 1024)
#define SFM_HTTP_MAX_FIELDS      64
#define SFM_RESPONSE_MAX_HEADERS 8

typedef struct sfm_field {
    const char *name;
    const char *value;
} sfm_field;

/** A request. Every pointer is borrowed for the duration of the handler call. */
typedef struct sfm_request {
    const sfm_peer *peer;
    const sfm_snapshot *snap; /* the org as this request sees it */
    const char *method;
    const char *path; /* percent-decoded, without the query */
    const sfm_field *headers;
    size_t n_headers;
    const sfm_field *query;
    size_t n_query;
    const char *body;
    size_t body_len;
    int body_too_large; /* the body passed SFM_HTTP_MAX_BODY and was dropped */
} sfm_request;

typedef struct sfm_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* owned (malloc) */
    size_t body_len;
    struct {
        char name[48];
        char value[2048]; /* a Location with an OAuth state, a Set-Cookie */
    } headers[SFM_RESPONSE_MAX_HEADERS];
    size_t n_headers;
    const char *denied; /* static reason code when the request was refused, else NULL */
    int recorded;       /* the handler put its decision in the login history (api/auth.c) */
} sfm_response;

/** The daily API request counter of limits' DailyApiRequests (SPEC section 5). */
typedef struct sfm_api_usage {
    atomic_long day;  /* days since the epoch (UTC) the count is for */
    atomic_long used; /* API calls that day */
    long max;
} sfm_api_usage;

/** What the handlers share: set up before the workers start, then only read. */
typedef struct sfm_app {
    sfm_state *state;              /* the org; admin changes go through it */
    sfm_history *history;          /* the login history */
    const char *admin_token;       /* what /__admin/ callers must send as "Authorization: Bearer" */
    int mutual_auth_failed_status; /* 401 or 403 */
    sfm_sessions *sessions;        /* access and refresh tokens, authorization codes */
    sfm_records *records;          /* the sObject records, changed through the API */
    sfm_api_usage *usage;          /* the daily API counter */
    int session_timeout;           /* seconds: --session-timeout */
    /* "https://<public-host>[:port]" of the standard listener (instance_url,
     * serverUrl, identity URLs) and of the mTLS listener; no port for 443. */
    char instance_url[192];
    char mtls_url[192];
} sfm_app;

/** Answers one request; always fills `resp` (a 500 when out of memory). */
void sfm_http_handle(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/**
 * Records a handshake the server refused (SPEC section 4: every decision is
 * in the login history): a layer-1 problem in `alert` mode (`l1`), or no
 * certificate when one is required (`no_cert`). `ci` may be NULL.
 */
void sfm_http_handshake_refused(const sfm_app *app, enum sfm_listener l, const char *remote_addr,
                                const sfm_cert_info *ci, enum sfm_l1_reason l1, int no_cert);

/** Frees what a handler put in `resp`. */
void sfm_response_cleanup(sfm_response *resp);

/* Helpers for the handlers in api/. */
/** Sets status, type and a copy of `body`. */
void sfm_response_set(sfm_response *resp, int status, const char *content_type, const char *body, size_t len);
/** Adds a header (truncated to the fixed sizes; dropped past SFM_RESPONSE_MAX_HEADERS). */
void sfm_response_header(sfm_response *resp, const char *name, const char *value);
/** Sets status, JSON type and the compact text of `j` (a reference it steals; NULL: 500). */
void sfm_response_json(sfm_response *resp, int status, void *j);
/** Case-insensitive header lookup; NULL when absent. */
const char *sfm_request_header(const sfm_request *req, const char *name);

#endif
