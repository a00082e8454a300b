/* check_ops_parity.c: the ops' CPU-vs-CUDA parity suite (suite_ops_parity, run by
 * run_ops_cuda). The CPU twin is the oracle (its own suites check it against double references
 * and finite differences): every ops_table entry runs on a CPU device and on a CUDA device from
 * the same seeded inputs, odd shapes throughout (sizes that are not multiples of a warp, a block
 * or a tile; 1-element cases), and the CUDA results must match.
 *
 * Two bounds per compared tensor, both stated at the call: element-wise
 * |ref - gpu| <= atol + rtol |ref| (llm.c's validate_result), and the relative norm
 * ||ref - gpu|| / ||ref|| (ggml's NMSE, square-rooted) <= relnorm. Where the twins perform the
 * same float operations in the same order the bound is exact equality, bit for bit: ReLU, add,
 * scale, the token copies, the fused bias + GELU, the embedding forward and backward (the CUDA
 * backward adds rows in the CPU twin's order), the dropout masks and values, MSE's per-sample losses and gradient, and
 * cross-entropy's predictions (NaN logits included), and the bf16 / fp16 casts both ways. Sums whose order differs (matmuls, row sums
 * in LayerNorm and softmax, the loss means) get fp32-rounding tolerances: about 1e-6 relative is
 * what they show; a wrong index, a missing term or a wrong mask is off by 1e-1 or more. sumsq
 * must agree within 1e-6 relative. The bf16 matmul switch is compared against fp32 with a bf16
 * bound (relative norm 2e-2). Every compared tensor prints one "parity ..." line with its worst
 * difference and relative norm, which tests/gpu/run.sh collects. Needs a CUDA device; runs in
 * one process (CK_NOFORK), the two devices opened once. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "ops.h"
#include "ops_cuda.h"
#include "testlib.h"

Suite *suite_ops_parity(void);

/* ------------------------------------------------------------------ harness */

static device *cpu_dev, *gpu_dev;
static const ops_table *CPU, *GPU;

/* Checked fixture: opens the CPU and CUDA devices once for the whole process. */
static void open_devices(void)
{
    if (gpu_dev)
        return;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &cpu_dev, &e), OCTET_OK);
    int rc = device_open("cuda", 0, &gpu_dev, &e);
    ck_assert_msg(rc == OCTET_OK, "device_open(cuda): %s", e.message);
    CPU = ops_for(cpu_dev);
    GPU = ops_for(gpu_dev);
    ck_assert_ptr_nonnull(CPU);
    ck_assert_ptr_nonnull(GPU);
    ck_assert_ptr_eq(GPU, ops_table_cuda());
    ck_assert_str_eq(GPU->name, "cuda");
}

typedef struct tol {
    double atol, rtol, relnorm;
} tol;

#define EXACT ((tol){0.0, 0.0, 0.0})

/* Host buffers (free()): testlib's fbuf / ibuf / frand, xmalloc for the 16-bit ones, copies. */
static void *xmalloc(size_t bytes)
{
    void *p = calloc(bytes ? bytes : 1, 1);
    ck_assert_ptr_nonnull(p);
    return p;
}
static float *hcopy(const float *x, int64_t n)
{
    float *p = fbuf(n);
    memcpy(p, x, sizeof(float) * (size_t)n);
    return p;
}

/* CUDA buffers (gfree()); gup* upload a host array, gzero is zero-filled. */
static void *gup(const void *h, size_t bytes)
{
    void *g = device_alloc(gpu_dev, bytes, MEM_WORKSPACE);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(device_upload(gpu_dev, g, h, bytes), OCTET_OK);
    return g;
}
static float *gupf(const float *h, int64_t n) { return gup(h, sizeof(float) * (size_t)n); }
static int *gupi(const int *h, int64_t n) { return gup(h, sizeof(int) * (size_t)n); }
static float *gzero(int64_t n)
{
    float *g = device_alloc(gpu_dev, sizeof(float) * (size_t)n, MEM_WORKSPACE);
    ck_assert_ptr_nonnull(g);
    return g;
}
static void gfree(void *g) { device_free(gpu_dev, g); }

/* A host copy of a CUDA buffer (free()). */
static float *gdown(const float *g, int64_t n)
{
    float *h = fbuf(n);
    ck_assert_int_eq(device_download(gpu_dev, h, g, sizeof(float) * (size_t)n), OCTET_OK);
    return h;
}
static int *gdowni(const int *g, int64_t n)
{
    int *h = ibuf(n);
    ck_assert_int_eq(device_download(gpu_dev, h, g, sizeof(int) * (size_t)n), OCTET_OK);
    return h;
}

/* Compares ref (CPU twin) with the CUDA result g (a device buffer) under t, prints the parity
 * line, fails the test on a violation. A zero tolerance means bit-identical. */
static void expect(const char *what, const float *ref, const float *g, int64_t n, tol t)
{
    float *got = gdown(g, n);
    size_t bad = 0;
    double num = 0.0, den = 0.0, maxd = 0.0;
    if (t.atol == 0.0 && t.rtol == 0.0 && t.relnorm == 0.0) {
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&ref[i], &got[i], sizeof(float)) != 0) {
                if (bad < 5)
                    fprintf(stderr, "%s[%lld]: want %.9g (%a) got %.9g (%a)\n", what, (long long)i, ref[i], ref[i],
                            got[i], got[i]);
                bad++;
            }
    } else {
        bad = count_mismatches(what, ref, got, (size_t)n, t.atol, t.rtol);
    }
    for (int64_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)got[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (!(fabs(d) <= maxd))
            maxd = fabs(d);
    }
    double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
    if (t.atol == 0.0 && t.rtol == 0.0 && t.relnorm == 0.0)
        printf("parity %-30s n=%-8lld max|diff| %-9.3g rel-norm %-9.3g (bit-exact)%s\n", what, (long long)n, maxd,
               rel, bad ? "  FAIL" : "");
    else
        printf("parity %-30s n=%-8lld max|diff| %-9.3g rel-norm %-9.3g (atol %.0e rtol %.0e norm %.0e)%s\n", what,
               (long long)n, maxd, rel, t.atol, t.rtol, t.relnorm, (bad || !(rel <= t.relnorm)) ? "  FAIL" : "");
    ck_assert_msg(bad == 0 && (t.relnorm == 0.0 || rel <= t.relnorm),
                  "%s: %zu of %lld elements outside the bound, relative norm %.3g", what, bad, (long long)n, rel);
    free(got);
}

