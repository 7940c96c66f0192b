/*
 * What the fuzz targets share: the libFuzzer entry point (defined by each
 * target, called by libFuzzer or by replay.c) and the helpers of common.c.
 */
#ifndef SFM_FUZZ_H
#define SFM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "pki.h"

/** One input; always returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** PEM of the root that signed the seeds' client certificates (README.md). */
extern const char sfm_fuzz_seed_root_pem[];

/** Longest path the helpers build. */
#define SFM_FUZZ_PATH_MAX 256

/** Prints why setup failed and aborts: a target that cannot start must not pass. */
__attribute__((noreturn)) void sfm_fuzz_die(const char *what, const char *detail);

/** Makes a fresh dev CA (EC P-256) in a new directory under $TMPDIR; *dir receives its path. */
void sfm_fuzz_ca_new(char dir[SFM_FUZZ_PATH_MAX]);

/** Removes a directory made by sfm_fuzz_ca_new and everything in it. */
void sfm_fuzz_ca_remove(const char *dir);

/** Reads DIR/NAME into a NUL-terminated heap buffer (caller frees); dies on failure. */
char *sfm_fuzz_read(const char *dir, const char *name, size_t *len);

#endif
