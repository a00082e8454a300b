/* check_models_half.c: DistilBERT's half-precision activation storage (distilbert_create_ex
 * with MODEL_ACT_BF16 / MODEL_ACT_FP16), on the CPU (suite_models_half).
 *
 * One training forward + backward of a small DistilBERT (the models suite's config: dim 16, 2
 * layers, 4 heads, FFN 24; dropout on; test weights from tm_fill_params) with half storage
 * against the same model with fp32 storage, same seed, same batch (3 padded rows of 6 tokens,
 * in models sized for 4 x 8, so the packs use the batch's B,T and not the maximum):
 *  - the loss bit for bit: the forward arithmetic is fp32 in both (half storage only rounds what
 *    is kept for the backward pass);
 *  - every parameter gradient within a relative norm of the fp32 one: bf16 keeps 8 significant
 *    bits, a relative rounding error of at most 2^-9 (rms about 2^-9/sqrt 3 = 1.1e-3) per stored
 *    element; a gradient is a sum of products of some ten independently rounded saved tensors
 *    (a layer's q, k, v, att, ctx, ln1, fc1 and its input, through LayerNorm backward which
 *    divides by the row's deviation) so its relative norm error is a few times 1e-3 — 2e-2 is
 *    the bound (fp16, 11 bits: 8x smaller, 2.5e-3). A skipped unpack (the backward then reads the
 *    last block's tensors for every block), a tensor packed to or unpacked from the wrong store,
 *    or the wrong input x is off by O(1), 50x beyond;
 *  - and NOT identical: every tensor of every block has a non-zero difference, and the whole
 *    gradient's relative norm is at least 1e-5 (proof that the rounding happens at all);
 *  - the activation block: the device ledger's `activations` grows by exactly
 *    distilbert_activation_bytes(..., act), and the fp32 block minus the half block is the
 *    figure computed here from the shapes (every tensor starts 64-byte aligned, model.h):
 *    (L-1) (8 p(BTC) + p(BHTT) + 2 p(BTF)) - L (8 p(h(BTC)) + p(h(BHTT)) + p(h(BTF))) floats,
 *    p(n) = n rounded up to 16, h(n) = ceil(n/2): the per-layer fp32 tensors go, 16-bit
 *    copies of all but gelu come, and one fp32 working layer is added. The same formula is
 *    checked for distilbert-base at batch 32, seq 128, where the figures are printed.
 * And a toy task still learns with bf16 storage (the models suite's "token 7" task). */
#include "config.h"
#include "check_models.h"
#include "optim.h"
#include "testlib.h"
#include "train/distilbert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static model *make(device *d, const distilbert_config *c, int B, int T, model_act_dtype act)
{
    model *m = NULL;
    octet_err e;
    octet_err_clear(&e);
    int rc = distilbert_create_ex(d, c, B, T, 5, act, &m, &e);
    ck_assert_msg(rc == OCTET_OK, "distilbert_create_ex: %s: %s", e.field, e.message);
    ck_assert_int_eq(m->act_dtype, act);
    return m;
}

/* The expected fp32-minus-half difference of the activation block, in bytes (header). */
static int64_t p16(int64_t n) { return (n + 15) & ~(int64_t)15; }
static int64_t h2(int64_t n) { return (n + 1) / 2; }
static int64_t expected_saving(const distilbert_config *c, int B, int T)
{
    int64_t BT = (int64_t)B * T, BTC = BT * c->dim, BTF = BT * c->hidden_dim, BHTT = (int64_t)B * c->n_heads * T * T;
    int64_t L = c->n_layers;
    int64_t layer32 = 8 * p16(BTC) + p16(BHTT) + 2 * p16(BTF);
    int64_t layer16 = 8 * p16(h2(BTC)) + p16(h2(BHTT)) + p16(h2(BTF));
    return 4 * ((L - 1) * layer32 - L * layer16);
}

/* Forward (training, step 4) and backward; returns the loss. */
static float fwd_bwd(model *m, const model_batch *b)
{
    m->step = 4;
    return tm_forward_backward(m, b, NULL);
}

