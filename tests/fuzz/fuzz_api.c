/*
 * fuzz_api: the Salesforce API surfaces (SPEC sections 4 and 5) through
 * sfm_http_handle, as bridge.c calls it: server/http.c's routes,
 * server/api/{auth,oauth,soap,rest,soql,form,ui,pages}.c, server/records.c
 * and server/sessions.c, over one state built once (the bundled fixture, its
 * demo certificate issued by a fresh dev CA, an in-memory store and login
 * history, a session table, the records).
 *
 * Every input starts from the same place, so that it replays the same way on
 * its own: the records go back to the fixture's, every session ends, the
 * daily API counter and the login history are emptied, and fresh tokens are
 * issued for the placeholders below.
 *
 * Input: up to 8 requests separated by lines "~~~". A request is
 *
 *   METHOD TARGET [PEER] [big]\n
 *   Name: value\n          (headers, up to an empty line)
 *   \n
 *   BODY...
 *
 * TARGET is the path with an optional "?name=value&..." query, both
 * percent-decoded as libmicrohttpd decodes them ('+' is a space in the
 * query; a value-less name has the value ""). PEER is the connection:
 * "mtls" (the default: the mTLS listener, no client certificate), "demo"
 * (mTLS with the fixture's demo certificate: verified and uploaded), "other"
 * (mTLS, a verified certificate that is not uploaded), "expired" (mTLS, a
 * certificate that failed layer 1) or "std" (the standard listener). "big"
 * marks the body as over the 2 MiB limit (what bridge.c does then). These
 * placeholders are replaced anywhere in a request: @A@, @M@, @P@, @U@, @N@
 * access tokens of admin@, mtls@, api@, user@ and noapi@acme.test; @R@ a
 * refresh token of admin@ for ck-partner; @C@ an authorization code of
 * admin@ for ck-partner and its callback URL; @J@ a JWT bearer assertion for
 * mtls@acme.test signed with fixtures/certs/partner-jwt.key, and @K@, @W@,
 * @E@, @X@, @Y@ signed ones for the other paths past the signature (an
 * audience array, a wrong audience, expired, no exp, an unknown user: see
 * k_jwts); @O@ the org id;
 * @1@ and @2@ the user ids of admin@ and mtls@; @D@ the first Account's id;
 * @L@ the id the last 201 of this input answered.
 *
 * Every answer must be well-formed: a status from 200 to 599, a content
 * type, a body as long as body_len says and without NUL, printable header
 * names and values, a Location on a 302; JSON that parses whenever the type
 * says JSON (empty only for a 204), and REST errors shaped
 * [{"message","errorCode"}] (a query's 400 one of MALFORMED_QUERY,
 * INVALID_FIELD, INVALID_TYPE, framed with "ERROR at Row:R:Column:C" as
 * Salesforce frames them); XML that is well-formed (expat); no 500 but a
 * SOAP fault or ui.c's "Redirect Too Long" page (a Location over the
 * response's 2048-byte header values; nothing here runs out of memory); a
 * denial carries X-Sfmtls-Reason. And the login history holds exactly one
 * entry per request outside /__admin/. A broken invariant is an abort().
 * With SFMTLS_FUZZ_TRACE set in the environment, each request and the start
 * of its answer are printed (for writing seeds).
 */
#include "fuzz.h"
#include "server.h"

#include <expat.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/signature.h>

#include "api/api.h"
#include "http.h"
#include "org.h"
#include "peer.h"
#include "state.h"
#include "store.h"

#define MAX_REQUESTS 8
#define SEPARATOR    "\n~~~\n"
#define HISTORY_KEPT 1000
#define FIXTURE      SFMTLS_SOURCE_DIR "/fixtures/default-org.json"
#define METHOD_MAX   64
#define JWT_MAX      2048
#define SFID_BUF     (SFM_SFID_LEN + 1)
#define INSTANCE_URL "https://acme.my.salesforce.com"
#define MTLS_URL     "https://acme.my.salesforce.com:8443"
#define CALLBACK_URL "http://localhost:1717/callback"
#define CLIENT_ID    "ck-partner"
#define SESSION_SECS 7200

enum peer_kind { PEER_MTLS, PEER_DEMO, PEER_OTHER, PEER_EXPIRED, PEER_STD, N_PEERS };

