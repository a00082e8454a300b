/* check_parity.c: the CPU-vs-CUDA parity suite (suite_parity). The CPU twin is the oracle: the
 * same optimizer is created on a CPU device and on a CUDA device from identical parameters, both
 * are stepped with the same seeded gradients (NaN/Inf elements, an all-zero block, sizes that
 * are not multiples of the block, tensors under 4096 elements, several param groups with their
 * own lr, betas, eps, weight decay, momentum and optim_bits), and after every step the CUDA
 * twin's state must equal the CPU twin's: 8-bit codes and absmax byte for byte, parameters and
 * fp32 states within 1 ulp (NaN matches NaN, whatever its payload). The stand-alone block-wise
 * quantizer is compared the same way for every block size 64..4096. Mismatches print their
 * first few indices with both values; each case prints one summary line with the worst ulp
 * seen, which is what tests/gpu/run.sh shows. Runs only from run_cuda (needs a CUDA device). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "device.h"
#include "optim.h"
#include "quant.h"

#define PARITY_STEPS 12
#define PARITY_MAX_TENSORS 10
#define PARITY_MAX_ULP 1
#define PARITY_SHOW 5 /* mismatches printed per array */

typedef struct pshape {
    const char *name;
    int ndim;
    int64_t shape[OPTIM_MAX_DIMS];
    float grad_scale;
} pshape;

/* One parity scenario: an optimizer config with its groups, the tensors and the gradient
 * oddities to feed it. */
typedef struct pcase {
    const char *label;
    optim_config cfg;          /* cfg.groups points at groups[] (set by case_finish) */
    optim_group_spec groups[4];
    const pshape *shapes;
    int n;
    int nonfinite;             /* NaN / +-Inf gradient elements on some steps */
    int64_t zero_from, zero_len; /* gradient elements of tensor 0 that are always 0 */
    uint64_t seed;
} pcase;

/* One optimizer on one device, over its own copies of the parameters and gradients. */
typedef struct side {
    device *dev;
    optim *o;
    float *param[PARITY_MAX_TENSORS], *grad[PARITY_MAX_TENSORS]; /* (numel) device buffers */
} side;

/* Mixed shapes: partial blocks everywhere, a 3-D tensor, one chunk + 1, tensors under 4096. */
static const pshape adam_shapes[] = {
    {"layer.0.weight", 2, {96, 130}, 0.1f},   /* 12480: 48.75 blocks of 256 */
    {"layer.0.bias", 1, {130}, 0.1f},
    {"embed.weight", 2, {50, 100}, 0.01f},    /* 5000 */
    {"layer.1.weight", 1, {4100}, 1.0f},      /* 4096 + 4 */
    {"layer.1.bias", 1, {3}, 0.1f},
    {"head.weight", 3, {3, 20, 33}, 0.1f},    /* 1980 */
    {"head.scale", 1, {2049}, 0.1f},          /* OPTIM_CHUNK + 1 */
    {"big.weight", 2, {200, 300}, 0.05f},     /* 60000 */
};

/* Factored (2-D, 3-D, a single row, 1500 rows of 2) and unfactored (1-D) tensors. */
static const pshape adafactor_shapes[] = {
    {"layer.0.weight", 2, {96, 130}, 0.1f},
    {"layer.0.bias", 1, {130}, 0.1f},
    {"head.weight", 3, {3, 20, 33}, 0.1f},
    {"row.weight", 2, {1, 7}, 0.1f},
    {"col.weight", 2, {1500, 2}, 0.1f},
    {"vec.weight", 1, {5000}, 0.1f},          /* 5 sum chunks, the last partial */
    {"big.weight", 2, {40, 300}, 0.05f},
};

/* A list of one tensor: the smallest Adafactor workspace. */
static const pshape solo_shapes[] = {
    {"solo.weight", 2, {33, 70}, 0.1f},
};

#define NSHAPES(a) ((int)(sizeof a / sizeof a[0]))

static int64_t numel_of(const pshape *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->ndim; k++)
        n *= s->shape[k];
    return n;
}

/* ------------------------------------------------------------------ comparison */

/* Distance of two floats in ulp, with NaN equal to NaN (payloads differ between x86 and CUDA)
 * and NaN against a number as far as it gets. */
