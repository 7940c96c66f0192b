/*
 * rest: the REST API under /services/data/ (SPEC section 5): the versions
 * (no session), then, for a session, the resource map, limits, describe
 * global, sObject basic information, describe, record create / read /
 * update / delete, query and queryAll, in Salesforce's shapes.
 *
 * Every call after the session check carries Sforce-Limit-Info [SF]. A
 * resource answers only its methods: anything else is 405 with Allow, in
 * the words Salesforce uses ("HTTP Method 'PUT' not allowed. Allowed are
 * HEAD,GET,POST") [obs: forrest #181, simple-salesforce #412; HEAD,GET,
 * PATCH,DELETE for a record: forrest #59]. HEAD is answered as GET (the
 * server sends no body for it).
 */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../utf8.h"

/** Path segments after the version that any resource has (sobjects/{Type}/{id}). */
#define REST_MAX_SEGMENTS 3
/** Bytes of one path segment (a type name or an id); longer names no type. */
#define REST_SEGMENT_MAX 256

void sfm_api_rest_error(sfm_response *resp, int status, const char *error_code, const char *message)
{
    sfm_response_json(resp, status, json_pack("[{s:s, s:s}]", "message", message, "errorCode", error_code));
}

void sfm_api_not_found(sfm_response *resp)
{
    sfm_api_rest_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
}

void sfm_api_versions(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)app;
    const sfm_org *org = req->snap->org;
    sfm_response_set(resp, 200, "application/json;charset=UTF-8", org->versions_json, org->versions_json_len);
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* A REST error whose message may quote what the client sent: made valid UTF-8 first (jansson refuses
 * anything else). */
static void rest_error(sfm_response *resp, int status, const char *code, const char *message)
{
    size_t len = strlen(message);
    char *fixed = malloc(3 * len + 1);
    if (!fixed) {
        sfm_response_json(resp, 500, NULL);
        return;
    }
    sfm_utf8_repair(message, len, fixed);
    sfm_api_rest_error(resp, status, code, fixed);
    free(fixed);
}

static void data_error(sfm_response *resp, const sfm_data_error *e)
{
    rest_error(resp, e->status ? e->status : 500, e->code ? e->code : "UNKNOWN_EXCEPTION", e->message);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *query_param(const sfm_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_query; i++) {
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    }
    return NULL;
}

