/* optim_cpu.c: the CPU twin of every optimizer rule and of block-wise (de)quantization.
 *
 * Readable loops over the launch lists of optim_impl.h, calling the per-element math of
 * optim_math.h and quant_math.h exactly as the CUDA twin does, so that both produce the same
 * bits: 8-bit codes and absmax identical, parameters within 1 ulp. OpenMP splits independent
 * units (quantization blocks, fp32 chunks, Adafactor rows) across cores; every reduction that
 * sums (Adafactor's means and RMS) runs in a fixed order in double, so the result does not
 * depend on the thread count. Compiled with -ffp-contract=off: no fused multiply-adds.
 *
 * The 8-bit step mirrors bitsandbytes' kOptimizerStatic8bit2StateBlockwise per block: the tail
 * of a partial last block is padded with g = 0, code1 = 128, code2 = 0 and takes part in the new
 * absmax, as on the GPU. */
#include "config.h"
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
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ fast nearest-code search */

/* The binary search of quant_nearest_one() returns, for every x, the number of map midpoints
 * mid[k] = (code[k] + code[k+1]) * 0.5f that lie below x, where an exact tie x == mid[k] counts
 * as "below" when k is odd (the search lands on the even neighbour); NaN gives 0. (Proof: the
 * search visits both odd neighbours of its final even pivot p, so code[p-1] < x <= code[p+1],
 * and its last test is against mid[p-1] or mid[p].) We count the midpoints with a table indexed
 * by the top 16 bits of x in a sign-monotone encoding, then a few branch-free comparisons.
 * check_optim.c asserts equality with the search on millions of inputs and every midpoint. */
typedef struct quant_lut {
    float map[QMAP_SIZE];      /* the map this table was built from */
    float mid[QMAP_SIZE];      /* (255) midpoints, then a NaN sentinel */
    int32_t below[1 << 16];    /* midpoints strictly below every float of the bucket (int32 so
                                * vector gathers can read it) */
    int refine;                /* most midpoints inside one bucket */
    int ready;
} quant_lut;

static uint32_t monotone_key(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static void quant_lut_build(quant_lut *t, const float *map)
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
 * state brings its own maps). Guarded by a mutex; the tables are read-only while a step runs. */
static pthread_mutex_t lut_lock = PTHREAD_MUTEX_INITIALIZER;
static quant_lut lut_signed, lut_unsigned;

static const quant_lut *lut_for(quant_lut *t, const float *map)
{
    pthread_mutex_lock(&lut_lock);
    if (!t->ready || memcmp(t->map, map, sizeof t->map))
        quant_lut_build(t, map);
    pthread_mutex_unlock(&lut_lock);
    return t;
}

uint8_t optim_cpu_nearest_code(const float *map, float x, int is_signed)
{
    return quant_lut_nearest(lut_for(is_signed ? &lut_signed : &lut_unsigned, map), x);
}

/* ------------------------------------------------------------------ 8-bit Adam */

#define MAX_BLOCK 4096

/* The vectorisable part of one block: fresh moments from the old codes (tail already padded
 * by the caller), their new absmax, the parameter update from the fresh moments, and the
 * moments divided by the new absmax. Same float operations, in the same order, as the shared
 * helpers in optim_math.h (no contraction), so the result is bit-identical to them. */
