/* check_ops_loss.c: cross-entropy (2 and 5 classes, with torch's ignored labels), MSE, and
 * dropout.
 *
 * The losses are checked against double references and finite differences of the mean loss.
 * Dropout is checked as a random process: Philox4x32-10 against Random123's published
 * known-answer vectors; the same (seed, offset) gives the same mask whatever N or the thread
 * count, another seed or offset another mask; the kept fraction is 1-p within 5 standard
 * deviations; kept values are scaled by 1/(1-p); backward applies the forward's mask. NaN
 * logits and inputs propagate as in PyTorch (checked against torch's values). */
#include "check_ops.h"
#include "ops_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------ cross-entropy */

typedef struct ce_ctx {
    double *logits;    /* (B,C) */
    const int *labels; /* (B) */
    int B, C;
} ce_ctx;

/* out[0] = mean over samples with a label in [0,C) of logsumexp - logit[label]. */
static void ce_ref(void *vc, double *out)
{
    ce_ctx *c = vc;
    double sum = 0.0;
    int counted = 0;
    for (int b = 0; b < c->B; b++) {
        const double *x = c->logits + b * c->C;
        int y = c->labels[b];
        if (y < 0 || y >= c->C)
            continue;
        double mx = x[0], s = 0.0;
        for (int i = 1; i < c->C; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < c->C; i++)
            s += exp(x[i] - mx);
        sum += mx + log(s) - x[y];
        counted++;
    }
    out[0] = counted ? sum / counted : 0.0;
}

/* _i = 0: 2 classes; 1: 5 classes with one ignored label (-100); 2: 5 classes, all ignored. */
START_TEST(test_crossentropy_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    const int Bs[3] = {5, 7, 3}, Cs[3] = {2, 5, 5};
    int B = Bs[_i], C = Cs[_i];
    test_rng r;
    rng_seed(&r, 61 + (uint64_t)_i);
    float *logits = frand(&r, B * C, 2.0f), *losses = fbuf(B), loss = -1.0f, *dlogits = fbuf(B * C);
    int *labels = ibuf(B), *pred = ibuf(B);
    for (int b = 0; b < B; b++)
        labels[b] = _i == 2 ? -100 : (int)(rng_u64(&r) % (uint64_t)C);
    if (_i == 1)
        labels[2] = -100;
    ce_ctx c = {to_double(logits, B * C), labels, B, C};
    double want;
    ce_ref(&c, &want);
    ck_assert_int_eq(ops->crossentropy_forward(d, losses, &loss, pred, logits, labels, B, C), OCTET_OK);
    ck_assert_int_eq(mismatches("crossentropy loss", &loss, &want, 1, FWD_RTOL, FWD_ATOL), 0);
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int i = 1; i < C; i++)
            best = logits[b * C + i] > logits[b * C + best] ? i : best;
        ck_assert_int_eq(pred[b], best);
        if (labels[b] < 0)
            ck_assert_float_eq(losses[b], 0.0f);
        sum += losses[b];
    }
    int counted = B - (_i == 1) - (_i == 2) * B;
    ck_assert_double_eq_tol(counted ? sum / counted : 0.0, want, 1e-5);

    fd_problem p;
    fd_init(&p, ce_ref, &c, 1, &r);
    ck_assert_int_eq(ops->crossentropy_backward(d, dlogits, logits, labels, B, C, (float)p.w[0]), OCTET_OK);
    ck_assert_int_eq(fd_check("crossentropy dlogits", &p, c.logits, dlogits, B * C), 0);
    fd_free(&p);
    free(logits), free(losses), free(dlogits), free(labels), free(pred), free(c.logits);
}
END_TEST

/* torch.nn.functional.cross_entropy(torch.tensor([[1., 2., 3.], [0., 0., 0.]]), torch.tensor([2, 0])) */
START_TEST(test_crossentropy_known_value)
{
    const float logits[6] = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
    const int labels[2] = {2, 0};
    float loss;
    int pred[2];
    ck_assert_int_eq(ops_test_table()->crossentropy_forward(ops_test_device(), NULL, &loss, pred, logits, labels,
                                                            2, 3), OCTET_OK);
    ck_assert_float_eq_tol(loss, 0.7531091f, 1e-6f); /* (0.4076060 + ln 3) / 2 */
    ck_assert_int_eq(pred[0], 2);
    ck_assert_int_eq(pred[1], 0); /* ties: the first */
}
END_TEST

