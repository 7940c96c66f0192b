/*
 * oauth: the OAuth 2.0 and identity endpoints of the org's My Domain (SPEC
 * section 5): the token endpoint and its five grants, revocation, the
 * OpenID Connect userinfo endpoint and the identity URL.
 *
 * The login history (every request outside /__admin/ is one entry): every
 * answer of the token endpoint is a login decision. A grant that gets as far
 * as a user goes through sfm_auth_login (credentials, inactive users and the
 * policy rows: "authentication failure", rows 8 and 9 on the mTLS listener);
 * a request refused before a user is known (a malformed request, an unknown
 * client, a bad secret, assertion, code or refresh token) goes through
 * sfm_auth_refuse with one of the reason codes below and the Login History
 * text closest to it (Salesforce's LOGIN_STATUS texts where one fits). Those
 * refusals also carry X-Sfmtls-Reason, as every denial does. Revocation is
 * not a login: http.c records it. userinfo and the identity URL go through
 * sfm_auth_call, which records them.
 */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include "form.h"
#include "pki.h"
#include "utf8.h"

#define GRANT_JWT "urn:ietf:params:oauth:grant-type:jwt-bearer"
/* The scopes the answers name. The fixture's connected apps have no OAuth
 * scope settings, so these are fixed [emu]: "api" for the server flows, as
 * Salesforce's samples show; the web-server flow adds refresh_token. */
#define SCOPE_API     "api"
#define SCOPE_REFRESH "refresh_token api"
/* The identity facts the fixture does not carry [emu]: Salesforce's sample values. */
#define USER_TIMEZONE   "America/Los_Angeles"
#define USER_UTC_OFFSET -28800000
#define USER_LOCALE     "en_US"
#define USER_MODIFIED   "2024-01-01T00:00:00.000+0000"
#define USER_UPDATED_AT "2024-01-01T00:00:00Z"
/* A decoded JWT header or claims set above this is not an assertion we read. */
#define JWT_PART_MAX (16 * 1024)
/* A parameter name quoted in an error description is cut to this many bytes. */
#define NAME_QUOTE_MAX 64

/* Reason codes of refused token requests (login history "reason", X-Sfmtls-Reason) [emu]. */
#define R_INVALID_REQUEST        "INVALID_REQUEST"
#define R_UNSUPPORTED_GRANT_TYPE "UNSUPPORTED_GRANT_TYPE"
#define R_INVALID_CLIENT_ID      "INVALID_CLIENT_ID"
#define R_INVALID_CLIENT         "INVALID_CLIENT"
#define R_INVALID_ASSERTION      "INVALID_ASSERTION"
#define R_EXPIRED_ASSERTION      "EXPIRED_ASSERTION"
#define R_INVALID_GRANT          "INVALID_GRANT"
#define R_REDIRECT_URI_MISMATCH  "REDIRECT_URI_MISMATCH"
#define R_NO_RUN_AS_USER         "NO_CLIENT_CREDENTIALS_USER"

/* ---- parameters: the form body and the query string ------------------------------------ */

/*
 * A token or revoke request's parameters: the body, read only when the
 * request says it is a form (Salesforce ignores a body of any other type, so
 * a JSON body ends as "grant type not supported" [obs]), and the query
 * string, which Salesforce reads on a POST too [obs].
 */
typedef struct params {
    sfm_form form;
    const sfm_request *req;
} params;

static int is_form(const sfm_request *req)
{
    static const char k_type[] = "application/x-www-form-urlencoded";
    const char *ct = sfm_request_header(req, "Content-Type");
    if (!ct)
        return 0;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, k_type, sizeof(k_type) - 1) != 0)
        return 0;
    ct += sizeof(k_type) - 1;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

/* 0, -EINVAL (a bad escape or a NUL), -E2BIG, -ENOMEM. p->form needs sfm_form_free either way. */
static int params_init(params *p, const sfm_request *req)
{
    memset(p, 0, sizeof(*p));
    p->req = req;
    if (!is_form(req))
        return 0;
    if (req->body_too_large)
        return -E2BIG;
    return sfm_form_parse(&p->form, req->body, req->body_len);
}

/* The first value of `name` (body first, then query) and how often it came in both. */
static const char *param(const params *p, const char *name, int *count)
{
    int n = 0;
    const char *v = sfm_form_get(&p->form, name, &n);
    for (size_t i = 0; i < p->req->n_query; i++) {
        if (strcmp(p->req->query[i].name, name) != 0)
            continue;
        if (!v)
            v = p->req->query[i].value;
        n++;
    }
    if (count)
        *count = n;
    return v;
}

/*
 * The value of `name`, or NULL when it is absent or empty: "parameters sent
 * without a value MUST be treated as if they were omitted" (RFC 6749 3.1).
 */
static const char *value(const params *p, const char *name)
{
    const char *v = param(p, name, NULL);
    return v && *v ? v : NULL;
}

