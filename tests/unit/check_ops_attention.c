/* check_ops_attention.c: the masked softmax and multi-head attention against double references
 * written here from Hugging Face DistilBERT's MultiHeadSelfAttention (q / sqrt(head_dim), q k^T,
 * masked_fill(mask == 0, finfo.min), softmax, dropout, . v) and against finite differences.
 * B = 3, T = 7, C = 12, H = 3 (head_dim 4); the padding mask keeps 7, 4 and 1 keys of the three
 * sequences, and one case masks a whole sequence (PyTorch then gives uniform weights). The
 * reference applies the dropout mask through dropout_factor_one, whose statistics and
 * reproducibility check_ops_loss.c tests. */
#include "check_ops.h"
#include "ops_math.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* softmax of a row of already scaled and masked scores s (T) into p, in double. */
static void softmax_ref_row(double *p, const double *s, int T)
{
    double mx = s[0], sum = 0.0;
    for (int j = 1; j < T; j++)
        mx = s[j] > mx ? s[j] : mx;
    for (int j = 0; j < T; j++)
        sum += p[j] = exp(s[j] - mx);
    for (int j = 0; j < T; j++)
        p[j] /= sum;
}

/* ------------------------------------------------------------------ softmax */

typedef struct sm_ctx {
    double *x;       /* (B,R,T) */
    const int *mask; /* (B,T) */
    int B, R, T;
    double scale;
} sm_ctx;

static void sm_ref(void *vc, double *out)
{
    sm_ctx *c = vc;
    double s[64];
    for (int b = 0; b < c->B; b++)
        for (int r = 0; r < c->R; r++) {
            const double *x = c->x + (b * c->R + r) * c->T;
            for (int j = 0; j < c->T; j++)
                s[j] = c->mask[b * c->T + j] ? c->scale * x[j] : -FLT_MAX;
            softmax_ref_row(out + (b * c->R + r) * c->T, s, c->T);
        }
}

/* _i = 0: keys 7, 4, 1 kept; 1: the second sequence fully masked. */
START_TEST(test_softmax_masked_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 3, R = 5, T = 7, n = B * R * T;
    int lens[2][3] = {{7, 4, 1}, {7, 0, 3}};
    test_rng r;
    rng_seed(&r, 41 + (uint64_t)_i);
    int *mask = padding_mask(B, T, lens[_i]);
    float *x = frand(&r, n, 2.0f), *y = fbuf(n), *dx = fbuf(n);
    sm_ctx c = {to_double(x, n), mask, B, R, T, 0.5};
    double *want = dbuf(n);
    sm_ref(&c, want);
    ck_assert_int_eq(ops->softmax_forward(d, y, x, mask, B, R, T, 0.5f), OCTET_OK);
    ck_assert_int_eq(mismatches("softmax out", y, want, n, FWD_RTOL, FWD_ATOL), 0);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < R * T; i++) {
            int j = i % T;
            if (lens[_i][b] > 0 && j >= lens[_i][b])
                ck_assert_float_eq(y[b * R * T + i], 0.0f); /* masked: exactly 0 */
            if (lens[_i][b] == 0)
                ck_assert_float_eq_tol(y[b * R * T + i], 1.0f / T, 1e-7f); /* torch: uniform */
        }
    fd_problem p;
    fd_init(&p, sm_ref, &c, n, &r);
    float *dout = fd_dout(&p);
    ck_assert_int_eq(ops->softmax_backward(d, dx, dout, y, mask, B, R, T, 0.5f), OCTET_OK);
    ck_assert_int_eq(fd_check("softmax dinp", &p, c.x, dx, n), 0);
    /* in place, forward and backward */
    ck_assert_int_eq(ops->softmax_backward(d, dout, dout, y, mask, B, R, T, 0.5f), OCTET_OK);
    ck_assert_int_eq(memcmp(dout, dx, sizeof(float) * (size_t)n), 0);
    ck_assert_int_eq(ops->softmax_forward(d, x, x, mask, B, R, T, 0.5f), OCTET_OK);
    ck_assert_int_eq(memcmp(x, y, sizeof(float) * (size_t)n), 0);
    fd_free(&p);
    free(mask), free(x), free(y), free(dx), free(c.x), free(want), free(dout);
}
END_TEST

