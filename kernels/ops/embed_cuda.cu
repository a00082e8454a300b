/* embed_cuda.cu: the CUDA twin of embed_cpu.c — the embedding lookup (word + position rows),
 * forward and backward.
 *
 * The forward pass is one grid-stride kernel over the B*T*C outputs. The backward pass is
 * deterministic and bit-identical to the CPU twin without atomics or sorting: the CPU twin adds
 * the rows of dout into dwte in (b,t) order, float by float, and so does this one. One CUDA
 * block per token (B*T blocks of OPS_THREADS threads) first asks whether an earlier token has
 * the same id (a block-wide scan of the ids before it); if so it exits, so exactly one block —
 * the id's first occurrence, its leader — owns each dwte row. The leader then scans the ids
 * from itself to the end, OPS_THREADS at a time (a ballot per warp marks the matches), and adds
 * the matching dout rows in index order, each thread owning the channels threadIdx.x,
 * threadIdx.x + OPS_THREADS, ... Padding ids, ids outside [0,V) and non-leaders exit at once.
 * Cost: every block scans at most B*T ids (B*T = 2048 for DistilBERT's batch 16 x 128) from L2,
 * plus one row read-modify-write per token; an id repeated r times serialises r row additions
 * in one block. The position gradient runs one thread per (t, c), summing over b in order, as
 * the CPU twin does. Failures: OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA
 * device, OCTET_ERR_CUDA (logged) when a launch fails; no exits, no host synchronisation. */
#include "config.h"
#include "ops_cuda.h"

/* ------------------------------------------------------------------ CUDA kernels */

/* out[b,t,c] = wte[ids[b,t], c] (0 for an id outside [0,V)) + wpe[t, c] (0 when wpe is NULL). */
static __global__ void embedding_forward_kernel(float *out, const int *ids, const float *wte, const float *wpe,
                                                int T, int C, int V, int64_t BTC)
{
    OPS_GRID_STRIDE(i, BTC) {
        int64_t bt = i / C, c = i % C;
        int id = ids[bt];
        float w = (id >= 0 && id < V) ? wte[(int64_t)id * C + c] : 0.0f;
        float p = wpe ? wpe[(bt % T) * C + c] : 0.0f;
        out[i] = w + p;
    }
}

/* Block bt: when token bt is the first occurrence of a valid id, dwte[id] += dout[j] for every
 * token j >= bt with that id, in j order. blockDim.x == OPS_THREADS. */
static __global__ void embedding_word_grad_kernel(float *dwte, const float *dout, const int *ids, int64_t BT, int C,
                                                  int V, int padding_idx)
{
    __shared__ unsigned match[OPS_WARPS]; /* ballot of the current chunk, per warp */
    int64_t bt = blockIdx.x;
    int id = ids[bt]; /* the same for the whole block, so the exits below are uniform */
    if (id < 0 || id >= V || id == padding_idx)
        return;
    for (int64_t j0 = 0; j0 < bt; j0 += OPS_THREADS) {
        int64_t j = j0 + threadIdx.x;
        if (__syncthreads_or(j < bt && ids[j] == id))
            return; /* an earlier token leads this id */
    }
    float *g = dwte + (int64_t)id * C; /* (C) */
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    for (int64_t j0 = bt; j0 < BT; j0 += OPS_THREADS) {
        int64_t j = j0 + threadIdx.x;
        unsigned bits = __ballot_sync(OPS_FULL_MASK, j < BT && ids[j] == id);
        if (lane == 0)
            match[warp] = bits;
        __syncthreads();
        for (int w = 0; w < OPS_WARPS; w++)
            for (unsigned m = match[w]; m; m &= m - 1) {
                const float *dy = dout + (j0 + w * 32 + (__ffs(m) - 1)) * C; /* (C) */
                for (int c = threadIdx.x; c < C; c += OPS_THREADS)
                    g[c] += dy[c];
            }
        __syncthreads(); /* before match[] is overwritten */
    }
}

/* dwpe[t,c] += sum over b of dout[b,t,c], added in b order; one thread per (t, c). */
static __global__ void embedding_position_grad_kernel(float *dwpe, const float *dout, int B, int T, int C)
{
    int64_t TC = (int64_t)T * C;
    OPS_GRID_STRIDE(i, TC) {
        float g = dwpe[i];
        for (int b = 0; b < B; b++)
            g += dout[b * TC + i];
        dwpe[i] = g;
    }
}

/* ------------------------------------------------------------------ kernel launchers */

static int embedding_forward_launch(float *out, const int *ids, const float *wte, const float *wpe, int B, int T,
                                    int C, int V, cudaStream_t st)
{
    int rc = OCTET_OK;
    int64_t BTC = (int64_t)B * T * C;
    embedding_forward_kernel<<<ops_grid(BTC, OPS_THREADS), OPS_THREADS, 0, st>>>(out, ids, wte, wpe, T, C, V, BTC);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int embedding_word_grad_launch(float *dwte, const float *dout, const int *ids, int64_t BT, int C, int V,
                                      int padding_idx, cudaStream_t st)
{
    int rc = OCTET_OK;
    if (BT > 0x7fffffffLL) { /* one block per token: far beyond any batch */
        rc = OCTET_ERR_ARG;
        goto out;
    }
    embedding_word_grad_kernel<<<(unsigned)BT, OPS_THREADS, 0, st>>>(dwte, dout, ids, BT, C, V, padding_idx);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int embedding_position_grad_launch(float *dwpe, const float *dout, int B, int T, int C, cudaStream_t st)
{
    int rc = OCTET_OK;
    embedding_position_grad_kernel<<<ops_grid((int64_t)T * C, OPS_THREADS), OPS_THREADS, 0, st>>>(dwpe, dout, B, T,
                                                                                                  C);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int embedding_forward_cuda(device *d, float *out, const int *ids, const float *wte, const float *wpe,
                           int B, int T, int C, int V)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK4(B, T, C, V) || !out || !ids || !wte || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return embedding_forward_launch(out, ids, wte, wpe, B, T, C, V, st);
}

int embedding_backward_cuda(device *d, float *dwte, float *dwpe, const float *dout, const int *ids,
                            int B, int T, int C, int V, int padding_idx)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK4(B, T, C, V) || !dout || (dwte && !ids) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    int rc = OCTET_OK;
    if (dwte)
        rc = embedding_word_grad_launch(dwte, dout, ids, (int64_t)B * T, C, V, padding_idx, st);
    if (rc == OCTET_OK && dwpe)
        rc = embedding_position_grad_launch(dwpe, dout, B, T, C, st);
    return rc;
}
