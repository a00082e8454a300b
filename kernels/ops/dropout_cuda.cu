/* dropout_cuda.cu: the CUDA twin of dropout_cpu.c — dropout forward and backward, and the
 * mask application attention's backward pass shares (ops_dropout_apply_cuda).
 *
 * No mask is stored: element i's factor (0 or 1/(1-p)) is ops_math.h's dropout_factor_one of
 * (seed, offset, i), a Philox4x32-10 draw, the very function the CPU twin calls, so both twins
 * and every launch shape drop the same elements and the kept values are bit-identical
 * (x * the same float factor). One grid-stride kernel, one element per thread per step
 * (OPS_THREADS threads, at most OPS_MAX_GRID blocks). Each element runs its own Philox call
 * (4x the draws a lane-grouped kernel would need) to stay literally on the shared function.
 * p == 0 is a device-to-device copy on the stream (nothing when in place). Failures:
 * OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA device, OCTET_ERR_CUDA (logged)
 * when a launch or the copy fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

/* y[i] = x[i] * dropout_factor_one(p, scale, seed, offset, i); y may alias x. */
static __global__ void dropout_kernel(float *y, const float *x, int64_t N, ops_dropout drop, float scale)
{
    OPS_GRID_STRIDE(i, N)
        y[i] = x[i] * dropout_factor_one(drop.p, scale, drop.seed, drop.offset, (uint64_t)i);
}

static int dropout_launch(float *y, const float *x, int64_t N, ops_dropout drop, cudaStream_t st)
{
    int rc = OCTET_OK;
    if (drop.p <= 0.0f) {
        if (y != x)
            CUDA_TRY(cudaMemcpyAsync(y, x, sizeof(float) * (size_t)N, cudaMemcpyDeviceToDevice, st));
        goto out;
    }
    dropout_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(y, x, N, drop, dropout_scale(drop.p));
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

int ops_dropout_apply_cuda(float *y, const float *x, int64_t N, ops_dropout drop, cudaStream_t s)
{
    return dropout_launch(y, x, N, drop, s);
}

int dropout_forward_cuda(device *d, float *out, const float *inp, int64_t N, ops_dropout drop)
{
    cudaStream_t st;
    if (N <= 0 || !out || !inp || !ops_p_ok(drop.p) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return dropout_launch(out, inp, N, drop, st);
}

int dropout_backward_cuda(device *d, float *dinp, const float *dout, int64_t N, ops_dropout drop)
{
    cudaStream_t st;
    if (N <= 0 || !dinp || !dout || !ops_p_ok(drop.p) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return dropout_launch(dinp, dout, N, drop, st);
}
