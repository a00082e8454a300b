/* embed_cpu.c: the CPU twin of the embedding lookup (word + position rows), forward and
 * backward.
 *
 * The backward pass scatters rows of dout into the word-embedding gradient. Repeated ids add
 * up; to keep that race-free and independent of the thread count, threads split the channels
 * (each owns a block of columns of every row) and walk the tokens in (b,t) order. The position
 * gradient is split by position and summed over the batch in order. */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"

#define EMB_COL_BLOCK 64 /* channels per task of the backward scatter */

int embedding_forward_cpu(device *d, float *out, const int *ids, const float *wte, const float *wpe,
                          int B, int T, int C, int V)
{
    (void)d;
    if (!OPS_DIMS_OK4(B, T, C, V) || !out || !ids || !wte)
        return OCTET_ERR_ARG;
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)B * T * C))
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++) {
        int t = (int)(bt % T);
        int id = ids[bt];
        float *o = out + bt * C;                                         /* (C) */
        const float *w = (id >= 0 && id < V) ? wte + (int64_t)id * C : NULL; /* (C) */
        const float *p = wpe ? wpe + (int64_t)t * C : NULL;              /* (C) */
        for (int c = 0; c < C; c++)
            o[c] = (w ? w[c] : 0.0f) + (p ? p[c] : 0.0f);
    }
    return OCTET_OK;
}

/* dwte[ids[b,t]] += dout[b,t] in (b,t) order, skipping padding_idx and out-of-range ids. */
static void word_grad(float *dwte, const float *dout, const int *ids, int64_t BT, int C, int V,
                      int padding_idx)
{
    int nblocks = (C + EMB_COL_BLOCK - 1) / EMB_COL_BLOCK;
#pragma omp parallel for schedule(static) if (OCTET_PAR(BT * C))
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * EMB_COL_BLOCK;
        int c1 = c0 + EMB_COL_BLOCK < C ? c0 + EMB_COL_BLOCK : C;
        for (int64_t bt = 0; bt < BT; bt++) {
            int id = ids[bt];
            if (id < 0 || id >= V || id == padding_idx)
                continue;
            float *g = dwte + (int64_t)id * C;
            const float *dy = dout + bt * C;
            for (int c = c0; c < c1; c++)
                g[c] += dy[c];
        }
    }
}

/* dwpe[t] += sum over b of dout[b,t], in b order. */
static void position_grad(float *dwpe, const float *dout, int B, int T, int C)
{
#pragma omp parallel for schedule(static) if (OCTET_PAR((int64_t)B * T * C))
    for (int t = 0; t < T; t++) {
        float *g = dwpe + (int64_t)t * C;
        for (int b = 0; b < B; b++) {
            const float *dy = dout + ((int64_t)b * T + t) * C;
            for (int c = 0; c < C; c++)
                g[c] += dy[c];
        }
    }
}

int embedding_backward_cpu(device *d, float *dwte, float *dwpe, const float *dout, const int *ids,
                           int B, int T, int C, int V, int padding_idx)
{
    (void)d;
    if (!OPS_DIMS_OK4(B, T, C, V) || !dout || (dwte && !ids))
        return OCTET_ERR_ARG;
    if (dwte)
        word_grad(dwte, dout, ids, (int64_t)B * T, C, V, padding_idx);
    if (dwpe)
        position_grad(dwpe, dout, B, T, C);
    return OCTET_OK;
}
