/* check_ops_norm.c: LayerNorm and the embedding lookup against double references and finite
 * differences. LayerNorm runs with DistilBERT's eps = 1e-12 and with torch's default 1e-5, on
 * rows with a large offset (the two-pass variance must not cancel); the embedding runs with a
 * vocabulary of 5 over 21 tokens, so ids repeat, plus an out-of-range id and a padding_idx;
 * NaN propagates through both as through PyTorch's. */
#include "check_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ layernorm */

typedef struct ln_ctx {
    double *inp, *w, *b; /* (N,C), (C), (C) */
    int N, C;
    double eps;
} ln_ctx;

static void ln_ref(void *vc, double *out)
{
    ln_ctx *c = vc;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->inp + n * c->C;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < c->C; i++)
            m += x[i];
        m /= c->C;
        for (int i = 0; i < c->C; i++)
            v += (x[i] - m) * (x[i] - m);
        v /= c->C;
        double rstd = 1.0 / sqrt(v + c->eps);
        for (int i = 0; i < c->C; i++)
            out[n * c->C + i] = (x[i] - m) * rstd * c->w[i] + c->b[i];
    }
}

static const float ln_eps[] = {1e-12f, 1e-5f};

/* _i: eps index. Rows are N(3, 1.5^2): an offset larger than the spread; row 0 is N(0, 1e-6),
 * whose variance is comparable to eps = 1e-5, so the eps actually used shows. */
START_TEST(test_layernorm_forward_matches_reference)
{
    const ops_table *ops = ops_test_table();
    int N = 21, C = 12;
    test_rng r;
    rng_seed(&r, 21 + (uint64_t)_i);
    float *x = frand(&r, N * C, 1.5f), *w = frand(&r, C, 1.0f), *b = frand(&r, C, 1.0f);
    for (int i = 0; i < N * C; i++)
        x[i] = i < C ? x[i] * (1e-3f / 1.5f) : x[i] + 3.0f;
    float *y = fbuf(N * C), *mean = fbuf(N), *rstd = fbuf(N);
    ln_ctx c = {to_double(x, N * C), to_double(w, C), to_double(b, C), N, C, ln_eps[_i]};
    double *want = dbuf(N * C), *want_mean = dbuf(N), *want_rstd = dbuf(N);
    ln_ref(&c, want);
    for (int n = 0; n < N; n++) {
        double m = 0.0, v = 0.0;
        for (int i = 0; i < C; i++)
            m += c.inp[n * C + i] / C;
        for (int i = 0; i < C; i++)
            v += (c.inp[n * C + i] - m) * (c.inp[n * C + i] - m) / C;
        want_mean[n] = m;
        want_rstd[n] = 1.0 / sqrt(v + ln_eps[_i]);
    }
    ck_assert_int_eq(ops->layernorm_forward(ops_test_device(), y, mean, rstd, x, w, b, N, C, ln_eps[_i]),
                     OCTET_OK);
    ck_assert_int_eq(mismatches("layernorm out", y, want, N * C, FWD_RTOL, FWD_ATOL), 0);
    ck_assert_int_eq(mismatches("layernorm mean", mean, want_mean, N, FWD_RTOL, FWD_ATOL), 0);
    ck_assert_int_eq(mismatches("layernorm rstd", rstd, want_rstd, N, FWD_RTOL, FWD_ATOL), 0);
    free(x), free(w), free(b), free(y), free(mean), free(rstd), free(c.inp), free(c.w), free(c.b);
    free(want), free(want_mean), free(want_rstd);
}
END_TEST

/* dweight and dbias start from random values (they accumulate); dinp is also computed in place
 * on a copy of dout. */
START_TEST(test_layernorm_backward_matches_fd)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int N = 21, C = 12;
    test_rng r;
    rng_seed(&r, 23 + (uint64_t)_i);
    float *x = frand(&r, N * C, 1.5f), *w = frand(&r, C, 1.0f), *b = frand(&r, C, 1.0f);
    for (int i = 0; i < N * C; i++)
        x[i] += 3.0f;
    float *y = fbuf(N * C), *mean = fbuf(N), *rstd = fbuf(N);
    ck_assert_int_eq(ops->layernorm_forward(d, y, mean, rstd, x, w, b, N, C, ln_eps[_i]), OCTET_OK);
    ln_ctx c = {to_double(x, N * C), to_double(w, C), to_double(b, C), N, C, ln_eps[_i]};
    fd_problem p;
    fd_init(&p, ln_ref, &c, N * C, &r);
    float *dout = fd_dout(&p);
    float *dx = fbuf(N * C), *dw0 = frand(&r, C, 1.0f), *db0 = frand(&r, C, 1.0f);
    float *dw = fbuf(C), *db = fbuf(C);
    memcpy(dw, dw0, sizeof(float) * C);
    memcpy(db, db0, sizeof(float) * C);
    ck_assert_int_eq(ops->layernorm_backward(d, dx, dw, db, dout, x, w, mean, rstd, N, C), OCTET_OK);
    for (int i = 0; i < C; i++) {
        dw[i] -= dw0[i];
        db[i] -= db0[i];
    }
    ck_assert_int_eq(fd_check("layernorm dinp", &p, c.inp, dx, N * C), 0);
    ck_assert_int_eq(fd_check("layernorm dweight", &p, c.w, dw, C), 0);
    ck_assert_int_eq(fd_check("layernorm dbias", &p, c.b, db, C), 0);
    /* dinp in place over dout, parameter grads skipped */
    ck_assert_int_eq(ops->layernorm_backward(d, dout, NULL, NULL, dout, x, w, mean, rstd, N, C), OCTET_OK);
    ck_assert_int_eq(memcmp(dout, dx, sizeof(float) * N * C), 0);
    fd_free(&p);
    free(x), free(w), free(b), free(y), free(mean), free(rstd), free(dout), free(dx), free(dw0), free(db0);
    free(dw), free(db), free(c.inp), free(c.w), free(c.b);
}
END_TEST

