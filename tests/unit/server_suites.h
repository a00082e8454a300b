/* server_suites.h: the Check suites of the server library (store and its queue, HTTP pieces,
 * catalog, the OpenAPI description), run
 * by run_server.c. Their scratch directories and files come from testlib.h. */
#ifndef OCTET_SERVER_SUITES_H
#define OCTET_SERVER_SUITES_H

#include <check.h>

Suite *suite_store(void);
Suite *suite_http(void);
Suite *suite_catalog(void);
Suite *suite_openapi(void);
Suite *suite_queue(void);

#endif
