/* http_impl.h: the HTTP layer's private parts, shared by its .c files only: the server
 * object and the per-request state MHD keeps for us between the calls of one request.
 *
 * MHD calls the access handler several times for one request: first with the headers only,
 * then once per chunk of body, then once with no data. The request_ctx lives across those
 * calls (MHD's con_cls) and is freed in the completion callback. Its first member is the
 * http_request handlers see, so the reply helpers can get back to the rest. */
#ifndef OCTET_HTTP_IMPL_H
#define OCTET_HTTP_IMPL_H

#include <time.h>
#include "http/http.h"

#define HTTP_MAX_EXTRA_HEADERS 4

struct http_server {
    struct MHD_Daemon *daemon;
    http_config cfg;
    char *web_dir;          /* realpath of cfg.web_dir */
    char *js_dir;           /* realpath of cfg.js_dir; NULL: /javascript/ is not served */
    unsigned port;
};

typedef struct request_ctx {
    http_request req;                  /* must stay first */
    http_server *srv;
    const http_route *route;           /* NULL: a static file */
    int replied;                       /* a reply is queued; ignore any further body */
    int too_large;                     /* the body went past the cap; 413 at the end */
    char *body;                        /* kept only for routes that take JSON or an upload */
    size_t body_len, body_cap, body_seen;
    json_t *json;                      /* the parsed body (owned) */
    char path[HTTP_MAX_URL + 1];       /* scratch the args point into */
    struct { const char *name; char value[160]; } extra[HTTP_MAX_EXTRA_HEADERS];
    int n_extra;
    struct timespec started;
} request_ctx;

/* Queues `resp` with `status` plus the request's extra headers, destroys `resp`, records the
 * status. Returns MHD_NO when MHD refused it (or resp is NULL). */
enum MHD_Result http_queue(http_request *req, unsigned status, struct MHD_Response *resp);

/* Takes one chunk of body for rc, keeping it only when the route takes JSON; past `max`
 * bytes in all, drops the body and sets rc->too_large. Never fails. */
void http_body_append(request_ctx *rc, const char *data, size_t size, size_t max);

/* Serves the static file for req->url from the server's web directory (or, under
 * HTTP_JS_PREFIX, its JavaScript directory): 200 with its type, 400 for a refused path, 404
 * when there is no such file. */
enum MHD_Result http_serve_static(request_ctx *rc);

#endif
