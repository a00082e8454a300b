/* gradnorm_cuda.cu: the CUDA twin of gradnorm_cpu.c — the sum of squares over many device
 * buffers behind gradient clipping by global norm (ops_clip_grad_norm in ops.c), returned to a
 * host double; the one ops entry that synchronises.
 *
 * Deterministic and in the CPU twin's shape: each buffer is cut into SUMSQ_PARTS parts whose
 * bounds depend only on its length (the CPU twin's GN_PARTS = 64), one CUDA block of
 * OPS_THREADS threads sums one part in double (strided per thread, then a fixed shared-memory
 * tree), and a single thread adds the parts of each buffer in order and the buffers in order.
 * The buffer list (host arrays) travels as kernel parameters, SUMSQ_BATCH buffers per launch
 * pair; NULL and empty buffers are skipped, as the CPU twin does.
 *
 * Ops never allocate, so the part sums and the running total live in this module's __device__
 * scratch (one copy per GPU). A process-wide mutex keeps two host threads from using it at once;
 * the stream is drained before the mutex is taken, so the lock is held only for the few
 * microseconds of the sum itself. The total comes back with cudaMemcpyFromSymbolAsync on the
 * device's stream followed by cudaStreamSynchronize. Failures: OCTET_ERR_ARG for the CPU twin's
 * argument errors or a non-CUDA device, OCTET_ERR_CUDA (logged) when a launch, the copy or the
 * synchronisation fails (*out is then untouched); no exits. */
#include "config.h"
#include "ops_cuda.h"

#include <pthread.h>

#define SUMSQ_PARTS 64 /* parts per buffer, as the CPU twin's GN_PARTS */
#define SUMSQ_BATCH 32 /* buffers per launch pair (kernel parameters: 520 bytes) */

typedef struct sumsq_batch {
    const float *p[SUMSQ_BATCH]; /* device buffers, none NULL */
    int64_t n[SUMSQ_BATCH];      /* their lengths, all > 0 */
    int count;                   /* buffers used, 1..SUMSQ_BATCH */
} sumsq_batch;

static __device__ double sumsq_parts[SUMSQ_BATCH * SUMSQ_PARTS]; /* part sums of one batch */
static __device__ double sumsq_total;                            /* running total */
static pthread_mutex_t sumsq_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ CUDA kernels */

/* Block k sums part k % SUMSQ_PARTS of buffer k / SUMSQ_PARTS into sumsq_parts[k]. */
static __global__ void __launch_bounds__(OPS_THREADS) sumsq_parts_kernel(sumsq_batch batch)
{
    __shared__ double red[OPS_THREADS];
    int buf = blockIdx.x / SUMSQ_PARTS, part = blockIdx.x % SUMSQ_PARTS;
    const float *x = batch.p[buf];
    int64_t n = batch.n[buf];
    int64_t i0 = n * part / SUMSQ_PARTS, i1 = n * (part + 1) / SUMSQ_PARTS;
    double s = 0.0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += OPS_THREADS)
        s += (double)x[i] * x[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int half = OPS_THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half)
            red[threadIdx.x] += red[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        sumsq_parts[blockIdx.x] = red[0];
}

/* One thread: sumsq_total (= 0 first when `first`) += the batch's buffers, each the in-order
 * sum of its parts, in buffer order. */
static __global__ void sumsq_total_kernel(int count, int first)
{
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
    double total = first ? 0.0 : sumsq_total;
    for (int b = 0; b < count; b++) {
        double s = 0.0;
        for (int p = 0; p < SUMSQ_PARTS; p++)
            s += sumsq_parts[b * SUMSQ_PARTS + p];
        total += s;
    }
    sumsq_total = total;
}

/* ------------------------------------------------------------------ kernel launchers */

static int sumsq_batch_launch(const sumsq_batch *batch, int first, cudaStream_t st)
{
    int rc = OCTET_OK;
    sumsq_parts_kernel<<<(unsigned)(batch->count * SUMSQ_PARTS), OPS_THREADS, 0, st>>>(*batch);
    CUDA_TRY(cudaGetLastError());
    sumsq_total_kernel<<<1, 32, 0, st>>>(batch->count, first);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* Sums every non-empty buffer into sumsq_total and reads it back into *out. The caller holds
 * sumsq_lock. */
static int sumsq_launch(double *out, const float *const *bufs, const int64_t *n, int count, cudaStream_t st)
{
    int rc = OCTET_OK;
    sumsq_batch batch;
    int first = 1;
    double total = 0.0;
    batch.count = 0;
    for (int i = 0; i <= count; i++) {
        if (i < count && n[i] > 0 && bufs[i]) {
            batch.p[batch.count] = bufs[i];
            batch.n[batch.count] = n[i];
            batch.count++;
        }
        if (batch.count == SUMSQ_BATCH || (i == count && batch.count > 0)) {
            rc = sumsq_batch_launch(&batch, first, st);
            if (rc != OCTET_OK)
                goto out;
            first = 0;
            batch.count = 0;
        }
    }
    if (!first)
        CUDA_TRY(cudaMemcpyFromSymbolAsync(&total, sumsq_total, sizeof total, 0, cudaMemcpyDeviceToHost, st));
    CUDA_TRY(cudaStreamSynchronize(st));
    *out = total;
out:
    return rc;
}

/* ------------------------------------------------------------------ entry point */

int sumsq_cuda(device *d, double *out, const float *const *bufs, const int64_t *n, int count)
{
    cudaStream_t st;
    if (!out || count < 0 || (count > 0 && (!bufs || !n)) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int rc = OCTET_OK;
    /* drain the step's queued work outside the lock, so another thread waits microseconds */
    CUDA_TRY(cudaStreamSynchronize(st));
    pthread_mutex_lock(&sumsq_lock);
    rc = sumsq_launch(out, bufs, n, count, st);
    pthread_mutex_unlock(&sumsq_lock);
out:
    return rc;
}
