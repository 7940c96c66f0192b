#include "sessions.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#define N_SHARDS       64
#define N_RNGS         8
#define SHARD_MAX      2048 /* tokens per shard: 131,072 in all (about 120 MB) */
#define CODE_LIFE_MS   (15 * 60 * 1000)
#define RANDOM_CHARS   86 /* 86 x 6 bits: 516 bits of randomness */
#define RANDOM_BYTES   65
#define TOKEN_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"

typedef struct entry {
    struct entry *next;
    enum sfm_token_kind kind;
    int64_t last_ms; /* issue or last use */
    char token[SFM_TOKEN_MAX];
    char parent[SFM_TOKEN_MAX]; /* the refresh token an access token came from, or "" */
    sfm_session info;
} entry;

typedef struct shard {
    pthread_mutex_t lock;
    entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t n;
} shard;

struct sfm_sessions {
    char org15[16];
    int64_t timeout_ms;
    shard shards[N_SHARDS];
    struct {
        pthread_mutex_t lock;
        WC_RNG rng;
    } rngs[N_RNGS];
    atomic_uint next_rng;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static shard *shard_of(sfm_sessions *s, uint64_t h)
{
    return &s->shards[h % N_SHARDS];
}

static int expired(const sfm_sessions *s, const entry *e, int64_t now_ms)
{
    switch (e->kind) {
    case SFM_TOKEN_ACCESS: return now_ms - e->last_ms >= s->timeout_ms;
    case SFM_TOKEN_CODE: return now_ms - e->last_ms >= CODE_LIFE_MS;
    case SFM_TOKEN_REFRESH: break;
    }
    return 0;
}

int sfm_sessions_new(sfm_sessions **out, const char *org_id, int timeout_s)
{
    sfm_sessions *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    snprintf(s->org15, sizeof(s->org15), "%.15s", org_id);
    s->timeout_ms = (int64_t)timeout_s * 1000;
    size_t shards_ok = 0, rngs_ok = 0;
    for (; shards_ok < N_SHARDS; shards_ok++) {
        shard *sh = &s->shards[shards_ok];
        sh->n_buckets = 64;
        sh->buckets = calloc(sh->n_buckets, sizeof(*sh->buckets));
        if (!sh->buckets)
            goto fail;
        pthread_mutex_init(&sh->lock, NULL);
    }
    for (; rngs_ok < N_RNGS; rngs_ok++) {
        if (wc_InitRng(&s->rngs[rngs_ok].rng) != 0)
            goto fail;
        pthread_mutex_init(&s->rngs[rngs_ok].lock, NULL);
    }
    *out = s;
    return 0;
fail:
    for (size_t i = 0; i < shards_ok; i++) {
        free(s->shards[i].buckets);
        pthread_mutex_destroy(&s->shards[i].lock);
    }
    for (size_t i = 0; i < rngs_ok; i++) {
        wc_FreeRng(&s->rngs[i].rng);
        pthread_mutex_destroy(&s->rngs[i].lock);
    }
    free(s);
    return -ENOMEM;
}

static void shard_empty(shard *sh)
{
    for (size_t b = 0; b < sh->n_buckets; b++) {
        for (entry *e = sh->buckets[b], *next; e; e = next) {
            next = e->next;
            free(e);
        }
        sh->buckets[b] = NULL;
    }
    sh->n = 0;
}

void sfm_sessions_free(sfm_sessions *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < N_SHARDS; i++) {
        shard_empty(&s->shards[i]);
        free(s->shards[i].buckets);
        pthread_mutex_destroy(&s->shards[i].lock);
    }
    for (size_t i = 0; i < N_RNGS; i++) {
        wc_FreeRng(&s->rngs[i].rng);
        pthread_mutex_destroy(&s->rngs[i].lock);
    }
    free(s);
}

