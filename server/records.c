#include "records.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfid.h"

/* Base-62 digits, as Salesforce orders them (digits, upper, lower): the third character of a custom prefix.
 */
static const char k_base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define FNV32_OFFSET 0x811c9dc5u
#define FNV32_PRIME  0x01000193u
/* Salts tried for one derived id before giving up: a collision needs two 62^11 hashes to meet. */
#define MAX_SALT 64

/* The standard types with published key prefixes [SF]. */
static const struct {
    const char *type;
    const char *prefix;
} k_prefixes[] = {
    {"Account", "001"}, {"Contact", "003"}, {"Opportunity", "006"}, {"Lead", "00Q"}, {"Case", "500"},
};

/* One sObject type. `records` and `byid` hold the same record objects. */
struct rtype {
    char *name; /* as the fixture spells it */
    char prefix[4];
    json_t *fields;     /* "Id", "Name", then the union of the fixture records' keys */
    json_t *records;    /* the records in creation order: objects, "Id" first */
    json_t *byid;       /* the first 15 characters of an id -> its record */
    unsigned long next; /* the position the next new record's id derives from */
};

/* Everything the lock protects; built whole, so a reset swaps it in at once. */
struct rstore {
    struct rtype *types; /* sorted by name, without regard to case */
    size_t n;
};

struct sfm_records {
    pthread_rwlock_t lock;
    struct rstore s;
};

static void store_cleanup(struct rstore *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->types[i].name);
        json_decref(s->types[i].fields);
        json_decref(s->types[i].records);
        json_decref(s->types[i].byid);
    }
    free(s->types);
    s->types = NULL;
    s->n = 0;
}

void sfm_records_prefix(const char *type, char out[4])
{
    for (size_t i = 0; i < sizeof(k_prefixes) / sizeof(k_prefixes[0]); i++) {
        if (strcasecmp(type, k_prefixes[i].type) == 0) {
            memcpy(out, k_prefixes[i].prefix, 4);
            return;
        }
    }
    /* Types are matched without regard to case, so the hash is too. */
    uint32_t h = FNV32_OFFSET;
    for (const unsigned char *p = (const unsigned char *)type; *p; p++) {
        unsigned char c = (*p >= 'A' && *p <= 'Z') ? (unsigned char)(*p - 'A' + 'a') : *p;
        h ^= c;
        h *= FNV32_PRIME;
    }
    out[0] = 'a';
    out[1] = '0';
    out[2] = k_base62[h % 62];
    out[3] = '\0';
}

