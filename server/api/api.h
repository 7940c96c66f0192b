/*
 * api: the handlers. Each takes the app, the request value and fills the
 * response value (ARCHITECTURE rule 2).
 */
#ifndef SFM_API_H
#define SFM_API_H

#include "../http.h"

/* admin.c: /__admin/ */
/** Everything under /__admin/ (SPEC section 6), token check included. */
void sfm_api_admin(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /__admin/health: {"status":"ok","historyDropped":N}. */
void sfm_api_health(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** GET /__admin/tls-info: what the server saw of the caller's connection (SPEC section 6). */
void sfm_api_tls_info(const sfm_app *app, const sfm_request *req, sfm_response *resp);

/* rest.c: /services/data/ */
/** GET /services/data/: the fixture's API versions, no authentication. */
void sfm_api_versions(const sfm_app *app, const sfm_request *req, sfm_response *resp);
/** The Salesforce-shaped 404: [{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}].
 */
void sfm_api_not_found(sfm_response *resp);
/** REST error array with one entry. */
void sfm_api_rest_error(sfm_response *resp, int status, const char *error_code, const char *message);

/* pages.c: HTML */
/** The Certificate Error page (SPEC section 5) with `sentence`, status 400.
 *  `reason_code` must be a static string: the response keeps it. */
void sfm_api_certificate_error(sfm_response *resp, const char *reason_code, const char *sentence);

#endif
