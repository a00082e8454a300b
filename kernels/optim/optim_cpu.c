/* optim_cpu.c: the CPU twin of every optimizer rule and of block-wise (de)quantization.
 *
 * Readable loops over the launch lists of optim_impl.h, calling the per-element math of
 * optim_math.h and quant_math.h exactly as the CUDA twin does, so that both produce the same
 * bits: 8-bit codes and absmax identical, parameters within 1 ulp. OpenMP splits independent
 * units (quantization blocks, fp32 chunks, Adafactor summation chunks) across cores; every
 * reduction that sums (Adafactor's means and RMS) runs in a fixed order in double, so the
 * result does not depend on the thread count. Compiled with -ffp-contract=off: no fused
 * multiply-adds (one explicit exception in the Adafactor sums, exact there; see sums16_avx512).
 *
 * Three paths where the CPU allows (cpu_path(); tests force each and compare them bit for
 * bit): portable loops, AVX-512 (gathers for the table lookups), AVX-512 VBMI (register
 * permutes instead; the fast one on the Zen 5 we measure on, see bench/RESULTS.md).
 *
 * The 8-bit step mirrors bitsandbytes' kOptimizerStatic8bit2StateBlockwise per block: the tail
 * of a partial last block is padded with g = 0, code1 = 128, code2 = 0 and takes part in the new
 * absmax, as on the GPU. */
#include "config.h"
#include "ops_math.h" /* ops_float_bits, ops_bits_float */
#include "optim_impl.h"
#include "quant_math.h"
#include "qmap.h"
#include "status.h"

/* Hot loops are compiled for AVX-512 and AVX2 beside the baseline and picked at load time
 * (GCC function multiversioning). IEEE vector add/mul/div/sqrt round exactly as the scalar
 * instructions, and -ffp-contract=off keeps FMAs out, so every clone gives the same bits. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define OPTIM_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OPTIM_CPU_CLONES
#endif

#include <float.h>
#include <math.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ fast nearest-code search */

/* The binary search of quant_nearest_one() returns, for every x, the number of map midpoints
 * mid[k] = (code[k] + code[k+1]) * 0.5f that lie below x, where an exact tie x == mid[k] counts
 * as "below" when k is odd (the search lands on the even neighbour); NaN gives 0. (Proof: the
 * search visits both odd neighbours of its final even pivot p, so code[p-1] < x <= code[p+1],
 * and its last test is against mid[p-1] or mid[p].) We count the midpoints with a table indexed
 * by the top 16 bits of x in a sign-monotone encoding, then a few branch-free comparisons.
 * check_optim.c asserts equality with the search on millions of inputs and every midpoint.
 *
 * The VBMI path counts them without memory lookups (the "permute search", perm_build()); see
 * there. Its tables live here too, with the map's byte planes for permute dequantization. */
#define PERM_E0 103 /* biased exponents <= this: one clamped row per sign (|x| < 2^-23, zeros) */
#define PERM_E1 127 /* biased exponent of 1.0: one clamped row per sign (|x| >= 1) */
#define PERM_N2 320 /* buckets of the permute search: two 128-entry vpermi2b tables and one
                    * 64-entry vpermb table */

typedef struct quant_lut {
    float map[QMAP_SIZE];      /* the map this table was built from */
    float mid[QMAP_SIZE];      /* (255) midpoints, then a NaN sentinel */
    int32_t below[1 << 16];    /* midpoints strictly below every float of the bucket (int32 so
                                * vector gathers can read it) */
    int refine;                /* most midpoints inside one bucket */
    int ready;
    int nonneg;                /* every map entry has its sign bit clear */
    /* The VBMI path. */
    uint8_t planes[4][QMAP_SIZE] __attribute__((aligned(64)));    /* byte k of every map entry */
    int perm_ok;                                                  /* the permute search applies */
    uint32_t perm_neg;                                            /* first bucket of x < 0 */
    uint16_t perm_k16[32] __attribute__((aligned(64)));           /* [exponent & 31]: k */
    uint16_t perm_base16[32] __attribute__((aligned(64)));        /* [exponent & 31]: base */
    uint8_t perm_w16[3][PERM_N2] __attribute__((aligned(64)));    /* every bucket: below (maybe
                                                                   * adjusted), thr16 low, high byte */
    uint8_t perm_t7[PERM_N2];                                     /* thr & 0x7f, for ties (0x80:
                                                                   * no increment) */
} quant_lut;

