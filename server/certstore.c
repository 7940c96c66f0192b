#include "certstore.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"
#include "utf8.h"

#define N_SHARDS 256

/* The id's prefix: the key prefix "0P1" and a "0", then 11 base-62 digits. */
#define ID_HEAD     "0P10"
#define ID_HEAD_LEN 4
#define ID_DIGITS   11

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/*
 * One probe slot. `key` is the big-endian value of fp[0..7] (what the id
 * encodes), kept beside the pointer so a probe reads only the slot array
 * until a key matches. e == NULL marks a free slot.
 */
struct slot {
    uint64_t key;
    sfm_cert_entry *e;
};

/*
 * The entries whose fingerprint starts with one byte: an open-addressed table
 * with linear probing, at most half full, never changed once built (a change
 * builds a new shard). The slot is key & mask: the low bytes of fp[1..7],
 * uniformly random for SHA-256. Bytes 1..7 rather than 1..8, so that an id
 * (which carries fp[0..7] only) probes the same way as a fingerprint.
 */
struct shard {
    atomic_int refs;
    size_t n;    /* entries */
    size_t mask; /* slots - 1; slots is a power of two >= 2 * n */
    struct slot slots[];
};

struct sfm_certs {
    atomic_int refs;
    size_t count;
    struct shard *shards[N_SHARDS]; /* NULL when no entry starts with that byte */
};

static uint64_t fp_key(const unsigned char fp[32])
{
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = (k << 8) | fp[i];
    return k;
}

void sfm_certs_id_of(const unsigned char fp[32], char out[SFM_SFID_LEN + 1])
{
    uint64_t v = fp_key(fp);
    memcpy(out, ID_HEAD, ID_HEAD_LEN);
    for (int i = ID_HEAD_LEN + ID_DIGITS - 1; i >= ID_HEAD_LEN; i--) {
        out[i] = base62[v % 62];
        v /= 62;
    }
    sfm_sfid_checksum(out, out + 15);
    out[SFM_SFID_LEN] = '\0';
}

/* The fp[0..7] key an id of this set encodes, or -EINVAL when `id` is not one. */
static int id_key(const char *id, uint64_t *key)
{
    char id18[SFM_SFID_LEN + 1];
    if (!id)
        return -EINVAL;
    /* Bounded before sfid sees it: any string, however long, is cheap to refuse. */
    size_t len = strnlen(id, SFM_SFID_LEN + 1);
    if (len != 15 && len != SFM_SFID_LEN)
        return -EINVAL;
    if (sfm_sfid_to18(id, id18) < 0)
        return -EINVAL;
    if (memcmp(id18, ID_HEAD, ID_HEAD_LEN) != 0)
        return -EINVAL;
    uint64_t v = 0;
    for (int i = ID_HEAD_LEN; i < ID_HEAD_LEN + ID_DIGITS; i++) {
        const char *d = memchr(base62, id18[i], sizeof(base62) - 1);
        if (!d)
            return -EINVAL;
        /* 62^11 > 2^64: eleven digits can name more than a uint64 holds. */
        if (__builtin_mul_overflow(v, 62u, &v) || __builtin_add_overflow(v, (uint64_t)(d - base62), &v))
            return -EINVAL;
    }
    *key = v;
    return 0;
}

sfm_cert_entry *sfm_cert_entry_new(const char *label, const char *subject, const char *issuer,
                                   const char *serial, time_t not_before, time_t not_after,
                                   const unsigned char fp[32], int chain_length, int preloaded,
                                   int64_t created_ms)
{
    sfm_cert_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    e->label = strdup(label ? label : "");
    e->subject = strdup(subject ? subject : "");
    e->issuer = strdup(issuer ? issuer : "");
    if (!e->label || !e->subject || !e->issuer) {
        sfm_cert_entry_unref(e);
        return NULL;
    }
    size_t i = 0;
    for (; serial && serial[i] && i < sizeof(e->serial) - 1; i++)
        e->serial[i] = (char)toupper((unsigned char)serial[i]);
    e->serial[i] = '\0';
    e->not_before = not_before;
    e->not_after = not_after;
    memcpy(e->fp, fp, sizeof(e->fp));
    sfm_pki_hex(e->fp, sizeof(e->fp), e->fp_hex);
    sfm_certs_id_of(e->fp, e->id);
    e->chain_length = chain_length;
    e->preloaded = preloaded;
    e->created_ms = created_ms;
    return e;
}