static int is_method(const sfm_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

/* GET, or HEAD, which is answered as GET. */
static int is_get(const sfm_request *req)
{
    return is_method(req, "GET") || is_method(req, "HEAD");
}

/* 405 for a method the resource does not have; `allowed` as Salesforce lists it ("HEAD,GET,POST"). */
static void method_not_allowed(const sfm_request *req, sfm_response *resp, const char *allowed)
{
    /* The method is quoted back: only its token characters (RFC 9110). */
    char method[33], msg[128];
    size_t n = 0;
    for (const char *m = req->method; *m && n < sizeof(method) - 1; m++)
        method[n++] = (*m > 0x20 && *m < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", *m)) ? *m : '?';
    method[n] = '\0';
    snprintf(msg, sizeof(msg), "HTTP Method '%s' not allowed. Allowed are %s", method, allowed);
    sfm_api_rest_error(resp, 405, "METHOD_NOT_ALLOWED", msg);
    sfm_response_header(resp, "Allow", allowed);
}

static void no_content(sfm_response *resp)
{
    sfm_response_set(resp, 204, "application/json;charset=UTF-8", "", 0);
}

/* ---- the path --------------------------------------------------------------------------------- */

enum resource {
    R_MAP,       /* /vNN.N/ */
    R_LIMITS,    /* /limits */
    R_GLOBAL,    /* /sobjects */
    R_SOBJECT,   /* /sobjects/{Type} */
    R_DESCRIBE,  /* /sobjects/{Type}/describe */
    R_RECORD,    /* /sobjects/{Type}/{id} */
    R_QUERY,     /* /query */
    R_QUERY_ALL, /* /queryAll */
    R_UNKNOWN,
};

typedef struct rest_path {
    int version_known;
    char version[8]; /* "67.0": the one named, or the newest for "latest" */
    enum resource res;
    char type[REST_SEGMENT_MAX]; /* as written in the path */
    char id[REST_SEGMENT_MAX];
} rest_path;

/* A version "NN.N" as a number to compare; -1 when it is not one. */
static long version_rank(const char *v)
{
    char *end;
    long major = strtol(v, &end, 10);
    if (end == v || *end != '.')
        return -1;
    const char *m = end + 1;
    long minor = strtol(m, &end, 10);
    if (end == m || *end)
        return -1;
    return major * 1000 + minor;
}

/* The version a path segment names ("v64.0", or "latest": the newest the org serves [SF]). */
static int resolve_version(const sfm_org *org, const char *seg, size_t len, char out[8])
{
    const sfm_api_version *best = NULL;
    if (len == 6 && memcmp(seg, "latest", 6) == 0) {
        for (size_t i = 0; i < org->n_versions; i++) {
            if (!best || version_rank(org->versions[i].version) > version_rank(best->version))
                best = &org->versions[i];
        }
    } else if (len > 1 && seg[0] == 'v') {
        for (size_t i = 0; i < org->n_versions && !best; i++) {
            const char *v = org->versions[i].version;
            if (strlen(v) == len - 1 && memcmp(v, seg + 1, len - 1) == 0)
                best = &org->versions[i];
        }
    }
    if (!best)
        return 0;
    snprintf(out, 8, "%s", best->version);
    return 1;
}

/* Copies one segment; 0 when it is empty or too long to name anything. */
static int copy_segment(char out[REST_SEGMENT_MAX], const char *s, size_t n)
{
    if (n == 0 || n >= REST_SEGMENT_MAX)
        return 0;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* Splits what follows "/services/data/" into the version and the resource. */
static void parse_path(const sfm_org *org, const char *path, rest_path *p)
{
    memset(p, 0, sizeof(*p));
    p->res = R_UNKNOWN;
    const char *s = path + strlen("/services/data/");
    size_t vlen = strcspn(s, "/");
    p->version_known = resolve_version(org, s, vlen, p->version);
    s += vlen;
    if (*s == '/')
        s++;
    /* One trailing slash is allowed ("/limits/" is Salesforce's own spelling). */
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '/')
        len--;
    if (len == 0) {
        p->res = R_MAP;
        return;
    }
    const char *seg[REST_MAX_SEGMENTS];
    size_t seglen[REST_MAX_SEGMENTS], n = 0;
    for (size_t i = 0; i <= len;) {
        size_t k = i;
        while (k < len && s[k] != '/')
            k++;
        if (n == REST_MAX_SEGMENTS || k == i)
            return; /* too deep, or an empty segment: nothing we serve */
        seg[n] = s + i;
        seglen[n++] = k - i;
        i = k + 1;
    }
#define SEG_IS(i, lit) (seglen[i] == strlen(lit) && memcmp(seg[i], lit, seglen[i]) == 0)
    if (n == 1 && SEG_IS(0, "limits"))
        p->res = R_LIMITS;
    else if (n == 1 && SEG_IS(0, "query"))
        p->res = R_QUERY;
    else if (n == 1 && SEG_IS(0, "queryAll"))
        p->res = R_QUERY_ALL;
    else if (n == 1 && SEG_IS(0, "sobjects"))
        p->res = R_GLOBAL;
    else if (SEG_IS(0, "sobjects") && copy_segment(p->type, seg[1], seglen[1])) {
        if (n == 2)
            p->res = R_SOBJECT;
        else if (SEG_IS(2, "describe"))
            p->res = R_DESCRIBE;
        else if (copy_segment(p->id, seg[2], seglen[2]))
            p->res = R_RECORD;
    }
#undef SEG_IS
}

/* ---- names and labels ------------------------------------------------------------------------- */

static int is_custom(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, "__c") == 0;
}

/* A label from an API name [emu]: "__c" dropped, "_" as a space, a space before each inner capital that
 * follows a lower-case letter ("AnnualRevenue" -> "Annual Revenue"). */
static void make_label(const char *name, char *out, size_t len)
{
    size_t n = strlen(name), o = 0;
    if (is_custom(name))
        n -= 3;
    for (size_t i = 0; i < n && o + 2 < len; i++) {
        char c = name[i];
        if (c == '_') {
            out[o++] = ' ';
            continue;
        }
        if (i > 0 && c >= 'A' && c <= 'Z' && name[i - 1] >= 'a' && name[i - 1] <= 'z')
            out[o++] = ' ';
        out[o++] = c;
    }
    out[o] = '\0';
}

/* English plural of a label [emu]: Opportunity -> Opportunities, Business -> Businesses, Account -> Accounts.
 */
static void make_plural(const char *label, char *out, size_t len)
{
    size_t n = strlen(label);
    char last = n ? label[n - 1] : '\0', before = n > 1 ? label[n - 2] : '\0';
    if (last == 'y' && !strchr("aeiou", before))
        snprintf(out, len, "%.*sies", (int)(n - 1), label);
    else if (last == 's' || last == 'x' || (last == 'h' && (before == 'c' || before == 's')))
        snprintf(out, len, "%ses", label);
    else
        snprintf(out, len, "%ss", label);
}

static void url_of(char *out, size_t len, const char *version, const char *rest)
{
    snprintf(out, len, "/services/data/v%s/%s", version, rest);
}

/* ---- resources -------------------------------------------------------------------------------- */

/* GET /vNN.N/: the resources this emulator serves, each "/services/data/vNN.N/<name>" [SF shape]. */
static void resource_map(const sfm_app *app, const sfm_request *req, const rest_path *p, const sfm_caller *c,
                         sfm_response *resp)
{
    static const char *const names[] = {"limits", "query", "queryAll", "sobjects"};
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof(names) / sizeof(names[0]); i++) {
        char url[96];
        url_of(url, sizeof(url), p->version, names[i]);
        json_object_set_new(o, names[i], json_string(url));
    }
    char identity[320];
    snprintf(identity, sizeof(identity), "%s/id/%s/%s", app->instance_url, req->snap->org->id, c->fx->id);
    if (o)
        json_object_set_new(o, "identity", json_string(identity));
    sfm_response_json(resp, 200, o);
}

