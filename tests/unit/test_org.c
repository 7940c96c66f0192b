/*
 * Unit tests of server/org.c: the fixture loader (SPEC section 3). The
 * bundled org, one case per validation problem (each message names the file,
 * the JSON path and the line), every problem of a file in one report, the
 * warning, paths relative to the fixture, ids, and a 10,000-user org. Each
 * case is named test_org_<claim>.
 *
 * Fixtures are written into a fresh temporary directory per test, next to a
 * PEM file (good.crt) and a file that is not PEM (notpem.crt).
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
#include <time.h>
#include <unistd.h>

#include "org.h"
#include "support.h"

/** Longest path the tests build, and of their temporary directory. */
#define T_PATH_MAX 4096
#define T_ROOT_MAX 256
/** The error buffer size server/main.c gives the loader. */
#define T_ERR_MAX 16384
/** Users in the large generated org. */
#define T_BULK_USERS 10000

static const char k_pem[] = "-----BEGIN CERTIFICATE-----\n"
                            "MIIBAzCBqqADAgECAgEBMAoGCCqGSM49BAMCMAAwHhcNMjUwMTAxMDAwMDAwWhcN\n"
                            "-----END CERTIFICATE-----\n";

typedef struct tdir {
    char root[T_ROOT_MAX];
    char err[T_ERR_MAX];
} tdir;

static int setup_dir(void **state)
{
    tdir *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->root, sizeof(t->root), "/tmp/sfmtls-org-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    tdir *t = *state;
    int rc = t_rmtree(t->root);
    free(t);
    return rc;
}

