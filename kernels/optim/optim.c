/* optim.c: the optimizer engine's host side — validation, parameter groups, state layout and
 * accounting, step scalars, save/load — and the dispatch to the CPU or CUDA twin.
 *
 * Create validates every hyper-parameter, assigns each tensor to its group (first glob that
 * matches, else the base group), chooses its state layout (8-bit codes + absmax, or fp32),
 * allocates all state on the device under `optimizer_state` and builds one descriptor table per
 * launch list (see optim_impl.h). A step increments the step count, computes each group's
 * scalars on the host in double, uploads that small table and runs each non-empty list once.
 *
 * The saved state is a little binary format: a header naming the optimizer, block size, step
 * and each tensor's name, shape and layout, then the raw state arrays and the maps, closed by a
 * CRC-32 of everything before it. Loading checks all of it before touching live state. */
#define LOG_PREFIX "optim"
#include "config.h"
#include "optim.h"
#include "optim_impl.h"
#include "qmap.h"
#include "log.h"
#include "fileio.h"

#include <float.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { LIST_ADAM8 = 0, LIST_ADAM32, LIST_SGD, LIST_ADAFACTOR, LIST_COUNT };

typedef struct tensor_slot {
    char *name;
    int ndim;
    int64_t shape[OPTIM_MAX_DIMS];
    int64_t n;
    int group;               /* 0 = base, i+1 = cfg.groups[i] */
    int list;                /* LIST_* */
    int index_in_list;
    optim_tensor_desc desc;  /* the host copy of its descriptor (state pointers) */
} tensor_slot;

typedef struct launch_list {
    optim_tensor_desc *host;
    optim_tensor_desc *dev;  /* == host on the CPU */
    int n;
    int64_t units;
} launch_list;

struct optim {
    device *dev;
    const optim_kernels *k;
    optim_config cfg;
    optim_group_spec *groups;   /* owned copy of cfg.groups (match strings duplicated) */
    int n;
    tensor_slot *t;
    int64_t step;
    float *qmap1, *qmap2;       /* device; NULL unless an 8-bit optimizer */
    float host_qmap1[QMAP_SIZE], host_qmap2[QMAP_SIZE];
    launch_list lists[LIST_COUNT];
    optim_group_scalars *host_scalars, *dev_scalars; /* n_groups + 1 */
    float *workspace;
    int64_t workspace_floats;
};

static const char *kind_names[OPTIM_NKINDS] = {"adamw", "adam8bit", "adamw8bit", "adafactor", "sgd"};

const char *optim_kind_name(optim_kind k)
{
    return (k >= 0 && k < OPTIM_NKINDS) ? kind_names[k] : "unknown";
}

int optim_kind_from_name(const char *name, optim_kind *k, octet_err *e)
{
    for (int i = 0; name && i < OPTIM_NKINDS; i++)
        if (!strcmp(name, kind_names[i])) {
            *k = (optim_kind)i;
            return OCTET_OK;
        }
    return octet_fail(e, OCTET_ERR_ARG, "optimizer.name",
                      "unknown optimizer '%s'; allowed: adamw, adam8bit, adamw8bit, adafactor, sgd",
                      name ? name : "(null)");
}

static int is_8bit_kind(optim_kind k) { return k == OPTIM_ADAM8BIT || k == OPTIM_ADAMW8BIT; }

void optim_config_defaults(optim_kind k, optim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = k;
    optim_hparams *h = &cfg->base;
    h->lr = 1e-3;
    h->beta1 = 0.9;
    h->beta2 = 0.999;
    h->eps = 1e-8;
    h->optim_bits = 8;
    cfg->min_8bit_size = 4096;
    cfg->block_size = 256;
    switch (k) {
    case OPTIM_ADAMW: h->weight_decay = 1e-2; h->optim_bits = 32; break;
    case OPTIM_ADAM8BIT: h->weight_decay = 0.0; break;
    case OPTIM_ADAMW8BIT: h->weight_decay = 1e-2; break;
    case OPTIM_SGD:
        h->lr = 1e-3;
        h->momentum = 0.0;
        h->optim_bits = 32;
        break;
    case OPTIM_ADAFACTOR:
        h->lr = 0.0;            /* none: relative step */
        h->eps = 1e-30;
        h->eps2 = 1e-3;
        h->clip_threshold = 1.0;
        h->decay_rate = -0.8;
        h->beta1 = 0.0;
        h->use_beta1 = 0;
        h->scale_parameter = 1;
        h->relative_step = 1;
        h->warmup_init = 0;
        h->optim_bits = 32;
        break;
    default: break;
    }
}

/* ------------------------------------------------------------------ validation */

int optim_block_size_ok(int b)
{
    return b >= OPTIM_BLOCK_MIN && b <= OPTIM_BLOCK_MAX && (b & (b - 1)) == 0;
}

int optim_block_size_check(int b, const char *field, octet_err *e)
{
    if (optim_block_size_ok(b))
        return OCTET_OK;
    return octet_fail(e, OCTET_ERR_ARG, field, "must be a power of two from %d to %d, got %d", OPTIM_BLOCK_MIN,
                      OPTIM_BLOCK_MAX, b);
}

/* The step runs in float: a hyper-parameter past FLT_MAX (NaN and inf included) would become
 * inf there and turn the weights into NaN, a failure that would surface as a NaN loss
 * blaming the learning rate. Each such field is refused here instead, by its own name. */
static int beyond_float(double x) { return !(fabs(x) <= FLT_MAX); }

/* The kinds whose weight decay is decoupled, p *= 1 - lr * weight_decay (optim_math.h). */
static int is_decoupled_adam(optim_kind k) { return k == OPTIM_ADAMW || is_8bit_kind(k); }

static int check_unit_interval(double x, const char *field, octet_err *e)
{
    if (!isfinite(x) || x < 0.0 || x >= 1.0)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be in [0, 1), got %g", x);
    return OCTET_OK;
}

