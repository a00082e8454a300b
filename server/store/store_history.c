/* store_history.c: what a running job records: logged steps, evaluated epochs and memory
 * figures, each written with its event and the job's progress in one transaction, and read
 * back in the shapes octet-train prints (trainer_report.c), so the API and the command line
 * show the same objects. Also the event log's reader and the row counts of /metrics.
 *
 * A resumed run may report what is already recorded: its restored epochs (kept as first
 * recorded, no second event) and the steps logged after the checkpoint it resumes from
 * (replaced by the new run's, which on the CPU are the same numbers). */
#define LOG_PREFIX "store"
#include "config.h"
#include "store/store_impl.h"
#include "log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Binds member `key` of o: a number as a double, anything else as NULL. */
static void bind_num(sqlite3_stmt *s, int i, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_number(v) && isfinite(json_number_value(v)))
        sqlite3_bind_double(s, i, json_number_value(v));
    else
        sqlite3_bind_null(s, i);
}

static void bind_int(sqlite3_stmt *s, int i, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        sqlite3_bind_int64(s, i, (sqlite3_int64)json_integer_value(v));
    else
        sqlite3_bind_null(s, i);
}

static int step_row(store *st, int64_t id, const json_t *step, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_STEP_INSERT,
                                 "INSERT INTO steps (job_id, step, epoch, loss, learning_rate, grad_norm, "
                                 "elapsed_seconds, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                                 "ON CONFLICT (job_id, step) DO UPDATE SET epoch = excluded.epoch, "
                                 "loss = excluded.loss, learning_rate = excluded.learning_rate, "
                                 "grad_norm = excluded.grad_norm, elapsed_seconds = excluded.elapsed_seconds, "
                                 "created_at = excluded.created_at", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    bind_int(s, 2, step, "step");
    bind_num(s, 3, step, "epoch");
    bind_num(s, 4, step, "loss");
    bind_num(s, 5, step, "learning_rate");
    bind_num(s, 6, step, "grad_norm");
    bind_num(s, 7, step, "elapsed_s");
    sqlite3_bind_text(s, 8, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "recording a step");
    sqlite3_reset(s);
    return rc;
}

int store_step_add(store *st, int64_t id, const json_t *step, double eta_seconds, octet_err *e)
{
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    /* steps.loss is NOT NULL: a log whose every step was skipped (no loss) is an event only */
    if (json_is_number(json_object_get(step, "loss")))
        rc = step_row(st, id, step, e);
    if (rc == OCTET_OK)
        rc = store_event_append(st, id, "step", step, NULL, e);
    if (rc == OCTET_OK)
        rc = store_job_progress(st, id, json_integer_value(json_object_get(step, "step")), eta_seconds, e);
    return store_end(st, rc, e);
}

static int epoch_row(store *st, int64_t id, const json_t *m, int *added, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_EPOCH_INSERT,
                                 "INSERT INTO epochs (job_id, epoch, step, train_loss, eval_loss, eval_accuracy, "
                                 "eval_f1, learning_rate, seconds, created_at, eval_samples, train_seconds, "
                                 "eval_seconds, train_samples_per_second) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                 "?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (job_id, epoch) DO NOTHING", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    double tsec = json_number_value(json_object_get(m, "train_seconds"));
    double esec = json_number_value(json_object_get(m, "eval_seconds"));
    sqlite3_bind_int64(s, 1, id);
    bind_int(s, 2, m, "epoch");
    bind_int(s, 3, m, "step");
    bind_num(s, 4, m, "train_loss");
    bind_num(s, 5, m, "eval_loss");
    bind_num(s, 6, m, "eval_accuracy");
    bind_num(s, 7, m, "eval_f1");
    bind_num(s, 8, m, "learning_rate");
    sqlite3_bind_double(s, 9, tsec + esec);
    sqlite3_bind_text(s, 10, now, -1, SQLITE_STATIC);
    bind_int(s, 11, m, "eval_samples");
    bind_num(s, 12, m, "train_seconds");
    bind_num(s, 13, m, "eval_seconds");
    bind_num(s, 14, m, "train_samples_per_second");
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "recording an epoch");
    *added = rc == OCTET_OK && sqlite3_changes(st->db) > 0;
    sqlite3_reset(s);
    return rc;
}

/* Sets job id's crash count back to 0: it recorded a new epoch since octetd last died under it. */
static int clear_crashes(store *st, int64_t id, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_EPOCH_PROGRESS, "UPDATE jobs SET crashes = 0 WHERE id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "clearing a job's crash count");
    sqlite3_reset(s);
    return rc;
}