static uint32_t monotone_key(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* The permute search: the code of x = m * (1 / absmax) (|x| <= 1, not NaN) in two register lookups.
 *
 * Level 1: the biased exponent e of |x|, raised to PERM_E0, picks a row (e & 31; vpermw over
 * 32 words) holding base and k. Level 2: the bucket is base + ((m16 * k) >> 16), m16 the
 * top 16 mantissa bits (vpmulhuw), plus perm_neg for negative x (the buckets of negative x
 * repeat those of positive x, after them); k = 0 makes the row one bucket, as for the clamped
 * rows e <= PERM_E0 and e == PERM_E1; otherwise k is the smallest that leaves no two midpoints
 * of the row, of either sign, in one bucket. A bucket holds below and thr (as byte planes
 * that vpermi2b reads for 64 lanes at once; see perm_codes64w() for the form): below counts the midpoints under
 * every float of the bucket, and thr places x against the one midpoint the bucket may hold by
 * the 23 mantissa bits (same sign and exponent within a row; inverted for negative x, so larger
 * is larger x): count = below + (mant'(x) >= thr) with thr = mant'(mid) + 1 when below (the
 * midpoint's index) is even, so an exact tie is not counted, mant'(mid) when odd, so it is —
 * the tie rule above — and 1 << 23 (never reached) when the bucket holds no midpoint.
 *
 * State 1 (the signed map, `state1`): both signs, and bitsandbytes' sign fix is folded into the
 * buckets: when signbit(map[c]) == (c < K) for every c (K = sign_split; the maps qmap_build()
 * makes have K = 127), a negative x whose count c >= K moves to c - 1, which per bucket is
 * below - 1 when below >= K and "below, no increment" when below == K - 1 (counts are those of
 * x, whose sign is m's); a positive x never moves when every positive bucket has below >= K,
 * which is required (the move would depend on m > 0 vs m == +0, not visible in x). State 2
 * (the unsigned map): x >= +0 only (the caller sends any other x to the gathers).
 *
 * perm_ok says the tables are exact for the map: midpoints strictly increasing (no NaN), no
 * midpoint in a clamped row (none is +-0, none is outside [2^-23, 1)), the sign conditions,
 * and at most PERM_N2 buckets. The maps qmap_build() makes need 2 x 146 (state 1) and 287
 * (state 2). Built under lut_lock (hence the static scratch). */
static void perm_build(quant_lut *t, int state1)
{
    static uint16_t lo16[65536], hi16[65536]; /* per bucket of a row: its first and last m16 */
    uint32_t entry16[PERM_N2];
    uint8_t t7[PERM_N2];
    uint32_t kk[32] = {0}, base[32] = {0};
    int np = 0, split = 0;
    t->perm_ok = 0;
    if (state1) {
        while (split < QMAP_SIZE && signbit(t->map[split]))
            split++;
        for (int c = split; c < QMAP_SIZE; c++)
            if (signbit(t->map[c]))
                return;
    }
    for (int k = 0; k < QMAP_SIZE - 1; k++)
        if (!(t->mid[k] == t->mid[k]) || (k > 0 && !(t->mid[k - 1] < t->mid[k])))
            return;
    /* the rows, shared by both signs: k separates the midpoints of either sign */
    for (int e = PERM_E0; e <= PERM_E1; e++) {
        uint32_t mids16[2][QMAP_SIZE];
        int nm[2] = {0, 0};
        for (int k = 0; k < QMAP_SIZE - 1; k++) {
            uint32_t mb = ops_float_bits(t->mid[k]);
            int side = (int)(mb >> 31);
            if (side <= state1 && (int)((mb >> 23) & 0xff) == e)
                mids16[side][nm[side]++] = (mb >> 7) & 0xffff;
        }
        /* the midpoints of a row and side are monotone in m16 and so are the buckets, so
         * checking neighbours is enough */
        int need = 0;
        for (int side = 0; side < 2; side++) {
            for (int a = 1; a < nm[side]; a++)
                if (mids16[side][a] == mids16[side][a - 1])
                    return;
            need |= nm[side] > 1;
        }
        uint32_t k = 0;
        if (need && e != PERM_E0 && e != PERM_E1)
            for (k = 1; k < 65536; k++) {
                int clash = 0;
                for (int side = 0; side < 2; side++)
                    for (int a = 1; a < nm[side] && !clash; a++)
                        clash = (mids16[side][a] * k) >> 16 == (mids16[side][a - 1] * k) >> 16;
                if (!clash)
                    break;
            }
        if (k >= 65536)
            return;
        kk[e & 31] = k;
        base[e & 31] = (uint32_t)np;
        np += (int)((65535u * k) >> 16) + 1;
    }
    if (np * (state1 + 1) > PERM_N2 || np > 0xffff)
        return;
    for (int side = 0; side <= state1; side++)
        for (int e = PERM_E0; e <= PERM_E1; e++) {
            uint32_t k = kk[e & 31];
            int nb = (int)((65535u * k) >> 16) + 1;
            for (uint32_t m16 = 0; m16 < 65536; m16++) {
                uint32_t bk = (m16 * k) >> 16;
                if (m16 == 0 || bk != (((m16 - 1) * k) >> 16))
                    lo16[bk] = (uint16_t)m16;
                hi16[bk] = (uint16_t)m16;
            }
            for (int bk = 0; bk < nb; bk++) {
                /* the bucket's magnitudes, as float bits [lo, hi] */
                uint32_t lo = ((uint32_t)e << 23) | ((uint32_t)lo16[bk] << 7);
                uint32_t hi = ((uint32_t)e << 23) | ((uint32_t)hi16[bk] << 7) | 0x7fu;
                if (e == PERM_E0) {
                    lo = 0;
                    hi = ((uint32_t)(PERM_E0 + 1) << 23) - 1u;
                } else if (e == PERM_E1) {
                    hi = 0x7f800000u;
                }
                float xmin = side ? -ops_bits_float((int32_t)hi) : ops_bits_float((int32_t)lo);
                float xmax = side ? -ops_bits_float((int32_t)lo) : ops_bits_float((int32_t)hi);
                int below = 0, inside = 0, at = -1;
                for (int k2 = 0; k2 < QMAP_SIZE - 1; k2++) {
                    if (t->mid[k2] < xmin)
                        below++;
                    else if (t->mid[k2] <= xmax) {
                        inside++;
                        at = k2;
                    }
                }
                if (inside > 1 || (inside && (e == PERM_E0 || e == PERM_E1)))
                    return;
                uint32_t thr = 1u << 23;
                if (inside) {
                    uint32_t mb = ops_float_bits(t->mid[at]);
                    thr = ((side ? ~mb : mb) & 0x7fffffu) + ((below & 1) ? 0u : 1u);
                }
                if (state1 && side == 0 && below < split)
                    return;
                if (state1 && side == 1 && below >= split)
                    below--;
                else if (state1 && side == 1 && below == split - 1)
                    thr = 1u << 23;
                /* the word search's entry: thr16 = thr >> 7 against mant'16 in [lo_p, hi_p] (the
                 * bucket's range; x = +-1 only in the row of 1.0). A bucket without a midpoint
                 * (thr16 = 0x10000) gets a thr16 that no lane ties: above hi_p, or, when hi_p is
                 * 0xffff, below lo_p with below - 1 (every lane counts one; the byte arithmetic
                 * wraps, so below 0 works too); else x = -1, the absmax of every block of
                 * negative sign, would tie. t7: the low 7 bits for the ties (0x80: never) */
                uint32_t lo_m = e == PERM_E1 ? 0 : lo16[bk], hi_m = e == PERM_E1 ? 0 : hi16[bk];
                uint32_t lo_p = side ? 0xffffu - hi_m : lo_m, hi_p = side ? 0xffffu - lo_m : hi_m;
                uint32_t t16 = thr >> 7, b16 = (uint32_t)below;
                if (t16 > 0xffffu) {
                    if (hi_p < 0xffffu)
                        t16 = 0xffffu;
                    else if (lo_p >= 1) { /* below 0 becomes 255, and 255 + 1 wraps to 0 */
                        b16 = (b16 - 1) & 0xffu;
                        t16 = lo_p - 1;
                    } else
                        t16 = 0xffffu; /* ties at 0xffff: perm_fix_ties() */
                }
                entry16[side * np + (int)base[e & 31] + bk] = (b16 << 16) | t16;
                t7[side * np + (int)base[e & 31] + bk] = (uint8_t)(thr < (1u << 23) ? thr & 0x7fu : 0x80u);
            }
        }
    for (int r = 0; r < 32; r++) {
        t->perm_k16[r] = (uint16_t)kk[r];
        t->perm_base16[r] = (uint16_t)base[r];
    }
    t->perm_neg = (uint32_t)np;
    for (int bk = 0; bk < PERM_N2; bk++) {
        uint32_t w = bk < np * (state1 + 1) ? entry16[bk] : 0;
        t->perm_w16[0][bk] = (uint8_t)(w >> 16);
        t->perm_w16[1][bk] = (uint8_t)w;
        t->perm_w16[2][bk] = (uint8_t)(w >> 8);
        t->perm_t7[bk] = bk < np * (state1 + 1) ? t7[bk] : 0x80;
    }
    t->perm_ok = 1;
}

static void quant_lut_build(quant_lut *t, const float *map, int state1)
{
    memcpy(t->map, map, sizeof t->map);
    for (int k = 0; k < QMAP_SIZE - 1; k++)
        t->mid[k] = (map[k + 1] + map[k]) * 0.5f;
    t->mid[QMAP_SIZE - 1] = NAN; /* sentinel: compares false, so the count stops at 255 */
    int k = 0;
    for (uint32_t b = 0; b < (1u << 16); b++) {
        while (k < QMAP_SIZE - 1 && monotone_key(t->mid[k]) < (b << 16))
            k++;
        t->below[b] = k;
    }
    int most = QMAP_SIZE - 1 - t->below[0xffff];
    for (uint32_t b = 0; b + 1 < (1u << 16); b++)
        if (t->below[b + 1] - t->below[b] > most)
            most = t->below[b + 1] - t->below[b];
    t->refine = most;
    t->nonneg = 1;
    for (int c = 0; c < QMAP_SIZE; c++)
        t->nonneg &= !signbit(map[c]);
    for (int b = 0; b < 4; b++)
        for (int c = 0; c < QMAP_SIZE; c++)
            t->planes[b][c] = (uint8_t)(ops_float_bits(map[c]) >> (8 * b));
    perm_build(t, state1);
    t->ready = 1;
}

/* Same result as quant_nearest_one(map, x, *) for the map the table was built from. */
static inline uint8_t quant_lut_nearest(const quant_lut *t, float x)
{
    if (x != x)
        return 0;
    unsigned c = t->below[monotone_key(x) >> 16];
    for (int r = 0; r < t->refine; r++) {
        float m = t->mid[c];
        c += (m < x) | ((m == x) & (c & 1u));
    }
    return (uint8_t)c;
}

/* One table per map content, built on first use and rebuilt if the map changes (a loaded
 * state brings its own maps). Guarded by a mutex; the tables are read-only while a step runs.
 * lut_signed serves state 1: its permute search carries the sign fix. */
static pthread_mutex_t lut_lock = PTHREAD_MUTEX_INITIALIZER;
static quant_lut lut_signed, lut_unsigned;

static const quant_lut *lut_for(quant_lut *t, const float *map)
{
    pthread_mutex_lock(&lut_lock);
    if (!t->ready || memcmp(t->map, map, sizeof t->map))
        quant_lut_build(t, map, t == &lut_signed);
    pthread_mutex_unlock(&lut_lock);
    return t;
}

uint8_t optim_cpu_nearest_code(const float *map, float x, int is_signed)
{
    return quant_lut_nearest(lut_for(is_signed ? &lut_signed : &lut_unsigned, map), x);
}

/* ------------------------------------------------------------------ 8-bit Adam */

#define MAX_BLOCK OPTIM_BLOCK_MAX /* the stack buffers below hold one block of the largest size */

/* The vectorisable part of one block: fresh moments from the old codes (tail already padded
 * by the caller), their new absmax, and the parameter update from the fresh moments. Same float operations, in the same order, as the shared
 * helpers in optim_math.h (no contraction), so the result is bit-identical to them. */
OPTIM_CPU_CLONES
static void adam8_block_math(int B, int valid, const float *restrict g, const uint8_t *restrict c1,
                             const uint8_t *restrict c2, float *restrict p, float *restrict m, float *restrict v,
                             const float *restrict q1, const float *restrict q2, float a1, float a2,
                             const optim_group_scalars *s, float *new1, float *new2)
{
    const float ab1 = adam8_block_beta(a1, s->beta1), ab2 = adam8_block_beta(a2, s->beta2);
    const float ob1 = 1.0f - s->beta1, ob2 = 1.0f - s->beta2;
    for (int j = 0; j < B; j++) {
        float gj = g[j];
        int finite = fabsf(gj) <= FLT_MAX; /* not NaN, not Inf */
        float mj = q1[c1[j]] * ab1 + ob1 * gj; /* adam8_m_one, adam8_v_one */
        float vj = q2[c2[j]] * ab2 + (ob2 * gj) * gj;
        m[j] = finite ? mj : 0.0f;
        v[j] = finite ? vj : 0.0f;
    }
    float acc1[16], acc2[16];
    for (int k = 0; k < 16; k++)
        acc1[k] = acc2[k] = -FLT_MAX;
    for (int j = 0; j < B; j += 16)
        for (int k = 0; k < 16; k++) {
            float x1 = fabsf(m[j + k]), x2 = fabsf(v[j + k]);
            acc1[k] = acc1[k] > x1 ? acc1[k] : x1;
            acc2[k] = acc2[k] > x2 ? acc2[k] : x2;
        }
    float n1 = -FLT_MAX, n2 = -FLT_MAX;
    for (int k = 0; k < 16; k++) {
        n1 = n1 > acc1[k] ? n1 : acc1[k];
        n2 = n2 > acc2[k] ? n2 : acc2[k];
    }
    const float step = s->step_size, c2eps = s->c2eps, decay = s->decay;
    const int has_decay = s->has_decay;
    for (int j = 0; j < valid; j++) {
        float gj = g[j];
        int finite = fabsf(gj) <= FLT_MAX; /* not NaN, not Inf */
        float pj = p[j] + (step * (m[j] / (sqrtf(v[j]) + c2eps)));
        pj = has_decay ? pj * decay : pj;
        p[j] = finite ? pj : p[j];
    }
    *new1 = n1;
    *new2 = n2;
}

/* Codes of the fresh moments m, v (valid elements) given the reciprocals r1, r2 of the block's
 * new absmax (finite: quant_inv_absmax of an absmax that is neither 0 nor subnormal):
 * quant_signed_state_one (with the sign fix) and quant_unsigned_state_one, through the tables.
 * Written without branches so the clones vectorise it with gathers. */
OPTIM_CPU_CLONES
static void adam8_block_codes(int valid, const float *restrict m, const float *restrict v, float r1, float r2,
                              const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                              uint8_t *restrict o1, uint8_t *restrict o2)
{
    const int32_t *restrict below1 = l1->below, *restrict below2 = l2->below;
    const float *restrict mid1 = l1->mid, *restrict mid2 = l2->mid;
    for (int j = 0; j < valid; j++) {
        float x1 = m[j] * r1, x2 = v[j] * r2;
        int32_t c1 = below1[monotone_key(x1) >> 16];
        /* refine steps, as quant_lut_nearest(): maps with two midpoints in one top-16-bit
         * bucket of `below` need two (the maps qmap_build() makes need one) */
        for (int r = 0; r < l1->refine; r++) {
            float md1 = mid1[c1];
            c1 += (md1 < x1) | ((md1 == x1) & (c1 & 1));
        }
        uint32_t sm, sq;
        float qv = q1[c1];
        memcpy(&sm, &m[j], sizeof sm);
        memcpy(&sq, &qv, sizeof sq);
        int32_t fix = ((sm ^ sq) >> 31) ? (m[j] > 0.0f ? 1 : -1) : 0;
        o1[j] = (uint8_t)(c1 + fix);
        int32_t c2 = below2[monotone_key(x2) >> 16];
        for (int r = 0; r < l2->refine; r++) {
            float md2 = mid2[c2];
            c2 += (md2 < x2) | ((md2 == x2) & (c2 & 1));
        }
        o2[j] = (uint8_t)(x2 == x2 ? c2 : 0); /* NaN (inf/inf) -> 0, as the search */
    }
}

/* ------------------------------------------------------------------ AVX-512 8-bit block */

/* The same block math and code search with AVX-512 intrinsics (gathers for the map and table
 * lookups), chosen at run time when the CPU has AVX-512F/BW/DQ. Every lane performs exactly the
 * scalar operations above in the same order, so codes, absmax and params are bit-identical to
 * the portable path and to the CUDA twin (check_optim.c runs both and compares). */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define OPTIM_HAVE_AVX512_PATH 1
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

AVX512_TARGET
static void adam8_block_math_avx512(int B, int valid, const float *restrict g, const uint8_t *restrict c1,
                                    const uint8_t *restrict c2, float *restrict p, float *restrict m,
                                    float *restrict v, const float *restrict q1, const float *restrict q2, float a1,
                                    float a2, const optim_group_scalars *s, float *new1, float *new2)
{
    const __m512 ab1 = _mm512_set1_ps(adam8_block_beta(a1, s->beta1));
    const __m512 ab2 = _mm512_set1_ps(adam8_block_beta(a2, s->beta2));
    const __m512 ob1 = _mm512_set1_ps(1.0f - s->beta1), ob2 = _mm512_set1_ps(1.0f - s->beta2);
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    __m512 acc1 = _mm512_set1_ps(-FLT_MAX), acc2 = acc1;
    for (int j = 0; j < B; j += 16) {
        __m512 gj = _mm512_loadu_ps(g + j);
        __m512i i1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c1 + j)));
        __m512i i2 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c2 + j)));
        __m512 d1 = _mm512_i32gather_ps(i1, q1, 4), d2 = _mm512_i32gather_ps(i2, q2, 4);
        __m512 mj = _mm512_add_ps(_mm512_mul_ps(d1, ab1), _mm512_mul_ps(ob1, gj));
        __m512 vj = _mm512_add_ps(_mm512_mul_ps(d2, ab2), _mm512_mul_ps(_mm512_mul_ps(ob2, gj), gj));
        __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(gj), big, _CMP_LE_OQ);
        mj = _mm512_maskz_mov_ps(fin, mj);
        vj = _mm512_maskz_mov_ps(fin, vj);
        _mm512_storeu_ps(m + j, mj);
        _mm512_storeu_ps(v + j, vj);
        acc1 = _mm512_max_ps(acc1, _mm512_abs_ps(mj));
        acc2 = _mm512_max_ps(acc2, _mm512_abs_ps(vj));
    }
    *new1 = _mm512_reduce_max_ps(acc1);
    *new2 = _mm512_reduce_max_ps(acc2);
    const __m512 step = _mm512_set1_ps(s->step_size), c2eps = _mm512_set1_ps(s->c2eps);
    const __m512 decay = _mm512_set1_ps(s->decay);
    for (int j = 0; j < valid; j += 16) {
        __mmask16 live = valid - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (valid - j)) - 1);
        __m512 gj = _mm512_maskz_loadu_ps(live, g + j), pj = _mm512_maskz_loadu_ps(live, p + j);
        __m512 mj = _mm512_loadu_ps(m + j), vj = _mm512_loadu_ps(v + j);
        __m512 pn = _mm512_add_ps(pj, _mm512_mul_ps(step, _mm512_div_ps(mj, _mm512_add_ps(_mm512_sqrt_ps(vj), c2eps))));
        if (s->has_decay)
            pn = _mm512_mul_ps(pn, decay);
        __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(gj), big, _CMP_LE_OQ);
        _mm512_mask_storeu_ps(p + j, live & fin, pn);
    }
}

