/*
 * bench_org: how long the fixture loader takes, for the bundled org and for
 * a generated org of 10,000 users (validation, ids and the username index
 * included). Prints medians of several loads.
 *
 *   bench_org [DEFAULT_FIXTURE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "org.h"

#define ROUNDS 9

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A fixture with `n` users over three profiles and two permission sets. */
static int write_big(const char *path, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(
        "{\"organization\": {\"id\": \"00D000000000001EAA\", \"name\": \"Big\", \"apiVersions\": "
        "[\"64.0\"]},\n"
        " \"profiles\": [{\"name\": \"Admin\", \"permissions\": [\"ApiEnabled\", \"ViewSetup\"]},\n"
        "   {\"name\": \"Integration\", \"permissions\": [\"ApiEnabled\", \"ApiUserOnly\"]},\n"
        "   {\"name\": \"Standard\", \"permissions\": [\"ApiEnabled\"]}],\n"
        " \"permissionSets\": [{\"name\": \"Enforce\", \"permissions\": [\"EnforceMutualAuthentication\"]},\n"
        "   {\"name\": \"Extra\", \"permissions\": [\"Custom1\", \"Custom2\"]}],\n"
        " \"users\": [\n",
        f);
    static const char *const profiles[] = {"Admin", "Integration", "Standard"};
    for (int i = 0; i < n; i++)
        fprintf(f,
                "  {\"username\": \"user%d@big.test\", \"password\": \"Pw-%d\", \"profile\": \"%s\"%s}%s\n",
                i, i, profiles[i % 3], i % 3 == 1 ? ", \"permissionSets\": [\"Enforce\", \"Extra\"]" : "",
                i + 1 < n ? "," : "");
    fputs(" ]}\n", f);
    return fclose(f);
}

/* Prints the load times of `path`; returns 0, or -1 when it does not load. */
static int bench(const char *label, const char *path)
{
    double t[ROUNDS];
    static char err[65536];
    size_t users = 0;
    for (int r = 0; r < ROUNDS; r++) {
        sfm_org *org = NULL;
        double t0 = now_ms();
        if (sfm_org_load(&org, path, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s: %s\n", path, err);
            return -1;
        }
        t[r] = now_ms() - t0;
        users = org->n_users;
        sfm_org_unref(org);
    }
    qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
    printf("%-22s %6zu users   median %7.2f ms   min %7.2f   max %7.2f   (%d loads)\n", label, users,
           t[ROUNDS / 2], t[0], t[ROUNDS - 1], ROUNDS);
    return 0;
}

int main(int argc, char **argv)
{
    const char *def = argc > 1 ? argv[1] : "fixtures/default-org.json";
    char big[] = "/tmp/sfmtls-bench-org-XXXXXX";
    int fd = mkstemp(big);
    if (fd < 0) {
        perror("generated fixture");
        return 1;
    }
    close(fd); /* write_big opens it by name */
    int rc = write_big(big, 10000) == 0 ? 0 : 1;
    if (rc != 0)
        perror("generated fixture");
    if (rc == 0 && (bench("default org", def) < 0 || bench("generated org", big) < 0))
        rc = 1;
    remove(big);
    return rc;
}