START_TEST(test_softmax_without_mask)
{
    const ops_table *ops = ops_test_table();
    int B = 2, R = 3, T = 5, n = B * R * T;
    int lens[2] = {T, T};
    test_rng r;
    rng_seed(&r, 43);
    int *all = padding_mask(B, T, lens);
    float *x = frand(&r, n, 3.0f), *y1 = fbuf(n), *y2 = fbuf(n);
    ck_assert_int_eq(ops->softmax_forward(ops_test_device(), y1, x, NULL, B, R, T, 1.0f), OCTET_OK);
    ck_assert_int_eq(ops->softmax_forward(ops_test_device(), y2, x, all, B, R, T, 1.0f), OCTET_OK);
    ck_assert_int_eq(memcmp(y1, y2, sizeof(float) * (size_t)n), 0);
    free(all), free(x), free(y1), free(y2);
}
END_TEST

/* ------------------------------------------------------------------ attention */

typedef struct att_ctx {
    double *q, *k, *v;  /* (B,T,C) */
    const int *mask;    /* (B,T) */
    int B, T, C, H;
    ops_dropout drop;
} att_ctx;

/* HF DistilBERT: q / sqrt(dh), scores = q k^T, masked_fill(finfo.min), softmax, dropout, . v */
static void att_ref(void *vc, double *out)
{
    att_ctx *c = vc;
    int T = c->T, C = c->C, H = c->H, hs = C / H;
    double s[64], pr[64];
    float scale = dropout_scale(c->drop.p);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                for (int j = 0; j < T; j++) {
                    double dot = 0.0;
                    for (int e = 0; e < hs; e++)
                        dot += (c->q[(b * T + i) * C + h * hs + e] / sqrt((double)hs)) *
                               c->k[(b * T + j) * C + h * hs + e];
                    s[j] = c->mask[b * T + j] ? dot : -FLT_MAX;
                }
                softmax_ref_row(pr, s, T);
                for (int j = 0; j < T; j++) {
                    uint64_t idx = (uint64_t)(((b * H + h) * T + i) * T + j);
                    pr[j] *= dropout_factor_one(c->drop.p, scale, c->drop.seed, c->drop.offset, idx);
                }
                for (int e = 0; e < hs; e++) {
                    double o = 0.0;
                    for (int j = 0; j < T; j++)
                        o += pr[j] * c->v[(b * T + j) * C + h * hs + e];
                    out[(b * T + i) * C + h * hs + e] = o;
                }
            }
}

/* _i = 0: no dropout (work NULL); 1: attention dropout 0.1; 2: 0.5 with a fully masked row. */
START_TEST(test_attention_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 3, T = 7, C = 12, H = 3, n = B * T * C, na = B * H * T * T;
    int lens[3][3] = {{7, 4, 1}, {7, 4, 1}, {5, 0, 2}};
    const float ps[3] = {0.0f, 0.1f, 0.5f};
    ops_dropout drop = {ps[_i], 1234 + (uint64_t)_i, 77};
    test_rng r;
    rng_seed(&r, 51 + (uint64_t)_i);
    int *mask = padding_mask(B, T, lens[_i]);
    float *q = frand(&r, n, 1.0f), *k = frand(&r, n, 1.0f), *v = frand(&r, n, 1.0f);
    float *out = fbuf(n), *att = fbuf(na), *work = drop.p > 0 ? fbuf(na) : NULL;
    att_ctx c = {to_double(q, n), to_double(k, n), to_double(v, n), mask, B, T, C, H, drop};
    double *want = dbuf(n);
    att_ref(&c, want);
    ck_assert_int_eq(ops->attention_forward(d, out, att, work, q, k, v, mask, B, T, C, H, drop), OCTET_OK);
    ck_assert_int_eq(mismatches("attention out", out, want, n, FWD_RTOL, FWD_ATOL), 0);
    for (int b = 0; b < B; b++) /* saved probabilities: masked keys 0, rows sum to 1 */
        for (int hi = 0; hi < H * T; hi++) {
            const float *row = att + ((int64_t)b * H * T + hi) * T;
            double sum = 0.0;
            for (int j = 0; j < T; j++) {
                sum += row[j];
                if (lens[_i][b] > 0 && j >= lens[_i][b])
                    ck_assert_float_eq(row[j], 0.0f);
            }
            ck_assert_double_eq_tol(sum, 1.0, 1e-6);
        }

    fd_problem p;
    fd_init(&p, att_ref, &c, n, &r);
    float *dout = fd_dout(&p), *dq = fbuf(n), *dk = fbuf(n), *dv = fbuf(n), *bwork = fbuf(na);
    ck_assert_int_eq(ops->attention_backward(d, dq, dk, dv, bwork, dout, q, k, v, att, mask, B, T, C, H, drop),
                     OCTET_OK);
    ck_assert_int_eq(fd_check("attention dq", &p, c.q, dq, n), 0);
    ck_assert_int_eq(fd_check("attention dk", &p, c.k, dk, n), 0);
    ck_assert_int_eq(fd_check("attention dv", &p, c.v, dv, n), 0);
    fd_free(&p);
    free(mask), free(q), free(k), free(v), free(out), free(att), free(work), free(c.q), free(c.k), free(c.v);
    free(want), free(dout), free(dq), free(dk), free(dv), free(bwork);
}
END_TEST

