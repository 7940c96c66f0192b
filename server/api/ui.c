/*
 * ui: the pages a browser sees (SPEC section 5): the login form at / and its
 * POST, the page a logged-in user lands on (/home/home.jsp),
 * /secur/frontdoor.jsp, and the web-server flow's
 * /services/oauth2/authorize. Plain HTML5 with inline CSS: no script and no
 * outside asset, as the emulator is offline.
 *
 * The UI session is an access token in the cookie "sid" (the name Salesforce
 * gives its UI session cookie and frontdoor.jsp's parameter). Every decision
 * goes through auth.c with SFM_KIND_UI, so the policy's rows 7, 8 and 10 stop
 * Enforce and API-only users, and auth.c renders those denials.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "form.h"

#define HTML_TYPE "text/html;charset=UTF-8"
/* What Salesforce sends on its pages behind a session. */
#define NO_CACHE "no-cache, must-revalidate, max-age=0, no-store, private"
/* The UI session cookie: never sent over plain HTTP, never seen by scripts. */
#define COOKIE_ATTRS "; Path=/; Secure; HttpOnly; SameSite=Lax"
#define HOME_PATH    "/home/home.jsp"
#define AUTHORIZE    "/services/oauth2/authorize"
/* Salesforce's text for a failed UI login [SF: help article 000387757]. */
#define LOGIN_ERROR                                                                                \
    "Please check your username and password. If you still can't log in, contact your Salesforce " \
    "administrator."
/* The authorize errors Salesforce shows on its error page rather than
 * redirecting to an untrusted redirect_uri [obs]. */
#define ERR_CLIENT_ID "error=invalid_client_id&error_description=client%20identifier%20invalid"
#define ERR_REDIRECT \
    "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
/* The largest page built here; echoed values are bounded by the form and URL
 * limits well below it. */
#define SFM_UI_MAX_PAGE (512 * 1024)

/* ------------------------------------------------------------ page text */

/* A growing page; `oom` sticks once an append fails, and the page is then dropped. */
typedef struct page {
    char *p;
    size_t len, cap;
    int oom;
} page;

static void page_add_n(page *pg, const char *s, size_t n)
{
    if (pg->oom)
        return;
    if (pg->len + n + 1 > pg->cap) {
        size_t cap = pg->cap ? pg->cap : 4096;
        while (cap < pg->len + n + 1)
            cap *= 2;
        char *np = cap > SFM_UI_MAX_PAGE ? NULL : realloc(pg->p, cap);
        if (!np) {
            pg->oom = 1;
            return;
        }
        pg->p = np;
        pg->cap = cap;
    }
    memcpy(pg->p + pg->len, s, n);
    pg->len += n;
    pg->p[pg->len] = '\0';
}

static void page_add(page *pg, const char *s)
{
    page_add_n(pg, s, strlen(s));
}

/* `text` escaped for HTML text and attribute values. */
static void page_esc(page *pg, const char *text)
{
    char *e = sfm_api_escape(text ? text : "");
    if (!e) {
        pg->oom = 1;
        return;
    }
    page_add(pg, e);
    free(e);
}

/* `text` percent-encoded for a query component: all but RFC 3986's unreserved characters. */
static void page_urlenc(page *pg, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~", *c)) {
            page_add_n(pg, (const char *)c, 1);
        } else {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            page_add_n(pg, esc, 3);
        }
    }
}

/*
 * A local path as a Location value: the decoded parameter's bytes that may
 * not appear in a URL (controls, space, non-ASCII, quotes, angle brackets)
 * are percent-encoded again; '/', '?', '&', '=', '#' and '%' stay.
 */
static void page_path(page *pg, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f || strchr("\"<>\\^`{|}", *c)) {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            page_add_n(pg, esc, 3);
        } else {
            page_add_n(pg, (const char *)c, 1);
        }
    }
}

/* The stylesheet of every page: Salesforce's login colours, nothing fetched
 * (the empty icon in page_head keeps browsers from asking for /favicon.ico,
 * which would be a NOT_FOUND entry in the login history). */
