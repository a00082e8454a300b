/* store_jobs.c: the job queue in SQLite: submitting (with idempotency keys), claiming the
 * oldest queued job in one statement, recovering the jobs a crash left running, ending runs,
 * cancelling, deleting, and the job and job-list documents the API serves.
 *
 * Every change of a job's status appends a status event in the same transaction, so the event
 * log (GET /jobs/{id}/events) and the jobs table never disagree. Ids come from id_sequence, so
 * an id is never reused after a delete. */
#define LOG_PREFIX "store"
#include "config.h"
#include "store/store_impl.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

const char *const store_statuses[5] = {STORE_QUEUED, STORE_RUNNING, STORE_SUCCEEDED, STORE_FAILED, STORE_CANCELLED};

int store_status_final(const char *status)
{
    return !strcmp(status, STORE_SUCCEEDED) || !strcmp(status, STORE_FAILED) || !strcmp(status, STORE_CANCELLED);
}

int store_status_valid(const char *status)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(status, store_statuses[i]))
            return 1;
    return 0;
}

/* A status event's data: {"status", "at"} plus the extra members given (borrowed). */
static int status_event(store *st, int64_t id, const char *status, json_t *extra, octet_err *e)
{
    char now[32];
    store_now(now, sizeof now);
    json_t *d = json_pack("{ss ss}", "status", status, "at", now);
    if (!d)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    if (extra)
        json_object_update(d, extra);
    int rc = store_event_append(st, id, "status", d, NULL, e);
    json_decref(d);
    return rc;
}

/* ------------------------------------------------------------------ submitting */

/* The job holding `key`: its id and stored request, or *id = 0. */
static int job_by_key(store *st, const char *key, int64_t *id, char **request, octet_err *e)
{
    *id = 0;
    *request = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_BY_KEY, "SELECT id, request FROM jobs WHERE idempotency_key = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(s), rc = OCTET_OK;
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        const char *t = (const char *)sqlite3_column_text(s, 1);
        *request = strdup(t ? t : "");
        if (!*request)
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    } else if (r != SQLITE_DONE) {
        rc = store_fail(st, e, "looking up an idempotency key");
    }
    sqlite3_reset(s);
    return rc;
}

static int next_job_id(store *st, int64_t *id, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_JOB_NEXT_ID,
                                 "UPDATE id_sequence SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM jobs)) + 1 "
                                 "WHERE name = 'jobs' RETURNING last", e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "numbering a job");
    *id = rc == OCTET_OK ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc;
}

static int insert_row(store *st, const store_new_job *j, int64_t id, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_JOB_INSERT,
                                 "INSERT INTO jobs (id, name, spec, status, created_at, updated_at, arch, optimizer, "
                                 "dataset, idempotency_key, request, sweep_id, grid_values, model) VALUES (?1, ?2, ?3, "
                                 "'queued', ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, j->name ? j->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, j->spec, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, now, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, j->arch ? j->arch : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, j->optimizer ? j->optimizer : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, j->dataset ? j->dataset : "", -1, SQLITE_STATIC);
    store_bind_text_or_null(s, 8, j->idempotency_key);
    store_bind_text_or_null(s, 9, j->idempotency_key ? j->request : NULL);
    if (j->sweep_id > 0)
        sqlite3_bind_int64(s, 10, j->sweep_id);
    store_bind_text_or_null(s, 11, j->grid_values);
    sqlite3_bind_text(s, 12, j->model ? j->model : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "inserting a job");
    sqlite3_reset(s);
    return rc;
}

int store_job_add(store *st, const store_new_job *j, int64_t *id, octet_err *e)
{
    int rc = next_job_id(st, id, e);
    if (rc == OCTET_OK)
        rc = insert_row(st, j, *id, e);
    if (rc == OCTET_OK)
        rc = status_event(st, *id, STORE_QUEUED, NULL, e);
    return rc;
}

