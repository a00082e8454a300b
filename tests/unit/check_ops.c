/* check_ops.c: the ops suites' shared harness (check_ops.h) and the dense suite: the gemm
 * wrapper against naive loops for every transpose, the linear layer, residual add, ReLU, GELU,
 * the fused bias + GELU (bit for bit against the unfused pair), [CLS] selection, and the
 * global-norm helpers, each forward against a double reference and each backward against
 * finite differences, and NaN propagating through them as through PyTorch's. Odd shapes
 * throughout (M = 21, K = 9, N = 5). */
#include "check_ops.h"
#include "ops_math.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ harness */

static device *the_device;

device *ops_test_device(void)
{
    if (!the_device) {
        octet_err e;
        ck_assert_int_eq(device_open("cpu", 0, &the_device, &e), OCTET_OK);
    }
    return the_device;
}

const ops_table *ops_test_table(void)
{
    const ops_table *t = ops_for(ops_test_device());
    ck_assert_ptr_nonnull(t);
    return t;
}

double *to_double(const float *x, int64_t n)
{
    double *p = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = x[i];
    return p;
}

int64_t mismatches(const char *what, const float *got, const double *want, int64_t n, double rtol,
                   double atol)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= atol + rtol * fabs(want[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s[%lld]: want %.9g got %.9g (diff %.3g)\n", what, (long long)i, want[i],
                        (double)got[i], diff);
            bad++;
        }
    }
    return bad;
}

void fd_init(fd_problem *p, ref_forward_fn ref, void *ctx, int64_t n_out, test_rng *r)
{
    p->ref = ref;
    p->ctx = ctx;
    p->n_out = n_out;
    p->w = dbuf(n_out);
    p->out = dbuf(n_out);
    for (int64_t i = 0; i < n_out; i++)
        p->w[i] = rng_normal(r);
}

void fd_free(fd_problem *p)
{
    free(p->w);
    free(p->out);
}

float *fd_dout(const fd_problem *p)
{
    float *d = fbuf(p->n_out);
    for (int64_t i = 0; i < p->n_out; i++)
        d[i] = (float)p->w[i];
    return d;
}

double fd_loss(fd_problem *p)
{
    p->ref(p->ctx, p->out);
    double s = 0.0;
    for (int64_t i = 0; i < p->n_out; i++)
        s += p->out[i] * p->w[i];
    return s;
}

void fd_grad(fd_problem *p, double *x, int64_t n, double *grad)
{
    for (int64_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + FD_H;
        double up = fd_loss(p);
        x[i] = keep - FD_H;
        double down = fd_loss(p);
        x[i] = keep;
        grad[i] = (up - down) / (2.0 * FD_H);
    }
}

int64_t fd_check(const char *what, fd_problem *p, double *x, const float *analytic, int64_t n)
{
    double *g = dbuf(n);
    fd_grad(p, x, n, g);
    int64_t bad = mismatches(what, analytic, g, n, FD_RTOL, FD_ATOL);
    free(g);
    return bad;
}

/* ------------------------------------------------------------------ gemm */

/* c = alpha op(a) op(b) + beta c in double, straight from the definition. */
static void gemm_naive(double *c, const float *a, const float *b, const float *c0, int M, int N, int K,
                       int ta, int tb, double alpha, double beta)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double av = ta ? a[k * M + i] : a[i * K + k];
                double bv = tb ? b[j * K + k] : b[k * N + j];
                s += av * bv;
            }
            c[i * N + j] = alpha * s + (beta != 0.0 ? beta * c0[i * N + j] : 0.0);
        }
}

static const int gemm_shapes[][3] = {{5, 9, 7}, {21, 5, 9}, {21, 9, 5}, {5, 9, 21}, {1, 1, 1}, {12, 21, 4}};

