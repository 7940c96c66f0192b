/*
 * peer: what the HTTP layer knows of the connection a request came on. An
 * immutable value built when the handshake completes, shared by reference
 * count between the worker's connection and libmicrohttpd's.
 */
#ifndef SFM_PEER_H
#define SFM_PEER_H

#include <netinet/in.h>
#include <stdatomic.h>

#include "tls.h"

typedef struct sfm_peer {
    atomic_int refs;
    enum sfm_listener listener;
    char remote_addr[INET6_ADDRSTRLEN]; /* IP literal of the client */
    char tls_version[16];               /* "TLSv1.3" */
    char cipher[64];
    int resumed;
    sfm_cert_info *cert; /* NULL: no client certificate (owned reference) */
} sfm_peer;

/** A new peer with one reference, or NULL when out of memory. Takes a new reference to `cert`. */
sfm_peer *sfm_peer_new(enum sfm_listener l, const char *remote_addr, const char *tls_version,
                       const char *cipher, int resumed, sfm_cert_info *cert);
/** Takes a reference (thread-safe); returns `p`. NULL-safe. */
sfm_peer *sfm_peer_ref(sfm_peer *p);
/** Drops a reference; the last one frees the peer. NULL-safe. */
void sfm_peer_unref(sfm_peer *p);

#endif
