/* threads.c: the thread policy (threads.h): the CPUs of the affinity mask, the share of each
 * of W concurrent jobs, OpenMP's per-thread count and OpenBLAS's process-wide one.
 *
 * OpenBLAS's entry points are found at configure time (HAVE_OPENBLAS_*: the CBLAS the build
 * links is OpenBLAS); with another CBLAS the BLAS threads are that library's and
 * octet_threads_blas() says 0. Which OpenBLAS build runs is asked at run time
 * (openblas_get_parallel: Debian switches libopenblas.so.0 between its serial, pthreads and
 * OpenMP builds with update-alternatives). The log line is written by whichever call first
 * chooses a count (an atomic compare-and-swap on the last count logged), so a server whose
 * workers all apply the same share logs it once. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "config.h"
#define LOG_PREFIX "threads"
#include "threads.h"

#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#include "log.h"
#include "status.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(HAVE_OPENBLAS_GET_NUM_THREADS)
#define OCTET_HAVE_OPENBLAS_THREADS 1
/* OpenBLAS's cblas.h declares them; repeated here for a CBLAS header that does not. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#ifdef HAVE_OPENBLAS_GET_PARALLEL
int openblas_get_parallel(void);
#endif
#endif

int octet_threads_available(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n > OCTET_THREADS_MAX ? OCTET_THREADS_MAX : n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN); /* a mask over more CPUs than cpu_set_t holds */
    return n > 0 ? (n > OCTET_THREADS_MAX ? OCTET_THREADS_MAX : (int)n) : 1;
}

int octet_threads_share(int cores, int workers, int requested)
{
    if (cores < 1 || workers < 1 || requested < 0 || requested > OCTET_THREADS_MAX)
        return OCTET_ERR_ARG;
    if (requested > 0)
        return requested;
    return cores / workers > 1 ? cores / workers : 1;
}

/* ------------------------------------------------------------------ OpenBLAS */

enum { BLAS_OTHER = 0, BLAS_PTHREADS, BLAS_OPENMP };

/* Which BLAS threads the calls: OpenBLAS's pthreads or OpenMP build, or another library. */
static int blas_kind(void)
{
#ifdef OCTET_HAVE_OPENBLAS_THREADS
#ifdef HAVE_OPENBLAS_GET_PARALLEL
    return openblas_get_parallel() == 2 ? BLAS_OPENMP : BLAS_PTHREADS; /* 0 (serial) takes 1 as well */
#else
    return BLAS_PTHREADS;
#endif
#else
    return BLAS_OTHER;
#endif
}

int octet_threads_blas_single(void)
{
    int kind = blas_kind();
#ifdef OCTET_HAVE_OPENBLAS_THREADS
    /* the OpenMP build would set the caller's OpenMP count too: it is kept one per call by
     * octet_blas_enter, and inside parallel regions by OpenBLAS itself */
    if (kind == BLAS_PTHREADS && openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
#endif
    return kind != BLAS_OTHER;
}

int octet_threads_blas(void)
{
#ifdef OCTET_HAVE_OPENBLAS_THREADS
    return openblas_get_num_threads();
#else
    return 0;
#endif
}

int octet_blas_enter(void)
{
    int kind = blas_kind();
    octet_threads_blas_single();
#ifdef _OPENMP
    if (kind == BLAS_OPENMP && !omp_in_parallel()) {
        int n = omp_get_max_threads();
        if (n > 1) {
            omp_set_num_threads(1);
            return n;
        }
    }
#else
    (void)kind;
#endif
    return 0;
}

void octet_blas_leave(int saved)
{
#ifdef _OPENMP
    if (saved > 0)
        omp_set_num_threads(saved);
#else
    (void)saved;
#endif
}

/* ------------------------------------------------------------------ the policy */

int octet_threads_current(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static atomic_int logged_count; /* the count last logged; 0: none yet */

int octet_threads_set(int n)
{
    if (n < 0 || n > OCTET_THREADS_MAX)
        return OCTET_ERR_ARG;
    int chosen = n > 0 ? n : octet_threads_available();
    int kind = blas_kind();
    octet_threads_blas_single(); /* first: OpenBLAS's setter may touch the OpenMP count */
#ifdef _OPENMP
    omp_set_num_threads(chosen);
#else
    chosen = 1; /* a build without OpenMP runs every op on the calling thread */
#endif
    int last = atomic_load(&logged_count);
    if (last != chosen && atomic_compare_exchange_strong(&logged_count, &last, chosen))
        log_info("%d thread%s per job (%s; %d CPUs available): the CPU ops run on OpenMP, %s", chosen,
                 chosen == 1 ? "" : "s", n > 0 ? "as asked" : "the default", octet_threads_available(),
                 kind == BLAS_PTHREADS ? "OpenBLAS on one thread per call (large GEMMs tiled over OpenMP's)"
                 : kind == BLAS_OPENMP ? "OpenBLAS (its OpenMP build) on one thread per call (large GEMMs "
                                         "tiled over OpenMP's)"
                                       : "the BLAS library (not OpenBLAS) on threads of its own choosing");
    return chosen;
}
