/* store: runtime changes in SQLite survive restarts and kills; the history's trim and query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "store.h"
#include "support.h"

#define FP_A "aa00000000000000000000000000000000000000000000000000000000000001"
#define FP_B "bb00000000000000000000000000000000000000000000000000000000000002"
#define FP_P "cc00000000000000000000000000000000000000000000000000000000000003"

/* ---- certificates ---- */

#define MAX_ROWS 16

typedef struct cert_seen {
    size_t n;
    char fp[MAX_ROWS][65];
    char label[MAX_ROWS][80];
    int tombstone[MAX_ROWS];
    char pem[MAX_ROWS][256];
    size_t pem_len[MAX_ROWS];
    int64_t created_ms[MAX_ROWS];
} cert_seen;

static int collect_cert(void *arg, const sfm_store_cert *c)
{
    cert_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    size_t i = s->n++;
    snprintf(s->fp[i], sizeof(s->fp[i]), "%s", c->fp_hex);
    s->tombstone[i] = c->label == NULL;
    assert_true((c->label == NULL) == (c->pem == NULL));
    if (c->label) {
        snprintf(s->label[i], sizeof(s->label[i]), "%s", c->label);
        assert_true(c->pem_len <= sizeof(s->pem[i]));
        memcpy(s->pem[i], c->pem, c->pem_len);
        s->pem_len[i] = c->pem_len;
    }
    s->created_ms[i] = c->created_ms;
    return 0;
}

static cert_seen *certs_of(sfm_store *st)
{
    static cert_seen seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sfm_store_certs_each(st, collect_cert, &seen), 0);
    return &seen;
}

static const char PEM_A[] = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
/* Bytes are kept as uploaded, a NUL included. */
static const char PEM_B[] = "-----BEGIN CERTIFICATE-----\nMIIB\0BBB\n-----END CERTIFICATE-----\n";

static void test_store_certs_survive_a_reopen(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "partner", PEM_A, sizeof(PEM_A) - 1, 1700000000123), 0);
    assert_int_equal(sfm_store_cert_put(st, FP_B, "démo", PEM_B, sizeof(PEM_B) - 1, 1700000000456), 0);
    sfm_store_close(st);

    struct stat sb;
    assert_int_equal(stat(t->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    st = t_store_open(t->path);
    cert_seen *s = certs_of(st);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->fp[0], FP_A); /* oldest first */
    assert_string_equal(s->label[0], "partner");
    assert_int_equal(s->pem_len[0], sizeof(PEM_A) - 1);
    assert_memory_equal(s->pem[0], PEM_A, sizeof(PEM_A) - 1);
    assert_int_equal(s->created_ms[0], 1700000000123);
    assert_string_equal(s->fp[1], FP_B);
    assert_string_equal(s->label[1], "démo");
    assert_int_equal(s->pem_len[1], sizeof(PEM_B) - 1);
    assert_memory_equal(s->pem[1], PEM_B, sizeof(PEM_B) - 1);
    assert_int_equal(s->created_ms[1], 1700000000456);
    sfm_store_close(st);
}

static void test_store_delete_removes_an_upload_and_tombstones_a_preload(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "upload", PEM_A, sizeof(PEM_A) - 1, 1000), 0);
    assert_int_equal(sfm_store_cert_delete(st, FP_A, 0), 0);
    /* FP_P is a preload: its deletion must outlive a restart. */
    assert_int_equal(sfm_store_cert_delete(st, FP_P, 1), 0);
    assert_int_equal(sfm_store_cert_delete(st, FP_P, 1), 0); /* twice is still one tombstone */
    sfm_store_close(st);

    st = t_store_open(t->path);
    cert_seen *s = certs_of(st);
    assert_int_equal(s->n, 1);
    assert_string_equal(s->fp[0], FP_P);
    assert_true(s->tombstone[0]);

    /* Uploading the preload again replaces its tombstone. */
    assert_int_equal(sfm_store_cert_put(st, FP_P, "back", PEM_A, sizeof(PEM_A) - 1, 2000), 0);
    sfm_store_close(st);
    st = t_store_open(t->path);
    s = certs_of(st);
    assert_int_equal(s->n, 1);
    assert_string_equal(s->fp[0], FP_P);
    assert_false(s->tombstone[0]);
    assert_string_equal(s->label[0], "back");
    assert_int_equal(s->created_ms[0], 2000);

    /* Deleting that upload of the preload's certificate leaves the tombstone again. */
    assert_int_equal(sfm_store_cert_delete(st, FP_P, 1), 0);
    sfm_store_close(st);
    st = t_store_open(t->path);
    s = certs_of(st);
    assert_int_equal(s->n, 1);
    assert_string_equal(s->fp[0], FP_P);
    assert_true(s->tombstone[0]);
    sfm_store_close(st);
}

