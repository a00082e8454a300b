/* ops.h: the compute ops of the training engine — forward and backward of every layer the
 * models use (linear layers, GELU/ReLU, LayerNorm, embeddings, masked softmax, multi-head
 * attention, dropout, cross-entropy, MSE), gradient-norm helpers and the fp32 <-> bf16 / fp16
 * conversions of half-precision activation storage — behind one backend table.
 *
 * Model code asks ops_for(dev) once for the table of its device and calls through it; it never
 * contains #ifdef HAVE_CUDA. Every entry has the same signature on the CPU twin (*_cpu.c, plain
 * loops + CBLAS, OpenMP where it pays) and the CUDA twin (*_cuda.cu, cuBLAS + kernels); the
 * per-element math both share is in ops_math.h.
 *
 * Conventions (llm.c's): outputs first, then inputs, then dimensions; all tensors are fp32
 * (except the 16-bit side of to_half / from_half), contiguous and row-major, in the device's memory (device_alloc), with their shape in a comment.
 * Ops never allocate: activations, saved statistics and workspaces are allocated once by the
 * caller (category activations or workspace) and passed in.
 *  - Parameter gradients (dweight, dbias, dwte, dwpe) ACCUMULATE (+=), so gradient accumulation
 *    over micro-batches needs no copy; zero them once per optimizer step.
 *  - Input gradients (dinp, dq, dk, dv, dlogits, ...) are OVERWRITTEN, except matmul_backward's
 *    dinp when `accumulate_dinp` is set (an input feeding several projections, e.g. q_lin,
 *    k_lin and v_lin of one attention block, or a residual branch).
 *  - A gradient pointer that is NULL is not computed (e.g. dinp of the first layer).
 *  - In-place use (out == inp) is allowed only where an entry says so.
 *
 * Every entry returns OCTET_OK; OCTET_ERR_ARG when a dimension is not positive, a required
 * pointer is NULL or a probability is outside [0, 1]; the CUDA twin also OCTET_ERR_CUDA when a
 * launch or a cuBLAS call fails (logged with file:line). Ops never exit. Data errors that only a
 * full scan would find (an id or label out of range) are defined, not reported: see the entry.
 * NaN and Inf are data too: they propagate through every entry as they do through PyTorch's
 * ops (a NaN weight makes the logits, the loss and the gradients NaN), so the trainer's
 * gradient-norm check sees them; no entry turns a NaN into a finite value, except a masked
 * attention score, which is replaced by the mask fill as torch's masked_fill replaces it. */
#ifndef OCTET_OPS_H
#define OCTET_OPS_H

#include <stdint.h>
#include "device.h"
#include "hd.h"
#include "status.h"

OCTET_EXTERN_C_BEGIN

/* Which dropout to apply. p = 0 is the identity (evaluation, or dropout disabled). The mask of
 * element i is a pure function of (seed, offset, i) (ops_math.h), so forward and backward, CPU
 * and CUDA, draw the same mask; give every dropout site of every step its own offset, e.g.
 * offset = step * n_sites + site. */
typedef struct ops_dropout {
    float p;          /* drop probability in [0, 1]; kept elements are scaled by 1/(1-p) */
    uint64_t seed;    /* the job's seed */
    uint64_t offset;  /* unique per (step, call site) */
} ops_dropout;

