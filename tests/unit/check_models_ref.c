/* check_models_ref.c: DistilBERT and the MLP against PyTorch.
 *
 * An unchecked fixture (run once, in the parent) builds each case's model here, overwrites its
 * weights with test values (tm_fill_params: no zero biases, LayerNorm weights away from 1),
 * saves them with hfdir_save (model.safetensors + config.json, so the exchange also checks the
 * saved layout), writes the batch (ids with padding and the attention mask, or features; labels
 * or regression targets) and the optimizer settings, and runs tests/reference/models_ref.py,
 * whose own DistilBertForSequenceClassification and MLP load the very same weights. The tests
 * then rebuild each model from the saved directory (hfdir_load_weights, strict) and compare,
 * with every dropout off: logits, loss and EVERY parameter gradient of one forward/backward;
 * then the parameters and losses of three steps of our optimizer engine (adamw, sgd with
 * momentum 0.9) against torch.optim.AdamW and torch.optim.SGD on the same batch.
 *
 * Tolerance: every element of a tensor must satisfy |ours - torch| <= 1e-4 * max(|torch|,
 * scale), scale = the tensor's max-abs in PyTorch, i.e. max |diff| <= 1e-4 * max-abs. Why a
 * per-tensor scale: float32 rounding error comes from the terms of a sum, not from its result.
 * A gradient element (or logit) that ends near zero is a sum of terms of the tensor's typical
 * magnitude that cancel, so it carries an absolute error of some ulp of that magnitude (and
 * the two libraries sum in different orders: OpenBLAS vs ATen kernels, a fused softmax, an
 * attention scaled after rather than before q.k); a purely relative bound would fail on that
 * noise, while 1e-4 of the tensor's largest element is still ~1000x below what a real bug
 * (a missed mask, a wrong scale, a transposed weight, a lost residual) produces.
 *
 * One tensor is mathematically zero: the gradient of attention.k_lin.bias (adding a constant
 * vector to every key shifts each query's scores by the same amount, which softmax ignores).
 * Both libraries return rounding noise there (~1e-8), so its scale is that of the layer's
 * k_lin.weight gradient, the magnitude its terms have. For the same reason Adam amplifies that
 * noise differently in each library (m/sqrt(v) of pure noise is O(1), so with the default eps
 * 1e-8 the bias drifts by ~lr per step in a direction chosen by rounding): the AdamW cases use
 * eps 1e-4, which damps noise of 1e-8 by 1e-4 and leaves the real gradients here (1e-3..1e-1)
 * essentially unaffected; with it every tensor, k_lin.bias included, agrees within 1e-5 of its
 * scale. (The optimizer engine's own PyTorch tests cover eps itself.)
 *
 * Torch is a hard requirement: if /usr/bin/python3 or its torch module is missing, every test
 * here FAILS with the script's message. OCTET_KEEP_REF=1 keeps the scratch directory. */
#include "config.h"
#include "check_models.h"
#include "train/distilbert.h"
#include "train/hfdir.h"
#include "train/mlp.h"
#include "optim.h"
#include "testlib.h"
#include "train/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define STEPS 3
#define MAX_B 8
#define MAX_T 12
#define MAX_F 32
/* The optimizers' settings, shared with the script through case.json. */
#define ADAMW_LR 1e-2
#define ADAMW_EPS 1e-4
#define SGD_LR 0.05
#define SGD_MOMENTUM 0.9
#define WEIGHT_DECAY 0.01

typedef struct ref_case {
    const char *name;
    int is_mlp;
    int num_labels;
    int B, T;                      /* distilbert: T tokens; mlp: T unused */
    int lengths[MAX_B];            /* distilbert: real tokens of each row */
    int in_features, n_hidden, hidden[4];
    int with_optim;                /* run the adamw and sgd steps */
} ref_case;