/* ------------------------------------------------------------------ embedding */

typedef struct emb_ctx {
    const int *ids;      /* (B,T) */
    double *wte, *wpe;   /* (V,C), (P,C) */
    int B, T, C, V;
} emb_ctx;

static void emb_ref(void *vc, double *out)
{
    emb_ctx *c = vc;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++) {
            int id = c->ids[b * c->T + t];
            for (int i = 0; i < c->C; i++) {
                double wv = (id >= 0 && id < c->V) ? c->wte[id * c->C + i] : 0.0;
                out[(b * c->T + t) * c->C + i] = wv + (c->wpe ? c->wpe[t * c->C + i] : 0.0);
            }
        }
}

/* ids over a vocabulary of 5 (repeats), one id out of range (7) which reads a zero row. */
static void emb_ids(test_rng *r, int *ids, int n, int V)
{
    for (int i = 0; i < n; i++)
        ids[i] = (int)(rng_u64(r) % (uint64_t)V);
    ids[3] = 1;
    ids[10] = 1; /* a guaranteed repeat */
    ids[n - 1] = V + 2;
}

/* _i = 0: word + position embeddings; 1: word only (wpe NULL). */
START_TEST(test_embedding_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 3, T = 7, C = 12, V = 5, P = T + 2, with_pos = _i == 0;
    test_rng r;
    rng_seed(&r, 31 + (uint64_t)_i);
    int *ids = ibuf(B * T);
    emb_ids(&r, ids, B * T, V);
    float *wte = frand(&r, V * C, 1.0f), *wpe = frand(&r, P * C, 1.0f), *out = fbuf(B * T * C);
    emb_ctx c = {ids, to_double(wte, V * C), with_pos ? to_double(wpe, P * C) : NULL, B, T, C, V};
    double *want = dbuf(B * T * C);
    emb_ref(&c, want);
    ck_assert_int_eq(ops->embedding_forward(d, out, ids, wte, with_pos ? wpe : NULL, B, T, C, V), OCTET_OK);
    ck_assert_int_eq(mismatches("embedding out", out, want, B * T * C, FWD_RTOL, FWD_ATOL), 0);

    fd_problem p;
    fd_init(&p, emb_ref, &c, B * T * C, &r);
    float *dout = fd_dout(&p);
    float *dwte0 = frand(&r, V * C, 1.0f), *dwpe0 = frand(&r, P * C, 1.0f);
    float *dwte = fbuf(V * C), *dwpe = fbuf(P * C);
    memcpy(dwte, dwte0, sizeof(float) * V * C);
    memcpy(dwpe, dwpe0, sizeof(float) * P * C);
    ck_assert_int_eq(ops->embedding_backward(d, dwte, with_pos ? dwpe : NULL, dout, ids, B, T, C, V, -1),
                     OCTET_OK);
    for (int i = 0; i < V * C; i++)
        dwte[i] -= dwte0[i];
    ck_assert_int_eq(fd_check("embedding dwte", &p, c.wte, dwte, V * C), 0);
    if (with_pos) {
        for (int i = 0; i < P * C; i++)
            dwpe[i] -= dwpe0[i];
        ck_assert_int_eq(fd_check("embedding dwpe", &p, c.wpe, dwpe, P * C), 0);
    } else {
        ck_assert_int_eq(memcmp(dwpe, dwpe0, sizeof(float) * P * C), 0);
    }
    fd_free(&p);
    free(ids), free(wte), free(wpe), free(out), free(want), free(c.wte), free(c.wpe), free(dout);
    free(dwte0), free(dwpe0), free(dwte), free(dwpe);
}
END_TEST

