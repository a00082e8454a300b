/* store.h: octet's persistent store, the one interface the rest of the server uses for data:
 * the job queue, each job's history (logged steps, epochs, memory figures, the event log the
 * live stream replays), and uploaded datasets.
 *
 * Today the store is one SQLite file in WAL mode; all SQL lives in server/store/. Opening a
 * store applies every schema/NNN_name.sql not yet recorded in its schema_version table, in
 * order, each in its own transaction (store_open); further connections to the same file skip
 * that (store_connect). A store handle is one database connection: use it from one thread at a
 * time, and open one handle per thread that needs the database (WAL lets readers and one
 * writer work side by side; a writer waits up to 5 s for the lock). Statements are prepared
 * once per connection. Every write that belongs together (a step row, its event and the job's
 * progress) commits in one transaction, so a crash loses nothing that was reported.
 *
 * The queue is claimed with one atomic statement (store_job_claim), so several workers, or
 * several octetd processes sharing a database that can do it (PostgreSQL's FOR UPDATE SKIP
 * LOCKED), never take the same job. Functions that return JSON build new references with the
 * API's field names. Every function returns OCTET_OK or a negative status (OCTET_ERR_DB,
 * OCTET_ERR_IO, ...) with the reason in the octet_err; nothing here exits. */
#ifndef OCTET_STORE_H
#define OCTET_STORE_H

#include <jansson.h>
#include <stdint.h>
#include "status.h"

typedef struct store store;

/* Opens (creating it if absent) the database file `path` and brings its schema up to date from
 * the *.sql files in `schema_dir`. The file's directory must exist. Fails with OCTET_ERR_DB when
 * SQLite cannot open the file or a migration fails (that migration is rolled back; earlier
 * ones stay applied), OCTET_ERR_IO when the schema directory or a file in it cannot be read,
 * and OCTET_ERR_FORMAT when two files carry the same number or the database already has a
 * newer schema than `schema_dir` knows. *out is NULL on failure. */
int store_open(const char *path, const char *schema_dir, store **out, octet_err *e);

/* Opens one more connection to a database that store_open has brought up to date (a worker's,
 * an HTTP thread's). Fails with OCTET_ERR_DB. */
int store_connect(const char *path, store **out, octet_err *e);

/* A number that grows with every commit made through this process's connections, read after
 * the commit is visible to every reader; 0 when it cannot be kept (a connection is not in WAL
 * mode). Equal numbers read before two reads of the database mean this process wrote nothing in
 * between; other processes' writes are not counted. */
uint64_t store_generation(void);

/* Closes the connection and finalizes its statements; NULL is ignored. */
void store_close(store *st);

/* The highest applied schema version (0 for none). Fails with OCTET_ERR_DB when the database
 * cannot be read, which is also how a health check learns that the store is unusable. */
int store_schema_version(store *st, int *version, octet_err *e);

/* Writes the current UTC time as ISO-8601 with milliseconds ("2025-01-31T12:00:00.000Z"),
 * the format of every timestamp column. `buf` must hold 25 bytes; never fails. */
void store_now(char *buf, size_t len);

/* ------------------------------------------------------------------ the queue (store_jobs.c) */

/* The job statuses, as stored and served. */
#define STORE_QUEUED "queued"
#define STORE_RUNNING "running"
#define STORE_SUCCEEDED "succeeded"
#define STORE_FAILED "failed"
#define STORE_CANCELLED "cancelled"

/* True for succeeded, failed and cancelled. */
int store_status_final(const char *status);
/* True for the five statuses above. */
int store_status_valid(const char *status);

typedef struct store_new_job {
    const char *name;
    const char *spec;               /* the normalised spec, JSON text */
    const char *arch, *optimizer, *dataset;
    const char *model;              /* a short label: preset, model directory or layer sizes */
    const char *idempotency_key;    /* NULL: none */
    const char *request;            /* the submitted body as canonical JSON (compared per key) */
    int64_t sweep_id;               /* > 0: the job belongs to this sweep */
    const char *grid_values;        /* a sweep's job: its {"path": value} (JSON text) */
} store_new_job;

/* Queues a job (and its first event, status queued). With an idempotency key that is already
 * stored: the same request gives the existing job's id with *replayed = 1; another request is
 * OCTET_ERR_MISMATCH (field "Idempotency-Key"). */
int store_job_insert(store *st, const store_new_job *j, int64_t *id, int *replayed, octet_err *e);
/* Queues a job inside the caller's transaction (no idempotency key): the id, the row, the
 * first event. */
int store_job_add(store *st, const store_new_job *j, int64_t *id, octet_err *e);

