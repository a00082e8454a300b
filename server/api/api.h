/* api.h: the API's resources, one file per resource, and the state their handlers share.
 *
 * Handlers receive an http_request (http/http.h) whose `app` is the api_ctx below, read what
 * they need from the store or the engine, and reply through the http_reply_* helpers. They
 * never block on training: long work belongs to the job workers. The route table that maps
 * method + path to these functions is http/routes.c. */
#ifndef OCTET_API_H
#define OCTET_API_H

#include <time.h>
#include "http/http.h"
#include "store/store.h"

/* What every handler may use. The store handle belongs to the HTTP thread. */
typedef struct api_ctx {
    store *st;
    int cuda_usable;            /* device_cuda_usable() at start-up */
    char cuda_detail[256];      /* why not, when not */
    time_t started;             /* for uptime */
} api_ctx;

/* routes.c: the route table handed to the HTTP layer (http_config.routes). */
extern const http_route api_routes[];

/* health.c: GET /health: liveness, version, database and schema, CUDA. */
enum MHD_Result api_health_get(http_request *req);

/* catalog.c: GET /optimizers: every optimizer with its parameters, defaults, ranges and
 * optimizer-state bytes per parameter. */
enum MHD_Result api_optimizers_get(http_request *req);
/* The catalog document itself (a new reference, or NULL when out of memory). */
json_t *api_optimizers_catalog(void);

#endif