/* nn.Embedding(padding_idx=1): row 1 gets no gradient, the others the same as without. */
START_TEST(test_embedding_padding_idx_gets_no_gradient)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 3, T = 7, C = 12, V = 5;
    test_rng r;
    rng_seed(&r, 33);
    int *ids = ibuf(B * T);
    emb_ids(&r, ids, B * T, V);
    float *dout = frand(&r, B * T * C, 1.0f), *with = fbuf(V * C), *without = fbuf(V * C);
    ck_assert_int_eq(ops->embedding_backward(d, with, NULL, dout, ids, B, T, C, V, 1), OCTET_OK);
    ck_assert_int_eq(ops->embedding_backward(d, without, NULL, dout, ids, B, T, C, V, -1), OCTET_OK);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < C; i++) {
            if (v == 1) {
                ck_assert_float_eq(with[v * C + i], 0.0f);
                ck_assert_float_ne(without[v * C + i], 0.0f);
            } else {
                ck_assert_float_eq(with[v * C + i], without[v * C + i]);
            }
        }
    free(ids), free(dout), free(with), free(without);
}
END_TEST

/* NaN as in PyTorch: nn.LayerNorm(3) of [[1, nan, 2], [1, 2, 3]] is [[nan, nan, nan], [-1.2247,
 * 0, 1.2247]]; a NaN weight spoils its column only; a NaN upstream gradient spoils its row's
 * input gradient and its column's parameter gradients. An embedding row holding NaN reaches the
 * tokens with that id and no others, and a NaN upstream gradient reaches that id's gradient row. */
START_TEST(test_nan_propagates_norm_embedding)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    const float x[6] = {1.0f, NAN, 2.0f, 1.0f, 2.0f, 3.0f}, w1[3] = {1, 1, 1}, b0[3] = {0, 0, 0};
    const float wnan[3] = {NAN, 1, 1};
    float y[6], mean[2], rstd[2];
    ck_assert_int_eq(ops->layernorm_forward(d, y, mean, rstd, x, w1, b0, 2, 3, 1e-5f), OCTET_OK);
    ck_assert(isnan(y[0]) && isnan(y[1]) && isnan(y[2]) && isnan(mean[0]));
    ck_assert_float_eq_tol(y[3], -1.2247356f, 1e-5f);
    ck_assert_float_eq_tol(y[5], 1.2247356f, 1e-5f);
    ck_assert_int_eq(ops->layernorm_forward(d, y, mean, rstd, x + 3, wnan, b0, 1, 3, 1e-5f), OCTET_OK);
    ck_assert(isnan(y[0]) && isfinite(y[1]) && isfinite(y[2]));
    const float dout[6] = {1.0f, 1.0f, 1.0f, NAN, 0.5f, 0.25f};
    float dx[6], dw[3] = {0}, db[3] = {0};
    ck_assert_int_eq(ops->layernorm_forward(d, y, mean, rstd, x + 3, w1, b0, 1, 3, 1e-5f), OCTET_OK);
    float mean2[2] = {mean[0], mean[0]}, rstd2[2] = {rstd[0], rstd[0]}, x2[6] = {1, 2, 3, 1, 2, 3};
    ck_assert_int_eq(ops->layernorm_backward(d, dx, dw, db, dout, x2, w1, mean2, rstd2, 2, 3), OCTET_OK);
    ck_assert(isfinite(dx[0]) && isfinite(dx[1]) && isfinite(dx[2]));
    ck_assert(isnan(dx[3]) && isnan(dx[4]) && isnan(dx[5]));
    ck_assert(isnan(dw[0]) && isnan(db[0]) && isfinite(db[1]) && isfinite(dw[2]));

    /* V = 3, C = 2, ids [[0, 1], [2, 1]]; row 1 of wte holds NaN */
    const int ids[4] = {0, 1, 2, 1};
    const float wte[6] = {0.5f, -0.5f, NAN, 1.0f, 2.0f, 3.0f};
    float out[8], dwte[6] = {0};
    ck_assert_int_eq(ops->embedding_forward(d, out, ids, wte, NULL, 2, 2, 2, 3), OCTET_OK);
    ck_assert(out[0] == 0.5f && isnan(out[2]) && out[3] == 1.0f && out[4] == 2.0f && isnan(out[6]));
    const float demb[8] = {1, 1, 1, 1, NAN, 1, 1, 1};
    ck_assert_int_eq(ops->embedding_backward(d, dwte, NULL, demb, ids, 2, 2, 2, 3, -1), OCTET_OK);
    ck_assert(dwte[0] == 1.0f && dwte[2] == 2.0f && isnan(dwte[4]) && dwte[5] == 1.0f);
}
END_TEST

Suite *suite_ops_norm(void)
{
    Suite *s = suite_create("ops_norm");
    TCase *tc = tcase_create("layernorm");
    tcase_add_loop_test(tc, test_layernorm_forward_matches_reference, 0, 2);
    tcase_add_loop_test(tc, test_layernorm_backward_matches_fd, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("embedding");
    tcase_add_loop_test(tc, test_embedding_forward_backward, 0, 2);
    tcase_add_test(tc, test_embedding_padding_idx_gets_no_gradient);
    tcase_add_test(tc, test_nan_propagates_norm_embedding);
    suite_add_tcase(s, tc);
    return s;
}
