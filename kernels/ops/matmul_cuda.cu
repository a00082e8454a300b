/* matmul_cuda.cu: the CUDA twin of matmul_cpu.c — the row-major gemm over cuBLAS, the linear
 * layer (nn.Linear layout) forward and backward built on it, and the per-device matmul
 * precision switch (fp32, or bf16 / fp16 tensor cores with fp32 accumulation; see ops_cuda.h).
 *
 * Every buffer is row-major; cuBLAS is column-major, so ops_rm_gemm hands cuBLAS the transposed
 * problem c^T = op(b)^T op(a)^T with the operands swapped (llm.c's train_gpt2_fp32.cu does the
 * same), one cublasGemmEx (or cublasGemmStridedBatchedEx for attention's per-head products) on
 * the device's handle, which device_cuda.cu bound to the device's stream. Compute type
 * CUBLAS_COMPUTE_32F (true fp32, no TF32), CUBLAS_COMPUTE_32F_FAST_16BF or
 * CUBLAS_COMPUTE_32F_FAST_16F.
 *
 * Two small kernels finish the layer: the bias broadcast-add of the forward pass (grid-stride,
 * one element per thread) and the bias gradient of the backward pass, a column sum: a CUDA
 * block of 32 x 16 threads owns 32 adjacent columns (coalesced rows), each of its 16 row-lanes
 * sums a fixed stride of rows in double, and the 16 partials are added in lane order, so the
 * result does not depend on scheduling (it differs from the CPU twin's row-order sum only by
 * double rounding). Failures: OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA
 * device, OCTET_ERR_CUDA (logged with file:line) when cuBLAS or a launch fails; no exits, no
 * host synchronisation. */
#include "config.h"
#include "ops_cuda.h"

#include <pthread.h>

/* ------------------------------------------------------------------ precision switch */

/* Devices whose matmuls run in bf16 or fp16, with their mode; everything else is fp32. Guarded
 * by prec_lock. */
static const device *prec_devices[OPS_CUDA_MAX_BF16_DEVICES];
static int prec_modes[OPS_CUDA_MAX_BF16_DEVICES];
static pthread_mutex_t prec_lock = PTHREAD_MUTEX_INITIALIZER;

extern "C" int ops_cuda_set_matmul_precision(device *d, int mode)
{
    if (!d || mode < OPS_MATMUL_FP32 || mode > OPS_MATMUL_FP16 ||
        (mode != OPS_MATMUL_FP32 && device_kind(d) != OCTET_DEV_CUDA))
        return OCTET_ERR_ARG;
    int rc = mode != OPS_MATMUL_FP32 ? OCTET_ERR_NOMEM : OCTET_OK, free_slot = -1;
    pthread_mutex_lock(&prec_lock);
    for (int i = 0; i < OPS_CUDA_MAX_BF16_DEVICES; i++) {
        if (prec_devices[i] == d) {
            if (mode == OPS_MATMUL_FP32)
                prec_devices[i] = NULL;
            else
                prec_modes[i] = mode;
            rc = OCTET_OK;
            free_slot = -1;
            break;
        }
        if (!prec_devices[i] && free_slot < 0)
            free_slot = i;
    }
    if (mode != OPS_MATMUL_FP32 && free_slot >= 0) {
        prec_devices[free_slot] = d;
        prec_modes[free_slot] = mode;
        rc = OCTET_OK;
    }
    pthread_mutex_unlock(&prec_lock);
    return rc;
}

extern "C" int ops_cuda_matmul_precision(const device *d)
{
    int mode = OPS_MATMUL_FP32;
    if (!d)
        return mode;
    pthread_mutex_lock(&prec_lock);
    for (int i = 0; i < OPS_CUDA_MAX_BF16_DEVICES; i++)
        if (prec_devices[i] == d) {
            mode = prec_modes[i];
            break;
        }
    pthread_mutex_unlock(&prec_lock);
    return mode;
}

/* ------------------------------------------------------------------ row-major cuBLAS */

