/* store.c: the SQLite store's connections: opening one in WAL mode, the schema migrations,
 * the cache of prepared statements, transactions, the event log, and result rows as JSON. The
 * queue, the history and the datasets are in store_jobs.c, store_history.c and
 * store_datasets.c; all of octet's SQL lives in server/store/.
 *
 * Migrations are the files schema/NNN_name.sql (NNN: the version, any number of digits). At open
 * the store lists them, sorts them by version, and applies each one above the database's
 * current version inside BEGIN IMMEDIATE ... COMMIT, re-reading the version after taking the
 * write lock, so that two processes starting on the same file apply each file once. A file's
 * row in schema_version is written in the same transaction as its statements; a failing file
 * is rolled back whole. 001_init.sql creates schema_version itself. */
#define LOG_PREFIX "store"
#include "config.h"
#include "store/store_impl.h"
#include "fileio.h"
#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MIGRATION_BYTES ((size_t)16 << 20)  /* a schema file is SQL text, never this big */
#define SCHEMA_VERSION_SQL "SELECT COALESCE(MAX(version), 0) FROM schema_version"

typedef struct migration {
    long version;
    char name[256];
} migration;

/* Records an SQLite failure of `what` in e and returns OCTET_ERR_DB. */
static int db_fail(sqlite3 *db, octet_err *e, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
    log_err("%s: %s", what, msg);
    return octet_fail(e, OCTET_ERR_DB, "", "%s: %s", what, msg);
}

void store_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ts.tv_nsec / 1000000));
}

/* ------------------------------------------------------------------ migration files */

/* The version of a migration file name "NNN_name.sql", or -1 when the name is not one. */
static long migration_version(const char *name)
{
    size_t n = strlen(name), digits = 0;
    while (isdigit((unsigned char)name[digits]))
        digits++;
    if (digits == 0 || digits > 9 || name[digits] != '_' || n < digits + 6 || strcmp(name + n - 4, ".sql"))
        return -1;
    return strtol(name, NULL, 10);
}

static int migration_cmp(const void *a, const void *b)
{
    long x = ((const migration *)a)->version, y = ((const migration *)b)->version;
    return x < y ? -1 : x > y;
}

/* Lists the migrations of `dir` sorted by version into a new array (*out, *n). Fails with
 * OCTET_ERR_IO when the directory cannot be read, OCTET_ERR_FORMAT on a repeated version,
 * OCTET_ERR_NOMEM. */
static int list_migrations(const char *dir, migration **out, int *n, octet_err *e)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return octet_fail(e, OCTET_ERR_IO, "", "cannot read the schema directory %s: %s", dir, strerror(errno));
    int rc = OCTET_OK, cap = 0;
    migration *m = NULL;
    struct dirent *de;
    while (rc == OCTET_OK && (de = readdir(d)) != NULL) {
        long v = migration_version(de->d_name);
        if (v < 0 || strlen(de->d_name) >= sizeof m->name)
            continue;
        if (*n == cap) {
            migration *grown = realloc(m, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *m);
            if (!grown) {
                rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory listing %s", dir);
                break;
            }
            m = grown;
        }
        m[*n].version = v;
        snprintf(m[*n].name, sizeof m[*n].name, "%s", de->d_name);
        (*n)++;
    }
    closedir(d);
    if (rc == OCTET_OK && *n > 1)
        qsort(m, (size_t)*n, sizeof *m, migration_cmp);
    for (int i = 1; rc == OCTET_OK && i < *n; i++)
        if (m[i].version == m[i - 1].version)
            rc = octet_fail(e, OCTET_ERR_FORMAT, "", "schema files %s and %s have the same number", m[i - 1].name,
                            m[i].name);
    if (rc != OCTET_OK) {
        free(m);
        *n = 0;
        return rc;
    }
    *out = m;
    return OCTET_OK;
}

/* ------------------------------------------------------------------ applying them */

/* The applied version, read without the prepared statement (the table may not exist yet). */
static int current_version(sqlite3 *db, long *version, octet_err *e)
{
    sqlite3_stmt *s = NULL;
    *version = 0;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                           -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, e, "reading the schema version");
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : db_fail(db, e, "reading the schema version");
    int exists = rc == OCTET_OK && sqlite3_column_int(s, 0) > 0;
    sqlite3_finalize(s);
    if (rc != OCTET_OK || !exists)
        return rc;
    if (sqlite3_prepare_v2(db, SCHEMA_VERSION_SQL, -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, e, "reading the schema version");
    rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : db_fail(db, e, "reading the schema version");
    if (rc == OCTET_OK)
        *version = (long)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc;
}

