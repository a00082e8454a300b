/* server_suites.h: the Check suites of the server library (store, HTTP pieces, catalog), run
 * by run_server.c. Their scratch directories and files come from testlib.h. */
#ifndef OCTET_SERVER_SUITES_H
#define OCTET_SERVER_SUITES_H

#include <check.h>

Suite *suite_store(void);
Suite *suite_http(void);
Suite *suite_catalog(void);

#endif