/* Compares int results exactly. */
static void expect_ints(const char *what, const int *ref, const int *g, int64_t n)
{
    int *got = gdowni(g, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (ref[i] != got[i]) {
            if (bad < 5)
                fprintf(stderr, "%s[%lld]: want %d got %d\n", what, (long long)i, ref[i], got[i]);
            bad++;
        }
    printf("parity %-30s n=%-8lld mismatches %lld (exact)%s\n", what, (long long)n, (long long)bad,
           bad ? "  FAIL" : "");
    ck_assert_msg(bad == 0, "%s: %lld of %lld differ", what, (long long)bad, (long long)n);
    free(got);
}

#define BOTH_OK(cpu_call, gpu_call)                     \
    do {                                                \
        ck_assert_int_eq((cpu_call), OCTET_OK);         \
        ck_assert_int_eq((gpu_call), OCTET_OK);         \
    } while (0)

/* fp32 tolerances of the reductions; see the header. */
static const tol T_MATMUL = {5e-4, 1e-4, 1e-5};   /* K up to 771, entries O(1), outputs O(sqrt K) */
static const tol T_MATH = {1e-6, 4e-6, 1e-6};     /* GELU: both twins run ops_erff/ops_expf (kept loose) */
static const tol T_LOSS = {1e-5, 1e-5, 1e-5};     /* logsumexp: an ulp of lse (~1e-6) moves a row */
static const tol T_ROWSUM = {1e-5, 1e-5, 1e-6};   /* row statistics, normalised outputs */
static const tol T_ROWGRAD = {1e-5, 1e-4, 1e-5};  /* gradients through a row reduction */
static const tol T_ATTGRAD = {1e-5, 1e-3, 2e-5};  /* attention gradients: products of the above */

/* ------------------------------------------------------------------ matrix products */

static const int gemm_shapes[][3] = {{37, 29, 53}, {1, 7, 3}, {130, 257, 771}}; /* M, N, K */

/* _i = shape * 4 + trans_a + 2 trans_b; beta 0 over NaN (must be ignored), then beta 0.5. */
START_TEST(test_gemm)
{
    int M = gemm_shapes[_i / 4][0], N = gemm_shapes[_i / 4][1], K = gemm_shapes[_i / 4][2];
    int ta = _i & 1, tb = (_i >> 1) & 1;
    test_rng r;
    rng_seed(&r, 100 + (uint64_t)_i);
    float *a = frand(&r, (int64_t)M * K, 1.0f), *b = frand(&r, (int64_t)K * N, 1.0f);
    float *c0 = frand(&r, (int64_t)M * N, 1.0f), *cn = fbuf((int64_t)M * N);
    for (int64_t i = 0; i < (int64_t)M * N; i++)
        cn[i] = NAN;
    float *ga = gupf(a, (int64_t)M * K), *gb = gupf(b, (int64_t)K * N);
    for (int pass = 0; pass < 2; pass++) {
        float beta = pass ? 0.5f : 0.0f;
        float *c = hcopy(pass ? c0 : cn, (int64_t)M * N), *gc = gupf(c, (int64_t)M * N);
        BOTH_OK(CPU->gemm(cpu_dev, c, a, b, M, N, K, ta, tb, 0.75f, beta),
                GPU->gemm(gpu_dev, gc, ga, gb, M, N, K, ta, tb, 0.75f, beta));
        char what[64];
        snprintf(what, sizeof what, "gemm %dx%dx%d t%d%d b%.1f", M, N, K, ta, tb, beta);
        expect(what, c, gc, (int64_t)M * N, T_MATMUL);
        free(c);
        gfree(gc);
    }
    free(a), free(b), free(c0), free(cn);
    gfree(ga), gfree(gb);
}
END_TEST

static const int linear_shapes[][3] = {{37, 53, 29}, {130, 771, 257}, {1, 1, 1}}; /* M, K, N */

/* Linear layer forward (with and without bias) and backward: dinp overwritten and accumulated,
 * dweight and dbias accumulating onto random values, NULL gradients skipped. */
START_TEST(test_linear)
{
    int M = linear_shapes[_i][0], K = linear_shapes[_i][1], N = linear_shapes[_i][2];
    int64_t MK = (int64_t)M * K, NK = (int64_t)N * K, MN = (int64_t)M * N;
    test_rng r;
    rng_seed(&r, 200 + (uint64_t)_i);
    float *x = frand(&r, MK, 1.0f), *w = frand(&r, NK, 0.5f), *bias = frand(&r, N, 1.0f);
    float *dy = frand(&r, MN, 1.0f), *dx0 = frand(&r, MK, 1.0f), *dw0 = frand(&r, NK, 1.0f);
    float *db0 = frand(&r, N, 1.0f);
    float *gx = gupf(x, MK), *gw = gupf(w, NK), *gbias = gupf(bias, N), *gdy = gupf(dy, MN);

    for (int with_bias = 0; with_bias < 2; with_bias++) {
        float *y = fbuf(MN), *gy = gzero(MN);
        BOTH_OK(CPU->matmul_forward(cpu_dev, y, x, w, with_bias ? bias : NULL, M, K, N),
                GPU->matmul_forward(gpu_dev, gy, gx, gw, with_bias ? gbias : NULL, M, K, N));
        expect(with_bias ? "linear forward +bias" : "linear forward", y, gy, MN, T_MATMUL);
        free(y);
        gfree(gy);
    }
    for (int acc = 0; acc < 2; acc++) {
        float *dx = hcopy(dx0, MK), *dw = hcopy(dw0, NK), *db = hcopy(db0, N);
        float *gdx = gupf(dx0, MK), *gdw = gupf(dw0, NK), *gdb = gupf(db0, N);
        BOTH_OK(CPU->matmul_backward(cpu_dev, dx, dw, db, dy, x, w, M, K, N, acc),
                GPU->matmul_backward(gpu_dev, gdx, gdw, gdb, gdy, gx, gw, M, K, N, acc));
        expect(acc ? "linear dinp (accumulate)" : "linear dinp", dx, gdx, MK, T_MATMUL);
        expect("linear dweight (+=)", dw, gdw, NK, T_MATMUL);
        expect("linear dbias (+=)", db, gdb, N, T_ROWSUM);
        free(dx), free(dw), free(db);
        gfree(gdx), gfree(gdw), gfree(gdb);
    }
    { /* only dbias: dinp and dweight NULL (no weight or inp needed) */
        float *db = hcopy(db0, N), *gdb = gupf(db0, N);
        BOTH_OK(CPU->matmul_backward(cpu_dev, NULL, NULL, db, dy, NULL, NULL, M, K, N, 0),
                GPU->matmul_backward(gpu_dev, NULL, NULL, gdb, gdy, NULL, NULL, M, K, N, 0));
        expect("linear dbias only", db, gdb, N, T_ROWSUM);
        free(db);
        gfree(gdb);
    }
    free(x), free(w), free(bias), free(dy), free(dx0), free(dw0), free(db0);
    gfree(gx), gfree(gw), gfree(gbias), gfree(gdy);
}
END_TEST

/* bf16 tensor-core matmuls (fp32 in and out) against the fp32 CPU twin: a bf16 bound; then
 * back to fp32, which must meet the fp32 bound again (the switch leaves no state behind). */
START_TEST(test_matmul_bf16_switch)
{
    int M = 96, K = 257, N = 130;
    int64_t MK = (int64_t)M * K, NK = (int64_t)N * K, MN = (int64_t)M * N;
    const tol T_BF16 = {1e30, 0.0, 2e-2};
    test_rng r;
    rng_seed(&r, 300);
    float *x = frand(&r, MK, 1.0f), *w = frand(&r, NK, 1.0f), *y = fbuf(MN);
    float *gx = gupf(x, MK), *gw = gupf(w, NK), *gy = gzero(MN);
    ck_assert_int_eq(CPU->matmul_forward(cpu_dev, y, x, w, NULL, M, K, N), OCTET_OK);

    ck_assert_int_eq(ops_cuda_matmul_precision(gpu_dev), 0);
    ck_assert_int_eq(ops_cuda_set_matmul_precision(gpu_dev, 1), OCTET_OK);
    ck_assert_int_eq(ops_cuda_set_matmul_precision(gpu_dev, 1), OCTET_OK); /* idempotent */
    ck_assert_int_eq(ops_cuda_matmul_precision(gpu_dev), 1);
    ck_assert_int_eq(ops_cuda_matmul_precision(cpu_dev), 0);
    ck_assert_int_eq(GPU->matmul_forward(gpu_dev, gy, gx, gw, NULL, M, K, N), OCTET_OK);
    expect("linear forward bf16", y, gy, MN, T_BF16);

    ck_assert_int_eq(ops_cuda_set_matmul_precision(gpu_dev, 0), OCTET_OK);
    ck_assert_int_eq(ops_cuda_matmul_precision(gpu_dev), 0);
    ck_assert_int_eq(GPU->matmul_forward(gpu_dev, gy, gx, gw, NULL, M, K, N), OCTET_OK);
    expect("linear forward fp32 again", y, gy, MN, T_MATMUL);

    /* a CPU device has no bf16 matmuls; fp32 is accepted */
    ck_assert_int_eq(ops_cuda_set_matmul_precision(cpu_dev, 1), OCTET_ERR_ARG);
    ck_assert_int_eq(ops_cuda_set_matmul_precision(cpu_dev, 0), OCTET_OK);
    ck_assert_int_eq(ops_cuda_set_matmul_precision(NULL, 0), OCTET_ERR_ARG);
    free(x), free(w), free(y);
    gfree(gx), gfree(gw), gfree(gy);
}
END_TEST

/* ------------------------------------------------------------------ elementwise */

static const int64_t ew_sizes[] = {1, 257, 100003};

START_TEST(test_elementwise)
{
    int64_t N = ew_sizes[_i];
    test_rng r;
    rng_seed(&r, 400 + (uint64_t)_i);
    float *a = frand(&r, N, 3.0f), *b = frand(&r, N, 1.0f), *dy = frand(&r, N, 1.0f);
    for (int64_t i = 0; i < N; i += 7)
        a[i] = 0.0f; /* ReLU's kink: gradient 0 at 0, as torch */
    float *ga = gupf(a, N), *gb = gupf(b, N), *gdy = gupf(dy, N), *g = gzero(N);
    float *h = fbuf(N);

    BOTH_OK(CPU->add_forward(cpu_dev, h, a, b, N), GPU->add_forward(gpu_dev, g, ga, gb, N));
    expect("add", h, g, N, EXACT);
    BOTH_OK(CPU->relu_forward(cpu_dev, h, a, N), GPU->relu_forward(gpu_dev, g, ga, N));
    expect("relu forward", h, g, N, EXACT);
    BOTH_OK(CPU->relu_backward(cpu_dev, h, a, dy, N), GPU->relu_backward(gpu_dev, g, ga, gdy, N));
    expect("relu backward", h, g, N, EXACT);
    BOTH_OK(CPU->gelu_forward(cpu_dev, h, a, N), GPU->gelu_forward(gpu_dev, g, ga, N));
    expect("gelu forward", h, g, N, T_MATH);
    BOTH_OK(CPU->gelu_backward(cpu_dev, h, a, dy, N), GPU->gelu_backward(gpu_dev, g, ga, gdy, N));
    expect("gelu backward", h, g, N, T_MATH);

    /* in place, as ops.h allows: add into a, ReLU on itself, gelu_backward into dout, scale */
    float *ha = hcopy(a, N), *hdy = hcopy(dy, N);
    BOTH_OK(CPU->add_forward(cpu_dev, ha, ha, b, N), GPU->add_forward(gpu_dev, ga, ga, gb, N));
    expect("add in place", ha, ga, N, EXACT);
    BOTH_OK(CPU->relu_forward(cpu_dev, ha, ha, N), GPU->relu_forward(gpu_dev, ga, ga, N));
    expect("relu in place", ha, ga, N, EXACT);
    BOTH_OK(CPU->gelu_backward(cpu_dev, hdy, b, hdy, N), GPU->gelu_backward(gpu_dev, gdy, gb, gdy, N));
    expect("gelu backward in place", hdy, gdy, N, T_MATH);
    BOTH_OK(CPU->scale(cpu_dev, hdy, N, -0.37f), GPU->scale(gpu_dev, gdy, N, -0.37f));
    expect("scale", hdy, gdy, N, T_MATH); /* exact on the scaling; inherits gelu's few ulp */
    free(a), free(b), free(dy), free(h), free(ha), free(hdy);
    gfree(ga), gfree(gb), gfree(gdy), gfree(g);
}
END_TEST

/* The fused bias + GELU: both twins add the bias with one float addition and call gelu_one, so
 * from the same pre the bits are identical, pre and out; and on the CUDA device it equals the
 * unfused pair it replaces in DistilBERT (matmul_forward with the bias, then gelu_forward) bit
 * for bit. Shapes (M, N): 1 element, N below and above a block, N = 1, N over the grid stride's
 * period, M*N over one full grid (65536 x 256), so the kernel's column walk wraps. */
static const int bias_gelu_shapes[][2] = {{1, 1}, {37, 771}, {1001, 7}, {3, 70001}, {4099, 5003}};

START_TEST(test_bias_gelu)
{
    int M = bias_gelu_shapes[_i][0], N = bias_gelu_shapes[_i][1], K = 29;
    int64_t MN = (int64_t)M * N;
    test_rng r;
    rng_seed(&r, 450 + (uint64_t)_i);
    float *pre0 = frand(&r, MN, 2.0f), *bias = frand(&r, N, 1.0f), *x = frand(&r, (int64_t)M * K, 1.0f);
    float *w = frand(&r, (int64_t)N * K, 0.5f);
    float *gbias = gupf(bias, N), *gx = gupf(x, (int64_t)M * K), *gw = gupf(w, (int64_t)N * K), *gout = gzero(MN);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        float *pre = hcopy(pre0, MN), *out = fbuf(MN), *gpre = gupf(pre0, MN);
        BOTH_OK(CPU->bias_gelu_forward(cpu_dev, pre, out, with_bias ? bias : NULL, M, N),
                GPU->bias_gelu_forward(gpu_dev, gpre, gout, with_bias ? gbias : NULL, M, N));
        expect(with_bias ? "bias_gelu pre +bias" : "bias_gelu pre", pre, gpre, MN, EXACT);
        expect(with_bias ? "bias_gelu out +bias" : "bias_gelu out", out, gout, MN, T_MATH); /* as gelu forward */
        free(pre), free(out);
        gfree(gpre);
    }
    { /* on the CUDA device, against the unfused pair */
        float *gfc = gzero(MN), *gg = gzero(MN);
        ck_assert_int_eq(GPU->matmul_forward(gpu_dev, gfc, gx, gw, gbias, M, K, N), OCTET_OK);
        ck_assert_int_eq(GPU->gelu_forward(gpu_dev, gg, gfc, MN), OCTET_OK);
        float *fc = gdown(gfc, MN), *g = gdown(gg, MN);
        ck_assert_int_eq(GPU->matmul_forward(gpu_dev, gfc, gx, gw, NULL, M, K, N), OCTET_OK);
        ck_assert_int_eq(GPU->bias_gelu_forward(gpu_dev, gfc, gout, gbias, M, N), OCTET_OK);
        expect("bias_gelu pre vs matmul +bias", fc, gfc, MN, EXACT);
        expect("bias_gelu out vs gelu_forward", g, gout, MN, EXACT);
        free(fc), free(g);
        gfree(gfc), gfree(gg);
    }
    free(pre0), free(bias), free(x), free(w);
    gfree(gbias), gfree(gx), gfree(gw), gfree(gout);
}
END_TEST

