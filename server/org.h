/*
 * org: the org a fixture file describes (SPEC section 3): the organization,
 * profiles, permission sets, users, connected apps, preloaded Mutual
 * Authentication Certificates and records. A loaded sfm_org is immutable and
 * shared by reference count between the snapshots built on it (state.c).
 *
 * Runtime changes (uploads, user patches) are not here: they live in the
 * snapshot, on top of the fixture.
 */
#ifndef SFM_ORG_H
#define SFM_ORG_H

#include <stdatomic.h>
#include <stddef.h>

#include "sfid.h"

#define SFM_NODISCARD __attribute__((warn_unused_result))

/** The permissions the policy reads, as bits; every other name is kept as text only. */
enum sfm_perm {
    SFM_PERM_API_ENABLED = 1u << 0,                   /* "ApiEnabled" */
    SFM_PERM_API_USER_ONLY = 1u << 1,                 /* "ApiUserOnly" */
    SFM_PERM_VIEW_SETUP = 1u << 2,                    /* "ViewSetup" */
    SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION = 1u << 3, /* "EnforceMutualAuthentication" */
};

/** The bit of a permission name, or 0 for a name the policy does not read. */
unsigned sfm_perm_bit(const char *name);

typedef struct sfm_api_version {
    char version[8]; /* "64.0" */
    char label[24];  /* "Summer '25" */
} sfm_api_version;

/** A profile or a permission set: a named set of permissions. */
typedef struct sfm_perm_holder {
    char id[SFM_SFID_LEN + 1]; /* 00e... for a profile, 0PS... for a permission set */
    char *name;
    char *label;        /* permission sets: "label", else the name */
    char **permissions; /* as written, duplicates removed */
    size_t n_permissions;
    unsigned bits; /* SFM_PERM_* of `permissions` */
} sfm_perm_holder;

typedef struct sfm_fx_user {
    char id[SFM_SFID_LEN + 1]; /* 005..., given or derived from the username */
    char *username;
    char *password;
    char *security_token; /* NULL: none */
    size_t profile;       /* index into org->profiles */
    size_t *permsets;     /* indexes into org->permsets */
    size_t n_permsets;
    int active;
} sfm_fx_user;

typedef struct sfm_connected_app {
    char *name;
    char *consumer_key;
    char *consumer_secret;
    char *certificate_file; /* resolved path, or NULL */
    char *certificate_pem;  /* its contents (read and checked at load), or NULL */
    size_t certificate_len;
    char *run_as;       /* a username of the fixture, or NULL */
    char *callback_url; /* or NULL */
} sfm_connected_app;

/** A mutualAuthCertificates entry: a PEM file, or a certificate the dev CA issues. */
typedef struct sfm_fx_cert {
    char *label;
    char *file;     /* resolved path, or NULL for an "issue" entry */
    char *issue_cn; /* the "issue" entry's cn, or NULL */
    char *pem;      /* the file's contents (read at load); NULL for "issue" entries */
    size_t pem_len;
} sfm_fx_cert;

typedef struct sfm_org {
    atomic_int refs;
    char *path; /* the fixture file */
    char *id;   /* 18 characters */
    char *name;
    char *my_domain;
    int is_sandbox;
    int mutual_authentication;
    sfm_api_version *versions; /* in the fixture's order */
    size_t n_versions;
    sfm_perm_holder *profiles;
    size_t n_profiles;
    sfm_perm_holder *permsets;
    size_t n_permsets;
    sfm_fx_user *users;
    size_t n_users;
    sfm_connected_app *apps;
    size_t n_apps;
    sfm_fx_cert *certs;
    size_t n_certs;
    void *records;       /* the "records" object (a jansson json_t *, owned; an empty object when absent) */
    char *versions_json; /* GET /services/data/'s answer, rendered once at load */
    size_t versions_json_len;
    char **warnings; /* one message per warning, "file: $.path (line N): text" */
    size_t n_warnings;
    /* private: username index (case-insensitive, as Salesforce usernames are) */
    size_t *_user_slots;
    size_t _n_user_slots;
} sfm_org;

/**
 * Loads and validates a whole fixture file. On success *out has one
 * reference. On failure returns a negative code and `err` holds every
 * problem found, one per line, each as "FILE: $.json.path (line N): what is
 * wrong" (the line where the value starts; for a JSON syntax error, jansson's
 * line and column).
 */
SFM_NODISCARD int sfm_org_load(sfm_org **out, const char *path, char *err, size_t err_len);
/** Takes a reference; returns `org`. NULL-safe. */
sfm_org *sfm_org_ref(sfm_org *org);
/** Drops a reference; the last frees the org. NULL-safe. */
void sfm_org_unref(sfm_org *org);

/** Index of the user named `username` (case-insensitive), or -1. O(1). */
long sfm_org_find_user(const sfm_org *org, const char *username);
/** Index of a profile / permission set by name (exact), or -1. */
long sfm_org_find_profile(const sfm_org *org, const char *name);
long sfm_org_find_permset(const sfm_org *org, const char *name);
/** The connected app whose consumer key is `consumer_key` (exact), or NULL (also for NULL). */
const sfm_connected_app *sfm_org_find_app(const sfm_org *org, const char *consumer_key);

/** The release name of an API version ("31.0" -> "Summer '14"); 0 or -EINVAL. */
SFM_NODISCARD int sfm_org_version_label(const char *version, char *out, size_t len);

#endif
