#include "api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void sfm_api_rest_error(sfm_response *resp, int status, const char *error_code, const char *message)
{
    sfm_response_json(resp, status, json_pack("[{s:s, s:s}]", "message", message, "errorCode", error_code));
}

void sfm_api_not_found(sfm_response *resp)
{
    sfm_api_rest_error(resp, 404, "NOT_FOUND", "The requested resource does not exist");
}

void sfm_api_versions(const sfm_app *app, const sfm_request *req, sfm_response *resp)
{
    (void)app;
    json_t *list = json_array();
    for (size_t i = 0; list && i < req->snap->org->n_versions; i++) {
        const sfm_api_version *v = &req->snap->org->versions[i];
        char url[48];
        snprintf(url, sizeof(url), "/services/data/v%s", v->version);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s}", "label", v->label, "url", url, "version", v->version));
    }
    sfm_response_json(resp, 200, list);
}
