#include "http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "policy.h"

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
    /* The method is quoted back: only its token characters (RFC 9110), so
     * that the message stays valid JSON text. */
    char method[33], msg[128];
    size_t n = 0;
    for (const char *m = req->method; *m && n < sizeof(method) - 1; m++)
        method[n++] = (*m > 0x20 && *m < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", *m)) ? *m : '?';
    method[n] = '\0';
    snprintf(msg, sizeof(msg), "HTTP Method '%s' not allowed. Allowed are GET,HEAD", method);
    sfm_api_rest_error(resp, 405, "METHOD_NOT_ALLOWED", msg);
    sfm_response_header(resp, "Allow", "GET, HEAD");
}

typedef void (*handler_fn)(const sfm_app *, const sfm_request *, sfm_response *);

/* The paths answered without a user (SPEC section 5). Every other path
 * outside /__admin/ is an API path this version does not serve: 404. */
struct route {
    const char *path;
    handler_fn fn;
};

static const struct route public_routes[] = {
    {"/services/data", sfm_api_versions},
    {"/services/data/", sfm_api_versions},
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One login-history entry for a decision of the policy; `endpoint` NULL for a handshake. */
static void record(const sfm_app *app, enum sfm_listener l, const char *remote_addr, const char *method,
                   const char *path, const sfm_cert_info *ci, const sfm_decision *d)
{
    sfm_history_entry e = {.time_ms = now_ms(), .allowed = d->allowed, .has_cert = ci != NULL};
    snprintf(e.listener, sizeof(e.listener), "%s", sfm_listener_name(l));
    snprintf(e.remote_addr, sizeof(e.remote_addr), "%s", remote_addr);
    if (method)
        snprintf(e.endpoint, sizeof(e.endpoint), "%s %s", method, path);
    snprintf(e.reason, sizeof(e.reason), "%s", sfm_decision_code(d));
    snprintf(e.status, sizeof(e.status), "%s", sfm_decision_status(d, SFM_LOGIN_OK));
    if (ci) {
        snprintf(e.cert_subject, sizeof(e.cert_subject), "%s", ci->subject);
        snprintf(e.cert_issuer, sizeof(e.cert_issuer), "%s", ci->issuer);
        memcpy(e.cert_fp, ci->sha256, sizeof(e.cert_fp));
    }
    sfm_history_add(app->history, &e);
}

void sfm_http_handshake_refused(const sfm_app *app, enum sfm_listener l, const char *remote_addr,
                                const sfm_cert_info *ci, enum sfm_l1_reason l1, int no_cert)
{
    sfm_decision d = {.allowed = 0, .reason = SFM_REASON_LAYER1, .l1 = l1, .row = 1};
    if (no_cert)
        d = (sfm_decision){.allowed = 0, .reason = SFM_REASON_NO_CLIENT_CERTIFICATE, .row = 8};
    else if (l1 == SFM_L1_OK)
        return; /* not a refusal of the client */
    record(app, l, remote_addr, NULL, NULL, ci, &d);
}

/* The policy input every request starts from: its connection. */
static sfm_policy_input policy_input(const sfm_request *req, enum sfm_request_kind kind)
{
    const sfm_cert_info *ci = req->peer->cert;
    return (sfm_policy_input){
        .listener = req->peer->listener,
        .has_cert = ci != NULL,
        .l1 = ci ? ci->reason : SFM_L1_OK,
        .cert_uploaded = ci && sfm_certs_find_fp(req->snap->certs, ci->fp) != NULL,
        .org_mutual_auth = req->snap->org->mutual_authentication,
        .kind = kind,
        .version_known = 1,
        .session_valid = 1,
        .login = SFM_LOGIN_OK,
    };
}

void sfm_http_handle(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (strncmp(req->path, "/__admin/", 9) == 0) {
        /* Setup emulation: outside the policy and the login history. */
        sfm_api_admin(app, req, resp);
        return;
    }

    const struct route *route = NULL;
    for (size_t i = 0; i < sizeof(public_routes) / sizeof(public_routes[0]); i++) {
        if (strcmp(req->path, public_routes[i].path) == 0) {
            route = &public_routes[i];
            break;
        }
    }
    sfm_policy_input in = policy_input(req, route ? SFM_KIND_PUBLIC : SFM_KIND_API);
    in.version_known = route != NULL;
    sfm_decision d = sfm_policy_decide(&in);
    record(app, req->peer->listener, req->peer->remote_addr, req->method, req->path, req->peer->cert, &d);
    switch (d.reason) {
    case SFM_REASON_ALLOWED: break;
    case SFM_REASON_LAYER1: sfm_api_certificate_error(resp, sfm_l1_code(d.l1), sfm_l1_sentence(d.l1)); return;
    case SFM_REASON_NOT_FOUND:
        sfm_api_not_found(resp);
        sfm_response_header(resp, "X-Sfmtls-Reason", "NOT_FOUND");
        resp->denied = "NOT_FOUND";
        return;
    case SFM_REASON_INVALID_SESSION:
    case SFM_REASON_INVALID_LOGIN:
    case SFM_REASON_SECURITY_TOKEN_REQUIRED:
    case SFM_REASON_API_DISABLED:
    case SFM_REASON_STANDARD_PORT:
    case SFM_REASON_NO_CLIENT_CERTIFICATE:
    case SFM_REASON_CERTIFICATE_NOT_UPLOADED:
    case SFM_REASON_API_ONLY_USER:
    case SFM_REASON_INSUFFICIENT_ACCESS:
        /* Not reachable without a user; fail closed all the same. */
        sfm_api_rest_error(resp, 403, "INSUFFICIENT_ACCESS", "Access denied.");
        resp->denied = sfm_decision_code(&d);
        return;
    }
    if (req->body_too_large) {
        sfm_api_rest_error(resp, 413, "REQUEST_TOO_LARGE", "The request body is larger than 2 MiB.");
        return;
    }
    if (!is_get(req)) {
        method_not_allowed(req, resp);
        return;
    }
    route->fn(app, req, resp);
}