/* The type named `type` (any case), or NULL. The types are few: a binary search on the sorted list. */
static struct rtype *find_type(const struct rstore *s, const char *type)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(type, s->types[mid].name);
        if (c == 0)
            return &s->types[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* The canonical spelling of field `name` of `t` (any case), or NULL. */
static const char *find_field(const struct rtype *t, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(t->fields, i, f)
    {
        if (strcasecmp(json_string_value(f), name) == 0)
            return json_string_value(f);
    }
    return NULL;
}

/* Keys a fixture record may carry that are not fields: the id is ours to give. */
static int reserved_key(const char *key)
{
    return strcasecmp(key, "Id") == 0 || strcmp(key, "attributes") == 0;
}

/* Whether some type with t's prefix already holds the id whose first 15 characters are `id15`. */
static int id_taken(const struct rstore *s, const struct rtype *t, const char *id15)
{
    for (size_t i = 0; i < s->n; i++) {
        if (memcmp(s->types[i].prefix, t->prefix, 3) == 0 && json_object_get(s->types[i].byid, id15))
            return 1;
    }
    return 0;
}

/*
 * A new id for the record at `position` (1-based) of `t`: derived from the
 * type and the position, so the fixture's ids are the same at every start.
 * 0, or -EEXIST when every salt collides (not expected to happen).
 */
static int new_id(const struct rstore *s, const struct rtype *t, unsigned long position,
                  char id[SFM_SFID_LEN + 1])
{
    char name[192];
    snprintf(name, sizeof(name), "%s#%lu", t->name, position);
    for (unsigned salt = 0; salt < MAX_SALT; salt++) {
        char key[16];
        sfm_sfid_derive(t->prefix, name, salt, id);
        memcpy(key, id, 15);
        key[15] = '\0';
        if (!id_taken(s, t, key))
            return 0;
    }
    return -EEXIST;
}

/* Adds `rec` (a reference it steals) to `t` under `id`. 0 or -ENOMEM. */
static int add_record(struct rtype *t, const char id[SFM_SFID_LEN + 1], json_t *rec)
{
    char key[16];
    memcpy(key, id, 15);
    key[15] = '\0';
    if (!rec || json_object_set(t->byid, key, rec) != 0) {
        json_decref(rec);
        return -ENOMEM;
    }
    if (json_array_append_new(t->records, rec) != 0) {
        json_object_del(t->byid, key);
        return -ENOMEM;
    }
    return 0;
}

static int cmp_type(const void *a, const void *b)
{
    return strcasecmp(((const struct rtype *)a)->name, ((const struct rtype *)b)->name);
}

/* The fields of a fixture type: Id, Name, then every other key in first-seen order, first spelling wins. */
static int build_fields(struct rtype *t, const json_t *list)
{
    t->fields = json_pack("[s,s]", "Id", "Name");
    if (!t->fields)
        return -ENOMEM;
    size_t i;
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)rec, key, v)
        {
            if (reserved_key(key) || find_field(t, key))
                continue;
            if (json_array_append_new(t->fields, json_string(key)) != 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* A fixture record as stored: "Id", then its fields under their canonical names. */
static json_t *fixture_record(const struct rtype *t, const json_t *src, const char *id)
{
    json_t *rec = json_pack("{s:s}", "Id", id);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        if (!rec)
            break;
        if (reserved_key(key))
            continue;
        if (json_object_set_new(rec, find_field(t, key), json_deep_copy(v)) != 0) {
            json_decref(rec);
            rec = NULL;
        }
    }
    return rec;
}

/* The records of `org` as a new store. 0 or -ENOMEM (nothing to free then). */
static int store_build(const sfm_org *org, struct rstore *out)
{
    const json_t *all = org->records;
    struct rstore s = {0};
    int rc = 0;
    size_t n = json_object_size(all);
    s.types = calloc(n ? n : 1, sizeof(*s.types));
    if (!s.types)
        return -ENOMEM;
    const char *type;
    json_t *list;
    json_object_foreach((json_t *)all, type, list)
    {
        struct rtype *t = &s.types[s.n++];
        t->name = strdup(type);
        t->records = json_array();
        t->byid = json_object();
        if (!t->name || !t->records || !t->byid) {
            rc = -ENOMEM;
            goto fail;
        }
        sfm_records_prefix(type, t->prefix);
        rc = build_fields(t, list);
        if (rc < 0)
            goto fail;
    }
    qsort(s.types, s.n, sizeof(*s.types), cmp_type);
    /* Ids after sorting, type by type, so that collisions resolve the same way at every start. */
    for (size_t k = 0; k < s.n; k++) {
        struct rtype *t = &s.types[k];
        const json_t *src_list = json_object_get(all, t->name);
        size_t i;
        json_t *src;
        json_array_foreach(src_list, i, src)
        {
            char id[SFM_SFID_LEN + 1];
            rc = new_id(&s, t, i + 1, id);
            if (rc == 0)
                rc = add_record(t, id, fixture_record(t, src, id));
            if (rc < 0)
                goto fail;
        }
        t->next = json_array_size(src_list) + 1;
    }
    *out = s;
    return 0;
fail:
    store_cleanup(&s);
    return rc;
}

int sfm_records_new(sfm_records **out, const sfm_org *org)
{
    sfm_records *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_rwlockattr_t attr;
    int rc = -ENOMEM;
    if (pthread_rwlockattr_init(&attr) != 0)
        goto fail;
#ifdef __GLIBC__
    /* glibc prefers readers by default: a steady stream of queries would starve a create for ever. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    int lrc = pthread_rwlock_init(&r->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (lrc != 0)
        goto fail;
    rc = store_build(org, &r->s);
    if (rc < 0) {
        pthread_rwlock_destroy(&r->lock);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    free(r);
    return rc;
}

void sfm_records_free(sfm_records *r)
{
    if (!r)
        return;
    store_cleanup(&r->s);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

int sfm_records_reset(sfm_records *r, const sfm_org *org)
{
    struct rstore fresh, old;
    int rc = store_build(org, &fresh);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&r->lock);
    old = r->s;
    r->s = fresh;
    pthread_rwlock_unlock(&r->lock);
    store_cleanup(&old);
    return 0;
}

json_t *sfm_records_types(sfm_records *r)
{
    json_t *out = json_array();
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; out && i < r->s.n; i++) {
        if (json_array_append_new(out, json_string(r->s.types[i].name)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return out;
}

json_t *sfm_records_fields(sfm_records *r, const char *type, char *canonical, size_t canonical_len)
{
    json_t *out = NULL;
    pthread_rwlock_rdlock(&r->lock);
    const struct rtype *t = find_type(&r->s, type);
    if (t) {
        /* Built anew, not json_deep_copy'd: other readers walk t->fields meanwhile. */
        out = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(t->fields, i, f)
        {
            if (out && json_array_append_new(out, json_string(json_string_value(f))) != 0) {
                json_decref(out);
                out = NULL;
            }
        }
        if (out && canonical && canonical_len)
            snprintf(canonical, canonical_len, "%s", t->name);
    }
    pthread_rwlock_unlock(&r->lock);
    return out;
}