/* Inserts the schema_version row of migration m. */
static int record_migration(sqlite3 *db, const migration *m, octet_err *e)
{
    sqlite3_stmt *s = NULL;
    char now[32];
    store_now(now, sizeof now);
    if (sqlite3_prepare_v2(db, "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)", -1, &s,
                           NULL) != SQLITE_OK)
        return db_fail(db, e, "recording a migration (does the first schema file create schema_version?)");
    sqlite3_bind_int64(s, 1, m->version);
    sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, now, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : db_fail(db, e, "recording a migration");
    sqlite3_finalize(s);
    return rc;
}

/* Applies migration m in one transaction unless another process did it first. Fails with
 * OCTET_ERR_DB (rolled back) or OCTET_ERR_IO (file unreadable, octet_read_file). */
static int apply_migration(sqlite3 *db, const char *dir, const migration *m, octet_err *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, m->name);
    char *sql = NULL;
    size_t len = 0;
    int rc = octet_read_file(path, MAX_MIGRATION_BYTES, "", &sql, &len, e);
    if (rc != OCTET_OK)
        return rc;
    char *msg = NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        free(sql);
        return db_fail(db, e, "starting a migration");
    }
    long version = 0;
    rc = current_version(db, &version, e);
    if (rc == OCTET_OK && version < m->version) {
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            log_err("%s: %s", m->name, msg ? msg : "failed");
            rc = octet_fail(e, OCTET_ERR_DB, "", "schema file %s failed: %s", m->name, msg ? msg : "error");
        } else {
            rc = record_migration(db, m, e);
        }
    }
    if (rc == OCTET_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, e, "committing a migration");
    if (rc != OCTET_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    else if (version < m->version)
        log_info("applied schema %s", m->name);
    sqlite3_free(msg);
    free(sql);
    return rc;
}

/* Brings the schema of db up to the newest file in dir. */
static int migrate(sqlite3 *db, const char *dir, octet_err *e)
{
    migration *m = NULL;
    int n = 0;
    long version = 0;
    int rc = list_migrations(dir, &m, &n, e);
    if (rc == OCTET_OK)
        rc = current_version(db, &version, e);
    if (rc == OCTET_OK && n > 0 && version > m[n - 1].version)
        rc = octet_fail(e, OCTET_ERR_FORMAT, "",
                        "the database has schema version %ld, newer than the newest file in %s (%ld)", version, dir,
                        m[n - 1].version);
    for (int i = 0; rc == OCTET_OK && i < n; i++)
        if (m[i].version > version)
            rc = apply_migration(db, dir, &m[i], e);
    free(m);
    return rc;
}

/* ------------------------------------------------------------------ open / close */

/* Commits made through this process's connections, counted once each is visible to readers:
 * SQLite calls the WAL hook after the commit, with the write lock released. 0 (never counted)
 * once a connection is not in WAL mode, where there is no such hook. The hook replaces SQLite's
 * automatic checkpoint, so it checkpoints as that does, past WAL_CHECKPOINT_PAGES. */
#define WAL_CHECKPOINT_PAGES 1000
static uint64_t commit_generation = 1;

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)arg;
    uint64_t g = __atomic_load_n(&commit_generation, __ATOMIC_SEQ_CST);
    while (g && !__atomic_compare_exchange_n(&commit_generation, &g, g + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    if (pages >= WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

uint64_t store_generation(void)
{
    return __atomic_load_n(&commit_generation, __ATOMIC_SEQ_CST);
}

/* Connection settings: WAL, foreign keys, a busy timeout for concurrent writers. */
static int configure_connection(sqlite3 *db, octet_err *e)
{
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, e, "configuring the connection");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
        return db_fail(db, e, "switching to WAL mode");
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : db_fail(db, e, "switching to WAL mode");
    const unsigned char *mode = rc == OCTET_OK ? sqlite3_column_text(s, 0) : NULL;
    if (mode && strcmp((const char *)mode, "wal")) {
        log_warn("journal mode is %s, not wal", mode);
        __atomic_store_n(&commit_generation, 0, __ATOMIC_SEQ_CST);
    } else if (mode) {
        sqlite3_wal_hook(db, on_wal_commit, NULL);
    }
    sqlite3_finalize(s);
    return rc;
}

/* Opens the file with the connection settings; *out NULL on failure. */
static int connect_db(const char *path, int create, store **out, octet_err *e)
{
    *out = NULL;
    store *st = calloc(1, sizeof *st);
    if (!st)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = OCTET_OK;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK)
        rc = octet_fail(e, OCTET_ERR_DB, "", "cannot open database %s: %s", path,
                        st->db ? sqlite3_errmsg(st->db) : "out of memory");
    if (rc == OCTET_OK)
        rc = configure_connection(st->db, e);
    if (rc != OCTET_OK) {
        store_close(st);
        return rc;
    }
    *out = st;
    return OCTET_OK;
}

int store_open(const char *path, const char *schema_dir, store **out, octet_err *e)
{
    store *st = NULL;
    int rc = connect_db(path, 1, &st, e);
    if (rc == OCTET_OK)
        rc = migrate(st->db, schema_dir, e);
    if (rc != OCTET_OK) {
        store_close(st);
        *out = NULL;
        return rc;
    }
    *out = st;
    return OCTET_OK;
}

int store_connect(const char *path, store **out, octet_err *e)
{
    return connect_db(path, 0, out, e);
}

void store_close(store *st)
{
    if (!st)
        return;
    for (int i = 0; i < SS_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    sqlite3_close(st->db);
    free(st);
}

/* ------------------------------------------------------------------ statements, transactions */

int store_fail(store *st, octet_err *e, const char *what)
{
    return db_fail(st ? st->db : NULL, e, what);
}

sqlite3_stmt *store_stmt(store *st, int slot, const char *sql, octet_err *e)
{
    sqlite3_stmt *s = st->st[slot];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        store_fail(st, e, "preparing a statement");
        log_err("the statement was: %s", sql);
        return NULL;
    }
    st->st[slot] = s;
    return s;
}

/* Runs a statement that returns no rows. */
static int exec_slot(store *st, int slot, const char *sql, const char *what, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, slot, sql, e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, what);
    sqlite3_reset(s);
    return rc;
}

