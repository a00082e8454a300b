/* hub.c: the event hub (jobs.h): the list of live-stream readers waiting for a job's next
 * event, a generation counter that closes the race between a reader's last look at the store
 * and its registration, and a keep-alive tick that wakes every reader periodically (so a
 * stream writes a comment now and then, and a reader whose client left finds out).
 *
 * One mutex guards everything; wake() callbacks run under it. The tick thread sleeps on a
 * condition variable, so freeing the hub does not wait for a whole tick. */
#define LOG_PREFIX "hub"
#include "config.h"
#include "jobs/jobs.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct jobs_hub {
    pthread_mutex_t lock;
    pthread_cond_t tick_cond;
    pthread_t ticker;
    double tick_seconds;
    uint64_t generation;
    int closing, stop_ticker;
    jobs_waiter *waiters;
};

/* Calls and unlinks every waiter for which `all` is set or whose job is `job_id`. Lock held. */
static void wake_matching(jobs_hub *h, int all, int64_t job_id)
{
    jobs_waiter **p = &h->waiters;
    while (*p) {
        jobs_waiter *w = *p;
        if (all || w->job_id == job_id) {
            *p = w->next;
            w->next = NULL;
            w->registered = 0;
            w->wake(w->cookie);
        } else {
            p = &w->next;
        }
    }
}

static void *tick_main(void *arg)
{
    jobs_hub *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stop_ticker) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = (long long)(h->tick_seconds * 1e9) + until.tv_nsec;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&h->tick_cond, &h->lock, &until);
        wake_matching(h, 1, 0);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

jobs_hub *jobs_hub_new(double tick_seconds)
{
    jobs_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->tick_cond, NULL);
    h->tick_seconds = tick_seconds > 0 ? tick_seconds : 15.0;
    if (pthread_create(&h->ticker, NULL, tick_main, h)) {
        log_err("cannot start the keep-alive thread");
        pthread_cond_destroy(&h->tick_cond);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    return h;
}

void jobs_hub_shutdown(jobs_hub *h)
{
    pthread_mutex_lock(&h->lock);
    h->closing = 1;
    h->generation++;
    wake_matching(h, 1, 0);
    pthread_mutex_unlock(&h->lock);
}

int jobs_hub_closing(jobs_hub *h)
{
    pthread_mutex_lock(&h->lock);
    int c = h->closing;
    pthread_mutex_unlock(&h->lock);
    return c;
}

void jobs_hub_free(jobs_hub *h)
{
    if (!h)
        return;
    jobs_hub_shutdown(h);
    pthread_mutex_lock(&h->lock);
    h->stop_ticker = 1;
    pthread_cond_signal(&h->tick_cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->ticker, NULL);
    pthread_cond_destroy(&h->tick_cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void jobs_hub_notify(jobs_hub *h, int64_t job_id)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->generation++;
    wake_matching(h, 0, job_id);
    pthread_mutex_unlock(&h->lock);
}

uint64_t jobs_hub_generation(jobs_hub *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t g = h->generation;
    pthread_mutex_unlock(&h->lock);
    return g;
}

int jobs_hub_wait(jobs_hub *h, jobs_waiter *w, uint64_t generation)
{
    pthread_mutex_lock(&h->lock);
    int r = h->closing ? -1 : h->generation != generation ? 0 : 1;
    if (r == 1 && !w->registered) {
        w->next = h->waiters;
        h->waiters = w;
        w->registered = 1;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

void jobs_hub_forget(jobs_hub *h, jobs_waiter *w)
{
    pthread_mutex_lock(&h->lock);
    for (jobs_waiter **p = &h->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    w->next = NULL;
    w->registered = 0;
    pthread_mutex_unlock(&h->lock);
}
