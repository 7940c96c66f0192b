#include "org.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sfm_org_version_label(const char *version, char *out, size_t len)
{
    /* Salesforce ships three releases a year; 31.0 was Summer '14, then
     * Winter '15, Spring '15, Summer '15, ... (SPEC section 3). */
    int major = 0, minor = -1;
    char tail = 0;
    if (sscanf(version, "%d.%d%c", &major, &minor, &tail) != 2 || minor != 0 || major < 1 || major > 999)
        return -EINVAL;
    int k = major - 31;
    static const char *const seasons[] = {"Summer", "Winter", "Spring"};
    int idx = ((k % 3) + 3) % 3;
    int div = (k - idx) / 3; /* floor(k / 3) */
    int year = idx == 0 ? 14 + div : 15 + div;
    if (year < 0)
        return -EINVAL;
    snprintf(out, len, "%s '%02d", seasons[idx], year % 100);
    return 0;
}

struct errs {
    char *buf;
    size_t len, used;
    int count;
};

__attribute__((format(printf, 3, 4))) static void add_err(struct errs *e, const char *file, const char *fmt,
                                                          ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->count++;
    if (e->used < e->len) {
        int n = snprintf(e->buf + e->used, e->len - e->used, "%s%s: %s", e->used ? "\n" : "", file, msg);
        if (n > 0)
            e->used += (size_t)n;
        if (e->used >= e->len)
            e->used = e->len - 1;
    }
}

int sfm_org_load(sfm_org **out, const char *path, char *err, size_t err_len)
{
    struct errs e = {err, err_len, 0, 0};
    if (err_len)
        err[0] = '\0';
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            snprintf(err, err_len, "%s: line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
        else
            snprintf(err, err_len, "%s: %s", path, jerr.text);
        return -EINVAL;
    }
    sfm_org *org = calloc(1, sizeof(*org));
    if (!org) {
        json_decref(root);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    atomic_init(&org->refs, 1);
    org->mutual_authentication = 1;

    json_t *o = json_object_get(root, "organization");
    if (!json_is_object(root)) {
        add_err(&e, path, "$: expected an object");
    } else if (!json_is_object(o)) {
        add_err(&e, path, "$.organization: required object is missing");
    } else {
        json_t *id = json_object_get(o, "id"), *name = json_object_get(o, "name");
        json_t *md = json_object_get(o, "myDomain"), *sb = json_object_get(o, "isSandbox");
        json_t *ma = json_object_get(o, "mutualAuthentication");
        json_t *versions = json_object_get(o, "apiVersions");
        if (!json_is_string(id) || strncmp(json_string_value(id), "00D", 3) != 0 ||
            (json_string_length(id) != 15 && json_string_length(id) != 18))
            add_err(&e, path, "$.organization.id: expected a 15 or 18 character id starting with 00D");
        else
            org->id = strdup(json_string_value(id));
        if (!json_is_string(name))
            add_err(&e, path, "$.organization.name: expected a string");
        else
            org->name = strdup(json_string_value(name));
        if (md && !json_is_string(md))
            add_err(&e, path, "$.organization.myDomain: expected a string");
        else
            org->my_domain = strdup(md ? json_string_value(md) : "acme");
        if (sb && !json_is_boolean(sb))
            add_err(&e, path, "$.organization.isSandbox: expected true or false");
        else
            org->is_sandbox = sb ? json_is_true(sb) : 0;
        if (ma && !json_is_boolean(ma))
            add_err(&e, path, "$.organization.mutualAuthentication: expected true or false");
        else if (ma)
            org->mutual_authentication = json_is_true(ma);
        if (!json_is_array(versions) || json_array_size(versions) == 0) {
            add_err(&e, path, "$.organization.apiVersions: expected a non-empty array");
        } else {
            size_t n = json_array_size(versions);
            org->versions = calloc(n, sizeof(*org->versions));
            if (!org->versions) {
                add_err(&e, path, "out of memory");
            } else {
                for (size_t i = 0; i < n; i++) {
                    json_t *v = json_array_get(versions, i);
                    sfm_api_version *av = &org->versions[org->n_versions];
                    if (!json_is_string(v) || json_string_length(v) >= sizeof(av->version) ||
                        sfm_org_version_label(json_string_value(v), av->label, sizeof(av->label)) != 0) {
                        add_err(&e, path,
                                "$.organization.apiVersions[%zu]: expected a version such as \"64.0\"", i);
                        continue;
                    }
                    snprintf(av->version, sizeof(av->version), "%s", json_string_value(v));
                    org->n_versions++;
                }
            }
        }
    }
    json_decref(root);
    if (e.count) {
        sfm_org_unref(org);
        return -EINVAL;
    }
    if (!org->id || !org->name || !org->my_domain) {
        sfm_org_unref(org);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    *out = org;
    return 0;
}

sfm_org *sfm_org_ref(sfm_org *org)
{
    if (org)
        atomic_fetch_add(&org->refs, 1);
    return org;
}

void sfm_org_unref(sfm_org *org)
{
    if (!org || atomic_fetch_sub(&org->refs, 1) != 1)
        return;
    free(org->id);
    free(org->name);
    free(org->my_domain);
    free(org->versions);
    free(org);
}
