/*
 * Unit tests of server/api/soql.c: the SOQL subset (SPEC section 5, query).
 * A table of accepted queries with the ordered rows they answer over a fixed
 * set of Accounts; the exact answer shape; a table of rejected queries with
 * Salesforce's exact messages (code, caret framing, problem); INVALID_FIELD
 * and INVALID_TYPE; bounded messages for huge queries; and every prefix of
 * valid queries plus random bytes and random token soup, which must all come
 * back cleanly (the sanitizer build catches any over-read). Each case is named
 * test_soql_<claim>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/soql.h"

/** Random inputs fed to the parser (bytes, then token soup). */
#define T_RANDOM_BYTES 3000
#define T_RANDOM_SOUP  6000

/* The fixed Accounts: mixed case, nulls, absent fields, numbers of both JSON kinds, UTF-8. */
static const char k_records[] =
    "["
    "{\"Id\":\"001Ab00000000A1AAA\",\"Name\":\"Acme\",\"Industry\":\"Energy\",\"NumberOfEmployees\":100,"
    "\"AnnualRevenue\":1.5,\"IsActive__c\":true,\"Rating\":\"Hot\"},"
    "{\"Id\":\"001Ab00000000A2AAA\",\"Name\":\"beta corp\",\"Industry\":\"energy\",\"NumberOfEmployees\":5,"
    "\"AnnualRevenue\":20,\"IsActive__c\":false,\"Description\":\"tab\\there \\\"q\\\" \\u20ac\"},"
    "{\"Id\":\"001Ab00000000A3AAA\",\"Name\":\"Gamma\",\"Industry\":null,\"NumberOfEmployees\":-3,"
    "\"ParentId\":\"001Ab00000000A1AAA\",\"Rating\":3},"
    "{\"Id\":\"001Ab00000000A4AAA\",\"Name\":\"O'Brien & "
    "Co\",\"Industry\":\"Retail\",\"NumberOfEmployees\":100,"
    "\"Description\":\"line1\\nline2\"},"
    "{\"Id\":\"001Ab00000000A5AAA\",\"Name\":\"50% "
    "Off_Sale\",\"Industry\":\"Retail\",\"AnnualRevenue\":20.0},"
    "{\"Id\":\"001Ab00000000A6AAA\",\"Name\":\"acme\",\"NumberOfEmployees\":7,\"IsActive__c\":true,"
    "\"Rating\":true},"
    "{\"Id\":\"001Ab00000000A7AAA\",\"Name\":\"Z\\u00fcrich AG\",\"Industry\":\"Banking\","
    "\"Description\":\"back\\\\slash\"}"
    "]";

static const char k_fields[] = "[\"Id\",\"Name\",\"Industry\",\"NumberOfEmployees\",\"AnnualRevenue\","
                               "\"IsActive__c\",\"ParentId\",\"Description\",\"Rating\"]";

typedef struct fixture {
    json_t *records;
    json_t *fields;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->records = json_loads(k_records, 0, NULL);
    f->fields = json_loads(k_fields, 0, NULL);
    assert_non_null(f->records);
    assert_non_null(f->fields);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->records);
    json_decref(f->fields);
    free(f);
    return 0;
}

/* Parses and runs `text` as Account at v60.0; fails the test on any error. */
static json_t *query(const fixture *f, const char *text)
{
    sfm_soql *q = NULL;
    sfm_data_error e;
    json_t *out = NULL;
    int rc = sfm_soql_parse(text, &q, &e);
    if (rc != 0)
        fail_msg("parse \"%s\": %d %s %s", text, rc, e.code, e.message);
    rc = sfm_soql_run(q, "Account", f->fields, f->records, "60.0", &out, &e);
    if (rc != 0)
        fail_msg("run \"%s\": %d %s %s", text, rc, e.code, e.message);
    sfm_soql_free(q);
    return out;
}

/* The answer's Names joined with '|' into buf. */
static void names_of(const json_t *out, char *buf, size_t cap)
{
    size_t i, len = 0;
    json_t *rec;
    buf[0] = '\0';
    json_array_foreach(json_object_get(out, "records"), i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "Name"));
        int n = snprintf(buf + len, cap - len, "%s%s", i ? "|" : "", name ? name : "<null>");
        assert_true(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
    }
}

typedef struct accepted {
    const char *query;
    int total;
    const char *names; /* the Names answered, in order, joined with '|' */
} accepted;