START_TEST(test_gemm_matches_naive_all_transposes)
{
    const ops_table *ops = ops_test_table();
    const float betas[] = {0.0f, 1.0f, -0.5f};
    test_rng r;
    rng_seed(&r, 101 + (uint64_t)_i);
    int M = gemm_shapes[_i][0], N = gemm_shapes[_i][1], K = gemm_shapes[_i][2];
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ib = 0; ib < 3; ib++) {
                float *a = frand(&r, (int64_t)M * K, 1.0f), *b = frand(&r, (int64_t)K * N, 1.0f);
                float *c = frand(&r, (int64_t)M * N, 1.0f);
                float *c0 = fbuf((int64_t)M * N);
                if (betas[ib] == 0.0f)
                    c[0] = NAN; /* beta = 0 must ignore c, NaN included */
                memcpy(c0, c, sizeof(float) * (size_t)M * N);
                double *want = dbuf((int64_t)M * N);
                gemm_naive(want, a, b, c0, M, N, K, ta, tb, 0.7, betas[ib]);
                ck_assert_int_eq(ops->gemm(ops_test_device(), c, a, b, M, N, K, ta, tb, 0.7f, betas[ib]), OCTET_OK);
                char what[64];
                snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d beta=%g", M, N, K, ta, tb, betas[ib]);
                ck_assert_int_eq(mismatches(what, c, want, (int64_t)M * N, FWD_RTOL, FWD_ATOL), 0);
                free(a), free(b), free(c), free(c0), free(want);
            }
}
END_TEST

START_TEST(test_gemm_rejects_bad_dims)
{
    const ops_table *ops = ops_test_table();
    float x[4] = {0};
    ck_assert_int_eq(ops->gemm(ops_test_device(), x, x, x, 0, 2, 2, 0, 0, 1.0f, 0.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->gemm(ops_test_device(), x, NULL, x, 2, 2, 1, 0, 0, 1.0f, 0.0f), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->matmul_forward(ops_test_device(), x, x, x, NULL, 2, -1, 2), OCTET_ERR_ARG);
}
END_TEST

/* ------------------------------------------------------------------ linear layer */

typedef struct lin_ctx {
    double *inp, *weight, *bias; /* (M,K), (N,K), (N) or NULL */
    int M, K, N;
} lin_ctx;

static void lin_ref(void *vc, double *out)
{
    lin_ctx *c = vc;
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            double s = c->bias ? c->bias[n] : 0.0;
            for (int k = 0; k < c->K; k++)
                s += c->inp[m * c->K + k] * c->weight[n * c->K + k];
            out[m * c->N + n] = s;
        }
}

START_TEST(test_matmul_forward_matches_reference)
{
    const ops_table *ops = ops_test_table();
    int M = 21, K = 9, N = 5, with_bias = _i;
    test_rng r;
    rng_seed(&r, 7);
    float *inp = frand(&r, M * K, 1.0f), *w = frand(&r, N * K, 1.0f), *b = frand(&r, N, 1.0f);
    float *out = fbuf(M * N);
    lin_ctx c = {to_double(inp, M * K), to_double(w, N * K), with_bias ? to_double(b, N) : NULL, M, K, N};
    double *want = dbuf(M * N);
    lin_ref(&c, want);
    ck_assert_int_eq(ops->matmul_forward(ops_test_device(), out, inp, w, with_bias ? b : NULL, M, K, N), OCTET_OK);
    ck_assert_int_eq(mismatches("matmul out", out, want, M * N, FWD_RTOL, FWD_ATOL), 0);
    free(inp), free(w), free(b), free(out), free(want), free(c.inp), free(c.weight), free(c.bias);
}
END_TEST

/* Backward against finite differences; dweight, dbias and (with the flag) dinp start from
 * random values to check that they accumulate. */
START_TEST(test_matmul_backward_matches_fd)
{
    const ops_table *ops = ops_test_table();
    int M = 21, K = 9, N = 5, acc = _i;
    test_rng r;
    rng_seed(&r, 8 + (uint64_t)_i);
    float *inp = frand(&r, M * K, 1.0f), *w = frand(&r, N * K, 1.0f), *b = frand(&r, N, 1.0f);
    lin_ctx c = {to_double(inp, M * K), to_double(w, N * K), to_double(b, N), M, K, N};
    fd_problem p;
    fd_init(&p, lin_ref, &c, M * N, &r);
    float *dout = fd_dout(&p);
    float *dinp0 = frand(&r, M * K, 1.0f), *dw0 = frand(&r, N * K, 1.0f), *db0 = frand(&r, N, 1.0f);
    float *dinp = fbuf(M * K), *dw = fbuf(N * K), *db = fbuf(N);
    memcpy(dinp, dinp0, sizeof(float) * M * K);
    memcpy(dw, dw0, sizeof(float) * N * K);
    memcpy(db, db0, sizeof(float) * N);
    ck_assert_int_eq(ops->matmul_backward(ops_test_device(), dinp, dw, db, dout, inp, w, M, K, N, acc), OCTET_OK);
    for (int i = 0; i < M * K; i++)
        dinp[i] -= acc ? dinp0[i] : 0.0f;
    for (int i = 0; i < N * K; i++)
        dw[i] -= dw0[i];
    for (int i = 0; i < N; i++)
        db[i] -= db0[i];
    ck_assert_int_eq(fd_check("matmul dinp", &p, c.inp, dinp, M * K), 0);
    ck_assert_int_eq(fd_check("matmul dweight", &p, c.weight, dw, N * K), 0);
    ck_assert_int_eq(fd_check("matmul dbias", &p, c.bias, db, N), 0);
    /* NULL gradients are skipped */
    ck_assert_int_eq(ops->matmul_backward(ops_test_device(), NULL, NULL, db, dout, NULL, NULL, M, K, N, 0), OCTET_OK);
    fd_free(&p);
    free(inp), free(w), free(b), free(dout), free(dinp0), free(dw0), free(db0), free(dinp), free(dw), free(db);
    free(c.inp), free(c.weight), free(c.bias);
}
END_TEST