static const ref_case cases[] = {
    {"distilbert", 0, 3, 4, 9, {9, 6, 3, 1}, 0, 0, {0}, 1},
    {"distilbert-regression", 0, 1, 3, 7, {7, 2, 5}, 0, 0, {0}, 0},
    {"mlp", 1, 5, 6, 0, {0}, 20, 2, {16, 12}, 1},
    {"mlp-regression", 1, 1, 5, 0, {0}, 10, 1, {8}, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* The small DistilBERT of the reference cases: 2 layers, 4 heads of 8, 12 positions. */
static void case_config(const ref_case *c, distilbert_config *cfg)
{
    distilbert_config_default(cfg);
    cfg->dim = 32;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->hidden_dim = 64;
    cfg->vocab_size = 50;
    cfg->max_position_embeddings = MAX_T;
    cfg->pad_token_id = 0;
    cfg->num_labels = c->num_labels;
    distilbert_config_set_dropout(cfg, 0.0f, NULL);
}

/* The batch of a case, deterministic. */
typedef struct ref_batch {
    int32_t ids[MAX_B * MAX_T], mask[MAX_B * MAX_T], labels[MAX_B];
    float features[MAX_B * MAX_F], targets[MAX_B];
    model_batch b;
} ref_batch;

static void case_batch(const ref_case *c, ref_batch *rb)
{
    test_rng r;
    rng_seed(&r, 1234);
    memset(rb, 0, sizeof *rb);
    for (int i = 0; i < c->B; i++) {
        for (int t = 0; t < c->T; t++) {
            int real = t < c->lengths[i];
            rb->ids[i * c->T + t] = !real ? 0 : t == 0 ? 2 : 1 + (int)(rng_u64(&r) % 49); /* [CLS] = 2, pad = 0 */
            rb->mask[i * c->T + t] = real;
        }
        for (int f = 0; f < c->in_features; f++)
            rb->features[i * c->in_features + f] = (float)rng_normal(&r);
        rb->labels[i] = (i * 7 + 1) % c->num_labels;
        rb->targets[i] = (float)rng_normal(&r);
    }
    model_batch *b = &rb->b;
    b->B = c->B;
    b->T = c->is_mlp ? 1 : c->T;
    b->ids = c->is_mlp ? NULL : rb->ids;
    b->mask = c->is_mlp ? NULL : rb->mask;
    b->features = c->is_mlp ? rb->features : NULL;
    b->labels = c->num_labels > 1 ? rb->labels : NULL;
    b->targets = c->num_labels == 1 ? rb->targets : NULL;
}

static model *case_model(const ref_case *c, device *d)
{
    model *m = NULL;
    octet_err e;
    octet_err_clear(&e);
    int rc;
    if (c->is_mlp) {
        rc = mlp_create(d, c->in_features, c->hidden, c->n_hidden, c->num_labels, c->B, 7, &m, &e);
    } else {
        distilbert_config cfg;
        case_config(c, &cfg);
        rc = distilbert_create(d, &cfg, c->B, c->T, 7, &m, &e);
    }
    ck_assert_msg(rc == OCTET_OK, "%s: create: %s: %s", c->name, e.field, e.message);
    return m;
}

/* ------------------------------------------------------------------ the fixture */

static char g_dir[512];
static char g_error[1024];

static void write_case_json(const ref_case *c, const char *dir)
{
    json_t *j = json_pack("{s:i}", "steps", STEPS);
    if (c->with_optim) {
        json_object_set_new(j, "adamw", json_pack("{s:f, s:[f,f], s:f, s:f}", "lr", ADAMW_LR, "betas", 0.9, 0.999,
                                                  "eps", ADAMW_EPS, "weight_decay", WEIGHT_DECAY));
        json_object_set_new(j, "sgd", json_pack("{s:f, s:f, s:f}", "lr", SGD_LR, "momentum", SGD_MOMENTUM,
                                                "weight_decay", WEIGHT_DECAY));
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/case.json", dir);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(1)), 0);
    json_decref(j);
}

/* batch.safetensors: ids, mask, labels as exact floats; features; targets. */
static void write_batch(const ref_case *c, const char *dir)
{
    ref_batch rb;
    case_batch(c, &rb);
    static float fids[MAX_B * MAX_T], fmask[MAX_B * MAX_T], flabels[MAX_B];
    for (int i = 0; i < c->B * c->T; i++) {
        fids[i] = (float)rb.ids[i];
        fmask[i] = (float)rb.mask[i];
    }
    for (int i = 0; i < c->B; i++)
        flabels[i] = (float)rb.labels[i];
    octet_st_writer *w = octet_st_writer_new();
    octet_err e;
    int64_t bt[2] = {c->B, c->T}, bf[2] = {c->B, c->in_features}, b1[1] = {c->B};
    if (!c->is_mlp) {
        octet_st_writer_add(w, "ids", OCTET_ST_F32, 2, bt, fids, &e);
        octet_st_writer_add(w, "mask", OCTET_ST_F32, 2, bt, fmask, &e);
    } else {
        octet_st_writer_add(w, "features", OCTET_ST_F32, 2, bf, rb.features, &e);
    }
    if (c->num_labels > 1)
        octet_st_writer_add(w, "labels", OCTET_ST_F32, 1, b1, flabels, &e);
    else
        octet_st_writer_add(w, "targets", OCTET_ST_F32, 1, b1, rb.targets, &e);
    char path[1200];
    snprintf(path, sizeof path, "%s/batch.safetensors", dir);
    ck_assert_int_eq(octet_st_writer_write(w, path, &e), OCTET_OK);
    octet_st_writer_free(w);
}

static void prepare_case(const ref_case *c, device *d)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/%s", g_dir, c->name);
    model *m = case_model(c, d);
    tm_fill_params(m, 99);
    octet_err e;
    octet_err_clear(&e);
    int rc = hfdir_save(m, dir, &e);
    ck_assert_msg(rc == OCTET_OK, "hfdir_save: %s", e.message);
    model_destroy(m);
    write_batch(c, dir);
    write_case_json(c, dir);
}

static void ref_setup(void)
{
    g_error[0] = 0;
    if (test_tmpdir(g_dir, sizeof g_dir, "models_ref") != 0) {
        snprintf(g_error, sizeof g_error, "cannot create a scratch directory (test_tmpdir printed why on stderr)");
        return;
    }
    device *d = tm_device();
    for (int i = 0; i < N_CASES; i++)
        prepare_case(&cases[i], d);
    device_close(d);
    tm_run_reference("ref", g_dir, g_error, sizeof g_error);
}

static void ref_teardown(void)
{
    test_rmtree(g_dir);
}

/* ------------------------------------------------------------------ comparing */

static octet_st_file *open_out(const ref_case *c)
{
    ck_assert_msg(g_error[0] == 0, "%s", g_error);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/out.safetensors", g_dir, c->name);
    octet_st_file *f = NULL;
    octet_err e;
    ck_assert_msg(octet_st_open(path, &f, &e) == OCTET_OK, "%s", e.message);
    return f;
}

/* torch's tensor `name` (n floats), malloc'd. */
static float *want_tensor(octet_st_file *f, const char *name, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    octet_err e;
    ck_assert_ptr_nonnull(x);
    ck_assert_msg(octet_st_read_f32(f, name, x, (size_t)n, &e) == OCTET_OK, "%s: %s", name, e.message);
    return x;
}

/* The model rebuilt from the case's saved directory (strict load of model.safetensors). */
static model *load_case(const ref_case *c, device *d)
{
    model *m = case_model(c, d);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/model.safetensors", g_dir, c->name);
    octet_err e;
    octet_err_clear(&e);
    int rc = hfdir_load_weights(m, path, 1, NULL, &e);
    ck_assert_msg(rc == OCTET_OK, "load %s: %s", path, e.message);
    return m;
}

/* Compares one tensor; prints its agreement; fails above the tolerance. `scale_floor` (0 for
 * none) raises the scale (the k_lin.bias gradient). Returns the worst ratio. */
static double check_tensor(const char *what, const char *name, const float *got, const float *want, int64_t n,
                           double scale_floor)
{
    tm_cmp r = tm_compare(got, want, n);
    if (scale_floor > r.scale) {
        r.scale = scale_floor;
        r.worst = r.err / r.scale;
    }
    if (getenv("OCTET_MODELS_VERBOSE"))
        printf("%-10s %-60s max|diff| %.3g scale %.3g ratio %.3g\n", what, name, r.err, r.scale, r.worst);
    ck_assert_msg(r.worst <= TOL, "%s %s: |ours - torch| = %.3g at [%lld] (ours %.9g, torch %.9g) > %g * scale %.3g",
                  what, name, r.err, (long long)r.at, r.at >= 0 ? got[r.at] : 0.0, r.at >= 0 ? want[r.at] : 0.0, TOL,
                  r.scale);
    return r.worst;
}

/* The scale floor of a gradient: k_lin.bias gets its layer's k_lin.weight gradient scale. */
static double grad_floor(model *m, octet_st_file *f, const model_param *p)
{
    const char *suffix = "k_lin.bias";
    size_t len = strlen(p->name);
    if (len < strlen(suffix) || strcmp(p->name + len - strlen(suffix), suffix))
        return 0.0;
    char wname[256], key[300];
    snprintf(wname, sizeof wname, "%.*sweight", (int)(len - 4), p->name);
    model_param *w = model_find_param(m, wname);
    ck_assert_ptr_nonnull(w);
    snprintf(key, sizeof key, "grad/%s", wname);
    float *g = want_tensor(f, key, w->n);
    tm_cmp r = tm_compare(g, g, w->n);
    free(g);
    return r.scale;
}

/* ------------------------------------------------------------------ the tests */

START_TEST(test_forward_backward)
{
    const ref_case *c = &cases[_i];
    octet_st_file *f = open_out(c);
    device *d = tm_device();
    model *m = load_case(c, d);
    ref_batch rb;
    case_batch(c, &rb);
    float logits[MAX_B * 8];
    model_output out = {0.0f, NULL, logits};
    octet_err e;
    ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
    ck_assert_msg(m->vt->forward(m, &rb.b, 1, &out, &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(m->vt->backward(m, 1.0f, &e) == OCTET_OK, "%s", e.message);
    double worst = 0.0;
    float *want = want_tensor(f, "logits", (int64_t)c->B * c->num_labels);
    worst = fmax(worst, check_tensor(c->name, "logits", logits, want, (int64_t)c->B * c->num_labels, 0.0));
    free(want);
    want = want_tensor(f, "loss", 1);
    worst = fmax(worst, check_tensor(c->name, "loss", &out.loss, want, 1, 0.0));
    free(want);
    for (int i = 0; i < m->n_params; i++) {
        char key[300];
        snprintf(key, sizeof key, "grad/%s", m->params[i].name);
        float *got = tm_grad_host(m, i);
        want = want_tensor(f, key, m->params[i].n);
        worst = fmax(worst, check_tensor(c->name, key, got, want, m->params[i].n, grad_floor(m, f, &m->params[i])));
        free(got);
        free(want);
    }
    printf("models_ref %-22s forward+backward: %d gradients, worst |diff|/scale %.2g\n", c->name, m->n_params, worst);
    model_destroy(m);
    device_close(d);
    octet_st_close(f);
}
END_TEST

/* Three steps of optimizer `kind` on the case's batch; compares losses and parameters. */
static void run_steps(const ref_case *c, optim_kind kind, const char *tag)
{
    octet_st_file *f = open_out(c);
    device *d = tm_device();
    model *m = load_case(c, d);
    ref_batch rb;
    case_batch(c, &rb);
    optim_tensor *t = calloc((size_t)m->n_params, sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < m->n_params; i++) {
        model_param *p = &m->params[i];
        t[i].name = p->name;
        t[i].ndim = p->ndim;
        memcpy(t[i].shape, p->shape, sizeof t[i].shape);
        t[i].param = p->data;
        t[i].grad = p->grad;
    }
    optim_config cfg;
    optim_config_defaults(kind, &cfg);
    cfg.base.weight_decay = WEIGHT_DECAY;
    if (kind == OPTIM_ADAMW) { /* betas: the defaults, 0.9 and 0.999 */
        cfg.base.lr = ADAMW_LR;
        cfg.base.eps = ADAMW_EPS;
    } else {
        cfg.base.lr = SGD_LR;
        cfg.base.momentum = SGD_MOMENTUM;
    }
    optim *o = NULL;
    octet_err e;
    ck_assert_msg(optim_create(d, &cfg, t, m->n_params, &o, &e) == OCTET_OK, "%s", e.message);
    float losses[STEPS];
    for (int s = 0; s < STEPS; s++) {
        model_output out = {0.0f, NULL, NULL};
        m->step = (uint64_t)s;
        ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
        ck_assert_msg(m->vt->forward(m, &rb.b, 1, &out, &e) == OCTET_OK, "%s", e.message);
        ck_assert_msg(m->vt->backward(m, 1.0f, &e) == OCTET_OK, "%s", e.message);
        ck_assert_int_eq(optim_step(o, 1.0), OCTET_OK);
        losses[s] = out.loss;
    }
    char key[300];
    snprintf(key, sizeof key, "%s/losses", tag);
    float *want = want_tensor(f, key, STEPS);
    double worst = check_tensor(c->name, key, losses, want, STEPS, 0.0);
    free(want);
    for (int i = 0; i < m->n_params; i++) {
        snprintf(key, sizeof key, "%s/%s", tag, m->params[i].name);
        float *got = tm_param_host(m, i);
        want = want_tensor(f, key, m->params[i].n);
        worst = fmax(worst, check_tensor(c->name, key, got, want, m->params[i].n, 0.0));
        free(got);
        free(want);
    }
    printf("models_ref %-22s %d %s steps: losses %.6f -> %.6f, worst |diff|/scale %.2g\n", c->name, STEPS, tag,
           losses[0], losses[STEPS - 1], worst);
    optim_destroy(o);
    free(t);
    model_destroy(m);
    device_close(d);
    octet_st_close(f);
}

/* The cases that run optimizer steps: the optimizer tests loop over these only, so that no
 * iteration passes without checking anything. */
static int n_optim_cases(void)
{
    int n = 0;
    for (int i = 0; i < N_CASES; i++)
        n += cases[i].with_optim != 0;
    return n;
}

static const ref_case *optim_case(int k)
{
    for (int i = 0; i < N_CASES; i++)
        if (cases[i].with_optim && k-- == 0)
            return &cases[i];
    ck_abort_msg("no optimizer case %d", k);
    return NULL;
}

START_TEST(test_adamw_steps)
{
    run_steps(optim_case(_i), OPTIM_ADAMW, "adamw");
}
END_TEST

START_TEST(test_sgd_steps)
{
    run_steps(optim_case(_i), OPTIM_SGD, "sgd");
}
END_TEST

Suite *suite_models_ref(void)
{
    Suite *s = suite_create("models_ref");
    TCase *tc = tcase_create("torch");
    tcase_add_unchecked_fixture(tc, ref_setup, ref_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_forward_backward, 0, N_CASES);
    tcase_add_loop_test(tc, test_adamw_steps, 0, n_optim_cases());
    tcase_add_loop_test(tc, test_sgd_steps, 0, n_optim_cases());
    suite_add_tcase(s, tc);
    return s;
}