/* Validates the fields of one group; `prefix` is "optimizer" or "optimizer.param_groups[i]",
 * `set` says which fields to look at (all for the base group). */
static int validate_hparams(optim_kind k, const optim_hparams *h, unsigned set, const char *prefix,
                            octet_err *e)
{
    char f[96];
    int rc;
    if (set & OPTIM_SET_LR) {
        snprintf(f, sizeof f, "%s.lr", prefix);
        int lr_optional = k == OPTIM_ADAFACTOR && h->relative_step;
        if (beyond_float(h->lr) || h->lr < 0.0 || (h->lr == 0.0 && !lr_optional))
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a number > 0 and at most %g, got %g", (double)FLT_MAX,
                              h->lr);
    }
    if ((set & OPTIM_SET_BETAS) && k != OPTIM_SGD) {
        snprintf(f, sizeof f, "%s.betas[0]", prefix);
        if (k != OPTIM_ADAFACTOR || h->use_beta1)
            if ((rc = check_unit_interval(h->beta1, f, e)))
                return rc;
        if (k != OPTIM_ADAFACTOR) {
            snprintf(f, sizeof f, "%s.betas[1]", prefix);
            if ((rc = check_unit_interval(h->beta2, f, e)))
                return rc;
        }
    }
    if (set & OPTIM_SET_EPS) { /* adafactor's eps is the pair [eps1, eps2] */
        snprintf(f, sizeof f, k == OPTIM_ADAFACTOR ? "%s.eps[0]" : "%s.eps", prefix);
        if (k != OPTIM_SGD && (beyond_float(h->eps) || h->eps <= 0.0))
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a number > 0 and at most %g, got %g", (double)FLT_MAX,
                              h->eps);
    }
    if (set & OPTIM_SET_WEIGHT_DECAY) {
        snprintf(f, sizeof f, "%s.weight_decay", prefix);
        if (beyond_float(h->weight_decay) || h->weight_decay < 0.0)
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a number >= 0 and at most %g, got %g", (double)FLT_MAX,
                              h->weight_decay);
    }
    /* Decoupled decay multiplies every weight by 1 - lr * weight_decay each step: past 1 it
     * flips their signs and soon overflows them. Named by the larger culprit: weight_decay
     * when it is above 1 or was set here without the lr, else lr. */
    if ((set & (OPTIM_SET_LR | OPTIM_SET_WEIGHT_DECAY)) && is_decoupled_adam(k) && h->lr * h->weight_decay > 1.0) {
        int wd = h->weight_decay > 1.0 || !(set & OPTIM_SET_LR);
        snprintf(f, sizeof f, "%s.%s", prefix, wd ? "weight_decay" : "lr");
        return octet_fail(e, OCTET_ERR_ARG, f,
                          "lr x weight_decay must be at most 1 (each step multiplies the weights by 1 - lr x "
                          "weight_decay), got %g x %g", h->lr, h->weight_decay);
    }
    if (set & OPTIM_SET_OPTIM_BITS) {
        snprintf(f, sizeof f, "%s.optim_bits", prefix);
        if (h->optim_bits != 8 && h->optim_bits != 32)
            return octet_fail(e, OCTET_ERR_ARG, f, "must be 8 or 32, got %d", h->optim_bits);
        if (!is_8bit_kind(k) && h->optim_bits != 32)
            return octet_fail(e, OCTET_ERR_ARG, f, "only 8-bit optimizers take optim_bits 8; %s keeps 32-bit states",
                              kind_names[k]);
    }
    if ((set & OPTIM_SET_MOMENTUM) && k == OPTIM_SGD) {
        snprintf(f, sizeof f, "%s.momentum", prefix);
        if (beyond_float(h->momentum) || h->momentum < 0.0)
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a number >= 0 and at most %g, got %g", (double)FLT_MAX,
                              h->momentum);
    }
    return OCTET_OK;
}

static int validate_base_extras(const optim_config *cfg, octet_err *e)
{
    const optim_hparams *h = &cfg->base;
    if (is_8bit_kind(cfg->kind)) {
        int rc = optim_block_size_check(cfg->block_size, "optimizer.block_size", e);
        if (rc)
            return rc;
        if (cfg->min_8bit_size < 0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.min_8bit_size", "must be >= 0, got %lld",
                              (long long)cfg->min_8bit_size);
    }
    if (cfg->kind == OPTIM_SGD) {
        if (!isfinite(h->dampening) || h->dampening < 0.0 || h->dampening > 1.0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.dampening", "must be in [0, 1], got %g", h->dampening);
        if (h->nesterov && (h->momentum <= 0.0 || h->dampening != 0.0))
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.nesterov",
                              "Nesterov momentum requires momentum > 0 and dampening 0");
    }
    if (cfg->kind == OPTIM_ADAFACTOR) {
        if (h->relative_step && h->lr > 0.0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.lr",
                              "cannot be combined with relative_step (set relative_step false to use an lr)");
        if (h->warmup_init && !h->relative_step)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.warmup_init", "requires relative_step");
        if (beyond_float(h->eps2) || h->eps2 <= 0.0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.eps[1]", "must be a number > 0 and at most %g, got %g",
                              (double)FLT_MAX, h->eps2);
        if (beyond_float(h->clip_threshold) || h->clip_threshold <= 0.0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.clip_threshold",
                              "must be a number > 0 and at most %g, got %g", (double)FLT_MAX, h->clip_threshold);
        if (beyond_float(h->decay_rate) || h->decay_rate >= 0.0)
            return octet_fail(e, OCTET_ERR_ARG, "optimizer.decay_rate",
                              "must be a number < 0 and at least %g, got %g", -(double)FLT_MAX, h->decay_rate);
    }
    return OCTET_OK;
}