static const char *const k_peer_names[N_PEERS] = {"mtls", "demo", "other", "expired", "std"};

/* The users whose access tokens the placeholders stand for, by placeholder letter. */
static const struct {
    char letter;
    const char *username;
} k_token_users[] = {
    {'A', "admin@acme.test"}, {'M', "mtls@acme.test"},  {'P', "api@acme.test"},
    {'U', "user@acme.test"},  {'N', "noapi@acme.test"},
};
#define N_TOKEN_USERS (sizeof(k_token_users) / sizeof(k_token_users[0]))

/* The JWT bearer assertions of the placeholders: the Partner app's, signed with its key, each taking
 * one path past the signature check. */
static const struct {
    char letter;
    const char *claims;
} k_jwts[] = {
    /* mtls@, valid until 2100 */
    {'J', "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"mtls@acme.test\",\"aud\":\"https://login.salesforce.com\","
          "\"exp\":4102444800}"},
    /* admin@, the audience in an array with a trailing slash */
    {'K',
     "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"admin@acme.test\",\"aud\":[\"https://x.example\",\"" INSTANCE_URL
     "/\"],\"exp\":4102444800.5}"},
    /* another audience */
    {'W', "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"admin@acme.test\",\"aud\":\"https://evil.example\","
          "\"exp\":4102444800}"},
    /* expired in 2001 */
    {'E',
     "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"admin@acme.test\",\"aud\":\"" MTLS_URL "\",\"exp\":1000000000}"},
    /* no exp */
    {'X', "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"admin@acme.test\",\"aud\":\"https://login.salesforce.com\"}"},
    /* a user the org does not have */
    {'Y', "{\"iss\":\"" CLIENT_ID "\",\"sub\":\"ghost@acme.test\",\"aud\":\"https://login.salesforce.com\","
          "\"exp\":4102444800}"},
};
#define N_JWTS (sizeof(k_jwts) / sizeof(k_jwts[0]))

static struct {
    int ready;
    sfm_fuzz_server srv;
    sfm_peer *peers[N_PEERS];
    int trace; /* SFMTLS_FUZZ_TRACE */
    char org_id[SFID_BUF], admin_id[SFID_BUF], mtls_id[SFID_BUF], account_id[SFID_BUF];
    char jwts[N_JWTS][JWT_MAX];
    /* This input's tokens and the last created id. */
    char tokens[N_TOKEN_USERS][SFM_TOKEN_MAX];
    char refresh[SFM_TOKEN_MAX], code[SFM_TOKEN_MAX];
    char last[SFID_BUF];
} g;

/* ---- setup ---------------------------------------------------------------------------------- */

static void teardown(void)
{
    for (int i = 0; i < N_PEERS; i++)
        sfm_peer_unref(g.peers[i]);
    sfm_fuzz_server_free(&g.srv);
}

/* What layer 1 would have made of a client's leaf `der` (see tls.c's cert_info_get). */
static sfm_cert_info *cert_info(const unsigned char *der, size_t len, unsigned flags)
{
    sfm_pki_facts f;
    if (sfm_pki_facts_of(der, len, &f) != 0)
        sfm_fuzz_die("sfm_pki_facts_of", "a setup certificate");
    size_t sl = strlen(f.subject) + 1, il = strlen(f.issuer) + 1;
    sfm_cert_info *ci = malloc(sizeof(*ci) + len + sl + il);
    if (!ci)
        sfm_fuzz_die("malloc", NULL);
    atomic_init(&ci->refs, 1);
    ci->flags = flags;
    ci->reason = sfm_l1_reason_of(flags);
    ci->chain_len = 2;
    ci->der_len = len;
    memcpy(ci->der, der, len);
    memcpy(ci->fp, f.fp, sizeof(ci->fp));
    memcpy(ci->sha256, f.sha256, sizeof(ci->sha256));
    char *names = (char *)ci->der + len;
    memcpy(names, f.subject, sl);
    memcpy(names + sl, f.issuer, il);
    ci->subject = names;
    ci->issuer = names + sl;
    return ci;
}