/* The record of `t` with id `id` (15 or 18 characters, checksum checked), or NULL. */
static json_t *find_record(const struct rtype *t, const char *id)
{
    char full[SFM_SFID_LEN + 1];
    if (sfm_sfid_to18(id, full) != 0 || memcmp(full, t->prefix, 3) != 0)
        return NULL;
    full[15] = '\0';
    return json_object_get(t->byid, full);
}

static void attributes_url(char *out, size_t len, const char *version, const char *type, const char *id)
{
    snprintf(out, len, "/services/data/v%s/sobjects/%s/%s", version, type, id);
}

int sfm_records_get(sfm_records *r, const char *type, const char *id, const char *version, json_t **out)
{
    int rc = 0;
    json_t *o = NULL;
    pthread_rwlock_rdlock(&r->lock);
    const struct rtype *t = find_type(&r->s, type);
    const json_t *rec = t ? find_record(t, id) : NULL;
    if (!t) {
        rc = -ESRCH;
        goto out;
    }
    if (!rec) {
        rc = -ENOENT;
        goto out;
    }
    const char *rid = json_string_value(json_object_get(rec, "Id"));
    char url[384];
    attributes_url(url, sizeof(url), version, t->name, rid);
    o = json_pack("{s:{s:s,s:s},s:s}", "attributes", "type", t->name, "url", url, "Id", rid);
    /* Every field of the type, as Salesforce answers without ?fields=: null where the record has none. */
    size_t i;
    json_t *f;
    json_array_foreach(t->fields, i, f)
    {
        if (!o || i == 0)
            continue;
        const char *name = json_string_value(f);
        json_t *v = json_object_get(rec, name);
        if (json_object_set_new(o, name, v ? json_deep_copy(v) : json_null()) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    rc = o ? 0 : -ENOMEM;
out:
    pthread_rwlock_unlock(&r->lock);
    if (rc == 0)
        *out = o;
    return rc;
}

__attribute__((format(printf, 4, 5))) static void set_error(sfm_data_error *e, int status, const char *code,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->status = status;
    e->code = code;
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static void not_found(sfm_data_error *e)
{
    set_error(e, 404, "NOT_FOUND", "The requested resource does not exist");
}

/* Jackson's name for the token a value starts with, and its text (Salesforce parses bodies with Jackson). */
static void token_of(const json_t *v, char *out, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(out, len, "START_OBJECT value {"); break;
    case JSON_ARRAY: snprintf(out, len, "START_ARRAY value ["); break;
    case JSON_STRING: snprintf(out, len, "VALUE_STRING value %.64s", json_string_value(v)); break;
    case JSON_INTEGER:
        snprintf(out, len, "VALUE_NUMBER_INT value %" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: snprintf(out, len, "VALUE_NUMBER_FLOAT value %g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(out, len, "VALUE_TRUE value true"); break;
    case JSON_FALSE: snprintf(out, len, "VALUE_FALSE value false"); break;
    case JSON_NULL: snprintf(out, len, "VALUE_NULL value null"); break;
    }
}

/*
 * Checks `fields` against `t` as create and update do [obs: force-rest-api
 * #69, MinnPost object-sync #194, restforce #619]: "Id" is refused, an
 * unknown field is INVALID_FIELD, a value that is an object or an array
 * cannot be deserialised into a field. The first offending key wins, in the
 * body's order. 0 or -EINVAL with *e filled.
 */
static int check_fields(const struct rtype *t, const json_t *fields, sfm_data_error *e)
{
    char token[96];
    if (!json_is_object(fields)) {
        token_of(fields, token, sizeof(token));
        set_error(e, 400, "JSON_PARSER_ERROR",
                  "Cannot deserialize instance of %s from %s or request may be missing a required field",
                  t->name, token);
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)fields, key, v)
    {
        if (strcasecmp(key, "Id") == 0) {
            set_error(e, 400, "INVALID_FIELD", "The Id field should not be specified in the sobject data.");
            return -EINVAL;
        }
        if (!find_field(t, key)) {
            set_error(e, 400, "INVALID_FIELD", "No such column '%s' on sobject of type %s", key, t->name);
            return -EINVAL;
        }
        if (json_is_object(v) || json_is_array(v)) {
            token_of(v, token, sizeof(token));
            set_error(
                e, 400, "JSON_PARSER_ERROR",
                "Cannot deserialize instance of string from %s or request may be missing a required field",
                token);
            return -EINVAL;
        }
    }
    return 0;
}

/* Sets `fields` (checked) on `rec` under their canonical names. 0 or -ENOMEM. */
static int apply_fields(const struct rtype *t, json_t *rec, const json_t *fields)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)fields, key, v)
    {
        if (json_object_set_new(rec, find_field(t, key), json_deep_copy(v)) != 0)
            return -ENOMEM;
    }
    return 0;
}