int optim_config_validate(const optim_config *cfg, octet_err *e)
{
    if (cfg->kind < 0 || cfg->kind >= OPTIM_NKINDS)
        return octet_fail(e, OCTET_ERR_ARG, "optimizer.name", "unknown optimizer kind %d", (int)cfg->kind);
    int rc = validate_hparams(cfg->kind, &cfg->base, ~0u, "optimizer", e);
    if (rc)
        return rc;
    if ((rc = validate_base_extras(cfg, e)))
        return rc;
    if (cfg->n_groups < 0 || cfg->n_groups > OPTIM_MAX_GROUPS)
        return octet_fail(e, OCTET_ERR_ARG, "optimizer.param_groups", "at most %d groups, got %d",
                          OPTIM_MAX_GROUPS, cfg->n_groups);
    for (int i = 0; i < cfg->n_groups; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "optimizer.param_groups[%d]", i);
        const optim_group_spec *g = &cfg->groups[i];
        if (!g->match || !*g->match) {
            char f[96];
            snprintf(f, sizeof f, "%s.match", prefix);
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a non-empty glob over parameter names");
        }
        optim_hparams h = cfg->base; /* fields not set come from the base group */
        if (g->set & OPTIM_SET_LR) h.lr = g->hp.lr;
        if (g->set & OPTIM_SET_BETAS) { h.beta1 = g->hp.beta1; h.beta2 = g->hp.beta2; }
        if (g->set & OPTIM_SET_EPS) h.eps = g->hp.eps;
        if (g->set & OPTIM_SET_WEIGHT_DECAY) h.weight_decay = g->hp.weight_decay;
        if (g->set & OPTIM_SET_OPTIM_BITS) h.optim_bits = g->hp.optim_bits;
        if (g->set & OPTIM_SET_MOMENTUM) h.momentum = g->hp.momentum;
        if ((rc = validate_hparams(cfg->kind, &h, g->set, prefix, e)))
            return rc;
    }
    return OCTET_OK;
}

/* The effective hyper-parameters of group index gi (0 = base). */
static optim_hparams group_hparams(const optim_config *cfg, int gi)
{
    optim_hparams h = cfg->base;
    if (gi == 0)
        return h;
    const optim_group_spec *g = &cfg->groups[gi - 1];
    if (g->set & OPTIM_SET_LR) h.lr = g->hp.lr;
    if (g->set & OPTIM_SET_BETAS) { h.beta1 = g->hp.beta1; h.beta2 = g->hp.beta2; }
    if (g->set & OPTIM_SET_EPS) h.eps = g->hp.eps;
    if (g->set & OPTIM_SET_WEIGHT_DECAY) h.weight_decay = g->hp.weight_decay;
    if (g->set & OPTIM_SET_OPTIM_BITS) h.optim_bits = g->hp.optim_bits;
    if (g->set & OPTIM_SET_MOMENTUM) h.momentum = g->hp.momentum;
    return h;
}

/* ------------------------------------------------------------------ layout */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Fills slot->group/list and the sizes in slot->desc (no buffers). */
static void plan_tensor(const optim_config *cfg, tensor_slot *s)
{
    s->group = 0;
    for (int i = 0; i < cfg->n_groups; i++)
        if (fnmatch(cfg->groups[i].match, s->name, 0) == 0) {
            s->group = i + 1;
            break;
        }
    optim_hparams h = group_hparams(cfg, s->group);
    optim_tensor_desc *d = &s->desc;
    memset(d, 0, sizeof *d);
    d->n = s->n;
    d->group = s->group;
    switch (cfg->kind) {
    case OPTIM_ADAMW: s->list = LIST_ADAM32; break;
    case OPTIM_ADAM8BIT:
    case OPTIM_ADAMW8BIT:
        s->list = (h.optim_bits == 8 && s->n >= cfg->min_8bit_size) ? LIST_ADAM8 : LIST_ADAM32;
        break;
    case OPTIM_SGD: s->list = LIST_SGD; break;
    case OPTIM_ADAFACTOR:
        s->list = LIST_ADAFACTOR;
        d->factored = s->ndim >= 2;
        if (d->factored) {
            d->rows = s->shape[s->ndim - 2];
            d->cols = s->shape[s->ndim - 1];
            d->batch = s->n / (d->rows * d->cols);
        } else {
            d->batch = 1;
            d->rows = 1;
            d->cols = s->n;
        }
        break;
    default: break;
    }
    d->n_units = s->list == LIST_ADAM8 ? ceil_div(s->n, cfg->block_size) : ceil_div(s->n, OPTIM_CHUNK);
    if (s->list == LIST_ADAFACTOR)
        d->n_units = 1;
}

/* Exact state bytes of one planned tensor. */
static void tensor_bytes(const optim_config *cfg, const tensor_slot *s, optim_state_bytes *b)
{
    memset(b, 0, sizeof *b);
    const optim_tensor_desc *d = &s->desc;
    optim_hparams h = group_hparams(cfg, s->group);
    switch (s->list) {
    case LIST_ADAM8:
        b->codes = 2 * (size_t)s->n;
        b->absmax = 2 * sizeof(float) * (size_t)d->n_units;
        break;
    case LIST_ADAM32: b->fp32 = 2 * sizeof(float) * (size_t)s->n; break;
    case LIST_SGD: b->fp32 = h.momentum != 0.0 ? sizeof(float) * (size_t)s->n : 0; break;
    case LIST_ADAFACTOR:
        b->fp32 = sizeof(float) * (size_t)(d->factored ? d->batch * (d->rows + d->cols) : s->n);
        if (cfg->base.use_beta1)
            b->fp32 += sizeof(float) * (size_t)s->n;
        break;
    }
    b->total = b->codes + b->absmax + b->fp32;
}

static int check_tensor(const optim_tensor *t, int i, int need_buffers, octet_err *e)
{
    char f[64];
    snprintf(f, sizeof f, "params[%d]", i);
    if (!t->name || !*t->name)
        return octet_fail(e, OCTET_ERR_ARG, f, "parameter has no name");
    if (t->ndim < 1 || t->ndim > OPTIM_MAX_DIMS)
        return octet_fail(e, OCTET_ERR_ARG, f, "%s: ndim must be 1..%d, got %d", t->name, OPTIM_MAX_DIMS, t->ndim);
    for (int k = 0; k < t->ndim; k++)
        if (t->shape[k] <= 0)
            return octet_fail(e, OCTET_ERR_ARG, f, "%s: dimension %d is %lld", t->name, k, (long long)t->shape[k]);
    if (need_buffers && (!t->param || !t->grad))
        return octet_fail(e, OCTET_ERR_ARG, f, "%s: missing param or grad buffer", t->name);
    return OCTET_OK;
}

