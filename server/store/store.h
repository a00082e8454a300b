/* store.h: octet's persistent store, the one interface the rest of the server uses for data.
 *
 * Today the store is one SQLite file in WAL mode; all SQL lives in server/store/. Opening a
 * store applies every schema/NNN_name.sql not yet recorded in its schema_version table, in
 * order, each in its own transaction, and prepares the statements it will run. A store handle
 * is one database connection: use it from one thread at a time, and open one handle per
 * thread that needs the database (WAL lets readers and one writer work side by side). Every
 * function returns OCTET_OK or a negative status (OCTET_ERR_DB, OCTET_ERR_IO, ...) with the
 * reason in the octet_err; nothing here exits. */
#ifndef OCTET_STORE_H
#define OCTET_STORE_H

#include "status.h"

typedef struct store store;

/* Opens (creating it if absent) the database file `path` and brings its schema up to date from
 * the *.sql files in `schema_dir`. The file's directory must exist. Fails with OCTET_ERR_DB when
 * SQLite cannot open the file or a migration fails (that migration is rolled back; earlier
 * ones stay applied), OCTET_ERR_IO when the schema directory or a file in it cannot be read,
 * and OCTET_ERR_FORMAT when two files carry the same number or the database already has a
 * newer schema than `schema_dir` knows. *out is NULL on failure. */
int store_open(const char *path, const char *schema_dir, store **out, octet_err *e);

/* Closes the connection and finalizes its statements; NULL is ignored. */
void store_close(store *st);

/* The highest applied schema version (0 for none). Fails with OCTET_ERR_DB when the database
 * cannot be read, which is also how a health check learns that the store is unusable. */
int store_schema_version(store *st, int *version, octet_err *e);

/* Writes the current UTC time as ISO-8601 with milliseconds ("2025-01-31T12:00:00.000Z"),
 * the format of every timestamp column. `buf` must hold 25 bytes; never fails. */
void store_now(char *buf, size_t len);

#endif
