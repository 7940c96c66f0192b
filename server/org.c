#include "org.h"
#include "jsonlines.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** Largest fixture file read (a 10,000-user fixture is about 1 MiB). */
#define SFM_ORG_MAX_FIXTURE (64u * 1024 * 1024)
/** Largest certificate file read: the upload limit (SPEC section 6). */
#define SFM_ORG_MAX_PEM (1024u * 1024)
/** Longest JSON path in a message; a longer one is cut and shows no line. */
#define SFM_ORG_MAX_PATH SFM_JSONLINES_MAX_PATH
/** Longest message text after the path. */
#define SFM_ORG_MAX_MSG 1024
/** Longest quoted value in a message, quotes included; longer values end in "...". */
#define SFM_ORG_MAX_QUOTE 160
/** Room kept at the end of the error buffer for the "N more problems" line. */
#define SFM_ORG_ERR_RESERVE 64
/** Mutual Authentication Certificate labels and issued common names: 1 to 64 characters. */
#define SFM_ORG_MAX_LABEL 64
#define SFM_ORG_MAX_CN    64
/** Most fields any fixture object has. */
#define SFM_ORG_MAX_FIELDS 8
/** API versions are "N.0" with 1 <= N <= 999 (sfm_org_version_label). */
#define SFM_ORG_MAX_MAJOR 999

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL

static const char k_pem_begin[] = "-----BEGIN CERTIFICATE-----";

/* ---- permissions and release labels ---------------------------------------------------- */

unsigned sfm_perm_bit(const char *name)
{
    static const struct {
        const char *name;
        unsigned bit;
    } k_perms[] = {
        {"ApiEnabled", SFM_PERM_API_ENABLED},
        {"ApiUserOnly", SFM_PERM_API_USER_ONLY},
        {"ViewSetup", SFM_PERM_VIEW_SETUP},
        {"EnforceMutualAuthentication", SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION},
    };
    for (size_t i = 0; name && i < sizeof(k_perms) / sizeof(k_perms[0]); i++) {
        if (strcmp(name, k_perms[i].name) == 0)
            return k_perms[i].bit;
    }
    return 0;
}

int sfm_org_version_label(const char *version, char *out, size_t len)
{
    /* Salesforce ships three releases a year; 31.0 was Summer '14, then
     * Winter '15, Spring '15, Summer '15, ... (SPEC section 3). */
    int major = 0, minor = -1;
    char tail = 0;
    if (sscanf(version, "%d.%d%c", &major, &minor, &tail) != 2 || minor != 0 || major < 1 ||
        major > SFM_ORG_MAX_MAJOR)
        return -EINVAL;
    int k = major - 31;
    static const char *const seasons[] = {"Summer", "Winter", "Spring"};
    int idx = ((k % 3) + 3) % 3;
    int div = (k - idx) / 3; /* floor(k / 3) */
    int year = idx == 0 ? 14 + div : 15 + div;
    if (year < 0)
        return -EINVAL;
    snprintf(out, len, "%s '%02d", seasons[idx], year % 100);
    return 0;
}

/* ---- small helpers: hashing, strings ---------------------------------------------------- */

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* FNV-1a of `len` bytes, ASCII letters folded to lowercase when `fold` (usernames). */
static uint64_t hash_bytes(const char *s, size_t len, int fold)
{
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)(fold ? ascii_lower(s[i]) : s[i]);
        h *= FNV64_PRIME;
    }
    return h;
}

/* Equality of two strings, ASCII case folded when `fold` (independent of the locale). */
static int str_eq(const char *a, const char *b, int fold)
{
    if (!fold)
        return strcmp(a, b) == 0;
    for (; *a && *b; a++, b++) {
        if (ascii_lower(*a) != ascii_lower(*b))
            return 0;
    }
    return *a == *b;
}