/* The monotone key's bucket: bits ^ (sign ? 0xffffffff : 0x80000000), top 16 bits. */
AVX512_TARGET
static inline __m512i bucket_avx512(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i flip = _mm512_or_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_srli_epi32(_mm512_xor_si512(u, flip), 16);
}

AVX512_TARGET
static inline __m512i count_below_avx512(const quant_lut *l, __m512 x)
{
    __m512i c = _mm512_i32gather_epi32(bucket_avx512(x), l->below, 4);
    for (int r = 0; r < l->refine; r++) {
        __m512 md = _mm512_i32gather_ps(c, l->mid, 4);
        __mmask16 lt = _mm512_cmp_ps_mask(md, x, _CMP_LT_OQ), eq = _mm512_cmp_ps_mask(md, x, _CMP_EQ_OQ);
        __mmask16 odd = _mm512_test_epi32_mask(c, _mm512_set1_epi32(1));
        c = _mm512_mask_add_epi32(c, lt | (eq & odd), c, _mm512_set1_epi32(1));
    }
    return c;
}

/* Codes of 16 moments mj, vj already normalised by the new absmax (x1, x2), through the big
 * tables: the search with the sign fix (state 1) and with NaN -> 0 (state 2). */
AVX512_TARGET
static inline void codes16_gather(const quant_lut *l1, const quant_lut *l2, const float *q1, __m512 mj, __m512 x1,
                                  __m512 x2, __m512i *out1, __m512i *out2)
{
    const __m512i one = _mm512_set1_epi32(1), sign = _mm512_set1_epi32((int)0x80000000u);
    __m512i c1 = count_below_avx512(l1, x1);
    __m512 qv = _mm512_i32gather_ps(c1, q1, 4);
    __m512i diff = _mm512_xor_si512(_mm512_castps_si512(mj), _mm512_castps_si512(qv));
    __mmask16 flip = _mm512_test_epi32_mask(diff, sign);
    __mmask16 pos = _mm512_cmp_ps_mask(mj, _mm512_setzero_ps(), _CMP_GT_OQ);
    c1 = _mm512_mask_add_epi32(c1, flip & pos, c1, one);
    c1 = _mm512_mask_sub_epi32(c1, flip & (__mmask16)~pos, c1, one);
    __m512i c2 = count_below_avx512(l2, x2);
    *out1 = c1;
    *out2 = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x2, x2, _CMP_ORD_Q), c2);
}

AVX512_TARGET
static void adam8_block_codes_avx512(int valid, const float *restrict m, const float *restrict v, float r1, float r2,
                                     const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                                     uint8_t *restrict o1, uint8_t *restrict o2)
{
    const __m512 vr1 = _mm512_set1_ps(r1), vr2 = _mm512_set1_ps(r2);
    for (int j = 0; j < valid; j += 16) {
        __mmask16 live = valid - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (valid - j)) - 1);
        __m512 mj = _mm512_maskz_loadu_ps(live, m + j), vj = _mm512_maskz_loadu_ps(live, v + j);
        __m512 x1 = _mm512_mul_ps(mj, vr1), x2 = _mm512_mul_ps(vj, vr2);
        __m512i c1, c2;
        codes16_gather(l1, l2, q1, mj, x1, x2, &c1, &c2);
        _mm512_mask_cvtepi32_storeu_epi8(o1 + j, live, c1);
        _mm512_mask_cvtepi32_storeu_epi8(o2 + j, live, c2);
    }
}

/* ------------------------------------------------------------------ AVX-512 VBMI 8-bit block */

/* The fast path, on CPUs with AVX-512 VBMI: the same operations per lane as the two kernels
 * above, in the same order, without their gathers (a 16-lane gather costs about as much as
 * 40 simple instructions on the Zen 5 we measure on):
 *  - dequantization: the 256 map entries as 4 byte planes; vpermi2b looks up 64 codes in 128
 *    entries, a blend on bit 7 picks the half, and an unpack tree reassembles the floats (the
 *    codes are first reordered with vpermb so that the tree's output comes out in order);
 *  - the code search and the sign fix: the permute search of perm_build(), on 16-bit words
 *    with the float's bit fields cut out by vpmultishiftqb (perm_codes64w()), when the maps
 *    allow it (else the gathers of adam8_block_codes_avx512()); its rare 16-bit threshold
 *    ties are settled afterwards, lane by lane (perm_fix_first(), perm_fix_ties()); lanes
 *    outside its domain (|x| > 1, NaN, negative x in state 2; none comes from a block of finite
 *    moments) take the gathers of codes16_gather() for their 64 lanes.
 * One pass computes the fresh moments, the new absmax and the parameter update (which reads
 * only the fresh moments, not the new absmax), a second the codes from the moments times the
 * reciprocal of the new absmax (quant_math.h's rule; adam8_cpu() runs it after the next
 * block's first pass, and the tie corrections after the next block's second). check_optim.c compares all
 * three paths (portable, AVX-512, VBMI) bit for bit. */
#define VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi")))
#define VBMI_INLINE VBMI_TARGET __attribute__((always_inline)) static inline

/* Position 16L+4q+r (L: 128-bit lane) <-> element 16q+4L+r: the order in which the unpack tree
 * of dequant64() consumes bytes, and in which vpackus* of four dword vectors produces them. The
 * permutation is its own inverse. */
static const uint8_t lane_order[64] __attribute__((aligned(64))) = {
    0,  1,  2,  3,  16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51, 4,  5,  6,  7,  20, 21,
    22, 23, 36, 37, 38, 39, 52, 53, 54, 55, 8,  9,  10, 11, 24, 25, 26, 27, 40, 41, 42, 43,
    56, 57, 58, 59, 12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63};

/* map[code] for 64 codes, `idx` already in lane_order: out[q] holds the entries of codes
 * 16q..16q+15. (unpacklo/hi work per 128-bit lane, so lane L of out[q] gets positions
 * 16L+4q..16L+4q+3 of idx, i.e. codes 16q+4L..16q+4L+3.) */
VBMI_INLINE void dequant64(const uint8_t (*planes)[QMAP_SIZE], __m512i idx, __m512 out[4])
{
    __mmask64 upper = _mm512_movepi8_mask(idx);
    __m512i b[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512i *P = (const __m512i *)planes[k];
        __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512(P), idx, _mm512_load_si512(P + 1));
        __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512(P + 2), idx, _mm512_load_si512(P + 3));
        b[k] = _mm512_mask_blend_epi8(upper, lo, hi);
    }
    __m512i w01l = _mm512_unpacklo_epi8(b[0], b[1]), w01h = _mm512_unpackhi_epi8(b[0], b[1]);
    __m512i w23l = _mm512_unpacklo_epi8(b[2], b[3]), w23h = _mm512_unpackhi_epi8(b[2], b[3]);
    out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01l, w23l));
    out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01l, w23l));
    out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(w01h, w23h));
    out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(w01h, w23h));
}

/* The element (within its group of 64) of word w of perm_codes64w()'s word order. */
VBMI_INLINE int perm_word_elem(int w)
{
    return 32 * (w >> 5) + 16 * ((w >> 1) & 1) + 2 * ((w >> 2) & 7) + (w & 1);
}

/* One lane of the word search in scalar form: x's bits into *u, its sign for state 1 into
 * *neg, and its bucket (as perm_codes64w() computes it; at most PERM_N2 - 1 for x in the
 * table's domain). */
VBMI_INLINE uint32_t perm_lane_bucket(const quant_lut *t, int state1, float x, uint32_t *u, uint32_t *neg)
{
    uint32_t bits = ops_float_bits(x), e = (bits >> 23) & 0xffu;
    e = e < PERM_E0 ? PERM_E0 : e;
    uint32_t m16 = (bits >> 7) & 0xffffu;
    *u = bits;
    *neg = state1 && (bits >> 31);
    return t->perm_base16[e & 31] + ((m16 * t->perm_k16[e & 31]) >> 16) + (*neg ? t->perm_neg : 0);
}

/* The tied lanes of perm_codes64w() (groups: bit j / 64 of `groups`, lanes: tm[j / 64] in
 * word order) one by one: the word search stored below + 1 for them; the code is below + 1
 * when the low 7 bits of mant'(x) reach those of thr (t->perm_t7 of the lane's bucket), else
 * below. x = src * r as in the search (the same multiply), the bucket as there. */
VBMI_TARGET __attribute__((noinline)) static void perm_fix_ties(const quant_lut *t, int state1, int valid, const float *src,
                                                    float r, uint64_t groups, const uint64_t *tm, uint8_t *out)
{
    for (; groups; groups &= groups - 1) {
        int j = 64 * __builtin_ctzll(groups);
        for (uint64_t lanes = tm[j / 64]; lanes; lanes &= lanes - 1) {
            int el = j + perm_word_elem(__builtin_ctzll(lanes));
            if (el >= valid)
                continue;
            uint32_t u, neg, bk = perm_lane_bucket(t, state1, src[el] * r, &u, &neg);
            uint32_t m7 = (neg ? ~u : u) & 0x7fu;
            if (m7 < t->perm_t7[bk])
                out[el]--;
        }
    }
}

/* perm_fix_ties() for the first tied lane only (of the first group of `groups` with ties, or
 * none), without branches: at 1M params about one block in ten has a tie with bench_optim's
 * constant gradients, almost always one lane, and every mispredicted branch costs dearly in
 * this loop (measured: about 200 cycles, the next block's work under way thrown away). Takes
 * the lane out of tm and returns the groups left with ties (almost always none). */
VBMI_INLINE uint64_t perm_fix_first(const quant_lut *t, int state1, int valid, const float *src, float r,
                                    uint64_t groups, uint64_t *tm, uint8_t *out)
{
    int g = __builtin_ctzll(groups | (groups ? 0 : 1));
    uint64_t lanes = groups ? tm[g] : 0; /* tm of groups without ties may be stale */
    int el = 64 * g + perm_word_elem(__builtin_ctzll(lanes | (1ull << 63)));
    int ok = lanes != 0 && el < valid;
    el = ok ? el : 0;
    uint32_t u, neg, bk = perm_lane_bucket(t, state1, src[el] * r, &u, &neg) % PERM_N2;
    uint32_t mp = neg ? ~u : u, m7 = mp & 0x7fu, mp16 = (mp >> 7) & 0xffffu;
    uint32_t t16 = t->perm_w16[1][bk] | ((uint32_t)t->perm_w16[2][bk] << 8);
    uint32_t inc = (mp16 > t16) | ((mp16 == t16) & (m7 >= t->perm_t7[bk]));
    /* the lane's whole code, stored without reading the codes back (their masked vector store
     * may still be on its way, and a load behind it would wait) */
    uint8_t dummy, *dst = ok ? out + el : &dummy;
    *dst = (uint8_t)(t->perm_w16[0][bk] + inc);
    uint64_t rest = lanes & (lanes - 1);
    tm[g] = rest;
    return (groups & (groups - 1)) | (rest ? (1ull << g) : 0);
}

/* vpmultishiftqb: bits 7-22 of both dwords of a qword (m16) into its words 0-1 (and 2-3) */
static const uint8_t ms_m16[64] __attribute__((aligned(64))) = {
    7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15,
    39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47,
    7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47, 7, 15, 39, 47};
/* vpmultishiftqb: bits 23-30 (the biased exponent) and 24-31 of both dwords: the exponent in
 * the word's low byte, the sign in its bit 15 */
static const uint8_t ms_exp[64] __attribute__((aligned(64))) = {
    23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24,
    55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56,
    23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56, 23, 24, 55, 56};
/* vpermt2b: thr16 words 0-31 (a) and 32-63 (b) from the low and high byte planes */
static const uint8_t thr_words_a[64] __attribute__((aligned(64))) = {
    0,  64, 1,  65, 2,  66, 3,  67, 4,  68, 5,  69, 6,  70, 7,  71, 8,  72, 9,  73, 10, 74,
    11, 75, 12, 76, 13, 77, 14, 78, 15, 79, 16, 80, 17, 81, 18, 82, 19, 83, 20, 84, 21, 85,
    22, 86, 23, 87, 24, 88, 25, 89, 26, 90, 27, 91, 28, 92, 29, 93, 30, 94, 31, 95};