int store_begin(store *st, octet_err *e)
{
    return exec_slot(st, SS_BEGIN, "BEGIN IMMEDIATE", "starting a transaction", e);
}

int store_end(store *st, int rc, octet_err *e)
{
    if (rc == OCTET_OK && (rc = exec_slot(st, SS_COMMIT, "COMMIT", "committing", e)) == OCTET_OK)
        return OCTET_OK;
    octet_err ignored;
    exec_slot(st, SS_ROLLBACK, "ROLLBACK", "rolling back", &ignored);
    return rc;
}

int store_event_append(store *st, int64_t id, const char *type, const json_t *data, int64_t *seq, octet_err *e)
{
    sqlite3_stmt *s = store_stmt(st, SS_EVENT_SEQ, "UPDATE jobs SET last_event = last_event + 1 WHERE id = ?1 "
                                 "RETURNING last_event", e);
    if (!s)
        return OCTET_ERR_DB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    int64_t n = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (r == SQLITE_DONE)
        return octet_fail(e, OCTET_ERR_ARG, "", "job %lld does not exist", (long long)id);
    if (r != SQLITE_ROW)
        return store_fail(st, e, "numbering an event");
    char *text = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    char now[32];
    store_now(now, sizeof now);
    s = store_stmt(st, SS_EVENT_INSERT, "INSERT INTO events (job_id, seq, type, data, created_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)", e);
    int rc = s ? OCTET_OK : OCTET_ERR_DB;
    if (s) {
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, n);
        sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, text, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? OCTET_OK : store_fail(st, e, "appending an event");
        sqlite3_reset(s);
    }
    free(text);
    if (rc == OCTET_OK && seq)
        *seq = n;
    return rc;
}

/* ------------------------------------------------------------------ rows as JSON */

json_t *store_col_json(sqlite3_stmt *s, int i)
{
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_INTEGER: return json_integer((json_int_t)sqlite3_column_int64(s, i));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(s, i));
    case SQLITE_TEXT: return json_stringn((const char *)sqlite3_column_text(s, i), (size_t)sqlite3_column_bytes(s, i));
    default: return json_null();
    }
}

json_t *store_row_json(sqlite3_stmt *s)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(s);
    for (int i = 0; o && i < n; i++)
        json_object_set_new(o, sqlite3_column_name(s, i), store_col_json(s, i));
    return o;
}

json_t *store_col_parsed(sqlite3_stmt *s, int i)
{
    const char *text = (const char *)sqlite3_column_text(s, i);
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

void store_bind_text_or_null(sqlite3_stmt *s, int i, const char *text)
{
    if (text && *text)
        sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* ------------------------------------------------------------------ queries */

int store_schema_version(store *st, int *version, octet_err *e)
{
    *version = 0;
    sqlite3_stmt *s = store_stmt(st, SS_SCHEMA_VERSION, SCHEMA_VERSION_SQL, e);
    if (!s)
        return OCTET_ERR_DB;
    int rc = sqlite3_step(s) == SQLITE_ROW ? OCTET_OK : store_fail(st, e, "reading the schema version");
    if (rc == OCTET_OK)
        *version = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return rc;
}
