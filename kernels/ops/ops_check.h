/* ops_check.h: the argument checks every ops entry starts with, shared by the CPU twin
 * (ops_cpu.h) and the CUDA twin (ops_cuda.h) so both refuse exactly the same calls. */
#ifndef OCTET_OPS_CHECK_H
#define OCTET_OPS_CHECK_H

#include <math.h>
#include "ops.h"

/* True when every listed dimension is positive (the entry returns OCTET_ERR_ARG otherwise). */
#define OPS_DIMS_OK2(a, b) ((a) > 0 && (b) > 0)
#define OPS_DIMS_OK3(a, b, c) ((a) > 0 && (b) > 0 && (c) > 0)
#define OPS_DIMS_OK4(a, b, c, e) ((a) > 0 && (b) > 0 && (c) > 0 && (e) > 0)

/* True when p is a valid drop probability (NaN fails). */
static inline int ops_p_ok(float p) { return p >= 0.0f && p <= 1.0f; }

/* True when bias_gelu_forward may run on (M,N) buffers pre and out: positive dimensions, both
 * pointers set, and the two ranges of M*N floats disjoint (out may not alias pre, even in
 * part; compared as addresses, which also holds for CUDA's unified address space). */
static inline int ops_bias_gelu_ok(const float *pre, const float *out, int M, int N)
{
    if (!OPS_DIMS_OK2(M, N) || !pre || !out)
        return 0;
    uintptr_t p = (uintptr_t)pre, o = (uintptr_t)out, bytes = (uintptr_t)M * (uintptr_t)N * sizeof(float);
    return o >= p + bytes || p >= o + bytes;
}

/* The dimensions of one attention_forward / attention_backward call. Head h of batch b is the
 * (T, hs) block of a (B,T,C) tensor at offset b*T*C + h*hs with row stride C; its scores are
 * the (T,T) block bh = b*H + h of a (B,H,T,T) tensor. */
typedef struct ops_att_dims {
    int B, T, C, H, hs; /* hs = C / H */
    float scale;        /* 1 / sqrt(hs), applied to the scores */
} ops_att_dims;

/* Fills *a and returns 1 when every dimension is positive, H divides C and drop.p is a
 * probability; returns 0 otherwise (the entry then returns OCTET_ERR_ARG). */
static inline int ops_att_dims_ok(int B, int T, int C, int H, ops_dropout drop, ops_att_dims *a)
{
    if (!OPS_DIMS_OK4(B, T, C, H) || C % H != 0 || !ops_p_ok(drop.p))
        return 0;
    a->B = B;
    a->T = T;
    a->C = C;
    a->H = H;
    a->hs = C / H;
    a->scale = (float)(1.0 / sqrt((double)a->hs));
    return 1;
}

/* True when kind is a 16-bit format of to_half / from_half. */
static inline int ops_half_kind_ok(int kind) { return kind == OPS_HALF_BF16 || kind == OPS_HALF_FP16; }

#endif
