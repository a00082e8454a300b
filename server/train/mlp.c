/* mlp.c: the fully connected classifier (mlp.h) on the ops table: Linear -> ReLU per hidden
 * size, a Linear classifier, cross-entropy or MSE. Activations for the largest batch are
 * carved once from one block (category activations); a step allocates nothing. They always
 * stay fp32 (model->act_dtype MODEL_ACT_FP32, whatever the training precision): a few rows of
 * at most a few hundred features, so 16-bit storage would save next to nothing.
 *
 * Forward: x (B,F) -> pre_i = x_i W_i^T + b_i, act_i = relu(pre_i) -> logits = act W_c^T + b_c
 * -> loss. Backward runs the same chain in reverse, reusing two ping-pong gradient buffers of
 * the widest layer. */
#include "config.h"
#include "mlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The activations of the largest batch (Bm rows), device memory. */
typedef struct mlp_acts {
    float *x;                      /* (Bm,F) input features */
    float *pre[MLP_MAX_HIDDEN];    /* (Bm,h_i) before ReLU */
    float *act[MLP_MAX_HIDDEN];    /* (Bm,h_i) after ReLU */
    float *logits;                 /* (Bm,L) */
    float *losses;                 /* (Bm) */
    float *loss;                   /* (1) */
    float *targets;                /* (Bm) regression targets */
    int *labels;                   /* (Bm) */
    int *pred;                     /* (Bm) */
    float *dlogits;                /* (Bm,L) */
    float *dA, *dB;                /* (Bm,maxw) ping-pong input gradients */
} mlp_acts;

typedef struct mlp_impl {
    mlp_shape shape;
    mlp_acts a;
    float *block;                  /* the one activation allocation */
    float *host_targets;           /* (Bm) staging for labels given as regression targets */
    int B;                         /* rows of the last training forward; 0 = none kept */
    int has_labels;                /* the last training forward had labels (or targets) */
} mlp_impl;

static const model_vtable mlp_vtable;

/* ------------------------------------------------------------------ sizes */

static int widest(const mlp_shape *s)
{
    int w = s->num_labels;
    for (int i = 0; i < s->n_hidden; i++)
        w = s->hidden[i] > w ? s->hidden[i] : w;
    return w;
}

/* Points the activations into a (base NULL: counts floats). */
static void mlp_layout(mlp_acts *a, model_arena *ar, const mlp_shape *s, int Bm)
{
    int64_t B = Bm;
    a->x = model_arena_take(ar, B * s->in_features);
    for (int i = 0; i < s->n_hidden; i++) {
        a->pre[i] = model_arena_take(ar, B * s->hidden[i]);
        a->act[i] = model_arena_take(ar, B * s->hidden[i]);
    }
    a->logits = model_arena_take(ar, B * s->num_labels);
    a->losses = model_arena_take(ar, B);
    a->loss = model_arena_take(ar, 1);
    a->targets = model_arena_take(ar, B);
    a->labels = (int *)model_arena_take(ar, B);
    a->pred = (int *)model_arena_take(ar, B);
    a->dlogits = model_arena_take(ar, B * s->num_labels);
    a->dA = model_arena_take(ar, B * widest(s));
    a->dB = model_arena_take(ar, B * widest(s));
}

int64_t mlp_count_params(int in_features, const int *hidden, int n_hidden, int num_labels)
{
    int64_t n = 0, in = in_features;
    for (int i = 0; i < n_hidden; i++) {
        n += (in + 1) * hidden[i];
        in = hidden[i];
    }
    return n + (in + 1) * num_labels;
}

/* ------------------------------------------------------------------ creation */

static int check_size(int v, int most, const char *field, octet_err *e)
{
    if (v < 1 || v > most)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer in 1..%d, got %d", most, v);
    return OCTET_OK;
}