static const uint8_t thr_words_b[64] __attribute__((aligned(64))) = {
    32, 96,  33, 97,  34, 98,  35, 99,  36, 100, 37, 101, 38, 102, 39, 103, 40, 104, 41, 105, 42, 106,
    43, 107, 44, 108, 45, 109, 46, 110, 47, 111, 48, 112, 49, 113, 50, 114, 51, 115, 52, 116, 53, 117,
    54, 118, 55, 119, 56, 120, 57, 121, 58, 122, 59, 123, 60, 124, 61, 125, 62, 126, 63, 127};
/* vpermb: element 16t + 2i + h (+ 32 for u[2], u[3]) from word 4i + 2t + h (+ 32) */
static const uint8_t word_to_elem[64] __attribute__((aligned(64))) = {
    0,  1,  4,  5,  8,  9,  12, 13, 16, 17, 20, 21, 24, 25, 28, 29, 2,  3,  6,  7,  10, 11,
    14, 15, 18, 19, 22, 23, 26, 27, 30, 31, 32, 33, 36, 37, 40, 41, 44, 45, 48, 49, 52, 53,
    56, 57, 60, 61, 34, 35, 38, 39, 42, 43, 46, 47, 50, 51, 54, 55, 58, 59, 62, 63};

/* The codes of 64 lanes by the permute search of perm_build() (u[q]: bits of x for elements
 * 16q..16q+15, every one in the table's domain), stored to out under `live`; state 1 gets the
 * sign fix from the table. Works on 16-bit words, 32 lanes per instruction (the previous form
 * worked on dwords and put the 24-bit thresholds back together from three byte planes): the
 * threshold test compares only the top 16 bits of the 23-bit mantissa, mant'(x) >> 7 (mant'
 * inverted for x < 0, see perm_build()), with thr16 = thr >> 7: where the two differ, mant' >=
 * thr is mant'16 > thr16; where they are equal (a tie of the top 16 bits: about one lane in
 * 65536 on random data, but with bench_optim's constant gradients the moments settle within
 * a few ulps of midpoints and about one block in ten has one; every midpoint probe of the
 * tests) the low 7 bits decide, which perm_fix_ties() / perm_fix_first() do afterwards. A
 * bucket without a midpoint (thr = 1 << 23, no thr16) gets a thr16 that no lane of it ties
 * where possible (perm_build()). The fields
 * come straight from the float bits with vpmultishiftqb (qword i of the word vector for u[0],
 * u[1]: m16 of u[0]'s dwords 2i, 2i+1, then of u[1]'s; likewise u[2], u[3]), the row lookups are
 * vpermw, and the buckets become bytes with one vpermt2b; codes go back to element order with
 * one vpermb. Stores the codes under `live` and returns the lanes that tied, in word order
 * (word w: element perm_word_elem(w) of the group); their code was
 * stored as below + 1 and is one too high when mant' & 0x7f < thr & 0x7f (perm_fix_ties()). */
VBMI_INLINE __mmask64 perm_codes64w(const quant_lut *t, int state1, const __m512i u[4], __mmask64 live,
                                    uint8_t *out)
{
    const __m512i cm = _mm512_load_si512(ms_m16), ce = _mm512_load_si512(ms_exp);
    const __mmask64 upper = 0xf0f0f0f0f0f0f0f0ull; /* bytes 4-7 of every qword */
    const __m512i kt = _mm512_load_si512(t->perm_k16), bt = _mm512_load_si512(t->perm_base16);
    const __m512i e0 = _mm512_set1_epi16(PERM_E0); /* the low byte only: vpmaxub */
    __m512i m[2], bkt[2];
    __mmask32 sg[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i mm = _mm512_multishift_epi64_epi8(cm, u[2 * h]);
        mm = _mm512_mask_multishift_epi64_epi8(mm, upper, cm, u[2 * h + 1]);
        __m512i ee = _mm512_multishift_epi64_epi8(ce, u[2 * h]);
        ee = _mm512_mask_multishift_epi64_epi8(ee, upper, ce, u[2 * h + 1]);
        ee = _mm512_max_epu8(ee, e0);
        __m512i b = _mm512_add_epi16(_mm512_mulhi_epu16(mm, _mm512_permutexvar_epi16(ee, kt)),
                                     _mm512_permutexvar_epi16(ee, bt));
        if (state1) {
            sg[h] = _mm512_movepi16_mask(ee);
            b = _mm512_mask_add_epi16(b, sg[h], b, _mm512_set1_epi16((short)t->perm_neg));
            /* buckets from m16, the test on mant'16: ~m16 for x < 0 (no masked word xor) */
            m[h] = _mm512_mask_sub_epi16(mm, sg[h], _mm512_set1_epi16(-1), mm);
        } else {
            m[h] = mm;
        }
        bkt[h] = b;
    }
    /* bucket numbers (< 320) as bytes in word order: bits 0-7, bit 7 and bit 8 as masks */
    __m512i ix = _mm512_set_epi8(126, 124, 122, 120, 118, 116, 114, 112, 110, 108, 106, 104, 102, 100, 98, 96, 94,
                                 92, 90, 88, 86, 84, 82, 80, 78, 76, 74, 72, 70, 68, 66, 64, 62, 60, 58, 56, 54, 52,
                                 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10,
                                 8, 6, 4, 2, 0);
    __m512i lo = _mm512_permutex2var_epi8(bkt[0], ix, bkt[1]);
    __m512i hi = _mm512_permutex2var_epi8(bkt[0], _mm512_add_epi8(ix, _mm512_set1_epi8(1)), bkt[1]);
    __mmask64 b7 = _mm512_movepi8_mask(lo), b8 = _mm512_test_epi8_mask(hi, hi), b78 = b7 | b8;
    __m512i b[3];
#pragma GCC unroll 3
    for (int k = 0; k < 3; k++) {
        const __m512i *P = (const __m512i *)t->perm_w16[k];
        __m512i t0 = _mm512_permutex2var_epi8(_mm512_load_si512(P), lo, _mm512_load_si512(P + 1));
        __m512i t1 = _mm512_permutex2var_epi8(_mm512_load_si512(P + 2), lo, _mm512_load_si512(P + 3));
        /* buckets 256-319 (b8; their low byte is 0-63, bit 7 clear): one 64-entry vpermb,
         * merged into the second table's result, so one blend on b7 | b8 picks for all
         * (about 0.7-1 cycle per 16 elements less than a third vpermi2b and a second blend;
         * perm_build() refuses maps needing more than PERM_N2 = 320 buckets: the gathers) */
        t1 = _mm512_mask_permutexvar_epi8(t1, b8, lo, _mm512_load_si512(P + 4));
        b[k] = _mm512_mask_blend_epi8(b78, t0, t1);
    }
    __m512i thr_a = _mm512_permutex2var_epi8(b[1], _mm512_load_si512(thr_words_a), b[2]);
    __m512i thr_b = _mm512_permutex2var_epi8(b[1], _mm512_load_si512(thr_words_b), b[2]);
    __mmask64 tie = _mm512_kunpackd((__mmask64)_mm512_cmpeq_epi16_mask(m[1], thr_b),
                                    (__mmask64)_mm512_cmpeq_epi16_mask(m[0], thr_a));
    __mmask64 inc = _mm512_kunpackd((__mmask64)_mm512_cmpge_epu16_mask(m[1], thr_b),
                                    (__mmask64)_mm512_cmpge_epu16_mask(m[0], thr_a));
    __m512i codes = _mm512_mask_sub_epi8(b[0], inc, b[0], _mm512_set1_epi8(-1));
    _mm512_mask_storeu_epi8(out, live, _mm512_permutexvar_epi8(_mm512_load_si512(word_to_elem), codes));
    return tie;
}

/* adam8_block_math_avx512() with permute dequantization and the parameter update fused in;
 * B is a multiple of 64. The body is instantiated for full blocks with and without decay (the
 * common cases, free of per-vector masks and branches) and for the general case. */
#define ADAM8_PREFETCH 1024 /* elements ahead: the hardware prefetcher alone leaves this loop
                             * waiting on memory (16M params: 0.85 -> 1.5 Gparam/s with it) */
VBMI_INLINE void adam8_math_vbmi_body(int B, int valid, const float *restrict g, const uint8_t *restrict c1,
                                      const uint8_t *restrict c2, float *restrict p, float *restrict m,
                                      float *restrict v, const quant_lut *l1, const quant_lut *l2, float a1,
                                      float a2, const optim_group_scalars *s, float *new1, float *new2,
                                      const int full, const int has_decay, const int clean)
{
    const __m512 ab1 = _mm512_set1_ps(adam8_block_beta(a1, s->beta1));
    const __m512 ab2 = _mm512_set1_ps(adam8_block_beta(a2, s->beta2));
    const __m512 ob1 = _mm512_set1_ps(1.0f - s->beta1), ob2 = _mm512_set1_ps(1.0f - s->beta2);
    const __m512 step = _mm512_set1_ps(s->step_size), c2eps = _mm512_set1_ps(s->c2eps);
    const __m512 decay = _mm512_set1_ps(s->decay);
    const __m512i order = _mm512_load_si512(lane_order);
    __m512 acc1 = _mm512_set1_ps(-FLT_MAX), acc2 = acc1;
    for (int j = 0; j < B; j += 64) {
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) {
            _mm_prefetch((const char *)(g + j + ADAM8_PREFETCH + 16 * l), _MM_HINT_T0);
            _mm_prefetch((const char *)(p + j + ADAM8_PREFETCH + 16 * l), _MM_HINT_T0);
        }
        _mm_prefetch((const char *)(c1 + j + ADAM8_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(c2 + j + ADAM8_PREFETCH), _MM_HINT_T0);
        __m512 d1[4], d2[4];
        dequant64(l1->planes, _mm512_permutexvar_epi8(order, _mm512_loadu_si512(c1 + j)), d1);
        dequant64(l2->planes, _mm512_permutexvar_epi8(order, _mm512_loadu_si512(c2 + j)), d2);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            int o = j + 16 * q;
            __m512 gj = _mm512_loadu_ps(g + o);
            /* not NaN, not +-Inf (fpclass: QNaN 0x01, +Inf 0x08, -Inf 0x10, SNaN 0x80); the
             * reset of m and v for the others rides on their last add (zero-masked) */
            __mmask16 fin = _knot_mask16(_mm512_fpclass_ps_mask(gj, 0x99));
            __m512 mj = _mm512_maskz_add_ps(fin, _mm512_mul_ps(d1[q], ab1), _mm512_mul_ps(ob1, gj));
            __m512 vj = _mm512_maskz_add_ps(fin, _mm512_mul_ps(d2[q], ab2), _mm512_mul_ps(_mm512_mul_ps(ob2, gj), gj));
            _mm512_storeu_ps(m + o, mj);
            _mm512_storeu_ps(v + o, vj);
            acc1 = _mm512_max_ps(acc1, _mm512_abs_ps(mj));
            /* a clean block's v has its sign bit clear (see adam8_block()): |v| is v */
            acc2 = _mm512_max_ps(acc2, clean ? vj : _mm512_abs_ps(vj));
            int left = full ? 16 : valid - o;
            if (left > 0) {
                __mmask16 live = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                __m512 pj = full ? _mm512_loadu_ps(p + o) : _mm512_maskz_loadu_ps(live, p + o);
                __m512 pn = _mm512_add_ps(
                    pj, _mm512_mul_ps(step, _mm512_div_ps(mj, _mm512_add_ps(_mm512_sqrt_ps(vj), c2eps))));
                if (has_decay)
                    pn = _mm512_mul_ps(pn, decay);
                _mm512_mask_storeu_ps(p + o, live & fin, pn);
            }
        }
    }
    if (clean) {
        /* both maxima in one tree (10 instructions for the two, not 16): in a clean block
         * every lane is >= +0 and none is NaN, so the order of the maxima changes no bit */
        __m512 t = _mm512_max_ps(_mm512_shuffle_f32x4(acc1, acc2, 0x44), _mm512_shuffle_f32x4(acc1, acc2, 0xee));
        t = _mm512_max_ps(t, _mm512_shuffle_f32x4(t, t, 0xb1));
        t = _mm512_max_ps(t, _mm512_permute_ps(t, 0x4e));
        t = _mm512_max_ps(t, _mm512_permute_ps(t, 0xb1));
        *new1 = _mm512_cvtss_f32(t);
        *new2 = _mm_cvtss_f32(_mm512_extractf32x4_ps(t, 2));
    } else {
        *new1 = _mm512_reduce_max_ps(acc1);
        *new2 = _mm512_reduce_max_ps(acc2);
    }
}

