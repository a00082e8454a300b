/* ops_math.h: the per-element math of the ops, shared by the CPU twin and the CUDA twin.
 *
 * Everything here is OCTET_HD (static inline; __host__ __device__ under nvcc) and in the
 * common subset of C11 and C++, so both compilers evaluate the same float expressions in the
 * same order. Parallel reductions (row sums, maxima, matmuls) are not here: they cannot be
 * order-exact across backends and are compared with tolerances instead (the argmax is a
 * sequential scan, the same on both).
 *
 * NaN propagates as in PyTorch: every function here maps a NaN input to NaN (ReLU, GELU and
 * its gradient, exp, erf, the half casts), and the argmax treats NaN as the largest value.
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
#include <string.h>
#include "hd.h"

/* The fill of a masked attention score before the softmax: torch.finfo(float32).min, as
 * Hugging Face DistilBERT's scores.masked_fill(mask == 0, finfo.min). A masked key then gets
 * probability exactly 0, and a row whose keys are all masked becomes uniform, as in PyTorch. */
#define OPS_MASK_FILL (-FLT_MAX)

/* --------------------------------------------------------------- activations */

/* torch.relu (clamp_min(x, 0)): negatives become 0, everything else passes, so NaN stays NaN
 * (and -0 stays -0). A NaN must never turn into a plausible 0 here: it would hide a broken
 * model behind finite logits. */
OCTET_HD float relu_one(float x) { return x < 0.0f ? 0.0f : x; }

/* d relu / dx as torch's threshold_backward: 0 where x <= 0 (0 at x == 0), else 1, so the
 * gradient of a NaN input passes through as torch's does. */
OCTET_HD float relu_grad_one(float x) { return x <= 0.0f ? 0.0f : 1.0f; }

/* For the few functions that must inline into their callers' loops to vectorise there (the
 * library builds at -O2 by default, where GCC would rather call them). */
#if defined(__GNUC__) && !defined(__CUDACC__)
#  define OPS_INLINE __attribute__((always_inline))
#else
#  define OPS_INLINE
#endif

/* On the CPU twin, the hot loops over these functions are compiled again for AVX2 and AVX-512
 * and picked at load time (GCC's target_clones, an ifunc), since the default x86-64 target has
 * only SSE2's four lanes. The clones compute the same bits: the functions are plain IEEE float
 * and integer arithmetic, with no contraction into FMAs (-ffp-contract=off) and no division. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__x86_64__) && \
    defined(__linux__) && defined(__ELF__)
#  define OPS_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#  define OPS_CPU_CLONES
#endif

/* The float bits of an int, for building 2^n. */
OCTET_HD OPS_INLINE float ops_bits_float(int32_t i)
{
#ifdef __CUDA_ARCH__
    return __int_as_float(i);
#else
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
#endif
}

/* The bits of a float (the inverse of ops_bits_float). */
OCTET_HD OPS_INLINE uint32_t ops_float_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

/* --------------------------------------------------------------- half precision (storage) */

/* fp32 -> bf16 and fp16 and back, on bits, with integer arithmetic only (no intrinsics, no
 * branches that a vectoriser cannot turn into selects), so the CPU twin's loops vectorise and
 * both twins produce the same bits. Rounding is to nearest, ties to even, as
 * __float2bfloat16_rn / __float2half_rn and torch's .to(torch.bfloat16 / torch.float16) round.
 * NaN stays NaN, made quiet, with its sign and the top of its payload (what the x86
 * conversions VCVTNEPS2BF16 and VCVTPS2PH do; CUDA's intrinsics return a canonical NaN and
 * torch 0x7FC0 / 0x7E00 instead: only the NaN payload differs). */

/* bf16 bits of the float with bits x: the top 16 bits, rounded to nearest even (an overflow past
 * the largest finite bf16 carries into the exponent and gives +-inf, as it should). */
OCTET_HD OPS_INLINE uint16_t ops_bf16_from_f32_bits(uint32_t x)
{
    uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (x >> 16) | 0x0040u;
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

/* The float bits of bf16 h: exact (bf16 is the top half of a float). */
OCTET_HD OPS_INLINE uint32_t ops_bf16_to_f32_bits(uint16_t h) { return (uint32_t)h << 16; }

/* fp16 bits of the float with bits x (IEEE binary16: 5 exponent bits, bias 15, 10 mantissa bits):
 *   |x| >= 65520 (half an ulp above 65504, the largest fp16, a tie that rounds to the even
 *   65536) and inf: +-inf; NaN: quiet NaN, the top 9 payload bits kept;
 *   |x| >= 2^-14 (normal): the exponent rebiased, the 13 dropped mantissa bits rounded to
 *   nearest even (a carry moves into the exponent);
 *   |x| < 2^-14 (fp16 subnormal, unit 2^-24): the 24-bit significand shifted right by
 *   126 - e (14..30 for e = 1..112; clamped at 31, which rounds everything below 2^-25 to 0,
 *   float subnormals and zero included) and rounded to nearest even; rounding up to 2^-14
 *   gives the smallest normal, whose encoding is exactly that carry. */
OCTET_HD OPS_INLINE uint16_t ops_fp16_from_f32_bits(uint32_t x)
{
    uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    uint32_t n = a - 0x38000000u; /* exponent bias 127 -> 15 */
    n = (n + 0x0fffu + ((n >> 13) & 1u)) >> 13;
    uint32_t e = a >> 23;
    uint32_t sh = e >= 112u ? 14u : 126u - e;
    sh = sh < 31u ? sh : 31u;
    uint32_t m = (a & 0x007fffffu) | 0x00800000u;
    uint32_t q = m >> sh, rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
    uint32_t sub = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    uint32_t h = a < 0x38800000u ? sub : n;
    h = a >= 0x477ff000u ? 0x7c00u : h;
    h = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x03ffu)) : h;
    return (uint16_t)(sign | h);
}