static int64_t numel(const optim_tensor *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++)
        n *= t->shape[k];
    return n;
}

/* Plans all tensors into slots and checks that every group matches something. */
static int plan_all(const optim_config *cfg, const optim_tensor *tensors, int n, int need_buffers,
                    tensor_slot *slots, octet_err *e)
{
    int rc;
    if (n <= 0)
        return octet_fail(e, OCTET_ERR_ARG, "params", "the optimizer needs at least one parameter");
    for (int i = 0; i < n; i++) {
        if ((rc = check_tensor(&tensors[i], i, need_buffers, e)))
            return rc;
        slots[i].name = (char *)tensors[i].name; /* replaced by a copy in optim_create */
        slots[i].ndim = tensors[i].ndim;
        memcpy(slots[i].shape, tensors[i].shape, sizeof slots[i].shape);
        slots[i].n = numel(&tensors[i]);
        plan_tensor(cfg, &slots[i]);
    }
    for (int gi = 0; gi < cfg->n_groups; gi++) {
        int used = 0;
        for (int i = 0; i < n && !used; i++)
            used = fnmatch(cfg->groups[gi].match, tensors[i].name, 0) == 0;
        if (!used) {
            char f[96];
            snprintf(f, sizeof f, "optimizer.param_groups[%d].match", gi);
            return octet_fail(e, OCTET_ERR_ARG, f, "'%s' matches no parameter of the model", cfg->groups[gi].match);
        }
    }
    return OCTET_OK;
}

/* The estimates' common start: cfg validated and every tensor planned into *slots (calloc'd;
 * free it, also on failure, where it may be NULL) without allocating any state. */
static int plan_for_estimate(const optim_config *cfg, const optim_tensor *tensors, int n, tensor_slot **slots,
                             octet_err *e)
{
    int rc = optim_config_validate(cfg, e);
    if (rc)
        return rc;
    *slots = calloc((size_t)(n > 0 ? n : 1), sizeof **slots);
    if (!*slots)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    return plan_all(cfg, tensors, n, 0, *slots, e);
}

int optim_estimate(const optim_config *cfg, const optim_tensor *tensors, int n, optim_state_bytes *out,
                   octet_err *e)
{
    memset(out, 0, sizeof *out);
    tensor_slot *slots = NULL;
    int rc = plan_for_estimate(cfg, tensors, n, &slots, e);
    int any8 = 0;
    for (int i = 0; rc == OCTET_OK && i < n; i++) {
        optim_state_bytes b;
        tensor_bytes(cfg, &slots[i], &b);
        out->codes += b.codes;
        out->absmax += b.absmax;
        out->fp32 += b.fp32;
        any8 |= slots[i].list == LIST_ADAM8;
    }
    if (rc == OCTET_OK && is_8bit_kind(cfg->kind) && any8)
        out->maps = 2 * QMAP_SIZE * sizeof(float);
    out->total = out->codes + out->absmax + out->maps + out->fp32;
    free(slots);
    return rc;
}

/* What build_lists() and optim_create() book under `workspace` for planned slots: per non-empty
 * launch list its descriptor table (CUDA only) and, for the Adafactor list, its scratch; the
 * group-scalar table (CUDA only). Keep in step with those two. */
static size_t workspace_bytes(const optim_config *cfg, const tensor_slot *slots, int n, int on_cuda)
{
    size_t bytes = on_cuda ? (size_t)(cfg->n_groups + 1) * sizeof(optim_group_scalars) : 0;
    for (int l = 0; l < LIST_COUNT; l++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            count += slots[i].list == l;
        if (!count)
            continue;
        if (on_cuda)
            bytes += (size_t)count * sizeof(optim_tensor_desc);
        if (l != LIST_ADAFACTOR)
            continue;
        optim_tensor_desc *descs = calloc((size_t)count, sizeof *descs);
        if (!descs)
            return SIZE_MAX;
        int j = 0;
        for (int i = 0; i < n; i++)
            if (slots[i].list == l)
                descs[j++] = slots[i].desc;
        bytes += (size_t)adafactor_workspace_floats(descs, count) * sizeof(float);
        free(descs);
    }
    return bytes;
}

int optim_estimate_workspace(const optim_config *cfg, const optim_tensor *tensors, int n, octet_device_kind kind,
                             size_t *bytes, octet_err *e)
{
    *bytes = 0;
    tensor_slot *slots = NULL;
    int rc = plan_for_estimate(cfg, tensors, n, &slots, e);
    if (rc == OCTET_OK) {
        size_t b = workspace_bytes(cfg, slots, n, kind == OCTET_DEV_CUDA);
        if (b == SIZE_MAX)
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
        else
            *bytes = b;
    }
    free(slots);
    return rc;
}

/* ------------------------------------------------------------------ create / destroy */

const optim_kernels *optim_kernels_for(device *dev)
{
#ifdef HAVE_CUDA
    if (device_kind(dev) == OCTET_DEV_CUDA)
        return optim_kernels_cuda();
#endif
    (void)dev;
    return optim_kernels_cpu();
}

static float *alloc_state(optim *o, int64_t count, size_t elem)
{
    return count > 0 ? device_alloc(o->dev, (size_t)count * elem, MEM_OPTIMIZER_STATE) : NULL;
}