static int delete_from_callback(void *arg, const sfm_store_cert *c)
{
    return sfm_store_cert_delete(arg, c->fp_hex, 0);
}

static void test_store_each_callback_may_call_the_store(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "a", PEM_A, sizeof(PEM_A) - 1, 1), 0);
    assert_int_equal(sfm_store_cert_put(st, FP_B, "b", PEM_A, sizeof(PEM_A) - 1, 2), 0);
    assert_int_equal(sfm_store_certs_each(st, delete_from_callback, st), 0);
    assert_int_equal(certs_of(st)->n, 0);
    sfm_store_close(st);
}

/* ---- users ---- */

typedef struct user_seen {
    size_t n;
    char username[MAX_ROWS][64];
    char profile[MAX_ROWS][64]; /* "(null)" for NULL */
    int has_permsets[MAX_ROWS];
    size_t n_permsets[MAX_ROWS];
    char permsets[MAX_ROWS][128]; /* joined with "|" */
    int active[MAX_ROWS];
} user_seen;

static int collect_user(void *arg, const sfm_store_user *u)
{
    user_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    size_t i = s->n++;
    snprintf(s->username[i], sizeof(s->username[i]), "%s", u->username);
    snprintf(s->profile[i], sizeof(s->profile[i]), "%s", u->profile ? u->profile : "(null)");
    s->has_permsets[i] = u->has_permsets;
    s->n_permsets[i] = u->n_permsets;
    size_t off = 0;
    for (size_t k = 0; k < u->n_permsets; k++)
        off += (size_t)snprintf(s->permsets[i] + off, sizeof(s->permsets[i]) - off, "%s%s", k ? "|" : "",
                                u->permsets[k]);
    s->active[i] = u->active;
    return 0;
}

static user_seen *users_of(sfm_store *st)
{
    static user_seen seen;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sfm_store_users_each(st, collect_user, &seen), 0);
    return &seen;
}

static void test_store_user_changes_are_replaced_deleted_and_survive(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    const char *sets[] = {"Enforce_mTLS", "Extra"};
    sfm_store_user mtls = {.username = "MTLS@Acme.test",
                           .profile = "Integration",
                           .permsets = sets,
                           .n_permsets = 2,
                           .has_permsets = 1,
                           .active = -1};
    sfm_store_user admin = {.username = "admin@acme.test", .active = 0};
    sfm_store_user bob = {.username = "bob@acme.test", .has_permsets = 1, .active = 1};
    assert_int_equal(sfm_store_user_put(st, &mtls), 0);
    assert_int_equal(sfm_store_user_put(st, &admin), 0);
    assert_int_equal(sfm_store_user_put(st, &bob), 0);
    sfm_store_close(st);

    st = t_store_open(t->path);
    user_seen *s = users_of(st);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->username[0], "admin@acme.test");
    assert_string_equal(s->profile[0], "(null)");
    assert_false(s->has_permsets[0]); /* unchanged */
    assert_int_equal(s->active[0], 0);
    assert_string_equal(s->username[1], "bob@acme.test");
    assert_true(s->has_permsets[1]); /* replaced by an empty list */
    assert_int_equal(s->n_permsets[1], 0);
    assert_int_equal(s->active[1], 1);
    assert_string_equal(s->username[2], "mtls@acme.test"); /* keyed lowercase */
    assert_string_equal(s->profile[2], "Integration");
    assert_true(s->has_permsets[2]);
    assert_string_equal(s->permsets[2], "Enforce_mTLS|Extra");
    assert_int_equal(s->active[2], -1);

    /* A put replaces the whole change; a delete takes any case. */
    sfm_store_user mtls2 = {.username = "mtls@acme.test", .active = 1};
    assert_int_equal(sfm_store_user_put(st, &mtls2), 0);
    assert_int_equal(sfm_store_user_delete(st, "BOB@acme.test"), 0);
    assert_int_equal(sfm_store_user_delete(st, "nobody@acme.test"), 0);
    sfm_store_close(st);

    st = t_store_open(t->path);
    s = users_of(st);
    assert_int_equal(s->n, 2);
    assert_string_equal(s->username[0], "admin@acme.test");
    assert_string_equal(s->username[1], "mtls@acme.test");
    assert_string_equal(s->profile[1], "(null)");
    assert_false(s->has_permsets[1]);
    assert_int_equal(s->active[1], 1);
    sfm_store_close(st);
}

