/* metrics.c: GET /metrics in Prometheus' text format (version 0.0.4): jobs by status, the
 * queue's depth, epochs and steps recorded, busy and idle workers, each running job's
 * optimizer-state bytes, samples/s and progress, and every HTTP request counted by route,
 * method and status with a latency histogram per route and method.
 *
 * The request figures are kept in memory by the HTTP layer's done hook (one mutex; a linear
 * table, since there are a few dozen route x method x status combinations); the rest is read
 * from the store and the job service at scrape time. A route is labelled with its pattern
 * ("/api/v1/jobs/{id}/epochs"), so the label set stays bounded whatever clients ask for. */
#define LOG_PREFIX "metrics"
#include "config.h"
#include "api/api.h"
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double bucket_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])
#define MAX_SERIES 256

typedef struct req_series {
    char route[64], method[8];
    unsigned status;
    uint64_t count;
} req_series;

typedef struct latency_series {
    char route[64], method[8];
    uint64_t buckets[NBUCKETS];   /* cumulative at print time, per bucket here */
    uint64_t count;
    double sum;
} latency_series;

struct api_metrics {
    pthread_mutex_t lock;
    req_series req[MAX_SERIES];
    int n_req;
    latency_series lat[MAX_SERIES];
    int n_lat;
};

api_metrics *api_metrics_new(void)
{
    api_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void api_metrics_free(api_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* "/api/v1/jobs/{id}/epochs" for the pattern "jobs/x/epochs" with x = '*'. */
static void route_label(const http_route *r, char *out, size_t cap)
{
    if (!r) {
        snprintf(out, cap, "other");
        return;
    }
    size_t used = (size_t)snprintf(out, cap, HTTP_API_PREFIX "/");
    for (const char *p = r->path; *p && used + 8 < cap; p++) {
        int arg = *p == '*' && (p == r->path || p[-1] == '/') && (p[1] == '/' || !p[1]);
        if (arg) {
            const char *name = strncmp(r->path, "datasets", 8) ? "{id}" : "{name}";
            used += (size_t)snprintf(out + used, cap - used, "%s", name);
        } else {
            out[used++] = *p;
            out[used] = '\0';
        }
    }
}

void api_metrics_request(void *appv, const http_route *route, const char *method, unsigned status, double seconds)
{
    api_ctx *app = appv;
    api_metrics *m = app ? app->metrics : NULL;
    if (!m)
        return;
    char label[64];
    route_label(route, label, sizeof label);
    pthread_mutex_lock(&m->lock);
    int i;
    for (i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && !strcmp(m->req[i].route, label) && !strcmp(m->req[i].method, method))
            break;
    if (i == m->n_req && m->n_req < MAX_SERIES) {
        snprintf(m->req[i].route, sizeof m->req[i].route, "%s", label);
        snprintf(m->req[i].method, sizeof m->req[i].method, "%.7s", method);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < m->n_req)
        m->req[i].count++;
    for (i = 0; i < m->n_lat; i++)
        if (!strcmp(m->lat[i].route, label) && !strcmp(m->lat[i].method, method))
            break;
    if (i == m->n_lat && m->n_lat < MAX_SERIES) {
        snprintf(m->lat[i].route, sizeof m->lat[i].route, "%s", label);
        snprintf(m->lat[i].method, sizeof m->lat[i].method, "%.7s", method);
        m->n_lat++;
    }
    if (i < m->n_lat) {
        latency_series *l = &m->lat[i];
        for (size_t b = 0; b < NBUCKETS; b++)
            if (seconds <= bucket_le[b]) {
                l->buckets[b]++;
                break;
            }
        l->count++;
        l->sum += seconds;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------ the text */

typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void emit(text *t, const char *fmt, ...)
{
    va_list ap;
    for (int pass = 0; pass < 2 && !t->failed; pass++) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 8192;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void help(text *t, const char *name, const char *type, const char *what)
{
    emit(t, "# HELP %s %s\n# TYPE %s %s\n", name, what, name, type);
}

static int store_figures(text *t, store *st, octet_err *e)
{
    int64_t counts[5], epochs = 0, steps = 0, queued = 0;
    int rc = store_job_counts(st, counts, e);
    if (rc == OCTET_OK)
        rc = store_row_counts(st, &epochs, &steps, e);
    if (rc == OCTET_OK)
        rc = store_queue_length(st, &queued, e);
    if (rc != OCTET_OK)
        return rc;
    help(t, "octet_jobs", "gauge", "Jobs in the store by status.");
    for (int i = 0; i < 5; i++)
        emit(t, "octet_jobs{status=\"%s\"} %lld\n", store_statuses[i], (long long)counts[i]);
    help(t, "octet_queue_depth", "gauge", "Jobs waiting for a worker.");
    emit(t, "octet_queue_depth %lld\n", (long long)queued);
    help(t, "octet_epochs_recorded", "gauge", "Epoch rows in the store.");
    emit(t, "octet_epochs_recorded %lld\n", (long long)epochs);
    help(t, "octet_steps_recorded", "gauge", "Logged-step rows in the store.");
    emit(t, "octet_steps_recorded %lld\n", (long long)steps);
    return OCTET_OK;
}

static void worker_figures(text *t, api_ctx *app)
{
    jobs_worker_view v[64];
    int n = jobs_snapshot(app->jobs, v, 64), busy = 0;
    n = n > 64 ? 64 : n;
    for (int i = 0; i < n; i++)
        busy += v[i].busy;
    help(t, "octet_workers", "gauge", "Job workers by state.");
    emit(t, "octet_workers{state=\"busy\"} %d\noctet_workers{state=\"idle\"} %d\n", busy, n - busy);
    help(t, "octet_job_optimizer_state_bytes", "gauge", "Optimizer-state bytes of each running job (allocator ledger).");
    for (int i = 0; i < n; i++)
        if (v[i].busy)
            emit(t, "octet_job_optimizer_state_bytes{job_id=\"%lld\",optimizer=\"%s\",device=\"%s\"} %lld\n",
                 (long long)v[i].job_id, v[i].optimizer, v[i].device, (long long)v[i].optimizer_state_bytes);
    help(t, "octet_job_samples_per_second", "gauge", "Training samples per second of each running job.");
    for (int i = 0; i < n; i++)
        if (v[i].busy)
            emit(t, "octet_job_samples_per_second{job_id=\"%lld\",optimizer=\"%s\",device=\"%s\"} %.6g\n",
                 (long long)v[i].job_id, v[i].optimizer, v[i].device, v[i].samples_per_s);
    help(t, "octet_job_steps_done", "gauge", "Optimizer steps done by each running job.");
    for (int i = 0; i < n; i++)
        if (v[i].busy)
            emit(t, "octet_job_steps_done{job_id=\"%lld\",total=\"%lld\"} %lld\n", (long long)v[i].job_id,
                 (long long)v[i].total_steps, (long long)v[i].steps_done);
}

static void request_figures(text *t, api_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    help(t, "octet_http_requests_total", "counter", "HTTP requests by route, method and status.");
    for (int i = 0; i < m->n_req; i++)
        emit(t, "octet_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n", m->req[i].route,
             m->req[i].method, m->req[i].status, (unsigned long long)m->req[i].count);
    help(t, "octet_http_request_duration_seconds", "histogram", "HTTP request latency by route and method.");
    for (int i = 0; i < m->n_lat; i++) {
        const latency_series *l = &m->lat[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += l->buckets[b];
            emit(t, "octet_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                 l->route, l->method, bucket_le[b], (unsigned long long)cum);
        }
        emit(t, "octet_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
             l->route, l->method, (unsigned long long)l->count);
        emit(t, "octet_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.9g\n", l->route, l->method,
             l->sum);
        emit(t, "octet_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n", l->route, l->method,
             (unsigned long long)l->count);
    }
    pthread_mutex_unlock(&m->lock);
}

enum MHD_Result api_metrics_get(http_request *req)
{
    api_ctx *app = req->app;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    text t = {0};
    octet_err e;
    if (store_figures(&t, st, &e) != OCTET_OK) {
        free(t.buf);
        return api_reply_store_error(req, &e);
    }
    worker_figures(&t, app);
    request_figures(&t, app->metrics);
    help(&t, "octet_uptime_seconds", "gauge", "Seconds since octetd started.");
    emit(&t, "octet_uptime_seconds %lld\n", (long long)(time(NULL) - app->started));
    if (t.failed) {
        free(t.buf);
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    }
    return http_reply_text(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len);
}
