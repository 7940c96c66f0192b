/*
 * Unit tests of server/api/soap.c: the partner SOAP endpoint called as a
 * handler, with a hand-built app (the bundled fixture's org, an in-memory
 * login history, a session table) and request values. They cover the
 * reading of the envelope (prefixes, default namespaces, unqualified
 * children, the SessionHeader), the refusals of the parse (DOCTYPE and
 * entity bombs, bad XML, no Body, no operation, nesting, oversized texts),
 * the version in the path and what each answer looks like. Every answer
 * body is checked to be well-formed XML with expat. Each case is named
 * test_soap_<claim>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <expat.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "support.h"

#define T_FIXTURE SFMTLS_SOURCE_DIR "/fixtures/default-org.json"
#define T_ORG_ERR 16384
#define T_V       "/services/Soap/u/64.0"

#define ENV_OPEN  "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
#define ENV_CLOSE "</soapenv:Envelope>"

typedef struct tenv {
    sfm_org *org;
    sfm_snapshot snap;
    sfm_store *store;
    sfm_history *history;
    sfm_sessions *sessions;
    sfm_records *records;
    sfm_api_usage usage;
    sfm_app app;
    sfm_peer peer;
    sfm_response resp;
} tenv;

/* The app on the org of `fixture`. */
static tenv *tenv_new(const char *fixture)
{
    static char err[T_ORG_ERR];
    tenv *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    if (sfm_org_load(&t->org, fixture, err, sizeof(err)) != 0)
        fail_msg("%s: %s", fixture, err);
    /* The snapshot of the fixture with no runtime change (state.c builds the same). */
    t->snap.org = t->org;
    t->snap.users = calloc(t->org->n_users, sizeof(*t->snap.users));
    assert_non_null(t->snap.users);
    for (size_t i = 0; i < t->org->n_users; i++) {
        const sfm_fx_user *u = &t->org->users[i];
        sfm_user_view *v = &t->snap.users[i];
        v->profile = u->profile;
        v->permsets = u->permsets;
        v->n_permsets = u->n_permsets;
        v->active = u->active;
        v->perms = t->org->profiles[u->profile].bits;
        for (size_t k = 0; k < u->n_permsets; k++)
            v->perms |= t->org->permsets[u->permsets[k]].bits;
    }
    t->store = t_store_open(NULL);
    assert_int_equal(sfm_history_new(&t->history, t->store, 1000), 0);
    assert_int_equal(sfm_sessions_new(&t->sessions, t->org->id, 7200), 0);
    assert_int_equal(sfm_records_new(&t->records, t->org), 0);
    t->usage.max = 15000;
    t->app.history = t->history;
    t->app.mutual_auth_failed_status = 401;
    t->app.sessions = t->sessions;
    t->app.records = t->records;
    t->app.usage = &t->usage;
    t->app.session_timeout = 7200;
    snprintf(t->app.instance_url, sizeof(t->app.instance_url), "https://localhost:8444");
    snprintf(t->app.mtls_url, sizeof(t->app.mtls_url), "https://localhost:8443");
    t->peer.listener = SFM_LISTENER_STANDARD;
    snprintf(t->peer.remote_addr, sizeof(t->peer.remote_addr), "127.0.0.1");
    return t;
}

static int setup(void **state)
{
    *state = tenv_new(T_FIXTURE);
    return 0;
}

static int teardown(void **state)
{
    tenv *t = *state;
    sfm_response_cleanup(&t->resp);
    sfm_records_free(t->records);
    sfm_sessions_free(t->sessions);
    sfm_history_free(t->history);
    sfm_store_close(t->store);
    free(t->snap.users);
    sfm_org_unref(t->org);
    free(t);
    return 0;
}

