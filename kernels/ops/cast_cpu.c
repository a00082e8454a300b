/* cast_cpu.c: the CPU twin's fp32 <-> bf16 / fp16 conversions (to_half, from_half), with which
 * DistilBERT keeps the activations its backward pass reads in 16 bits.
 *
 * Each is one OpenMP loop over chunks of CAST_CHUNK elements; within a chunk a vectorised loop
 * (OPS_SIMD, cloned for AVX2 and AVX-512 by OPS_CPU_CLONES) calls the per-element bit
 * conversions of ops_math.h, the very functions the CUDA twin's kernels call, so both twins
 * write the same bits (the conversions are integer arithmetic on the float's bits). Failures:
 * OCTET_ERR_ARG when N <= 0, a pointer is NULL or kind is not an OPS_HALF_* value; nothing
 * else can fail. */
#include "config.h"
#include "ops_cpu.h"
#include "ops_math.h"

/* Elements per OpenMP work item (a small conversion is not worth a thread). */
#define CAST_CHUNK 16384

OPS_CPU_CLONES static void to_bf16_run(uint16_t *out, const float *inp, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = ops_bf16_from_f32_bits(ops_float_bits(inp[i]));
}

OPS_CPU_CLONES static void to_fp16_run(uint16_t *out, const float *inp, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = ops_fp16_from_f32_bits(ops_float_bits(inp[i]));
}

OPS_CPU_CLONES static void from_bf16_run(float *out, const uint16_t *inp, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = ops_bits_float((int32_t)ops_bf16_to_f32_bits(inp[i]));
}

OPS_CPU_CLONES static void from_fp16_run(float *out, const uint16_t *inp, int64_t n)
{
    OPS_SIMD
    for (int64_t i = 0; i < n; i++)
        out[i] = ops_bits_float((int32_t)ops_fp16_to_f32_bits(inp[i]));
}

int to_half_cpu(device *d, uint16_t *out, const float *inp, int64_t N, int kind)
{
    (void)d;
    if (N <= 0 || !out || !inp || !ops_half_kind_ok(kind))
        return OCTET_ERR_ARG;
    int64_t chunks = (N + CAST_CHUNK - 1) / CAST_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * CAST_CHUNK, n = N - i0 < CAST_CHUNK ? N - i0 : CAST_CHUNK;
        if (kind == OPS_HALF_FP16)
            to_fp16_run(out + i0, inp + i0, n);
        else
            to_bf16_run(out + i0, inp + i0, n);
    }
    return OCTET_OK;
}

int from_half_cpu(device *d, float *out, const uint16_t *inp, int64_t N, int kind)
{
    (void)d;
    if (N <= 0 || !out || !inp || !ops_half_kind_ok(kind))
        return OCTET_ERR_ARG;
    int64_t chunks = (N + CAST_CHUNK - 1) / CAST_CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * CAST_CHUNK, n = N - i0 < CAST_CHUNK ? N - i0 : CAST_CHUNK;
        if (kind == OPS_HALF_FP16)
            from_fp16_run(out + i0, inp + i0, n);
        else
            from_bf16_run(out + i0, inp + i0, n);
    }
    return OCTET_OK;
}