/* _i = 0: bf16, 1: fp16. */
START_TEST(test_half_storage_step)
{
    model_act_dtype act = _i ? MODEL_ACT_FP16 : MODEL_ACT_BF16;
    double bound = _i ? 2.5e-3 : 2e-2;
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 3, 0.1f);
    enum { BM = 4, TM = 8 };
    device_mem_stats s0, s1, s2;
    device_mem_stats_get(d, &s0);
    model *m32 = make(d, &c, BM, TM, MODEL_ACT_FP32);
    device_mem_stats_get(d, &s1);
    model *mh = make(d, &c, BM, TM, act);
    device_mem_stats_get(d, &s2);

    /* memory: booked as computed, and smaller by the figure from the shapes */
    size_t a32 = s1.current[MEM_ACTIVATIONS] - s0.current[MEM_ACTIVATIONS];
    size_t ah = s2.current[MEM_ACTIVATIONS] - s1.current[MEM_ACTIVATIONS];
    ck_assert_uint_eq(a32, distilbert_activation_bytes(&c, BM, TM, MODEL_ACT_FP32));
    ck_assert_uint_eq(ah, distilbert_activation_bytes(&c, BM, TM, act));
    ck_assert_int_eq((int64_t)a32 - (int64_t)ah, expected_saving(&c, BM, TM));
    ck_assert_uint_eq(s2.current[MEM_PARAMS] - s1.current[MEM_PARAMS], s1.current[MEM_PARAMS] - s0.current[MEM_PARAMS]);

    tm_fill_params(m32, 11);
    tm_fill_params(mh, 11);
    tm_small_batch hb; /* labels in 0..2 */
    tm_make_small_batch(&hb, 7, 5, (const int32_t[3]){0, 2, 1});
    float l32 = fwd_bwd(m32, &hb.b), lh = fwd_bwd(mh, &hb.b);
    ck_assert_msg(memcmp(&l32, &lh, sizeof l32) == 0, "loss %.9g (fp32 storage) vs %.9g (%s storage)", l32, lh,
                  model_act_dtype_name(act));

    double num_all = 0.0, den_all = 0.0, worst = 0.0;
    for (int i = 0; i < m32->n_params; i++) {
        const model_param *p = &m32->params[i];
        float *g32 = tm_grad_host(m32, i), *gh = tm_grad_host(mh, i);
        double num = 0.0, den = 0.0;
        int64_t differ = 0;
        for (int64_t j = 0; j < p->n; j++) {
            double dd = (double)gh[j] - (double)g32[j];
            num += dd * dd;
            den += (double)g32[j] * g32[j];
            differ += gh[j] != g32[j];
        }
        /* k_lin.bias's gradient is mathematically 0 (softmax ignores a shift shared by all keys):
         * both sides are rounding noise, so it is measured against its weight's gradient rows */
        if (strstr(p->name, "k_lin.bias")) {
            float *gw = tm_grad_host(m32, i - 1);
            double w2 = 0.0;
            for (int64_t j = 0; j < m32->params[i - 1].n; j++)
                w2 += (double)gw[j] * gw[j];
            den = w2 / c.dim;
            free(gw);
        }
        double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
        worst = rel > worst ? rel : worst;
        if (!strstr(p->name, "k_lin.bias")) {
            num_all += num;
            den_all += den;
        }
        printf("half %s grad %-58s rel-norm %.3g, %lld of %lld differ\n", model_act_dtype_name(act), p->name, rel,
               (long long)differ, (long long)p->n);
        ck_assert_msg(rel <= bound, "%s: relative norm %g beyond %g", p->name, rel, bound);
        /* every block tensor sees rounded activations, but for the last block's
         * output_layer_norm.bias, whose gradient is the column sum of the head's fp32 dx (and the
         * embeddings' rows of ids not in the batch, and the head, fed by fp32 tensors) */
        char last_bias[96];
        snprintf(last_bias, sizeof last_bias, "transformer.layer.%d.output_layer_norm.bias", c.n_layers - 1);
        if (strstr(p->name, "transformer.layer.") && !strstr(p->name, last_bias))
            ck_assert_msg(differ > 0, "%s: identical to the fp32-storage gradient: nothing was rounded", p->name);
        free(g32);
        free(gh);
    }
    double rel_all = sqrt(num_all / den_all);
    printf("half %s storage: loss %.9g (identical), gradient rel-norm %.3g overall, worst tensor %.3g (bound %.1e); "
           "activations %zu B fp32, %zu B %s\n",
           model_act_dtype_name(act), lh, rel_all, worst, bound, a32, ah, model_act_dtype_name(act));
    fflush(stdout);
    ck_assert_msg(rel_all >= 1e-5, "overall gradient relative norm %g: the half rounding did not happen", rel_all);

    /* a second step on the same models: an evaluation forward in between drops the activations
     * (backward refused, as with fp32), a smaller batch packs and unpacks its own B,T */
    model_output out = {0.0f, NULL, NULL};
    octet_err e;
    ck_assert_int_eq(mh->vt->forward(mh, &hb.b, 0, &out, &e), OCTET_OK);
    ck_assert_int_eq(mh->vt->backward(mh, 1.0f, &e), OCTET_ERR_ARG);
    model_batch small = {2, 4, hb.ids, hb.mask, NULL, hb.labels, NULL}; /* rows 0 and 1, first 4 tokens */
    int32_t ids2[8], mask2[8];
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 4; t++) {
            ids2[r * 4 + t] = hb.ids[r * 6 + t];
            mask2[r * 4 + t] = hb.mask[r * 6 + t];
        }
    small.ids = ids2;
    small.mask = mask2;
    l32 = fwd_bwd(m32, &small);
    lh = fwd_bwd(mh, &small);
    ck_assert(memcmp(&l32, &lh, sizeof l32) == 0);
    for (int i = 0; i < m32->n_params; i++) {
        float *g32 = tm_grad_host(m32, i), *gh = tm_grad_host(mh, i);
        tm_cmp cmp = tm_compare(gh, g32, m32->params[i].n);
        ck_assert_msg(cmp.worst <= 10 * bound || strstr(m32->params[i].name, "k_lin.bias"), "%s (B=2, T=4): %g",
                      m32->params[i].name, cmp.worst);
        free(g32);
        free(gh);
    }
    model_destroy(m32);
    model_destroy(mh);
    device_mem_stats_get(d, &s2);
    ck_assert_uint_eq(s2.current_total, s0.current_total);
    device_close(d);
}
END_TEST