/* Smallest power of two >= 2 n (and >= 8): an open-addressing table of that size is at most half full. */
static size_t table_size(size_t n)
{
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

/* Text in a caller's fixed buffer, always NUL-terminated; `cut` records that something did not fit. */
struct sbuf {
    char *p;
    size_t len, cap;
    int cut;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->cut)
        return;
    if (b->len + n + 1 > b->cap) {
        n = b->cap - b->len - 1;
        b->cut = 1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* `s` in double quotes for a message, escaped, and cut with "..." when long. Returns `out`. */
static const char *quote(char out[SFM_ORG_MAX_QUOTE], const char *s)
{
    return sfm_jsonlines_quote(out, SFM_ORG_MAX_QUOTE, s);
}

/* A string -> index table (open addressing, at most half full; sized once for n keys). Keys are
 * borrowed and must outlive the table. */
struct strmap {
    const char **keys;
    size_t *vals;
    size_t cap;
    int fold;
};

static int strmap_init(struct strmap *m, size_t n, int fold)
{
    m->cap = table_size(n);
    m->fold = fold;
    m->keys = calloc(m->cap, sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        m->cap = 0;
        return -ENOMEM;
    }
    return 0;
}

static void strmap_free(struct strmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
}

/* The value stored under `key`, or SIZE_MAX. */
static size_t strmap_find(const struct strmap *m, const char *key)
{
    if (!m->cap)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    for (size_t k = hash_bytes(key, strlen(key), m->fold) & mask; m->keys[k]; k = (k + 1) & mask) {
        if (str_eq(m->keys[k], key, m->fold))
            return m->vals[k];
    }
    return SIZE_MAX;
}

/* Stores key -> val and returns SIZE_MAX; or, when the key is there already, stores nothing and
 * returns the value it has. The caller never puts more keys than the table was sized for. */
static size_t strmap_put(struct strmap *m, const char *key, size_t val)
{
    if (!m->cap)
        return SIZE_MAX;
    size_t mask = m->cap - 1;
    size_t k = hash_bytes(key, strlen(key), m->fold) & mask;
    for (; m->keys[k]; k = (k + 1) & mask) {
        if (str_eq(m->keys[k], key, m->fold))
            return m->vals[k];
    }
    m->keys[k] = key;
    m->vals[k] = val;
    return SIZE_MAX;
}

/* ---- files ---------------------------------------------------------------------------------- */

/*
 * Reads the whole file at `path` (at most `max` bytes) into a new NUL-terminated buffer. With
 * `regular_only`, anything but a regular file is refused before a read could block on it (a FIFO,
 * a terminal, /proc/self/fd/0). On failure `why` says what went wrong.
 */
static int read_whole(const char *path, size_t max, int regular_only, char **out, size_t *out_len, char *why,
                      size_t why_len)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (regular_only ? O_NONBLOCK : 0));
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_len, "%s", strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(why, why_len, "%s", strerror(errno));
        goto out;
    }
    if (regular_only && !S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(why, why_len, "not a regular file");
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        rc = -EFBIG;
        snprintf(why, why_len, "larger than %zu bytes", max);
        goto out;
    }
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : (S_ISREG(st.st_mode) ? (size_t)st.st_size + 2 : 4096);
            if (ncap > max + 2)
                ncap = max + 2;
            char *p = realloc(buf, ncap);
            if (!p) {
                rc = -ENOMEM;
                snprintf(why, why_len, "out of memory");
                goto out;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(why, why_len, "%s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            rc = -EFBIG;
            snprintf(why, why_len, "larger than %zu bytes", max);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* ---- the loader: error report and line numbers ------------------------------------------- */

struct loader {
    const char *file; /* the fixture path, as given */
    char *text;       /* its contents */
    size_t text_len;
    char *dir; /* its directory, for relative paths; NULL: the current one */
    char *err;
    size_t err_len, err_used;
    size_t n_errors, n_dropped;
    sfm_jsonlines *lines; /* where each value starts; built by line_of() on first use */
    int lines_built;
    sfm_org *org;
    int oom;
    size_t warn_cap;
    struct strmap profile_names, permset_names;
    int profiles_usable; /* "profiles" is an array: an unknown profile is worth reporting */
    int permsets_usable; /* "permissionSets" is an array or absent */
    int users_usable;
};

static char *xstrdup(struct loader *ld, const char *s)
{
    char *d = strdup(s);
    if (!d)
        ld->oom = 1;
    return d;
}

/* The line where the value at `path` starts, or 0 when unknown. Scans the file on first use: a
 * fixture without problems is never scanned. Lines are decoration, so a scan that runs out of memory
 * only leaves them out. */
static int line_of(struct loader *ld, const char *path)
{
    if (!ld->lines_built) {
        ld->lines_built = 1;
        if (sfm_jsonlines_build(&ld->lines, ld->text, ld->text_len) < 0)
            ld->lines = NULL;
    }
    return sfm_jsonlines_line(ld->lines, path);
}

/* Appends one line to the caller's error buffer, keeping room for the final "N more" line. */
static void append_err(struct loader *ld, const char *msg)
{
    ld->n_errors++;
    if (!ld->err_len)
        return;
    size_t need = strlen(msg) + (ld->err_used ? 1 : 0);
    size_t limit = ld->err_len > 2 * SFM_ORG_ERR_RESERVE ? ld->err_len - SFM_ORG_ERR_RESERVE : ld->err_len;
    if (ld->err_used && ld->err_used + need + 1 > limit) {
        ld->n_dropped++;
        return;
    }
    int k =
        snprintf(ld->err + ld->err_used, ld->err_len - ld->err_used, "%s%s", ld->err_used ? "\n" : "", msg);
    if (k > 0)
        ld->err_used += (size_t)k;
    if (ld->err_used >= ld->err_len)
        ld->err_used = ld->err_len - 1;
}

enum report_kind { REPORT_ERROR, REPORT_WARNING };

/* "FILE: PATH (line N): message", into the error buffer or the org's warnings. */
__attribute__((format(printf, 4, 5))) static void report(struct loader *ld, enum report_kind kind,
                                                         const char *path, const char *fmt, ...)
{
    char msg[SFM_ORG_MAX_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = line_of(ld, path);
    char full[SFM_ORG_MAX_MSG + SFM_ORG_MAX_PATH + 4096 + 32];
    if (line > 0)
        snprintf(full, sizeof(full), "%s: %s (line %d): %s", ld->file, path, line, msg);
    else
        snprintf(full, sizeof(full), "%s: %s: %s", ld->file, path, msg);
    switch (kind) {
    case REPORT_ERROR: append_err(ld, full); break;
    case REPORT_WARNING: {
        sfm_org *org = ld->org;
        if (org->n_warnings == ld->warn_cap) {
            size_t ncap = ld->warn_cap ? ld->warn_cap * 2 : 4;
            char **w = realloc(org->warnings, ncap * sizeof(*w));
            if (!w) {
                ld->oom = 1;
                return;
            }
            org->warnings = w;
            ld->warn_cap = ncap;
        }
        char *copy = xstrdup(ld, full);
        if (copy)
            org->warnings[org->n_warnings++] = copy;
        break;
    }
    }
}

/* ---- object shapes ---------------------------------------------------------------------- */

enum ftype { F_STRING, F_BOOL, F_ARRAY, F_OBJECT };

struct field {
    const char *key;
    enum ftype type;
    int required;
};

static int type_ok(const json_t *v, enum ftype type)
{
    switch (type) {
    case F_STRING: return json_is_string(v) && json_string_length(v) > 0;
    case F_BOOL: return json_is_boolean(v);
    case F_ARRAY: return json_is_array(v);
    case F_OBJECT: return json_is_object(v);
    }
    return 0;
}

static const char *type_want(enum ftype type)
{
    switch (type) {
    case F_STRING: return "expected a non-empty string";
    case F_BOOL: return "expected true or false";
    case F_ARRAY: return "expected an array";
    case F_OBJECT: return "expected an object";
    }
    return "";
}

/*
 * Checks the object at `path` against its fields: reports unknown keys, values of the wrong type
 * and missing required keys. v[i] is set to fields[i]'s value when present with the right type,
 * else NULL. Returns 0 when `obj` is not an object (reported), else 1.
 */
static int check_object(struct loader *ld, const json_t *obj, const char *path, const struct field *fields,
                        size_t n, json_t **v)
{
    int present[SFM_ORG_MAX_FIELDS] = {0};
    for (size_t i = 0; i < n; i++)
        v[i] = NULL;
    if (!json_is_object(obj)) {
        report(ld, REPORT_ERROR, path, "expected an object");
        return 0;
    }
    const char *key;
    json_t *val;
    char p[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
    json_object_foreach((json_t *)obj, key, val)
    {
        size_t i = 0;
        while (i < n && strcmp(fields[i].key, key) != 0)
            i++;
        if (i < n) {
            present[i] = 1;
            if (type_ok(val, fields[i].type)) {
                v[i] = val;
            } else {
                sfm_jsonlines_path_key(p, path, key);
                report(ld, REPORT_ERROR, p, "%s", type_want(fields[i].type));
            }
            continue;
        }
        /* A typo must not be ignored: say which key was probably meant, or which keys exist. */
        sfm_jsonlines_path_key(p, path, key);
        size_t near = 0;
        while (near < n && !str_eq(fields[near].key, key, 1))
            near++;
        if (near < n) {
            report(ld, REPORT_ERROR, p, "unknown key %s (did you mean \"%s\"?)", quote(q1, key),
                   fields[near].key);
        } else {
            char known[512];
            struct sbuf kb = {known, 0, sizeof(known), 0};
            known[0] = '\0';
            for (size_t k = 0; k < n; k++) {
                sb_add(&kb, k ? ", " : "", k ? 2 : 0);
                sb_add(&kb, fields[k].key, strlen(fields[k].key));
            }
            report(ld, REPORT_ERROR, p, "unknown key %s (known keys: %s)", quote(q1, key), known);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !present[i])
            report(ld, REPORT_ERROR, path, "missing required key \"%s\"", fields[i].key);
    }
    return 1;
}

/* The why of an id that sfm_sfid_valid() refused. */
static void report_bad_id(struct loader *ld, const char *path, const char *prefix, const char *id)
{
    char q1[SFM_ORG_MAX_QUOTE], full[SFM_SFID_LEN + 1];
    size_t len = strlen(id);
    char copy[16];
    if (len == SFM_SFID_LEN && strncmp(id, prefix, 3) == 0) {
        memcpy(copy, id, 15);
        copy[15] = '\0';
        if (sfm_sfid_to18(copy, full) == 0) {
            report(ld, REPORT_ERROR, path, "id %s has a wrong checksum (the 18-character form of %s is %s)",
                   quote(q1, id), copy, full);
            return;
        }
    }
    if (sfm_sfid_to18(id, full) == 0)
        report(ld, REPORT_ERROR, path, "id %s does not start with %s", quote(q1, id), prefix);
    else
        report(ld, REPORT_ERROR, path,
               "expected a 15 or 18 character id of letters and digits starting with %s, not %s", prefix,
               quote(q1, id));
}

/* Reads a given, validated id into out[19] (its 18-character form); reports it when bad. */
static void take_id(struct loader *ld, const char *parent, const json_t *v, const char *prefix,
                    char out[SFM_SFID_LEN + 1])
{
    const char *id = json_string_value(v);
    if (sfm_sfid_valid(id, prefix) && sfm_sfid_to18(id, out) == 0)
        return;
    char p[SFM_ORG_MAX_PATH];
    sfm_jsonlines_path_key(p, parent, "id");
    report_bad_id(ld, p, prefix, id);
    out[0] = '\0';
}

/* A path inside the fixture, resolved against the fixture's directory; a new string. */
static char *resolve(struct loader *ld, const char *rel)
{
    if (rel[0] == '/' || !ld->dir)
        return xstrdup(ld, rel);
    size_t n = strlen(ld->dir) + 1 + strlen(rel) + 1;
    char *s = malloc(n);
    if (!s) {
        ld->oom = 1;
        return NULL;
    }
    snprintf(s, n, "%s/%s", ld->dir, rel);
    return s;
}

/* Reads the certificate file `rel` (path `p` in the fixture): must hold a PEM certificate block. */
static void load_pem(struct loader *ld, const char *p, const char *rel, char **file, char **pem,
                     size_t *pem_len)
{
    char q1[SFM_ORG_MAX_QUOTE], why[256];
    char *path = resolve(ld, rel), *buf = NULL;
    size_t len = 0;
    if (!path)
        goto out;
    if (read_whole(path, SFM_ORG_MAX_PEM, 1, &buf, &len, why, sizeof(why)) < 0) {
        report(ld, REPORT_ERROR, p, "cannot read the certificate file %s: %s", quote(q1, path), why);
        goto out;
    }
    /* Only the shape here; the X.509 checks of a preload happen where certificates are loaded. */
    if (!memmem(buf, len, k_pem_begin, sizeof(k_pem_begin) - 1)) {
        report(ld, REPORT_ERROR, p, "%s holds no PEM certificate (no \"%s\" line)", quote(q1, path),
               k_pem_begin);
        goto out;
    }
    *file = path;
    *pem = buf;
    *pem_len = len;
    path = NULL;
    buf = NULL;
out:
    free(buf);
    free(path);
}

/* ---- the sections of the fixture ---------------------------------------------------------- */

/* An id to assign: where it goes (already filled when given) and the name to derive it from. */
struct id_slot {
    char *id;
    const char *name; /* NULL: the entry is broken (already reported); no id */
};

/*
 * Gives each entry of a list its id. Given ids first, so that a derived id never takes one, and a
 * given id used twice is an error; then derived ids in fixture order, salted past any collision
 * (stable, as the order is).
 */
static void assign_ids(struct loader *ld, const char *list_path, const char *prefix, struct id_slot *slots,
                       size_t n, int fold)
{
    struct strmap seen;
    char p[SFM_ORG_MAX_PATH], pi[SFM_ORG_MAX_PATH], other[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
    if (strmap_init(&seen, n, 0) < 0) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!slots[i].id[0])
            continue;
        size_t prev = strmap_put(&seen, slots[i].id, i);
        if (prev != SIZE_MAX) {
            sfm_jsonlines_path_index(pi, list_path, i);
            sfm_jsonlines_path_key(p, pi, "id");
            sfm_jsonlines_path_index(other, list_path, prev);
            report(ld, REPORT_ERROR, p, "duplicate id %s (also at %s.id)", quote(q1, slots[i].id), other);
        }
    }
    char *lower = NULL;
    size_t lower_cap = 0;
    for (size_t i = 0; i < n && !ld->oom; i++) {
        if (slots[i].id[0] || !slots[i].name)
            continue;
        const char *name = slots[i].name;
        if (fold) {
            size_t len = strlen(name);
            if (len + 1 > lower_cap) {
                char *l = realloc(lower, 2 * (len + 1));
                if (!l) {
                    ld->oom = 1;
                    break;
                }
                lower = l;
                lower_cap = 2 * (len + 1);
            }
            for (size_t c = 0; c <= len; c++)
                lower[c] = ascii_lower(name[c]);
            name = lower;
        }
        for (unsigned salt = 0;; salt++) {
            sfm_sfid_derive(prefix, name, salt, slots[i].id);
            if (strmap_find(&seen, slots[i].id) == SIZE_MAX)
                break;
        }
        strmap_put(&seen, slots[i].id, i);
    }
    free(lower);
    strmap_free(&seen);
}

/* The major number of a version spelled canonically ("64.0": it is a part of URLs such as
 * /services/data/v64.0), or -1. */
static int version_major(const char *s)
{
    int major = 0;
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9' && i < 3) {
        major = major * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0 || (i > 1 && s[0] == '0') || strcmp(s + i, ".0") != 0 || major < 1 ||
        major > SFM_ORG_MAX_MAJOR)
        return -1;
    return major;
}

enum { O_ID, O_NAME, O_MY_DOMAIN, O_SANDBOX, O_MUTUAL, O_VERSIONS, O_N };
static const struct field k_org_fields[O_N] = {
    [O_ID] = {"id", F_STRING, 1},
    [O_NAME] = {"name", F_STRING, 1},
    [O_MY_DOMAIN] = {"myDomain", F_STRING, 0},
    [O_SANDBOX] = {"isSandbox", F_BOOL, 0},
    [O_MUTUAL] = {"mutualAuthentication", F_BOOL, 0},
    [O_VERSIONS] = {"apiVersions", F_ARRAY, 1},
};

static void load_organization(struct loader *ld, const json_t *o)
{
    sfm_org *org = ld->org;
    json_t *v[O_N];
    const char *path = "$.organization";
    char p[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
    if (!check_object(ld, o, path, k_org_fields, O_N, v))
        return;
    if (v[O_ID]) {
        char id[SFM_SFID_LEN + 1];
        take_id(ld, path, v[O_ID], "00D", id);
        if (id[0])
            org->id = xstrdup(ld, id);
    }
    if (v[O_NAME])
        org->name = xstrdup(ld, json_string_value(v[O_NAME]));
    free(org->my_domain);
    org->my_domain = xstrdup(ld, v[O_MY_DOMAIN] ? json_string_value(v[O_MY_DOMAIN]) : "acme");
    if (v[O_SANDBOX])
        org->is_sandbox = json_is_true(v[O_SANDBOX]);
    if (v[O_MUTUAL])
        org->mutual_authentication = json_is_true(v[O_MUTUAL]);
    if (!v[O_VERSIONS])
        return;
    sfm_jsonlines_path_key(p, path, "apiVersions");
    size_t n = json_array_size(v[O_VERSIONS]);
    if (n == 0) {
        report(ld, REPORT_ERROR, p, "expected at least one version, such as \"64.0\"");
        return;
    }
    org->versions = calloc(n, sizeof(*org->versions));
    if (!org->versions) {
        ld->oom = 1;
        return;
    }
    unsigned char seen[SFM_ORG_MAX_MAJOR + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *jv = json_array_get(v[O_VERSIONS], i);
        sfm_api_version *av = &org->versions[org->n_versions];
        char pi[SFM_ORG_MAX_PATH];
        sfm_jsonlines_path_index(pi, p, i);
        int major = json_is_string(jv) ? version_major(json_string_value(jv)) : -1;
        if (major < 0 || sfm_org_version_label(json_string_value(jv), av->label, sizeof(av->label)) != 0) {
            report(ld, REPORT_ERROR, pi, "expected a version such as \"64.0\"");
            continue;
        }
        if (seen[major]) {
            report(ld, REPORT_ERROR, pi, "duplicate version %s", quote(q1, json_string_value(jv)));
            continue;
        }
        seen[major] = 1;
        snprintf(av->version, sizeof(av->version), "%s", json_string_value(jv));
        org->n_versions++;
    }
}

/* A holder's "permissions": kept as written, duplicates removed, with the bits the policy reads. */
static void load_permissions(struct loader *ld, sfm_perm_holder *h, const json_t *list, const char *p)
{
    size_t n = json_array_size(list);
    struct strmap seen;
    if (n == 0)
        return;
    h->permissions = calloc(n, sizeof(*h->permissions));
    if (!h->permissions || strmap_init(&seen, n, 0) < 0) {
        ld->oom = 1;
        return;
    }
    for (size_t j = 0; j < n && !ld->oom; j++) {
        json_t *e = json_array_get(list, j);
        if (!type_ok(e, F_STRING)) {
            char pj[SFM_ORG_MAX_PATH];
            sfm_jsonlines_path_index(pj, p, j);
            report(ld, REPORT_ERROR, pj, "expected a permission name");
            continue;
        }
        const char *s = json_string_value(e);
        if (strmap_put(&seen, s, j) != SIZE_MAX)
            continue;
        char *copy = xstrdup(ld, s);
        if (!copy)
            break;
        h->permissions[h->n_permissions++] = copy;
        h->bits |= sfm_perm_bit(s);
    }
    strmap_free(&seen);
}

enum { H_NAME, H_PERMISSIONS, H_ID, H_LABEL, H_N };
static const struct field k_holder_fields[H_N] = {
    [H_NAME] = {"name", F_STRING, 1},
    [H_PERMISSIONS] = {"permissions", F_ARRAY, 1},
    [H_ID] = {"id", F_STRING, 0},
    [H_LABEL] = {"label", F_STRING, 0}, /* permission sets only */
};

/* "profiles" (permsets = 0) or "permissionSets" (1). */
static void load_holders(struct loader *ld, const json_t *list, int permsets)
{
    sfm_org *org = ld->org;
    const char *lp = permsets ? "$.permissionSets" : "$.profiles";
    const char *what = permsets ? "permission set" : "profile";
    struct strmap *names = permsets ? &ld->permset_names : &ld->profile_names;
    size_t n = json_array_size(list);
    sfm_perm_holder *hs = n ? calloc(n, sizeof(*hs)) : NULL;
    struct id_slot *slots = n ? calloc(n, sizeof(*slots)) : NULL;
    strmap_free(names);
    if ((n && (!hs || !slots)) || strmap_init(names, n, 0) < 0) {
        ld->oom = 1;
        free(hs);
        free(slots);
        return;
    }
    if (permsets) {
        org->permsets = hs;
        org->n_permsets = n;
    } else {
        org->profiles = hs;
        org->n_profiles = n;
    }
    for (size_t i = 0; i < n && !ld->oom; i++) {
        sfm_perm_holder *h = &hs[i];
        json_t *v[H_N] = {NULL}; /* profiles have no label: v[H_LABEL] stays NULL */
        char p[SFM_ORG_MAX_PATH], pk[SFM_ORG_MAX_PATH], first[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
        sfm_jsonlines_path_index(p, lp, i);
        slots[i].id = h->id;
        if (!check_object(ld, json_array_get(list, i), p, k_holder_fields, permsets ? H_N : H_N - 1, v))
            continue;
        if (v[H_NAME]) {
            h->name = xstrdup(ld, json_string_value(v[H_NAME]));
            if (!h->name)
                break;
            size_t prev = strmap_put(names, h->name, i);
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_key(pk, p, "name");
                sfm_jsonlines_path_index(first, lp, prev);
                report(ld, REPORT_ERROR, pk, "duplicate %s name %s (first at %s)", what, quote(q1, h->name),
                       first);
            } else {
                slots[i].name = h->name;
            }
            h->label = xstrdup(ld, v[H_LABEL] ? json_string_value(v[H_LABEL]) : h->name);
        }
        if (v[H_PERMISSIONS]) {
            sfm_jsonlines_path_key(pk, p, "permissions");
            load_permissions(ld, h, v[H_PERMISSIONS], pk);
        }
        if (v[H_ID])
            take_id(ld, p, v[H_ID], permsets ? "0PS" : "00e", h->id);
    }
    if (!ld->oom)
        assign_ids(ld, lp, permsets ? "0PS" : "00e", slots, n, 0);
    free(slots);
}

/* The username index, org->_user_slots: user index + 1, 0 for an empty slot. Inserts user i and
 * returns SIZE_MAX, or returns the index of the user with the same username (case-insensitive). */
static size_t user_slot_put(sfm_org *org, size_t i)
{
    size_t mask = org->_n_user_slots - 1;
    const char *name = org->users[i].username;
    for (size_t k = hash_bytes(name, strlen(name), 1) & mask;; k = (k + 1) & mask) {
        size_t s = org->_user_slots[k];
        if (!s) {
            org->_user_slots[k] = i + 1;
            return SIZE_MAX;
        }
        if (str_eq(org->users[s - 1].username, name, 1))
            return s - 1;
    }
}

enum { U_USERNAME, U_PASSWORD, U_PROFILE, U_TOKEN, U_PERMSETS, U_ACTIVE, U_ID, U_N };
static const struct field k_user_fields[U_N] = {
    [U_USERNAME] = {"username", F_STRING, 1},
    [U_PASSWORD] = {"password", F_STRING, 1},
    [U_PROFILE] = {"profile", F_STRING, 1},
    [U_TOKEN] = {"securityToken", F_STRING, 0},
    [U_PERMSETS] = {"permissionSets", F_ARRAY, 0},
    [U_ACTIVE] = {"active", F_BOOL, 0},
    [U_ID] = {"id", F_STRING, 0},
};

/* A user's "permissionSets": indexes into org->permsets, duplicates removed. `stamp` marks the
 * permission sets this user already has (stamp[k] == user + 1), so that a long list stays linear. */
static void load_user_permsets(struct loader *ld, sfm_fx_user *u, size_t user, const json_t *list,
                               const char *p, size_t *stamp)
{
    size_t n = json_array_size(list);
    char pj[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
    if (n == 0)
        return;
    u->permsets = calloc(n, sizeof(*u->permsets));
    if (!u->permsets) {
        ld->oom = 1;
        return;
    }
    for (size_t j = 0; j < n; j++) {
        json_t *e = json_array_get(list, j);
        if (!type_ok(e, F_STRING)) {
            sfm_jsonlines_path_index(pj, p, j);
            report(ld, REPORT_ERROR, pj, "expected a permission set name");
            continue;
        }
        size_t k = strmap_find(&ld->permset_names, json_string_value(e));
        if (k == SIZE_MAX) {
            if (ld->permsets_usable) {
                sfm_jsonlines_path_index(pj, p, j);
                report(ld, REPORT_ERROR, pj, "unknown permission set %s", quote(q1, json_string_value(e)));
            }
            continue;
        }
        if (stamp[k] == user + 1)
            continue;
        stamp[k] = user + 1;
        u->permsets[u->n_permsets++] = k;
    }
}

static void load_users(struct loader *ld, const json_t *list)
{
    sfm_org *org = ld->org;
    size_t n = json_array_size(list);
    org->_n_user_slots = table_size(n);
    org->_user_slots = calloc(org->_n_user_slots, sizeof(*org->_user_slots));
    org->users = n ? calloc(n, sizeof(*org->users)) : NULL;
    struct id_slot *slots = n ? calloc(n, sizeof(*slots)) : NULL;
    size_t *stamp = calloc(org->n_permsets + 1, sizeof(*stamp));
    if (!org->_user_slots || (n && (!org->users || !slots)) || !stamp) {
        ld->oom = 1;
        free(slots);
        free(stamp);
        return;
    }
    org->n_users = n;
    for (size_t i = 0; i < n && !ld->oom; i++) {
        sfm_fx_user *u = &org->users[i];
        json_t *v[U_N];
        char p[SFM_ORG_MAX_PATH], pk[SFM_ORG_MAX_PATH], first[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
        sfm_jsonlines_path_index(p, "$.users", i);
        slots[i].id = u->id;
        u->active = 1;
        if (!check_object(ld, json_array_get(list, i), p, k_user_fields, U_N, v))
            continue;
        if (v[U_USERNAME]) {
            u->username = xstrdup(ld, json_string_value(v[U_USERNAME]));
            if (!u->username)
                break;
            size_t prev = user_slot_put(org, i);
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_key(pk, p, "username");
                sfm_jsonlines_path_index(first, "$.users", prev);
                report(ld, REPORT_ERROR, pk, "duplicate username %s (usernames ignore case; first at %s)",
                       quote(q1, u->username), first);
            } else {
                slots[i].name = u->username;
            }
        }
        if (v[U_PASSWORD])
            u->password = xstrdup(ld, json_string_value(v[U_PASSWORD]));
        if (v[U_TOKEN])
            u->security_token = xstrdup(ld, json_string_value(v[U_TOKEN]));
        if (v[U_ACTIVE])
            u->active = json_is_true(v[U_ACTIVE]);
        if (v[U_PROFILE]) {
            size_t k = strmap_find(&ld->profile_names, json_string_value(v[U_PROFILE]));
            if (k != SIZE_MAX) {
                u->profile = k;
            } else if (ld->profiles_usable) {
                sfm_jsonlines_path_key(pk, p, "profile");
                report(ld, REPORT_ERROR, pk, "unknown profile %s",
                       quote(q1, json_string_value(v[U_PROFILE])));
            }
        }
        if (v[U_PERMSETS]) {
            sfm_jsonlines_path_key(pk, p, "permissionSets");
            load_user_permsets(ld, u, i, v[U_PERMSETS], pk, stamp);
        }
        if (v[U_ID])
            take_id(ld, p, v[U_ID], "005", u->id);
    }
    /* Derived from the lowercase username: the id does not change with the username's case. */
    if (!ld->oom)
        assign_ids(ld, "$.users", "005", slots, n, 1);
    free(slots);
    free(stamp);
}

enum { A_NAME, A_KEY, A_SECRET, A_CERT, A_RUN_AS, A_CALLBACK, A_N };
static const struct field k_app_fields[A_N] = {
    [A_NAME] = {"name", F_STRING, 1},
    [A_KEY] = {"consumerKey", F_STRING, 1},
    [A_SECRET] = {"consumerSecret", F_STRING, 1},
    [A_CERT] = {"certificate", F_STRING, 0},
    [A_RUN_AS] = {"runAs", F_STRING, 0},
    [A_CALLBACK] = {"callbackUrl", F_STRING, 0},
};

static void load_apps(struct loader *ld, const json_t *list)
{
    sfm_org *org = ld->org;
    size_t n = json_array_size(list);
    struct strmap names = {0}, keys = {0};
    if (n == 0)
        return;
    org->apps = calloc(n, sizeof(*org->apps));
    if (!org->apps || strmap_init(&names, n, 0) < 0 || strmap_init(&keys, n, 0) < 0) {
        ld->oom = 1;
        goto out;
    }
    org->n_apps = n;
    for (size_t i = 0; i < n && !ld->oom; i++) {
        sfm_connected_app *a = &org->apps[i];
        json_t *v[A_N];
        char p[SFM_ORG_MAX_PATH], pk[SFM_ORG_MAX_PATH], first[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
        sfm_jsonlines_path_index(p, "$.connectedApps", i);
        if (!check_object(ld, json_array_get(list, i), p, k_app_fields, A_N, v))
            continue;
        if (v[A_NAME]) {
            a->name = xstrdup(ld, json_string_value(v[A_NAME]));
            size_t prev = a->name ? strmap_put(&names, a->name, i) : SIZE_MAX;
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_key(pk, p, "name");
                sfm_jsonlines_path_index(first, "$.connectedApps", prev);
                report(ld, REPORT_ERROR, pk, "duplicate connected app name %s (first at %s)",
                       quote(q1, a->name), first);
            }
        }
        if (v[A_KEY]) {
            a->consumer_key = xstrdup(ld, json_string_value(v[A_KEY]));
            size_t prev = a->consumer_key ? strmap_put(&keys, a->consumer_key, i) : SIZE_MAX;
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_key(pk, p, "consumerKey");
                sfm_jsonlines_path_index(first, "$.connectedApps", prev);
                report(ld, REPORT_ERROR, pk, "duplicate consumerKey %s (first at %s)",
                       quote(q1, a->consumer_key), first);
            }
        }
        if (v[A_SECRET])
            a->consumer_secret = xstrdup(ld, json_string_value(v[A_SECRET]));
        if (v[A_CALLBACK])
            a->callback_url = xstrdup(ld, json_string_value(v[A_CALLBACK]));
        if (v[A_CERT]) {
            sfm_jsonlines_path_key(pk, p, "certificate");
            load_pem(ld, pk, json_string_value(v[A_CERT]), &a->certificate_file, &a->certificate_pem,
                     &a->certificate_len);
        }
        if (v[A_RUN_AS]) {
            long u = sfm_org_find_user(org, json_string_value(v[A_RUN_AS]));
            if (u >= 0) {
                a->run_as = xstrdup(ld, org->users[u].username); /* the fixture's spelling */
            } else if (ld->users_usable) {
                sfm_jsonlines_path_key(pk, p, "runAs");
                report(ld, REPORT_ERROR, pk, "runAs names no user of the fixture: %s",
                       quote(q1, json_string_value(v[A_RUN_AS])));
            }
        }
    }
out:
    strmap_free(&names);
    strmap_free(&keys);
}

/* 1 to `max` characters (UTF-8 code points, not bytes). */
static int length_ok(const char *s, size_t max)
{
    long chars = sfm_utf8_count(s, strlen(s));
    return chars >= 1 && (size_t)chars <= max;
}

/* The cn becomes a file name (<state-dir>/clients/<cn>.crt): a safe alphabet, no "/". */
static int cn_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SFM_ORG_MAX_CN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

enum { C_LABEL, C_FILE, C_ISSUE, C_N };
static const struct field k_cert_fields[C_N] = {
    [C_LABEL] = {"label", F_STRING, 1},
    [C_FILE] = {"file", F_STRING, 0},
    [C_ISSUE] = {"issue", F_OBJECT, 0},
};
static const struct field k_issue_fields[] = {{"cn", F_STRING, 1}};

static void load_certs(struct loader *ld, const json_t *list)
{
    sfm_org *org = ld->org;
    size_t n = json_array_size(list);
    struct strmap labels = {0}, cns = {0};
    if (n == 0)
        return;
    org->certs = calloc(n, sizeof(*org->certs));
    if (!org->certs || strmap_init(&labels, n, 0) < 0 || strmap_init(&cns, n, 0) < 0) {
        ld->oom = 1;
        goto out;
    }
    org->n_certs = n;
    for (size_t i = 0; i < n && !ld->oom; i++) {
        sfm_fx_cert *c = &org->certs[i];
        json_t *v[C_N], *cn[1];
        const json_t *e = json_array_get(list, i);
        char p[SFM_ORG_MAX_PATH], pk[SFM_ORG_MAX_PATH], first[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
        sfm_jsonlines_path_index(p, "$.mutualAuthCertificates", i);
        if (!check_object(ld, e, p, k_cert_fields, C_N, v))
            continue;
        if (v[C_LABEL]) {
            sfm_jsonlines_path_key(pk, p, "label");
            c->label = xstrdup(ld, json_string_value(v[C_LABEL]));
            size_t prev = SIZE_MAX;
            if (!c->label)
                break;
            if (!length_ok(c->label, SFM_ORG_MAX_LABEL))
                report(ld, REPORT_ERROR, pk, "a label has 1 to %d characters", SFM_ORG_MAX_LABEL);
            else
                prev = strmap_put(&labels, c->label, i);
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_index(first, "$.mutualAuthCertificates", prev);
                report(ld, REPORT_ERROR, pk, "duplicate certificate label %s (first at %s)",
                       quote(q1, c->label), first);
            }
        }
        /* Judged by presence, not by type: a wrongly typed one is reported already. */
        int has_file = json_object_get(e, "file") != NULL, has_issue = json_object_get(e, "issue") != NULL;
        if (has_file == has_issue) {
            report(ld, REPORT_ERROR, p, "%s",
                   has_file ? "give either \"file\" or \"issue\", not both"
                            : "missing \"file\" or \"issue\" (one of them is required)");
            continue;
        }
        if (v[C_FILE]) {
            sfm_jsonlines_path_key(pk, p, "file");
            load_pem(ld, pk, json_string_value(v[C_FILE]), &c->file, &c->pem, &c->pem_len);
        }
        if (v[C_ISSUE]) {
            sfm_jsonlines_path_key(pk, p, "issue");
            if (!check_object(ld, v[C_ISSUE], pk, k_issue_fields, 1, cn) || !cn[0])
                continue;
            char pc[SFM_ORG_MAX_PATH];
            sfm_jsonlines_path_key(pc, pk, "cn");
            const char *s = json_string_value(cn[0]);
            if (!cn_ok(s)) {
                report(ld, REPORT_ERROR, pc,
                       "a cn has 1 to %d characters of A-Z a-z 0-9 . _ - (it names files)", SFM_ORG_MAX_CN);
                continue;
            }
            c->issue_cn = xstrdup(ld, s);
            size_t prev = c->issue_cn ? strmap_put(&cns, c->issue_cn, i) : SIZE_MAX;
            if (prev != SIZE_MAX) {
                sfm_jsonlines_path_index(first, "$.mutualAuthCertificates", prev);
                report(ld, REPORT_ERROR, pc,
                       "duplicate cn %s (first at %s.issue.cn): both would issue into the same files",
                       quote(q1, s), first);
            }
        }
    }
out:
    strmap_free(&labels);
    strmap_free(&cns);
}

/* "records": sObject type -> array of records whose fields hold scalars. */
static void check_records(struct loader *ld, const json_t *records)
{
    const char *type, *field;
    json_t *list, *fv;
    json_object_foreach((json_t *)records, type, list)
    {
        char p[SFM_ORG_MAX_PATH], pi[SFM_ORG_MAX_PATH], pf[SFM_ORG_MAX_PATH];
        sfm_jsonlines_path_key(p, "$.records", type);
        char first = type[0];
        if (!sfm_jsonlines_is_identifier(type, strlen(type)) || first == '_') {
            report(ld, REPORT_ERROR, p, "not an sObject type name (a letter, then letters, digits or _)");
            continue;
        }
        if (!json_is_array(list)) {
            report(ld, REPORT_ERROR, p, "expected an array of records");
            continue;
        }
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *r = json_array_get(list, i);
            if (!json_is_object(r)) {
                sfm_jsonlines_path_index(pi, p, i);
                report(ld, REPORT_ERROR, pi, "expected an object (a record)");
                continue;
            }
            json_object_foreach(r, field, fv)
            {
                if (!json_is_object(fv) && !json_is_array(fv))
                    continue;
                sfm_jsonlines_path_index(pi, p, i);
                sfm_jsonlines_path_key(pf, pi, field);
                report(ld, REPORT_ERROR, pf, "expected a string, number, boolean or null");
            }
        }
    }
}

/* Users whose effective permissions hold EnforceMutualAuthentication but not ApiUserOnly. */
static void warn_users(struct loader *ld)
{
    sfm_org *org = ld->org;
    for (size_t i = 0; i < org->n_users && !ld->oom; i++) {
        const sfm_fx_user *u = &org->users[i];
        unsigned bits = org->profiles[u->profile].bits;
        for (size_t k = 0; k < u->n_permsets; k++)
            bits |= org->permsets[u->permsets[k]].bits;
        if ((bits & SFM_PERM_ENFORCE_MUTUAL_AUTHENTICATION) && !(bits & SFM_PERM_API_USER_ONLY)) {
            char p[SFM_ORG_MAX_PATH], q1[SFM_ORG_MAX_QUOTE];
            sfm_jsonlines_path_index(p, "$.users", i);
            report(ld, REPORT_WARNING, p,
                   "user %s has EnforceMutualAuthentication without ApiUserOnly (Salesforce assigns it to "
                   "API-only "
                   "users)",
                   quote(q1, u->username));
        }
    }
}

enum { R_ORG, R_PROFILES, R_PERMSETS, R_USERS, R_APPS, R_CERTS, R_RECORDS, R_N };
static const struct field k_root_fields[R_N] = {
    [R_ORG] = {"organization", F_OBJECT, 1},       [R_PROFILES] = {"profiles", F_ARRAY, 1},
    [R_PERMSETS] = {"permissionSets", F_ARRAY, 0}, [R_USERS] = {"users", F_ARRAY, 1},
    [R_APPS] = {"connectedApps", F_ARRAY, 0},      [R_CERTS] = {"mutualAuthCertificates", F_ARRAY, 0},
    [R_RECORDS] = {"records", F_OBJECT, 0},
};

/* check_object() takes at most SFM_ORG_MAX_FIELDS fields. */
_Static_assert(R_N <= SFM_ORG_MAX_FIELDS && O_N <= SFM_ORG_MAX_FIELDS && H_N <= SFM_ORG_MAX_FIELDS &&
                   U_N <= SFM_ORG_MAX_FIELDS && A_N <= SFM_ORG_MAX_FIELDS && C_N <= SFM_ORG_MAX_FIELDS,
               "a field table outgrew SFM_ORG_MAX_FIELDS");

static void load_root(struct loader *ld, const json_t *root)
{
    json_t *v[R_N];
    if (!check_object(ld, root, "$", k_root_fields, R_N, v))
        return;
    if (v[R_ORG])
        load_organization(ld, v[R_ORG]);
    ld->profiles_usable = v[R_PROFILES] != NULL;
    ld->permsets_usable = v[R_PERMSETS] != NULL || !json_object_get(root, "permissionSets");
    ld->users_usable = v[R_USERS] != NULL;
    if (v[R_PROFILES] && !ld->oom)
        load_holders(ld, v[R_PROFILES], 0);
    if (v[R_PERMSETS] && !ld->oom)
        load_holders(ld, v[R_PERMSETS], 1);
    if (v[R_USERS] && !ld->oom)
        load_users(ld, v[R_USERS]);
    if (v[R_APPS] && !ld->oom)
        load_apps(ld, v[R_APPS]);
    if (v[R_CERTS] && !ld->oom)
        load_certs(ld, v[R_CERTS]);
    if (v[R_RECORDS] && !ld->oom) {
        check_records(ld, v[R_RECORDS]);
        ld->org->records = json_incref(v[R_RECORDS]);
    }
}

/* ---- public ------------------------------------------------------------------------------- */

/* GET /services/data/'s answer, [{"label","url","version"}] in the fixture's
 * order: rendered once here, since the org never changes, rather than on
 * every request. */
static int render_versions(sfm_org *org)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < org->n_versions; i++) {
        const sfm_api_version *v = &org->versions[i];
        char url[48];
        snprintf(url, sizeof(url), "/services/data/v%s", v->version);
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "label", v->label, "url", url, "version",
                                                  v->version)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    org->versions_json = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    if (!org->versions_json)
        return -ENOMEM;
    org->versions_json_len = strlen(org->versions_json);
    return 0;
}

