/* server_suites.h: the Check suites of the server library (store, HTTP pieces, catalog), run
 * by run_server.c, plus the small helpers they share (a temporary directory per test). */
#ifndef OCTET_SERVER_SUITES_H
#define OCTET_SERVER_SUITES_H

#include <check.h>
#include <stddef.h>

Suite *suite_store(void);
Suite *suite_http(void);
Suite *suite_catalog(void);

/* Makes a fresh directory under $TMPDIR (or /tmp) into buf; aborts the test on failure. */
void srv_tmpdir(char *buf, size_t len);
/* rm -rf path. */
void srv_rmtree(const char *path);
/* Writes text to dir/name; aborts the test on failure. */
void srv_write_file(const char *dir, const char *name, const char *text);
/* $OCTET_SRCDIR, or "." */
const char *srv_srcdir(void);

#endif