OPTIM_CPU_CLONES
static void adam8_block_math(int B, int valid, const float *restrict g, const uint8_t *restrict c1,
                             const uint8_t *restrict c2, float *restrict p, float *restrict m, float *restrict v,
                             const float *restrict q1, const float *restrict q2, float a1, float a2,
                             const optim_group_scalars *s, float *new1, float *new2)
{
    const float b1 = s->beta1, b2 = s->beta2, ob1 = 1.0f - s->beta1, ob2 = 1.0f - s->beta2;
    for (int j = 0; j < B; j++) {
        float gj = g[j];
        int finite = fabsf(gj) <= FLT_MAX; /* not NaN, not Inf */
        float mj = (q1[c1[j]] * a1) * b1 + ob1 * gj;
        float vj = (q2[c2[j]] * a2) * b2 + (ob2 * gj) * gj;
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

/* Codes of the fresh moments m, v (valid elements) given the block's new absmax n1 > 0 and
 * n2 > 0: quant_signed_state_one (with the sign fix) and quant_unsigned_state_one, through the
 * tables. Written without branches so the clones vectorise it with gathers. */
OPTIM_CPU_CLONES
static void adam8_block_codes(int valid, const float *restrict m, const float *restrict v, float n1, float n2,
                              const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                              uint8_t *restrict o1, uint8_t *restrict o2)
{
    const int32_t *restrict below1 = l1->below, *restrict below2 = l2->below;
    const float *restrict mid1 = l1->mid, *restrict mid2 = l2->mid;
    for (int j = 0; j < valid; j++) {
        float x1 = m[j] / n1, x2 = v[j] / n2;
        int32_t c1 = below1[monotone_key(x1) >> 16];
        float md1 = mid1[c1];
        c1 += (md1 < x1) | ((md1 == x1) & (c1 & 1));
        uint32_t sm, sq;
        float qv = q1[c1];
        memcpy(&sm, &m[j], sizeof sm);
        memcpy(&sq, &qv, sizeof sq);
        int32_t fix = ((sm ^ sq) >> 31) ? (m[j] > 0.0f ? 1 : -1) : 0;
        o1[j] = (uint8_t)(c1 + fix);
        int32_t c2 = below2[monotone_key(x2) >> 16];
        float md2 = mid2[c2];
        c2 += (md2 < x2) | ((md2 == x2) & (c2 & 1));
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
    const __m512 b1 = _mm512_set1_ps(s->beta1), b2 = _mm512_set1_ps(s->beta2);
    const __m512 ob1 = _mm512_set1_ps(1.0f - s->beta1), ob2 = _mm512_set1_ps(1.0f - s->beta2);
    const __m512 va1 = _mm512_set1_ps(a1), va2 = _mm512_set1_ps(a2), big = _mm512_set1_ps(FLT_MAX);
    __m512 acc1 = _mm512_set1_ps(-FLT_MAX), acc2 = acc1;
    for (int j = 0; j < B; j += 16) {
        __m512 gj = _mm512_loadu_ps(g + j);
        __m512i i1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c1 + j)));
        __m512i i2 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c2 + j)));
        __m512 d1 = _mm512_i32gather_ps(i1, q1, 4), d2 = _mm512_i32gather_ps(i2, q2, 4);
        __m512 mj = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(d1, va1), b1), _mm512_mul_ps(ob1, gj));
        __m512 vj = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(d2, va2), b2), _mm512_mul_ps(_mm512_mul_ps(ob2, gj), gj));
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

AVX512_TARGET
static void adam8_block_codes_avx512(int valid, const float *restrict m, const float *restrict v, float n1, float n2,
                                     const quant_lut *l1, const quant_lut *l2, const float *restrict q1,
                                     uint8_t *restrict o1, uint8_t *restrict o2)
{
    const __m512 vn1 = _mm512_set1_ps(n1), vn2 = _mm512_set1_ps(n2), zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), sign = _mm512_set1_epi32((int)0x80000000u);
    for (int j = 0; j < valid; j += 16) {
        __mmask16 live = valid - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (valid - j)) - 1);
        __m512 mj = _mm512_maskz_loadu_ps(live, m + j), vj = _mm512_maskz_loadu_ps(live, v + j);
        __m512 x1 = _mm512_div_ps(mj, vn1), x2 = _mm512_div_ps(vj, vn2);
        __m512i c1 = count_below_avx512(l1, x1);
        __m512 qv = _mm512_i32gather_ps(c1, q1, 4);
        __m512i diff = _mm512_xor_si512(_mm512_castps_si512(mj), _mm512_castps_si512(qv));
        __mmask16 flip = _mm512_test_epi32_mask(diff, sign);
        __mmask16 pos = _mm512_cmp_ps_mask(mj, zero, _CMP_GT_OQ);
        c1 = _mm512_mask_add_epi32(c1, flip & pos, c1, one);
        c1 = _mm512_mask_sub_epi32(c1, flip & (__mmask16)~pos, c1, one);
        __m512i c2 = count_below_avx512(l2, x2);
        c2 = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x2, x2, _CMP_ORD_Q), c2);
        _mm512_mask_cvtepi32_storeu_epi8(o1 + j, live, c1);
        _mm512_mask_cvtepi32_storeu_epi8(o2 + j, live, c2);
    }
}

static int force_portable;

void optim_cpu_force_portable(int on) { force_portable = on; }

static int cpu_has_avx512(void)
{
    static int has = -1;
    if (force_portable)
        return 0;
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
              !getenv("OCTET_NO_AVX512");
    }
    return has;
}
#else
void optim_cpu_force_portable(int on) { (void)on; }
static int cpu_has_avx512(void) { return 0; }
#endif

