/* history.c: a job's recorded history: GET /jobs/{id}/epochs (every evaluated epoch),
 * /steps (the logged training loss, paged by after_step and limit) and /memory (the memory
 * figures: parameters, gradients, the optimizer state in its exact layout, activations, peak).
 * The objects are those octet-train prints for the same run. A job that does not exist is 404;
 * one that has not recorded anything yet gives an empty list, or memory null. */
#include "config.h"
#include "api/api.h"

#include <stdio.h>

#define STEPS_DEFAULT 1000
#define STEPS_MAX 10000

/* The job id of the path, checked to exist; 0 when a reply (404, 503) was sent. */
static int existing_job(http_request *req, store **st, int64_t *id)
{
    if (!api_job_id(req, req->args[0], id) || !(*st = api_store(req)))
        return 0;
    char status[16];
    octet_err e;
    if (store_job_state(*st, *id, status, NULL, NULL, &e) != OCTET_OK) {
        api_reply_store_error(req, &e);
        return 0;
    }
    if (!status[0]) {
        http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)*id);
        return 0;
    }
    return 1;
}

enum MHD_Result api_job_epochs(http_request *req)
{
    store *st;
    int64_t id;
    if (!existing_job(req, &st, &id))
        return MHD_YES;
    json_t *list = NULL;
    octet_err e;
    if (store_job_epochs(st, id, &list, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    return http_reply_json(req, MHD_HTTP_OK, json_pack("{sI so}", "job_id", (json_int_t)id, "epochs", list));
}

enum MHD_Result api_job_steps(http_request *req)
{
    int64_t after = 0, limit = 0;
    if (!api_query_int(req, "after_step", 0, 0, INT64_MAX, &after) ||
        !api_query_int(req, "limit", STEPS_DEFAULT, 1, STEPS_MAX, &limit))
        return MHD_YES;
    store *st;
    int64_t id;
    if (!existing_job(req, &st, &id))
        return MHD_YES;
    json_t *list = NULL;
    int more = 0;
    octet_err e;
    if (store_job_steps(st, id, after, (int)limit, &list, &more, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    json_t *next = more && last ? json_incref(json_object_get(last, "step")) : json_null();
    return http_reply_json(req, MHD_HTTP_OK, json_pack("{sI so so}", "job_id", (json_int_t)id, "steps", list,
                                                       "next_after_step", next));
}

enum MHD_Result api_job_memory(http_request *req)
{
    store *st;
    int64_t id;
    if (!existing_job(req, &st, &id))
        return MHD_YES;
    json_t *m = NULL;
    octet_err e;
    if (store_job_memory(st, id, &m, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    return http_reply_json(req, MHD_HTTP_OK, json_pack("{sI so}", "job_id", (json_int_t)id, "memory",
                                                       m ? m : json_null()));
}
