/* attention_cpu.c: the CPU twin of the masked softmax and of multi-head scaled dot-product
 * attention, forward and backward.
 *
 * Attention follows Hugging Face DistilBERT's MultiHeadSelfAttention between its q/k/v and
 * output projections: per head, scores = q k^T / sqrt(head_dim), keys whose mask is 0 get
 * torch.finfo.min, softmax over keys, dropout on the probabilities, context = probs . v. The
 * heads are column slices of the (B,T,C) tensors (row stride C), so no transpose is ever
 * materialised: the products are one CBLAS call per (batch, head) with leading dimension C —
 * the shape the CUDA twin's batched cuBLAS calls take — spread over the OpenMP threads, and the
 * row-wise softmax and dropout run as OpenMP loops over all B*H*T rows. The probabilities before dropout are saved; the dropout
 * mask is regenerated from its counter-based key in the backward pass. */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"
#include "ops_math.h"

#include <cblas.h>
#include <math.h>

/* ------------------------------------------------------------------ softmax rows */

/* y = softmax over j of s_j, s_j = scale * x_j, or OPS_MASK_FILL where mask[j] == 0 (mask may
 * be NULL). y may alias x. */
static void softmax_row(float *y, const float *x, const int *mask, int T, float scale)
{
    float mx = OPS_MASK_FILL;
    for (int j = 0; j < T; j++) {
        float s = (!mask || mask[j]) ? scale * x[j] : OPS_MASK_FILL;
        mx = s > mx ? s : mx;
    }
    double sum = 0.0;
    for (int j = 0; j < T; j++) {
        float s = (!mask || mask[j]) ? scale * x[j] : OPS_MASK_FILL;
        float e = expf(s - mx);
        y[j] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < T; j++)
        y[j] *= inv;
}

/* dx = scale * y * (dy - sum(y * dy)), 0 at masked keys (their score was a constant fill).
 * dx may alias dy. */
static void softmax_row_backward(float *dx, const float *dy, const float *y, const int *mask, int T,
                                 float scale)
{
    double dot = 0.0;
    for (int j = 0; j < T; j++)
        dot += (double)y[j] * dy[j];
    float fdot = (float)dot;
    for (int j = 0; j < T; j++)
        dx[j] = (!mask || mask[j]) ? scale * (y[j] * (dy[j] - fdot)) : 0.0f;
}

int softmax_forward_cpu(device *d, float *out, const float *inp, const int *mask, int B, int R, int T,
                        float scale)
{
    (void)d;
    if (!OPS_DIMS_OK3(B, R, T) || !out || !inp)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)B * R * T))
    for (int64_t br = 0; br < (int64_t)B * R; br++) {
        const int *m = mask ? mask + (br / R) * T : NULL; /* (T) */
        softmax_row(out + br * T, inp + br * T, m, T, scale);
    }
    return OCTET_OK;
}

int softmax_backward_cpu(device *d, float *dinp, const float *dout, const float *out, const int *mask,
                         int B, int R, int T, float scale)
{
    (void)d;
    if (!OPS_DIMS_OK3(B, R, T) || !dinp || !dout || !out)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)B * R * T))
    for (int64_t br = 0; br < (int64_t)B * R; br++) {
        const int *m = mask ? mask + (br / R) * T : NULL; /* (T) */
        softmax_row_backward(dinp + br * T, dout + br * T, out + br * T, m, T, scale);
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ attention */

/* Where head block bh starts in a (B,T,C) tensor (ops_att_dims). */
static int64_t head_offset(const ops_att_dims *a, int64_t bh)
{
    return (bh / a->H) * a->T * a->C + (bh % a->H) * a->hs;
}

/* pd (T) = p * the dropout factors of row i of block bh; compiled once per ISA (OPS_CPU_CLONES). */
OPS_CPU_CLONES static void drop_row(const ops_att_dims *a, ops_dropout drop, float *pd, const float *p, int64_t bh,
                                    int i)
{
    uint64_t base = (uint64_t)((bh * a->T + i) * a->T);
    dropout_run(pd, p, a->T, drop.p, dropout_scale(drop.p), drop.seed, drop.offset, base);
}

/* The heads' products run one head per OpenMP thread (each head one single-threaded sgemm
 * call, as OpenBLAS is kept to one thread: threads.h), from OCTET_PAR_GEMM_MIN multiply-adds
 * over all heads on; each head's result is that one call's whatever the thread count. */
#define HEADS_PAR(work) ((int64_t)(work) >= OCTET_PAR_GEMM_MIN)

/* One product per head through CBLAS: c (M,N; ldc) = alpha op(a) op(b) + beta c. */
static void head_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *a, int lda, const float *b,
                      int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, a,
                lda, b, ldb, beta, c, ldc);
}