/* The first parameter name given more than once, or NULL (SPEC section 5: a repeated key is refused). */
static const char *repeated(const params *p)
{
    int n;
    for (size_t i = 0; i < p->form.n; i++) {
        param(p, p->form.pairs[i].name, &n);
        if (n > 1)
            return p->form.pairs[i].name;
    }
    for (size_t i = 0; i < p->req->n_query; i++) {
        param(p, p->req->query[i].name, &n);
        if (n > 1)
            return p->req->query[i].name;
    }
    return NULL;
}

/* ---- answers ------------------------------------------------------------------------ */

/* A token request refused before a user is known: the OAuth error and its history entry. */
static void refuse(const sfm_app *app, const sfm_request *req, const char *username, const char *reason,
                   const char *status, const char *error, const char *description, sfm_response *resp)
{
    sfm_api_oauth_error(resp, error, description);
    sfm_response_header(resp, "X-Sfmtls-Reason", reason);
    sfm_auth_refuse(app, req, username, reason, status, resp);
}

/* "missing parameter: <name>" or "repeated parameter: <name>", the name made safe for JSON. */
static void refuse_param(const sfm_app *app, const sfm_request *req, const char *username, const char *what,
                         const char *name, sfm_response *resp)
{
    char clean[3 * NAME_QUOTE_MAX + 1], description[3 * NAME_QUOTE_MAX + 32];
    sfm_utf8_repair(name, strnlen(name, NAME_QUOTE_MAX), clean);
    snprintf(description, sizeof(description), "%s parameter: %s", what, clean);
    refuse(app, req, username, R_INVALID_REQUEST, "Failed: Invalid request", "invalid_request", description,
           resp);
}

static void server_error(sfm_response *resp)
{
    sfm_response_set(resp, 500, "text/plain;charset=UTF-8", "internal error\n", 15);
}

