/*
 * Unit tests of server/state.c: the org snapshot (SPEC sections 3, 6 and 7)
 * as the admin API relies on it. The first snapshot of the bundled fixture,
 * uploads (snapshot isolation, the error order of section 6), deletions,
 * user patches, reset, SIGHUP reloads (stale changes dropped, a failed reload
 * changes nothing), persistence through a new state on the same database,
 * and sfm_state_refresh. Each case is named test_state_<claim>.
 *
 * Every test runs in a fresh temporary directory that is also the state
 * directory: the dev CA (ca.pem is the only trust anchor), clients/ for the
 * fixture's issued certificate, fixture copies and the database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "support.h"

#define T_PATH_MAX 512
#define T_FIXTURE  SFMTLS_SOURCE_DIR "/fixtures/default-org.json"
/** The error buffer size server/main.c gives the loader. */
#define T_ORG_ERR 16384
/** The upload limit of SPEC section 6. */
#define T_UPLOAD_MAX (1024 * 1024)

typedef struct tenv {
    char dir[T_PATH_MAX];
    char db[T_PATH_MAX]; /* a file-backed database, for the restart cases */
    sfm_store *store;
    sfm_state *st;
} tenv;

/* ---- helpers ------------------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    char err[SFM_PKI_ERR_LEN] = "";
    if (sfm_pki_read_file(path, 4 * T_UPLOAD_MAX, &buf, &n, err) != 0)
        fail_msg("%s: %s", path, err);
    if (len)
        *len = n;
    return buf;
}

static sfm_pki_trust *trust_of_dir(const char *dir)
{
    char path[T_PATH_MAX + 16], err[SFM_PKI_ERR_LEN] = "";
    sfm_pki_trust *t = NULL;
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    assert_int_equal(sfm_pki_trust_new(&t), 0);
    if (sfm_pki_trust_add_file(t, path, NULL, err) != 0)
        fail_msg("%s: %s", path, err);
    return t;
}

static sfm_org *org_load(const char *path)
{
    static char err[T_ORG_ERR];
    sfm_org *org = NULL;
    if (sfm_org_load(&org, path, err, sizeof(err)) != 0)
        fail_msg("%s: %s", path, err);
    return org;
}

/* A state on `fixture` and t->store with the dev CA root as the only anchor. */
static sfm_state *state_on(const tenv *t, const char *fixture)
{
    char err[SFM_STATE_ERR_LEN] = "";
    sfm_org *org = org_load(fixture);
    sfm_state *st = NULL;
    int rc = sfm_state_new(&st, org, trust_of_dir(t->dir), t->store, t->dir, err);
    sfm_org_unref(org); /* the state holds its own reference */
    if (rc != 0)
        fail_msg("sfm_state_new: %s", err);
    return st;
}

/* A restart: the state and the database closed, then opened again on `fixture`. */
static void restart(tenv *t, const char *fixture)
{
    sfm_state_free(t->st);
    sfm_store_close(t->store);
    t->store = t_store_open(t->db);
    t->st = state_on(t, fixture);
}

static int setup_env(tenv *t, int file_store)
{
    char err[SFM_PKI_ERR_LEN] = "";
    snprintf(t->dir, sizeof(t->dir), "/tmp/sfmtls-state-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof(t->db), "%.400s/state.db", t->dir);
    if (sfm_pki_ca_init(t->dir, SFM_PKI_KEY_EC_P256, err) != 0)
        fail_msg("sfm_pki_ca_init: %s", err);
    t->store = t_store_open(file_store ? t->db : NULL);
    t->st = state_on(t, T_FIXTURE);
    return 0;
}

static int setup_memory(void **state)
{
    tenv *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    *state = t;
    return setup_env(t, 0);
}

static int setup_file(void **state)
{
    tenv *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    *state = t;
    return setup_env(t, 1);
}

static int teardown_env(void **state)
{
    tenv *t = *state;
    sfm_state_free(t->st);
    sfm_store_close(t->store);
    int rc = t_rmtree(t->dir);
    free(t);
    return rc;
}

/* Options for issue(): which negative kind, and from which CA directory. */
typedef struct issue_kind {
    const char *ca_dir; /* NULL: the test's dev CA */
    int self_signed, expired, not_yet_valid, untrusted;
} issue_kind;

/* Issues a client certificate named `cn` and returns its chain PEM (malloc'd). */
static char *issue(const tenv *t, const char *cn, const issue_kind *k, size_t *len)
{
    char prefix[T_PATH_MAX + 80], chain[T_PATH_MAX + 96], err[SFM_PKI_ERR_LEN] = "";
    snprintf(prefix, sizeof(prefix), "%s/%s", t->dir, cn);
    sfm_pki_issue_opts o = {.kind = SFM_PKI_CLIENT,
                            .cn = cn,
                            .days = 30,
                            .key = SFM_PKI_KEY_EC_P256,
                            .out_prefix = prefix,
                            .self_signed = k ? k->self_signed : 0,
                            .expired = k ? k->expired : 0,
                            .not_yet_valid = k ? k->not_yet_valid : 0,
                            .untrusted = k ? k->untrusted : 0};
    if (sfm_pki_issue(k && k->ca_dir ? k->ca_dir : t->dir, &o, err) != 0)
        fail_msg("sfm_pki_issue %s: %s", cn, err);
    snprintf(chain, sizeof(chain), "%s.chain.pem", prefix);
    return slurp(chain, len);
}

/* Lowercase hex SHA-256 of the first certificate of a PEM text. */
static void leaf_fp(const char *pem, size_t len, char out[65])
{
    sfm_der ders[SFM_PKI_MAX_CHAIN];
    size_t n = 0;
    char err[SFM_PKI_ERR_LEN] = "";
    assert_int_equal(sfm_pki_pem_certs(pem, len, ders, SFM_PKI_MAX_CHAIN, &n, NULL, err), 0);
    assert_true(n >= 1);
    assert_int_equal(sfm_pki_sha256_hex(ders[0].der, ders[0].len, out), 0);
    sfm_pki_ders_free(ders, n);
}

typedef void (*fixture_edit)(json_t *root, void *arg);

/* Writes a copy of the bundled fixture, changed by `edit`, to dir/name; its path into out. */
static void fixture_copy(const tenv *t, const char *name, fixture_edit edit, void *arg, char out[T_PATH_MAX])
{
    json_error_t jerr;
    json_t *root = json_load_file(T_FIXTURE, 0, &jerr);
    if (!root)
        fail_msg("%s: %s", T_FIXTURE, jerr.text);
    edit(root, arg);
    /* Paths in a fixture are relative to it: the copy names the originals. */
    size_t i;
    json_t *app;
    json_array_foreach(json_object_get(root, "connectedApps"), i, app)
    {
        const char *cert = json_string_value(json_object_get(app, "certificate"));
        if (cert && cert[0] != '/') {
            char abs[T_PATH_MAX];
            snprintf(abs, sizeof(abs), "%s/fixtures/%s", SFMTLS_SOURCE_DIR, cert);
            json_object_set_new(app, "certificate", json_string(abs));
        }
    }
    snprintf(out, T_PATH_MAX, "%.400s/%s", t->dir, name);
    assert_int_equal(json_dump_file(root, out, JSON_INDENT(2)), 0);
    json_decref(root);
}

static void edit_no_mutual_auth(json_t *root, void *arg)
{
    (void)arg;
    json_object_set_new(json_object_get(root, "organization"), "mutualAuthentication", json_false());
}

/* Removes the permission set Enforce_mTLS (and mtls@acme.test's assignment of it). */
static void edit_no_enforce_set(json_t *root, void *arg)
{
    (void)arg;
    json_object_set_new(root, "permissionSets", json_array());
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(root, "users"), i, u)
    {
        json_object_del(u, "permissionSets");
    }
}

