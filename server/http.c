#include "http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"

void sfm_response_set(sfm_response *resp, int status, const char *content_type, const char *body, size_t len)
{
    free(resp->body);
    resp->body = malloc(len ? len : 1);
    if (!resp->body) {
        resp->status = 500;
        resp->content_type = "text/plain";
        resp->body_len = 0;
        return;
    }
    memcpy(resp->body, body, len);
    resp->body_len = len;
    resp->status = status;
    resp->content_type = content_type;
}

void sfm_response_json(sfm_response *resp, int status, void *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(resp->body);
    resp->status = status;
    resp->content_type = "application/json;charset=UTF-8";
    resp->body = s;
    resp->body_len = strlen(s);
}

void sfm_response_header(sfm_response *resp, const char *name, const char *value)
{
    if (resp->n_headers == SFM_RESPONSE_MAX_HEADERS)
        return;
    snprintf(resp->headers[resp->n_headers].name, sizeof(resp->headers[0].name), "%s", name);
    snprintf(resp->headers[resp->n_headers].value, sizeof(resp->headers[0].value), "%s", value);
    resp->n_headers++;
}

void sfm_response_cleanup(sfm_response *resp)
{
    free(resp->body);
    resp->body = NULL;
}

const char *sfm_request_header(const sfm_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

static int is_get(const sfm_request *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static void method_not_allowed(const sfm_request *req, sfm_response *resp)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "HTTP Method '%.32s' not allowed. Allowed are GET,HEAD", req->method);
    sfm_api_rest_error(resp, 405, "METHOD_NOT_ALLOWED", msg);
    sfm_response_header(resp, "Allow", "GET, HEAD");
}

typedef void (*handler_fn)(const sfm_app *, const sfm_request *, sfm_response *);

struct route {
    const char *path;
    handler_fn fn;
    int behind_certificate; /* answered only after layer 1 passed (SPEC section 2) */
};

static const struct route routes[] = {
    {"/__admin/health", sfm_api_health, 0},
    {"/__admin/tls-info", sfm_api_tls_info, 0},
    {"/services/data", sfm_api_versions, 1},
    {"/services/data/", sfm_api_versions, 1},
};

void sfm_http_handle(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    const struct route *route = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(req->path, routes[i].path) == 0) {
            route = &routes[i];
            break;
        }
    }

    /* A client certificate that failed layer 1 gets the Certificate Error
     * page on every path but the two that let a tester see why. */
    const sfm_cert_info *ci = req->peer->cert;
    if ((!route || route->behind_certificate) && req->peer->listener == SFM_LISTENER_MTLS && ci &&
        ci->reason != SFM_L1_OK) {
        sfm_api_certificate_error(resp, sfm_l1_code(ci->reason), sfm_l1_sentence(ci->reason));
        return;
    }
    if (req->body_too_large) {
        sfm_api_rest_error(resp, 413, "REQUEST_TOO_LARGE", "The request body is larger than 2 MiB.");
        return;
    }
    if (!route) {
        sfm_api_not_found(resp);
        return;
    }
    if (!is_get(req)) {
        method_not_allowed(req, resp);
        return;
    }
    route->fn(app, req, resp);
}
