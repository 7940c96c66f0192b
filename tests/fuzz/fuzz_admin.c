/*
 * fuzz_admin: the admin API (SPEC section 6) through sfm_http_handle, as
 * bridge.c calls it, against one state built once: the bundled fixture, an
 * in-memory store, a login history on that store, the dev CA root and the
 * seeds' root as anchors. Each input starts from the fixture (the state is
 * reset when the previous input changed it), so an input replays the same
 * way on its own.
 *
 * Input: up to 8 requests separated by lines "~~~". A request is
 *
 *   METHOD TARGET [AUTH]\n
 *   BODY...
 *
 * TARGET is the path with an optional "?name=value&..." query; "{demo}" in
 * it stands for the id of the fixture's preloaded certificate, "{last}" for
 * the id the last 201 of this input answered. Without AUTH the request
 * carries the admin token; AUTH "-" sends no Authorization header, any other
 * word is sent as a wrong bearer token.
 *
 * Every answer must be well-formed: a status from 200 to 599, a JSON body
 * that parses whenever the type says JSON (empty only for 204), admin errors
 * in JSON shaped [{"errorCode","message"}], no 500 (nothing here runs out of memory
 * or disk), and an acknowledged upload or deletion visible in the snapshot a
 * request starting afterwards gets. A broken invariant is an abort().
 */
#include "fuzz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "org.h"
#include "peer.h"
#include "state.h"
#include "store.h"

#include "server.h"

#define ADMIN_TOKEN    "fuzz-admin-token"
#define MAX_REQUESTS   8
#define TARGET_MAX     4096
#define SEPARATOR      "\n~~~\n"
#define CERTS_PATH     "/__admin/mutual-auth-certificates"
#define HISTORY_KEPT   1000
#define FIXTURE        SFMTLS_SOURCE_DIR "/fixtures/default-org.json"
#define SFID_BUF       (SFM_SFID_LEN + 1)
#define AUTH_VALUE_MAX 160

/* The root of the CA that issued the certificates in corpus/admin (README.md). Valid until 2036; the
 * seeds' intermediate until 2031. */
static const char k_seed_root_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                      "MIIBzTCCAXKgAwIBAgIQW/02ZFtntIsZKyewfy4AXTAKBggqhkjOPQQDAjA3MQ8w\n"
                                      "DQYDVQQKDAZzZm10bHMxJDAiBgNVBAMMG3NmbXRscyBEZXYgUm9vdCBDQSBGRjM5\n"
                                      "NTQ2NzAeFw0yNjExMjcxMDE2MTZaFw0zNjExMjQxMDIxMTZaMDcxDzANBgNVBAoM\n"
                                      "BnNmbXRsczEkMCIGA1UEAwwbc2ZtdGxzIERldiBSb290IENBIEZGMzk1NDY3MFkw\n"
                                      "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfqSuhMNZDP30vEGI5s94t0JOPLw8Wh3q\n"
                                      "uzRwtvN2P5NShSEdR1o4oms/V9Z8A4iEfLvS556AIB0T8Td9zTS5xKNgMF4wDAYD\n"
                                      "VR0TBAUwAwEB/zAdBgNVHQ4EFgQUUEnhZnmqFhXgJkNnFZDCw50XIUowHwYDVR0j\n"
                                      "BBgwFoAUUEnhZnmqFhXgJkNnFZDCw50XIUowDgYDVR0PAQH/BAQDAgEGMAoGCCqG\n"
                                      "SM49BAMCA0kAMEYCIQDFZYWxr0A3OA+f3qY33q4paHyYnEvDjQz+rPS+3kujrwIh\n"
                                      "APF1uQYij2n2wnzmy+IFInGqbkN4c1xp8WHTHjmC1A+R\n"
                                      "-----END CERTIFICATE-----\n";

static struct {
    int ready;
    sfm_fuzz_server srv;
    sfm_peer *peer;
    char demo_id[SFID_BUF];
} g;

