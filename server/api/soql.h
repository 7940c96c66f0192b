/*
 * soql: the subset of SOQL the emulator answers (parse, then run over one
 * type's records). Pure: no I/O, no globals, no locks; the caller holds
 * whatever protects the records while a query runs.
 *
 * The subset: SELECT a field list (or COUNT()) FROM one type, an optional
 * WHERE with =, !=, LIKE, IN (...), AND, OR, NOT-free parentheses, ORDER BY
 * fields with ASC|DESC and NULLS FIRST|LAST, LIMIT and OFFSET. Keywords and
 * field names are case-insensitive, as in Salesforce. Anything else is
 * MALFORMED_QUERY with Salesforce's message shape: the query, a caret under
 * the column, "ERROR at Row:1:Column:N" and what was unexpected.
 */
#ifndef SFM_SOQL_H
#define SFM_SOQL_H

#include <jansson.h>
#include <stddef.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))

/** A query or data error as Salesforce's REST API and SOAP faults name it. */
typedef struct sfm_data_error {
    int status;       /* HTTP status for REST: 400, 404 */
    const char *code; /* static: "MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "NOT_FOUND", ... */
    char message[1024];
} sfm_data_error;

typedef struct sfm_soql sfm_soql;

/**
 * Parses `text`. On success *out is the query (free with sfm_soql_free).
 * On failure returns -EINVAL and fills *e (MALFORMED_QUERY, status 400),
 * or -ENOMEM (UNKNOWN_EXCEPTION, 500). Never reads past the terminator,
 * whatever the input.
 */
SFM_NODISCARD int sfm_soql_parse(const char *text, sfm_soql **out, sfm_data_error *e);
void sfm_soql_free(sfm_soql *q);

/** The type named in FROM, as written. */
const char *sfm_soql_type(const sfm_soql *q);

/**
 * Fills *e for a FROM type the org does not have, as Salesforce answers it:
 * INVALID_TYPE (400), the query with a caret under the type, then "sObject
 * type 'X' is not supported. ..." (for the caller that resolves the type).
 */
void sfm_soql_invalid_type(const sfm_soql *q, sfm_data_error *e);

/**
 * Runs `q` over `records`, a JSON array of one type's records (objects whose
 * values are scalars; each has "Id"). `type` is the type's canonical name and
 * `fields` the JSON array of its field names (canonical spelling; the query's
 * names are matched case-insensitively and answered in this spelling).
 * `version` goes into each record's attributes.url
 * ("/services/data/v<version>/sobjects/<type>/<Id>").
 *
 * On success *out is {"totalSize":N,"done":true,"records":[...]}: each record
 * {"attributes":{"type","url"}, then the selected fields in SELECT order};
 * COUNT() gives totalSize and an empty "records". A field absent from a
 * record is null. *out shares no value with `records`: it stays valid when
 * they change or go. On failure returns a negative code and fills *e: a field the
 * type does not have is INVALID_FIELD (400) with Salesforce's "No such column
 * 'X' on entity 'T'..." message.
 */
SFM_NODISCARD int sfm_soql_run(const sfm_soql *q, const char *type, const json_t *fields,
                               const json_t *records, const char *version, json_t **out, sfm_data_error *e);

#endif
