/*
 * Unit tests of server/records.c: the org's sObject records as the REST and
 * SOAP APIs see them (SPEC sections 3 and 5). Key prefixes, stable ids in
 * their 15 and 18 character forms, types and fields, create / update /
 * delete / get with each of Salesforce's errors, queries over the current
 * records, the reset back to the fixture, and readers and writers on many
 * threads at once (run it under the sanitizer build). Each case is named
 * test_records_<claim>.
 *
 * The org is the bundled default fixture (4 Accounts, 2 Contacts), or a
 * small one written into a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "records.h"
#include "sfid.h"
#include "support.h"

#define T_ERR_MAX 16384
/** Threads of each kind in the concurrency case, and the operations each makes. */
#define T_WRITERS 4
#define T_READERS 4
#define T_ROUNDS  200

typedef struct env {
    sfm_org *org;
    sfm_records *r;
    char dir[64];
} env;

static sfm_org *load_org(const char *path)
{
    static char err[T_ERR_MAX];
    sfm_org *org = NULL;
    int rc = sfm_org_load(&org, path, err, sizeof(err));
    if (rc < 0)
        fail_msg("%s", err);
    return org;
}

/* The bundled org. */
static int setup_default(void **state)
{
    env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->org = load_org(SFMTLS_SOURCE_DIR "/fixtures/default-org.json");
    assert_int_equal(sfm_records_new(&e->r, e->org), 0);
    *state = e;
    return 0;
}

/* A small org with a custom type, a type with no records and fields spelt two ways. */
static const char k_small[] =
    "{\"organization\": {\"id\": \"00D000000000001\", \"name\": \"T\", \"apiVersions\": [\"64.0\"]},\n"
    " \"profiles\": [{\"name\": \"P\", \"permissions\": [\"ApiEnabled\"]}],\n"
    " \"users\": [{\"username\": \"a@t\", \"password\": \"p\", \"profile\": \"P\"}],\n"
    " \"records\": {\n"
    "  \"Widget__c\": [{\"Name\": \"w1\", \"Size__c\": 3, \"active__c\": true},\n"
    "                {\"name\": \"w2\", \"Colour__c\": \"red\", \"Active__c\": false, \"Id\": "
    "\"ignored\"}],\n"
    "  \"Lead\": [],\n"
    "  \"Case\": [{\"Subject\": \"s\"}]\n"
    " }}\n";

static int setup_small(void **state)
{
    env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    snprintf(e->dir, sizeof(e->dir), "/tmp/sfmtls-records-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/org.json", e->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(k_small, 1, strlen(k_small), f), strlen(k_small));
    assert_int_equal(fclose(f), 0);
    e->org = load_org(path);
    assert_int_equal(sfm_records_new(&e->r, e->org), 0);
    *state = e;
    return 0;
}

static int teardown_env(void **state)
{
    env *e = *state;
    sfm_records_free(e->r);
    sfm_org_unref(e->org);
    int rc = e->dir[0] ? t_rmtree(e->dir) : 0;
    free(e);
    return rc;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Runs `soql` (which must parse and succeed); a new reference to the result. */
static json_t *query(sfm_records *r, const char *soql)
{
    sfm_soql *q = NULL;
    sfm_data_error e = {0};
    if (sfm_soql_parse(soql, &q, &e) != 0)
        fail_msg("parse %s: %s %s", soql, e.code ? e.code : "?", e.message);
    json_t *out = NULL;
    int rc = sfm_records_query(r, q, "64.0", &out, &e);
    sfm_soql_free(q);
    if (rc != 0)
        fail_msg("query %s: %d %s %s", soql, rc, e.code ? e.code : "?", e.message);
    assert_non_null(out);
    return out;
}

/* The ids a query of `type` answers, as a new JSON array of strings in answer order. */
static json_t *ids_of(sfm_records *r, const char *type)
{
    char soql[128];
    snprintf(soql, sizeof(soql), "SELECT Id FROM %s", type);
    json_t *res = query(r, soql);
    json_t *ids = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(res, "records"), i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "Id"));
        assert_non_null(id);
        json_array_append_new(ids, json_string(id));
    }
    assert_int_equal(json_array_size(ids), json_integer_value(json_object_get(res, "totalSize")));
    json_decref(res);
    return ids;
}