sfm_cert_entry *sfm_cert_entry_ref(sfm_cert_entry *e)
{
    if (e)
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void sfm_cert_entry_unref(sfm_cert_entry *e)
{
    /* acq_rel: every use of the entry by other holders happens before the free. */
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(e->label);
    free(e->subject);
    free(e->issuer);
    free(e);
}

static struct shard *shard_ref(struct shard *sh)
{
    if (sh)
        atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
    return sh;
}

static void shard_unref(struct shard *sh)
{
    if (!sh || atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i <= sh->mask; i++)
        sfm_cert_entry_unref(sh->slots[i].e);
    free(sh);
}

/* The slot holding `key`, or NULL. The table is never full, so the probe ends. */
static const struct slot *shard_probe(const struct shard *sh, uint64_t key)
{
    for (size_t i = key & sh->mask;; i = (i + 1) & sh->mask) {
        const struct slot *sl = &sh->slots[i];
        if (!sl->e)
            return NULL;
        if (sl->key == key)
            return sl;
    }
}

/* An empty shard with room for `n` entries and one reference, or NULL. */
static struct shard *shard_alloc(size_t n)
{
    size_t slots = 2;
    while (slots < 2 * n) {
        if (slots > (SIZE_MAX - sizeof(struct shard)) / sizeof(struct slot) / 2)
            return NULL;
        slots *= 2;
    }
    struct shard *sh = calloc(1, sizeof(*sh) + slots * sizeof(struct slot));
    if (!sh)
        return NULL;
    atomic_init(&sh->refs, 1);
    sh->mask = slots - 1;
    return sh;
}

/* Puts `e` (a reference the shard takes) into a shard being built. */
static void shard_put(struct shard *sh, sfm_cert_entry *e)
{
    uint64_t key = fp_key(e->fp);
    size_t i = key & sh->mask;
    while (sh->slots[i].e)
        i = (i + 1) & sh->mask;
    sh->slots[i].key = key;
    sh->slots[i].e = e;
    sh->n++;
}

/*
 * A copy of `old` (may be NULL) plus `add` (may be NULL) minus the entry of
 * key `drop_key` when `drop` is set: every kept entry gets a reference.
 * Returns 0 with *out NULL when nothing is left, or -ENOMEM.
 */
static int shard_rebuild(const struct shard *old, sfm_cert_entry *add, int drop, uint64_t drop_key,
                         struct shard **out)
{
    size_t n = (old ? old->n : 0) + (add ? 1 : 0) - (drop ? 1 : 0);
    if (n == 0) {
        *out = NULL;
        return 0;
    }
    struct shard *sh = shard_alloc(n);
    if (!sh)
        return -ENOMEM;
    for (size_t i = 0; old && i <= old->mask; i++) {
        const struct slot *sl = &old->slots[i];
        if (sl->e && !(drop && sl->key == drop_key))
            shard_put(sh, sfm_cert_entry_ref(sl->e));
    }
    if (add)
        shard_put(sh, sfm_cert_entry_ref(add));
    *out = sh;
    return 0;
}

sfm_certs *sfm_certs_new(void)
{
    sfm_certs *s = calloc(1, sizeof(*s));
    if (s)
        atomic_init(&s->refs, 1);
    return s;
}

sfm_certs *sfm_certs_ref(sfm_certs *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void sfm_certs_unref(sfm_certs *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < N_SHARDS; i++)
        shard_unref(s->shards[i]);
    free(s);
}

/*
 * A new set sharing every shard of `base` but shard `b`, which becomes
 * `replacement` (the new set takes that reference).
 */
static sfm_certs *certs_replace(const sfm_certs *base, int b, struct shard *replacement, size_t count)
{
    sfm_certs *s = sfm_certs_new();
    if (!s)
        return NULL;
    for (int i = 0; i < N_SHARDS; i++)
        s->shards[i] = i == b ? replacement : shard_ref(base->shards[i]);
    s->count = count;
    return s;
}

int sfm_certs_build(sfm_cert_entry *const *entries, size_t n, sfm_certs **out)
{
    if ((n && !entries) || !out)
        return -EINVAL;
    size_t per[N_SHARDS] = {0};
    for (size_t i = 0; i < n; i++)
        per[entries[i]->fp[0]]++;
    sfm_certs *s = sfm_certs_new();
    if (!s)
        return -ENOMEM;
    for (int b = 0; b < N_SHARDS; b++) {
        if (per[b] && !(s->shards[b] = shard_alloc(per[b]))) {
            sfm_certs_unref(s);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct shard *sh = s->shards[entries[i]->fp[0]];
        if (shard_probe(sh, fp_key(entries[i]->fp)))
            continue; /* the first with this key stays, as sfm_certs_with would have it */
        shard_put(sh, sfm_cert_entry_ref(entries[i]));
        s->count++;
    }
    *out = s;
    return 0;
}

int sfm_certs_with(const sfm_certs *base, sfm_cert_entry *e, sfm_certs **out)
{
    int rc = 0;
    struct shard *sh = NULL;
    if (!base || !e || !out)
        return -EINVAL;
    int b = e->fp[0];
    const struct shard *old = base->shards[b];
    /*
     * The key is also the id, so two entries whose fingerprints share their
     * first 8 bytes (but differ later) would share an id: the second one is
     * refused as a duplicate too, and an id always names one entry.
     */
    if (old && shard_probe(old, fp_key(e->fp))) {
        rc = -EEXIST;
        goto out;
    }
    rc = shard_rebuild(old, e, 0, 0, &sh);
    if (rc < 0)
        goto out;
    sfm_certs *s = certs_replace(base, b, sh, base->count + 1);
    if (!s) {
        rc = -ENOMEM;
        goto out;
    }
    sh = NULL;
    *out = s;
out:
    shard_unref(sh);
    return rc;
}

int sfm_certs_without(const sfm_certs *base, const char *id, sfm_certs **out)
{
    int rc = 0;
    struct shard *sh = NULL;
    uint64_t key;
    if (!base || !out)
        return -EINVAL;
    if (id_key(id, &key) < 0)
        return -ENOENT;
    int b = (int)(key >> 56);
    const struct shard *old = base->shards[b];
    if (!old || !shard_probe(old, key)) {
        rc = -ENOENT;
        goto out;
    }
    rc = shard_rebuild(old, NULL, 1, key, &sh);
    if (rc < 0)
        goto out;
    sfm_certs *s = certs_replace(base, b, sh, base->count - 1);
    if (!s) {
        rc = -ENOMEM;
        goto out;
    }
    sh = NULL;
    *out = s;
out:
    shard_unref(sh);
    return rc;
}

const sfm_cert_entry *sfm_certs_find_fp(const sfm_certs *s, const unsigned char fp[32])
{
    if (!s || !fp)
        return NULL;
    const struct shard *sh = s->shards[fp[0]];
    if (!sh)
        return NULL;
    const struct slot *sl = shard_probe(sh, fp_key(fp));
    /* The key matched 8 bytes; the other 24 decide. */
    if (!sl || memcmp(sl->e->fp, fp, sizeof(sl->e->fp)) != 0)
        return NULL;
    return sl->e;
}

const sfm_cert_entry *sfm_certs_find_fp_hex(const sfm_certs *s, const char *hex)
{
    unsigned char fp[32];
    if (!hex || strnlen(hex, 65) != 64)
        return NULL;
    for (int i = 0; i < 32; i++) {
        int hi = sfm_hex_digit((unsigned char)hex[2 * i]);
        int lo = sfm_hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return NULL;
        fp[i] = (unsigned char)((hi << 4) | lo);
    }
    return sfm_certs_find_fp(s, fp);
}

const sfm_cert_entry *sfm_certs_find_id(const sfm_certs *s, const char *id)
{
    uint64_t key;
    if (!s || id_key(id, &key) < 0)
        return NULL;
    const struct shard *sh = s->shards[key >> 56];
    if (!sh)
        return NULL;
    /* Keys are unique in a set (sfm_certs_with) and an id's first 15
     * characters encode exactly its key, so a key match is an id match. */
    const struct slot *sl = shard_probe(sh, key);
    return sl ? sl->e : NULL;
}

size_t sfm_certs_count(const sfm_certs *s)
{
    return s ? s->count : 0;
}

static int by_created_then_id(const void *a, const void *b)
{
    const sfm_cert_entry *x = *(const sfm_cert_entry *const *)a;
    const sfm_cert_entry *y = *(const sfm_cert_entry *const *)b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

int sfm_certs_list(const sfm_certs *s, const sfm_cert_entry ***out, size_t *n)
{
    if (!s || !out || !n)
        return -EINVAL;
    /* One element at least: malloc(0) may answer NULL, which reads as -ENOMEM. */
    const sfm_cert_entry **v = calloc(s->count ? s->count : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    for (int b = 0; b < N_SHARDS; b++) {
        const struct shard *sh = s->shards[b];
        for (size_t i = 0; sh && i <= sh->mask; i++) {
            if (sh->slots[i].e)
                v[k++] = sh->slots[i].e;
        }
    }
    qsort(v, k, sizeof(*v), by_created_then_id);
    *out = v;
    *n = k;
    return 0;
}
