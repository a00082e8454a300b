/* attention_cuda.cu: the CUDA twin of attention_cpu.c — the masked softmax and multi-head
 * scaled dot-product attention (Hugging Face DistilBERT's MultiHeadSelfAttention between its
 * projections), forward and backward.
 *
 * Softmax rows run one warp per row (OPS_WARPS rows per CUDA block, grid-stride over rows), in
 * the CPU twin's three passes: the maximum of the scaled, masked scores; exp(s - max) stored and
 * summed in double (xor-butterfly warp sum); the normalisation. The attention forward fuses the
 * dropout of the probabilities into the same pass (the dropped copy goes to `work`, the
 * undropped probabilities stay in `att` for the backward pass); the backward row kernel fuses
 * the dropout mask with the softmax backward. The mask is ops_math.h's Philox function of (seed,
 * offset, index of the (b,h,i,j) element), so it is the CPU twin's mask bit for bit.
 *
 * The products are cuBLAS strided-batched GEMMs (ops_rm_gemm, fp32 or bf16 per the device's
 * precision) straight on the (B,T,C) tensors: head h of batch b is the (T, C/H) block at
 * b*T*C + h*C/H with row stride C, and its scores the (T,T) block (b*H + h)*T*T. Those offsets
 * are strided in b for a fixed h and in h for a fixed b, so a call batches over the larger of
 * B and H and loops over the smaller (min(B,H) calls per product; no transposed copies).
 * Raw scores q k^T are formed with alpha = 1 and scaled inside the softmax, as the CPU twin does.
 *
 * Failures: OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA device,
 * OCTET_ERR_CUDA (logged) when cuBLAS or a launch fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

#include <math.h>

/* ------------------------------------------------------------------ CUDA kernels */

/* One warp per row r of `rows` rows of length T: y = softmax over j of s_j, s_j = scale * x_j,
 * or OPS_MASK_FILL where the row's mask is 0 (the mask of row r is mask + (r / R) * T; mask may
 * be NULL). y may alias x. When dropped is not NULL, dropped[r*T + j] = y_j * the dropout factor
 * of index r*T + j. */
static __global__ void softmax_forward_kernel(float *y, float *dropped, const float *x, const int *mask,
                                              int64_t rows, int R, int T, float scale, ops_dropout drop,
                                              float drop_scale)
{
    int lane = threadIdx.x & 31;
    for (int64_t r = (int64_t)blockIdx.x * OPS_WARPS + threadIdx.x / 32; r < rows; r += (int64_t)gridDim.x * OPS_WARPS) {
        const float *xr = x + r * T;                    /* (T) */
        float *yr = y + r * T;                          /* (T) */
        const int *m = mask ? mask + (r / R) * T : NULL; /* (T) */
        float mx = OPS_MASK_FILL;
        for (int j = lane; j < T; j += 32) {
            float s = (!m || m[j]) ? scale * xr[j] : OPS_MASK_FILL;
            mx = s > mx ? s : mx;
        }
        for (int off = 16; off > 0; off >>= 1) { /* NaN scores never enter mx: exact, order-free */
            float o = __shfl_xor_sync(OPS_FULL_MASK, mx, off);
            mx = o > mx ? o : mx;
        }
        double sum = 0.0;
        for (int j = lane; j < T; j += 32) {
            float s = (!m || m[j]) ? scale * xr[j] : OPS_MASK_FILL;
            float e = expf(s - mx);
            yr[j] = e;
            sum += e;
        }
        sum = ops_warp_sum(sum);
        float inv = (float)(1.0 / sum);
        for (int j = lane; j < T; j += 32) {
            float p = yr[j] * inv;
            yr[j] = p;
            if (dropped)
                dropped[r * T + j] =
                    p * dropout_factor_one(drop.p, drop_scale, drop.seed, drop.offset, (uint64_t)(r * T + j));
        }
    }
}

/* One warp per row r: dx = scale * y * (dy' - sum(y * dy')), 0 at masked keys, where dy' = dy
 * times the dropout factor of index r*T + j when drop.p > 0 (stored to dx first, which the
 * second pass then reads), else dy. dx may alias dy. */
