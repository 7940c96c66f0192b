/*
 * The admin API (SPEC section 6): setup emulation under /__admin/. JSON in
 * and out; every path but health and tls-info needs the admin token.
 */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pki.h"
#include "utf8.h"

#define PREFIX "/__admin/"

/*
 * A message may quote what the caller sent (a username from the path, cut
 * to fit a buffer): bytes that are not UTF-8 become U+FFFD, or jansson refuses
 * the string and the answer would be a 500.
 */
static void admin_error(sfm_response *resp, int status, const char *code, const char *message)
{
    char clean[3 * 1024 + 1];
    sfm_utf8_repair(message, strnlen(message, 1024), clean);
    sfm_response_json(resp, status, json_pack("[{s:s, s:s}]", "errorCode", code, "message", clean));
}

static void state_error(sfm_response *resp, const sfm_state_error *e)
{
    admin_error(resp, e->status, e->code, e->message);
}

static int has_method(const sfm_request *req, const char *m)
{
    return strcmp(req->method, m) == 0 || (strcmp(m, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

static void method_not_allowed(sfm_response *resp, const char *allowed)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "Allowed methods: %s", allowed);
    admin_error(resp, 405, "METHOD_NOT_ALLOWED", msg);
    sfm_response_header(resp, "Allow", allowed);
}

/*
 * Compares the Authorization header with "Bearer <token>" in time that does
 * not depend on where they differ (nor, beyond the length of what was sent,
 * on the token).
 */
static int token_ok(const sfm_app *app, const sfm_request *req)
{
    const char *h = sfm_request_header(req, "Authorization");
    if (!h || !app->admin_token || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const unsigned char *given = (const unsigned char *)h + 7;
    const unsigned char *want = (const unsigned char *)app->admin_token;
    size_t gl = strlen((const char *)given), wl = strlen((const char *)want);
    volatile unsigned char diff = (unsigned char)(gl != wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (gl ? given[i % gl] : 0));
    return diff == 0 && wl > 0;
}

/* ---- health, tls-info --------------------------------------------------------------------- */

void sfm_api_health(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)req;
    json_int_t dropped = (json_int_t)sfm_history_dropped(app->history);
    sfm_response_json(resp, 200, json_pack("{s:s, s:I}", "status", "ok", "historyDropped", dropped));
}

static json_t *certificate_json(const sfm_cert_info *ci)
{
    sfm_pki_facts f;
    char nb[32], na[32];
    const char *reason = sfm_l1_code(ci->reason);
    /* The leaf passed the handshake's parser, so this parse succeeds too;
     * if it does not, report what is known rather than nothing. */
    if (sfm_pki_facts_of(ci->der, ci->der_len, &f) != 0) {
        return json_pack("{s:n, s:n, s:n, s:s, s:n, s:n, s:i, s:b, s:s?}", "subject", "issuer",
                         "serialNumber", "fingerprintSha256", ci->sha256, "notBefore", "notAfter",
                         "chainLength", ci->chain_len, "chainVerified", ci->reason == SFM_L1_OK, "reason",
                         reason);
    }
    sfm_pki_iso8601(f.not_before, nb);
    sfm_pki_iso8601(f.not_after, na);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:s?}", "subject", f.subject, "issuer",
                     f.issuer, "serialNumber", f.serial, "fingerprintSha256", ci->sha256, "notBefore", nb,
                     "notAfter", na, "chainLength", ci->chain_len, "chainVerified", ci->reason == SFM_L1_OK,
                     "reason", reason);
}

void sfm_api_tls_info(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)app;
    const sfm_peer *p = req->peer;
    json_t *cert = p->cert ? certificate_json(p->cert) : json_null();
    sfm_response_json(resp, 200,
                      json_pack("{s:s, s:s, s:s, s:b, s:o}", "listener", sfm_listener_name(p->listener),
                                "tlsVersion", p->tls_version, "cipher", p->cipher, "resumed", p->resumed,
                                "clientCertificate", cert));
}

/* ---- request bodies ----------------------------------------------------------------------- */

