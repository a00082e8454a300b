/* matmul_cpu.c: the CPU twin's matrix products — a row-major gemm over CBLAS and the linear
 * layer (nn.Linear layout) forward and backward built on it.
 *
 * Every buffer is row-major and contiguous, so each product is cblas_sgemm(CblasRowMajor, ...)
 * with leading dimensions read off the stored shapes. OpenBLAS runs one thread per call
 * (threads.h); a large product is cut into tiles, slabs of C's rows or columns, and OpenMP
 * threads compute the tiles with one sgemm call each. The tiles depend on the shape only, never
 * on the thread count: OpenBLAS's results depend on how a product is cut (its kernels treat
 * edge tiles differently; its own threading changes the bits too), so a fixed cut is what makes
 * the result the same at any thread count. The bias sums of the backward pass run over columns
 * in parallel, each column in a fixed order, so they do not depend on the thread count either. */
#include "config.h"
#include "ops_cpu.h"

#include <cblas.h>
#include "threads.h"

/* The tiling of a gemm: tiles of at least GEMM_TILE_DIM rows (or columns) and GEMM_TILE_WORK
 * multiply-adds, a power of two of them (balanced over 2, 4, 8, 16 threads), GEMM_TILES_MAX at
 * most. Each tile packs the whole of the other operand again, which costs 3-9% on one thread
 * for two tiles of the Fashion-MNIST MLP's 64x256x784 and nothing measurable for DistilBERT's
 * 2048-row products (measured on this host's Zen 3, OpenBLAS 0.3.21); GEMM_TILE_WORK keeps
 * products that take under ~60 us on one core whole, where a team's wake-up would not pay. */
#define GEMM_TILE_DIM 64
#define GEMM_TILE_WORK OCTET_PAR_GEMM_MIN
#define GEMM_TILES_MAX 16
#define GEMM_TILE_ALIGN 16 /* tile bounds at multiples of 16 rows/columns: whole kernel tiles */

/* How many tiles a (M,N,K) product is cut into, and along which dimension (*split_rows: 1
 * for C's rows, 0 for its columns: whichever is longer). */
static int gemm_tiles(int M, int N, int K, int *split_rows)
{
    *split_rows = M >= N;
    int64_t dim = *split_rows ? M : N;
    int64_t by_dim = dim / GEMM_TILE_DIM, by_work = (int64_t)M * N * K / GEMM_TILE_WORK;
    int64_t cap = by_dim < by_work ? by_dim : by_work;
    int tiles = 1;
    while (tiles * 2 <= cap && tiles * 2 <= GEMM_TILES_MAX)
        tiles *= 2;
    return tiles;
}

/* Where tile i of `tiles` starts along a dimension of length dim. */
static int tile_start(int64_t dim, int i, int tiles)
{
    if (i >= tiles)
        return (int)dim;
    return (int)(dim * i / tiles / GEMM_TILE_ALIGN * GEMM_TILE_ALIGN);
}

/* Tile i of `tiles` of c = alpha op(a) op(b) + beta c: one single-threaded sgemm call. */
static void gemm_tile(float *c, const float *a, const float *b, int M, int N, int K, int trans_a, int trans_b,
                      float alpha, float beta, int split_rows, int i, int tiles)
{
    int lda = trans_a ? M : K; /* a stored (K,M) or (M,K) */
    int ldb = trans_b ? K : N; /* b stored (N,K) or (K,N) */
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    int lo = tile_start(split_rows ? M : N, i, tiles), hi = tile_start(split_rows ? M : N, i + 1, tiles);
    if (split_rows) /* C's rows lo..hi: a's rows (its columns when stored transposed) */
        cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, trans_a ? a + lo : a + (int64_t)lo * K, lda, b,
                    ldb, beta, c + (int64_t)lo * N, N);
    else /* C's columns lo..hi: b's columns (its rows when stored transposed) */
        cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, a, lda, trans_b ? b + (int64_t)lo * K : b + lo, ldb,
                    beta, c + lo, N);
}

int gemm_cpu(device *d, float *c, const float *a, const float *b, int M, int N, int K, int trans_a,
             int trans_b, float alpha, float beta)
{
    (void)d;
    if (!OPS_DIMS_OK3(M, N, K) || !c || !a || !b)
        return OCTET_ERR_ARG;
    int split_rows, tiles = gemm_tiles(M, N, K, &split_rows);
    if (tiles == 1) { /* one call on this thread, OpenBLAS held to one thread */
        int saved = octet_blas_enter();
        gemm_tile(c, a, b, M, N, K, trans_a, trans_b, alpha, beta, split_rows, 0, 1);
        octet_blas_leave(saved);
        return OCTET_OK;
    }
    octet_threads_blas_single();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < tiles; i++)
        gemm_tile(c, a, b, M, N, K, trans_a, trans_b, alpha, beta, split_rows, i, tiles);
    return OCTET_OK;
}

int matmul_forward_cpu(device *d, float *out, const float *inp, const float *weight, const float *bias,
                       int M, int K, int N)
{
    /* out (M,N) = inp (M,K) . weight (N,K)^T, then + bias (N) on every row */
    int rc = gemm_cpu(d, out, inp, weight, M, N, K, 0, 1, 1.0f, 0.0f);
    if (rc != OCTET_OK || !bias)
        return rc;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)M * N))
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
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)M * N))
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