/* Salesforce's limit keys [SF: the REST API's Limits resource], at fixed values of an Enterprise-size
 * org [emu]; only DailyApiRequests moves. */
static const struct {
    const char *name;
    long max;
} k_limits[] = {
    {"AnalyticsExternalDataSizeMB", 40960},
    {"ConcurrentAsyncGetReportInstances", 200},
    {"ConcurrentEinsteinDataInsightsStoryCreation", 5},
    {"ConcurrentEinsteinDiscoveryStoryCreation", 2},
    {"ConcurrentSyncReportRuns", 20},
    {"DailyAnalyticsDataflowJobExecutions", 60},
    {"DailyAnalyticsUploadedFilesSizeMB", 51200},
    {"DailyApiRequests", 0},
    {"DailyAsyncApexExecutions", 250000},
    {"DailyAsyncApexTests", 500},
    {"DailyBulkApiBatches", 15000},
    {"DailyBulkV2QueryFileStorageMB", 976562},
    {"DailyBulkV2QueryJobs", 10000},
    {"DailyDeliveredPlatformEvents", 50000},
    {"DailyDurableGenericStreamingApiEvents", 10000},
    {"DailyDurableStreamingApiEvents", 50000},
    {"DailyEinsteinDataInsightsStoryCreation", 1000},
    {"DailyEinsteinDiscoveryPredictAPICalls", 50000},
    {"DailyEinsteinDiscoveryPredictionsByCDC", 5000000},
    {"DailyEinsteinDiscoveryStoryCreation", 100},
    {"DailyGenericStreamingApiEvents", 10000},
    {"DailyScratchOrgs", 6},
    {"DailyStandardVolumePlatformEvents", 10000},
    {"DailyStreamingApiEvents", 50000},
    {"DailyWorkflowEmails", 2000},
    {"DataStorageMB", 1024},
    {"DurableStreamingApiConcurrentClients", 1000},
    {"FileStorageMB", 10240},
    {"HourlyAsyncReportRuns", 1200},
    {"HourlyDashboardRefreshes", 200},
    {"HourlyDashboardResults", 5000},
    {"HourlyDashboardStatuses", 999999999},
    {"HourlyLongTermIdMapping", 100000},
    {"HourlyManagedContentPublicRequests", 50000},
    {"HourlyODataCallout", 10000},
    {"HourlyPublishedPlatformEvents", 250000},
    {"HourlyPublishedStandardVolumePlatformEvents", 100000},
    {"HourlyShortTermIdMapping", 100000},
    {"HourlySyncReportRuns", 500},
    {"HourlyTimeBasedWorkflow", 1000},
    {"MassEmail", 5000},
    {"MonthlyPlatformEventsUsageEntitlement", 0},
    {"Package2VersionCreates", 6},
    {"Package2VersionCreatesWithoutValidation", 500},
    {"PermissionSets", 1500},
    {"PrivateConnectOutboundCalloutHourlyLimitMB", 0},
    {"SingleEmail", 5000},
    {"StreamingApiConcurrentClients", 1000},
};

