/* run_trainer.c: the Check runner of the trainer suites (check_trainer*.c), fork mode on.
 * Exit status 0 when all pass, 1 otherwise, as the Automake test harness expects.
 *
 * The suites check what is trained, not how fast: unless OMP_NUM_THREADS says otherwise they
 * run the CPU twin on one thread, because on a loaded 2-core machine (make check -j) every
 * OpenMP barrier can wait a whole time slice for a descheduled thread. Determinism and resume
 * are compared within one thread count. */
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "check_trainer.h"

int main(void)
{
#ifdef _OPENMP
    if (!getenv("OMP_NUM_THREADS"))
        omp_set_num_threads(1);
#endif
    SRunner *sr = srunner_create(suite_trainer_spec());
    srunner_add_suite(sr, suite_trainer_loop());
    srunner_add_suite(sr, suite_trainer_learn());
    srunner_add_suite(sr, suite_trainer_gpujob());
    srunner_add_suite(sr, suite_trainer_estimate());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