static int64_t ulp_nan(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    return ulp_distance(a, b);
}

/* Counts elements further apart than max_ulp, prints the first few, keeps the worst distance. */
static size_t cmp_floats(const char *what, const float *want, const float *got, int64_t n, int64_t max_ulp,
                         int64_t *worst)
{
    size_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t u = ulp_nan(want[i], got[i]);
        if (u > *worst)
            *worst = u;
        if (u <= max_ulp)
            continue;
        if (bad++ < PARITY_SHOW)
            fprintf(stderr, "  %s[%lld]: cpu %.9g cuda %.9g (%lld ulp)\n", what, (long long)i, want[i], got[i],
                    (long long)u);
    }
    return bad;
}

/* Counts differing elements of `elem` bytes each, prints the first few. */
static size_t cmp_bytes(const char *what, const void *want, const void *got, int64_t n, size_t elem)
{
    const unsigned char *a = want, *b = got;
    size_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!memcmp(a + i * elem, b + i * elem, elem))
            continue;
        if (bad++ >= PARITY_SHOW)
            continue;
        if (elem == sizeof(float)) {
            float x, y;
            memcpy(&x, a + i * elem, sizeof x);
            memcpy(&y, b + i * elem, sizeof y);
            fprintf(stderr, "  %s[%lld]: cpu %.9g cuda %.9g\n", what, (long long)i, x, y);
        } else {
            fprintf(stderr, "  %s[%lld]: cpu %u cuda %u\n", what, (long long)i, a[i], b[i]);
        }
    }
    return bad;
}

/* A host copy of `bytes` bytes at a device pointer (NULL for NULL). Fails the test on error. */
static void *fetch(device *d, const void *src, size_t bytes)
{
    if (!src || !bytes)
        return NULL;
    void *h = malloc(bytes);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(device_download(d, h, src, bytes), OCTET_OK);
    return h;
}

/* What a case saw: the worst ulp distances and how many 8-bit tensors it compared. */
typedef struct worst_ulp {
    int64_t param, state;
    int n_8bit;
} worst_ulp;

/* Compares one fp32 array (present on both sides or on neither). */
static size_t cmp_state_floats(const char *what, device *dc, const float *c, device *dg, const float *g, int64_t n,
                               int64_t *worst)
{
    ck_assert_msg((c == NULL) == (g == NULL), "%s present on one side only", what);
    if (!c)
        return 0;
    float *hc = fetch(dc, c, (size_t)n * sizeof(float)), *hg = fetch(dg, g, (size_t)n * sizeof(float));
    size_t bad = cmp_floats(what, hc, hg, n, PARITY_MAX_ULP, worst);
    free(hc);
    free(hg);
    return bad;
}

/* Compares one byte-exact array (codes, absmax). */
static size_t cmp_state_bytes(const char *what, device *dc, const void *c, device *dg, const void *g, int64_t n,
                              size_t elem)
{
    void *hc = fetch(dc, c, (size_t)n * elem), *hg = fetch(dg, g, (size_t)n * elem);
    size_t bad = cmp_bytes(what, hc, hg, n, elem);
    free(hc);
    free(hg);
    return bad;
}

/* Compares parameters and every state array of tensor i; returns the mismatch count. */
static size_t cmp_tensor(const pshape *s, int i, side *cpu, side *gpu, worst_ulp *w)
{
    int64_t n = numel_of(s);
    optim_tensor_state a, b;
    ck_assert_int_eq(optim_tensor_state_get(cpu->o, i, &a), OCTET_OK);
    ck_assert_int_eq(optim_tensor_state_get(gpu->o, i, &b), OCTET_OK);
    ck_assert_int_eq(a.is_8bit, b.is_8bit);
    size_t bad = cmp_state_floats("param", cpu->dev, cpu->param[i], gpu->dev, gpu->param[i], n, &w->param);
    if (a.is_8bit) {
        w->n_8bit++;
        bad += cmp_state_bytes("code1", cpu->dev, a.code1, gpu->dev, b.code1, n, 1);
        bad += cmp_state_bytes("code2", cpu->dev, a.code2, gpu->dev, b.code2, n, 1);
        bad += cmp_state_bytes("absmax1", cpu->dev, a.absmax1, gpu->dev, b.absmax1, a.nblocks, sizeof(float));
        bad += cmp_state_bytes("absmax2", cpu->dev, a.absmax2, gpu->dev, b.absmax2, a.nblocks, sizeof(float));
        return bad;
    }
    bad += cmp_state_floats("m", cpu->dev, a.m, gpu->dev, b.m, n, &w->state);
    bad += cmp_state_floats("v", cpu->dev, a.v, gpu->dev, b.v, n, &w->state);
    if (a.factored) {
        int64_t rows = s->shape[s->ndim - 2], cols = s->shape[s->ndim - 1], batch = n / (rows * cols);
        bad += cmp_state_floats("row", cpu->dev, a.row, gpu->dev, b.row, batch * rows, &w->state);
        bad += cmp_state_floats("col", cpu->dev, a.col, gpu->dev, b.col, batch * cols, &w->state);
    }
    return bad;
}

