/*
 * http: request and response values, and the route table. Handlers are
 * functions of values (ARCHITECTURE rule 2): no socket, libmicrohttpd or
 * wolfSSL object reaches them. bridge.c turns libmicrohttpd's calls into
 * these values and back.
 */
#ifndef SFM_HTTP_H
#define SFM_HTTP_H

#include <stddef.h>

#include "org.h"
#include "peer.h"

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
        char value[160];
    } headers[SFM_RESPONSE_MAX_HEADERS];
    size_t n_headers;
    const char *denied; /* static reason code when the request was refused, else NULL */
} sfm_response;

/** What the handlers may read: immutable while requests are served. */
typedef struct sfm_app {
    const sfm_org *org;
} sfm_app;

/** Answers one request; always fills `resp` (a 500 when out of memory). */
void sfm_http_handle(const sfm_app *app, const sfm_request *req, sfm_response *resp);

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
