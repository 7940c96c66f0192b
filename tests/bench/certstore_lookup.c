/*
 * bench_certstore: what a certificate lookup costs as the set grows, and
 * what a change costs in a large set. sfm_certs_find_fp runs on every mTLS
 * request (SPEC section 4), so its cost must not depend on the number of
 * uploaded certificates.
 *
 * For sets of 1, 1,000 and 100,000 entries: the median, over ROUNDS rounds of
 * LOOKUPS lookups each, of the nanoseconds per sfm_certs_find_fp, for a mix
 * of half hits and half misses in random order, then for hits only and misses
 * only, cycling through N_QUERIES fingerprints: in a large set these reach
 * memory outside the CPU's caches, as a busy server's would. "hot" is the mix
 * again over only N_HOT fingerprints, which stay in cache: the work a lookup
 * does, without the memory latency. Then the median time of one
 * sfm_certs_with (and sfm_certs_without) on a set of 100,000. Not a ctest
 * test: timings depend on the machine.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certstore.h"

#define ROUNDS    7
#define LOOKUPS   (4 * 1000 * 1000)
#define N_QUERIES (1u << 18) /* distinct queries per kind, cycled through */
#define N_HOT     (1u << 10) /* distinct queries of the hot mix */
#define N_CHANGES 2000       /* changes per round of the with/without timing */

/* Queries that are never in a set: their index space starts here. */
#define MISS_BASE (UINT64_C(1) << 40)

enum query_kind { Q_MIXED, Q_HITS, Q_MISSES, Q_HOT, Q_KINDS };

static const char *const kind_names[Q_KINDS] = {"mixed", "hits", "misses", "hot"};

/* splitmix64: fingerprints as uniform as SHA-256 ones, reproducibly. */
static uint64_t mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fp_of(uint64_t i, unsigned char fp[32])
{
    uint64_t x = i * 4;
    for (int w = 0; w < 4; w++) {
        uint64_t v = mix(&x);
        for (int b = 0; b < 8; b++)
            fp[w * 8 + b] = (unsigned char)(v >> (8 * b));
    }
}

static sfm_cert_entry *entry_of(uint64_t i)
{
    unsigned char fp[32];
    fp_of(i, fp);
    return sfm_cert_entry_new("bench", "CN=bench", "CN=bench CA", "01", 0, 0, fp, 1, 0, (int64_t)i);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), by_value);
    return v[n / 2];
}

/* A set of entries 0..n-1, built one change at a time as the server does; NULL on failure. */
static sfm_certs *build(uint64_t n)
{
    sfm_certs *s = sfm_certs_new();
    for (uint64_t i = 0; s && i < n; i++) {
        sfm_cert_entry *e = entry_of(i);
        sfm_certs *next = NULL;
        int rc = e ? sfm_certs_with(s, e, &next) : -ENOMEM;
        sfm_cert_entry_unref(e);
        sfm_certs_unref(s);
        s = rc == 0 ? next : NULL;
    }
    return s;
}

/* The number of distinct queries of a kind (a power of two). */
static uint32_t n_queries(enum query_kind kind)
{
    return kind == Q_HOT ? N_HOT : N_QUERIES;
}

/* Fingerprints to look up in a set of n: hits, misses, or half of each, shuffled. */
static void make_queries(unsigned char (*q)[32], uint64_t n, enum query_kind kind, uint64_t seed)
{
    uint64_t x = seed;
    uint32_t count = n_queries(kind);
    for (uint32_t i = 0; i < count; i++) {
        int hit = kind == Q_HITS || ((kind == Q_MIXED || kind == Q_HOT) && (i & 1));
        fp_of(hit ? mix(&x) % n : MISS_BASE + i, q[i]);
    }
    for (uint32_t i = count - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(mix(&x) % (i + 1));
        unsigned char t[32];
        memcpy(t, q[i], 32);
        memcpy(q[i], q[j], 32);
        memcpy(q[j], t, 32);
    }
}

/* Median ns per lookup; *found counts hits so the lookups cannot be optimised away. */
static double time_lookups(const sfm_certs *s, unsigned char (*q)[32], uint32_t count, long *found)
{
    double per[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        long hits = 0;
        double t0 = now_ns();
        for (uint32_t i = 0; i < LOOKUPS; i++)
            hits += sfm_certs_find_fp(s, q[i & (count - 1)]) != NULL;
        per[r] = (now_ns() - t0) / LOOKUPS;
        *found += hits;
    }
    return median(per, ROUNDS);
}

/*
 * Median ns of one sfm_certs_with (a new entry), and of one sfm_certs_without
 * (an entry of the set), on `s` of n entries. Each new set is freed at once,
 * outside the timing, as the server frees the set it replaces: keeping
 * thousands alive would time the allocator's page faults instead. 0, or a
 * negative errno when a change fails.
 */