/* ------------------------------------------------------------------ the two sides */

/* Opens `kind`, puts the initial parameters there and creates the case's optimizer on it. */
static void side_open(side *sd, const char *kind, const pcase *pc, float *const *init)
{
    octet_err e;
    octet_err_clear(&e);
    memset(sd, 0, sizeof *sd);
    ck_assert_msg(device_open(kind, 0, &sd->dev, &e) == OCTET_OK, "device %s: %s", kind, e.message);
    optim_tensor t[PARITY_MAX_TENSORS];
    for (int i = 0; i < pc->n; i++) {
        size_t bytes = (size_t)numel_of(&pc->shapes[i]) * sizeof(float);
        sd->param[i] = device_alloc(sd->dev, bytes, MEM_PARAMS);
        sd->grad[i] = device_alloc(sd->dev, bytes, MEM_GRADS);
        ck_assert_ptr_nonnull(sd->param[i]);
        ck_assert_ptr_nonnull(sd->grad[i]);
        ck_assert_int_eq(device_upload(sd->dev, sd->param[i], init[i], bytes), OCTET_OK);
        memset(&t[i], 0, sizeof t[i]);
        t[i].name = pc->shapes[i].name;
        t[i].ndim = pc->shapes[i].ndim;
        memcpy(t[i].shape, pc->shapes[i].shape, sizeof t[i].shape);
        t[i].param = sd->param[i];
        t[i].grad = sd->grad[i];
    }
    ck_assert_msg(optim_create(sd->dev, &pc->cfg, t, pc->n, &sd->o, &e) == OCTET_OK, "%s on %s: %s: %s", pc->label,
                  kind, e.field, e.message);
}

static void side_close(side *sd, int n)
{
    optim_destroy(sd->o);
    for (int i = 0; i < n; i++) {
        device_free(sd->dev, sd->param[i]);
        device_free(sd->dev, sd->grad[i]);
    }
    device_close(sd->dev);
}

/* The gradients of `step` (1-based) on the host, seeded by case and step. */
static void make_grads(const pcase *pc, int step, float **g)
{
    test_rng r;
    rng_seed(&r, pc->seed * 1000 + (uint64_t)step);
    for (int i = 0; i < pc->n; i++) {
        int64_t n = numel_of(&pc->shapes[i]);
        rng_fill_normal(&r, g[i], (size_t)n, pc->shapes[i].grad_scale);
        if (i == 0)
            for (int64_t k = pc->zero_from; k < pc->zero_from + pc->zero_len && k < n; k++)
                g[i][k] = 0.0f;
        if (!pc->nonfinite)
            continue;
        if (step % 2 == 1)
            g[i][(7 * i + 3) % n] = NAN;
        if (step % 3 == 0)
            g[i][n - 1] = INFINITY;
        if (step == 4)
            g[i][n / 2] = -INFINITY;
    }
}