/* ------------------------------------------------------------------ elementwise */

typedef struct unary_ctx {
    double *x; /* (n) */
    int64_t n;
    int kind;  /* 0 relu, 1 gelu */
} unary_ctx;

static void unary_ref(void *vc, double *out)
{
    unary_ctx *c = vc;
    for (int64_t i = 0; i < c->n; i++) {
        double x = c->x[i];
        out[i] = c->kind == 0 ? (x > 0 ? x : 0.0) : 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    }
}

/* _i = 0: ReLU, 1: GELU. Inputs in [-4, 4], kept 1e-3 away from ReLU's kink. */
START_TEST(test_activation_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int64_t n = 3 * 7 * 12;
    test_rng r;
    rng_seed(&r, 11 + (uint64_t)_i);
    float *x = fbuf(n);
    rng_fill_uniform(&r, x, (size_t)n, -4.0f, 4.0f);
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 1e-3f)
            x[i] = 0.5f;
    unary_ctx c = {to_double(x, n), n, _i};
    double *want = dbuf(n);
    unary_ref(&c, want);
    float *y = fbuf(n), *dx = fbuf(n);
    ck_assert_int_eq((_i ? ops->gelu_forward : ops->relu_forward)(d, y, x, n), OCTET_OK);
    ck_assert_int_eq(mismatches(_i ? "gelu" : "relu", y, want, n, FWD_RTOL, FWD_ATOL), 0);
    fd_problem p;
    fd_init(&p, unary_ref, &c, n, &r);
    float *dout = fd_dout(&p);
    ck_assert_int_eq((_i ? ops->gelu_backward : ops->relu_backward)(d, dx, x, dout, n), OCTET_OK);
    ck_assert_int_eq(fd_check(_i ? "gelu dinp" : "relu dinp", &p, c.x, dx, n), 0);
    /* in place on dout */
    ck_assert_int_eq((_i ? ops->gelu_backward : ops->relu_backward)(d, dout, x, dout, n), OCTET_OK);
    ck_assert_int_eq(memcmp(dout, dx, sizeof(float) * (size_t)n), 0);
    fd_free(&p);
    free(x), free(c.x), free(want), free(y), free(dx), free(dout);
}
END_TEST

START_TEST(test_gelu_known_values)
{
    /* torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 0.5, 2.]), approximate='none') */
    const float x[5] = {-3.0f, -1.0f, 0.0f, 0.5f, 2.0f};
    const double want[5] = {-0.0040496886, -0.15865525, 0.0, 0.34573123, 1.9544997};
    float y[5];
    ck_assert_int_eq(ops_test_table()->gelu_forward(ops_test_device(), y, x, 5), OCTET_OK);
    ck_assert_int_eq(mismatches("gelu known", y, want, 5, 1e-6, 1e-7), 0);
}
END_TEST

/* The fused bias + GELU (DistilBERT's lin1 then GELU): shapes (M, N) with N below, at and above
 * one OpenMP work item of act_cpu.c (4096 elements) and M > 1 row per item, all odd. */
static const int bias_gelu_shapes[][2] = {{1, 1}, {21, 5}, {3, 4099}, {1001, 7}, {5, 8193}};