static int time_changes(const sfm_certs *s, uint64_t n, double *with_ns, double *without_ns)
{
    double w[ROUNDS], wo[ROUNDS];
    sfm_cert_entry **add = calloc(N_CHANGES, sizeof(*add));
    char(*ids)[SFM_SFID_LEN + 1] = calloc(N_CHANGES, sizeof(*ids));
    int rc = add && ids ? 0 : -ENOMEM;
    for (int i = 0; rc == 0 && i < N_CHANGES; i++) {
        unsigned char fp[32];
        fp_of((uint64_t)i * (n / N_CHANGES), fp);
        sfm_certs_id_of(fp, ids[i]);
        add[i] = entry_of(MISS_BASE + (uint64_t)i);
        rc = add[i] ? 0 : -ENOMEM;
    }
    for (int r = 0; rc == 0 && r < ROUNDS; r++) {
        double with_total = 0, without_total = 0;
        for (int i = 0; rc == 0 && i < N_CHANGES; i++) {
            sfm_certs *next = NULL;
            double t0 = now_ns();
            rc = sfm_certs_with(s, add[i], &next);
            with_total += now_ns() - t0;
            sfm_certs_unref(next);
            if (rc < 0)
                break;
            next = NULL;
            t0 = now_ns();
            rc = sfm_certs_without(s, ids[i], &next);
            without_total += now_ns() - t0;
            sfm_certs_unref(next);
        }
        w[r] = with_total / N_CHANGES;
        wo[r] = without_total / N_CHANGES;
    }
    for (int i = 0; add && i < N_CHANGES; i++)
        sfm_cert_entry_unref(add[i]);
    free(add);
    free(ids);
    if (rc < 0)
        return rc;
    *with_ns = median(w, ROUNDS);
    *without_ns = median(wo, ROUNDS);
    return 0;
}

int main(void)
{
    static const uint64_t sizes[] = {1, 1000, 100000};
    enum { N_SIZES = sizeof(sizes) / sizeof(sizes[0]) };
    double ns[N_SIZES][Q_KINDS];
    long found = 0;
    int status = 1;
    unsigned char(*q)[32] = malloc((size_t)N_QUERIES * 32);
    if (!q)
        goto out;

    printf("sfm_certs_find_fp: median ns per lookup over %d rounds of %d lookups (%u distinct queries)\n",
           ROUNDS, LOOKUPS, N_QUERIES);
    printf("%10s %10s %10s %10s %10s\n", "entries", kind_names[Q_MIXED], kind_names[Q_HITS],
           kind_names[Q_MISSES], kind_names[Q_HOT]);
    for (int k = 0; k < N_SIZES; k++) {
        sfm_certs *s = build(sizes[k]);
        if (!s || sfm_certs_count(s) != sizes[k]) {
            fprintf(stderr, "bench_certstore: could not build a set of %llu\n", (unsigned long long)sizes[k]);
            sfm_certs_unref(s);
            goto out;
        }
        for (int kind = 0; kind < Q_KINDS; kind++) {
            make_queries(q, sizes[k], (enum query_kind)kind, 42 + (uint64_t)k);
            ns[k][kind] = time_lookups(s, q, n_queries((enum query_kind)kind), &found);
        }
        printf("%10llu %10.1f %10.1f %10.1f %10.1f\n", (unsigned long long)sizes[k], ns[k][Q_MIXED],
               ns[k][Q_HITS], ns[k][Q_MISSES], ns[k][Q_HOT]);
        if (sizes[k] == 100000) {
            double with_ns = 0, without_ns = 0;
            if (time_changes(s, sizes[k], &with_ns, &without_ns) < 0) {
                fprintf(stderr, "bench_certstore: a change failed\n");
                sfm_certs_unref(s);
                goto out;
            }
            printf("sfm_certs_with on %llu entries: %.0f ns (median of %d rounds of %d; freeing not timed)\n",
                   (unsigned long long)sizes[k], with_ns, ROUNDS, N_CHANGES);
            printf("sfm_certs_without on %llu entries: %.0f ns\n", (unsigned long long)sizes[k], without_ns);
        }
        sfm_certs_unref(s);
    }
    printf("ratio lookup(100000)/lookup(1): %.2f mixed, %.2f hits, %.2f misses, %.2f hot (%ld hits seen)\n",
           ns[N_SIZES - 1][Q_MIXED] / ns[0][Q_MIXED], ns[N_SIZES - 1][Q_HITS] / ns[0][Q_HITS],
           ns[N_SIZES - 1][Q_MISSES] / ns[0][Q_MISSES], ns[N_SIZES - 1][Q_HOT] / ns[0][Q_HOT], found);
    status = 0;
out:
    free(q);
    return status;
}
