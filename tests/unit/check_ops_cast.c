/* check_ops_cast.c: the cast suite (suite_ops_cast): to_half / from_half, fp32 <-> bf16 and
 * fp16 storage, on the CPU twin, against three things nobody here wrote:
 *  - hand-picked values with their bits worked out from the formats' definitions (ties to even
 *    both ways, the largest finite values and the overflow ties, fp16 subnormals and their ties,
 *    float subnormals, +-0, +-inf, NaN);
 *  - the x86 F16C instructions (_cvtss_sh with round-to-nearest, _cvtsh_ss) over every fp16
 *    pattern and a million random floats, when the CPU has them (__builtin_cpu_supports), NaN
 *    bits included: both keep the sign and the top of the payload and set the quiet bit;
 *  - PyTorch (tests/reference/half_ref.py, run with /usr/bin/python3 or OCTET_TORCH_PYTHON):
 *    x.to(torch.bfloat16 / torch.float16) of 38k floats (edge cases, normals at scales 1e-9 ..
 *    1e6, random bit patterns) and every 16-bit pattern back to float32. Bits must match, except
 *    that a NaN need only give a NaN (torch canonicalises NaN payloads). As the other reference
 *    tests here, torch is a hard requirement: without it this test FAILS with the reason.
 * Plus round trips (every 16-bit pattern survives from_half then to_half; to_half is
 * idempotent and within half an ulp on random floats), the OpenMP chunking (a size over
 * several chunks against the per-element functions) and the argument checks. */
#include "config.h"
#include "check_ops.h"
#include "ops_math.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_F16C_TEST 1
#endif