int store_job_insert(store *st, const store_new_job *j, int64_t *id, int *replayed, octet_err *e)
{
    *id = 0;
    *replayed = 0;
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    if (j->idempotency_key) {
        char *stored = NULL;
        rc = job_by_key(st, j->idempotency_key, id, &stored, e);
        if (rc == OCTET_OK && *id) {
            if (strcmp(stored, j->request ? j->request : ""))
                rc = octet_fail(e, OCTET_ERR_MISMATCH, "Idempotency-Key",
                                "this key was used for job %lld with another request; use a new key for a new job",
                                (long long)*id);
            else
                *replayed = 1;
        }
        free(stored);
        if (rc != OCTET_OK || *replayed)
            return store_end(st, rc, e);
    }
    rc = store_job_add(st, j, id, e);
    return store_end(st, rc, e);
}

/* ------------------------------------------------------------------ running */

int store_job_claim(store *st, const char *host, const char *device, store_claim *out, int *found, octet_err *e)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_CLAIM,
                                 "UPDATE jobs SET revision = revision + 1, "
                                 "status = 'running', attempt = attempt + 1, host = ?1, device = ?2, "
                                 "started_at = COALESCE(started_at, ?3), updated_at = ?3, eta_seconds = NULL "
                                 "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1) "
                                 "RETURNING id, attempt, cancel_requested, spec", e);
    if (!s)
        return store_end(st, OCTET_ERR_DB, e);
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, now, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        out->id = sqlite3_column_int64(s, 0);
        out->attempt = sqlite3_column_int(s, 1);
        out->cancel_requested = sqlite3_column_int(s, 2);
        out->spec = strdup((const char *)sqlite3_column_text(s, 3));
        *found = 1;
        if (!out->spec)
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    } else if (r != SQLITE_DONE) {
        rc = store_fail(st, e, "claiming a job");
    }
    sqlite3_reset(s);
    if (rc == OCTET_OK && *found) {
        json_t *x = json_pack("{si ss}", "attempt", out->attempt, "device", device);
        rc = status_event(st, out->id, STORE_RUNNING, x, e);
        json_decref(x);
    }
    rc = store_end(st, rc, e);
    if (rc != OCTET_OK) {
        store_claim_free(out);
        *found = 0;
    }
    return rc;
}

void store_claim_free(store_claim *c)
{
    free(c->spec);
    memset(c, 0, sizeof *c);
}

/* Requeues (or fails, after too many crashes) the running job `id` left by a crash. */
static int recover_one(store *st, int64_t id, int crashes, int max_crashes, int *failed, octet_err *e)
{
    char now[32], msg[160];
    store_now(now, sizeof now);
    *failed = crashes + 1 >= max_crashes;
    if (*failed) {
        snprintf(msg, sizeof msg, "octetd stopped while running this job %d times; not resuming it again",
                 crashes + 1);
        return store_job_finish(st, id, STORE_FAILED, "crashed", msg, NULL, e);
    }
    sqlite3_stmt *s = store_stmt(st, SS_JOB_RECOVER,
                                 "UPDATE jobs SET revision = revision + 1, "
                                 "status = 'queued', crashes = crashes + 1, updated_at = ?2, "
                                 "eta_seconds = NULL WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "requeueing a job");
    sqlite3_reset(s);
    if (rc == OCTET_OK) {
        json_t *x = json_pack("{ss}", "reason", "octetd stopped while it ran; it resumes from its newest checkpoint");
        rc = status_event(st, id, STORE_QUEUED, x, e);
        json_decref(x);
    }
    return rc;
}

int store_jobs_recover(store *st, const char *host, int max_crashes, int *requeued, int *failed, octet_err *e)
{
    *requeued = *failed = 0;
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_RECOVER_LIST,
                                 "SELECT id, crashes FROM jobs WHERE status = 'running' AND host = ?1 ORDER BY id", e);
    int64_t ids[64];
    int crashes[64], n = 0, r = SQLITE_DONE;
    if (!s)
        rc = OCTET_ERR_DB;
    else
        sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
    /* at most 64 per pass (one per worker at most were running); the loop below repeats */
    while (rc == OCTET_OK && n < 64 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(s, 0);
        crashes[n++] = sqlite3_column_int(s, 1);
    }
    if (rc == OCTET_OK && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store_fail(st, e, "listing interrupted jobs");
    if (s)
        sqlite3_reset(s);
    for (int i = 0; rc == OCTET_OK && i < n; i++) {
        int f = 0;
        rc = recover_one(st, ids[i], crashes[i], max_crashes, &f, e);
        *failed += f;
        *requeued += !f;
    }
    rc = store_end(st, rc, e);
    if (rc == OCTET_OK && n == 64) { /* more than one pass's worth */
        int more_r = 0, more_f = 0;
        rc = store_jobs_recover(st, host, max_crashes, &more_r, &more_f, e);
        *requeued += more_r;
        *failed += more_f;
    }
    return rc;
}

int store_job_set_info(store *st, int64_t id, const json_t *info, int64_t total_steps, const char *device,
                       octet_err *e)
{
    char *text = json_dumps(info, JSON_COMPACT);
    sqlite3_stmt *s = text ? store_stmt(st, SS_JOB_INFO, "UPDATE jobs SET revision = revision + 1, "
                                        "info = ?2, total_steps = ?3, "
                                        "updated_at = ?4, device = ?5 WHERE id = ?1", e) : NULL;
    int rc = !text ? octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory") : !s ? OCTET_ERR_DB : OCTET_OK;
    if (rc == OCTET_OK) {
        char now[32];
        store_now(now, sizeof now);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, total_steps);
        sqlite3_bind_text(s, 4, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 5, device, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "recording a run's info");
        sqlite3_reset(s);
    }
    free(text);
    return rc;
}