/* Allocates a slot's state buffers; returns 0 on allocation failure. */
static int alloc_tensor_state(optim *o, tensor_slot *s, const optim_tensor *src)
{
    optim_tensor_desc *d = &s->desc;
    optim_hparams h = group_hparams(&o->cfg, s->group);
    d->p = src->param;
    d->g = src->grad;
    switch (s->list) {
    case LIST_ADAM8:
        d->code1 = (uint8_t *)alloc_state(o, s->n, 1);
        d->code2 = (uint8_t *)alloc_state(o, s->n, 1);
        d->absmax1 = alloc_state(o, d->n_units, sizeof(float));
        d->absmax2 = alloc_state(o, d->n_units, sizeof(float));
        return d->code1 && d->code2 && d->absmax1 && d->absmax2;
    case LIST_ADAM32:
        d->m = alloc_state(o, s->n, sizeof(float));
        d->v = alloc_state(o, s->n, sizeof(float));
        return d->m && d->v;
    case LIST_SGD:
        if (h.momentum == 0.0)
            return 1;
        d->m = alloc_state(o, s->n, sizeof(float));
        return d->m != NULL;
    case LIST_ADAFACTOR:
        if (d->factored) {
            d->row = alloc_state(o, d->batch * d->rows, sizeof(float));
            d->col = alloc_state(o, d->batch * d->cols, sizeof(float));
            if (!d->row || !d->col)
                return 0;
        } else if (!(d->v = alloc_state(o, s->n, sizeof(float)))) {
            return 0;
        }
        if (o->cfg.base.use_beta1 && !(d->m = alloc_state(o, s->n, sizeof(float))))
            return 0;
        return 1;
    }
    return 0;
}

static int build_lists(optim *o)
{
    for (int l = 0; l < LIST_COUNT; l++) {
        launch_list *L = &o->lists[l];
        for (int i = 0; i < o->n; i++)
            if (o->t[i].list == l)
                L->n++;
        if (!L->n)
            continue;
        L->host = calloc((size_t)L->n, sizeof *L->host);
        if (!L->host)
            return OCTET_ERR_NOMEM;
        int j = 0;
        for (int i = 0; i < o->n; i++) {
            if (o->t[i].list != l)
                continue;
            o->t[i].desc.first_unit = L->units;
            L->units += o->t[i].desc.n_units;
            o->t[i].index_in_list = j;
            L->host[j++] = o->t[i].desc;
        }
        if (device_kind(o->dev) == OCTET_DEV_CPU) {
            L->dev = L->host;
        } else {
            size_t bytes = (size_t)L->n * sizeof *L->host;
            L->dev = device_alloc(o->dev, bytes, MEM_WORKSPACE);
            if (!L->dev || device_upload(o->dev, L->dev, L->host, bytes) != OCTET_OK)
                return OCTET_ERR_NOMEM;
        }
        if (l == LIST_ADAFACTOR) {
            o->workspace_floats = adafactor_workspace_floats(L->host, L->n);
            o->workspace = device_alloc(o->dev, (size_t)o->workspace_floats * sizeof(float), MEM_WORKSPACE);
            if (!o->workspace)
                return OCTET_ERR_NOMEM;
        }
    }
    return OCTET_OK;
}

static int copy_config(optim *o, const optim_config *cfg)
{
    o->cfg = *cfg;
    o->cfg.groups = NULL;
    if (cfg->n_groups > 0) {
        o->groups = calloc((size_t)cfg->n_groups, sizeof *o->groups);
        if (!o->groups)
            return OCTET_ERR_NOMEM;
        for (int i = 0; i < cfg->n_groups; i++) {
            o->groups[i] = cfg->groups[i];
            o->groups[i].match = strdup(cfg->groups[i].match);
            if (!o->groups[i].match)
                return OCTET_ERR_NOMEM;
        }
        o->cfg.groups = o->groups;
    }
    return OCTET_OK;
}

static int setup_maps(optim *o)
{
    qmap_build(o->host_qmap1, 1);
    qmap_build(o->host_qmap2, 0);
    if (!o->lists[LIST_ADAM8].n)
        return OCTET_OK;
    o->qmap1 = alloc_state(o, QMAP_SIZE, sizeof(float));
    o->qmap2 = alloc_state(o, QMAP_SIZE, sizeof(float));
    if (!o->qmap1 || !o->qmap2)
        return OCTET_ERR_NOMEM;
    int rc = device_upload(o->dev, o->qmap1, o->host_qmap1, sizeof o->host_qmap1);
    return rc ? rc : device_upload(o->dev, o->qmap2, o->host_qmap2, sizeof o->host_qmap2);
}

