/* store_impl.h: the store's private parts, shared by the .c files of server/store only: the connection,
 * its cache of prepared statements, transactions, the event log every writer appends to, and
 * turning result columns into JSON.
 *
 * Statements are prepared on first use and kept for the connection's life: a call site names
 * its slot and its SQL (store_stmt), so the SQL stays beside the code that binds it. The slot
 * enum below lists every statement the store runs. */
#ifndef OCTET_STORE_IMPL_H
#define OCTET_STORE_IMPL_H

#include <jansson.h>
#include <sqlite3.h>
#include "store/store.h"

enum store_slot {
    SS_SCHEMA_VERSION = 0,
    SS_BEGIN, SS_COMMIT, SS_ROLLBACK,
    SS_EVENT_SEQ, SS_EVENT_INSERT, SS_EVENTS_AFTER,
    SS_JOB_NEXT_ID, SS_JOB_INSERT, SS_JOB_BY_KEY, SS_JOB_CLAIM, SS_JOB_RECOVER_LIST, SS_JOB_RECOVER,
    SS_JOB_GIVE_UP, SS_JOB_INFO, SS_JOB_PROGRESS, SS_JOB_FINISH, SS_JOB_CANCEL_QUEUED, SS_JOB_CANCEL_RUNNING,
    SS_JOB_STATE, SS_JOB_VERSION, SS_JOB_DELETE, SS_JOB_GET, SS_JOB_LIST, SS_JOB_COUNTS, SS_JOB_QUEUED,
    SS_STEP_INSERT, SS_STEPS_AFTER, SS_EPOCH_INSERT, SS_EPOCH_PROGRESS, SS_EPOCHS, SS_EPOCH_LATEST, SS_MEMORY_PUT, SS_MEMORY_GET,
    SS_ROW_COUNTS,
    SS_DATASET_INSERT, SS_DATASET_GET, SS_DATASET_LIST, SS_DATASET_DELETE, SS_DATASET_USERS,
    SS_SWEEP_NEXT_ID, SS_SWEEP_INSERT, SS_SWEEP_GET, SS_SWEEP_JOBS, SS_SWEEP_EPOCHS, SS_SWEEP_LIST,
    SS_SWEEP_COUNTS, SS_SWEEP_JOB_IDS, SS_SWEEP_DELETE,
    SS_COUNT
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[SS_COUNT];
};

/* The prepared statement of `slot` (prepared from `sql` on first use), reset and unbound, or
 * NULL with OCTET_ERR_DB in e when SQLite refuses the SQL. */
sqlite3_stmt *store_stmt(store *st, int slot, const char *sql, octet_err *e);

/* Records an SQLite failure of `what` (logged with SQLite's message) in e; OCTET_ERR_DB. */
int store_fail(store *st, octet_err *e, const char *what);

/* BEGIN IMMEDIATE (the write lock at once, waiting up to the busy timeout), COMMIT, ROLLBACK.
 * store_end commits when rc is OCTET_OK and rolls back otherwise; it returns rc, or the
 * commit's failure. */
int store_begin(store *st, octet_err *e);
int store_end(store *st, int rc, octet_err *e);

/* Appends an event of `type` with JSON `data` to job id's log inside the caller's transaction;
 * its seq goes to *seq (may be NULL). Fails with OCTET_ERR_DB (OCTET_ERR_ARG when the job does
 * not exist). */
int store_event_append(store *st, int64_t id, const char *type, const json_t *data, int64_t *seq, octet_err *e);

/* Column i of the current row as JSON: integer, real, text, or null. */
json_t *store_col_json(sqlite3_stmt *s, int i);
/* Every column of the current row as an object keyed by the column names (or aliases). */
json_t *store_row_json(sqlite3_stmt *s);
/* Column i parsed as JSON text (NULL column or unparsable text: JSON null). */
json_t *store_col_parsed(sqlite3_stmt *s, int i);

/* Binds text, or NULL for a NULL or empty string. */
void store_bind_text_or_null(sqlite3_stmt *s, int i, const char *text);

#endif
