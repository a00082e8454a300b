/* openapi.c: GET /openapi.json, the OpenAPI 3.1 description of every route, its parameters,
 * request and response shapes (server/api/openapi.json, compiled into octetd as a string by
 * the build, so the binary needs no data file for it). Its info.version is set to this
 * build's version when served. A unit test holds its paths and methods equal to the route
 * table (routes.c); the API tests validate real replies against its schemas. */
#include "config.h"
#include "api/api.h"

static const char openapi_text[] =
#include "server/api/openapi_json.h"
    ;

json_t *api_openapi_document(void)
{
    json_error_t err;
    json_t *doc = json_loads(openapi_text, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        return NULL;
    json_object_set_new(json_object_get(doc, "info"), "version", json_string(PACKAGE_VERSION));
    return doc;
}

enum MHD_Result api_openapi_get(http_request *req)
{
    json_t *doc = api_openapi_document();
    if (!doc)
        return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL,
                                "the embedded OpenAPI document does not parse");
    return http_reply_json(req, MHD_HTTP_OK, doc);
}
