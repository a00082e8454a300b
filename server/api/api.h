/* api.h: the API's resources, one file per resource, the state their handlers share, and the
 * route table handed to the HTTP layer.
 *
 * Handlers receive an http_request (http/http.h) whose `app` is the api_ctx below, read and
 * write through the store connection of the thread they run on (api_store), and reply through
 * the http_reply_* helpers. They never block on training: a submitted job is queued in the
 * store and the job service (jobs/jobs.h) is woken; its workers train. Every error reply has
 * the one shape {"error": {"code", "message", "field"}}; a spec that is well-formed JSON but
 * invalid is 422 naming the field exactly as octet-train does. */
#ifndef OCTET_API_H
#define OCTET_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "http/http.h"
#include "jobs/jobs.h"
#include "store/store.h"

typedef struct api_metrics api_metrics;

/* What every handler may use. Strings and pointers are owned by octetd and outlive the HTTP
 * server. */
typedef struct api_ctx {
    const char *db_path;
    const char *data_dir;       /* a real path */
    store *st;                  /* octetd's own connection (start-up, health before threads) */
    jobs_service *jobs;
    jobs_hub *hub;
    int cuda_usable;            /* device_cuda_usable() at start-up */
    int cuda_devices;           /* devices the workers use (0: the CPU) */
    int workers;
    char cuda_detail[256];      /* why not, when not */
    time_t started;             /* for uptime */
    int64_t max_queued;         /* queued jobs past which submissions get 503 */
    int64_t max_sweep;          /* the most combinations a sweep may have */
    size_t memory_limit;        /* > 0: what a device may give a job at most (--memory-limit) */
    size_t max_upload;          /* largest dataset upload */
    int stopping;               /* set at shutdown: no new jobs */
    atomic_int streams;         /* event streams open now (events.c) */
    api_metrics *metrics;
    pthread_key_t store_key;    /* the per-thread connections (api_store) */
} api_ctx;

/* reply_cache.c: rendered 200 replies of read-only lists, views and job documents, by request
 * key and the store's commit generation read before the database was (store_generation). A hit
 * is a copy (the caller frees it) of what was rendered or checked at that generation, within a
 * second; NULL otherwise, and always for generation 0 or a key over REPLY_CACHE_KEY_MAX bytes.
 * reply_cache_revalidate hits an entry put with the same version, whatever its generation, and
 * marks it checked at `generation`. */
#define REPLY_CACHE_KEY_MAX 255
typedef struct reply_version {
    int64_t revision, last_event; /* store_job_version */
} reply_version;
char *reply_cache_get(const char *key, uint64_t generation, size_t *len);
char *reply_cache_revalidate(const char *key, reply_version version, uint64_t generation, size_t *len);
void reply_cache_put(const char *key, uint64_t generation, const char *text, size_t len);
void reply_cache_put_version(const char *key, reply_version version, uint64_t generation, const char *text,
                             size_t len);
/* Replies 200 with the cached reply of key when there is one (*replied = 1). */
enum MHD_Result api_reply_from_cache(http_request *req, const char *key, uint64_t generation, int *replied);
/* Replies 200 with json (taking the reference) and caches its text under key. */
enum MHD_Result api_reply_json_cached(http_request *req, json_t *json, const char *key, uint64_t generation);

/* routes.c: the route table handed to the HTTP layer (http_config.routes). */
extern const http_route api_routes[];

/* context.c: the API's shared state. api_init sets up the per-thread store connections and
 * the metrics; api_done releases them (after the HTTP server has stopped). */
int api_init(api_ctx *app, octet_err *e);
void api_done(api_ctx *app);
/* The calling thread's store connection, opened on first use and closed when the thread ends;
 * NULL (and a 503 replied) when it cannot be opened. */
store *api_store(http_request *req);
/* Replies to a store failure: 503 with Retry-After for a busy or locked database, else 500. */
enum MHD_Result api_reply_store_error(http_request *req, const octet_err *e);
/* Parses a positive job id from a path segment; replies 404 and returns 0 when it is not one. */
int api_job_id(http_request *req, const char *segment, int64_t *id);
/* Parses an optional query argument as an integer in [min, max] (default when absent);
 * replies 400 naming the argument and returns 0 when it is not one. */
