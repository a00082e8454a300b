/* optim_math.h: the per-element update rules of every optimizer, shared by the CPU and CUDA
 * twins (OCTET_HD). Step-dependent scalars (bias corrections, decayed learning rates, decay
 * factors) are computed once per step on the host, in double, and handed to both twins as the
 * float fields of optim_group_scalars, so the twins evaluate the same float expressions in the
 * same order. Only + - * /, sqrtf and comparisons appear here: no fmaf, no fast intrinsics.
 *
 * Semantics (DESIGN.md's table):
 *  - adam_torch_*: torch.optim.AdamW — decay p*(1-lr*wd) before the step, eps added to
 *    sqrt(v)/sqrt(bc2), step -lr/bc1.
 *  - adam_bnb_*: bitsandbytes' 8-bit kernel and its 32-bit fallback — step_size = -lr*c2/c1,
 *    p += step_size * m / (sqrt(v) + c2*eps), then decay p*(1-lr*wd) after the step; a NaN/Inf
 *    gradient resets that element's m and v to 0 and leaves p (and its decay) alone.
 *  - sgd_*: torch.optim.SGD — L2 weight decay into the gradient, momentum buffer seeded with
 *    the first gradient, dampening, optional Nesterov.
 *  - adafactor_*: Hugging Face Adafactor (reference/optimizers.md §2.2). */
#ifndef OCTET_OPTIM_MATH_H
#define OCTET_OPTIM_MATH_H

#include <math.h>
#include <stdint.h>
#include "hd.h"

/* Per group and per step; built on the host by optim.c. Plain floats so the same bytes go to
 * both twins (and to the device as a small table). */
typedef struct optim_group_scalars {
    float lr;          /* scheduled learning rate of the group */
    float beta1, beta2;
    float one_minus_beta1, one_minus_beta2; /* 1 - beta rounded once from double (torch's
                                             * AdamW); bnb's kernels use 1.0f - beta in float */
    float eps;
    float step_size;   /* adam_bnb: -lr*sqrt(1-b2^t)/(1-b1^t); adam_torch: -lr/(1-b1^t) */
    float c2;          /* sqrt(1 - b2^t) */
    float c2eps;       /* c2 * eps (adam_bnb's denominator term) */
    float decay;       /* 1 - lr*wd (AdamW); 1 when wd == 0 */
    float weight_decay;
    int has_decay;     /* wd > 0 */
    /* sgd */
    float momentum, dampening_keep; /* dampening_keep = 1 - dampening */
    int nesterov, first_step;
    /* adafactor */
    float af_rho;      /* relative step size rho_t, or the lr */
    float af_eps1, af_eps2, af_clip, af_beta2t, af_one_minus_beta2t, af_beta1, af_one_minus_beta1;
    int af_scale_parameter, af_use_beta1;
    float af_wd;       /* weight decay (scaled by alpha in-kernel) */
    int pad_;
} optim_group_scalars;

/* --------------------------------------------------------------- Adam moments */

OCTET_HD int optim_is_finite(float g)
{
    return !isnan(g) && !isinf(g);
}

OCTET_HD float adam_m_one(float m, float g, float beta1)
{
    return (m * beta1) + ((1.0f - beta1) * g);
}

OCTET_HD float adam_v_one(float v, float g, float beta2)
{
    return (v * beta2) + (((1.0f - beta2) * g) * g);
}

/* The fresh moments of 8-bit Adam from the old code's map entry q (state 1: signed map, state 2:
 * unsigned) and its block's old absmax a: the block's scale and beta are multiplied once per
 * block, ab = adam8_block_beta(a, beta) = a * beta, and each element is
 *     m = (q1 * ab1) + ((1 - beta1) * g),    v = (q2 * ab2) + (((1 - beta2) * g) * g),
 * one multiply per element fewer than dequantizing first ((q * a) * beta). Every CPU path and
 * the CUDA twin evaluate exactly these expressions, so codes and absmax agree bit for bit.
 * bitsandbytes' own kernel dequantizes and lets nvcc contract into FMAs, so neither form is its
 * exact bits; the two differ by rounding only (checked against the fp32 oracle at bnb's
 * tolerances). The fp32 states (adam_bnb32_one) keep adam_m_one / adam_v_one. */