VBMI_TARGET
static void adam8_block_math_vbmi(int B, int valid, const float *restrict g, const uint8_t *restrict c1,
                                  const uint8_t *restrict c2, float *restrict p, float *restrict m, float *restrict v,
                                  const quant_lut *l1, const quant_lut *l2, float a1, float a2,
                                  const optim_group_scalars *s, float *new1, float *new2, int clean)
{
    if (valid == B && clean && s->has_decay)
        adam8_math_vbmi_body(B, valid, g, c1, c2, p, m, v, l1, l2, a1, a2, s, new1, new2, 1, 1, 1);
    else if (valid == B && clean)
        adam8_math_vbmi_body(B, valid, g, c1, c2, p, m, v, l1, l2, a1, a2, s, new1, new2, 1, 0, 1);
    else
        adam8_math_vbmi_body(B, valid, g, c1, c2, p, m, v, l1, l2, a1, a2, s, new1, new2, 0, s->has_decay, 0);
}

/* The codes of elements j..j+63 (under live) through the gathers of the AVX-512 path. */
VBMI_TARGET __attribute__((noinline))
static void adam8_codes64_gather(const float *m, const float *v, float r1, float r2, const quant_lut *l1,
                                 const quant_lut *l2, const float *q1, __mmask64 live, uint8_t *o1, uint8_t *o2)
{
    const __m512 vr1 = _mm512_set1_ps(r1), vr2 = _mm512_set1_ps(r2);
    for (int q = 0; q < 4; q++) {
        __mmask16 lq = (__mmask16)(live >> (16 * q));
        __m512 mj = _mm512_maskz_loadu_ps(lq, m + 16 * q), vj = _mm512_maskz_loadu_ps(lq, v + 16 * q);
        __m512i c1, c2;
        codes16_gather(l1, l2, q1, mj, _mm512_mul_ps(mj, vr1), _mm512_mul_ps(vj, vr2), &c1, &c2);
        _mm512_mask_cvtepi32_storeu_epi8(o1 + 16 * q, lq, c1);
        _mm512_mask_cvtepi32_storeu_epi8(o2 + 16 * q, lq, c2);
    }
}

/* adam8_block_codes_avx512() through the permute search, 64 lanes at a time (m and v hold a
 * multiple of 64 values, padded past `valid`). Needs perm_ok on both tables. `checked`: test
 * every 64 lanes against the tables' domain (else the caller guarantees it, see
 * adam8_codes()). */
VBMI_INLINE void adam8_codes_vbmi_body(int valid, const float *restrict m, const float *restrict v, float r1,
                                       float r2, const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                                       uint8_t *restrict o1, uint8_t *restrict o2, const int checked,
                                       uint64_t *restrict tm1, uint64_t *restrict tm2, uint64_t *restrict ties)
{
    const __m512 vr1 = _mm512_set1_ps(r1), vr2 = _mm512_set1_ps(r2);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), one_bits = _mm512_set1_epi32(0x3f800000);
    /* the lanes of each group whose word search tied (tm1, tm2: at fixed places, not as a list,
     * whose store addresses would wait on the search), and which groups have some */
    uint64_t tie1 = 0, tie2 = 0;
    for (int j = 0; j < valid; j += 64) {
        __mmask64 live = valid - j >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (valid - j)) - 1);
        __m512i u1[4], u2[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            u1[q] = _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(m + j + 16 * q), vr1));
            u2[q] = _mm512_castps_si512(_mm512_mul_ps(_mm512_loadu_ps(v + j + 16 * q), vr2));
        }
        if (checked) {
            /* the domain: |x1| <= 1 and +0 <= x2 <= 1 (unsigned compares; NaN is above), first
             * over all 64 lanes at once (lanes past `valid` hold padding, in the domain or not:
             * only a hit there costs the exact test) */
            __m512i hi = _mm512_max_epu32(_mm512_and_si512(u1[0], absmask), u2[0]);
#pragma GCC unroll 3
            for (int q = 1; q < 4; q++)
                hi = _mm512_max_epu32(hi, _mm512_max_epu32(_mm512_and_si512(u1[q], absmask), u2[q]));
            if (_mm512_cmpgt_epu32_mask(hi, one_bits)) {
                __mmask16 out = 0;
                for (int q = 0; q < 4; q++)
                    out |= (_mm512_cmpgt_epu32_mask(_mm512_and_si512(u1[q], absmask), one_bits) |
                            _mm512_cmpgt_epu32_mask(u2[q], one_bits)) & (__mmask16)(live >> (16 * q));
                if (out) {
                    adam8_codes64_gather(m + j, v + j, r1, r2, l1, l2, q1, live, o1 + j, o2 + j);
                    continue;
                }
            }
        }
        tm1[j / 64] = perm_codes64w(l1, 1, u1, live, o1 + j);
        tm2[j / 64] = perm_codes64w(l2, 0, u2, live, o2 + j);
        tie1 |= (uint64_t)(tm1[j / 64] != 0) << (j / 64);
        tie2 |= (uint64_t)(tm2[j / 64] != 0) << (j / 64);
    }
    ties[0] = tie1;
    ties[1] = tie2;
}

VBMI_TARGET
static void adam8_block_codes_vbmi(int valid, const float *restrict m, const float *restrict v, float r1, float r2,
                                   const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                                   uint8_t *restrict o1, uint8_t *restrict o2, int checked, uint64_t *tm1,
                                   uint64_t *tm2, uint64_t *ties)
{
    if (checked)
        adam8_codes_vbmi_body(valid, m, v, r1, r2, l1, l2, q1, o1, o2, 1, tm1, tm2, ties);
    else
        adam8_codes_vbmi_body(valid, m, v, r1, r2, l1, l2, q1, o1, o2, 0, tm1, tm2, ties);
}

static int force_path = OPTIM_CPU_PATH_BEST;

void optim_cpu_force_path(int path) { force_path = path; }

/* OPTIM_CPU_PATH_PORTABLE, _AVX512 or _VBMI: the best the CPU has, capped by force_path and by
 * OCTET_NO_AVX512 / OCTET_NO_VBMI in the environment. */
static int cpu_path(void)
{
    static int has = -1;
    if (has < 0) {
        __builtin_cpu_init();
        int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                     !getenv("OCTET_NO_AVX512");
        has = !avx512 ? OPTIM_CPU_PATH_PORTABLE
              : __builtin_cpu_supports("avx512vbmi") && !getenv("OCTET_NO_VBMI") ? OPTIM_CPU_PATH_VBMI
                                                                                 : OPTIM_CPU_PATH_AVX512;
    }
    return force_path != OPTIM_CPU_PATH_BEST && force_path < has ? force_path : has;
}
#else
void optim_cpu_force_path(int path) { (void)path; }
static int cpu_path(void) { return OPTIM_CPU_PATH_PORTABLE; }
#endif

/* The tied lanes of a block's word search (VBMI path), left for adam8_ties_fix(). */
typedef struct adam8_ties {
    uint64_t tm1[MAX_BLOCK / 64], tm2[MAX_BLOCK / 64]; /* per group of 64: the lanes */
    uint64_t groups[2];                                /* state 1, 2: the groups with some */
    float r1, r2;                                      /* the reciprocals the search used */
} adam8_ties;

#ifdef OPTIM_HAVE_AVX512_PATH
/* adam8_ties_fix() once there are ties (only the VBMI path leaves any). */
VBMI_TARGET __attribute__((noinline)) static void adam8_ties_fix_vbmi(adam8_ties *ts, int valid, const float *m,
                                                                     const float *v, const quant_lut *l1,
                                                                     const quant_lut *l2, uint8_t *o1, uint8_t *o2)
{
    /* no branch on the search's results for the usual single tied lane */
    uint64_t g1 = perm_fix_first(l1, 1, valid, m, ts->r1, ts->groups[0], ts->tm1, o1);
    uint64_t g2 = perm_fix_first(l2, 0, valid, v, ts->r2, ts->groups[1], ts->tm2, o2);
    if (__builtin_expect((g1 | g2) != 0, 0)) {
        perm_fix_ties(l1, 1, valid, m, ts->r1, g1, ts->tm1, o1);
        perm_fix_ties(l2, 0, valid, v, ts->r2, g2, ts->tm2, o2);
    }
}
#endif

/* Corrects the tied lanes of a block's codes (see perm_codes64w()); m, v as given to
 * adam8_codes(), which left ts. One branch, on data long ready when adam8_cpu() calls this (a
 * block after the codes). Plain code: it runs on every path (the VBMI helper only when there
 * are ties, which only the VBMI path leaves). */
static void adam8_ties_fix(adam8_ties *ts, int valid, const float *m, const float *v, const quant_lut *l1,
                           const quant_lut *l2, uint8_t *o1, uint8_t *o2)
{
#ifdef OPTIM_HAVE_AVX512_PATH
    if (__builtin_expect((ts->groups[0] | ts->groups[1]) != 0, 0))
        adam8_ties_fix_vbmi(ts, valid, m, v, l1, l2, o1, o2);
#else
    (void)ts, (void)valid, (void)m, (void)v, (void)l1, (void)l2, (void)o1, (void)o2;
#endif
}

/* The codes of a block's fresh moments m, v (valid values; m and v hold B, a multiple of 64 on
 * the VBMI path) given its new absmax n1, n2, on `path`. `ties`: NULL, or where the VBMI path
 * leaves the lanes of its word search that tied, which the caller must then correct with
 * adam8_ties_fix() (adam8_cpu() does so a block later, see there); with NULL they are corrected
 * here. `clean`: m and v are B values whose
 * absmax n1, n2 are (max |m|, max |v| over all B), none is NaN and every v has its sign bit
 * clear (adam8_block() knows when; see there); with normal reciprocals, |m * r1| <= 1 and
 * +0 <= v * r2 <= 1 follow (a * (1 / a) <= 1 for normal a and 1 / a, checked over every float),
 * which is the permute search's domain, so the VBMI path skips its per-lane domain test. */
static void adam8_codes(int path, int B, int valid, const float *m, const float *v, float n1, float n2,
                        const quant_lut *l1, const quant_lut *l2, const float *q1, const float *q2, uint8_t *o1,
                        uint8_t *o2, int clean, adam8_ties *ties)
{
    (void)B;
    if (ties) {
        ties->groups[0] = ties->groups[1] = 0;
        ties->r1 = ties->r2 = 0.0f;
    }
    const float r1 = quant_inv_absmax(n1), r2 = quant_inv_absmax(n2);
    if (isinf(r1) || isinf(r2)) { /* an all-zero or subnormal absmax: the guarded scalar rule */
        for (int j = 0; j < valid; j++) {
            o1[j] = quant_signed_state_one(q1, m[j], n1, r1);
            o2[j] = quant_unsigned_state_one(q2, v[j], n2, r2);
        }
        return;
    }
#ifdef OPTIM_HAVE_AVX512_PATH
    if (path == OPTIM_CPU_PATH_VBMI && B % 64 == 0 && l1->perm_ok && l2->perm_ok) {
        int checked = !(clean && isnormal(r1) && isnormal(r2));
        adam8_ties here, *ts = ties ? ties : &here;
        adam8_block_codes_vbmi(valid, m, v, r1, r2, l1, l2, q1, o1, o2, checked, ts->tm1, ts->tm2, ts->groups);
        ts->r1 = r1;
        ts->r2 = r2;
        if (!ties)
            adam8_ties_fix(ts, valid, m, v, l1, l2, o1, o2);
        return;
    }
    if (path >= OPTIM_CPU_PATH_AVX512) {
        adam8_block_codes_avx512(valid, m, v, r1, r2, l1, l2, q1, o1, o2);
        return;
    }
#endif
    (void)path;
    adam8_block_codes(valid, m, v, r1, r2, l1, l2, q1, o1, o2);
}