static uint16_t *hbuf(int64_t n)
{
    uint16_t *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* to_half of n floats through the CPU table. */
static void to_half(uint16_t *out, const float *x, int64_t n, int kind)
{
    ck_assert_int_eq(ops_test_table()->to_half(ops_test_device(), out, x, n, kind), OCTET_OK);
}

static void from_half(float *out, const uint16_t *h, int64_t n, int kind)
{
    ck_assert_int_eq(ops_test_table()->from_half(ops_test_device(), out, h, n, kind), OCTET_OK);
}

static int is_nan_half(uint16_t h, int kind)
{
    return kind == OPS_HALF_FP16 ? (h & 0x7c00) == 0x7c00 && (h & 0x03ff) : (h & 0x7f80) == 0x7f80 && (h & 0x007f);
}

/* ------------------------------------------------------------------ known values */

typedef struct known {
    uint32_t x;             /* float bits */
    uint16_t bf16, fp16;    /* the bits by the formats' definitions, round to nearest even */
    const char *why;
} known;

static const known knowns[] = {
    {0x00000000, 0x0000, 0x0000, "+0"},
    {0x80000000, 0x8000, 0x8000, "-0"},
    {0x3F800000, 0x3F80, 0x3C00, "1"},
    {0xBF800000, 0xBF80, 0xBC00, "-1"},
    {0x3F808000, 0x3F80, 0x3C04, "1 + 2^-8: bf16 tie, even is down"},
    {0x3F818000, 0x3F82, 0x3C0C, "1 + 3 2^-8: bf16 tie, even is up"},
    {0x3F808001, 0x3F81, 0x3C04, "just above a bf16 tie"},
    {0x3F801000, 0x3F80, 0x3C00, "1 + 2^-11: fp16 tie, even is down"},
    {0x3F803000, 0x3F80, 0x3C02, "1 + 3 2^-11: fp16 tie, even is up"},
    {0x3F801001, 0x3F80, 0x3C01, "just above an fp16 tie"},
    {0xBF803000, 0xBF80, 0xBC02, "a negative fp16 tie"},
    {0x3FFFF000, 0x4000, 0x4000, "rounding carries into the exponent"},
    {0x3FFF8000, 0x4000, 0x3FFC, "bf16 tie at 2: odd 0x3FFF rounds up"},
    {0x477FE000, 0x4780, 0x7BFF, "65504, the largest fp16"},
    {0x477FEFFF, 0x4780, 0x7BFF, "just below the fp16 overflow tie"},
    {0x477FF000, 0x4780, 0x7C00, "65520: tie between 65504 (odd) and 65536: inf"},
    {0xC77FF000, 0xC780, 0xFC00, "-65520: -inf"},
    {0x47800000, 0x4780, 0x7C00, "65536: fp16 overflow"},
    {0x7F7F0000, 0x7F7F, 0x7C00, "the largest bf16"},
    {0x7F7F7FFF, 0x7F7F, 0x7C00, "just below the bf16 overflow tie"},
    {0x7F7F8000, 0x7F80, 0x7C00, "bf16 overflow tie: odd 0x7F7F rounds to inf"},
    {0x7F7FFFFF, 0x7F80, 0x7C00, "FLT_MAX"},
    {0x7F800000, 0x7F80, 0x7C00, "+inf"},
    {0xFF800000, 0xFF80, 0xFC00, "-inf"},
    {0x33800000, 0x3380, 0x0001, "2^-24: the smallest fp16 subnormal"},
    {0xB3800000, 0xB380, 0x8001, "-2^-24"},
    {0x33000000, 0x3300, 0x0000, "2^-25: tie between 0 and 2^-24, even is 0"},
    {0x33000001, 0x3300, 0x0001, "just above 2^-25"},
    {0x32FFFFFF, 0x3300, 0x0000, "just below 2^-25"},
    {0x33C00000, 0x33C0, 0x0002, "3 2^-25: tie between 1 and 2 units, even is 2"},
    {0x34200000, 0x3420, 0x0002, "5 2^-25: tie between 2 and 3 units, even is 2"},
    {0x387FC000, 0x3880, 0x03FF, "1023 2^-24: the largest fp16 subnormal"},
    {0x387FE000, 0x3880, 0x0400, "tie between the largest subnormal and 2^-14: up"},
    {0x38800000, 0x3880, 0x0400, "2^-14: the smallest fp16 normal"},
    {0x2F800000, 0x2F80, 0x0000, "2^-32: fp16 underflow"},
    {0x00000001, 0x0000, 0x0000, "the smallest float subnormal"},
    {0x00008000, 0x0000, 0x0000, "float subnormal at a bf16 tie, even is 0"},
    {0x00008001, 0x0001, 0x0000, "just above it"},
    {0x00018000, 0x0002, 0x0000, "float subnormal at a bf16 tie, even is up"},
    {0x007FFFFF, 0x0080, 0x0000, "the largest float subnormal: rounds to FLT_MIN in bf16"},
    {0x80000001, 0x8000, 0x8000, "negative float subnormal: -0"},
    {0x7FC00000, 0x7FC0, 0x7E00, "quiet NaN"},
    {0xFFC00000, 0xFFC0, 0xFE00, "negative quiet NaN: sign kept"},
    {0x7F800001, 0x7FC0, 0x7E00, "signalling NaN: made quiet (its payload bits are below fp16's)"},
    {0x7FA02000, 0x7FE0, 0x7F01, "NaN payload: top bits kept, quiet bit set"},
};

START_TEST(test_half_known_values)
{
    int n = (int)(sizeof knowns / sizeof knowns[0]);
    float *x = fbuf(n);
    uint16_t *hb = hbuf(n), *hh = hbuf(n);
    for (int i = 0; i < n; i++)
        x[i] = ops_bits_float((int32_t)knowns[i].x);
    to_half(hb, x, n, OPS_HALF_BF16);
    to_half(hh, x, n, OPS_HALF_FP16);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (hb[i] != knowns[i].bf16 && bad++ < 10)
            fprintf(stderr, "bf16 of 0x%08x (%s): got 0x%04x want 0x%04x\n", knowns[i].x, knowns[i].why, hb[i],
                    knowns[i].bf16);
        if (hh[i] != knowns[i].fp16 && bad++ < 10)
            fprintf(stderr, "fp16 of 0x%08x (%s): got 0x%04x want 0x%04x\n", knowns[i].x, knowns[i].why, hh[i],
                    knowns[i].fp16);
    }
    ck_assert_int_eq(bad, 0);

    /* the way back: exact values */
    static const struct { uint16_t h; int kind; uint32_t want; } back[] = {
        {0x3F80, OPS_HALF_BF16, 0x3F800000}, {0x8000, OPS_HALF_BF16, 0x80000000}, {0x7F7F, OPS_HALF_BF16, 0x7F7F0000},
        {0x0001, OPS_HALF_BF16, 0x00010000}, {0xFF80, OPS_HALF_BF16, 0xFF800000}, {0x7FC0, OPS_HALF_BF16, 0x7FC00000},
        {0x3C00, OPS_HALF_FP16, 0x3F800000}, {0x8000, OPS_HALF_FP16, 0x80000000}, {0x7BFF, OPS_HALF_FP16, 0x477FE000},
        {0x0001, OPS_HALF_FP16, 0x33800000}, {0x8001, OPS_HALF_FP16, 0xB3800000}, {0x03FF, OPS_HALF_FP16, 0x387FC000},
        {0x0200, OPS_HALF_FP16, 0x38000000}, {0x0400, OPS_HALF_FP16, 0x38800000}, {0x7C00, OPS_HALF_FP16, 0x7F800000},
        {0xFC00, OPS_HALF_FP16, 0xFF800000}, {0x7E00, OPS_HALF_FP16, 0x7FC00000}, {0x7D00, OPS_HALF_FP16, 0x7FE00000},
        {0x3555, OPS_HALF_FP16, 0x3EAAA000},
    };
    int nb = (int)(sizeof back / sizeof back[0]);
    for (int i = 0; i < nb; i++) {
        float f;
        from_half(&f, &back[i].h, 1, back[i].kind);
        ck_assert_msg(ops_float_bits(f) == back[i].want, "%s 0x%04x -> 0x%08x, want 0x%08x",
                      back[i].kind ? "fp16" : "bf16", back[i].h, ops_float_bits(f), back[i].want);
    }
    free(x), free(hb), free(hh);
}
END_TEST

