#include "api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"

void sfm_api_health(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)app;
    (void)req;
    sfm_response_json(resp, 200, json_pack("{s:s, s:I}", "status", "ok", "historyDropped", (json_int_t)0));
}

static json_t *certificate_json(const sfm_cert_info *ci)
{
    sfm_pki_facts f;
    char nb[32], na[32];
    const char *reason = sfm_l1_code(ci->reason);
    /* The leaf passed the handshake's parser, so this parse succeeds too;
     * if it does not, report what is known rather than nothing. */
    if (sfm_pki_facts_of(ci->der, ci->der_len, &f) != 0) {
        return json_pack("{s:n, s:n, s:n, s:s, s:n, s:n, s:i, s:b, s:s?}", "subject", "issuer",
                         "serialNumber", "fingerprintSha256", ci->sha256, "notBefore", "notAfter",
                         "chainLength", ci->chain_len, "chainVerified", ci->reason == SFM_L1_OK, "reason",
                         reason);
    }
    sfm_pki_iso8601(f.not_before, nb);
    sfm_pki_iso8601(f.not_after, na);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:s?}", "subject", f.subject, "issuer",
                     f.issuer, "serialNumber", f.serial, "fingerprintSha256", ci->sha256, "notBefore", nb,
                     "notAfter", na, "chainLength", ci->chain_len, "chainVerified", ci->reason == SFM_L1_OK,
                     "reason", reason);
}

void sfm_api_tls_info(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)app;
    const sfm_peer *p = req->peer;
    json_t *cert = p->cert ? certificate_json(p->cert) : json_null();
    sfm_response_json(resp, 200,
                      json_pack("{s:s, s:s, s:s, s:b, s:o}", "listener", sfm_listener_name(p->listener),
                                "tlsVersion", p->tls_version, "cipher", p->cipher, "resumed", p->resumed,
                                "clientCertificate", cert));
}
