/* cast_cuda.cu: the CUDA twin of cast_cpu.c — fp32 <-> bf16 / fp16 (to_half, from_half), for
 * DistilBERT's half-precision activation storage.
 *
 * One grid-stride kernel per direction and format, one element per thread per step
 * (OPS_THREADS threads, at most OPS_MAX_GRID blocks, 64-bit indices), calling ops_math.h's
 * integer bit conversions, not cuda_bf16.h / cuda_fp16.h: the rounding is the same (nearest
 * even, as __float2bfloat16_rn / __float2half_rn) and so are the bits, NaN payloads included,
 * which makes the two twins bit-identical (check_ops_parity.c). Failures: OCTET_ERR_ARG for
 * the CPU twin's argument errors or a non-CUDA device, OCTET_ERR_CUDA (logged) when a launch
 * fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

/* ------------------------------------------------------------------ CUDA kernels */

/* out (N) 16-bit = inp (N) fp32; fp16 selects the format. */
static __global__ void to_half_kernel(uint16_t *out, const float *inp, int64_t N, int fp16)
{
    OPS_GRID_STRIDE(i, N) out[i] = half_from_float_one(inp[i], fp16);
}

/* out (N) fp32 = inp (N) 16-bit. */
static __global__ void from_half_kernel(float *out, const uint16_t *inp, int64_t N, int fp16)
{
    OPS_GRID_STRIDE(i, N) out[i] = half_to_float_one(inp[i], fp16);
}

/* ------------------------------------------------------------------ kernel launchers */

/* Each returns OCTET_OK or OCTET_ERR_CUDA (cudaGetLastError after the launch). */

static int to_half_launch(uint16_t *out, const float *inp, int64_t N, int fp16, cudaStream_t st)
{
    int rc = OCTET_OK;
    to_half_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(out, inp, N, fp16);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int from_half_launch(float *out, const uint16_t *inp, int64_t N, int fp16, cudaStream_t st)
{
    int rc = OCTET_OK;
    from_half_kernel<<<ops_grid(N, OPS_THREADS), OPS_THREADS, 0, st>>>(out, inp, N, fp16);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int to_half_cuda(device *d, uint16_t *out, const float *inp, int64_t N, int kind)
{
    cudaStream_t st;
    if (N <= 0 || !out || !inp || !ops_half_kind_ok(kind) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return to_half_launch(out, inp, N, kind == OPS_HALF_FP16, st);
}

int from_half_cuda(device *d, float *out, const uint16_t *inp, int64_t N, int kind)
{
    cudaStream_t st;
    if (N <= 0 || !out || !inp || !ops_half_kind_ok(kind) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return from_half_launch(out, inp, N, kind == OPS_HALF_FP16, st);
}