/* ------------------------------------------------------------------ round trips, chunking */

START_TEST(test_half_round_trip)
{
    int kind = _i; /* OPS_HALF_BF16, OPS_HALF_FP16 */
    /* every 16-bit pattern survives from_half -> to_half (NaN comes back quiet) */
    uint16_t *pat = hbuf(65536), *again = hbuf(65536);
    float *f = fbuf(65536);
    for (int i = 0; i < 65536; i++)
        pat[i] = (uint16_t)i;
    from_half(f, pat, 65536, kind);
    to_half(again, f, 65536, kind);
    uint16_t quiet = kind == OPS_HALF_FP16 ? 0x0200 : 0x0040;
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        uint16_t want = is_nan_half(pat[i], kind) ? (uint16_t)(pat[i] | quiet) : pat[i];
        if (again[i] != want && bad++ < 5)
            fprintf(stderr, "round trip 0x%04x -> %g -> 0x%04x\n", pat[i], f[i], again[i]);
        if (isnan(f[i]) != is_nan_half(pat[i], kind) && bad++ < 5)
            fprintf(stderr, "0x%04x -> %g: NaN-ness changed\n", pat[i], f[i]);
    }
    ck_assert_int_eq(bad, 0);

    /* random floats over several OpenMP chunks: the entry equals the per-element function at
     * every index (the chunk seams included), to_half is idempotent, and the error is at most
     * half an ulp of the format (fp16 subnormals: half of 2^-24) */
    const int64_t N = 100003;
    test_rng r;
    rng_seed(&r, 77 + (uint64_t)kind);
    float *x = frand(&r, N, kind == OPS_HALF_FP16 ? 100.0f : 1e3f), *y = fbuf(N);
    uint16_t *h = hbuf(N), *h2 = hbuf(N);
    to_half(h, x, N, kind);
    from_half(y, h, N, kind);
    to_half(h2, y, N, kind);
    /* half an ulp of x, 2^(e-8) (bf16: 7 fraction bits) or 2^(e-11) (fp16: 10), with 2^e <= |x| */
    double rel = kind == OPS_HALF_FP16 ? ldexp(1.0, -11) : ldexp(1.0, -8);
    bad = 0;
    for (int64_t i = 0; i < N; i++) {
        uint16_t ref = half_from_float_one(x[i], kind == OPS_HALF_FP16);
        double err = fabs((double)y[i] - (double)x[i]);
        int small = kind == OPS_HALF_FP16 && fabs((double)x[i]) < ldexp(1.0, -14);
        double allow = small ? ldexp(1.0, -25) : rel * fabs((double)x[i]);
        if ((h[i] != ref || h2[i] != h[i] || !(err <= allow)) && bad++ < 5)
            fprintf(stderr, "x[%lld] = %.9g: 0x%04x (per element 0x%04x), back %.9g, again 0x%04x\n", (long long)i,
                    x[i], h[i], ref, y[i], h2[i]);
    }
    ck_assert_int_eq(bad, 0);
    free(pat), free(again), free(f), free(x), free(y), free(h), free(h2);
}
END_TEST