/* Runs a case for PARITY_STEPS steps, comparing everything after each step. */
static void run_case(const pcase *pc)
{
    float *init[PARITY_MAX_TENSORS], *g[PARITY_MAX_TENSORS];
    test_rng r;
    ck_assert_int_le(pc->n, PARITY_MAX_TENSORS);
    rng_seed(&r, pc->seed);
    for (int i = 0; i < pc->n; i++) {
        size_t n = (size_t)numel_of(&pc->shapes[i]);
        init[i] = malloc(n * sizeof(float));
        g[i] = malloc(n * sizeof(float));
        ck_assert_ptr_nonnull(init[i]);
        ck_assert_ptr_nonnull(g[i]);
        rng_fill_normal(&r, init[i], n, 0.2f);
    }
    side cpu, gpu;
    side_open(&cpu, "cpu", pc, init);
    side_open(&gpu, "cuda", pc, init);
    worst_ulp w = {0, 0, 0};
    for (int step = 1; step <= PARITY_STEPS; step++) {
        make_grads(pc, step, g);
        for (int i = 0; i < pc->n; i++) {
            size_t bytes = (size_t)numel_of(&pc->shapes[i]) * sizeof(float);
            ck_assert_int_eq(device_upload(cpu.dev, cpu.grad[i], g[i], bytes), OCTET_OK);
            ck_assert_int_eq(device_upload(gpu.dev, gpu.grad[i], g[i], bytes), OCTET_OK);
        }
        double lr_scale = 1.0 - 0.03 * step; /* a linear schedule */
        ck_assert_int_eq(optim_step(cpu.o, lr_scale), OCTET_OK);
        ck_assert_msg(optim_step(gpu.o, lr_scale) == OCTET_OK, "%s: CUDA step %d failed", pc->label, step);
        ck_assert_int_eq(device_sync(gpu.dev), OCTET_OK);
        for (int i = 0; i < pc->n; i++) {
            size_t bad = cmp_tensor(&pc->shapes[i], i, &cpu, &gpu, &w);
            ck_assert_msg(bad == 0, "%s: step %d, tensor %s: %zu elements differ (first ones above)", pc->label, step,
                          pc->shapes[i].name, bad);
        }
    }
    printf("parity %-22s %d steps, %d tensors: worst param %lld ulp, worst fp32 state %lld ulp%s\n", pc->label,
           PARITY_STEPS, pc->n, (long long)w.param, (long long)w.state,
           w.n_8bit ? ", 8-bit codes and absmax identical" : "");
    fflush(stdout);
    side_close(&cpu, pc->n);
    side_close(&gpu, pc->n);
    for (int i = 0; i < pc->n; i++) {
        free(init[i]);
        free(g[i]);
    }
}

/* ------------------------------------------------------------------ cases */

static void case_init(pcase *pc, const char *label, optim_kind k, const pshape *shapes, int n, uint64_t seed)
{
    memset(pc, 0, sizeof *pc);
    pc->label = label;
    optim_config_defaults(k, &pc->cfg);
    pc->shapes = shapes;
    pc->n = n;
    pc->seed = seed;
}

/* Adds a param group; returns its hyper-parameters to fill in. */
static optim_hparams *case_group(pcase *pc, const char *match, unsigned set)
{
    optim_group_spec *g = &pc->groups[pc->cfg.n_groups++];
    g->match = match;
    g->set = set;
    g->hp = pc->cfg.base;
    pc->cfg.groups = pc->groups;
    return &g->hp;
}

START_TEST(test_parity_adamw)
{
    pcase pc;
    case_init(&pc, "adamw", OPTIM_ADAMW, adam_shapes, NSHAPES(adam_shapes), 11);
    optim_hparams *h = case_group(&pc, "*.bias", OPTIM_SET_LR | OPTIM_SET_WEIGHT_DECAY);
    h->lr = 3e-3;
    h->weight_decay = 0.0;
    h = case_group(&pc, "embed.*", OPTIM_SET_BETAS | OPTIM_SET_EPS);
    h->beta1 = 0.8;
    h->beta2 = 0.95;
    h->eps = 1e-6;
    h = case_group(&pc, "layer.1.*", OPTIM_SET_LR);
    h->lr = 5e-4;
    pc.nonfinite = 1;
    pc.zero_from = 256;
    pc.zero_len = 256;
    run_case(&pc);
}
END_TEST

/* adam8bit at the default block 256: 8-bit tensors >= 4096 elements, fp32 (bnb 32-bit path)
 * for smaller ones and for the optim_bits = 32 group. */
