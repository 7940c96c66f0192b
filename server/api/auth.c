/*
 * auth: the one place where a request meets the policy. A handler hands in
 * what it knows (a session, or a login's credentials); auth runs the pure
 * decision with the connection's listener and certificate, puts it in the
 * login history, and renders a denial in the handler's shape (SPEC section
 * 4's answer column).
 */
#include "api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t sfm_auth_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sfm_policy_input sfm_auth_policy_input(const sfm_request *req, enum sfm_request_kind kind)
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

void sfm_auth_record(const sfm_app *app, const sfm_auth_entry *a)
{
    sfm_history_entry e = {.time_ms = sfm_auth_now_ms(), .allowed = a->allowed, .has_cert = a->cert != NULL};
    snprintf(e.listener, sizeof(e.listener), "%s", sfm_listener_name(a->listener));
    snprintf(e.remote_addr, sizeof(e.remote_addr), "%s", a->remote_addr);
    if (a->username)
        snprintf(e.username, sizeof(e.username), "%s", a->username);
    if (a->method)
        snprintf(e.endpoint, sizeof(e.endpoint), "%s %s", a->method, a->path);
    snprintf(e.reason, sizeof(e.reason), "%s", a->reason);
    snprintf(e.status, sizeof(e.status), "%s", a->status);
    if (a->cert) {
        snprintf(e.cert_subject, sizeof(e.cert_subject), "%s", a->cert->subject);
        snprintf(e.cert_issuer, sizeof(e.cert_issuer), "%s", a->cert->issuer);
        memcpy(e.cert_fp, a->cert->sha256, sizeof(e.cert_fp));
    }
    sfm_history_add(app->history, &e);
}

/* The entry of `req` with its outcome, reason and status; marks `resp` recorded. */
static void record_request(const sfm_app *app, const sfm_request *req, const char *username, int allowed,
                           const char *reason, const char *status, sfm_response *resp)
{
    sfm_auth_entry a = {
        .listener = req->peer->listener,
        .remote_addr = req->peer->remote_addr,
        .method = req->method,
        .path = req->path,
        .username = username,
        .cert = req->peer->cert,
        .allowed = allowed,
        .reason = reason,
        .status = status,
    };
    sfm_auth_record(app, &a);
    resp->recorded = 1;
}

void sfm_auth_record_decision(const sfm_app *app, const sfm_request *req, const char *username,
                              const sfm_decision *d, enum sfm_login_check login, sfm_response *resp)
{
    record_request(app, req, username, d->allowed, sfm_decision_code(d), sfm_decision_status(d, login), resp);
}

void sfm_auth_refuse(const sfm_app *app, const sfm_request *req, const char *username, const char *reason,
                     const char *status, sfm_response *resp)
{
    record_request(app, req, username, 0, reason, status, resp);
    resp->denied = reason; /* the bridge logs it */
}

const char *sfm_auth_bearer(const sfm_request *req, char buf[SFM_TOKEN_MAX])
{
    const char *h = sfm_request_header(req, "Authorization");
    if (!h)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        h += 7;
    else if (strncasecmp(h, "OAuth ", 6) == 0)
        h += 6;
    else
        return NULL;
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, " \t");
    if (n >= SFM_TOKEN_MAX)
        n = 0; /* longer than any token we issue: unknown */
    memcpy(buf, h, n);
    buf[n] = '\0';
    return buf;
}

/* ---- usage: limits' DailyApiRequests ---- */

static long today(void)
{
    return (long)(time(NULL) / 86400);
}

static void count_call(const sfm_app *app)
{
    sfm_api_usage *u = app->usage;
    long day = today(), seen = atomic_load_explicit(&u->day, memory_order_relaxed);
    if (seen != day && atomic_compare_exchange_strong(&u->day, &seen, day))
        atomic_store(&u->used, 0);
    atomic_fetch_add_explicit(&u->used, 1, memory_order_relaxed);
}