/* NaN as in PyTorch: cross_entropy([[1, nan, 3], [1, 2, 3]], [0, 1], reduction='none') is
 * [nan, 1.4076059] with a NaN mean; torch.argmax takes NaN for the largest value, so
 * [[1, nan, 3, nan], [nan, 1, 2, 3], [1, 2, 3, 4]] predicts [1, 0, 3]; the gradient of an
 * ignored row (-100) with a NaN logit is NaN too (0 x softmax), the other row's is
 * softmax - onehot = [0.0900306, -0.7552715, 0.6652410]. */
START_TEST(test_crossentropy_nan)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    const float logits[6] = {1.0f, NAN, 3.0f, 1.0f, 2.0f, 3.0f};
    const int labels[2] = {0, 1}, ignored[2] = {-100, 1};
    float losses[2], loss, dl[6];
    int pred[3];
    ck_assert_int_eq(ops->crossentropy_forward(d, losses, &loss, pred, logits, labels, 2, 3), OCTET_OK);
    ck_assert(isnan(losses[0]) && isnan(loss));
    ck_assert_float_eq_tol(losses[1], 1.4076059f, 1e-6f);
    ck_assert_int_eq(pred[0], 1);
    ck_assert_int_eq(pred[1], 2);
    const float rows[12] = {1.0f, NAN, 3.0f, NAN, NAN, 1.0f, 2.0f, 3.0f, 1.0f, 2.0f, 3.0f, 4.0f};
    ck_assert_int_eq(ops->crossentropy_forward(d, NULL, NULL, pred, rows, NULL, 3, 4), OCTET_OK);
    ck_assert_int_eq(pred[0], 1);
    ck_assert_int_eq(pred[1], 0);
    ck_assert_int_eq(pred[2], 3);
    ck_assert_int_eq(ops->crossentropy_forward(d, losses, &loss, NULL, logits, ignored, 2, 3), OCTET_OK);
    ck_assert_float_eq(losses[0], 0.0f);
    ck_assert_float_eq_tol(loss, 1.4076059f, 1e-6f);
    ck_assert_int_eq(ops->crossentropy_backward(d, dl, logits, ignored, 2, 3, 1.0f), OCTET_OK);
    ck_assert(isnan(dl[0]) && isnan(dl[1]) && isnan(dl[2]));
    ck_assert_float_eq_tol(dl[3], 0.0900306f, 1e-6f);
    ck_assert_float_eq_tol(dl[4], -0.7552715f, 1e-6f);
    ck_assert_float_eq_tol(dl[5], 0.6652410f, 1e-6f);
    ck_assert_int_eq(ops->crossentropy_backward(d, dl, logits, labels, 2, 3, 1.0f), OCTET_OK);
    ck_assert(isnan(dl[0]) && isnan(dl[1]) && isnan(dl[2]) && isfinite(dl[3]));
    /* a finite ignored row still gets exact zeros */
    ck_assert_int_eq(ops->crossentropy_backward(d, dl, logits + 3, ignored, 1, 3, 1.0f), OCTET_OK);
    ck_assert(dl[0] == 0.0f && dl[1] == 0.0f && dl[2] == 0.0f && !signbit(dl[0]));
}
END_TEST

/* ------------------------------------------------------------------ MSE */

typedef struct mse_ctx {
    double *pred, *target; /* (B) */
    int B;
} mse_ctx;

static void mse_ref(void *vc, double *out)
{
    mse_ctx *c = vc;
    double s = 0.0;
    for (int b = 0; b < c->B; b++)
        s += (c->pred[b] - c->target[b]) * (c->pred[b] - c->target[b]);
    out[0] = s / c->B;
}

