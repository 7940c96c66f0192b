/*
 * fuzz_soql: server/api/soql.c and server/records.c's query, as the REST
 * query resource and the SOAP query call use them. The input is a query
 * text (up to its first NUL, as a C string reaches the parser).
 *
 * sfm_soql_parse runs on it; when it parses, sfm_soql_run runs over a small
 * fixed record set made here (every JSON scalar type, nulls, missing keys,
 * 15/18-character ids, LIKE's special characters, non-ASCII text), or
 * sfm_soql_invalid_type answers for a type the set does not have; and
 * sfm_records_query runs over the bundled fixture's records. What a user
 * relies on is checked:
 *
 * - a failure is 400 with the code of its stage (parse: MALFORMED_QUERY;
 *   run: INVALID_FIELD; an unknown type: INVALID_TYPE) and a message that is
 *   non-empty, terminated inside its buffer and valid UTF-8 (it goes into
 *   JSON and XML); the parser's and the run's messages carry Salesforce's
 *   "ERROR at Row:R:Column:C" framing;
 * - a success is {"totalSize":N,"done":true,"records":[...]} with N the
 *   number of records (an empty list for COUNT()), never more than the type
 *   has; each record has attributes {type, url} naming the type and its id,
 *   then only fields of the type in their canonical spelling, the same number
 *   in every record;
 * - a query answers the same twice.
 *
 * A broken invariant is an abort().
 */
#include "fuzz.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/soql.h"
#include "org.h"
#include "records.h"

#define FIXTURE     SFMTLS_SOURCE_DIR "/fixtures/default-org.json"
#define ORG_ERR_LEN 16384
#define VERSION     "64.0"
/* sfm_soql_parse's limit (soql.c); longer texts get a message of their own. */
#define SOQL_MAX_LEN 100000

/* The fixed set: per type, its fields (canonical) and records (scalars, each with an Id). */
static const char k_set[] =
    "{"
    "\"Account\": {\"fields\": [\"Id\", \"Name\", \"Industry\", \"AnnualRevenue\", \"NumberOfEmployees\","
    "  \"IsActive__c\", \"ParentId\", \"Rating\", \"Description\"],"
    " \"records\": ["
    "  {\"Id\": \"001000000000001AAA\", \"Name\": \"Acme Corp\", \"Industry\": \"Energy\","
    "   \"AnnualRevenue\": 5000000, \"NumberOfEmployees\": 120, \"IsActive__c\": true,"
    "   \"ParentId\": null, \"Rating\": \"Hot\", \"Description\": \"100% real_stuff \\\\ here\"},"
    "  {\"Id\": \"001000000000002AAA\", \"Name\": \"globex\", \"Industry\": \"Manufacturing\","
    "   \"AnnualRevenue\": 1200000.5, \"NumberOfEmployees\": -3, \"IsActive__c\": false,"
    "   \"ParentId\": \"001000000000001\", \"Rating\": \"Warm\"},"
    "  {\"Id\": \"001000000000003AAA\", \"Name\": \"Initech \\u00e9t\\u00e9 \\u4e2d\\ud83d\\ude00\","
    "   \"Industry\": null, \"AnnualRevenue\": null, \"IsActive__c\": true,"
    "   \"ParentId\": \"001000000000001AAA\", \"Rating\": \"\"},"
    "  {\"Id\": \"001000000000004AAA\", \"Name\": \"Umbrella\", \"Industry\": \"Healthcare\","
    "   \"AnnualRevenue\": 0, \"NumberOfEmployees\": 9223372036854775807, \"Description\": \"it's "
    "\\\"quoted\\\"\"},"
    "  {\"Id\": \"001000000000005AAA\", \"Name\": \"\", \"Industry\": \"energy\", \"AnnualRevenue\": 1e300,"
    "   \"NumberOfEmployees\": 0, \"IsActive__c\": null, \"Rating\": \"Cold\", \"Description\": "
    "\"line\\nbreak\"}"
    " ]},"
    "\"Contact\": {\"fields\": [\"Id\", \"Name\", \"Email\", \"AccountId\", \"Title\"],"
    " \"records\": ["
    "  {\"Id\": \"003000000000001AAA\", \"Name\": \"Ada Lovelace\", \"Email\": \"ada@acme.test\","
    "   \"AccountId\": \"001000000000001AAA\", \"Title\": \"CTO\"},"
    "  {\"Id\": \"003000000000002AAA\", \"Name\": \"Alan Turing\", \"Email\": \"alan@globex.test\","
    "   \"AccountId\": \"001000000000002\", \"Title\": null}"
    " ]}"
    "}";

