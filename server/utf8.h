/*
 * utf8: the few UTF-8 and text checks the server needs, in one place. Text
 * that goes into JSON must be valid UTF-8 (jansson refuses anything else),
 * and labels are limited in characters, not bytes.
 */
#ifndef SFM_UTF8_H
#define SFM_UTF8_H

#include <stddef.h>

/**
 * The length (1 to 4) of the UTF-8 sequence at s[0..avail), or 0 when it is
 * not a valid one: a stray continuation byte, a truncated, overlong or
 * surrogate sequence, or a code point above U+10FFFF. NUL counts as valid.
 */
size_t sfm_utf8_seq(const unsigned char *s, size_t avail);

/** Characters (code points) in s[0..len), or -1 when it is not valid UTF-8. */
long sfm_utf8_count(const char *s, size_t len);

/**
 * s[0..len) with every byte that does not start a valid sequence replaced
 * by U+FFFD, into `out`, which must hold 3 * len + 1 bytes; NUL-terminated.
 * Returns the length written.
 */
size_t sfm_utf8_repair(const char *s, size_t len, char *out);

/** The value of the hex digit c (either case), or -1 when it is none. */
int sfm_hex_digit(int c);

#endif