/* _i = shape * 2 + with_bias. Against (a) the definition, element by element with ops_math.h's
 * gelu_one and the one float addition of the bias, and (b) what it replaces: matmul_forward with
 * the bias, then gelu_forward; both bit for bit (pre and out). NULL bias: pre is left alone. */
START_TEST(test_bias_gelu_matches_unfused)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int M = bias_gelu_shapes[_i / 2][0], N = bias_gelu_shapes[_i / 2][1], K = 9, with_bias = _i & 1;
    int64_t MN = (int64_t)M * N;
    test_rng r;
    rng_seed(&r, 15 + (uint64_t)_i);
    float *pre0 = frand(&r, MN, 2.0f), *bias = with_bias ? frand(&r, N, 1.0f) : NULL;
    float *pre = fbuf(MN), *out = fbuf(MN), *want_pre = fbuf(MN), *want_out = fbuf(MN);
    memcpy(pre, pre0, sizeof(float) * (size_t)MN);
    for (int64_t i = 0; i < MN; i++) {
        want_pre[i] = bias ? pre0[i] + bias[i % N] : pre0[i];
        want_out[i] = gelu_one(want_pre[i]);
    }
    ck_assert_int_eq(ops->bias_gelu_forward(d, pre, out, bias, M, N), OCTET_OK);
    ck_assert_int_eq(memcmp(pre, want_pre, sizeof(float) * (size_t)MN), 0);
    ck_assert_int_eq(memcmp(out, want_out, sizeof(float) * (size_t)MN), 0);

    /* the unfused pair on a linear layer's output */
    float *inp = frand(&r, (int64_t)M * K, 1.0f), *w = frand(&r, (int64_t)N * K, 1.0f);
    float *fc_a = fbuf(MN), *g_a = fbuf(MN), *fc_b = fbuf(MN), *g_b = fbuf(MN);
    ck_assert_int_eq(ops->matmul_forward(d, fc_a, inp, w, bias, M, K, N), OCTET_OK);
    ck_assert_int_eq(ops->gelu_forward(d, g_a, fc_a, MN), OCTET_OK);
    ck_assert_int_eq(ops->matmul_forward(d, fc_b, inp, w, NULL, M, K, N), OCTET_OK);
    ck_assert_int_eq(ops->bias_gelu_forward(d, fc_b, g_b, bias, M, N), OCTET_OK);
    ck_assert_int_eq(memcmp(fc_a, fc_b, sizeof(float) * (size_t)MN), 0);
    ck_assert_int_eq(memcmp(g_a, g_b, sizeof(float) * (size_t)MN), 0);
    free(pre0), free(bias), free(pre), free(out), free(want_pre), free(want_out);
    free(inp), free(w), free(fc_a), free(g_a), free(fc_b), free(g_b);
}
END_TEST

/* Refusals (ops_check.h's ops_bias_gelu_ok, shared with the CUDA twin): dimensions, NULL
 * buffers, out overlapping pre in whole or in part; nothing is written. Adjacent ranges of one
 * allocation are fine. */
START_TEST(test_bias_gelu_rejects_bad_arguments)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    float buf[13], bias[3] = {1.0f, 2.0f, 3.0f}, before[13];
    for (int i = 0; i < 13; i++)
        buf[i] = (float)i - 6.0f;
    memcpy(before, buf, sizeof buf);
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, buf + 6, bias, 0, 3), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, buf + 6, bias, 2, -3), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->bias_gelu_forward(d, NULL, buf + 6, bias, 2, 3), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, NULL, bias, 2, 3), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, buf, bias, 2, 3), OCTET_ERR_ARG);     /* out == pre */
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, buf + 5, bias, 2, 3), OCTET_ERR_ARG); /* last element */
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf + 1, buf, NULL, 2, 3), OCTET_ERR_ARG); /* out before pre */
    ck_assert_int_eq(memcmp(buf, before, sizeof buf), 0);
    ck_assert_int_eq(ops->bias_gelu_forward(d, buf, buf + 6, bias, 2, 3), OCTET_OK); /* adjacent */
    ck_assert_float_eq(buf[0], -5.0f);
    ck_assert_float_eq(buf[6], gelu_one(-5.0f));
    ck_assert_float_eq(buf[12], 6.0f); /* past the output */
}
END_TEST

/* ops_math.h's own erf and exp, which GELU runs on both twins instead of libm's: within 1.25 ulp
 * (erf) and 1 ulp (exp) of the double-precision functions over a dense sweep of the floats
 * (every 997th bit pattern from 1 up to 6 for erf, every 1999th from 0 up to 87 for exp, both
 * signs), and at the edge values. */
