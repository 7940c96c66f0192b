/*
 * form: application/x-www-form-urlencoded bodies and query strings, parsed
 * properly: '+' is a space, %XX is decoded (a bad escape is an error, as is
 * a decoded NUL), keys may repeat and the caller sees how often.
 */
#ifndef SFM_FORM_H
#define SFM_FORM_H

#include <stddef.h>

#define SFM_NODISCARD  __attribute__((warn_unused_result))
#define SFM_FORM_MAX   64          /* pairs; more is -E2BIG */
#define SFM_FORM_BYTES (64 * 1024) /* body size; more is -E2BIG */

typedef struct sfm_form_pair {
    const char *name; /* decoded, NUL-terminated, inside the form's buffer */
    const char *value;
} sfm_form_pair;

typedef struct sfm_form {
    sfm_form_pair pairs[SFM_FORM_MAX];
    size_t n;
    char *_buf; /* private: the decoded text */
} sfm_form;

/** Parses `len` bytes of `body`. 0; -EINVAL on a bad escape or NUL; -E2BIG; -ENOMEM. *f needs sfm_form_free.
 */
SFM_NODISCARD int sfm_form_parse(sfm_form *f, const char *body, size_t len);
/** The value of `name` (exact, case-sensitive) and, in *count (may be NULL), how often it came; NULL when
 * absent. */
const char *sfm_form_get(const sfm_form *f, const char *name, int *count);
/** Frees the form's buffer; safe on a zeroed form. */
void sfm_form_free(sfm_form *f);

#endif