START_TEST(test_parity_adam8bit)
{
    pcase pc;
    case_init(&pc, "adam8bit B=256", OPTIM_ADAM8BIT, adam_shapes, NSHAPES(adam_shapes), 12);
    optim_hparams *h = case_group(&pc, "*.bias", OPTIM_SET_LR | OPTIM_SET_BETAS);
    h->lr = 3e-3;
    h->beta1 = 0.8;
    h->beta2 = 0.95;
    h = case_group(&pc, "embed.*", OPTIM_SET_OPTIM_BITS);
    h->optim_bits = 32;
    h = case_group(&pc, "layer.1.*", OPTIM_SET_LR | OPTIM_SET_BETAS | OPTIM_SET_EPS);
    h->lr = 5e-4;
    h->beta1 = 0.85;
    h->beta2 = 0.99;
    h->eps = 1e-6;
    pc.nonfinite = 1;
    pc.zero_from = 256;
    pc.zero_len = 256;
    run_case(&pc);
}
END_TEST

/* adamw8bit (weight decay 1e-2) at every block size 64..4096, with min_8bit_size 0 so that
 * tensors smaller than one block are quantized too (one partial block). */
START_TEST(test_parity_adamw8bit_blocks)
{
    static char label[32];
    int block = 64 << _i;
    pcase pc;
    snprintf(label, sizeof label, "adamw8bit B=%d", block);
    case_init(&pc, label, OPTIM_ADAMW8BIT, adam_shapes, NSHAPES(adam_shapes), 13 + (uint64_t)_i);
    pc.cfg.block_size = block;
    pc.cfg.min_8bit_size = 0;
    optim_hparams *h = case_group(&pc, "*.bias", OPTIM_SET_LR | OPTIM_SET_WEIGHT_DECAY);
    h->lr = 3e-3;
    h->weight_decay = 0.0;
    h = case_group(&pc, "embed.*", OPTIM_SET_OPTIM_BITS);
    h->optim_bits = 32;
    h = case_group(&pc, "layer.1.*", OPTIM_SET_BETAS | OPTIM_SET_WEIGHT_DECAY);
    h->beta1 = 0.85;
    h->beta2 = 0.99;
    h->weight_decay = 0.1;
    pc.nonfinite = 1;
    pc.zero_from = block;
    pc.zero_len = block;
    run_case(&pc);
}
END_TEST

/* Hugging Face defaults: relative step, parameter scaling by RMS(p), no momentum. */
START_TEST(test_parity_adafactor_relative)
{
    pcase pc;
    case_init(&pc, "adafactor relative", OPTIM_ADAFACTOR, adafactor_shapes, NSHAPES(adafactor_shapes), 21);
    optim_hparams *h = case_group(&pc, "*.weight", OPTIM_SET_WEIGHT_DECAY);
    h->weight_decay = 0.01;
    pc.zero_from = 0;
    pc.zero_len = 130; /* a whole row of zeros */
    run_case(&pc);
}
END_TEST

/* The Trainer's way: a given lr, no relative step or scaling, with beta1 and weight decay. */
START_TEST(test_parity_adafactor_trainer_beta1)
{
    pcase pc;
    case_init(&pc, "adafactor lr+beta1", OPTIM_ADAFACTOR, adafactor_shapes, NSHAPES(adafactor_shapes), 22);
    optim_hparams *b = &pc.cfg.base;
    b->relative_step = 0;
    b->scale_parameter = 0;
    b->lr = 1e-3;
    b->use_beta1 = 1;
    b->beta1 = 0.9;
    b->weight_decay = 0.01;
    optim_hparams *h = case_group(&pc, "*.bias", OPTIM_SET_LR | OPTIM_SET_WEIGHT_DECAY);
    h->lr = 3e-3;
    h->weight_decay = 0.0;
    run_case(&pc);
}
END_TEST

/* A given lr with parameter scaling (the p^2 sums) and beta1. */
START_TEST(test_parity_adafactor_scaled_lr)
{
    pcase pc;
    case_init(&pc, "adafactor lr+scale", OPTIM_ADAFACTOR, adafactor_shapes, NSHAPES(adafactor_shapes), 23);
    optim_hparams *b = &pc.cfg.base;
    b->relative_step = 0;
    b->scale_parameter = 1;
    b->lr = 1e-2;
    b->use_beta1 = 1;
    b->beta1 = 0.5;
    run_case(&pc);
}
END_TEST

