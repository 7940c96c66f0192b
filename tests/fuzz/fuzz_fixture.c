/*
 * fuzz_fixture: sfm_org_load (server/org.c) on any file: jansson's parser,
 * then the checks of every organization field and API version, and the error
 * report. The input goes to a memfd so that the loader opens a real path.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "org.h"

static int memfd = -1;

static void memfd_close(void)
{
    close(memfd);
    memfd = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memfd < 0) {
        memfd = memfd_create("sfmtls-fixture", MFD_CLOEXEC);
        if (memfd < 0) {
            perror("memfd_create");
            abort();
        }
        atexit(memfd_close);
    }
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) {
        perror("memfd write");
        abort();
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);

    static char err[16384]; /* the size main.c gives it */
    sfm_org *org = NULL;
    int rc = sfm_org_load(&org, path, err, sizeof(err));
    if (rc == 0) {
        /* A loaded org is complete: what the rest of the server relies on. */
        if (!org || !org->id || !org->name || !org->my_domain || org->n_versions == 0)
            abort();
        for (size_t i = 0; i < org->n_versions; i++) {
            if (!memchr(org->versions[i].version, 0, sizeof(org->versions[i].version)) ||
                !memchr(org->versions[i].label, 0, sizeof(org->versions[i].label)))
                abort();
        }
        sfm_org_unref(org);
    } else if (err[0] == '\0' || !memchr(err, 0, sizeof(err))) {
        abort(); /* a failure always says why */
    }
    return 0;
}