/* to_half / from_half: both twins call ops_math.h's bit conversions, so the bits are identical:
 * every 16-bit pattern back to float (NaNs included), and random floats at every scale (random
 * bit patterns: all exponents, subnormals, inf, NaN; normals around fp16's range) to 16 bits. */
START_TEST(test_half_casts)
{
    int64_t N = 65536 + ew_sizes[_i]; /* not a multiple of a block */
    test_rng r;
    rng_seed(&r, 450 + (uint64_t)_i);
    float *x = fbuf(N);
    for (int64_t i = 0; i < N; i++) {
        uint64_t u = rng_u64(&r);
        uint32_t b = (uint32_t)u;
        float v;
        memcpy(&v, &b, sizeof v);
        x[i] = (i & 1) ? v : (float)((double)(int32_t)(u >> 32) * ldexp(1.0, -(int)(u % 64)));
    }
    uint16_t *pat = xmalloc(sizeof(uint16_t) * 65536);
    for (int i = 0; i < 65536; i++)
        pat[i] = (uint16_t)i;
    float *gx = gupf(x, N);
    uint16_t *gpat = gup(pat, sizeof(uint16_t) * 65536);
    uint16_t *h = xmalloc(sizeof(uint16_t) * (size_t)N), *got = xmalloc(sizeof(uint16_t) * (size_t)N);
    uint16_t *gh = device_alloc(gpu_dev, sizeof(uint16_t) * (size_t)N, MEM_WORKSPACE);
    float *back = fbuf(65536), *gback = gzero(65536);
    ck_assert_ptr_nonnull(gh);
    for (int kind = 0; kind < 2; kind++) {
        const char *name = kind == OPS_HALF_FP16 ? "fp16" : "bf16";
        char what[64];
        BOTH_OK(CPU->to_half(cpu_dev, h, x, N, kind), GPU->to_half(gpu_dev, gh, gx, N, kind));
        ck_assert_int_eq(device_download(gpu_dev, got, gh, sizeof(uint16_t) * (size_t)N), OCTET_OK);
        int64_t bad = 0;
        for (int64_t i = 0; i < N; i++)
            if (h[i] != got[i] && bad++ < 5)
                fprintf(stderr, "to %s of %a: cpu 0x%04x cuda 0x%04x\n", name, x[i], h[i], got[i]);
        printf("parity %-30s n=%-8lld mismatches %lld (bit-exact)%s\n", kind ? "to_half fp16" : "to_half bf16",
               (long long)N, (long long)bad, bad ? "  FAIL" : "");
        ck_assert_msg(bad == 0, "to_half %s: %lld of %lld differ", name, (long long)bad, (long long)N);
        BOTH_OK(CPU->from_half(cpu_dev, back, pat, 65536, kind), GPU->from_half(gpu_dev, gback, gpat, 65536, kind));
        snprintf(what, sizeof what, "from_half %s (all patterns)", name);
        expect(what, back, gback, 65536, EXACT);
    }
    free(x), free(pat), free(h), free(got), free(back);
    gfree(gx), gfree(gpat), gfree(gh), gfree(gback);
}
END_TEST