/* A block between its two halves: the fresh moments (B values) and what its codes need. */
typedef struct adam8_pending {
    float m[MAX_BLOCK] __attribute__((aligned(64)));
    float v[MAX_BLOCK] __attribute__((aligned(64)));
    uint8_t *o1, *o2;
    float n1, n2;
    int B, valid, path, clean;
    adam8_ties ties;
} adam8_pending;

/* The first half of quantization block b of tensor d (see the file comment for the tail
 * padding): fresh moments into `pb`, the new absmax, the parameter update. */
static void adam8_block_first(const optim_tensor_desc *d, int64_t b, int B, const optim_group_scalars *s,
                              const float *q1, const float *q2, const quant_lut *l1, const quant_lut *l2,
                              adam8_pending *pb)
{
    float gpad[MAX_BLOCK];
    uint8_t c1pad[MAX_BLOCK], c2pad[MAX_BLOCK];
    float *m = pb->m, *v = pb->v;
    int64_t start = b * B;
    int valid = (int)(d->n - start < B ? d->n - start : B);
    const float *g = d->g + start;
    const uint8_t *c1 = d->code1 + start, *c2 = d->code2 + start;
    if (valid < B) {
        memcpy(gpad, g, (size_t)valid * sizeof(float));
        memcpy(c1pad, c1, (size_t)valid);
        memcpy(c2pad, c2, (size_t)valid);
        for (int j = valid; j < B; j++) {
            gpad[j] = 0.0f;
            c1pad[j] = QMAP_SIGNED_PAD;
            c2pad[j] = 0;
        }
        g = gpad;
        c1 = c1pad;
        c2 = c2pad;
    }
    float new1, new2;
    int path = cpu_path();
    /* With finite old absmax (and, for v, a non-negative absmax, map and beta2), every fresh
     * moment is finite or +-Inf (an Inf makes the new absmax Inf, whose reciprocal is 0, not
     * normal) and v has its sign bit clear; see adam8_codes(). */
    const float a1 = d->absmax1[b], a2 = d->absmax2[b];
    int clean = isfinite(a1) && isfinite(a2) && !signbit(a2) && l2->nonneg && !signbit(s->beta2);
#ifdef OPTIM_HAVE_AVX512_PATH
    if (path == OPTIM_CPU_PATH_VBMI && B % 64 == 0)
        adam8_block_math_vbmi(B, valid, g, c1, c2, d->p + start, m, v, l1, l2, a1, a2, s,
                              &new1, &new2, clean);
    else if (path >= OPTIM_CPU_PATH_AVX512)
        adam8_block_math_avx512(B, valid, g, c1, c2, d->p + start, m, v, q1, q2, a1, a2, s,
                                &new1, &new2);
    else
#endif
        adam8_block_math(B, valid, g, c1, c2, d->p + start, m, v, q1, q2, a1, a2, s, &new1,
                         &new2);
    d->absmax1[b] = new1;
    d->absmax2[b] = new2;
    pb->o1 = d->code1 + start;
    pb->o2 = d->code2 + start;
    pb->n1 = new1;
    pb->n2 = new2;
    pb->B = B;
    pb->valid = valid;
    pb->path = path;
    pb->clean = clean;
}

/* The second half: the block's codes. */
static void adam8_block_second(adam8_pending *pb, const float *q1, const float *q2, const quant_lut *l1,
                               const quant_lut *l2)
{
    adam8_codes(pb->path, pb->B, pb->valid, pb->m, pb->v, pb->n1, pb->n2, l1, l2, q1, q2, pb->o1, pb->o2,
                pb->clean, &pb->ties);
}

/* The third: the corrections of its codes' ties (adam8_ties_fix(); nothing to do off the VBMI
 * path, whose ties say none). */
static void adam8_block_third(adam8_pending *pb, const quant_lut *l1, const quant_lut *l2)
{
    adam8_ties_fix(&pb->ties, pb->valid, pb->m, pb->v, l1, l2, pb->o1, pb->o2);
}

#ifdef OPTIM_HAVE_AVX512_PATH
/* adam8_block_second() of a block whose first half ran on the VBMI path, with the codes body
 * inlined for the usual case (clean, normal reciprocals: adam8_codes()'s unchecked permute
 * search, the same operations); anything else goes through adam8_codes(). */
VBMI_INLINE void adam8_second_vbmi(adam8_pending *pb, const float *q1, const float *q2, const quant_lut *l1,
                                   const quant_lut *l2)
{
    const float r1 = quant_inv_absmax(pb->n1), r2 = quant_inv_absmax(pb->n2);
    if (__builtin_expect(pb->clean && isnormal(r1) && isnormal(r2), 1)) {
        adam8_codes_vbmi_body(pb->valid, pb->m, pb->v, r1, r2, l1, l2, q1, pb->o1, pb->o2, 0, pb->ties.tm1,
                              pb->ties.tm2, pb->ties.groups);
        pb->ties.r1 = r1;
        pb->ties.r2 = r2;
    } else {
        adam8_block_second(pb, q1, q2, l1, l2);
    }
}

/* adam8_cpu()'s loop over blocks b..bend - 1 of tensor d (i: the pipeline index of block b,
 * pend: its ring) on the VBMI path (B % 64 == 0, permute tables on both maps): the same three
 * halves per block, in the same order, with full clean blocks' first half (the usual case)
 * inlined: the group's scalars, the constant vectors and the pipeline's bookkeeping are set up
 * once per run instead of once per block (~80 cycles of per-block overhead, about 5 per 16
 * elements at block 256, before). Other blocks take adam8_block_first(). */
VBMI_INLINE void adam8_run_vbmi_body(const optim_tensor_desc *d, int64_t b, int64_t bend, int B,
                                     const optim_group_scalars *sp, const float *q1, const float *q2,
                                     const quant_lut *l1, const quant_lut *l2, adam8_pending *pend, int64_t i,
                                     const int has_decay)
{
    const optim_group_scalars s = *sp; /* a local copy: no store of the loop can alias it */
    const int nonneg = l2->nonneg && !signbit(s.beta2);
    const int64_t n = d->n;
    float *const p = d->p, *const absmax1 = d->absmax1, *const absmax2 = d->absmax2;
    const float *const g = d->g;
    uint8_t *const code1 = d->code1, *const code2 = d->code2;
    int k0 = (int)(i % 3); /* the ring slots of blocks i, i - 1, i - 2 */
    for (; b < bend; b++, i++) {
        adam8_pending *pb = &pend[k0];
        const int64_t start = b * B;
        const float a1 = absmax1[b], a2 = absmax2[b];
        if (__builtin_expect(n - start >= B && nonneg && isfinite(a1) && isfinite(a2) && !signbit(a2), 1)) {
            float n1, n2;
            adam8_math_vbmi_body(B, B, g + start, code1 + start, code2 + start, p + start, pb->m, pb->v, l1, l2, a1,
                                 a2, &s, &n1, &n2, 1, has_decay, 1);
            absmax1[b] = n1;
            absmax2[b] = n2;
            pb->o1 = code1 + start;
            pb->o2 = code2 + start;
            pb->n1 = n1;
            pb->n2 = n2;
            pb->B = B;
            pb->valid = B;
            pb->path = OPTIM_CPU_PATH_VBMI;
            pb->clean = 1;
        } else {
            adam8_block_first(d, b, B, sp, q1, q2, l1, l2, pb);
        }
        const int k1 = k0 == 0 ? 2 : k0 - 1, k2 = k1 == 0 ? 2 : k1 - 1;
        if (i >= 1)
            adam8_second_vbmi(&pend[k1], q1, q2, l1, l2);
        if (i >= 2)
            adam8_block_third(&pend[k2], l1, l2);
        k0 = k0 == 2 ? 0 : k0 + 1;
    }
}

VBMI_TARGET __attribute__((noinline)) static void adam8_run_vbmi(const optim_tensor_desc *d, int64_t b, int64_t bend,
                                                                int B, const optim_group_scalars *s,
                                                                const float *q1, const float *q2,
                                                                const quant_lut *l1, const quant_lut *l2,
                                                                adam8_pending *pend, int64_t i)
{
    if (s->has_decay)
        adam8_run_vbmi_body(d, b, bend, B, s, q1, q2, l1, l2, pend, i, 1);
    else
        adam8_run_vbmi_body(d, b, bend, B, s, q1, q2, l1, l2, pend, i, 0);
}
#endif

void optim_cpu_block_codes(const float *q1, const float *q2, const float *m, const float *v, int n, float n1,
                           float n2, uint8_t *c1, uint8_t *c2)
{
    const quant_lut *l1 = lut_for(&lut_signed, q1), *l2 = lut_for(&lut_unsigned, q2);
    float mb[MAX_BLOCK] __attribute__((aligned(64))), vb[MAX_BLOCK] __attribute__((aligned(64)));
    for (int at = 0; at < n; at += MAX_BLOCK) {
        int valid = n - at < MAX_BLOCK ? n - at : MAX_BLOCK, B = (valid + 63) & ~63;
        memcpy(mb, m + at, (size_t)valid * sizeof(float));
        memcpy(vb, v + at, (size_t)valid * sizeof(float));
        for (int j = valid; j < B; j++)
            mb[j] = vb[j] = 0.0f;
        adam8_codes(cpu_path(), B, valid, mb, vb, n1, n2, l1, l2, q1, q2, c1 + at, c2 + at, 0, NULL);
    }
}

/* The tensor that holds unit u of a list: the last whose first_unit <= u (so empty tensors,
 * which share their first_unit with the next, are skipped). */