/* The float bits of fp16 h: exact. Subnormals m * 2^-24 are computed as a float product (exact:
 * m < 2^10 and the result is a normal float); inf stays inf, NaN becomes a quiet NaN with its
 * payload. */
OCTET_HD OPS_INLINE uint32_t ops_fp16_to_f32_bits(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16, e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x03ffu;
    uint32_t normal = ((e + 112u) << 23) | (m << 13);
    uint32_t sub = ops_float_bits((float)(int32_t)m * 5.9604644775390625e-8f); /* 2^-24; 0 when m == 0 */
    uint32_t special = m ? (0x7fc00000u | (m << 13)) : 0x7f800000u;
    uint32_t r = e == 0u ? sub : e == 31u ? special : normal;
    return sign | r;
}

/* The storage kinds of ops.h's to_half / from_half (OPS_HALF_BF16 = 0, OPS_HALF_FP16 = 1). */
OCTET_HD OPS_INLINE uint16_t half_from_float_one(float x, int fp16)
{
    uint32_t b = ops_float_bits(x);
    return fp16 ? ops_fp16_from_f32_bits(b) : ops_bf16_from_f32_bits(b);
}

OCTET_HD OPS_INLINE float half_to_float_one(uint16_t h, int fp16)
{
    return ops_bits_float((int32_t)(fp16 ? ops_fp16_to_f32_bits(h) : ops_bf16_to_f32_bits(h)));
}

/* exp(x) to within 1 ulp for x in [-87.33, 88] (Cephes' expf: x = n ln2 + r, |r| <= ln2/2, a
 * degree-6 polynomial in r, times 2^n from the exponent bits); 0 below, +inf above, NaN for NaN.
 * Branch-free float arithmetic, so it vectorises on the host and gives the same bits on both
 * twins (no FMA contraction: -ffp-contract=off here, --fmad=false under nvcc). */
OCTET_HD OPS_INLINE float ops_expf(float x)
{
    float c = x > -87.33654f ? x : -87.33654f; /* NaN, too: the comparison is false */
    c = c < 88.0f ? c : 88.0f;
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(c / ln2), exact */
    float r = c - n * 0.693359375f;  /* ln 2 in two parts: the first's products are exact */
    r = r - n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    y = y * ops_bits_float(((int32_t)n + 127) << 23);
    return x > -87.33654f ? (x <= 88.0f ? y : INFINITY) : (x != x ? x : 0.0f);
}

/* erf(x) to within 1.25 ulp over all floats (glibc's erff: 0.97), branch-free like ops_expf:
 *   |x| <  0.921875: x + x P(x^2), P of degree 6;
 *   |x| >= 0.921875: sign(x) (1 - exp(Q(min(|x|, 4) - 1))), Q ~ log erfc of degree 12
 * (beyond 4, erf rounds to +-1). Weighted least-squares fits of erf(x)/x - 1 and log erfc(x) in
 * double, rounded to float and measured over every float in [-6, 6]. erf(NaN) is NaN: the
 * clamp below lets a NaN through into u, and ops_expf passes it on. */
OCTET_HD OPS_INLINE float ops_erff(float x)
{
    float a = fabsf(x), t = x * x;
    float p = 8.398073259741068e-05f;
    p = p * t + -8.149882778525352e-04f;
    p = p * t + 5.201724357903004e-03f;
    p = p * t + -2.68597062677145e-02f;
    p = p * t + 1.1283701658248901e-01f;
    p = p * t + -3.7612634897232056e-01f;
    p = p * t + 1.2837916612625122e-01f;
    float small = x + x * p;
    float u = (a > 4.0f ? 4.0f : a) - 1.0f;
    float q = -6.5714549357664964e-09f;
    q = q * u + 1.353675571635904e-07f;
    q = q * u + -1.2545493746074499e-06f;
    q = q * u + 6.774274424969917e-06f;
    q = q * u + -2.161118754884228e-05f;
    q = q * u + 1.9346191038494e-05f;
    q = q * u + 2.4292734451591969e-04f;
    q = q * u + -1.980725908651948e-03f;
    q = q * u + 1.003462728112936e-02f;
    q = q * u + -4.156119376420975e-02f;
    q = q * u + -8.43107283115387e-01f;
    q = q * u + -2.638967514038086f;
    q = q * u + -1.8496055603027344f;
    float big = 1.0f - ops_expf(q);
    big = x < 0.0f ? -big : big;
    return a < 0.921875f ? small : big;
}

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch's approximate='none', HF "gelu"), with the
 * erf above: vectorisable, and the same bits on both twins. */