int store_job_progress(store *st, int64_t id, int64_t steps_done, double eta_seconds, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_JOB_PROGRESS,
                                 "UPDATE jobs SET revision = revision + 1, "
                                 "steps_done = ?2, progress = CASE WHEN total_steps > 0 THEN "
                                 "MIN(1.0, CAST(?2 AS DOUBLE PRECISION) / total_steps) ELSE progress END, "
                                 "eta_seconds = ?3, updated_at = ?4 WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, steps_done);
    if (eta_seconds >= 0)
        sqlite3_bind_double(s, 3, eta_seconds);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_text(s, 4, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "recording progress");
    sqlite3_reset(s);
    return rc;
}

/* The status event of a run's end: the error for a failure. */
static json_t *finish_extra(const char *status, const char *code, const char *message, const char *field)
{
    if (strcmp(status, STORE_FAILED))
        return NULL;
    return json_pack("{s{ss ss so}}", "error", "code", code ? code : "error", "message", message ? message : "",
                     "field", field && *field ? json_string(field) : json_null());
}

int store_job_finish(store *st, int64_t id, const char *status, const char *code, const char *message,
                     const char *field, octet_err *e)
{
    int nested = !sqlite3_get_autocommit(st->db);
    int rc = nested ? OCTET_OK : store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_FINISH,
                                 "UPDATE jobs SET revision = revision + 1, "
                                 "status = ?2, error_code = ?3, error = ?4, error_field = ?5, "
                                 "updated_at = ?6, eta_seconds = CASE WHEN ?2 = 'queued' THEN NULL ELSE 0 END, "
                                 "finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?6 END, "
                                 "progress = CASE WHEN ?2 = 'succeeded' THEN 1.0 ELSE progress END WHERE id = ?1", e);
    if (!s) {
        rc = OCTET_ERR_DB;
    } else {
        char now[32];
        store_now(now, sizeof now);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
        store_bind_text_or_null(s, 3, code);
        store_bind_text_or_null(s, 4, message);
        store_bind_text_or_null(s, 5, field);
        sqlite3_bind_text(s, 6, now, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "ending a run");
        sqlite3_reset(s);
    }
    if (rc == OCTET_OK) {
        json_t *x = finish_extra(status, code, message, field);
        rc = status_event(st, id, status, x, e);
        json_decref(x);
    }
    return nested ? rc : store_end(st, rc, e);
}

