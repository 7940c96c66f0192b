/*
 * sfid: Salesforce record ids. An id is 15 case-sensitive base-62
 * characters (a 3-character key prefix such as 005 for users, then 12), or
 * the same followed by a 3-character checksum that makes it safe for
 * case-insensitive systems. The checksum is Salesforce's: for each block of 5
 * characters, a 5-bit number whose bit i is set when character i is an
 * uppercase ASCII letter, mapped onto "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".
 */
#ifndef SFM_SFID_H
#define SFM_SFID_H

#include <stddef.h>

#define SFM_NODISCARD __attribute__((warn_unused_result))
#define SFM_SFID_LEN  18

/** The 3-character checksum of the 15-character id `id15` into out[0..2] (no terminator). */
void sfm_sfid_checksum(const char id15[15], char out[3]);

/**
 * The 18-character form of a 15 or 18 character id into out[19]. An
 * 18-character id must carry the right checksum (compared without regard to
 * case, as Salesforce does). Returns 0 or -EINVAL (wrong length, a character
 * outside [0-9A-Za-z], a wrong checksum).
 */
SFM_NODISCARD int sfm_sfid_to18(const char *id, char out[SFM_SFID_LEN + 1]);

/** 1 when `id` is a valid 15 or 18 character id that starts with the 3-character `prefix`. */
int sfm_sfid_valid(const char *id, const char *prefix);

/**
 * A stable 18-character id for an object of the kind `prefix` named `name`
 * (the same inputs always give the same id): the prefix, "0", then 11
 * characters derived from a 64-bit FNV-1a hash of the name, then the checksum.
 * `salt` > 0 gives a different id for the same name (used to resolve the
 * rare collision).
 */
void sfm_sfid_derive(const char *prefix, const char *name, unsigned salt, char out[SFM_SFID_LEN + 1]);

/** 1 when two ids (15 or 18 characters) name the same record: their first 15 characters are equal. */
int sfm_sfid_equal(const char *a, const char *b);

#endif
