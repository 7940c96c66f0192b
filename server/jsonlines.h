/*
 * jsonlines: the line where each value of a JSON text starts. jansson gives no
 * position for a value it accepted, so the fixture loader (org.c) scans the raw
 * text once and looks up the line of each value it reports a problem with.
 *
 * Values are named by their JSON path: "$" for the whole text, then for each
 * step down ".key" when the key is an identifier (sfm_jsonlines_is_identifier),
 * ["key"] for any other key (the decoded key, escaped as JSON escapes '"', '\\',
 * control characters and DEL: \u0001), and "[i]" for element i of an array:
 * $.users[2].profile, $.records["Weird Type"][0]. The scanner and the path
 * functions below spell paths with the same code, so a path built with them
 * finds what the scanner recorded.
 */
#ifndef SFM_JSONLINES_H
#define SFM_JSONLINES_H

#include <stddef.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))

/** Size of a path buffer, terminator included. Longer paths are cut (see sfm_jsonlines_path_key). */
#define SFM_JSONLINES_MAX_PATH 1024

/** Path -> line of every value of one JSON text. Immutable once built. */
typedef struct sfm_jsonlines sfm_jsonlines;

/**
 * Scans `text` (`len` bytes; it need not be NUL-terminated and is not kept) and
 * records the line (1-based; only '\n' counts) of the first character of every
 * value. Object keys are decoded as jansson decodes them: escapes, \u sequences
 * and surrogate pairs, to UTF-8.
 *
 * The text is expected to be JSON that jansson accepted. Anything else is not an
 * error: the scan stops quietly at the first byte it cannot follow and keeps what
 * it recorded before it, so truncated or garbage text gives a partial (possibly
 * empty) index. A path of SFM_JSONLINES_MAX_PATH - 1 bytes or more is not
 * recorded (the path functions cut such paths). When a path occurs twice (a
 * duplicate key), its first occurrence keeps the line.
 *
 * Returns 0 and sets *out, which the caller frees with sfm_jsonlines_free; or
 * -ENOMEM, and *out is not written.
 */
SFM_NODISCARD int sfm_jsonlines_build(sfm_jsonlines **out, const char *text, size_t len);

/** The line where the value at `path` starts, or 0 when it was not recorded or `x` is NULL. */
int sfm_jsonlines_line(const sfm_jsonlines *x, const char *path);

/** Frees `x`. NULL is a no-op. */
void sfm_jsonlines_free(sfm_jsonlines *x);

/**
 * 1 when a key of `n` bytes is spelled ".key" in a path: a letter or '_', then
 * letters, digits and '_' (ASCII only). 0 otherwise, the empty key included.
 */
int sfm_jsonlines_is_identifier(const char *s, size_t n);

/**
 * The path of member `key` (NUL-terminated) of the object at `parent` into
 * `out`: parent.key or parent["key"]. When it does not fit, `out` holds its first
 * SFM_JSONLINES_MAX_PATH - 1 bytes: a cut path, which sfm_jsonlines_line never
 * finds. `out` and `parent` must not overlap.
 */
void sfm_jsonlines_path_key(char out[SFM_JSONLINES_MAX_PATH], const char *parent, const char *key);

/**
 * `s` (NUL-terminated) as a JSON string literal for a message, into out[cap]
 * (cap >= 24): in double quotes, escaped, and cut with "..." before the first
 * byte of a UTF-8 sequence when it does not fit. Returns `out`.
 */
const char *sfm_jsonlines_quote(char *out, size_t cap, const char *s);

/** The path of element `i` of the array at `parent` into `out`: parent[i]. Cut as sfm_jsonlines_path_key. */
void sfm_jsonlines_path_index(char out[SFM_JSONLINES_MAX_PATH], const char *parent, size_t i);

#endif
