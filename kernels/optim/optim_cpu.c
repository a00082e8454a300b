/* optim_cpu.c: the CPU twin of every optimizer rule and of block-wise (de)quantization.
 *
 * Readable loops over the launch lists of optim_impl.h, calling the per-element math of
 * optim_math.h and quant_math.h exactly as the CUDA twin does, so that both produce the same
 * bits: 8-bit codes and absmax identical, parameters within 1 ulp. OpenMP splits independent
 * units (quantization blocks, fp32 chunks, Adafactor rows) across cores; every reduction that
 * sums (Adafactor's means and RMS) runs in a fixed order in double, so the result does not
 * depend on the thread count. Compiled with -ffp-contract=off: no fused multiply-adds.
 *
 * The 8-bit step mirrors bitsandbytes' kOptimizerStatic8bit2StateBlockwise per block: the tail
 * of a partial last block is padded with g = 0, code1 = 128, code2 = 0 and takes part in the new
 * absmax, as on the GPU. */
#include "config.h"
#include "optim_impl.h"
#include "quant_math.h"
#include "qmap.h"
#include "status.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ 8-bit Adam */

/* One quantization block [start, start+B) of tensor d (valid elements: up to d->n). */
static void adam8_block(const optim_tensor_desc *d, int64_t b, int B, const optim_group_scalars *s,
                        const float *q1, const float *q2)
{
    float m[4096], v[4096]; /* (B) fresh fp32 moments of the block */
    int64_t start = b * B;
    int valid = (int)(d->n - start < B ? d->n - start : B);
    float a1 = d->absmax1[b], a2 = d->absmax2[b];
    float new1 = -FLT_MAX, new2 = -FLT_MAX;
    for (int j = 0; j < B; j++) {
        float g = j < valid ? d->g[start + j] : 0.0f;
        uint8_t c1 = j < valid ? d->code1[start + j] : QMAP_SIGNED_PAD;
        uint8_t c2 = j < valid ? d->code2[start + j] : 0;
        if (optim_is_finite(g)) {
            v[j] = adam_v_one(quant_dequant_one(q2, c2, a2), g, s->beta2);
            m[j] = adam_m_one(quant_dequant_one(q1, c1, a1), g, s->beta1);
        } else {
            m[j] = 0.0f;
            v[j] = 0.0f;
        }
        new1 = fmaxf(new1, fabsf(m[j]));
        new2 = fmaxf(new2, fabsf(v[j]));
    }
    d->absmax1[b] = new1;
    d->absmax2[b] = new2;
    for (int j = 0; j < valid; j++) {
        int64_t i = start + j;
        if (optim_is_finite(d->g[i]))
            d->p[i] = adam_bnb_param_one(d->p[i], m[j], v[j], s);
        d->code1[i] = quant_signed_state_one(q1, m[j], new1);
        d->code2[i] = quant_unsigned_state_one(q2, v[j], new2);
    }
}

