/*
 * bridge: the plaintext side. One libmicrohttpd daemon per worker, with no
 * listening socket and no thread of its own: the worker hands it one end of
 * a socketpair per TLS connection and runs it from its own epoll loop. The
 * only module that calls libmicrohttpd.
 */
#ifndef SFM_BRIDGE_H
#define SFM_BRIDGE_H

#include <stdint.h>

#include "http.h"
#include "peer.h"

#define SFM_NODISCARD __attribute__((warn_unused_result))

typedef struct sfm_bridge sfm_bridge;

/** Starts a daemon that answers with sfm_http_handle(app, ...). `app` is borrowed for its life. */
SFM_NODISCARD int sfm_bridge_new(sfm_bridge **out, const sfm_app *app);
/** Stops the daemon and closes its connections; NULL-safe. */
void sfm_bridge_free(sfm_bridge *b);

/** The daemon's epoll descriptor: readable when sfm_bridge_run has work. */
int sfm_bridge_fd(const sfm_bridge *b);

/**
 * Gives the daemon a connected socket and the peer its requests came from.
 * Takes ownership of `fd` and of the reference to `peer`, even on failure.
 * Returns 0 or a negative errno.
 */
SFM_NODISCARD int sfm_bridge_add(sfm_bridge *b, int fd, sfm_peer *peer);

/** From now on every answer carries "Connection: close", so that each
 *  connection ends after the request in flight on it. */
void sfm_bridge_drain(sfm_bridge *b);

/** Runs the daemon's pending work without blocking. */
void sfm_bridge_run(sfm_bridge *b);

/** Milliseconds until the daemon needs to run again, or -1 for "no timer". */
int64_t sfm_bridge_timeout_ms(sfm_bridge *b);

/** libmicrohttpd's version string. */
const char *sfm_bridge_version(void);

#endif