int mlp_check(int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch, octet_err *e)
{
    if (check_size(in_features, MLP_MAX_WIDTH, "dataset", e) ||
        check_size(num_labels, MODEL_MAX_LABELS, "model.num_labels", e)) /* 1: regression (model.h) */
        return OCTET_ERR_ARG;
    if (n_hidden < 0 || n_hidden > MLP_MAX_HIDDEN || (n_hidden > 0 && !hidden))
        return octet_fail(e, OCTET_ERR_ARG, "model.hidden", "must list 0..%d layer sizes, got %d",
                          MLP_MAX_HIDDEN, n_hidden);
    for (int i = 0; i < n_hidden; i++) {
        char field[32];
        snprintf(field, sizeof field, "model.hidden[%d]", i);
        if (check_size(hidden[i], MLP_MAX_WIDTH, field, e))
            return OCTET_ERR_ARG;
    }
    if (max_batch < 1 || max_batch > (1 << 20))
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size", "must be in 1..%d, got %d", 1 << 20, max_batch);
    return OCTET_OK;
}

/* layers.<2i>.weight/bias for every Linear, in nn.Sequential's order. */
int mlp_param_list(int in_features, const int *hidden, int n_hidden, int num_labels, model_param_list *out,
                   octet_err *e)
{
    memset(out, 0, sizeof *out);
    int in = in_features, rc = OCTET_OK;
    for (int i = 0; i <= n_hidden && rc == OCTET_OK; i++) {
        int width = i < n_hidden ? hidden[i] : num_labels;
        char name[64];
        int64_t wshape[2] = {width, in}, bshape[1] = {width};
        snprintf(name, sizeof name, "layers.%d.weight", 2 * i);
        rc = model_param_list_add(out, name, 2, wshape, 0, e);
        snprintf(name, sizeof name, "layers.%d.bias", 2 * i);
        if (rc == OCTET_OK)
            rc = model_param_list_add(out, name, 1, bshape, 1, e);
        in = width;
    }
    if (rc != OCTET_OK)
        model_param_list_free(out);
    return rc;
}

static int mlp_add_params(model *m, const mlp_shape *s, octet_err *e)
{
    model_param_list l;
    int rc = mlp_param_list(s->in_features, s->hidden, s->n_hidden, s->num_labels, &l, e);
    if (rc == OCTET_OK)
        rc = model_add_param_list(m, &l, e);
    model_param_list_free(&l);
    return rc;
}

size_t mlp_activation_bytes(int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch)
{
    mlp_shape s;
    memset(&s, 0, sizeof s);
    s.in_features = in_features;
    s.n_hidden = n_hidden;
    for (int i = 0; i < n_hidden && i < MLP_MAX_HIDDEN; i++)
        s.hidden[i] = hidden[i];
    s.num_labels = num_labels;
    mlp_acts a;
    model_arena ar = {NULL, 0};
    mlp_layout(&a, &ar, &s, max_batch);
    return (size_t)ar.used * sizeof(float);
}

static int mlp_alloc_acts(model *m, mlp_impl *im, octet_err *e)
{
    model_arena ar = {NULL, 0};
    mlp_layout(&im->a, &ar, &im->shape, m->max_batch);
    im->block = model_alloc_activations(m, (size_t)ar.used * sizeof(float), "the MLP's activations", e);
    im->host_targets = malloc((size_t)m->max_batch * sizeof(float));
    if (!im->block || !im->host_targets)
        return im->block ? octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory") : OCTET_ERR_NOMEM;
    ar.base = im->block;
    ar.used = 0;
    mlp_layout(&im->a, &ar, &im->shape, m->max_batch);
    return OCTET_OK;
}