static struct {
    int ready;
    json_t *set;
    sfm_org *org;
    sfm_records *records;
} g;

static void teardown(void)
{
    sfm_records_free(g.records);
    sfm_org_unref(g.org);
    json_decref(g.set);
}

static void setup(void)
{
    static char org_err[ORG_ERR_LEN];
    json_error_t jerr;
    g.set = json_loads(k_set, 0, &jerr);
    if (!g.set)
        sfm_fuzz_die("the fixed record set", jerr.text);
    if (sfm_org_load(&g.org, FIXTURE, org_err, sizeof(org_err)) != 0)
        sfm_fuzz_die("sfm_org_load", org_err);
    if (sfm_records_new(&g.records, g.org) != 0)
        sfm_fuzz_die("sfm_records_new", NULL);
    g.ready = 1;
    atexit(teardown);
}

/* Prints the query and why, then aborts. */
__attribute__((noreturn)) static void broken(const char *text, const char *why, const char *detail)
{
    fprintf(stderr, "fuzz_soql: %s%s%s\nquery: %.400s\n", why, detail ? ": " : "", detail ? detail : "",
            text);
    abort();
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Whether the text is "SELECT COUNT(" (any case, any blanks): a count has no records in its answer. */
static int is_count(const char *s)
{
    while (is_blank(*s))
        s++;
    if (strncasecmp(s, "select", 6) != 0 || !is_blank(s[6]))
        return 0;
    s += 6;
    while (is_blank(*s))
        s++;
    if (strncasecmp(s, "count", 5) != 0)
        return 0;
    s += 5;
    while (is_blank(*s))
        s++;
    return *s == '(';
}

/* A failure's invariants: status 400, one of `codes` (NULL-terminated), a framed or plain message. */
static void check_error(const char *text, int rc, const sfm_data_error *e, const char *const *codes,
                        int framed)
{
    if (rc >= 0)
        broken(text, "a failure with a non-negative code", NULL);
    if (e->status != 400 || !e->code)
        broken(text, "a failure that is not a 400 with a code", e->code);
    int known = 0;
    for (size_t i = 0; codes[i]; i++)
        known |= strcmp(e->code, codes[i]) == 0;
    if (!known)
        broken(text, "an unexpected error code", e->code);
    size_t len = strnlen(e->message, sizeof(e->message));
    if (len == 0 || len == sizeof(e->message))
        broken(text, "an empty or unterminated message", e->code);
    json_t *s = json_string(e->message); /* NULL when not UTF-8 */
    if (!s)
        broken(text, "a message that is not valid UTF-8", e->message);
    json_decref(s);
    if (framed && !strstr(e->message, "ERROR at Row:"))
        broken(text, "a message without Salesforce's framing", e->message);
}

/* A success's invariants, for the `n_records` records of `type` with `fields`. */
static void check_result(const char *text, const json_t *res, const char *type, const json_t *fields,
                         size_t n_records)
{
    const json_t *total = json_object_get(res, "totalSize"), *list = json_object_get(res, "records");
    if (!json_is_object(res) || json_object_size(res) != 3 || !json_is_integer(total) ||
        !json_is_true(json_object_get(res, "done")) || !json_is_array(list))
        broken(text, "an answer not shaped {totalSize, done: true, records}", NULL);
    json_int_t n = json_integer_value(total);
    if (n < 0 || (size_t)n > n_records)
        broken(text, "totalSize outside 0 .. the type's records", NULL);
    if (is_count(text) ? json_array_size(list) != 0 : json_array_size(list) != (size_t)n)
        broken(text, "totalSize is not the number of records", NULL);
    char prefix[128];
    int plen = snprintf(prefix, sizeof(prefix), "/services/data/v" VERSION "/sobjects/%s/", type);
    size_t width = SIZE_MAX, i;
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        const json_t *attr = json_object_get(rec, "attributes");
        const char *url = json_string_value(json_object_get(attr, "url"));
        const char *rtype = json_string_value(json_object_get(attr, "type"));
        if (!json_is_object(rec) || !json_is_object(attr) || json_object_size(attr) != 2 || !rtype ||
            strcmp(rtype, type) != 0 || !url || strncmp(url, prefix, (size_t)plen) != 0 ||
            strlen(url + plen) != 18)
            broken(text, "a record without attributes {type, url} of its type", NULL);
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)rec, key, v)
        {
            if (strcmp(key, "attributes") == 0)
                continue;
            int known = 0;
            size_t k;
            json_t *f;
            json_array_foreach(fields, k, f)
            {
                known |= strcmp(json_string_value(f), key) == 0;
            }
            if (!known)
                broken(text, "a record with a key that is no field of its type", key);
            if (json_is_object(v) || json_is_array(v))
                broken(text, "a field value that is not a scalar", key);
        }
        if (width != SIZE_MAX && json_object_size(rec) != width)
            broken(text, "records with different numbers of fields", NULL);
        width = json_object_size(rec);
    }
}