/* The first certificate of DIR/NAME as DER (caller frees). */
static sfm_der first_cert(const char *dir, const char *name)
{
    size_t len = 0, n = 0;
    char *pem = sfm_fuzz_read(dir, name, &len);
    char err[SFM_PKI_ERR_LEN] = "";
    sfm_der ders[4];
    if (sfm_pki_pem_certs(pem, len, ders, 4, &n, NULL, err) != 0 || n == 0)
        sfm_fuzz_die(name, err);
    sfm_pki_ders_free(ders + 1, n - 1);
    free(pem);
    return ders[0];
}

static sfm_peer *new_peer(enum sfm_listener l, sfm_cert_info *ci)
{
    sfm_peer *p = sfm_peer_new(l, "127.0.0.1", "TLSv1.3", "TLS_AES_128_GCM_SHA256", 0, ci);
    if (!p)
        sfm_fuzz_die("sfm_peer_new", NULL);
    sfm_cert_info_unref(ci); /* the peer holds its own reference */
    return p;
}

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char k_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v =
            (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = k_alpha[(v >> 18) & 63];
        out[o++] = k_alpha[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = k_alpha[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = k_alpha[v & 63];
    }
    out[o] = '\0';
}

/* Signs `claims` with the key: header.claims.signature into out[JWT_MAX]. */
static void sign_jwt(RsaKey *key, WC_RNG *rng, const char *claims, char out[JWT_MAX])
{
    static const char header[] = "{\"alg\":\"RS256\"}";
    char h64[64], c64[512], s64[700], input[600];
    unsigned char sig[512];
    word32 sig_len = sizeof(sig);
    b64url((const unsigned char *)header, sizeof(header) - 1, h64);
    b64url((const unsigned char *)claims, strlen(claims), c64);
    int n = snprintf(input, sizeof(input), "%s.%s", h64, c64);
    if (wc_SignatureGenerate(WC_HASH_TYPE_SHA256, WC_SIGNATURE_TYPE_RSA_W_ENC, (const byte *)input, (word32)n,
                             sig, &sig_len, key, sizeof(*key), rng) != 0)
        sfm_fuzz_die("signing a JWT", claims);
    b64url(sig, sig_len, s64);
    snprintf(out, JWT_MAX, "%s.%s", input, s64);
}

/* The assertions of k_jwts into g.jwts, signed with fixtures/certs/partner-jwt.key. */
static void make_jwts(void)
{
    unsigned char der[4096];
    size_t pem_len = 0;
    char *pem = sfm_fuzz_read(SFMTLS_SOURCE_DIR "/fixtures/certs", "partner-jwt.key", &pem_len);
    int der_len = wc_KeyPemToDer((const unsigned char *)pem, (int)pem_len, der, sizeof(der), NULL);
    free(pem);
    RsaKey key;
    WC_RNG rng;
    word32 idx = 0;
    if (der_len <= 0 || wc_InitRsaKey(&key, NULL) != 0 ||
        wc_RsaPrivateKeyDecode(der, &idx, &key, (word32)der_len) != 0 || wc_InitRng(&rng) != 0)
        sfm_fuzz_die("partner-jwt.key", "not an RSA key");
    for (size_t i = 0; i < N_JWTS; i++)
        sign_jwt(&key, &rng, k_jwts[i].claims, g.jwts[i]);
    wc_FreeRng(&rng);
    wc_FreeRsaKey(&key);
}

static void copy_user_id(const char *username, char out[SFID_BUF])
{
    long u = sfm_org_find_user(g.srv.org, username);
    if (u < 0)
        sfm_fuzz_die("the fixture has no user", username);
    snprintf(out, SFID_BUF, "%s", g.srv.org->users[u].id);
}

/* The id of the fixture's first Account, through the query the API uses. */
static void first_account(void)
{
    sfm_soql *q = NULL;
    sfm_data_error e = {0};
    json_t *res = NULL;
    if (sfm_soql_parse("SELECT Id FROM Account LIMIT 1", &q, &e) != 0 ||
        sfm_records_query(g.srv.records, q, "64.0", &res, &e) != 0)
        sfm_fuzz_die("the first Account", e.message);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(res, "records"), 0), "Id"));
    if (!id)
        sfm_fuzz_die("the first Account", "no Id");
    snprintf(g.account_id, sizeof(g.account_id), "%s", id);
    json_decref(res);
    sfm_soql_free(q);
}