static void limits(const sfm_app *app, sfm_response *resp)
{
    long used, max;
    sfm_auth_usage(app, &used, &max);
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof(k_limits) / sizeof(k_limits[0]); i++) {
        long m = k_limits[i].max, remaining = m;
        if (strcmp(k_limits[i].name, "DailyApiRequests") == 0) {
            m = max;
            remaining = max > used ? max - used : 0;
        }
        json_object_set_new(o, k_limits[i].name,
                            json_pack("{s:I,s:I}", "Max", (json_int_t)m, "Remaining", (json_int_t)remaining));
    }
    sfm_response_json(resp, 200, o);
}

static void set_bool(json_t *o, const char *key, int v)
{
    json_object_set_new(o, key, json_boolean(v));
}

static void set_int(json_t *o, const char *key, long v)
{
    json_object_set_new(o, key, json_integer(v));
}

static void set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

/*
 * The properties describe global gives each type (DescribeGlobalSObjectResult
 * [SF], alphabetical as Salesforce answers). What the emulator cannot do is
 * false: no merge, undelete, search or layouts [emu].
 */
static json_t *sobject_brief(const char *type, const char *version)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char label[REST_SEGMENT_MAX], plural[REST_SEGMENT_MAX + 8], prefix[4], url[384];
    make_label(type, label, sizeof(label));
    make_plural(label, plural, sizeof(plural));
    sfm_records_prefix(type, prefix);
    set_bool(o, "activateable", 0);
    set_bool(o, "createable", 1);
    set_bool(o, "custom", is_custom(type));
    set_bool(o, "customSetting", 0);
    set_bool(o, "deepCloneable", 0);
    set_bool(o, "deletable", 1);
    set_bool(o, "deprecatedAndHidden", 0);
    set_bool(o, "feedEnabled", 0);
    set_bool(o, "hasSubtypes", 0);
    set_bool(o, "isInterface", 0);
    set_bool(o, "isSubtype", 0);
    set_str(o, "keyPrefix", prefix);
    set_str(o, "label", label);
    set_str(o, "labelPlural", plural);
    set_bool(o, "layoutable", 0);
    set_bool(o, "mergeable", 0);
    set_bool(o, "mruEnabled", 0);
    set_str(o, "name", type);
    set_bool(o, "queryable", 1);
    set_bool(o, "replicateable", 0);
    set_bool(o, "retrieveable", 1);
    set_bool(o, "searchable", 0);
    set_bool(o, "triggerable", 0);
    set_bool(o, "undeletable", 0);
    set_bool(o, "updateable", 1);
    json_t *urls = json_object();
    char rest[REST_SEGMENT_MAX + 32];
    snprintf(rest, sizeof(rest), "sobjects/%s/{ID}", type);
    url_of(url, sizeof(url), version, rest);
    set_str(urls, "rowTemplate", url);
    snprintf(rest, sizeof(rest), "sobjects/%s/describe", type);
    url_of(url, sizeof(url), version, rest);
    set_str(urls, "describe", url);
    snprintf(rest, sizeof(rest), "sobjects/%s", type);
    url_of(url, sizeof(url), version, rest);
    set_str(urls, "sobject", url);
    json_object_set_new(o, "urls", urls);
    return o;
}

/* GET /sobjects: describe global [SF shape: encoding, maxBatchSize, sobjects]. */
static void describe_global(const sfm_app *app, const rest_path *p, sfm_response *resp)
{
    json_t *types = sfm_records_types(app->records);
    json_t *list = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        if (list)
            json_array_append_new(list, sobject_brief(json_string_value(t), p->version));
    }
    json_decref(types);
    json_t *o =
        list ? json_pack("{s:s,s:i,s:o}", "encoding", "UTF-8", "maxBatchSize", 200, "sobjects", list) : NULL;
    sfm_response_json(resp, 200, o);
}

/* The field types of describe: inferred from the values in the fixture's records of `type` [emu]. */
enum ftype { F_ID, F_STRING, F_DOUBLE, F_BOOLEAN };

static enum ftype type_of_value(const json_t *v)
{
    if (json_is_boolean(v))
        return F_BOOLEAN;
    if (json_is_number(v))
        return F_DOUBLE;
    return F_STRING;
}

/*
 * One field as describe shows it (DescribeFieldResult [SF]; a selection of
 * its properties, alphabetical). Id is read-only; Name is the name field.
 */
