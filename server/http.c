#include "http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* GET /services/data/: the versions, for anyone (SPEC section 5). */
static void versions(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (!is_get(req)) {
        method_not_allowed(req, resp);
        return;
    }
    sfm_api_versions(app, req, resp);
}

/* What each path is (SPEC section 5). A handler runs the policy for its
 * users itself (api/auth.c); every other path outside /__admin/ is an API
 * path this org does not serve: 404 through the policy (row 2). */
struct route {
    const char *path;
    int prefix; /* 1: `path` followed by at least one character */
    handler_fn fn;
};

static const struct route routes[] = {
    {"/services/data", 0, versions},
    {"/services/data/", 0, versions},
    {"/services/data/", 1, sfm_api_rest},
    {"/services/oauth2/token", 0, sfm_api_oauth_token},
    {"/services/oauth2/revoke", 0, sfm_api_oauth_revoke},
    {"/services/oauth2/userinfo", 0, sfm_api_oauth_userinfo},
    {"/services/oauth2/authorize", 0, sfm_api_oauth_authorize},
    {"/services/Soap/u/", 1, sfm_api_soap},
    {"/id/", 1, sfm_api_identity},
    {"/", 0, sfm_api_ui_login},
    {"/secur/frontdoor.jsp", 0, sfm_api_ui_frontdoor},
    {"/home/home.jsp", 0, sfm_api_ui_home},
    {"/cacerts.jsp", 0, sfm_api_cacerts},
};

static const struct route *find_route(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->prefix ? strncmp(path, r->path, n) == 0 && path[n] : strcmp(path, r->path) == 0)
            return r;
    }
    return NULL;
}

void sfm_http_handshake_refused(const sfm_app *app, enum sfm_listener l, const char *remote_addr,
                                const sfm_cert_info *ci, enum sfm_l1_reason l1, int no_cert)
{
    sfm_decision d = {.allowed = 0, .reason = SFM_REASON_LAYER1, .l1 = l1, .row = 1};
    if (no_cert)
        d = (sfm_decision){.allowed = 0, .reason = SFM_REASON_NO_CLIENT_CERTIFICATE, .row = 8};
    else if (l1 == SFM_L1_OK)
        return; /* not a refusal of the client */
    sfm_auth_entry a = {
        .listener = l,
        .remote_addr = remote_addr,
        .cert = ci,
        .reason = sfm_decision_code(&d),
        .status = sfm_decision_status(&d, SFM_LOGIN_OK),
    };
    sfm_auth_record(app, &a);
}

void sfm_http_handle(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    /* Every field but the header slots past n_headers (16 KiB nobody reads). */
    resp->status = 0;
    resp->content_type = NULL;
    resp->body = NULL;
    resp->body_len = 0;
    resp->n_headers = 0;
    resp->denied = NULL;
    resp->recorded = 0;
    if (strncmp(req->path, "/__admin/", 9) == 0) {
        /* Setup emulation: outside the policy and the login history. */
        sfm_api_admin(app, req, resp);
        return;
    }

    /* What the connection alone decides: a certificate that failed layer 1
     * (row 1), or a path nobody serves (row 2). */
    const struct route *route = find_route(req->path);
    sfm_policy_input in = sfm_auth_policy_input(req, route ? SFM_KIND_PUBLIC : SFM_KIND_API);
    in.version_known = route != NULL;
    sfm_decision d = sfm_policy_decide(&in);
    if (!d.allowed) {
        sfm_auth_record_decision(app, req, NULL, &d, SFM_LOGIN_OK, resp);
        if (d.reason == SFM_REASON_LAYER1) {
            sfm_api_certificate_error(resp, sfm_l1_code(d.l1), sfm_l1_sentence(d.l1));
        } else {
            sfm_api_not_found(resp);
            sfm_response_header(resp, "X-Sfmtls-Reason", "NOT_FOUND");
            resp->denied = "NOT_FOUND";
        }
        return;
    }
    if (req->body_too_large)
        sfm_api_rest_error(resp, 413, "REQUEST_TOO_LARGE", "The request body is larger than 2 MiB.");
    else
        route->fn(app, req, resp);
    /* A handler that met no user (a malformed request, a public page) leaves
     * the entry to us: every request is one entry. */
    if (!resp->recorded)
        sfm_auth_record_decision(app, req, NULL, &d, SFM_LOGIN_OK, resp);
}