static const accepted k_accepted[] = {
    {"SELECT Id, Name FROM Account", 7,
     "Acme|beta corp|Gamma|O'Brien & Co|50% Off_Sale|acme|Z\xC3\xBCrich AG"},
    /* = and != on text are case-insensitive; <> is != */
    {"select name from account where name = 'ACME'", 2, "Acme|acme"},
    {"SELECT Name FROM Account WHERE Name != 'acme'", 5,
     "beta corp|Gamma|O'Brien & Co|50% Off_Sale|Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Name <> 'acme'", 5,
     "beta corp|Gamma|O'Brien & Co|50% Off_Sale|Z\xC3\xBCrich AG"},
    /* null: JSON null and an absent key alike; != includes nulls */
    {"SELECT Name FROM Account WHERE Industry = null", 2, "Gamma|acme"},
    {"SELECT Name FROM Account WHERE Industry != NULL", 5,
     "Acme|beta corp|O'Brien & Co|50% Off_Sale|Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Industry != 'Energy'", 5,
     "Gamma|O'Brien & Co|50% Off_Sale|acme|Z\xC3\xBCrich AG"},
    /* LIKE: % and _ (one character, even a multi-byte one), case-insensitive, \% and \_ literal */
    {"SELECT Name FROM Account WHERE Name LIKE 'a%'", 2, "Acme|acme"},
    {"SELECT Name FROM Account WHERE Name LIKE '%CORP'", 1, "beta corp"},
    {"SELECT Name FROM Account WHERE Name LIKE 'g_mma'", 1, "Gamma"},
    {"SELECT Name FROM Account WHERE Name LIKE 'z_rich%'", 1, "Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Name LIKE 'z__rich%'", 0, ""},
    {"SELECT Name FROM Account WHERE Name LIKE '50\\% Off\\_%'", 1, "50% Off_Sale"},
    {"SELECT Name FROM Account WHERE Name LIKE '%\\_%'", 1, "50% Off_Sale"},
    {"SELECT Name FROM Account WHERE Name LIKE '%'", 7,
     "Acme|beta corp|Gamma|O'Brien & Co|50% Off_Sale|acme|Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Name LIKE '%a%e%'", 3, "Acme|50% Off_Sale|acme"},
    {"SELECT Name FROM Account WHERE Description LIKE 'back\\\\%'", 1, "Z\xC3\xBCrich AG"},
    /* string escapes */
    {"SELECT Name FROM Account WHERE Name = 'O\\'Brien & Co'", 1, "O'Brien & Co"},
    {"SELECT Name FROM Account WHERE Description = 'line1\\nline2'", 1, "O'Brien & Co"},
    {"SELECT Name FROM Account WHERE Description = 'back\\\\slash'", 1, "Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Name = 'Z\\u00FCrich AG'", 1, "Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Description = 'TAB\\tHERE \\\"q\\\" \\u20AC'", 1, "beta corp"},
    {"SELECT Name FROM Account WHERE Name LIKE 'z\xC3\xBC%'", 1, "Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE Name LIKE '%\xC3\xBC_rich%'", 0, ""},
    {"SELECT Name FROM Account WHERE Name LIKE '%\xC3\xBC_ich%'", 1, "Z\xC3\xBCrich AG"},
    /* IN */
    {"SELECT Name FROM Account WHERE Industry IN ('retail', 'Banking')", 3,
     "O'Brien & Co|50% Off_Sale|Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees IN (5, 7)", 2, "beta corp|acme"},
    {"SELECT Name FROM Account WHERE Industry IN (null, 'Banking')", 3, "Gamma|acme|Z\xC3\xBCrich AG"},
    /* numbers compare numerically, whatever their JSON kind; never equal to text */
    {"SELECT Name FROM Account WHERE NumberOfEmployees = 100", 2, "Acme|O'Brien & Co"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees = 100.0", 2, "Acme|O'Brien & Co"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees = -3", 1, "Gamma"},
    {"SELECT Name FROM Account WHERE AnnualRevenue = 20", 2, "beta corp|50% Off_Sale"},
    {"SELECT Name FROM Account WHERE AnnualRevenue = 1.5", 1, "Acme"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees = '100'", 0, ""},
    /* booleans */
    {"SELECT Name FROM Account WHERE IsActive__c = true", 2, "Acme|acme"},
    {"SELECT Name FROM Account WHERE IsActive__c = FALSE", 1, "beta corp"},
    {"SELECT Name FROM Account WHERE IsActive__c != true", 5,
     "beta corp|Gamma|O'Brien & Co|50% Off_Sale|Z\xC3\xBCrich AG"},
    /* AND, OR, parentheses */
    {"SELECT Name FROM Account WHERE Industry = 'Retail' AND NumberOfEmployees = 100", 1, "O'Brien & Co"},
    {"SELECT Name FROM Account WHERE Name = 'Gamma' OR Name = 'acme' OR IsActive__c = false", 4,
     "Acme|beta corp|Gamma|acme"},
    {"SELECT Name FROM Account WHERE (Industry = 'Energy' OR Industry = 'Retail') AND NumberOfEmployees = "
     "100",
     2, "Acme|O'Brien & Co"},
    {"SELECT Name FROM Account WHERE Name = 'Gamma' OR (Industry = 'Retail' AND AnnualRevenue = 20)", 2,
     "Gamma|50% Off_Sale"},
    {"SELECT Name FROM Account WHERE ((Name = 'Gamma'))", 1, "Gamma"},
    /* ids: 15 characters equal their 18-character form; case matters in the first 15 */
    {"SELECT Name FROM Account WHERE Id = '001Ab00000000A3'", 1, "Gamma"},
    {"SELECT Name FROM Account WHERE Id = '001Ab00000000A3AAA'", 1, "Gamma"},
    {"SELECT Name FROM Account WHERE Id = '001aB00000000A3AAA'", 0, ""},
    {"SELECT Name FROM Account WHERE ParentId = '001Ab00000000A1'", 1, "Gamma"},
    {"SELECT Name FROM Account WHERE Id IN ('001Ab00000000A1', '001Ab00000000A7AAA')", 2,
     "Acme|Z\xC3\xBCrich AG"},
    /* ORDER BY: stable, case-insensitive, nulls first with ASC and last with DESC */
    {"SELECT Name FROM Account ORDER BY Name", 7,
     "50% Off_Sale|Acme|acme|beta corp|Gamma|O'Brien & Co|Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account ORDER BY Name DESC", 7,
     "Z\xC3\xBCrich AG|O'Brien & Co|Gamma|beta corp|Acme|acme|50% Off_Sale"},
    {"SELECT Name FROM Account ORDER BY Industry", 7,
     "Gamma|acme|Z\xC3\xBCrich AG|Acme|beta corp|O'Brien & Co|50% Off_Sale"},
    {"SELECT Name FROM Account ORDER BY Industry DESC", 7,
     "O'Brien & Co|50% Off_Sale|Acme|beta corp|Z\xC3\xBCrich AG|Gamma|acme"},
    {"SELECT Name FROM Account ORDER BY Industry ASC NULLS LAST, Name DESC", 7,
     "Z\xC3\xBCrich AG|beta corp|Acme|O'Brien & Co|50% Off_Sale|Gamma|acme"},
    {"SELECT Name FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST, Name", 7,
     "50% Off_Sale|Z\xC3\xBCrich AG|Acme|O'Brien & Co|acme|beta corp|Gamma"},
    {"SELECT Name FROM Account ORDER BY AnnualRevenue", 7,
     "Gamma|O'Brien & Co|acme|Z\xC3\xBCrich AG|Acme|beta corp|50% Off_Sale"},
    {"SELECT Name FROM Account WHERE Industry != null ORDER BY IsActive__c DESC, Name", 5,
     "Acme|beta corp|50% Off_Sale|O'Brien & Co|Z\xC3\xBCrich AG"},
    /* values of different JSON types order booleans, numbers, then text */
    {"SELECT Name FROM Account WHERE Rating != null ORDER BY Rating", 3, "acme|Gamma|Acme"},
    {"SELECT Name FROM Account WHERE Rating != null ORDER BY Rating DESC", 3, "Acme|Gamma|acme"},
    /* LIMIT and OFFSET: totalSize counts the rows answered */
    {"SELECT Name FROM Account LIMIT 2", 2, "Acme|beta corp"},
    {"SELECT Name FROM Account LIMIT 0", 0, ""},
    {"SELECT Name FROM Account ORDER BY Name LIMIT 3 OFFSET 2", 3, "acme|beta corp|Gamma"},
    {"SELECT Name FROM Account OFFSET 6", 1, "Z\xC3\xBCrich AG"},
    {"SELECT Name FROM Account ORDER BY Name OFFSET 10", 0, ""},
    {"SELECT Name FROM Account WHERE Industry = 'Retail' LIMIT 1 OFFSET 1", 1, "50% Off_Sale"},
    /* COUNT(): matching rows, after OFFSET and LIMIT; no records */
    {"SELECT COUNT() FROM Account", 7, NULL},
    {"select count() from Account where Industry = 'Retail'", 2, NULL},
    {"SELECT COUNT() FROM Account LIMIT 3", 3, NULL},
    {"SELECT COUNT() FROM Account OFFSET 5", 2, NULL},
    {"SELECT COUNT() FROM Account WHERE Name LIKE 'zzz%'", 0, NULL},
    /* layout: keywords in any case, newlines, tabs, no spaces around punctuation */
    {"sElEcT nAmE fRoM aCcOuNt wHeRe NaMe = 'gamma' oRdEr By NaMe aSc NuLlS lAsT lImIt 5 oFfSeT 0", 1,
     "Gamma"},
    {"SELECT Name\nFROM Account\r\nWHERE Name = 'Gamma'\n", 1, "Gamma"},
    {"  SELECT\tName ,Id FROM Account WHERE(Name='Gamma')AND(Id!='x')  ", 1, "Gamma"},
    /* COUNT is a field name when no parenthesis follows; selecting only Id is fine */
    {"SELECT Id FROM Account WHERE Name = 'Gamma'", 1, "<null>"},
};

static void test_soql_accepted_queries_answer_the_expected_rows_in_order(void **state)
{
    const fixture *f = *state;
    char got[512];
    for (size_t i = 0; i < sizeof(k_accepted) / sizeof(k_accepted[0]); i++) {
        const accepted *a = &k_accepted[i];
        json_t *out = query(f, a->query);
        json_t *recs = json_object_get(out, "records");
        if (json_integer_value(json_object_get(out, "totalSize")) != a->total)
            fail_msg("\"%s\": totalSize %lld, expected %d", a->query,
                     (long long)json_integer_value(json_object_get(out, "totalSize")), a->total);
        assert_true(json_is_true(json_object_get(out, "done")));
        assert_true(json_is_array(recs));
        if (a->names == NULL) {
            assert_int_equal(json_array_size(recs), 0);
        } else {
            assert_int_equal(json_array_size(recs), a->total);
            names_of(out, got, sizeof(got));
            if (strcmp(got, a->names) != 0)
                fail_msg("\"%s\":\n got      %s\n expected %s", a->query, got, a->names);
        }
        json_decref(out);
    }
}

static void test_soql_answer_has_salesforce_shape_in_select_order_with_canonical_names(void **state)
{
    const fixture *f = *state;
    json_t *out = query(f, "SELECT name, ID, industry, description FROM account WHERE Name = 'Gamma'");
    char *s = json_dumps(out, JSON_COMPACT);
    assert_non_null(s);
    assert_string_equal(s,
                        "{\"totalSize\":1,\"done\":true,\"records\":[{\"attributes\":{\"type\":\"Account\","
                        "\"url\":\"/services/data/v60.0/sobjects/Account/001Ab00000000A3AAA\"},"
                        "\"Name\":\"Gamma\",\"Id\":\"001Ab00000000A3AAA\",\"Industry\":null,"
                        "\"Description\":null}]}");
    free(s);
    json_decref(out);

    out = query(f, "SELECT COUNT() FROM Account WHERE IsActive__c = true");
    s = json_dumps(out, JSON_COMPACT);
    assert_non_null(s);
    assert_string_equal(s, "{\"totalSize\":2,\"done\":true,\"records\":[]}");
    free(s);
    json_decref(out);
}

static void test_soql_answer_owns_its_values(void **state)
{
    fixture *f = *state;
    json_t *out = query(f, "SELECT Name, NumberOfEmployees FROM Account WHERE Name = 'Gamma'");
    /* The records change and go away; the answer keeps what it was given. */
    assert_int_equal(json_object_set_new(json_array_get(f->records, 2), "Name", json_string("changed")), 0);
    json_decref(f->records);
    f->records = NULL;
    json_t *rec = json_array_get(json_object_get(out, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "Name")), "Gamma");
    assert_int_equal(json_integer_value(json_object_get(rec, "NumberOfEmployees")), -3);
    json_decref(out);
}

static void test_soql_url_carries_the_record_id_whatever_its_length(void **state)
{
    (void)state;
    json_t *records =
        json_loads("[{\"Id\":\"a0X-an-id-much-longer-than-eighteen\"},{\"Id\":\"x\"}]", 0, NULL);
    json_t *fields = json_loads("[\"Id\"]", 0, NULL);
    sfm_soql *q = NULL;
    sfm_data_error e;
    json_t *out = NULL;
    assert_int_equal(sfm_soql_parse("SELECT Id FROM Widget__c", &q, &e), 0);
    assert_int_equal(sfm_soql_run(q, "Widget__c", fields, records, "66.0", &out, &e), 0);
    json_t *recs = json_object_get(out, "records");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(recs, 0), "attributes"), "url")),
        "/services/data/v66.0/sobjects/Widget__c/a0X-an-id-much-longer-than-eighteen");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(recs, 1), "attributes"), "url")),
        "/services/data/v66.0/sobjects/Widget__c/x");
    json_decref(out);
    sfm_soql_free(q);
    json_decref(fields);
    json_decref(records);
}

