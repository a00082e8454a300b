/* check_train_parity.c: parity of a whole training step, CPU twin against CUDA twin
 * (suite_train_parity, run by run_train_cuda). Where check_ops_parity.c compares one op at a
 * time, this compares what a job does in one optimizer step: the same model (MLP 20-32-16-3, and
 * a tiny DistilBERT: dim 64, 2 layers, 4 heads, FFN 256, vocabulary 300, 3 labels) built on a CPU
 * device and on a CUDA device, the CPU model's weights copied to the CUDA one, the same host
 * batch (DistilBERT's with padding: sequences of 12, 9, 5 and 12 tokens), forward in training
 * mode, backward, global-norm clipping (max 1.0), one optimizer step.
 *
 * The CPU run is the oracle. Bounds, stated at each call as in check_ops_parity.c: element-wise
 * |ref - gpu| <= atol + rtol |ref|, and the relative norm ||ref - gpu|| / ||ref|| <= relnorm.
 *  - loss: atol 1e-6, rtol 1e-5;
 *  - every gradient: atol 1e-4 x max|ref| of the tensor (sums of differently ordered terms cancel
 *    to near zero), rtol 1e-3, relative norm 1e-4 (MLP) / 1e-3 (DistilBERT: twelve reductions
 *    deep); the gradient norm within 1e-5 relative;
 *  - every parameter after the adamw step (lr 1e-3, weight decay 0.01): Adam's first step moves
 *    each weight by lr g / (|g| + eps), so an element whose gradient is near zero on both sides
 *    may legitimately move by up to 2 lr in opposite directions. The element bound is therefore
 *    1e-6 + 1e-5 |ref| + lr min(2, 2 |g_gpu - g_cpu| / (|g_cpu| + eps)): the step must be the
 *    one its own gradient asks for. Each tensor's relative norm must stay under 1e-4 (k_lin.bias,
 *    whose true gradient is zero, aside: it steps on rounding noise on both sides);
 *  - adamw and adamw8bit given IDENTICAL gradients (the CPU gradients copied to the GPU before
 *    the step, which isolates the optimizer inside the training step): parameters within 1 ulp,
 *    and for adamw8bit the 8-bit codes and the absmax of every quantized tensor byte for byte
 *    (the optimizer twins' rule, DESIGN.md).
 * Dropout runs off and on (HF's 0.1 / 0.1 / 0.2): masks are a pure function of (seed, step,
 * site, index), so both twins drop the same elements and the same bounds hold.
 *
 * Mixed precision (training.precision bf16 / fp16, tiny DistilBERT): the device under test runs
 * bf16 (fp16) matmuls AND bf16 (fp16) activation storage, the CPU the same storage with fp32
 * matmuls, so the difference is the tensor cores' operand rounding alone (the storage rounding
 * is on both sides; check_models_half.c measures it against fp32 storage on the CPU: gradient
 * relative norm 1.6e-3 overall, 4.4e-3 worst tensor for bf16, 2.1e-4 / 5.6e-4 for fp16). A bf16
 * operand keeps 8 significant bits (rounding error <= 2^-9, rms 1.1e-3); a product of two
 * rounded operands is off by about 2e-3 in relative norm (ops_cuda.h) and a gradient of this
 * model passes through some 6..12 such products, adding in quadrature: ~1e-2. Bounds, bf16:
 * loss atol 1e-2 + rtol 1e-2 (the loss moves by |d loss / d logits| x the logits' error);
 * every gradient relative norm 5e-2 and elements within 0.1 max|ref| + 0.1 |ref|; the gradient
 * norm 2e-2 relative. fp16 (11 bits, 8x finer): 1e-2 relative norm, elements 2e-2, loss 2e-3,
 * norm 5e-3 — with the loss scaled by 1024 on both sides (and the gradients unscaled before the
 * comparison) as GradScaler does, so that small backward operands do not fall into fp16's
 * subnormals. k_lin.bias (mathematically zero: rounding noise on both sides) is held to the
 * element bound scaled by its weight gradient's max|ref| instead. After the adamw step the
 * per-element bound above (which follows each side's own gradient) holds for every element, and
 * the whole parameter vector's relative norm is within 1e-2 (fp16 5e-3); not per tensor, since
 * the biases start at 0 and after one step are just their Adam updates, which move an element
 * with a near-zero gradient by lr either way. Then, given the CPU's gradients, adamw8bit must
 * still agree bit for bit (codes, absmax). A skipped unpack or a misplaced store is off by O(1),
 * beyond every one of these bounds. Measured before any GPU ran it, with the tensor cores'
 * operand rounding emulated on the CPU side (every sgemm operand rounded to bf16 / fp16 by
 * ops_math.h's conversions): loss 4e-5 / 4e-6, worst gradient relative norm 1.0e-2 / 8.7e-4
 * (k_lin.bias aside), gradient norm 4e-4 / 2e-6, parameters 1.1e-3 / 2.9e-4 — bf16 / fp16.
 *
 * Each compared tensor prints one "train-parity ..." line (worst difference, relative norm,
 * bounds), which tests/gpu/run.sh shows. Runs in one process (CK_NOFORK). The second device is
 * "cuda"; run_train_cuda's --self-test makes it a second CPU device, which checks the suite's
 * own plumbing on a machine without a GPU (every bound then holds with equality). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "ops.h"
#include "ops_cuda.h"
#include "optim.h"
#include "testlib.h"
#include "train/distilbert.h"
#include "train/mlp.h"
#include "train/model.h"
#include "train/trainer.h"

#define LR 1e-3
#define EPS 1e-8

static const char *other_device = "cuda";

/* ------------------------------------------------------------------ comparison */