/* A username as the history keeps it: NULL when absent or empty. */
static const char *who(const char *username)
{
    return username && *username ? username : NULL;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* Compares two secrets without an early exit on the first difference. */
static int secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* The login check of a user who needs no password (client credentials, JWT, codes, refresh tokens). */
static enum sfm_login_check no_password_check(const sfm_snapshot *snap, long user)
{
    if (user < 0)
        return SFM_LOGIN_UNKNOWN_USER;
    return snap->users[user].active ? SFM_LOGIN_OK : SFM_LOGIN_INACTIVE;
}

static void base64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char k_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = k_alpha[(v >> 18) & 63];
        out[o++] = k_alpha[(v >> 12) & 63];
        out[o++] = i + 1 < n ? k_alpha[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? k_alpha[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Base64(HMAC-SHA256(key, id + issued_at)) into out[45]: the token answer's "signature" [SF]. */
static int sign_identity(const char *key, const char *id, const char *issued_at, char out[45])
{
    Hmac hmac;
    unsigned char mac[WC_SHA256_DIGEST_SIZE];
    int rc = -EIO;
    if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
        return -EIO;
    if (wc_HmacSetKey(&hmac, WC_SHA256, (const byte *)key, (word32)strlen(key)) == 0 &&
        wc_HmacUpdate(&hmac, (const byte *)id, (word32)strlen(id)) == 0 &&
        wc_HmacUpdate(&hmac, (const byte *)issued_at, (word32)strlen(issued_at)) == 0 &&
        wc_HmacFinal(&hmac, mac) == 0) {
        base64_encode(mac, sizeof(mac), out);
        rc = 0;
    }
    wc_HmacFree(&hmac);
    return rc;
}

/* ---- issuing tokens --------------------------------------------------------------------- */

enum grant { GRANT_PASSWORD, GRANT_CLIENT_CREDENTIALS, GRANT_JWT_BEARER, GRANT_CODE, GRANT_REFRESH };

/*
 * Issues the access token (and, for the web-server flow, the refresh token)
 * for `user` through `capp`, and answers in the shape Salesforce gives that
 * grant [SF samples]: password and refresh: no refresh token; JWT: no
 * signature nor issued_at; client credentials, JWT, code and refresh name a
 * scope. `refresh_in` is the refresh token of the refresh grant.
 */
static void issue(const sfm_app *app, const sfm_request *req, const sfm_connected_app *capp, long user,
                  enum grant g, const char *refresh_in, sfm_response *resp)
{
    const sfm_org *org = req->snap->org;
    const sfm_fx_user *u = &org->users[user];
    sfm_session info;
    memset(&info, 0, sizeof(info));
    snprintf(info.user_id, sizeof(info.user_id), "%s", u->id);
    snprintf(info.username, sizeof(info.username), "%s", u->username);
    snprintf(info.client_id, sizeof(info.client_id), "%s", capp->consumer_key);
    int64_t now = sfm_auth_now_ms();
    info.issued_ms = now;

    char access[SFM_TOKEN_MAX], refresh[SFM_TOKEN_MAX] = "";
    const char *parent = g == GRANT_REFRESH ? refresh_in : NULL;
    if (g == GRANT_CODE) {
        if (sfm_sessions_issue(app->sessions, SFM_TOKEN_REFRESH, &info, NULL, now, refresh) != 0) {
            server_error(resp);
            return;
        }
        parent = refresh; /* revoking the refresh token ends this access token too */
    }
    if (sfm_sessions_issue(app->sessions, SFM_TOKEN_ACCESS, &info, parent, now, access) != 0) {
        server_error(resp);
        return;
    }

    char id[sizeof(app->instance_url) + 64], issued_at[24], signature[45];
    snprintf(id, sizeof(id), "%s/id/%s/%s", app->instance_url, org->id, u->id);
    snprintf(issued_at, sizeof(issued_at), "%lld", (long long)now);
    if (sign_identity(capp->consumer_secret, id, issued_at, signature) != 0) {
        server_error(resp);
        return;
    }
    int with_signature = g != GRANT_JWT_BEARER;
    const char *scope = NULL;
    switch (g) {
    case GRANT_PASSWORD: break;
    case GRANT_CLIENT_CREDENTIALS:
    case GRANT_JWT_BEARER: scope = SCOPE_API; break;
    case GRANT_CODE:
    case GRANT_REFRESH: scope = SCOPE_REFRESH; break;
    }

    /* Keys in the order of Salesforce's samples for each flow. */
    json_t *j = json_object();
    if (!j) {
        server_error(resp);
        return;
    }
    json_object_set_new(j, "access_token", json_string(access));
    if (g == GRANT_CODE)
        json_object_set_new(j, "refresh_token", json_string(refresh));
    if (with_signature && scope)
        json_object_set_new(j, "signature", json_string(signature));
    if (scope)
        json_object_set_new(j, "scope", json_string(scope));
    json_object_set_new(j, "instance_url", json_string(app->instance_url));
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "token_type", json_string("Bearer"));
    if (with_signature)
        json_object_set_new(j, "issued_at", json_string(issued_at));
    if (with_signature && !scope)
        json_object_set_new(j, "signature", json_string(signature));
    sfm_response_json(resp, 200, j);
    sfm_response_header(resp, "Cache-Control", "no-store");
}

/* ---- the grants ------------------------------------------------------------------------- */

/* What every grant handler works with. */
typedef struct token_ctx {
    const sfm_app *app;
    const sfm_request *req;
    const params *p;
    sfm_response *resp;
} token_ctx;

/* 1 when every one of `names` is there (a repeat was refused already); else the first
 * missing one is refused, in the name of `username` (may be NULL), and 0. */
#define HAVE_ALL(c, names, username) have_all(c, names, sizeof(names) / sizeof(names[0]), username)
static int have_all(const token_ctx *c, const char *const *names, size_t n, const char *username)
{
    for (size_t i = 0; i < n; i++) {
        if (!value(c->p, names[i])) {
            refuse_param(c->app, c->req, who(username), "missing", names[i], c->resp);
            return 0;
        }
    }
    return 1;
}

/*
 * The connected app of client_id, its secret checked when `secret` is not
 * NULL. NULL when the request was refused (unknown client_id: [obs]; wrong
 * secret: [inf]).
 */
static const sfm_connected_app *client(const token_ctx *c, const char *username, const char *secret)
{
    const char *client_id = value(c->p, "client_id");
    const sfm_connected_app *capp = sfm_org_find_app(c->req->snap->org, client_id);
    if (!capp) {
        refuse(c->app, c->req, who(username), R_INVALID_CLIENT_ID, "Failed: Invalid client identifier",
               "invalid_client_id", "client identifier invalid", c->resp);
        return NULL;
    }
    if (secret && !secret_equal(secret, capp->consumer_secret)) {
        refuse(c->app, c->req, who(username), R_INVALID_CLIENT, "Failed: Invalid client credentials",
               "invalid_client", "invalid client credentials", c->resp);
        return NULL;
    }
    return capp;
}

static void grant_password(const token_ctx *c)
{
    static const char *const need[] = {"client_id", "client_secret", "username", "password"};
    const char *username = value(c->p, "username");
    if (!HAVE_ALL(c, need, username))
        return;
    const sfm_connected_app *capp = client(c, username, value(c->p, "client_secret"));
    if (!capp)
        return;
    long user;
    enum sfm_login_check check = sfm_auth_password(c->req->snap, username, value(c->p, "password"), 0, &user);
    if (!sfm_auth_login(c->app, c->req, SFM_KIND_LOGIN, SFM_SHAPE_OAUTH, username, user, check, 0, c->resp))
        return;
    issue(c->app, c->req, capp, user, GRANT_PASSWORD, NULL, c->resp);
}

static void grant_client_credentials(const token_ctx *c)
{
    static const char *const need[] = {"client_id", "client_secret"};
    if (!HAVE_ALL(c, need, NULL))
        return;
    const sfm_connected_app *capp = client(c, NULL, value(c->p, "client_secret"));
    if (!capp)
        return;
    if (!capp->run_as) {
        refuse(c->app, c->req, NULL, R_NO_RUN_AS_USER, "Failed: No client credentials user", "invalid_grant",
               "no client credentials user enabled", c->resp);
        return;
    }
    const sfm_snapshot *snap = c->req->snap;
    long user = sfm_org_find_user(snap->org, capp->run_as);
    if (!sfm_auth_login(c->app, c->req, SFM_KIND_LOGIN, SFM_SHAPE_OAUTH, capp->run_as, user,
                        no_password_check(snap, user), 0, c->resp))
        return;
    issue(c->app, c->req, capp, user, GRANT_CLIENT_CREDENTIALS, NULL, c->resp);
}

/* ---- JWT bearer ---- */

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

/*
 * Strict base64url (RFC 7515 section 2): the URL-safe alphabet only, no
 * padding, no whitespace, and the unused low bits of the last character
 * zero, so that one value has one spelling. 0 and a malloc'd *out, or -1.
 */
static int b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len)
{
    if (n == 0 || n % 4 == 1)
        return -1;
    unsigned char *buf = malloc(n * 3 / 4 + 1);
    if (!buf)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* leftover bits must be zero */
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* A decoded JSON object of an assertion part, or NULL (not base64url, not one JSON object, too large). */
static json_t *jwt_json(const char *part, size_t n)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    json_t *j = NULL;
    if (n > JWT_PART_MAX * 4 / 3 + 4 || b64url_decode(part, n, &raw, &len) != 0)
        return NULL;
    j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* The string claim `name`, or NULL. */
static const char *claim_string(json_t *claims, const char *name)
{
    return json_string_value(json_object_get(claims, name));
}

/* 1 when `aud` names this org's login host (SPEC section 5), a trailing slash ignored. */
static int audience_one(const sfm_app *app, const sfm_org *org, const char *aud)
{
    const char *login = org->is_sandbox ? "https://test.salesforce.com" : "https://login.salesforce.com";
    const char *ok[] = {login, app->instance_url, app->mtls_url};
    size_t n = strlen(aud);
    if (n > 0 && aud[n - 1] == '/')
        n--;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (ok[i][0] && strlen(ok[i]) == n && strncasecmp(aud, ok[i], n) == 0)
            return 1;
    }
    return 0;
}

/* The aud claim: one string, or an array of strings one of which fits (RFC 7519 4.1.3). */
static int audience_ok(const sfm_app *app, const sfm_org *org, json_t *aud)
{
    if (json_is_string(aud))
        return audience_one(app, org, json_string_value(aud));
    if (!json_is_array(aud))
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && audience_one(app, org, json_string_value(v)))
            return 1;
    }
    return 0;
}

