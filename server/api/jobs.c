/* jobs.c: the job resource: POST /jobs (submit, ?dry_run=1, Idempotency-Key), GET /jobs (the
 * list: filters, paging by cursor), GET /jobs/{id}, POST /jobs/{id}/cancel, DELETE /jobs/{id}.
 *
 * A submission is parsed by the same spec parser as octet-train (server/train/spec.h, with its
 * server rules: paths relative to the data directory), then checked against this server
 * (jobs_check_spec: paths that stay inside the data directory, datasets that exist, devices it
 * has) and admitted (estimate.c: its estimated peak must fit what the device can give). A bad
 * spec is 422 naming the field, one that does not fit 422 does_not_fit with the numbers; the
 * queue past --max-queued is 503 with Retry-After. A dry run answers with the normalised spec
 * and the memory estimate. The stored spec is the normalised one, every default filled in. Replies carry the
 * job as GET /jobs/{id} shows it; a job of a sweep carries its sweep_id and grid_values. */
#define LOG_PREFIX "api"
#include "config.h"
#include "api/api.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEMPOTENCY_KEY_MAX 255
#define LIST_DEFAULT 50
#define LIST_MAX 500

/* Adds the job's URLs. */
static void add_links(json_t *job)
{
    json_int_t id = json_integer_value(json_object_get(job, "id"));
    char base[64];
    snprintf(base, sizeof base, HTTP_API_PREFIX "/jobs/%lld", (long long)id);
    json_t *links = json_object();
    json_object_set_new(links, "self", json_string(base));
    static const char *const subs[] = {"epochs", "steps", "memory", "events", "cancel"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char url[96];
        snprintf(url, sizeof url, "%s/%s", base, subs[i]);
        json_object_set_new(links, subs[i], json_string(url));
    }
    json_object_set_new(job, "links", links);
}

/* Job id's document as GET /jobs/{id} shows it, as JSON text (*text malloc'd, *len bytes);
 * *text = NULL when there is no such job. The spec and run info, stored as compact JSON, are
 * spliced in as they are: parsing them only to print them again was most of the cost. */
static int render_job(store *st, int64_t id, char **text, size_t *len, octet_err *e)
{
    *text = NULL;
    json_t *job = NULL;
    store_job_texts texts;
    int rc = store_job_get(st, id, &job, &texts, e);
    if (rc != OCTET_OK || !job)
        return rc;
    add_links(job);
    char *head = json_dumps(job, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(job);
    const char *spec = texts.spec ? texts.spec : "null", *info = texts.info ? texts.info : "null";
    size_t n = head ? strlen(head) : 0, cap = n + strlen(spec) + strlen(info) + 32;
    char *out = head ? malloc(cap) : NULL;
    if (out) /* head is "{...}": its members, then spec and info */
        *len = (size_t)snprintf(out, cap, "%.*s,\"spec\":%s,\"info\":%s}", (int)(n - 1), head, spec, info);
    free(head);
    store_job_texts_free(&texts);
    if (!out)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    *text = out;
    return OCTET_OK;
}

static enum MHD_Result reply_rendered(http_request *req, int rc, char *text, size_t len, int64_t id, unsigned status,
                                      const octet_err *e)
{
    if (rc == OCTET_ERR_NOMEM)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    if (rc != OCTET_OK)
        return api_reply_store_error(req, e);
    if (!text)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)id);
    return http_reply_text(req, status, "application/json", text, len);
}

/* Replies with job id's document and `status`; 404 when it is gone. */
static enum MHD_Result reply_job(http_request *req, store *st, int64_t id, unsigned status)
{
    char *text = NULL;
    size_t len = 0;
    octet_err e;
    int rc = render_job(st, id, &text, &len, &e);
    return reply_rendered(req, rc, text, len, id, status, &e);
}

/* ------------------------------------------------------------------ POST /jobs */

/* ?dry_run: absent, 0/false or 1/true; replies 400 and returns -1 for anything else. */
static int dry_run_arg(http_request *req)
{
    const char *v = http_query(req, "dry_run");
    if (!v || !strcmp(v, "0") || !strcmp(v, "false"))
        return 0;
    if (!strcmp(v, "1") || !strcmp(v, "true") || !*v)
        return 1;
    http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", "dry_run", "dry_run must be 1, true, 0 or false");
    return -1;
}

/* The Idempotency-Key header: NULL when absent; replies 400 and sets *bad for a key that is
 * empty, too long, or not visible ASCII. */
static const char *idempotency_key(http_request *req, int *bad)
{
    const char *k = http_header(req, "Idempotency-Key");
    *bad = 0;
    if (!k)
        return NULL;
    size_t n = strlen(k);
    int ok = n >= 1 && n <= IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = k[i] > 0x20 && k[i] < 0x7f;
    if (!ok) {
        *bad = 1;
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_header", "Idempotency-Key",
                         "Idempotency-Key must be 1 to %d visible ASCII characters", IDEMPOTENCY_KEY_MAX);
    }
    return k;
}

