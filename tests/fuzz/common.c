/* Helpers shared by the fuzz targets (fuzz.h). Setup only: never on the per-input path. */
#include "fuzz.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The seeds' client certificates were issued by this root (README.md), so
 * that recorded chains verify and the fuzzer starts from the paths of a good
 * certificate. Valid until 2036. */
const char sfm_fuzz_seed_root_pem[] = "-----BEGIN CERTIFICATE-----\n"
                                      "MIIBzDCCAXKgAwIBAgIQZkvGRF72c/B0o3jLf0r6TzAKBggqhkjOPQQDAjA3MQ8w\n"
                                      "DQYDVQQKDAZzZm10bHMxJDAiBgNVBAMMG3NmbXRscyBEZXYgUm9vdCBDQSA3NzNB\n"
                                      "ODc5MjAeFw0yNjExMjcwODQwMTdaFw0zNjExMjQwODQ1MTdaMDcxDzANBgNVBAoM\n"
                                      "BnNmbXRsczEkMCIGA1UEAwwbc2ZtdGxzIERldiBSb290IENBIDc3M0E4NzkyMFkw\n"
                                      "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyU6FtDtoX5+7hct7RroC5wDEl52rYqNz\n"
                                      "BgF1hAeLyTUQ3o6IZwz+s0DWvMFLuQ2lC/BiCRfDlWGXxsmlFuK1JKNgMF4wDAYD\n"
                                      "VR0TBAUwAwEB/zAdBgNVHQ4EFgQUhQahvTPQn/Th9URTSlHLZL71Fq4wHwYDVR0j\n"
                                      "BBgwFoAUhQahvTPQn/Th9URTSlHLZL71Fq4wDgYDVR0PAQH/BAQDAgEGMAoGCCqG\n"
                                      "SM49BAMCA0gAMEUCIAHh0EjuPZA/GUreZYYuB/BHLWIMMFq329XOWTzIgkZ4AiEA\n"
                                      "m4gHbyeUXMJEy95mD8MGTLvdtINLLzRvQPYl5x2Jt3E=\n"
                                      "-----END CERTIFICATE-----\n";

void sfm_fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz setup: %s: %s\n", what, detail ? detail : "");
    abort();
}

void sfm_fuzz_ca_new(char dir[SFM_FUZZ_PATH_MAX])
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, SFM_FUZZ_PATH_MAX, "%s/sfmtls-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        sfm_fuzz_die("mkdtemp", dir);
    char err[SFM_PKI_ERR_LEN] = "";
    if (sfm_pki_ca_init(dir, SFM_PKI_KEY_EC_P256, err) < 0)
        sfm_fuzz_die("sfm_pki_ca_init", err);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void sfm_fuzz_ca_remove(const char *dir)
{
    (void)nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *sfm_fuzz_read(const char *dir, const char *name, size_t *len)
{
    char path[SFM_FUZZ_PATH_MAX * 2];
    char err[SFM_PKI_ERR_LEN] = "";
    char *buf = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (sfm_pki_read_file(path, 1024 * 1024, &buf, len, err) < 0)
        sfm_fuzz_die(path, err);
    return buf;
}