/* A job a worker has claimed. */
typedef struct store_claim {
    int64_t id;
    int attempt;                    /* 1 on the first run, +1 on every later one */
    int cancel_requested;
    char *spec;                     /* the normalised spec (malloc'd JSON text) */
} store_claim;

/* Claims the oldest queued job for `host` on `device` in one atomic statement: status running,
 * attempt + 1, started_at on the first run, a status event. *found = 0 when the queue is
 * empty. Free the claim with store_claim_free. */
int store_job_claim(store *st, const char *host, const char *device, store_claim *out, int *found, octet_err *e);
void store_claim_free(store_claim *c);

/* At start-up: every job this host left running (a crash, a kill) counts one crash and goes
 * back to the queue to resume from its checkpoint; a job that has crashed `max_crashes` times
 * without recording a new epoch in between (store_epoch_add clears the count) fails instead:
 * a job that kills octetd every time it runs, not one that a restart interrupted. Counts into
 * *requeued and *failed. */
int store_jobs_recover(store *st, const char *host, int max_crashes, int *requeued, int *failed, octet_err *e);

/* The run's trainer info (JSON), its total optimizer steps and the device it trains on. */
int store_job_set_info(store *st, int64_t id, const json_t *info, int64_t total_steps, const char *device,
                       octet_err *e);
/* Optimizer steps done and the estimated seconds left (< 0: unknown); no event. */
int store_job_progress(store *st, int64_t id, int64_t steps_done, double eta_seconds, octet_err *e);

/* Ends a run: status succeeded, failed or cancelled (finished_at set), or queued again (a
 * graceful stop: the run resumes from its checkpoint). A failure carries its error code,
 * message and field (each may be NULL). Appends the status event. */
int store_job_finish(store *st, int64_t id, const char *status, const char *code, const char *message,
                     const char *field, octet_err *e);

enum { STORE_CANCEL_DONE = 0, STORE_CANCEL_REQUESTED, STORE_CANCEL_FINISHED, STORE_NO_JOB };
/* Cancels a queued job at once (STORE_CANCEL_DONE, with its status event), marks a running one
 * (STORE_CANCEL_REQUESTED: its worker stops it), refuses a finished one
 * (STORE_CANCEL_FINISHED), or says STORE_NO_JOB; in *outcome. */
int store_job_cancel(store *st, int64_t id, int *outcome, octet_err *e);

enum { STORE_DELETE_DONE = 0, STORE_DELETE_ACTIVE = 1 };
/* Deletes a finished job and every row of it (STORE_DELETE_DONE); a queued or running one is
 * STORE_DELETE_ACTIVE; STORE_NO_JOB when there is none. */
int store_job_delete(store *st, int64_t id, int *outcome, octet_err *e);

/* The job's version: its row's revision and its newest event seq, which together change
 * whenever anything GET /jobs/{id} shows changes. *found = 0 when there is no such job. */
int store_job_version(store *st, int64_t id, int64_t *revision, int64_t *last_event, int *found, octet_err *e);

/* The job's status (into status[16]), whether a cancel was asked, and its newest event seq;
 * status "" when there is no such job. */
int store_job_state(store *st, int64_t id, char *status, int *cancel_requested, int64_t *last_event,
                    octet_err *e);

/* The job's spec and run info as stored (compact JSON text, malloc'd; NULL when absent). */
typedef struct store_job_texts {
    char *spec, *info;
} store_job_texts;
void store_job_texts_free(store_job_texts *t);

/* The job as served by GET /jobs/{id}: id, name, status, attempt, spec, timestamps, progress,
 * steps, ETA, device, error, info, the latest epoch, memory. *out = NULL when there is none.
 * With texts, spec and info are left out of *out and handed over as stored instead (no parse
 * and no second serialisation: the API splices them into its reply). */
int store_job_get(store *st, int64_t id, json_t **out, store_job_texts *texts, octet_err *e);

typedef struct store_job_filter {
    const char *status, *optimizer, *arch, *dataset;  /* NULL: any */
    int64_t sweep_id;                                 /* > 0: only this sweep's jobs */
    int64_t before_id;                                /* > 0: ids below it (the cursor) */
    int limit;
} store_job_filter;
/* The jobs matching f, newest first, as list items (no spec or info); *next_before is the
 * cursor of the next page, 0 when this is the last one. */
int store_job_list(store *st, const store_job_filter *f, json_t **items, int64_t *next_before, octet_err *e);

/* Jobs per status (indexed as store_statuses) and the queue's length. */
extern const char *const store_statuses[5];
int store_job_counts(store *st, int64_t counts[5], octet_err *e);
int store_queue_length(store *st, int64_t *n, octet_err *e);

/* ------------------------------------------------------------------ history (store_history.c) */