static void grant_jwt(const token_ctx *c)
{
    const sfm_org *org = c->req->snap->org;
    const char *assertion = value(c->p, "assertion");
    json_t *header = NULL, *claims = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const char *sub = NULL;
    /* Why the assertion is refused: the Login History text (Salesforce's, where one fits). */
    const char *status = "Failed: Assertion Invalid";

    if (!assertion) {
        refuse_param(c->app, c->req, NULL, "missing", "assertion", c->resp);
        return;
    }
    const char *dot1 = strchr(assertion, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.'))
        goto invalid;
    header = jwt_json(assertion, (size_t)(dot1 - assertion));
    claims = jwt_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!header || !claims)
        goto invalid;
    sub = claim_string(claims, "sub");
    /* Only RS256 [SF]: "none", HS256 and the rest are refused before anything else. */
    const char *alg = claim_string(header, "alg");
    if (!alg || strcmp(alg, "RS256") != 0) {
        status = "Failed: Invalid Signature Method";
        goto invalid;
    }
    const char *iss = claim_string(claims, "iss");
    const sfm_connected_app *capp = sfm_org_find_app(org, iss);
    if (!capp) {
        status = "Failed: Issuer Mismatched";
        goto invalid;
    }
    status = "Failed: Signature Invalid";
    if (!capp->certificate_pem || b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len) != 0)
        goto invalid;
    if (sfm_pki_verify_rs256(capp->certificate_pem, capp->certificate_len, (const unsigned char *)assertion,
                             (size_t)(dot2 - assertion), sig, sig_len) != SFM_PKI_OK)
        goto invalid;
    if (!audience_ok(c->app, org, json_object_get(claims, "aud"))) {
        status = "Failed: Audience Invalid";
        goto invalid;
    }
    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp)) {
        status = "Failed: Assertion Invalid";
        goto invalid;
    }
    /* No clock skew [emu]: an exp at or before now is expired. */
    if (json_number_value(exp) * 1000.0 <= (double)sfm_auth_now_ms()) {
        refuse(c->app, c->req, who(sub), R_EXPIRED_ASSERTION, "Failed: Assertion Expired", "invalid_grant",
               "expired assertion", c->resp);
        goto out;
    }
    long user = sub ? sfm_org_find_user(org, sub) : -1;
    if (user < 0) {
        status = "Failed: Username Or SSO Id Invalid";
        goto invalid;
    }
    if (sfm_auth_login(c->app, c->req, SFM_KIND_LOGIN, SFM_SHAPE_OAUTH, sub, user,
                       no_password_check(c->req->snap, user), 0, c->resp))
        issue(c->app, c->req, capp, user, GRANT_JWT_BEARER, NULL, c->resp);
    goto out;
invalid:
    refuse(c->app, c->req, who(sub), R_INVALID_ASSERTION, status, "invalid_grant", "invalid assertion",
           c->resp);