typedef struct tol {
    double atol, rtol, relnorm;
} tol;

/* Compares ref (CPU) with got (second device), prints one line, fails the test beyond tol. */
static void expect(const char *what, const float *ref, const float *got, int64_t n, tol t)
{
    double num = 0.0, den = 0.0, maxd = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ref[i] - (double)got[i]);
        if (!(d <= maxd)) /* NaN too */
            maxd = d;
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
    size_t bad = count_mismatches(what, ref, got, (size_t)n, t.atol, t.rtol);
    int fail = bad != 0 || !(rel <= t.relnorm);
    printf("train-parity %-60s n=%-8lld max|diff| %-9.3g rel-norm %-9.3g (atol %.1e rtol %.0e norm %.0e)%s\n", what,
           (long long)n, maxd, rel, t.atol, t.rtol, t.relnorm, fail ? "  FAIL" : "");
    ck_assert_msg(!fail, "%s: %zu elements beyond the bound, relative norm %g (bound %g)", what, bad, rel,
                  t.relnorm);
}

static float max_abs(const float *x, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* A device buffer of n floats in a new host array (the caller frees it). */
static float *host_copy(device *d, const float *p, int64_t n)
{
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(device_download(d, h, p, (size_t)n * sizeof *h), OCTET_OK);
    return h;
}

/* ------------------------------------------------------------------ the two sides */

typedef struct twin {
    device *dev[2]; /* [0] the CPU (oracle), [1] the device under test */
    model *m[2];
    optim *o[2];
} twin;

static void open_devices(twin *t)
{
    memset(t, 0, sizeof *t);
    octet_err e;
    ck_assert_msg(device_open("cpu", 0, &t->dev[0], &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(device_open(other_device, 0, &t->dev[1], &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(device_bind_thread(t->dev[1]), OCTET_OK);
}

/* The CPU model's weights onto the other one, so both start identical whatever the init. */
static void copy_weights(twin *t)
{
    ck_assert_int_eq(t->m[0]->n_params, t->m[1]->n_params);
    for (int i = 0; i < t->m[0]->n_params; i++) {
        float *h = host_copy(t->dev[0], t->m[0]->params[i].data, t->m[0]->params[i].n);
        ck_assert_int_eq(model_param_set(t->m[1], i, h), OCTET_OK);
        free(h);
    }
}

static void close_twin(twin *t)
{
    if (t->dev[1] && device_kind(t->dev[1]) == OCTET_DEV_CUDA) /* the mode table is keyed by the pointer */
        ck_assert_int_eq(ops_cuda_set_matmul_precision(t->dev[1], OPS_MATMUL_FP32), OCTET_OK);
    for (int s = 0; s < 2; s++) {
        optim_destroy(t->o[s]);
        model_destroy(t->m[s]);
        device_close(t->dev[s]);
    }
}

static void make_optim(twin *t, optim_kind kind)
{
    optim_config cfg;
    optim_config_defaults(kind, &cfg);
    cfg.base.lr = LR;
    cfg.base.weight_decay = 0.01;
    cfg.base.eps = EPS;
    if (kind == OPTIM_ADAMW8BIT)
        cfg.min_8bit_size = 256; /* quantize every tensor of 256+ elements, both models have some */
    for (int s = 0; s < 2; s++) {
        model *m = t->m[s];
        optim_tensor *ts = calloc((size_t)m->n_params, sizeof *ts);
        ck_assert_ptr_nonnull(ts);
        for (int i = 0; i < m->n_params; i++) {
            ts[i].name = m->params[i].name;
            ts[i].ndim = m->params[i].ndim;
            memcpy(ts[i].shape, m->params[i].shape, sizeof(int64_t) * (size_t)m->params[i].ndim);
            ts[i].param = m->params[i].data;
            ts[i].grad = m->params[i].grad;
        }
        octet_err e;
        ck_assert_msg(optim_create(t->dev[s], &cfg, ts, m->n_params, &t->o[s], &e) == OCTET_OK, "%s", e.message);
        free(ts);
    }
}

/* Forward (training mode, dropout step `step`) and backward with dloss on both sides. */
static void forward_backward_scaled(twin *t, const model_batch *b, uint64_t step, float dloss, float loss[2])
{
    for (int s = 0; s < 2; s++) {
        octet_err e;
        model *m = t->m[s];
        ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
        m->step = step;
        model_output out = {0.0f, NULL, NULL};
        ck_assert_msg(m->vt->forward(m, b, 1, &out, &e) == OCTET_OK, "%s forward: %s", device_name(t->dev[s]),
                      e.message);
        ck_assert_msg(m->vt->backward(m, dloss, &e) == OCTET_OK, "%s backward: %s", device_name(t->dev[s]),
                      e.message);
        loss[s] = out.loss;
    }
}

static void forward_backward(twin *t, const model_batch *b, uint64_t step, float loss[2])
{
    forward_backward_scaled(t, b, step, 1.0f, loss);
}

/* ------------------------------------------------------------------ one step, own gradients */

/* The bounds of one whole step (header). */
typedef struct step_bounds {
    tol loss;
    double grad_atol;     /* element atol, as a fraction of the tensor's max |ref| */
    double grad_rtol, grad_relnorm;
    double norm_rtol;     /* the global gradient norm */
    double param_relnorm; /* the parameters after the adamw step */
    float dloss;          /* the loss scale of the backward (gradients unscaled before comparing) */
    int klin_bias_by_weight; /* k_lin.bias held to its weight gradient's scale, no relative norm */
} step_bounds;

/* The whole step: loss, gradients, clipping, adamw; bounds as in the header. */
static void check_step_bounds(twin *t, const model_batch *b, uint64_t step, const char *label,
                              const step_bounds *sb)
{
    char what[160];
    float loss[2];
    forward_backward_scaled(t, b, step, sb->dloss, loss);
    snprintf(what, sizeof what, "%s loss", label);
    expect(what, &loss[0], &loss[1], 1, sb->loss);

    int n = t->m[0]->n_params;
    float **g_ref = calloc((size_t)n, sizeof *g_ref), **g_got = calloc((size_t)n, sizeof *g_got);
    ck_assert(g_ref && g_got);
    for (int i = 0; i < n; i++) {
        const model_param *p = &t->m[0]->params[i];
        g_ref[i] = host_copy(t->dev[0], p->grad, p->n);
        g_got[i] = host_copy(t->dev[1], t->m[1]->params[i].grad, p->n);
        if (sb->dloss != 1.0f) { /* unscale both sides (a power of two: exact), and the buffers for clipping */
            for (int64_t j = 0; j < p->n; j++) {
                g_ref[i][j] /= sb->dloss;
                g_got[i][j] /= sb->dloss;
            }
            ck_assert_int_eq(device_upload(t->dev[0], p->grad, g_ref[i], (size_t)p->n * sizeof(float)), OCTET_OK);
            ck_assert_int_eq(device_upload(t->dev[1], t->m[1]->params[i].grad, g_got[i], (size_t)p->n * sizeof(float)),
                             OCTET_OK);
        }
        snprintf(what, sizeof what, "%s grad %s", label, p->name);
        tol tg = {sb->grad_atol * max_abs(g_ref[i], p->n), sb->grad_rtol, sb->grad_relnorm};
        if (sb->klin_bias_by_weight && strstr(p->name, "k_lin.bias") && i > 0) {
            tg.atol = sb->grad_atol * max_abs(g_ref[i - 1], t->m[0]->params[i - 1].n);
            tg.relnorm = 1e30;
        }
        expect(what, g_ref[i], g_got[i], p->n, tg);
    }

    double norm[2];
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(trainer_clip_grads(t->m[s], 1.0, &norm[s]), OCTET_OK);
    float fn[2] = {(float)norm[0], (float)norm[1]};
    snprintf(what, sizeof what, "%s grad-norm", label);
    expect(what, &fn[0], &fn[1], 1, (tol){0.0, sb->norm_rtol, sb->norm_rtol});

    make_optim(t, OPTIM_ADAMW);
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(optim_step(t->o[s], 1.0), OCTET_OK);
    /* clipping scales both sides' gradients by nearly the same factor; the bound uses the
     * unclipped ones (the ratio |dg| / |g| is what matters, and clipping keeps it) */
    double all_num = 0.0, all_den = 0.0;
    for (int i = 0; i < n; i++) {
        const model_param *p = &t->m[0]->params[i];
        float *ref = host_copy(t->dev[0], p->data, p->n), *got = host_copy(t->dev[1], t->m[1]->params[i].data, p->n);
        size_t bad = 0;
        double num = 0.0, den = 0.0, maxd = 0.0;
        for (int64_t j = 0; j < p->n; j++) {
            double d = fabs((double)ref[j] - (double)got[j]);
            double dg = fabs((double)g_got[i][j] - (double)g_ref[i][j]);
            double allow = 1e-6 + 1e-5 * fabs(ref[j]) + LR * fmin(2.0, 2.0 * dg / (fabs(g_ref[i][j]) + EPS));
            if (!(d <= allow) && bad++ < 5)
                fprintf(stderr, "  %s %s[%lld]: cpu %.9g gpu %.9g (grads %.9g %.9g)\n", label, p->name, (long long)j,
                        ref[j], got[j], g_ref[i][j], g_got[i][j]);
            maxd = d > maxd ? d : maxd;
            num += d * d;
            den += (double)ref[j] * ref[j];
        }
        double rel = den > 0.0 ? sqrt(num / den) : sqrt(num);
        /* mixed precision: the biases start at 0, so after one step a bias IS its Adam update,
         * where an element with a near-zero gradient may move by lr either way; the per-tensor
         * norm is then O(1) by construction and only the whole parameter vector's relative
         * norm is bounded (below), besides every element's bound. In fp32 too, k_lin.bias gets
         * only the element bound: its true gradient is exactly zero (a key bias adds the same
         * q.b to every score of a row, which the softmax cancels), so both sides step on
         * rounding noise and its per-tensor norm is O(1) whatever the twins do */
        int per_tensor = !sb->klin_bias_by_weight && !strstr(p->name, "k_lin.bias");
        all_num += num;
        all_den += den;
        int fail = bad != 0 || (per_tensor && !(rel <= sb->param_relnorm));
        snprintf(what, sizeof what, "%s adamw %s", label, p->name);
        printf("train-parity %-60s n=%-8lld max|diff| %-9.3g rel-norm %-9.3g (adam step bound, norm %.0e)%s\n", what,
               (long long)p->n, maxd, rel, sb->param_relnorm, fail ? "  FAIL" : "");
        ck_assert_msg(!fail, "%s: %zu elements beyond the bound, relative norm %g", what, bad, rel);
        free(ref);
        free(got);
        free(g_ref[i]);
        free(g_got[i]);
    }
    double all_rel = all_den > 0.0 ? sqrt(all_num / all_den) : sqrt(all_num);
    snprintf(what, sizeof what, "%s adamw all parameters", label);
    printf("train-parity %-60s rel-norm %-9.3g (norm %.0e)%s\n", what, all_rel, sb->param_relnorm,
           all_rel <= sb->param_relnorm ? "" : "  FAIL");
    ck_assert_msg(all_rel <= sb->param_relnorm, "%s: relative norm %g", what, all_rel);
    free(g_ref);
    free(g_got);
}

/* The fp32 step (header): loss 1e-6 + 1e-5, gradients 1e-4 max|ref| + 1e-3 and grad_relnorm,
 * norm 1e-5, parameters 1e-4. */
static void check_step(twin *t, const model_batch *b, uint64_t step, const char *label, double grad_relnorm)
{
    step_bounds sb = {{1e-6, 1e-5, 1e-5}, 1e-4, 1e-3, grad_relnorm, 1e-5, 1e-4, 1.0f, 0};
    check_step_bounds(t, b, step, label, &sb);
}

/* ------------------------------------------------------------------ the optimizer, isolated */

/* Both models get the CPU gradients, both optimizers step once: parameters within 1 ulp, and
 * for 8-bit tensors codes and absmax byte for byte. */
static void check_isolated_optim(twin *t, const model_batch *b, optim_kind kind, const char *label)
{
    float loss[2];
    forward_backward(t, b, 1, loss);
    int n = t->m[0]->n_params;
    for (int i = 0; i < n; i++) {
        const model_param *p = &t->m[0]->params[i];
        float *g = host_copy(t->dev[0], p->grad, p->n);
        ck_assert_int_eq(device_upload(t->dev[1], t->m[1]->params[i].grad, g, (size_t)p->n * sizeof *g), OCTET_OK);
        free(g);
    }
    make_optim(t, kind);
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(optim_step(t->o[s], 1.0), OCTET_OK);
    int quantized = 0;
    for (int i = 0; i < n; i++) {
        const model_param *p = &t->m[0]->params[i];
        char what[160];
        float *ref = host_copy(t->dev[0], p->data, p->n), *got = host_copy(t->dev[1], t->m[1]->params[i].data, p->n);
        int64_t worst = 0;
        size_t bad = 0;
        for (int64_t j = 0; j < p->n; j++) {
            int64_t u = ulp_distance(ref[j], got[j]);
            worst = u > worst ? u : worst;
            if (u > 1 && bad++ < 5)
                fprintf(stderr, "  %s %s[%lld]: cpu %.9g gpu %.9g (%lld ulp)\n", label, p->name, (long long)j, ref[j],
                        got[j], (long long)u);
        }
        snprintf(what, sizeof what, "%s %s param %s", label, optim_kind_name(kind), p->name);
        printf("train-parity %-60s n=%-8lld worst %lld ulp (bound 1)%s\n", what, (long long)p->n, (long long)worst,
               bad ? "  FAIL" : "");
        ck_assert_msg(bad == 0, "%s: %zu elements beyond 1 ulp", what, bad);
        free(ref);
        free(got);

        optim_tensor_state st[2];
        for (int s = 0; s < 2; s++)
            ck_assert_int_eq(optim_tensor_state_get(t->o[s], i, &st[s]), OCTET_OK);
        ck_assert_int_eq(st[0].is_8bit, st[1].is_8bit);
        if (!st[0].is_8bit)
            continue;
        quantized++;
        ck_assert_int_eq(st[0].nblocks, st[1].nblocks);
        uint8_t *codes[2][2];
        float *absmax[2][2];
        for (int s = 0; s < 2; s++) {
            codes[s][0] = malloc((size_t)st[s].n);
            codes[s][1] = malloc((size_t)st[s].n);
            ck_assert(codes[s][0] && codes[s][1]);
            ck_assert_int_eq(device_download(t->dev[s], codes[s][0], st[s].code1, (size_t)st[s].n), OCTET_OK);
            ck_assert_int_eq(device_download(t->dev[s], codes[s][1], st[s].code2, (size_t)st[s].n), OCTET_OK);
            absmax[s][0] = host_copy(t->dev[s], st[s].absmax1, st[s].nblocks);
            absmax[s][1] = host_copy(t->dev[s], st[s].absmax2, st[s].nblocks);
        }
        size_t diff_codes = 0, diff_absmax = 0;
        for (int k = 0; k < 2; k++) {
            for (int64_t j = 0; j < st[0].n; j++)
                diff_codes += codes[0][k][j] != codes[1][k][j];
            diff_absmax += (size_t)(memcmp(absmax[0][k], absmax[1][k], (size_t)st[0].nblocks * sizeof(float)) != 0);
        }
        snprintf(what, sizeof what, "%s %s state %s", label, optim_kind_name(kind), p->name);
        printf("train-parity %-60s n=%-8lld codes differing %zu, absmax arrays differing %zu (bound 0)%s\n", what,
               (long long)st[0].n, diff_codes, diff_absmax, (diff_codes || diff_absmax) ? "  FAIL" : "");
        ck_assert_msg(!diff_codes && !diff_absmax, "%s: %zu codes and %zu absmax arrays differ", what, diff_codes,
                      diff_absmax);
        for (int s = 0; s < 2; s++) {
            free(codes[s][0]);
            free(codes[s][1]);
            free(absmax[s][0]);
            free(absmax[s][1]);
        }
    }
    if (kind == OPTIM_ADAMW8BIT)
        ck_assert_int_gt(quantized, 0);
}

/* ------------------------------------------------------------------ the models and batches */

#define MLP_B 8
#define MLP_F 20

typedef struct mlp_batch {
    float x[MLP_B * MLP_F];
    int32_t y[MLP_B];
    model_batch b;
} mlp_batch;

static void mlp_twin(twin *t, mlp_batch *mb)
{
    open_devices(t);
    int hidden[2] = {32, 16};
    octet_err e;
    for (int s = 0; s < 2; s++)
        ck_assert_msg(mlp_create(t->dev[s], MLP_F, hidden, 2, 3, MLP_B, 7, &t->m[s], &e) == OCTET_OK, "%s",
                      e.message);
    copy_weights(t);
    test_rng r;
    rng_seed(&r, 11);
    rng_fill_normal(&r, mb->x, MLP_B * MLP_F, 1.0f);
    for (int i = 0; i < MLP_B; i++)
        mb->y[i] = (int32_t)(rng_u64(&r) % 3);
    memset(&mb->b, 0, sizeof mb->b);
    mb->b.B = MLP_B;
    mb->b.features = mb->x;
    mb->b.labels = mb->y;
}

#define DB_B 4
#define DB_T 12

typedef struct db_batch {
    int32_t ids[DB_B * DB_T], mask[DB_B * DB_T], y[DB_B];
    model_batch b;
} db_batch;

/* A tiny DistilBERT (dropout p: 0 turns every dropout off; < 0 keeps HF's) with activation
 * storage `act` on both sides, the device under test's matmuls at `matmul` (OPS_MATMUL_*; a
 * CPU device in --self-test keeps fp32), and a padded batch. */
static void db_twin_prec(twin *t, db_batch *bb, float dropout, model_act_dtype act, int matmul)
{
    open_devices(t);
    distilbert_config cfg;
    octet_err e;
    distilbert_config_default(&cfg);
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &cfg, &e), OCTET_OK);
    cfg.vocab_size = 300;
    cfg.max_position_embeddings = 64;
    cfg.num_labels = 3;
    if (dropout >= 0.0f)
        ck_assert_int_eq(distilbert_config_set_dropout(&cfg, dropout, &e), OCTET_OK);
    for (int s = 0; s < 2; s++)
        ck_assert_msg(distilbert_create_ex(t->dev[s], &cfg, DB_B, DB_T, 9, act, &t->m[s], &e) == OCTET_OK, "%s",
                      e.message);
    if (device_kind(t->dev[1]) == OCTET_DEV_CUDA)
        ck_assert_int_eq(ops_cuda_set_matmul_precision(t->dev[1], matmul), OCTET_OK);
    copy_weights(t);
    static const int lens[DB_B] = {12, 9, 5, 12};
    test_rng r;
    rng_seed(&r, 13);
    for (int i = 0; i < DB_B; i++) {
        for (int j = 0; j < DB_T; j++) {
            int real = j < lens[i];
            bb->ids[i * DB_T + j] = real ? 1 + (int32_t)(rng_u64(&r) % (uint64_t)(cfg.vocab_size - 1)) : cfg.pad_token_id;
            bb->mask[i * DB_T + j] = real;
        }
        bb->y[i] = (int32_t)(rng_u64(&r) % 3);
    }
    memset(&bb->b, 0, sizeof bb->b);
    bb->b.B = DB_B;
    bb->b.T = DB_T;
    bb->b.ids = bb->ids;
    bb->b.mask = bb->mask;
    bb->b.labels = bb->y;
}

static void db_twin(twin *t, db_batch *bb, float dropout)
{
    db_twin_prec(t, bb, dropout, MODEL_ACT_FP32, OPS_MATMUL_FP32);
}

/* ------------------------------------------------------------------ tests */

START_TEST(test_mlp_step)
{
    twin t;
    mlp_batch mb;
    mlp_twin(&t, &mb);
    check_step(&t, &mb.b, 1, "mlp", 1e-4);
    close_twin(&t);
}
END_TEST

START_TEST(test_distilbert_step_no_dropout)
{
    twin t;
    db_batch bb;
    db_twin(&t, &bb, 0.0f);
    check_step(&t, &bb.b, 1, "distilbert p=0", 1e-3);
    close_twin(&t);
}
END_TEST

START_TEST(test_distilbert_step_dropout)
{
    twin t;
    db_batch bb;
    db_twin(&t, &bb, -1.0f);
    check_step(&t, &bb.b, 3, "distilbert p=hf", 1e-3);
    close_twin(&t);
}
END_TEST

/* training.precision bf16 / fp16 (header): _i = 0 bf16, 1 fp16; HF's dropouts on. */
START_TEST(test_distilbert_step_half)
{
    static const step_bounds bf16 = {{1e-2, 1e-2, 1e-2}, 0.1, 0.1, 5e-2, 2e-2, 1e-2, 1.0f, 1};
    static const step_bounds fp16 = {{2e-3, 2e-3, 2e-3}, 2e-2, 2e-2, 1e-2, 5e-3, 5e-3, 1024.0f, 1};
    int is16 = _i == 1;
    twin t;
    db_batch bb;
    db_twin_prec(&t, &bb, -1.0f, is16 ? MODEL_ACT_FP16 : MODEL_ACT_BF16, is16 ? OPS_MATMUL_FP16 : OPS_MATMUL_BF16);
    check_step_bounds(&t, &bb.b, 3, is16 ? "distilbert fp16" : "distilbert bf16", is16 ? &fp16 : &bf16);
    close_twin(&t);
    db_twin_prec(&t, &bb, -1.0f, is16 ? MODEL_ACT_FP16 : MODEL_ACT_BF16, is16 ? OPS_MATMUL_FP16 : OPS_MATMUL_BF16);
    check_isolated_optim(&t, &bb.b, OPTIM_ADAMW8BIT, is16 ? "distilbert fp16" : "distilbert bf16");
    close_twin(&t);
}
END_TEST

START_TEST(test_mlp_optim_isolated)
{
    twin t;
    mlp_batch mb;
    mlp_twin(&t, &mb);
    check_isolated_optim(&t, &mb.b, OPTIM_ADAMW, "mlp");
    close_twin(&t);
    mlp_twin(&t, &mb);
    check_isolated_optim(&t, &mb.b, OPTIM_ADAMW8BIT, "mlp");
    close_twin(&t);
}
END_TEST

START_TEST(test_distilbert_optim_isolated)
{
    twin t;
    db_batch bb;
    db_twin(&t, &bb, -1.0f);
    check_isolated_optim(&t, &bb.b, OPTIM_ADAMW8BIT, "distilbert");
    close_twin(&t);
}
END_TEST

Suite *suite_train_parity(const char *other)
{
    if (other)
        other_device = other;
    Suite *s = suite_create("train_parity");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_mlp_step);
    tcase_add_test(tc, test_distilbert_step_no_dropout);
    tcase_add_test(tc, test_distilbert_step_dropout);
    tcase_add_test(tc, test_mlp_optim_isolated);
    tcase_add_test(tc, test_distilbert_optim_isolated);
    tcase_add_loop_test(tc, test_distilbert_step_half, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
