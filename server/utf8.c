#include "utf8.h"

#include <string.h>

size_t sfm_utf8_seq(const unsigned char *s, size_t avail)
{
    if (avail == 0)
        return 0;
    unsigned cp = s[0];
    size_t k = cp < 0x80                  ? 1
               : cp >= 0xc2 && cp <= 0xdf ? 2
               : cp >= 0xe0 && cp <= 0xef ? 3
               : cp >= 0xf0 && cp <= 0xf4 ? 4
                                          : 0;
    if (k == 0 || k > avail)
        return 0;
    if (k == 1)
        return 1;
    cp &= 0x7fu >> k;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    /* Overlong 3- and 4-byte forms, surrogates, beyond Unicode. */
    if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

long sfm_utf8_count(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        size_t k = sfm_utf8_seq((const unsigned char *)s + i, len - i);
        if (!k)
            return -1;
        i += k;
    }
    return n;
}

size_t sfm_utf8_repair(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = sfm_utf8_seq((const unsigned char *)s + i, len - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

int sfm_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
