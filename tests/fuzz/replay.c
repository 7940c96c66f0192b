/*
 * replay: main() for a fuzz target in builds without libFuzzer (gcc, and every
 * ctest run). Runs each seed of the corpus, then a fixed series of mutations
 * of them made by a seeded xorshift generator, so a run is the same on every
 * machine (up to the time budget). ASan/UBSan in the sanitize build turn a bug
 * into a failed test; the driver itself only ever exits 0 or 2 (usage, I/O).
 *
 *   fuzz_<target> [-n MUTATIONS] [-t SECONDS] [-s SAVE_FILE] DIR|FILE...
 *
 * -s writes every input to SAVE_FILE before running it: after a crash the
 * file holds the input that crashed, ready for libFuzzer or a debugger.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seeds are a few KiB; anything bigger than this is not a seed. */
#define REPLAY_MAX_INPUT         (256 * 1024)
#define REPLAY_MAX_SEEDS         4096
#define REPLAY_DEFAULT_MUTATIONS 3000
#define REPLAY_DEFAULT_SECONDS   5.0
/* Mutated inputs never grow past this (libFuzzer's default -max_len is 4096). */
#define REPLAY_MAX_MUTANT 16384
/* A fixed seed: every run tries the same inputs. */
#define REPLAY_PRNG_SEED 0x5f3759df9e3779b9ull

struct seed {
    uint8_t *data;
    size_t len;
};

struct seeds {
    struct seed v[REPLAY_MAX_SEEDS];
    size_t n;
};

static uint64_t prng_state = REPLAY_PRNG_SEED;

/* xorshift64 (Marsaglia 2003). */
static uint64_t prng_next(void)
{
    uint64_t x = prng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    prng_state = x;
    return x;
}

/* A number in [0, n); n > 0. */
static size_t prng_below(size_t n)
{
    return (size_t)(prng_next() % n);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int add_file(struct seeds *s, const char *path)
{
    int rc = -1;
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    if (!f || !buf) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        goto out;
    }
    size_t len = fread(buf, 1, REPLAY_MAX_INPUT, f);
    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "replay: %s: unreadable or over %d bytes\n", path, REPLAY_MAX_INPUT);
        goto out;
    }
    if (s->n == REPLAY_MAX_SEEDS) {
        fprintf(stderr, "replay: more than %d seeds\n", REPLAY_MAX_SEEDS);
        goto out;
    }
    /* Exactly `len` bytes, so ASan sees any read past the end of the input. */
    s->v[s->n].data = malloc(len ? len : 1);
    if (!s->v[s->n].data)
        goto out;
    memcpy(s->v[s->n].data, buf, len);
    s->v[s->n].len = len;
    s->n++;
    rc = 0;
out:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int add_path(struct seeds *s, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(s, path);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort); /* sorted: the same order everywhere */
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        if (rc == 0 && names[i]->d_name[0] != '.') {
            snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
            rc = add_file(s, full);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static void save_input(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    (void)!fwrite(data, 1, len, f);
    fclose(f);
}

/*
 * Applies one mutation to buf[0, *len) (capacity REPLAY_MAX_MUTANT):
 * the byte-level moves of libFuzzer's MutationDispatcher, minus the
 * dictionary ones.
 */
static void mutate(uint8_t *buf, size_t *len, const struct seeds *s)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x40};
    size_t n = *len;
    switch (prng_below(8)) {
    case 0: /* flip a bit */
        if (n)
            buf[prng_below(n)] ^= (uint8_t)(1u << prng_below(8));
        break;
    case 1: /* set a byte to a random or boundary value */
        if (n) {
            size_t at = prng_below(n);
            buf[at] = prng_below(2) ? (uint8_t)prng_next() : interesting[prng_below(sizeof(interesting))];
        }
        break;
    case 2: { /* insert 1-8 random bytes */
        size_t k = 1 + prng_below(8);
        if (n + k > REPLAY_MAX_MUTANT)
            break;
        size_t at = prng_below(n + 1);
        memmove(buf + at + k, buf + at, n - at);
        for (size_t i = 0; i < k; i++)
            buf[at + i] = (uint8_t)prng_next();
        *len = n + k;
        break;
    }
    case 3: { /* delete a range of up to 16 bytes */
        if (!n)
            break;
        size_t at = prng_below(n);
        size_t k = 1 + prng_below(n - at < 16 ? n - at : 16);
        memmove(buf + at, buf + at + k, n - at - k);
        *len = n - k;
        break;
    }
    case 4: { /* splice: our prefix, then another seed's suffix */
        const struct seed *o = &s->v[prng_below(s->n)];
        size_t keep = prng_below(n + 1);
        size_t from = prng_below(o->len + 1);
        size_t k = o->len - from;
        if (keep + k > REPLAY_MAX_MUTANT)
            k = REPLAY_MAX_MUTANT - keep;
        memcpy(buf + keep, o->data + from, k);
        *len = keep + k;
        break;
    }
    case 5: /* truncate */ *len = prng_below(n + 1); break;
    case 6: { /* copy a chunk over another place */
        if (n < 2)
            break;
        size_t from = prng_below(n), to = prng_below(n);
        size_t k = 1 + prng_below(n - (from > to ? from : to));
        memmove(buf + to, buf + from, k);
        break;
    }
    case 7: /* nudge a byte, often a length field */
        if (n) {
            size_t at = prng_below(n);
            buf[at] = (uint8_t)(buf[at] + (prng_below(2) ? 1 : -1) * (int)(1 + prng_below(4)));
        }
        break;
    }
}

int main(int argc, char **argv)
{
    long mutations = REPLAY_DEFAULT_MUTATIONS;
    double seconds = REPLAY_DEFAULT_SECONDS;
    const char *save = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:s:")) != -1) {
        switch (opt) {
        case 'n': mutations = strtol(optarg, NULL, 10); break;
        case 't': seconds = strtod(optarg, NULL); break;
        case 's': save = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-n MUTATIONS] [-t SECONDS] [-s SAVE_FILE] DIR|FILE...\n", argv[0]);
            return 2;
        }
    }
    static struct seeds seeds;
    int rc = 2;
    uint8_t *buf = malloc(REPLAY_MAX_MUTANT);
    if (!buf)
        goto out;
    for (int i = optind; i < argc; i++) {
        if (add_path(&seeds, argv[i]) < 0)
            goto out;
    }
    if (seeds.n == 0) {
        fprintf(stderr, "replay: no seeds given\n");
        goto out;
    }

    double start = now_seconds();
    for (size_t i = 0; i < seeds.n; i++) {
        if (save)
            save_input(save, seeds.v[i].data, seeds.v[i].len);
        LLVMFuzzerTestOneInput(seeds.v[i].data, seeds.v[i].len);
    }
    long done = 0;
    for (; done < mutations && now_seconds() - start < seconds; done++) {
        const struct seed *base = &seeds.v[prng_below(seeds.n)];
        size_t len = base->len < REPLAY_MAX_MUTANT ? base->len : REPLAY_MAX_MUTANT;
        memcpy(buf, base->data, len);
        size_t rounds = 1 + prng_below(4);
        for (size_t r = 0; r < rounds; r++)
            mutate(buf, &len, &seeds);
        /* Run from an exact-size copy, so ASan sees any read past the end. */
        uint8_t *input = malloc(len ? len : 1);
        if (!input)
            goto out;
        memcpy(input, buf, len);
        if (save)
            save_input(save, input, len);
        LLVMFuzzerTestOneInput(input, len);
        free(input);
    }
    printf("%s: %zu seeds and %ld mutations in %.1f s\n", argv[0], seeds.n, done, now_seconds() - start);
    rc = 0;
out:
    for (size_t i = 0; i < seeds.n; i++)
        free(seeds.v[i].data);
    free(buf);
    return rc;
}
