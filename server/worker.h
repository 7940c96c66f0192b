/*
 * worker: one thread per core. Each owns its listening sockets (SO_REUSEPORT),
 * an epoll loop, a wolfSSL context per listener and a libmicrohttpd daemon
 * (bridge), and shares nothing with the others on the request path.
 *
 * A connection goes HANDSHAKE -> OPEN -> CLOSED. In OPEN the worker pumps
 * bytes between the TLS session and its end of a socketpair whose other end
 * the bridge serves, with backpressure both ways.
 */
#ifndef SFM_WORKER_H
#define SFM_WORKER_H

#include <stddef.h>

#include "http.h"
#include "tls.h"

#define SFM_NODISCARD         __attribute__((warn_unused_result))
#define SFM_WORKER_MAX_LISTEN 16
#define SFM_WORKER_ERR_LEN    512

typedef struct sfm_worker_opts {
    int id;
    int listen_fds[SFM_WORKER_MAX_LISTEN]; /* the worker owns them once created */
    enum sfm_listener listen_kinds[SFM_WORKER_MAX_LISTEN];
    size_t n_listen;
    sfm_tls_shared *tls; /* borrowed for the worker's life */
    const sfm_app *app;  /* borrowed for the worker's life */
    int handshake_timeout_ms;
    int idle_timeout_ms;
} sfm_worker_opts;

typedef struct sfm_worker sfm_worker;

/** Builds a worker (not yet running). On failure the listening fds are closed. */
SFM_NODISCARD int sfm_worker_new(sfm_worker **out, const sfm_worker_opts *o, char err[SFM_WORKER_ERR_LEN]);
/** Starts its thread. Returns 0 or a negative errno. */
SFM_NODISCARD int sfm_worker_start(sfm_worker *w);
/** Asks it to drain: stop accepting, finish what is in flight, then return. Thread-safe. */
void sfm_worker_stop(sfm_worker *w);
/**
 * Gives the worker a new TLS state (SIGHUP): the connections it accepts from
 * now on use contexts built on `sh` (built when the next one arrives); those
 * in flight keep theirs. Takes a reference of its own. Thread-safe.
 */
void sfm_worker_set_tls(sfm_worker *w, sfm_tls_shared *sh);
/** Waits for its thread to end. */
void sfm_worker_join(sfm_worker *w);
/** Joins the thread if it runs, then frees everything; NULL-safe. */
void sfm_worker_free(sfm_worker *w);

#endif