static void test_soql_type_is_the_from_name_as_written(void **state)
{
    (void)state;
    sfm_soql *q = NULL;
    sfm_data_error e;
    assert_int_equal(sfm_soql_parse("SELECT Id FROM account__C", &q, &e), 0);
    assert_string_equal(sfm_soql_type(q), "account__C");
    sfm_soql_free(q);
    sfm_soql_free(NULL);
}

/* Salesforce's framing for a one-line query: the query, a caret under `col`, then the problem. */
static void framed(char *buf, size_t cap, const char *query_text, int col, const char *problem)
{
    char spaces[256];
    assert_true(col >= 1 && (size_t)col <= sizeof(spaces));
    memset(spaces, ' ', (size_t)col - 1);
    spaces[col - 1] = '\0';
    int n = snprintf(buf, cap, "\n%s\n%s^\nERROR at Row:1:Column:%d\n%s", query_text, spaces, col, problem);
    assert_true(n > 0 && (size_t)n < cap);
}

static void expect_parse_error(const char *text, const char *code, const char *message)
{
    sfm_soql *q = NULL;
    sfm_data_error e;
    memset(&e, 0, sizeof(e));
    int rc = sfm_soql_parse(text, &q, &e);
    if (rc != -EINVAL)
        fail_msg("\"%s\" parsed (rc %d)", text, rc);
    assert_null(q);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, code);
    if (strcmp(e.message, message) != 0)
        fail_msg("\"%s\":\n got      [%s]\n expected [%s]", text, e.message, message);
}

