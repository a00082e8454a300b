/* norm_cpu.c: the CPU twin of LayerNorm over the last dimension, forward and backward.
 *
 * torch semantics: biased variance, rstd = 1/sqrt(var + eps) (DistilBERT uses eps = 1e-12, so
 * the eps hardly matters and the two-pass variance keeps it accurate). Per-row sums run in
 * double, one row per OpenMP iteration, as LN_LANES interleaved partial sums (element c into
 * lane c % LN_LANES) combined in a fixed tree: vectorisable, and the same bits for every ISA
 * clone (OPS_CPU_CLONES) and thread count. The weight and bias gradients are summed over rows
 * in row order per column block, so nothing depends on the thread count. */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"
#include "ops_math.h"

#include <math.h>

#define LN_COL_BLOCK 64 /* columns per task of the parameter-gradient sums */

#define LN_LANES 8

/* The fixed combination of the lanes: ((0+1)+(2+3))+((4+5)+(6+7)). */
static inline double lanes_sum(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* One row of the forward pass. */
OPS_CPU_CLONES static void ln_row_forward(float *y, float *mean, float *rstd, const float *x, const float *weight,
                                          const float *bias, int C, float eps)
{
    double a[LN_LANES] = {0};
    int c = 0;
    for (; c + LN_LANES <= C; c += LN_LANES)
        for (int k = 0; k < LN_LANES; k++)
            a[k] += x[c + k];
    for (int k = 0; c < C; c++, k++)
        a[k] += x[c];
    float m = (float)(lanes_sum(a) / C);
    double b[LN_LANES] = {0};
    for (c = 0; c + LN_LANES <= C; c += LN_LANES)
        for (int k = 0; k < LN_LANES; k++) {
            float xm = x[c + k] - m;
            b[k] += (double)xm * xm;
        }
    for (int k = 0; c < C; c++, k++) {
        float xm = x[c] - m;
        b[k] += (double)xm * xm;
    }
    float r = (float)(1.0 / sqrt(lanes_sum(b) / C + (double)eps));
    for (c = 0; c < C; c++)
        y[c] = layernorm_one(x[c], m, r, weight[c], bias[c]);
    *mean = m;
    *rstd = r;
}

int layernorm_forward_cpu(device *d, float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps)
{
    (void)d;
    if (!OPS_DIMS_OK2(N, C) || !out || !mean || !rstd || !inp || !weight || !bias || !(eps >= 0.0f))
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)N * C))
    for (int n = 0; n < N; n++)
        ln_row_forward(out + (int64_t)n * C, mean + n, rstd + n, inp + (int64_t)n * C, weight, bias, C, eps);
    return OCTET_OK;
}

/* dweight[c] += sum_n dout[n,c] * xhat[n,c]; dbias[c] += sum_n dout[n,c] (either may be NULL). */
static void layernorm_param_grads(float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *mean, const float *rstd, int N, int C)
{
    int nblocks = (C + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)N * C))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * LN_COL_BLOCK;
        int c1 = c0 + LN_COL_BLOCK < C ? c0 + LN_COL_BLOCK : C;
        double dw[LN_COL_BLOCK] = {0}, db[LN_COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (int64_t)n * C, *dy = dout + (int64_t)n * C;
            for (int c = c0; c < c1; c++) {
                float xhat = (x[c] - mean[n]) * rstd[n];
                dw[c - c0] += (double)dy[c] * xhat;
                db[c - c0] += dy[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            if (dweight)
                dweight[c] += (float)dw[c - c0];
            if (dbias)
                dbias[c] += (float)db[c - c0];
        }
    }
}

/* One row of dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * weight. */
OPS_CPU_CLONES static void ln_row_input_grad(float *dx, const float *dy, const float *x, const float *weight,
                                             float m, float r, int C)
{
    double a[LN_LANES] = {0}, b[LN_LANES] = {0};
    int c = 0;
    for (; c + LN_LANES <= C; c += LN_LANES)
        for (int k = 0; k < LN_LANES; k++) {
            float g = dy[c + k] * weight[c + k];
            a[k] += g;
            b[k] += (double)g * ((x[c + k] - m) * r);
        }
    for (int k = 0; c < C; c++, k++) {
        float g = dy[c] * weight[c];
        a[k] += g;
        b[k] += (double)g * ((x[c] - m) * r);
    }
    float g_mean = (float)(lanes_sum(a) / C), gx_mean = (float)(lanes_sum(b) / C);
    for (c = 0; c < C; c++) {
        float xhat = (x[c] - m) * r;
        dx[c] = r * ((dy[c] * weight[c]) - g_mean - xhat * gx_mean);
    }
}

static void layernorm_input_grad(float *dinp, const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, int N, int C)
{
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)N * C))
    for (int n = 0; n < N; n++)
        ln_row_input_grad(dinp + (int64_t)n * C, dout + (int64_t)n * C, inp + (int64_t)n * C, weight, mean[n],
                          rstd[n], C);
}

int layernorm_backward_cpu(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd,
                           int N, int C)
{
    (void)d;
    if (!OPS_DIMS_OK2(N, C) || !dout || !inp || !mean || !rstd || (dinp && !weight))
        return OCTET_ERR_ARG;
    /* parameter gradients first: dinp may alias dout */
    if (dweight || dbias)
        layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, N, C);
    if (dinp)
        layernorm_input_grad(dinp, dout, inp, weight, mean, rstd, N, C);
    return OCTET_OK;
}
