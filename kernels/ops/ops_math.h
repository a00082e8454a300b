/* ops_math.h: the per-element math of the ops, shared by the CPU twin and the CUDA twin.
 *
 * Everything here is OCTET_HD (static inline; __host__ __device__ under nvcc) and in the
 * common subset of C11 and C++, so both compilers evaluate the same float expressions in the
 * same order. Reductions (row sums, maxima, matmuls) are not here: they cannot be order-exact
 * across backends and are compared with tolerances instead.
 *
 * The dropout mask comes from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC'11; the generator cuRAND and PyTorch use), keyed by the job's seed and counted by
 * (offset, element index): element i of a call with offset o keeps its value iff the uniform
 * drawn from counter (i/4, o) lane i%4 is >= p. Any backend, any thread count and any launch
 * shape produce the same mask, and the backward pass regenerates it instead of storing it. */
#ifndef OCTET_OPS_MATH_H
#define OCTET_OPS_MATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include "hd.h"

/* The fill of a masked attention score before the softmax: torch.finfo(float32).min, as
 * Hugging Face DistilBERT's scores.masked_fill(mask == 0, finfo.min). A masked key then gets
 * probability exactly 0, and a row whose keys are all masked becomes uniform, as in PyTorch. */
#define OPS_MASK_FILL (-FLT_MAX)

/* --------------------------------------------------------------- activations */

OCTET_HD float relu_one(float x) { return x > 0.0f ? x : 0.0f; }

/* d relu / dx; 0 at x == 0, as torch. */
OCTET_HD float relu_grad_one(float x) { return x > 0.0f ? 1.0f : 0.0f; }

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch's approximate='none', HF "gelu"). */
OCTET_HD float gelu_one(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

/* d gelu / dx = Phi(x) + x phi(x). */
OCTET_HD float gelu_grad_one(float x)
{
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) */
    return cdf + x * pdf;
}

/* --------------------------------------------------------------- layernorm */

/* One normalized, scaled and shifted element: (x - mean) * rstd * w + b. */
OCTET_HD float layernorm_one(float x, float mean, float rstd, float w, float b)
{
    return ((x - mean) * rstd) * w + b;
}

/* --------------------------------------------------------------- Philox4x32-10 */

typedef struct ops_philox_out {
    uint32_t v[4];
} ops_philox_out;

OCTET_HD void ops_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* Ten rounds of Philox4x32 on counter c with key k (Random123's philox4x32_10). */
OCTET_HD ops_philox_out ops_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                          uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        ops_mulhilo32(0xD2511F53u, c0, &hi0, &lo0);
        ops_mulhilo32(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    ops_philox_out o;
    o.v[0] = c0;
    o.v[1] = c1;
    o.v[2] = c2;
    o.v[3] = c3;
    return o;
}

/* The uniform in [0, 1) (24 random bits, exactly representable) of element `idx` of the call
 * with (seed, offset). */
OCTET_HD float ops_uniform_one(uint64_t seed, uint64_t offset, uint64_t idx)
{
    uint64_t ctr = idx >> 2;
    ops_philox_out o = ops_philox4x32_10((uint32_t)ctr, (uint32_t)(ctr >> 32), (uint32_t)offset,
                                         (uint32_t)(offset >> 32), (uint32_t)seed, (uint32_t)(seed >> 32));
    return (float)(o.v[idx & 3] >> 8) * (1.0f / 16777216.0f);
}

/* --------------------------------------------------------------- dropout */

/* The factor element `idx` is multiplied by: 0 when dropped, `scale` (= 1/(1-p), from
 * dropout_scale) when kept. p <= 0 keeps everything with factor 1; p >= 1 drops everything. */
OCTET_HD float dropout_factor_one(float p, float scale, uint64_t seed, uint64_t offset, uint64_t idx)
{
    if (p <= 0.0f)
        return 1.0f;
    if (p >= 1.0f)
        return 0.0f;
    return ops_uniform_one(seed, offset, idx) >= p ? scale : 0.0f;
}

/* The scale of kept elements, 1/(1-p) in float as torch computes it; 0 when p >= 1. */
OCTET_HD float dropout_scale(float p)
{
    return p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
}

#endif