/* POSTs (or `method`s) `body` to `path`; the answer is in t->resp, and its body must be well-formed XML. */
static const char *call(tenv *t, const char *method, const char *path, const char *body)
{
    sfm_request req = {
        .peer = &t->peer,
        .snap = &t->snap,
        .method = method,
        .path = path,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    sfm_response_cleanup(&t->resp);
    memset(&t->resp, 0, sizeof(t->resp));
    sfm_api_soap(&t->app, &req, &t->resp);
    assert_non_null(t->resp.body);
    /* The body as a string (responses are not NUL-terminated by contract). */
    char *text = malloc(t->resp.body_len + 1);
    assert_non_null(text);
    memcpy(text, t->resp.body, t->resp.body_len);
    text[t->resp.body_len] = '\0';
    free(t->resp.body);
    t->resp.body = text;

    XML_Parser xp = XML_ParserCreateNS(NULL, ' ');
    assert_non_null(xp);
    if (XML_Parse(xp, text, (int)t->resp.body_len, XML_TRUE) != XML_STATUS_OK)
        fail_msg("answer is not well-formed XML (%s): %s", XML_ErrorString(XML_GetErrorCode(xp)), text);
    XML_ParserFree(xp);
    return text;
}

static const char *post(tenv *t, const char *body)
{
    return call(t, "POST", T_V, body);
}

static const char *header_of(const sfm_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    }
    return NULL;
}

#define assert_contains(hay, needle)                           \
    do {                                                       \
        if (!strstr((hay), (needle)))                          \
            fail_msg("expected %s\n  in %s", (needle), (hay)); \
    } while (0)

/* The text of the first <name>...</name> in `body` (a static buffer), or NULL. */
static const char *elem(const char *body, const char *name)
{
    static char out[512];
    char open[96], close[96];
    snprintf(open, sizeof(open), "<%s>", name);
    snprintf(close, sizeof(close), "</%s>", name);
    const char *a = strstr(body, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || (size_t)(b - a) >= sizeof(out))
        return NULL;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return out;
}

static void assert_client_fault(tenv *t, const char *body, const char *faultstring)
{
    char want[1024];
    snprintf(want, sizeof(want),
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" ENV_OPEN
             "<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>%s</faultstring>"
             "</soapenv:Fault></soapenv:Body>" ENV_CLOSE,
             faultstring);
    assert_int_equal(t->resp.status, 500);
    assert_string_equal(t->resp.content_type, "text/xml; charset=utf-8");
    assert_string_equal(body, want);
    assert_false(t->resp.recorded); /* http.c records it */
}

/* The partner API fault `code` with detail `detail` (HTTP 500). */
static void assert_api_fault(tenv *t, const char *body, const char *faultcode, const char *code,
                             const char *detail)
{
    char want[256];
    assert_int_equal(t->resp.status, 500);
    assert_contains(body, "xmlns:sf=\"urn:fault.partner.soap.sforce.com\"");
    snprintf(want, sizeof(want), "<faultcode>%s</faultcode><faultstring>%s: ", faultcode, code);
    assert_contains(body, want);
    snprintf(want, sizeof(want), "<detail><sf:%s xsi:type=\"sf:%s\"><sf:exceptionCode>%s</sf:exceptionCode>",
             detail, detail, code);
    assert_contains(body, want);
}

static const char *login_body(const char *username, const char *password)
{
    static char body[1024];
    snprintf(
        body, sizeof(body),
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header/><se:Body>"
        "<login xmlns=\"urn:partner.soap.sforce.com\"><username>%s</username><password>%s</password></login>"
        "</se:Body></se:Envelope>",
        username, password);
    return body;
}

/* Logs admin@acme.test in and copies its sessionId into `sid`. */
static void login_admin(tenv *t, char sid[SFM_TOKEN_MAX])
{
    const char *body = post(t, login_body("admin@acme.test", "Admin-123TKN"));
    assert_int_equal(t->resp.status, 200);
    const char *s = elem(body, "sessionId");
    assert_non_null(s);
    snprintf(sid, SFM_TOKEN_MAX, "%s", s);
}

static const char *session_call(tenv *t, const char *sid, const char *op_xml)
{
    static char body[4096];
    snprintf(body, sizeof(body),
             ENV_OPEN
             "<soapenv:Header><SessionHeader xmlns=\"urn:partner.soap.sforce.com\"><sessionId>%s"
             "</sessionId></SessionHeader></soapenv:Header><soapenv:Body>%s</soapenv:Body>" ENV_CLOSE,
             sid, op_xml);
    return post(t, body);
}

/* ---- login -------------------------------------------------------------------------------- */

