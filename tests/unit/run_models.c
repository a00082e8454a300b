/* run_models.c: the Check runner of the model suites (check_models*.c: DistilBERT and the MLP,
 * model directories, the PyTorch references, half-precision activation storage), fork mode on. Exit status 0 when all pass, 1
 * otherwise, as the Automake test harness expects. */
#include <stdlib.h>
#include "check_models.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_models());
    srunner_add_suite(sr, suite_models_hfdir());
    srunner_add_suite(sr, suite_models_ref());
    srunner_add_suite(sr, suite_models_half());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