int store_epoch_add(store *st, int64_t id, const json_t *epoch, int *added, octet_err *e)
{
    *added = 0;
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    rc = epoch_row(st, id, epoch, added, e);
    if (rc == OCTET_OK && *added)
        rc = store_event_append(st, id, "epoch", epoch, NULL, e);
    if (rc == OCTET_OK && *added) /* progress: earlier crashes no longer count (store_jobs_recover) */
        rc = clear_crashes(st, id, e);
    return store_end(st, rc, e);
}

static int64_t state_part(const json_t *m, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(m, "optimizer_state"), key));
}

int store_memory_put(store *st, int64_t id, const json_t *m, int final, octet_err *e)
{
    int rc = store_begin(st, e);
    if (rc != OCTET_OK)
        return rc;
    sqlite3_stmt *s = store_stmt(st, SS_MEMORY_PUT,
                                 "INSERT INTO memory (job_id, n_params, params_bytes, grads_bytes, "
                                 "optimizer_state_bytes, activations_bytes, workspace_bytes, peak_bytes, "
                                 "state_codes_bytes, state_absmax_bytes, state_fp32_bytes, state_maps_bytes, "
                                 "state_total_bytes, device_total_bytes, driver_free_bytes, device, "
                                 "adam8bit_estimate_bytes, adamw_bytes, final, updated_at) VALUES (?1, ?2, ?3, ?4, "
                                 "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) "
                                 "ON CONFLICT (job_id) DO UPDATE SET n_params = excluded.n_params, "
                                 "params_bytes = excluded.params_bytes, grads_bytes = excluded.grads_bytes, "
                                 "optimizer_state_bytes = excluded.optimizer_state_bytes, "
                                 "activations_bytes = excluded.activations_bytes, "
                                 "workspace_bytes = excluded.workspace_bytes, peak_bytes = excluded.peak_bytes, "
                                 "state_codes_bytes = excluded.state_codes_bytes, "
                                 "state_absmax_bytes = excluded.state_absmax_bytes, "
                                 "state_fp32_bytes = excluded.state_fp32_bytes, "
                                 "state_maps_bytes = excluded.state_maps_bytes, "
                                 "state_total_bytes = excluded.state_total_bytes, "
                                 "device_total_bytes = excluded.device_total_bytes, "
                                 "driver_free_bytes = excluded.driver_free_bytes, device = excluded.device, "
                                 "adam8bit_estimate_bytes = excluded.adam8bit_estimate_bytes, "
                                 "adamw_bytes = excluded.adamw_bytes, final = excluded.final, "
                                 "updated_at = excluded.updated_at", e);
    if (!s)
        return store_end(st, OCTET_ERR_DB, e);
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_int64(s, 1, id);
    bind_int(s, 2, m, "parameters");
    bind_int(s, 3, m, "params_bytes");
    bind_int(s, 4, m, "grads_bytes");
    bind_int(s, 5, m, "optimizer_state_bytes");
    bind_int(s, 6, m, "activations_peak_bytes");
    bind_int(s, 7, m, "workspace_peak_bytes");
    bind_int(s, 8, m, "peak_bytes");
    sqlite3_bind_int64(s, 9, state_part(m, "codes"));
    sqlite3_bind_int64(s, 10, state_part(m, "absmax"));
    sqlite3_bind_int64(s, 11, state_part(m, "fp32"));
    sqlite3_bind_int64(s, 12, state_part(m, "maps"));
    sqlite3_bind_int64(s, 13, state_part(m, "total"));
    bind_int(s, 14, m, "driver_total_bytes");
    bind_int(s, 15, m, "driver_free_bytes");
    store_bind_text_or_null(s, 16, json_string_value(json_object_get(m, "device")));
    bind_int(s, 17, m, "adam8bit_estimate_bytes");
    bind_int(s, 18, m, "adamw_bytes");
    sqlite3_bind_int(s, 19, final ? 1 : 0);
    sqlite3_bind_text(s, 20, now, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "recording memory figures");
    sqlite3_reset(s);
    if (rc == OCTET_OK) {
        json_t *ev = json_deep_copy(m);
        json_object_set_new(ev, "final", json_boolean(final));
        rc = store_event_append(st, id, "memory", ev, NULL, e);
        json_decref(ev);
    }
    return store_end(st, rc, e);
}

/* ------------------------------------------------------------------ reading */