static __global__ void softmax_backward_kernel(float *dx, const float *dy, const float *y, const int *mask,
                                               int64_t rows, int R, int T, float scale, ops_dropout drop,
                                               float drop_scale)
{
    int lane = threadIdx.x & 31;
    for (int64_t r = (int64_t)blockIdx.x * OPS_WARPS + threadIdx.x / 32; r < rows; r += (int64_t)gridDim.x * OPS_WARPS) {
        const float *yr = y + r * T;                     /* (T) */
        float *dxr = dx + r * T;                         /* (T) */
        const float *dyr = dy + r * T;                   /* (T) */
        const int *m = mask ? mask + (r / R) * T : NULL; /* (T) */
        double dot = 0.0;
        for (int j = lane; j < T; j += 32) {
            float g = dyr[j];
            if (drop.p > 0.0f) {
                g = g * dropout_factor_one(drop.p, drop_scale, drop.seed, drop.offset, (uint64_t)(r * T + j));
                dxr[j] = g;
            }
            dot += (double)yr[j] * g;
        }
        float fdot = (float)ops_warp_sum(dot);
        const float *gr = drop.p > 0.0f ? dxr : dyr; /* each lane re-reads only what it wrote */
        for (int j = lane; j < T; j += 32)
            dxr[j] = (!m || m[j]) ? scale * (yr[j] * (gr[j] - fdot)) : 0.0f;
    }
}

/* ------------------------------------------------------------------ kernel launchers */

static int softmax_forward_launch(float *y, float *dropped, const float *x, const int *mask, int64_t rows, int R,
                                  int T, float scale, ops_dropout drop, cudaStream_t st)
{
    int rc = OCTET_OK;
    softmax_forward_kernel<<<ops_grid(rows, OPS_WARPS), OPS_THREADS, 0, st>>>(y, dropped, x, mask, rows, R, T, scale,
                                                                              drop, dropout_scale(drop.p));
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int softmax_backward_launch(float *dx, const float *dy, const float *y, const int *mask, int64_t rows, int R,
                                   int T, float scale, ops_dropout drop, cudaStream_t st)
{
    int rc = OCTET_OK;
    softmax_backward_kernel<<<ops_grid(rows, OPS_WARPS), OPS_THREADS, 0, st>>>(dx, dy, y, mask, rows, R, T, scale,
                                                                               drop, dropout_scale(drop.p));
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ softmax entry points */

static ops_dropout no_dropout(void)
{
    ops_dropout z;
    z.p = 0.0f;
    z.seed = 0;
    z.offset = 0;
    return z;
}

int softmax_forward_cuda(device *d, float *out, const float *inp, const int *mask, int B, int R, int T,
                         float scale)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(B, R, T) || !out || !inp || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return softmax_forward_launch(out, NULL, inp, mask, (int64_t)B * R, R, T, scale, no_dropout(), st);
}

int softmax_backward_cuda(device *d, float *dinp, const float *dout, const float *out, const int *mask,
                          int B, int R, int T, float scale)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK3(B, R, T) || !dinp || !dout || !out || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return softmax_backward_launch(dinp, dout, out, mask, (int64_t)B * R, R, T, scale, no_dropout(), st);
}

/* ------------------------------------------------------------------ attention */

/* Where the per-head blocks of one operand live: block (b, h) starts at p + b*sb + h*sh, rows
 * ld apart. A (B,T,C) tensor: ld C, sb T*C, sh C/H. A (B,H,T,T) tensor: ld T, sb H*T*T, sh T*T. */
typedef struct head_operand {
    const float *p;
    int ld;
    long long sb, sh;
} head_operand;

static head_operand btc_operand(const ops_att_dims *a, const float *p)
{
    head_operand o;
    o.p = p;
    o.ld = a->C;
    o.sb = (long long)a->T * a->C;
    o.sh = a->hs;
    return o;
}

static head_operand bhtt_operand(const ops_att_dims *a, const float *p)
{
    head_operand o;
    o.p = p;
    o.ld = a->T;
    o.sb = (long long)a->H * a->T * a->T;
    o.sh = (long long)a->T * a->T;
    return o;
}

/* For every head block (b, h): c = op(x) op(y) (beta 0), (M,N) with inner dimension K.
 * Batches over the larger of B and H, loops over the smaller. Returns OCTET_OK or
 * OCTET_ERR_CUDA. */
