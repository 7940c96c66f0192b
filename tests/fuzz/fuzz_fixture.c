/*
 * fuzz_fixture: sfm_org_load (server/org.c) on any file: jansson's parser,
 * then the checks of every section of the fixture, the line scanner that
 * decorates the error report, and the report itself. The input goes to a memfd
 * so that the loader opens a real path (relative file names in it resolve in
 * /proc/self/fd, where the loader must refuse anything but a regular file).
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
    /* No NUL and no text left from the previous input: a failure must write its own message. */
    memset(err, 'x', sizeof(err));
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
        if (!sfm_sfid_valid(org->id, "00D") || strlen(org->id) != SFM_SFID_LEN || !org->records)
            abort();
        for (size_t i = 0; i < org->n_profiles; i++) {
            if (!org->profiles[i].name || !sfm_sfid_valid(org->profiles[i].id, "00e") ||
                sfm_org_find_profile(org, org->profiles[i].name) != (long)i)
                abort();
        }
        for (size_t i = 0; i < org->n_permsets; i++) {
            if (!org->permsets[i].label || !sfm_sfid_valid(org->permsets[i].id, "0PS"))
                abort();
        }
        for (size_t i = 0; i < org->n_users; i++) {
            const sfm_fx_user *u = &org->users[i];
            if (!u->username || !u->password || !sfm_sfid_valid(u->id, "005") ||
                u->profile >= org->n_profiles || sfm_org_find_user(org, u->username) != (long)i)
                abort();
            for (size_t k = 0; k < u->n_permsets; k++) {
                if (u->permsets[k] >= org->n_permsets)
                    abort();
            }
        }
        for (size_t i = 0; i < org->n_apps; i++) {
            if (org->apps[i].run_as && sfm_org_find_user(org, org->apps[i].run_as) < 0)
                abort();
        }
        for (size_t i = 0; i < org->n_certs; i++) {
            if (!org->certs[i].label || !org->certs[i].file == !org->certs[i].issue_cn)
                abort();
        }
        sfm_org_unref(sfm_org_ref(org));
        sfm_org_unref(org);
    } else if (err[0] == '\0' || !memchr(err, 0, sizeof(err))) {
        abort(); /* a failure always says why */
    }
    return 0;
}