/* One factored tensor alone in its list, Hugging Face defaults. */
START_TEST(test_parity_adafactor_single)
{
    pcase pc;
    case_init(&pc, "adafactor one tensor", OPTIM_ADAFACTOR, solo_shapes, NSHAPES(solo_shapes), 24);
    run_case(&pc);
}
END_TEST

START_TEST(test_parity_sgd_nesterov)
{
    pcase pc;
    case_init(&pc, "sgd nesterov", OPTIM_SGD, adam_shapes, NSHAPES(adam_shapes), 31);
    optim_hparams *b = &pc.cfg.base;
    b->lr = 1e-2;
    b->momentum = 0.9;
    b->nesterov = 1;
    b->weight_decay = 1e-4;
    optim_hparams *h = case_group(&pc, "*.bias", OPTIM_SET_LR | OPTIM_SET_MOMENTUM);
    h->lr = 0.05;
    h->momentum = 0.0; /* no buffer for these */
    pc.nonfinite = 1;
    run_case(&pc);
}
END_TEST

START_TEST(test_parity_sgd_dampening)
{
    pcase pc;
    case_init(&pc, "sgd dampening", OPTIM_SGD, adam_shapes, NSHAPES(adam_shapes), 32);
    optim_hparams *b = &pc.cfg.base;
    b->lr = 1e-2;
    b->momentum = 0.9;
    b->dampening = 0.1;
    optim_hparams *h = case_group(&pc, "layer.1.*", OPTIM_SET_MOMENTUM);
    h->momentum = 0.5;
    pc.nonfinite = 1;
    run_case(&pc);
}
END_TEST

/* ------------------------------------------------------------------ stand-alone quantizer */

/* Quantizes x (n values, block B) on both devices and compares codes and absmax byte for byte,
 * then dequantizes the CPU's codes on both and compares the values exactly. */
static void quant_parity_one(device *cpu, device *gpu, const float *x, int64_t n, int B, int is_signed)
{
    char what[64];
    int64_t nb = quant_nblocks(n, B), worst = 0;
    uint8_t *codes_c = malloc((size_t)n), *codes_g = malloc((size_t)n);
    float *amax_c = malloc((size_t)nb * sizeof(float)), *amax_g = malloc((size_t)nb * sizeof(float));
    float *y_c = malloc((size_t)n * sizeof(float)), *y_g = malloc((size_t)n * sizeof(float));
    float *dx = device_alloc(gpu, (size_t)n * sizeof(float), MEM_WORKSPACE);
    float *dy = device_alloc(gpu, (size_t)n * sizeof(float), MEM_WORKSPACE);
    float *damax = device_alloc(gpu, (size_t)nb * sizeof(float), MEM_WORKSPACE);
    uint8_t *dcodes = device_alloc(gpu, (size_t)n, MEM_WORKSPACE);
    ck_assert(codes_c && codes_g && amax_c && amax_g && y_c && y_g && dx && dy && damax && dcodes);
    ck_assert_int_eq(device_upload(gpu, dx, x, (size_t)n * sizeof(float)), OCTET_OK);
    ck_assert_int_eq(quant_blockwise(cpu, x, n, B, is_signed, codes_c, amax_c, NULL), OCTET_OK);
    ck_assert_int_eq(quant_blockwise(gpu, dx, n, B, is_signed, dcodes, damax, NULL), OCTET_OK);
    ck_assert_int_eq(device_download(gpu, codes_g, dcodes, (size_t)n), OCTET_OK);
    ck_assert_int_eq(device_download(gpu, amax_g, damax, (size_t)nb * sizeof(float)), OCTET_OK);
    snprintf(what, sizeof what, "B=%d n=%lld %s codes", B, (long long)n, is_signed ? "signed" : "unsigned");
    size_t bad = cmp_bytes(what, codes_c, codes_g, n, 1);
    snprintf(what, sizeof what, "B=%d n=%lld %s absmax", B, (long long)n, is_signed ? "signed" : "unsigned");
    bad += cmp_bytes(what, amax_c, amax_g, nb, sizeof(float));
    ck_assert_msg(bad == 0, "quantize B=%d n=%lld: %zu differences", B, (long long)n, bad);
    /* dequantize the CPU's codes on both sides */
    ck_assert_int_eq(device_upload(gpu, dcodes, codes_c, (size_t)n), OCTET_OK);
    ck_assert_int_eq(device_upload(gpu, damax, amax_c, (size_t)nb * sizeof(float)), OCTET_OK);
    ck_assert_int_eq(dequant_blockwise(cpu, codes_c, n, B, is_signed, amax_c, y_c, NULL), OCTET_OK);
    ck_assert_int_eq(dequant_blockwise(gpu, dcodes, n, B, is_signed, damax, dy, NULL), OCTET_OK);
    ck_assert_int_eq(device_download(gpu, y_g, dy, (size_t)n * sizeof(float)), OCTET_OK);
    snprintf(what, sizeof what, "B=%d n=%lld dequantized", B, (long long)n);
    bad = cmp_floats(what, y_c, y_g, n, 0, &worst);
    ck_assert_msg(bad == 0, "dequantize B=%d n=%lld: %zu differences", B, (long long)n, bad);
    device_free(gpu, dx);
    device_free(gpu, dy);
    device_free(gpu, damax);
    device_free(gpu, dcodes);
    free(codes_c);
    free(codes_g);
    free(amax_c);
    free(amax_g);
    free(y_c);
    free(y_g);
}