int optim_create(device *dev, const optim_config *cfg, const optim_tensor *tensors, int n, optim **out,
                 octet_err *e)
{
    *out = NULL;
    int rc = optim_config_validate(cfg, e);
    if (rc)
        return rc;
    optim *o = calloc(1, sizeof *o);
    if (!o)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    o->dev = dev;
    o->k = optim_kernels_for(dev);
    o->n = n;
    o->t = calloc((size_t)(n > 0 ? n : 1), sizeof *o->t);
    if (!o->t || (rc = copy_config(o, cfg))) {
        optim_destroy(o);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    if ((rc = plan_all(&o->cfg, tensors, n, 1, o->t, e))) {
        for (int i = 0; i < n; i++)
            o->t[i].name = NULL; /* still borrowed */
        optim_destroy(o);
        return rc;
    }
    for (int i = 0; i < n; i++)
        o->t[i].name = strdup(tensors[i].name);
    for (int i = 0; i < n; i++)
        if (!o->t[i].name || !alloc_tensor_state(o, &o->t[i], &tensors[i])) {
            optim_destroy(o);
            return octet_fail(e, OCTET_ERR_NOMEM, "optimizer",
                              "could not allocate optimizer state for '%s' on %s", tensors[i].name, device_name(dev));
        }
    int ng = cfg->n_groups + 1;
    o->host_scalars = calloc((size_t)ng, sizeof *o->host_scalars);
    o->dev_scalars = device_kind(dev) == OCTET_DEV_CPU
                         ? o->host_scalars
                         : device_alloc(dev, (size_t)ng * sizeof *o->host_scalars, MEM_WORKSPACE);
    if (!o->host_scalars || !o->dev_scalars || (rc = build_lists(o)) || (rc = setup_maps(o))) {
        optim_destroy(o);
        return octet_fail(e, OCTET_ERR_NOMEM, "optimizer", "could not allocate optimizer tables on %s",
                          device_name(dev));
    }
    *out = o;
    return OCTET_OK;
}

void optim_destroy(optim *o)
{
    if (!o)
        return;
    for (int i = 0; o->t && i < o->n; i++) {
        optim_tensor_desc *d = &o->t[i].desc;
        device_free(o->dev, d->code1);
        device_free(o->dev, d->code2);
        device_free(o->dev, d->absmax1);
        device_free(o->dev, d->absmax2);
        device_free(o->dev, d->m);
        device_free(o->dev, d->v);
        device_free(o->dev, d->row);
        device_free(o->dev, d->col);
        free(o->t[i].name);
    }
    for (int l = 0; l < LIST_COUNT; l++) {
        if (o->lists[l].dev && o->lists[l].dev != o->lists[l].host)
            device_free(o->dev, o->lists[l].dev);
        free(o->lists[l].host);
    }
    if (o->dev_scalars && o->dev_scalars != o->host_scalars)
        device_free(o->dev, o->dev_scalars);
    free(o->host_scalars);
    device_free(o->dev, o->workspace);
    device_free(o->dev, o->qmap1);
    device_free(o->dev, o->qmap2);
    for (int i = 0; o->groups && i < o->cfg.n_groups; i++)
        free((char *)o->groups[i].match);
    free(o->groups);
    free(o->t);
    free(o);
}

/* ------------------------------------------------------------------ step */

/* The host-side scalars of group gi at step t, in double, stored as float. */
static void group_scalars(const optim *o, int gi, int64_t t, double lr_scale, optim_group_scalars *s)
{
    optim_hparams h = group_hparams(&o->cfg, gi);
    double lr = h.lr * lr_scale;
    memset(s, 0, sizeof *s);
    s->lr = (float)lr;
    s->beta1 = (float)h.beta1;
    s->beta2 = (float)h.beta2;
    s->one_minus_beta1 = (float)(1.0 - h.beta1);
    s->one_minus_beta2 = (float)(1.0 - h.beta2);
    s->eps = (float)h.eps;
    s->weight_decay = (float)h.weight_decay;
    double bc1 = 1.0 - pow(h.beta1, (double)t);
    double c2 = sqrt(1.0 - pow(h.beta2, (double)t));
    s->c2 = (float)c2;
    s->decay = (float)(1.0 - lr * h.weight_decay);
    s->has_decay = h.weight_decay > 0.0;
    if (o->cfg.kind == OPTIM_ADAMW) {
        s->step_size = (float)(-lr / bc1);
    } else {
        s->step_size = (float)(-lr * c2 / bc1);
        s->c2eps = (float)(c2 * h.eps);
    }
    s->momentum = (float)h.momentum;
    s->dampening_keep = (float)(1.0 - h.dampening);
    s->nesterov = h.nesterov;
    s->first_step = t == 1;
    if (o->cfg.kind == OPTIM_ADAFACTOR) {
        double rho = lr;
        if (h.relative_step) {
            double min_step = h.warmup_init ? 1e-6 * (double)t : 1e-2;
            rho = fmin(min_step, 1.0 / sqrt((double)t));
        }
        double beta2t = 1.0 - pow((double)t, h.decay_rate);
        s->af_rho = (float)rho;
        s->af_eps1 = (float)h.eps;
        s->af_eps2 = (float)h.eps2;
        s->af_clip = (float)h.clip_threshold;
        s->af_beta2t = (float)beta2t;
        s->af_one_minus_beta2t = (float)(1.0 - beta2t);
        s->af_use_beta1 = h.use_beta1;
        s->af_beta1 = (float)h.beta1;
        s->af_one_minus_beta1 = (float)(1.0 - h.beta1);
        s->af_scale_parameter = h.scale_parameter;
        s->af_wd = (float)h.weight_decay;
    }
}

static void fill_launch(optim *o, int l, optim_launch *L)
{
    memset(L, 0, sizeof *L);
    L->tensors = o->lists[l].dev;
    L->host_tensors = o->lists[l].host;
    L->n_tensors = o->lists[l].n;
    L->n_units = o->lists[l].units;
    L->groups = o->dev_scalars;
    L->host_groups = o->host_scalars;
    L->qmap1 = o->qmap1;
    L->qmap2 = o->qmap2;
    L->block_size = o->cfg.block_size;
    L->workspace = o->workspace;
    L->workspace_floats = o->workspace_floats;
    L->stream = device_stream(o->dev);
}

int optim_step(optim *o, double lr_scale)
{
    if (!isfinite(lr_scale) || lr_scale < 0.0)
        return OCTET_ERR_ARG;
    o->step++;
    int ng = o->cfg.n_groups + 1;
    for (int gi = 0; gi < ng; gi++)
        group_scalars(o, gi, o->step, lr_scale, &o->host_scalars[gi]);
    int rc = OCTET_OK;
    if (o->dev_scalars != o->host_scalars)
        rc = device_upload(o->dev, o->dev_scalars, o->host_scalars, (size_t)ng * sizeof *o->host_scalars);
    optim_launch L;
    for (int l = 0; rc == OCTET_OK && l < LIST_COUNT; l++) {
        if (!o->lists[l].n)
            continue;
        fill_launch(o, l, &L);
        switch (l) {
        case LIST_ADAM8: rc = o->k->adam8(&L); break;
        case LIST_ADAM32: rc = o->k->adam32(&L, o->cfg.kind == OPTIM_ADAMW); break;
        case LIST_SGD: rc = o->k->sgd(&L); break;
        case LIST_ADAFACTOR: rc = o->k->adafactor(&L); break;
        }
    }
    if (rc != OCTET_OK)
        log_err("optimizer step %lld failed on %s: %s", (long long)o->step, o->k->name, octet_strerror(rc));
    return rc;
}

int64_t optim_step_count(const optim *o) { return o->step; }
int optim_n_tensors(const optim *o) { return o->n; }
const float *optim_qmap(const optim *o, int is_signed) { return is_signed ? o->qmap1 : o->qmap2; }

/* ------------------------------------------------------------------ accounting */

int optim_state_bytes_of(const optim *o, int i, optim_state_bytes *out)
{
    if (i < 0 || i >= o->n)
        return OCTET_ERR_ARG;
    tensor_bytes(&o->cfg, &o->t[i], out);
    return OCTET_OK;
}

void optim_state_bytes_total(const optim *o, optim_state_bytes *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < o->n; i++) {
        optim_state_bytes b;
        tensor_bytes(&o->cfg, &o->t[i], &b);
        out->codes += b.codes;
        out->absmax += b.absmax;
        out->fp32 += b.fp32;
    }
    out->maps = o->qmap1 ? 2 * QMAP_SIZE * sizeof(float) : 0;
    out->total = out->codes + out->absmax + out->maps + out->fp32;
}