START_TEST(test_mse_forward_backward)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int B = 7;
    test_rng r;
    rng_seed(&r, 71);
    float *pred = frand(&r, B, 1.0f), *target = frand(&r, B, 1.0f), *losses = fbuf(B), loss, *dpred = fbuf(B);
    mse_ctx c = {to_double(pred, B), to_double(target, B), B};
    double want;
    mse_ref(&c, &want);
    ck_assert_int_eq(ops->mse_forward(d, losses, &loss, pred, target, B), OCTET_OK);
    ck_assert_int_eq(mismatches("mse loss", &loss, &want, 1, FWD_RTOL, FWD_ATOL), 0);
    for (int b = 0; b < B; b++) {
        double e = (double)pred[b] - target[b];
        ck_assert_double_eq_tol(losses[b], e * e, 1e-5 * e * e + 1e-7);
    }
    fd_problem p;
    fd_init(&p, mse_ref, &c, 1, &r);
    ck_assert_int_eq(ops->mse_backward(d, dpred, pred, target, B, (float)p.w[0]), OCTET_OK);
    ck_assert_int_eq(fd_check("mse dpred", &p, c.pred, dpred, B), 0);
    fd_free(&p);
    free(pred), free(target), free(losses), free(dpred), free(c.pred), free(c.target);
}
END_TEST

/* ------------------------------------------------------------------ dropout */

START_TEST(test_philox_known_answers)
{
    /* Random123 tests/kat_vectors, "philox4x32 10": counter[4] key[2] -> out[4] */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        const uint32_t *v = kat[i];
        ops_philox_out o = ops_philox4x32_10(v[0], v[1], v[2], v[3], v[4], v[5]);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(o.v[j] == v[6 + j], "philox vector %d word %d: got %08x want %08x", i, j, o.v[j], v[6 + j]);
    }
}
END_TEST

#define DROP_N 100003

/* out = dropout(ones): 0 or 1/(1-p) per element */
static float *drop_ones(int64_t n, ops_dropout drop)
{
    float *x = fbuf(n), *y = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0f;
    ck_assert_int_eq(ops_test_table()->dropout_forward(ops_test_device(), y, x, n, drop), OCTET_OK);
    free(x);
    return y;
}

static int64_t count_differences(const float *a, const float *b, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += a[i] != b[i];
    return k;
}

/* The mask is the documented function of (seed, offset, i): keep iff the top 24 bits of word
 * i%4 of Philox(counter = (i/4, offset), key = seed), as a fraction of 2^24, are >= p. Pinning
 * it down keeps masks stable across versions and gives the CUDA twin one definition to meet. */