static void setup(void)
{
    sfm_fuzz_server_new(&g.srv, FIXTURE, NULL, 0, "fuzz-admin-token", SESSION_SECS, HISTORY_KEPT);

    /* The connections: the demo certificate (uploaded by the fixture), the CA's own certificate
     * standing for a verified one that is not uploaded, and the demo one failing layer 1. */
    char clients[SFM_FUZZ_PATH_MAX + 16];
    snprintf(clients, sizeof(clients), "%s/clients", g.srv.dir);
    sfm_der demo = first_cert(clients, "demo-client.crt"), other = first_cert(g.srv.dir, "ca.pem");
    g.peers[PEER_MTLS] = new_peer(SFM_LISTENER_MTLS, NULL);
    g.peers[PEER_DEMO] = new_peer(SFM_LISTENER_MTLS, cert_info(demo.der, demo.len, 0));
    g.peers[PEER_OTHER] = new_peer(SFM_LISTENER_MTLS, cert_info(other.der, other.len, 0));
    g.peers[PEER_EXPIRED] = new_peer(SFM_LISTENER_MTLS, cert_info(demo.der, demo.len, SFM_L1_F_EXPIRED));
    g.peers[PEER_STD] = new_peer(SFM_LISTENER_STANDARD, NULL);
    sfm_pki_ders_free(&demo, 1);
    sfm_pki_ders_free(&other, 1);

    snprintf(g.srv.app.instance_url, sizeof(g.srv.app.instance_url), "%s", INSTANCE_URL);
    snprintf(g.srv.app.mtls_url, sizeof(g.srv.app.mtls_url), "%s", MTLS_URL);

    snprintf(g.org_id, sizeof(g.org_id), "%s", g.srv.org->id);
    copy_user_id("admin@acme.test", g.admin_id);
    copy_user_id("mtls@acme.test", g.mtls_id);
    first_account();
    make_jwts();
    g.trace = getenv("SFMTLS_FUZZ_TRACE") != NULL;
    g.ready = 1;
    atexit(teardown);
}

/* ---- each input starts clean ---------------------------------------------------------------- */

static void issue(enum sfm_token_kind kind, const char *username, const char *client_id, const char *redirect,
                  char token[SFM_TOKEN_MAX])
{
    sfm_session info;
    memset(&info, 0, sizeof(info));
    long u = sfm_org_find_user(g.srv.org, username);
    snprintf(info.user_id, sizeof(info.user_id), "%s", g.srv.org->users[u].id);
    snprintf(info.username, sizeof(info.username), "%s", g.srv.org->users[u].username);
    snprintf(info.client_id, sizeof(info.client_id), "%s", client_id);
    snprintf(info.redirect_uri, sizeof(info.redirect_uri), "%s", redirect);
    int64_t now = sfm_auth_now_ms();
    info.issued_ms = now;
    if (sfm_sessions_issue(g.srv.sessions, kind, &info, NULL, now, token) != 0)
        sfm_fuzz_die("sfm_sessions_issue", username);
}

static void start_clean(void)
{
    sfm_fuzz_server_clean(&g.srv);
    for (size_t i = 0; i < N_TOKEN_USERS; i++)
        issue(SFM_TOKEN_ACCESS, k_token_users[i].username, "", "", g.tokens[i]);
    issue(SFM_TOKEN_REFRESH, "admin@acme.test", CLIENT_ID, "", g.refresh);
    issue(SFM_TOKEN_CODE, "admin@acme.test", CLIENT_ID, CALLBACK_URL, g.code);
    snprintf(g.last, sizeof(g.last), "none");
}

/* ---- the request ---------------------------------------------------------------------------- */

/* What placeholder letter `c` stands for, or NULL. */
static const char *placeholder(char c)
{
    for (size_t i = 0; i < N_TOKEN_USERS; i++) {
        if (k_token_users[i].letter == c)
            return g.tokens[i];
    }
    for (size_t i = 0; i < N_JWTS; i++) {
        if (k_jwts[i].letter == c)
            return g.jwts[i];
    }
    switch (c) {
    case 'R': return g.refresh;
    case 'C': return g.code;
    case 'O': return g.org_id;
    case '1': return g.admin_id;
    case '2': return g.mtls_id;
    case 'D': return g.account_id;
    case 'L': return g.last;
    default: return NULL;
    }
}