static json_t *describe_field(const char *type, const char *name, enum ftype ft)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char label[REST_SEGMENT_MAX + 8];
    int is_id = ft == F_ID, is_name = strcmp(name, "Name") == 0, is_bool = ft == F_BOOLEAN;
    if (is_id || is_name) {
        make_label(type, label, sizeof(label));
        snprintf(label + strlen(label), sizeof(label) - strlen(label), "%s", is_id ? " ID" : " Name");
    } else {
        make_label(name, label, sizeof(label));
    }
    static const char *const types[] = {
        [F_ID] = "id", [F_STRING] = "string", [F_DOUBLE] = "double", [F_BOOLEAN] = "boolean"};
    static const char *const soap[] = {
        [F_ID] = "tns:ID", [F_STRING] = "xsd:string", [F_DOUBLE] = "xsd:double", [F_BOOLEAN] = "xsd:boolean"};
    long length = ft == F_ID ? 18 : ft == F_STRING ? 255 : 0;
    long bytes = ft == F_ID ? 18 : ft == F_STRING ? 765 : 0;
    set_bool(o, "aggregatable", !is_bool);
    set_bool(o, "autoNumber", 0);
    set_int(o, "byteLength", bytes);
    set_bool(o, "calculated", 0);
    set_bool(o, "caseSensitive", 0);
    set_bool(o, "createable", !is_id);
    set_bool(o, "custom", is_custom(name));
    json_object_set_new(o, "defaultValue", is_bool ? json_false() : json_null());
    set_bool(o, "defaultedOnCreate", is_id || is_bool);
    set_int(o, "digits", 0);
    set_bool(o, "externalId", 0);
    set_bool(o, "filterable", 1);
    set_bool(o, "groupable", ft != F_DOUBLE);
    set_bool(o, "idLookup", is_id);
    set_str(o, "label", label);
    set_int(o, "length", length);
    set_str(o, "name", name);
    set_bool(o, "nameField", is_name);
    set_bool(o, "namePointing", 0);
    set_bool(o, "nillable", !is_id && !is_bool);
    set_bool(o, "permissionable", !is_id && !is_name && !is_bool);
    json_object_set_new(o, "picklistValues", json_array());
    set_int(o, "precision", ft == F_DOUBLE ? 18 : 0);
    json_object_set_new(o, "referenceTo", json_array());
    json_object_set_new(o, "relationshipName", json_null());
    set_int(o, "scale", 0);
    set_str(o, "soapType", soap[ft]);
    set_bool(o, "sortable", 1);
    set_str(o, "type", types[ft]);
    set_bool(o, "unique", 0);
    set_bool(o, "updateable", !is_id);
    return o;
}

/* `s` in ASCII lower case (field names match without regard to case), cut to the buffer. */
static void lower(const char *s, char out[REST_SEGMENT_MAX])
{
    size_t k = 0;
    for (; *s && k + 1 < REST_SEGMENT_MAX; s++)
        out[k++] = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    out[k] = '\0';
}

/* GET /sobjects/{Type}/describe: the type with its fields. `fields` and `type` are canonical. */
static void describe(const sfm_request *req, const rest_path *p, const char *type, const json_t *fields,
                     sfm_response *resp)
{
    /* One pass over the fixture's records of the type: the first non-null value of a field gives its
     * type (string when there is none). */
    size_t nf = json_array_size(fields);
    enum ftype *ft = calloc(nf ? nf : 1, sizeof(*ft));
    json_t *index = json_object();
    json_t *o = NULL;
    if (!ft || !index)
        goto out;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        char low[REST_SEGMENT_MAX];
        lower(json_string_value(f), low);
        ft[i] = i == 0 ? F_ID : F_STRING;
        json_object_set_new(index, low, json_integer((json_int_t)i));
    }
    unsigned char *typed = calloc(nf ? nf : 1, 1);
    if (!typed)
        goto out;
    const json_t *list = json_object_get((json_t *)req->snap->org->records, type);
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        const char *key;
        json_t *v;
        json_object_foreach(rec, key, v)
        {
            char low[REST_SEGMENT_MAX];
            lower(key, low);
            json_t *at = json_object_get(index, low);
            if (!at || json_is_null(v))
                continue;
            size_t fi = (size_t)json_integer_value(at);
            if (fi > 0 && !typed[fi]) {
                ft[fi] = type_of_value(v);
                typed[fi] = 1;
            }
        }
    }
    free(typed);

    o = sobject_brief(type, p->version);
    json_t *list_out = json_array();
    json_array_foreach(fields, i, f)
    {
        if (list_out)
            json_array_append_new(list_out, describe_field(type, json_string_value(f), ft[i]));
    }
    if (o) {
        json_object_set_new(o, "actionOverrides", json_array());
        json_object_set_new(o, "childRelationships", json_array());
        set_bool(o, "compactLayoutable", 0);
        json_object_set_new(o, "fields", list_out ? list_out : json_array());
        json_object_set_new(o, "namedLayoutInfos", json_array());
        json_object_set_new(o, "recordTypeInfos", json_array());
        set_bool(o, "searchLayoutable", 0);
        json_object_set_new(o, "supportedScopes", json_array());
    } else {
        json_decref(list_out);
    }
