/* model.c: what every model shares (model.h): the parameter list with its device buffers, the
 * seeded initialisers, and small host<->device helpers. The architectures (mlp.c,
 * distilbert.c) only add their parameters in Hugging Face's order, carve their activations
 * and implement forward/backward.
 *
 * The initialisation generator is counter-based, so it is the same on every machine and does
 * not depend on the order parameters are initialised in: parameter `name` under `seed` gets
 * the key k = splitmix64(seed ^ fnv1a64(name)), and its draw number j is
 * r_j = splitmix64(k + j * 0x9E3779B97F4A7C15) (splitmix64 as in Steele, Lea & Flood 2014:
 * z = x + 0x9E37..; z ^= z>>30, *= 0xBF58476D1CE4E5B9; z ^= z>>27, *= 0x94D049BB133111EB;
 * z ^= z>>31). Normals come in Box-Muller pairs: element 2i and 2i+1 use u1 = ((r_{2i} >> 11)
 * + 1) / 2^53 in (0, 1] and u2 = (r_{2i+1} >> 11) / 2^53, giving sqrt(-2 ln u1) cos(2 pi u2)
 * and sqrt(-2 ln u1) sin(2 pi u2) in double, times std, rounded to float. Uniforms in [-b, b)
 * are b * (2 (r_j >> 40) / 2^24 - 1). PyTorch's generator is not reproduced (its streams depend
 * on the order modules are built in); reference tests exchange weights through safetensors
 * instead. */
#include "config.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parameters */

const char *model_act_dtype_name(model_act_dtype t)
{
    return t == MODEL_ACT_FP32 ? "fp32" : t == MODEL_ACT_BF16 ? "bf16" : t == MODEL_ACT_FP16 ? "fp16" : "?";
}

int model_new(device *d, const model_vtable *vt, model **out, octet_err *e)
{
    *out = NULL;
    const ops_table *ops = ops_for(d);
    if (!ops)
        return octet_fail(e, OCTET_ERR_NODEV, "training.device",
                          "this build has no compute ops for the %s device", device_name(d));
    model *m = calloc(1, sizeof *m);
    if (!m)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    m->vt = vt;
    m->dev = d;
    m->ops = ops;
    *out = m;
    return OCTET_OK;
}

void model_destroy(model *m)
{
    if (!m)
        return;
    if (m->vt && m->vt->destroy)
        m->vt->destroy(m);
    for (int i = 0; i < m->n_params; i++) {
        device_free(m->dev, m->params[i].data);
        device_free(m->dev, m->params[i].grad);
        free(m->params[i].name);
    }
    free(m->params);
    free(m->grad_list);
    free(m->grad_len);
    free(m);
}

model_param *model_find_param(model *m, const char *name)
{
    for (int i = 0; m && name && i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name))
            return &m->params[i];
    return NULL;
}

int model_zero_grad(model *m)
{
    for (int i = 0; i < m->n_params; i++) {
        int rc = device_zero(m->dev, m->params[i].grad, (size_t)m->params[i].n * sizeof(float));
        if (rc != OCTET_OK)
            return rc;
    }
    return OCTET_OK;
}

/* The NOMEM record of an allocation of `bytes` for `what`, with the device's figures (asked,
 * free, total: device_alloc_fail). */
static int nomem(model *m, size_t bytes, const char *what, octet_err *e)
{
    return device_alloc_fail(m->dev, e, "model", bytes, what);
}

/* The element count of a parameter's shape into *n, or OCTET_ERR_ARG ("model") for a shape
 * that is not one. */
static int shape_numel(const char *name, int ndim, const int64_t *shape, int64_t *n, octet_err *e)
{
    if (ndim < 1 || ndim > MODEL_MAX_DIMS)
        return octet_fail(e, OCTET_ERR_ARG, "model", "parameter %s: %d dims (1..%d allowed)", name, ndim,
                          MODEL_MAX_DIMS);
    *n = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] <= 0)
            return octet_fail(e, OCTET_ERR_ARG, "model", "parameter %s: dim %d is %lld", name, k,
                              (long long)shape[k]);
        *n *= shape[k];
    }
    return OCTET_OK;
}