out:
    free(sig);
    json_decref(header);
    json_decref(claims);
}

/* ---- web-server flow ---- */

/* A bad, used or expired code or refresh token [SPEC, inf]. */
static void refuse_grant(const token_ctx *c, const char *username)
{
    refuse(c->app, c->req, who(username), R_INVALID_GRANT, "Failed: Invalid Token", "invalid_grant",
           "expired access/refresh token", c->resp);
}

/* The login of the user a code or refresh token was issued to, then the new token. */
static void login_as(const token_ctx *c, const sfm_connected_app *capp, const sfm_session *s,
                     enum grant grant, const char *parent)
{
    const sfm_snapshot *snap = c->req->snap;
    long user = sfm_auth_session_user(snap, s);
    if (user < 0) {
        refuse_grant(c, s->username);
        return;
    }
    if (sfm_auth_login(c->app, c->req, SFM_KIND_LOGIN, SFM_SHAPE_OAUTH, s->username, user,
                       no_password_check(snap, user), 0, c->resp))
        issue(c->app, c->req, capp, user, grant, parent, c->resp);
}

static void grant_code(const token_ctx *c)
{
    static const char *const need[] = {"code", "client_id", "client_secret", "redirect_uri"};
    if (!HAVE_ALL(c, need, NULL))
        return;
    const sfm_connected_app *capp = client(c, NULL, value(c->p, "client_secret"));
    if (!capp)
        return;
    sfm_session s;
    /* A code is good once: this use consumes it, whatever follows. */
    if (sfm_sessions_use(c->app->sessions, SFM_TOKEN_CODE, value(c->p, "code"), sfm_auth_now_ms(), &s) != 0 ||
        strcmp(s.client_id, capp->consumer_key) != 0) {
        refuse_grant(c, NULL);
        return;
    }
    if (strcmp(s.redirect_uri, value(c->p, "redirect_uri")) != 0) {
        /* The answer Salesforce gives for a redirect_uri that does not match [obs]. */
        refuse(c->app, c->req, s.username, R_REDIRECT_URI_MISMATCH, "Failed: Invalid Callback URL",
               "redirect_uri_mismatch", "redirect_uri must match configuration", c->resp);
        return;
    }
    login_as(c, capp, &s, GRANT_CODE, NULL);
}

static void grant_refresh(const token_ctx *c)
{
    static const char *const need[] = {"refresh_token", "client_id"};
    if (!HAVE_ALL(c, need, NULL))
        return;
    /* client_secret is optional here [SF]; when given it must be right. */
    const sfm_connected_app *capp = client(c, NULL, value(c->p, "client_secret"));
    if (!capp)
        return;
    const char *token = value(c->p, "refresh_token");
    sfm_session s;
    if (sfm_sessions_use(c->app->sessions, SFM_TOKEN_REFRESH, token, sfm_auth_now_ms(), &s) != 0 ||
        strcmp(s.client_id, capp->consumer_key) != 0) {
        refuse_grant(c, NULL);
        return;
    }
    login_as(c, capp, &s, GRANT_REFRESH, token);
}

/* ---- the token endpoint ------------------------------------------------------------------- */

/* Why a form was not read (sfm_form_parse's -EINVAL or -E2BIG). */
static const char *form_problem(const sfm_request *req, int rc)
{
    if (rc != -E2BIG)
        return "malformed request body";
    return req->body_too_large || req->body_len > SFM_FORM_BYTES ? "request body too large"
                                                                 : "too many parameters";
}

/* A malformed or oversized form, before anything else is read. */
static void refuse_form(const sfm_app *app, const sfm_request *req, int rc, sfm_response *resp)
{
    refuse(app, req, NULL, R_INVALID_REQUEST, "Failed: Invalid request", "invalid_request",
           form_problem(req, rc), resp);
}

void sfm_api_oauth_token(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (strcmp(req->method, "POST") != 0) {
        /* RFC 6749 3.2: the token endpoint takes POST only. Salesforce's
         * Login History has a status for this ("Failed: Invalid HTTP
         * method"); the answer's text is ours [emu]. */
        refuse(app, req, NULL, R_INVALID_REQUEST, "Failed: Invalid HTTP method", "invalid_request",
               "must use HTTP POST", resp);
        resp->status = 405;
        sfm_response_header(resp, "Allow", "POST");
        return;
    }
    params p;
    int rc = params_init(&p, req);
    if (rc == -ENOMEM) {
        server_error(resp);
        goto out;
    }
    if (rc < 0) {
        refuse_form(app, req, rc, resp);
        goto out;
    }
    const char *dup = repeated(&p);
    if (dup) {
        refuse_param(app, req, who(value(&p, "username")), "repeated", dup, resp);
        goto out;
    }
    token_ctx c = {.app = app, .req = req, .p = &p, .resp = resp};
    const char *grant = value(&p, "grant_type");
    if (!grant) {
        /* What Salesforce answers for a body it did not read as a form [obs]. */
        refuse(app, req, who(value(&p, "username")), R_UNSUPPORTED_GRANT_TYPE,
               "Failed: Unsupported grant type", "unsupported_grant_type", "grant type not supported", resp);
    } else if (strcmp(grant, "password") == 0) {
        grant_password(&c);
    } else if (strcmp(grant, "client_credentials") == 0) {
        grant_client_credentials(&c);
    } else if (strcmp(grant, GRANT_JWT) == 0) {
        grant_jwt(&c);
    } else if (strcmp(grant, "authorization_code") == 0) {
        grant_code(&c);
    } else if (strcmp(grant, "refresh_token") == 0) {
        grant_refresh(&c);
    } else {
        refuse(app, req, who(value(&p, "username")), R_UNSUPPORTED_GRANT_TYPE,
               "Failed: Unsupported grant type", "unsupported_grant_type", "grant type not supported", resp);
    }
out:
    sfm_form_free(&p.form);
}