static const char STYLE[] =
    "body{margin:0;background:#f4f6f9;color:#16325c;font-family:\"Salesforce Sans\",Arial,sans-serif;"
    "font-size:14px}"
    "main{max-width:380px;margin:64px auto;padding:24px 28px;background:#fff;border:1px solid #d8dde6;"
    "border-radius:4px}"
    "h1{margin:0 0 20px;font-size:24px;font-weight:400;text-align:center}"
    "p.sub{margin:-12px 0 20px;text-align:center;color:#54698d}"
    "label{display:block;margin-bottom:4px;color:#54698d}"
    "input.input{display:block;width:100%;box-sizing:border-box;margin:0 0 16px;padding:12px;"
    "border:1px solid #d8dde6;border-radius:4px;font-size:14px}"
    "input.input:focus{border-color:#1589ee;outline:0;box-shadow:0 0 3px #0070d2}"
    ".button{display:block;width:100%;padding:12px;border:0;border-radius:4px;background:#0070d2;"
    "color:#fff;font-size:16px;cursor:pointer}"
    ".button:hover{background:#005fb2}"
    ".loginError{margin:0 0 16px;padding:10px 12px;border-radius:4px;background:#fdf2f2;color:#c23934}"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:8px 16px;margin:0 0 24px}"
    "dt{color:#54698d}dd{margin:0;word-break:break-all}"
    "p.error{font-family:monospace;word-break:break-all}"
    "footer{margin-top:24px;text-align:center;color:#54698d;font-size:12px}";

static void page_head(page *pg, const char *title)
{
    page_add(pg, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<link rel=\"icon\" href=\"data:,\">\n<title>");
    page_esc(pg, title);
    page_add(pg, "</title>\n<style>");
    page_add(pg, STYLE);
    page_add(pg, "</style>\n</head>\n<body>\n<main>\n");
}

static void page_foot(page *pg)
{
    page_add(pg,
             "<footer>sfmtls: an offline emulator of a Salesforce org</footer>\n</main>\n</body>\n</html>\n");
}

/* A hidden form field; nothing when `value` is NULL. */
static void page_hidden(page *pg, const char *name, const char *value)
{
    if (!value)
        return;
    page_add(pg, "<input type=\"hidden\" name=\"");
    page_esc(pg, name);
    page_add(pg, "\" value=\"");
    page_esc(pg, value);
    page_add(pg, "\">\n");
}

