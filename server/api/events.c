/* events.c: GET /jobs/{id}/events, a job's events as Server-Sent Events: every event of the
 * job's log (status, step, epoch, memory) in order, each with `id:` = its sequence number and
 * `event:` = its type, its JSON on one `data:` line. A client that reconnects with
 * Last-Event-ID (the header EventSource sends, or ?last_event_id=) gets exactly the events
 * after it, since the log is in the store; the stream ends after the job's final status
 * (succeeded, failed, cancelled), or at once when that was already sent.
 *
 * The stream never holds an HTTP thread while it waits: when the store has nothing new, the
 * reader registers with the event hub and suspends its connection; the worker's next
 * notification for the job (or the hub's keep-alive tick, when a comment line is written)
 * resumes it. A connection resumed for nothing just registers again. When the server stops,
 * every stream sends what the store holds and ends. */
#define LOG_PREFIX "events"
#include "config.h"
#include "api/api.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64             /* events read from the store at a time */
#define KEEPALIVE_S 15.0     /* a comment line after this long without a write */

typedef struct sse_stream {
    api_ctx *app;
    struct MHD_Connection *conn;
    int64_t job_id;
    int64_t last_seq;        /* the newest event formatted */
    char *buf;               /* formatted bytes not yet handed to libmicrohttpd */
    size_t len, off, cap;
    int finished;            /* the final status is in buf: end once it is sent */
    double last_write;
    jobs_waiter waiter;
} sse_stream;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Appends text to the stream's buffer; -1 when out of memory. */
static int put(sse_stream *s, const char *text, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return -1;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    return 0;
}

static int put_event(sse_stream *s, const store_event *ev)
{
    char head[96];
    int n = snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ", (long long)ev->seq, ev->type);
    if (put(s, head, (size_t)n) || put(s, ev->data, strlen(ev->data)) || put(s, "\n\n", 2))
        return -1;
    s->last_seq = ev->seq;
    return 0;
}

/* True for a status event whose status is final. */
static int is_final(const store_event *ev)
{
    if (strcmp(ev->type, "status"))
        return 0;
    json_t *d = json_loads(ev->data, 0, NULL);
    const char *status = json_string_value(json_object_get(d, "status"));
    int final = status && store_status_final(status);
    json_decref(d);
    return final;
}

/* The calling thread's store connection (the same one api_store gives handlers). */
static store *thread_store(api_ctx *app)
{
    store *st = pthread_getspecific(app->store_key);
    if (st)
        return st;
    octet_err e;
    if (store_connect(app->db_path, &st, &e) != OCTET_OK || pthread_setspecific(app->store_key, st)) {
        store_close(st);
        return NULL;
    }
    return st;
}

/* Formats the next events into the buffer. Returns the number formatted, or -1 on failure. */
static int fill(sse_stream *s, store *st)
{
    store_event ev[BATCH];
    int n = 0;
    octet_err e;
    if (store_job_events(st, s->job_id, s->last_seq, ev, BATCH, &n, &e) != OCTET_OK) {
        log_warn("job %lld: cannot read events: %s", (long long)s->job_id, e.message);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0 && !s->finished) {
            rc = put_event(s, &ev[i]);
            s->finished = is_final(&ev[i]);
        }
        free(ev[i].data);
    }
    return rc ? -1 : n;
}

/* True when nothing will come any more: the job is gone, or it is final and every event up to
 * its final status was sent (a client that resumed after the end). */
static int nothing_to_come(sse_stream *s, store *st)
{
    char status[16];
    int64_t last = 0;
    octet_err e;
    if (store_job_state(st, s->job_id, status, NULL, &last, &e) != OCTET_OK)
        return 0;
    return !status[0] || (store_status_final(status) && last <= s->last_seq);
}

static void wake(void *cookie)
{
    http_resume(((sse_stream *)cookie)->conn);
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    sse_stream *s = cls;
    (void)pos;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(out, s->buf + s->off, n);
            s->off += n;
            s->last_write = now_s();
            return (ssize_t)n;
        }
        s->len = s->off = 0;
        store *st = thread_store(s->app);
        if (s->finished || !st)
            return MHD_CONTENT_READER_END_OF_STREAM;
        uint64_t generation = jobs_hub_generation(s->app->hub);
        int n = fill(s, st);
        if (n < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n > 0)
            continue;
        /* a stopping server ends the stream once what was recorded has been sent */
        if (jobs_hub_closing(s->app->hub) || nothing_to_come(s, st))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (now_s() - s->last_write >= KEEPALIVE_S) {
            if (put(s, ": keep-alive\n\n", 14))
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        int w = jobs_hub_wait(s->app->hub, &s->waiter, generation);
        if (w < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (w == 1) {
            http_suspend(s->conn);
            return 0;
        }
    }
}

static void free_stream(void *cls)
{
    sse_stream *s = cls;
    jobs_hub_forget(s->app->hub, &s->waiter);
    atomic_fetch_sub(&s->app->streams, 1);
    free(s->buf);
    free(s);
}

int api_events_drain(api_ctx *app, double seconds)
{
    struct timespec pause = {0, 10 * 1000 * 1000};
    double end = now_s() + seconds;
    while (atomic_load(&app->streams) > 0 && now_s() < end)
        nanosleep(&pause, NULL);
    return atomic_load(&app->streams);
}

/* Last-Event-ID (header, else ?last_event_id=): 0 when absent; -1 (400 replied) when bad. */
static int64_t last_event_id(http_request *req)
{
    const char *v = http_header(req, "Last-Event-ID");
    const char *name = "Last-Event-ID";
    if (!v) {
        v = http_query(req, "last_event_id");
        name = "last_event_id";
    }
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0) {
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_header", name,
                         "%s must be the id of an event of this stream (an integer >= 0)", name);
        return -1;
    }
    return n;
}

enum MHD_Result api_job_events(http_request *req)
{
    api_ctx *app = req->app;
    int64_t id;
    if (!api_job_id(req, req->args[0], &id))
        return MHD_YES;
    int64_t after = last_event_id(req);
    if (after < 0)
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    char status[16];
    octet_err e;
    if (store_job_state(st, id, status, NULL, NULL, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (!status[0])
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no job %lld", (long long)id);
    sse_stream *s = calloc(1, sizeof *s);
    if (!s)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    s->app = app;
    s->conn = req->conn;
    s->job_id = id;
    s->last_seq = after;
    s->last_write = now_s();
    s->waiter.job_id = id;
    s->waiter.wake = wake;
    s->waiter.cookie = s;
    atomic_fetch_add(&app->streams, 1);
    if (put(s, "retry: 3000\n\n", 13)) {
        free_stream(s);
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    }
    return http_reply_stream(req, "text/event-stream; charset=utf-8", reader, s, free_stream);
}