out:
    free(ft);
    json_decref(index);
    sfm_response_json(resp, 200, o);
}

/* Where byte `off` of the body is: line and column (in characters), both from 1. */
static void body_position(const sfm_request *req, size_t off, int *line, int *column)
{
    int l = 1;
    size_t ls = 0;
    for (size_t i = 0; i < off && i < req->body_len; i++) {
        if (req->body[i] == '\n') {
            l++;
            ls = i + 1;
        }
    }
    long chars = sfm_utf8_count(req->body + ls, off - ls);
    *line = l;
    *column = (int)(chars < 0 ? (long)(off - ls) : chars) + 1;
}

/*
 * A JSON_PARSER_ERROR message for a body jansson refused, in the words of
 * Jackson, which Salesforce parses bodies with [obs: "Unexpected character
 * ('r' (code 114)): expected a valid value (number, String, array, object,
 * 'true', 'false' or 'null') at [line:1, column:2]",
 * salesforce.stackexchange.com/questions/137599]. Approximate: jansson
 * names the token it stopped at ("near 'xyz'") and where the token ends.
 */
static void parser_message(const sfm_request *req, const json_error_t *err, char *msg, size_t len)
{
    const unsigned char *b = (const unsigned char *)req->body;
    size_t n = req->body_len, off = (size_t)(err->position > 0 ? err->position : 0);
    int line, col;
    size_t blank = 0;
    while (blank < n && is_space((char)b[blank]))
        blank++;
    if (blank == n) {
        snprintf(msg, len, "No content to map due to end-of-input at [line:1, column:0]");
        return;
    }
    /* Not UTF-8: the first byte that starts no character. */
    for (size_t i = 0; i < n;) {
        size_t k = sfm_utf8_seq(b + i, n - i);
        if (k == 0) {
            body_position(req, i, &line, &col);
            snprintf(msg, len, "Invalid UTF-8 start byte 0x%02x at [line:%d, column:%d]", b[i], line, col);
            return;
        }
        i += k;
    }
    if (strstr(err->text, "newline") || strstr(err->text, "control character")) {
        size_t i = off;
        while (i > 0 && b[i - 1] >= 0x20)
            i--;
        i = i > 0 ? i - 1 : 0;
        while (i < n && b[i] >= 0x20)
            i++;
        body_position(req, i, &line, &col);
        snprintf(msg, len,
                 "Illegal unquoted character ((CTRL-CHAR, code %d)): has to be escaped using backslash to be "
                 "included in string value at [line:%d, column:%d]",
                 i < n ? b[i] : 0, line, col);
        return;
    }
    const char *near = strstr(err->text, "near '");
    if (!near || off > n) {
        body_position(req, n, &line, &col);
        snprintf(msg, len, "Unexpected end-of-input at [line:%d, column:%d]", line, col);
        return;
    }
    /* The token ends at `off` and is quoted in the text (cut to its first characters when long). */
    size_t tl = strlen(near + 6);
    tl = tl > 0 ? tl - 1 : 0;
    size_t at = off >= tl ? off - tl : 0;
    while (at < n && is_space((char)b[at]))
        at++;
    if (at >= n)
        at = off > 0 ? off - 1 : 0;
    size_t k = sfm_utf8_seq(b + at, n - at);
    unsigned long cp = b[at];
    if (k > 1) {
        cp = b[at] & (0xFFu >> (k + 1));
        for (size_t i = 1; i < k; i++)
            cp = (cp << 6) | (b[at + i] & 0x3Fu);
    }
    body_position(req, at, &line, &col);
    snprintf(
        msg, len,
        "Unexpected character ('%.*s' (code %lu)): expected a valid value (number, String, array, object, "
        "'true', 'false' or 'null') at [line:%d, column:%d]",
        (int)(k ? k : 1), (const char *)b + at, cp, line, col + 1);
}

/* The body of a create or update as JSON. 0, or -1 with resp holding Salesforce's JSON_PARSER_ERROR. */
static int parse_body(const sfm_request *req, json_t **out, sfm_response *resp)
{
    json_error_t err;
    json_t *j = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, &err);
    if (j) {
        *out = j;
        return 0;
    }
    char msg[320];
    parser_message(req, &err, msg, sizeof(msg));
    rest_error(resp, 400, "JSON_PARSER_ERROR", msg);
    return -1;
}