/* Hands the page to the response (a 500 when it could not be built). */
static void page_send(page *pg, sfm_response *resp, int status)
{
    if (pg->oom || !pg->p) {
        free(pg->p);
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    free(resp->body);
    resp->status = status;
    resp->content_type = HTML_TYPE;
    resp->body = pg->p;
    resp->body_len = pg->len;
    pg->p = NULL;
}

/* A page with a heading and one paragraph (`text` escaped). */
static void simple_page(sfm_response *resp, int status, const char *title, const char *pclass,
                        const char *text)
{
    page pg = {0};
    page_head(&pg, title);
    page_add(&pg, "<h1>");
    page_esc(&pg, title);
    page_add(&pg, "</h1>\n<p");
    if (pclass) {
        page_add(&pg, " class=\"");
        page_add(&pg, pclass);
        page_add(&pg, "\" id=\"error\"");
    }
    page_add(&pg, ">");
    page_esc(&pg, text);
    page_add(&pg, "</p>\n");
    page_foot(&pg);
    page_send(&pg, resp, status);
}

/* ------------------------------------------------------------ the login form */

/* What a login form carries besides the credentials. */
typedef struct login_form {
    const char *org_name;  /* NULL: no heading with the org's name */
    const char *action;    /* "/" or AUTHORIZE */
    const char *username;  /* kept after a failed login; NULL: empty */
    int error;             /* show Salesforce's error text */
    const char *start_url; /* "/" only: the startURL passthrough */
    const char *app_name;  /* AUTHORIZE only: the connected app and its request */
    const char *client_id;
    const char *redirect_uri;
    const char *state;
} login_form;

/*
 * The login page. The element ids and classes are those of Salesforce's
 * login page (#username, #password, #Login, #error, form "login") [obs: UI
 * automation scripts], so a script written for a real org finds its way; the
 * field names are the classic form's "un" and "pw".
 */
static void login_page(sfm_response *resp, const login_form *lf)
{
    page pg = {0};
    page_head(&pg, "Login | Salesforce");
    page_add(&pg, "<h1>");
    page_esc(&pg, lf->org_name ? lf->org_name : "Log In");
    page_add(&pg, "</h1>\n");
    if (lf->app_name) {
        page_add(&pg, "<p class=\"sub\">Log in to allow <b>");
        page_esc(&pg, lf->app_name);
        page_add(&pg, "</b> to access your data.</p>\n");
    }
    if (lf->error)
        page_add(&pg, "<div id=\"error\" class=\"loginError\" role=\"alert\">" LOGIN_ERROR "</div>\n");
    page_add(&pg, "<form method=\"post\" id=\"login_form\" name=\"login\" action=\"");
    page_esc(&pg, lf->action);
    page_add(&pg, "\">\n<div id=\"usernamegroup\"><label for=\"username\">Username</label>\n"
                  "<input class=\"input username\" type=\"text\" id=\"username\" name=\"un\" value=\"");
    page_esc(&pg, lf->username ? lf->username : "");
    page_add(&pg,
             "\" autocomplete=\"username\" inputmode=\"email\" autocapitalize=\"off\" spellcheck=\"false\">"
             "</div>\n"
             "<label for=\"password\">Password</label>\n"
             "<input class=\"input password\" type=\"password\" id=\"password\" name=\"pw\" value=\"\" "
             "autocomplete=\"current-password\">\n");
    page_hidden(&pg, "startURL", lf->start_url);
    if (lf->client_id) {
        page_hidden(&pg, "response_type", "code");
        page_hidden(&pg, "client_id", lf->client_id);
        page_hidden(&pg, "redirect_uri", lf->redirect_uri);
        page_hidden(&pg, "state", lf->state);
    }
    page_add(&pg, "<input class=\"button\" type=\"submit\" id=\"Login\" name=\"Login\" value=\"Log In\">\n"
                  "</form>\n");
    page_foot(&pg);
    page_send(&pg, resp, 200);
}

void sfm_api_ui_login_error(sfm_response *resp, const char *username)
{
    login_form lf = {.action = "/", .username = username, .error = 1};
    login_page(resp, &lf);
}

/* ------------------------------------------------------------ request helpers */

/* Cache-Control on every answer here, once (auth.c may have set it on a denial). */
static void no_cache(sfm_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, "Cache-Control") == 0)
            return;
    }
    sfm_response_header(resp, "Cache-Control", NO_CACHE);
}

static int is_method(const sfm_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static int is_get(const sfm_request *req)
{
    return is_method(req, "GET") || is_method(req, "HEAD");
}

static void method_not_allowed(sfm_response *resp, const char *allowed)
{
    simple_page(resp, 405, "Method Not Allowed", NULL, "This page does not answer that HTTP method.");
    sfm_response_header(resp, "Allow", allowed);
    no_cache(resp);
}

static void bad_request(sfm_response *resp, const char *why)
{
    simple_page(resp, 400, "Bad Request", NULL, why);
}

/* The first value of query parameter `name` ("" for a bare "?name"), or NULL. */
static const char *query_get(const sfm_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_query; i++) {
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value ? req->query[i].value : "";
    }
    return NULL;
}

/*
 * The "sid" cookie (RFC 6265 section 5.4's cookie-string: pairs separated
 * by ';' and optional white space, in every Cookie header; a value may be
 * quoted), copied into `buf`. NULL when there is none, or when it is longer
 * than any token, which no session could be.
 */
static const char *cookie_sid(const sfm_request *req, char buf[SFM_TOKEN_MAX])
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->headers[i].name, "Cookie") != 0 || !req->headers[i].value)
            continue;
        const char *p = req->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            const char *end = strchr(p, ';');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n > 4 && strncmp(p, "sid=", 4) == 0) {
                const char *v = p + 4;
                size_t vn = n - 4;
                while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                    vn--;
                if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                    v++;
                    vn -= 2;
                }
                if (vn == 0 || vn >= SFM_TOKEN_MAX)
                    return NULL;
                memcpy(buf, v, vn);
                buf[vn] = '\0';
                return buf;
            }
            p += n;
        }
    }
    return NULL;
}