typedef struct rejected {
    const char *query;
    int col; /* of the offending token, from 1, in characters */
    const char *problem;
} rejected;

static const rejected k_rejected[] = {
    {"UPDATE Account SET Name = 'x'", 1, "unexpected token: 'UPDATE'"},
    /* empty field list */
    {"SELECT FROM Account", 8, "unexpected token: 'FROM'"},
    {"SELECT Name, FROM Account", 14, "unexpected token: 'FROM'"},
    /* relationship field, subqueries, functions other than COUNT(), GROUP BY, FOR UPDATE, USING SCOPE */
    {"SELECT Owner.Name FROM Account", 13, "unexpected token: '.'"},
    {"SELECT Id, (SELECT Id FROM Contacts) FROM Account", 12, "unexpected token: '('"},
    {"SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", 37, "unexpected token: 'SELECT'"},
    {"SELECT MAX(NumberOfEmployees) FROM Account", 11, "unexpected token: '('"},
    {"SELECT COUNT(Id) FROM Account", 14, "unexpected token: 'Id'"},
    {"SELECT COUNT(), Name FROM Account", 15, "unexpected token: ','"},
    {"SELECT Industry FROM Account GROUP BY Industry", 30, "unexpected token: 'GROUP'"},
    {"SELECT Name FROM Account FOR UPDATE", 26, "unexpected token: 'FOR'"},
    {"SELECT Name FROM Account USING SCOPE everything", 26, "unexpected token: 'USING'"},
    /* bad numbers, LIMIT and OFFSET */
    {"SELECT Name FROM Account WHERE NumberOfEmployees = 1.2.3", 52, "unexpected token: '1.2.3'"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees = 12abc", 52, "unexpected token: '12abc'"},
    {"SELECT Name FROM Account WHERE NumberOfEmployees = 1.", 52, "unexpected token: '1.'"},
    {"SELECT Name FROM Account LIMIT -1", 32, "unexpected token: '-1'"},
    {"SELECT Name FROM Account LIMIT 1.5", 32, "unexpected token: '1.5'"},
    {"SELECT Name FROM Account LIMIT ten", 32, "unexpected token: 'ten'"},
    {"SELECT Name FROM Account LIMIT 99999999999999999999", 32, "unexpected token: '99999999999999999999'"},
    {"SELECT Name FROM Account OFFSET 1 LIMIT 2", 35, "unexpected token: 'LIMIT'"},
    /* trailing garbage */
    {"SELECT Name FROM Account WHERE Name = 'a' garbage", 43, "unexpected token: 'garbage'"},
    {"SELECT Name FROM Account WHERE Name = 'a')", 42, "unexpected token: ')'"},
    {"SELECT Name FROM Account a", 26, "unexpected token: 'a'"},
    {"SELECT Name FROM Account;", 25, "unexpected token: ';'"},
    /* AND and OR mixed without parentheses, as Salesforce refuses them */
    {"SELECT Name FROM Account WHERE Name = 'a' AND Industry = 'b' OR Id = 'c'", 62,
     "unexpected token: 'OR'"},
    {"SELECT Name FROM Account WHERE Name = 'a' OR Industry = 'b' AND Id = 'c'", 61,
     "unexpected token: 'AND'"},
    /* operators and values outside the subset */
    {"SELECT Name FROM Account WHERE NOT Name = 'a'", 32, "unexpected token: 'NOT'"},
    {"SELECT Name FROM Account WHERE Name NOT IN ('a')", 37, "unexpected token: 'NOT'"},
    {"SELECT Name FROM Account WHERE Name LIKE null", 42, "unexpected token: 'null'"},
    {"SELECT Name FROM Account WHERE Name LIKE 5", 42, "unexpected token: '5'"},
    {"SELECT Name FROM Account WHERE Name IN ()", 41, "unexpected token: ')'"},
    {"SELECT Name FROM Account WHERE Name IN ('a',)", 45, "unexpected token: ')'"},
    {"SELECT Name FROM Account WHERE Name IN 'a'", 40, "unexpected token: ''a''"},
    {"SELECT Name FROM Account WHERE Name > 'a'", 37, "unexpected token: '>'"},
    {"SELECT Name FROM Account WHERE Name <= 'a'", 37, "unexpected token: '<='"},
    {"SELECT Name FROM Account WHERE Name = Industry", 39, "unexpected token: 'Industry'"},
    {"SELECT Name FROM Account WHERE Name = \"x\"", 39, "unexpected token: '\"'"},
    {"SELECT Name FROM Account WHERE Id = :acc", 37, "unexpected token: ':'"},
    /* clause keywords where a name or a keyword belongs */
    {"SELECT Name FROM WHERE Name = 'a'", 18, "unexpected token: 'WHERE'"},
    {"SELECT Name FROM Account ORDER Name", 32, "unexpected token: 'Name'"},
    {"SELECT Name FROM Account ORDER BY Name NULLS Name", 46, "unexpected token: 'Name'"},
    /* duplicate field, whatever its case */
    {"SELECT Name, Id, name FROM Account", 18, "duplicate field selected: name"},
    /* bad escapes */
    {"SELECT Name FROM Account WHERE Name = 'a\\q'", 39,
     "Invalid string literal 'a\\q'. Illegal character sequence '\\q' in string literal."},
    {"SELECT Name FROM Account WHERE Name = '\\u12'", 39,
     "Invalid string literal '\\u12'. Illegal character sequence '\\u12' in string literal."},
    /* columns count characters, not bytes */
    {"SELECT N\xC3\xA4me FROM Account", 9, "unexpected token: '\xC3\xA4'"},
};

static void test_soql_rejected_queries_are_malformed_with_salesforce_messages(void **state)
{
    (void)state;
    char want[2048];
    for (size_t i = 0; i < sizeof(k_rejected) / sizeof(k_rejected[0]); i++) {
        framed(want, sizeof(want), k_rejected[i].query, k_rejected[i].col, k_rejected[i].problem);
        expect_parse_error(k_rejected[i].query, "MALFORMED_QUERY", want);
    }
}

static void test_soql_end_of_input_and_lexer_errors_point_at_the_last_character(void **state)
{
    (void)state;
    /* The example Salesforce answers, byte for byte. */
    expect_parse_error("SELECT Name FROM Account WHERE", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account WHERE\n                             ^\n"
                       "ERROR at Row:1:Column:30\nunexpected token: <EOF>");
    expect_parse_error("", "MALFORMED_QUERY", "\n\n^\nERROR at Row:1:Column:1\nunexpected token: <EOF>");
    expect_parse_error(NULL, "MALFORMED_QUERY", "\n\n^\nERROR at Row:1:Column:1\nunexpected token: <EOF>");
    expect_parse_error(
        "SELECT Name FROM", "MALFORMED_QUERY",
        "\nSELECT Name FROM\n               ^\nERROR at Row:1:Column:16\nunexpected token: <EOF>");
    expect_parse_error("SELECT Name FROM Account LIMIT", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account LIMIT\n                             ^\n"
                       "ERROR at Row:1:Column:30\nunexpected token: <EOF>");
    expect_parse_error("SELECT Name FROM Account WHERE (Name = 'a'", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account WHERE (Name = 'a'\n"
                       "                                         ^\n"
                       "ERROR at Row:1:Column:42\nunexpected token: <EOF>");
    /* Characters, not bytes: the u-umlaut is one column. */
    expect_parse_error("SELECT Name FROM Account WHERE Name = 'Z\xC3\xBCrich' AND", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account WHERE Name = 'Z\xC3\xBCrich' AND\n"
                       "                                                 ^\n"
                       "ERROR at Row:1:Column:50\nunexpected token: <EOF>");
    /* An unterminated string: the lexer's words, at the end. */
    expect_parse_error("SELECT Name FROM Account WHERE Name = 'abc", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account WHERE Name = 'abc\n"
                       "                                         ^\n"
                       "ERROR at Row:1:Column:42\nline 1:42 mismatched character '<EOF>' expecting '''");
    expect_parse_error("SELECT Name FROM Account WHERE Name = 'abc\\'", "MALFORMED_QUERY",
                       "\nSELECT Name FROM Account WHERE Name = 'abc\\'\n"
                       "                                           ^\n"
                       "ERROR at Row:1:Column:44\nline 1:44 mismatched character '<EOF>' expecting '''");
}

static void test_soql_multiline_queries_report_the_row_and_show_that_line(void **state)
{
    (void)state;
    expect_parse_error("SELECT Name\nFROM Account\nWHERE Name = 'a' garbage", "MALFORMED_QUERY",
                       "\nWHERE Name = 'a' garbage\n                 ^\n"
                       "ERROR at Row:3:Column:18\nunexpected token: 'garbage'");
    expect_parse_error("SELECT Name\r\nFROM Account\r\nWHERE", "MALFORMED_QUERY",
                       "\nWHERE\n    ^\nERROR at Row:3:Column:5\nunexpected token: <EOF>");
    expect_parse_error("SELECT Name\nFROM Account\nWHERE\n", "MALFORMED_QUERY",
                       "\n\n^\nERROR at Row:4:Column:1\nunexpected token: <EOF>");
}

static void test_soql_invalid_utf8_is_echoed_as_replacement_characters(void **state)
{
    (void)state;
    expect_parse_error("SELECT \xFF FROM Account", "MALFORMED_QUERY",
                       "\nSELECT \xEF\xBF\xBD FROM Account\n       ^\nERROR at Row:1:Column:8\n"
                       "unexpected token: '\xEF\xBF\xBD'");
}

static void test_soql_unknown_field_is_invalid_field_at_its_column(void **state)
{
    const fixture *f = *state;
    static const struct {
        const char *query;
        int col;
        const char *field;
    } cases[] = {
        {"SELECT Id, Chiffre_d_affaire__c FROM Account", 12, "Chiffre_d_affaire__c"},
        {"SELECT Name FROM Account WHERE owner = 'x'", 32, "owner"},
        {"SELECT Name FROM Account ORDER BY Name, Bogus DESC", 41, "Bogus"},
        /* the first unknown one in the text */
        {"SELECT Nope1 FROM Account WHERE Nope2 = 1", 8, "Nope1"},
        {"SELECT COUNT() FROM Account WHERE Nope = 1", 35, "Nope"},
    };
    char problem[512], want[2048];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sfm_soql *q = NULL;
        sfm_data_error e;
        json_t *out = NULL;
        assert_int_equal(sfm_soql_parse(cases[i].query, &q, &e), 0);
        assert_int_equal(sfm_soql_run(q, "Account", f->fields, f->records, "60.0", &out, &e), -EINVAL);
        assert_null(out);
        snprintf(
            problem, sizeof(problem),
            "No such column '%s' on entity 'Account'. If you are attempting to use a custom field, be sure "
            "to append the '__c' after the custom field name. Please reference your WSDL or the describe "
            "call for the appropriate names.",
            cases[i].field);
        framed(want, sizeof(want), cases[i].query, cases[i].col, problem);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.code, "INVALID_FIELD");
        assert_string_equal(e.message, want);
        sfm_soql_free(q);
    }
}

