/*
 * The crypto floor of a full ECDSA P-256 mTLS handshake, timed with the
 * wolfSSL build the server links: what the server cannot avoid doing for one
 * handshake whose client sends a leaf and its intermediate.
 *
 *   one ECDSA sign (the server's CertificateVerify)
 *   one key-share generation and one ECDH (the (EC)DHE exchange)
 *   one ECDSA verify per signature checked: the client's CertificateVerify,
 *   the leaf's signature and the intermediate's (CHAIN_SIGNATURES, below)
 *
 *   crypto_floor [--seconds S]
 *
 * Each operation runs for S seconds (default 1) in five rounds; the median
 * round gives its cost. Prints one JSON line with each cost in microseconds
 * and "floor_us", their sum for one handshake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#define ROUNDS 5
/* CertificateVerify, the leaf and the intermediate. */
#define CHAIN_SIGNATURES 3

enum op { OP_SIGN, OP_KEYGEN, OP_ECDH, OP_VERIFY, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"sign_us", "keygen_us", "ecdh_us", "verify_us"};

struct fixture {
    WC_RNG rng;
    ecc_key server, peer;
    byte hash[32];
    byte sig[ECC_MAX_SIG_SIZE];
    word32 sig_len;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One operation; 0 on success. */
static int run_op(struct fixture *f, enum op op)
{
    switch (op) {
    case OP_SIGN: {
        byte sig[ECC_MAX_SIG_SIZE];
        word32 len = sizeof(sig);
        return wc_ecc_sign_hash(f->hash, sizeof(f->hash), sig, &len, &f->rng, &f->server);
    }
    case OP_KEYGEN: {
        ecc_key k;
        if (wc_ecc_init(&k) != 0)
            return -1;
        int rc = wc_ecc_make_key_ex(&f->rng, 32, &k, ECC_SECP256R1);
        wc_ecc_free(&k);
        return rc;
    }
    case OP_ECDH: {
        byte secret[32];
        word32 len = sizeof(secret);
        return wc_ecc_shared_secret(&f->server, &f->peer, secret, &len);
    }
    case OP_VERIFY: {
        int ok = 0;
        int rc = wc_ecc_verify_hash(f->sig, f->sig_len, f->hash, sizeof(f->hash), &ok, &f->server);
        return rc == 0 && ok == 1 ? 0 : -1;
    }
    case OP_COUNT: break;
    }
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over ROUNDS of the microseconds one operation takes; < 0 on failure. */
static double measure(struct fixture *f, enum op op, double seconds)
{
    double per[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        long n = 0;
        double start = now_s(), end = start + seconds / ROUNDS, t;
        do {
            for (int i = 0; i < 16; i++, n++)
                if (run_op(f, op) != 0)
                    return -1;
            t = now_s();
        } while (t < end);
        per[r] = (t - start) / (double)n * 1e6;
    }
    qsort(per, ROUNDS, sizeof(per[0]), cmp_double);
    return per[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: crypto_floor [--seconds S]\n");
            return 2;
        }
    }
    if (seconds <= 0)
        seconds = 1.0;

    static struct fixture f;
    memset(f.hash, 0x5a, sizeof(f.hash));
    f.sig_len = sizeof(f.sig);
    if (wc_InitRng(&f.rng) != 0 || wc_ecc_init(&f.server) != 0 || wc_ecc_init(&f.peer) != 0 ||
        wc_ecc_make_key_ex(&f.rng, 32, &f.server, ECC_SECP256R1) != 0 ||
        wc_ecc_make_key_ex(&f.rng, 32, &f.peer, ECC_SECP256R1) != 0 ||
        wc_ecc_sign_hash(f.hash, sizeof(f.hash), f.sig, &f.sig_len, &f.rng, &f.server) != 0) {
        fprintf(stderr, "crypto_floor: cannot set up the keys\n");
        return 1;
    }
#ifdef ECC_TIMING_RESISTANT
    /* The shared secret needs the RNG for blinding, as in the server. */
    wc_ecc_set_rng(&f.server, &f.rng);
#endif

    double us[OP_COUNT];
    for (int op = 0; op < OP_COUNT; op++) {
        us[op] = measure(&f, (enum op)op, seconds);
        if (us[op] < 0) {
            fprintf(stderr, "crypto_floor: %s failed\n", op_names[op]);
            return 1;
        }
    }
    double floor_us = us[OP_SIGN] + us[OP_KEYGEN] + us[OP_ECDH] + CHAIN_SIGNATURES * us[OP_VERIFY];
    printf("{");
    for (int op = 0; op < OP_COUNT; op++)
        printf("\"%s\":%.2f,", op_names[op], us[op]);
    printf("\"verifies\":%d,\"floor_us\":%.2f}\n", CHAIN_SIGNATURES, floor_us);
    wc_ecc_free(&f.server);
    wc_ecc_free(&f.peer);
    wc_FreeRng(&f.rng);
    return 0;
}