static void out_of_memory(sfm_data_error *e)
{
    set_error(e, 500, "UNKNOWN_EXCEPTION", "Out of memory.");
}

int sfm_records_create(sfm_records *r, const char *type, const json_t *fields, char id[19], sfm_data_error *e)
{
    int rc;
    char nid[SFM_SFID_LEN + 1];
    json_t *rec = NULL;
    pthread_rwlock_wrlock(&r->lock);
    struct rtype *t = find_type(&r->s, type);
    if (!t) {
        not_found(e);
        rc = -ESRCH;
        goto out;
    }
    rc = check_fields(t, fields, e);
    if (rc < 0)
        goto out;
    rc = new_id(&r->s, t, t->next, nid);
    if (rc < 0) {
        set_error(e, 500, "UNKNOWN_EXCEPTION", "No free record id.");
        goto out;
    }
    rec = json_pack("{s:s}", "Id", nid);
    if (!rec || apply_fields(t, rec, fields) != 0) {
        json_decref(rec);
        rc = -ENOMEM;
        out_of_memory(e);
        goto out;
    }
    rc = add_record(t, nid, rec);
    if (rc < 0) {
        out_of_memory(e);
        goto out;
    }
    t->next++;
out:
    pthread_rwlock_unlock(&r->lock);
    if (rc == 0)
        memcpy(id, nid, SFM_SFID_LEN + 1);
    return rc;
}

/* The record `id` of `type`, for a change (write lock held): 0, or -ESRCH
 * (no such type) or -ENOENT (no such record) with `e` set. */
static int find_existing(sfm_records *r, const char *type, const char *id, struct rtype **t, json_t **rec,
                         sfm_data_error *e)
{
    *t = find_type(&r->s, type);
    *rec = *t ? find_record(*t, id) : NULL;
    if (*rec)
        return 0;
    not_found(e);
    return *t ? -ENOENT : -ESRCH;
}

int sfm_records_update(sfm_records *r, const char *type, const char *id, const json_t *fields,
                       sfm_data_error *e)
{
    struct rtype *t;
    json_t *rec;
    pthread_rwlock_wrlock(&r->lock);
    int rc = find_existing(r, type, id, &t, &rec, e);
    if (rc < 0)
        goto out;
    rc = check_fields(t, fields, e);
    if (rc < 0)
        goto out;
    /* On a copy, so that running out of memory half-way changes nothing. */
    json_t *copy = json_copy(rec);
    if (!copy || apply_fields(t, copy, fields) != 0 || json_object_update(rec, copy) != 0) {
        json_decref(copy);
        rc = -ENOMEM;
        out_of_memory(e);
        goto out;
    }
    json_decref(copy);
out:
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int sfm_records_delete(sfm_records *r, const char *type, const char *id, sfm_data_error *e)
{
    struct rtype *t;
    json_t *rec;
    pthread_rwlock_wrlock(&r->lock);
    int rc = find_existing(r, type, id, &t, &rec, e);
    if (rc < 0)
        goto out;
    size_t i;
    json_t *v;
    json_array_foreach(t->records, i, v)
    {
        if (v == rec)
            break;
    }
    char key[16];
    memcpy(key, json_string_value(json_object_get(rec, "Id")), 15);
    key[15] = '\0';
    /* The array's reference goes last: `rec` stays valid until both are gone. */
    json_object_del(t->byid, key);
    json_array_remove(t->records, i);
out:
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

int sfm_records_query(sfm_records *r, const sfm_soql *q, const char *version, json_t **out, sfm_data_error *e)
{
    int rc;
    json_t *res = NULL;
    const char *type = sfm_soql_type(q);
    pthread_rwlock_rdlock(&r->lock);
    const struct rtype *t = find_type(&r->s, type);
    if (!t) {
        /* Salesforce's words, framed like MALFORMED_QUERY with a caret under
         * the type [obs: vlocity_build #364, gravityplus #156]. */
        sfm_soql_invalid_type(q, e);
        rc = -ESRCH;
        goto out;
    }
    /* The answer shares no value with the store (soql.h), so it outlives the lock. */
    rc = sfm_soql_run(q, t->name, t->fields, t->records, version, &res, e);
out:
    pthread_rwlock_unlock(&r->lock);
    if (rc == 0)
        *out = res;
    return rc;
}