static void test_soql_invalid_type_points_at_the_from_name(void **state)
{
    (void)state;
    sfm_soql *q = NULL;
    sfm_data_error e;
    assert_int_equal(sfm_soql_parse("SELECT Id FROM Nope__c", &q, &e), 0);
    sfm_soql_invalid_type(q, &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "INVALID_TYPE");
    assert_string_equal(e.message, "\nSELECT Id FROM Nope__c\n               ^\nERROR at Row:1:Column:16\n"
                                   "sObject type 'Nope__c' is not supported. If you are attempting to use a "
                                   "custom object, be sure to append the '__c' after the entity name. Please "
                                   "reference your WSDL or the describe call for the appropriate names.");
    sfm_soql_free(q);
}

/* e.message is under the buffer, valid UTF-8 (json_string accepts it) and has Salesforce's framing. */
static void assert_sane_message(const sfm_data_error *e)
{
    size_t len = strnlen(e->message, sizeof(e->message));
    assert_true(len < sizeof(e->message));
    json_t *s = json_string(e->message);
    assert_non_null(s);
    json_decref(s);
    assert_int_equal(e->status, 400);
    if (strcmp(e->code, "MALFORMED_QUERY") != 0 && strcmp(e->code, "INVALID_FIELD") != 0)
        fail_msg("code %s", e->code);
}

