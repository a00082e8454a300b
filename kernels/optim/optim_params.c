/* optim_params.c: the table of optimizer fields (see optim_params.h) and the loads and stores
 * that move a field's value in and out of an optim_config by offset. */
#include "config.h"
#include "optim_params.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define K(k) (1u << (k))
#define ADAMS (K(OPTIM_ADAMW) | K(OPTIM_ADAM8BIT) | K(OPTIM_ADAMW8BIT))
#define EIGHT (K(OPTIM_ADAM8BIT) | K(OPTIM_ADAMW8BIT))
#define ALL ((1u << OPTIM_NKINDS) - 1)
#define BASE(f) offsetof(optim_config, base.f)
#define GROUP(kinds_, bit) .group_kinds = (kinds_), .group_set = (bit)

#define GT(a) .has_min = 1, .min = (a), .min_open = 1
#define GE(a) .has_min = 1, .min = (a)
#define LT(b) .has_max = 1, .max = (b), .max_open = 1
#define LE(b) .has_max = 1, .max = (b)
#define NUM(f) .storage = OS_DOUBLE, .off = BASE(f), .off2 = OP_UNSET
#define FLAG(f) .type = OP_BOOLEAN, .storage = OS_INT, .off = BASE(f), .off2 = OP_UNSET

const optim_param optim_params[] = {
    {.name = "lr", .type = OP_NUMBER, .kinds = ADAMS | K(OPTIM_SGD), GROUP(ADAMS | K(OPTIM_SGD), OPTIM_SET_LR), NUM(lr),
     GT(0), .doc = "learning rate"},
    {.name = "lr", .type = OP_NUMBER_OR_NULL, .kinds = K(OPTIM_ADAFACTOR), GROUP(K(OPTIM_ADAFACTOR), OPTIM_SET_LR),
     NUM(lr), GT(0),
     .rule = "null uses Adafactor's relative step; a number needs relative_step false (and scale_parameter false "
             "for the Trainer's behaviour)",
     .doc = "learning rate"},
    {.name = "betas", .type = OP_NUMBER_PAIR, .kinds = ADAMS, GROUP(ADAMS, OPTIM_SET_BETAS), .off = BASE(beta1),
     .off2 = BASE(beta2), GE(0), LT(1),
     .doc = "decay rates of the first and second moment estimates"},
    {.name = "eps", .type = OP_NUMBER, .kinds = ADAMS, GROUP(ADAMS, OPTIM_SET_EPS), NUM(eps), GT(0),
     .doc = "term added to the denominator for numerical stability"},
    {.name = "eps", .type = OP_NUMBER_PAIR, .kinds = K(OPTIM_ADAFACTOR), .off = BASE(eps), .off2 = BASE(eps2), GT(0),
     .doc = "eps1 added to the squared gradient; eps2 the floor of a parameter's RMS in scale_parameter"},
    {.name = "weight_decay", .type = OP_NUMBER, .kinds = ALL, GROUP(ALL, OPTIM_SET_WEIGHT_DECAY), NUM(weight_decay),
     GE(0),
     .rule = "adamw, adam8bit, adamw8bit: lr x weight_decay at most 1 (each step multiplies the weights by "
             "1 - lr x weight_decay)",
     .doc = "weight decay (decoupled, except sgd, which adds it to the gradient as torch does)"},
    {.name = "min_8bit_size", .type = OP_INTEGER, .kinds = EIGHT, .storage = OS_INT64,
     .off = offsetof(optim_config, min_8bit_size), .off2 = OP_UNSET, GE(0),
     .doc = "tensors with fewer elements keep fp32 states"},
    {.name = "block_size", .type = OP_INTEGER, .kinds = EIGHT, .storage = OS_INT,
     .off = offsetof(optim_config, block_size), .off2 = OP_UNSET, GE(OPTIM_BLOCK_MIN), LE(OPTIM_BLOCK_MAX),
     .rule = "a power of two",
     .doc = "elements per quantization block (one absmax each)"},
    {.name = "optim_bits", .type = OP_INTEGER, .kinds = 0, GROUP(EIGHT, OPTIM_SET_OPTIM_BITS), .storage = OS_INT,
     .off = BASE(optim_bits), .off2 = OP_UNSET, GE(8), LE(32), .rule = "8, or 32 to keep fp32 states",
     .doc = "bits of the optimizer states of the group's parameters (bitsandbytes' override)"},
    {.name = "momentum", .type = OP_NUMBER, .kinds = K(OPTIM_SGD), GROUP(K(OPTIM_SGD), OPTIM_SET_MOMENTUM),
     NUM(momentum), GE(0),
     .doc = "momentum factor; 0 keeps no state"},
    {.name = "dampening", .type = OP_NUMBER, .kinds = K(OPTIM_SGD), NUM(dampening), GE(0), LE(1),
     .doc = "dampening for momentum"},
    {.name = "nesterov", .kinds = K(OPTIM_SGD), FLAG(nesterov), .rule = "needs momentum > 0 and dampening 0",
     .doc = "Nesterov momentum"},
    {.name = "beta1", .type = OP_NUMBER_OR_NULL, .kinds = K(OPTIM_ADAFACTOR), .off = BASE(beta1),
     .off2 = BASE(use_beta1), GE(0), LT(1), .rule = "null keeps no first moment; a number adds 4 B per parameter",
     .doc = "decay rate of the first moment"},
    {.name = "clip_threshold", .type = OP_NUMBER, .kinds = K(OPTIM_ADAFACTOR), NUM(clip_threshold), GT(0),
     .doc = "threshold of the root mean square of the final update"},
    {.name = "decay_rate", .type = OP_NUMBER, .kinds = K(OPTIM_ADAFACTOR), NUM(decay_rate), LT(0),
     .doc = "coefficient of the running average of the squared gradient"},
    {.name = "scale_parameter", .kinds = K(OPTIM_ADAFACTOR), FLAG(scale_parameter),
     .doc = "scale the learning rate by the parameter's RMS"},
    {.name = "relative_step", .kinds = K(OPTIM_ADAFACTOR), FLAG(relative_step),
     .doc = "time-dependent learning rate instead of an external one"},
    {.name = "warmup_init", .kinds = K(OPTIM_ADAFACTOR), FLAG(warmup_init), .rule = "needs relative_step",
     .doc = "warm-up of the relative step"},
};
const int optim_params_count = (int)(sizeof optim_params / sizeof optim_params[0]);

