/* run.c: one run of one claimed job (jobs_impl.h): the spec is parsed and checked again, the
 * trainer opened on the worker's device (resuming from the job's newest checkpoint when there
 * is one), and every report of the trainer recorded in the store as it comes, each followed by
 * a notification of the event hub:
 *
 *   on_start     the run's info and total steps;
 *   on_step      a steps row and its event, progress and ETA;
 *   on_progress  progress and ETA, written at most every progress_every_s (no event);
 *   on_epoch     an epochs row and its event (a restored epoch already recorded is skipped);
 *   on_memory    the memory row and its event.
 *
 * The end: succeeded; cancelled (the cancel request, polled before every batch; its finished
 * epochs and checkpoint stay); queued again (suspended by jobs_stop: checkpointed at the step
 * reached); or failed with the error's code, message and field. A failure to record is a
 * failure of the run: the trainer stops, and if even the final status cannot be written the
 * job stays `running`, so the next start-up resumes it. */
#define LOG_PREFIX "jobs"
#include "config.h"
#include "jobs/jobs_impl.h"
#include "log.h"
#include "train/estimate.h"
#include "train/trainer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CANCEL_POLL_S 2.0  /* how often the store's cancel flag is read (another octetd's cancel) */

typedef struct job_run {
    worker *w;
    int64_t id;
    int attempt;
    job_spec spec;
    double t_start;             /* on_start */
    int64_t first_step;         /* the global step this run started from (-1: not yet known) */
    int64_t total_steps;
    double last_progress_write, last_cancel_poll;
    octet_err record_err;       /* why recording failed, when it did */
} job_run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds left at `step`, from this run's pace so far; -1 when unknown. */
static double eta_at(const job_run *r, int64_t step)
{
    double elapsed = now_s() - r->t_start;
    int64_t done = step - r->first_step;
    if (r->first_step < 0 || done <= 0 || elapsed <= 0 || r->total_steps <= 0)
        return -1.0;
    return (double)(r->total_steps - step) * elapsed / (double)done;
}

static void view_update(job_run *r, int64_t step, const trainer_memory *mem)
{
    jobs_service *s = r->w->svc;
    pthread_mutex_lock(&s->lock);
    jobs_worker_view *v = &r->w->view;
    if (step >= 0) {
        v->steps_done = step;
        double elapsed = now_s() - r->t_start;
        const spec_training *tr = &r->spec.training;
        if (r->first_step >= 0 && elapsed > 0)
            v->samples_per_s = (double)(step - r->first_step) * tr->batch_size * tr->grad_accum / elapsed;
    }
    if (mem)
        v->optimizer_state_bytes = (int64_t)mem->optimizer_state_bytes;
    v->total_steps = r->total_steps;
    pthread_mutex_unlock(&s->lock);
}

/* A recording failure: remembered and returned as the callback's status, so the run stops. */
static int record_failed(job_run *r, int rc, const octet_err *e, const char *what)
{
    log_err("job %lld: cannot record %s: %s", (long long)r->id, what, e->message);
    r->record_err = *e;
    return rc;
}

static void notify(job_run *r)
{
    jobs_hub_notify(r->w->svc->cfg.hub, r->id);
}

/* ------------------------------------------------------------------ the trainer's callbacks */

static int on_start(void *user, const trainer_info *info)
{
    job_run *r = user;
    r->t_start = now_s();
    r->total_steps = info->total_steps;
    json_t *j = trainer_info_json(info);
    json_object_set_new(j, "attempt", json_integer(r->attempt));
    char device[16];
    if (!strcmp(info->device, "cuda"))
        snprintf(device, sizeof device, "cuda:%d", r->w->cuda_index < 0 ? 0 : r->w->cuda_index);
    else
        snprintf(device, sizeof device, "%s", info->device);
    octet_err e;
    int rc = store_job_set_info(r->w->st, r->id, j, info->total_steps, device, &e);
    json_decref(j);
    view_update(r, -1, NULL);
    return rc == OCTET_OK ? 0 : record_failed(r, rc, &e, "the run's info");
}

static int on_progress(void *user, int64_t step, int64_t total)
{
    job_run *r = user;
    if (r->first_step < 0)
        r->first_step = step - 1;
    view_update(r, step, NULL);
    double now = now_s();
    if (step < total && now - r->last_progress_write < r->w->svc->cfg.progress_every_s)
        return 0;
    r->last_progress_write = now;
    octet_err e;
    int rc = store_job_progress(r->w->st, r->id, step, eta_at(r, step), &e);
    return rc == OCTET_OK ? 0 : record_failed(r, rc, &e, "progress");
}

