/* check_models_util.c: helpers of the model suites (check_models.h). */
#include "config.h"
#include "check_models.h"
#include "testlib.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

device *tm_device(void)
{
    device *d = NULL;
    octet_err e;
    octet_err_clear(&e);
    int rc = device_open("cpu", 0, &d, &e);
    ck_assert_msg(rc == OCTET_OK && d, "device_open(cpu): %s", e.message);
    return d;
}

int tm_run_reference(const char *mode, const char *dir, char *err, size_t cap)
{
    char log[1200], args[1200];
    snprintf(log, sizeof log, "%s/models_ref.log", dir);
    snprintf(args, sizeof args, "%s '%s'", mode, dir);
    return test_run_torch_script("models_ref.py", args, log, err, cap);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

void tm_fill_params(model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_params; i++) {
        model_param *p = &m->params[i];
        float *x = malloc((size_t)p->n * sizeof *x);
        ck_assert_ptr_nonnull(x);
        int norm_w = ends_with(p->name, "LayerNorm.weight") || ends_with(p->name, "layer_norm.weight");
        float std = p->ndim == 1 ? 0.1f : strstr(p->name, "embeddings") ? 0.5f : (float)(1.0 / sqrt((double)p->shape[1]));
        model_fill_normal(x, p->n, std, seed, p->name);
        for (int64_t j = 0; norm_w && j < p->n; j++)
            x[j] += 1.0f;
        ck_assert_int_eq(model_param_set(m, i, x), OCTET_OK);
        free(x);
    }
}

float *tm_param_host(model *m, int i)
{
    float *x = malloc((size_t)m->params[i].n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(model_param_get(m, i, x), OCTET_OK);
    return x;
}

float *tm_grad_host(model *m, int i)
{
    float *x = malloc((size_t)m->params[i].n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(device_download(m->dev, x, m->params[i].grad, (size_t)m->params[i].n * sizeof *x), OCTET_OK);
    return x;
}

tm_cmp tm_compare(const float *got, const float *want, int64_t n)
{
    tm_cmp c = {0.0, 0.0, 0.0, -1};
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= c.err)) { /* NaN counts as the worst */
            c.err = isnan(d) ? INFINITY : d;
            c.at = i;
        }
        c.scale = fmax(c.scale, fabs((double)want[i]));
    }
    if (c.scale == 0.0)
        c.scale = FLT_MIN;
    c.worst = c.err / c.scale;
    return c;
}

void tm_small_config(distilbert_config *c, int num_labels, float dropout)
{
    distilbert_config_default(c);
    c->dim = 16;
    c->n_layers = 2;
    c->n_heads = 4;
    c->hidden_dim = 24;
    c->vocab_size = 30;
    c->max_position_embeddings = 10;
    c->num_labels = num_labels;
    ck_assert_int_eq(distilbert_config_set_dropout(c, dropout, NULL), OCTET_OK);
}

void tm_make_small_batch(tm_small_batch *s, int ki, int kt, const int32_t labels[3])
{
    static const int lengths[3] = {6, 4, 2};
    for (int i = 0; i < 3; i++) {
        for (int t = 0; t < 6; t++) {
            s->ids[i * 6 + t] = t < lengths[i] ? (t == 0 ? 2 : 4 + (i * ki + t * kt) % 25) : 0;
            s->mask[i * 6 + t] = t < lengths[i];
        }
        s->labels[i] = labels[i];
    }
    model_batch b = {3, 6, s->ids, s->mask, NULL, s->labels, NULL};
    s->b = b;
}

optim *tm_adamw(model *m, double lr)
{
    optim_tensor *t = calloc((size_t)m->n_params, sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < m->n_params; i++) {
        t[i].name = m->params[i].name;
        t[i].ndim = m->params[i].ndim;
        memcpy(t[i].shape, m->params[i].shape, sizeof t[i].shape);
        t[i].param = m->params[i].data;
        t[i].grad = m->params[i].grad;
    }
    optim_config cfg;
    optim_config_defaults(OPTIM_ADAMW, &cfg);
    cfg.base.lr = lr;
    optim *o = NULL;
    octet_err e;
    ck_assert_msg(optim_create(m->dev, &cfg, t, m->n_params, &o, &e) == OCTET_OK, "%s", e.message);
    free(t);
    return o;
}

float tm_forward_backward(model *m, const model_batch *b, int32_t *pred)
{
    model_output out = {0.0f, pred, NULL};
    octet_err e;
    ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
    ck_assert_msg(m->vt->forward(m, b, 1, &out, &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(m->vt->backward(m, 1.0f, &e) == OCTET_OK, "%s", e.message);
    return out.loss;
}

float tm_train_step(model *m, optim *o, const model_batch *b, int32_t *pred)
{
    m->step++;
    float loss = tm_forward_backward(m, b, pred);
    ck_assert_int_eq(optim_step(o, 1.0), OCTET_OK);
    return loss;
}

void tm_toy_task_learns(model *m, optim *o, const char *what)
{
    enum { B = 16, T = 8 };
    test_rng r;
    rng_seed(&r, 5);
    int32_t ids[B * T], mask[B * T], labels[B], pred[B];
    model_batch b = {B, T, ids, mask, NULL, labels, NULL};
    double first = 0.0, last = 0.0;
    int correct = 0;
    for (int s = 0; s < 300; s++) {
        for (int i = 0; i < B; i++) {
            int len = 3 + (int)(rng_u64(&r) % (T - 2));
            labels[i] = (int)(rng_u64(&r) % 2);
            int at = 1 + (int)(rng_u64(&r) % (len - 1));
            for (int t = 0; t < T; t++) {
                int id = 8 + (int)(rng_u64(&r) % 20);
                ids[i * T + t] = t >= len ? 0 : t == 0 ? 2 : (labels[i] && t == at) ? 7 : id;
                mask[i * T + t] = t < len;
            }
        }
        float loss = tm_train_step(m, o, &b, pred);
        if (s < 20)
            first += loss / 20.0;
        if (s >= 280) {
            last += loss / 20.0;
            for (int i = 0; i < B; i++)
                correct += pred[i] == labels[i];
        }
    }
    printf("%s: loss %.3f -> %.3f, accuracy %.1f%% over the last 20 steps\n", what, first, last,
           100.0 * correct / (20 * B));
    ck_assert(last < 0.25 * first);
    ck_assert(correct > 0.9 * 20 * B);
}
