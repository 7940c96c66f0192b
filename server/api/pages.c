#include "api.h"

#include <stdio.h>
#include <stdlib.h>

void sfm_api_certificate_error(sfm_response *resp, const char *reason_code, const char *sentence)
{
    /* The markup Salesforce served for a request without a client certificate
     * on port 8443 [obs], without its remote logo image (we are offline). */
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "<html><head><title>Certificate Error</title></head>"
                     "<body bgcolor=#ffffff text=#3198d8><center>"
                     "<p><h3>Client certificate error:<i>%s</i></h3></center></body></html>",
                     sentence);
    sfm_response_set(resp, 400, "text/html", body, (size_t)n);
    sfm_response_header(resp, "X-Sfmtls-Reason", reason_code);
    resp->denied = reason_code;
}
