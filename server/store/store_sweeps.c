/* store_sweeps.c: sweeps in SQLite: a sweep row and all of its jobs created in one
 * transaction (all or none), the jobs and epochs the sweep view aggregates, the list with
 * status counts, and cancelling or deleting what a sweep holds.
 *
 * A sweep's jobs are ordinary jobs (jobs.sweep_id, jobs.grid_values): the workers run them as
 * any other, and their status changes append their events as usual. */
#define LOG_PREFIX "store"
#include "config.h"
#include "store/store_impl.h"
#include "log.h"

#include <string.h>

static int next_sweep_id(store *st, int64_t *id, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_NEXT_ID,
                                 "UPDATE id_sequence SET last = MAX(last, (SELECT COALESCE(MAX(id), 0) FROM sweeps)) "
                                 "+ 1 WHERE name = 'sweeps' RETURNING last", e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "numbering a sweep");
    *id = rc == OCTET_OK ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc;
}

static int insert_sweep(store *st, int64_t id, const char *name, const char *base, const char *grid, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_INSERT, "INSERT INTO sweeps (id, name, base, grid, created_at) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5)", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, name ? name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, base, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, grid, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "inserting a sweep");
    sqlite3_reset(s);
    return rc;
}

int store_sweep_insert(store *st, const char *name, const char *base, const char *grid, store_new_job *jobs, int n,
                       int64_t *sweep_id, int64_t *job_ids, octet_err *e)
{
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    rc = next_sweep_id(st, sweep_id, e);
    if (rc == OCTET_OK)
        rc = insert_sweep(st, *sweep_id, name, base, grid, e);
    for (int i = 0; rc == OCTET_OK && i < n; i++) {
        jobs[i].sweep_id = *sweep_id;
        jobs[i].idempotency_key = NULL;
        rc = store_job_add(st, &jobs[i], &job_ids[i], e);
    }
    return store_end(st, rc, e);
}

int store_sweep_get(store *st, int64_t id, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_GET, "SELECT id, name, created_at, base, grid FROM sweeps WHERE id = ?1",
                                 e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *out = store_row_json(s);
        json_object_set_new(*out, "base", store_col_parsed(s, 3));
        json_object_set_new(*out, "grid", store_col_parsed(s, 4));
    }
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading a sweep");
}

/* The epochs rows of every job of sweep id, appended to each job's "epochs" (jobs by id). */
static int attach_epochs(store *st, int64_t id, json_t *by_id, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_EPOCHS,
                                 "SELECT e.job_id, e.epoch, e.step, e.train_loss, e.eval_loss, e.eval_accuracy, "
                                 "e.eval_f1, e.train_seconds, e.eval_seconds, e.train_samples_per_second, "
                                 "e.learning_rate FROM epochs e JOIN jobs j ON j.id = e.job_id WHERE j.sweep_id = ?1 "
                                 "ORDER BY e.job_id, e.epoch", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)sqlite3_column_int64(s, 0));
        json_t *row = store_row_json(s);
        json_object_del(row, "job_id");
        json_array_append_new(json_object_get(json_object_get(by_id, key), "epochs"), row);
    }
    sqlite3_reset(s);
    return r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading a sweep's epochs");
}

int store_sweep_jobs(store *st, int64_t id, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_JOBS,
                                 "SELECT j.id, j.name, j.status, j.attempt, j.error_code, j.error, j.grid_values, "
                                 "m.n_params AS parameters, m.optimizer_state_bytes, m.adamw_bytes, m.peak_bytes "
                                 "FROM jobs j LEFT JOIN memory m ON m.job_id = j.id WHERE j.sweep_id = ?1 "
                                 "ORDER BY j.id", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    json_t *list = json_array(), *by_id = json_object();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *row = store_row_json(s);
        json_object_set_new(row, "grid_values", store_col_parsed(s, 6));
        static const char *const mem[] = {"parameters", "optimizer_state_bytes", "adamw_bytes", "peak_bytes"};
        json_t *m = json_is_null(json_object_get(row, "parameters")) ? json_null() : json_object();
        for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
            if (json_is_object(m))
                json_object_set(m, mem[i], json_object_get(row, mem[i]));
            json_object_del(row, mem[i]);
        }
        json_object_set_new(row, "memory", m);
        json_object_set_new(row, "epochs", json_array());
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)sqlite3_column_int64(s, 0));
        json_object_set(by_id, key, row);
        json_array_append_new(list, row);
    }
    sqlite3_reset(s);
    int rc = r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading a sweep's jobs");
    if (rc == OCTET_OK)
        rc = attach_epochs(st, id, by_id, e);
    json_decref(by_id);
    if (rc != OCTET_OK) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return OCTET_OK;
}

