/* jobs_impl.h: the job service's private parts, shared by service.c (the pool) and run.c (one
 * run of one job): the service, its workers, and what a worker shows while it runs a job.
 *
 * svc->lock guards the workers' views and busy flags, `stopping` and the wake-up counter; the
 * cancel and suspend requests are atomics the trainer's callbacks poll without the lock. */
#ifndef OCTET_JOBS_IMPL_H
#define OCTET_JOBS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include "jobs/jobs.h"

typedef struct worker {
    struct jobs_service *svc;
    int index;
    int cuda_index;              /* -1: the CPU */
    char device[16];             /* "cpu" or "cuda:N" */
    pthread_t thread;
    int started, ended;
    store *st;                   /* this worker's connection */
    atomic_int cancel;           /* the running job: cancel it at the next batch */
    atomic_int suspend;          /* ... or checkpoint and requeue it at the next step */
    jobs_worker_view view;       /* under svc->lock */
} worker;

struct jobs_service {
    jobs_config cfg;             /* strings copied below */
    char *db_path, *data_dir, *host;
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* a job was queued, or the service is stopping */
    pthread_cond_t ended;        /* a worker ended */
    uint64_t wakeups;
    int stopping;
    int n_workers, n_ended;
    worker *workers;
};

/* Runs one claimed job to its end (run.c): succeeded, failed, cancelled, or queued again when
 * suspended. Every outcome is recorded in the store; nothing is returned. */
void jobs_run_claimed(worker *w, const store_claim *c);

#endif