int sfm_org_load(sfm_org **out, const char *path, char *err, size_t err_len)
{
    struct loader ld = {.file = path, .err = err, .err_len = err_len};
    json_t *root = NULL;
    int rc = 0;
    char why[256];
    if (err_len)
        err[0] = '\0';
    rc = read_whole(path, SFM_ORG_MAX_FIXTURE, 0, &ld.text, &ld.text_len, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, err_len, "%s: cannot read: %s", path, why);
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(ld.text, ld.text_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line > 0)
            snprintf(err, err_len, "%s: line %d, column %d: %s", path, jerr.line, jerr.column, jerr.text);
        else
            snprintf(err, err_len, "%s: %s", path, jerr.text);
        rc = -EINVAL;
        goto out;
    }
    ld.org = calloc(1, sizeof(*ld.org));
    if (!ld.org) {
        rc = -ENOMEM;
        goto out;
    }
    atomic_init(&ld.org->refs, 1);
    ld.org->mutual_authentication = 1;
    ld.org->path = xstrdup(&ld, path);
    const char *slash = strrchr(path, '/');
    if (slash)
        ld.dir = slash == path ? xstrdup(&ld, "/") : strndup(path, (size_t)(slash - path));
    if (slash && !ld.dir)
        ld.oom = 1;
    if (!ld.oom)
        load_root(&ld, root);
    if (!ld.oom && !ld.org->records)
        ld.org->records = json_object();
    if (!ld.oom && ld.n_errors == 0) {
        if (!ld.org->records || !ld.org->path || !ld.org->id || !ld.org->name || !ld.org->my_domain)
            ld.oom = 1;
        else
            warn_users(&ld);
        if (!ld.oom && render_versions(ld.org) < 0)
            ld.oom = 1;
    }
    if (ld.oom) {
        rc = -ENOMEM;
        goto out;
    }
    if (ld.n_errors) {
        if (ld.n_dropped && ld.err_used + 1 < err_len)
            snprintf(err + ld.err_used, err_len - ld.err_used, "\n(%zu more problems not shown)",
                     ld.n_dropped);
        rc = -EINVAL;
        goto out;
    }
    *out = ld.org;
    ld.org = NULL;