typedef struct ops_table {
    const char *name; /* "cpu" or "cuda" */

    /* ------------------------------------------------------------ matrix products */

    /* General row-major product: c = alpha * op(a) . op(b) + beta * c, with op(a) (M,K) and
     * op(b) (K,N). a is stored (M,K), or (K,M) when trans_a; b is stored (K,N), or (N,K) when
     * trans_b. beta = 0 ignores c's old contents (NaN included). */
    int (*gemm)(device *d,
                float *c,                         /* (M,N) */
                const float *a,                   /* (M,K) or (K,M) when trans_a */
                const float *b,                   /* (K,N) or (N,K) when trans_b */
                int M, int N, int K, int trans_a, int trans_b, float alpha, float beta);

    /* A linear layer in nn.Linear's layout: out = inp . weight^T + bias. bias may be NULL. */
    int (*matmul_forward)(device *d,
                          float *out,          /* (M,N) */
                          const float *inp,    /* (M,K) */
                          const float *weight, /* (N,K) (out_features, in_features) */
                          const float *bias,   /* (N) or NULL */
                          int M, int K, int N);
    /* dinp = dout . weight (or += when accumulate_dinp); dweight += dout^T . inp;
     * dbias += column sums of dout. Any of dinp, dweight, dbias may be NULL. */
    int (*matmul_backward)(device *d,
                           float *dinp,         /* (M,K) */
                           float *dweight,      /* (N,K) accumulates */
                           float *dbias,        /* (N) accumulates */
                           const float *dout,   /* (M,N) */
                           const float *inp,    /* (M,K) */
                           const float *weight, /* (N,K) */
                           int M, int K, int N, int accumulate_dinp);

    /* ------------------------------------------------------------ elementwise */

    /* out = a + b (residual connections). out may alias a or b. */
    int (*add_forward)(device *d, float *out, const float *a, const float *b, int64_t N); /* all (N) */
    /* out = relu(inp) (NaN stays NaN, as torch.relu); out may alias inp. */
    int (*relu_forward)(device *d, float *out, const float *inp, int64_t N);               /* all (N) */
    /* dinp = dout * (inp > 0), where a NaN inp counts as > 0 (torch's threshold_backward);
     * dinp may alias dout. */
    int (*relu_backward)(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
    /* out = 0.5 inp (1 + erf(inp / sqrt 2)), exact GELU; out may NOT alias inp (backward needs inp). */
    int (*gelu_forward)(device *d, float *out, const float *inp, int64_t N);               /* all (N) */
    /* dinp = dout * gelu'(inp); dinp may alias dout. */
    int (*gelu_backward)(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
    /* The fused bias + GELU of a linear layer's output (matmul_forward with a NULL bias, then
     * this): pre (M,N) += bias (N) broadcast over rows, then out = gelu(pre) (exact erf GELU);
     * pre keeps the biased pre-activation for gelu_backward. bias may be NULL (then only the
     * GELU). The bits equal matmul_forward's bias add (the same one float addition) followed by
     * gelu_forward, on either twin. out may NOT alias pre: overlapping ranges are refused
     * (OCTET_ERR_ARG). */
    int (*bias_gelu_forward)(device *d,
                             float *pre,        /* (M,N) in: x . W^T; out: + bias */
                             float *out,        /* (M,N) */
                             const float *bias, /* (N) or NULL */
                             int M, int N);

    /* ------------------------------------------------------------ normalization */

    /* LayerNorm over the last dim with biased variance, as torch: out = (inp - mean) * rstd * weight
     * + bias, rstd = 1/sqrt(var + eps). mean and rstd are saved for the backward pass. */
    int (*layernorm_forward)(device *d,
                             float *out,          /* (N,C) */
                             float *mean,         /* (N) */
                             float *rstd,         /* (N) */
                             const float *inp,    /* (N,C) */
                             const float *weight, /* (C) */
                             const float *bias,   /* (C) */
                             int N, int C, float eps);
    /* dinp is overwritten; dweight and dbias accumulate. dinp may alias dout. */
    int (*layernorm_backward)(device *d,
                              float *dinp,         /* (N,C) */
                              float *dweight,      /* (C) accumulates */
                              float *dbias,        /* (C) accumulates */
                              const float *dout,   /* (N,C) */
                              const float *inp,    /* (N,C) */
                              const float *weight, /* (C) */
                              const float *mean,   /* (N) */
                              const float *rstd,   /* (N) */
                              int N, int C);

    /* ------------------------------------------------------------ embeddings */

    /* out[b,t] = wte[ids[b,t]] + wpe[t] (position ids 0..T-1; wpe NULL: word embeddings only).
     * An id outside [0,V) contributes a zero word row (no fault; the tokenizer guarantees range). */
    int (*embedding_forward)(device *d,
                             float *out,       /* (B,T,C) */
                             const int *ids,   /* (B,T) */
                             const float *wte, /* (V,C) */
                             const float *wpe, /* (>=T,C) or NULL */
                             int B, int T, int C, int V);
    /* dwte[ids[b,t]] += dout[b,t] (repeated ids add up, in (b,t) order); dwpe[t] += sum_b dout[b,t].
     * Rows with id == padding_idx (nn.Embedding's padding_idx; -1 for none) or out of range get
     * no gradient. dwte or dwpe may be NULL. */
    int (*embedding_backward)(device *d,
                              float *dwte,       /* (V,C) accumulates */
                              float *dwpe,       /* (>=T,C) accumulates */
                              const float *dout, /* (B,T,C) */
                              const int *ids,    /* (B,T) */
                              int B, int T, int C, int V, int padding_idx);

    /* ------------------------------------------------------------ softmax and attention */

    /* Masked softmax over the last dim of scale * inp: keys with mask[b,t] == 0 get the score
     * OPS_MASK_FILL (torch.finfo.min) before the softmax, hence probability 0 (a fully masked
     * row is uniform, as in PyTorch). mask NULL: nothing masked. out may alias inp. */
    int (*softmax_forward)(device *d,
                           float *out,       /* (B,R,T) */
                           const float *inp, /* (B,R,T) */
                           const int *mask,  /* (B,T) 0/1 per key, or NULL */
                           int B, int R, int T, float scale);
    /* dinp = scale * out * (dout - sum(out * dout)), 0 at masked keys. dinp may alias dout. */
    int (*softmax_backward)(device *d,
                            float *dinp,       /* (B,R,T) */
                            const float *dout, /* (B,R,T) */
                            const float *out,  /* (B,R,T) the forward's output */
                            const int *mask,   /* (B,T) or NULL */
                            int B, int R, int T, float scale);

    /* Scaled dot-product attention over H heads (head h = channels [h*C/H, (h+1)*C/H)), as HF
     * DistilBERT's MultiHeadSelfAttention between its projections: att = softmax(q k^T /
     * sqrt(C/H), padding mask over keys), then dropout on att, out = dropout(att) . v.
     * att keeps the probabilities before dropout for the backward pass; the dropout mask is
     * regenerated from `drop` (index of att element (b,h,i,j) = ((b*H + h)*T + i)*T + j).
     * work is scratch for the dropped probabilities, required when drop.p > 0, else may be NULL.
     * C must be a multiple of H. */
    int (*attention_forward)(device *d,
                             float *out,      /* (B,T,C) */
                             float *att,      /* (B,H,T,T) saved for backward */
                             float *work,     /* (B,H,T,T) scratch, or NULL when drop.p == 0 */
                             const float *q,  /* (B,T,C) */
                             const float *k,  /* (B,T,C) */
                             const float *v,  /* (B,T,C) */
                             const int *mask, /* (B,T) 0/1 per key, or NULL */
                             int B, int T, int C, int H, ops_dropout drop);
    /* dq, dk, dv are overwritten. work is required scratch. drop must equal the forward's. */
    int (*attention_backward)(device *d,
                              float *dq,         /* (B,T,C) */
                              float *dk,         /* (B,T,C) */
                              float *dv,         /* (B,T,C) */
                              float *work,       /* (B,H,T,T) scratch */
                              const float *dout, /* (B,T,C) */
                              const float *q,    /* (B,T,C) */
                              const float *k,    /* (B,T,C) */
                              const float *v,    /* (B,T,C) */
                              const float *att,  /* (B,H,T,T) from the forward */
                              const int *mask,   /* (B,T) or NULL */
                              int B, int T, int C, int H, ops_dropout drop);

    /* ------------------------------------------------------------ dropout */

    /* out = inp * mask / (1-p) with the mask of `drop`; identity when p == 0; out may alias inp. */
    int (*dropout_forward)(device *d, float *out, const float *inp, int64_t N, ops_dropout drop); /* (N) */
    /* dinp = dout * the same mask / (1-p); dinp may alias dout. */
    int (*dropout_backward)(device *d, float *dinp, const float *dout, int64_t N, ops_dropout drop);

    /* ------------------------------------------------------------ heads and losses */

    /* out[b] = inp[b, t] (DistilBERT's pooled [CLS] token: t = 0). */
    int (*token_select_forward)(device *d,
                                float *out,       /* (B,C) */
                                const float *inp, /* (B,T,C) */
                                int B, int T, int C, int t);
    /* dinp[b, t] = dout[b], every other row of dinp = 0 (overwritten). */
    int (*token_select_backward)(device *d,
                                 float *dinp,       /* (B,T,C) */
                                 const float *dout, /* (B,C) */
                                 int B, int T, int C, int t);

    /* Cross-entropy of logits against integer labels (torch.nn.CrossEntropyLoss, mean
     * reduction). losses[b] = logsumexp(logits[b]) - logits[b, labels[b]]; loss[0] = mean over
     * the samples whose label is in [0,C) (others — torch's ignore_index -100 — get loss 0 and
     * no gradient; loss 0 when none counts); pred[b] = argmax of logits[b] as torch.argmax (first
     * on ties; NaN counts as the largest, so a row with NaN predicts its first NaN's class), for
     * accuracy and F1. losses, loss and pred may each be NULL. */
    int (*crossentropy_forward)(device *d,
                                float *losses,       /* (B) */
                                float *loss,         /* (1) */
                                int *pred,           /* (B) */
                                const float *logits, /* (B,C) */
                                const int *labels,   /* (B) */
                                int B, int C);
    /* dlogits = dloss * (softmax(logits) - onehot(label)) / n_counted (overwritten; ignored
     * samples get 0 x softmax: 0 rows, NaN where the row's logits are not finite, as torch).
     * dloss is the gradient of the objective w.r.t. the mean loss (1, or
     * 1/gradient_accumulation_steps). */
    int (*crossentropy_backward)(device *d,
                                 float *dlogits,      /* (B,C) */
                                 const float *logits, /* (B,C) */
                                 const int *labels,   /* (B) */
                                 int B, int C, float dloss);

    /* Mean squared error for regression (num_labels = 1, as HF): losses[b] = (pred[b] -
     * target[b])^2, loss[0] = their mean. losses or loss may be NULL. */
    int (*mse_forward)(device *d,
                       float *losses,       /* (B) */
                       float *loss,         /* (1) */
                       const float *pred,   /* (B) */
                       const float *target, /* (B) */
                       int B);
    /* dpred = dloss * 2 (pred - target) / B (overwritten). */
    int (*mse_backward)(device *d,
                        float *dpred,        /* (B) */
                        const float *pred,   /* (B) */
                        const float *target, /* (B) */
                        int B, float dloss);

    /* ------------------------------------------------------------ gradient norm */

    /* *out (host) = sum over buffers i of sum_j bufs[i][j]^2, in double, in a fixed order that
     * depends only on the sizes (not on thread count). bufs and n are host arrays; the buffers
     * themselves are in the device's memory. Synchronizes the device. */
    int (*sumsq)(device *d, double *out, const float *const *bufs, const int64_t *n, int count);
    /* x *= s in place. */
    int (*scale)(device *d, float *x, int64_t N, float s); /* (N) */

    /* ------------------------------------------------------------ half-precision storage */

    /* out = inp rounded to the 16-bit format `kind` (OPS_HALF_BF16 or OPS_HALF_FP16), round to
     * nearest even, as __float2bfloat16_rn / __float2half_rn: fp16 overflows to +-inf (|x| >=
     * 65520) and has subnormals down to 2^-24; NaN stays a quiet NaN. The bits are those of
     * ops_math.h's ops_bf16_from_f32_bits / ops_fp16_from_f32_bits on both twins. For storing
     * activations (DistilBERT's half activation storage); out may not alias inp.
     * OCTET_ERR_ARG also for an unknown kind. */
    int (*to_half)(device *d, uint16_t *out, const float *inp, int64_t N, int kind); /* (N) */
    /* out = the float value of each 16-bit inp (exact: every bf16 and fp16 is a float). */
    int (*from_half)(device *d, float *out, const uint16_t *inp, int64_t N, int kind); /* (N) */
} ops_table;

/* The 16-bit formats of to_half / from_half. */
enum { OPS_HALF_BF16 = 0, OPS_HALF_FP16 = 1 };

/* The ops table of device d's backend: the CPU twin for a CPU device, the CUDA twin for a CUDA
 * device. Returns NULL when this build has no ops twin for d's backend (a CUDA device before the
 * CUDA twin is compiled in); callers report OCTET_ERR_NODEV. */
const ops_table *ops_for(device *d);

const ops_table *ops_table_cpu(void);
/* The CUDA twin (the kernels/ops *_cuda.cu files); defined only in builds with OCTET_OPS_CUDA. */
const ops_table *ops_table_cuda(void);

/* torch.nn.utils.clip_grad_norm_ over `count` gradient buffers (host arrays of device
 * pointers and lengths): total = sqrt(sum of squares of all elements); when max_norm > 0 and
 * total is finite and larger, every buffer is scaled by max_norm / (total + 1e-6). Writes total
 * to *total_norm (may be NULL; NaN/Inf when the gradients are, and then nothing is scaled, so the
 * caller can skip the step). Returns OCTET_OK, or a status from the backend. */
int ops_clip_grad_norm(device *d, float *const *grads, const int64_t *n, int count, double max_norm,
                       double *total_norm);

OCTET_EXTERN_C_END
#endif