/* 503 with Retry-After when the queue is full or the server is stopping; 0 when it replied. */
static int queue_open(http_request *req, store *st)
{
    api_ctx *app = req->app;
    if (app->stopping) {
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "10");
        http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down", NULL,
                         "the server is stopping; submit again when it is back");
        return 0;
    }
    int64_t queued = 0;
    octet_err e;
    if (store_queue_length(st, &queued, &e) != OCTET_OK) {
        api_reply_store_error(req, &e);
        return 0;
    }
    if (queued >= app->max_queued) {
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "30");
        http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "queue_full", NULL,
                         "%lld jobs are queued, the most this server takes (--max-queued); try again later",
                         (long long)queued);
        return 0;
    }
    return 1;
}

/* Queues the checked spec; replies 201 (200 for a replayed Idempotency-Key) with the job. */
static enum MHD_Result enqueue(http_request *req, store *st, const job_spec *spec, json_t *normalised,
                               const char *key)
{
    api_ctx *app = req->app;
    char *spec_text = json_dumps(normalised, JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *request = json_dumps(req->body, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!spec_text || !request) {
        free(spec_text);
        free(request);
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    }
    const spec_dataset *d = &spec->dataset;
    char model[SPEC_PATH_MAX + 16];
    spec_model_label(spec, model, sizeof model);
    store_new_job j = {.name = spec->name, .spec = spec_text, .arch = spec_arch_name(spec->model.arch), .model = model,
                       .optimizer = optim_kind_name(spec->optimizer.cfg.kind),
                       .dataset = d->name[0] ? d->name : d->train_file, .idempotency_key = key, .request = request};
    int64_t id = 0;
    int replayed = 0;
    octet_err e;
    int rc = store_job_insert(st, &j, &id, &replayed, &e);
    free(spec_text);
    free(request);
    if (rc == OCTET_ERR_MISMATCH)
        return http_reply_error(req, MHD_HTTP_CONFLICT, "idempotency_conflict", "Idempotency-Key", "%s", e.message);
    if (rc != OCTET_OK)
        return api_reply_store_error(req, &e);
    char location[64];
    snprintf(location, sizeof location, HTTP_API_PREFIX "/jobs/%lld", (long long)id);
    http_reply_header(req, MHD_HTTP_HEADER_LOCATION, location);
    if (!replayed) {
        log_info("job %lld queued (%s, %s)", (long long)id, j.arch, j.optimizer);
        jobs_hub_notify(app->hub, id);
        jobs_wake(app->jobs);
    }
    return reply_job(req, st, id, replayed ? MHD_HTTP_OK : MHD_HTTP_CREATED);
}

enum MHD_Result api_jobs_post(http_request *req)
{
    api_ctx *app = req->app;
    int dry = dry_run_arg(req), bad_key = 0;
    if (dry < 0)
        return MHD_YES;
    const char *key = idempotency_key(req, &bad_key);
    if (bad_key)
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    job_spec *spec = malloc(sizeof *spec);
    if (!spec)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    octet_err e;
    octet_err_clear(&e);
    json_t *estimate = NULL;
    int rc = spec_parse(req->body, SPEC_SERVER, spec, &e);
    if (rc == OCTET_OK)
        rc = jobs_check_spec(st, app->data_dir, app->cuda_devices, spec, 0, &e);
    if (rc == OCTET_OK)
        rc = api_admit(app, st, spec, &estimate, &e);
    enum MHD_Result r;
    json_t *normalised = rc == OCTET_OK ? spec_to_json(spec) : NULL;
    if (rc != OCTET_OK)
        r = api_reply_spec_error(req, rc, &e);
    else if (!normalised)
        r = http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    else if (dry)
        r = http_reply_json(req, MHD_HTTP_OK, json_pack("{sb sO sO}", "valid", 1, "spec", normalised, "estimate",
                                                        estimate ? estimate : json_null()));
    else if (!queue_open(req, st))
        r = MHD_YES;
    else
        r = enqueue(req, st, spec, normalised, key);
    json_decref(normalised);
    json_decref(estimate);
    free(spec);
    return r;
}

/* ------------------------------------------------------------------ GET /jobs */

/* A filter argument that must be one of `allowed` (NULL-terminated); replies 400 otherwise. */
static int enum_arg(http_request *req, const char *name, const char *const *allowed, const char **out)
{
    *out = http_query(req, name);
    if (!*out)
        return 1;
    char list[256] = "";
    for (int i = 0; allowed[i]; i++) {
        if (!strcmp(*out, allowed[i]))
            return 1;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
    }
    http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", name, "%s must be one of %s", name, list);
    return 0;
}

static int list_filter(http_request *req, store_job_filter *f)
{
    static const char *const statuses[] = {STORE_QUEUED, STORE_RUNNING, STORE_SUCCEEDED, STORE_FAILED, STORE_CANCELLED,
                                           NULL};
    static const char *const arches[] = {"mlp", "distilbert", NULL};
    const char *optimizers[OPTIM_NKINDS + 1];
    for (int k = 0; k < OPTIM_NKINDS; k++)
        optimizers[k] = optim_kind_name((optim_kind)k);
    optimizers[OPTIM_NKINDS] = NULL;
    memset(f, 0, sizeof *f);
    int64_t limit = 0, cursor = 0, sweep = 0;
    if (!enum_arg(req, "status", statuses, &f->status) || !enum_arg(req, "optimizer", optimizers, &f->optimizer) ||
        !enum_arg(req, "arch", arches, &f->arch) || !api_query_int(req, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit) ||
        !api_query_int(req, "cursor", 0, 1, INT64_MAX, &cursor) ||
        !api_query_int(req, "sweep", 0, 1, INT64_MAX, &sweep))
        return 0;
    f->sweep_id = sweep;
    f->dataset = http_query(req, "dataset");
    f->limit = (int)limit;
    f->before_id = cursor;
    return 1;
}

/* The list's reply cache key: the parsed filter, the free-form dataset name last (so that no
 * name can make two filters one key). */
static void list_key(const store_job_filter *f, char *key, size_t cap)
{
    snprintf(key, cap, "jobs\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%d\x1f%lld\x1f%s", f->status ? f->status : "",
             f->optimizer ? f->optimizer : "", f->arch ? f->arch : "", (long long)f->sweep_id, f->limit,
             (long long)f->before_id, f->dataset ? f->dataset : "");
}

enum MHD_Result api_jobs_list(http_request *req)
{
    store_job_filter f;
    if (!list_filter(req, &f))
        return MHD_YES;
    char key[REPLY_CACHE_KEY_MAX + 2];
    list_key(&f, key, sizeof key);
    uint64_t generation = store_generation(); /* before any read */
    int replied = 0;
    enum MHD_Result r = api_reply_from_cache(req, key, generation, &replied);
    if (replied)
        return r;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    json_t *items = NULL;
    int64_t next = 0;
    octet_err e;
    if (store_job_list(st, &f, &items, &next, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    size_t i;
    json_t *job;
    json_array_foreach(items, i, job)
        add_links(job);
    char cursor[32];
    snprintf(cursor, sizeof cursor, "%lld", (long long)next);
    return api_reply_json_cached(req, json_pack("{so so}", "jobs", items, "next_cursor",
                                                next ? json_string(cursor) : json_null()), key, generation);
}

/* ------------------------------------------------------------------ one job */

/* A job's document is cached under its id with its version (reply_cache.c): served without a
 * database read while nothing was committed, after reading only the version otherwise, and
 * rendered again when the version moved. */
enum MHD_Result api_job_get(http_request *req)
{
    int64_t id;
    if (!api_job_id(req, req->args[0], &id))
        return MHD_YES;
    char key[32];
    snprintf(key, sizeof key, "job\x1f%lld", (long long)id);
    uint64_t generation = store_generation(); /* before any read of the job */
    size_t len = 0;
    char *text = reply_cache_get(key, generation, &len);
    if (text)
        return http_reply_text(req, MHD_HTTP_OK, "application/json", text, len);
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    reply_version v = {0, 0};
    int found = 0;
    octet_err e;
    if (store_job_version(st, id, &v.revision, &v.last_event, &found, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (!found)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)id);
    text = reply_cache_revalidate(key, v, generation, &len);
    if (text)
        return http_reply_text(req, MHD_HTTP_OK, "application/json", text, len);
    int rc = render_job(st, id, &text, &len, &e);
    if (rc == OCTET_OK && text)
        reply_cache_put_version(key, v, generation, text, len);
    return reply_rendered(req, rc, text, len, id, MHD_HTTP_OK, &e);
}

enum MHD_Result api_job_cancel(http_request *req)
{
    api_ctx *app = req->app;
    int64_t id;
    if (!api_job_id(req, req->args[0], &id))
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    int outcome = 0;
    octet_err e;
    if (store_job_cancel(st, id, &outcome, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    switch (outcome) {
    case STORE_NO_JOB:
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)id);
    case STORE_CANCEL_FINISHED:
        return http_reply_error(req, MHD_HTTP_CONFLICT, "job_finished", NULL,
                                "job %lld has finished; only a queued or running job can be cancelled", (long long)id);
    case STORE_CANCEL_REQUESTED: /* its worker stops it within one batch */
        jobs_cancel(app->jobs, id);
        jobs_hub_notify(app->hub, id);
        return reply_job(req, st, id, MHD_HTTP_ACCEPTED);
    default:
        jobs_hub_notify(app->hub, id);
        return reply_job(req, st, id, MHD_HTTP_OK);
    }
}

enum MHD_Result api_job_delete(http_request *req)
{
    api_ctx *app = req->app;
    int64_t id;
    if (!api_job_id(req, req->args[0], &id))
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    int outcome = 0;
    octet_err e;
    if (store_job_delete(st, id, &outcome, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (outcome == STORE_NO_JOB)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)id);
    if (outcome == STORE_DELETE_ACTIVE)
        return http_reply_error(req, MHD_HTTP_CONFLICT, "job_active", NULL,
                                "job %lld is queued or running; cancel it first", (long long)id);
    jobs_remove_checkpoints(app->data_dir, id);
    jobs_hub_notify(app->hub, id); /* its stream's readers find it gone */
    log_info("job %lld deleted", (long long)id);
    return http_reply_no_content(req);
}