/* The caret of a framed message sits under the character the echoed line has at `expect`. */
static void assert_caret_under(const char *msg, const char *expect)
{
    assert_true(msg[0] == '\n');
    const char *line = msg + 1, *nl = strchr(line, '\n');
    assert_non_null(nl);
    const char *caret = nl + 1, *hat = strchr(caret, '^');
    assert_non_null(hat);
    size_t spaces = (size_t)(hat - caret);
    assert_true(spaces < (size_t)(nl - line));
    assert_memory_equal(line + spaces, expect, strlen(expect));
}

/* Like assert_caret_under, counting the echoed line in characters. */
static void assert_caret_under_chars(const char *msg, const char *expect)
{
    const char *line = msg + 1, *nl = strchr(line, '\n');
    assert_non_null(nl);
    const char *hat = strchr(nl + 1, '^');
    assert_non_null(hat);
    size_t spaces = (size_t)(hat - (nl + 1)), i = 0;
    for (size_t c = 0; c < spaces; c++) {
        i++;
        while (((unsigned char)line[i] & 0xC0) == 0x80)
            i++;
    }
    assert_true(line + i < nl);
    assert_memory_equal(line + i, expect, strlen(expect));
}

static void test_soql_messages_of_huge_queries_stay_bounded_and_point_right(void **state)
{
    const fixture *f = *state;
    size_t n = 20000;
    char *text = malloc(n + 64);
    assert_non_null(text);
    sfm_soql *q = NULL;
    sfm_data_error e;
    char col[64];

    /* An error far along one line: a window of the line, the caret still under the token. */
    int k = snprintf(text, n + 64, "SELECT Id FROM Account WHERE Name = '");
    memset(text + k, 'a', n);
    snprintf(text + k + n, 64, "' garbage");
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_sane_message(&e);
    snprintf(col, sizeof(col), "ERROR at Row:1:Column:%zu\n", (size_t)k + n + 3);
    assert_non_null(strstr(e.message, col));
    assert_caret_under(e.message, "garbage");
    assert_non_null(strstr(e.message, "\nunexpected token: 'garbage'"));

    /* The same over two-byte characters: the window and the quote are cut between characters. */
    k = snprintf(text, n + 64, "SELECT Id FROM Account WHERE Name = '");
    for (size_t i = 0; i < n; i += 2)
        memcpy(text + k + i, "\xC3\xBC", 2);
    snprintf(text + k + n, 64, "'  garbage"); /* the window starts inside a character */
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_sane_message(&e);
    snprintf(col, sizeof(col), "ERROR at Row:1:Column:%zu\n", (size_t)k + n / 2 + 4);
    assert_non_null(strstr(e.message, col));
    assert_caret_under_chars(e.message, "garbage");
    memcpy(text, "SELECT Id FROM Account  garbage '", 33); /* the window ends inside one */
    memmove(text + 33, text + k, n + 1);
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_sane_message(&e);
    assert_non_null(strstr(e.message, "ERROR at Row:1:Column:25\n"));
    assert_caret_under_chars(e.message, "garbage");
    memmove(text + 23, text + 32, n + 2); /* "SELECT Id FROM Account 'üü...'": the quote is cut */
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_sane_message(&e);
    assert_non_null(strstr(e.message, "ERROR at Row:1:Column:24\nunexpected token: ''\xC3\xBC"));

    /* A huge token is quoted in part. */
    k = snprintf(text, n + 64, "SELECT Id FROM Account ");
    memset(text + k, 'b', n);
    text[k + n] = '\0';
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_sane_message(&e);
    assert_caret_under(e.message, "bbbb");
    assert_true(strlen(strstr(e.message, "unexpected token: '")) < 120);

    /* A huge unknown field: the whole sentence after it survives. */
    k = snprintf(text, n + 64, "SELECT ");
    memset(text + k, 'c', 5000);
    snprintf(text + k + 5000, 64, " FROM Account");
    assert_int_equal(sfm_soql_parse(text, &q, &e), 0);
    json_t *out = NULL;
    assert_int_equal(sfm_soql_run(q, "Account", f->fields, f->records, "60.0", &out, &e), -EINVAL);
    assert_sane_message(&e);
    assert_string_equal(e.code, "INVALID_FIELD");
    assert_caret_under(e.message, "cccc");
    const char *tail = "Please reference your WSDL or the describe call for the appropriate names.";
    assert_string_equal(e.message + strlen(e.message) - strlen(tail), tail);
    sfm_soql_free(q);
    free(text);

    /* Beyond Salesforce's 100,000 characters. */
    text = malloc(100002);
    assert_non_null(text);
    memset(text, ' ', 100001);
    memcpy(text, "SELECT Id FROM Account", 22);
    text[100001] = '\0';
    assert_int_equal(sfm_soql_parse(text, &q, &e), -EINVAL);
    assert_string_equal(e.code, "MALFORMED_QUERY");
    assert_string_equal(e.message, "SOQL statements cannot exceed 100000 characters");
    text[100000] = '\0';
    assert_int_equal(sfm_soql_parse(text, &q, &e), 0);
    sfm_soql_free(q);
    free(text);
}