/*
 * A startURL or retURL the emulator follows: a path on this host. "//host"
 * and "/\host" (which browsers read as "//host") would leave it, and so
 * would anything with a scheme.
 */
static int is_local_path(const char *url)
{
    if (!url || url[0] != '/' || url[1] == '/' || url[1] == '\\')
        return 0;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            return 0;
    }
    return 1;
}

/*
 * A 302 to `location` (a complete URL or path, already encoded). The body is
 * a short page with the link, for clients that do not follow redirects.
 * Returns 0, or -1 after answering 500 when the URL does not fit a header.
 */
static int redirect(sfm_response *resp, const char *location)
{
    if (strlen(location) >= sizeof(resp->headers[0].value)) {
        simple_page(resp, 500, "Redirect Too Long", NULL,
                    "The address to redirect to is longer than this emulator's response headers hold.");
        return -1;
    }
    page pg = {0};
    page_add(&pg, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<link rel=\"icon\" "
                  "href=\"data:,\">\n"
                  "<title>Redirecting</title>\n"
                  "</head>\n<body>\n<p>Continue to <a href=\"");
    page_esc(&pg, location);
    page_add(&pg, "\">");
    page_esc(&pg, location);
    page_add(&pg, "</a>.</p>\n</body>\n</html>\n");
    page_send(&pg, resp, 302);
    if (resp->status != 302)
        return -1;
    sfm_response_header(resp, "Location", location);
    return 0;
}

/* Sets the UI session cookie to `token`. */
static void set_sid_cookie(sfm_response *resp, const char *token)
{
    char cookie[SFM_TOKEN_MAX + 64];
    snprintf(cookie, sizeof(cookie), "sid=%s" COOKIE_ATTRS, token);
    sfm_response_header(resp, "Set-Cookie", cookie);
}

/* 302 to a local `target` (already checked with is_local_path), else to the home page. */
static void redirect_local(sfm_response *resp, const char *target)
{
    if (!target || !is_local_path(target)) {
        redirect(resp, HOME_PATH);
        return;
    }
    page loc = {0};
    page_path(&loc, target);
    if (loc.oom || !loc.p)
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
    else
        redirect(resp, loc.p);
    free(loc.p);
}

/* A form body's single value of `name`; *dup is set when the key came more than once. */
static const char *form_one(const sfm_form *f, const char *name, int *dup)
{
    int count = 0;
    const char *v = sfm_form_get(f, name, &count);
    if (count > 1)
        *dup = 1;
    return v;
}