START_TEST(test_token_select)
{
    int B = 5, T = 9, C = 37, t = _i ? 4 : 0;
    int64_t BTC = (int64_t)B * T * C, BC = (int64_t)B * C;
    test_rng r;
    rng_seed(&r, 450 + (uint64_t)_i);
    float *x = frand(&r, BTC, 1.0f), *dy = frand(&r, BC, 1.0f), *o = fbuf(BC), *dx = frand(&r, BTC, 1.0f);
    float *gx = gupf(x, BTC), *gdy = gupf(dy, BC), *go = gzero(BC), *gdx = gupf(dx, BTC); /* dx: overwritten */
    BOTH_OK(CPU->token_select_forward(cpu_dev, o, x, B, T, C, t), GPU->token_select_forward(gpu_dev, go, gx, B, T, C, t));
    expect("token_select forward", o, go, BC, EXACT);
    BOTH_OK(CPU->token_select_backward(cpu_dev, dx, dy, B, T, C, t),
            GPU->token_select_backward(gpu_dev, gdx, gdy, B, T, C, t));
    expect("token_select backward", dx, gdx, BTC, EXACT);
    free(x), free(dy), free(o), free(dx);
    gfree(gx), gfree(gdy), gfree(go), gfree(gdx);
}
END_TEST

/* ------------------------------------------------------------------ layernorm */

static const struct {
    int N, C;
    float eps;
} ln_shapes[] = {{37, 77, 1e-5f}, {5, 768, 1e-12f}, {3, 1, 1e-12f}, {300, 33, 1e-5f}};

START_TEST(test_layernorm)
{
    int N = ln_shapes[_i].N, C = ln_shapes[_i].C;
    float eps = ln_shapes[_i].eps;
    int64_t NC = (int64_t)N * C;
    test_rng r;
    rng_seed(&r, 500 + (uint64_t)_i);
    float *x = frand(&r, NC, 2.0f), *w = frand(&r, C, 1.0f), *b = frand(&r, C, 1.0f), *dy = frand(&r, NC, 1.0f);
    for (int64_t i = 0; i < NC; i++)
        x[i] += 0.5f; /* a mean away from 0 */
    float *y = fbuf(NC), *mean = fbuf(N), *rstd = fbuf(N);
    float *dw0 = frand(&r, C, 1.0f), *db0 = frand(&r, C, 1.0f);
    float *gx = gupf(x, NC), *gw = gupf(w, C), *gb = gupf(b, C), *gdy = gupf(dy, NC);
    float *gy = gzero(NC), *gmean = gzero(N), *grstd = gzero(N);

    BOTH_OK(CPU->layernorm_forward(cpu_dev, y, mean, rstd, x, w, b, N, C, eps),
            GPU->layernorm_forward(gpu_dev, gy, gmean, grstd, gx, gw, gb, N, C, eps));
    expect("layernorm out", y, gy, NC, T_ROWSUM);
    expect("layernorm mean", mean, gmean, N, T_ROWSUM);
    expect("layernorm rstd", rstd, grstd, N, T_ROWSUM);

    /* backward from the CPU's saved statistics on both sides, so only the backward is compared */
    float *gmean_c = gupf(mean, N), *grstd_c = gupf(rstd, N);
    float *dx = fbuf(NC), *dw = hcopy(dw0, C), *db = hcopy(db0, C);
    float *gdx = gzero(NC), *gdw = gupf(dw0, C), *gdb = gupf(db0, C);
    BOTH_OK(CPU->layernorm_backward(cpu_dev, dx, dw, db, dy, x, w, mean, rstd, N, C),
            GPU->layernorm_backward(gpu_dev, gdx, gdw, gdb, gdy, gx, gw, gmean_c, grstd_c, N, C));
    expect("layernorm dinp", dx, gdx, NC, T_ROWGRAD);
    expect("layernorm dweight (+=)", dw, gdw, C, T_ROWGRAD);
    expect("layernorm dbias (+=)", db, gdb, C, T_ROWSUM);

    /* dinp in place over dout, parameter gradients NULL */
    float *hdy = hcopy(dy, NC);
    BOTH_OK(CPU->layernorm_backward(cpu_dev, hdy, NULL, NULL, hdy, x, w, mean, rstd, N, C),
            GPU->layernorm_backward(gpu_dev, gdy, NULL, NULL, gdy, gx, gw, gmean_c, grstd_c, N, C));
    expect("layernorm dinp in place", hdy, gdy, NC, T_ROWGRAD);
    free(x), free(w), free(b), free(dy), free(y), free(mean), free(rstd), free(dw0), free(db0);
    free(dx), free(dw), free(db), free(hdy);
    gfree(gx), gfree(gw), gfree(gb), gfree(gdy), gfree(gy), gfree(gmean), gfree(grstd), gfree(gmean_c);
    gfree(grstd_c), gfree(gdx), gfree(gdw), gfree(gdb);
}
END_TEST