/* ---- history helpers ---- */

static sfm_history_entry entry(int64_t time_ms, const char *username, const char *endpoint, int allowed,
                               const char *reason, int has_cert)
{
    sfm_history_entry e;
    memset(&e, 0, sizeof(e));
    e.time_ms = time_ms;
    snprintf(e.listener, sizeof(e.listener), "%s", has_cert ? "mtls" : "standard");
    snprintf(e.remote_addr, sizeof(e.remote_addr), "127.0.0.1");
    snprintf(e.username, sizeof(e.username), "%s", username);
    snprintf(e.endpoint, sizeof(e.endpoint), "%s", endpoint);
    e.allowed = allowed;
    snprintf(e.reason, sizeof(e.reason), "%s", reason);
    snprintf(e.status, sizeof(e.status), "%s", allowed ? "Success" : "Mutual authentication failed");
    e.has_cert = has_cert;
    if (has_cert) {
        snprintf(e.cert_subject, sizeof(e.cert_subject), "CN=client,O=Acme");
        snprintf(e.cert_issuer, sizeof(e.cert_issuer), "CN=Dev CA");
        snprintf(e.cert_fp, sizeof(e.cert_fp), FP_A);
    }
    return e;
}

/* Runs a query and returns the parsed array (caller json_decref()s). */
static json_t *query(sfm_store *st, size_t limit, int outcome, const char *username, const char *reason)
{
    sfm_history_filter f = {.limit = limit, .outcome = outcome, .username = username, .reason = reason};
    char *text = NULL;
    assert_int_equal(sfm_store_history_query_json(st, &f, &text), 0);
    assert_non_null(text);
    json_error_t jerr;
    json_t *a = json_loads(text, 0, &jerr);
    free(text);
    assert_true(json_is_array(a));
    return a;
}

static const char *endpoint_at(json_t *a, size_t i)
{
    return json_string_value(json_object_get(json_array_get(a, i), "endpoint"));
}