START_TEST(test_half_rejects_bad_arguments)
{
    const ops_table *t = ops_test_table();
    device *d = ops_test_device();
    float f[4] = {1, 2, 3, 4};
    uint16_t h[4] = {0};
    ck_assert_int_eq(t->to_half(d, h, f, 4, 2), OCTET_ERR_ARG);
    ck_assert_int_eq(t->to_half(d, h, f, 4, -1), OCTET_ERR_ARG);
    ck_assert_int_eq(t->from_half(d, f, h, 4, 2), OCTET_ERR_ARG);
    ck_assert_int_eq(t->to_half(d, h, f, 0, OPS_HALF_BF16), OCTET_ERR_ARG);
    ck_assert_int_eq(t->from_half(d, f, h, -3, OPS_HALF_FP16), OCTET_ERR_ARG);
    ck_assert_int_eq(t->to_half(d, NULL, f, 4, OPS_HALF_BF16), OCTET_ERR_ARG);
    ck_assert_int_eq(t->to_half(d, h, NULL, 4, OPS_HALF_BF16), OCTET_ERR_ARG);
    ck_assert_int_eq(t->from_half(d, NULL, h, 4, OPS_HALF_BF16), OCTET_ERR_ARG);
    ck_assert_int_eq(t->from_half(d, f, NULL, 4, OPS_HALF_FP16), OCTET_ERR_ARG);
    ck_assert(h[0] == 0 && f[0] == 1.0f); /* nothing written */
}
END_TEST

/* ------------------------------------------------------------------ against F16C */

#ifdef HAVE_F16C_TEST
__attribute__((target("f16c"))) static uint16_t f16c_to(float x)
{
    return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float f16c_from(uint16_t h) { return _cvtsh_ss(h); }
#endif

START_TEST(test_fp16_matches_f16c)
{
#ifdef HAVE_F16C_TEST
    if (!__builtin_cpu_supports("f16c")) {
        test_skip("fp16 vs F16C: this CPU has no F16C instructions to compare with");
        return;
    }
    /* every fp16 pattern to float, NaN bits included */
    uint16_t *pat = hbuf(65536);
    float *f = fbuf(65536);
    for (int i = 0; i < 65536; i++)
        pat[i] = (uint16_t)i;
    from_half(f, pat, 65536, OPS_HALF_FP16);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        uint32_t want = ops_float_bits(f16c_from(pat[i]));
        if (ops_float_bits(f[i]) != want && bad++ < 5)
            fprintf(stderr, "fp16 0x%04x: ours 0x%08x, F16C 0x%08x\n", pat[i], ops_float_bits(f[i]), want);
    }
    ck_assert_int_eq(bad, 0);
    /* a million floats: random bits (every exponent, NaNs) and values dense around fp16's
     * subnormal range, its normal range and its overflow threshold */
    const int64_t N = 1 << 20;
    float *x = fbuf(N);
    uint16_t *h = hbuf(N);
    test_rng r;
    rng_seed(&r, 16);
    for (int64_t i = 0; i < N; i++) {
        uint64_t u = rng_u64(&r);
        switch (i % 4) {
        case 0: x[i] = ops_bits_float((int32_t)(uint32_t)u); break;
        case 1: x[i] = ldexpf((float)(u >> 40) / 16777216.0f, -26 + (int)(u % 14)); break; /* [2^-26, 2^-12) */
        case 2: x[i] = ops_bits_float((int32_t)(0x38000000u + (uint32_t)(u % 0x0F800000u))); break; /* 2^-15 .. 2^16 */
        default: x[i] = 65504.0f + (float)((int)(u % 64) - 16) + (float)(u >> 40) / 16777216.0f; break;
        }
        if (u & (1ull << 63))
            x[i] = -x[i];
    }
    to_half(h, x, N, OPS_HALF_FP16);
    bad = 0;
    for (int64_t i = 0; i < N; i++) {
        uint16_t want = f16c_to(x[i]);
        if (h[i] != want && bad++ < 5)
            fprintf(stderr, "fp16 of 0x%08x (%.9g): ours 0x%04x, F16C 0x%04x\n", ops_float_bits(x[i]), x[i], h[i], want);
    }
    ck_assert_int_eq(bad, 0);
    printf("fp16 vs F16C: %d patterns back, %lld floats to fp16: bit-identical\n", 65536, (long long)N);
    free(pat), free(f), free(x), free(h);
#else
    test_skip("fp16 vs F16C: not an x86-64 GCC build, no F16C instructions to compare with");
#endif
}
END_TEST

/* ------------------------------------------------------------------ against PyTorch */

