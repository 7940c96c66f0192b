/*
 * form: application/x-www-form-urlencoded (the WHATWG URL standard's
 * parser, strict where it is lenient): pairs are split on '&', a pair on its
 * first '=', '+' is a space and %XX a byte. Unlike browsers, which keep a
 * malformed escape as it is, a '%' without two hex digits after it is an
 * error here, and so is a decoded NUL: a token endpoint should refuse what it
 * cannot read rather than guess.
 */
#include "form.h"
#include "utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char k_empty[] = "";

/*
 * Decodes in[0, len) into out (room for len + 1 bytes) and terminates it.
 * Returns the decoded length, or -EINVAL on a bad escape or a NUL.
 */
static long decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3)
                return -EINVAL; /* "%" or "%A" at the end */
            int hi = sfm_hex_digit((unsigned char)in[i + 1]), lo = sfm_hex_digit((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int sfm_form_parse(sfm_form *f, const char *body, size_t len)
{
    int rc = 0;
    memset(f, 0, sizeof(*f));
    if (len > SFM_FORM_BYTES)
        return -E2BIG;
    /* Decoding never grows the text, and a pair takes one terminator more
     * than it has separators ('=' between name and value; a key without '='
     * gets the static empty value): the pairs fit in len + 1 bytes. */
    char *buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    size_t used = 0, pos = 0;
    while (pos < len) {
        const char *seg = body + pos;
        const char *amp = memchr(seg, '&', len - pos);
        size_t seg_len = amp ? (size_t)(amp - seg) : len - pos;
        pos += seg_len + (amp ? 1 : 0);
        if (seg_len == 0)
            continue; /* "a=1&&b=2", a trailing '&': nothing there */
        if (f->n == SFM_FORM_MAX) {
            rc = -E2BIG;
            goto fail;
        }
        const char *eq = memchr(seg, '=', seg_len);
        size_t name_len = eq ? (size_t)(eq - seg) : seg_len;
        char *name = buf + used;
        long n = decode(seg, name_len, name);
        if (n < 0) {
            rc = (int)n;
            goto fail;
        }
        used += (size_t)n + 1;
        /* A key without '=' has the empty value, as "key=" has. */
        const char *value = k_empty;
        if (eq) {
            char *v = buf + used;
            n = decode(eq + 1, seg_len - name_len - 1, v);
            if (n < 0) {
                rc = (int)n;
                goto fail;
            }
            used += (size_t)n + 1;
            value = v;
        }
        f->pairs[f->n].name = name;
        f->pairs[f->n].value = value;
        f->n++;
    }
    f->_buf = buf;
    return 0;
fail:
    free(buf);
    memset(f, 0, sizeof(*f));
    return rc;
}

const char *sfm_form_get(const sfm_form *f, const char *name, int *count)
{
    const char *first = NULL;
    int n = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].name, name) != 0)
            continue;
        if (!first)
            first = f->pairs[i].value;
        n++;
    }
    if (count)
        *count = n;
    return first;
}

void sfm_form_free(sfm_form *f)
{
    free(f->_buf);
    memset(f, 0, sizeof(*f));
}
