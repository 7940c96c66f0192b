/*
 * certstore: the org's Mutual Authentication Certificates (SPEC sections 4
 * and 6) as an immutable set, indexed by the SHA-256 fingerprint of the leaf
 * and by id. A change makes a new set that shares all but one shard with the
 * old one (copy on write), so a set can be read by any thread without locks
 * while a newer one is built, and a change costs O(n / 256), not O(n).
 *
 * An entry's id is stable and Salesforce-shaped: "0P1", "0", then 11 base-62
 * characters encoding the first 8 bytes of the fingerprint, then the
 * checksum. The same certificate always gets the same id, and an id leads
 * straight to its shard.
 */
#ifndef SFM_CERTSTORE_H
#define SFM_CERTSTORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sfid.h"

#define SFM_NODISCARD      __attribute__((warn_unused_result))
#define SFM_CERTS_NAME_MAX 512

/** One certificate. Immutable once added; shared by reference count between sets. */
typedef struct sfm_cert_entry {
    atomic_int refs;
    char id[SFM_SFID_LEN + 1];
    char *label;
    char *subject;   /* RFC 4514 */
    char *issuer;    /* RFC 4514 */
    char serial[41]; /* uppercase hex */
    time_t not_before;
    time_t not_after;     /* "expirationDate" */
    unsigned char fp[32]; /* SHA-256 of the leaf's DER */
    char fp_hex[65];      /* lowercase hex */
    int chain_length;     /* certificates in the uploaded PEM */
    int preloaded;        /* from the fixture, not uploaded */
    int64_t created_ms;   /* when it was uploaded (epoch ms); orders the list */
} sfm_cert_entry;

/**
 * A new entry with one reference, from the facts of its leaf. Strings are
 * copied. Returns NULL when out of memory.
 */
sfm_cert_entry *sfm_cert_entry_new(const char *label, const char *subject, const char *issuer,
                                   const char *serial, time_t not_before, time_t not_after,
                                   const unsigned char fp[32], int chain_length, int preloaded,
                                   int64_t created_ms);
sfm_cert_entry *sfm_cert_entry_ref(sfm_cert_entry *e);
void sfm_cert_entry_unref(sfm_cert_entry *e);

/** The id an entry with fingerprint `fp` gets. */
void sfm_certs_id_of(const unsigned char fp[32], char out[SFM_SFID_LEN + 1]);

typedef struct sfm_certs sfm_certs;

/** An empty set with one reference, or NULL when out of memory. */
sfm_certs *sfm_certs_new(void);
sfm_certs *sfm_certs_ref(sfm_certs *s);
void sfm_certs_unref(sfm_certs *s);

/**
 * *out = a new set (one reference) of `entries`, each getting a reference of
 * its own, built in one pass: O(n), where adding them one by one with
 * sfm_certs_with copies a shard each time. An entry whose key (fingerprint,
 * or its first 8 bytes) is already in the set is left out: the first one
 * stays. Returns 0, -EINVAL or -ENOMEM.
 */
SFM_NODISCARD int sfm_certs_build(sfm_cert_entry *const *entries, size_t n, sfm_certs **out);

/**
 * *out = `base` plus `e` (a new set with one reference; `base` is unchanged
 * and `e` gets a reference of its own). Returns 0, -EEXIST when a
 * certificate with the same fingerprint is in `base`, or -ENOMEM.
 */
SFM_NODISCARD int sfm_certs_with(const sfm_certs *base, sfm_cert_entry *e, sfm_certs **out);

/** *out = `base` without the entry of id `id` (15 or 18 characters). 0, -ENOENT or -ENOMEM. */
SFM_NODISCARD int sfm_certs_without(const sfm_certs *base, const char *id, sfm_certs **out);

/** The entry whose leaf has this fingerprint, or NULL. O(1); no allocation, no lock. */
const sfm_cert_entry *sfm_certs_find_fp(const sfm_certs *s, const unsigned char fp[32]);
/** The same, from a lowercase or uppercase hex fingerprint; NULL when not 64 hex digits. */
const sfm_cert_entry *sfm_certs_find_fp_hex(const sfm_certs *s, const char *hex);
/** The entry of id `id` (15 or 18 characters, any case in the checksum), or NULL. */
const sfm_cert_entry *sfm_certs_find_id(const sfm_certs *s, const char *id);

/** How many entries the set holds. */
size_t sfm_certs_count(const sfm_certs *s);

/**
 * Every entry, ordered by created_ms then id, into a new array of borrowed
 * pointers (valid while the set lives); *n is the count. 0 or -ENOMEM.
 */
SFM_NODISCARD int sfm_certs_list(const sfm_certs *s, const sfm_cert_entry ***out, size_t *n);

#endif