static void test_soql_nesting_is_bounded(void **state)
{
    (void)state;
    char text[512], want[1024];
    int k = snprintf(text, sizeof(text), "SELECT Id FROM Account WHERE ");
    for (int i = 0; i < 40; i++)
        text[k++] = '(';
    snprintf(text + k, sizeof(text) - (size_t)k, "Name = 'a'");
    /* 32 levels are fine... */
    sfm_soql *q = NULL;
    sfm_data_error e;
    char ok[512];
    int m = snprintf(ok, sizeof(ok), "SELECT Id FROM Account WHERE ");
    for (int i = 0; i < 32; i++)
        ok[m++] = '(';
    m += snprintf(ok + m, sizeof(ok) - (size_t)m, "Name = 'Gamma'");
    for (int i = 0; i < 32; i++)
        ok[m++] = ')';
    ok[m] = '\0';
    assert_int_equal(sfm_soql_parse(ok, &q, &e), 0);
    sfm_soql_free(q);
    /* ...the 33rd is not. */
    framed(want, sizeof(want), text, 30 + 32, "unexpected token: '('");
    expect_parse_error(text, "MALFORMED_QUERY", want);
}

/* Parses `len` bytes of `text` from an allocation of exactly len + 1; checks the outcome is clean. */
static void feed(const fixture *f, const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    sfm_soql *q = NULL;
    sfm_data_error e;
    int rc = sfm_soql_parse(copy, &q, &e);
    if (rc == 0) {
        json_t *out = NULL;
        assert_non_null(sfm_soql_type(q));
        rc = sfm_soql_run(q, "Account", f->fields, f->records, "60.0", &out, &e);
        if (rc == 0) {
            assert_true(json_is_integer(json_object_get(out, "totalSize")));
            json_decref(out);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_string_equal(e.code, "INVALID_FIELD");
            assert_sane_message(&e);
        }
        sfm_soql_free(q);
    } else {
        assert_int_equal(rc, -EINVAL);
        assert_null(q);
        assert_string_equal(e.code, "MALFORMED_QUERY");
        assert_sane_message(&e);
        assert_non_null(strstr(e.message, "ERROR at Row:"));
    }
    free(copy);
}