/* ------------------------------------------------------------------ embeddings */

static const struct {
    int B, T, C, V, padding_idx, with_wpe;
} emb_shapes[] = {{3, 17, 45, 11, 0, 1}, {4, 128, 300, 1000, -1, 1}, {2, 5, 3, 2, 1, 0}, {1, 600, 33, 7, 3, 1}};

/* Ids with heavy repetition, the padding id, and a few out of range (-1, V + 2). */
START_TEST(test_embedding)
{
    int B = emb_shapes[_i].B, T = emb_shapes[_i].T, C = emb_shapes[_i].C, V = emb_shapes[_i].V;
    int pad = emb_shapes[_i].padding_idx;
    int64_t BT = (int64_t)B * T, BTC = BT * C, VC = (int64_t)V * C, TC = (int64_t)T * C;
    test_rng r;
    rng_seed(&r, 600 + (uint64_t)_i);
    int *ids = ibuf(BT);
    for (int64_t i = 0; i < BT; i++) {
        uint64_t u = rng_u64(&r) % 20;
        ids[i] = u == 0 ? -1 : u == 1 ? V + 2 : (int)(rng_u64(&r) % (uint64_t)(u < 10 ? 3 : V));
    }
    float *wte = frand(&r, VC, 1.0f), *wpe = emb_shapes[_i].with_wpe ? frand(&r, TC, 1.0f) : NULL;
    float *dy = frand(&r, BTC, 1.0f), *dwte = frand(&r, VC, 1.0f), *dwpe = frand(&r, TC, 1.0f), *o = fbuf(BTC);
    int *gids = gupi(ids, BT);
    float *gwte = gupf(wte, VC), *gwpe = wpe ? gupf(wpe, TC) : NULL, *gdy = gupf(dy, BTC);
    float *gdwte = gupf(dwte, VC), *gdwpe = gupf(dwpe, TC), *go = gzero(BTC);

    BOTH_OK(CPU->embedding_forward(cpu_dev, o, ids, wte, wpe, B, T, C, V),
            GPU->embedding_forward(gpu_dev, go, gids, gwte, gwpe, B, T, C, V));
    expect("embedding forward", o, go, BTC, EXACT);
    BOTH_OK(CPU->embedding_backward(cpu_dev, dwte, wpe ? dwpe : NULL, dy, ids, B, T, C, V, pad),
            GPU->embedding_backward(gpu_dev, gdwte, wpe ? gdwpe : NULL, gdy, gids, B, T, C, V, pad));
    expect("embedding dwte (+=)", dwte, gdwte, VC, EXACT);
    expect("embedding dwpe (+=)", dwpe, gdwpe, TC, EXACT);
    free(ids), free(wte), free(wpe), free(dy), free(dwte), free(dwpe), free(o);
    gfree(gids), gfree(gwte), gfree(gwpe), gfree(gdy), gfree(gdwte), gfree(gdwpe), gfree(go);
}
END_TEST

/* ------------------------------------------------------------------ softmax and attention */

/* _i = 0: no mask; 1: a padding mask with a fully masked batch row; 2: the same in place. */
START_TEST(test_softmax)
{
    int B = 4, R = 3, T = 37, lens[4] = {37, 20, 0, 1};
    int64_t n = (int64_t)B * R * T;
    float scale = 0.125f;
    test_rng r;
    rng_seed(&r, 700 + (uint64_t)_i);
    int *mask = _i ? padding_mask(B, T, lens) : NULL, *gmask = mask ? gupi(mask, (int64_t)B * T) : NULL;
    float *x = frand(&r, n, 8.0f), *dy = frand(&r, n, 1.0f), *y = fbuf(n), *dx = fbuf(n);
    float *gx = gupf(x, n), *gdy = gupf(dy, n), *gy = _i == 2 ? gx : gzero(n), *gdx = _i == 2 ? gdy : gzero(n);
    float *hy = _i == 2 ? hcopy(x, n) : y, *hdx = _i == 2 ? hcopy(dy, n) : dx;

    BOTH_OK(CPU->softmax_forward(cpu_dev, hy, _i == 2 ? hy : x, mask, B, R, T, scale),
            GPU->softmax_forward(gpu_dev, gy, gx, gmask, B, R, T, scale));
    expect("softmax forward", hy, gy, n, T_ROWSUM);
    /* backward from the CPU's probabilities on both sides */
    float *gyc = gupf(hy, n);
    BOTH_OK(CPU->softmax_backward(cpu_dev, hdx, _i == 2 ? hdx : dy, hy, mask, B, R, T, scale),
            GPU->softmax_backward(gpu_dev, gdx, gdy, gyc, gmask, B, R, T, scale));
    expect("softmax backward", hdx, gdx, n, T_ROWGRAD);
    if (_i == 2)
        free(hy), free(hdx);
    else
        gfree(gy), gfree(gdx);
    free(mask), free(x), free(dy), free(y), free(dx);
    gfree(gmask), gfree(gx), gfree(gdy), gfree(gyc);
}
END_TEST

static const struct {
    int B, T, C, H;
    float p;
    int lens[5];
} att_shapes[] = {
    {2, 37, 48, 4, 0.1f, {37, 30}},           /* H > B: batched over heads, looped over b */
    {5, 19, 24, 2, 0.0f, {19, 3, 19, 0, 7}},  /* H <= B: batched over b; no dropout, work NULL */
    {3, 5, 12, 3, 0.5f, {5, 0, 2}},           /* tiny, a fully masked sample */
    {1, 64, 64, 1, 0.1f, {64}},               /* one head of 64 */
    {2, 128, 96, 12, 0.1f, {128, 77}},        /* DistilBERT-like heads (hs 8), T 128 */
};

