/* health.c: GET /api/v1/health: is the service up, which version, can it read its database
 * and at which schema version, and can it use a CUDA device.
 *
 * 200 with {"status": "ok", ...} when the database answers; 503 with "status": "degraded" and
 * the database's error when it does not, so a load balancer or a script can tell. The CUDA
 * answer was probed once at start-up (a probe initializes the driver, which is not free).
 * `workers` says how many job workers there are and how many are busy. */
#include "config.h"
#include "api/api.h"

#include <time.h>

enum MHD_Result api_health_get(http_request *req)
{
    api_ctx *app = req->app;
    octet_err e;
    octet_err_clear(&e);
    int version = 0;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    int db_ok = store_schema_version(st, &version, &e) == OCTET_OK;

    json_t *db = json_object();
    json_object_set_new(db, "ok", json_boolean(db_ok));
    json_object_set_new(db, "schema_version", db_ok ? json_integer(version) : json_null());
    if (!db_ok)
        json_object_set_new(db, "error", json_string(e.message));

    json_t *device = json_object();
    json_object_set_new(device, "cuda", json_boolean(app->cuda_usable));
    json_object_set_new(device, "backend", json_string(app->cuda_devices ? "cuda" : "cpu"));
    if (!app->cuda_usable)
        json_object_set_new(device, "detail", json_string(app->cuda_detail));

    json_t *root = json_object();
    json_object_set_new(root, "status", json_string(db_ok ? "ok" : "degraded"));
    json_object_set_new(root, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(root, "uptime_seconds", json_integer((json_int_t)(time(NULL) - app->started)));
    json_object_set_new(root, "db", db);
    json_object_set_new(root, "device", device);
    jobs_worker_view v[64];
    int n = app->jobs ? jobs_snapshot(app->jobs, v, 64) : 0, busy = 0;
    for (int i = 0; i < n && i < 64; i++)
        busy += v[i].busy;
    json_object_set_new(root, "workers", json_pack("{si si}", "total", n, "busy", busy));
    return http_reply_json(req, db_ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, root);
}