static int head_gemm(device *d, const ops_att_dims *a, int tx, int ty, int M, int N, int K, head_operand x,
                     head_operand y, head_operand c)
{
    int rc = OCTET_OK;
    int by_b = a->B >= a->H; /* batch over b, loop over heads */
    int loops = by_b ? a->H : a->B, batch = by_b ? a->B : a->H;
    for (int i = 0; i < loops && rc == OCTET_OK; i++) {
        long long ox = by_b ? i * x.sh : i * x.sb, oy = by_b ? i * y.sh : i * y.sb, oc = by_b ? i * c.sh : i * c.sb;
        rc = ops_rm_gemm(d, tx, ty, M, N, K, 1.0f, x.p + ox, x.ld, by_b ? x.sb : x.sh, y.p + oy, y.ld,
                         by_b ? y.sb : y.sh, 0.0f, (float *)c.p + oc, c.ld, by_b ? c.sb : c.sh, batch);
    }
    return rc;
}

int attention_forward_cuda(device *d, float *out, float *att, float *work, const float *q, const float *k,
                           const float *v, const int *mask, int B, int T, int C, int H, ops_dropout drop)
{
    cudaStream_t st;
    ops_att_dims a;
    if (!ops_att_dims_ok(B, T, C, H, drop, &a) || !out || !att || !q || !k || !v ||
        (drop.p > 0.0f && !work) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int64_t rows = (int64_t)B * H * T;
    /* raw scores: att[b,h] (T,T) = q_h (T,hs) . k_h^T */
    int rc = head_gemm(d, &a, 0, 1, T, T, a.hs, btc_operand(&a, q), btc_operand(&a, k), bhtt_operand(&a, att));
    /* probabilities in place (saved), their dropped copy in work; batch b of row r is r / (H*T) */
    if (rc == OCTET_OK)
        rc = softmax_forward_launch(att, drop.p > 0.0f ? work : NULL, att, mask, rows, H * T, T, a.scale, drop, st);
    /* out_h (T,hs) = probs (T,T) . v_h */
    const float *probs = drop.p > 0.0f ? work : att;
    if (rc == OCTET_OK)
        rc = head_gemm(d, &a, 0, 0, T, a.hs, T, bhtt_operand(&a, probs), btc_operand(&a, v), btc_operand(&a, out));
    return rc;
}

int attention_backward_cuda(device *d, float *dq, float *dk, float *dv, float *work, const float *dout,
                            const float *q, const float *k, const float *v, const float *att,
                            const int *mask, int B, int T, int C, int H, ops_dropout drop)
{
    cudaStream_t st;
    ops_att_dims a;
    if (!ops_att_dims_ok(B, T, C, H, drop, &a) || !dq || !dk || !dv || !work || !dout || !q || !k || !v ||
        !att || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int64_t rows = (int64_t)B * H * T;
    int rc = OCTET_OK;
    /* dv_h (T,hs) = dropout(att)^T . dout_h; the dropped probabilities are rebuilt in work */
    const float *probs = att;
    if (drop.p > 0.0f) {
        rc = ops_dropout_apply_cuda(work, att, rows * T, drop, st);
        probs = work;
    }
    if (rc == OCTET_OK)
        rc = head_gemm(d, &a, 1, 0, T, a.hs, T, bhtt_operand(&a, probs), btc_operand(&a, dout), btc_operand(&a, dv));
    /* d(dropped probs) (T,T) = dout_h . v_h^T, into work (stream order: after dv read it) */
    if (rc == OCTET_OK)
        rc = head_gemm(d, &a, 0, 1, T, T, a.hs, btc_operand(&a, dout), btc_operand(&a, v), bhtt_operand(&a, work));
    /* through the dropout mask and the softmax: work becomes d(raw scores), scale included */
    if (rc == OCTET_OK)
        rc = softmax_backward_launch(work, work, att, mask, rows, H * T, T, a.scale, drop, st);
    /* dq_h = ds . k_h; dk_h = ds^T . q_h */
    if (rc == OCTET_OK)
        rc = head_gemm(d, &a, 0, 0, T, a.hs, T, bhtt_operand(&a, work), btc_operand(&a, k), btc_operand(&a, dq));
    if (rc == OCTET_OK)
        rc = head_gemm(d, &a, 1, 0, T, a.hs, T, bhtt_operand(&a, work), btc_operand(&a, q), btc_operand(&a, dk));
    return rc;
}