/* Every block size 64..4096 (loop index _i): three blocks and a partial one, and a single
 * partial block; normal values with an all-zero block, a block with a subnormal absmax, a NaN
 * and an Inf (its block's absmax is Inf), signed and unsigned maps. */
START_TEST(test_parity_quantize_blocks)
{
    int B = 64 << _i;
    device *cpu, *gpu;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &cpu, NULL), OCTET_OK);
    ck_assert_msg(device_open("cuda", 0, &gpu, &e) == OCTET_OK, "cuda: %s", e.message);
    int64_t sizes[2] = {3 * (int64_t)B + 77, B / 2 + 3};
    test_rng r;
    rng_seed(&r, 4000 + (uint64_t)B);
    for (int k = 0; k < 2; k++) {
        int64_t n = sizes[k];
        float *x = malloc((size_t)n * sizeof(float));
        ck_assert_ptr_nonnull(x);
        for (int is_signed = 1; is_signed >= 0; is_signed--) {
            rng_fill_normal(&r, x, (size_t)n, 0.5f);
            if (!is_signed)
                for (int64_t i = 0; i < n; i++)
                    x[i] = fabsf(x[i]);
            for (int64_t i = B; i < 2 * (int64_t)B && i < n; i++)
                x[i] = 0.0f;
            for (int64_t i = 2 * (int64_t)B; i < 3 * (int64_t)B && i < n; i++)
                x[i] *= 1e-40f; /* a subnormal absmax: 1 / absmax overflows, the block divides */
            x[5] = NAN;
            x[n - 1] = INFINITY;
            quant_parity_one(cpu, gpu, x, n, B, is_signed);
        }
        free(x);
    }
    printf("parity quantize B=%-4d codes, absmax and dequantized values identical\n", B);
    fflush(stdout);
    device_close(gpu);
    device_close(cpu);
}
END_TEST

Suite *suite_parity(void)
{
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("optimizers");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_parity_adamw);
    tcase_add_test(tc, test_parity_adam8bit);
    tcase_add_loop_test(tc, test_parity_adamw8bit_blocks, 0, 7); /* B = 64 .. 4096 */
    tcase_add_test(tc, test_parity_adafactor_relative);
    tcase_add_test(tc, test_parity_adafactor_trainer_beta1);
    tcase_add_test(tc, test_parity_adafactor_scaled_lr);
    tcase_add_test(tc, test_parity_adafactor_single);
    tcase_add_test(tc, test_parity_sgd_nesterov);
    tcase_add_test(tc, test_parity_sgd_dampening);
    suite_add_tcase(s, tc);
    tc = tcase_create("quantizer");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_parity_quantize_blocks, 0, 7);
    suite_add_tcase(s, tc);
    return s;
}
