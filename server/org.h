/*
 * org: the org a fixture describes (SPEC section 3). This first version reads
 * the organization block; users, permissions and certificates come with the
 * full loader.
 */
#ifndef SFM_ORG_H
#define SFM_ORG_H

#include <stddef.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))

typedef struct sfm_api_version {
    char version[8]; /* "64.0" */
    char label[24];  /* "Summer '25" */
} sfm_api_version;

typedef struct sfm_org {
    char *id;
    char *name;
    char *my_domain;
    int is_sandbox;
    int mutual_authentication;
    sfm_api_version *versions; /* in the fixture's order */
    size_t n_versions;
} sfm_org;

/**
 * Loads a fixture file. On failure returns a negative code and `err` names
 * the file and the JSON path of every problem found, one per line (a syntax
 * error: the line and column, as jansson reports no position for values).
 */
SFM_NODISCARD int sfm_org_load(sfm_org **out, const char *path, char *err, size_t err_len);
/** NULL-safe. */
void sfm_org_free(sfm_org *org);

/** The release name of an API version ("31.0" -> "Summer '14"); 0 or -EINVAL. */
SFM_NODISCARD int sfm_org_version_label(const char *version, char *out, size_t len);

#endif