int attention_forward_cpu(device *d, float *out, float *att, float *work, const float *q, const float *k,
                          const float *v, const int *mask, int B, int T, int C, int H, ops_dropout drop)
{
    (void)d;
    ops_att_dims a;
    if (!ops_att_dims_ok(B, T, C, H, drop, &a) || !out || !att || !q || !k || !v ||
        (drop.p > 0.0f && !work))
        return OCTET_ERR_ARG;
    int64_t BH = (int64_t)B * H, TT = (int64_t)T * T;
    int heads_par = HEADS_PAR(BH * TT * a.hs), saved;
    octet_threads_blas_single(); /* the heads' sgemm calls inside parallel loops: one thread each */
    /* raw scores: att[bh] (T,T) = q_h k_h^T */
    saved = heads_par ? 0 : octet_blas_enter();
#pragma omp parallel for schedule(static) if (heads_par)
    for (int64_t bh = 0; bh < BH; bh++)
        head_gemm(0, 1, T, T, a.hs, 1.0f, q + head_offset(&a, bh), C, k + head_offset(&a, bh), C, 0.0f,
                  att + bh * TT, T);
    octet_blas_leave(saved);
    /* probabilities (saved), and their dropped copy in work */
#pragma omp parallel for schedule(static) if (OCTET_PAR(BH * TT))
    for (int64_t row = 0; row < BH * T; row++) {
        int64_t bh = row / T;
        float *p = att + row * T;
        softmax_row(p, p, mask ? mask + (bh / H) * T : NULL, T, a.scale);
        if (drop.p > 0.0f)
            drop_row(&a, drop, work + row * T, p, bh, (int)(row % T));
    }
    const float *probs = drop.p > 0.0f ? work : att;
    /* out_h (T,hs) = probs (T,T) . v_h */
    saved = heads_par ? 0 : octet_blas_enter();
#pragma omp parallel for schedule(static) if (heads_par)
    for (int64_t bh = 0; bh < BH; bh++)
        head_gemm(0, 0, T, a.hs, T, 1.0f, probs + bh * TT, T, v + head_offset(&a, bh), C, 0.0f,
                  out + head_offset(&a, bh), C);
    octet_blas_leave(saved);
    return OCTET_OK;
}

int attention_backward_cpu(device *d, float *dq, float *dk, float *dv, float *work, const float *dout,
                           const float *q, const float *k, const float *v, const float *att,
                           const int *mask, int B, int T, int C, int H, ops_dropout drop)
{
    (void)d;
    ops_att_dims a;
    if (!ops_att_dims_ok(B, T, C, H, drop, &a) || !dq || !dk || !dv || !work || !dout || !q || !k ||
        !v || !att)
        return OCTET_ERR_ARG;
    int64_t BH = (int64_t)B * H, TT = (int64_t)T * T;
    int heads_par = HEADS_PAR(BH * TT * a.hs), saved;
    octet_threads_blas_single(); /* the heads' sgemm calls inside parallel loops: one thread each */
    /* dv_h (T,hs) = dropout(att)^T . dout_h */
    const float *probs = att;
    if (drop.p > 0.0f) {
#pragma omp parallel for schedule(static) if (OCTET_PAR(BH * TT))
        for (int64_t row = 0; row < BH * T; row++)
            drop_row(&a, drop, work + row * T, att + row * T, row / T, (int)(row % T));
        probs = work;
    }
    saved = heads_par ? 0 : octet_blas_enter();
#pragma omp parallel for schedule(static) if (heads_par)
    for (int64_t bh = 0; bh < BH; bh++)
        head_gemm(1, 0, T, a.hs, T, 1.0f, probs + bh * TT, T, dout + head_offset(&a, bh), C, 0.0f,
                  dv + head_offset(&a, bh), C);
    octet_blas_leave(saved);
    /* d(dropped probs) (T,T) = dout_h . v_h^T, into work */
    saved = heads_par ? 0 : octet_blas_enter();
#pragma omp parallel for schedule(static) if (heads_par)
    for (int64_t bh = 0; bh < BH; bh++)
        head_gemm(0, 1, T, T, a.hs, 1.0f, dout + head_offset(&a, bh), C, v + head_offset(&a, bh), C, 0.0f,
                  work + bh * TT, T);
    octet_blas_leave(saved);
    /* through the dropout mask and the softmax: work becomes d(raw scores), scale included */
#pragma omp parallel for schedule(static) if (OCTET_PAR(BH * TT))
    for (int64_t row = 0; row < BH * T; row++) {
        int64_t bh = row / T;
        float *ds = work + row * T;
        if (drop.p > 0.0f)
            drop_row(&a, drop, ds, ds, bh, (int)(row % T));
        softmax_row_backward(ds, ds, att + row * T, mask ? mask + (bh / H) * T : NULL, T, a.scale);
    }
    /* dq_h = ds . k_h; dk_h = ds^T . q_h */
    saved = heads_par ? 0 : octet_blas_enter();
#pragma omp parallel for schedule(static) if (heads_par)
    for (int64_t bh = 0; bh < BH; bh++) {
        int64_t off = head_offset(&a, bh);
        head_gemm(0, 0, T, a.hs, T, 1.0f, work + bh * TT, T, k + off, C, 0.0f, dq + off, C);
        head_gemm(1, 0, T, a.hs, T, 1.0f, work + bh * TT, T, q + off, C, 0.0f, dk + off, C);
    }
    octet_blas_leave(saved);
    return OCTET_OK;
}