int mlp_create(device *d, int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch,
               uint64_t seed, model **out, octet_err *e)
{
    *out = NULL;
    int rc = mlp_check(in_features, hidden, n_hidden, num_labels, max_batch, e);
    model *m = NULL;
    if (rc == OCTET_OK)
        rc = model_new(d, &mlp_vtable, &m, e);
    if (rc != OCTET_OK)
        return rc;
    mlp_impl *im = calloc(1, sizeof *im);
    if (!im) {
        model_destroy(m);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    m->impl = im;
    im->shape.in_features = in_features;
    im->shape.n_hidden = n_hidden;
    for (int i = 0; i < n_hidden; i++)
        im->shape.hidden[i] = hidden[i];
    im->shape.num_labels = num_labels;
    m->num_labels = num_labels;
    m->max_batch = max_batch;
    m->max_len = 1;
    m->seed = seed;
    rc = mlp_add_params(m, &im->shape, e);
    if (rc == OCTET_OK)
        rc = mlp_alloc_acts(m, im, e);
    if (rc == OCTET_OK)
        rc = model_init_linear_default(m, seed, e);
    if (rc != OCTET_OK) {
        model_destroy(m);
        return rc;
    }
    *out = m;
    return OCTET_OK;
}

int mlp_shape_of(const model *m, mlp_shape *out)
{
    if (!m || m->vt != &mlp_vtable)
        return OCTET_ERR_ARG;
    *out = ((const mlp_impl *)m->impl)->shape;
    return OCTET_OK;
}

static void mlp_destroy(model *m)
{
    mlp_impl *im = m->impl;
    if (!im)
        return;
    device_free(m->dev, im->block);
    free(im->host_targets);
    free(im);
    m->impl = NULL;
}

/* ------------------------------------------------------------------ forward */

/* Uploads the batch's features and labels (or regression targets). Returns 1 in *has_labels
 * when the batch carries what the loss needs. */
static int mlp_upload(model *m, mlp_impl *im, const model_batch *b, int *has_labels, octet_err *e)
{
    const mlp_shape *s = &im->shape;
    int B = b->B, rc;
    if (B < 1 || B > m->max_batch || !b->features)
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size",
                          "the MLP needs 1..%d rows of features, got %d%s", m->max_batch, B,
                          b->features ? "" : " (no features)");
    rc = device_upload(m->dev, im->a.x, b->features, (size_t)B * s->in_features * sizeof(float));
    *has_labels = 0;
    if (rc == OCTET_OK && s->num_labels > 1 && b->labels) {
        rc = device_upload(m->dev, im->a.labels, b->labels, (size_t)B * sizeof(int));
        *has_labels = 1;
    } else if (rc == OCTET_OK && s->num_labels == 1 && (b->targets || b->labels)) {
        const float *t = b->targets;
        if (!t) { /* class ids used as regression targets */
            for (int i = 0; i < B; i++)
                im->host_targets[i] = (float)b->labels[i];
            t = im->host_targets;
        }
        rc = device_upload(m->dev, im->a.targets, t, (size_t)B * sizeof(float));
        *has_labels = 1;
    }
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "could not upload the batch");
}

/* The loss (when labels are there) and the argmax predictions of the logits. */
static int mlp_loss(model *m, mlp_impl *im, int B, int has_labels)
{
    const ops_table *ops = m->ops;
    mlp_acts *a = &im->a;
    int L = im->shape.num_labels;
    if (L > 1)
        return ops->crossentropy_forward(m->dev, has_labels ? a->losses : NULL, has_labels ? a->loss : NULL,
                                         a->pred, a->logits, has_labels ? a->labels : NULL, B, L);
    int rc = ops->crossentropy_forward(m->dev, NULL, NULL, a->pred, a->logits, NULL, B, L); /* pred = 0 */
    if (rc == OCTET_OK && has_labels)
        rc = ops->mse_forward(m->dev, a->losses, a->loss, a->logits, a->targets, B);
    return rc;
}

/* Copies the loss, predictions and logits the caller asked for to host memory. */
static int mlp_report(model *m, mlp_impl *im, int B, int has_labels, model_output *out)
{
    int rc = OCTET_OK;
    out->loss = 0.0f;
    if (has_labels)
        rc = device_download(m->dev, &out->loss, im->a.loss, sizeof(float));
    if (rc == OCTET_OK && out->pred)
        rc = device_download(m->dev, out->pred, im->a.pred, (size_t)B * sizeof(int32_t));
    if (rc == OCTET_OK && out->logits)
        rc = device_download(m->dev, out->logits, im->a.logits, (size_t)B * im->shape.num_labels * sizeof(float));
    return rc;
}