static void test_store_history_append_trims_to_max(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history_entry e[7];
    char ep[32];
    for (int i = 0; i < 7; i++) {
        snprintf(ep, sizeof(ep), "GET /%d", i);
        e[i] = entry(1000 + i, "u@acme.test", ep, 1, "ALLOWED", 0);
    }
    uint64_t deleted = 99;
    assert_int_equal(sfm_store_history_append(st, e, 3, 5, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(sfm_store_history_append(st, e + 3, 4, 5, &deleted), 0);
    assert_int_equal(deleted, 2);
    json_t *a = query(st, 100, 0, NULL, NULL);
    assert_int_equal(json_array_size(a), 5);
    assert_string_equal(endpoint_at(a, 0), "GET /6"); /* newest first */
    assert_string_equal(endpoint_at(a, 4), "GET /2"); /* 0 and 1 were the oldest */
    json_decref(a);

    /* A smaller max (a restart with another --history-max) trims at the next append. */
    assert_int_equal(sfm_store_history_append(st, e, 1, 2, &deleted), 0);
    assert_int_equal(deleted, 4);
    a = query(st, 100, 0, NULL, NULL);
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(endpoint_at(a, 0), "GET /0");
    assert_string_equal(endpoint_at(a, 1), "GET /6");
    json_decref(a);

    assert_int_equal(sfm_store_history_clear(st), 0);
    a = query(st, 100, 0, NULL, NULL);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    sfm_store_close(st);
}

static void test_store_history_query_filters_and_shape(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history_entry e[] = {
        /* 2026-11-27T09:41:07.123Z */
        entry(1795772467123, "mtls@acme.test", "GET /services/data/v64.0/limits", 1, "ALLOWED", 1),
        entry(1795772468000, "", "", 0, "CERTIFICATE_EXPIRED", 1),
        entry(1795772469001, "MTLS@ACME.TEST", "POST /services/oauth2/token", 0, "STANDARD_PORT", 0),
        entry(1795772470002, "admin@acme.test", "GET /services/data/", 1, "ALLOWED", 0),
    };
    assert_int_equal(sfm_store_history_append(st, e, 4, 1000, NULL), 0);

    json_t *a = query(st, 100, 0, NULL, NULL);
    assert_int_equal(json_array_size(a), 4);
    json_t *first = json_array_get(a, 3);
    static const char *const keys[] = {"time",    "listener", "remoteAddress", "username",   "endpoint",
                                       "outcome", "reason",   "status",        "certificate"};
    assert_int_equal(json_object_size(first), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(first, keys[i]));
    assert_string_equal(json_string_value(json_object_get(first, "time")), "2026-11-27T09:41:07.123Z");
    assert_string_equal(json_string_value(json_object_get(first, "listener")), "mtls");
    assert_string_equal(json_string_value(json_object_get(first, "remoteAddress")), "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(first, "username")), "mtls@acme.test");
    assert_string_equal(json_string_value(json_object_get(first, "endpoint")),
                        "GET /services/data/v64.0/limits");
    assert_string_equal(json_string_value(json_object_get(first, "outcome")), "allowed");
    assert_string_equal(json_string_value(json_object_get(first, "reason")), "ALLOWED");
    assert_string_equal(json_string_value(json_object_get(first, "status")), "Success");
    json_t *cert = json_object_get(first, "certificate");
    assert_int_equal(json_object_size(cert), 3);
    assert_string_equal(json_string_value(json_object_get(cert, "subject")), "CN=client,O=Acme");
    assert_string_equal(json_string_value(json_object_get(cert, "issuer")), "CN=Dev CA");
    assert_string_equal(json_string_value(json_object_get(cert, "fingerprintSha256")), FP_A);

    json_t *refused = json_array_get(a, 2); /* a refused handshake: no user, no endpoint */
    assert_string_equal(json_string_value(json_object_get(refused, "time")), "2026-11-27T09:41:08.000Z");
    assert_true(json_is_null(json_object_get(refused, "username")));
    assert_true(json_is_null(json_object_get(refused, "endpoint")));
    assert_string_equal(json_string_value(json_object_get(refused, "outcome")), "denied");
    assert_true(json_is_null(json_object_get(json_array_get(a, 1), "certificate")));
    assert_string_equal(endpoint_at(a, 0), "GET /services/data/");
    json_decref(a);

    a = query(st, 100, 2, NULL, NULL); /* denied */
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(endpoint_at(a, 0), "POST /services/oauth2/token");
    assert_true(json_is_null(json_object_get(json_array_get(a, 1), "endpoint")));
    json_decref(a);

    a = query(st, 100, 1, NULL, NULL); /* allowed */
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(endpoint_at(a, 0), "GET /services/data/");
    json_decref(a);

    a = query(st, 100, 0, "Mtls@Acme.Test", NULL); /* username, any case */
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(endpoint_at(a, 0), "POST /services/oauth2/token");
    assert_string_equal(endpoint_at(a, 1), "GET /services/data/v64.0/limits");
    json_decref(a);

    a = query(st, 100, 2, "mtls@acme.test", NULL); /* filters combine */
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);

    a = query(st, 100, 0, NULL, "CERTIFICATE_EXPIRED");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "reason")),
                        "CERTIFICATE_EXPIRED");
    json_decref(a);

    a = query(st, 100, 1, "admin@acme.test", "STANDARD_PORT");
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    a = query(st, 2, 0, "", ""); /* empty strings mean any */
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(endpoint_at(a, 0), "GET /services/data/");
    json_decref(a);

    sfm_history_filter bad = {.limit = 10, .outcome = 3};
    char *text = NULL;
    assert_int_equal(sfm_store_history_query_json(st, &bad, &text), -EINVAL);
    assert_null(text);
    sfm_store_close(st);
}

