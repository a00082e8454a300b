/* ops_cpu.h: the CPU twin's entry points (internal to kernels/ops).
 *
 * One function per ops_table entry, named after it with a _cpu suffix and with exactly its
 * signature; ops_cpu.c gathers them into the table. See ops.h for shapes and contracts. Also the
 * argument checks every CPU entry starts with. */
#ifndef OCTET_OPS_CPU_H
#define OCTET_OPS_CPU_H

#include "ops.h"
#include "ops_check.h"

int gemm_cpu(device *d, float *c, const float *a, const float *b, int M, int N, int K, int trans_a,
             int trans_b, float alpha, float beta);
int matmul_forward_cpu(device *d, float *out, const float *inp, const float *weight, const float *bias,
                       int M, int K, int N);
int matmul_backward_cpu(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int M, int K, int N, int accumulate_dinp);

int add_forward_cpu(device *d, float *out, const float *a, const float *b, int64_t N);
int relu_forward_cpu(device *d, float *out, const float *inp, int64_t N);
int relu_backward_cpu(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
int gelu_forward_cpu(device *d, float *out, const float *inp, int64_t N);
int gelu_backward_cpu(device *d, float *dinp, const float *inp, const float *dout, int64_t N);
int bias_gelu_forward_cpu(device *d, float *pre, float *out, const float *bias, int M, int N);
int scale_cpu(device *d, float *x, int64_t N, float s);
int token_select_forward_cpu(device *d, float *out, const float *inp, int B, int T, int C, int t);
int token_select_backward_cpu(device *d, float *dinp, const float *dout, int B, int T, int C, int t);

int layernorm_forward_cpu(device *d, float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps);
int layernorm_backward_cpu(device *d, float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean, const float *rstd,
                           int N, int C);

int embedding_forward_cpu(device *d, float *out, const int *ids, const float *wte, const float *wpe,
                          int B, int T, int C, int V);
int embedding_backward_cpu(device *d, float *dwte, float *dwpe, const float *dout, const int *ids,
                           int B, int T, int C, int V, int padding_idx);

int softmax_forward_cpu(device *d, float *out, const float *inp, const int *mask, int B, int R, int T,
                        float scale);
int softmax_backward_cpu(device *d, float *dinp, const float *dout, const float *out, const int *mask,
                         int B, int R, int T, float scale);
int attention_forward_cpu(device *d, float *out, float *att, float *work, const float *q, const float *k,
                          const float *v, const int *mask, int B, int T, int C, int H, ops_dropout drop);
int attention_backward_cpu(device *d, float *dq, float *dk, float *dv, float *work, const float *dout,
                           const float *q, const float *k, const float *v, const float *att,
                           const int *mask, int B, int T, int C, int H, ops_dropout drop);

int dropout_forward_cpu(device *d, float *out, const float *inp, int64_t N, ops_dropout drop);
int dropout_backward_cpu(device *d, float *dinp, const float *dout, int64_t N, ops_dropout drop);

int crossentropy_forward_cpu(device *d, float *losses, float *loss, int *pred, const float *logits,
                             const int *labels, int B, int C);
int crossentropy_backward_cpu(device *d, float *dlogits, const float *logits, const int *labels, int B,
                              int C, float dloss);
int mse_forward_cpu(device *d, float *losses, float *loss, const float *pred, const float *target, int B);
int mse_backward_cpu(device *d, float *dpred, const float *pred, const float *target, int B, float dloss);

int sumsq_cpu(device *d, double *out, const float *const *bufs, const int64_t *n, int count);

int to_half_cpu(device *d, uint16_t *out, const float *inp, int64_t N, int kind);
int from_half_cpu(device *d, float *out, const uint16_t *inp, int64_t N, int kind);

#endif
