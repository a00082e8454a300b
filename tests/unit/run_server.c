/* run_server.c: the Check runner of the server library's unit suites (store migrations, the
 * job queue, route matching, body parsing, bearer tokens, static paths, the optimizer catalog,
 * the OpenAPI description against the route table). Fork mode; exit status 0 when all pass, 1
 * otherwise. */
#include "server_suites.h"

#include <stdlib.h>

int main(void)
{
    SRunner *sr = srunner_create(suite_store());
    srunner_add_suite(sr, suite_http());
    srunner_add_suite(sr, suite_catalog());
    srunner_add_suite(sr, suite_openapi());
    srunner_add_suite(sr, suite_queue());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
