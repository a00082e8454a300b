/* service.c: the worker pool (jobs.h): starting one thread per worker, each with its own store
 * connection, claiming the oldest queued job whenever it is idle (woken by jobs_wake, or by a
 * one-second poll, which also picks up jobs queued by another process), cancelling and
 * suspending the running jobs, and a bounded stop.
 *
 * A worker that cannot reach the store (locked for longer than the busy timeout, a full disk)
 * logs it and retries after a second; it never exits on its own. */
#define LOG_PREFIX "jobs"
#include "config.h"
#include "jobs/jobs_impl.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Waits on svc->wake until `seen` changes, the service stops, or `seconds` pass. Lock held. */
static void wait_for_work(jobs_service *s, uint64_t seen, double seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(seconds * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    while (!s->stopping && s->wakeups == seen)
        if (pthread_cond_timedwait(&s->wake, &s->lock, &until) == ETIMEDOUT)
            break;
}

/* Claims one job and runs it. Returns 1 when it ran one, 0 when the queue was empty, -1 when
 * the store failed. */
static int claim_and_run(worker *w)
{
    store_claim c;
    int found = 0;
    octet_err e;
    octet_err_clear(&e);
    if (store_job_claim(w->st, w->svc->host, w->device, &c, &found, &e) != OCTET_OK) {
        log_err("worker %d: cannot claim a job: %s", w->index, e.message);
        return -1;
    }
    if (!found)
        return 0;
    jobs_hub_notify(w->svc->cfg.hub, c.id);
    jobs_run_claimed(w, &c);
    store_claim_free(&c);
    return 1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    jobs_service *s = w->svc;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        uint64_t seen = s->wakeups;
        pthread_mutex_unlock(&s->lock);
        int r = claim_and_run(w);
        pthread_mutex_lock(&s->lock);
        if (r <= 0)
            wait_for_work(s, seen, 1.0);
    }
    w->ended = 1;
    s->n_ended++;
    pthread_cond_broadcast(&s->ended);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ------------------------------------------------------------------ start, stop */

static void free_service(jobs_service *s)
{
    for (int i = 0; s->workers && i < s->n_workers; i++)
        store_close(s->workers[i].st);
    free(s->workers);
    free(s->db_path);
    free(s->data_dir);
    free(s->host);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->ended);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int init_worker(jobs_service *s, int i, octet_err *e)
{
    worker *w = &s->workers[i];
    w->svc = s;
    w->index = i;
    w->cuda_index = s->cfg.cuda_devices > 0 ? i % s->cfg.cuda_devices : -1;
    if (w->cuda_index >= 0)
        snprintf(w->device, sizeof w->device, "cuda:%d", w->cuda_index);
    else
        snprintf(w->device, sizeof w->device, "cpu");
    atomic_init(&w->cancel, 0);
    atomic_init(&w->suspend, 0);
    return store_connect(s->db_path, &w->st, e);
}

int jobs_start(const jobs_config *cfg, jobs_service **out, octet_err *e)
{
    *out = NULL;
    if (cfg->workers < 1)
        return octet_fail(e, OCTET_ERR_ARG, "workers", "at least one worker is needed, got %d", cfg->workers);
    jobs_service *s = calloc(1, sizeof *s);
    if (!s)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    s->cfg = *cfg;
    s->db_path = strdup(cfg->db_path);
    s->data_dir = strdup(cfg->data_dir);
    s->host = strdup(cfg->host);
    s->workers = calloc((size_t)cfg->workers, sizeof *s->workers);
    s->n_workers = cfg->workers;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->ended, NULL);
    if (s->cfg.progress_every_s <= 0)
        s->cfg.progress_every_s = 1.0;
    int rc = s->db_path && s->data_dir && s->host && s->workers ? OCTET_OK
             : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    for (int i = 0; rc == OCTET_OK && i < s->n_workers; i++)
        rc = init_worker(s, i, e);
    for (int i = 0; rc == OCTET_OK && i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]))
            rc = octet_fail(e, OCTET_ERR, "workers", "cannot start worker thread %d", i);
        else
            s->workers[i].started = 1;
    }
    if (rc != OCTET_OK) {
        jobs_stop(s, 60.0);
        free_service(s);
        return rc;
    }
    *out = s;
    return OCTET_OK;
}

void jobs_wake(jobs_service *s)
{
    pthread_mutex_lock(&s->lock);
    s->wakeups++;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int jobs_cancel(jobs_service *s, int64_t id)
{
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].view.busy && s->workers[i].view.job_id == id) {
            atomic_store(&s->workers[i].cancel, 1);
            found = 1;
        }
    pthread_mutex_unlock(&s->lock);
    return found;
}

int jobs_stop(jobs_service *s, double grace_seconds)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    int started = 0;
    for (int i = 0; i < s->n_workers; i++) {
        atomic_store(&s->workers[i].suspend, 1);
        started += s->workers[i].started;
    }
    pthread_cond_broadcast(&s->wake);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(grace_seconds * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    while (s->n_ended < started)
        if (pthread_cond_timedwait(&s->ended, &s->lock, &until) == ETIMEDOUT)
            break;
    int all = s->n_ended >= started;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; all && i < s->n_workers; i++)
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
    if (!all)
        log_err("%d of %d workers still busy after %.0f s; their jobs resume at the next start",
                started - s->n_ended, started, grace_seconds);
    return all ? 0 : -1;
}

void jobs_free(jobs_service *s)
{
    if (s)
        free_service(s);
}

int jobs_snapshot(jobs_service *s, jobs_worker_view *out, int max)
{
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_workers && i < max; i++)
        out[i] = s->workers[i].view;
    int n = s->n_workers;
    pthread_mutex_unlock(&s->lock);
    return n;
}
