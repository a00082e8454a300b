/* run_ops_cuda.c: the Check runner of the ops' CPU-vs-CUDA parity suite (check_ops_parity.c).
 * It asks device_cuda_usable() before anything touches CUDA and exits 77, Automake's SKIP, with
 * one line saying why when no CUDA device answers. Otherwise it runs the suite without forking
 * (a CUDA context does not survive fork) and exits 0 when every test passes, 1 otherwise. Each
 * compared tensor prints one "parity ..." line (worst difference, relative norm, tolerances),
 * which is what tests/gpu/run.sh shows. Built only in CUDA builds. */
#include <stdio.h>
#include <stdlib.h>

#include "device.h"
#include "testlib.h"

/* check_ops_parity.c */
Suite *suite_ops_parity(void);

int main(void)
{
    char why[256];
    if (!device_cuda_usable(why, sizeof why)) {
        printf("SKIP: the ops CPU-vs-CUDA parity suite needs a CUDA device (%s)\n", why);
        return 77;
    }
    SRunner *sr = srunner_create(suite_ops_parity());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