static void teardown(void)
{
    sfm_peer_unref(g.peer);
    sfm_fuzz_server_free(&g.srv);
}

static void setup(void)
{
    sfm_fuzz_server_new(&g.srv, FIXTURE, k_seed_root_pem, sizeof(k_seed_root_pem) - 1, ADMIN_TOKEN, 7200,
                        HISTORY_KEPT);
    g.peer = sfm_peer_new(SFM_LISTENER_MTLS, "127.0.0.1", "TLSv1.3", "TLS_AES_128_GCM_SHA256", 0, NULL);
    if (!g.peer)
        sfm_fuzz_die("sfm_peer_new", NULL);

    const sfm_snapshot *s = sfm_fuzz_server_snapshot(&g.srv);
    const sfm_cert_entry **list = NULL;
    size_t n = 0;
    if (sfm_certs_list(s->certs, &list, &n) != 0 || n != 1 || !list[0]->preloaded)
        sfm_fuzz_die("the fixture's preload", "missing");
    snprintf(g.demo_id, sizeof(g.demo_id), "%s", list[0]->id);
    free(list);
    g.ready = 1;
    atexit(teardown);
}

/* Copies `src` (len bytes) to `dst` (TARGET_MAX), replacing {demo} and {last}; stops at a NUL. */
static void expand_target(const char *src, size_t len, const char *last, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len && src[i] && o + 1 < TARGET_MAX;) {
        const char *with = NULL;
        size_t skip = 0;
        if (len - i >= 6 && memcmp(src + i, "{demo}", 6) == 0) {
            with = g.demo_id;
            skip = 6;
        } else if (len - i >= 6 && memcmp(src + i, "{last}", 6) == 0) {
            with = last;
            skip = 6;
        }
        if (with) {
            size_t wl = strlen(with);
            if (o + wl + 1 > TARGET_MAX)
                break;
            memcpy(dst + o, with, wl);
            o += wl;
            i += skip;
        } else {
            dst[o++] = src[i++];
        }
    }
    dst[o] = '\0';
}

/* An admin error answer: [{"errorCode": "...", "message": "..."}]. */
static int admin_error_shaped(const json_t *j)
{
    const json_t *first = json_array_get(j, 0);
    return json_is_array(j) && json_array_size(j) == 1 && json_is_object(first) &&
           json_is_string(json_object_get(first, "errorCode")) &&
           json_is_string(json_object_get(first, "message"));
}

/* Prints the request and its answer, then aborts. */
__attribute__((noreturn)) static void broken(const sfm_request *req, const sfm_response *resp,
                                             const char *why)
{
    int shown = (int)(resp->body_len > 400 ? 400 : resp->body_len);
    fprintf(stderr, "fuzz_admin: %s: %s %s answered %d %s: %.*s\n", why, req->method, req->path, resp->status,
            resp->content_type ? resp->content_type : "(no type)", resp->body ? shown : 0,
            resp->body ? resp->body : "");
    abort();
}

/*
 * Checks one answer; aborts when it is not well-formed. On a 201 from the
 * certificate list, copies the new id into `last`.
 */
static void check_answer(const sfm_request *req, const sfm_response *resp, char last[SFID_BUF])
{
    if (resp->status < 200 || resp->status > 599 || !resp->content_type || (resp->body_len && !resp->body) ||
        resp->n_headers > SFM_RESPONSE_MAX_HEADERS)
        broken(req, resp, "malformed answer");
    int is_admin = strncmp(req->path, "/__admin/", 9) == 0;
    if (resp->status == 500)
        broken(req, resp, "500 without a failing allocation or disk");
    if (strncasecmp(resp->content_type, "application/json", 16) != 0) {
        if (is_admin && resp->status >= 400)
            broken(req, resp, "admin error that is not JSON");
        return;
    }
    if (resp->body_len == 0) {
        if (resp->status != 204)
            broken(req, resp, "empty JSON body");
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        broken(req, resp, jerr.text);
    if (is_admin && resp->status >= 400 && !admin_error_shaped(j))
        broken(req, resp, "admin error not shaped [{errorCode, message}]");
    if (resp->status == 201 && strcmp(req->path, CERTS_PATH) == 0) {
        /* Acknowledged: a request that starts now sees the certificate. */
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id || strlen(id) != SFM_SFID_LEN)
            broken(req, resp, "201 without an id");
        snprintf(last, SFID_BUF, "%s", id);
        if (!sfm_certs_find_id(sfm_fuzz_server_snapshot(&g.srv)->certs, id))
            broken(req, resp, "uploaded, yet not in the next snapshot");
    }
    json_decref(j);
}