int model_param_list_add(model_param_list *l, const char *name, int ndim, const int64_t *shape, int no_decay,
                         octet_err *e)
{
    int64_t n;
    int rc = shape_numel(name, ndim, shape, &n, e);
    if (rc != OCTET_OK)
        return rc;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        model_param *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
        l->v = v;
        l->cap = cap;
    }
    model_param *p = &l->v[l->n];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name)))
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->n = n;
    p->no_decay = no_decay;
    l->n++;
    l->n_parameters += n;
    return OCTET_OK;
}

void model_param_list_free(model_param_list *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int model_add_param_list(model *m, const model_param_list *l, octet_err *e)
{
    int rc = OCTET_OK;
    for (int i = 0; i < l->n && rc == OCTET_OK; i++)
        rc = model_add_param(m, l->v[i].name, l->v[i].ndim, l->v[i].shape, l->v[i].no_decay, e);
    return rc;
}

int model_add_param(model *m, const char *name, int ndim, const int64_t *shape, int no_decay, octet_err *e)
{
    int64_t n;
    int rc0 = shape_numel(name, ndim, shape, &n, e);
    if (rc0 != OCTET_OK)
        return rc0;
    size_t count = (size_t)m->n_params + 1;
    model_param *grown = realloc(m->params, count * sizeof *grown);
    if (grown)
        m->params = grown;
    float **lists = grown ? realloc(m->grad_list, count * sizeof *lists) : NULL;
    if (lists)
        m->grad_list = lists;
    int64_t *lens = lists ? realloc(m->grad_len, count * sizeof *lens) : NULL;
    if (!lens)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    m->grad_len = lens;
    model_param *p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    size_t bytes = (size_t)n * sizeof(float);
    p->name = strdup(name);
    p->data = device_alloc(m->dev, bytes, MEM_PARAMS);
    p->grad = p->data ? device_alloc(m->dev, bytes, MEM_GRADS) : NULL;
    if (!p->name || !p->data || !p->grad) {
        int rc = OCTET_ERR_NOMEM;
        if (!p->name) {
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
        } else {
            char what[600];
            snprintf(what, sizeof what, "the %s of %s", p->data ? "gradient" : "weights", name);
            rc = nomem(m, bytes, what, e); /* the figures before the half-made parameter is freed */
        }
        device_free(m->dev, p->data);
        free(p->name);
        return rc;
    }
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->n = n;
    p->no_decay = no_decay;
    m->grad_list[m->n_params] = p->grad;
    m->grad_len[m->n_params] = n;
    m->n_params++;
    m->n_parameters += n;
    return OCTET_OK;
}

int model_param_get(model *m, int i, float *host)
{
    if (i < 0 || i >= m->n_params || !host)
        return OCTET_ERR_ARG;
    return device_download(m->dev, host, m->params[i].data, (size_t)m->params[i].n * sizeof(float));
}

int model_param_set(model *m, int i, const float *host)
{
    if (i < 0 || i >= m->n_params || !host)
        return OCTET_ERR_ARG;
    return device_upload(m->dev, m->params[i].data, host, (size_t)m->params[i].n * sizeof(float));
}

void *model_alloc_activations(model *m, size_t bytes, const char *what, octet_err *e)
{
    void *p = device_alloc(m->dev, bytes, MEM_ACTIVATIONS);
    if (!p)
        nomem(m, bytes, what, e);
    return p;
}

/* ------------------------------------------------------------------ the generator */

static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Draw j of the stream keyed by k. */
static uint64_t draw(uint64_t k, int64_t j) { return splitmix64(k + (uint64_t)j * 0x9E3779B97F4A7C15ULL); }

void model_fill_normal(float *x, int64_t n, float std, uint64_t seed, const char *name)
{
    const double two_pi = 6.283185307179586476925;
    uint64_t k = splitmix64(seed ^ fnv1a64(name));
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = (double)((draw(k, i) >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
        double u2 = (double)(draw(k, i + 1) >> 11) * (1.0 / 9007199254740992.0);   /* [0, 1) */
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(std * r * cos(two_pi * u2));
        if (i + 1 < n)
            x[i + 1] = (float)(std * r * sin(two_pi * u2));
    }
}

/* x (n) uniform in [-bound, bound) from the stream of `name`. */
static void fill_uniform(float *x, int64_t n, float bound, uint64_t seed, const char *name)
{
    uint64_t k = splitmix64(seed ^ fnv1a64(name));
    for (int64_t i = 0; i < n; i++)
        x[i] = bound * (2.0f * (float)(draw(k, i) >> 40) * (1.0f / 16777216.0f) - 1.0f);
}

/* ------------------------------------------------------------------ initialisers */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int is_norm_weight(const char *name)
{
    return ends_with(name, "LayerNorm.weight") || ends_with(name, "layer_norm.weight");
}

/* Fills each parameter through a host buffer with fill(i, buf) and uploads it. Fails with
 * OCTET_ERR_NOMEM (host buffer) or the device's upload status. */
typedef void (*fill_fn)(model *m, int i, float *buf, const void *ctx);

static int init_each(model *m, fill_fn fill, const void *ctx, octet_err *e)
{
    int64_t most = 0;
    for (int i = 0; i < m->n_params; i++)
        most = m->params[i].n > most ? m->params[i].n : most;
    float *buf = malloc((size_t)(most ? most : 1) * sizeof *buf);
    if (!buf)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory initialising the weights");
    int rc = OCTET_OK;
    for (int i = 0; i < m->n_params && rc == OCTET_OK; i++) {
        fill(m, i, buf, ctx);
        rc = model_param_set(m, i, buf);
    }
    free(buf);
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "could not upload the initial weights");
}

typedef struct normal_ctx {
    float std;
    uint64_t seed;
} normal_ctx;

static void fill_hf(model *m, int i, float *buf, const void *vctx)
{
    const normal_ctx *c = vctx;
    const model_param *p = &m->params[i];
    if (is_norm_weight(p->name) || ends_with(p->name, ".bias")) {
        float v = is_norm_weight(p->name) ? 1.0f : 0.0f;
        for (int64_t j = 0; j < p->n; j++)
            buf[j] = v;
    } else {
        model_fill_normal(buf, p->n, c->std, c->seed, p->name);
    }
}

int model_init_weights(model *m, float std, uint64_t seed, octet_err *e)
{
    if (!(std >= 0.0f) || !isfinite(std))
        return octet_fail(e, OCTET_ERR_ARG, "model.config.initializer_range", "must be >= 0, got %g", std);
    normal_ctx c = {std, seed};
    return init_each(m, fill_hf, &c, e);
}

/* The fan-in of the layer a parameter belongs to: in_features of "X.weight" for "X.bias"
 * (or the weight itself); 0 when unknown. */
static int64_t fan_in_of(model *m, const model_param *p)
{
    if (p->ndim >= 2)
        return p->n / p->shape[0];
    if (!ends_with(p->name, ".bias"))
        return 0;
    char wname[512];
    size_t stem = strlen(p->name) - strlen("bias");
    if (stem + strlen("weight") + 1 > sizeof wname)
        return 0;
    memcpy(wname, p->name, stem);
    strcpy(wname + stem, "weight");
    model_param *w = model_find_param(m, wname);
    return w && w->ndim >= 2 ? w->n / w->shape[0] : 0;
}

static void fill_linear(model *m, int i, float *buf, const void *vctx)
{
    const uint64_t *seed = vctx;
    const model_param *p = &m->params[i];
    int64_t fan_in = fan_in_of(m, p);
    if (is_norm_weight(p->name) || fan_in == 0) {
        float v = is_norm_weight(p->name) ? 1.0f : 0.0f;
        for (int64_t j = 0; j < p->n; j++)
            buf[j] = v;
        return;
    }
    fill_uniform(buf, p->n, (float)(1.0 / sqrt((double)fan_in)), *seed, p->name);
}

int model_init_linear_default(model *m, uint64_t seed, octet_err *e)
{
    return init_each(m, fill_linear, &seed, e);
}

/* ------------------------------------------------------------------ activation blocks */

float *model_arena_take(model_arena *a, int64_t n)
{
    int64_t at = (a->used + 15) & ~(int64_t)15; /* 16 floats = 64 bytes */
    a->used = at + n;
    return a->base ? a->base + at : NULL;
}