void sfm_auth_usage(const sfm_app *app, long *used, long *max)
{
    *used = atomic_load_explicit(&app->usage->day, memory_order_relaxed) == today()
                ? atomic_load_explicit(&app->usage->used, memory_order_relaxed)
                : 0;
    *max = app->usage->max;
}

/* ---- shapes ---- */

void sfm_api_oauth_error(sfm_response *resp, const char *error, const char *description)
{
    sfm_response_json(resp, 400, json_pack("{s:s, s:s}", "error", error, "error_description", description));
    sfm_response_header(resp, "Cache-Control", "no-store");
}

void sfm_api_soap_fault(sfm_response *resp, const char *code, const char *message, const char *detail_type)
{
    /* The envelope of Salesforce's partner API faults [obs]. */
    char *m = sfm_api_escape(message);
    if (!m) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    char *body = NULL;
    int n;
    if (detail_type) {
        n = asprintf(&body,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                     "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                     "xmlns:sf=\"urn:fault.partner.soap.sforce.com\" "
                     "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault>"
                     "<faultcode>sf:%s</faultcode><faultstring>%s: %s</faultstring>"
                     "<detail><sf:%s xsi:type=\"sf:%s\"><sf:exceptionCode>%s</sf:exceptionCode>"
                     "<sf:exceptionMessage>%s</sf:exceptionMessage></sf:%s></detail>"
                     "</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
                     code, code, m, detail_type, detail_type, code, m, detail_type);
    } else {
        n = asprintf(&body,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                     "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                     "xmlns:sf=\"urn:fault.partner.soap.sforce.com\"><soapenv:Body><soapenv:Fault>"
                     "<faultcode>sf:%s</faultcode><faultstring>%s: %s</faultstring>"
                     "</soapenv:Fault></soapenv:Body></soapenv:Envelope>",
                     code, code, m);
    }
    free(m);
    if (n < 0) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(resp->body);
    resp->status = 500;
    resp->content_type = "text/xml; charset=utf-8";
    resp->body = body;
    resp->body_len = (size_t)n;
}

