/* run_train_data.c: the Check runner for the training-data suites: safetensors checkpoints,
 * tokenizers, datasets (fork mode on). Exit status 0 when all pass, 1 when one fails, 77
 * (SKIP) when none failed but a test's data or tool was missing (testlib.h: test_skip). */
#include <stdlib.h>
#include "check_train_data.h"
#include "testlib.h"

int main(void)
{
    test_skips_begin();
    SRunner *sr = srunner_create(suite_safetensors());
    srunner_add_suite(sr, suite_tokenizer());
    srunner_add_suite(sr, suite_dataset());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return test_skips_end(failed);
}