/* The id of the record of `type` whose Name is `name` (a query; fails the test when there is none). */
static void id_named(sfm_records *r, const char *type, const char *name, char id[SFM_SFID_LEN + 1])
{
    char soql[160];
    snprintf(soql, sizeof(soql), "SELECT Id FROM %s WHERE Name = '%s'", type, name);
    json_t *res = query(r, soql);
    json_t *recs = json_object_get(res, "records");
    assert_int_equal(json_array_size(recs), 1);
    snprintf(id, SFM_SFID_LEN + 1, "%s", json_string_value(json_object_get(json_array_get(recs, 0), "Id")));
    json_decref(res);
}

/* A well-formed id: 18 characters, Salesforce's checksum, the prefix. */
static void assert_id(const char *id, const char *prefix)
{
    assert_non_null(id);
    assert_int_equal(strlen(id), SFM_SFID_LEN);
    assert_memory_equal(id, prefix, 3);
    char full[SFM_SFID_LEN + 1], head[16];
    memcpy(head, id, 15);
    head[15] = '\0';
    assert_int_equal(sfm_sfid_to18(head, full), 0);
    assert_string_equal(full, id);
}

static json_t *get(sfm_records *r, const char *type, const char *id)
{
    json_t *o = NULL;
    assert_int_equal(sfm_records_get(r, type, id, "64.0", &o), 0);
    assert_non_null(o);
    return o;
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void assert_error(const sfm_data_error *e, int status, const char *code, const char *message)
{
    assert_int_equal(e->status, status);
    assert_non_null(e->code);
    assert_string_equal(e->code, code);
    if (message)
        assert_string_equal(e->message, message);
}

/* ---- prefixes, types, fields ---------------------------------------------------------------------- */

static void test_records_prefixes_follow_salesforce(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Account", "001"}, {"Contact", "003"}, {"Opportunity", "006"},
        {"Lead", "00Q"},    {"Case", "500"},    {"account", "001"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char p[4];
        sfm_records_prefix(cases[i][0], p);
        assert_string_equal(p, cases[i][1]);
    }
    /* Any other type: "a0" and one base-62 character, the same whatever the case of the name. */
    char a[4], b[4];
    sfm_records_prefix("Widget__c", a);
    sfm_records_prefix("WIDGET__C", b);
    assert_string_equal(a, b);
    assert_memory_equal(a, "a0", 2);
    assert_non_null(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", a[2]));
    assert_int_equal(a[3], '\0');
}

static void test_records_types_are_sorted_and_fields_are_the_union(void **state)
{
    env *e = *state;
    json_t *types = sfm_records_types(e->r);
    json_t *want = json_pack("[s,s,s]", "Case", "Lead", "Widget__c");
    assert_true(json_equal(types, want));
    json_decref(types);
    json_decref(want);

    /* Id, Name, then first-seen order; the first spelling wins; the fixture's own "Id" is not a field. */
    char canonical[64] = "";
    json_t *fields = sfm_records_fields(e->r, "widget__C", canonical, sizeof(canonical));
    want = json_pack("[s,s,s,s,s]", "Id", "Name", "Size__c", "active__c", "Colour__c");
    assert_true(json_equal(fields, want));
    assert_string_equal(canonical, "Widget__c");
    json_decref(fields);
    json_decref(want);

    fields = sfm_records_fields(e->r, "Lead", NULL, 0);
    want = json_pack("[s,s]", "Id", "Name");
    assert_true(json_equal(fields, want));
    json_decref(fields);
    json_decref(want);

    assert_null(sfm_records_fields(e->r, "Gadget__c", canonical, sizeof(canonical)));
    assert_string_equal(canonical, "Widget__c"); /* untouched */
}

static void test_records_default_org_has_its_fixture_types(void **state)
{
    env *e = *state;
    json_t *types = sfm_records_types(e->r);
    json_t *want = json_pack("[s,s]", "Account", "Contact");
    assert_true(json_equal(types, want));
    json_decref(types);
    json_decref(want);
    json_t *fields = sfm_records_fields(e->r, "Account", NULL, 0);
    want = json_pack("[s,s,s,s,s]", "Id", "Name", "Industry", "AnnualRevenue", "Type");
    assert_true(json_equal(fields, want));
    json_decref(fields);
    json_decref(want);
}

/* ---- ids ------------------------------------------------------------------------------------------ */

static void test_records_fixture_ids_are_stable_and_well_formed(void **state)
{
    env *e = *state;
    json_t *accounts = ids_of(e->r, "Account");
    json_t *contacts = ids_of(e->r, "Contact");
    assert_int_equal(json_array_size(accounts), 4);
    assert_int_equal(json_array_size(contacts), 2);
    size_t i;
    json_t *id;
    json_array_foreach(accounts, i, id) assert_id(json_string_value(id), "001");
    json_array_foreach(contacts, i, id) assert_id(json_string_value(id), "003");
    for (size_t a = 0; a < 4; a++) {
        for (size_t b = a + 1; b < 4; b++)
            assert_false(json_equal(json_array_get(accounts, a), json_array_get(accounts, b)));
    }

    /* Another start on the same fixture (a restart) gives the same ids, in the fixture's order. */
    sfm_records *again = NULL;
    assert_int_equal(sfm_records_new(&again, e->org), 0);
    json_t *accounts2 = ids_of(again, "Account");
    json_t *contacts2 = ids_of(again, "Contact");
    assert_true(json_equal(accounts, accounts2));
    assert_true(json_equal(contacts, contacts2));
    char first[SFM_SFID_LEN + 1];
    id_named(again, "Account", "Acme Corp", first);
    assert_string_equal(first, json_string_value(json_array_get(accounts, 0)));
    sfm_records_free(again);
    json_decref(accounts);
    json_decref(contacts);
    json_decref(accounts2);
    json_decref(contacts2);
}

static void test_records_custom_type_ids_use_its_prefix(void **state)
{
    env *e = *state;
    char prefix[4];
    sfm_records_prefix("Widget__c", prefix);
    json_t *ids = ids_of(e->r, "Widget__c");
    assert_int_equal(json_array_size(ids), 2);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) assert_id(json_string_value(id), prefix);
    json_decref(ids);
    ids = ids_of(e->r, "Case");
    assert_int_equal(json_array_size(ids), 1);
    assert_id(json_string_value(json_array_get(ids, 0)), "500");
    json_decref(ids);
}

/* ---- get ------------------------------------------------------------------------------------------ */

static void test_records_get_accepts_15_and_18_characters(void **state)
{
    env *e = *state;
    char id[SFM_SFID_LEN + 1];
    id_named(e->r, "Account", "Umbrella", id);

    json_t *o = get(e->r, "Account", id);
    /* attributes first, then Id, then every field of the type in order: null where the record has none. */
    const char *keys[] = {"attributes", "Id", "Name", "Industry", "AnnualRevenue", "Type"};
    void *it = json_object_iter(o);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++, it = json_object_iter_next(o, it)) {
        assert_non_null(it);
        assert_string_equal(json_object_iter_key(it), keys[i]);
    }
    assert_null(it);
    json_t *attrs = json_object_get(o, "attributes");
    assert_string_equal(str_of(attrs, "type"), "Account");
    char url[128];
    snprintf(url, sizeof(url), "/services/data/v64.0/sobjects/Account/%s", id);
    assert_string_equal(str_of(attrs, "url"), url);
    assert_string_equal(str_of(o, "Id"), id);
    assert_string_equal(str_of(o, "Name"), "Umbrella");
    assert_string_equal(str_of(o, "Industry"), "Healthcare");
    assert_true(json_is_null(json_object_get(o, "AnnualRevenue")));
    json_decref(o);

    /* The 15-character form, an 18-character one with its suffix in lower case, the type in any case. */
    char id15[16], lower[SFM_SFID_LEN + 1];
    memcpy(id15, id, 15);
    id15[15] = '\0';
    memcpy(lower, id, sizeof(lower));
    for (int i = 15; i < 18; i++)
        lower[i] = (char)((lower[i] >= 'A' && lower[i] <= 'Z') ? lower[i] - 'A' + 'a' : lower[i]);
    const char *forms[] = {id15, lower};
    for (size_t i = 0; i < 2; i++) {
        o = get(e->r, "ACCOUNT", forms[i]);
        assert_string_equal(str_of(o, "Id"), id); /* answers carry 18 characters */
        assert_string_equal(str_of(json_object_get(o, "attributes"), "type"), "Account");
        json_decref(o);
    }
}