static void test_store_history_fields_cut_mid_character_stay_valid_json(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    sfm_history_entry e = entry(0, "u", "GET /", 1, "ALLOWED", 1);
    /* A subject filling its whole field (no NUL), ending in half of "é". */
    memset(e.cert_subject, 'a', sizeof(e.cert_subject));
    e.cert_subject[sizeof(e.cert_subject) - 1] = (char)0xC3;
    assert_int_equal(sfm_store_history_append(st, &e, 1, 10, NULL), 0);
    json_t *a = query(st, 10, 0, NULL, NULL);
    const char *subject =
        json_string_value(json_object_get(json_object_get(json_array_get(a, 0), "certificate"), "subject"));
    assert_non_null(subject);
    assert_int_equal(strlen(subject), sizeof(e.cert_subject) - 1 + 3); /* 511 'a' + U+FFFD */
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "time")),
                        "1970-01-01T00:00:00.000Z");
    json_decref(a);
    sfm_store_close(st);
}

/* ---- reset, memory, versions, durability ---- */

static void test_store_reset_empties_everything(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    sfm_store_user u = {.username = "u@acme.test", .active = 0};
    sfm_history_entry e = entry(1, "u@acme.test", "GET /", 1, "ALLOWED", 0);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "a", PEM_A, sizeof(PEM_A) - 1, 1), 0);
    assert_int_equal(sfm_store_cert_delete(st, FP_P, 1), 0);
    assert_int_equal(sfm_store_user_put(st, &u), 0);
    assert_int_equal(sfm_store_history_append(st, &e, 1, 10, NULL), 0);
    assert_int_equal(sfm_store_reset(st), 0);
    sfm_store_close(st);

    st = t_store_open(t->path);
    assert_int_equal(certs_of(st)->n, 0);
    assert_int_equal(users_of(st)->n, 0);
    json_t *a = query(st, 10, 0, NULL, NULL);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    /* The cached row count was reset too: max 2 keeps two new entries. */
    uint64_t deleted = 9;
    assert_int_equal(sfm_store_history_append(st, &e, 1, 2, &deleted), 0);
    assert_int_equal(sfm_store_history_append(st, &e, 1, 2, &deleted), 0);
    assert_int_equal(deleted, 0);
    sfm_store_close(st);
}

static void test_store_in_memory_works(void **state)
{
    (void)state;
    sfm_store *st = t_store_open(NULL);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "a", PEM_A, sizeof(PEM_A) - 1, 1), 0);
    sfm_store_user u = {.username = "u@acme.test", .profile = "Integration", .active = -1};
    assert_int_equal(sfm_store_user_put(st, &u), 0);
    assert_int_equal(certs_of(st)->n, 1);
    assert_int_equal(users_of(st)->n, 1);
    sfm_store_close(st);
    /* A second in-memory store starts empty. */
    st = t_store_open(NULL);
    assert_int_equal(certs_of(st)->n, 0);
    sfm_store_close(st);
}

/* The whole file, malloc'd; *len gets its size. */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    assert_true(*len < (1 << 20)); /* the whole file, not a prefix */
    fclose(f);
    return buf;
}