/* ------------------------------------------------------------------ cancel, delete */

int store_job_state(store *st, int64_t id, char *status, int *cancel_requested, int64_t *last_event,
                    octet_err *e)
{
    status[0] = '\0';
    sqlite3_stmt *s = store_stmt(st, SS_JOB_STATE,
                                 "SELECT status, cancel_requested, last_event FROM jobs WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s), rc = OCTET_OK;
    if (r == SQLITE_ROW) {
        snprintf(status, 16, "%s", (const char *)sqlite3_column_text(s, 0));
        if (cancel_requested)
            *cancel_requested = sqlite3_column_int(s, 1);
        if (last_event)
            *last_event = sqlite3_column_int64(s, 2);
    } else if (r != SQLITE_DONE) {
        rc = store_fail(st, e, "reading a job's status");
    }
    sqlite3_reset(s);
    return rc;
}

int store_job_version(store *st, int64_t id, int64_t *revision, int64_t *last_event, int *found, octet_err *e)
{
    *found = 0;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_VERSION, "SELECT revision, last_event FROM jobs WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *found = 1;
        *revision = sqlite3_column_int64(s, 0);
        *last_event = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading a job's version");
}

/* Runs a one-row UPDATE/DELETE of job id; *changed = rows changed. */
static int change_job(store *st, int slot, const char *sql, int64_t id, int *changed, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, slot, sql, e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "changing a job");
    *changed = rc == OCTET_OK ? sqlite3_changes(st->db) : 0;
    sqlite3_reset(s);
    return rc;
}

int store_job_cancel(store *st, int64_t id, int *outcome, octet_err *e)
{
    int rc = store_begin(st, e), changed = 0;
    char status[16] = "";
    if (rc == OCTET_OK)
        rc = store_job_state(st, id, status, NULL, NULL, e);
    if (rc == OCTET_OK && !status[0])
        *outcome = STORE_NO_JOB;
    else if (rc == OCTET_OK && store_status_final(status))
        *outcome = STORE_CANCEL_FINISHED;
    else if (rc == OCTET_OK && !strcmp(status, STORE_QUEUED)) {
        rc = change_job(st, SS_JOB_CANCEL_QUEUED, "UPDATE jobs SET revision = revision + 1, "
                        "status = 'cancelled', finished_at = ?2, "
                        "updated_at = ?2, eta_seconds = 0, cancel_requested = 1 WHERE id = ?1 AND status = 'queued'",
                        id, &changed, e);
        if (rc == OCTET_OK && changed)
            rc = status_event(st, id, STORE_CANCELLED, NULL, e);
        *outcome = STORE_CANCEL_DONE;
    } else if (rc == OCTET_OK) {
        rc = change_job(st, SS_JOB_CANCEL_RUNNING, "UPDATE jobs SET revision = revision + 1, "
                        "cancel_requested = 1, updated_at = ?2 "
                        "WHERE id = ?1", id, &changed, e);
        *outcome = STORE_CANCEL_REQUESTED;
    }
    return store_end(st, rc, e);
}

int store_job_delete(store *st, int64_t id, int *outcome, octet_err *e)
{
    int rc = store_begin(st, e), changed = 0;
    char status[16] = "";
    if (rc == OCTET_OK)
        rc = store_job_state(st, id, status, NULL, NULL, e);
    if (rc == OCTET_OK && !status[0])
        *outcome = STORE_NO_JOB;
    else if (rc == OCTET_OK && !store_status_final(status))
        *outcome = STORE_DELETE_ACTIVE;
    else if (rc == OCTET_OK) {
        rc = change_job(st, SS_JOB_DELETE, "DELETE FROM jobs WHERE id = ?1", id, &changed, e);
        *outcome = STORE_DELETE_DONE;
    }
    return store_end(st, rc, e);
}

/* ------------------------------------------------------------------ documents */

/* Moves row members `keys` (NULL-terminated) into a new object under `name` in row; a row
 * whose first key is null gets JSON null there instead. */