static double ulp_of(double v)
{
    float f = (float)fabs(v);
    return (double)nextafterf(f, INFINITY) - (double)f;
}

/* The worst error of f against the double-precision ref, in ulp of ref's value, over the floats
 * with bit patterns first, first + stride, ... up to `top` and their negatives; *at: where. */
static double worst_ulp_error(float (*f)(float), double (*ref)(double), uint32_t first, uint32_t stride, float top,
                              float *at)
{
    double worst = 0.0;
    *at = 0.0f;
    for (uint32_t b = first; ops_bits_float((int32_t)b) <= top; b += stride)
        for (int sign = -1; sign <= 1; sign += 2) {
            float x = (float)sign * ops_bits_float((int32_t)b);
            double want = ref((double)x), e = fabs((double)f(x) - want) / ulp_of(want);
            if (e > worst)
                worst = e, *at = x;
        }
    return worst;
}

START_TEST(test_erf_exp_accuracy)
{
    float at;
    double worst = worst_ulp_error(ops_erff, erf, 1, 997, 6.0f, &at);
    ck_assert_msg(worst <= 1.25, "ops_erff: %.3f ulp at %.9g", worst, (double)at);
    ck_assert(ops_erff(0.0f) == 0.0f && ops_erff(10.0f) == 1.0f && ops_erff(-INFINITY) == -1.0f);
    worst = worst_ulp_error(ops_expf, exp, 0, 1999, 87.0f, &at);
    ck_assert_msg(worst <= 1.0, "ops_expf: %.3f ulp at %.9g", worst, (double)at);
    ck_assert(ops_expf(0.0f) == 1.0f && ops_expf(-200.0f) == 0.0f && isinf(ops_expf(100.0f)));
    ck_assert(isnan(ops_expf(NAN)) && isnan(ops_erff(NAN)) && isnan(ops_erff(-NAN)));
}
END_TEST

/* NaN through the elementwise ops and the linear layer, as PyTorch (torch 2.x of Debian's
 * python3-torch): torch.relu([nan, -1, 0, -0., 2]) = [nan, 0, 0, -0., 2] and its gradient
 * under ones is [1, 0, 0, 0, 1]; gelu(nan) and its gradient are nan; a NaN weight makes its
 * output column NaN even where the input is 0 (0 * nan), and the input gradient through it. */
START_TEST(test_nan_propagates_dense)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    const float x[5] = {NAN, -1.0f, 0.0f, -0.0f, 2.0f}, ones[5] = {1, 1, 1, 1, 1};
    const float grad_want[5] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f};
    float y[5], g[5];
    ck_assert_int_eq(ops->relu_forward(d, y, x, 5), OCTET_OK);
    ck_assert_msg(isnan(y[0]), "relu(nan) = %g", (double)y[0]);
    ck_assert(y[1] == 0.0f && y[2] == 0.0f && y[3] == 0.0f && signbit(y[3]) && y[4] == 2.0f);
    ck_assert_int_eq(ops->relu_backward(d, g, x, ones, 5), OCTET_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(g[i] == grad_want[i], "relu grad[%d] = %g", i, (double)g[i]);
    ck_assert_int_eq(ops->gelu_forward(d, y, x, 5), OCTET_OK);
    ck_assert(isnan(y[0]) && isfinite(y[4]));
    ck_assert_int_eq(ops->gelu_backward(d, g, x, ones, 5), OCTET_OK);
    ck_assert(isnan(g[0]) && isfinite(g[4]));
    float pre[4] = {0.5f, NAN, -1.0f, 2.0f}, out[4];
    const float bias[2] = {0.0f, 1.0f};
    ck_assert_int_eq(ops->bias_gelu_forward(d, pre, out, bias, 2, 2), OCTET_OK);
    ck_assert(isfinite(out[0]) && isnan(out[1]) && isfinite(out[2]) && isfinite(out[3]));
    /* inp (2,2) = [[0, 1], [1, 1]], weight (2,2) = [[nan, 1], [1, 1]]: out[:, 0] is NaN */
    const float inp[4] = {0.0f, 1.0f, 1.0f, 1.0f}, w[4] = {NAN, 1.0f, 1.0f, 1.0f}, dout[4] = {1, 1, 1, 1};
    float o[4], dinp[4], dw[4] = {0}, db[2] = {0};
    ck_assert_int_eq(ops->matmul_forward(d, o, inp, w, NULL, 2, 2, 2), OCTET_OK);
    ck_assert_msg(isnan(o[0]) && o[1] == 1.0f && isnan(o[2]) && o[3] == 2.0f, "out %g %g %g %g", (double)o[0],
                  (double)o[1], (double)o[2], (double)o[3]);
    ck_assert_int_eq(ops->matmul_backward(d, dinp, dw, db, dout, inp, w, 2, 2, 2, 0), OCTET_OK);
    ck_assert(isnan(dinp[0]) && dinp[1] == 2.0f && isnan(dinp[2]) && dinp[3] == 2.0f);
    ck_assert(dw[0] == 1.0f && dw[1] == 2.0f && db[0] == 2.0f); /* inp and dout are finite */
}
END_TEST