/* The body as a JSON object, or NULL with the 400 already in `resp`. */
static json_t *body_object(const sfm_request *req, sfm_response *resp)
{
    json_error_t jerr;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof(msg), "The request body is not valid JSON: %s (line %d, column %d).", jerr.text,
                 jerr.line, jerr.column);
        admin_error(resp, 400, "JSON_PARSER_ERROR", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        admin_error(resp, 400, "JSON_PARSER_ERROR", "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}

/* 0 when every key of `obj` is one of `allowed` (NULL-terminated); else the 400 is in `resp`. */
static int only_keys(json_t *obj, const char *const *allowed, sfm_response *resp)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        (void)v;
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            char msg[192];
            snprintf(msg, sizeof(msg), "No such field: \"%.120s\".", key);
            admin_error(resp, 400, "INVALID_FIELD", msg);
            return -1;
        }
    }
    return 0;
}

static void wrong_type(sfm_response *resp, const char *field, const char *want)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "The field \"%s\" must be %s.", field, want);
    admin_error(resp, 400, "INVALID_FIELD", msg);
}

/* ---- certificates ------------------------------------------------------------------------- */

static json_t *entry_json(const sfm_cert_entry *e)
{
    char exp[32];
    sfm_pki_iso8601(e->not_after, exp);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b}", "id", e->id, "label", e->label,
                     "subject", e->subject, "issuer", e->issuer, "serialNumber", e->serial, "expirationDate",
                     exp, "fingerprintSha256", e->fp_hex, "chainLength", e->chain_length, "preloaded",
                     e->preloaded);
}

static void certs_list(const sfm_request *req, sfm_response *resp)
{
    const sfm_cert_entry **list = NULL;
    size_t n = 0;
    if (sfm_certs_list(req->snap->certs, &list, &n) < 0) {
        admin_error(resp, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, entry_json(list[i]));
    free(list);
    sfm_response_json(resp, 200, arr);
}

static void certs_upload(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    static const char *const keys[] = {"label", "pem", NULL};
    json_t *label = json_object_get(body, "label"), *pem = json_object_get(body, "pem");
    sfm_state_error e = {0};
    sfm_cert_entry *entry = NULL;
    if (only_keys(body, keys, resp) < 0)
        goto out;
    /* A missing or mistyped field fails the check it feeds, in SPEC's order. */
    const char *label_s = json_is_string(label) ? json_string_value(label) : "";
    const char *pem_s = json_is_string(pem) ? json_string_value(pem) : "";
    if (sfm_state_upload(app->state, label_s, json_is_string(label) ? json_string_length(label) : 0, pem_s,
                         json_is_string(pem) ? json_string_length(pem) : 0, &entry, &e) < 0) {
        state_error(resp, &e);
        goto out;
    }
    sfm_response_json(resp, 201, entry_json(entry));
    char location[128];
    snprintf(location, sizeof(location), PREFIX "mutual-auth-certificates/%s", entry->id);
    sfm_response_header(resp, "Location", location);
    sfm_cert_entry_unref(entry);
out:
    json_decref(body);
}

static void certs_one(const sfm_app *app, const sfm_request *req, sfm_response *resp, const char *id)
{
    if (has_method(req, "GET")) {
        const sfm_cert_entry *e = sfm_certs_find_id(req->snap->certs, id);
        if (!e) {
            admin_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        sfm_response_json(resp, 200, entry_json(e));
    } else if (has_method(req, "DELETE")) {
        sfm_state_error e = {0};
        if (sfm_state_delete_cert(app->state, id, &e) < 0) {
            state_error(resp, &e);
            return;
        }
        sfm_response_set(resp, 204, "application/json;charset=UTF-8", "", 0);
    } else {
        method_not_allowed(resp, "GET, DELETE");
    }
}

/* ---- users -------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *user_json(const sfm_snapshot *snap, size_t i)
{
    const sfm_org *org = snap->org;
    const sfm_fx_user *u = &org->users[i];
    const sfm_user_view *v = &snap->users[i];
    const sfm_perm_holder *profile = &org->profiles[v->profile];
    json_t *sets = json_array();
    size_t n_perms = profile->n_permissions;
    for (size_t k = 0; k < v->n_permsets; k++) {
        json_array_append_new(sets, json_string(org->permsets[v->permsets[k]].name));
        n_perms += org->permsets[v->permsets[k]].n_permissions;
    }
    /* Effective permissions: the union, sorted, each once. */
    const char **perms = calloc(n_perms ? n_perms : 1, sizeof(*perms));
    json_t *plist = json_array();
    if (perms && plist) {
        size_t n = 0;
        for (size_t k = 0; k < profile->n_permissions; k++)
            perms[n++] = profile->permissions[k];
        for (size_t k = 0; k < v->n_permsets; k++) {
            const sfm_perm_holder *ps = &org->permsets[v->permsets[k]];
            for (size_t m = 0; m < ps->n_permissions; m++)
                perms[n++] = ps->permissions[m];
        }
        qsort(perms, n, sizeof(*perms), cmp_str);
        for (size_t k = 0; k < n; k++)
            if (k == 0 || strcmp(perms[k], perms[k - 1]) != 0)
                json_array_append_new(plist, json_string(perms[k]));
    }
    free(perms);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:b}", "username", u->username, "id", u->id, "profile",
                     profile->name, "permissionSets", sets, "permissions", plist, "active", v->active);
}