/* src[0, len) with the placeholders replaced: a new buffer (caller frees) of *out_len bytes, plus a NUL. */
static char *expand(const char *src, size_t len, size_t *out_len)
{
    size_t cap = len + 1, o = 0;
    char *dst = malloc(cap);
    for (size_t i = 0; dst && i < len;) {
        const char *with = NULL;
        if (src[i] == '@' && len - i >= 3 && src[i + 2] == '@')
            with = placeholder(src[i + 1]);
        const char *piece = with ? with : src + i;
        size_t pl = with ? strlen(with) : 1;
        if (o + pl + 1 > cap) {
            cap = (o + pl + 1) * 2;
            char *n = realloc(dst, cap);
            if (!n) {
                free(dst);
                dst = NULL;
                break;
            }
            dst = n;
        }
        memcpy(dst + o, piece, pl);
        o += pl;
        i += with ? 3 : 1;
    }
    if (!dst)
        sfm_fuzz_die("malloc", NULL);
    dst[o] = '\0';
    *out_len = o;
    return dst;
}

/* ---- the answer ----------------------------------------------------------------------------- */

/* Prints the request and its answer, then aborts. */
__attribute__((noreturn)) static void broken(const sfm_request *req, const sfm_response *resp,
                                             const char *why, const char *detail)
{
    int shown = (int)(resp->body_len > 600 ? 600 : resp->body_len);
    fprintf(stderr, "fuzz_api: %s%s%s: %s %.300s answered %d %s: %.*s\n", why, detail ? ": " : "",
            detail ? detail : "", req->method, req->path, resp->status,
            resp->content_type ? resp->content_type : "(no type)", resp->body ? shown : 0,
            resp->body ? resp->body : "");
    abort();
}

static int is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static const char *response_header(const sfm_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers && i < SFM_RESPONSE_MAX_HEADERS; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    }
    return NULL;
}

/* Well-formed XML, by expat (the answers declare no DTD). */
static int xml_ok(const char *body, size_t len, char *why, size_t why_len)
{
    XML_Parser xp = XML_ParserCreate(NULL);
    if (!xp)
        sfm_fuzz_die("XML_ParserCreate", NULL);
    int ok = XML_Parse(xp, body, (int)len, XML_TRUE) == XML_STATUS_OK;
    if (!ok)
        snprintf(why, why_len, "%s at line %lu, column %lu", XML_ErrorString(XML_GetErrorCode(xp)),
                 (unsigned long)XML_GetCurrentLineNumber(xp), (unsigned long)XML_GetCurrentColumnNumber(xp));
    XML_ParserFree(xp);
    return ok;
}

/* [{"message": "...", "errorCode": "..."}, ...]: the REST API's error shape. */
static int rest_error_shaped(const json_t *j)
{
    size_t i;
    json_t *e;
    if (!json_is_array(j) || json_array_size(j) == 0)
        return 0;
    json_array_foreach(j, i, e)
    {
        if (!json_is_string(json_object_get(e, "message")) ||
            !json_is_string(json_object_get(e, "errorCode")))
            return 0;
    }
    return 1;
}

static int is_query_path(const char *path)
{
    const char *tail = strrchr(path, '/');
    if (tail && tail[1] == '\0' && tail > path) { /* one trailing slash */
        while (tail > path && tail[-1] != '/')
            tail--;
        return strncmp(tail, "query/", 6) == 0 || strncmp(tail, "queryAll/", 9) == 0;
    }
    return tail && (strcmp(tail, "/query") == 0 || strcmp(tail, "/queryAll") == 0);
}

