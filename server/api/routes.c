/* routes.c: the API's route table: every endpoint under /api/v1, its method and handler.
 *
 * One line per endpoint, in the GNU Taler style (designated initialisers, a sentinel at the
 * end). A '*' segment matches one path segment, passed to the handler in args[]. GET routes
 * answer HEAD too. Adding an endpoint means a line here and a handler in server/api/. */
#include "config.h"
#include "api/api.h"

const http_route api_routes[] = {
    {.method = MHD_HTTP_METHOD_GET, .path = "health", .handler = api_health_get},
    {.method = MHD_HTTP_METHOD_GET, .path = "optimizers", .handler = api_optimizers_get},
    {.method = NULL},
};