/* What Salesforce answers for each denial, in each shape (SPEC section 4). */
static void render_denial(const sfm_app *app, enum sfm_shape shape, const sfm_decision *d,
                          const char *username, sfm_response *resp)
{
    const char *code = sfm_decision_code(d);
    switch (d->reason) {
    case SFM_REASON_ALLOWED: return;
    case SFM_REASON_LAYER1: sfm_api_certificate_error(resp, code, sfm_l1_sentence(d->l1)); return;
    case SFM_REASON_NO_CLIENT_CERTIFICATE:
        sfm_api_certificate_error(resp, code, "No client certificate provided.");
        return;
    case SFM_REASON_API_ONLY_USER: sfm_api_insufficient_privileges(resp, code); return;
    case SFM_REASON_NOT_FOUND:
        if (shape == SFM_SHAPE_SOAP)
            sfm_api_soap_fault(resp, "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL",
                               "UnexpectedErrorFault");
        else
            sfm_api_not_found(resp);
        break;
    case SFM_REASON_INVALID_SESSION:
        switch (shape) {
        case SFM_SHAPE_SOAP:
            sfm_api_soap_fault(resp, "INVALID_SESSION_ID",
                               "Invalid Session ID found in SessionHeader: Illegal Session",
                               "UnexpectedErrorFault");
            break;
        case SFM_SHAPE_IDENTITY:
            sfm_response_set(resp, 403, "text/plain;charset=UTF-8", "Bad_OAuth_Token", 15);
            break;
        case SFM_SHAPE_UI:
            /* A browser without a live session goes back to the login page. */
            sfm_response_set(resp, 302, "text/html;charset=UTF-8", "", 0);
            sfm_response_header(resp, "Location", "/");
            break;
        case SFM_SHAPE_REST:
        case SFM_SHAPE_OAUTH:
            sfm_api_rest_error(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
            break;
        }
        break;
    case SFM_REASON_INVALID_LOGIN:
    case SFM_REASON_SECURITY_TOKEN_REQUIRED:
        switch (shape) {
        case SFM_SHAPE_SOAP:
            if (d->reason == SFM_REASON_SECURITY_TOKEN_REQUIRED)
                sfm_api_soap_fault(
                    resp, "LOGIN_MUST_USE_SECURITY_TOKEN",
                    "Invalid username, password, security token; or user locked out. Are you at a "
                    "new location? When accessing Salesforce--either via a desktop client or the "
                    "API--from outside of your company's trusted networks, you must add a security "
                    "token to your password to log in.",
                    "LoginFault");
            else
                sfm_api_soap_fault(resp, "INVALID_LOGIN",
                                   "Invalid username, password, security token; or user locked out.",
                                   "LoginFault");
            break;
        case SFM_SHAPE_UI: sfm_api_ui_login_error(resp, username); break;
        case SFM_SHAPE_REST:
        case SFM_SHAPE_OAUTH:
        case SFM_SHAPE_IDENTITY: sfm_api_oauth_error(resp, "invalid_grant", "authentication failure"); break;
        }
        break;
    case SFM_REASON_API_DISABLED:
        if (shape == SFM_SHAPE_SOAP)
            sfm_api_soap_fault(resp, "API_DISABLED_FOR_ORG",
                               "API is not enabled for this Organization or Partner", "UnexpectedErrorFault");
        else
            sfm_api_rest_error(resp, 403, "API_DISABLED_FOR_ORG",
                               "The REST API is not enabled for this Organization.");
        break;
    case SFM_REASON_STANDARD_PORT:
    case SFM_REASON_CERTIFICATE_NOT_UPLOADED:
        switch (shape) {
        case SFM_SHAPE_SOAP:
            sfm_api_soap_fault(resp, "MUTUAL_AUTHENTICATION_FAILED",
                               "This session could not be mutually authenticated for use with the API",
                               "UnexpectedErrorFault");
            break;
        case SFM_SHAPE_OAUTH:
            sfm_api_oauth_error(resp, "invalid_grant", "mutual authentication failed");
            break;
        case SFM_SHAPE_UI:
            sfm_api_certificate_error(
                resp, code,
                d->reason == SFM_REASON_STANDARD_PORT
                    ? "This session could not be mutually authenticated: use port 8443."
                    : "The client certificate is not one of the org's Mutual Authentication "
                      "Certificates.");
            return;
        case SFM_SHAPE_REST:
        case SFM_SHAPE_IDENTITY:
            sfm_api_rest_error(resp, app->mutual_auth_failed_status, "MUTUAL_AUTHENTICATION_FAILED",
                               "This session could not be mutually authenticated for the use with REST API");
            break;
        }
        break;
    case SFM_REASON_INSUFFICIENT_ACCESS:
        if (shape == SFM_SHAPE_SOAP)
            sfm_api_soap_fault(resp, "INSUFFICIENT_ACCESS", "View Setup and Configuration is required",
                               "UnexpectedErrorFault");
        else
            sfm_api_rest_error(
                resp, 403, "INSUFFICIENT_ACCESS",
                "You don't have permission to view this resource: View Setup and Configuration is "
                "required.");
        break;
    }
    sfm_response_header(resp, "X-Sfmtls-Reason", code);
    resp->denied = code;
}

long sfm_auth_session_user(const sfm_snapshot *snap, const sfm_session *s)
{
    long u = sfm_org_find_user(snap->org, s->username);
    if (u < 0 || strcmp(snap->org->users[u].id, s->user_id) != 0)
        return -1;
    return u;
}

int sfm_auth_call(const sfm_app *app, const sfm_request *req, enum sfm_request_kind kind,
                  enum sfm_shape shape, const char *token, int flags, sfm_caller *caller, sfm_response *resp)
{
    const sfm_snapshot *snap = req->snap;
    sfm_policy_input in = sfm_auth_policy_input(req, kind);
    in.version_known = !(flags & SFM_AUTH_VERSION_UNKNOWN);
    in.needs_view_setup = (flags & SFM_AUTH_VIEW_SETUP) != 0;
    in.session_valid = 0;

    memset(caller, 0, sizeof(*caller));
    caller->user = -1;
    /* An unknown version is answered before the session is looked at (row
     * 2), so it neither needs nor refreshes one. */
    if (in.version_known && token && *token &&
        sfm_sessions_use(app->sessions, SFM_TOKEN_ACCESS, token, sfm_auth_now_ms(), &caller->session) == 0)
        caller->user = sfm_auth_session_user(snap, &caller->session);
    /* A deactivated user's sessions end with the deactivation. */
    if (caller->user >= 0 && !snap->users[caller->user].active)
        caller->user = -1;
    if (caller->user >= 0) {
        in.session_valid = 1;
        in.perms = snap->users[caller->user].perms;
    }
    sfm_decision d = sfm_policy_decide(&in);
    const char *username = caller->user >= 0 ? snap->org->users[caller->user].username : NULL;
    sfm_auth_record_decision(app, req, username, &d, SFM_LOGIN_OK, resp);
    if (!d.allowed) {
        render_denial(app, shape, &d, username, resp);
        return 0;
    }
    if (kind == SFM_KIND_API && !(flags & SFM_AUTH_NO_COUNT))
        count_call(app);
    caller->fx = &snap->org->users[caller->user];
    caller->view = &snap->users[caller->user];
    snprintf(caller->token, sizeof(caller->token), "%s", token);
    return 1;
}

enum sfm_login_check sfm_auth_password(const sfm_snapshot *snap, const char *username, const char *password,
                                       int ui, long *user)
{
    *user = username ? sfm_org_find_user(snap->org, username) : -1;
    if (*user < 0)
        return SFM_LOGIN_UNKNOWN_USER;
    const sfm_fx_user *u = &snap->org->users[*user];
    if (!password)
        return SFM_LOGIN_BAD_PASSWORD;
    size_t pl = strlen(u->password), given = strlen(password);
    int password_ok = given >= pl && memcmp(password, u->password, pl) == 0;
    int check;
    if (ui || !u->security_token) {
        check = password_ok && given == pl ? SFM_LOGIN_OK : SFM_LOGIN_BAD_PASSWORD;
    } else if (password_ok && given == pl) {
        check = SFM_LOGIN_TOKEN_MISSING; /* the password alone, no token appended */
    } else {
        check = password_ok && strcmp(password + pl, u->security_token) == 0 ? SFM_LOGIN_OK
                                                                             : SFM_LOGIN_BAD_PASSWORD;
    }
    /* Salesforce says an inactive user is inactive only once the password is right. */
    if (check == SFM_LOGIN_OK && !snap->users[*user].active)
        return SFM_LOGIN_INACTIVE;
    return (enum sfm_login_check)check;
}

int sfm_auth_login(const sfm_app *app, const sfm_request *req, enum sfm_request_kind kind,
                   enum sfm_shape shape, const char *username, long user, enum sfm_login_check check,
                   int flags, sfm_response *resp)
{
    const sfm_snapshot *snap = req->snap;
    sfm_policy_input in = sfm_auth_policy_input(req, kind);
    in.version_known = !(flags & SFM_AUTH_VERSION_UNKNOWN);
    in.login = check;
    in.perms = user >= 0 ? snap->users[user].perms : 0;
    sfm_decision d = sfm_policy_decide(&in);
    const char *name = user >= 0 ? snap->org->users[user].username : username;
    sfm_auth_record_decision(app, req, name, &d, check, resp);
    if (!d.allowed) {
        render_denial(app, shape, &d, username, resp);
        return 0;
    }
    return 1;
}
