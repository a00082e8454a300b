/* check_store.c: the store's migrations: a fresh file gets schema version 1 with every table,
 * reopening applies nothing twice, a new file is applied once, a failing file is rolled back
 * whole, and the store refuses duplicate numbers, a database newer than its files, and a
 * missing schema directory. Each test works in its own temporary directory. */
#include "config.h"
#include "server_suites.h"
#include "store/store.h"
#include "testlib.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture {
    char dir[256];     /* the test's temporary directory */
    char schema[512];  /* dir/schema, with a copy of the real 001_init.sql */
    char db[512];      /* dir/octet.db */
} fixture;

static void copy_init_sql(const char *to_dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/schema/001_init.sql", test_srcdir());
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    test_write_text(to_dir, "001_init.sql", text);
}

static void fixture_make(fixture *fx)
{
    ck_assert_int_eq(test_tmpdir(fx->dir, sizeof fx->dir, "store"), 0);
    snprintf(fx->schema, sizeof fx->schema, "%s/schema", fx->dir);
    snprintf(fx->db, sizeof fx->db, "%s/octet.db", fx->dir);
    ck_assert_int_eq(mkdir(fx->schema, 0755), 0);
    copy_init_sql(fx->schema);
}

static long long query_int(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static int open_version(const fixture *fx, int *version, octet_err *e)
{
    store *st = NULL;
    int rc = store_open(fx->db, fx->schema, &st, e);
    *version = -1;
    if (rc == OCTET_OK) {
        ck_assert_int_eq(store_schema_version(st, version, e), OCTET_OK);
        store_close(st);
    } else {
        ck_assert_ptr_null(st);
    }
    return rc;
}

START_TEST(test_fresh_database)
{
    fixture fx;
    fixture_make(&fx);
    octet_err e;
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM schema_version"), 1);
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                      "('schema_version', 'jobs', 'epochs', 'steps', 'memory', 'datasets')"),
                     6);
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name IN ('spec', "
                                      "'status', 'progress', 'created_at', 'started_at', 'finished_at', 'error', "
                                      "'device', 'attempt', 'idempotency_key')"),
                     10);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_open(fx.db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_reopen_is_idempotent)
{
    fixture fx;
    fixture_make(&fx);
    octet_err e;
    int v;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_OK);
        ck_assert_int_eq(v, 1);
    }
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM schema_version"), 1);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_new_migration_applied_once)
{
    fixture fx;
    fixture_make(&fx);
    octet_err e;
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_OK);
    test_write_text(fx.schema, "002_notes.sql", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
                                                "INSERT INTO notes (body) VALUES ('once');\n");
    test_write_text(fx.schema, "README", "not a migration\n");
    test_write_text(fx.schema, "notes.sql", "THIS IS NOT SQL;\n");
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_OK);
        ck_assert_int_eq(v, 2);
    }
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM notes"), 1);
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM schema_version"), 2);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_failing_migration_rolls_back)
{
    fixture fx;
    fixture_make(&fx);
    test_write_text(fx.schema, "002_bad.sql", "CREATE TABLE half (x INTEGER);\nTHIS IS NOT SQL;\n");
    octet_err e;
    octet_err_clear(&e);
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_ERR_DB);
    ck_assert_ptr_nonnull(strstr(e.message, "002_bad.sql"));
    ck_assert_int_eq(query_int(fx.db, "SELECT MAX(version) FROM schema_version"), 1);
    ck_assert_int_eq(query_int(fx.db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'"), 0);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_duplicate_numbers_refused)
{
    fixture fx;
    fixture_make(&fx);
    test_write_text(fx.schema, "002_a.sql", "CREATE TABLE a (x INTEGER);\n");
    test_write_text(fx.schema, "02_b.sql", "CREATE TABLE b (x INTEGER);\n");
    octet_err e;
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_ERR_FORMAT);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_newer_database_refused)
{
    fixture fx;
    fixture_make(&fx);
    test_write_text(fx.schema, "002_a.sql", "CREATE TABLE a (x INTEGER);\n");
    octet_err e;
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_OK);
    char path[1024];
    snprintf(path, sizeof path, "%s/002_a.sql", fx.schema);
    ck_assert_int_eq(remove(path), 0);
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_ERR_FORMAT);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_missing_schema_dir)
{
    fixture fx;
    fixture_make(&fx);
    snprintf(fx.schema, sizeof fx.schema, "%s/no-such-dir", fx.dir);
    octet_err e;
    int v;
    ck_assert_int_eq(open_version(&fx, &v, &e), OCTET_ERR_IO);
    test_rmtree(fx.dir);
}
END_TEST

START_TEST(test_timestamp_format)
{
    char now[32];
    store_now(now, sizeof now);
    ck_assert_uint_eq(strlen(now), 24);
    ck_assert_int_eq(now[4], '-');
    ck_assert_int_eq(now[10], 'T');
    ck_assert_int_eq(now[19], '.');
    ck_assert_int_eq(now[23], 'Z');
}
END_TEST

Suite *suite_store(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("migrations");
    tcase_add_test(tc, test_fresh_database);
    tcase_add_test(tc, test_reopen_is_idempotent);
    tcase_add_test(tc, test_new_migration_applied_once);
    tcase_add_test(tc, test_failing_migration_rolls_back);
    tcase_add_test(tc, test_duplicate_numbers_refused);
    tcase_add_test(tc, test_newer_database_refused);
    tcase_add_test(tc, test_missing_schema_dir);
    tcase_add_test(tc, test_timestamp_format);
    suite_add_tcase(s, tc);
    return s;
}