START_TEST(test_half_storage_figures)
{
    /* distilbert-base (no allocation): the formula, and the figures for the report */
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-base-cased", &c, NULL), OCTET_OK);
    size_t f32 = distilbert_activation_bytes(&c, 32, 128, MODEL_ACT_FP32);
    size_t b16 = distilbert_activation_bytes(&c, 32, 128, MODEL_ACT_BF16);
    size_t f16 = distilbert_activation_bytes(&c, 32, 128, MODEL_ACT_FP16);
    printf("distilbert-base, batch 32, seq 128: activations %.1f MiB fp32, %.1f MiB bf16/fp16 storage (%.0f%%)\n",
           f32 / 1048576.0, b16 / 1048576.0, 100.0 * b16 / f32);
    fflush(stdout);
    ck_assert_uint_eq(b16, f16);
    ck_assert_int_eq((int64_t)f32 - (int64_t)b16, expected_saving(&c, 32, 128));
    /* the per-layer saved tensors shrink to 39% (2 bytes, no gelu); the working layer and the
     * backward's fp32 scratch (dx, dq, dk, dv, dff, the attention work buffer) stay */
    ck_assert(b16 < 0.62 * f32);
    /* the unknown storage kind is refused */
    device *d = tm_device();
    model *m = NULL;
    octet_err e;
    tm_small_config(&c, 3, 0.0f);
    ck_assert_int_eq(distilbert_create_ex(d, &c, 2, 4, 1, (model_act_dtype)7, &m, &e), OCTET_ERR_ARG);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(e.field, "training.precision");
    ck_assert_str_eq(model_act_dtype_name(MODEL_ACT_BF16), "bf16");
    device_close(d);
}
END_TEST

START_TEST(test_half_storage_learns)
{
    /* label 1 iff token 7 occurs in the (padded) sequence, as test_distilbert_learns */
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 2, 0.1f);
    model *m = NULL;
    ck_assert_int_eq(distilbert_create_ex(d, &c, 16, 8, 3, MODEL_ACT_BF16, &m, NULL), OCTET_OK);
    optim *o = tm_adamw(m, 3e-3);
    tm_toy_task_learns(m, o, "distilbert toy task, bf16 activation storage");
    optim_destroy(o);
    model_destroy(m);
    device_close(d);
}
END_TEST

Suite *suite_models_half(void)
{
    Suite *s = suite_create("models_half");
    TCase *tc = tcase_create("half_storage");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_half_storage_step, 0, 2);
    tcase_add_test(tc, test_half_storage_figures);
    tcase_add_test(tc, test_half_storage_learns);
    suite_add_tcase(s, tc);
    return s;
}