static void users_list(const sfm_request *req, sfm_response *resp)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < req->snap->org->n_users; i++)
        json_array_append_new(arr, user_json(req->snap, i));
    sfm_response_json(resp, 200, arr);
}

static void user_patch(const sfm_app *app, const sfm_request *req, sfm_response *resp, const char *username)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    static const char *const keys[] = {"profile", "permissionSets", "active", NULL};
    json_t *profile = json_object_get(body, "profile"), *sets = json_object_get(body, "permissionSets");
    json_t *active = json_object_get(body, "active");
    const char **names = NULL;
    sfm_user_patch p = {.active = -1};
    if (only_keys(body, keys, resp) < 0)
        goto out;
    if (profile && !json_is_string(profile)) {
        wrong_type(resp, "profile", "a profile name");
        goto out;
    }
    if (active && !json_is_boolean(active)) {
        wrong_type(resp, "active", "true or false");
        goto out;
    }
    if (sets) {
        if (!json_is_array(sets)) {
            wrong_type(resp, "permissionSets", "an array of permission set names");
            goto out;
        }
        names = calloc(json_array_size(sets) + 1, sizeof(*names));
        if (!names) {
            admin_error(resp, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
            goto out;
        }
        size_t k;
        json_t *v;
        json_array_foreach(sets, k, v)
        {
            if (!json_is_string(v)) {
                wrong_type(resp, "permissionSets", "an array of permission set names");
                goto out;
            }
            names[k] = json_string_value(v);
        }
        p.permsets = names;
        p.n_permsets = json_array_size(sets);
        p.has_permsets = 1;
    }
    p.profile = profile ? json_string_value(profile) : NULL;
    p.active = active ? json_is_true(active) : -1;
    sfm_state_error e = {0};
    if (sfm_state_patch_user(app->state, username, &p, &e) < 0) {
        state_error(resp, &e);
        goto out;
    }
    /* Answer from the snapshot the change made. */
    sfm_snapshot *snap = sfm_state_acquire(app->state);
    long ui = sfm_org_find_user(snap->org, username);
    /* Deactivating a user ends their sessions for good, as on Salesforce:
     * reactivating does not bring them back. */
    if (ui >= 0 && p.active == 0)
        sfm_sessions_revoke_user(app->sessions, snap->org->users[ui].id);
    sfm_response_json(resp, 200, ui >= 0 ? user_json(snap, (size_t)ui) : NULL);
    sfm_snapshot_unref(snap);
out:
    free(names);
    json_decref(body);
}