static void nest(json_t *row, const char *name, const char *const *keys, const char *const *as)
{
    json_t *first = json_object_get(row, keys[0]);
    json_t *o = json_is_null(first) || !first ? json_null() : json_object();
    for (int i = 0; keys[i]; i++) {
        if (json_is_object(o))
            json_object_set(o, as[i], json_object_get(row, keys[i]));
        json_object_del(row, keys[i]);
    }
    json_object_set_new(row, name, o);
}

/* The common shape of a job row (store_job_get and the list): booleans, the error object. */
static void shape_job(json_t *row)
{
    static const char *const err_keys[] = {"error_code", "error", "error_field", NULL};
    static const char *const err_as[] = {"code", "message", "field", NULL};
    json_t *cr = json_object_get(row, "cancel_requested");
    if (cr)
        json_object_set_new(row, "cancel_requested", json_boolean(json_integer_value(cr)));
    json_t *code = json_object_get(row, "error_code");
    if (json_is_null(code) && json_is_string(json_object_get(row, "error"))) /* a message without a code */
        json_object_set_new(row, "error_code", json_string("error"));
    nest(row, "error", err_keys, err_as);
}

static int latest_epoch(store *st, int64_t id, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_EPOCH_LATEST,
                                 "SELECT epoch, step, train_loss, eval_loss, eval_accuracy, eval_f1, eval_samples, "
                                 "train_seconds, eval_seconds, train_samples_per_second, learning_rate, created_at "
                                 "FROM epochs WHERE job_id = ?1 ORDER BY epoch DESC LIMIT 1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *out = store_row_json(s);
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading the latest epoch");
}

/* A copy of column i's text (NULL for SQL NULL); *failed set when out of memory. */
static char *col_copy(sqlite3_stmt *s, int i, int *failed)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *c = t ? strdup(t) : NULL;
    if (t && !c)
        *failed = 1;
    return c;
}

