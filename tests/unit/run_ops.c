/* run_ops.c: the Check runner of the ops suites (check_ops*.c): every op's CPU twin, forward
 * against a double-precision reference and backward against finite differences, the half casts
 * against F16C and PyTorch; and the thread policy (check_threads.c) (fork mode on).
 * Exit status 0 when all pass, 1 when one fails, 77 (SKIP) when none failed but a comparison
 * had nothing to compare with (testlib.h: test_skip). */
#include <stdlib.h>
#include "check_ops.h"
#include "testlib.h"

int main(void)
{
    test_skips_begin();
    SRunner *sr = srunner_create(suite_ops_dense());
    srunner_add_suite(sr, suite_ops_norm());
    srunner_add_suite(sr, suite_ops_attention());
    srunner_add_suite(sr, suite_ops_loss());
    srunner_add_suite(sr, suite_ops_cast());
    srunner_add_suite(sr, suite_threads());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return test_skips_end(failed);
}