START_TEST(test_attention)
{
    int B = att_shapes[_i].B, T = att_shapes[_i].T, C = att_shapes[_i].C, H = att_shapes[_i].H;
    int64_t n = (int64_t)B * T * C, na = (int64_t)B * H * T * T;
    ops_dropout drop = {att_shapes[_i].p, 4242 + (uint64_t)_i, 1000003 + (uint64_t)_i};
    test_rng r;
    rng_seed(&r, 800 + (uint64_t)_i);
    int *mask = padding_mask(B, T, att_shapes[_i].lens), *gmask = gupi(mask, (int64_t)B * T);
    float *q = frand(&r, n, 1.0f), *k = frand(&r, n, 1.0f), *v = frand(&r, n, 1.0f), *dy = frand(&r, n, 1.0f);
    float *o = fbuf(n), *att = fbuf(na), *work = fbuf(na);
    float *gq = gupf(q, n), *gk = gupf(k, n), *gv = gupf(v, n), *gdy = gupf(dy, n);
    float *go = gzero(n), *gatt = gzero(na), *gwork = gzero(na);

    BOTH_OK(CPU->attention_forward(cpu_dev, o, att, drop.p > 0 ? work : NULL, q, k, v, mask, B, T, C, H, drop),
            GPU->attention_forward(gpu_dev, go, gatt, drop.p > 0 ? gwork : NULL, gq, gk, gv, gmask, B, T, C, H, drop));
    expect("attention probabilities", att, gatt, na, T_ROWSUM);
    if (drop.p > 0) { /* the dropped probabilities: same mask, so zero exactly where the CPU's are */
        float *gw = gdown(gwork, na);
        int64_t bad = 0;
        for (int64_t i = 0; i < na; i++)
            bad += (work[i] == 0.0f) != (gw[i] == 0.0f) && att[i] != 0.0f;
        printf("parity %-30s n=%-8lld mask mismatches %lld (exact)\n", "attention dropout mask", (long long)na,
               (long long)bad);
        ck_assert_int_eq(bad, 0);
        free(gw);
        expect("attention dropped probs", work, gwork, na, T_ROWSUM);
    }
    expect("attention out", o, go, n, T_MATMUL);

    /* backward from the CPU's saved probabilities on both sides */
    float *gattc = gupf(att, na), *dq = fbuf(n), *dk = fbuf(n), *dv = fbuf(n);
    float *gdq = gzero(n), *gdk = gzero(n), *gdv = gzero(n);
    BOTH_OK(CPU->attention_backward(cpu_dev, dq, dk, dv, work, dy, q, k, v, att, mask, B, T, C, H, drop),
            GPU->attention_backward(gpu_dev, gdq, gdk, gdv, gwork, gdy, gq, gk, gv, gattc, gmask, B, T, C, H, drop));
    expect("attention dq", dq, gdq, n, T_ATTGRAD);
    expect("attention dk", dk, gdk, n, T_ATTGRAD);
    expect("attention dv", dv, gdv, n, T_ATTGRAD);
    free(mask), free(q), free(k), free(v), free(dy), free(o), free(att), free(work), free(dq), free(dk), free(dv);
    gfree(gmask), gfree(gq), gfree(gk), gfree(gv), gfree(gdy), gfree(go), gfree(gatt), gfree(gwork);
    gfree(gattc), gfree(gdq), gfree(gdk), gfree(gdv);
}
END_TEST

/* ------------------------------------------------------------------ dropout */

static const float drop_ps[] = {0.0f, 0.1f, 0.5f, 1.0f};

/* Masks and values bit-identical, forward and backward, out of place and in place. */
START_TEST(test_dropout)
{
    int64_t N = 100003;
    ops_dropout drop = {drop_ps[_i], 0x123456789abcdefULL, ((uint64_t)7 << 32) + (uint64_t)_i};
    test_rng r;
    rng_seed(&r, 900 + (uint64_t)_i);
    float *x = frand(&r, N, 1.0f), *y = fbuf(N), *gx = gupf(x, N), *gy = gzero(N);
    BOTH_OK(CPU->dropout_forward(cpu_dev, y, x, N, drop), GPU->dropout_forward(gpu_dev, gy, gx, N, drop));
    expect("dropout forward", y, gy, N, EXACT);
    BOTH_OK(CPU->dropout_backward(cpu_dev, x, x, N, drop), GPU->dropout_backward(gpu_dev, gx, gx, N, drop));
    expect("dropout backward in place", x, gx, N, EXACT);
    int64_t kept = 0;
    for (int64_t i = 0; i < N; i++)
        kept += y[i] != 0.0f;
    printf("parity %-30s p=%.1f kept %.4f\n", "dropout keep rate", drop.p, (double)kept / (double)N);
    free(x), free(y);
    gfree(gx), gfree(gy);
}
END_TEST

/* ------------------------------------------------------------------ losses */

static const struct {
    int B, C;
} ce_shapes[] = {{37, 5}, {300, 2}, {1, 1}, {70, 33}};

/* Labels with ignored samples (-100, C), exact ties for the argmax; forward with every output,
 * then pred alone (labels NULL) on logits with NaNs; backward with dloss 0.25. */
START_TEST(test_crossentropy)
{
    int B = ce_shapes[_i].B, C = ce_shapes[_i].C;
    int64_t BC = (int64_t)B * C;
    test_rng r;
    rng_seed(&r, 1000 + (uint64_t)_i);
    float *x = frand(&r, BC, 3.0f);
    int *labels = ibuf(B);
    for (int b = 0; b < B; b++) {
        uint64_t u = rng_u64(&r) % 10;
        labels[b] = u == 0 ? -100 : u == 1 ? C : (int)(rng_u64(&r) % (uint64_t)C);
        if (C > 2 && b % 3 == 0) /* a tie for the maximum: the first index wins */
            x[(int64_t)b * C + 2] = x[(int64_t)b * C + 1] = 10.0f;
    }
    float *losses = fbuf(B), *loss = fbuf(1), *dx = fbuf(BC);
    int *pred = ibuf(B);
    float *gx = gupf(x, BC), *glosses = gzero(B), *gloss = gzero(1), *gdx = gupf(x, BC); /* dx: overwritten */
    int *glabels = gupi(labels, B), *gpred = gupi(pred, B);

    BOTH_OK(CPU->crossentropy_forward(cpu_dev, losses, loss, pred, x, labels, B, C),
            GPU->crossentropy_forward(gpu_dev, glosses, gloss, gpred, gx, glabels, B, C));
    expect("crossentropy losses", losses, glosses, B, T_LOSS);
    expect("crossentropy loss", loss, gloss, 1, T_LOSS);
    expect_ints("crossentropy pred", pred, gpred, B);
    BOTH_OK(CPU->crossentropy_backward(cpu_dev, dx, x, labels, B, C, 0.25f),
            GPU->crossentropy_backward(gpu_dev, gdx, gx, glabels, B, C, 0.25f));
    expect("crossentropy dlogits", dx, gdx, BC, T_LOSS);

    /* pred only, NaN logits: the sequential first-max scan must agree exactly */
    for (int64_t i = 0; i < BC; i += 3)
        x[i] = NAN;
    float *gxn = gupf(x, BC);
    BOTH_OK(CPU->crossentropy_forward(cpu_dev, NULL, NULL, pred, x, NULL, B, C),
            GPU->crossentropy_forward(gpu_dev, NULL, NULL, gpred, gxn, NULL, B, C));
    expect_ints("crossentropy pred with NaN", pred, gpred, B);
    free(x), free(labels), free(losses), free(loss), free(dx), free(pred);
    gfree(gx), gfree(glosses), gfree(gloss), gfree(gdx), gfree(glabels), gfree(gpred), gfree(gxn);
}
END_TEST