const optim_param *optim_param_find(optim_kind k, const char *name)
{
    for (int i = 0; i < optim_params_count; i++)
        if ((optim_params[i].kinds & K(k)) && !strcmp(optim_params[i].name, name))
            return &optim_params[i];
    return NULL;
}

const optim_param *optim_param_find_group(optim_kind k, const char *name)
{
    for (int i = 0; i < optim_params_count; i++)
        if ((optim_params[i].group_kinds & K(k)) && !strcmp(optim_params[i].name, name))
            return &optim_params[i];
    return NULL;
}

void optim_param_group_kinds_text(const char *name, char *buf, size_t len)
{
    unsigned kinds = 0;
    for (int i = 0; i < optim_params_count; i++)
        if (!strcmp(optim_params[i].name, name))
            kinds |= optim_params[i].group_kinds;
    buf[0] = '\0';
    for (int k = 0; k < OPTIM_NKINDS; k++)
        if (kinds & K(k)) {
            strncat(buf, buf[0] ? ", " : "", len - strlen(buf) - 1);
            strncat(buf, optim_kind_name((optim_kind)k), len - strlen(buf) - 1);
        }
}

/* `s` at byte `off` of the struct at `at` (an optim_config, or a group's optim_hparams). */
static double load_number(const void *at, optim_param_storage s, size_t off)
{
    const char *base = (const char *)at + off;
    if (s == OS_INT)
        return *(const int *)(const void *)base;
    if (s == OS_INT64)
        return (double)*(const int64_t *)(const void *)base;
    return *(const double *)(const void *)base;
}

static void store_number(void *at, optim_param_storage s, size_t off, double v)
{
    char *base = (char *)at + off;
    if (s == OS_INT)
        *(int *)(void *)base = (int)v;
    else if (s == OS_INT64)
        *(int64_t *)(void *)base = (int64_t)v;
    else
        *(double *)(void *)base = v;
}

/* Where the value `second` names lives, and how it is stored; 0 when nowhere. */
static int slot_of(const optim_param *p, int second, size_t *off, optim_param_storage *s)
{
    *off = second ? p->off2 : p->off;
    *s = second && p->type == OP_NUMBER_OR_NULL ? OS_INT : p->storage;
    return *off != OP_UNSET;
}

double optim_param_load(const optim_param *p, const optim_config *cfg, int second)
{
    size_t off;
    optim_param_storage s;
    return slot_of(p, second, &off, &s) ? load_number(cfg, s, off) : 0.0;
}

void optim_param_store(const optim_param *p, optim_config *cfg, int second, double v)
{
    size_t off;
    optim_param_storage s;
    if (slot_of(p, second, &off, &s))
        store_number(cfg, s, off, v);
}

/* Where the value `second` names lives in a group's optim_hparams; 0 when nowhere (an or-null
 * field's flag is not a group's: a group's value is a plain number). */
static int group_slot_of(const optim_param *p, int second, size_t *off)
{
    size_t at = second ? p->off2 : p->off;
    if (!p->group_set || at == OP_UNSET || (second && p->type != OP_NUMBER_PAIR))
        return 0;
    *off = at - offsetof(optim_config, base);
    return 1;
}

double optim_param_group_load(const optim_param *p, const optim_hparams *h, int second)
{
    size_t off;
    return group_slot_of(p, second, &off) ? load_number(h, p->storage, off) : 0.0;
}

void optim_param_group_store(const optim_param *p, optim_hparams *h, int second, double v)
{
    size_t off;
    if (group_slot_of(p, second, &off))
        store_number(h, p->storage, off, v);
}

void optim_param_range_text(const optim_param *p, char *buf, size_t len)
{
    if (!p->has_min && !p->has_max) {
        snprintf(buf, len, "%s", p->type == OP_BOOLEAN ? "true or false" : "any");
        return;
    }
    char lo[32] = "-inf", hi[32] = "inf";
    if (p->has_min)
        snprintf(lo, sizeof lo, "%g", p->min);
    if (p->has_max)
        snprintf(hi, sizeof hi, "%g", p->max);
    snprintf(buf, len, "%c%s, %s%c", p->has_min && !p->min_open ? '[' : '(', lo, hi,
             p->has_max && !p->max_open ? ']' : ')');
}