static void test_soap_login_in_jsforce_shape_answers_login_response(void **state)
{
    tenv *t = *state;
    const char *body = post(t, login_body("admin@acme.test", "Admin-123TKN"));
    assert_int_equal(t->resp.status, 200);
    assert_string_equal(t->resp.content_type, "text/xml; charset=utf-8");
    assert_true(t->resp.recorded);
    assert_string_equal(header_of(&t->resp, "Cache-Control"),
                        "no-cache,must-revalidate,max-age=0,no-store,private");
    assert_contains(body,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope "
                    "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                    "xmlns=\"urn:partner.soap.sforce.com\" "
                    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><loginResponse>"
                    "<result><metadataServerUrl>https://localhost:8444/services/Soap/m/64.0/00D000000000001"
                    "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
                    "<serverUrl>https://localhost:8444/services/Soap/u/64.0/00D000000000001</serverUrl>"
                    "<sessionId>00D000000000001!");
    char want[128];
    snprintf(want, sizeof(want), "<userId>%s</userId><userInfo>", t->org->users[0].id);
    assert_contains(body, want);
    assert_string_equal(elem(body, "organizationId"), "00D000000000001EAA");
    assert_string_equal(elem(body, "sessionSecondsValid"), "7200");
    assert_string_equal(elem(body, "userName"), "admin@acme.test");
    assert_string_equal(elem(body, "userEmail"), "admin@acme.test");
    assert_string_equal(elem(body, "userFullName"), "Admin");
    assert_string_equal(elem(body, "profileId"), t->org->profiles[t->org->users[0].profile].id);
    assert_contains(body, "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>");
    /* The session works: */
    sfm_session s;
    assert_int_equal(
        sfm_sessions_use(t->sessions, SFM_TOKEN_ACCESS, elem(body, "sessionId"), sfm_auth_now_ms(), &s), 0);
    assert_string_equal(s.username, "admin@acme.test");
    assert_string_equal(s.client_id, "");
}

static void test_soap_login_with_a_prefix_or_unqualified_children_is_the_same_login(void **state)
{
    tenv *t = *state;
    post(t, ENV_OPEN "<soapenv:Body><n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>"
                     "user@acme.test</n1:username><n1:password>User-123</n1:password></n1:login></"
                     "soapenv:Body>" ENV_CLOSE);
    assert_int_equal(t->resp.status, 200);
    /* SoapUI's shape: the operation qualified, its children not. */
    const char *body =
        post(t, "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                "xmlns:urn=\"urn:partner.soap.sforce.com\">"
                "<S:Header></S:Header><S:Body>\n  <urn:login>\n    <username>user@acme.test</username>\n"
                "    <password>User-123</password>\n  </urn:login>\n</S:Body></S:Envelope>");
    assert_int_equal(t->resp.status, 200);
    assert_string_equal(elem(body, "userName"), "user@acme.test");
}

static void test_soap_login_with_the_password_first_is_invalid_login(void **state)
{
    tenv *t = *state;
    const char *body =
        post(t, ENV_OPEN "<soapenv:Body><login xmlns=\"urn:partner.soap.sforce.com\"><password>"
                         "User-123</password><username>user@acme.test</username></login>"
                         "</soapenv:Body>" ENV_CLOSE);
    assert_api_fault(t, body, "sf:INVALID_LOGIN", "INVALID_LOGIN", "LoginFault");
    assert_string_equal(header_of(&t->resp, "X-Sfmtls-Reason"), "INVALID_LOGIN");
}

static void test_soap_login_without_the_token_must_use_security_token(void **state)
{
    tenv *t = *state;
    const char *body = post(t, login_body("admin@acme.test", "Admin-123"));
    assert_api_fault(t, body, "sf:LOGIN_MUST_USE_SECURITY_TOKEN", "LOGIN_MUST_USE_SECURITY_TOKEN",
                     "LoginFault");
}

static void test_soap_login_with_an_oversized_username_is_invalid_login(void **state)
{
    tenv *t = *state;
    char *name = malloc(4097);
    assert_non_null(name);
    memset(name, 'a', 4096);
    name[4096] = '\0';
    char *big = malloc(16384);
    assert_non_null(big);
    snprintf(big, 16384,
             ENV_OPEN "<soapenv:Body><login xmlns=\"urn:partner.soap.sforce.com\"><username>%s</username>"
                      "<password>p</password></login></soapenv:Body>" ENV_CLOSE,
             name);
    const char *body = post(t, big);
    assert_api_fault(t, body, "sf:INVALID_LOGIN", "INVALID_LOGIN", "LoginFault");
    free(big);
    free(name);
}