START_TEST(test_dropout_mask_follows_its_definition)
{
    ops_dropout drop = {0.3f, 0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    int64_t n = 4101;
    float *m = drop_ones(n, drop);
    for (int64_t i = 0; i < n; i++) {
        uint64_t c = (uint64_t)i / 4;
        ops_philox_out o = ops_philox4x32_10((uint32_t)c, (uint32_t)(c >> 32), 0x76543210u, 0xfedcba98u,
                                             0x89abcdefu, 0x01234567u);
        double u = (double)(o.v[i % 4] >> 8) / 16777216.0;
        float want = u >= (double)drop.p ? 1.0f / (1.0f - drop.p) : 0.0f;
        ck_assert_msg(m[i] == want, "element %lld: %g want %g", (long long)i, (double)m[i], (double)want);
    }
    free(m);
}
END_TEST

/* dropout_run, the lane-grouped run form the CPU twin applies masks with, equals
 * dropout_factor_one element by element at every start alignment and length (partial leading
 * group, whole groups, tail), for p inside (0, 1) and at its ends, in place and out of place. */
START_TEST(test_dropout_run_matches_per_element_factor)
{
    const float ps[4] = {0.1f, 0.5f, 0.0f, 1.0f};
    const uint64_t seed = 0x0123456789abcdefULL, offset = 0xfedcba9876543210ULL;
    float x[77], y[77], z[77];
    for (int i = 0; i < 77; i++)
        x[i] = 1.0f + 0.01f * (float)i;
    for (int k = 0; k < 4; k++) {
        float p = ps[k], scale = dropout_scale(p);
        /* idx0 near 2^32 / 4 groups too, where the counter's high word starts to count */
        const uint64_t bases[2] = {1000, (UINT64_C(1) << 34) - 40};
        for (int bi = 0; bi < 2; bi++)
            for (uint64_t idx0 = bases[bi]; idx0 < bases[bi] + 4; idx0++)
                for (int n = 0; n <= 77; n += (n < 12 ? 1 : 13)) {
                    dropout_run(y, x, n, p, scale, seed, offset, idx0);
                    memcpy(z, x, sizeof z);
                    dropout_run(z, z, n, p, scale, seed, offset, idx0);
                    for (int j = 0; j < n; j++) {
                        float want = x[j] * dropout_factor_one(p, scale, seed, offset, idx0 + (uint64_t)j);
                        ck_assert_msg(y[j] == want && z[j] == want, "p=%g idx0=%llu n=%d j=%d: %g/%g want %g",
                                      (double)p, (unsigned long long)idx0, n, j, (double)y[j], (double)z[j],
                                      (double)want);
                    }
                }
    }
}
END_TEST

/* _i indexes p in {0.1, 0.5, 0.9}. */
START_TEST(test_dropout_keep_fraction_and_scale)
{
    const float ps[3] = {0.1f, 0.5f, 0.9f};
    float p = ps[_i];
    ops_dropout drop = {p, 42, 3};
    test_rng r;
    rng_seed(&r, 81);
    float *x = frand(&r, DROP_N, 1.0f), *y = fbuf(DROP_N);
    ck_assert_int_eq(ops_test_table()->dropout_forward(ops_test_device(), y, x, DROP_N, drop), OCTET_OK);
    int64_t kept = 0;
    for (int64_t i = 0; i < DROP_N; i++) {
        if (y[i] == 0.0f)
            continue;
        kept++;
        double want = (double)x[i] / (1.0 - (double)p);
        ck_assert_msg(fabs(y[i] - want) <= 1e-6 * fabs(want), "kept element %lld: %.9g want %.9g", (long long)i,
                      (double)y[i], want);
    }
    double frac = (double)kept / DROP_N, sigma = sqrt((double)p * (1.0 - p) / DROP_N);
    ck_assert_msg(fabs(frac - (1.0 - p)) < 5.0 * sigma, "p=%g: kept %.5f, want %.5f +- %.5f", (double)p, frac,
                  1.0 - p, 5.0 * sigma);
    free(x), free(y);
}
END_TEST

START_TEST(test_dropout_is_reproducible)
{
    ops_dropout a = {0.1f, 42, 3}, b_seed = {0.1f, 43, 3}, b_off = {0.1f, 42, 4};
    float *m1 = drop_ones(DROP_N, a), *m2 = drop_ones(DROP_N, a);
    ck_assert_int_eq(count_differences(m1, m2, DROP_N), 0);
    /* another seed or offset: masks agree only by chance, ~2p(1-p) of elements differ */
    float *m3 = drop_ones(DROP_N, b_seed), *m4 = drop_ones(DROP_N, b_off);
    int64_t expect = (int64_t)(2 * 0.1 * 0.9 * DROP_N);
    ck_assert_int_gt(count_differences(m1, m3, DROP_N), expect * 9 / 10);
    ck_assert_int_gt(count_differences(m1, m4, DROP_N), expect * 9 / 10);
    /* element i's fate does not depend on N (a counter, not a stream) */
    float *m5 = drop_ones(37, a);
    ck_assert_int_eq(count_differences(m1, m5, 37), 0);
#ifdef _OPENMP
    /* nor on the thread count */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    float *m6 = drop_ones(DROP_N, a);
    omp_set_num_threads(threads);
    ck_assert_int_eq(count_differences(m1, m6, DROP_N), 0);
    free(m6);
#endif
    free(m1), free(m2), free(m3), free(m4), free(m5);
}
END_TEST

START_TEST(test_dropout_backward_uses_the_forward_mask)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    ops_dropout drop = {0.25f, 7, 11};
    int64_t n = 4099;
    test_rng r;
    rng_seed(&r, 83);
    float *mask = drop_ones(n, drop), *dout = frand(&r, n, 1.0f), *dinp = fbuf(n);
    ck_assert_int_eq(ops->dropout_backward(d, dinp, dout, n, drop), OCTET_OK);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(dinp[i], dout[i] * mask[i]);
    /* in place */
    ck_assert_int_eq(ops->dropout_backward(d, dout, dout, n, drop), OCTET_OK);
    ck_assert_int_eq(memcmp(dout, dinp, sizeof(float) * (size_t)n), 0);
    free(mask), free(dout), free(dinp);
}
END_TEST

