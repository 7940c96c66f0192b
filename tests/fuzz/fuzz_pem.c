/*
 * fuzz_pem: PEM bundles as an upload or a --trust file would bring them
 * (ca/pki.c): sfm_pki_pem_certs, the facts of every certificate found, and
 * the whole upload check with a trust set (a fresh CA, and the seeds' root).
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-28T00:00:00Z, inside the validity of the seeds: a fixed clock
 * keeps runs repeatable. */
#define CHECK_NOW ((time_t)1795824000)

static sfm_pki_trust *trust;

static void trust_free(void)
{
    sfm_pki_trust_free(trust);
    trust = NULL;
}

static void trust_new(void)
{
    char dir[SFM_FUZZ_PATH_MAX], err[SFM_PKI_ERR_LEN] = "";
    size_t len;
    sfm_fuzz_ca_new(dir);
    char *root = sfm_fuzz_read(dir, "ca.pem", &len);
    sfm_fuzz_ca_remove(dir);
    if (sfm_pki_trust_new(&trust) < 0)
        sfm_fuzz_die("sfm_pki_trust_new", NULL);
    if (sfm_pki_trust_add_pem(trust, root, len, NULL, err) < 0 ||
        sfm_pki_trust_add_pem(trust, sfm_fuzz_seed_root_pem, strlen(sfm_fuzz_seed_root_pem), NULL, err) < 0 ||
        sfm_pki_trust_count(trust) != 2)
        sfm_fuzz_die("sfm_pki_trust_add_pem", err);
    free(root);
    atexit(trust_free);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!trust)
        trust_new();
    const char *pem = (const char *)data;
    sfm_der certs[SFM_PKI_MAX_CHAIN];
    size_t n = 0;
    int has_key = 0;
    char err[SFM_PKI_ERR_LEN];
    if (sfm_pki_pem_certs(pem, size, certs, SFM_PKI_MAX_CHAIN, &n, &has_key, err) == 0) {
        if (n > SFM_PKI_MAX_CHAIN)
            abort();
        for (size_t i = 0; i < n; i++) {
            sfm_pki_facts facts;
            memset(&facts, 0x5a, sizeof(facts)); /* unterminated: a missing NUL shows up */
            if (sfm_pki_facts_of(certs[i].der, certs[i].len, &facts) == 0 &&
                (!memchr(facts.subject, 0, sizeof(facts.subject)) ||
                 !memchr(facts.issuer, 0, sizeof(facts.issuer)) ||
                 !memchr(facts.sha256, 0, sizeof(facts.sha256)) || strlen(facts.sha256) != 64))
                abort();
        }
        sfm_pki_ders_free(certs, n);
    }

    unsigned problems = 0;
    char detail[2048];
    if (sfm_pki_check_pem(trust, pem, size, CHECK_NOW, &problems, detail, sizeof(detail)) == 0 &&
        problems != 0 && detail[0] == '\0')
        abort(); /* every problem is explained */
    return 0;
}