/* A logged step (trainer_step_json's object: step, epoch, loss, learning_rate, grad_norm,
 * elapsed_s), with its event and the job's progress, in one transaction. A step logged again
 * (a run resumed from an older checkpoint) replaces the row. */
int store_step_add(store *st, int64_t id, const json_t *step, double eta_seconds, octet_err *e);

/* An epoch (trainer_epoch_json's object), with its event and progress, in one transaction.
 * An epoch already recorded is left as it is (*added = 0, no event): a resumed run reports its
 * restored epochs again. */
int store_epoch_add(store *st, int64_t id, const json_t *epoch, int *added, octet_err *e);

/* The memory figures (trainer_memory_json's object) and their event; final = 1 at the run's end. */
int store_memory_put(store *st, int64_t id, const json_t *memory, int final, octet_err *e);

int store_job_epochs(store *st, int64_t id, json_t **out, octet_err *e);
/* Steps after `after_step`, at most `limit`; *more = 1 when more follow. */
int store_job_steps(store *st, int64_t id, int64_t after_step, int limit, json_t **out, int *more, octet_err *e);
/* The memory figures, or *out = NULL when none were recorded yet. */
int store_job_memory(store *st, int64_t id, json_t **out, octet_err *e);

/* One event of the log. */
typedef struct store_event {
    int64_t seq;
    char type[8];
    char *data;                     /* JSON text, malloc'd */
} store_event;
/* Up to `max` events after seq `after`, in order, into ev[]; their count into *n. Free each
 * data with free(). */
int store_job_events(store *st, int64_t id, int64_t after, store_event *ev, int max, int *n, octet_err *e);

/* Rows recorded in all: epochs and steps. */
int store_row_counts(store *st, int64_t *epochs, int64_t *steps, octet_err *e);

/* ------------------------------------------------------------------ sweeps (store_sweeps.c) */

/* Creates a sweep (name, base spec and grid as JSON text) and its n jobs in one transaction:
 * all or none. The jobs' ids go to job_ids[n]. */
int store_sweep_insert(store *st, const char *name, const char *base, const char *grid, store_new_job *jobs, int n,
                       int64_t *sweep_id, int64_t *job_ids, octet_err *e);
/* The sweep's row {id, name, base, grid, created_at} (base and grid parsed), or *out = NULL. */
int store_sweep_get(store *st, int64_t id, json_t **out, octet_err *e);
/* Every job of the sweep, in id order: {id, name, status, attempt, grid_values (parsed), error
 * code and message, memory: {parameters, optimizer_state_bytes, adamw_bytes, peak_bytes} or
 * null, epochs: [the epochs rows]}. */
int store_sweep_jobs(store *st, int64_t id, json_t **out, octet_err *e);
/* Sweeps newest first (ids below before_id when > 0), each {id, name, created_at, grid,
 * counts: {status: n}}; *next_before as store_job_list's. */
int store_sweep_list(store *st, int64_t before_id, int limit, json_t **items, int64_t *next_before, octet_err *e);
/* Cancels what is left of a sweep: its queued jobs at once (with their events), its running
 * ones marked (their ids into running[max], their count into *n_running, for the workers).
 * *found = 0 when there is no such sweep. */
int store_sweep_cancel(store *st, int64_t id, int *found, int64_t *running, int max, int *n_running, octet_err *e);
/* Deletes a sweep whose jobs have all finished, with its jobs and their rows; their ids go to
 * ids[max] (*n_ids) so their checkpoints can be removed. *outcome: STORE_DELETE_DONE,
 * STORE_DELETE_ACTIVE (a job is queued or running), STORE_NO_JOB (no such sweep). */
int store_sweep_delete(store *st, int64_t id, int *outcome, int64_t *ids, int max, int *n_ids, octet_err *e);

/* ------------------------------------------------------------------ datasets (store_datasets.c) */

typedef struct store_dataset {
    const char *name, *format, *path, *task;
    int num_labels;
    int64_t n_train, n_eval, bytes;
} store_dataset;

/* Records an uploaded dataset; OCTET_ERR_MISMATCH when the name is taken. */
int store_dataset_add(store *st, const store_dataset *d, octet_err *e);
/* The uploaded dataset `name` as JSON (with its path), or *out = NULL. */
int store_dataset_get(store *st, const char *name, json_t **out, octet_err *e);
int store_dataset_list(store *st, json_t **out, octet_err *e);
/* Deletes it; *found = 0 when there was none. */
int store_dataset_delete(store *st, const char *name, int *found, octet_err *e);
/* Queued or running jobs whose dataset is `name`. */
int store_dataset_users(store *st, const char *name, int64_t *n, octet_err *e);

#endif