/* A record id in a path that is no id at all: Salesforce reads it as an external id value [obs:
 * restforce #182, #376]. */
static void record_not_found(const rest_path *p, sfm_response *resp)
{
    char full[SFM_SFID_LEN + 1];
    if (sfm_sfid_to18(p->id, full) == 0) {
        sfm_api_not_found(resp);
        return;
    }
    char msg[REST_SEGMENT_MAX + 80];
    snprintf(msg, sizeof(msg), "Provided external ID field does not exist or is not accessible: %s", p->id);
    rest_error(resp, 404, "NOT_FOUND", msg);
}

/* POST /sobjects/{Type}: 201 {"id","success":true,"errors":[]} [SF]. */
static void create(const sfm_app *app, const sfm_request *req, const char *type, sfm_response *resp)
{
    json_t *body;
    if (parse_body(req, &body, resp) < 0)
        return;
    char id[SFM_SFID_LEN + 1];
    sfm_data_error e = {0};
    if (sfm_records_create(app->records, type, body, id, &e) < 0)
        data_error(resp, &e);
    else
        sfm_response_json(resp, 201, json_pack("{s:s,s:b,s:[]}", "id", id, "success", 1, "errors"));
    json_decref(body);
}

/* Whether `name` is among the fields; its canonical spelling, or NULL. */
static const char *field_named(const json_t *fields, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        if (strcasecmp(json_string_value(f), name) == 0)
            return json_string_value(f);
    }
    return NULL;
}

/*
 * GET /sobjects/{Type}/{id}[?fields=A,B]: the record; with fields, only
 * those (in the order asked, Id last unless asked) [SF: an unknown field is
 * 400; the Id at the end is inf].
 */
static void read_record(const sfm_app *app, const sfm_request *req, const rest_path *p, const char *type,
                        const json_t *fields, sfm_response *resp)
{
    json_t *rec = NULL;
    if (sfm_records_get(app->records, type, p->id, p->version, &rec) < 0) {
        record_not_found(p, resp);
        return;
    }
    const char *sel = query_param(req, "fields");
    if (!sel || !*sel) {
        sfm_response_json(resp, 200, rec);
        return;
    }
    json_t *o = json_pack("{s:O}", "attributes", json_object_get(rec, "attributes"));
    int has_id = 0;
    for (const char *s = sel; o && *s;) {
        size_t n = strcspn(s, ",");
        const char *a = s, *z = s + n;
        while (a < z && *a == ' ')
            a++;
        while (z > a && z[-1] == ' ')
            z--;
        char name[REST_SEGMENT_MAX];
        snprintf(name, sizeof(name), "%.*s", (int)(z - a), a);
        const char *canon = field_named(fields, name);
        if (!canon) {
            char msg[REST_SEGMENT_MAX + 320];
            snprintf(
                msg, sizeof(msg),
                "No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to "
                "append the '__c' after the custom field name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
                name, type);
            json_decref(o);
            json_decref(rec);
            rest_error(resp, 400, "INVALID_FIELD", msg);
            return;
        }
        has_id |= strcmp(canon, "Id") == 0;
        json_object_set(o, canon, json_object_get(rec, canon));
        s += n;
        if (*s == ',')
            s++;
    }
    if (o && !has_id)
        json_object_set(o, "Id", json_object_get(rec, "Id"));
    json_decref(rec);
    sfm_response_json(resp, 200, o);
}

/* The answer to an update or delete of one record: 204, or why not. */
static void record_written(int rc, const rest_path *p, const sfm_data_error *e, sfm_response *resp)
{
    if (rc == -ENOENT)
        record_not_found(p, resp);
    else if (rc < 0)
        data_error(resp, e);
    else
        no_content(resp);
}

/* PATCH /sobjects/{Type}/{id}: 204 [SF]. */
static void update(const sfm_app *app, const sfm_request *req, const rest_path *p, const char *type,
                   sfm_response *resp)
{
    json_t *body;
    if (parse_body(req, &body, resp) < 0)
        return;
    sfm_data_error e = {0};
    int rc = sfm_records_update(app->records, type, p->id, body, &e);
    json_decref(body);
    record_written(rc, p, &e, resp);
}

/* DELETE /sobjects/{Type}/{id}: 204 [SF]. */
static void delete_record(const sfm_app *app, const rest_path *p, const char *type, sfm_response *resp)
{
    sfm_data_error e = {0};
    int rc = sfm_records_delete(app->records, type, p->id, &e);
    record_written(rc, p, &e, resp);
}