START_TEST(test_add_and_scale)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int64_t n = 253;
    test_rng r;
    rng_seed(&r, 12);
    float *a = frand(&r, n, 1.0f), *b = frand(&r, n, 1.0f), *out = fbuf(n);
    double *want = dbuf(n);
    for (int64_t i = 0; i < n; i++)
        want[i] = (double)a[i] + b[i];
    ck_assert_int_eq(ops->add_forward(d, out, a, b, n), OCTET_OK);
    ck_assert_int_eq(mismatches("add", out, want, n, 1e-7, 0), 0);
    ck_assert_int_eq(ops->add_forward(d, a, a, b, n), OCTET_OK); /* aliasing */
    ck_assert_int_eq(memcmp(a, out, sizeof(float) * (size_t)n), 0);
    for (int64_t i = 0; i < n; i++)
        want[i] = (double)out[i] * 0.25;
    ck_assert_int_eq(ops->scale(d, out, n, 0.25f), OCTET_OK);
    ck_assert_int_eq(mismatches("scale", out, want, n, 0, 0), 0);
    free(a), free(b), free(out), free(want);
}
END_TEST

START_TEST(test_token_select)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 3, T = 7, C = 12, t = _i ? 4 : 0;
    test_rng r;
    rng_seed(&r, 13);
    float *inp = frand(&r, B * T * C, 1.0f), *out = fbuf(B * C), *dinp = frand(&r, B * T * C, 1.0f);
    ck_assert_int_eq(ops->token_select_forward(d, out, inp, B, T, C, t), OCTET_OK);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            ck_assert_float_eq(out[b * C + c], inp[(b * T + t) * C + c]);
    ck_assert_int_eq(ops->token_select_backward(d, dinp, out, B, T, C, t), OCTET_OK);
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++)
            for (int c = 0; c < C; c++)
                ck_assert_float_eq(dinp[(b * T + tt) * C + c], tt == t ? out[b * C + c] : 0.0f);
    ck_assert_int_eq(ops->token_select_forward(d, out, inp, B, T, C, T), OCTET_ERR_ARG);
    free(inp), free(out), free(dinp);
}
END_TEST

/* ------------------------------------------------------------------ global norm */

/* 40000: past OCTET_PAR_MIN (threads.h), so one buffer's sum runs in parallel */
static const int64_t gn_sizes[] = {1, 63, 64, 65, 1000, 4097, 40000};
#define GN_COUNT 7

START_TEST(test_sumsq_matches_reference_and_is_deterministic)
{
    const ops_table *ops = ops_test_table();
    test_rng r;
    rng_seed(&r, 14);
    float *bufs[GN_COUNT];
    double want = 0.0;
    for (int i = 0; i < GN_COUNT; i++) {
        bufs[i] = frand(&r, gn_sizes[i], 1.0f + i);
        for (int64_t j = 0; j < gn_sizes[i]; j++)
            want += (double)bufs[i][j] * bufs[i][j];
    }
    double got = 0.0, again = 0.0;
    ck_assert_int_eq(ops->sumsq(ops_test_device(), &got, (const float *const *)bufs, gn_sizes, GN_COUNT), OCTET_OK);
    ck_assert_double_eq_tol(got, want, 1e-12 * want);
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    ck_assert_int_eq(ops->sumsq(ops_test_device(), &again, (const float *const *)bufs, gn_sizes, GN_COUNT), OCTET_OK);
    omp_set_num_threads(threads > 1 ? threads : 3);
#else
    ck_assert_int_eq(ops->sumsq(ops_test_device(), &again, (const float *const *)bufs, gn_sizes, GN_COUNT), OCTET_OK);
#endif
    ck_assert_msg(got == again, "sumsq depends on the thread count: %.17g vs %.17g", got, again);
    for (int i = 0; i < GN_COUNT; i++)
        free(bufs[i]);
}
END_TEST

