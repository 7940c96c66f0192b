/*
 * fuzz_der: sfm_pki_facts_of (ca/pki.c) on raw DER, the parse every client
 * leaf, upload and anchor goes through: names to RFC 4514, serial, validity,
 * basicConstraints, EKU, and the self-signature check of self-issued ones.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sfm_pki_facts facts;
    memset(&facts, 0x5a, sizeof(facts)); /* unterminated: a missing NUL shows up */
    if (sfm_pki_facts_of(data, size, &facts) != 0)
        return 0;
    /* Every string field is terminated inside its buffer. */
    if (!memchr(facts.subject, 0, sizeof(facts.subject)) || !memchr(facts.issuer, 0, sizeof(facts.issuer)) ||
        !memchr(facts.serial, 0, sizeof(facts.serial)) || !memchr(facts.sha256, 0, sizeof(facts.sha256)) ||
        strlen(facts.sha256) != 64)
        abort();
    char iso[32];
    sfm_pki_iso8601(facts.not_before, iso);
    sfm_pki_iso8601(facts.not_after, iso);
    return 0;
}
