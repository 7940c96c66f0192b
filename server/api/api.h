/*
 * api: the handlers. Each takes the app, the request value and fills the
 * response value (ARCHITECTURE rule 2).
 */
#ifndef SFM_API_H
#define SFM_API_H

#include "../http.h"
#include "../policy.h"

/* admin.c: /__admin/ */
/** Everything under /__admin/ (SPEC section 6), token check included. */
void sfm_api_admin(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /__admin/health: {"status":"ok","historyDropped":N}. */
void sfm_api_health(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /__admin/tls-info: what the server saw of the caller's connection (SPEC section 6). */
void sfm_api_tls_info(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* rest.c: /services/data/ */
/** GET /services/data/: the fixture's API versions, no authentication. */
void sfm_api_versions(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** The Salesforce-shaped 404: [{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}].
 */
void sfm_api_not_found(sfm_response *resp);
/** REST error array with one entry. */
void sfm_api_rest_error(sfm_response *resp, int status, const char *error_code, const char *message);
/** Everything under /services/data/v<NN.N>/ and /services/data/latest/ (SPEC section 5). */
void sfm_api_rest(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* oauth.c: /services/oauth2/ and /id/ */
/** POST /services/oauth2/token: every grant of SPEC section 5. */
void sfm_api_oauth_token(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** POST (or GET) /services/oauth2/revoke with token=. */
void sfm_api_oauth_revoke(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /services/oauth2/userinfo. */
void sfm_api_oauth_userinfo(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /id/{orgId}/{userId}. */
void sfm_api_identity(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* soap.c: /services/Soap/u/ */
/** POST /services/Soap/u/{version}[/{orgId}]: login, getUserInfo, query. */
void sfm_api_soap(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* ui.c: the pages a browser sees */
/** GET / (the login form) and POST / (un, pw). */
void sfm_api_ui_login(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /secur/frontdoor.jsp?sid=. */
void sfm_api_ui_frontdoor(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /home/home.jsp: the page a logged-in UI user lands on. */
void sfm_api_ui_home(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET and POST /services/oauth2/authorize: the web-server flow's login, then a redirect with a code. */
void sfm_api_oauth_authorize(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** The login page again after a failed UI login (row 4 for the UI): Salesforce's message, status 200. */
void sfm_api_ui_login_error(sfm_response *resp, const char *username);

/* pages.c: /cacerts.jsp */
/** GET /cacerts.jsp: the trust store's roots. */
void sfm_api_cacerts(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* auth.c: sessions, logins and the policy for every API surface */

/** How a surface shapes its answers, denials included (SPEC section 4's answer column). */
enum sfm_shape {
    SFM_SHAPE_REST,     /* JSON error arrays */
    SFM_SHAPE_SOAP,     /* SOAP faults, HTTP 500 */
    SFM_SHAPE_OAUTH,    /* /services/oauth2/token: {"error","error_description"}, 400 */
    SFM_SHAPE_IDENTITY, /* userinfo and /id/: a bad token is 403 "Bad_OAuth_Token" */
    SFM_SHAPE_UI,       /* HTML pages */
};

/* Flags of sfm_auth_call and sfm_auth_login. */
#define SFM_AUTH_VERSION_UNKNOWN 1 /* the path names an API version the org does not serve (row 2) */
#define SFM_AUTH_VIEW_SETUP      2 /* the resource needs "View Setup and Configuration" (row 11) */
#define SFM_AUTH_NO_COUNT        4 /* not an API call for the daily counter (userinfo, identity, UI) */

/** The user an allowed call acts as. Pointers are into req->snap. */
typedef struct sfm_caller {
    long user; /* index into snap->org->users */
    const sfm_fx_user *fx;
    const sfm_user_view *view;
    sfm_session session;
    char token[SFM_TOKEN_MAX];
} sfm_caller;

/**
 * The token of "Authorization: Bearer <token>" or "Authorization: OAuth
 * <token>" (SPEC section 5), copied into `buf`; NULL when there is none.
 */
const char *sfm_auth_bearer(const sfm_request *req, char buf[SFM_TOKEN_MAX]);

/**
 * A call made with a session: REST, SOAP session calls, userinfo, identity,
 * the UI behind a login (`kind` SFM_KIND_API or SFM_KIND_UI). Looks `token`
 * up (NULL: none), runs the policy with the connection and the session's
 * user, puts the decision in the login history, and counts an allowed API
 * call in the daily counter. Returns 1 and fills *caller when the call is
 * allowed; returns 0 when `resp` holds the denial, shaped for `shape`, with
 * its X-Sfmtls-Reason header.
 */
int sfm_auth_call(const sfm_app *app, const sfm_request *req, enum sfm_request_kind kind,
                  enum sfm_shape shape, const char *token, int flags, sfm_caller *caller, sfm_response *resp);

/**
 * The snapshot's index of the user a token was issued to: the same username
 * and id (a reload may have removed or replaced the user), active or not;
 * -1 when that user is gone.
 */
long sfm_auth_session_user(const sfm_snapshot *snap, const sfm_session *s);

/**
 * Compares a login's credentials with the snapshot. `password` is the
 * password with the user's security token appended when the user has one
 * [SF]; `ui` logins take the password alone. *user is the user's index, or
 * -1 when unknown.
 */
enum sfm_login_check sfm_auth_password(const sfm_snapshot *snap, const char *username, const char *password,
                                       int ui, long *user);

/**
 * A login: an OAuth grant, SOAP login or the UI login form (`kind`
 * SFM_KIND_LOGIN, or SFM_KIND_UI for the UI and OAuth authorize). Runs the
 * policy with the credentials' outcome `check` for `user` (-1: unknown; then
 * `username` is what was sent), records it, and returns 1 when the caller
 * may issue the session; 0 when `resp` holds the denial shaped for `shape`.
 */
int sfm_auth_login(const sfm_app *app, const sfm_request *req, enum sfm_request_kind kind,
                   enum sfm_shape shape, const char *username, long user, enum sfm_login_check check,
                   int flags, sfm_response *resp);

/**
 * Records a request refused before the policy could judge it (an OAuth
 * client or protocol error: unknown client_id, bad assertion, ...), with
 * `reason` and `status` as the login history shows them (static strings).
 * `username` may be NULL. The handler fills `resp` itself.
 */
void sfm_auth_refuse(const sfm_app *app, const sfm_request *req, const char *username, const char *reason,
                     const char *status, sfm_response *resp);

/** The policy input a request starts from: its connection, its snapshot, and `kind`. */
sfm_policy_input sfm_auth_policy_input(const sfm_request *req, enum sfm_request_kind kind);

/** One login-history entry, as the callers below describe it. */
typedef struct sfm_auth_entry {
    enum sfm_listener listener;
    const char *remote_addr;
    const char *method; /* NULL: a refused handshake (no endpoint) */
    const char *path;
    const char *username; /* NULL: none */
    const sfm_cert_info *cert;
    int allowed;
    const char *reason;
    const char *status;
} sfm_auth_entry;

/** Adds one entry to the login history. */
void sfm_auth_record(const sfm_app *app, const sfm_auth_entry *a);
/** Records the policy's decision `d` on `req` (and marks `resp` recorded); logs a denial. */
void sfm_auth_record_decision(const sfm_app *app, const sfm_request *req, const char *username,
                              const sfm_decision *d, enum sfm_login_check login, sfm_response *resp);

/** Epoch milliseconds, the clock every session and history time uses. */
int64_t sfm_auth_now_ms(void);

/** API calls made today and the daily maximum (limits' DailyApiRequests, Sforce-Limit-Info). */
void sfm_auth_usage(const sfm_app *app, long *used, long *max);

/** A SOAP fault (HTTP 500, namespace urn:fault.partner.soap.sforce.com [obs]): faultcode "sf:<code>",
 *  faultstring "<code>: <message>", and a detail of `detail_type` ("UnexpectedErrorFault", "LoginFault",
 *  "InvalidQueryLocatorFault", "MalformedQueryFault", "InvalidSObjectFault", "InvalidFieldFault", ...). */
void sfm_api_soap_fault(sfm_response *resp, const char *code, const char *message, const char *detail_type);
/** An OAuth error: 400 {"error","error_description"}, Cache-Control: no-store [SF]. */
void sfm_api_oauth_error(sfm_response *resp, const char *error, const char *description);

/* pages.c: HTML */
/** `text` with & < > " ' escaped for HTML and XML text or attributes (malloc; NULL when out of memory). */
char *sfm_api_escape(const char *text);
/** The Insufficient Privileges page (SPEC section 4 row 10): 403 text/html. `reason_code` static. */
void sfm_api_insufficient_privileges(sfm_response *resp, const char *reason_code);
/** The Certificate Error page (SPEC section 5) with `sentence`, status 400.
 *  `reason_code` must be a static string: the response keeps it. */
void sfm_api_certificate_error(sfm_response *resp, const char *reason_code, const char *sentence);

#endif