static int adam8_cpu(const optim_launch *L)
{
    for (int t = 0; t < L->n_tensors; t++) {
        const optim_tensor_desc *d = &L->tensors[t];
        const optim_group_scalars *s = &L->groups[d->group];
        int64_t nb = d->n_units;
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < nb; b++)
            adam8_block(d, b, L->block_size, s, L->qmap1, L->qmap2);
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ fp32 Adam, SGD */

static int adam32_cpu(const optim_launch *L, int torch_order)
{
    for (int t = 0; t < L->n_tensors; t++) {
        const optim_tensor_desc *d = &L->tensors[t];
        const optim_group_scalars *s = &L->groups[d->group];
        float *p = d->p, *m = d->m, *v = d->v;
        const float *g = d->g;
        int64_t n = d->n;
        if (torch_order) {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (int64_t i = 0; i < n; i++)
                adam_torch_one(&p[i], g[i], &m[i], &v[i], s);
        } else {
#pragma omp parallel for schedule(static) if (n > 65536)
            for (int64_t i = 0; i < n; i++)
                adam_bnb32_one(&p[i], g[i], &m[i], &v[i], s);
        }
    }
    return OCTET_OK;
}

static int sgd_cpu(const optim_launch *L)
{
    for (int t = 0; t < L->n_tensors; t++) {
        const optim_tensor_desc *d = &L->tensors[t];
        const optim_group_scalars *s = &L->groups[d->group];
        float dummy = 0.0f;
        int64_t n = d->n;
#pragma omp parallel for schedule(static) firstprivate(dummy) if (n > 65536)
        for (int64_t i = 0; i < n; i++)
            sgd_one(&d->p[i], d->g[i], d->m ? &d->m[i] : &dummy, s);
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ Adafactor */

int64_t adafactor_workspace_floats(const optim_tensor_desc *tensors, int n)
{
    int64_t floats = 0;
    for (int t = 0; t < n; t++) {
        int64_t chunks = (tensors[t].n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
        /* doubles: one partial per chunk, one mean per batch, a few scalars */
        floats += 2 * (chunks + tensors[t].batch + 8);
    }
    return floats;
}

/* Sum of f(x[i]) for i < n in the fixed order both twins use: sequential double sums over
 * ADAFACTOR_SUM_CHUNK blocks, then a sequential sum of the block partials. */
static double sum_squares_fixed(const float *x, int64_t n)
{
    int64_t chunks = (n + ADAFACTOR_SUM_CHUNK - 1) / ADAFACTOR_SUM_CHUNK;
    double total = 0.0;
    for (int64_t c = 0; c < chunks; c++) {
        double part = 0.0;
        int64_t end = (c + 1) * ADAFACTOR_SUM_CHUNK < n ? (c + 1) * ADAFACTOR_SUM_CHUNK : n;
        for (int64_t i = c * ADAFACTOR_SUM_CHUNK; i < end; i++)
            part += (double)x[i] * (double)x[i];
        total += part;
    }
    return total;
}

/* Updates the factored statistics of tensor d, viewed as (batch, rows, cols); writes each
 * batch's mean of the new row statistics into r_mean. */
static void adafactor_factored_stats(const optim_tensor_desc *d, const optim_group_scalars *s, float *r_mean)
{
    int64_t R = d->rows, C = d->cols;
    double *col_acc = calloc((size_t)C, sizeof *col_acc);
    for (int64_t b = 0; b < d->batch; b++) {
        const float *g = d->g + b * R * C;
        memset(col_acc, 0, (size_t)C * sizeof *col_acc);
        for (int64_t r = 0; r < R; r++) {
            double row_acc = 0.0;
            for (int64_t c = 0; c < C; c++) {
                float sq = adafactor_sq_one(g[r * C + c], s);
                row_acc += sq;
                col_acc[c] += sq;
            }
            float *row = &d->row[b * R + r];
            *row = adafactor_ema_one(*row, (float)(row_acc / (double)C), s);
        }
        for (int64_t c = 0; c < C; c++) {
            float *col = &d->col[b * C + c];
            *col = adafactor_ema_one(*col, (float)(col_acc[c] / (double)R), s);
        }
        double rsum = 0.0;
        for (int64_t r = 0; r < R; r++)
            rsum += d->row[b * R + r];
        r_mean[b] = (float)(rsum / (double)R);
    }
    free(col_acc);
}

/* The unclipped update of element i (needs the statistics already updated). */
static float adafactor_u(const optim_tensor_desc *d, int64_t i, const float *r_mean)
{
    if (!d->factored)
        return adafactor_unfactored_u_one(d->g[i], d->v[i]);
    int64_t RC = d->rows * d->cols;
    int64_t b = i / RC, r = (i % RC) / d->cols, c = i % d->cols;
    return adafactor_factored_u_one(d->g[i], d->row[b * d->rows + r], r_mean[b], d->col[b * d->cols + c]);
}

static int adafactor_tensor_cpu(const optim_tensor_desc *d, const optim_group_scalars *s)
{
    float *r_mean = malloc((size_t)d->batch * sizeof *r_mean);
    float *u = malloc((size_t)d->n * sizeof *u);
    if (!r_mean || !u) {
        free(r_mean);
        free(u);
        return OCTET_ERR_NOMEM;
    }
    double rms_x = sqrt(sum_squares_fixed(d->p, d->n) / (double)d->n);
    float alpha = s->af_scale_parameter ? (float)((double)s->af_rho * fmax((double)s->af_eps2, rms_x)) : s->af_rho;
    if (d->factored) {
        adafactor_factored_stats(d, s, r_mean);
    } else {
        for (int64_t i = 0; i < d->n; i++)
            d->v[i] = adafactor_ema_one(d->v[i], adafactor_sq_one(d->g[i], s), s);
    }
    for (int64_t i = 0; i < d->n; i++)
        u[i] = adafactor_u(d, i, r_mean);
    double rms_u = sqrt(sum_squares_fixed(u, d->n) / (double)d->n);
    float clip_div = (float)fmax(1.0, rms_u / (double)s->af_clip);
    float dummy = 0.0f;
    for (int64_t i = 0; i < d->n; i++)
        d->p[i] = adafactor_apply_one(d->p[i], u[i], clip_div, alpha, d->m ? &d->m[i] : &dummy, s);
    free(r_mean);
    free(u);
    return OCTET_OK;
}

static int adafactor_cpu(const optim_launch *L)
{
    int rc = OCTET_OK;
    for (int t = 0; t < L->n_tensors && rc == OCTET_OK; t++)
        rc = adafactor_tensor_cpu(&L->tensors[t], &L->groups[L->tensors[t].group]);
    return rc;
}

/* ------------------------------------------------------------------ stand-alone quantizer */

static int quantize_cpu(const float *x, int64_t n, int block, const float *code, int is_signed, uint8_t *codes,
                        float *absmax, void *stream)
{
    (void)stream;
    int64_t nb = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (nb > 64)
    for (int64_t b = 0; b < nb; b++) {
        int64_t start = b * block, end = start + block < n ? start + block : n;
        float a = 0.0f;
        for (int64_t i = start; i < end; i++)
            a = fmaxf(a, fabsf(x[i]));
        absmax[b] = a;
        for (int64_t i = start; i < end; i++)
            codes[i] = quant_plain_one(code, x[i], a, is_signed);
    }
    return OCTET_OK;
}

static int dequantize_cpu(const uint8_t *codes, int64_t n, int block, const float *code, const float *absmax,
                          float *x, void *stream)
{
    (void)stream;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        x[i] = quant_dequant_one(code, codes[i], absmax[i / block]);
    return OCTET_OK;
}

static const optim_kernels cpu_kernels = {
    "cpu", adam8_cpu, adam32_cpu, sgd_cpu, adafactor_cpu, quantize_cpu, dequantize_cpu,
};

const optim_kernels *optim_kernels_cpu(void) { return &cpu_kernels; }
