/* act_cuda.cu: the CUDA twin of act_cpu.c — residual add, ReLU, exact GELU, the fused bias +
 * GELU of the FFN, in-place scale — and the [CLS] token selection of the classification head.
 *
 * Each op is one grid-stride kernel, one element per thread per step (OPS_THREADS threads, at
 * most OPS_MAX_GRID blocks, 64-bit indices), calling the same ops_math.h functions as the CPU
 * twin. Built with --fmad=false and without fast-math, so add, ReLU, scale and the token copies
 * are bit-identical to the CPU twin, and so should GELU be: its erf and exp are ops_math.h's
 * own float arithmetic (ops_erff, ops_expf), not the two math libraries'. Aliasing as ops.h
 * allows (out == a, out == inp for ReLU, dinp == dout): every element is read before it is written, by the same thread. Failures:
 * OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA device, OCTET_ERR_CUDA (logged)
 * when a launch fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

/* ------------------------------------------------------------------ CUDA kernels */

static __global__ void add_kernel(float *out, const float *a, const float *b, int64_t N)
{
    OPS_GRID_STRIDE(i, N) out[i] = a[i] + b[i];
}

static __global__ void relu_forward_kernel(float *out, const float *inp, int64_t N)
{
    OPS_GRID_STRIDE(i, N) out[i] = relu_one(inp[i]);
}

static __global__ void relu_backward_kernel(float *dinp, const float *inp, const float *dout, int64_t N)
{
    OPS_GRID_STRIDE(i, N) dinp[i] = dout[i] * relu_grad_one(inp[i]);
}

static __global__ void gelu_forward_kernel(float *out, const float *inp, int64_t N)
{
    OPS_GRID_STRIDE(i, N) out[i] = gelu_one(inp[i]);
}

static __global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, int64_t N)
{
    OPS_GRID_STRIDE(i, N) dinp[i] = dout[i] * gelu_grad_one(inp[i]);
}

/* pre (M,N) += bias (N) on every row, out = gelu(pre); element i is column i % N. The column
 * is computed once and then advanced with the grid stride, instead of a 64-bit division per
 * element. The addition is bias_add_kernel's (matmul_cuda.cu), so the bits are its followed by
 * gelu_forward_kernel's. */
static __global__ void bias_gelu_kernel(float *pre, float *out, const float *bias, int64_t MN, int N)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t col = i % N, step = stride % N;
    for (; i < MN; i += stride) {
        float v = pre[i] + bias[col];
        pre[i] = v;
        out[i] = gelu_one(v);
        col += step;
        col = col >= N ? col - N : col;
    }
}

static __global__ void scale_kernel(float *x, int64_t N, float s)
{
    OPS_GRID_STRIDE(i, N) x[i] *= s;
}

/* out (B,C) = inp (B,T,C) at token t; element i = b*C + c. */
static __global__ void token_select_forward_kernel(float *out, const float *inp, int B, int T, int C, int t)
{
    OPS_GRID_STRIDE(i, (int64_t)B * C)
    {
        int64_t b = i / C, c = i % C;
        out[i] = inp[(b * T + t) * C + c];
    }
}

/* dinp (B,T,C): dout (B,C) at token t, 0 elsewhere; element i = (b*T + u)*C + c. */
static __global__ void token_select_backward_kernel(float *dinp, const float *dout, int B, int T, int C, int t)
{
    OPS_GRID_STRIDE(i, (int64_t)B * T * C)
    {
        int64_t bu = i / C, c = i % C;
        int64_t b = bu / T, u = bu % T;
        dinp[i] = u == t ? dout[b * C + c] : 0.0f;
    }
}

/* ------------------------------------------------------------------ kernel launchers */

/* Each launcher returns OCTET_OK or OCTET_ERR_CUDA (cudaGetLastError after the launch). */