OCTET_HD float adam8_block_beta(float a, float beta)
{
    return a * beta;
}

OCTET_HD float adam8_m_one(float q, float ab1, float g, float beta1)
{
    return (q * ab1) + ((1.0f - beta1) * g);
}

OCTET_HD float adam8_v_one(float q, float ab2, float g, float beta2)
{
    return (q * ab2) + (((1.0f - beta2) * g) * g);
}

/* bitsandbytes order: Adam step from the fresh fp32 moments, then decoupled decay. */
OCTET_HD float adam_bnb_param_one(float p, float m, float v, const optim_group_scalars *s)
{
    p = p + (s->step_size * (m / (sqrtf(v) + s->c2eps)));
    if (s->has_decay)
        p = p * s->decay;
    return p;
}

/* One element of the bnb 32-bit path (fp32 states), in place. */
OCTET_HD void adam_bnb32_one(float *p, float g, float *m, float *v, const optim_group_scalars *s)
{
    if (!optim_is_finite(g)) {
        *m = 0.0f;
        *v = 0.0f;
        return;
    }
    float mm = adam_m_one(*m, g, s->beta1);
    float vv = adam_v_one(*v, g, s->beta2);
    *m = mm;
    *v = vv;
    *p = adam_bnb_param_one(*p, mm, vv, s);
}

/* One element of torch.optim.AdamW, in place. torch computes 1 - beta in double and rounds
 * once (1 - 0.999f in float would be 1.3e-5 off), hence the host-computed complements. */
OCTET_HD void adam_torch_one(float *p, float g, float *m, float *v, const optim_group_scalars *s)
{
    float pp = *p * s->decay;
    float mm = (*m * s->beta1) + (s->one_minus_beta1 * g);
    float vv = (*v * s->beta2) + ((s->one_minus_beta2 * g) * g);
    float denom = (sqrtf(vv) / s->c2) + s->eps;
    *m = mm;
    *v = vv;
    *p = pp + s->step_size * (mm / denom);
}

/* --------------------------------------------------------------- SGD */

OCTET_HD void sgd_one(float *p, float g, float *buf, const optim_group_scalars *s)
{
    float d = g;
    if (s->weight_decay != 0.0f)
        d = d + s->weight_decay * *p;
    if (s->momentum != 0.0f) {
        float b = s->first_step ? d : (*buf * s->momentum) + (s->dampening_keep * d);
        *buf = b;
        d = s->nesterov ? d + s->momentum * b : b;
    }
    *p = *p - s->lr * d;
}

/* --------------------------------------------------------------- Adafactor */

/* Squared gradient plus eps1, the statistic Adafactor averages. */
OCTET_HD float adafactor_sq_one(float g, const optim_group_scalars *s)
{
    return (g * g) + s->af_eps1;
}

OCTET_HD float adafactor_ema_one(float old, float mean_sq, const optim_group_scalars *s)
{
    return (old * s->af_beta2t) + (mean_sq * s->af_one_minus_beta2t);
}

/* The unclipped update for one element of a factored tensor: g / sqrt((r/mean(r)) * c). */
OCTET_HD float adafactor_factored_u_one(float g, float r, float r_mean, float c)
{
    float r_factor = 1.0f / sqrtf(r / r_mean);
    float c_factor = 1.0f / sqrtf(c);
    return (r_factor * c_factor) * g;
}

OCTET_HD float adafactor_unfactored_u_one(float g, float v)
{
    return (1.0f / sqrtf(v)) * g;
}

/* Applies clipping divisor, alpha, optional momentum and decay to one element; returns new p.
 * `u` is the unclipped update, `clip_div` = max(1, RMS(U)/clip_threshold), `alpha` the
 * effective step size of this tensor. */
OCTET_HD float adafactor_apply_one(float p, float u, float clip_div, float alpha, float *m,
                                   const optim_group_scalars *s)
{
    u = (u / clip_div) * alpha;
    if (s->af_use_beta1) {
        u = (*m * s->af_beta1) + (u * s->af_one_minus_beta1);
        *m = u;
    }
    if (s->af_wd != 0.0f)
        p = p + p * (-s->af_wd * alpha);
    return p - u;
}

#endif
