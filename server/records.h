/*
 * records: the org's sObject records as the REST and SOAP APIs see them:
 * the fixture's "records", with ids, plus the changes made through the API.
 * In memory only (SPEC section 7); back to the fixture on an admin reset and
 * on SIGHUP. Thread-safe: one lock (readers share it), held only while a
 * call copies, changes or queries; nothing it returns points inside.
 *
 * Ids: key prefixes Account 001, Contact 003, Opportunity 006, Lead 00Q,
 * Case 500, any other type a stable "a0" + one character per type; fixture
 * records get ids derived from type and position (stable across restarts),
 * new records the next free number. 15- and 18-character ids are both
 * accepted; answers carry 18.
 */
#ifndef SFM_RECORDS_H
#define SFM_RECORDS_H

#include <jansson.h>

#include "api/soql.h"
#include "org.h"

#define SFM_NODISCARD __attribute__((warn_unused_result))

typedef struct sfm_records sfm_records;

/** The fixture's records of `org` (borrowed; its records are copied). 0 or -ENOMEM. */
SFM_NODISCARD int sfm_records_new(sfm_records **out, const sfm_org *org);
void sfm_records_free(sfm_records *r);

/** Forgets every API change: the records of `org` again. 0 or -ENOMEM (then nothing changed). */
SFM_NODISCARD int sfm_records_reset(sfm_records *r, const sfm_org *org);

/** The types, sorted by name: a new JSON array of strings (NULL when out of memory). */
json_t *sfm_records_types(sfm_records *r);

/**
 * A type's canonical name and fields: "Id", "Name", then the union of the
 * keys of its records in first-seen order. `type` is matched
 * case-insensitively. Returns a new JSON array, or NULL for an unknown type.
 * `canonical` (may be NULL) receives the name as the fixture spells it.
 */
json_t *sfm_records_fields(sfm_records *r, const char *type, char *canonical, size_t canonical_len);

/** The 3-character key prefix of a type ("001" for Account). */
void sfm_records_prefix(const char *type, char out[4]);

/**
 * One record: a new JSON object with "attributes" {"type","url"} first, then
 * "Id" and its fields. -ESRCH unknown type, -ENOENT no such record.
 */
SFM_NODISCARD int sfm_records_get(sfm_records *r, const char *type, const char *id, const char *version,
                                  json_t **out);

/**
 * Creates a record from `fields` (an object of scalars). On success `id`
 * holds its 18-character id. Failure fills *e as Salesforce answers: unknown
 * type 404 NOT_FOUND; a field the type does not have, or "Id", 400
 * INVALID_FIELD; a value that is an object or array 400 JSON_PARSER_ERROR.
 */
SFM_NODISCARD int sfm_records_create(sfm_records *r, const char *type, const json_t *fields, char id[19],
                                     sfm_data_error *e);
/** Updates a record's fields (same checks as create; an unknown id is 404 NOT_FOUND). */
SFM_NODISCARD int sfm_records_update(sfm_records *r, const char *type, const char *id, const json_t *fields,
                                     sfm_data_error *e);
/** Deletes a record; an unknown type or id is 404 NOT_FOUND. */
SFM_NODISCARD int sfm_records_delete(sfm_records *r, const char *type, const char *id, sfm_data_error *e);

/**
 * Runs a parsed query over the current records (see sfm_soql_run). An
 * unknown type in FROM is 400 INVALID_TYPE "sObject type 'X' is not
 * supported. ..." as Salesforce words it.
 */
SFM_NODISCARD int sfm_records_query(sfm_records *r, const sfm_soql *q, const char *version, json_t **out,
                                    sfm_data_error *e);

#endif
