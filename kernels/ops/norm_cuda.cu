/* norm_cuda.cu: the CUDA twin of norm_cpu.c — LayerNorm over the last dimension, forward and
 * backward, torch semantics (biased variance, rstd = 1/sqrt(var + eps)).
 *
 * Row kernels run one warp per row (OPS_WARPS rows per CUDA block of OPS_THREADS threads,
 * grid-stride over rows): each lane takes the columns lane, lane+32, ... and sums them in
 * double, and the warp adds the 32 partials with an xor butterfly. The arithmetic is the CPU
 * twin's, expression for expression (two-pass variance, rstd from double, ops_math.h's
 * layernorm_one), so the two differ only by the order of the double sums. The weight and bias
 * gradients are column sums over rows: a CUDA block of 32 x 16 threads owns 32 adjacent
 * columns, each of its 16 row-lanes sums a fixed stride of rows in double, and the partials are
 * added in lane order — deterministic, no atomics. The backward pass launches the parameter
 * gradients before the input gradient because dinp may alias dout. Failures: OCTET_ERR_ARG for
 * the CPU twin's argument errors or a non-CUDA device, OCTET_ERR_CUDA (logged) when a launch
 * fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

#define LN_COLS 32  /* columns per CUDA block of the parameter gradients */
#define LN_LANES 16 /* row-lanes per CUDA block of the parameter gradients */

/* ------------------------------------------------------------------ CUDA kernels */

/* One warp per row n: mean[n], rstd[n] and out[n,:] = layernorm_one(inp[n,:], ...). */
static __global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                                const float *weight, const float *bias, int N, int C, float eps)
{
    int lane = threadIdx.x & 31;
    for (int64_t n = (int64_t)blockIdx.x * OPS_WARPS + threadIdx.x / 32; n < N; n += (int64_t)gridDim.x * OPS_WARPS) {
        const float *x = inp + n * C; /* (C) */
        float *y = out + n * C;       /* (C) */
        double s = 0.0;
        for (int c = lane; c < C; c += 32)
            s += x[c];
        s = ops_warp_sum(s);
        float m = (float)(s / C);
        double v = 0.0;
        for (int c = lane; c < C; c += 32) {
            float xm = x[c] - m;
            v += (double)xm * xm;
        }
        v = ops_warp_sum(v);
        float r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int c = lane; c < C; c += 32)
            y[c] = layernorm_one(x[c], m, r, weight[c], bias[c]);
        if (lane == 0) {
            mean[n] = m;
            rstd[n] = r;
        }
    }
}

/* dweight[c] += sum_n dout[n,c] * xhat[n,c]; dbias[c] += sum_n dout[n,c] (either may be NULL).
 * threadIdx.x picks the column, threadIdx.y the rows y, y + LN_LANES, ... */
static __global__ void layernorm_param_grads_kernel(float *dweight, float *dbias, const float *dout,
                                                    const float *inp, const float *mean, const float *rstd,
                                                    int N, int C)
{
    __shared__ double pw[LN_LANES][LN_COLS], pb[LN_LANES][LN_COLS];
    int c = blockIdx.x * LN_COLS + threadIdx.x;
    double dw = 0.0, db = 0.0;
    if (c < C)
        for (int n = threadIdx.y; n < N; n += LN_LANES) {
            float x = inp[(int64_t)n * C + c], dy = dout[(int64_t)n * C + c];
            float xhat = (x - mean[n]) * rstd[n];
            dw += (double)dy * xhat;
            db += dy;
        }
    pw[threadIdx.y][threadIdx.x] = dw;
    pb[threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double tw = 0.0, tb = 0.0;
        for (int y = 0; y < LN_LANES; y++) {
            tw += pw[y][threadIdx.x];
            tb += pb[y][threadIdx.x];
        }
        if (dweight)
            dweight[c] += (float)tw;
        if (dbias)
            dbias[c] += (float)tb;
    }
}

/* One warp per row: dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * weight.
 * Every lane reads its dout elements for the sums before any lane writes (the butterfly is a
 * warp-wide exchange), so dinp may alias dout. */
static __global__ void layernorm_input_grad_kernel(float *dinp, const float *dout, const float *inp,
                                                   const float *weight, const float *mean, const float *rstd,
                                                   int N, int C)
{
    int lane = threadIdx.x & 31;
    for (int64_t n = (int64_t)blockIdx.x * OPS_WARPS + threadIdx.x / 32; n < N; n += (int64_t)gridDim.x * OPS_WARPS) {
        const float *x = inp + n * C, *dy = dout + n * C; /* (C) */
        float *dx = dinp + n * C;                         /* (C) */
        float m = mean[n], r = rstd[n];
        double sg = 0.0, sgx = 0.0;
        for (int c = lane; c < C; c += 32) {
            float g = dy[c] * weight[c];
            sg += g;
            sgx += (double)g * ((x[c] - m) * r);
        }
        sg = ops_warp_sum(sg);
        sgx = ops_warp_sum(sgx);
        float g_mean = (float)(sg / C), gx_mean = (float)(sgx / C);
        for (int c = lane; c < C; c += 32) {
            float xhat = (x[c] - m) * r;
            dx[c] = r * ((dy[c] * weight[c]) - g_mean - xhat * gx_mean);
        }
    }
}

/* ------------------------------------------------------------------ kernel launchers */

static int layernorm_forward_launch(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                    const float *bias, int N, int C, float eps, cudaStream_t st)
{
    int rc = OCTET_OK;
    layernorm_forward_kernel<<<ops_grid(N, OPS_WARPS), OPS_THREADS, 0, st>>>(out, mean, rstd, inp, weight, bias,
                                                                             N, C, eps);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int layernorm_param_grads_launch(float *dweight, float *dbias, const float *dout, const float *inp,
                                        const float *mean, const float *rstd, int N, int C, cudaStream_t st)
{
    int rc = OCTET_OK;
    dim3 block(LN_COLS, LN_LANES);
    layernorm_param_grads_kernel<<<(unsigned)((C + LN_COLS - 1) / LN_COLS), block, 0, st>>>(dweight, dbias, dout,
                                                                                          inp, mean, rstd, N, C);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int layernorm_input_grad_launch(float *dinp, const float *dout, const float *inp, const float *weight,
                                       const float *mean, const float *rstd, int N, int C, cudaStream_t st)
{
    int rc = OCTET_OK;
    layernorm_input_grad_kernel<<<ops_grid(N, OPS_WARPS), OPS_THREADS, 0, st>>>(dinp, dout, inp, weight, mean,
                                                                                rstd, N, C);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int layernorm_forward_cuda(device *d, float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK2(N, C) || !out || !mean || !rstd || !inp || !weight || !bias || !(eps >= 0.0f) ||
        !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return layernorm_forward_launch(out, mean, rstd, inp, weight, bias, N, C, eps, st);
}

int layernorm_backward_cuda(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean, const float *rstd,
                            int N, int C)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK2(N, C) || !dout || !inp || !mean || !rstd || (dinp && !weight) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int rc = OCTET_OK;
    /* parameter gradients first: dinp may alias dout */
    if (dweight || dbias)
        rc = layernorm_param_grads_launch(dweight, dbias, dout, inp, mean, rstd, N, C, st);
    if (rc == OCTET_OK && dinp)
        rc = layernorm_input_grad_launch(dinp, dout, inp, weight, mean, rstd, N, C, st);
    return rc;
}