static void test_records_get_unknown_type_or_record(void **state)
{
    env *e = *state;
    json_t *o = NULL;
    char id[SFM_SFID_LEN + 1], contact[SFM_SFID_LEN + 1], bad[SFM_SFID_LEN + 1];
    id_named(e->r, "Account", "Globex", id);
    id_named(e->r, "Contact", "Ada Lovelace", contact);
    assert_int_equal(sfm_records_get(e->r, "Acount", id, "64.0", &o), -ESRCH);
    /* A Contact's id is no Account. */
    assert_int_equal(sfm_records_get(e->r, "Account", contact, "64.0", &o), -ENOENT);
    /* A wrong checksum, a malformed id, an id nobody has. */
    memcpy(bad, id, sizeof(bad));
    bad[17] = bad[17] == 'A' ? 'B' : 'A';
    assert_int_equal(sfm_records_get(e->r, "Account", bad, "64.0", &o), -ENOENT);
    assert_int_equal(sfm_records_get(e->r, "Account", "describe", "64.0", &o), -ENOENT);
    assert_int_equal(sfm_records_get(e->r, "Account", "001000000000000", "64.0", &o), -ENOENT);
    assert_null(o);
}

/* ---- create, update, delete ----------------------------------------------------------------------- */

static void test_records_create_then_get(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    char id[19] = "", id2[19] = "";
    json_t *fields = json_pack("{s:s,s:s,s:n}", "Name", "Hooli", "industry", "Retail", "AnnualRevenue");
    assert_int_equal(sfm_records_create(e->r, "account", fields, id, &err), 0);
    assert_id(id, "001");
    json_t *o = get(e->r, "Account", id);
    assert_string_equal(str_of(o, "Name"), "Hooli");
    assert_string_equal(str_of(o, "Industry"), "Retail"); /* stored under the canonical name */
    assert_null(json_object_get(o, "industry"));
    assert_true(json_is_null(json_object_get(o, "AnnualRevenue")));
    assert_true(json_is_null(json_object_get(o, "Type")));
    json_decref(o);

    /* A second record: another id; both are now in queries. */
    assert_int_equal(sfm_records_create(e->r, "Account", fields, id2, &err), 0);
    assert_id(id2, "001");
    assert_string_not_equal(id, id2);
    json_t *ids = ids_of(e->r, "Account");
    assert_int_equal(json_array_size(ids), 6);
    assert_string_equal(json_string_value(json_array_get(ids, 4)), id);
    assert_string_equal(json_string_value(json_array_get(ids, 5)), id2);
    json_decref(ids);

    /* The caller's object is copied, not kept. */
    json_object_set_new(fields, "Name", json_string("changed"));
    o = get(e->r, "Account", id);
    assert_string_equal(str_of(o, "Name"), "Hooli");
    json_decref(o);

    /* Another start creating the same records gives the same ids. */
    sfm_records *again = NULL;
    char again_id[19];
    assert_int_equal(sfm_records_new(&again, e->org), 0);
    assert_int_equal(sfm_records_create(again, "Account", fields, again_id, &err), 0);
    assert_string_equal(again_id, id);
    sfm_records_free(again);
    json_decref(fields);
}