/* The status counts of sweep id, {"queued": n, ...} with every status present. */
static int sweep_counts(store *st, int64_t id, json_t **out, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_COUNTS,
                                 "SELECT status, COUNT(*) FROM jobs WHERE sweep_id = ?1 GROUP BY status", e);
    if (!s)
        return OCTET_ERR_DB;
    json_t *c = json_object();
    for (int i = 0; i < 5; i++)
        json_object_set_new(c, store_statuses[i], json_integer(0));
    sqlite3_bind_int64(s, 1, id);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_object_set_new(c, (const char *)sqlite3_column_text(s, 0), json_integer(sqlite3_column_int64(s, 1)));
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        json_decref(c);
        return store_fail(st, e, "counting a sweep's jobs");
    }
    *out = c;
    return OCTET_OK;
}

int store_sweep_list(store *st, int64_t before_id, int limit, json_t **items, int64_t *next_before, octet_err *e)
{
    *items = NULL;
    *next_before = 0;
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_LIST, "SELECT id, name, created_at, grid FROM sweeps "
                                 "WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2", e);
    if (!s)
        return OCTET_ERR_DB;
    if (before_id > 0)
        sqlite3_bind_int64(s, 1, before_id);
    sqlite3_bind_int(s, 2, limit + 1);
    json_t *list = json_array();
    int r, n = 0;
    int64_t last = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n++ == limit) {
            *next_before = last;
            break;
        }
        last = sqlite3_column_int64(s, 0);
        json_t *row = store_row_json(s);
        json_object_set_new(row, "grid", store_col_parsed(s, 3));
        json_array_append_new(list, row);
    }
    sqlite3_reset(s);
    int rc = r == SQLITE_ROW || r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "listing sweeps");
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row) {
        json_t *c = NULL;
        int64_t sid = json_integer_value(json_object_get(row, "id"));
        if (rc == OCTET_OK && (rc = sweep_counts(st, sid, &c, e)) == OCTET_OK)
            json_object_set_new(row, "counts", c);
    }
    if (rc != OCTET_OK) {
        json_decref(list);
        return rc;
    }
    *items = list;
    return OCTET_OK;
}

/* The ids of sweep id's jobs with `status` (NULL: all), into ids[max]; their count into *n. */
static int job_ids(store *st, int64_t id, const char *status, int64_t *ids, int max, int *n, octet_err *e)
{
    *n = 0;
    sqlite3_stmt *s = store_stmt(st, SS_SWEEP_JOB_IDS, "SELECT id FROM jobs WHERE sweep_id = ?1 "
                                 "AND (?2 IS NULL OR status = ?2) ORDER BY id", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    store_bind_text_or_null(s, 2, status);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        if (*n < max)
            ids[(*n)++] = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "listing a sweep's jobs");
}

int store_sweep_cancel(store *st, int64_t id, int *found, int64_t *running, int max, int *n_running, octet_err *e)
{
    *found = 0;
    *n_running = 0;
    json_t *sweep = NULL;
    int rc = store_sweep_get(st, id, &sweep, e);
    *found = sweep != NULL;
    json_decref(sweep);
    if (rc != OCTET_OK || !*found)
        return rc;
    int64_t queued[1024];
    int nq = 0;
    rc = job_ids(st, id, STORE_QUEUED, queued, 1024, &nq, e);
    for (int i = 0; rc == OCTET_OK && i < nq; i++) {
        int outcome = 0;
        rc = store_job_cancel(st, queued[i], &outcome, e);
    }
    if (rc == OCTET_OK)
        rc = job_ids(st, id, STORE_RUNNING, running, max, n_running, e);
    for (int i = 0; rc == OCTET_OK && i < *n_running; i++) {
        int outcome = 0;
        rc = store_job_cancel(st, running[i], &outcome, e);
    }
    return rc;
}

int store_sweep_delete(store *st, int64_t id, int *outcome, int64_t *ids, int max, int *n_ids, octet_err *e)
{
    *n_ids = 0;
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    json_t *sweep = NULL, *counts = NULL;
    rc = store_sweep_get(st, id, &sweep, e);
    if (rc == OCTET_OK && !sweep)
        *outcome = STORE_NO_JOB;
    if (rc == OCTET_OK && sweep)
        rc = sweep_counts(st, id, &counts, e);
    if (rc == OCTET_OK && counts) {
        int active = json_integer_value(json_object_get(counts, STORE_QUEUED)) +
                     json_integer_value(json_object_get(counts, STORE_RUNNING));
        *outcome = active ? STORE_DELETE_ACTIVE : STORE_DELETE_DONE;
    }
    if (rc == OCTET_OK && counts && *outcome == STORE_DELETE_DONE) {
        rc = job_ids(st, id, NULL, ids, max, n_ids, e);
        sqlite3_stmt *s = NULL;
        if (rc == OCTET_OK)
            s = store_stmt(st, SS_SWEEP_DELETE, "DELETE FROM sweeps WHERE id = ?1", e);
        if (rc == OCTET_OK && !s)
            rc = OCTET_ERR_DB;
        if (s) {
            sqlite3_bind_int64(s, 1, id);
            rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "deleting a sweep");
            sqlite3_reset(s);
        }
    }
    json_decref(sweep);
    json_decref(counts);
    return store_end(st, rc, e);
}