START_TEST(test_dropout_edge_probabilities)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int64_t n = 1000;
    test_rng r;
    rng_seed(&r, 85);
    float *x = frand(&r, n, 1.0f), *y = fbuf(n);
    ops_dropout eval = {0.0f, 42, 0}, all = {1.0f, 42, 0}, neg = {-0.1f, 42, 0}, nan_p = {NAN, 42, 0};
    ck_assert_int_eq(ops->dropout_forward(d, y, x, n, eval), OCTET_OK);
    ck_assert_int_eq(memcmp(x, y, sizeof(float) * (size_t)n), 0);
    ck_assert_int_eq(ops->dropout_forward(d, y, x, n, all), OCTET_OK);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(y[i], 0.0f);
    ck_assert_int_eq(ops->dropout_forward(d, y, x, n, neg), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->dropout_forward(d, y, x, n, nan_p), OCTET_ERR_ARG);
    ck_assert_int_eq(ops->dropout_forward(d, y, x, 0, eval), OCTET_ERR_ARG);
    free(x), free(y);
}
END_TEST

/* NaN stays NaN whether its element is kept or dropped (torch multiplies by the 0/scale mask,
 * and 0 * nan is nan), for every p, in both directions. */
START_TEST(test_dropout_keeps_nan)
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int64_t n = 64;
    float *x = fbuf(n), *y = fbuf(n);
    for (int64_t i = 0; i < n; i++)
        x[i] = NAN;
    const float ps[3] = {0.0f, 0.5f, 1.0f};
    for (int k = 0; k < 3; k++) {
        ops_dropout drop = {ps[k], 7, 3};
        ck_assert_int_eq(ops->dropout_forward(d, y, x, n, drop), OCTET_OK);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(isnan(y[i]), "p %g: y[%lld] = %g", (double)ps[k], (long long)i, (double)y[i]);
        ck_assert_int_eq(ops->dropout_backward(d, y, x, n, drop), OCTET_OK);
        for (int64_t i = 0; i < n; i++)
            ck_assert(isnan(y[i]));
    }
    free(x), free(y);
}
END_TEST

Suite *suite_ops_loss(void)
{
    Suite *s = suite_create("ops_loss");
    TCase *tc = tcase_create("losses");
    tcase_add_loop_test(tc, test_crossentropy_forward_backward, 0, 3);
    tcase_add_test(tc, test_crossentropy_known_value);
    tcase_add_test(tc, test_crossentropy_nan);
    tcase_add_test(tc, test_mse_forward_backward);
    suite_add_tcase(s, tc);
    tc = tcase_create("dropout");
    tcase_add_test(tc, test_philox_known_answers);
    tcase_add_test(tc, test_dropout_keeps_nan);
    tcase_add_test(tc, test_dropout_run_matches_per_element_factor);
    tcase_add_test(tc, test_dropout_mask_follows_its_definition);
    tcase_add_loop_test(tc, test_dropout_keep_fraction_and_scale, 0, 3);
    tcase_add_test(tc, test_dropout_is_reproducible);
    tcase_add_test(tc, test_dropout_backward_uses_the_forward_mask);
    tcase_add_test(tc, test_dropout_edge_probabilities);
    suite_add_tcase(s, tc);
    return s;
}