/* ---- revocation ------------------------------------------------------------------------- */

void sfm_api_oauth_revoke(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "GET") != 0 &&
        strcmp(req->method, "HEAD") != 0) {
        sfm_api_oauth_error(resp, "invalid_request", "must use HTTP GET or POST");
        resp->status = 405;
        sfm_response_header(resp, "Allow", "GET, POST");
        return;
    }
    params p;
    int rc = params_init(&p, req);
    if (rc == -ENOMEM) {
        server_error(resp);
        goto out;
    }
    int count = 0;
    const char *token = rc == 0 ? param(&p, "token", &count) : NULL;
    if (rc < 0) {
        sfm_api_oauth_error(resp, "invalid_request", form_problem(req, rc));
    } else if (count > 1) {
        sfm_api_oauth_error(resp, "invalid_request", "repeated parameter: token");
    } else if (!token || !*token || sfm_sessions_revoke(app->sessions, token) != 0) {
        /* An unknown, expired or already revoked token, or none at all:
         * Salesforce's answer [SF error code; obs text, forrest #213]. */
        sfm_api_oauth_error(resp, "unsupported_token_type", "this token type is not supported");
    } else {
        /* Revoked (a refresh token with its access tokens): 200, empty [SF]. */
        sfm_response_set(resp, 200, "text/plain;charset=UTF-8", "", 0);
        sfm_response_header(resp, "Cache-Control", "no-store");
    }
out:
    sfm_form_free(&p.form);
}

/* ---- userinfo and the identity URL ----------------------------------------------------- */

/* The API version the URLs name: "{version}" unless ?version= is "latest" or a version the org serves [SF].
 */
static const char *url_version(const sfm_request *req)
{
    const sfm_org *org = req->snap->org;
    for (size_t i = 0; i < req->n_query; i++) {
        if (strcmp(req->query[i].name, "version") != 0)
            continue;
        const char *v = req->query[i].value ? req->query[i].value : ""; /* a bare "?version" */
        if (strcmp(v, "latest") == 0 && org->n_versions > 0) {
            const char *newest = org->versions[0].version;
            for (size_t k = 1; k < org->n_versions; k++) {
                if (strtod(org->versions[k].version, NULL) > strtod(newest, NULL))
                    newest = org->versions[k].version;
            }
            return newest;
        }
        for (size_t k = 0; k < org->n_versions; k++) {
            if (strcmp(org->versions[k].version, v) == 0)
                return org->versions[k].version;
        }
    }
    return "{version}";
}

/* The endpoints a client may call as this user [SF: the identity URL's "urls"]. */
static json_t *identity_urls(const sfm_app *app, const sfm_org *org, const sfm_fx_user *u, const char *ver)
{
    const char *inst = app->instance_url;
    char org15[16];
    snprintf(org15, sizeof(org15), "%.15s", org->id);
    static const struct {
        const char *key, *fmt; /* fmt takes: instance, version, org15 */
    } k_soap[] = {
        {"enterprise", "%s/services/Soap/c/%s/%s"},
        {"metadata", "%s/services/Soap/m/%s/%s"},
        {"partner", "%s/services/Soap/u/%s/%s"},
    };
    static const struct {
        const char *key, *path;
    } k_rest[] = {
        {"rest", ""},        {"sobjects", "sobjects/"}, {"search", "search/"},
        {"query", "query/"}, {"recent", "recent/"},
    };
    static const struct {
        const char *key, *path;
    } k_chatter[] = {
        {"feeds", "chatter/feeds"},
        {"groups", "chatter/groups"},
        {"users", "chatter/users"},
        {"feed_items", "chatter/feed-items"},
        {"feed_elements", "chatter/feed-elements"},
    };
    json_t *j = json_object();
    char url[512];
    if (!j)
        return NULL;
    for (size_t i = 0; i < sizeof(k_soap) / sizeof(k_soap[0]); i++) {
        snprintf(url, sizeof(url), k_soap[i].fmt, inst, ver, org15);
        json_object_set_new(j, k_soap[i].key, json_string(url));
    }
    for (size_t i = 0; i < sizeof(k_rest) / sizeof(k_rest[0]); i++) {
        snprintf(url, sizeof(url), "%s/services/data/v%s/%s", inst, ver, k_rest[i].path);
        json_object_set_new(j, k_rest[i].key, json_string(url));
    }
    snprintf(url, sizeof(url), "%s/services/Soap/T/%s/%s", inst, ver, org15);
    json_object_set_new(j, "tooling_soap", json_string(url));
    snprintf(url, sizeof(url), "%s/services/data/v%s/tooling/", inst, ver);
    json_object_set_new(j, "tooling_rest", json_string(url));
    snprintf(url, sizeof(url), "%s/%s", inst, u->id);
    json_object_set_new(j, "profile", json_string(url));
    for (size_t i = 0; i < sizeof(k_chatter) / sizeof(k_chatter[0]); i++) {
        snprintf(url, sizeof(url), "%s/services/data/v%s/%s", inst, ver, k_chatter[i].path);
        json_object_set_new(j, k_chatter[i].key, json_string(url));
    }
    json_object_set_new(j, "custom_domain", json_string(inst));
    return j;
}