/* GET /query?q= and /queryAll?q= [SF]: the query over the current records (queryAll: the same, as
 * nothing is ever in a recycle bin here [emu]). */
static void query(const sfm_app *app, const sfm_request *req, const rest_path *p, sfm_response *resp)
{
    const char *q = query_param(req, "q");
    if (!q || !*q) {
        /* [obs: forcedotcom/SmartSyncExplorerReactNative #31] */
        sfm_api_rest_error(resp, 400, "MALFORMED_QUERY", "A query string has to be specified");
        return;
    }
    sfm_soql *sq = NULL;
    sfm_data_error e = {0};
    json_t *out = NULL;
    if (sfm_soql_parse(q, &sq, &e) < 0) {
        data_error(resp, &e);
        return;
    }
    if (sfm_records_query(app->records, sq, p->version, &out, &e) < 0) {
        data_error(resp, &e);
    } else {
        sfm_response_json(resp, 200, out);
    }
    sfm_soql_free(sq);
}

/* The methods each resource has, as Salesforce lists them in Allow. */
static const char *allowed_methods(enum resource r)
{
    switch (r) {
    case R_SOBJECT: return "HEAD,GET,POST";
    case R_RECORD: return "HEAD,GET,PATCH,DELETE";
    case R_MAP:
    case R_LIMITS:
    case R_GLOBAL:
    case R_DESCRIBE:
    case R_QUERY:
    case R_QUERY_ALL:
    case R_UNKNOWN: break;
    }
    return "HEAD,GET";
}

static int method_allowed(const sfm_request *req, enum resource r)
{
    if (is_get(req))
        return 1;
    if (r == R_SOBJECT)
        return is_method(req, "POST");
    if (r == R_RECORD)
        return is_method(req, "PATCH") || is_method(req, "DELETE");
    return 0;
}

/* Everything after the session check, for a resource that exists. */
static void dispatch(const sfm_app *app, const sfm_request *req, const rest_path *p, const sfm_caller *c,
                     sfm_response *resp)
{
    char type[REST_SEGMENT_MAX] = "";
    json_t *fields = NULL;
    if (p->res == R_UNKNOWN) {
        sfm_api_not_found(resp);
        return;
    }
    if (p->res == R_SOBJECT || p->res == R_DESCRIBE || p->res == R_RECORD) {
        fields = sfm_records_fields(app->records, p->type, type, sizeof(type));
        if (!fields) {
            sfm_api_not_found(resp); /* an unknown type in a path [obs] */
            return;
        }
    }
    if (!method_allowed(req, p->res)) {
        method_not_allowed(req, resp, allowed_methods(p->res));
        goto out;
    }
    switch (p->res) {
    case R_MAP: resource_map(app, req, p, c, resp); break;
    case R_LIMITS: limits(app, resp); break;
    case R_GLOBAL: describe_global(app, p, resp); break;
    case R_SOBJECT:
        if (is_get(req))
            sfm_response_json(
                resp, 200,
                json_pack("{s:o,s:[]}", "objectDescribe", sobject_brief(type, p->version), "recentItems"));
        else
            create(app, req, type, resp);
        break;
    case R_DESCRIBE: describe(req, p, type, fields, resp); break;
    case R_RECORD:
        if (is_get(req))
            read_record(app, req, p, type, fields, resp);
        else if (is_method(req, "PATCH"))
            update(app, req, p, type, resp);
        else
            delete_record(app, p, type, resp);
        break;
    case R_QUERY:
    case R_QUERY_ALL: query(app, req, p, resp); break;
    case R_UNKNOWN: sfm_api_not_found(resp); break;
    }
out:
    json_decref(fields);
}

void sfm_api_rest(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    rest_path p;
    parse_path(req->snap->org, req->path, &p);
    int flags = p.version_known ? 0 : SFM_AUTH_VERSION_UNKNOWN;
    if (p.res == R_LIMITS)
        flags |= SFM_AUTH_VIEW_SETUP;
    char buf[SFM_TOKEN_MAX];
    sfm_caller caller;
    if (!sfm_auth_call(app, req, SFM_KIND_API, SFM_SHAPE_REST, sfm_auth_bearer(req, buf), flags, &caller,
                       resp))
        return;
    dispatch(app, req, &p, &caller, resp);
    /* After the call is counted, as Salesforce's header counts the call it comes with [SF]. */
    long used, max;
    char usage[64];
    sfm_auth_usage(app, &used, &max);
    snprintf(usage, sizeof(usage), "api-usage=%ld/%ld", used, max);
    sfm_response_header(resp, "Sforce-Limit-Info", usage);
}