static int on_step(void *user, const trainer_step_log *log)
{
    job_run *r = user;
    json_t *j = trainer_step_json(log);
    double eta = eta_at(r, log->step);
    /* the event carries the job's progress too, so a follower needs no second request */
    json_object_set_new(j, "total_steps", json_integer(r->total_steps));
    json_object_set_new(j, "eta_seconds", eta >= 0 ? json_real(eta) : json_null());
    octet_err e;
    int rc = store_step_add(r->w->st, r->id, j, eta, &e);
    json_decref(j);
    if (rc != OCTET_OK)
        return record_failed(r, rc, &e, "a step");
    notify(r);
    return 0;
}

static int on_epoch(void *user, const trainer_epoch_metrics *m)
{
    job_run *r = user;
    json_t *j = trainer_epoch_json(m);
    octet_err e;
    int added = 0;
    int rc = store_epoch_add(r->w->st, r->id, j, &added, &e);
    json_decref(j);
    if (rc != OCTET_OK)
        return record_failed(r, rc, &e, "an epoch");
    if (added) {
        if (m->restored) /* checkpointed, then octetd stopped before recording it */
            log_info("job %lld: epoch %d recorded from its checkpoint", (long long)r->id, m->epoch);
        notify(r);
    }
    return 0;
}

static int on_memory(void *user, const trainer_memory *mem, int final)
{
    job_run *r = user;
    json_t *j = trainer_memory_json(mem);
    octet_err e;
    int rc = store_memory_put(r->w->st, r->id, j, final, &e);
    json_decref(j);
    if (rc != OCTET_OK)
        return record_failed(r, rc, &e, "memory figures");
    view_update(r, -1, mem);
    notify(r);
    return 0;
}

static int cancelled(void *user)
{
    job_run *r = user;
    if (atomic_load(&r->w->cancel))
        return 1;
    double now = now_s();
    if (now - r->last_cancel_poll < CANCEL_POLL_S)
        return 0;
    r->last_cancel_poll = now;
    char status[16];
    int requested = 0;
    octet_err e;
    if (store_job_state(r->w->st, r->id, status, &requested, NULL, &e) == OCTET_OK && requested)
        atomic_store(&r->w->cancel, 1);
    return atomic_load(&r->w->cancel);
}

static int suspend(void *user)
{
    job_run *r = user;
    return atomic_load(&r->w->suspend);
}

/* ------------------------------------------------------------------ the run */

/* Records the end of the run and wakes its stream's readers. */
static void finish(job_run *r, const char *status, int rc, const octet_err *e)
{
    octet_err fe;
    int failed = !strcmp(status, STORE_FAILED);
    const char *code = failed ? trainer_error_code(rc) : NULL;
    const char *msg = failed ? (e->message[0] ? e->message : octet_strerror(rc)) : NULL;
    const char *field = failed ? e->field : NULL;
    if (store_job_finish(r->w->st, r->id, status, code, msg, field, &fe) != OCTET_OK)
        log_err("job %lld: cannot record its end (%s): %s; it stays running until the next start", (long long)r->id,
                status, fe.message);
    else
        log_info("job %lld %s%s%s", (long long)r->id, status, msg ? ": " : "", msg ? msg : "");
    notify(r);
}

/* The options of this run: the worker's device, the job's checkpoints, the callbacks. */
static trainer_options run_options(job_run *r, const char *ckdir)
{
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device_index = r->w->cuda_index < 0 ? 0 : r->w->cuda_index;
    o.device_mem_limit = r->w->svc->cfg.memory_limit;
    o.checkpoint_dir = ckdir;
    o.resume = TRAINER_RESUME_IF_ANY;
    o.threads = r->w->svc->cfg.threads;
    o.cb.user = r;
    o.cb.on_start = on_start;
    o.cb.on_step = on_step;
    o.cb.on_epoch = on_epoch;
    o.cb.on_memory = on_memory;
    o.cb.on_progress = on_progress;
    o.cb.cancelled = cancelled;
    o.cb.suspend = suspend;
    return o;
}

/* Parses and checks the stored spec; OCTET_ERR_ARG naming the field when the server's data
 * changed under a queued job (a dataset deleted, a file moved out). */