/* Adds a preload whose file holds a PEM block that is not a certificate. */
static void edit_broken_preload(json_t *root, void *arg)
{
    (void)arg;
    json_array_append_new(json_object_get(root, "mutualAuthCertificates"),
                          json_pack("{s:s, s:s}", "label", "broken", "file", "broken.crt"));
}

static long user_index(const sfm_snapshot *s, const char *username)
{
    long i = sfm_org_find_user(s->org, username);
    if (i < 0)
        fail_msg("no user %s", username);
    return i;
}

static const sfm_user_view *view_of(const sfm_snapshot *s, const char *username)
{
    return &s->users[user_index(s, username)];
}

static const char *profile_of(const sfm_snapshot *s, const char *username)
{
    return s->org->profiles[view_of(s, username)->profile].name;
}

/* The fixture's one preload (label "demo"), or NULL when it is not in force. */
static const sfm_cert_entry *demo_of(const sfm_snapshot *s)
{
    const sfm_cert_entry **list = NULL;
    size_t n = 0;
    const sfm_cert_entry *found = NULL;
    assert_int_equal(sfm_certs_list(s->certs, &list, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (list[i]->preloaded && strcmp(list[i]->label, "demo") == 0)
            found = list[i];
    free(list);
    return found;
}

static char *demo_chain(const tenv *t, size_t *len)
{
    char path[T_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/clients/demo-client.chain.pem", t->dir);
    return slurp(path, len);
}

/* The id of the fixture's preload in the current snapshot, into id. */
static void demo_id(const tenv *t, char id[SFM_SFID_LEN + 1])
{
    sfm_snapshot *s = sfm_state_acquire(t->st);
    const sfm_cert_entry *demo = demo_of(s);
    assert_non_null(demo);
    snprintf(id, SFM_SFID_LEN + 1, "%s", demo->id);
    sfm_snapshot_unref(s);
}

/* Deletes a certificate by id and expects success. */
static void delete_ok(sfm_state *st, const char *id)
{
    sfm_state_error err = {0};
    if (sfm_state_delete_cert(st, id, &err) != 0)
        fail_msg("delete %s: %d %s %s", id, err.status, err.code, err.message);
}

/* Uploads and expects success; returns the entry (a reference). */
static sfm_cert_entry *upload_ok(sfm_state *st, const char *label, const char *pem, size_t len)
{
    sfm_cert_entry *e = NULL;
    sfm_state_error err = {0};
    if (sfm_state_upload(st, label, strlen(label), pem, len, &e, &err) != 0)
        fail_msg("upload %s: %d %s %s", label, err.status, err.code, err.message);
    assert_non_null(e);
    return e;
}

/*
 * Uploads and expects the failure `status` `code`, with the snapshot left as
 * it was (same pointer, same generation).
 */
static void upload_fails(sfm_state *st, const char *label, size_t label_len, const char *pem, size_t len,
                         int status, const char *code)
{
    sfm_snapshot *before = sfm_state_acquire(st);
    sfm_cert_entry *e = NULL;
    sfm_state_error err = {0};
    assert_int_equal(sfm_state_upload(st, label, label_len, pem, len, &e, &err), -1);
    assert_null(e);
    if (strcmp(err.code, code) != 0 || err.status != status)
        fail_msg("expected %d %s, got %d %s (%s)", status, code, err.status, err.code, err.message);
    assert_true(err.message[0] != '\0');
    sfm_snapshot *after = sfm_state_acquire(st);
    assert_ptr_equal(after, before);
    assert_int_equal(after->generation, before->generation);
    sfm_snapshot_unref(after);
    sfm_snapshot_unref(before);
}

static void patch_ok(sfm_state *st, const char *username, const sfm_user_patch *p)
{
    sfm_state_error err = {0};
    if (sfm_state_patch_user(st, username, p, &err) != 0)
        fail_msg("patch %s: %d %s %s", username, err.status, err.code, err.message);
}

/* Patches and expects the failure `status` `code`, with the snapshot left as it was. */
static void patch_fails(sfm_state *st, const char *username, const sfm_user_patch *p, int status,
                        const char *code)
{
    sfm_snapshot *before = sfm_state_acquire(st);
    sfm_state_error err = {0};
    assert_int_equal(sfm_state_patch_user(st, username, p, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    sfm_snapshot *after = sfm_state_acquire(st);
    assert_ptr_equal(after, before);
    assert_int_equal(after->generation, before->generation);
    sfm_snapshot_unref(after);
    sfm_snapshot_unref(before);
}

static int count_user_row(void *arg, const sfm_store_user *u)
{
    (void)u;
    (*(int *)arg)++;
    return 0;
}

/* How many user changes the database holds. */
static int stored_user_changes(sfm_store *s)
{
    int n = 0;
    assert_int_equal(sfm_store_users_each(s, count_user_row, &n), 0);
    return n;
}

/* ---- the first snapshot ------------------------------------------------------------------- */

static void test_state_first_snapshot_has_fixture_users_and_demo_preload(void **state)
{
    tenv *t = *state;
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_non_null(s);
    assert_true(s->generation >= 1);
    assert_int_equal(s->org->n_users, 5);

    /* Effective permissions: the profile's and the permission sets'. */
    const sfm_user_view *mtls = view_of(s, "mtls@acme.test");
    assert_int_equal(mtls->perms,
                     SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    assert_int_equal(mtls->n_permsets, 1);
    assert_string_equal(s->org->permsets[mtls->permsets[0]].name, "Enforce_mTLS");
    assert_string_equal(profile_of(s, "mtls@acme.test"), "Integration");
    assert_int_equal(view_of(s, "admin@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_VIEW_SETUP);
    assert_int_equal(view_of(s, "api@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    assert_int_equal(view_of(s, "user@acme.test")->perms, SFM_PERM_API_ENABLED);
    for (size_t i = 0; i < s->org->n_users; i++)
        assert_int_equal(s->users[i].active, 1);
    /* Usernames are case-insensitive. */
    assert_ptr_equal(view_of(s, "MTLS@Acme.Test"), mtls);

    /* The demo preload, issued by the dev CA into clients/. */
    assert_int_equal(sfm_certs_count(s->certs), 1);
    const sfm_cert_entry *demo = demo_of(s);
    assert_non_null(demo);
    assert_int_equal(demo->preloaded, 1);
    assert_int_equal(demo->chain_length, 2);
    assert_non_null(strstr(demo->subject, "CN=demo-client"));
    assert_ptr_equal(sfm_certs_find_id(s->certs, demo->id), demo);
    static const char *const files[] = {"demo-client.crt", "demo-client.key", "demo-client.chain.pem"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[T_PATH_MAX + 64];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/clients/%s", t->dir, files[i]);
        if (stat(path, &sb) != 0 || sb.st_size == 0)
            fail_msg("%s is missing or empty", path);
    }
    /* The entry is the certificate in those files. */
    size_t len = 0;
    char *chain = demo_chain(t, &len);
    char fp[65];
    leaf_fp(chain, len, fp);
    assert_string_equal(demo->fp_hex, fp);
    free(chain);
    sfm_snapshot_unref(s);
}

static void test_state_restart_keeps_the_issued_preload(void **state)
{
    tenv *t = *state;
    sfm_snapshot *s = sfm_state_acquire(t->st);
    char fp[65];
    assert_non_null(demo_of(s));
    snprintf(fp, sizeof(fp), "%s", demo_of(s)->fp_hex);
    sfm_snapshot_unref(s);
    /* A second start does not issue a new certificate: clients/ already has one. */
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_non_null(demo_of(s));
    assert_string_equal(demo_of(s)->fp_hex, fp);
    sfm_snapshot_unref(s);
}

/* ---- uploads ------------------------------------------------------------------------------ */

static void test_state_upload_is_seen_by_new_snapshots_only(void **state)
{
    tenv *t = *state;
    sfm_snapshot *before = sfm_state_acquire(t->st);
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    char fp[65];
    leaf_fp(pem, len, fp);

    sfm_cert_entry *e = upload_ok(t->st, "alice's cert", pem, len);
    assert_string_equal(e->label, "alice's cert");
    assert_string_equal(e->fp_hex, fp);
    assert_int_equal(e->preloaded, 0);
    assert_int_equal(e->chain_length, 2);
    assert_non_null(strstr(e->subject, "CN=alice"));
    assert_true(e->created_ms > 0);

    sfm_snapshot *after = sfm_state_acquire(t->st);
    assert_ptr_not_equal(after, before);
    assert_true(after->generation > before->generation);
    assert_int_equal(sfm_certs_count(after->certs), 2);
    assert_ptr_equal(sfm_certs_find_fp(after->certs, e->fp), sfm_certs_find_id(after->certs, e->id));
    assert_non_null(sfm_certs_find_fp_hex(after->certs, fp));
    assert_string_equal(sfm_certs_find_id(after->certs, e->id)->label, "alice's cert");
    /* The users did not change. */
    assert_int_equal(view_of(after, "mtls@acme.test")->perms, view_of(before, "mtls@acme.test")->perms);

    /* A snapshot acquired before the upload still shows the org without it. */
    assert_int_equal(sfm_certs_count(before->certs), 1);
    assert_null(sfm_certs_find_fp(before->certs, e->fp));
    assert_null(sfm_certs_find_id(before->certs, e->id));

    sfm_snapshot_unref(after);
    sfm_snapshot_unref(before);
    sfm_cert_entry_unref(e);
    free(pem);
}

/* A PEM text: `n` copies of `block`, then `tail`. */
static char *repeat(const char *block, size_t block_len, size_t n, const char *tail, size_t *len)
{
    size_t tl = strlen(tail);
    char *buf = malloc(block_len * n + tl + 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * block_len, block, block_len);
    memcpy(buf + block_len * n, tail, tl + 1);
    *len = block_len * n + tl;
    return buf;
}

static void test_state_upload_errors_follow_the_spec_order(void **state)
{
    tenv *t = *state;
    static const char garbage[] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                                  "-----END CERTIFICATE-----\n";
    size_t good_len = 0, key_len = 0;
    char *good = issue(t, "good", NULL, &good_len);
    char key_path[T_PATH_MAX + 16];
    snprintf(key_path, sizeof(key_path), "%s/good.key", t->dir);
    char *key = slurp(key_path, &key_len);

    /* A key, a malformed block and over 1 MB: every later check would fail too. */
    size_t huge_len = 0;
    char *huge =
        repeat(garbage, sizeof(garbage) - 1, T_UPLOAD_MAX / (sizeof(garbage) - 1) + 1, key, &huge_len);
    assert_true(huge_len > T_UPLOAD_MAX);

    /* 1. INVALID_LABEL: empty, 65 characters, a control character, a NUL, not UTF-8. */
    upload_fails(t->st, "", 0, huge, huge_len, 400, "INVALID_LABEL");
    char label65[66];
    memset(label65, 'x', 65);
    label65[65] = '\0';
    upload_fails(t->st, label65, 65, huge, huge_len, 400, "INVALID_LABEL");
    upload_fails(t->st, "tab\there", 8, good, good_len, 400, "INVALID_LABEL");
    upload_fails(t->st, "nul\0here", 8, good, good_len, 400, "INVALID_LABEL");
    upload_fails(t->st, "\xff\xfe", 2, good, good_len, 400, "INVALID_LABEL");

    /* 2. CERTIFICATE_TOO_LARGE (413): over 1 MB, or over 10 certificates. */
    upload_fails(t->st, "big", 3, huge, huge_len, 413, "CERTIFICATE_TOO_LARGE");
    size_t eleven_len = 0;
    char *eleven = repeat(good, good_len, 6, key, &eleven_len); /* 12 certificates and a key */
    assert_true(eleven_len < T_UPLOAD_MAX);
    upload_fails(t->st, "many", 4, eleven, eleven_len, 413, "CERTIFICATE_TOO_LARGE");

    /* 3. PRIVATE_KEY_NOT_ALLOWED, before MALFORMED_CERTIFICATE. */
    size_t keyed_len = 0;
    char *keyed = repeat(garbage, sizeof(garbage) - 1, 1, key, &keyed_len);
    upload_fails(t->st, "keyed", 5, keyed, keyed_len, 400, "PRIVATE_KEY_NOT_ALLOWED");
    size_t good_keyed_len = 0;
    char *good_keyed = repeat(good, good_len, 1, key, &good_keyed_len);
    upload_fails(t->st, "good and key", 12, good_keyed, good_keyed_len, 400, "PRIVATE_KEY_NOT_ALLOWED");

    /* 4. MALFORMED_CERTIFICATE: a block that does not decode, or no certificate at all. */
    upload_fails(t->st, "garbage", 7, garbage, sizeof(garbage) - 1, 400, "MALFORMED_CERTIFICATE");
    upload_fails(t->st, "text", 4, "hello", 5, 400, "MALFORMED_CERTIFICATE");
    upload_fails(t->st, "empty", 5, "", 0, 400, "MALFORMED_CERTIFICATE");

    /* 5. SELF_SIGNED_CERTIFICATE (such a leaf is untrusted too). */
    size_t len = 0;
    char *pem = issue(t, "selfie", &(issue_kind){.self_signed = 1}, &len);
    upload_fails(t->st, "self", 4, pem, len, 400, "SELF_SIGNED_CERTIFICATE");
    free(pem);

    /* 6. UNTRUSTED_CERTIFICATE, before CERTIFICATE_EXPIRED: an expired leaf of another CA. */
    char other[T_PATH_MAX + 16], err[SFM_PKI_ERR_LEN] = "";
    snprintf(other, sizeof(other), "%s/other-ca", t->dir);
    if (sfm_pki_ca_init(other, SFM_PKI_KEY_EC_P256, err) != 0)
        fail_msg("sfm_pki_ca_init: %s", err);
    pem = issue(t, "stranger", &(issue_kind){.ca_dir = other, .expired = 1}, &len);
    upload_fails(t->st, "stranger", 8, pem, len, 400, "UNTRUSTED_CERTIFICATE");
    free(pem);
    pem = issue(t, "untrusted", &(issue_kind){.untrusted = 1}, &len);
    upload_fails(t->st, "untrusted", 9, pem, len, 400, "UNTRUSTED_CERTIFICATE");
    free(pem);

    /* 7. CERTIFICATE_EXPIRED, 8. CERTIFICATE_NOT_YET_VALID. */
    pem = issue(t, "old", &(issue_kind){.expired = 1}, &len);
    upload_fails(t->st, "old", 3, pem, len, 400, "CERTIFICATE_EXPIRED");
    free(pem);
    pem = issue(t, "future", &(issue_kind){.not_yet_valid = 1}, &len);
    upload_fails(t->st, "future", 6, pem, len, 400, "CERTIFICATE_NOT_YET_VALID");
    free(pem);

    /* 9. DUPLICATE_CERTIFICATE (409): the preload, and an upload, whatever the label. */
    pem = demo_chain(t, &len);
    upload_fails(t->st, "demo again", 10, pem, len, 409, "DUPLICATE_CERTIFICATE");
    free(pem);
    /* 64 characters (two bytes each) is a valid label. */
    char label64[129];
    for (size_t i = 0; i < 64; i++)
        memcpy(label64 + 2 * i, "\xc3\xa9", 2);
    label64[128] = '\0';
    sfm_cert_entry *e = upload_ok(t->st, label64, good, good_len);
    assert_string_equal(e->label, label64);
    upload_fails(t->st, "good again", 10, good, good_len, 409, "DUPLICATE_CERTIFICATE");
    sfm_cert_entry_unref(e);
    free(good_keyed);
    free(keyed);
    free(eleven);
    free(huge);
    free(key);
    free(good);
}

static void test_state_upload_refused_when_mutual_auth_is_off(void **state)
{
    tenv *t = *state;
    char fixture[T_PATH_MAX];
    fixture_copy(t, "no-mtls.json", edit_no_mutual_auth, NULL, fixture);
    sfm_state_free(t->st);
    t->st = state_on(t, fixture);
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    upload_fails(t->st, "alice", 5, pem, len, 400, "MUTUAL_AUTHENTICATION_NOT_ENABLED");
    free(pem);
}

/* ---- deletions ---------------------------------------------------------------------------- */

static void test_state_delete_unknown_id_is_404(void **state)
{
    tenv *t = *state;
    sfm_snapshot *before = sfm_state_acquire(t->st);
    char id[SFM_SFID_LEN + 1];
    unsigned char fp[32] = {0x42};
    sfm_certs_id_of(fp, id); /* well-formed, but no such certificate */
    const char *const ids[] = {"", "nope", "0P1000000000000", id};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        sfm_state_error err = {0};
        assert_int_equal(sfm_state_delete_cert(t->st, ids[i], &err), -1);
        assert_int_equal(err.status, 404);
        assert_string_equal(err.code, "NOT_FOUND");
    }
    sfm_snapshot *after = sfm_state_acquire(t->st);
    assert_ptr_equal(after, before);
    assert_int_equal(sfm_certs_count(after->certs), 1);
    sfm_snapshot_unref(after);
    sfm_snapshot_unref(before);
}

static void test_state_deleted_preload_stays_deleted_until_uploaded(void **state)
{
    tenv *t = *state;
    char id[SFM_SFID_LEN + 1];
    demo_id(t, id);
    delete_ok(t->st, id);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_int_equal(sfm_certs_count(s->certs), 0);
    sfm_snapshot_unref(s);
    /* Deleting it twice: it is gone. */
    sfm_state_error err = {0};
    assert_int_equal(sfm_state_delete_cert(t->st, id, &err), -1);
    assert_int_equal(err.status, 404);
    assert_string_equal(err.code, "NOT_FOUND");

    /* A restart on the same database: the preload stays deleted. */
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_int_equal(sfm_certs_count(s->certs), 0);
    assert_null(sfm_certs_find_id(s->certs, id));
    sfm_snapshot_unref(s);

    /* Uploading its PEM brings it back, as an upload, and that survives a restart too. */
    size_t len = 0;
    char *pem = demo_chain(t, &len);
    sfm_cert_entry *e = upload_ok(t->st, "demo, uploaded", pem, len);
    assert_string_equal(e->id, id); /* the same certificate has the same id */
    assert_int_equal(e->preloaded, 0);
    sfm_cert_entry_unref(e);
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_int_equal(sfm_certs_count(s->certs), 1);
    const sfm_cert_entry *back = sfm_certs_find_id(s->certs, id);
    assert_non_null(back);
    assert_string_equal(back->label, "demo, uploaded");
    assert_int_equal(back->preloaded, 0);
    sfm_snapshot_unref(s);

    /* Deleting that upload deletes the fixture's certificate again, across restarts. */
    delete_ok(t->st, id);
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_int_equal(sfm_certs_count(s->certs), 0);
    sfm_snapshot_unref(s);
    free(pem);
}

static void test_state_deleted_upload_is_gone_after_restart(void **state)
{
    tenv *t = *state;
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    sfm_cert_entry *e = upload_ok(t->st, "alice", pem, len);
    char id[SFM_SFID_LEN + 1];
    snprintf(id, sizeof(id), "%s", e->id);
    sfm_cert_entry_unref(e);

    restart(t, T_FIXTURE);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_non_null(sfm_certs_find_id(s->certs, id));
    assert_int_equal(sfm_certs_count(s->certs), 2);
    sfm_snapshot_unref(s);

    delete_ok(t->st, id);
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_null(sfm_certs_find_id(s->certs, id));
    assert_non_null(demo_of(s));
    assert_int_equal(sfm_certs_count(s->certs), 1);
    sfm_snapshot_unref(s);
    /* And it can be uploaded again. */
    e = upload_ok(t->st, "alice again", pem, len);
    sfm_cert_entry_unref(e);
    free(pem);
}

/* ---- user patches ------------------------------------------------------------------------- */

static void test_state_patches_merge(void **state)
{
    tenv *t = *state;
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.profile = "Integration", .active = -1});
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_string_equal(profile_of(s, "user@acme.test"), "Integration");
    assert_int_equal(view_of(s, "user@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    assert_int_equal(view_of(s, "user@acme.test")->active, 1);
    sfm_snapshot_unref(s);

    /* A second patch of another field keeps the first (and the username's case does not matter). */
    patch_ok(t->st, "USER@acme.test", &(sfm_user_patch){.active = 0});
    s = sfm_state_acquire(t->st);
    assert_string_equal(profile_of(s, "user@acme.test"), "Integration");
    assert_int_equal(view_of(s, "user@acme.test")->active, 0);
    assert_int_equal(view_of(s, "user@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    /* Other users are untouched. */
    assert_string_equal(profile_of(s, "admin@acme.test"), "System Administrator");
    assert_int_equal(view_of(s, "api@acme.test")->active, 1);
    sfm_snapshot_unref(s);

    /* Adding a permission set adds its permissions, and keeps the rest. */
    static const char *const enforce[] = {"Enforce_mTLS"};
    patch_ok(t->st, "user@acme.test",
             &(sfm_user_patch){.permsets = enforce, .n_permsets = 1, .has_permsets = 1, .active = -1});
    s = sfm_state_acquire(t->st);
    const sfm_user_view *v = view_of(s, "user@acme.test");
    assert_int_equal(v->perms,
                     SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    assert_int_equal(v->n_permsets, 1);
    assert_int_equal(v->active, 0);
    assert_string_equal(profile_of(s, "user@acme.test"), "Integration");
    sfm_snapshot_unref(s);
}

static void test_state_empty_permission_sets_replace_the_fixtures(void **state)
{
    tenv *t = *state;
    patch_ok(t->st, "mtls@acme.test", &(sfm_user_patch){.has_permsets = 1, .active = -1});
    sfm_snapshot *s = sfm_state_acquire(t->st);
    const sfm_user_view *v = view_of(s, "mtls@acme.test");
    assert_int_equal(v->n_permsets, 0);
    assert_int_equal(v->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    assert_string_equal(profile_of(s, "mtls@acme.test"), "Integration");
    sfm_snapshot_unref(s);

    /* A later patch of another field keeps the empty list. */
    patch_ok(t->st, "mtls@acme.test", &(sfm_user_patch){.active = 0});
    s = sfm_state_acquire(t->st);
    assert_int_equal(view_of(s, "mtls@acme.test")->n_permsets, 0);
    assert_false(view_of(s, "mtls@acme.test")->perms & SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    sfm_snapshot_unref(s);
}

static void test_state_bad_patches_change_nothing(void **state)
{
    tenv *t = *state;
    static const char *const unknown_set[] = {"Enforce_mTLS", "No_Such_Set"};
    patch_fails(t->st, "nobody@acme.test", &(sfm_user_patch){.active = 0}, 404, "NOT_FOUND");
    patch_fails(t->st, "user@acme.test", &(sfm_user_patch){.profile = "No Such Profile", .active = 0}, 400,
                "INVALID_CROSS_REFERENCE_KEY");
    patch_fails(t->st, "user@acme.test",
                &(sfm_user_patch){.profile = "Integration",
                                  .permsets = unknown_set,
                                  .n_permsets = 2,
                                  .has_permsets = 1,
                                  .active = 0},
                400, "INVALID_CROSS_REFERENCE_KEY");
    /* Profile names are exact. */
    patch_fails(t->st, "user@acme.test", &(sfm_user_patch){.profile = "integration", .active = -1}, 400,
                "INVALID_CROSS_REFERENCE_KEY");
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_string_equal(profile_of(s, "user@acme.test"), "Standard User");
    assert_int_equal(view_of(s, "user@acme.test")->active, 1);
    assert_int_equal(view_of(s, "user@acme.test")->n_permsets, 0);
    sfm_snapshot_unref(s);
    assert_int_equal(stored_user_changes(t->store), 0);
}

static void test_state_patches_survive_a_restart(void **state)
{
    tenv *t = *state;
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.profile = "System Administrator", .active = -1});
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.active = 0});
    patch_ok(t->st, "mtls@acme.test", &(sfm_user_patch){.has_permsets = 1, .active = -1});
    static const char *const enforce[] = {"Enforce_mTLS"};
    patch_ok(t->st, "api@acme.test",
             &(sfm_user_patch){.permsets = enforce, .n_permsets = 1, .has_permsets = 1, .active = -1});
    assert_int_equal(stored_user_changes(t->store), 3);

    restart(t, T_FIXTURE);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_string_equal(profile_of(s, "user@acme.test"), "System Administrator");
    assert_int_equal(view_of(s, "user@acme.test")->active, 0);
    assert_int_equal(view_of(s, "user@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_VIEW_SETUP);
    /* The empty list survives as an empty list, not as "unchanged". */
    assert_int_equal(view_of(s, "mtls@acme.test")->n_permsets, 0);
    assert_int_equal(view_of(s, "mtls@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    assert_int_equal(view_of(s, "api@acme.test")->perms,
                     SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    assert_int_equal(view_of(s, "admin@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_VIEW_SETUP);
    sfm_snapshot_unref(s);
}

/* ---- reset -------------------------------------------------------------------------------- */

static void test_state_reset_returns_to_the_fixture(void **state)
{
    tenv *t = *state;
    sfm_snapshot *fresh = sfm_state_acquire(t->st);
    char demo[SFM_SFID_LEN + 1];
    demo_id(t, demo);
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    sfm_cert_entry *e = upload_ok(t->st, "alice", pem, len);
    delete_ok(t->st, demo);
    patch_ok(t->st, "mtls@acme.test",
             &(sfm_user_patch){.profile = "Standard User", .has_permsets = 1, .active = 0});

    sfm_snapshot *changed = sfm_state_acquire(t->st);
    sfm_state_error err = {0};
    assert_int_equal(sfm_state_reset(t->st, &err), 0);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_true(s->generation > changed->generation);
    assert_int_equal(sfm_certs_count(s->certs), 1);
    assert_non_null(sfm_certs_find_id(s->certs, demo));
    assert_int_equal(sfm_certs_find_id(s->certs, demo)->preloaded, 1);
    assert_null(sfm_certs_find_id(s->certs, e->id));
    for (size_t i = 0; i < s->org->n_users; i++) {
        assert_int_equal(s->users[i].perms, fresh->users[i].perms);
        assert_int_equal(s->users[i].profile, fresh->users[i].profile);
        assert_int_equal(s->users[i].n_permsets, fresh->users[i].n_permsets);
        assert_int_equal(s->users[i].active, 1);
    }
    /* The snapshot from before the reset is unchanged. */
    assert_int_equal(view_of(changed, "mtls@acme.test")->active, 0);
    assert_int_equal(sfm_certs_count(changed->certs), 1);
    sfm_snapshot_unref(changed);
    sfm_snapshot_unref(s);

    /* The database forgot too: a restart shows the fixture, and the upload can be made again. */
    assert_int_equal(stored_user_changes(t->store), 0);
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_int_equal(sfm_certs_count(s->certs), 1);
    assert_non_null(sfm_certs_find_id(s->certs, demo));
    assert_int_equal(view_of(s, "mtls@acme.test")->perms, view_of(fresh, "mtls@acme.test")->perms);
    sfm_snapshot_unref(s);
    sfm_cert_entry_unref(e);
    e = upload_ok(t->st, "alice", pem, len);
    sfm_cert_entry_unref(e);
    sfm_snapshot_unref(fresh);
    free(pem);
}

/* ---- reload (SIGHUP) ---------------------------------------------------------------------- */

static void test_state_reload_drops_stale_patches_and_keeps_uploads(void **state)
{
    tenv *t = *state;
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    sfm_cert_entry *e = upload_ok(t->st, "alice", pem, len);
    static const char *const enforce[] = {"Enforce_mTLS"};
    /* Names the set the new fixture no longer has: the whole change goes. */
    patch_ok(
        t->st, "user@acme.test",
        &(sfm_user_patch){
            .profile = "Integration", .permsets = enforce, .n_permsets = 1, .has_permsets = 1, .active = -1});
    /* Still applies: stays. */
    patch_ok(t->st, "admin@acme.test", &(sfm_user_patch){.active = 0});
    assert_int_equal(stored_user_changes(t->store), 2);
    sfm_snapshot *before = sfm_state_acquire(t->st);

    char fixture[T_PATH_MAX], err[SFM_STATE_ERR_LEN] = "";
    fixture_copy(t, "no-enforce.json", edit_no_enforce_set, NULL, fixture);
    sfm_org *org = org_load(fixture);
    assert_int_equal(sfm_state_reload(t->st, org, trust_of_dir(t->dir), err), 0);
    sfm_org_unref(org);

    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_true(s->generation > before->generation);
    assert_int_equal(s->org->n_permsets, 0);
    assert_string_equal(profile_of(s, "user@acme.test"), "Standard User");
    assert_int_equal(view_of(s, "user@acme.test")->perms, SFM_PERM_API_ENABLED);
    assert_int_equal(view_of(s, "user@acme.test")->n_permsets, 0);
    assert_int_equal(view_of(s, "admin@acme.test")->active, 0);
    assert_int_equal(view_of(s, "mtls@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    assert_non_null(sfm_certs_find_id(s->certs, e->id));
    assert_non_null(demo_of(s));
    assert_int_equal(sfm_certs_count(s->certs), 2);
    /* The snapshot from before the reload still has the old org and the change. */
    assert_int_equal(before->org->n_permsets, 1);
    assert_int_equal(view_of(before, "user@acme.test")->n_permsets, 1);
    sfm_snapshot_unref(before);
    sfm_snapshot_unref(s);

    /* Dropped from the database too: a restart on the old fixture does not bring it back. */
    assert_int_equal(stored_user_changes(t->store), 1);
    restart(t, T_FIXTURE);
    s = sfm_state_acquire(t->st);
    assert_string_equal(profile_of(s, "user@acme.test"), "Standard User");
    assert_int_equal(view_of(s, "admin@acme.test")->active, 0);
    assert_non_null(sfm_certs_find_id(s->certs, e->id));
    sfm_snapshot_unref(s);
    sfm_cert_entry_unref(e);
    free(pem);
}

static void test_state_reload_keeps_runtime_certificate_changes(void **state)
{
    tenv *t = *state;
    char demo[SFM_SFID_LEN + 1];
    demo_id(t, demo);
    delete_ok(t->st, demo);
    size_t len = 0;
    char *pem = issue(t, "alice", NULL, &len);
    sfm_cert_entry *alice = upload_ok(t->st, "alice", pem, len);

    /* SIGHUP with the same fixture: the deleted preload stays deleted, the upload stays. */
    char err[SFM_STATE_ERR_LEN] = "";
    sfm_org *org = org_load(T_FIXTURE);
    assert_int_equal(sfm_state_reload(t->st, org, trust_of_dir(t->dir), err), 0);
    sfm_org_unref(org);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_null(sfm_certs_find_id(s->certs, demo));
    assert_non_null(sfm_certs_find_id(s->certs, alice->id));
    assert_int_equal(sfm_certs_count(s->certs), 1);
    sfm_snapshot_unref(s);
    sfm_cert_entry_unref(alice);
    free(pem);
}

static void test_state_restart_on_a_new_fixture_drops_stale_patches(void **state)
{
    tenv *t = *state;
    static const char *const enforce[] = {"Enforce_mTLS"};
    patch_ok(t->st, "api@acme.test",
             &(sfm_user_patch){.permsets = enforce, .n_permsets = 1, .has_permsets = 1, .active = -1});
    char fixture[T_PATH_MAX];
    fixture_copy(t, "no-enforce.json", edit_no_enforce_set, NULL, fixture);
    restart(t, fixture);
    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_int_equal(view_of(s, "api@acme.test")->perms, SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY);
    sfm_snapshot_unref(s);
    assert_int_equal(stored_user_changes(t->store), 0);
}

static void test_state_failed_reload_changes_nothing(void **state)
{
    tenv *t = *state;
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.active = 0});
    sfm_snapshot *before = sfm_state_acquire(t->st);

    /* The loader only checks a preload file's shape; the certificate in it does not parse. */
    char bad[T_PATH_MAX + 16];
    snprintf(bad, sizeof(bad), "%s/broken.crt", t->dir);
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", f);
    assert_int_equal(fclose(f), 0);
    char fixture[T_PATH_MAX], err[SFM_STATE_ERR_LEN] = "";
    fixture_copy(t, "broken.json", edit_broken_preload, NULL, fixture);
    sfm_org *org = org_load(fixture);
    sfm_pki_trust *trust = trust_of_dir(t->dir);
    assert_true(sfm_state_reload(t->st, org, trust, err) < 0);
    if (!strstr(err, "broken"))
        fail_msg("the error does not name the preload: %s", err);

    sfm_snapshot *s = sfm_state_acquire(t->st);
    assert_ptr_equal(s, before);
    assert_int_equal(s->generation, before->generation);
    assert_int_equal(view_of(s, "user@acme.test")->active, 0);
    sfm_snapshot_unref(s);
    /* Still the caller's (ASan: no double free, no leak). */
    assert_int_equal(atomic_load(&org->refs), 1);
    sfm_org_unref(org);
    sfm_pki_trust_free(trust);

    /* The state still works, and its change is still stored. */
    assert_int_equal(stored_user_changes(t->store), 1);
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.active = 1});
    s = sfm_state_acquire(t->st);
    assert_true(s->generation > before->generation);
    assert_string_equal(s->org->path, before->org->path);
    sfm_snapshot_unref(s);
    sfm_snapshot_unref(before);
}

/* ---- refresh ------------------------------------------------------------------------------ */

static void test_state_refresh_swaps_only_after_a_change(void **state)
{
    tenv *t = *state;
    sfm_snapshot *held = sfm_state_acquire(t->st);
    sfm_snapshot *first = held;
    /* Nothing changed: the same snapshot, and no reference taken or dropped. */
    int refs = atomic_load(&held->refs);
    assert_ptr_equal(sfm_state_refresh(t->st, &held), first);
    assert_ptr_equal(held, first);
    assert_int_equal(atomic_load(&first->refs), refs);

    /* After a change: the new snapshot, and the old reference dropped. */
    sfm_snapshot_ref(first); /* to look at it afterwards */
    uint64_t gen = first->generation;
    patch_ok(t->st, "user@acme.test", &(sfm_user_patch){.active = 0});
    const sfm_snapshot *now = sfm_state_refresh(t->st, &held);
    assert_ptr_equal(now, held);
    assert_ptr_not_equal(held, first);
    assert_true(held->generation > gen);
    assert_int_equal(view_of(held, "user@acme.test")->active, 0);
    /* The state dropped `first` when it published, `held` dropped it now: only ours is left. */
    assert_int_equal(atomic_load(&first->refs), 1);
    sfm_snapshot_unref(first);
    /* It is the state's current snapshot. */
    sfm_snapshot *cur = sfm_state_acquire(t->st);
    assert_ptr_equal(cur, held);
    sfm_snapshot_unref(cur);

    /* A worker that holds nothing yet gets the current one. */
    sfm_snapshot *none = NULL;
    assert_ptr_equal(sfm_state_refresh(t->st, &none), held);
    assert_ptr_equal(none, held);
    sfm_snapshot_unref(none);
    sfm_snapshot_unref(held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_first_snapshot_has_fixture_users_and_demo_preload,
                                        setup_memory, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_restart_keeps_the_issued_preload, setup_file,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_upload_is_seen_by_new_snapshots_only, setup_memory,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_upload_errors_follow_the_spec_order, setup_memory,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_upload_refused_when_mutual_auth_is_off, setup_memory,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_delete_unknown_id_is_404, setup_memory, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_deleted_preload_stays_deleted_until_uploaded, setup_file,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_deleted_upload_is_gone_after_restart, setup_file,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_patches_merge, setup_memory, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_empty_permission_sets_replace_the_fixtures, setup_memory,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_bad_patches_change_nothing, setup_memory, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_patches_survive_a_restart, setup_file, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_reset_returns_to_the_fixture, setup_file, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_reload_drops_stale_patches_and_keeps_uploads, setup_file,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_reload_keeps_runtime_certificate_changes, setup_memory,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_restart_on_a_new_fixture_drops_stale_patches, setup_file,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_state_failed_reload_changes_nothing, setup_memory, teardown_env),
        cmocka_unit_test_setup_teardown(test_state_refresh_swaps_only_after_a_change, setup_memory,
                                        teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