static void user_one(const sfm_app *app, const sfm_request *req, sfm_response *resp, const char *username)
{
    if (has_method(req, "PATCH")) {
        user_patch(app, req, resp, username);
        return;
    }
    if (!has_method(req, "GET")) {
        method_not_allowed(resp, "GET, PATCH");
        return;
    }
    long ui = sfm_org_find_user(req->snap->org, username);
    if (ui < 0) {
        admin_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    sfm_response_json(resp, 200, user_json(req->snap, (size_t)ui));
}

/* ---- login history, reset ----------------------------------------------------------------- */

static const char *query_value(const sfm_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_query; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value ? req->query[i].value : "";
    return NULL;
}

static void login_history(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    sfm_history_filter f = {.limit = 100};
    const char *limit = query_value(req, "limit"), *outcome = query_value(req, "outcome");
    if (limit) {
        char *end = NULL;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || end == limit || *end || v < 1) {
            admin_error(resp, 400, "INVALID_PARAMETER", "limit must be a whole number from 1 to 1000.");
            return;
        }
        f.limit = v > 1000 ? 1000 : (size_t)v;
    }
    if (outcome) {
        if (strcmp(outcome, "allowed") == 0)
            f.outcome = 1;
        else if (strcmp(outcome, "denied") == 0)
            f.outcome = 2;
        else {
            admin_error(resp, 400, "INVALID_PARAMETER", "outcome must be \"allowed\" or \"denied\".");
            return;
        }
    }
    const char *username = query_value(req, "username"), *reason = query_value(req, "reason");
    f.username = username && *username ? username : NULL;
    f.reason = reason && *reason ? reason : NULL;
    char *json = NULL;
    if (sfm_history_query_json(app->history, &f, &json) < 0) {
        admin_error(resp, 500, "UNKNOWN_EXCEPTION", "The login history could not be read.");
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = "application/json;charset=UTF-8";
    resp->body = json;
    resp->body_len = strlen(json);
}

static void reset(const sfm_app *app, sfm_response *resp)
{
    sfm_state_error e = {0};
    if (sfm_state_reset(app->state, &e) < 0) {
        state_error(resp, &e);
        return;
    }
    if (sfm_history_clear(app->history) < 0) {
        admin_error(resp, 500, "UNKNOWN_EXCEPTION", "The login history could not be cleared.");
        return;
    }
    /* The API's runtime changes go too: records, sessions, today's API count. */
    sfm_snapshot *snap = sfm_state_acquire(app->state);
    int rc = sfm_records_reset(app->records, snap->org);
    sfm_snapshot_unref(snap);
    if (rc < 0) {
        admin_error(resp, 500, "UNKNOWN_EXCEPTION", "The records could not be reset.");
        return;
    }
    sfm_sessions_clear(app->sessions);
    atomic_store(&app->usage->used, 0);
    sfm_response_set(resp, 204, "application/json;charset=UTF-8", "", 0);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* When `path` is `base` + "/" + one segment, that segment; else NULL. */
static const char *segment_after(const char *path, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(path, base, n) != 0 || path[n] != '/' || !path[n + 1] || strchr(path + n + 1, '/'))
        return NULL;
    return path + n + 1;
}

void sfm_api_admin(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    const char *path = req->path;
    if (strcmp(path, PREFIX "health") == 0 || strcmp(path, PREFIX "tls-info") == 0) {
        if (!has_method(req, "GET"))
            method_not_allowed(resp, "GET");
        else if (path[9] == 'h')
            sfm_api_health(app, req, resp);
        else
            sfm_api_tls_info(app, req, resp);
        return;
    }
    if (!token_ok(app, req)) {
        admin_error(
            resp, 401, "INVALID_ADMIN_TOKEN",
            "This path needs the header \"Authorization: Bearer <admin token>\" (--admin-token, or the "
            "admin-token file in the state directory).");
        sfm_response_header(resp, "WWW-Authenticate", "Bearer realm=\"sfmtls admin\"");
        return;
    }
    if (req->body_too_large) {
        admin_error(resp, 413, "REQUEST_TOO_LARGE", "The request body is larger than 2 MiB.");
        return;
    }
    const char *arg;
    if (strcmp(path, PREFIX "mutual-auth-certificates") == 0) {
        if (has_method(req, "GET"))
            certs_list(req, resp);
        else if (has_method(req, "POST"))
            certs_upload(app, req, resp);
        else
            method_not_allowed(resp, "GET, POST");
    } else if ((arg = segment_after(path, PREFIX "mutual-auth-certificates"))) {
        certs_one(app, req, resp, arg);
    } else if (strcmp(path, PREFIX "users") == 0) {
        if (has_method(req, "GET"))
            users_list(req, resp);
        else
            method_not_allowed(resp, "GET");
    } else if ((arg = segment_after(path, PREFIX "users"))) {
        user_one(app, req, resp, arg);
    } else if (strcmp(path, PREFIX "reset") == 0) {
        if (has_method(req, "POST"))
            reset(app, resp);
        else
            method_not_allowed(resp, "POST");
    } else if (strcmp(path, PREFIX "login-history") == 0) {
        if (has_method(req, "GET"))
            login_history(app, req, resp);
        else
            method_not_allowed(resp, "GET");
    } else {
        admin_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    }
}