int store_job_epochs(store *st, int64_t id, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_EPOCHS,
                                 "SELECT epoch, step, train_loss, eval_loss, eval_accuracy, eval_f1, eval_samples, "
                                 "train_seconds, eval_seconds, train_samples_per_second, learning_rate, created_at "
                                 "FROM epochs WHERE job_id = ?1 ORDER BY epoch", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    json_t *list = json_array();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(list, store_row_json(s));
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        json_decref(list);
        return store_fail(st, e, "reading epochs");
    }
    *out = list;
    return OCTET_OK;
}

int store_job_steps(store *st, int64_t id, int64_t after_step, int limit, json_t **out, int *more, octet_err *e)
{
    *out = NULL;
    *more = 0;
    sqlite3_stmt *s = store_stmt(st, SS_STEPS_AFTER,
                                 "SELECT step, epoch, loss, learning_rate, grad_norm, elapsed_seconds AS elapsed_s, "
                                 "created_at FROM steps WHERE job_id = ?1 AND step > ?2 ORDER BY step LIMIT ?3", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, after_step);
    sqlite3_bind_int(s, 3, limit + 1);
    json_t *list = json_array();
    int r, n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        json_array_append_new(list, store_row_json(s));
    }
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        json_decref(list);
        return store_fail(st, e, "reading steps");
    }
    *out = list;
    return OCTET_OK;
}

int store_job_memory(store *st, int64_t id, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_MEMORY_GET,
                                 "SELECT device, n_params AS parameters, params_bytes, grads_bytes, "
                                 "optimizer_state_bytes, state_codes_bytes, state_absmax_bytes, state_maps_bytes, "
                                 "state_fp32_bytes, state_total_bytes, adam8bit_estimate_bytes, adamw_bytes, "
                                 "activations_bytes AS activations_peak_bytes, workspace_bytes AS "
                                 "workspace_peak_bytes, peak_bytes, driver_free_bytes, device_total_bytes AS "
                                 "driver_total_bytes, final, updated_at FROM memory WHERE job_id = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    json_t *m = r == SQLITE_ROW ? store_row_json(s) : NULL;
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return store_fail(st, e, "reading memory figures");
    if (!m)
        return OCTET_OK;
    static const char *const parts[][2] = {{"state_codes_bytes", "codes"}, {"state_absmax_bytes", "absmax"},
                                           {"state_maps_bytes", "maps"},   {"state_fp32_bytes", "fp32"},
                                           {"state_total_bytes", "total"}};
    json_t *state = json_object();
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        json_object_set(state, parts[i][1], json_object_get(m, parts[i][0]));
        json_object_del(m, parts[i][0]);
    }
    json_object_set_new(m, "optimizer_state", state);
    json_object_set_new(m, "final", json_boolean(json_integer_value(json_object_get(m, "final"))));
    if (json_is_null(json_object_get(m, "driver_total_bytes"))) { /* the CPU: as trainer_memory_json */
        json_object_del(m, "driver_total_bytes");
        json_object_del(m, "driver_free_bytes");
    }
    *out = m;
    return OCTET_OK;
}

int store_job_events(store *st, int64_t id, int64_t after, store_event *ev, int max, int *n, octet_err *e)
{
    *n = 0;
    sqlite3_stmt *s = store_stmt(st, SS_EVENTS_AFTER,
                                 "SELECT seq, type, data FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq "
                                 "LIMIT ?3", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int(s, 3, max);
    int r, rc = OCTET_OK;
    while (rc == OCTET_OK && *n < max && (r = sqlite3_step(s)) == SQLITE_ROW) {
        store_event *x = &ev[*n];
        x->seq = sqlite3_column_int64(s, 0);
        snprintf(x->type, sizeof x->type, "%s", (const char *)sqlite3_column_text(s, 1));
        x->data = strdup((const char *)sqlite3_column_text(s, 2));
        if (!x->data)
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
        else
            (*n)++;
    }
    if (rc == OCTET_OK && *n < max && r != SQLITE_DONE)
        rc = store_fail(st, e, "reading events");
    sqlite3_reset(s);
    if (rc != OCTET_OK) {
        for (int i = 0; i < *n; i++)
            free(ev[i].data);
        *n = 0;
    }
    return rc;
}

int store_row_counts(store *st, int64_t *epochs, int64_t *steps, octet_err *e)
{
    *epochs = *steps = 0;
    sqlite3_stmt *s = store_stmt(st, SS_ROW_COUNTS,
                                 "SELECT (SELECT COUNT(*) FROM epochs), (SELECT COUNT(*) FROM steps)", e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "counting rows");
    if (rc == OCTET_OK) {
        *epochs = sqlite3_column_int64(s, 0);
        *steps = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc;
}
