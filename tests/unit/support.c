/* Helpers shared by the unit tests (support.h). */
#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int t_tmpdb_setup(void **state)
{
    t_tmpdb *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    snprintf(t->dir, sizeof(t->dir), "/tmp/sfmtls-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/state.db", t->dir);
    *state = t;
    return 0;
}

int t_tmpdb_teardown(void **state)
{
    t_tmpdb *t = *state;
    int rc = t_rmtree(t->dir);
    free(t);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int t_rmtree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

sfm_store *t_store_open(const char *path)
{
    char err[SFM_STORE_ERR_LEN] = "";
    sfm_store *st = NULL;
    if (sfm_store_open(&st, path, err) != 0)
        fail_msg("sfm_store_open %s: %s", path ? path : "(in memory)", err);
    assert_non_null(st);
    return st;
}