/* Writes `text` to root/name (directories must exist); the full path into out. */
static void write_file(const tdir *t, const char *name, const char *text, char out[T_PATH_MAX])
{
    assert_true(strlen(name) < T_PATH_MAX - T_ROOT_MAX);
    snprintf(out, T_PATH_MAX, "%s/%.*s", t->root, T_PATH_MAX - T_ROOT_MAX - 1, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void write_certs(const tdir *t)
{
    char p[T_PATH_MAX];
    write_file(t, "good.crt", k_pem, p);
    write_file(t, "notpem.crt", "just some text\n", p);
}

/* Loads a fixture text expected to fail; the report is left in t->err. */
static void load_fails(tdir *t, const char *text)
{
    char path[T_PATH_MAX];
    sfm_org *org = NULL;
    write_certs(t);
    write_file(t, "fixture.json", text, path);
    assert_true(sfm_org_load(&org, path, t->err, sizeof(t->err)) < 0);
    assert_null(org);
    assert_true(t->err[0] != '\0');
    /* Every line of the report names the file. */
    for (const char *line = t->err; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        assert_memory_equal(line, path, strlen(path));
}

static size_t count_lines(const char *s)
{
    size_t n = *s ? 1 : 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* ---- release labels ------------------------------------------------------------------------- */

static void test_org_version_labels_follow_three_releases_a_year(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"31.0", "Summer '14"}, {"32.0", "Winter '15"}, {"33.0", "Spring '15"},
        {"64.0", "Summer '25"}, {"65.0", "Winter '26"}, {"66.0", "Spring '26"},
        {"67.0", "Summer '26"}, {"68.0", "Winter '27"}, {"30.0", "Spring '14"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[24];
        assert_int_equal(sfm_org_version_label(cases[i][0], label, sizeof(label)), 0);
        assert_string_equal(label, cases[i][1]);
    }
    char label[24];
    assert_true(sfm_org_version_label("64.5", label, sizeof(label)) < 0);
    assert_true(sfm_org_version_label("v64.0", label, sizeof(label)) < 0);
    assert_true(sfm_org_version_label("64.0x", label, sizeof(label)) < 0);
}

static void test_org_perm_bits_name_the_permissions_the_policy_reads(void **state)
{
    (void)state;
    assert_int_equal(sfm_perm_bit("ApiEnabled"), SFM_PERM_API_ENABLED);
    assert_int_equal(sfm_perm_bit("ApiUserOnly"), SFM_PERM_API_USER_ONLY);
    assert_int_equal(sfm_perm_bit("ViewSetup"), SFM_PERM_VIEW_SETUP);
    assert_int_equal(sfm_perm_bit("EnforceMutualAuthentication"), SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    assert_int_equal(sfm_perm_bit("CustomizeApplication"), 0);
    assert_int_equal(sfm_perm_bit("apienabled"), 0);
}

/* ---- the bundled org ------------------------------------------------------------------------ */

static void test_org_loads_the_bundled_default(void **state)
{
    (void)state;
    sfm_org *org = NULL;
    char err[T_ERR_MAX];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(sfm_org_load(&org, SFMTLS_SOURCE_DIR "/fixtures/default-org.json", err, sizeof(err)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("      default org loaded in %.3f ms\n", elapsed_ms(&t0, &t1));

    assert_string_equal(org->id, "00D000000000001EAA");
    assert_string_equal(org->name, "Acme");
    assert_string_equal(org->my_domain, "acme");
    assert_false(org->is_sandbox);
    assert_true(org->mutual_authentication);
    assert_int_equal(org->n_versions, 37);
    assert_string_equal(org->versions[0].version, "31.0");
    assert_string_equal(org->versions[36].version, "67.0");
    assert_string_equal(org->versions[36].label, "Summer '26");
    /* GET /services/data/'s answer, rendered once at load. */
    assert_int_equal(org->versions_json_len, strlen(org->versions_json));
    assert_memory_equal(
        org->versions_json,
        "[{\"label\":\"Summer '14\",\"url\":\"/services/data/v31.0\",\"version\":\"31.0\"},",
        strlen("[{\"label\":\"Summer '14\",\"url\":\"/services/data/v31.0\",\"version\":\"31.0\"},"));
    assert_string_equal(org->versions_json + org->versions_json_len - strlen("\"version\":\"67.0\"}]"),
                        "\"version\":\"67.0\"}]");
    assert_int_equal(org->n_warnings, 0);

    assert_int_equal(org->n_profiles, 4);
    long admin_profile = sfm_org_find_profile(org, "System Administrator");
    long integration = sfm_org_find_profile(org, "Integration");
    assert_true(admin_profile >= 0 && integration >= 0 && sfm_org_find_profile(org, "Standard User") >= 0);
    assert_int_equal(sfm_org_find_profile(org, "integration"), -1);
    assert_true(sfm_sfid_valid(org->profiles[integration].id, "00e"));
    assert_int_equal(org->profiles[admin_profile].n_permissions, 3);
    assert_string_equal(org->profiles[admin_profile].permissions[2], "CustomizeApplication");
    assert_int_equal(org->profiles[admin_profile].bits, SFM_PERM_API_ENABLED | SFM_PERM_VIEW_SETUP);

    assert_int_equal(org->n_permsets, 1);
    long enforce = sfm_org_find_permset(org, "Enforce_mTLS");
    assert_int_equal(enforce, 0);
    assert_string_equal(org->permsets[0].label, "Enforce SSL/TLS Mutual Authentication");
    assert_true(sfm_sfid_valid(org->permsets[0].id, "0PS"));

    assert_int_equal(org->n_users, 5);
    for (size_t i = 0; i < org->n_users; i++) {
        assert_int_equal(strlen(org->users[i].id), SFM_SFID_LEN);
        assert_true(sfm_sfid_valid(org->users[i].id, "005"));
        assert_true(org->users[i].active);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(org->users[i].id, org->users[j].id);
    }
    long admin = sfm_org_find_user(org, "admin@acme.test");
    assert_true(admin >= 0);
    /* Derived from the username (tests/unit/test_sfid.c pins the algorithm): stable across releases. */
    assert_string_equal(org->users[admin].id, "0050HKEyotDw3kGQDR");
    assert_string_equal(org->users[admin].security_token, "TKN");
    assert_string_equal(org->users[admin].password, "Admin-123");
    assert_int_equal(org->users[admin].profile, admin_profile);
    assert_int_equal(sfm_org_find_user(org, "ADMIN@Acme.Test"), admin); /* usernames ignore case */

    long mtls = sfm_org_find_user(org, "mtls@acme.test");
    assert_true(mtls >= 0);
    const sfm_fx_user *m = &org->users[mtls];
    assert_null(m->security_token);
    assert_int_equal(m->profile, integration);
    assert_int_equal(m->n_permsets, 1);
    assert_int_equal(m->permsets[0], enforce);
    unsigned bits = org->profiles[m->profile].bits | org->permsets[m->permsets[0]].bits;
    assert_int_equal(bits,
                     SFM_PERM_API_ENABLED | SFM_PERM_API_USER_ONLY | SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);

    long api = sfm_org_find_user(org, "api@acme.test");
    assert_true(api >= 0);
    assert_int_equal(org->users[api].n_permsets, 0);
    assert_false(org->profiles[org->users[api].profile].bits & SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION);
    assert_true(sfm_org_find_user(org, "user@acme.test") >= 0);
    long noapi = sfm_org_find_user(org, "noapi@acme.test");
    assert_true(noapi >= 0);
    assert_int_equal(org->profiles[org->users[noapi].profile].bits, SFM_PERM_VIEW_SETUP); /* no ApiEnabled */
    assert_int_equal(sfm_org_find_user(org, "nobody@acme.test"), -1);

    /* The Partner app signs JWTs with the bundled RSA certificate. */
    assert_non_null(org->apps[0].certificate_pem);
    assert_non_null(strstr(org->apps[0].certificate_pem, "-----BEGIN CERTIFICATE-----"));

    assert_int_equal(org->n_apps, 1);
    assert_string_equal(org->apps[0].name, "Partner");
    assert_string_equal(org->apps[0].consumer_key, "ck-partner");
    assert_string_equal(org->apps[0].consumer_secret, "cs-partner");
    assert_string_equal(org->apps[0].run_as, "mtls@acme.test");
    assert_string_equal(org->apps[0].callback_url, "http://localhost:1717/callback");
    assert_non_null(strstr(org->apps[0].certificate_file, "/fixtures/certs/partner-jwt.crt"));

    assert_int_equal(org->n_certs, 1);
    assert_string_equal(org->certs[0].label, "demo");
    assert_string_equal(org->certs[0].issue_cn, "demo-client");
    assert_null(org->certs[0].file);
    assert_null(org->certs[0].pem);

    json_t *accounts = json_object_get(org->records, "Account");
    assert_true(json_is_array(accounts));
    assert_string_equal(json_string_value(json_object_get(json_array_get(accounts, 0), "Name")), "Acme Corp");
    sfm_org_unref(org);
}

static void test_org_reference_counts_share_the_org(void **state)
{
    (void)state;
    sfm_org *org = NULL;
    char err[T_ERR_MAX];
    assert_int_equal(sfm_org_load(&org, SFMTLS_SOURCE_DIR "/fixtures/default-org.json", err, sizeof(err)), 0);
    assert_ptr_equal(sfm_org_ref(org), org);
    assert_int_equal(atomic_load(&org->refs), 2);
    sfm_org_unref(org);
    /* Still usable after the first unref; the sanitizer build catches a use after free here. */
    assert_string_equal(org->name, "Acme");
    sfm_org_unref(org);
    assert_null(sfm_org_ref(NULL));
    sfm_org_unref(NULL);
}

/* ---- one problem each --------------------------------------------------------------------------- */

/* Lines 1-7 of most cases below (the organization on line 2, profiles P and Api on lines 4 and 5,
 * permission set S on line 7); what a case adds starts on line 8. */
#define HEAD                                                                                           \
    "{\n"                                                                                              \
    "\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\", \"apiVersions\": [\"64.0\"]},\n" \
    "\"profiles\": [\n"                                                                                \
    "  {\"name\": \"P\", \"permissions\": [\"ApiEnabled\"]},\n"                                        \
    "  {\"name\": \"Api\", \"permissions\": [\"ApiEnabled\", \"ApiUserOnly\"]}\n"                      \
    "],\n"                                                                                             \
    "\"permissionSets\": [{\"name\": \"S\", \"permissions\": [\"EnforceMutualAuthentication\"]}],\n"

/* Lines 8-10: one good user, a@t of profile P, on line 9; what follows starts on line 11. */
#define USERS                                                              \
    "\"users\": [\n"                                                       \
    "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\"}\n" \
    "],\n"

/* Lines 1-2: only the organization. */
#define ORG_ONLY \
    "{\n"        \
    "\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\", \"apiVersions\": [\"64.0\"]},\n"

typedef struct problem {
    const char *name;
    const char *text;
    const char *expect[3]; /* substrings of the report; each one starting with "$" is one line of it */
} problem;

static const problem k_problems[] = {
    {"unknown profile",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\"},\n"
          "  {\"username\": \"b@t\", \"password\": \"p\", \"profile\": \"Integraton\"}\n" /* 10 */
          "]}\n",
     {"$.users[1].profile (line 10): unknown profile \"Integraton\""}},
    {"unknown permission set",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"Api\",\n"
          "   \"permissionSets\": [\"S\", \"Enforce_mtls\"]}\n" /* 10 */
          "]}\n",
     {"$.users[0].permissionSets[1] (line 10): unknown permission set \"Enforce_mtls\""}},
    {"duplicate username, in another case",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\"},\n"
          "  {\"username\": \"A@T\", \"password\": \"p\", \"profile\": \"P\"}\n" /* 10 */
          "]}\n",
     {"$.users[1].username (line 10): duplicate username \"A@T\"", "first at $.users[0])"}},
    {"duplicate profile name",
     ORG_ONLY "\"profiles\": [\n"
              "  {\"name\": \"P\", \"permissions\": []},\n"
              "  {\"name\": \"P\", \"permissions\": []}\n" /* 5 */
              "],\n"
              "\"users\": []}\n",
     {"$.profiles[1].name (line 5): duplicate profile name \"P\" (first at $.profiles[0])"}},
    {"duplicate permission set name",
     ORG_ONLY "\"profiles\": [],\n"
              "\"permissionSets\": [{\"name\": \"S\", \"permissions\": []},\n"
              "  {\"name\": \"S\", \"permissions\": []}],\n" /* 5 */
              "\"users\": []}\n",
     {"$.permissionSets[1].name (line 5): duplicate permission set name \"S\" (first at "
      "$.permissionSets[0])"}},
    {"duplicate connected app name",
     HEAD USERS "\"connectedApps\": [\n"
                "  {\"name\": \"X\", \"consumerKey\": \"k1\", \"consumerSecret\": \"s\"},\n"
                "  {\"name\": \"X\", \"consumerKey\": \"k2\", \"consumerSecret\": \"s\"}\n" /* 13 */
                "]}\n",
     {"$.connectedApps[1].name (line 13): duplicate connected app name \"X\" (first at $.connectedApps[0])"}},
    {"duplicate consumerKey",
     HEAD USERS "\"connectedApps\": [\n"
                "  {\"name\": \"X\", \"consumerKey\": \"k1\", \"consumerSecret\": \"s\"},\n"
                "  {\"name\": \"Y\",\n"
                "   \"consumerKey\": \"k1\", \"consumerSecret\": \"s\"}\n" /* 14 */
                "]}\n",
     {"$.connectedApps[1].consumerKey (line 14): duplicate consumerKey \"k1\" (first at "
      "$.connectedApps[0])"}},
    {"duplicate certificate label",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"demo\", \"issue\": {\"cn\": \"c1\"}},\n"
                "  {\"label\": \"demo\", \"issue\": {\"cn\": \"c2\"}}\n" /* 13 */
                "]}\n",
     {"$.mutualAuthCertificates[1].label (line 13): duplicate certificate label \"demo\""}},
    {"org id with a wrong checksum",
     "{\n"
     "\"organization\": {\"id\": \"00D000000000001EAB\", \"name\": \"T\", \"apiVersions\": [\"64.0\"]},\n"
     "\"profiles\": [], \"users\": []}\n",
     {"$.organization.id (line 2): id \"00D000000000001EAB\" has a wrong checksum (the 18-character form of "
      "00D000000000001 is 00D000000000001EAA)"}},
    {"org id that is no id",
     "{\n"
     "\"organization\": {\"name\": \"T\", \"apiVersions\": [\"64.0\"],\n"
     "  \"id\": \"00D-1\"},\n"
     "\"profiles\": [], \"users\": []}\n",
     {"$.organization.id (line 3): expected a 15 or 18 character id of letters and digits starting with 00D, "
      "not \"00D-1\""}},
    {"user id of another kind",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\", \"id\": \"001000000000001\"}\n"
          "]}\n",
     {"$.users[0].id (line 9): id \"001000000000001\" does not start with 005"}},
    {"given id used twice (15 and 18 character forms)",
     HEAD
     "\"users\": [\n"
     "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\", \"id\": \"005000000000001\"},\n"
     "  {\"username\": \"b@t\", \"password\": \"p\", \"profile\": \"P\", \"id\": \"005000000000001aaa\"}\n"
     "]}\n",
     {"$.users[1].id (line 10): duplicate id \"005000000000001AAA\" (also at $.users[0].id)"}},
    {"runAs naming no user",
     HEAD USERS "\"connectedApps\": [\n"
                "  {\"name\": \"X\", \"consumerKey\": \"k1\", \"consumerSecret\": \"s\",\n"
                "   \"runAs\": \"nobody@t\"}\n" /* 13 */
                "]}\n",
     {"$.connectedApps[0].runAs (line 13): runAs names no user of the fixture: \"nobody@t\""}},
    {"unreadable certificate file",
     HEAD USERS "\"connectedApps\": [\n"
                "  {\"name\": \"X\", \"consumerKey\": \"k1\", \"consumerSecret\": \"s\", \"certificate\": "
                "\"missing.crt\"}\n"
                "]}\n",
     {"$.connectedApps[0].certificate (line 12): cannot read the certificate file \"",
      "/missing.crt\": No such file or directory"}},
    {"certificate file that is not PEM",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\", \"file\": \"notpem.crt\"}\n" /* 12 */
                "]}\n",
     {"$.mutualAuthCertificates[0].file (line 12): \"", "/notpem.crt\" holds no PEM certificate"}},
    {"certificate file that is a directory",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\", \"file\": \".\"}\n" /* 12 */
                "]}\n",
     {"$.mutualAuthCertificates[0].file (line 12): cannot read the certificate file", "not a regular file"}},
    {"empty apiVersions",
     "{\n"
     "\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\",\n"
     "   \"apiVersions\": []},\n"
     "\"profiles\": [], \"users\": []}\n",
     {"$.organization.apiVersions (line 3): expected at least one version"}},
    {"bad and duplicate versions",
     "{\n"
     "\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\",\n"
     "   \"apiVersions\": [\"64.0\", \"064.0\",\n"
     "   \"64.0\"]},\n"
     "\"profiles\": [], \"users\": []}\n",
     {"$.organization.apiVersions[1] (line 3): expected a version such as \"64.0\"",
      "$.organization.apiVersions[2] (line 4): duplicate version \"64.0\""}},
    {"unknown top-level key (a typo)",
     HEAD USERS "\"permissionsets\": []\n" /* 11 */
                "}\n",
     {"$.permissionsets (line 11): unknown key \"permissionsets\" (did you mean \"permissionSets\"?)"}},
    {"unknown key in a user",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\",\n"
          "   \"email\": \"a@t\"}\n" /* 10 */
          "]}\n",
     {"$.users[0].email (line 10): unknown key \"email\" (known keys: username, password, profile, "
      "securityToken, "
      "permissionSets, active, id)"}},
    {"unknown key in an issue request",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\", \"issue\": {\"cn\": \"c\", \"days\": 5}}\n" /* 12 */
                "]}\n",
     {"$.mutualAuthCertificates[0].issue.days (line 12): unknown key \"days\""}},
    {"wrong type",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\", \"active\": \"yes\"}\n" /* 9 */
          "]}\n",
     {"$.users[0].active (line 9): expected true or false"}},
    {"empty string",
     HEAD "\"users\": [\n"
          "  {\"username\": \"\", \"password\": \"p\", \"profile\": \"P\"}\n" /* 9 */
          "]}\n",
     {"$.users[0].username (line 9): expected a non-empty string"}},
    {"missing required key",
     HEAD "\"users\": [\n"
          "  {\"username\": \"a@t\",\n" /* 9 */
          "   \"profile\": \"P\"}\n"
          "]}\n",
     {"$.users[0] (line 9): missing required key \"password\""}},
    {"missing section",
     HEAD "\"records\": {}\n"
          "}\n",
     {"$ (line 1): missing required key \"users\""}},
    {"not an object", "[\n]\n", {"$ (line 1): expected an object"}},
    {"certificate label too long",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\", "
                "\"file\": \"good.crt\"}\n"
                "]}\n",
     {"$.mutualAuthCertificates[0].label (line 12): a label has 1 to 64 characters"}},
    {"certificate with both file and issue",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\", \"file\": \"good.crt\", \"issue\": {\"cn\": \"c\"}}\n"
                "]}\n",
     {"$.mutualAuthCertificates[0] (line 12): give either \"file\" or \"issue\", not both"}},
    {"certificate with neither file nor issue",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\"}\n"
                "]}\n",
     {"$.mutualAuthCertificates[0] (line 12): missing \"file\" or \"issue\""}},
    {"cn that is no file name",
     HEAD USERS "\"mutualAuthCertificates\": [\n"
                "  {\"label\": \"x\", \"issue\": {\n"
                "    \"cn\": \"../evil\"}}\n" /* 13 */
                "]}\n",
     {"$.mutualAuthCertificates[0].issue.cn (line 13): a cn has 1 to 64 characters of A-Z a-z 0-9 . _ -"}},
    {"records: a type that is no sObject name, a list that is no array",
     HEAD USERS "\"records\": {\n"
                "  \"Account\": [{\"Name\": \"x\"}],\n"
                "  \"Weird Type\": [],\n" /* 13 */
                "  \"Contact\": {}\n"     /* 14 */
                "}}\n",
     {"$.records[\"Weird Type\"] (line 13): not an sObject type name",
      "$.records.Contact (line 14): expected an array of records"}},
    {"records: a field that is no scalar, under a key with escapes",
     HEAD USERS "\"records\": {\n"
                "  \"Account\": [\n"
                "    {\"Name\": \"a \\\"quoted\\\" ], {name\",\n"
                "     \"a\\\"b\\u00e9\": {\"nested\": 1}}\n" /* 14 */
                "  ]\n"
                "}}\n",
     {"$.records.Account[0][\"a\\\"b\xc3\xa9\"] (line 14): expected a string, number, boolean or null"}},
};

static void test_org_reports_each_problem_with_path_and_line(void **state)
{
    tdir *t = *state;
    for (size_t i = 0; i < sizeof(k_problems) / sizeof(k_problems[0]); i++) {
        const problem *p = &k_problems[i];
        print_message("      %s\n", p->name);
        load_fails(t, p->text);
        size_t lines = 0;
        for (size_t k = 0; k < 3 && p->expect[k]; k++) {
            if (!strstr(t->err, p->expect[k]))
                fail_msg("%s: \"%s\" is not in the report:\n%s", p->name, p->expect[k], t->err);
            lines += p->expect[k][0] == '$'; /* a message; other expectations are more of the same line */
        }
        if (count_lines(t->err) != lines)
            fail_msg("%s: %zu problems expected, the report has more:\n%s", p->name, lines, t->err);
    }
}

static void test_org_reports_every_problem_of_a_file(void **state)
{
    tdir *t = *state;
    static const char *const expect[] = {
        "$.organization.name (line 3): expected a non-empty string",
        "$.organization.id (line 4): expected a 15 or 18 character id",
        "$.organization.apiVersions[1] (line 5): expected a version such as \"64.0\"",
        "$.profiles[0].permissions[1] (line 9): expected a permission name",
        "$.permissionsets (line 11): unknown key \"permissionsets\"",
        "$.users[0].profile (line 13): unknown profile \"Nope\"",
        "$.users[1].username (line 14): duplicate username \"A@T\"",
        "$.users[2] (line 15): missing required key \"password\"",
        "$.connectedApps[0].runAs (line 18): runAs names no user of the fixture: \"ghost@t\"",
        "$.mutualAuthCertificates[0].file (line 21): \"",
        "$.records.Lead[0].Tags (line 24): expected a string, number, boolean or null",
    };
    load_fails(t, "{\n"                                                                        /* 1 */
                  "  \"organization\": {\n"                                                    /* 2 */
                  "    \"name\": 7,\n"                                                         /* 3 */
                  "    \"id\": \"001x\",\n"                                                    /* 4 */
                  "    \"apiVersions\": [\"64.0\", \"sixty\"]\n"                               /* 5 */
                  "  },\n"                                                                     /* 6 */
                  "  \"profiles\": [\n"                                                        /* 7 */
                  "    {\"name\": \"P\", \"permissions\": [\n"                                 /* 8 */
                  "      \"ApiEnabled\", 3]}\n"                                                /* 9 */
                  "  ],\n"                                                                     /* 10 */
                  "  \"permissionsets\": [],\n"                                                /* 11 */
                  "  \"users\": [\n"                                                           /* 12 */
                  "    {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"Nope\"},\n" /* 13 */
                  "    {\"username\": \"A@T\", \"password\": \"p\", \"profile\": \"P\"},\n"    /* 14 */
                  "    {\"username\": \"c@t\", \"profile\": \"P\"}\n"                          /* 15 */
                  "  ],\n"                                                                     /* 16 */
                  "  \"connectedApps\": [{\"name\": \"X\", \"consumerKey\": \"k\",\n"          /* 17 */
                  "    \"consumerSecret\": \"s\", \"runAs\": \"ghost@t\"}],\n"                 /* 18 */
                  "  \"mutualAuthCertificates\": [\n"                                          /* 19 */
                  "    {\"label\": \"x\",\n"                                                   /* 20 */
                  "     \"file\": \"notpem.crt\"}],\n"                                         /* 21 */
                  "  \"records\": {\n"                                                         /* 22 */
                  "    \"Lead\": [{\"Name\": \"n\",\n"                                         /* 23 */
                  "      \"Tags\": [\"a\"]}]}\n"                                               /* 24 */
                  "}\n");
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        if (!strstr(t->err, expect[k]))
            fail_msg("\"%s\" is not in the report:\n%s", expect[k], t->err);
    }
    assert_int_equal(count_lines(t->err), sizeof(expect) / sizeof(expect[0]));
}

static void test_org_a_full_report_says_how_many_more(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], err[512];
    char text[64 * 1024];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s\"users\": [\n", HEAD);
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "%s{\"username\": \"u%d@t\", \"password\": \"p\"}\n", i ? "," : "", i);
    snprintf(text + n, sizeof(text) - n, "]}\n");
    write_file(t, "fixture.json", text, path);
    sfm_org *org = NULL;
    assert_true(sfm_org_load(&org, path, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "$.users[0] (line 9): missing required key \"profile\""));
    assert_non_null(strstr(err, " more problems not shown)"));
    assert_true(strlen(err) < sizeof(err));
    /* The count is on the last line, and the problems shown plus those counted are all 100. */
    const char *last = strrchr(err, '\n');
    assert_non_null(last);
    size_t more = 0;
    char tail = 0;
    assert_int_equal(sscanf(last, "\n(%zu more problems not shown%c", &more, &tail), 2);
    assert_int_equal(tail, ')');
    assert_true(more > 0);
    assert_int_equal(count_lines(err) - 1 + more, 100);
}

static void test_org_syntax_error_names_line_and_column(void **state)
{
    tdir *t = *state;
    load_fails(t, "{\n  \"organization\": {\n    \"id\": ,\n  }\n}\n");
    assert_non_null(strstr(t->err, "fixture.json: line 3, column 11: "));
    load_fails(t, "{\"users\": [], \"users\": []}");
    assert_non_null(strstr(t->err, "line 1, column "));
    assert_non_null(strstr(t->err, "duplicate object key"));
}

static void test_org_unreadable_fixture_says_why(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], err[T_ERR_MAX];
    sfm_org *org = NULL;
    snprintf(path, sizeof(path), "%s/absent.json", t->root);
    assert_true(sfm_org_load(&org, path, err, sizeof(err)) < 0);
    assert_null(org);
    assert_non_null(strstr(err, "absent.json: cannot read: No such file or directory"));
}

/* ---- warnings, paths, ids -------------------------------------------------------------------- */

static void test_org_warns_of_enforce_without_api_user_only(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], err[T_ERR_MAX];
    sfm_org *org = NULL;
    write_file(
        t, "fixture.json",
        HEAD
        "\"users\": [\n"
        "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"Api\", \"permissionSets\": [\"S\"]},\n"
        "  {\"username\": \"b@t\", \"password\": \"p\", \"profile\": \"P\",\n" /* 10 */
        "   \"permissionSets\": [\"S\", \"S\"]}\n"
        "]}\n",
        path);
    assert_int_equal(sfm_org_load(&org, path, err, sizeof(err)), 0);
    assert_int_equal(org->n_warnings, 1);
    char want[T_PATH_MAX + 256];
    snprintf(want, sizeof(want),
             "%s: $.users[1] (line 10): user \"b@t\" has EnforceMutualAuthentication without ApiUserOnly "
             "(Salesforce assigns it to API-only users)",
             path);
    assert_string_equal(org->warnings[0], want);
    assert_int_equal(org->users[1].n_permsets, 1); /* listed twice, assigned once */
    sfm_org_unref(org);
}