OCTET_HD OPS_INLINE float gelu_one(float x)
{
    return 0.5f * x * (1.0f + ops_erff(x * 0.70710678118654752f));
}

/* d gelu / dx = Phi(x) + x phi(x). */
OCTET_HD OPS_INLINE float gelu_grad_one(float x)
{
    float cdf = 0.5f * (1.0f + ops_erff(x * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * ops_expf(-0.5f * x * x); /* 1/sqrt(2 pi) */
    return cdf + x * pdf;
}

/* --------------------------------------------------------------- argmax */

/* The index of the largest of x[0..n) as torch.argmax picks it: the first on ties, and NaN
 * counts as larger than every number, so a row holding NaN gives the index of its first NaN
 * (never a class chosen among the finite values as if the row were fine). A sequential scan,
 * so both twins return the same index for any row. */
OCTET_HD int ops_argmax_row(const float *x, int n)
{
    int best = 0;
    for (int c = 1; c < n && x[best] == x[best]; c++)
        if (x[c] > x[best] || x[c] != x[c])
            best = c;
    return best;
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

/* The run form of the mask, for loops over consecutive elements (the CPU twin's): y[j] = x[j] *
 * dropout_factor_one(p, scale, seed, offset, idx0 + j) for j < n, bit for bit, but with one
 * Philox call per lane group of four elements instead of one per element (words 0..3 of counter
 * c serve elements 4c .. 4c+3, as the definition says), and the group loop written so that the
 * C compiler vectorises it across groups (OPS_SIMD: `omp simd` on the host compiler; the
 * 32-bit products widen to 64 bits, i.e. pmuludq / vpmuludq). y may alias x. A test pins this
 * against dropout_factor_one element by element, at every alignment of idx0 and n. */
#if defined(__CUDACC__) || !defined(_OPENMP)
#  define OPS_SIMD
#else
#  define OPS_SIMD _Pragma("omp simd")
#endif
#if defined(__CUDACC__)
#  define OPS_UNROLL10 _Pragma("unroll")
#elif defined(__GNUC__) && !defined(__clang__)
#  define OPS_UNROLL10 _Pragma("GCC unroll 10")
#else
#  define OPS_UNROLL10
#endif

OCTET_HD OPS_INLINE void dropout_run(float *y, const float *x, int64_t n, float p, float scale, uint64_t seed,
                          uint64_t offset, uint64_t idx0)
{
    int64_t j = 0;
    if (p > 0.0f && p < 1.0f) {
        for (; j < n && ((idx0 + (uint64_t)j) & 3u); j++) /* up to the first whole group */
            y[j] = x[j] * dropout_factor_one(p, scale, seed, offset, idx0 + (uint64_t)j);
        int64_t groups = (n - j) / 4;
        uint64_t ctr0 = (idx0 + (uint64_t)j) >> 2;
        uint32_t k0[10], k1[10]; /* the key schedule, as ops_philox4x32_10 bumps it */
        for (int r = 0; r < 10; r++) {
            k0[r] = (uint32_t)seed + (uint32_t)r * 0x9E3779B9u;
            k1[r] = (uint32_t)(seed >> 32) + (uint32_t)r * 0xBB67AE85u;
        }
        uint32_t o0 = (uint32_t)offset, o1 = (uint32_t)(offset >> 32);
        float *yg = y + j;
        const float *xg = x + j;
        OPS_SIMD
        for (int64_t g = 0; g < groups; g++) {
            uint64_t ctr = ctr0 + (uint64_t)g;
            uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = o0, c3 = o1;
            OPS_UNROLL10
            for (int r = 0; r < 10; r++) {
                uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
                uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0[r];
                uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1[r];
                c0 = n0;
                c1 = (uint32_t)p1;
                c2 = n2;
                c3 = (uint32_t)p0;
            }
            /* (float)(w >> 8) is exact (< 2^24); through int32 it converts in one instruction */
            const float u = 1.0f / 16777216.0f;
            yg[4 * g + 0] = xg[4 * g + 0] * ((float)(int32_t)(c0 >> 8) * u >= p ? scale : 0.0f);
            yg[4 * g + 1] = xg[4 * g + 1] * ((float)(int32_t)(c1 >> 8) * u >= p ? scale : 0.0f);
            yg[4 * g + 2] = xg[4 * g + 2] * ((float)(int32_t)(c2 >> 8) * u >= p ? scale : 0.0f);
            yg[4 * g + 3] = xg[4 * g + 3] * ((float)(int32_t)(c3 >> 8) * u >= p ? scale : 0.0f);
        }
        j += 4 * groups;
    }
    for (; j < n; j++) /* the tail; or every element when p <= 0 or p >= 1 */
        y[j] = x[j] * dropout_factor_one(p, scale, seed, offset, idx0 + (uint64_t)j);
}

#endif
