/* run_cuda.c: the Check runner of the CPU-vs-CUDA parity suite (check_parity.c). It asks
 * device_cuda_usable() before anything else touches CUDA and exits 77, Automake's SKIP, with
 * one line saying why when no CUDA device answers. Otherwise it runs the suite without forking
 * (a CUDA context does not survive fork) and exits 0 when all tests pass, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "device.h"
#include "testlib.h"

int main(void)
{
    char why[256];
    if (!device_cuda_usable(why, sizeof why)) {
        printf("SKIP: the CPU-vs-CUDA parity suite needs a CUDA device (%s)\n", why);
        return 77;
    }
    SRunner *sr = srunner_create(suite_parity());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
