/* matmul_cpu.c: the CPU twin's matrix products — a row-major gemm over CBLAS and the linear
 * layer (nn.Linear layout) forward and backward built on it.
 *
 * Every buffer is row-major and contiguous, so each call is one cblas_sgemm(CblasRowMajor, ...)
 * with leading dimensions read off the stored shapes; OpenBLAS threads the product itself. The
 * bias sums of the backward pass run over columns in parallel, each column in a fixed order, so
 * the result does not depend on the thread count. */
#include "config.h"
#include "ops_cpu.h"

#include <cblas.h>

int gemm_cpu(device *d, float *c, const float *a, const float *b, int M, int N, int K, int trans_a,
             int trans_b, float alpha, float beta)
{
    (void)d;
    if (!OPS_DIMS_OK3(M, N, K) || !c || !a || !b)
        return OCTET_ERR_ARG;
    int lda = trans_a ? M : K; /* a stored (K,M) or (M,K) */
    int ldb = trans_b ? K : N; /* b stored (N,K) or (K,N) */
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, a, lda, b, ldb, beta, c, N);
    return OCTET_OK;
}

int matmul_forward_cpu(device *d, float *out, const float *inp, const float *weight, const float *bias,
                       int M, int K, int N)
{
    /* out (M,N) = inp (M,K) . weight (N,K)^T, then + bias (N) on every row */
    int rc = gemm_cpu(d, out, inp, weight, M, N, K, 0, 1, 1.0f, 0.0f);
    if (rc != OCTET_OK || !bias)
        return rc;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        float *row = out + (int64_t)m * N;
        for (int n = 0; n < N; n++)
            row[n] += bias[n];
    }
    return OCTET_OK;
}

/* Columns per OpenMP work item of bias_grad. */
#define BIAS_COLS 128

/* dbias[n] += sum over m of dout[m, n], each column summed in m order in double. The rows are
 * walked in order and added into a block of column accumulators (contiguous, vectorised),
 * so every column still sees its rows in ascending order: the same sums as a column-by-column
 * loop, without its stride-N walk over all of dout per column. */
static void bias_grad(float *dbias, const float *dout, int M, int N)
{
    int blocks = (N + BIAS_COLS - 1) / BIAS_COLS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        int n0 = blk * BIAS_COLS, nn = N - n0 < BIAS_COLS ? N - n0 : BIAS_COLS;
        double s[BIAS_COLS];
        for (int j = 0; j < nn; j++)
            s[j] = 0.0;
        for (int m = 0; m < M; m++) {
            const float *row = dout + (int64_t)m * N + n0;
            for (int j = 0; j < nn; j++)
                s[j] += row[j];
        }
        for (int j = 0; j < nn; j++)
            dbias[n0 + j] += (float)s[j];
    }
}

int matmul_backward_cpu(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int M, int K, int N, int accumulate_dinp)
{
    /* dinp (M,K), dweight (N,K), dbias (N); dout (M,N), inp (M,K), weight (N,K) */
    if (!OPS_DIMS_OK3(M, K, N) || !dout || (dinp && !weight) || (dweight && !inp))
        return OCTET_ERR_ARG;
    if (dinp) /* dinp (M,K) = dout (M,N) . weight (N,K) */
        gemm_cpu(d, dinp, dout, weight, M, K, N, 0, 0, 1.0f, accumulate_dinp ? 1.0f : 0.0f);
    if (dweight) /* dweight (N,K) += dout^T (N,M) . inp (M,K) */
        gemm_cpu(d, dweight, dout, inp, N, K, M, 1, 0, 1.0f, 1.0f);
    if (dbias)
        bias_grad(dbias, dout, M, N);
    return OCTET_OK;
}