/* Every label ignored: loss 0 and zero gradients on both. */
START_TEST(test_crossentropy_all_ignored)
{
    int B = 7, C = 3, labels[7] = {-100, -100, 3, -1, -100, 5, -100};
    test_rng r;
    rng_seed(&r, 1100);
    float *x = frand(&r, B * C, 1.0f), loss = -1.0f, *dx = fbuf(B * C);
    float *gx = gupf(x, B * C), *gloss = gupf(&loss, 1), *gdx = gupf(x, B * C);
    int *glabels = gupi(labels, B);
    BOTH_OK(CPU->crossentropy_forward(cpu_dev, NULL, &loss, NULL, x, labels, B, C),
            GPU->crossentropy_forward(gpu_dev, NULL, gloss, NULL, gx, glabels, B, C));
    ck_assert_float_eq(loss, 0.0f);
    expect("crossentropy loss all ignored", &loss, gloss, 1, EXACT);
    BOTH_OK(CPU->crossentropy_backward(cpu_dev, dx, x, labels, B, C, 1.0f),
            GPU->crossentropy_backward(gpu_dev, gdx, gx, glabels, B, C, 1.0f));
    expect("crossentropy dlogits all ignored", dx, gdx, B * C, EXACT);
    free(x), free(dx);
    gfree(gx), gfree(gloss), gfree(gdx), gfree(glabels);
}
END_TEST

/* NaN at the same places on both twins and values within tol elsewhere (CUDA arithmetic
 * returns a canonical NaN, so NaN bits may differ). */
static void expect_nan_alike(const char *what, const float *ref, const float *g, int64_t n, double tol)
{
    float *got = gdown(g, n);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(isnan(ref[i]) == isnan(got[i]), "%s[%lld]: cpu %g cuda %g", what, (long long)i,
                      (double)ref[i], (double)got[i]);
        if (!isnan(ref[i]))
            ck_assert_msg(fabs((double)ref[i] - got[i]) <= tol, "%s[%lld]: cpu %g cuda %g", what, (long long)i,
                          (double)ref[i], (double)got[i]);
    }
    printf("parity %-30s n=%-8lld NaN at the same places\n", what, (long long)n);
    free(got);
}

/* NaN on both twins as in PyTorch: ReLU keeps it (the same bits: a select), its gradient, GELU
 * and its gradient give NaN at the same places as the CPU twin, and a NaN logit spoils its
 * row's gradient, an ignored row's too (0 x softmax). */
START_TEST(test_nan_propagation)
{
    enum { N = 8, B = 2, C = 3 };
    const float a[N] = {NAN, -1.0f, 0.0f, -0.0f, 2.0f, NAN, 0.5f, -3.0f};
    const float dy[N] = {1, 1, 1, 1, 1, NAN, 1, 1};
    float *ga = gupf(a, N), *gdy = gupf(dy, N), *g = gzero(N), h[N];
    BOTH_OK(CPU->relu_forward(cpu_dev, h, a, N), GPU->relu_forward(gpu_dev, g, ga, N));
    ck_assert(isnan(h[0]) && isnan(h[5]));
    expect("relu forward NaN", h, g, N, EXACT);
    BOTH_OK(CPU->relu_backward(cpu_dev, h, a, dy, N), GPU->relu_backward(gpu_dev, g, ga, gdy, N));
    ck_assert(h[0] == 1.0f && isnan(h[5]));
    expect_nan_alike("relu backward NaN", h, g, N, 0.0);
    BOTH_OK(CPU->gelu_forward(cpu_dev, h, a, N), GPU->gelu_forward(gpu_dev, g, ga, N));
    ck_assert(isnan(h[0]) && isnan(h[5]));
    expect_nan_alike("gelu forward NaN", h, g, N, 1e-6);
    BOTH_OK(CPU->gelu_backward(cpu_dev, h, a, dy, N), GPU->gelu_backward(gpu_dev, g, ga, gdy, N));
    ck_assert(isnan(h[0]) && isnan(h[5]));
    expect_nan_alike("gelu backward NaN", h, g, N, 1e-6);
    const float x[B * C] = {1.0f, NAN, 3.0f, 1.0f, 2.0f, 3.0f};
    const int labels[B] = {-100, 1};
    float dx[B * C], *gx = gupf(x, B * C), *gdx = gzero(B * C);
    int *glabels = gupi(labels, B);
    BOTH_OK(CPU->crossentropy_backward(cpu_dev, dx, x, labels, B, C, 1.0f),
            GPU->crossentropy_backward(gpu_dev, gdx, gx, glabels, B, C, 1.0f));
    ck_assert(isnan(dx[0]) && isnan(dx[1]) && isnan(dx[2]) && isfinite(dx[3]));
    expect_nan_alike("crossentropy dlogits NaN", dx, gdx, B * C, 1e-6);
    gfree(ga), gfree(gdy), gfree(g), gfree(gx), gfree(gdx), gfree(glabels);
}
END_TEST

START_TEST(test_mse)
{
    int B = _i ? 1000 : 13;
    test_rng r;
    rng_seed(&r, 1200 + (uint64_t)_i);
    float *p = frand(&r, B, 2.0f), *t = frand(&r, B, 2.0f), *losses = fbuf(B), loss = 0.0f, *dp = fbuf(B);
    float *gp = gupf(p, B), *gt = gupf(t, B), *glosses = gzero(B), *gloss = gzero(1), *gdp = gzero(B);
    BOTH_OK(CPU->mse_forward(cpu_dev, losses, &loss, p, t, B), GPU->mse_forward(gpu_dev, glosses, gloss, gp, gt, B));
    expect("mse losses", losses, glosses, B, EXACT);
    expect("mse loss", &loss, gloss, 1, (tol){0.0, 1e-6, 1e-6});
    BOTH_OK(CPU->mse_backward(cpu_dev, dp, p, t, B, 0.5f), GPU->mse_backward(gpu_dev, gdp, gp, gt, B, 0.5f));
    expect("mse dpred", dp, gdp, B, EXACT);
    free(p), free(t), free(losses), free(dp);
    gfree(gp), gfree(gt), gfree(glosses), gfree(gloss), gfree(gdp);
}
END_TEST

/* ------------------------------------------------------------------ gradient norm */

/* 70 buffers (three launch batches on the CUDA side) of odd sizes, one NULL and one empty
 * (skipped); sumsq within 1e-6 relative; then ops_clip_grad_norm on both devices, whose scaled
 * buffers must agree. */
START_TEST(test_sumsq_and_clip)
{
    enum { NB = 70 };
    test_rng r;
    rng_seed(&r, 1300);
    float *h[NB], *g[NB];
    int64_t n[NB];
    for (int i = 0; i < NB; i++) {
        n[i] = i == 5 ? 0 : i % 9 == 0 ? 100003 + i : 1 + (int64_t)(rng_u64(&r) % 5000);
        h[i] = n[i] ? frand(&r, n[i], 0.01f * (float)(1 + i % 4)) : NULL;
        g[i] = n[i] ? gupf(h[i], n[i]) : NULL;
    }
    float *hnull = h[11], *gnull = g[11];
    h[11] = NULL, g[11] = NULL; /* present with a length, but NULL: skipped */
    double sc = -1.0, sg = -1.0;
    BOTH_OK(CPU->sumsq(cpu_dev, &sc, (const float *const *)h, n, NB),
            GPU->sumsq(gpu_dev, &sg, (const float *const *)g, n, NB));
    printf("parity %-30s cpu %.17g cuda %.17g rel %.3g\n", "sumsq", sc, sg, fabs(sc - sg) / sc);
    ck_assert(sc > 0.0);
    ck_assert_msg(fabs(sc - sg) <= 1e-6 * sc, "sumsq: cpu %.17g cuda %.17g", sc, sg);
    BOTH_OK(CPU->sumsq(cpu_dev, &sc, NULL, NULL, 0), GPU->sumsq(gpu_dev, &sg, NULL, NULL, 0));
    ck_assert(sc == 0.0 && sg == 0.0);

    double nc = 0.0, ng = 0.0;
    BOTH_OK(ops_clip_grad_norm(cpu_dev, h, n, NB, 0.5, &nc), ops_clip_grad_norm(gpu_dev, g, n, NB, 0.5, &ng));
    printf("parity %-30s cpu %.17g cuda %.17g\n", "clip_grad_norm total", nc, ng);
    ck_assert_msg(fabs(nc - ng) <= 1e-6 * nc, "clip_grad_norm: cpu %.17g cuda %.17g", nc, ng);
    ck_assert(nc > 0.5); /* so the buffers were scaled */
    for (int i = 0; i < NB; i++)
        if (h[i]) {
            char what[48];
            snprintf(what, sizeof what, "clipped grad %d", i);
            if (i % 9 == 0 || i == NB - 1)
                expect(what, h[i], g[i], n[i], (tol){1e-9, 1e-6, 1e-6});
        }
    h[11] = hnull, g[11] = gnull;
    for (int i = 0; i < NB; i++) {
        free(h[i]);
        gfree(g[i]);
    }
}
END_TEST

