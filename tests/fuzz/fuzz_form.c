/*
 * fuzz_form: server/api/form.c, sfm_form_parse over arbitrary bytes (an
 * application/x-www-form-urlencoded body, as the token endpoint, the UI
 * login and authorize read it), checked against a reference decoder written
 * here from form.h's contract:
 *
 * - the result is 0, -EINVAL (a '%' without two hex digits, or a decoded
 *   NUL) or -E2BIG (more than SFM_FORM_BYTES bytes or SFM_FORM_MAX pairs),
 *   whichever the reference meets first; never -ENOMEM here;
 * - on success the pairs are the reference's, in order, byte for byte;
 *   every name and value is NUL-terminated inside the form's buffer (a key
 *   without '=' may have the shared empty value instead);
 * - sfm_form_get agrees with the pairs: the first value of each name and how
 *   often the name came, and NULL with a count of 0 for a name not there;
 * - a failed parse leaves no pairs.
 *
 * A broken invariant is an abort().
 */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/form.h"

/* The reference's decoded pairs, in one buffer like form.c's (never larger than the input plus one). */
typedef struct ref_pair {
    size_t name, name_len; /* offsets into the reference buffer */
    size_t value, value_len;
} ref_pair;

/* The reference shares no code with form.c, not even this. */
static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0, n) to out; the decoded length, or -1 on a bad escape or a decoded NUL. */
static long ref_decode(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1; /* "%" or "%A" at the end */
            int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

/* The reference parse: 0 with *n pairs, -EINVAL or -E2BIG. */
static int ref_parse(const unsigned char *in, size_t len, char *buf, ref_pair *pairs, size_t *n)
{
    size_t used = 0, pos = 0;
    *n = 0;
    if (len > SFM_FORM_BYTES)
        return -E2BIG;
    while (pos < len) {
        size_t end = pos;
        while (end < len && in[end] != '&')
            end++;
        size_t seg = pos, seg_len = end - pos;
        pos = end + 1;
        if (seg_len == 0)
            continue;
        if (*n == SFM_FORM_MAX)
            return -E2BIG;
        size_t eq = seg;
        while (eq < seg + seg_len && in[eq] != '=')
            eq++;
        ref_pair *p = &pairs[*n];
        long k = ref_decode(in + seg, eq - seg, buf + used);
        if (k < 0)
            return -EINVAL;
        p->name = used;
        p->name_len = (size_t)k;
        used += (size_t)k;
        p->value = used;
        p->value_len = 0;
        if (eq < seg + seg_len) {
            k = ref_decode(in + eq + 1, seg + seg_len - eq - 1, buf + used);
            if (k < 0)
                return -EINVAL;
            p->value_len = (size_t)k;
            used += (size_t)k;
        }
        (*n)++;
    }
    return 0;
}

__attribute__((noreturn)) static void broken(const char *why, size_t pair)
{
    fprintf(stderr, "fuzz_form: %s (pair %zu)\n", why, pair);
    abort();
}

/* Whether s is NUL-terminated at or before end (s inside [start, end)). */
static int terminated_inside(const char *s, const char *start, const char *end)
{
    return s >= start && s < end && memchr(s, '\0', (size_t)(end - s)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ref_pair pairs[SFM_FORM_MAX];
    size_t n_ref = 0;
    char *ref_buf = malloc(size + 1);
    if (!ref_buf)
        sfm_fuzz_die("malloc", NULL);
    int want = ref_parse(data, size, ref_buf, pairs, &n_ref);

    sfm_form f;
    int rc = sfm_form_parse(&f, (const char *)data, size);
    if (rc != want) {
        fprintf(stderr, "fuzz_form: sfm_form_parse returned %d, the reference %d\n", rc, want);
        abort();
    }
    if (rc != 0) {
        if (f.n != 0)
            broken("a failed parse left pairs", f.n);
        goto out;
    }
    if (f.n != n_ref)
        broken("pair count differs from the reference", f.n);
    const char *start = f._buf, *end = f._buf ? f._buf + size + 1 : NULL;
    for (size_t i = 0; i < f.n; i++) {
        const sfm_form_pair *p = &f.pairs[i];
        if (!p->name || !p->value)
            broken("NULL name or value", i);
        if (!terminated_inside(p->name, start, end))
            broken("name not terminated inside the buffer", i);
        if (!terminated_inside(p->value, start, end) && p->value[0] != '\0')
            broken("value not terminated inside the buffer", i);
        if (strlen(p->name) != pairs[i].name_len ||
            memcmp(p->name, ref_buf + pairs[i].name, pairs[i].name_len))
            broken("name differs from the reference", i);
        if (strlen(p->value) != pairs[i].value_len ||
            memcmp(p->value, ref_buf + pairs[i].value, pairs[i].value_len))
            broken("value differs from the reference", i);
    }
    for (size_t i = 0; i < f.n; i++) {
        int count = -1, want_count = 0;
        size_t first = SIZE_MAX;
        for (size_t k = 0; k < f.n; k++) {
            if (strcmp(f.pairs[k].name, f.pairs[i].name) == 0) {
                if (first == SIZE_MAX)
                    first = k;
                want_count++;
            }
        }
        const char *v = sfm_form_get(&f, f.pairs[i].name, &count);
        if (v != f.pairs[first].value || count != want_count)
            broken("sfm_form_get disagrees with the pairs", i);
        if (sfm_form_get(&f, f.pairs[i].name, NULL) != v)
            broken("sfm_form_get without a count disagrees", i);
    }
    /* A name longer than any the input can hold is never there. */
    char absent[SFM_FORM_BYTES / 1024 + 8];
    memset(absent, 'x', sizeof(absent) - 1);
    absent[sizeof(absent) - 1] = '\0';
    int count = -1;
    if (size < sizeof(absent) - 1 && (sfm_form_get(&f, absent, &count) != NULL || count != 0))
        broken("sfm_form_get found a name that is not there", 0);
out:
    sfm_form_free(&f);
    if (f.n != 0 || f._buf != NULL)
        broken("sfm_form_free left the form non-empty", 0);
    free(ref_buf);
    return 0;
}
