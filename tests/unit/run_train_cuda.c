/* run_train_cuda.c: the Check runner of the whole-training-step parity suite
 * (check_train_parity.c: CPU twin against CUDA twin, MLP and tiny DistilBERT, loss, gradients,
 * an adamw step, the 8-bit step bit for bit) and of the memory estimate against CUDA runs
 * (check_train_estimate_device.c: every figure exact, bf16 / fp16 storage included). It asks device_cuda_usable() before anything else
 * touches CUDA and exits 77, Automake's SKIP, with one line saying why when no CUDA device
 * answers. Otherwise it runs the suite without forking (a CUDA context does not survive fork)
 * and exits 0 when every test passes, 1 otherwise. Built only in CUDA builds.
 *
 * `run_train_cuda --self-test` runs the same suite with a second CPU device in place of the
 * CUDA one (no GPU needed): it checks the suite's plumbing, every bound then holding exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "testlib.h"

/* check_train_parity.c; `other` is the device compared with the CPU ("cuda"). */
Suite *suite_train_parity(const char *other);
/* check_train_estimate_device.c: estimates against runs on `device`. */
Suite *suite_train_estimate(const char *device);

int main(int argc, char **argv)
{
    int self_test = argc > 1 && !strcmp(argv[1], "--self-test");
    char why[256];
    if (!self_test && !device_cuda_usable(why, sizeof why)) {
        printf("SKIP: the training-step CPU-vs-CUDA parity and estimate suites need a CUDA device (%s)\n", why);
        return 77;
    }
    SRunner *sr = srunner_create(suite_train_parity(self_test ? "cpu" : "cuda"));
    srunner_add_suite(sr, suite_train_estimate(self_test ? "cpu" : "cuda"));
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