START_TEST(test_attention_rejects_bad_arguments)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    float x[64] = {0};
    ops_dropout none = {0.0f, 0, 0}, some = {0.1f, 0, 0}, bad = {1.5f, 0, 0};
    /* C not a multiple of H */
    ck_assert_int_eq(ops->attention_forward(d, x, x, NULL, x, x, x, NULL, 1, 2, 5, 2, none), OCTET_ERR_ARG);
    /* dropout without its workspace */
    ck_assert_int_eq(ops->attention_forward(d, x, x, NULL, x, x, x, NULL, 1, 2, 4, 2, some), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->attention_forward(d, x, x, x, x, x, x, NULL, 1, 2, 4, 2, bad), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->attention_backward(d, x, x, x, NULL, x, x, x, x, x, NULL, 1, 2, 4, 2, none),
                     OCTET_ERR_ARG);
}
END_TEST

/* NaN as in PyTorch: softmax([1, nan, 2]) is all NaN, but a NaN score at a masked key is
 * replaced by the fill first (masked_fill), giving [0.2689, 0, 0.7311]; the backward pass of a
 * NaN row is NaN at every unmasked key. A NaN query makes its row of attention NaN and leaves
 * the other sequences of the batch alone. */
START_TEST(test_nan_propagates_softmax_attention)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    const float s[6] = {1.0f, NAN, 2.0f, 1.0f, NAN, 2.0f};
    const int keep_all[3] = {1, 1, 1}, skip_nan[3] = {1, 0, 1};
    int mask[6];
    memcpy(mask, keep_all, sizeof keep_all);
    memcpy(mask + 3, skip_nan, sizeof skip_nan);
    float p[6], dp[6];
    ck_assert_int_eq(ops->softmax_forward(d, p, s, mask, 2, 1, 3, 1.0f), OCTET_OK);
    ck_assert(isnan(p[0]) && isnan(p[1]) && isnan(p[2]));
    ck_assert_float_eq_tol(p[3], 0.26894142f, 1e-6f);
    ck_assert_float_eq(p[4], 0.0f);
    ck_assert_float_eq_tol(p[5], 0.73105858f, 1e-6f);
    const float dout[6] = {1.0f, 2.0f, 3.0f, NAN, 1.0f, 1.0f};
    ck_assert_int_eq(ops->softmax_backward(d, dp, dout, p, mask, 2, 1, 3, 1.0f), OCTET_OK);
    ck_assert(isnan(dp[0]) && isnan(dp[1]) && isnan(dp[2]));
    ck_assert(isnan(dp[3]) && dp[4] == 0.0f && isnan(dp[5])); /* a masked key keeps gradient 0 */

    int B = 2, T = 3, C = 4, H = 2, n = B * T * C, na = B * H * T * T;
    test_rng r;
    rng_seed(&r, 57);
    float *q = frand(&r, n, 1.0f), *k = frand(&r, n, 1.0f), *v = frand(&r, n, 1.0f);
    float *out = fbuf(n), *att = fbuf(na);
    q[0] = NAN; /* batch 0, token 0, head 0 */
    ck_assert_int_eq(ops->attention_forward(d, out, att, NULL, q, k, v, NULL, B, T, C, H,
                                            (ops_dropout){0.0f, 0, 0}), OCTET_OK);
    ck_assert(isnan(out[0]) && isnan(out[1]));               /* token 0, head 0 */
    for (int i = T * C; i < n; i++)                           /* batch 1 */
        ck_assert_msg(isfinite(out[i]), "out[%d] = %g", i, (double)out[i]);
    free(q), free(k), free(v), free(out), free(att);
}
END_TEST

Suite *suite_ops_attention(void)
{
    Suite *s = suite_create("ops_attention");
    TCase *tc = tcase_create("softmax");
    tcase_add_loop_test(tc, test_softmax_masked_forward_backward, 0, 2);
    tcase_add_test(tc, test_softmax_without_mask);
    tcase_add_test(tc, test_nan_propagates_softmax_attention);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_add_loop_test(tc, test_attention_forward_backward, 0, 3);
    tcase_add_test(tc, test_attention_rejects_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