/* One quantization block b of tensor d; see the file comment for the tail padding. */
static void adam8_block(const optim_tensor_desc *d, int64_t b, int B, const optim_group_scalars *s,
                        const float *q1, const float *q2, const quant_lut *l1, const quant_lut *l2)
{
    float m[MAX_BLOCK], v[MAX_BLOCK]; /* (B) fresh fp32 moments of the block */
    float gpad[MAX_BLOCK];
    uint8_t c1pad[MAX_BLOCK], c2pad[MAX_BLOCK];
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
    int wide = cpu_has_avx512();
#ifdef OPTIM_HAVE_AVX512_PATH
    if (wide)
        adam8_block_math_avx512(B, valid, g, c1, c2, d->p + start, m, v, q1, q2, d->absmax1[b], d->absmax2[b], s,
                                &new1, &new2);
    else
#endif
        adam8_block_math(B, valid, g, c1, c2, d->p + start, m, v, q1, q2, d->absmax1[b], d->absmax2[b], s, &new1,
                         &new2);
    d->absmax1[b] = new1;
    d->absmax2[b] = new2;
    uint8_t *o1 = d->code1 + start, *o2 = d->code2 + start;
    if (new1 != 0.0f && new2 != 0.0f) {
#ifdef OPTIM_HAVE_AVX512_PATH
        if (wide)
            adam8_block_codes_avx512(valid, m, v, new1, new2, l1, l2, q1, o1, o2);
        else
#endif
            adam8_block_codes(valid, m, v, new1, new2, l1, l2, q1, o1, o2);
        return;
    }
    for (int j = 0; j < valid; j++) { /* an all-zero block: the guarded scalar path */
        o1[j] = quant_signed_state_one(q1, m[j], new1);
        o2[j] = quant_unsigned_state_one(q2, v[j], new2);
    }
}