/* The names a user shows. The fixture has only the username: the part before '@' stands for them [emu]. */
typedef struct user_names {
    char local[256];
} user_names;

static void names_of(const sfm_fx_user *u, user_names *n)
{
    size_t len = strcspn(u->username, "@");
    snprintf(n->local, sizeof(n->local), "%.*s", (int)len, u->username);
}

static json_t *photos(const sfm_app *app)
{
    char pic[256], thumb[256];
    /* Salesforce's default photo of a user without one. */
    snprintf(pic, sizeof(pic), "%s/profilephoto/005/F", app->instance_url);
    snprintf(thumb, sizeof(thumb), "%s/profilephoto/005/T", app->instance_url);
    return json_pack("{s:s, s:s}", "picture", pic, "thumbnail", thumb);
}

/* The token from Authorization, else from ?oauth_token= [SF: identity URL parameters]. */
static const char *identity_token(const sfm_request *req, char buf[SFM_TOKEN_MAX])
{
    const char *t = sfm_auth_bearer(req, buf);
    if (t)
        return t;
    for (size_t i = 0; i < req->n_query; i++) {
        if (strcmp(req->query[i].name, "oauth_token") == 0) {
            const char *v = req->query[i].value ? req->query[i].value : ""; /* a bare "?oauth_token" */
            snprintf(buf, SFM_TOKEN_MAX, "%s", strlen(v) < SFM_TOKEN_MAX ? v : "");
            return buf;
        }
    }
    return NULL;
}

static int identity_method(const sfm_request *req, sfm_response *resp)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 ||
        strcmp(req->method, "POST") == 0)
        return 1;
    sfm_response_set(resp, 405, "text/plain;charset=UTF-8", "Method Not Allowed", 18);
    sfm_response_header(resp, "Allow", "GET, POST");
    return 0;
}

void sfm_api_oauth_userinfo(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    char buf[SFM_TOKEN_MAX];
    sfm_caller caller;
    if (!identity_method(req, resp))
        return;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_IDENTITY, identity_token(req, buf),
                       SFM_AUTH_NO_COUNT, &caller, resp))
        return;
    const sfm_org *org = req->snap->org;
    const sfm_fx_user *u = caller.fx;
    user_names n;
    names_of(u, &n);
    char sub[sizeof(app->instance_url) + 64], profile[sizeof(app->instance_url) + 32], picture[256];
    snprintf(sub, sizeof(sub), "%s/id/%s/%s", app->instance_url, org->id, u->id);
    snprintf(profile, sizeof(profile), "%s/%s", app->instance_url, u->id);
    snprintf(picture, sizeof(picture), "%s/profilephoto/005/F", app->instance_url);

    /* The OpenID Connect shape Salesforce answers, in its order [SF]. */
    json_t *j = json_object();
    if (!j) {
        server_error(resp);
        return;
    }
    json_object_set_new(j, "sub", json_string(sub));
    json_object_set_new(j, "user_id", json_string(u->id));
    json_object_set_new(j, "organization_id", json_string(org->id));
    json_object_set_new(j, "preferred_username", json_string(u->username));
    json_object_set_new(j, "nickname", json_string(n.local));
    json_object_set_new(j, "name", json_string(n.local));
    json_object_set_new(j, "email", json_string(u->username));
    json_object_set_new(j, "email_verified", json_true());
    json_object_set_new(j, "given_name", json_null());
    json_object_set_new(j, "family_name", json_string(n.local));
    json_object_set_new(j, "zoneinfo", json_string(USER_TIMEZONE));
    json_object_set_new(j, "photos", photos(app));
    json_object_set_new(j, "profile", json_string(profile));
    json_object_set_new(j, "picture", json_string(picture));
    json_object_set_new(j, "address", json_object());
    json_object_set_new(j, "is_salesforce_integration_user", json_false());
    json_object_set_new(j, "urls", identity_urls(app, org, u, url_version(req)));
    json_object_set_new(j, "active", json_true());
    json_object_set_new(j, "user_type", json_string("STANDARD"));
    json_object_set_new(j, "language", json_string(USER_LOCALE));
    json_object_set_new(j, "locale", json_string(USER_LOCALE));
    json_object_set_new(j, "utcOffset", json_integer(USER_UTC_OFFSET));
    json_object_set_new(j, "updated_at", json_string(USER_UPDATED_AT));
    json_object_set_new(j, "is_app_installed", json_true());
    sfm_response_json(resp, 200, j);
}