int optim_tensor_state_get(const optim *o, int i, optim_tensor_state *out)
{
    if (i < 0 || i >= o->n)
        return OCTET_ERR_ARG;
    const optim_tensor_desc *d = &o->t[i].desc;
    memset(out, 0, sizeof *out);
    out->is_8bit = o->t[i].list == LIST_ADAM8;
    out->group = o->t[i].group - 1;
    out->n = d->n;
    out->nblocks = out->is_8bit ? d->n_units : 0;
    out->code1 = d->code1;
    out->code2 = d->code2;
    out->absmax1 = d->absmax1;
    out->absmax2 = d->absmax2;
    out->m = d->m;
    out->v = d->v;
    out->row = d->row;
    out->col = d->col;
    out->factored = d->factored;
    return OCTET_OK;
}

/* ------------------------------------------------------------------ save / load */

#define STATE_MAGIC "OCTOPTM1"
#define STATE_VERSION 1u

/* The state arrays of one tensor, in file order: pointer and byte count. */
typedef struct state_array {
    void *ptr;
    size_t bytes;
} state_array;

static int tensor_arrays(const tensor_slot *s, state_array out[4])
{
    const optim_tensor_desc *d = &s->desc;
    int k = 0;
    if (s->list == LIST_ADAM8) {
        out[k++] = (state_array){d->code1, (size_t)d->n};
        out[k++] = (state_array){d->code2, (size_t)d->n};
        out[k++] = (state_array){d->absmax1, (size_t)d->n_units * sizeof(float)};
        out[k++] = (state_array){d->absmax2, (size_t)d->n_units * sizeof(float)};
        return k;
    }
    if (d->m) out[k++] = (state_array){d->m, (size_t)d->n * sizeof(float)};
    if (d->v) out[k++] = (state_array){d->v, (size_t)d->n * sizeof(float)};
    if (d->row) out[k++] = (state_array){d->row, (size_t)(d->batch * d->rows) * sizeof(float)};
    if (d->col) out[k++] = (state_array){d->col, (size_t)(d->batch * d->cols) * sizeof(float)};
    return k;
}

typedef struct crc_writer {
    FILE *f;
    uLong crc;
    int failed;
} crc_writer;

static void put(crc_writer *w, const void *p, size_t n)
{
    if (w->failed || !n)
        return;
    if (fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
    w->crc = crc32(w->crc, (const Bytef *)p, (uInt)n);
}
static void put_u32(crc_writer *w, uint32_t x) { put(w, &x, sizeof x); }
static void put_i64(crc_writer *w, int64_t x) { put(w, &x, sizeof x); }

static uint32_t layout_code(const tensor_slot *s)
{
    return (uint32_t)s->list | (s->desc.factored ? 0x10u : 0) | (s->desc.m ? 0x20u : 0) | (s->desc.v ? 0x40u : 0);
}

int optim_save(optim *o, FILE *f, octet_err *e)
{
    crc_writer w = {f, crc32(0L, Z_NULL, 0), 0};
    put(&w, STATE_MAGIC, 8);
    put_u32(&w, STATE_VERSION);
    put_u32(&w, (uint32_t)o->cfg.kind);
    put_u32(&w, (uint32_t)o->cfg.block_size);
    put_u32(&w, (uint32_t)o->n);
    put_i64(&w, o->step);
    for (int i = 0; i < o->n; i++) {
        const tensor_slot *s = &o->t[i];
        uint32_t len = (uint32_t)strlen(s->name);
        put_u32(&w, len);
        put(&w, s->name, len);
        put_u32(&w, (uint32_t)s->ndim);
        for (int k = 0; k < s->ndim; k++)
            put_i64(&w, s->shape[k]);
        put_u32(&w, layout_code(s));
    }
    void *buf = NULL;
    size_t cap = 0;
    int rc = OCTET_OK;
    for (int i = 0; i < o->n && rc == OCTET_OK; i++) {
        state_array a[4];
        int na = tensor_arrays(&o->t[i], a);
        for (int k = 0; k < na && rc == OCTET_OK; k++) {
            if (a[k].bytes > cap) {
                free(buf);
                cap = a[k].bytes;
                if (!(buf = malloc(cap))) {
                    rc = OCTET_ERR_NOMEM;
                    break;
                }
            }
            if ((rc = device_download(o->dev, buf, a[k].ptr, a[k].bytes)) == OCTET_OK)
                put(&w, buf, a[k].bytes);
        }
    }
    free(buf);
    put(&w, o->host_qmap1, sizeof o->host_qmap1);
    put(&w, o->host_qmap2, sizeof o->host_qmap2);
    uint32_t crc = (uint32_t)w.crc;
    if (!w.failed && fwrite(&crc, sizeof crc, 1, f) != 1)
        w.failed = 1;
    if (rc != OCTET_OK)
        return octet_fail(e, rc, "optimizer", "could not read optimizer state from the device");
    if (w.failed || fflush(f) != 0)
        return octet_fail(e, OCTET_ERR_IO, "optimizer", "could not write the optimizer state");
    return OCTET_OK;
}

typedef struct crc_reader {
    FILE *f;
    uLong crc;
    int failed;
} crc_reader;

static int get(crc_reader *r, void *p, size_t n)
{
    if (r->failed)
        return 0;
    if (n && fread(p, 1, n, r->f) != n) {
        r->failed = 1;
        return 0;
    }
    r->crc = crc32(r->crc, (const Bytef *)p, (uInt)n);
    return 1;
}

/* Reads and checks the header against the live optimizer. */
static int load_header(optim *o, crc_reader *r, int64_t *step, octet_err *e)
{
    char magic[8];
    uint32_t version, kind, block, n;
    if (!get(r, magic, 8) || memcmp(magic, STATE_MAGIC, 8))
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "not an octet optimizer state");
    if (!get(r, &version, 4) || !get(r, &kind, 4) || !get(r, &block, 4) || !get(r, &n, 4) || !get(r, step, 8))
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "truncated header");
    if (version != STATE_VERSION)
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "unsupported state version %u", version);
    if (kind != (uint32_t)o->cfg.kind)
        return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "state was saved by optimizer '%s', this is '%s'",
                          optim_kind_name((optim_kind)(kind < OPTIM_NKINDS ? kind : OPTIM_NKINDS)),
                          optim_kind_name(o->cfg.kind));
    if (block != (uint32_t)o->cfg.block_size)
        return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "state has block size %u, this optimizer %d",
                          block, o->cfg.block_size);
    if (n != (uint32_t)o->n)
        return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "state has %u tensors, this optimizer %d", n, o->n);
    if (*step < 0)
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "negative step count");
    for (int i = 0; i < o->n; i++) {
        const tensor_slot *s = &o->t[i];
        uint32_t len, ndim, layout;
        char name[512];
        if (!get(r, &len, 4) || len >= sizeof name || !get(r, name, len))
            return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "truncated or corrupt tensor header %d", i);
        name[len] = 0;
        if (strcmp(name, s->name))
            return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "tensor %d is '%s' in the state, '%s' here", i,
                              name, s->name);
        if (!get(r, &ndim, 4) || ndim != (uint32_t)s->ndim)
            return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "'%s' has another number of dimensions", name);
        for (int k = 0; k < s->ndim; k++) {
            int64_t d;
            if (!get(r, &d, 8) || d != s->shape[k])
                return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state", "'%s' has another shape in the state", name);
        }
        if (!get(r, &layout, 4) || layout != layout_code(s))
            return octet_fail(e, OCTET_ERR_MISMATCH, "optimizer_state",
                              "'%s' has another state layout (8-bit vs 32-bit, or another group setting)", name);
    }
    return OCTET_OK;
}