/* Parses a POST's form body, answering 413 or 400 itself when it cannot. 0 or -1. */
static int parse_body(const sfm_request *req, sfm_form *f, sfm_response *resp)
{
    if (req->body_too_large) {
        simple_page(resp, 413, "Request Too Large", NULL, "The request body is too large.");
        return -1;
    }
    int rc = sfm_form_parse(f, req->body, req->body_len);
    if (rc == -ENOMEM) {
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
        return -1;
    }
    if (rc == -E2BIG) {
        simple_page(resp, 413, "Request Too Large", NULL, "The form has too many fields or is too large.");
        return -1;
    }
    if (rc < 0) {
        bad_request(resp, "The form body is not valid application/x-www-form-urlencoded text.");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ / and logout */

/* POST / with "logout": ends the cookie's session and clears the cookie. */
static void logout(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    char buf[SFM_TOKEN_MAX];
    const char *sid = cookie_sid(req, buf);
    if (sid)
        (void)sfm_sessions_revoke(app->sessions, sid); /* an unknown one is already gone */
    if (redirect(resp, "/") == 0)
        sfm_response_header(resp, "Set-Cookie", "sid=; Max-Age=0" COOKIE_ATTRS);
}

/* POST /: un and pw (the password alone: UI logins take no security token [SF]). */
static void login_post(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    sfm_form f = {0};
    if (parse_body(req, &f, resp) < 0)
        goto done;
    if (sfm_form_get(&f, "logout", NULL)) {
        logout(app, req, resp);
        goto done;
    }
    int dup = 0;
    const char *un = form_one(&f, "un", &dup);
    const char *pw = form_one(&f, "pw", &dup);
    const char *start = form_one(&f, "startURL", &dup);
    if (dup) {
        bad_request(resp, "A form field came more than once.");
        goto done;
    }
    if (!un)
        un = "";
    if (!pw)
        pw = "";

    long user = -1;
    enum sfm_login_check check = sfm_auth_password(req->snap, un, pw, 1, &user);
    if (!sfm_auth_login(app, req, SFM_KIND_UI, SFM_SHAPE_UI, un, user, check, 0, resp)) {
        if (check != SFM_LOGIN_OK) {
            /* Row 4: auth.c rendered the bare form; put the org and startURL back in. */
            login_form lf = {.org_name = req->snap->org->name,
                             .action = "/",
                             .username = un,
                             .error = 1,
                             .start_url = start};
            login_page(resp, &lf);
        }
        goto done;
    }

    sfm_session info = {0};
    snprintf(info.user_id, sizeof(info.user_id), "%s", req->snap->org->users[user].id);
    snprintf(info.username, sizeof(info.username), "%s", req->snap->org->users[user].username);
    info.issued_ms = sfm_auth_now_ms();
    char token[SFM_TOKEN_MAX];
    if (sfm_sessions_issue(app->sessions, SFM_TOKEN_ACCESS, &info, NULL, info.issued_ms, token) < 0) {
        sfm_response_set(resp, 500, "text/plain", "could not issue a session\n", 26);
        goto done;
    }
    redirect_local(resp, start);
    if (resp->status == 302)
        set_sid_cookie(resp, token);
    else
        (void)sfm_sessions_revoke(app->sessions, token);
done:
    no_cache(resp);
    sfm_form_free(&f);
}

void sfm_api_ui_login(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (is_method(req, "POST")) {
        login_post(app, req, resp);
        return;
    }
    if (!is_get(req)) {
        method_not_allowed(resp, "GET, HEAD, POST");
        return;
    }
    const char *start = query_get(req, "startURL");
    login_form lf = {.org_name = req->snap->org->name, .action = "/", .start_url = start};
    login_page(resp, &lf);
    no_cache(resp);
}

/* ------------------------------------------------------------ home and frontdoor */

void sfm_api_ui_home(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (!is_get(req)) {
        method_not_allowed(resp, "GET, HEAD");
        return;
    }
    char buf[SFM_TOKEN_MAX];
    sfm_caller caller;
    if (!sfm_auth_call(app, req, SFM_KIND_UI, SFM_SHAPE_UI, cookie_sid(req, buf), SFM_AUTH_NO_COUNT, &caller,
                       resp)) {
        no_cache(resp);
        return;
    }

    const sfm_org *org = req->snap->org;
    const sfm_cert_info *ci = req->peer->cert;
    page pg = {0};
    page_head(&pg, "Home | Salesforce");
    page_add(&pg, "<h1>Logged in</h1>\n<dl>\n<dt>Username</dt><dd id=\"username\">");
    page_esc(&pg, caller.fx->username);
    page_add(&pg, "</dd>\n<dt>User ID</dt><dd id=\"userId\">");
    page_esc(&pg, caller.fx->id);
    page_add(&pg, "</dd>\n<dt>Organization</dt><dd id=\"orgName\">");
    page_esc(&pg, org->name);
    page_add(&pg, "</dd>\n<dt>Organization ID</dt><dd id=\"orgId\">");
    page_esc(&pg, org->id);
    page_add(&pg, "</dd>\n<dt>Profile</dt><dd id=\"profile\">");
    page_esc(&pg, org->profiles[caller.view->profile].name);
    page_add(&pg, "</dd>\n<dt>Listener</dt><dd id=\"listener\">");
    page_esc(&pg, sfm_listener_name(req->peer->listener));
    page_add(&pg, "</dd>\n<dt>Client certificate</dt><dd id=\"clientCertificate\">");
    if (ci) {
        page_add(&pg, "presented: ");
        page_esc(&pg, ci->subject);
    } else {
        page_add(&pg, "none");
    }
    page_add(&pg, "</dd>\n</dl>\n<form method=\"post\" action=\"/\">\n");
    page_hidden(&pg, "logout", "1");
    page_add(&pg, "<input class=\"button\" type=\"submit\" id=\"logout\" value=\"Log Out\">\n</form>\n");
    page_foot(&pg);
    page_send(&pg, resp, 200);
    no_cache(resp);
}

void sfm_api_ui_frontdoor(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    if (!is_get(req)) {
        method_not_allowed(resp, "GET, HEAD");
        return;
    }
    sfm_caller caller;
    const char *sid = query_get(req, "sid");
    if (sfm_auth_call(app, req, SFM_KIND_UI, SFM_SHAPE_UI, sid, SFM_AUTH_NO_COUNT, &caller, resp)) {
        /* The session becomes the browser's: the same token, now in the cookie. */
        redirect_local(resp, query_get(req, "retURL"));
        if (resp->status == 302)
            set_sid_cookie(resp, sid);
    }
    no_cache(resp);
}

/* ------------------------------------------------------------ OAuth authorize */

/* The authorize request's parameters: the form's for a POST (falling back to the query), else the query's. */
typedef struct authz_params {
    const char *response_type, *client_id, *redirect_uri, *state;
} authz_params;

static const char *authz_param(const sfm_request *req, const sfm_form *f, const char *name, int *dup)
{
    const char *v = f ? form_one(f, name, dup) : NULL;
    return v ? v : query_get(req, name);
}

/* redirect_uri + '?' or '&' + `query` (already encoded): the callback's 302. */
static void redirect_callback(sfm_response *resp, const char *redirect_uri, const page *query)
{
    page loc = {0};
    page_add(&loc, redirect_uri);
    page_add(&loc, strchr(redirect_uri, '?') ? "&" : "?");
    page_add(&loc, query->p ? query->p : "");
    if (loc.oom || query->oom || !loc.p)
        sfm_response_set(resp, 500, "text/plain", "out of memory\n", 14);
    else
        redirect(resp, loc.p);
    free(loc.p);
}

/*
 * Checks client_id and redirect_uri, which Salesforce reports on its own
 * error page (400 here [emu status]) because the redirect_uri is not yet
 * trusted, then response_type, reported to the trusted redirect_uri [SF:
 * "the authorizing server sends an error to the callback URL"]. Returns the
 * app, or NULL once `resp` holds the refusal (recorded).
 */
static const sfm_connected_app *authz_check(const sfm_app *app, const sfm_request *req,
                                            const authz_params *ap, sfm_response *resp)
{
    const sfm_connected_app *ca = sfm_org_find_app(req->snap->org, ap->client_id);
    if (!ca) {
        sfm_auth_refuse(app, req, NULL, "INVALID_CLIENT_ID", "Failed: Invalid client identifier", resp);
        simple_page(resp, 400, "OAuth Error", "error", ERR_CLIENT_ID);
        sfm_response_header(resp, "X-Sfmtls-Reason", "INVALID_CLIENT_ID"); /* as every denial (SPEC 4) */
        return NULL;
    }
    if (!ap->redirect_uri || !ca->callback_url || strcmp(ap->redirect_uri, ca->callback_url) != 0) {
        sfm_auth_refuse(app, req, NULL, "REDIRECT_URI_MISMATCH", "Failed: Invalid Callback URL", resp);
        simple_page(resp, 400, "OAuth Error", "error", ERR_REDIRECT);
        sfm_response_header(resp, "X-Sfmtls-Reason", "REDIRECT_URI_MISMATCH");
        return NULL;
    }
    if (!ap->response_type || strcmp(ap->response_type, "code") != 0) {
        sfm_auth_refuse(app, req, NULL, "UNSUPPORTED_RESPONSE_TYPE", "Failed: Unsupported response type",
                        resp);
        page q = {0};
        page_add(&q, "error=unsupported_response_type&error_description=response%20type%20not%20supported");
        if (ap->state) {
            page_add(&q, "&state=");
            page_urlenc(&q, ap->state);
        }
        redirect_callback(resp, ap->redirect_uri, &q);
        free(q.p);
        sfm_response_header(resp, "X-Sfmtls-Reason", "UNSUPPORTED_RESPONSE_TYPE");
        return NULL;
    }
    return ca;
}

/* The authorize request's login: a code for the user, sent to the callback. */
static void authz_login(const sfm_app *app, const sfm_request *req, const sfm_connected_app *ca,
                        const authz_params *ap, const char *un, const char *pw, sfm_response *resp)
{
    long user = -1;
    enum sfm_login_check check = sfm_auth_password(req->snap, un, pw, 1, &user);
    if (!sfm_auth_login(app, req, SFM_KIND_UI, SFM_SHAPE_UI, un, user, check, 0, resp)) {
        if (check != SFM_LOGIN_OK) {
            login_form lf = {.org_name = req->snap->org->name,
                             .action = AUTHORIZE,
                             .username = un,
                             .error = 1,
                             .app_name = ca->name,
                             .client_id = ap->client_id,
                             .redirect_uri = ap->redirect_uri,
                             .state = ap->state};
            login_page(resp, &lf);
        }
        return;
    }
    /* No approval page: the app counts as approved by the admin [emu]. */
    sfm_session info = {0};
    snprintf(info.user_id, sizeof(info.user_id), "%s", req->snap->org->users[user].id);
    snprintf(info.username, sizeof(info.username), "%s", req->snap->org->users[user].username);
    snprintf(info.client_id, sizeof(info.client_id), "%s", ca->consumer_key);
    snprintf(info.redirect_uri, sizeof(info.redirect_uri), "%s", ap->redirect_uri);
    info.issued_ms = sfm_auth_now_ms();
    char code[SFM_TOKEN_MAX];
    if (strlen(ca->consumer_key) >= sizeof(info.client_id) ||
        strlen(ap->redirect_uri) >= sizeof(info.redirect_uri) ||
        sfm_sessions_issue(app->sessions, SFM_TOKEN_CODE, &info, NULL, info.issued_ms, code) < 0) {
        sfm_response_set(resp, 500, "text/plain", "could not issue an authorization code\n", 38);
        return;
    }
    page q = {0};
    page_add(&q, "code=");
    page_urlenc(&q, code);
    if (ap->state) {
        page_add(&q, "&state=");
        page_urlenc(&q, ap->state);
    }
    redirect_callback(resp, ap->redirect_uri, &q);
    free(q.p);
}

void sfm_api_oauth_authorize(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    int post = is_method(req, "POST");
    if (!post && !is_get(req)) {
        method_not_allowed(resp, "GET, HEAD, POST");
        return;
    }
    sfm_form f = {0};
    if (post && parse_body(req, &f, resp) < 0)
        goto done;
    int dup = 0;
    authz_params ap = {
        .response_type = authz_param(req, post ? &f : NULL, "response_type", &dup),
        .client_id = authz_param(req, post ? &f : NULL, "client_id", &dup),
        .redirect_uri = authz_param(req, post ? &f : NULL, "redirect_uri", &dup),
        .state = authz_param(req, post ? &f : NULL, "state", &dup),
    };
    const char *un = post ? form_one(&f, "un", &dup) : NULL;
    const char *pw = post ? form_one(&f, "pw", &dup) : NULL;
    if (dup) {
        bad_request(resp, "A form field came more than once.");
        goto done;
    }
    const sfm_connected_app *ca = authz_check(app, req, &ap, resp);
    if (!ca)
        goto done;
    if (un) {
        authz_login(app, req, ca, &ap, un, pw ? pw : "", resp);
    } else {
        /* GET, or a POST of the authorize request itself: the login form. */
        login_form lf = {.org_name = req->snap->org->name,
                         .action = AUTHORIZE,
                         .app_name = ca->name,
                         .client_id = ap.client_id,
                         .redirect_uri = ap.redirect_uri,
                         .state = ap.state};
        login_page(resp, &lf);
    }
done:
    no_cache(resp);
    sfm_form_free(&f);
}