int ops_rm_gemm(device *d, int ta, int tb, int M, int N, int K, float alpha, const float *a, int lda,
                long long sa, const float *b, int ldb, long long sb, float beta, float *c, int ldc,
                long long sc, int batch)
{
    int rc = OCTET_OK;
    cublasHandle_t h = (cublasHandle_t)device_blas(d);
    int mode = ops_cuda_matmul_precision(d);
    cublasComputeType_t ct = mode == OPS_MATMUL_BF16   ? CUBLAS_COMPUTE_32F_FAST_16BF
                             : mode == OPS_MATMUL_FP16 ? CUBLAS_COMPUTE_32F_FAST_16F
                                                       : CUBLAS_COMPUTE_32F;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* alpha and beta are host scalars, and no math mode may turn COMPUTE_32F into TF32; the
     * handle is the device's, shared with other code, so both are restated on every call. */
    CUBLAS_TRY(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    CUBLAS_TRY(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    /* column-major c^T (N,M) = op(b)^T (N,K) . op(a)^T (K,M) */
    if (batch == 1)
        CUBLAS_TRY(cublasGemmEx(h, opb, opa, N, M, K, &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta, c,
                                CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_TRY(cublasGemmStridedBatchedEx(h, opb, opa, N, M, K, &alpha, b, CUDA_R_32F, ldb, sb, a, CUDA_R_32F,
                                              lda, sa, &beta, c, CUDA_R_32F, ldc, sc, batch, ct,
                                              CUBLAS_GEMM_DEFAULT));
out:
    return rc;
}

/* ------------------------------------------------------------------ CUDA kernels */

/* out (M,N) += bias (N) on every row; one element per thread, grid-stride. */
static __global__ void bias_add_kernel(float *out, const float *bias, int64_t MN, int N)
{
    OPS_GRID_STRIDE(i, MN)
        out[i] += bias[i % N];
}

#define COLSUM_X 32 /* columns per CUDA block of the column sums */
#define COLSUM_Y 16 /* row-lanes per CUDA block */

/* dbias[n] += sum over m of dout[m, n]: threadIdx.x picks the column, threadIdx.y the rows
 * m = y, y + COLSUM_Y, ...; the COLSUM_Y partials (double) are added in y order. */
static __global__ void bias_grad_kernel(float *dbias, const float *dout, int M, int N)
{
    __shared__ double part[COLSUM_Y][COLSUM_X];
    int n = blockIdx.x * COLSUM_X + threadIdx.x;
    double s = 0.0;
    if (n < N)
        for (int m = threadIdx.y; m < M; m += COLSUM_Y)
            s += dout[(int64_t)m * N + n];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && n < N) {
        double t = 0.0;
        for (int y = 0; y < COLSUM_Y; y++)
            t += part[y][threadIdx.x];
        dbias[n] += (float)t;
    }
}

/* ------------------------------------------------------------------ kernel launchers */

static int bias_add_launch(float *out, const float *bias, int M, int N, cudaStream_t st)
{
    int rc = OCTET_OK;
    int64_t MN = (int64_t)M * N;
    bias_add_kernel<<<ops_grid(MN, OPS_THREADS), OPS_THREADS, 0, st>>>(out, bias, MN, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int bias_grad_launch(float *dbias, const float *dout, int M, int N, cudaStream_t st)
{
    int rc = OCTET_OK;
    dim3 block(COLSUM_X, COLSUM_Y);
    bias_grad_kernel<<<(unsigned)((N + COLSUM_X - 1) / COLSUM_X), block, 0, st>>>(dbias, dout, M, N);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int gemm_cuda(device *d, float *c, const float *a, const float *b, int M, int N, int K, int trans_a,
              int trans_b, float alpha, float beta)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(M, N, K) || !c || !a || !b || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int lda = trans_a ? M : K; /* a stored (K,M) or (M,K) */
    int ldb = trans_b ? K : N; /* b stored (N,K) or (K,N) */
    return ops_rm_gemm(d, trans_a, trans_b, M, N, K, alpha, a, lda, 0, b, ldb, 0, beta, c, N, 0, 1);
}

int matmul_forward_cuda(device *d, float *out, const float *inp, const float *weight, const float *bias,
                        int M, int K, int N)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(M, N, K) || !out || !inp || !weight || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    /* out (M,N) = inp (M,K) . weight (N,K)^T, then + bias (N) on every row */
    int rc = ops_rm_gemm(d, 0, 1, M, N, K, 1.0f, inp, K, 0, weight, K, 0, 0.0f, out, N, 0, 1);
    if (rc != OCTET_OK || !bias)
        return rc;
    return bias_add_launch(out, bias, M, N, st);
}

int matmul_backward_cuda(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int M, int K, int N, int accumulate_dinp)
{
    /* dinp (M,K), dweight (N,K), dbias (N); dout (M,N), inp (M,K), weight (N,K) */
    cudaStream_t st;
    if (!OPS_DIMS_OK3(M, K, N) || !dout || (dinp && !weight) || (dweight && !inp) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int rc = OCTET_OK;
    if (dinp) /* dinp (M,K) = dout (M,N) . weight (N,K) */
        rc = ops_rm_gemm(d, 0, 0, M, K, N, 1.0f, dout, N, 0, weight, K, 0, accumulate_dinp ? 1.0f : 0.0f, dinp,
                         K, 0, 1);
    if (rc == OCTET_OK && dweight) /* dweight (N,K) += dout^T (N,M) . inp (M,K) */
        rc = ops_rm_gemm(d, 1, 0, N, K, M, 1.0f, dout, N, 0, inp, K, 0, 1.0f, dweight, K, 0, 1);
    if (rc == OCTET_OK && dbias)
        rc = bias_grad_launch(dbias, dout, M, N, st);
    return rc;
}