static void test_soql_every_prefix_of_valid_queries_returns_cleanly(void **state)
{
    const fixture *f = *state;
    static const char *const queries[] = {
        "SELECT Id, Name FROM Account WHERE (Name LIKE 'a\\%b\\_%' OR Industry IN ('x', 'y\\'z', null)) AND "
        "NumberOfEmployees != -12.5 ORDER BY Name DESC NULLS LAST, Id ASC NULLS FIRST LIMIT 10 OFFSET 2",
        "SELECT COUNT() FROM Account WHERE IsActive__c = true AND Description = 'line\\n\\u00e9\\\\'",
        "select name\nfrom account\nwhere name = 'Z\xC3\xBCrich AG' or name <> null",
        "SELECT Name FROM Account WHERE Id = '001Ab00000000A3' LIMIT 1",
        "SELECT Name FROM Account WHERE Description LIKE '\\uD800\\r\\b\\f\\u005c\\u0025\\%' OR "
        "NumberOfEmployees IN (-0, 0.000000000000000000000000001, 18446744073709551616)",
    };
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        size_t len = strlen(queries[i]);
        for (size_t n = 0; n <= len; n++)
            feed(f, queries[i], n);
        sfm_soql *q = NULL;
        sfm_data_error e;
        assert_int_equal(sfm_soql_parse(queries[i], &q, &e), 0);
        sfm_soql_free(q);
    }
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A random query of the subset (at most 300 bytes) into buf; its length. */
static size_t random_query(uint64_t *seed, char *buf, size_t cap)
{
    static const char *const fields[] = {"Name", "industry",    "NumberOfEmployees",
                                         "Id",   "IsActive__c", "Bogus"};
    static const char *const ops[] = {"=", "!=", "<>", "LIKE", "IN"};
    static const char *const values[] = {"'a%'", "'Gamma'", "5",         "-1.5",
                                         "null", "true",    "'\\u0041'", "'_\\_'"};
    size_t len =
        (size_t)snprintf(buf, cap, "SELECT %s FROM Account", next_random(seed) % 4 ? "Name, Id" : "COUNT()");
    size_t conds = next_random(seed) % 4;
    const char *join = next_random(seed) % 2 ? " AND " : " OR ";
    for (size_t c = 0; c < conds; c++) {
        const char *op = ops[next_random(seed) % 5];
        const char *field = fields[next_random(seed) % 6];
        const char *value = strcmp(op, "IN") == 0 ? "('x', 'Retail', 5)" : values[next_random(seed) % 8];
        int paren = next_random(seed) % 3 == 0;
        len += (size_t)snprintf(buf + len, cap - len, "%s%s%s %s %s%s", c ? join : " WHERE ",
                                paren ? "(" : "", field, op, value, paren ? ")" : "");
    }
    if (next_random(seed) % 2)
        len += (size_t)snprintf(buf + len, cap - len, " ORDER BY %s DESC NULLS LAST, Name",
                                fields[next_random(seed) % 6]);
    if (next_random(seed) % 2)
        len += (size_t)snprintf(buf + len, cap - len, " LIMIT %d OFFSET %d", (int)(next_random(seed) % 5),
                                (int)(next_random(seed) % 3));
    return len;
}

static void test_soql_random_bytes_and_token_soup_return_cleanly(void **state)
{
    const fixture *f = *state;
    static const char *const vocab[] = {
        "SELECT",    "FROM",    "WHERE", "Name",    "Id",       "Account", "(",      ")",
        ",",         "=",       "!=",    "<>",      "LIKE",     "IN",      "AND",    "OR",
        "ORDER",     "BY",      "ASC",   "DESC",    "NULLS",    "FIRST",   "LAST",   "LIMIT",
        "OFFSET",    "COUNT",   "'a%'",  "'x\\'y'", "'",        "\\",      "5",      "-1.5",
        "null",      "true",    ".",     "\n",      "\xC3\xBC", "\xFF",    "'_\\_'", "Industry",
        "'\\u0041'", "COUNT()", "1.",    "'\\q'",   "<",        ">=",      ":",      "Bogus"};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    char buf[512];
    for (int i = 0; i < T_RANDOM_BYTES; i++) {
        size_t len = next_random(&seed) % 96;
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)(1 + next_random(&seed) % 255);
        feed(f, buf, len);
    }
    size_t nv = sizeof(vocab) / sizeof(vocab[0]);
    int parsed = 0;
    for (int i = 0; i < T_RANDOM_SOUP; i++) {
        size_t len = 0;
        if (i % 3 == 0) {
            /* Pure soup. */
            size_t words = 1 + next_random(&seed) % 14;
            for (size_t w = 0; w < words; w++) {
                const char *v = vocab[next_random(&seed) % nv];
                size_t vl = strlen(v);
                if (len + vl + 1 >= sizeof(buf))
                    break;
                memcpy(buf + len, v, vl);
                len += vl;
                if (next_random(&seed) % 4)
                    buf[len++] = ' ';
            }
        } else {
            /* A query from the subset's grammar, then, one time in two, one token spliced in. */
            len = random_query(&seed, buf, sizeof(buf));
            if (next_random(&seed) % 2) {
                const char *v = vocab[next_random(&seed) % nv];
                size_t vl = strlen(v), at = next_random(&seed) % (len + 1);
                memmove(buf + at + vl, buf + at, len - at);
                memcpy(buf + at, v, vl);
                len += vl;
            }
        }
        buf[len] = '\0';
        feed(f, buf, len);
        sfm_soql *q = NULL;
        sfm_data_error e;
        if (sfm_soql_parse(buf, &q, &e) == 0) {
            parsed++;
            sfm_soql_free(q);
        }
    }
    /* The soup reaches the runner too, not only the error paths. */
    assert_true(parsed > T_RANDOM_SOUP / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soql_accepted_queries_answer_the_expected_rows_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_soql_answer_has_salesforce_shape_in_select_order_with_canonical_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soql_answer_owns_its_values, setup, teardown),
        cmocka_unit_test(test_soql_url_carries_the_record_id_whatever_its_length),
        cmocka_unit_test(test_soql_type_is_the_from_name_as_written),
        cmocka_unit_test(test_soql_rejected_queries_are_malformed_with_salesforce_messages),
        cmocka_unit_test(test_soql_end_of_input_and_lexer_errors_point_at_the_last_character),
        cmocka_unit_test(test_soql_multiline_queries_report_the_row_and_show_that_line),
        cmocka_unit_test(test_soql_invalid_utf8_is_echoed_as_replacement_characters),
        cmocka_unit_test_setup_teardown(test_soql_unknown_field_is_invalid_field_at_its_column, setup,
                                        teardown),
        cmocka_unit_test(test_soql_invalid_type_points_at_the_from_name),
        cmocka_unit_test_setup_teardown(test_soql_messages_of_huge_queries_stay_bounded_and_point_right,
                                        setup, teardown),
        cmocka_unit_test(test_soql_nesting_is_bounded),
        cmocka_unit_test_setup_teardown(test_soql_every_prefix_of_valid_queries_returns_cleanly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_soql_random_bytes_and_token_soup_return_cleanly, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