out:
    if (rc == -ENOMEM)
        snprintf(err, err_len, "%s: out of memory", path);
    json_decref(root);
    sfm_org_unref(ld.org);
    strmap_free(&ld.profile_names);
    strmap_free(&ld.permset_names);
    sfm_jsonlines_free(ld.lines);
    free(ld.dir);
    free(ld.text);
    return rc;
}

sfm_org *sfm_org_ref(sfm_org *org)
{
    if (org)
        atomic_fetch_add(&org->refs, 1);
    return org;
}

static void free_holders(sfm_perm_holder *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hs[i].name);
        free(hs[i].label);
        for (size_t k = 0; k < hs[i].n_permissions; k++)
            free(hs[i].permissions[k]);
        free(hs[i].permissions);
    }
    free(hs);
}

void sfm_org_unref(sfm_org *org)
{
    if (!org || atomic_fetch_sub(&org->refs, 1) != 1)
        return;
    free(org->path);
    free(org->id);
    free(org->name);
    free(org->my_domain);
    free(org->versions);
    free_holders(org->profiles, org->n_profiles);
    free_holders(org->permsets, org->n_permsets);
    for (size_t i = 0; i < org->n_users; i++) {
        free(org->users[i].username);
        free(org->users[i].password);
        free(org->users[i].security_token);
        free(org->users[i].permsets);
    }
    free(org->users);
    for (size_t i = 0; i < org->n_apps; i++) {
        sfm_connected_app *a = &org->apps[i];
        free(a->name);
        free(a->consumer_key);
        free(a->consumer_secret);
        free(a->certificate_file);
        free(a->certificate_pem);
        free(a->run_as);
        free(a->callback_url);
    }
    free(org->apps);
    for (size_t i = 0; i < org->n_certs; i++) {
        free(org->certs[i].label);
        free(org->certs[i].file);
        free(org->certs[i].issue_cn);
        free(org->certs[i].pem);
    }
    free(org->certs);
    json_decref((json_t *)org->records);
    free(org->versions_json);
    for (size_t i = 0; i < org->n_warnings; i++)
        free(org->warnings[i]);
    free(org->warnings);
    free(org->_user_slots);
    free(org);
}

long sfm_org_find_user(const sfm_org *org, const char *username)
{
    if (!org || !username || !org->_n_user_slots)
        return -1;
    size_t mask = org->_n_user_slots - 1;
    for (size_t k = hash_bytes(username, strlen(username), 1) & mask;; k = (k + 1) & mask) {
        size_t s = org->_user_slots[k];
        if (!s)
            return -1;
        if (str_eq(org->users[s - 1].username, username, 1))
            return (long)(s - 1);
    }
}

static long find_holder(const sfm_perm_holder *hs, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (hs[i].name && strcmp(hs[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

long sfm_org_find_profile(const sfm_org *org, const char *name)
{
    return org ? find_holder(org->profiles, org->n_profiles, name) : -1;
}

long sfm_org_find_permset(const sfm_org *org, const char *name)
{
    return org ? find_holder(org->permsets, org->n_permsets, name) : -1;
}

const sfm_connected_app *sfm_org_find_app(const sfm_org *org, const char *consumer_key)
{
    for (size_t i = 0; consumer_key && i < org->n_apps; i++) {
        if (strcmp(org->apps[i].consumer_key, consumer_key) == 0)
            return &org->apps[i];
    }
    return NULL;
}