static int adam8_cpu(const optim_launch *L)
{
    const quant_lut *l1 = lut_for(&lut_signed, L->qmap1), *l2 = lut_for(&lut_unsigned, L->qmap2);
    for (int t = 0; t < L->n_tensors; t++) {
        const optim_tensor_desc *d = &L->tensors[t];
        const optim_group_scalars *s = &L->groups[d->group];
        int64_t nb = d->n_units;
#pragma omp parallel for schedule(static) if (nb > 16)
        for (int64_t b = 0; b < nb; b++)
            adam8_block(d, b, L->block_size, s, L->qmap1, L->qmap2, l1, l2);
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

/* Runs fn over the units (OPTIM_CHUNK elements) of every tensor of the list, in parallel. */
static int fp32_rule_cpu(const optim_launch *L, int rule)
{
    for (int t = 0; t < L->n_tensors; t++) {
        const optim_tensor_desc *d = &L->tensors[t];
        const optim_group_scalars *s = &L->groups[d->group];
        int64_t units = d->n_units;
#pragma omp parallel for schedule(static) if (units > 8)
        for (int64_t u = 0; u < units; u++) {
            int64_t i = u * OPTIM_CHUNK, len = d->n - i < OPTIM_CHUNK ? d->n - i : OPTIM_CHUNK;
            if (rule == 0)
                adam_torch_range(d->p + i, d->g + i, d->m + i, d->v + i, len, s);
            else if (rule == 1)
                adam_bnb32_range(d->p + i, d->g + i, d->m + i, d->v + i, len, s);
            else
                sgd_range(d->p + i, d->g + i, d->m ? d->m + i : NULL, len, s);
        }
    }
    return OCTET_OK;
}

static int adam32_cpu(const optim_launch *L, int torch_order) { return fp32_rule_cpu(L, torch_order ? 0 : 1); }
static int sgd_cpu(const optim_launch *L) { return fp32_rule_cpu(L, 2); }

/* ------------------------------------------------------------------ Adafactor */

int64_t adafactor_workspace_floats(const optim_tensor_desc *tensors, int n)
{
    int64_t floats = 0;
    for (int t = 0; t < n; t++) {
        int64_t chunks = (tensors[t].n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
        /* doubles: one partial per chunk, one mean per batch, a few scalars */
        floats += 2 * (chunks + tensors[t].batch + 8);
    }
    return floats;
}

/* Sum of f(x[i]) for i < n in the fixed order both twins use: sequential double sums over
 * ADAFACTOR_SUM_CHUNK blocks, then a sequential sum of the block partials. */
static double sum_squares_fixed(const float *x, int64_t n)
{
    int64_t chunks = (n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
    double total = 0.0;
    for (int64_t c = 0; c < chunks; c++) {
        double part = 0.0;
        int64_t end = (c + 1) * ADAFACTOR_SUM_CHUNK < n ? (c + 1) * ADAFACTOR_SUM_CHUNK : n;
        for (int64_t i = c * ADAFACTOR_SUM_CHUNK; i < end; i++)
            part += (double)x[i] * (double)x[i];
        total += part;
    }
    return total;
}

/* Updates the factored statistics of tensor d, viewed as (batch, rows, cols); writes each
 * batch's mean of the new row statistics into r_mean. */
static void adafactor_factored_stats(const optim_tensor_desc *d, const optim_group_scalars *s, float *r_mean)
{
    int64_t R = d->rows, C = d->cols;
    double *col_acc = calloc((size_t)C, sizeof *col_acc);
    for (int64_t b = 0; b < d->batch; b++) {
        const float *g = d->g + b * R * C;
        memset(col_acc, 0, (size_t)C * sizeof *col_acc);
        for (int64_t r = 0; r < R; r++) {
            double row_acc = 0.0;
            for (int64_t c = 0; c < C; c++) {
                float sq = adafactor_sq_one(g[r * C + c], s);
                row_acc += sq;
                col_acc[c] += sq;
            }
            float *row = &d->row[b * R + r];
            *row = adafactor_ema_one(*row, (float)(row_acc / (double)C), s);
        }
        for (int64_t c = 0; c < C; c++) {
            float *col = &d->col[b * C + c];
            *col = adafactor_ema_one(*col, (float)(col_acc[c] / (double)R), s);
        }
        double rsum = 0.0;
        for (int64_t r = 0; r < R; r++)
            rsum += d->row[b * R + r];
        r_mean[b] = (float)(rsum / (double)R);
    }
    free(col_acc);
}

/* The unclipped update of element i (needs the statistics already updated). */
static float adafactor_u(const optim_tensor_desc *d, int64_t i, const float *r_mean)
{
    if (!d->factored)
        return adafactor_unfactored_u_one(d->g[i], d->v[i]);
    int64_t RC = d->rows * d->cols;
    int64_t b = i / RC, r = (i % RC) / d->cols, c = i % d->cols;
    return adafactor_factored_u_one(d->g[i], d->row[b * d->rows + r], r_mean[b], d->col[b * d->cols + c]);
}

static int adafactor_tensor_cpu(const optim_tensor_desc *d, const optim_group_scalars *s)
{
    float *r_mean = malloc((size_t)d->batch * sizeof *r_mean);
    float *u = malloc((size_t)d->n * sizeof *u);
    if (!r_mean || !u) {
        free(r_mean);
        free(u);
        return OCTET_ERR_NOMEM;
    }
    double rms_x = sqrt(sum_squares_fixed(d->p, d->n) / (double)d->n);
    float alpha = s->af_scale_parameter ? (float)((double)s->af_rho * fmax((double)s->af_eps2, rms_x)) : s->af_rho;
    if (d->factored) {
        adafactor_factored_stats(d, s, r_mean);
    } else {
        for (int64_t i = 0; i < d->n; i++)
            d->v[i] = adafactor_ema_one(d->v[i], adafactor_sq_one(d->g[i], s), s);
    }
    for (int64_t i = 0; i < d->n; i++)
        u[i] = adafactor_u(d, i, r_mean);
    double rms_u = sqrt(sum_squares_fixed(u, d->n) / (double)d->n);
    float clip_div = (float)fmax(1.0, rms_u / (double)s->af_clip);
    float dummy = 0.0f;
    for (int64_t i = 0; i < d->n; i++)
        d->p[i] = adafactor_apply_one(d->p[i], u[i], clip_div, alpha, d->m ? &d->m[i] : &dummy, s);
    free(r_mean);
    free(u);
    return OCTET_OK;
}

static int adafactor_cpu(const optim_launch *L)
{
    int rc = OCTET_OK;
    for (int t = 0; t < L->n_tensors && rc == OCTET_OK; t++)
        rc = adafactor_tensor_cpu(&L->tensors[t], &L->groups[L->tensors[t].group]);
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
        for (int64_t i = start; i < end; i++)
            codes[i] = quant_plain_one(code, x[i], a, is_signed);
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
