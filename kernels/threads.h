/* threads.h: the engine's thread policy — how many threads a job's CPU kernels use, and which
 * of the two thread pools in the process (OpenMP's and OpenBLAS's) does the parallel work.
 *
 * One pool only: OpenMP's. OpenBLAS runs one thread per call, always, and the CPU twin's large
 * GEMMs are cut into tiles that OpenMP threads compute with single-threaded sgemm calls
 * (gemm_cpu); attention's per-head products run one head per OpenMP thread. Two pools side by
 * side oversubscribe the cores: each keeps its idle threads spinning after its own calls
 * (libgomp for GOMP_SPINCOUNT, OpenBLAS's pthread server for some 2^28 cycles), so a two-core
 * machine ran three or four busy threads and every OpenMP barrier waited for a descheduled one
 * (Fashion-MNIST's MLP trained 3x slower with both at two threads than with OpenBLAS at one).
 * OpenBLAS's thread count is also global to the process, so with several octetd workers a
 * per-job BLAS count could not hold, while OpenMP's is per calling thread (omp_set_num_threads
 * sets the calling thread's nthreads-var): that is what gives each worker its own share.
 *
 * Who parallelises a given op is a size rule (OCTET_PAR, OCTET_PAR_GEMM_MIN below): work too
 * small to pay for waking the team runs on the calling thread alone. Results do not depend on
 * the thread count: every op splits its work by its shape only, the GEMM tiles too, so each
 * output element comes from the same sgemm call at any thread count (OpenBLAS's own threading
 * changes the bits: matmul_cpu.c).
 *
 * Which OpenBLAS: the pthreads build (Debian's default) takes openblas_set_num_threads(1) for
 * the process; the OpenMP build ignores it and threads a call made outside a parallel region
 * with the caller's omp_get_max_threads(), so BLAS calls made outside one go through
 * octet_blas_enter/leave, which hold the caller's count at 1 around them; any other CBLAS keeps
 * its own threading (configure found no openblas_set_num_threads).
 *
 * Every function here is thread-safe. Nothing exits; failures are status codes. */
#ifndef OCTET_THREADS_H
#define OCTET_THREADS_H

#include <stdint.h>
#include "hd.h"

OCTET_EXTERN_C_BEGIN

#define OCTET_THREADS_MAX 1024 /* the largest thread count octet_threads_set accepts */

/* The CPUs this process may run on (sched_getaffinity), at least 1: the default thread count.
 * Falls back to sysconf(_SC_NPROCESSORS_ONLN), then 1, when the mask cannot be read. */
int octet_threads_available(void);

/* The policy's arithmetic for `workers` concurrent jobs on `cores` CPUs: `requested` when it is
 * > 0 (an explicit --threads), else max(1, cores / workers), so that workers x threads <= cores
 * whenever cores >= workers. Returns OCTET_ERR_ARG for cores < 1, workers < 1, requested < 0
 * or requested > OCTET_THREADS_MAX. */
int octet_threads_share(int cores, int workers, int requested);

/* Sets the thread policy for the calling thread: OpenMP regions started from this thread use
 * n threads (n = 0: octet_threads_available()), and OpenBLAS runs one thread per call (for the
 * whole process). Returns the thread count chosen (>= 1), or OCTET_ERR_ARG for n < 0 or
 * n > OCTET_THREADS_MAX (nothing changed then). The choice is logged once per process (again
 * only when a later call chooses another count). Other threads keep their own setting, so a
 * worker thread calls this itself (trainer_train does, with trainer_options.threads).
 * OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are overridden. */
int octet_threads_set(int n);

/* The OpenMP threads a parallel region started from the calling thread would use now
 * (omp_get_max_threads; 1 in a build without OpenMP). */
int octet_threads_current(void);

/* OpenBLAS's thread count now (openblas_get_num_threads), or 0 when the BLAS library does not
 * say (not OpenBLAS). */
int octet_threads_blas(void);

/* Keeps OpenBLAS (pthreads build) at one thread: sets it when it is not 1 (the first call of a
 * program that never called octet_threads_set, or someone set it since). Returns 1 when BLAS
 * calls made inside a parallel region are single-threaded (OpenBLAS, either build), 0 for a
 * BLAS library whose threading is its own. */
int octet_threads_blas_single(void);

/* Around a BLAS call made outside an OpenMP parallel region: enter returns what leave needs to
 * restore (0: nothing changed). With OpenBLAS's OpenMP build it holds the calling thread's
 * OpenMP count at 1 for the call; otherwise it only applies octet_threads_blas_single(). */
int octet_blas_enter(void);
void octet_blas_leave(int saved);

/* The size rule of the element-wise and row-wise CPU ops: an OpenMP loop over `work` elements
 * runs in parallel only from OCTET_PAR_MIN elements on (`#pragma omp parallel for if
 * (OCTET_PAR(n))`). Below that, waking the team and its closing barrier cost more than the
 * loop: some microseconds with the team spinning, a scheduler time slice when a thread has been
 * descheduled (a shared or busy machine), against ~10 us for 32K floats of a memory-bound loop. */
#define OCTET_PAR_MIN ((int64_t)32768)
#define OCTET_PAR(work) ((int64_t)(work) >= OCTET_PAR_MIN)

/* The size rule of the products: a GEMM (gemm_cpu) is cut into tiles for the OpenMP threads,
 * and attention's per-head products are spread over them, only from this many multiply-adds
 * on (about 60 us on one core at 70 GFLOP/s): the Fashion-MNIST MLP at batch 64 keeps its
 * smaller layers whole. */
#define OCTET_PAR_GEMM_MIN ((int64_t)4 << 20)

OCTET_EXTERN_C_END
#endif
