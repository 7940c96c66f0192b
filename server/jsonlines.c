#include "jsonlines.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL

/* A string builder: grows on the heap, or fills a caller's fixed buffer and stops there. Either way
 * `cut` records that something did not fit (the fixed buffer is full, or memory ran out). */
struct sbuf {
    char *p;
    size_t len, cap;
    int fixed;
    int cut;
};

/* Where one value starts. */
struct line_entry {
    uint64_t hash;
    size_t off; /* of the path in `arena` */
    int line;   /* 0: empty slot */
};

/* An open-addressing table of paths (at most half full); the paths themselves are in one arena. */
struct sfm_jsonlines {
    struct line_entry *slots;
    size_t cap, n;
    struct sbuf arena; /* the paths, each NUL-terminated */
};

/* ---- string builder and paths --------------------------------------------------------------- */

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->cut)
        return;
    if (b->len + n + 1 > b->cap) {
        if (b->fixed) {
            size_t room = b->cap - b->len - 1;
            memcpy(b->p + b->len, s, room);
            b->len += room;
            b->p[b->len] = '\0';
            b->cut = 1;
            return;
        }
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->cut = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_truncate(struct sbuf *b, size_t len)
{
    if (b->p && len <= b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

/* A byte of a JSON string, escaped as JSON does it where needed ('"', '\\' and control characters). */
static void sb_add_escaped(struct sbuf *b, unsigned char c)
{
    if (c == '"' || c == '\\') {
        char esc[2] = {'\\', (char)c};
        sb_add(b, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
        char esc[8];
        int k = snprintf(esc, sizeof(esc), "\\u%04x", c);
        sb_add(b, esc, (size_t)k);
    } else {
        char ch = (char)c;
        sb_add(b, &ch, 1);
    }
}

const char *sfm_jsonlines_quote(char *out, size_t cap, const char *s)
{
    struct sbuf b = {.p = out, .cap = cap, .fixed = 1};
    out[0] = '\0';
    sb_add(&b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Cut before the first byte of a UTF-8 sequence, never inside one;
         * a run of stray continuation bytes is cut wherever the room ends. */
        if ((b.len > cap - 16 && (*p & 0xc0) != 0x80) || b.len > cap - 12) {
            sb_add(&b, "...", 3);
            break;
        }
        sb_add_escaped(&b, *p);
    }
    sb_add(&b, "\"", 1);
    return out;
}

int sfm_jsonlines_is_identifier(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* One object key of a JSON path: ".key" for an identifier, else ["key"] (JSON escapes). The scanner
 * and sfm_jsonlines_path_key() both spell keys with this, so their paths compare equal. */
static void sb_add_key(struct sbuf *b, const char *key, size_t n)
{
    if (sfm_jsonlines_is_identifier(key, n)) {
        sb_add(b, ".", 1);
        sb_add(b, key, n);
        return;
    }
    sb_add(b, "[\"", 2);
    for (size_t i = 0; i < n; i++)
        sb_add_escaped(b, (unsigned char)key[i]);
    sb_add(b, "\"]", 2);
}

/* One array index of a JSON path: "[i]". Called for every element of every list, so without snprintf. */
static void sb_add_index(struct sbuf *b, size_t i)
{
    char seg[32];
    size_t k = sizeof(seg);
    seg[--k] = ']';
    do {
        seg[--k] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    seg[--k] = '[';
    sb_add(b, seg + k, sizeof(seg) - k);
}

void sfm_jsonlines_path_key(char out[SFM_JSONLINES_MAX_PATH], const char *parent, const char *key)
{
    struct sbuf b = {out, 0, SFM_JSONLINES_MAX_PATH, 1, 0};
    out[0] = '\0';
    sb_add(&b, parent, strlen(parent));
    sb_add_key(&b, key, strlen(key));
}

void sfm_jsonlines_path_index(char out[SFM_JSONLINES_MAX_PATH], const char *parent, size_t i)
{
    struct sbuf b = {out, 0, SFM_JSONLINES_MAX_PATH, 1, 0};
    out[0] = '\0';
    sb_add(&b, parent, strlen(parent));
    sb_add_index(&b, i);
}

/* ---- the index ------------------------------------------------------------------------------ */

/* FNV-1a of `len` bytes. */
static uint64_t hash_path(const char *s, size_t len)
{
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV64_PRIME;
    }
    return h;
}

static int index_grow(sfm_jsonlines *x)
{
    size_t cap = x->cap ? x->cap * 2 : 1024;
    struct line_entry *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < x->cap; i++) {
        if (!x->slots[i].line)
            continue;
        size_t k = x->slots[i].hash & (cap - 1);
        while (slots[k].line)
            k = (k + 1) & (cap - 1);
        slots[k] = x->slots[i];
    }
    free(x->slots);
    x->slots = slots;
    x->cap = cap;
    return 0;
}

/* Records that the value at `path` (NUL-terminated, `len` bytes) starts on `line`, unless the path is
 * there already. */
static int index_put(sfm_jsonlines *x, const char *path, size_t len, int line)
{
    if (len >= SFM_JSONLINES_MAX_PATH - 1)
        return 0; /* sfm_jsonlines_path_key()/_index() cut such paths: they are never looked up */
    if ((x->n + 1) * 2 > x->cap && index_grow(x) < 0)
        return -ENOMEM;
    uint64_t h = hash_path(path, len);
    size_t mask = x->cap - 1, k = h & mask;
    for (; x->slots[k].line; k = (k + 1) & mask) {
        if (x->slots[k].hash == h && strcmp(x->arena.p + x->slots[k].off, path) == 0)
            return 0;
    }
    size_t off = x->arena.len;
    sb_add(&x->arena, path, len);
    sb_add(&x->arena, "", 1); /* the path's own terminator: the next one starts after it */
    if (x->arena.cut)
        return -ENOMEM;
    x->slots[k] = (struct line_entry){h, off, line};
    x->n++;
    return 0;
}

/* ---- the scanner ---------------------------------------------------------------------------- */

static void scan_ws(const char *t, size_t n, size_t *i, int *line)
{
    while (*i < n && (t[*i] == ' ' || t[*i] == '\t' || t[*i] == '\r' || t[*i] == '\n')) {
        if (t[*i] == '\n')
            (*line)++;
        (*i)++;
    }
}

/* Skips a string, number or literal. */
static void scan_scalar(const char *t, size_t n, size_t *i)
{
    if (*i < n && t[*i] == '"') {
        for ((*i)++; *i < n && t[*i] != '"'; (*i)++) {
            if (t[*i] == '\\')
                (*i)++;
        }
        if (*i < n)
            (*i)++;
        return;
    }
    while (*i < n && t[*i] != ',' && t[*i] != ']' && t[*i] != '}' && t[*i] != ' ' && t[*i] != '\t' &&
           t[*i] != '\r' && t[*i] != '\n')
        (*i)++;
}

static int hex4(const char *t, size_t n, size_t i, unsigned *out)
{
    unsigned v = 0;
    if (i + 4 > n)
        return -1;
    for (size_t k = i; k < i + 4; k++) {
        char c = t[k];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static void sb_add_utf8(struct sbuf *b, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    sb_add(b, u, k);
}

/* Decodes the JSON string at t[*i] (its opening quote) into `out`, as jansson decodes it. */
static int scan_string(const char *t, size_t n, size_t *i, struct sbuf *out)
{
    sb_truncate(out, 0);
    if (*i >= n || t[*i] != '"')
        return -1;
    size_t k = *i + 1;
    while (k < n && t[k] != '"') {
        if (t[k] != '\\') {
            sb_add(out, &t[k], 1);
            k++;
            continue;
        }
        if (k + 1 >= n)
            return -1;
        char c = t[k + 1];
        k += 2;
        static const char k_from[] = "\"\\/bfnrt", k_to[] = "\"\\/\b\f\n\r\t";
        const char *e = c ? strchr(k_from, c) : NULL;
        if (e) {
            sb_add(out, &k_to[e - k_from], 1);
            continue;
        }
        unsigned cp, lo;
        if (c != 'u' || hex4(t, n, k, &cp) < 0)
            return -1;
        k += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && k + 6 <= n && t[k] == '\\' && t[k + 1] == 'u' &&
            hex4(t, n, k + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            k += 6;
        }
        sb_add_utf8(out, cp);
    }
    if (k >= n || out->cut)
        return -1;
    *i = k + 1;
    return 0;
}

/* At a member's key: decodes it, steps over the ':' and appends the key to `path`. */
static int scan_member(const char *t, size_t n, size_t *i, int *line, struct sbuf *key, struct sbuf *path)
{
    scan_ws(t, n, i, line);
    if (scan_string(t, n, i, key) < 0)
        return -1;
    scan_ws(t, n, i, line);
    if (*i >= n || t[*i] != ':')
        return -1;
    (*i)++;
    sb_add_key(path, key->p ? key->p : "", key->len);
    return path->cut ? -1 : 0;
}

struct scan_frame {
    char close; /* '}' or ']' */
    size_t index;
    size_t base; /* length of the container's own path */
};

/*
 * One pass over the text recording the line where each value starts, keyed by its JSON path. The
 * stack holds the open containers; `path` is the path of the value being read. Stops quietly on
 * anything unexpected (the text is JSON jansson accepted, or the caller does not mind); only running
 * out of memory is an error.
 */
static int scan(sfm_jsonlines *x, const char *t, size_t n)
{
    size_t i = 0, depth = 0, cap = 0;
    int line = 1, want_value = 1, rc = 0;
    struct scan_frame *st = NULL;
    struct sbuf path = {0}, key = {0};
    sb_add(&path, "$", 1);
    while (!path.cut) {
        scan_ws(t, n, &i, &line);
        if (i >= n)
            break;
        if (want_value) {
            rc = index_put(x, path.p, path.len, line);
            if (rc < 0)
                break;
            char c = t[i];
            if (c != '{' && c != '[') {
                scan_scalar(t, n, &i);
                want_value = 0;
                continue;
            }
            if (depth == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct scan_frame *p = realloc(st, ncap * sizeof(*st));
                if (!p) {
                    rc = -ENOMEM;
                    break;
                }
                st = p;
                cap = ncap;
            }
            st[depth++] = (struct scan_frame){c == '{' ? '}' : ']', 0, path.len};
            i++;
            scan_ws(t, n, &i, &line);
            if (i < n && t[i] == st[depth - 1].close) {
                i++;
                depth--;
                want_value = 0;
            } else if (c == '[') {
                sb_add_index(&path, 0);
            } else if (scan_member(t, n, &i, &line, &key, &path) < 0) {
                break;
            }
            continue;
        }
        if (depth == 0)
            break;
        struct scan_frame *f = &st[depth - 1];
        sb_truncate(&path, f->base);
        if (t[i++] != ',') {
            depth--; /* the container ends: it is the value just read, in its parent */
            continue;
        }
        if (f->close == ']') {
            sb_add_index(&path, ++f->index);
        } else if (scan_member(t, n, &i, &line, &key, &path) < 0) {
            break;
        }
        want_value = 1;
    }
    /* Both builders grow on the heap: a cut is memory running out, not the text. */
    if (path.cut || key.cut)
        rc = -ENOMEM;
    free(st);
    free(path.p);
    free(key.p);
    return rc;
}

/* ---- public --------------------------------------------------------------------------------- */

int sfm_jsonlines_build(sfm_jsonlines **out, const char *text, size_t len)
{
    int rc = -ENOMEM;
    sfm_jsonlines *x = calloc(1, sizeof(*x));
    if (!x)
        goto out;
    rc = scan(x, text, len);
    if (rc < 0)
        goto out;
    *out = x;
    x = NULL;
out:
    sfm_jsonlines_free(x);
    return rc;
}

int sfm_jsonlines_line(const sfm_jsonlines *x, const char *path)
{
    if (!x || !x->cap)
        return 0;
    uint64_t h = hash_path(path, strlen(path));
    size_t mask = x->cap - 1;
    for (size_t k = h & mask; x->slots[k].line; k = (k + 1) & mask) {
        if (x->slots[k].hash == h && strcmp(x->arena.p + x->slots[k].off, path) == 0)
            return x->slots[k].line;
    }
    return 0;
}

void sfm_jsonlines_free(sfm_jsonlines *x)
{
    if (!x)
        return;
    free(x->slots);
    free(x->arena.p);
    free(x);
}
