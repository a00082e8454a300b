/* ops_cuda.h: the CUDA twin of the ops (the kernels/ops files named *_cuda.cu): its one public
 * switch, the matmul precision of a CUDA device, and, for the .cu files only (under __CUDACC__),
 * the entry points ops_cuda.cu gathers into ops_table_cuda() plus the helpers they share.
 *
 * Precision. By default every matmul (gemm, the linear layers, attention's per-head products)
 * runs in fp32 through cuBLAS with CUBLAS_COMPUTE_32F: no TF32, no reduced-precision inputs.
 * ops_cuda_set_matmul_precision(d, OPS_MATMUL_BF16) switches device d's matmuls to
 * CUBLAS_COMPUTE_32F_FAST_16BF: cuBLAS may round the fp32 operands to bf16 (its header says "to
 * bfloat16 or TF32") and multiply them on the tensor cores, accumulating and writing fp32. The
 * matmul switch alone changes only the products (8 significant bits per operand, about 2e-3
 * relative norm on a product of 257-long rows): the ops' inputs and outputs stay fp32.
 * OPS_MATMUL_FP16 does the same with CUBLAS_COMPUTE_32F_FAST_16F: operands rounded to fp16 (11
 * significant bits, but a range of only 6e-8 .. 65504, so a gradient operand can underflow or
 * overflow: training in fp16 needs dynamic loss scaling, server/train/loss_scale.h). The memory
 * saving of the training precisions comes from elsewhere: the to_half / from_half entries
 * (cast_cuda.cu) with which DistilBERT stores the activations its backward pass reads in bf16 /
 * fp16 (server/train/distilbert.c), halving them; the other ops still compute in fp32, so this
 * is not autocast.
 *
 * Include config.h first: in a build without CUDA (no HAVE_CUDA) the switch is an inline fallback
 * that refuses bf16, so callers compile and link without #ifdef HAVE_CUDA. */
#ifndef OCTET_OPS_CUDA_H
#define OCTET_OPS_CUDA_H

#include "ops.h"
#include "ops_check.h"

OCTET_EXTERN_C_BEGIN

/* The matmul precisions of a CUDA device (see above). */
enum { OPS_MATMUL_FP32 = 0, OPS_MATMUL_BF16 = 1, OPS_MATMUL_FP16 = 2 };

#ifdef HAVE_CUDA
/* Sets the matmul precision of device d to `mode` (OPS_MATMUL_*; 1 is bf16, as before fp16
 * existed). Takes effect for the ops called after it on d. The setting is remembered per device
 * pointer in a small table until set back to OPS_MATMUL_FP32, so reset it before
 * device_close(d) (a later device at the same address would otherwise inherit it). Returns
 * OCTET_OK; OCTET_ERR_ARG when d is NULL, mode is not an OPS_MATMUL_* value, or d is not a CUDA
 * device and mode is not fp32 (a CPU device accepts fp32, which is what it does anyway);
 * OCTET_ERR_NOMEM when OPS_CUDA_MAX_BF16_DEVICES devices already have a reduced precision set.
 * Thread-safe. */
int ops_cuda_set_matmul_precision(device *d, int mode);
/* The OPS_MATMUL_* mode of device d's matmuls (OPS_MATMUL_FP32 also for NULL and CPU devices). */
int ops_cuda_matmul_precision(const device *d);
#else
static inline int ops_cuda_set_matmul_precision(device *d, int mode)
{
    return (d && mode == OPS_MATMUL_FP32) ? OCTET_OK : OCTET_ERR_ARG;
}
static inline int ops_cuda_matmul_precision(const device *d)
{
    (void)d;
    return OPS_MATMUL_FP32;
}
#endif

OCTET_EXTERN_C_END

#ifdef __CUDACC__
/* ------------------------------------------------------------------ internal to the .cu files */
#include <cuda_runtime.h>
#include "cuda_check.h"

#define OPS_CUDA_MAX_BF16_DEVICES 64 /* devices with bf16/fp16 matmuls at one time */
#define OPS_THREADS 256              /* threads per CUDA block of every 1-D launch */
#define OPS_WARPS (OPS_THREADS / 32) /* rows per CUDA block of the warp-per-row kernels */
#define OPS_MAX_GRID 65536           /* blocks of a grid-stride launch */
#define OPS_FULL_MASK 0xffffffffu

/* The argument checks every entry starts with: ops_check.h, shared with the CPU twin. */

/* The stream of CUDA device d in *s. Returns 0 (the entry then returns OCTET_ERR_ARG) when d is
 * NULL or not a CUDA device: a CUDA entry never runs on the default stream or on the host. */
static inline int ops_cuda_stream(const device *d, cudaStream_t *s)
{
    if (!d || device_kind(d) != OCTET_DEV_CUDA)
        return 0;
    *s = (cudaStream_t)device_stream(d);
    return 1;
}

/* The grid-stride loop of the 1-D kernels: for each index i (int64_t) of [0, n) this thread owns. */
#define OPS_GRID_STRIDE(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Blocks for n items, per_block items per block, capped at OPS_MAX_GRID (kernels grid-stride). */
static inline unsigned ops_grid(int64_t n, int64_t per_block)
{
    int64_t b = (n + per_block - 1) / per_block;
    return (unsigned)(b < 1 ? 1 : b < OPS_MAX_GRID ? b : OPS_MAX_GRID);
}

