/* estimate.c: memory before training: POST /estimate (what a run of a spec would book in its
 * device's ledger, and whether it fits), the admission every submission goes through, and
 * GET /models (every preset with its configuration and exact parameter count).
 *
 * The figures are the engine's (server/train/estimate.h): parameters, weights, gradients, the
 * optimizer's state in its exact layout, activations, workspace, the expected peak, and what
 * the device can give: the CUDA device's free memory, or on the CPU MemAvailable, capped by
 * --memory-limit. A spec is estimated as the worker will run it: its paths resolved inside the
 * data directory, an uploaded dataset by its file. Admission refuses a spec whose peak exceeds
 * what the device can give with 422 "does_not_fit", the numbers, and the field to change. */
#define LOG_PREFIX "api"
#include "config.h"
#include "api/api.h"
#include "log.h"
#include "train/estimate.h"
#include "train/models_catalog.h"

#include <stdlib.h>
#include <string.h>

int api_estimate(api_ctx *app, store *st, const job_spec *spec, trainer_estimate *est, octet_err *e)
{
    job_spec *resolved = malloc(sizeof *resolved);
    if (!resolved)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    *resolved = *spec;
    int rc = jobs_check_spec(st, app->data_dir, app->cuda_devices, resolved, 1, e);
    if (rc == OCTET_OK) {
        trainer_options opt;
        memset(&opt, 0, sizeof opt);
        opt.device_mem_limit = app->memory_limit;
        if (!app->cuda_devices)
            opt.device = "cpu"; /* what the workers run; "auto" would probe CUDA per request */
        rc = trainer_estimate_spec(resolved, &opt, est, e);
    }
    free(resolved);
    return rc;
}

int api_admit(api_ctx *app, store *st, const job_spec *spec, json_t **estimate, octet_err *e)
{
    trainer_estimate est;
    int rc = api_estimate(app, st, spec, &est, e);
    if (rc == OCTET_OK && estimate)
        *estimate = trainer_estimate_json(&est);
    if (rc == OCTET_OK && est.device_total)
        rc = trainer_admit(&est, est.device_free, e);
    return rc;
}

enum MHD_Result api_reply_spec_error(http_request *req, int rc, const octet_err *e)
{
    if (rc == OCTET_ERR_ARG || rc == OCTET_ERR_NODEV)
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_spec", e->field, "%s", e->message);
    if (rc == OCTET_ERR_NOMEM && e->field[0])
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "does_not_fit", e->field, "%s", e->message);
    if (rc == OCTET_ERR_IO || rc == OCTET_ERR_FORMAT)
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "bad_data", e->field, "%s", e->message);
    if (rc == OCTET_ERR_NOMEM)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    return api_reply_store_error(req, e);
}

enum MHD_Result api_estimate_post(http_request *req)
{
    api_ctx *app = req->app;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    job_spec *spec = malloc(sizeof *spec);
    if (!spec)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    octet_err e;
    octet_err_clear(&e);
    trainer_estimate est;
    int rc = spec_parse(req->body, SPEC_SERVER, spec, &e);
    if (rc == OCTET_OK)
        rc = api_estimate(app, st, spec, &est, &e);
    enum MHD_Result r;
    if (rc != OCTET_OK)
        r = api_reply_spec_error(req, rc, &e);
    else
        r = http_reply_json(req, MHD_HTTP_OK, json_pack("{so so}", "estimate", trainer_estimate_json(&est), "spec",
                                                        spec_to_json(spec)));
    free(spec);
    return r;
}

enum MHD_Result api_models_get(http_request *req)
{
    int64_t labels;
    if (!api_query_int(req, "num_labels", 2, 2, 65536, &labels))
        return MHD_YES;
    json_t *models = trainer_models_catalog((int)labels);
    if (!models)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    return http_reply_json(req, MHD_HTTP_OK, json_is_object(models) ? models : json_pack("{so}", "models", models));
}