static int mlp_forward(model *m, const model_batch *b, int train, model_output *out, octet_err *e)
{
    mlp_impl *im = m->impl;
    const mlp_shape *s = &im->shape;
    const ops_table *ops = m->ops;
    mlp_acts *a = &im->a;
    int has_labels = 0, B = b->B;
    im->B = 0;
    int rc = mlp_upload(m, im, b, &has_labels, e);
    if (rc != OCTET_OK)
        return rc;
    const float *in = a->x; /* (B,K) */
    int K = s->in_features;
    for (int i = 0; i < s->n_hidden && rc == OCTET_OK; i++) {
        const model_param *w = &m->params[2 * i], *bias = &m->params[2 * i + 1];
        rc = ops->matmul_forward(m->dev, a->pre[i], in, w->data, bias->data, B, K, s->hidden[i]);
        if (rc == OCTET_OK)
            rc = ops->relu_forward(m->dev, a->act[i], a->pre[i], (int64_t)B * s->hidden[i]);
        in = a->act[i];
        K = s->hidden[i];
    }
    const model_param *wc = &m->params[2 * s->n_hidden], *bc = &m->params[2 * s->n_hidden + 1];
    if (rc == OCTET_OK)
        rc = ops->matmul_forward(m->dev, a->logits, in, wc->data, bc->data, B, K, s->num_labels);
    if (rc == OCTET_OK)
        rc = mlp_loss(m, im, B, has_labels);
    if (rc == OCTET_OK && out)
        rc = mlp_report(m, im, B, has_labels, out);
    if (rc != OCTET_OK)
        return octet_fail(e, rc, "", "MLP forward failed: %s", octet_strerror(rc));
    if (train) {
        im->B = B;
        im->has_labels = has_labels;
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ backward */

static int mlp_backward(model *m, float dloss, octet_err *e)
{
    mlp_impl *im = m->impl;
    const mlp_shape *s = &im->shape;
    const ops_table *ops = m->ops;
    mlp_acts *a = &im->a;
    int B = im->B, L = s->num_labels, nh = s->n_hidden, rc;
    if (B == 0 || !im->has_labels)
        return octet_fail(e, OCTET_ERR_ARG, "", "backward() needs a training forward() on a labelled batch");
    if (L > 1)
        rc = ops->crossentropy_backward(m->dev, a->dlogits, a->logits, a->labels, B, L, dloss);
    else
        rc = ops->mse_backward(m->dev, a->dlogits, a->logits, a->targets, B, dloss);
    /* classifier: d(last activation) into dA */
    const float *in = nh ? a->act[nh - 1] : a->x;  /* (B,K) */
    int K = nh ? s->hidden[nh - 1] : s->in_features;
    model_param *wc = &m->params[2 * nh], *bc = &m->params[2 * nh + 1];
    if (rc == OCTET_OK)
        rc = ops->matmul_backward(m->dev, nh ? a->dA : NULL, wc->grad, bc->grad, a->dlogits, in, wc->data, B, K, L, 0);
    float *dcur = a->dA, *dnext = a->dB;          /* (B,h_i) gradient of act_i, then of pre_i */
    for (int i = nh - 1; i >= 0 && rc == OCTET_OK; i--) {
        model_param *w = &m->params[2 * i], *bias = &m->params[2 * i + 1];
        const float *inp = i ? a->act[i - 1] : a->x; /* (B,K_i) */
        int Ki = i ? s->hidden[i - 1] : s->in_features;
        rc = ops->relu_backward(m->dev, dcur, a->pre[i], dcur, (int64_t)B * s->hidden[i]);
        if (rc == OCTET_OK)
            rc = ops->matmul_backward(m->dev, i ? dnext : NULL, w->grad, bias->grad, dcur, inp, w->data, B, Ki,
                                      s->hidden[i], 0);
        float *t = dcur;
        dcur = dnext;
        dnext = t;
    }
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "MLP backward failed: %s", octet_strerror(rc));
}

static const model_vtable mlp_vtable = {"mlp", mlp_forward, mlp_backward, mlp_destroy};