/* Runs half_ref.py into a scratch file and reads it; fails the test with the reason otherwise. */
static unsigned char *torch_reference(size_t *len)
{
    char path[1024], log[1100], args[1100], err[1024];
    snprintf(path, sizeof path, "%s/tests/unit/half_ref.XXXXXX", test_builddir());
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "cannot create %s", path);
    close(fd);
    snprintf(log, sizeof log, "%s.log", path);
    snprintf(args, sizeof args, "'%s'", path);
    int rc = test_run_torch_script("half_ref.py", args, log, err, sizeof err);
    if (rc != 0)
        unlink(path);
    ck_assert_msg(rc == 0, "%s", err);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);
    *len = (size_t)n;
    return buf;
}

START_TEST(test_half_matches_torch)
{
    size_t len;
    unsigned char *buf = torch_reference(&len);
    ck_assert(len >= 12 && !memcmp(buf, "OCTHALF1", 8));
    uint32_t n;
    memcpy(&n, buf + 8, 4);
    ck_assert_uint_eq(len, 12 + (size_t)n * 8 + 2 * 65536 * 4);
    uint32_t *xb = malloc((size_t)n * 4);
    uint16_t *tb = hbuf(n), *th = hbuf(n), *ob = hbuf(n), *oh = hbuf(n);
    uint32_t *back = malloc(2 * 65536 * 4);
    ck_assert(xb && back);
    memcpy(xb, buf + 12, (size_t)n * 4);
    memcpy(tb, buf + 12 + (size_t)n * 4, (size_t)n * 2);
    memcpy(th, buf + 12 + (size_t)n * 6, (size_t)n * 2);
    memcpy(back, buf + 12 + (size_t)n * 8, 2 * 65536 * 4);
    float *x = fbuf(n);
    memcpy(x, xb, (size_t)n * 4);
    to_half(ob, x, n, OPS_HALF_BF16);
    to_half(oh, x, n, OPS_HALF_FP16);
    int bad = 0, nans = 0;
    for (uint32_t i = 0; i < n; i++) {
        int nan = isnan(x[i]);
        nans += nan;
        int okb = nan ? is_nan_half(ob[i], OPS_HALF_BF16) && is_nan_half(tb[i], OPS_HALF_BF16) : ob[i] == tb[i];
        int okh = nan ? is_nan_half(oh[i], OPS_HALF_FP16) && is_nan_half(th[i], OPS_HALF_FP16) : oh[i] == th[i];
        if (!okb && bad++ < 5)
            fprintf(stderr, "bf16 of 0x%08x: ours 0x%04x torch 0x%04x\n", xb[i], ob[i], tb[i]);
        if (!okh && bad++ < 5)
            fprintf(stderr, "fp16 of 0x%08x: ours 0x%04x torch 0x%04x\n", xb[i], oh[i], th[i]);
    }
    ck_assert_msg(bad == 0, "%d conversions differ from torch's", bad);
    ck_assert_int_gt(nans, 0); /* the random bit patterns and the edge cases have some */
    /* every pattern back to float32 */
    uint16_t *pat = hbuf(65536);
    float *f = fbuf(65536);
    for (int i = 0; i < 65536; i++)
        pat[i] = (uint16_t)i;
    for (int kind = 0; kind < 2; kind++) {
        from_half(f, pat, 65536, kind);
        for (int i = 0; i < 65536; i++) {
            uint32_t want = back[kind * 65536 + i];
            int ok = isnan(f[i]) ? isnan(ops_bits_float((int32_t)want)) : ops_float_bits(f[i]) == want;
            if (!ok && bad++ < 5)
                fprintf(stderr, "%s 0x%04x to float: ours 0x%08x torch 0x%08x\n", kind ? "fp16" : "bf16", i,
                        ops_float_bits(f[i]), want);
        }
    }
    ck_assert_msg(bad == 0, "%d conversions back differ from torch's", bad);
    printf("half vs torch: %u floats to bf16 and fp16 (%d NaN), 2 x 65536 patterns back: identical\n", n, nans);
    free(buf), free(xb), free(tb), free(th), free(ob), free(oh), free(back), free(x), free(pat), free(f);
}
END_TEST

Suite *suite_ops_cast(void)
{
    Suite *s = suite_create("ops_cast");
    TCase *tc = tcase_create("half");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_half_known_values);
    tcase_add_loop_test(tc, test_half_round_trip, 0, 2);
    tcase_add_test(tc, test_half_rejects_bad_arguments);
    tcase_add_test(tc, test_fp16_matches_f16c);
    tcase_add_test(tc, test_half_matches_torch);
    suite_add_tcase(s, tc);
    return s;
}