static void test_records_create_errors_change_nothing(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    char id[19] = "untouched";
    json_t *ok = json_pack("{s:s}", "Name", "x");
    assert_int_equal(sfm_records_create(e->r, "Gadget__c", ok, id, &err), -ESRCH);
    assert_error(&err, 404, "NOT_FOUND", "The requested resource does not exist");

    static const struct {
        const char *body;
        const char *code;
        const char *message;
    } cases[] = {
        {"{\"Id\": \"001000000000001\", \"Name\": \"x\"}", "INVALID_FIELD",
         "The Id field should not be specified in the sobject data."},
        {"{\"Name\": \"x\", \"Foo__c\": 1}", "INVALID_FIELD",
         "No such column 'Foo__c' on sobject of type Account"},
        {"{\"Name\": {\"first\": \"x\"}}", "JSON_PARSER_ERROR", NULL},
        {"{\"Name\": [\"x\"]}", "JSON_PARSER_ERROR", NULL},
        {"[{\"Name\": \"x\"}]", "JSON_PARSER_ERROR", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = json_loads(cases[i].body, JSON_DECODE_ANY, NULL);
        assert_non_null(body);
        memset(&err, 0, sizeof(err));
        assert_true(sfm_records_create(e->r, "Account", body, id, &err) < 0);
        assert_error(&err, 400, cases[i].code, cases[i].message);
        if (!cases[i].message)
            assert_non_null(strstr(err.message, "Cannot deserialize instance of"));
        json_decref(body);
    }
    assert_string_equal(id, "untouched");
    json_t *ids = ids_of(e->r, "Account");
    assert_int_equal(json_array_size(ids), 4);
    json_decref(ids);
    json_decref(ok);
}

static void test_records_update_changes_only_the_fields_given(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    char id[SFM_SFID_LEN + 1];
    id_named(e->r, "Account", "Initech", id);
    json_t *patch = json_pack("{s:s,s:i}", "INDUSTRY", "Consulting", "AnnualRevenue", 42);
    id[15] = '\0'; /* the 15-character form works too */
    assert_int_equal(sfm_records_update(e->r, "Account", id, patch, &err), 0);
    json_t *o = get(e->r, "Account", id);
    assert_string_equal(str_of(o, "Industry"), "Consulting");
    assert_int_equal(json_integer_value(json_object_get(o, "AnnualRevenue")), 42);
    assert_string_equal(str_of(o, "Name"), "Initech");
    assert_string_equal(str_of(o, "Type"), "Customer");
    json_decref(o);
    json_decref(patch);

    /* A bad field: 400, and the record keeps every value (the good field before it is not applied). */
    patch = json_pack("{s:s,s:s}", "Type", "Other", "Nope", "x");
    assert_int_equal(sfm_records_update(e->r, "Account", id, patch, &err), -EINVAL);
    assert_error(&err, 400, "INVALID_FIELD", "No such column 'Nope' on sobject of type Account");
    o = get(e->r, "Account", id);
    assert_string_equal(str_of(o, "Type"), "Customer");
    json_decref(o);
    json_decref(patch);

    /* Unknown record, unknown type: 404. */
    patch = json_pack("{s:s}", "Type", "Other");
    assert_int_equal(sfm_records_update(e->r, "Account", "001000000000000", patch, &err), -ENOENT);
    assert_error(&err, 404, "NOT_FOUND", "The requested resource does not exist");
    assert_int_equal(sfm_records_update(e->r, "Nothing", id, patch, &err), -ESRCH);
    assert_error(&err, 404, "NOT_FOUND", "The requested resource does not exist");
    json_decref(patch);
}

static void test_records_delete_removes_the_record(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    char id[SFM_SFID_LEN + 1];
    id_named(e->r, "Contact", "Alan Turing", id);
    assert_int_equal(sfm_records_delete(e->r, "contact", id, &err), 0);
    json_t *o = NULL;
    assert_int_equal(sfm_records_get(e->r, "Contact", id, "64.0", &o), -ENOENT);
    json_t *ids = ids_of(e->r, "Contact");
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    memset(&err, 0, sizeof(err));
    assert_int_equal(sfm_records_delete(e->r, "Contact", id, &err), -ENOENT);
    assert_error(&err, 404, "NOT_FOUND", "The requested resource does not exist");
    assert_int_equal(sfm_records_delete(e->r, "Nothing", id, &err), -ESRCH);
    assert_error(&err, 404, "NOT_FOUND", "The requested resource does not exist");
}

static void test_records_reset_returns_to_the_fixture(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    json_t *before = ids_of(e->r, "Account");
    char created[19], again[19], deleted[SFM_SFID_LEN + 1], changed[SFM_SFID_LEN + 1];
    json_t *fields = json_pack("{s:s}", "Name", "Temp");
    assert_int_equal(sfm_records_create(e->r, "Account", fields, created, &err), 0);
    id_named(e->r, "Account", "Acme Corp", deleted);
    assert_int_equal(sfm_records_delete(e->r, "Account", deleted, &err), 0);
    id_named(e->r, "Account", "Globex", changed);
    json_t *patch = json_pack("{s:s}", "Name", "Globex 2");
    assert_int_equal(sfm_records_update(e->r, "Account", changed, patch, &err), 0);

    assert_int_equal(sfm_records_reset(e->r, e->org), 0);
    json_t *after = ids_of(e->r, "Account");
    assert_true(json_equal(before, after));
    json_t *o = get(e->r, "Account", changed);
    assert_string_equal(str_of(o, "Name"), "Globex");
    json_decref(o);
    o = get(e->r, "Account", deleted);
    assert_string_equal(str_of(o, "Name"), "Acme Corp");
    json_decref(o);
    assert_int_equal(sfm_records_get(e->r, "Account", created, "64.0", &o), -ENOENT);
    /* Numbering starts over too: the next record gets the id the first one got. */
    assert_int_equal(sfm_records_create(e->r, "Account", fields, again, &err), 0);
    assert_string_equal(again, created);
    json_decref(before);
    json_decref(after);
    json_decref(fields);
    json_decref(patch);
}

/* ---- query ---------------------------------------------------------------------------------------- */

static void test_records_query_sees_the_current_records(void **state)
{
    env *e = *state;
    sfm_data_error err = {0};
    json_t *res = query(e->r, "SELECT Name, Industry FROM account WHERE Type = 'Customer' ORDER BY Name");
    assert_int_equal(json_integer_value(json_object_get(res, "totalSize")), 2);
    assert_true(json_is_true(json_object_get(res, "done")));
    json_t *first = json_array_get(json_object_get(res, "records"), 0);
    assert_string_equal(str_of(first, "Name"), "Acme Corp");
    json_t *attrs = json_object_get(first, "attributes");
    assert_string_equal(str_of(attrs, "type"), "Account");
    assert_non_null(strstr(str_of(attrs, "url"), "/services/data/v64.0/sobjects/Account/001"));
    json_decref(res);

    char id[19];
    json_t *fields = json_pack("{s:s,s:s}", "Name", "Aardvark", "Type", "Customer");
    assert_int_equal(sfm_records_create(e->r, "Account", fields, id, &err), 0);
    json_decref(fields);
    res = query(e->r, "SELECT Name FROM Account WHERE Type = 'Customer' ORDER BY Name");
    assert_int_equal(json_integer_value(json_object_get(res, "totalSize")), 3);
    assert_string_equal(str_of(json_array_get(json_object_get(res, "records"), 0), "Name"), "Aardvark");
    json_decref(res);
}

static void test_records_query_of_unknown_type_is_invalid_type(void **state)
{
    env *e = *state;
    sfm_soql *q = NULL;
    sfm_data_error err = {0};
    json_t *out = NULL;
    assert_int_equal(sfm_soql_parse("SELECT Id FROM Foo", &q, &err), 0);
    assert_true(sfm_records_query(e->r, q, "64.0", &out, &err) < 0);
    assert_null(out);
    assert_error(&err, 400, "INVALID_TYPE",
                 "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
                 "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure "
                 "to append the '__c' after the entity name. Please reference your WSDL or the describe call "
                 "for the appropriate names.");
    sfm_soql_free(q);
}

/* ---- threads -------------------------------------------------------------------------------------- */

typedef struct worker {
    sfm_records *r;
    const char *fixed; /* an Account id nobody deletes */
    int writer;
    int index;
    int failures;
    int created; /* records a writer created and left */
} worker;

static void *writer_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < T_ROUNDS; i++) {
        sfm_data_error err;
        char id[19] = "", name[48];
        snprintf(name, sizeof(name), "w%d-%d", w->index, i);
        json_t *fields = json_pack("{s:s,s:s}", "Name", name, "Type", "Thread");
        if (sfm_records_create(w->r, "Account", fields, id, &err) != 0)
            w->failures++;
        json_decref(fields);
        json_t *patch = json_pack("{s:s}", "Industry", name);
        if (sfm_records_update(w->r, "Account", id, patch, &err) != 0)
            w->failures++;
        if (sfm_records_update(w->r, "Account", w->fixed, patch, &err) != 0)
            w->failures++;
        json_decref(patch);
        /* Every other record goes again. */
        if (i % 2 == 0) {
            if (sfm_records_delete(w->r, "Account", id, &err) != 0)
                w->failures++;
        } else {
            w->created++;
        }
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    worker *w = arg;
    sfm_soql *q = NULL;
    sfm_data_error err;
    if (sfm_soql_parse("SELECT Id, Name, Industry FROM Account WHERE Type = 'Thread'", &q, &err) != 0) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < T_ROUNDS; i++) {
        json_t *o = NULL;
        if (sfm_records_get(w->r, "Account", w->fixed, "64.0", &o) != 0 ||
            strcmp(str_of(o, "Name"), "Acme Corp") != 0)
            w->failures++;
        json_decref(o);
        json_t *res = NULL;
        if (sfm_records_query(w->r, q, "64.0", &res, &err) != 0) {
            w->failures++;
        } else {
            /* A snapshot: as many records as it says, each whole. */
            json_t *recs = json_object_get(res, "records");
            if ((json_int_t)json_array_size(recs) != json_integer_value(json_object_get(res, "totalSize")))
                w->failures++;
            size_t k;
            json_t *rec;
            json_array_foreach(recs, k, rec)
            {
                if (!str_of(rec, "Name"))
                    w->failures++;
            }
        }
        json_decref(res);
        json_t *types = sfm_records_types(w->r);
        json_t *fields = sfm_records_fields(w->r, "Account", NULL, 0);
        if (json_array_size(types) != 2 || json_array_size(fields) != 5)
            w->failures++;
        json_decref(types);
        json_decref(fields);
    }
    sfm_soql_free(q);
    return NULL;
}