/* Runs one request: `line` is its first line, body what follows. */
static void run_request(const char *line, size_t line_len, const char *body, size_t body_len,
                        char last[SFID_BUF])
{
    static char target[TARGET_MAX];
    char method[64];
    char auth_value[AUTH_VALUE_MAX];
    const char *sp1 = memchr(line, ' ', line_len);
    size_t ml = sp1 ? (size_t)(sp1 - line) : line_len;
    snprintf(method, sizeof(method), "%.*s", (int)(ml < sizeof(method) - 1 ? ml : sizeof(method) - 1), line);
    const char *rest = sp1 ? sp1 + 1 : line + line_len;
    size_t rest_len = line_len - (size_t)(rest - line);
    const char *sp2 = memchr(rest, ' ', rest_len);
    size_t tl = sp2 ? (size_t)(sp2 - rest) : rest_len;
    expand_target(rest, tl, last, target);

    sfm_field headers[2];
    size_t n_headers = 0;
    headers[n_headers++] = (sfm_field){"Content-Type", "application/json"};
    if (!sp2) {
        headers[n_headers++] = (sfm_field){"Authorization", "Bearer " ADMIN_TOKEN};
    } else if (!(rest_len - tl - 1 == 1 && sp2[1] == '-')) {
        size_t al = rest_len - tl - 1;
        snprintf(auth_value, sizeof(auth_value), "Bearer %.*s", (int)(al < 120 ? al : 120), sp2 + 1);
        headers[n_headers++] = (sfm_field){"Authorization", auth_value};
    }
    sfm_field query[SFM_HTTP_MAX_FIELDS];
    size_t n_query = sfm_fuzz_server_target(target, query);

    sfm_request req = {
        .peer = g.peer,
        .snap = sfm_fuzz_server_snapshot(&g.srv),
        .method = method,
        .path = target,
        .headers = headers,
        .n_headers = n_headers,
        .query = query,
        .n_query = n_query,
        .body = body_len ? body : "",
        .body_len = body_len,
    };
    /* The certificate a DELETE names (target is not changed by the handler). */
    const char *deleted = NULL;
    if (strcmp(method, "DELETE") == 0 && strncmp(target, CERTS_PATH "/", sizeof(CERTS_PATH)) == 0)
        deleted = target + sizeof(CERTS_PATH);

    sfm_response resp;
    sfm_http_handle(&g.srv.app, &req, &resp);
    check_answer(&req, &resp, last);
    if (resp.status == 204 && deleted && sfm_certs_find_id(sfm_fuzz_server_snapshot(&g.srv)->certs, deleted))
        broken(&req, &resp, "deleted, yet still in the next snapshot");
    sfm_response_cleanup(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    sfm_fuzz_server_clean(&g.srv);
    char last[SFID_BUF] = "none";
    const char *p = (const char *)data, *end = p + size;
    for (int r = 0; r < MAX_REQUESTS && p <= end; r++) {
        const char *next = memmem(p, (size_t)(end - p), SEPARATOR, sizeof(SEPARATOR) - 1);
        const char *stop = next ? next : end;
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *line_end = nl ? nl : stop;
        const char *body = nl ? nl + 1 : stop;
        run_request(p, (size_t)(line_end - p), body, (size_t)(stop - body), last);
        if (!next)
            break;
        p = next + sizeof(SEPARATOR) - 1;
    }
    return 0;
}