static int user_version(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void test_store_newer_schema_is_refused_untouched(void **state)
{
    t_tmpdb *t = *state;
    sfm_store *st = t_store_open(t->path);
    assert_int_equal(sfm_store_cert_put(st, FP_A, "a", PEM_A, sizeof(PEM_A) - 1, 1), 0);
    sfm_store_close(st);
    assert_int_equal(user_version(t->path), SFM_STORE_SCHEMA);

    /* A later sfmtls moved the schema on, and left frames in its WAL. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE later(x); INSERT INTO later VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    size_t before_len, after_len;
    unsigned char *before = read_all(t->path, &before_len);
    char err[SFM_STORE_ERR_LEN] = "";
    st = NULL;
    assert_int_equal(sfm_store_open(&st, t->path, err), -EPROTO);
    assert_null(st);
    print_message("refused: %s\n", err);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "schema 99"));
    assert_non_null(strstr(err, t->path));
    unsigned char *after = read_all(t->path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    assert_int_equal(user_version(t->path), 99);
    free(before);
    free(after);
}

static void test_store_garbage_file_is_refused_with_its_name(void **state)
{
    t_tmpdb *t = *state;
    FILE *f = fopen(t->path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 100; i++)
        fputs("this is a text file, not a database\n", f);
    fclose(f);
    size_t before_len, after_len;
    unsigned char *before = read_all(t->path, &before_len);

    char err[SFM_STORE_ERR_LEN] = "";
    sfm_store *st = NULL;
    assert_true(sfm_store_open(&st, t->path, err) < 0);
    assert_null(st);
    print_message("refused: %s\n", err);
    assert_non_null(strstr(err, t->path));
    assert_non_null(strstr(err, "not a database"));
    unsigned char *after = read_all(t->path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
}

static void test_store_unopenable_path_names_the_path(void **state)
{
    t_tmpdb *t = *state;
    char path[192];
    snprintf(path, sizeof(path), "%s/missing/state.db", t->dir);
    char err[SFM_STORE_ERR_LEN] = "";
    sfm_store *st = NULL;
    assert_int_equal(sfm_store_open(&st, path, err), -ENOENT);
    assert_null(st);
    assert_non_null(strstr(err, path));
}

static void test_store_acknowledged_put_survives_kill_9(void **state)
{
    t_tmpdb *t = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        sfm_store *st = NULL;
        char err[SFM_STORE_ERR_LEN];
        if (sfm_store_open(&st, t->path, err) != 0 ||
            sfm_store_cert_put(st, FP_A, "acked", PEM_A, sizeof(PEM_A) - 1, 42) != 0)
            _exit(1);
        /* Acknowledged: tell the parent, then die without closing anything. */
        if (write(fds[1], "k", 1) != 1)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    close(fds[1]);
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    sfm_store *st = t_store_open(t->path);
    cert_seen *s = certs_of(st);
    assert_int_equal(s->n, 1);
    assert_string_equal(s->fp[0], FP_A);
    assert_string_equal(s->label[0], "acked");
    assert_int_equal(s->created_ms[0], 42);
    sfm_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_certs_survive_a_reopen, t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(test_store_delete_removes_an_upload_and_tombstones_a_preload,
                                        t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test(test_store_each_callback_may_call_the_store),
        cmocka_unit_test_setup_teardown(test_store_user_changes_are_replaced_deleted_and_survive,
                                        t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test(test_store_history_append_trims_to_max),
        cmocka_unit_test(test_store_history_query_filters_and_shape),
        cmocka_unit_test(test_store_history_fields_cut_mid_character_stay_valid_json),
        cmocka_unit_test_setup_teardown(test_store_reset_empties_everything, t_tmpdb_setup, t_tmpdb_teardown),
        cmocka_unit_test(test_store_in_memory_works),
        cmocka_unit_test_setup_teardown(test_store_newer_schema_is_refused_untouched, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(test_store_garbage_file_is_refused_with_its_name, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(test_store_unopenable_path_names_the_path, t_tmpdb_setup,
                                        t_tmpdb_teardown),
        cmocka_unit_test_setup_teardown(test_store_acknowledged_put_survives_kill_9, t_tmpdb_setup,
                                        t_tmpdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
