/* routes.c: the API's route table: every endpoint under /api/v1, its method and handler.
 *
 * One line per endpoint, in the GNU Taler style (designated initialisers, a sentinel at the
 * end). A '*' segment matches one path segment, passed to the handler in args[]. GET routes
 * answer HEAD too. Adding an endpoint means a line here, a handler in server/api/, and its
 * operation in openapi.json (a unit test holds the two equal). */
#include "config.h"
#include "api/api.h"

#define GET MHD_HTTP_METHOD_GET
#define POST MHD_HTTP_METHOD_POST
#define DELETE MHD_HTTP_METHOD_DELETE

const http_route api_routes[] = {
    {.method = GET, .path = "health", .handler = api_health_get},
    {.method = GET, .path = "optimizers", .handler = api_optimizers_get},
    {.method = GET, .path = "models", .handler = api_models_get},
    {.method = POST, .path = "estimate", .handler = api_estimate_post, .takes_json = 1, .open = 1},
    {.method = GET, .path = "jobs", .handler = api_jobs_list},
    {.method = POST, .path = "jobs", .handler = api_jobs_post, .takes_json = 1, .open_if = "dry_run"},
    {.method = GET, .path = "jobs/*", .handler = api_job_get},
    {.method = DELETE, .path = "jobs/*", .handler = api_job_delete},
    {.method = POST, .path = "jobs/*/cancel", .handler = api_job_cancel},
    {.method = GET, .path = "jobs/*/epochs", .handler = api_job_epochs},
    {.method = GET, .path = "jobs/*/steps", .handler = api_job_steps},
    {.method = GET, .path = "jobs/*/memory", .handler = api_job_memory},
    {.method = GET, .path = "jobs/*/events", .handler = api_job_events},
    {.method = GET, .path = "sweeps", .handler = api_sweeps_list},
    {.method = POST, .path = "sweeps", .handler = api_sweeps_post, .takes_json = 1, .open_if = "dry_run"},
    {.method = GET, .path = "sweeps/*", .handler = api_sweep_get},
    {.method = DELETE, .path = "sweeps/*", .handler = api_sweep_delete},
    {.method = POST, .path = "sweeps/*/cancel", .handler = api_sweep_cancel},
    {.method = GET, .path = "datasets", .handler = api_datasets_list},
    {.method = POST, .path = "datasets", .handler = api_datasets_post, .takes_upload = 1},
    {.method = DELETE, .path = "datasets/*", .handler = api_dataset_delete},
    {.method = GET, .path = "metrics", .handler = api_metrics_get},
    {.method = GET, .path = "openapi.json", .handler = api_openapi_get},
    {.method = NULL},
};