/*
 * Reads "/id/<org>/<user>" (a trailing slash allowed) into 18-character ids.
 * 0, or -1 when the path does not have that shape or an id is not valid.
 */
static int identity_path(const char *path, char org[SFM_SFID_LEN + 1], char user[SFM_SFID_LEN + 1])
{
    char a[SFM_SFID_LEN + 2], b[SFM_SFID_LEN + 2];
    if (strncmp(path, "/id/", 4) != 0)
        return -1;
    const char *p = path + 4;
    size_t la = strcspn(p, "/");
    if (la == 0 || la > SFM_SFID_LEN || p[la] != '/')
        return -1;
    const char *q = p + la + 1;
    size_t lb = strcspn(q, "/");
    if (lb == 0 || lb > SFM_SFID_LEN || (q[lb] != '\0' && strcmp(q + lb, "/") != 0))
        return -1;
    snprintf(a, sizeof(a), "%.*s", (int)la, p);
    snprintf(b, sizeof(b), "%.*s", (int)lb, q);
    if (sfm_sfid_to18(a, org) != 0 || sfm_sfid_to18(b, user) != 0)
        return -1;
    return 0;
}

void sfm_api_identity(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    char buf[SFM_TOKEN_MAX], org_id[SFM_SFID_LEN + 1], user_id[SFM_SFID_LEN + 1];
    sfm_caller caller;
    if (!identity_method(req, resp))
        return;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_IDENTITY, identity_token(req, buf),
                       SFM_AUTH_NO_COUNT, &caller, resp))
        return;
    const sfm_org *org = req->snap->org;
    long target = -1;
    if (identity_path(req->path, org_id, user_id) == 0 && strcmp(org_id, org->id) == 0) {
        for (size_t i = 0; i < org->n_users; i++) {
            if (strcmp(org->users[i].id, user_id) == 0) {
                target = (long)i;
                break;
            }
        }
    }
    /* Another org's id, an id no user has, or no id at all: Salesforce's
     * plain "Bad_Id" with 404 [obs]. Another user of this org is shown to a
     * caller with API access, as Salesforce does for internal users [SF]:
     * every caller that got here has it. */
    if (target < 0) {
        sfm_response_set(resp, 404, "text/plain;charset=UTF-8", "Bad_Id", 6);
        return;
    }
    const sfm_fx_user *u = &org->users[target];
    const sfm_user_view *view = &req->snap->users[target];
    user_names n;
    names_of(u, &n);
    char id[sizeof(app->instance_url) + 64];
    snprintf(id, sizeof(id), "%s/id/%s/%s", app->instance_url, org->id, u->id);

    /* The identity shape Salesforce answers, in its order [SF]. */
    json_t *j = json_object();
    if (!j) {
        server_error(resp);
        return;
    }
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "asserted_user", json_boolean(target == caller.user));
    json_object_set_new(j, "user_id", json_string(u->id));
    json_object_set_new(j, "organization_id", json_string(org->id));
    json_object_set_new(j, "username", json_string(u->username));
    json_object_set_new(j, "nick_name", json_string(n.local));
    json_object_set_new(j, "display_name", json_string(n.local));
    json_object_set_new(j, "email", json_string(u->username));
    json_object_set_new(j, "email_verified", json_true());
    json_object_set_new(j, "first_name", json_null());
    json_object_set_new(j, "last_name", json_string(n.local));
    json_object_set_new(j, "timezone", json_string(USER_TIMEZONE));
    json_object_set_new(j, "photos", photos(app));
    json_object_set_new(j, "addr_street", json_null());
    json_object_set_new(j, "addr_city", json_null());
    json_object_set_new(j, "addr_state", json_null());
    json_object_set_new(j, "addr_country", json_null());
    json_object_set_new(j, "addr_zip", json_null());
    json_object_set_new(j, "mobile_phone", json_null());
    json_object_set_new(j, "mobile_phone_verified", json_false());
    json_object_set_new(j, "is_lightning_login_user", json_false());
    json_object_set_new(j, "status", json_pack("{s:n, s:n}", "created_date", "body"));
    json_object_set_new(j, "urls", identity_urls(app, org, u, url_version(req)));
    json_object_set_new(j, "active", json_boolean(view->active));
    json_object_set_new(j, "user_type", json_string("STANDARD"));
    json_object_set_new(j, "language", json_string(USER_LOCALE));
    json_object_set_new(j, "locale", json_string(USER_LOCALE));
    json_object_set_new(j, "utcOffset", json_integer(USER_UTC_OFFSET));
    json_object_set_new(j, "last_modified_date", json_string(USER_MODIFIED));
    json_object_set_new(j, "is_app_installed", json_true());
    sfm_response_json(resp, 200, j);
}