/* ------------------------------------------------------------------ refusals */

/* The CUDA entries refuse what the CPU twin refuses, and a device that is not a CUDA device. */
START_TEST(test_rejects_bad_arguments)
{
    float *g = gzero(64);
    int ids[4] = {0, 1, 2, 3}, *gids = gupi(ids, 4);
    ops_dropout bad = {1.5f, 1, 2}, ok = {0.1f, 1, 2};
    double s = 0.0;
    const float *bufs[1] = {g};
    int64_t n1[1] = {64};
    /* a CPU device handed to the CUDA table */
    ck_assert_int_eq(GPU->gemm(cpu_dev, g, g, g, 2, 2, 2, 0, 0, 1.0f, 0.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->add_forward(cpu_dev, g, g, g, 4), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->sumsq(cpu_dev, &s, bufs, n1, 1), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->add_forward(NULL, g, g, g, 4), OCTET_ERR_ARG);
    /* the CPU twin's argument errors */
    ck_assert_int_eq(GPU->gemm(gpu_dev, g, g, g, 0, 2, 2, 0, 0, 1.0f, 0.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->matmul_forward(gpu_dev, g, NULL, g, NULL, 2, 2, 2), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->matmul_backward(gpu_dev, g, NULL, NULL, g, g, NULL, 2, 2, 2, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->relu_forward(gpu_dev, g, g, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->layernorm_forward(gpu_dev, g, g, g, g, g, g, 2, 2, -1.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->layernorm_forward(gpu_dev, g, g, g, g, g, g, 2, 2, NAN), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->embedding_forward(gpu_dev, g, gids, g, NULL, 1, 4, 2, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->embedding_backward(gpu_dev, g, NULL, g, NULL, 1, 4, 2, 4, -1), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->softmax_forward(gpu_dev, g, g, NULL, 1, 0, 4, 1.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->attention_forward(gpu_dev, g, g, g, g, g, g, NULL, 1, 2, 5, 2, ok), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->attention_forward(gpu_dev, g, g, NULL, g, g, g, NULL, 1, 2, 4, 2, ok), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->attention_backward(gpu_dev, g, g, g, NULL, g, g, g, g, g, NULL, 1, 2, 4, 2, ok),
                     OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->dropout_forward(gpu_dev, g, g, 4, bad), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->token_select_forward(gpu_dev, g, g, 1, 4, 2, 4), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->crossentropy_forward(gpu_dev, g, NULL, NULL, g, NULL, 2, 2), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->crossentropy_backward(gpu_dev, g, g, NULL, 2, 2, 1.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->mse_forward(gpu_dev, NULL, NULL, g, g, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->scale(gpu_dev, NULL, 4, 2.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->bias_gelu_forward(cpu_dev, g, g + 8, NULL, 2, 4), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->bias_gelu_forward(gpu_dev, g, g + 8, NULL, 0, 4), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->bias_gelu_forward(gpu_dev, NULL, g + 8, g, 2, 4), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->bias_gelu_forward(gpu_dev, g, g, g + 16, 2, 4), OCTET_ERR_ARG);     /* out == pre */
    ck_assert_int_eq(GPU->bias_gelu_forward(gpu_dev, g + 4, g, g + 16, 2, 4), OCTET_ERR_ARG); /* overlap */
    ck_assert_int_eq(GPU->sumsq(gpu_dev, NULL, bufs, n1, 1), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->sumsq(gpu_dev, &s, NULL, n1, 1), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->to_half(gpu_dev, (uint16_t *)g, g, 4, 2), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->from_half(gpu_dev, g, (const uint16_t *)g, 4, -1), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->to_half(gpu_dev, (uint16_t *)g, g, 0, OPS_HALF_BF16), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->from_half(gpu_dev, NULL, (const uint16_t *)g, 4, OPS_HALF_FP16), OCTET_ERR_ARG);
    ck_assert_int_eq(GPU->to_half(cpu_dev, (uint16_t *)g, g, 4, OPS_HALF_BF16), OCTET_ERR_ARG);
    /* nothing above launched: the device is still healthy */
    ck_assert_int_eq(device_sync(gpu_dev), OCTET_OK);
    gfree(g), gfree(gids);
}
END_TEST

/* ------------------------------------------------------------------ suite */

#define NELEMS(a) ((int)(sizeof a / sizeof a[0]))

Suite *suite_ops_parity(void)
{
    Suite *s = suite_create("ops_parity");
    TCase *tc = tcase_create("dense");
    tcase_add_checked_fixture(tc, open_devices, NULL);
    tcase_add_loop_test(tc, test_gemm, 0, NELEMS(gemm_shapes) * 4);
    tcase_add_loop_test(tc, test_linear, 0, NELEMS(linear_shapes));
    tcase_add_test(tc, test_matmul_bf16_switch);
    tcase_add_loop_test(tc, test_elementwise, 0, NELEMS(ew_sizes));
    tcase_add_loop_test(tc, test_bias_gelu, 0, NELEMS(bias_gelu_shapes));
    tcase_add_loop_test(tc, test_half_casts, 0, NELEMS(ew_sizes));
    tcase_add_loop_test(tc, test_token_select, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("norm_embed");
    tcase_add_checked_fixture(tc, open_devices, NULL);
    tcase_add_loop_test(tc, test_layernorm, 0, NELEMS(ln_shapes));
    tcase_add_loop_test(tc, test_embedding, 0, NELEMS(emb_shapes));
    suite_add_tcase(s, tc);

    tc = tcase_create("attention");
    tcase_add_checked_fixture(tc, open_devices, NULL);
    tcase_add_loop_test(tc, test_softmax, 0, 3);
    tcase_add_loop_test(tc, test_attention, 0, NELEMS(att_shapes));
    tcase_add_loop_test(tc, test_dropout, 0, NELEMS(drop_ps));
    suite_add_tcase(s, tc);

    tc = tcase_create("losses_norms");
    tcase_add_checked_fixture(tc, open_devices, NULL);
    tcase_add_loop_test(tc, test_crossentropy, 0, NELEMS(ce_shapes));
    tcase_add_test(tc, test_crossentropy_all_ignored);
    tcase_add_test(tc, test_nan_propagation);
    tcase_add_loop_test(tc, test_mse, 0, 2);
    tcase_add_test(tc, test_sumsq_and_clip);
    tcase_add_test(tc, test_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