int optim_load(optim *o, FILE *f, octet_err *e)
{
    crc_reader r = {f, crc32(0L, Z_NULL, 0), 0};
    int64_t step = 0;
    int rc = load_header(o, &r, &step, e);
    if (rc)
        return rc;
    /* Read every array into host memory first: the live state changes only once all is valid. */
    size_t total = 0;
    for (int i = 0; i < o->n; i++) {
        state_array a[4];
        int na = tensor_arrays(&o->t[i], a);
        for (int k = 0; k < na; k++)
            total += a[k].bytes;
    }
    unsigned char *buf = malloc(total ? total : 1);
    if (!buf)
        return octet_fail(e, OCTET_ERR_NOMEM, "optimizer_state", "out of memory");
    float maps[2][QMAP_SIZE];
    uint32_t crc_file = 0;
    int ok = get(&r, buf, total) && get(&r, maps, sizeof maps);
    uint32_t crc_seen = (uint32_t)r.crc;
    ok = ok && fread(&crc_file, sizeof crc_file, 1, f) == 1;
    if (!ok) {
        free(buf);
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "truncated state data");
    }
    if (crc_file != crc_seen) {
        free(buf);
        return octet_fail(e, OCTET_ERR_FORMAT, "optimizer_state", "checksum mismatch: the state file is corrupt");
    }
    size_t off = 0;
    for (int i = 0; i < o->n && rc == OCTET_OK; i++) {
        state_array a[4];
        int na = tensor_arrays(&o->t[i], a);
        for (int k = 0; k < na && rc == OCTET_OK; k++) {
            rc = device_upload(o->dev, a[k].ptr, buf + off, a[k].bytes);
            off += a[k].bytes;
        }
    }
    free(buf);
    /* A loaded optimizer keeps the maps it was saved with, as bitsandbytes does. */
    if (rc == OCTET_OK) {
        memcpy(o->host_qmap1, maps[0], sizeof o->host_qmap1);
        memcpy(o->host_qmap2, maps[1], sizeof o->host_qmap2);
        if (o->qmap1)
            rc = device_upload(o->dev, o->qmap1, o->host_qmap1, sizeof o->host_qmap1);
        if (rc == OCTET_OK && o->qmap2)
            rc = device_upload(o->dev, o->qmap2, o->host_qmap2, sizeof o->host_qmap2);
    }
    if (rc != OCTET_OK)
        return octet_fail(e, rc, "optimizer_state", "could not copy the state to the device");
    o->step = step;
    return OCTET_OK;
}

int optim_save_path(optim *o, const char *path, octet_err *e)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return octet_fail(e, OCTET_ERR_IO, "optimizer_state", "cannot create %s", path);
    int rc = optim_save(o, f, e);
    if (fclose(f) != 0 && rc == OCTET_OK)
        rc = octet_fail(e, OCTET_ERR_IO, "optimizer_state", "cannot write %s", path);
    return rc;
}

int optim_load_path(optim *o, const char *path, octet_err *e)
{
    FILE *f = NULL;
    int rc = octet_fopen_regular(path, "optimizer_state", &f, e); /* never blocks on a FIFO */
    if (rc != OCTET_OK)
        return rc;
    rc = optim_load(o, f, e);
    fclose(f);
    return rc;
}