static void test_records_concurrent_readers_and_writers(void **state)
{
    env *e = *state;
    char fixed[SFM_SFID_LEN + 1];
    id_named(e->r, "Account", "Acme Corp", fixed);
    pthread_t th[T_WRITERS + T_READERS];
    worker w[T_WRITERS + T_READERS];
    for (int i = 0; i < T_WRITERS + T_READERS; i++) {
        w[i] = (worker){.r = e->r, .fixed = fixed, .writer = i < T_WRITERS, .index = i};
        assert_int_equal(pthread_create(&th[i], NULL, w[i].writer ? writer_main : reader_main, &w[i]), 0);
    }
    int created = 0;
    for (int i = 0; i < T_WRITERS + T_READERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
        created += w[i].created;
    }
    /* Every create got its own id: the survivors are all there. */
    assert_int_equal(created, T_WRITERS * T_ROUNDS / 2);
    json_t *ids = ids_of(e->r, "Account");
    assert_int_equal(json_array_size(ids), 4 + created);
    json_decref(ids);
    json_t *res = query(e->r, "SELECT Id FROM Account WHERE Type = 'Thread'");
    assert_int_equal(json_integer_value(json_object_get(res, "totalSize")), created);
    json_decref(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_prefixes_follow_salesforce),
        cmocka_unit_test_setup_teardown(test_records_types_are_sorted_and_fields_are_the_union, setup_small,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_default_org_has_its_fixture_types, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_fixture_ids_are_stable_and_well_formed, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_custom_type_ids_use_its_prefix, setup_small,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_get_accepts_15_and_18_characters, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_get_unknown_type_or_record, setup_default, teardown_env),
        cmocka_unit_test_setup_teardown(test_records_create_then_get, setup_default, teardown_env),
        cmocka_unit_test_setup_teardown(test_records_create_errors_change_nothing, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_update_changes_only_the_fields_given, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_delete_removes_the_record, setup_default, teardown_env),
        cmocka_unit_test_setup_teardown(test_records_reset_returns_to_the_fixture, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_query_sees_the_current_records, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_query_of_unknown_type_is_invalid_type, setup_default,
                                        teardown_env),
        cmocka_unit_test_setup_teardown(test_records_concurrent_readers_and_writers, setup_default,
                                        teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