static void test_org_resolves_files_against_the_fixture_directory(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], want[T_PATH_MAX + 64], err[T_ERR_MAX], p[T_PATH_MAX];
    snprintf(p, sizeof(p), "%s/sub", t->root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/sub/certs", t->root);
    assert_int_equal(mkdir(p, 0700), 0);
    write_file(t, "sub/certs/jwt.crt", k_pem, p);
    write_file(t, "partner.crt", k_pem, p);
    char text[2 * T_PATH_MAX], abs_notpem[T_PATH_MAX];
    write_file(t, "notpem.crt", "just some text\n", abs_notpem);
    snprintf(text, sizeof(text),
             HEAD USERS
             "\"connectedApps\": [{\"name\": \"X\", \"consumerKey\": \"k\", \"consumerSecret\": \"s\",\n"
             "  \"certificate\": \"certs/jwt.crt\", \"runAs\": \"A@T\"}],\n"
             "\"mutualAuthCertificates\": [{\"label\": \"partner\", \"file\": \"../partner.crt\"},\n"
             "  {\"label\": \"abs\", \"file\": \"%s\"}]\n"
             "}\n",
             abs_notpem);
    write_file(t, "sub/fixture.json", text, path);
    sfm_org *org = NULL;
    /* An absolute path is kept as it is (here: no PEM, which shows the file was read from there). */
    assert_true(sfm_org_load(&org, path, err, sizeof(err)) < 0);
    snprintf(want, sizeof(want), "\"%s\" holds no PEM certificate", abs_notpem);
    assert_non_null(strstr(err, want));
    assert_int_equal(count_lines(err), 1);

    write_file(t, "sub/fixture.json",
               HEAD USERS
               "\"connectedApps\": [{\"name\": \"X\", \"consumerKey\": \"k\", \"consumerSecret\": \"s\",\n"
               "  \"certificate\": \"certs/jwt.crt\", \"runAs\": \"A@T\"}],\n"
               "\"mutualAuthCertificates\": [{\"label\": \"partner\", \"file\": \"../partner.crt\"}]\n"
               "}\n",
               path);
    assert_int_equal(sfm_org_load(&org, path, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/sub/certs/jwt.crt", t->root);
    assert_string_equal(org->apps[0].certificate_file, want);
    assert_string_equal(org->apps[0].certificate_pem, k_pem);
    assert_int_equal(org->apps[0].certificate_len, strlen(k_pem));
    assert_string_equal(org->apps[0].run_as, "a@t"); /* the fixture's spelling of the username */
    snprintf(want, sizeof(want), "%s/sub/../partner.crt", t->root);
    assert_string_equal(org->certs[0].file, want);
    assert_string_equal(org->certs[0].pem, k_pem);
    assert_null(org->certs[0].issue_cn);
    sfm_org_unref(org);
}

static void test_org_ids_given_kept_derived_unique(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], err[T_ERR_MAX], text[4096], taken[SFM_SFID_LEN + 1], salted[SFM_SFID_LEN + 1];
    /* b@t's derived id is given to a@t: b@t must get the next salt, not a duplicate. */
    sfm_sfid_derive("005", "b@t", 0, taken);
    sfm_sfid_derive("005", "b@t", 1, salted);
    snprintf(
        text, sizeof(text),
        "{\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\", \"apiVersions\": [\"64.0\"]},\n"
        " \"profiles\": [{\"name\": \"P\", \"permissions\": [], \"id\": \"00e000000000001\"}],\n"
        " \"users\": [\n"
        "  {\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\", \"id\": \"%s\"},\n"
        "  {\"username\": \"B@t\", \"password\": \"p\", \"profile\": \"P\", \"active\": false},\n"
        "  {\"username\": \"c@t\", \"password\": \"p\", \"profile\": \"P\", \"id\": \"005000000000009\"}\n"
        "]}\n",
        taken);
    write_file(t, "fixture.json", text, path);
    sfm_org *org = NULL;
    assert_int_equal(sfm_org_load(&org, path, err, sizeof(err)), 0);
    assert_string_equal(org->id, "00D000000000001EAA"); /* stored as 18 */
    assert_string_equal(org->profiles[0].id, "00e000000000001AAA");
    assert_string_equal(org->users[0].id, taken);
    assert_string_not_equal(salted, taken); /* the salt reaches the id */
    assert_string_equal(org->users[1].id,
                        salted); /* derived from "b@t": the username's case does not count */
    assert_string_not_equal(org->users[1].id, org->users[0].id);
    assert_false(org->users[1].active);
    assert_string_equal(org->users[2].id, "005000000000009AAA");
    assert_non_null(org->records);
    assert_int_equal(json_object_size(org->records), 0); /* absent: an empty object */
    sfm_org_unref(org);
}

/* ---- a large org ------------------------------------------------------------------------------ */

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_org_loads_ten_thousand_users(void **state)
{
    tdir *t = *state;
    char path[T_PATH_MAX], err[T_ERR_MAX];
    size_t cap = 256 + (size_t)T_BULK_USERS * 160, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(
        text + n, cap - n,
        "{\"organization\": {\"id\": \"00D000000000001\", \"name\": \"Bulk\", \"apiVersions\": "
        "[\"64.0\"]},\n"
        " \"profiles\": [{\"name\": \"Admin\", \"permissions\": [\"ApiEnabled\", \"ViewSetup\"]},\n"
        "  {\"name\": \"Integration\", \"permissions\": [\"ApiEnabled\", \"ApiUserOnly\"]},\n"
        "  {\"name\": \"Standard\", \"permissions\": [\"ApiEnabled\"]}],\n"
        " \"permissionSets\": [{\"name\": \"Enforce\", \"permissions\": "
        "[\"EnforceMutualAuthentication\"]},\n"
        "  {\"name\": \"Extra\", \"permissions\": [\"Other\"]}],\n"
        " \"users\": [\n");
    for (int i = 0; i < T_BULK_USERS; i++) {
        static const char *const profiles[] = {"Admin", "Integration", "Standard"};
        int integration = i % 3 == 1;
        n += (size_t)snprintf(
            text + n, cap - n,
            "%s  {\"username\": \"user%05d@bulk.test\", \"password\": \"pw-%d\", \"profile\": "
            "\"%s\"%s}\n",
            i ? "," : "", i, i, profiles[i % 3],
            integration ? ", \"permissionSets\": [\"Enforce\", \"Extra\"]" : "");
        assert_true(n < cap);
    }
    n += (size_t)snprintf(text + n, cap - n, "]}\n");
    assert_true(n < cap);
    write_file(t, "bulk.json", text, path);
    free(text);

    sfm_org *org = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = sfm_org_load(&org, path, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0)
        fail_msg("%s", err);
    print_message("      %d-user org loaded in %.3f ms\n", T_BULK_USERS, elapsed_ms(&t0, &t1));
    assert_int_equal(org->n_users, T_BULK_USERS);
    assert_int_equal(org->n_warnings, 0);
    assert_int_equal(sfm_org_find_user(org, "user00000@bulk.test"), 0);
    assert_int_equal(sfm_org_find_user(org, "USER09999@BULK.TEST"), 9999);
    assert_int_equal(sfm_org_find_user(org, "user10000@bulk.test"), -1);
    for (long i = 0; i < T_BULK_USERS; i += 997) {
        char name[64];
        snprintf(name, sizeof(name), "user%05ld@bulk.test", i);
        assert_int_equal(sfm_org_find_user(org, name), i);
    }
    assert_int_equal(org->users[4].n_permsets, 2);
    const char **ids = malloc(T_BULK_USERS * sizeof(*ids));
    assert_non_null(ids);
    for (size_t i = 0; i < T_BULK_USERS; i++) {
        assert_true(sfm_sfid_valid(org->users[i].id, "005"));
        ids[i] = org->users[i].id;
    }
    qsort(ids, T_BULK_USERS, sizeof(*ids), cmp_ids);
    for (size_t i = 1; i < T_BULK_USERS; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
    sfm_org_unref(org);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_version_labels_follow_three_releases_a_year),
        cmocka_unit_test(test_org_perm_bits_name_the_permissions_the_policy_reads),
        cmocka_unit_test(test_org_loads_the_bundled_default),
        cmocka_unit_test(test_org_reference_counts_share_the_org),
        cmocka_unit_test_setup_teardown(test_org_reports_each_problem_with_path_and_line, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_reports_every_problem_of_a_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_a_full_report_says_how_many_more, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_syntax_error_names_line_and_column, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_unreadable_fixture_says_why, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_warns_of_enforce_without_api_user_only, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_resolves_files_against_the_fixture_directory, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_ids_given_kept_derived_unique, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_org_loads_ten_thousand_users, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
