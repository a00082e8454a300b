/* jobs.h: running the queued jobs: a fixed pool of worker threads that claim jobs from the
 * store in submission order and train them through the trainer (server/train/trainer.h),
 * recording every logged step, epoch and memory figure as it is produced; cancelling and
 * suspending running jobs; and the hub that wakes the readers of a job's live event stream.
 *
 * Each worker owns one store connection and one device (CUDA device i for worker i when the
 * server has CUDA devices, else the CPU) and binds its thread to it. Training never runs on an
 * HTTP thread: the API queues a job in the store and calls jobs_wake. A job's checkpoints live
 * in DATA_DIR/checkpoints/<id>; a job that runs again (after a graceful stop, or a crash found
 * at start-up by store_jobs_recover) resumes from the newest one. jobs_stop suspends every
 * running job at its next optimizer step (a checkpoint of that position, status queued) and
 * joins the workers.
 *
 * A claimed job is admitted again before it runs (its estimated peak must fit what its device
 * can give now; server/train/estimate.h), and runs with its device capped at memory_limit.
 *
 * The paths a spec names (dataset.train_file, dataset.eval_file, model.path) are relative to
 * the data directory and may not leave it, symlinks included (jobs_resolve_path); the API checks
 * them at submission, the worker again before it opens them. */
#ifndef OCTET_JOBS_H
#define OCTET_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"
#include "store/store.h"
#include "train/spec.h"

/* ------------------------------------------------------------------ the event hub (hub.c) */

/* Wakes the readers of job event streams when a job has new events. A reader reads the hub's
 * generation, then the store; when the store had nothing new it registers a waiter with that
 * generation: if anything was notified since, registration is refused (read again), else the
 * waiter's wake() is called at the job's next notification, at the next keep-alive tick, or at
 * shutdown, and the waiter is removed before the call. wake() runs with the hub's lock held:
 * it must only hand the signal on (e.g. resume a suspended connection). */
typedef struct jobs_hub jobs_hub;

typedef struct jobs_waiter {
    int64_t job_id;
    void (*wake)(void *cookie);
    void *cookie;
    struct jobs_waiter *next;   /* the hub's list; not for callers */
    int registered;             /* the hub's; not for callers */
} jobs_waiter;

/* A hub with a keep-alive tick every `tick_seconds` (its own thread). NULL when out of memory
 * or the thread cannot start. */
jobs_hub *jobs_hub_new(double tick_seconds);
/* Wakes every waiter, refuses new ones, stops the tick thread and frees the hub. */
void jobs_hub_free(jobs_hub *h);
/* Job id has new events in the store (call after the commit). */
void jobs_hub_notify(jobs_hub *h, int64_t job_id);
uint64_t jobs_hub_generation(jobs_hub *h);
/* Registers w (see above). Returns 1 when registered, 0 when something was notified since
 * `generation` (read the store again), -1 when the hub is shutting down (end the stream). */
int jobs_hub_wait(jobs_hub *h, jobs_waiter *w, uint64_t generation);
/* Removes w when it is still registered. */
void jobs_hub_forget(jobs_hub *h, jobs_waiter *w);
/* Wakes every waiter and refuses new ones, for a server that is stopping. */
void jobs_hub_shutdown(jobs_hub *h);
int jobs_hub_closing(jobs_hub *h);

/* ------------------------------------------------------------------ paths (paths.c) */

/* Resolves `rel`, a path relative to the data directory `data_dir` (a real path), into
 * out[cap]: it must be relative, exist, and its real path (symlinks resolved) must lie inside
 * data_dir. Fails with OCTET_ERR_ARG naming `field` and saying why. */
int jobs_resolve_path(const char *data_dir, const char *rel, const char *field, char *out, size_t cap,
                      octet_err *e);

/* Checks what a spec names in octetd before it is queued or run: every path (as
 * jobs_resolve_path), a dataset.name that is built in or uploaded (looked up in st; the
 * message lists what exists), and the device (training.device cuda without a CUDA device,
 * bf16/fp16 precision on a CPU-only server). With resolve = 1 it also rewrites spec for the
 * trainer: an uploaded dataset becomes its train_file. Fails with OCTET_ERR_ARG naming the
 * field, or the store's status. */
int jobs_check_spec(store *st, const char *data_dir, int cuda_devices, job_spec *spec, int resolve, octet_err *e);

/* The checkpoint directory of job id: DATA_DIR/checkpoints/<id>. */
void jobs_checkpoint_dir(const char *data_dir, int64_t id, char *out, size_t cap);
/* rm -rf of a job's checkpoint directory (no symlink is followed); errors are logged. */
void jobs_remove_checkpoints(const char *data_dir, int64_t id);

/* ------------------------------------------------------------------ the service (service.c) */

typedef struct jobs_config {
    const char *db_path;        /* the store (already migrated by the caller) */
    const char *data_dir;       /* the data directory, a real path */
    const char *host;           /* this server's name in jobs.host */
    int workers;                /* >= 1 */
    int cuda_devices;           /* 0: every worker trains on the CPU */
    jobs_hub *hub;              /* borrowed; notified of every recorded event */
    double progress_every_s;    /* how often progress is written between logged steps (1 s) */
    int threads;                /* CPU threads of each job (trainer_options.threads); 0: the
                                 * worker thread's OpenMP default */
    size_t memory_limit;        /* > 0: the most a job's device may give it (admission and the run) */
} jobs_config;

typedef struct jobs_service jobs_service;

/* Starts the workers. Fails with OCTET_ERR_ARG (no workers), OCTET_ERR_DB (a worker's
 * connection), OCTET_ERR_NOMEM, or OCTET_ERR (a thread could not start); nothing keeps
 * running then. */
int jobs_start(const jobs_config *cfg, jobs_service **out, octet_err *e);
/* A job was queued: an idle worker claims it now rather than at its next poll. */
void jobs_wake(jobs_service *s);
/* Asks the worker running job id to stop it within one batch (its status becomes cancelled).
 * Returns 1 when this server runs it, 0 when not. */
int jobs_cancel(jobs_service *s, int64_t id);
/* Stops claiming, suspends every running job at its next optimizer step (checkpoint, back to
 * the queue) and waits up to grace_seconds for the workers. Returns 0 when every worker ended
 * in time, -1 when some were still busy (they are left running; the process should exit, and
 * store_jobs_recover resumes their jobs at the next start). */
int jobs_stop(jobs_service *s, double grace_seconds);
/* Frees a service whose workers have all ended (jobs_stop returned 0). */
void jobs_free(jobs_service *s);

/* What one worker is doing, for /metrics. */
typedef struct jobs_worker_view {
    int busy;
    int64_t job_id;
    char device[16];
    char optimizer[24];
    int64_t steps_done, total_steps;
    double samples_per_s;           /* training samples/s of this run so far */
    int64_t optimizer_state_bytes;  /* the ledger's, once reported */
} jobs_worker_view;
/* Fills up to max views; returns the number of workers. */
int jobs_snapshot(jobs_service *s, jobs_worker_view *out, int max);

#endif