static int add_launch(float *out, const float *a, const float *b, int64_t N, cudaStream_t st)
{
    int rc = OCTET_OK;
    add_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(out, a, b, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int relu_forward_launch(float *o, const float *x, int64_t N, cudaStream_t st)
{
    int rc = OCTET_OK;
    relu_forward_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(o, x, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int relu_backward_launch(float *dx, const float *x, const float *dy, int64_t N, cudaStream_t st)
{
    int rc = OCTET_OK;
    relu_backward_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(dx, x, dy, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int gelu_forward_launch(float *o, const float *x, int64_t N, cudaStream_t st)
{
    int rc = OCTET_OK;
    gelu_forward_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(o, x, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int gelu_backward_launch(float *dx, const float *x, const float *dy, int64_t N, cudaStream_t st)
{
    int rc = OCTET_OK;
    gelu_backward_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(dx, x, dy, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int bias_gelu_launch(float *pre, float *o, const float *bias, int M, int N, cudaStream_t st)
{
    int rc = OCTET_OK;
    int64_t MN = (int64_t)M * N;
    bias_gelu_kernel<<<ops_grid(MN, OPS_THREADS), OPS_THREADS, 0, st>>>(pre, o, bias, MN, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int scale_launch(float *x, int64_t N, float s, cudaStream_t st)
{
    int rc = OCTET_OK;
    scale_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(x, N, s);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int token_select_forward_launch(float *o, const float *x, int B, int T, int C, int t, cudaStream_t st)
{
    int rc = OCTET_OK;
    token_select_forward_kernel<<<ops_grid((int64_t)B * C, OPS_THREADS), OPS_THREADS, 0, st>>>(o, x, B, T, C, t);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int token_select_backward_launch(float *dx, const float *dy, int B, int T, int C, int t, cudaStream_t st)
{
    int rc = OCTET_OK;
    token_select_backward_kernel<<<ops_grid((int64_t)B * T * C, OPS_THREADS), OPS_THREADS, 0, st>>>(dx, dy, B, T,
                                                                                                     C, t);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int add_forward_cuda(device *d, float *out, const float *a, const float *b, int64_t N)
{
    cudaStream_t st;
    if (N <= 0 || !out || !a || !b || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return add_launch(out, a, b, N, st);
}

int relu_forward_cuda(device *d, float *out, const float *inp, int64_t N)
{
    cudaStream_t st;
    if (N <= 0 || !out || !inp || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return relu_forward_launch(out, inp, N, st);
}

int relu_backward_cuda(device *d, float *dinp, const float *inp, const float *dout, int64_t N)
{
    cudaStream_t st;
    if (N <= 0 || !dinp || !inp || !dout || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return relu_backward_launch(dinp, inp, dout, N, st);
}

int gelu_forward_cuda(device *d, float *out, const float *inp, int64_t N)
{
    cudaStream_t st;
    if (N <= 0 || !out || !inp || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return gelu_forward_launch(out, inp, N, st);
}

int gelu_backward_cuda(device *d, float *dinp, const float *inp, const float *dout, int64_t N)
{
    cudaStream_t st;
    if (N <= 0 || !dinp || !inp || !dout || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return gelu_backward_launch(dinp, inp, dout, N, st);
}

int bias_gelu_forward_cuda(device *d, float *pre, float *out, const float *bias, int M, int N)
{
    cudaStream_t st;
    if (!ops_bias_gelu_ok(pre, out, M, N) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    if (!bias) /* nothing to add: the GELU alone, as gelu_forward */
        return gelu_forward_launch(out, pre, (int64_t)M * N, st);
    return bias_gelu_launch(pre, out, bias, M, N, st);
}

int scale_cuda(device *d, float *x, int64_t N, float s)
{
    cudaStream_t st;
    if (N <= 0 || !x || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return scale_launch(x, N, s, st);
}

int token_select_forward_cuda(device *d, float *out, const float *inp, int B, int T, int C, int t)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(B, T, C) || t < 0 || t >= T || !out || !inp || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return token_select_forward_launch(out, inp, B, T, C, t, st);
}

int token_select_backward_cuda(device *d, float *dinp, const float *dout, int B, int T, int C, int t)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(B, T, C) || t < 0 || t >= T || !dinp || !dout || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return token_select_backward_launch(dinp, dout, B, T, C, t, st);
}