static int tensor_of_unit(const optim_launch *L, int64_t u)
{
    int lo = 0, hi = L->n_tensors - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (L->tensors[mid].first_unit <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Runs unit(d, u within d, ctx) over every unit of the list in one parallel region: the units
 * of all tensors split into one contiguous, ordered share per thread (as schedule(static)),
 * not one region per tensor, whose barriers dominate a list of many small tensors. Units are
 * independent, so the result does not depend on the thread count. */
static void for_each_unit(const optim_launch *L, int64_t serial_below,
                          void (*unit)(const optim_tensor_desc *d, int64_t u, const void *ctx), const void *ctx)
{
#pragma omp parallel if (L->n_units >= serial_below)
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        int64_t lo = L->n_units * id / nt, hi = L->n_units * (id + 1) / nt;
        int t = lo < hi ? tensor_of_unit(L, lo) : 0;
        for (int64_t u = lo; u < hi; u++) {
            while (u >= L->tensors[t].first_unit + L->tensors[t].n_units)
                t++;
            unit(&L->tensors[t], u - L->tensors[t].first_unit, ctx);
        }
    }
}

/* The blocks of the launch list, split over the threads as for_each_unit() does, each block's
 * second half (its codes) run after the next block's first half, and its third (the rare
 * corrections of the word search's ties) after the next block's second, so that the branch on
 * the ties does not wait on the search (~2 cycles per 16 elements at 1M params, where about one
 * block in ten has a tie with bench_optim's constant gradients): the codes wait on the block's
 * absmax reduction and its reciprocal, a chain of some 40 cycles, which the next block's
 * independent work now hides (about 3 cycles per 16 elements at 1M params on Zen 5). Blocks
 * are independent (each reads and writes only its own elements and absmax), so the order of
 * the halves does not change a bit. On the VBMI path each tensor's share of blocks runs in
 * adam8_run_vbmi() (the same halves in the same order, the usual block's first and second half
 * inlined, its set-up once per run). */
static int adam8_cpu(const optim_launch *L)
{
    const quant_lut *l1 = lut_for(&lut_signed, L->qmap1), *l2 = lut_for(&lut_unsigned, L->qmap2);
#pragma omp parallel if (L->n_units >= 17)
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        /* 3 x 33 KiB of stack: block i's first half, block i - 1's second, block i - 2's third */
        adam8_pending pend[3];
        int64_t lo = L->n_units * id / nt, hi = L->n_units * (id + 1) / nt;
        int t = lo < hi ? tensor_of_unit(L, lo) : 0;
#ifdef OPTIM_HAVE_AVX512_PATH
        const int vbmi_run = cpu_path() == OPTIM_CPU_PATH_VBMI && L->block_size % 64 == 0 && l1->perm_ok &&
                             l2->perm_ok;
#endif
        for (int64_t u = lo; u < hi;) {
            while (u >= L->tensors[t].first_unit + L->tensors[t].n_units)
                t++;
            const optim_tensor_desc *d = &L->tensors[t];
            /* this tensor's blocks of the share */
            int64_t end = d->first_unit + d->n_units < hi ? d->first_unit + d->n_units : hi;
#ifdef OPTIM_HAVE_AVX512_PATH
            if (vbmi_run) {
                adam8_run_vbmi(d, u - d->first_unit, end - d->first_unit, L->block_size, &L->groups[d->group],
                               L->qmap1, L->qmap2, l1, l2, pend, u - lo);
                u = end;
                continue;
            }
#endif
            for (; u < end; u++) {
                int64_t i = u - lo;
                adam8_block_first(d, u - d->first_unit, L->block_size, &L->groups[d->group], L->qmap1, L->qmap2, l1,
                                  l2, &pend[i % 3]);
                if (i >= 1)
                    adam8_block_second(&pend[(i - 1) % 3], L->qmap1, L->qmap2, l1, l2);
                if (i >= 2)
                    adam8_block_third(&pend[(i - 2) % 3], l1, l2);
            }
        }
        int64_t cnt = hi - lo;
        if (cnt >= 1)
            adam8_block_second(&pend[(cnt - 1) % 3], L->qmap1, L->qmap2, l1, l2);
        if (cnt >= 2)
            adam8_block_third(&pend[(cnt - 2) % 3], l1, l2);
        if (cnt >= 1)
            adam8_block_third(&pend[(cnt - 1) % 3], l1, l2);
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ fp32 Adam, SGD */

/* Element ranges of the fp32 rules, as clones with restrict pointers and a local copy of the
 * scalars, marked `omp simd` so they vectorise (vsqrtps/vdivps round as the scalar forms). */
OPTIM_CPU_CLONES
static void adam_torch_range(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                             int64_t n, const optim_group_scalars *sp)
{
    const optim_group_scalars s = *sp;
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        adam_torch_one(&p[i], g[i], &m[i], &v[i], &s);
}

OPTIM_CPU_CLONES
static void adam_bnb32_range(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                             int64_t n, const optim_group_scalars *sp)
{
    const optim_group_scalars s = *sp;
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        adam_bnb32_one(&p[i], g[i], &m[i], &v[i], &s);
}

/* sgd_one() specialised per case (no momentum / first step / later steps) so the loop body has
 * no branches; each case evaluates exactly sgd_one's expressions. */
OPTIM_CPU_CLONES
static void sgd_range(float *restrict p, const float *restrict g, float *restrict buf, int64_t n,
                      const optim_group_scalars *sp)
{
    const float lr = sp->lr, wd = sp->weight_decay, mom = sp->momentum, keep = sp->dampening_keep;
    const int has_wd = wd != 0.0f, nesterov = sp->nesterov;
    if (!buf || mom == 0.0f) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float d = has_wd ? g[i] + wd * p[i] : g[i];
            p[i] = p[i] - lr * d;
        }
    } else if (sp->first_step) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float d = has_wd ? g[i] + wd * p[i] : g[i];
            buf[i] = d;
            d = nesterov ? d + mom * d : d;
            p[i] = p[i] - lr * d;
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float d = has_wd ? g[i] + wd * p[i] : g[i];
            float b = (buf[i] * mom) + (keep * d);
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
            p[i] = p[i] - lr * d;
        }
    }
}

/* One unit (OPTIM_CHUNK elements) of an fp32 rule. */
typedef struct fp32_ctx {
    const optim_launch *L;
    int rule; /* 0: AdamW, 1: bnb 32-bit Adam, 2: SGD */
} fp32_ctx;

static void fp32_unit(const optim_tensor_desc *d, int64_t u, const void *ctx)
{
    const fp32_ctx *c = ctx;
    const optim_group_scalars *s = &c->L->groups[d->group];
    int64_t i = u * OPTIM_CHUNK, len = d->n - i < OPTIM_CHUNK ? d->n - i : OPTIM_CHUNK;
    if (c->rule == 0)
        adam_torch_range(d->p + i, d->g + i, d->m + i, d->v + i, len, s);
    else if (c->rule == 1)
        adam_bnb32_range(d->p + i, d->g + i, d->m + i, d->v + i, len, s);
    else
        sgd_range(d->p + i, d->g + i, d->m ? d->m + i : NULL, len, s);
}

static int fp32_rule_cpu(const optim_launch *L, int rule)
{
    fp32_ctx c = {L, rule};
    for_each_unit(L, 9, fp32_unit, &c);
    return OCTET_OK;
}

static int adam32_cpu(const optim_launch *L, int torch_order) { return fp32_rule_cpu(L, torch_order ? 0 : 1); }
static int sgd_cpu(const optim_launch *L) { return fp32_rule_cpu(L, 2); }

/* ------------------------------------------------------------------ Adafactor */

/* One tensor's step in four passes, each over groups of AF_GROUP summation chunks that OpenMP
 * splits across threads:
 *   A  the chunk partials of RMS(X) (reads p);
 *   B  the new statistics: row and column means of g^2 + eps1 (factored), or v (reads g; one
 *      thread per tensor: the row sums run along rows, the column sums down columns);
 *   C  the chunk partials of RMS(U) (reads g: U is recomputed, not stored);
 *   D  the update (reads p, g, m; writes p, m), U recomputed again.
 * U = (r_factor * c_factor) * g with r_factor = 1/sqrtf(row/r_mean) once per row and
 * c_factor = 1/sqrtf(col) once per column: the float expressions of adafactor_factored_u_one()
 * and adafactor_apply_one(), so the same bits. Every double sum runs in the order of
 * sum_squares_fixed() (sequential within each ADAFACTOR_SUM_CHUNK chunk, then over the chunk
 * partials; the CUDA twin mirrors it) and of the row/column sums (sequential along c, and
 * along r): the vector kernels only run independent sums side by side, one per lane (eight
 * chunks, or eight rows, transposed in registers). check_optim.c compares the result bit for
 * bit with a plain transcription of the rules, on both the AVX-512 and the portable path. */
#define AF_GROUP 16     /* chunks per group */

/* Where one tensor's CPU scratch lives in L->workspace (floats; doubles first, so aligned). */
typedef struct adafactor_cpu_layout {
    double *part;    /* (chunks) partial sums of p^2, then of U^2 */
    double *col_acc; /* (cols) column sums of one batch */
    float *r_mean;   /* (batch) mean of each batch's new row statistics */
    float *rf, *cf;  /* (batch, rows), (batch, cols): r_factor and c_factor */
} adafactor_cpu_layout;

static int64_t adafactor_cpu_floats(const optim_tensor_desc *d)
{
    int64_t chunks = (d->n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
    int64_t f = 2 * chunks + d->batch + 16;
    if (d->factored)
        f += 2 * d->cols + d->batch * (d->rows + d->cols);
    return f;
}

/* The CUDA twin's scratch (optim_cuda.cu, af_layout), in 8-byte words: per tensor one partial
 * sum per chunk, one row mean per batch and 8 words of block offsets and scales; 8 more words
 * per list. The CPU twin's (adafactor_cpu_layout) goes in the same buffer, one tensor at a time,
 * so the size is the larger of the two. */
int64_t adafactor_workspace_floats(const optim_tensor_desc *tensors, int n)
{
    int64_t words = 8;
    for (int t = 0; t < n; t++) {
        int64_t chunks = (tensors[t].n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
        words += chunks + tensors[t].batch + 8;
    }
    int64_t cpu = 0;
    for (int t = 0; t < n; t++)
        if (adafactor_cpu_floats(&tensors[t]) > cpu)
            cpu = adafactor_cpu_floats(&tensors[t]);
    return 2 * words > cpu ? 2 * words : cpu;
}

/* Sum of f(x[i]) for i < n in the fixed order both twins use: sequential double sums over
 * ADAFACTOR_SUM_CHUNK blocks, then a sequential sum of the block partials. (The reference the
 * passes below follow.) */
static double sum_squares_chunk(const float *x, int64_t n)
{
    double part = 0.0;
    for (int64_t i = 0; i < n; i++)
        part += (double)x[i] * (double)x[i];
    return part;
}

/* acc[k] += (double)x[k*stride + i]^2 for i < len in order, k < 8: eight sequential sums side
 * by side. */
static void sums8_portable(const float *x, int64_t stride, int64_t len, double *acc)
{
    for (int64_t i = 0; i < len; i++)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[k * stride + i] * (double)x[k * stride + i];
}

/* The column sums col_acc[c] += sq(g[k*C + c]) (k in order) and the row sums ra[k] += sq(...)
 * (c in order) of 8 rows of a (rows, C) matrix, sq(g) = g*g + eps in float. */
static void rows8_portable(const float *g, int64_t C, double *col_acc, double *ra, float eps)
{
    for (int64_t c = 0; c < C; c++)
        for (int k = 0; k < 8; k++) {
            float sq = (g[k * C + c] * g[k * C + c]) + eps;
            ra[k] += sq;
            col_acc[c] += sq;
        }
}

#ifdef OPTIM_HAVE_AVX512_PATH
/* r[j][k] = r[k][j] for 8 vectors of 8 floats. */
AVX512_TARGET __attribute__((always_inline)) static inline void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xee);
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xee);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
    }
}

/* sums8_portable() for 16 sums (two accumulators, so two dependency chains), len % 8 == 0.
 * The fused multiply-add rounds as the separate ones do here: a float's square is exact in
 * double (48 significant bits, no overflow or underflow), so only the addition rounds. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
static void sums16_avx512(const float *x, int64_t stride, int64_t len, double *acc)
{
    __m512d a0 = _mm512_loadu_pd(acc), a1 = _mm512_loadu_pd(acc + 8);
    for (int64_t i = 0; i < len; i += 8) {
        __m256 r[8], s[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            r[k] = _mm256_loadu_ps(x + k * stride + i);
            s[k] = _mm256_loadu_ps(x + (k + 8) * stride + i);
        }
        transpose8(r);
        transpose8(s);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m512d d0 = _mm512_cvtps_pd(r[j]), d1 = _mm512_cvtps_pd(s[j]);
            a0 = _mm512_fmadd_pd(d0, d0, a0);
            a1 = _mm512_fmadd_pd(d1, d1, a1);
        }
    }
    _mm512_storeu_pd(acc, a0);
    _mm512_storeu_pd(acc + 8, a1);
}

/* rows8_portable() for 16 rows at g + k*stride, the columns c < C (a multiple of 8). */
AVX512_TARGET
static void rows16_avx512(const float *g, int64_t stride, int64_t C, double *col_acc, double *ra, float eps)
{
    const __m256 veps = _mm256_set1_ps(eps);
    __m512d a0 = _mm512_loadu_pd(ra), a1 = _mm512_loadu_pd(ra + 8);
    for (int64_t c = 0; c + 8 <= C; c += 8) {
        __m256 r[8], s[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256 x = _mm256_loadu_ps(g + k * stride + c), y = _mm256_loadu_ps(g + (k + 8) * stride + c);
            r[k] = _mm256_add_ps(_mm256_mul_ps(x, x), veps);
            s[k] = _mm256_add_ps(_mm256_mul_ps(y, y), veps);
        }
        __m512d ca = _mm512_loadu_pd(col_acc + c);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            ca = _mm512_add_pd(ca, _mm512_cvtps_pd(r[k]));
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            ca = _mm512_add_pd(ca, _mm512_cvtps_pd(s[k]));
        _mm512_storeu_pd(col_acc + c, ca);
        transpose8(r);
        transpose8(s);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(r[j]));
            a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(s[j]));
        }
    }
    _mm512_storeu_pd(ra, a0);
    _mm512_storeu_pd(ra + 8, a1);
}
#endif

/* The partials of Σ x^2 of nc chunks whose values lie at x + c*stride (the last chunk holds
 * the rest of len values): 16 side by side where 16 full chunks are at hand. */
