/* store_datasets.c: the uploaded datasets: one row per name with its file (relative to the
 * data directory), format, task, classes and sizes, as measured by the training parsers when
 * it was uploaded. The built-in datasets are the engine's (server/train/dataset.h) and have no
 * rows here. */
#define LOG_PREFIX "store"
#include "config.h"
#include "store/store_impl.h"
#include "log.h"

#include <string.h>

#define DATASET_COLUMNS "name, format, path, task, num_labels, n_train, n_eval, bytes, created_at"

int store_dataset_add(store *st, const store_dataset *d, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_DATASET_INSERT,
                                 "INSERT INTO datasets (name, kind, format, path, task, num_labels, n_train, n_eval, "
                                 "bytes, created_at) VALUES (?1, 'uploaded', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", e);
    if (!s)
        return OCTET_ERR_DB;
    char now[32];
    store_now(now, sizeof now);
    sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, d->format, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, d->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, d->task, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, d->num_labels);
    sqlite3_bind_int64(s, 6, d->n_train);
    sqlite3_bind_int64(s, 7, d->n_eval);
    sqlite3_bind_int64(s, 8, d->bytes);
    sqlite3_bind_text(s, 9, now, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    int rc = r == SQLITE_DONE ? OCTET_OK
             : r == SQLITE_CONSTRAINT ? octet_fail(e, OCTET_ERR_MISMATCH, "name", "a dataset named %s exists", d->name)
             : store_fail(st, e, "recording a dataset");
    sqlite3_reset(s);
    return rc;
}

int store_dataset_get(store *st, const char *name, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_DATASET_GET, "SELECT " DATASET_COLUMNS " FROM datasets WHERE name = ?1", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *out = store_row_json(s);
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "reading a dataset");
}

int store_dataset_list(store *st, json_t **out, octet_err *e)
{
    *out = NULL;
    sqlite3_stmt *s = store_stmt(st, SS_DATASET_LIST, "SELECT " DATASET_COLUMNS " FROM datasets "
                                 "WHERE kind = 'uploaded' ORDER BY name", e);
    if (!s)
        return OCTET_ERR_DB;
    json_t *list = json_array();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(list, store_row_json(s));
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        json_decref(list);
        return store_fail(st, e, "listing datasets");
    }
    *out = list;
    return OCTET_OK;
}

int store_dataset_delete(store *st, const char *name, int *found, octet_err *e)
{
    *found = 0;
    sqlite3_stmt *s = store_stmt(st, SS_DATASET_DELETE, "DELETE FROM datasets WHERE name = ?1 AND kind = 'uploaded'",
                                 e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "deleting a dataset");
    *found = rc == OCTET_OK && sqlite3_changes(st->db) > 0;
    sqlite3_reset(s);
    return rc;
}

int store_dataset_users(store *st, const char *name, int64_t *n, octet_err *e)
{
    *n = 0;
    sqlite3_stmt *s = store_stmt(st, SS_DATASET_USERS, "SELECT COUNT(*) FROM jobs WHERE dataset = ?1 "
                                 "AND status IN ('queued', 'running')", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "counting a dataset's jobs");
    if (rc == OCTET_OK)
        *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc;
}
