/* context.c: the state the API's handlers share (api.h): one store connection per HTTP
 * thread, opened on the thread's first request and closed when libmicrohttpd ends the thread,
 * so a long query on one thread never waits for another's; the replies to store failures; and
 * the small parsers of path ids and query arguments every resource uses.
 *
 * A busy database (a writer held the lock past the busy timeout) is 503 with Retry-After: the
 * client may simply try again. */
#define LOG_PREFIX "api"
#include "config.h"
#include "api/api.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void close_thread_store(void *st)
{
    store_close(st);
}

int api_init(api_ctx *app, octet_err *e)
{
    if (pthread_key_create(&app->store_key, close_thread_store))
        return octet_fail(e, OCTET_ERR, "", "cannot create the per-thread store key");
    app->metrics = api_metrics_new();
    if (!app->metrics) {
        pthread_key_delete(app->store_key);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    return OCTET_OK;
}

void api_done(api_ctx *app)
{
    api_metrics_free(app->metrics);
    app->metrics = NULL;
    pthread_key_delete(app->store_key);
}

store *api_store(http_request *req)
{
    api_ctx *app = req->app;
    store *st = pthread_getspecific(app->store_key);
    if (st)
        return st;
    octet_err e;
    octet_err_clear(&e);
    if (store_connect(app->db_path, &st, &e) != OCTET_OK || pthread_setspecific(app->store_key, st)) {
        log_err("cannot open a store connection for this thread: %s", e.message);
        store_close(st);
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", NULL,
                         "the database cannot be opened right now; try again");
        return NULL;
    }
    return st;
}

enum MHD_Result api_reply_store_error(http_request *req, const octet_err *e)
{
    if (strstr(e->message, "locked") || strstr(e->message, "busy")) {
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "store_busy", NULL,
                                "the database is busy; try again");
    }
    return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, "the database failed (%s)",
                            octet_strerror(e->status));
}

int api_job_id(http_request *req, const char *segment, int64_t *id)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(segment, &end, 10);
    if (errno || end == segment || *end || v <= 0 || segment[0] == '+' || segment[0] == '0') {
        http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %.40s: job ids are positive integers",
                         segment);
        return 0;
    }
    *id = v;
    return 1;
}

int api_query_int(http_request *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const char *s = http_query(req, name);
    *out = def;
    if (!s)
        return 1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", name, "%s must be an integer in [%lld, %lld]",
                         name, (long long)min, (long long)max);
        return 0;
    }
    *out = v;
    return 1;
}
