#include "sfid.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* Salesforce's checksum alphabet: 32 symbols for the 5 bits of a block. */
static const char k_checksum_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/* Base-62 digits in the order of Salesforce key prefixes: digits, upper, lower. */
static const char k_base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL
/* Characters after the prefix and the "0" of a derived id: 62^11 > 2^64, so the whole hash fits. */
#define DERIVED_DIGITS 11

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

void sfm_sfid_checksum(const char id15[15], char out[3])
{
    for (int block = 0; block < 3; block++) {
        unsigned bits = 0;
        for (int i = 0; i < 5; i++) {
            char c = id15[block * 5 + i];
            if (c >= 'A' && c <= 'Z')
                bits |= 1u << i;
        }
        out[block] = k_checksum_chars[bits];
    }
}

int sfm_sfid_to18(const char *id, char out[SFM_SFID_LEN + 1])
{
    size_t len = strnlen(id, SFM_SFID_LEN + 1);
    if (len != 15 && len != SFM_SFID_LEN)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(id[i]))
            return -EINVAL;
    }
    char sum[3];
    sfm_sfid_checksum(id, sum);
    if (len == SFM_SFID_LEN) {
        /* Salesforce compares the suffix without regard to case: it exists for case-insensitive systems. */
        for (int i = 0; i < 3; i++) {
            if (to_upper(id[15 + i]) != sum[i])
                return -EINVAL;
        }
    }
    memcpy(out, id, 15);
    memcpy(out + 15, sum, 3);
    out[SFM_SFID_LEN] = '\0';
    return 0;
}

int sfm_sfid_valid(const char *id, const char *prefix)
{
    char full[SFM_SFID_LEN + 1];
    if (!id || !prefix || sfm_sfid_to18(id, full) != 0)
        return 0;
    return strncmp(id, prefix, 3) == 0 && strlen(prefix) == 3;
}

void sfm_sfid_derive(const char *prefix, const char *name, unsigned salt, char out[SFM_SFID_LEN + 1])
{
    uint64_t h = FNV64_OFFSET;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= FNV64_PRIME;
    }
    /* The salt follows the name as bytes (one byte for salts below 256). */
    for (unsigned s = salt; s; s >>= 8) {
        h ^= s & 0xffu;
        h *= FNV64_PRIME;
    }
    memcpy(out, prefix, 3);
    out[3] = '0';
    for (int i = DERIVED_DIGITS - 1; i >= 0; i--) {
        out[4 + i] = k_base62[h % 62];
        h /= 62;
    }
    sfm_sfid_checksum(out, out + 15);
    out[SFM_SFID_LEN] = '\0';
}

int sfm_sfid_equal(const char *a, const char *b)
{
    size_t la = strnlen(a, SFM_SFID_LEN + 1), lb = strnlen(b, SFM_SFID_LEN + 1);
    if ((la != 15 && la != SFM_SFID_LEN) || (lb != 15 && lb != SFM_SFID_LEN))
        return 0;
    return memcmp(a, b, 15) == 0;
}