/* Runs the parsed query over the fixed set (twice: the same answer). */
static void run_fixed(const char *text, const sfm_soql *q)
{
    static const char *const run_codes[] = {"INVALID_FIELD", NULL};
    static const char *const type_codes[] = {"INVALID_TYPE", NULL};
    const char *type = sfm_soql_type(q);
    const char *canon = NULL;
    const json_t *t = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(g.set, key, v)
    {
        if (strcasecmp(key, type) == 0) {
            canon = key;
            t = v;
        }
    }
    sfm_data_error e;
    memset(&e, 0, sizeof(e));
    if (!t) {
        sfm_soql_invalid_type(q, &e);
        check_error(text, -1, &e, type_codes, 1);
        return;
    }
    const json_t *fields = json_object_get(t, "fields"), *records = json_object_get(t, "records");
    json_t *a = NULL, *b = NULL;
    int rc = sfm_soql_run(q, canon, fields, records, VERSION, &a, &e);
    if (rc < 0) {
        check_error(text, rc, &e, run_codes, 1);
        return;
    }
    check_result(text, a, canon, fields, json_array_size(records));
    memset(&e, 0, sizeof(e));
    if (sfm_soql_run(q, canon, fields, records, VERSION, &b, &e) != 0 || !json_equal(a, b))
        broken(text, "the same query answered differently", NULL);
    json_decref(a);
    json_decref(b);
}

/* Runs the parsed query over the fixture's records (records.c). */
static void run_records(const char *text, const sfm_soql *q)
{
    static const char *const codes[] = {"INVALID_FIELD", "INVALID_TYPE", NULL};
    sfm_data_error e;
    memset(&e, 0, sizeof(e));
    json_t *res = NULL;
    int rc = sfm_records_query(g.records, q, VERSION, &res, &e);
    if (rc < 0) {
        /* records.c leaves the framing of INVALID_TYPE to the REST layer (rest.c). */
        check_error(text, rc, &e, codes, strcmp(e.code ? e.code : "", "INVALID_TYPE") != 0);
        return;
    }
    char canon[256];
    json_t *fields = sfm_records_fields(g.records, sfm_soql_type(q), canon, sizeof(canon));
    if (!fields)
        broken(text, "a query answered for a type records.c does not know", NULL);
    json_t *all = json_object_get(g.org->records, canon);
    check_result(text, res, canon, fields, json_array_size(all));
    json_decref(fields);
    json_decref(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const parse_codes[] = {"MALFORMED_QUERY", NULL};
    if (!g.ready)
        setup();
    /* An exact-size copy, so that ASan sees a read past the terminator. */
    char *text = malloc(size + 1);
    if (!text)
        sfm_fuzz_die("malloc", NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    sfm_soql *q = NULL;
    sfm_data_error e;
    memset(&e, 0, sizeof(e));
    int rc = sfm_soql_parse(text, &q, &e);
    if (rc != 0) {
        if (q)
            broken(text, "a failed parse handed out a query", NULL);
        check_error(text, rc, &e, parse_codes, strlen(text) <= SOQL_MAX_LEN);
    } else {
        const char *type = sfm_soql_type(q);
        if (!type || !*type || !strstr(text, type))
            broken(text, "a parsed query without its FROM type", NULL);
        run_fixed(text, q);
        run_records(text, q);
        sfm_soql_free(q);
    }
    free(text);
    return 0;
}