int api_query_int(http_request *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out);

/* estimate.c: memory before training and admission. */
struct trainer_estimate;
/* Estimates spec as a worker of this server would run it (its paths resolved). Fails as
 * trainer_estimate_spec, or with OCTET_ERR_ARG naming a path or dataset of the spec. */
int api_estimate(api_ctx *app, store *st, const job_spec *spec, struct trainer_estimate *est, octet_err *e);
/* Estimates spec and refuses it (OCTET_ERR_NOMEM naming the field to change, the numbers in
 * the message) when its peak exceeds what the device can give; the estimate's JSON into
 * *estimate when not NULL (also on a refusal). */
int api_admit(api_ctx *app, store *st, const job_spec *spec, json_t **estimate, octet_err *e);
/* Replies to a spec that failed parsing, checking or admission: 422 invalid_spec, does_not_fit
 * or bad_data naming the field, or the store's failure. */
enum MHD_Result api_reply_spec_error(http_request *req, int rc, const octet_err *e);
enum MHD_Result api_estimate_post(http_request *req);
enum MHD_Result api_models_get(http_request *req);

/* health.c: GET /health: liveness, version, database and schema, CUDA, workers. */
enum MHD_Result api_health_get(http_request *req);

/* catalog.c: GET /optimizers: every optimizer with its parameters, defaults, ranges and
 * optimizer-state bytes per parameter. */
enum MHD_Result api_optimizers_get(http_request *req);
/* The catalog document itself (a new reference, or NULL when out of memory). */
json_t *api_optimizers_catalog(void);

/* jobs.c: the job resource. */
enum MHD_Result api_jobs_post(http_request *req);
enum MHD_Result api_jobs_list(http_request *req);
enum MHD_Result api_job_get(http_request *req);
enum MHD_Result api_job_cancel(http_request *req);
enum MHD_Result api_job_delete(http_request *req);

/* history.c: a job's recorded history. */
enum MHD_Result api_job_epochs(http_request *req);
enum MHD_Result api_job_steps(http_request *req);
enum MHD_Result api_job_memory(http_request *req);

/* events.c: GET /jobs/{id}/events, the live Server-Sent Events stream. */
enum MHD_Result api_job_events(http_request *req);
/* After jobs_hub_shutdown: waits up to `seconds` for the open streams to send what the store
 * holds and end, so stopping the HTTP server cuts none of them short. Returns how many are
 * still open. */
int api_events_drain(api_ctx *app, double seconds);

/* sweeps.c: sweeps over a grid of spec values, and their seed statistics. */
enum MHD_Result api_sweeps_post(http_request *req);
enum MHD_Result api_sweeps_list(http_request *req);
enum MHD_Result api_sweep_get(http_request *req);
enum MHD_Result api_sweep_cancel(http_request *req);
enum MHD_Result api_sweep_delete(http_request *req);

/* datasets.c: built-in and uploaded datasets. */
enum MHD_Result api_datasets_list(http_request *req);
enum MHD_Result api_datasets_post(http_request *req);
enum MHD_Result api_dataset_delete(http_request *req);
/* Names an upload may take: [a-z0-9][a-z0-9._-]{0,63}. */
int api_dataset_name_ok(const char *name);

/* metrics.c: GET /metrics (Prometheus text) and the per-request figures behind it. */
enum MHD_Result api_metrics_get(http_request *req);
api_metrics *api_metrics_new(void);
void api_metrics_free(api_metrics *m);
/* The done hook of the HTTP layer (http_config.on_done): counts a request and its latency. */
void api_metrics_request(void *app, const http_route *route, const char *method, unsigned status, double seconds);

/* openapi.c: GET /openapi.json, the OpenAPI 3.1 description of every route. */
enum MHD_Result api_openapi_get(http_request *req);
/* The document (a new reference; NULL when the embedded text does not parse). */
json_t *api_openapi_document(void);

#endif