static void check_json(const sfm_request *req, const sfm_response *resp)
{
    if (resp->body_len == 0) {
        if (resp->status != 204)
            broken(req, resp, "empty JSON body", NULL);
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        broken(req, resp, "JSON that does not parse", jerr.text);
    if (strncmp(req->path, "/services/data/", 15) == 0 && resp->status >= 400) {
        if (!rest_error_shaped(j))
            broken(req, resp, "a REST error not shaped [{message, errorCode}]", NULL);
        const char *code = json_string_value(json_object_get(json_array_get(j, 0), "errorCode"));
        const char *msg = json_string_value(json_object_get(json_array_get(j, 0), "message"));
        if (resp->status == 400 && is_query_path(req->path)) {
            if (strcmp(code, "MALFORMED_QUERY") != 0 && strcmp(code, "INVALID_FIELD") != 0 &&
                strcmp(code, "INVALID_TYPE") != 0)
                broken(req, resp, "a query's 400 with another code", code);
            /* Salesforce frames the query's errors (but a missing or too long query). */
            if (!strstr(msg, "ERROR at Row:") && strcmp(msg, "A query string has to be specified") != 0 &&
                strncmp(msg, "SOQL statements cannot exceed", 29) != 0)
                broken(req, resp, "a query error without Salesforce's framing", NULL);
        }
    }
    if (strcmp(req->path, "/services/oauth2/token") == 0 && resp->status >= 400 && !rest_error_shaped(j) &&
        !(json_is_string(json_object_get(j, "error")) &&
          json_is_string(json_object_get(j, "error_description"))))
        broken(req, resp, "a token error not shaped {error, error_description}", NULL);
    if (resp->status == 201 && json_is_string(json_object_get(j, "id")))
        snprintf(g.last, sizeof(g.last), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
}

static void check_answer(const sfm_request *req, const sfm_response *resp)
{
    char why[256];
    if (resp->status < 200 || resp->status > 599 || !resp->content_type || !*resp->content_type ||
        (resp->body_len && !resp->body) || resp->n_headers > SFM_RESPONSE_MAX_HEADERS)
        broken(req, resp, "malformed answer", NULL);
    /* Every byte of the body is read (ASan checks body_len); no answer here is binary. */
    if (resp->body_len && memchr(resp->body, '\0', resp->body_len))
        broken(req, resp, "a NUL in the body", NULL);
    for (size_t i = 0; i < resp->n_headers; i++) {
        const unsigned char *n = (const unsigned char *)resp->headers[i].name;
        const unsigned char *v = (const unsigned char *)resp->headers[i].value;
        if (!*n)
            broken(req, resp, "a header without a name", NULL);
        for (; *n; n++) {
            if (!is_token_char(*n))
                broken(req, resp, "a header name that is not a token", resp->headers[i].name);
        }
        for (; *v; v++) {
            if ((*v < 0x20 && *v != '\t') || *v >= 0x7f)
                broken(req, resp, "a header value that is not printable", resp->headers[i].name);
        }
    }
    if (strncmp(req->path, "/__admin/", 9) != 0 && !resp->recorded)
        broken(req, resp, "a request the login history did not get", NULL);
    if (resp->denied && (!response_header(resp, "X-Sfmtls-Reason") ||
                         strcmp(response_header(resp, "X-Sfmtls-Reason"), resp->denied) != 0))
        broken(req, resp, "a denial without its X-Sfmtls-Reason", resp->denied);
    if (resp->status == 302 && !response_header(resp, "Location"))
        broken(req, resp, "a redirect without Location", NULL);

    /* SOAP faults are 500s by design, and so is ui.c's page for a redirect whose Location does not fit
     * sfm_response's 2048-byte header values (a long OAuth state): a limit of the emulator, not of the
     * request. Any other 500 is a failure (out of memory is plain text, and nothing here runs out). */
    int is_xml = strstr(resp->content_type, "xml") != NULL;
    if (resp->status == 500 &&
        !(is_xml && resp->body_len && memmem(resp->body, resp->body_len, ":Fault>", 7)) &&
        !(resp->body_len && memmem(resp->body, resp->body_len, "<title>Redirect Too Long</title>", 32)))
        broken(req, resp, "a 500 that is neither a SOAP fault nor a redirect too long", NULL);
    if (strncasecmp(resp->content_type, "application/json", 16) == 0)
        check_json(req, resp);
    else if (is_xml && !xml_ok(resp->body, resp->body_len, why, sizeof(why)))
        broken(req, resp, "XML that is not well-formed", why);
}

/* The number of entries in the login history. */
static size_t history_count(void)
{
    sfm_history_filter f = {.limit = HISTORY_KEPT};
    char *text = NULL;
    if (sfm_history_query_json(g.srv.history, &f, &text) != 0)
        sfm_fuzz_die("sfm_history_query_json", NULL);
    json_t *j = json_loads(text, 0, NULL);
    if (!json_is_array(j))
        sfm_fuzz_die("the login history", "not a JSON array");
    size_t n = json_array_size(j);
    json_decref(j);
    free(text);
    return n;
}

/* ---- one request ---------------------------------------------------------------------------- */

/* Runs the request in chunk[0, len) (placeholders not yet replaced). Returns 1 when it is outside /__admin/.
 */
static int run_request(const char *chunk, size_t len)
{
    size_t rl;
    char *r = expand(chunk, len, &rl);
    char *end = r + rl;

    /* The request line: METHOD TARGET [words...]. */
    char *nl = memchr(r, '\n', rl);
    char *line_end = nl ? nl : end;
    *line_end = '\0';
    char method[METHOD_MAX];
    size_t ml = strcspn(r, " ");
    snprintf(method, sizeof(method), "%.*s", (int)(ml < METHOD_MAX - 1 ? ml : METHOD_MAX - 1), r);
    char *target = r + ml + (r[ml] == ' ');
    char *words = target + strcspn(target, " ");
    if (*words)
        *words++ = '\0';
    enum peer_kind peer = PEER_MTLS;
    int too_large = 0;
    while (*words) {
        size_t wl = strcspn(words, " ");
        for (int k = 0; k < N_PEERS; k++) {
            if (strlen(k_peer_names[k]) == wl && strncmp(words, k_peer_names[k], wl) == 0)
                peer = (enum peer_kind)k;
        }
        if (wl == 3 && strncmp(words, "big", 3) == 0)
            too_large = 1;
        words += wl + (words[wl] == ' ');
    }

    /* Headers, up to an empty line; a line without ':' is left out (libmicrohttpd refuses it). */
    sfm_field headers[SFM_HTTP_MAX_FIELDS];
    size_t n_headers = 0;
    char *p = nl ? nl + 1 : end, *body = end;
    while (p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        char *le = e ? e : end;
        if (le > p && le[-1] == '\r')
            le[-1] = '\0';
        *le = '\0';
        if (*p == '\0') {
            body = e ? e + 1 : end;
            break;
        }
        char *colon = strchr(p, ':');
        if (colon && colon > p && n_headers < SFM_HTTP_MAX_FIELDS) {
            *colon = '\0';
            char *v = colon + 1;
            v += strspn(v, " \t");
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                v[--vl] = '\0';
            headers[n_headers++] = (sfm_field){p, v};
        }
        p = e ? e + 1 : end;
    }
    /* The body in a buffer of its exact size, as ASan should see it. */
    size_t body_len = (size_t)(end - body);
    char *body_copy = malloc(body_len ? body_len : 1);
    if (!body_copy)
        sfm_fuzz_die("malloc", NULL);
    memcpy(body_copy, body, body_len);

    sfm_field query[SFM_HTTP_MAX_FIELDS];
    size_t n_query = sfm_fuzz_server_target(target, query);

    sfm_request req = {
        .peer = g.peers[peer],
        .snap = sfm_fuzz_server_snapshot(&g.srv),
        .method = method,
        .path = target,
        .headers = headers,
        .n_headers = n_headers,
        .query = query,
        .n_query = n_query,
        .body = body_len ? body_copy : "",
        .body_len = body_len,
        .body_too_large = too_large,
    };
    sfm_response resp;
    sfm_http_handle(&g.srv.app, &req, &resp);
    if (g.trace)
        fprintf(stderr, "%s %.200s [%s] -> %d %s %s: %.*s\n", method, target, k_peer_names[peer], resp.status,
                resp.content_type ? resp.content_type : "-", resp.denied ? resp.denied : "-",
                (int)(resp.body_len > 300 ? 300 : resp.body_len), resp.body ? resp.body : "");
    check_answer(&req, &resp);
    sfm_response_cleanup(&resp);
    int counted = strncmp(target, "/__admin/", 9) != 0;
    free(body_copy);
    free(r);
    return counted;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    start_clean();
    size_t expected = 0;
    const char *p = (const char *)data, *end = p + size;
    for (int r = 0; r < MAX_REQUESTS && p <= end; r++) {
        const char *next = memmem(p, (size_t)(end - p), SEPARATOR, sizeof(SEPARATOR) - 1);
        const char *stop = next ? next : end;
        expected += (size_t)run_request(p, (size_t)(stop - p));
        if (!next)
            break;
        p = next + sizeof(SEPARATOR) - 1;
    }
    size_t got = history_count();
    if (got != expected) {
        fprintf(stderr, "fuzz_api: %zu requests outside /__admin/, %zu login history entries\n", expected,
                got);
        abort();
    }
    return 0;
}