/* _i = 0: clipping scales to max_norm; 1: below max_norm nothing changes; 2: NaN: nothing scaled. */
START_TEST(test_clip_grad_norm)
{
    device *d = ops_test_device();
    test_rng r;
    rng_seed(&r, 15);
    float *bufs[GN_COUNT], *orig[GN_COUNT];
    double ss = 0.0;
    for (int i = 0; i < GN_COUNT; i++) {
        bufs[i] = frand(&r, gn_sizes[i], 0.1f);
        orig[i] = fbuf(gn_sizes[i]);
        for (int64_t j = 0; j < gn_sizes[i]; j++)
            ss += (double)bufs[i][j] * bufs[i][j];
    }
    if (_i == 2)
        bufs[3][5] = NAN;
    for (int i = 0; i < GN_COUNT; i++)
        memcpy(orig[i], bufs[i], sizeof(float) * (size_t)gn_sizes[i]);
    double norm = sqrt(ss), max_norm = _i == 0 ? norm / 4 : norm * 2, got = 0.0;
    ck_assert_int_eq(ops_clip_grad_norm(d, bufs, gn_sizes, GN_COUNT, max_norm, &got), OCTET_OK);
    if (_i == 2) {
        ck_assert(isnan(got));
    } else {
        ck_assert_double_eq_tol(got, norm, 1e-9 * norm);
    }
    double coef = _i == 0 ? max_norm / (norm + 1e-6) : 1.0;
    for (int i = 0; i < GN_COUNT; i++)
        for (int64_t j = 0; j < gn_sizes[i]; j++) {
            if (_i == 2 && i == 3 && j == 5)
                continue;
            double want = (double)orig[i][j] * coef;
            ck_assert_double_eq_tol(bufs[i][j], want, 1e-6 * fabs(want));
        }
    for (int i = 0; i < GN_COUNT; i++)
        free(bufs[i]), free(orig[i]);
}
END_TEST

START_TEST(test_ops_for_picks_the_cpu_table)
{
    const ops_table *t = ops_for(ops_test_device());
    ck_assert_ptr_eq(t, ops_table_cpu());
    ck_assert_str_eq(t->name, "cpu");
    ck_assert_ptr_null(ops_for(NULL));
    /* every entry is filled in */
    const void *const *slot = (const void *const *)&t->gemm;
    size_t n = (sizeof *t - offsetof(ops_table, gemm)) / sizeof(void *);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(slot[i] != NULL, "ops_table entry %zu is NULL", i);
}
END_TEST

Suite *suite_ops_dense(void)
{
    Suite *s = suite_create("ops_dense");
    TCase *tc = tcase_create("matmul");
    tcase_add_loop_test(tc, test_gemm_matches_naive_all_transposes, 0,
                        (int)(sizeof gemm_shapes / sizeof gemm_shapes[0]));
    tcase_add_test(tc, test_gemm_rejects_bad_dims);
    tcase_add_loop_test(tc, test_matmul_forward_matches_reference, 0, 2);
    tcase_add_loop_test(tc, test_matmul_backward_matches_fd, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("elementwise");
    tcase_add_loop_test(tc, test_activation_forward_backward, 0, 2);
    tcase_add_test(tc, test_gelu_known_values);
    tcase_add_loop_test(tc, test_bias_gelu_matches_unfused, 0,
                        (int)(2 * sizeof bias_gelu_shapes / sizeof bias_gelu_shapes[0]));
    tcase_add_test(tc, test_bias_gelu_rejects_bad_arguments);
    tcase_add_test(tc, test_erf_exp_accuracy);
    tcase_add_test(tc, test_nan_propagates_dense);
    tcase_add_test(tc, test_add_and_scale);
    tcase_add_loop_test(tc, test_token_select, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradnorm");
    tcase_add_test(tc, test_sumsq_matches_reference_and_is_deterministic);
    tcase_add_loop_test(tc, test_clip_grad_norm, 0, 3);
    tcase_add_test(tc, test_ops_for_picks_the_cpu_table);
    suite_add_tcase(s, tc);
    return s;
}
