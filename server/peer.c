#include "peer.h"

#include <stdio.h>
#include <stdlib.h>

sfm_peer *sfm_peer_new(enum sfm_listener l, const char *remote_addr, const char *tls_version,
                       const char *cipher, int resumed, sfm_cert_info *cert)
{
    sfm_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->listener = l;
    snprintf(p->remote_addr, sizeof(p->remote_addr), "%s", remote_addr);
    snprintf(p->tls_version, sizeof(p->tls_version), "%s", tls_version);
    snprintf(p->cipher, sizeof(p->cipher), "%s", cipher);
    p->resumed = resumed;
    p->cert = sfm_cert_info_ref(cert);
    return p;
}

sfm_peer *sfm_peer_ref(sfm_peer *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void sfm_peer_unref(sfm_peer *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
        sfm_cert_info_unref(p->cert);
        free(p);
    }
}