/* ---- session calls ------------------------------------------------------------------------ */

static void test_soap_get_user_info_reads_the_session_header(void **state)
{
    tenv *t = *state;
    char sid[SFM_TOKEN_MAX], padded[SFM_TOKEN_MAX + 16];
    login_admin(t, sid);
    snprintf(padded, sizeof(padded), "\n   %s\n  ", sid);
    const char *body = session_call(t, padded, "<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>");
    assert_int_equal(t->resp.status, 200);
    assert_true(t->resp.recorded);
    assert_contains(
        body, "<soapenv:Header><LimitInfoHeader><limitInfo><current>1</current><limit>15000</limit>"
              "<type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>"
              "<soapenv:Body><getUserInfoResponse><result><accessibilityMode>false</accessibilityMode>");
    assert_string_equal(elem(body, "userName"), "admin@acme.test");
    assert_contains(body, "</userUiSkin></result></getUserInfoResponse></soapenv:Body></soapenv:Envelope>");
}

static void test_soap_session_calls_without_a_valid_session_are_invalid_session_id(void **state)
{
    tenv *t = *state;
    const char *body =
        session_call(t, "00D000000000001!nope", "<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>");
    assert_api_fault(t, body, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID", "UnexpectedErrorFault");
    assert_string_equal(header_of(&t->resp, "X-Sfmtls-Reason"), "INVALID_SESSION");
    /* No header at all, and a sessionId longer than any token: the same. */
    body =
        post(t, ENV_OPEN
             "<soapenv:Body><getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/></soapenv:Body>" ENV_CLOSE);
    assert_api_fault(t, body, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID", "UnexpectedErrorFault");
    char longsid[600];
    memset(longsid, 'A', sizeof(longsid) - 1);
    longsid[sizeof(longsid) - 1] = '\0';
    body = session_call(t, longsid,
                        "<query xmlns=\"urn:partner.soap.sforce.com\"><queryString>SELECT Id FROM "
                        "Account</queryString></query>");
    assert_api_fault(t, body, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID", "UnexpectedErrorFault");
}

static void test_soap_logout_ends_the_session(void **state)
{
    tenv *t = *state;
    char sid[SFM_TOKEN_MAX];
    login_admin(t, sid);
    const char *body = session_call(t, sid, "<logout xmlns=\"urn:partner.soap.sforce.com\"/>");
    assert_int_equal(t->resp.status, 200);
    assert_contains(body, "<soapenv:Body><logoutResponse/></soapenv:Body>");
    body = session_call(t, sid, "<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>");
    assert_api_fault(t, body, "sf:INVALID_SESSION_ID", "INVALID_SESSION_ID", "UnexpectedErrorFault");
}

static void test_soap_query_errors_are_query_faults_with_row_and_column(void **state)
{
    tenv *t = *state;
    char sid[SFM_TOKEN_MAX];
    login_admin(t, sid);
    const char *body = session_call(t, sid,
                                    "<query xmlns=\"urn:partner.soap.sforce.com\"><queryString>SELEC Id FROM "
                                    "Account</queryString></query>");
    assert_api_fault(t, body, "sf:MALFORMED_QUERY", "MALFORMED_QUERY", "MalformedQueryFault");
    assert_non_null(elem(body, "sf:row"));
    assert_non_null(elem(body, "sf:column"));
    assert_contains(body, "</sf:exceptionMessage><sf:row>");
}

/*
 * A record whose values XML cannot carry as they are: markup characters,
 * a carriage return, C0 controls, U+FFFE; and a number, a boolean, a null.
 * The fixture is the bundled one with one more Account, written into a
 * temporary directory (the connected app's certificate path made absolute).
 */
static void test_soap_query_escapes_every_value_it_echoes(void **state)
{
    t_tmpdb *dir = *state;
    json_error_t jerr;
    json_t *org = json_load_file(T_FIXTURE, 0, &jerr);
    assert_non_null(org);
    json_t *app0 = json_array_get(json_object_get(org, "connectedApps"), 0);
    json_object_set_new(app0, "certificate",
                        json_string(SFMTLS_SOURCE_DIR "/fixtures/certs/partner-jwt.crt"));
    json_t *accounts = json_object_get(json_object_get(org, "records"), "Account");
    json_array_append_new(accounts, json_pack("{s:s, s:b, s:f, s:n}", "Name",
                                              "A&B <x> \"q\" 'a' \r\n\t\x01\x1f\xEF\xBF\xBE end", "IsPartner",
                                              1, "AnnualRevenue", 1.5, "Industry"));
    char path[256];
    snprintf(path, sizeof(path), "%s/org.json", dir->dir);
    assert_int_equal(json_dump_file(org, path, JSON_INDENT(1)), 0);
    json_decref(org);

    tenv *t = tenv_new(path);
    void *tstate = t;
    char sid[SFM_TOKEN_MAX];
    login_admin(t, sid);
    const char *body =
        session_call(t, sid,
                     "<query xmlns=\"urn:partner.soap.sforce.com\"><queryString>SELECT Name, "
                     "IsPartner, AnnualRevenue, Industry FROM Account WHERE Name LIKE 'A&amp;B%'"
                     "</queryString></query>");
    assert_int_equal(t->resp.status, 200);
    assert_contains(body,
                    "<records xsi:type=\"sf:sObject\"><sf:type>Account</sf:type><sf:Id xsi:nil=\"true\"/>"
                    "<sf:Name>A&amp;B &lt;x&gt; &quot;q&quot; &apos;a&apos; &#13;\n\t\xEF\xBF\xBD\xEF\xBF\xBD"
                    "\xEF\xBF\xBD end</sf:Name><sf:IsPartner>true</sf:IsPartner>"
                    "<sf:AnnualRevenue>1.5</sf:AnnualRevenue><sf:Industry xsi:nil=\"true\"/></records>"
                    "<size>1</size>");
    teardown(&tstate);
}

/* ---- the version in the path -------------------------------------------------------------- */

static void test_soap_unknown_version_or_malformed_path_is_unsupported_api_version(void **state)
{
    tenv *t = *state;
    static const char *paths[] = {
        "/services/Soap/u/99.0",
        "/services/Soap/u/abc",
        "/services/Soap/u/",
        "/services/Soap/u/64.0/00D000000000002AAA", /* another org */
        "/services/Soap/u/64.0/00D000000000001/x",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const char *body = call(t, "POST", paths[i], login_body("admin@acme.test", "Admin-123TKN"));
        assert_api_fault(t, body, "sf:UNSUPPORTED_API_VERSION", "UNSUPPORTED_API_VERSION",
                         "UnexpectedErrorFault");
        assert_string_equal(header_of(&t->resp, "X-Sfmtls-Reason"), "NOT_FOUND");
        assert_true(t->resp.recorded);
        /* Whatever the body: a malformed one too. */
        body = call(t, "POST", paths[i], "<oops");
        assert_api_fault(t, body, "sf:UNSUPPORTED_API_VERSION", "UNSUPPORTED_API_VERSION",
                         "UnexpectedErrorFault");
    }
}

static void test_soap_org_id_forms_and_trailing_slash_are_served(void **state)
{
    tenv *t = *state;
    static const char *paths[] = {
        "/services/Soap/u/64.0/",
        "/services/Soap/u/64.0/00D000000000001",
        "/services/Soap/u/64.0/00D000000000001EAA",
        "/services/Soap/u/31.0/00D000000000001/",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        call(t, "POST", paths[i], login_body("user@acme.test", "User-123"));
        assert_int_equal(t->resp.status, 200);
    }
}

/* ---- refusals of the parse ---------------------------------------------------------------- */

static void test_soap_doctype_is_refused_before_any_entity_is_read(void **state)
{
    tenv *t = *state;
    /* A "billion laughs" bomb: refused at the DOCTYPE, so nothing is expanded. */
    const char *bomb =
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
        "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>" ENV_OPEN
        "<soapenv:Body><login xmlns=\"urn:partner.soap.sforce.com\"><username>&lol4;</username>"
        "</login></soapenv:Body>" ENV_CLOSE;
    const char *body = post(t, bomb);
    assert_api_fault(t, body, "UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", "UnexpectedErrorFault");
    assert_contains(body, "DOCTYPE is disallowed");
    assert_false(t->resp.recorded);
    /* An external entity: the same. */
    body = post(t, "<!DOCTYPE x SYSTEM \"file:///etc/passwd\">" ENV_OPEN ENV_CLOSE);
    assert_contains(body, "DOCTYPE is disallowed");
}

static void test_soap_bad_xml_is_unknown_exception_with_the_position(void **state)
{
    tenv *t = *state;
    const char *body = post(t, ENV_OPEN "<soapenv:Body><login></soapenv:Body>" ENV_CLOSE);
    assert_api_fault(t, body, "UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", "UnexpectedErrorFault");
    assert_contains(body, "mismatched tag at line 1, column ");
    /* An undefined entity (no DOCTYPE can define one). */
    body = post(t, ENV_OPEN "<soapenv:Body>&Cl</soapenv:Body>" ENV_CLOSE);
    assert_api_fault(t, body, "UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", "UnexpectedErrorFault");
}

static void test_soap_empty_body_is_premature_end_of_file(void **state)
{
    tenv *t = *state;
    assert_client_fault(t, post(t, ""), "Premature end of file.");
    assert_client_fault(t, post(t, "<?xml version=\"1.0\"?>\n"), "Premature end of file.");
}

static void test_soap_structure_problems_are_client_faults(void **state)
{
    tenv *t = *state;
    assert_client_fault(t, post(t, "<login xmlns=\"urn:partner.soap.sforce.com\"/>"),
                        "Element {urn:partner.soap.sforce.com}login invalid at this location");
    assert_client_fault(
        t, post(t, ENV_OPEN "<soapenv:Header/>" ENV_CLOSE),
        "Element {http://schemas.xmlsoap.org/soap/envelope/}Body is missing from the request.");
    assert_client_fault(t, post(t, ENV_OPEN "<soapenv:Body>  </soapenv:Body>" ENV_CLOSE),
                        "The SOAP Body holds no operation.");
    assert_client_fault(t,
                        post(t,
                             ENV_OPEN "<soapenv:Body><describeGlobal xmlns=\"urn:partner.soap.sforce.com\"/>"
                                      "</soapenv:Body>" ENV_CLOSE),
                        "No operation available for request {urn:partner.soap.sforce.com}describeGlobal");
    /* The enterprise API's namespace is not this endpoint's; what is echoed is escaped. */
    assert_client_fault(t,
                        post(t, ENV_OPEN "<soapenv:Body><login xmlns=\"urn:a&amp;b&lt;&quot;&apos;\"/>"
                                         "</soapenv:Body>" ENV_CLOSE),
                        "No operation available for request {urn:a&amp;b&lt;&quot;&apos;}login");
}

static void test_soap_deep_nesting_is_refused(void **state)
{
    tenv *t = *state;
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof(req),
                                ENV_OPEN "<soapenv:Body><login xmlns=\"urn:partner.soap.sforce.com\">");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "<a>");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "</a>");
    snprintf(req + n, sizeof(req) - n, "</login></soapenv:Body>" ENV_CLOSE);
    assert_client_fault(t, post(t, req), "The request nests elements too deeply.");
}

static void test_soap_other_methods_are_405(void **state)
{
    tenv *t = *state;
    const char *body = call(t, "GET", T_V, NULL);
    assert_int_equal(t->resp.status, 405);
    assert_string_equal(header_of(&t->resp, "Allow"), "POST");
    assert_contains(body, "<faultcode>soapenv:Client</faultcode>");
    assert_false(t->resp.recorded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soap_login_in_jsforce_shape_answers_login_response, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_soap_login_with_a_prefix_or_unqualified_children_is_the_same_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_login_with_the_password_first_is_invalid_login, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_login_without_the_token_must_use_security_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_login_with_an_oversized_username_is_invalid_login, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_get_user_info_reads_the_session_header, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_soap_session_calls_without_a_valid_session_are_invalid_session_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_logout_ends_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_query_errors_are_query_faults_with_row_and_column, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_query_escapes_every_value_it_echoes, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(
            test_soap_unknown_version_or_malformed_path_is_unsupported_api_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_org_id_forms_and_trailing_slash_are_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_doctype_is_refused_before_any_entity_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_bad_xml_is_unknown_exception_with_the_position, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soap_empty_body_is_premature_end_of_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_structure_problems_are_client_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_deep_nesting_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soap_other_methods_are_405, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
