/* act_cpu.c: the CPU twin's elementwise ops — residual add, ReLU, exact GELU, the fused bias +
 * GELU of the FFN, in-place scale — and the [CLS] token selection of the classification head.
 *
 * Each is one OpenMP loop over the elements calling the per-element math of ops_math.h, the
 * same functions the CUDA twin's kernels call. GELU's erf and exp are ops_math.h's own
 * branch-free float functions (not libm's), so its loops vectorise (and are cloned for AVX2 and
 * AVX-512, OPS_CPU_CLONES) and both twins run the same arithmetic. */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"
#include "ops_math.h"

#include <string.h>

int add_forward_cpu(device *d, float *out, const float *a, const float *b, int64_t N)
{
    (void)d;
    if (N <= 0 || !out || !a || !b)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t i = 0; i < N; i++)
        out[i] = a[i] + b[i];
    return OCTET_OK;
}

int relu_forward_cpu(device *d, float *out, const float *inp, int64_t N)
{
    (void)d;
    if (N <= 0 || !out || !inp)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t i = 0; i < N; i++)
        out[i] = relu_one(inp[i]);
    return OCTET_OK;
}

int relu_backward_cpu(device *d, float *dinp, const float *inp, const float *dout, int64_t N)
{
    (void)d;
    if (N <= 0 || !dinp || !inp || !dout)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t i = 0; i < N; i++)
        dinp[i] = dout[i] * relu_grad_one(inp[i]);
    return OCTET_OK;
}

/* Elements per OpenMP work item of the GELU loops. */
#define GELU_CHUNK 4096

/* The GELU loops, vectorised, in one clone per ISA (OPS_CPU_CLONES); dinp may alias dout. */
OPS_CPU_CLONES static void gelu_forward_run(float *out, const float *inp, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = gelu_one(inp[i]);
}

OPS_CPU_CLONES static void gelu_backward_run(float *dinp, const float *inp, const float *dout, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        dinp[i] = dout[i] * gelu_grad_one(inp[i]);
}

int gelu_forward_cpu(device *d, float *out, const float *inp, int64_t N)
{
    (void)d;
    if (N <= 0 || !out || !inp)
        return OCTET_ERR_ARG;
    int64_t chunks = (N + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * GELU_CHUNK;
        gelu_forward_run(out + i0, inp + i0, N - i0 < GELU_CHUNK ? N - i0 : GELU_CHUNK);
    }
    return OCTET_OK;
}

int gelu_backward_cpu(device *d, float *dinp, const float *inp, const float *dout, int64_t N)
{
    (void)d;
    if (N <= 0 || !dinp || !inp || !dout)
        return OCTET_ERR_ARG;
    int64_t chunks = (N + GELU_CHUNK - 1) / GELU_CHUNK;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * GELU_CHUNK;
        gelu_backward_run(dinp + i0, inp + i0, dout + i0, N - i0 < GELU_CHUNK ? N - i0 : GELU_CHUNK);
    }
    return OCTET_OK;
}

/* One row of bias_gelu_forward: pre[j] += bias[j], then out[j] = gelu(pre[j]). The addition is
 * the one float addition of matmul_forward_cpu's bias loop, so pre and out get the bits of that
 * loop followed by gelu_forward_run. out does not alias pre (ops.h). */
OPS_CPU_CLONES static void bias_gelu_run(float *pre, float *out, const float *bias, int64_t n)
{
    OPS_SIMD
    for (int64_t j = 0; j < n; j++) {
        float v = pre[j] + bias[j];
        pre[j] = v;
        out[j] = gelu_one(v);
    }
}

int bias_gelu_forward_cpu(device *d, float *pre, float *out, const float *bias, int M, int N)
{
    if (!ops_bias_gelu_ok(pre, out, M, N))
        return OCTET_ERR_ARG;
    if (!bias) /* nothing to add: the GELU alone, as gelu_forward */
        return gelu_forward_cpu(d, out, pre, (int64_t)M * N);
    /* rows in work items of about GELU_CHUNK elements (one row at least) */
    int rows = N < GELU_CHUNK ? GELU_CHUNK / N : 1;
    int items = (M + rows - 1) / rows;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)M * N))
    for (int it = 0; it < items; it++) {
        int m0 = it * rows, m1 = M - m0 < rows ? M : m0 + rows;
        for (int m = m0; m < m1; m++)
            bias_gelu_run(pre + (int64_t)m * N, out + (int64_t)m * N, bias, N);
    }
    return OCTET_OK;
}

int scale_cpu(device *d, float *x, int64_t N, float s)
{
    (void)d;
    if (N <= 0 || !x)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t i = 0; i < N; i++)
        x[i] *= s;
    return OCTET_OK;
}

int token_select_forward_cpu(device *d, float *out, const float *inp, int B, int T, int C, int t)
{
    (void)d;
    if (!OPS_DIMS_OK3(B, T, C) || t < 0 || t >= T || !out || !inp)
        return OCTET_ERR_ARG;
    /* out (B,C) = inp (B,T,C) at token t */
    for (int b = 0; b < B; b++)
        memcpy(out + (int64_t)b * C, inp + ((int64_t)b * T + t) * C, sizeof(float) * (size_t)C);
    return OCTET_OK;
}

int token_select_backward_cpu(device *d, float *dinp, const float *dout, int B, int T, int C, int t)
{
    (void)d;
    if (!OPS_DIMS_OK3(B, T, C) || t < 0 || t >= T || !dinp || !dout)
        return OCTET_ERR_ARG;
    /* dinp (B,T,C): zero except token t, which gets dout (B,C) */
    memset(dinp, 0, sizeof(float) * (size_t)B * (size_t)T * (size_t)C);
    for (int b = 0; b < B; b++)
        memcpy(dinp + ((int64_t)b * T + t) * C, dout + (int64_t)b * C, sizeof(float) * (size_t)C);
    return OCTET_OK;
}