#define AF_STRIDE (ADAFACTOR_SUM_CHUNK + 16) /* of the staged U in pass C (padded) */
static void chunk_partials(const float *x, int64_t stride, int64_t len, int64_t nc, double *part)
{
    int64_t c = 0;
#ifdef OPTIM_HAVE_AVX512_PATH
    if (cpu_path() >= OPTIM_CPU_PATH_AVX512)
        for (; c + 16 <= nc && (c + 16) * ADAFACTOR_SUM_CHUNK <= len; c += 16) {
            double acc[16] = {0.0};
            sums16_avx512(x + c * stride, stride, ADAFACTOR_SUM_CHUNK, acc);
            memcpy(part + c, acc, sizeof acc);
        }
#endif
    for (; c + 8 <= nc && (c + 8) * ADAFACTOR_SUM_CHUNK <= len; c += 8) {
        double acc[8] = {0.0};
        sums8_portable(x + c * stride, stride, ADAFACTOR_SUM_CHUNK, acc);
        memcpy(part + c, acc, sizeof acc);
    }
    for (; c < nc; c++) {
        int64_t end = (c + 1) * ADAFACTOR_SUM_CHUNK < len ? (c + 1) * ADAFACTOR_SUM_CHUNK : len;
        part[c] = sum_squares_chunk(x + c * stride, end - c * ADAFACTOR_SUM_CHUNK);
    }
}

/* Element-wise pieces, vectorised (`omp simd`, clones) with the expressions of optim_math.h. */
OPTIM_CPU_CLONES
static void af_u_seg(int64_t n, float rf, const float *restrict cf, const float *restrict g, float *restrict u)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        u[j] = (rf * cf[j]) * g[j];
}

OPTIM_CPU_CLONES
static void af_u_unfactored(int64_t n, const float *restrict g, const float *restrict v, float *restrict u)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        u[j] = adafactor_unfactored_u_one(g[j], v[j]);
}

OPTIM_CPU_CLONES
static void af_v_update(int64_t n, const float *restrict g, float *restrict v, const optim_group_scalars *sp)
{
    const optim_group_scalars s = *sp;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        v[j] = adafactor_ema_one(v[j], adafactor_sq_one(g[j], &s), &s);
}

/* r_factor, c_factor: 1/sqrtf(x/mean) and 1/sqrtf(x), as adafactor_factored_u_one(). */
OPTIM_CPU_CLONES
static void af_inv_sqrt(int64_t n, const float *restrict x, float mean, int divide, float *restrict out)
{
    if (divide) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            out[j] = 1.0f / sqrtf(x[j] / mean);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            out[j] = 1.0f / sqrtf(x[j]);
    }
}

/* adafactor_apply_one() over n elements (m: the momentum, when the group uses beta1). */
OPTIM_CPU_CLONES
static void af_apply_u(int64_t n, float *restrict p, const float *restrict u, float *restrict m, float clip_div,
                       float alpha, const optim_group_scalars *sp)
{
    const float b1 = sp->af_beta1, ob1 = sp->af_one_minus_beta1, wda = -sp->af_wd * alpha;
    const int wd = sp->af_wd != 0.0f;
    if (m) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float uu = (u[j] / clip_div) * alpha;
            uu = (m[j] * b1) + (uu * ob1);
            m[j] = uu;
            float pp = wd ? p[j] + p[j] * wda : p[j];
            p[j] = pp - uu;
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float uu = (u[j] / clip_div) * alpha;
            float pp = wd ? p[j] + p[j] * wda : p[j];
            p[j] = pp - uu;
        }
    }
}

/* U of the flat elements [i0, i0 + len) into u, row segment by row segment. */
static void af_u_range(const optim_tensor_desc *d, const adafactor_cpu_layout *w, int64_t i0, int64_t len, float *u)
{
    if (!d->factored) {
        af_u_unfactored(len, d->g + i0, d->v + i0, u);
        return;
    }
    int64_t R = d->rows, C = d->cols, RC = R * C;
    for (int64_t i = i0; i < i0 + len;) {
        int64_t b = i / RC, r = (i - b * RC) / C, c = i - b * RC - r * C;
        int64_t seg = C - c < i0 + len - i ? C - c : i0 + len - i;
        af_u_seg(seg, w->rf[b * R + r], w->cf + b * C + c, d->g + i, u + (i - i0));
        i += seg;
    }
}

/* Pass B for a factored tensor: the row and column statistics and the batch means of rows. */
static void af_factored_stats(const optim_tensor_desc *d, const optim_group_scalars *s, const adafactor_cpu_layout *w)
{
    int64_t R = d->rows, C = d->cols;
    const float eps = s->af_eps1;
    double *col_acc = w->col_acc;
    for (int64_t b = 0; b < d->batch; b++) {
        const float *g = d->g + b * R * C;
        float *row = d->row + b * R, *col = d->col + b * C;
        memset(col_acc, 0, (size_t)C * sizeof *col_acc);
        int64_t r = 0;
        double ra[16];
#ifdef OPTIM_HAVE_AVX512_PATH
        if (cpu_path() >= OPTIM_CPU_PATH_AVX512)
            for (; r + 16 <= R; r += 16) {
                memset(ra, 0, sizeof ra);
                rows16_avx512(g + r * C, C, C & ~(int64_t)7, col_acc, ra, eps);
                for (int64_t c = C & ~(int64_t)7; c < C; c++) /* the last columns, in order */
                    for (int k = 0; k < 16; k++) {
                        float sq = adafactor_sq_one(g[(r + k) * C + c], s);
                        ra[k] += sq;
                        col_acc[c] += sq;
                    }
                for (int k = 0; k < 16; k++)
                    row[r + k] = adafactor_ema_one(row[r + k], (float)(ra[k] / (double)C), s);
            }
#endif
        for (; r + 8 <= R; r += 8) {
            memset(ra, 0, 8 * sizeof *ra);
            rows8_portable(g + r * C, C, col_acc, ra, eps);
            for (int k = 0; k < 8; k++)
                row[r + k] = adafactor_ema_one(row[r + k], (float)(ra[k] / (double)C), s);
        }
        for (; r < R; r++) {
            double row_acc = 0.0;
            for (int64_t c = 0; c < C; c++) {
                float sq = adafactor_sq_one(g[r * C + c], s);
                row_acc += sq;
                col_acc[c] += sq;
            }
            row[r] = adafactor_ema_one(row[r], (float)(row_acc / (double)C), s);
        }
        for (int64_t c = 0; c < C; c++)
            col[c] = adafactor_ema_one(col[c], (float)(col_acc[c] / (double)R), s);
        double rsum = 0.0;
        for (int64_t k = 0; k < R; k++)
            rsum += row[k];
        w->r_mean[b] = (float)(rsum / (double)R);
        af_inv_sqrt(R, row, w->r_mean[b], 1, w->rf + b * R);
        af_inv_sqrt(C, col, 0.0f, 0, w->cf + b * C);
    }
}

static int adafactor_tensor_cpu(const optim_tensor_desc *d, const optim_group_scalars *s, float *ws,
                                int64_t ws_floats)
{
    const int64_t n = d->n, CH = ADAFACTOR_SUM_CHUNK, GR = AF_GROUP * (int64_t)ADAFACTOR_SUM_CHUNK;
    const int64_t chunks = (n + CH - 1) / CH, groups = (n + GR - 1) / GR;
    float *own = NULL;
    if (!ws || ws_floats < adafactor_cpu_floats(d)) { /* not sized by adafactor_workspace_floats() */
        ws = own = malloc((size_t)adafactor_cpu_floats(d) * sizeof(float));
        if (!own)
            return OCTET_ERR_NOMEM;
    }
    adafactor_cpu_layout w;
    w.part = (double *)ws;
    w.col_acc = w.part + chunks;
    w.r_mean = (float *)(w.col_acc + (d->factored ? d->cols : 0));
    w.rf = w.r_mean + d->batch;
    w.cf = w.rf + (d->factored ? d->batch * d->rows : 0);

    /* A: RMS(X) */
#pragma omp parallel for schedule(static) if (groups > 1)
    for (int64_t gi = 0; gi < groups; gi++) {
        int64_t i0 = gi * GR, len = n - i0 < GR ? n - i0 : GR;
        chunk_partials(d->p + i0, CH, len, (len + CH - 1) / CH, w.part + gi * AF_GROUP);
    }
    double ssx = 0.0;
    for (int64_t c = 0; c < chunks; c++)
        ssx += w.part[c];
    double rms_x = sqrt(ssx / (double)n);
    float alpha = s->af_scale_parameter ? (float)((double)s->af_rho * fmax((double)s->af_eps2, rms_x)) : s->af_rho;

    /* B: statistics */
    if (d->factored)
        af_factored_stats(d, s, &w);
    else
        af_v_update(n, d->g, d->v, s);

    /* C: RMS(U) */
#pragma omp parallel for schedule(static) if (groups > 1)
    for (int64_t gi = 0; gi < groups; gi++) {
        float u[AF_GROUP * AF_STRIDE] __attribute__((aligned(64)));
        int64_t i0 = gi * GR, len = n - i0 < GR ? n - i0 : GR;
        for (int64_t i = 0; i < len; i += CH) {
            int64_t l = len - i < CH ? len - i : CH;
            af_u_range(d, &w, i0 + i, l, u + (i / CH) * AF_STRIDE);
        }
        chunk_partials(u, AF_STRIDE, len, (len + CH - 1) / CH, w.part + gi * AF_GROUP);
    }
    double ssu = 0.0;
    for (int64_t c = 0; c < chunks; c++)
        ssu += w.part[c];
    double rms_u = sqrt(ssu / (double)n);
    float clip_div = (float)fmax(1.0, rms_u / (double)s->af_clip);

    /* D: the update */
    if (s->af_use_beta1 && !d->m) { /* (no momentum buffer: the reference's shared dummy) */
        float dummy = 0.0f, u;
        for (int64_t i = 0; i < n; i++) {
            af_u_range(d, &w, i, 1, &u);
            d->p[i] = adafactor_apply_one(d->p[i], u, clip_div, alpha, &dummy, s);
        }
    } else {
        optim_group_scalars sd = *s;
        sd.af_use_beta1 = d->m != NULL && s->af_use_beta1;
#pragma omp parallel for schedule(static) if (groups > 1)
        for (int64_t gi = 0; gi < groups; gi++) {
            float u[ADAFACTOR_SUM_CHUNK] __attribute__((aligned(64)));
            int64_t end = (gi + 1) * GR < n ? (gi + 1) * GR : n;
            for (int64_t i = gi * GR; i < end; i += CH) {
                int64_t len = end - i < CH ? end - i : CH;
                af_u_range(d, &w, i, len, u);
                af_apply_u(len, d->p + i, u, sd.af_use_beta1 ? d->m + i : NULL, clip_div, alpha, &sd);
            }
        }
    }
    free(own);
    return OCTET_OK;
}

static int adafactor_cpu(const optim_launch *L)
{
    int rc = OCTET_OK;
    for (int t = 0; t < L->n_tensors && rc == OCTET_OK; t++)
        rc = adafactor_tensor_cpu(&L->tensors[t], &L->groups[L->tensors[t].group], L->workspace,
                                  L->workspace_floats);
    return rc;
}

/* ------------------------------------------------------------------ stand-alone quantizer */

static int quantize_cpu(const float *x, int64_t n, int block, const float *code, int is_signed, uint8_t *codes,
                        float *absmax, void *stream)
{
    (void)stream;
    int64_t nb = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (nb > 64)
    for (int64_t b = 0; b < nb; b++) {
        int64_t start = b * block, end = start + block < n ? start + block : n;
        float a = 0.0f;
        for (int64_t i = start; i < end; i++)
            a = fmaxf(a, fabsf(x[i]));
        absmax[b] = a;
        const float r = quant_inv_absmax(a);
        for (int64_t i = start; i < end; i++)
            codes[i] = quant_plain_one(code, x[i], a, r, is_signed);
    }
    return OCTET_OK;
}

static int dequantize_cpu(const uint8_t *codes, int64_t n, int block, const float *code, const float *absmax,
                          float *x, void *stream)
{
    (void)stream;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        x[i] = quant_dequant_one(code, codes[i], absmax[i / block]);
    return OCTET_OK;
}

static const optim_kernels cpu_kernels = {
    "cpu", adam8_cpu, adam32_cpu, sgd_cpu, adafactor_cpu, quantize_cpu, dequantize_cpu,
};

const optim_kernels *optim_kernels_cpu(void) { return &cpu_kernels; }
