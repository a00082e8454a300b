/* run_train_data.c: the Check runner for the training-data suites: safetensors checkpoints,
 * tokenizers, datasets (fork mode on). Exit status 0 when all pass, 1 otherwise. */
#include <stdlib.h>
#include "check_train_data.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_safetensors());
    srunner_add_suite(sr, suite_tokenizer());
    srunner_add_suite(sr, suite_dataset());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