static int prepare(job_run *r, const store_claim *c, octet_err *e)
{
    jobs_service *s = r->w->svc;
    int rc = spec_parse_text(c->spec, SPEC_SERVER, &r->spec, e);
    if (rc == OCTET_OK)
        rc = jobs_check_spec(r->w->st, s->data_dir, s->cfg.cuda_devices, &r->spec, 1, e);
    return rc;
}

/* Admits the job on this worker's device as it is now: its estimated peak must fit what the
 * device can give (what other jobs hold on a shared GPU included). A refusal fails the job
 * with OCTET_ERR_NOMEM naming the field to change; an estimate that cannot be made is left
 * to trainer_open, which fails the same way. */
static int admit(job_run *r, const trainer_options *opt, octet_err *e)
{
    trainer_estimate est;
    if (trainer_estimate_spec(&r->spec, opt, &est, e) != OCTET_OK)
        return OCTET_OK;
    return est.device_total ? trainer_admit(&est, est.device_free, e) : OCTET_OK;
}

/* Marks the worker busy with job id, unless the service is stopping (returns 0 then). */
static int begin(worker *w, const store_claim *c, const job_spec *spec)
{
    jobs_service *s = w->svc;
    pthread_mutex_lock(&s->lock);
    int go = !s->stopping;
    if (go) {
        atomic_store(&w->cancel, c->cancel_requested ? 1 : 0);
        atomic_store(&w->suspend, 0);
        memset(&w->view, 0, sizeof w->view);
        w->view.busy = 1;
        w->view.job_id = c->id;
        snprintf(w->view.device, sizeof w->view.device, "%s", w->device);
        snprintf(w->view.optimizer, sizeof w->view.optimizer, "%s", optim_kind_name(spec->optimizer.cfg.kind));
    }
    pthread_mutex_unlock(&s->lock);
    return go;
}

static void end(worker *w)
{
    pthread_mutex_lock(&w->svc->lock);
    memset(&w->view, 0, sizeof w->view);
    snprintf(w->view.device, sizeof w->view.device, "%s", w->device);
    pthread_mutex_unlock(&w->svc->lock);
}

/* The status a run that ended with rc (and res) leaves its job in. */
static const char *outcome(const job_run *r, int rc, const trainer_result *res)
{
    if (rc == OCTET_OK)
        return res->suspended ? STORE_QUEUED : STORE_SUCCEEDED;
    if (rc == OCTET_ERR_CANCEL && atomic_load(&r->w->cancel))
        return STORE_CANCELLED;
    return STORE_FAILED;
}

void jobs_run_claimed(worker *w, const store_claim *c)
{
    jobs_service *s = w->svc;
    job_run *r = calloc(1, sizeof *r); /* a job_spec is large: not on the worker's stack */
    octet_err e;
    octet_err_clear(&e);
    if (!r) {
        log_err("job %lld: out of memory; it stays running until the next start", (long long)c->id);
        return;
    }
    r->w = w;
    r->id = c->id;
    r->attempt = c->attempt;
    r->first_step = -1;
    int rc = prepare(r, c, &e);
    if (rc != OCTET_OK) {
        finish(r, STORE_FAILED, rc, &e);
        free(r);
        return;
    }
    if (!begin(w, c, &r->spec)) { /* stopping: back to the queue untouched */
        finish(r, STORE_QUEUED, OCTET_OK, &e);
        free(r);
        return;
    }
    char ckdir[PATH_MAX];
    jobs_checkpoint_dir(s->data_dir, r->id, ckdir, sizeof ckdir);
    if (r->attempt == 1)
        jobs_remove_checkpoints(s->data_dir, r->id); /* nothing of an older job with this id */
    log_info("job %lld: attempt %d on %s", (long long)r->id, r->attempt, w->device);
    trainer_options opt = run_options(r, ckdir);
    trainer_result res;
    memset(&res, 0, sizeof res);
    trainer *t = NULL;
    if (atomic_load(&w->cancel))
        rc = octet_fail(&e, OCTET_ERR_CANCEL, "", "cancelled before it started");
    else if ((rc = admit(r, &opt, &e)) == OCTET_OK && (rc = trainer_open(&r->spec, &opt, &t, &e)) == OCTET_OK)
        rc = trainer_train(t, &res, &e);
    trainer_close(t);
    if (rc != OCTET_OK && r->record_err.message[0]) /* the store failed, not the training */
        e = r->record_err;
    finish(r, outcome(r, rc, &res), rc, &e);
    end(w);
    free(r);
}