int store_job_get(store *st, int64_t id, json_t **out, store_job_texts *texts, octet_err *e)
{
    *out = NULL;
    if (texts)
        texts->spec = texts->info = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_GET,
                                 "SELECT id, name, status, attempt, created_at, started_at, finished_at, updated_at, "
                                 "progress, steps_done, total_steps, eta_seconds, device, arch, model, optimizer, "
                                 "dataset, cancel_requested, error_code, error, error_field, idempotency_key, "
                                 "last_event, sweep_id, grid_values, spec, info FROM jobs WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    json_t *job = NULL;
    int failed = 0;
    if (r == SQLITE_ROW) {
        job = store_row_json(s);
        int n = sqlite3_column_count(s);
        json_object_set_new(job, "grid_values", store_col_parsed(s, n - 3));
        if (texts) { /* the caller splices them into its reply as they are stored */
            json_object_del(job, "spec");
            json_object_del(job, "info");
            texts->spec = col_copy(s, n - 2, &failed);
            texts->info = col_copy(s, n - 1, &failed);
        } else {
            json_object_set_new(job, "spec", store_col_parsed(s, n - 2));
            json_object_set_new(job, "info", store_col_parsed(s, n - 1));
        }
    }
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return store_fail(st, e, "reading a job");
    if (failed) {
        json_decref(job);
        store_job_texts_free(texts);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    if (!job)
        return OCTET_OK;
    shape_job(job);
    json_t *epoch = NULL, *memory = NULL;
    int rc = latest_epoch(st, id, &epoch, e);
    if (rc == OCTET_OK)
        rc = store_job_memory(st, id, &memory, e);
    json_object_set_new(job, "latest_epoch", epoch ? epoch : json_null());
    json_object_set_new(job, "memory", memory ? memory : json_null());
    if (rc != OCTET_OK) {
        json_decref(job);
        store_job_texts_free(texts);
        return rc;
    }
    *out = job;
    return OCTET_OK;
}

void store_job_texts_free(store_job_texts *t)
{
    if (!t)
        return;
    free(t->spec);
    free(t->info);
    t->spec = t->info = NULL;
}

int store_job_list(store *st, const store_job_filter *f, json_t **items, int64_t *next_before, octet_err *e)
{
    *items = NULL;
    *next_before = 0;
    static const char *const ep_keys[] = {"epoch", "epoch_step", "train_loss", "eval_loss", "eval_accuracy", "eval_f1",
                                          NULL};
    static const char *const ep_as[] = {"epoch", "step", "train_loss", "eval_loss", "eval_accuracy", "eval_f1", NULL};
    sqlite3_stmt *s = store_stmt(st, SS_JOB_LIST,
                                 "SELECT j.id, j.name, j.status, j.attempt, j.created_at, j.started_at, "
                                 "j.finished_at, j.progress, j.steps_done, j.total_steps, j.eta_seconds, j.device, "
                                 "j.arch, j.model, j.optimizer, j.dataset, j.cancel_requested, j.error_code, j.error, "
                                 "j.error_field, j.sweep_id, j.grid_values, e.epoch, e.step AS epoch_step, "
                                 "e.train_loss, e.eval_loss, e.eval_accuracy, e.eval_f1, m.optimizer_state_bytes "
                                 "FROM jobs j "
                                 "LEFT JOIN epochs e ON e.job_id = j.id AND e.epoch = "
                                 "(SELECT MAX(epoch) FROM epochs WHERE job_id = j.id) "
                                 "LEFT JOIN memory m ON m.job_id = j.id "
                                 "WHERE (?1 IS NULL OR j.status = ?1) AND (?2 IS NULL OR j.optimizer = ?2) "
                                 "AND (?3 IS NULL OR j.arch = ?3) AND (?4 IS NULL OR j.dataset = ?4) "
                                 "AND (?5 IS NULL OR j.id < ?5) AND (?7 IS NULL OR j.sweep_id = ?7) "
                                 "ORDER BY j.id DESC LIMIT ?6", e);
    if (!s)
        return OCTET_ERR_DB;
    store_bind_text_or_null(s, 1, f->status);
    store_bind_text_or_null(s, 2, f->optimizer);
    store_bind_text_or_null(s, 3, f->arch);
    store_bind_text_or_null(s, 4, f->dataset);
    if (f->before_id > 0)
        sqlite3_bind_int64(s, 5, f->before_id);
    sqlite3_bind_int(s, 6, f->limit + 1);
    if (f->sweep_id > 0)
        sqlite3_bind_int64(s, 7, f->sweep_id);
    json_t *list = json_array();
    int r, n = 0;
    int64_t last_id = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n++ == f->limit) { /* one row past the page: there is a next one */
            *next_before = last_id;
            break;
        }
        last_id = sqlite3_column_int64(s, 0);
        json_t *row = store_row_json(s);
        json_t *gv = json_object_get(row, "grid_values");
        json_object_set_new(row, "grid_values", json_is_string(gv) ? json_loads(json_string_value(gv), 0, NULL)
                                                                    : json_null());
        shape_job(row);
        nest(row, "latest_epoch", ep_keys, ep_as);
        json_array_append_new(list, row);
    }
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        json_decref(list);
        return store_fail(st, e, "listing jobs");
    }
    *items = list;
    return OCTET_OK;
}

int store_job_counts(store *st, int64_t counts[5], octet_err *e)
{
    memset(counts, 0, 5 * sizeof *counts);
    sqlite3_stmt *s = store_stmt(st, SS_JOB_COUNTS, "SELECT status, COUNT(*) FROM jobs GROUP BY status", e);
    if (!s)
        return OCTET_ERR_DB;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(s, 0);
        for (int i = 0; i < 5; i++)
            if (!strcmp(status, store_statuses[i]))
                counts[i] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "counting jobs");
}

int store_queue_length(store *st, int64_t *n, octet_err *e)
{
    *n = 0;
    sqlite3_stmt *s = store_stmt(st, SS_JOB_QUEUED, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'", e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "counting the queue");
    if (rc == OCTET_OK)
        *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc;
}
