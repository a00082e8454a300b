/* run_cpu.c: the Check runner for every suite that needs no GPU (fork mode on). Exit status 0
 * when all pass, 1 otherwise, as the Automake test harness expects. */
#include <stdlib.h>
#include "testlib.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_qmap());
    srunner_add_suite(sr, suite_optim());
    srunner_add_suite(sr, suite_optim_ref());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
