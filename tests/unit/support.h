/*
 * support: helpers that several unit tests share, compiled into every test
 * linked with sfmtls_core (tests/unit/CMakeLists.txt). A fresh temporary
 * directory holding the path of a state database, removing a directory tree,
 * and opening a store that must open. Each helper fails the calling test
 * (cmocka) when its step fails.
 */
#ifndef SFM_TEST_SUPPORT_H
#define SFM_TEST_SUPPORT_H

#include "store.h"

/** A fresh temporary directory and the path of a database inside it (not created). */
typedef struct t_tmpdb {
    char dir[64];   /* /tmp/sfmtls-test-XXXXXX */
    char path[128]; /* dir/state.db */
} t_tmpdb;

/** cmocka setup: *state = a new t_tmpdb whose directory exists. */
int t_tmpdb_setup(void **state);
/** cmocka teardown: removes the directory with everything in it (the database and its -wal, -shm), frees
 * *state. */
int t_tmpdb_teardown(void **state);

/** Removes `dir` and everything under it, following no symbolic link. 0, or -1 when something stayed. */
int t_rmtree(const char *dir);

/** Opens the store at `path` (NULL: in memory); fails the test, with the store's message, when it does not
 * open. */
sfm_store *t_store_open(const char *path);

#endif