/* "<org15>!" and 86 characters of the 64-letter alphabet, from wolfCrypt's DRBG. */
static int make_token(sfm_sessions *s, char token[SFM_TOKEN_MAX])
{
    unsigned char r[RANDOM_BYTES];
    unsigned i = atomic_fetch_add_explicit(&s->next_rng, 1, memory_order_relaxed) % N_RNGS;
    pthread_mutex_lock(&s->rngs[i].lock);
    int rc = wc_RNG_GenerateBlock(&s->rngs[i].rng, r, sizeof(r));
    pthread_mutex_unlock(&s->rngs[i].lock);
    if (rc != 0)
        return -EIO;
    size_t n = strlen(s->org15);
    memcpy(token, s->org15, n);
    token[n++] = '!';
    /* Six bits at a time from the random bytes. */
    uint32_t acc = 0;
    int bits = 0;
    size_t in = 0;
    for (int c = 0; c < RANDOM_CHARS; c++) {
        if (bits < 6) {
            acc = (acc << 8) | r[in++];
            bits += 8;
        }
        token[n++] = TOKEN_ALPHABET[(acc >> (bits - 6)) & 63];
        bits -= 6;
    }
    token[n] = '\0';
    return 0;
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Removes the entries of `sh` that are expired or, when `cutoff` >= 0, last used at or before it. */
static void shard_drop(sfm_sessions *s, shard *sh, int64_t now_ms, int64_t cutoff)
{
    for (size_t b = 0; b < sh->n_buckets; b++) {
        for (entry **link = &sh->buckets[b]; *link;) {
            entry *e = *link;
            if (expired(s, e, now_ms) || e->last_ms <= cutoff) {
                *link = e->next;
                free(e);
                sh->n--;
            } else {
                link = &e->next;
            }
        }
    }
}

/*
 * A full shard drops its expired tokens; when that frees nothing, the least
 * recently used eighth goes, so that the scan is paid once per SHARD_MAX / 8
 * new tokens rather than once per token.
 */
static void shard_make_room(sfm_sessions *s, shard *sh, int64_t now_ms)
{
    shard_drop(s, sh, now_ms, -1);
    if (sh->n < SHARD_MAX)
        return;
    int64_t *ms = malloc(sh->n * sizeof(*ms));
    size_t n = 0;
    for (size_t b = 0; ms && b < sh->n_buckets; b++)
        for (const entry *e = sh->buckets[b]; e; e = e->next)
            ms[n++] = e->last_ms;
    /* Out of memory: the whole shard goes, which still makes room. */
    int64_t cutoff = now_ms;
    if (ms) {
        qsort(ms, n, sizeof(*ms), cmp_ms);
        cutoff = ms[n / 8];
    }
    free(ms);
    shard_drop(s, sh, now_ms, cutoff);
}

static void shard_grow(shard *sh)
{
    size_t nb = sh->n_buckets * 2;
    entry **buckets = calloc(nb, sizeof(*buckets));
    if (!buckets)
        return; /* longer chains, still correct */
    for (size_t b = 0; b < sh->n_buckets; b++) {
        for (entry *e = sh->buckets[b], *next; e; e = next) {
            next = e->next;
            size_t nbkt = (hash(e->token) / N_SHARDS) & (nb - 1);
            e->next = buckets[nbkt];
            buckets[nbkt] = e;
        }
    }
    free(sh->buckets);
    sh->buckets = buckets;
    sh->n_buckets = nb;
}

int sfm_sessions_issue(sfm_sessions *s, enum sfm_token_kind kind, const sfm_session *info, const char *parent,
                       int64_t now_ms, char token[SFM_TOKEN_MAX])
{
    entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int rc = make_token(s, e->token);
    if (rc < 0) {
        free(e);
        return rc;
    }
    e->kind = kind;
    e->last_ms = now_ms;
    e->info = *info;
    e->info.issued_ms = now_ms;
    if (parent)
        snprintf(e->parent, sizeof(e->parent), "%s", parent);

    uint64_t h = hash(e->token);
    shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    if (sh->n >= SHARD_MAX)
        shard_make_room(s, sh, now_ms);
    if (sh->n >= sh->n_buckets)
        shard_grow(sh);
    size_t b = (h / N_SHARDS) & (sh->n_buckets - 1);
    e->next = sh->buckets[b];
    sh->buckets[b] = e;
    sh->n++;
    pthread_mutex_unlock(&sh->lock);
    memcpy(token, e->token, SFM_TOKEN_MAX);
    return 0;
}

/* The link that points at `token`'s entry, or NULL. Called with the shard locked. */
static entry **find(shard *sh, uint64_t h, const char *token)
{
    for (entry **link = &sh->buckets[(h / N_SHARDS) & (sh->n_buckets - 1)]; *link; link = &(*link)->next) {
        if (strcmp((*link)->token, token) == 0)
            return link;
    }
    return NULL;
}

int sfm_sessions_use(sfm_sessions *s, enum sfm_token_kind kind, const char *token, int64_t now_ms,
                     sfm_session *out)
{
    if (!token || strnlen(token, SFM_TOKEN_MAX) == SFM_TOKEN_MAX)
        return -ENOENT;
    uint64_t h = hash(token);
    shard *sh = shard_of(s, h);
    int rc = -ENOENT;
    pthread_mutex_lock(&sh->lock);
    entry **link = find(sh, h, token);
    if (link) {
        entry *e = *link;
        if (expired(s, e, now_ms)) {
            *link = e->next;
            free(e);
            sh->n--;
        } else if (e->kind == kind) {
            *out = e->info;
            rc = 0;
            if (kind == SFM_TOKEN_CODE) {
                /* A code is good once. */
                *link = e->next;
                free(e);
                sh->n--;
            } else {
                e->last_ms = now_ms;
            }
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

/* Removes every entry `match` accepts, shard by shard. */
static void remove_where(sfm_sessions *s, int (*match)(const entry *, const void *), const void *arg)
{
    for (size_t i = 0; i < N_SHARDS; i++) {
        shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        for (size_t b = 0; b < sh->n_buckets; b++) {
            for (entry **link = &sh->buckets[b]; *link;) {
                entry *e = *link;
                if (match(e, arg)) {
                    *link = e->next;
                    free(e);
                    sh->n--;
                } else {
                    link = &e->next;
                }
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
}

static int has_parent(const entry *e, const void *token)
{
    return strcmp(e->parent, token) == 0;
}

static int has_user(const entry *e, const void *user_id)
{
    return strcmp(e->info.user_id, user_id) == 0;
}

int sfm_sessions_revoke(sfm_sessions *s, const char *token)
{
    if (!token || !*token || strnlen(token, SFM_TOKEN_MAX) == SFM_TOKEN_MAX)
        return -ENOENT;
    uint64_t h = hash(token);
    shard *sh = shard_of(s, h);
    enum sfm_token_kind kind = SFM_TOKEN_ACCESS;
    pthread_mutex_lock(&sh->lock);
    entry **link = find(sh, h, token);
    if (link) {
        entry *e = *link;
        kind = e->kind;
        *link = e->next;
        free(e);
        sh->n--;
    }
    pthread_mutex_unlock(&sh->lock);
    if (!link)
        return -ENOENT;
    if (kind == SFM_TOKEN_REFRESH)
        remove_where(s, has_parent, token);
    return 0;
}

void sfm_sessions_revoke_user(sfm_sessions *s, const char *user_id)
{
    remove_where(s, has_user, user_id);
}

size_t sfm_sessions_count(sfm_sessions *s)
{
    size_t n = 0;
    for (size_t i = 0; i < N_SHARDS; i++) {
        pthread_mutex_lock(&s->shards[i].lock);
        n += s->shards[i].n;
        pthread_mutex_unlock(&s->shards[i].lock);
    }
    return n;
}

void sfm_sessions_clear(sfm_sessions *s)
{
    for (size_t i = 0; i < N_SHARDS; i++) {
        pthread_mutex_lock(&s->shards[i].lock);
        shard_empty(&s->shards[i]);
        pthread_mutex_unlock(&s->shards[i].lock);
    }
}