/* The sum of v over the warp, the same bits in every lane (an xor butterfly adds the same two
 * values in each pair of lanes). All 32 lanes must call it. */
__device__ static inline double ops_warp_sum(double v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(OPS_FULL_MASK, v, off);
    return v;
}

OCTET_EXTERN_C_BEGIN

/* Row-major product on device d's stream and cuBLAS handle, `batch` times: for i < batch,
 * c_i (M,N; row stride ldc) = alpha op(a_i) op(b_i) + beta c_i, where a_i = a + i*sa is stored
 * (M,K) or, when ta, (K,M) with row stride lda, b_i = b + i*sb is (K,N) or, when tb, (N,K) with
 * row stride ldb, c_i = c + i*sc. cuBLAS is column-major, so this computes c^T = op(b)^T op(a)^T
 * with the operands swapped (llm.c's trick); fp32 or bf16 tensor cores per the device's
 * precision. beta = 0 never reads c. Returns OCTET_OK or OCTET_ERR_CUDA (logged). */
int ops_rm_gemm(device *d, int ta, int tb, int M, int N, int K, float alpha, const float *a, int lda,
                long long sa, const float *b, int ldb, long long sb, float beta, float *c, int ldc,
                long long sc, int batch);

/* y (N) = x * the dropout factors of `drop` (index i of the call = element i) on stream s;
 * p <= 0 copies (unless y == x). y may alias x. Returns OCTET_OK or OCTET_ERR_CUDA. */
int ops_dropout_apply_cuda(float *y, const float *x, int64_t N, ops_dropout drop, cudaStream_t s);

/* The entry points, one per ops_table entry with exactly its signature (see ops.h). */
int gemm_cuda(device *d, float *c, const float *a, const float *b, int M, int N, int K, int trans_a,
              int trans_b, float alpha, float beta);
int matmul_forward_cuda(device *d, float *out, const float *inp, const float *weight, const float *bias,
                        int M, int K, int N);
int matmul_backward_cuda(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int M, int K, int N, int accumulate_dinp);

int add_forward_cuda(device *d, float *out, const float *a, const float *b, int64_t N);
int relu_forward_cuda(device *d, float *out, const float *inp, int64_t N);
int relu_backward_cuda(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
int gelu_forward_cuda(device *d, float *out, const float *inp, int64_t N);
int gelu_backward_cuda(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
int bias_gelu_forward_cuda(device *d, float *pre, float *out, const float *bias, int M, int N);
int scale_cuda(device *d, float *x, int64_t N, float s);
int token_select_forward_cuda(device *d, float *out, const float *inp, int B, int T, int C, int t);
int token_select_backward_cuda(device *d, float *dinp, const float *dout, int B, int T, int C, int t);

int layernorm_forward_cuda(device *d, float *out, float *mean, float *rstd, const float *inp,
                           const float *weight, const float *bias, int N, int C, float eps);
int layernorm_backward_cuda(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, const float *mean, const float *rstd,
                            int N, int C);

int embedding_forward_cuda(device *d, float *out, const int *ids, const float *wte, const float *wpe,
                           int B, int T, int C, int V);
int embedding_backward_cuda(device *d, float *dwte, float *dwpe, const float *dout, const int *ids,
                            int B, int T, int C, int V, int padding_idx);

int softmax_forward_cuda(device *d, float *out, const float *inp, const int *mask, int B, int R, int T,
                         float scale);
int softmax_backward_cuda(device *d, float *dinp, const float *dout, const float *out, const int *mask,
                          int B, int R, int T, float scale);
int attention_forward_cuda(device *d, float *out, float *att, float *work, const float *q, const float *k,
                           const float *v, const int *mask, int B, int T, int C, int H, ops_dropout drop);
int attention_backward_cuda(device *d, float *dq, float *dk, float *dv, float *work, const float *dout,
                            const float *q, const float *k, const float *v, const float *att,
                            const int *mask, int B, int T, int C, int H, ops_dropout drop);

int dropout_forward_cuda(device *d, float *out, const float *inp, int64_t N, ops_dropout drop);
int dropout_backward_cuda(device *d, float *dinp, const float *dout, int64_t N, ops_dropout drop);

int crossentropy_forward_cuda(device *d, float *losses, float *loss, int *pred, const float *logits,
                              const int *labels, int B, int C);
int crossentropy_backward_cuda(device *d, float *dlogits, const float *logits, const int *labels, int B,
                               int C, float dloss);
int mse_forward_cuda(device *d, float *losses, float *loss, const float *pred, const float *target, int B);
int mse_backward_cuda(device *d, float *dpred, const float *pred, const float *target, int B, float dloss);

int sumsq_cuda(device *d, double *out, const float *const *bufs, const int64_t *n, int count);

int to_half_cuda(device *d, uint16_t *out, const float *inp, int64_t N, int kind);
int from_half_cuda(device *d, float *out, const uint16_t *inp, int64_t N, int kind);

OCTET_EXTERN_C_END

#endif /* __CUDACC__ */
#endif
