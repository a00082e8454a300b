/* optim_cuda.cu: the CUDA twin of every optimizer rule and of block-wise (de)quantization.
 *
 * It mirrors optim_cpu.c operation for operation, through the same OCTET_HD helpers of
 * optim_math.h and quant_math.h, and is built with --fmad=false and IEEE division and square
 * root, so both twins produce the same bits: identical 8-bit codes and absmax, and identical
 * fp32 states and parameters. Each launch list runs as one grid over all units of all its
 * tensors (no per-tensor launch, no host synchronisation): every CUDA block finds its tensor by
 * a binary search over the prefix sums of the list (first_unit, or the Adafactor plan below)
 * and copies that descriptor and its group's scalars into shared memory.
 *
 *  - adam8: one CUDA block per quantization block of B elements (B = 64..4096), min(B, 256)
 *    threads with B/threads elements each, maps in shared memory, block max-reduction of the
 *    new absmax (exact, so the order does not matter), bnb's tail padding included; codes of
 *    the moments normalised by the reciprocal of the new absmax (quant_math.h's rule, as the
 *    CPU twin).
 *  - adam32, sgd: one CUDA block of 256 threads per OPTIM_CHUNK elements.
 *  - adafactor: six launches per step over all Adafactor tensors (plan, statistics, scale and
 *    row means, update sums, clipping, apply). Every sum runs in the CPU twin's order, in
 *    double: a lane sums one row or one ADAFACTOR_SUM_CHUNK chunk sequentially (loads staged
 *    through a shared tile so they are coalesced), a lane sums one column over the rows in
 *    ascending order (its block prefetching tiles of 128 rows x 32 columns), and one thread per
 *    tensor adds the chunk partials, another the row statistics, in index order. Scratch lives
 *    in L->workspace (layout in af_layout; sized by adafactor_workspace_floats()).
 *
 * Every function returns OCTET_OK, OCTET_ERR_CUDA (a launch failed; logged with file:line by
 * CUDA_TRY) or OCTET_ERR_ARG (a list or workspace the host side should never have built).
 * Nothing here exits or synchronises the host. */
#include "config.h"
#include "optim_impl.h"
#include "quant_math.h"
#include "qmap.h"
#include "cuda_check.h"

#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define FULL_MASK 0xffffffffu
#define MAX_THREADS 256                      /* threads of every kernel's CUDA block */
#define FP32_PER_THREAD (OPTIM_CHUNK / MAX_THREADS)
#define AF_WARPS (MAX_THREADS / 32)
#define AF_SEGS (AF_WARPS * 32)              /* rows or chunks per CUDA block of the segment sums */
#define AF_PER_THREAD 4
#define AF_ELEMS (MAX_THREADS * AF_PER_THREAD) /* elements per CUDA block of element-wise passes */
#define AF_PLAN_ARRAYS 5
#define AF_COL_ROWS 128                      /* rows per shared tile of the column sums */
#define AF_COL_PER_THREAD (AF_COL_ROWS * 32 / MAX_THREADS)
static_assert(AF_COL_ROWS <= AF_WARPS * 32 && AF_COL_ROWS % (MAX_THREADS / 32) == 0,
              "the column tile must fit the statistics kernel's shared tile");
static_assert(OPTIM_CHUNK % MAX_THREADS == 0, "fp32 units are whole multiples of the block");

__host__ __device__ static inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ================================================================== common device helpers */

/* What a CUDA block works on: its tensor's descriptor, its group's scalars, the tensor's index
 * in the list and the block's index within the tensor. Lives in shared memory. */
typedef struct block_ctx {
    optim_tensor_desc d;
    optim_group_scalars s;
    int t;
    int64_t local;
} block_ctx;

/* The last tensor t with T[t].first_unit <= u (the table is sorted by first_unit). */
__device__ static int unit_owner(const optim_tensor_desc *T, int n, int64_t u)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (T[mid].first_unit <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The last t in [0, n) with first[t] <= blk (first: n + 1 ascending prefix sums). */
__device__ static int plan_owner(const int64_t *first, int n, int64_t blk)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (first[mid] <= blk)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Context of a block whose blockIdx.x is a unit of the list (8-bit blocks, fp32 chunks): thread
 * 0 finds the tensor and fills c; the whole block waits. */
__device__ static void ctx_of_unit(block_ctx *c, const optim_tensor_desc *T, int n, const optim_group_scalars *G)
{
    if (threadIdx.x == 0) {
        int t = unit_owner(T, n, blockIdx.x);
        c->d = T[t];
        c->s = G[c->d.group];
        c->t = t;
        c->local = (int64_t)blockIdx.x - c->d.first_unit;
    }
    __syncthreads();
}

/* Context of a block whose blockIdx.x is numbered by the prefix sums `first` (Adafactor). */
__device__ static void ctx_of_plan(block_ctx *c, const optim_tensor_desc *T, int n, const optim_group_scalars *G,
                                   const int64_t *first)
{
    if (threadIdx.x == 0) {
        int t = plan_owner(first, n, blockIdx.x);
        c->d = T[t];
        c->s = G[c->d.group];
        c->t = t;
        c->local = (int64_t)blockIdx.x - first[t];
    }
    __syncthreads();
}

/* Copies a 256-entry map into shared memory (the caller synchronises before use). */
__device__ static void map_to_shared(float *dst, const float *src)
{
    for (int k = threadIdx.x; k < QMAP_SIZE; k += blockDim.x)
        dst[k] = src[k];
}

/* The maximum of x over the CUDA block (blockDim.x a multiple of 32, at most 256), returned to
 * every thread. fmaxf is exact and ignores NaN, so the order of the reduction cannot change
 * the result. red: 32 floats of shared scratch, not reused by the caller. */
__device__ static float block_max(float x, float *red)
{
    for (int off = 16; off > 0; off >>= 1)
        x = fmaxf(x, __shfl_xor_sync(FULL_MASK, x, off));
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x / 32] = x;
    __syncthreads();
    float r = red[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++)
        r = fmaxf(r, red[w]);
    return r;
}

/* ================================================================== 8-bit Adam */

/* One quantization block of B = E * blockDim.x elements per CUDA block; thread t owns elements
 * t + k * blockDim.x (k < E). Mirrors adam8_block() of optim_cpu.c. */
template <int E>
static __global__ void __launch_bounds__(MAX_THREADS)
    adam8_kernel(const optim_tensor_desc *T, int n_tensors, const optim_group_scalars *G, const float *qmap1,
                 const float *qmap2, int B)
{
    __shared__ float q1[QMAP_SIZE], q2[QMAP_SIZE];
    __shared__ float red1[32], red2[32];
    __shared__ block_ctx c;
    map_to_shared(q1, qmap1);
    map_to_shared(q2, qmap2);
    ctx_of_unit(&c, T, n_tensors, G); /* also makes the maps visible */
    const optim_tensor_desc *d = &c.d;
    const optim_group_scalars *s = &c.s;
    int64_t b = c.local, start = b * B;
    int valid = d->n - start < B ? (int)(d->n - start) : B;
    float a1 = d->absmax1[b], a2 = d->absmax2[b];
    /* per block, as the CPU twin (optim_math.h's adam8_m_one / adam8_v_one) */
    const float ab1 = adam8_block_beta(a1, s->beta1), ab2 = adam8_block_beta(a2, s->beta2);
    float g[E], m[E], v[E]; /* (E) this thread's gradients and fresh fp32 moments */
    float max1 = -FLT_MAX, max2 = -FLT_MAX;
#pragma unroll
    for (int k = 0; k < E; k++) {
        int j = threadIdx.x + k * blockDim.x;
        int64_t i = start + j;
        g[k] = j < valid ? d->g[i] : 0.0f;
        uint8_t c1 = j < valid ? d->code1[i] : (uint8_t)QMAP_SIGNED_PAD;
        uint8_t c2 = j < valid ? d->code2[i] : (uint8_t)0;
        if (optim_is_finite(g[k])) {
            v[k] = adam8_v_one(q2[c2], ab2, g[k], s->beta2);
            m[k] = adam8_m_one(q1[c1], ab1, g[k], s->beta1);
        } else {
            m[k] = 0.0f;
            v[k] = 0.0f;
        }
        max1 = fmaxf(max1, fabsf(m[k]));
        max2 = fmaxf(max2, fabsf(v[k]));
    }
    /* block_max synchronises, so every thread has read the old absmax before thread 0 writes. */
    max1 = block_max(max1, red1);
    max2 = block_max(max2, red2);
    if (threadIdx.x == 0) {
        d->absmax1[b] = max1;
        d->absmax2[b] = max2;
    }
    const float r1 = quant_inv_absmax(max1), r2 = quant_inv_absmax(max2); /* as the CPU twin */
#pragma unroll
    for (int k = 0; k < E; k++) {
        int j = threadIdx.x + k * blockDim.x;
        if (j >= valid)
            continue;
        int64_t i = start + j;
        if (optim_is_finite(g[k]))
            d->p[i] = adam_bnb_param_one(d->p[i], m[k], v[k], s);
        d->code1[i] = quant_signed_state_one(q1, m[k], max1, r1);
        d->code2[i] = quant_unsigned_state_one(q2, v[k], max2, r2);
    }
}

/* Threads per CUDA block for quantization blocks of B elements (optim_block_size_ok(B)); the
 * launches below take up to 16 elements per thread. */
static int qblock_threads(int B) { return B < MAX_THREADS ? B : MAX_THREADS; }
static_assert(OPTIM_BLOCK_MAX / MAX_THREADS <= 16 && OPTIM_BLOCK_MIN <= MAX_THREADS,
              "the ADAM8_CASE / QUANT_CASE switches cover 1..16 elements per thread");

/* Fails with OCTET_ERR_ARG when a list's grid does not fit one launch (never for real models:
 * it takes 2^31 units). */
static int grid_of(int64_t units, const char *what, unsigned *grid)
{
    if (units <= 0 || units > INT_MAX) {
        octet_log(OCTET_LOG_ERR, "optim", "%s: %lld units do not fit one CUDA grid", what, (long long)units);
        return OCTET_ERR_ARG;
    }
    *grid = (unsigned)units;
    return OCTET_OK;
}

static int adam8_launch(const optim_launch *L)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)L->stream;
    int B = L->block_size, threads = qblock_threads(B);
    unsigned grid;
    if ((rc = grid_of(L->n_units, "adam8", &grid)))
        return rc;
#define ADAM8_CASE(E)                                                                                     \
    case E:                                                                                               \
        adam8_kernel<E><<<grid, threads, 0, st>>>(L->tensors, L->n_tensors, L->groups, L->qmap1, L->qmap2, B); \
        break
    switch (B / threads) {
        ADAM8_CASE(1);
        ADAM8_CASE(2);
        ADAM8_CASE(4);
        ADAM8_CASE(8);
        ADAM8_CASE(16);
    default:
        octet_log(OCTET_LOG_ERR, "optim", "adam8: block size %d is not a power of two in %d..%d", B,
                  OPTIM_BLOCK_MIN, OPTIM_BLOCK_MAX);
        return OCTET_ERR_ARG;
    }
#undef ADAM8_CASE
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ================================================================== fp32 Adam, SGD */

/* One OPTIM_CHUNK of a tensor per CUDA block; thread t owns elements t + k * 256.
 * TORCH: torch.optim.AdamW's order, else bitsandbytes' 32-bit path (NaN/Inf reset). */
template <int TORCH>
static __global__ void __launch_bounds__(MAX_THREADS)
    adam32_kernel(const optim_tensor_desc *T, int n_tensors, const optim_group_scalars *G)
{
    __shared__ block_ctx c;
    ctx_of_unit(&c, T, n_tensors, G);
    const optim_tensor_desc *d = &c.d;
    int64_t start = c.local * OPTIM_CHUNK;
    for (int k = 0; k < FP32_PER_THREAD; k++) {
        int64_t i = start + threadIdx.x + k * MAX_THREADS;
        if (i >= d->n)
            break;
        float p = d->p[i], m = d->m[i], v = d->v[i];
        if (TORCH)
            adam_torch_one(&p, d->g[i], &m, &v, &c.s);
        else
            adam_bnb32_one(&p, d->g[i], &m, &v, &c.s);
        d->p[i] = p;
        d->m[i] = m;
        d->v[i] = v;
    }
}

static int adam32_launch(const optim_launch *L, int torch_order)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)L->stream;
    unsigned grid;
    if ((rc = grid_of(L->n_units, "adam32", &grid)))
        return rc;
    if (torch_order)
        adam32_kernel<1><<<grid, MAX_THREADS, 0, st>>>(L->tensors, L->n_tensors, L->groups);
    else
        adam32_kernel<0><<<grid, MAX_THREADS, 0, st>>>(L->tensors, L->n_tensors, L->groups);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* One OPTIM_CHUNK per CUDA block; the momentum buffer is d->m, NULL without momentum. */
static __global__ void __launch_bounds__(MAX_THREADS)
    sgd_kernel(const optim_tensor_desc *T, int n_tensors, const optim_group_scalars *G)
{
    __shared__ block_ctx c;
    ctx_of_unit(&c, T, n_tensors, G);
    const optim_tensor_desc *d = &c.d;
    int64_t start = c.local * OPTIM_CHUNK;
    for (int k = 0; k < FP32_PER_THREAD; k++) {
        int64_t i = start + threadIdx.x + k * MAX_THREADS;
        if (i >= d->n)
            break;
        float p = d->p[i], buf = d->m ? d->m[i] : 0.0f;
        sgd_one(&p, d->g[i], &buf, &c.s);
        d->p[i] = p;
        if (d->m)
            d->m[i] = buf;
    }
}

static int sgd_launch(const optim_launch *L)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)L->stream;
    unsigned grid;
    if ((rc = grid_of(L->n_units, "sgd", &grid)))
        return rc;
    sgd_kernel<<<grid, MAX_THREADS, 0, st>>>(L->tensors, L->n_tensors, L->groups);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ================================================================== Adafactor */

/* Where the Adafactor pieces live in L->workspace, for a list of W tensors (8-byte words):
 *   chunk_first  (W+1) int64  prefix of ADAFACTOR_SUM_CHUNK chunks: index into `partial`
 *   batch_first  (W+1) int64  prefix of batches: index into `r_mean`
 *   stats_first, usum_first, apply_first  (W+1) int64 each: prefix of CUDA blocks per kernel
 *   scale        (W, 2) float  alpha and clip divisor of each tensor
 *   r_mean       (total batches) float  mean of each batch's new row statistics
 *   partial      (total chunks) double  per-chunk sums of p^2, later of u^2
 * The prefix arrays are written on the device by adafactor_plan_kernel every step, so the host
 * needs no copy; the host computes only the totals (grid sizes) from L->host_tensors. */
typedef struct af_layout {
    int64_t *chunk_first, *batch_first, *stats_first, *usum_first, *apply_first;
    float *scale;
    float *r_mean;
    double *partial;
} af_layout;

typedef struct af_totals {
    int64_t chunks, batches, stats_blocks, usum_blocks, apply_blocks;
} af_totals;

__host__ __device__ static int64_t af_chunks(const optim_tensor_desc *d)
{
    return ceil_div64(d->n, ADAFACTOR_SUM_CHUNK);
}

/* CUDA blocks of the statistics kernel for one tensor: p^2 chunk sums first, then (factored)
 * row sums and column sums (32 columns of one batch per block), or (unfactored) the
 * element-wise update of v. */
__host__ __device__ static int64_t af_stats_blocks(const optim_tensor_desc *d)
{
    int64_t blocks = ceil_div64(af_chunks(d), AF_SEGS);
    if (d->factored)
        return blocks + ceil_div64(d->batch * d->rows, AF_SEGS) + d->batch * ceil_div64(d->cols, 32);
    return blocks + ceil_div64(d->n, AF_ELEMS);
}

__host__ __device__ static int64_t af_usum_blocks(const optim_tensor_desc *d)
{
    return ceil_div64(af_chunks(d), AF_SEGS);
}

__host__ __device__ static int64_t af_apply_blocks(const optim_tensor_desc *d) { return ceil_div64(d->n, AF_ELEMS); }

/* Writes the prefix arrays of the layout (one thread; W is the number of tensors). */
static __global__ void adafactor_plan_kernel(const optim_tensor_desc *T, int W, af_layout ws)
{
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
    int64_t chunks = 0, batches = 0, stats = 0, usum = 0, apply = 0;
    for (int t = 0; t <= W; t++) {
        ws.chunk_first[t] = chunks;
        ws.batch_first[t] = batches;
        ws.stats_first[t] = stats;
        ws.usum_first[t] = usum;
        ws.apply_first[t] = apply;
        if (t == W)
            break;
        chunks += af_chunks(&T[t]);
        batches += T[t].batch;
        stats += af_stats_blocks(&T[t]);
        usum += af_usum_blocks(&T[t]);
        apply += af_apply_blocks(&T[t]);
    }
}

/* The unclipped update of element i (statistics already updated); adafactor_u() of the CPU
 * twin. r_mean: (batch) row means of this tensor. */
__device__ static float af_update(const optim_tensor_desc *d, const float *r_mean, int64_t i)
{
    if (!d->factored)
        return adafactor_unfactored_u_one(d->g[i], d->v[i]);
    int64_t RC = d->rows * d->cols;
    int64_t b = i / RC, r = (i % RC) / d->cols, c = i % d->cols;
    return adafactor_factored_u_one(d->g[i], d->row[b * d->rows + r], r_mean[b], d->col[b * d->cols + c]);
}

/* What a segment sum adds up: p^2 over chunks, (g^2 + eps1) over rows, u^2 over chunks. */
enum { SEG_PARAM_SQ = 0, SEG_ROW_SQ = 1, SEG_UPDATE_SQ = 2 };

template <int K>
__device__ static float seg_value(const optim_tensor_desc *d, const optim_group_scalars *s, const float *r_mean,
                                  int64_t i)
{
    if (K == SEG_PARAM_SQ)
        return d->p[i];
    if (K == SEG_ROW_SQ)
        return adafactor_sq_one(d->g[i], s);
    return af_update(d, r_mean, i);
}

/* The double term the CPU adds for a value: x*x for the RMS sums, x itself for row sums. */
template <int K> __device__ static double seg_term(float x)
{
    return K == SEG_ROW_SQ ? (double)x : (double)x * (double)x;
}

/* Sequential double sums over this warp's 32 segments: lane l owns segment seg0 + l of nseg,
 * segment k being elements [k*len, min((k+1)*len, n)), summed in element order exactly as the
 * CPU's loops. The warp stages 32 x 32 values at a time in `tile` so that each load reads 32
 * consecutive floats; padding adds +0.0, which leaves a sum of non-negative terms unchanged.
 * Returns each lane's sum (0 for a lane without a segment). All 32 lanes must call it. */
template <int K>
__device__ static double warp_segment_sums(const optim_tensor_desc *d, const optim_group_scalars *s,
                                           const float *r_mean, int64_t seg0, int64_t nseg, int64_t len,
                                           float (*tile)[33])
{
    int lane = threadIdx.x & 31;
    double acc = 0.0;
    if (seg0 >= nseg)
        return acc; /* uniform over the warp */
    for (int64_t k0 = 0; k0 < len; k0 += 32) {
        int64_t off = k0 + lane;
        for (int j = 0; j < 32; j++) {
            int64_t seg = seg0 + j, i = seg * len + off;
            tile[j][lane] = (seg < nseg && off < len && i < d->n) ? seg_value<K>(d, s, r_mean, i) : 0.0f;
        }
        __syncwarp();
        for (int q = 0; q < 32; q++)
            acc += seg_term<K>(tile[lane][q]);
        __syncwarp();
    }
    return acc;
}

/* Statistics-kernel pieces; `blk` is the block's index within its piece. */

/* Partial sums of p^2 over ADAFACTOR_SUM_CHUNK chunks into partial[chunk]. */
__device__ static void af_param_sums(const optim_tensor_desc *d, const optim_group_scalars *s, int64_t blk,
                                     double *partial, float (*tile)[32][33])
{
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int64_t seg0 = blk * AF_SEGS + warp * 32, nseg = af_chunks(d);
    double acc = warp_segment_sums<SEG_PARAM_SQ>(d, s, NULL, seg0, nseg, ADAFACTOR_SUM_CHUNK, tile[warp]);
    if (seg0 + lane < nseg)
        partial[seg0 + lane] = acc;
}

/* New row statistics: EMA of each row's mean of g^2 + eps1 (rows of all batches in order). */
__device__ static void af_row_stats(const optim_tensor_desc *d, const optim_group_scalars *s, int64_t blk,
                                    float (*tile)[32][33])
{
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int64_t seg0 = blk * AF_SEGS + warp * 32, nrows = d->batch * d->rows;
    double acc = warp_segment_sums<SEG_ROW_SQ>(d, s, NULL, seg0, nrows, d->cols, tile[warp]);
    int64_t r = seg0 + lane;
    if (r < nrows)
        d->row[r] = adafactor_ema_one(d->row[r], (float)(acc / (double)d->cols), s);
}

/* Loads this thread's share of rows [r0, r0 + AF_COL_ROWS) x columns [c0, c0 + 32) of one batch
 * of g as g^2 + eps1 into x (0 outside the matrix). Thread t takes column t % 32 of rows
 * t / 32 + 8k, so each warp reads 32 consecutive floats per row. */
__device__ static void af_col_fetch(const optim_tensor_desc *d, const optim_group_scalars *s, const float *g,
                                    int64_t r0, int64_t c0, float *x)
{
    int64_t c = c0 + (threadIdx.x & 31);
#pragma unroll
    for (int k = 0; k < AF_COL_PER_THREAD; k++) {
        int64_t r = r0 + threadIdx.x / 32 + k * (MAX_THREADS / 32);
        x[k] = (r < d->rows && c < d->cols) ? adafactor_sq_one(g[r * d->cols + c], s) : 0.0f;
    }
}

/* New column statistics of 32 columns of one batch: lane j of warp 0 sums column c0 + j over
 * the rows in ascending order, as the CPU twin; the whole block fetches the next tile of rows
 * into registers while warp 0 adds the current one from shared memory. All threads call it. */
__device__ static void af_col_stats(const optim_tensor_desc *d, const optim_group_scalars *s, int64_t blk,
                                    float (*tile)[33])
{
    int64_t groups = ceil_div64(d->cols, 32), b = blk / groups, c0 = (blk % groups) * 32;
    const float *g = d->g + b * d->rows * d->cols;
    int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    float x[AF_COL_PER_THREAD]; /* this thread's share of the next tile */
    double acc = 0.0;
    af_col_fetch(d, s, g, 0, c0, x);
    for (int64_t r0 = 0; r0 < d->rows; r0 += AF_COL_ROWS) {
#pragma unroll
        for (int k = 0; k < AF_COL_PER_THREAD; k++)
            tile[warp + k * (MAX_THREADS / 32)][lane] = x[k];
        __syncthreads();
        if (r0 + AF_COL_ROWS < d->rows)
            af_col_fetch(d, s, g, r0 + AF_COL_ROWS, c0, x);
        if (warp == 0) {
            int rows = d->rows - r0 < AF_COL_ROWS ? (int)(d->rows - r0) : AF_COL_ROWS;
            for (int r = 0; r < rows; r++)
                acc += (double)tile[r][lane];
        }
        __syncthreads();
    }
    int64_t q = b * d->cols + c0 + lane;
    if (warp == 0 && c0 + lane < d->cols)
        d->col[q] = adafactor_ema_one(d->col[q], (float)(acc / (double)d->rows), s);
}

/* Unfactored second moment, element-wise. */
__device__ static void af_v_stats(const optim_tensor_desc *d, const optim_group_scalars *s, int64_t blk)
{
    for (int k = 0; k < AF_PER_THREAD; k++) {
        int64_t i = blk * AF_ELEMS + k * MAX_THREADS + threadIdx.x;
        if (i < d->n)
            d->v[i] = adafactor_ema_one(d->v[i], adafactor_sq_one(d->g[i], s), s);
    }
}

/* Launch 2: the p^2 chunk sums (when the group scales by RMS(p)) and the new statistics. */
static __global__ void __launch_bounds__(MAX_THREADS, 2)
    adafactor_stats_kernel(const optim_tensor_desc *T, int W, const optim_group_scalars *G, af_layout ws)
{
    __shared__ block_ctx c;
    __shared__ float tile[AF_WARPS][32][33]; /* also viewed as [AF_COL_ROWS][33] by the column sums */
    ctx_of_plan(&c, T, W, G, ws.stats_first);
    const optim_tensor_desc *d = &c.d;
    const optim_group_scalars *s = &c.s;
    int64_t blk = c.local, param_blocks = ceil_div64(af_chunks(d), AF_SEGS);
    if (blk < param_blocks) {
        if (s->af_scale_parameter)
            af_param_sums(d, s, blk, ws.partial + ws.chunk_first[c.t], tile);
        return;
    }
    blk -= param_blocks;
    if (!d->factored) {
        af_v_stats(d, s, blk);
        return;
    }
    int64_t row_blocks = ceil_div64(d->batch * d->rows, AF_SEGS);
    if (blk < row_blocks)
        af_row_stats(d, s, blk, tile);
    else
        af_col_stats(d, s, blk - row_blocks, (float (*)[33])tile);
}

/* Sum of x[0..n) in index order, computed by thread 0 (the CPU twin's order); the block stages
 * MAX_THREADS values at a time in `tile` so that the loads are coalesced. The result is
 * meaningful in thread 0 only. All threads must call it. */
template <typename V> __device__ static double block_sequential_sum(const V *x, int64_t n, double *tile)
{
    double acc = 0.0;
    for (int64_t k0 = 0; k0 < n; k0 += MAX_THREADS) {
        int64_t i = k0 + threadIdx.x;
        tile[threadIdx.x] = i < n ? (double)x[i] : 0.0;
        __syncthreads();
        if (threadIdx.x == 0) {
            int m = n - k0 < MAX_THREADS ? (int)(n - k0) : MAX_THREADS;
#pragma unroll 8
            for (int q = 0; q < m; q++)
                acc += tile[q];
        }
        __syncthreads();
    }
    return acc;
}

/* Launch 3, two CUDA blocks per tensor: block t computes tensor t's alpha from RMS(p), block
 * W + t the mean of each batch's new row statistics of tensor t (factored tensors only). */
static __global__ void __launch_bounds__(MAX_THREADS)
    adafactor_scale_kernel(const optim_tensor_desc *T, int W, const optim_group_scalars *G, af_layout ws)
{
    __shared__ double tile[MAX_THREADS];
    int t = blockIdx.x < (unsigned)W ? (int)blockIdx.x : (int)blockIdx.x - W;
    const optim_tensor_desc *d = &T[t];
    const optim_group_scalars *s = &G[d->group];
    if (blockIdx.x >= (unsigned)W) {
        for (int64_t b = 0; d->factored && b < d->batch; b++) {
            double rsum = block_sequential_sum(d->row + b * d->rows, d->rows, tile);
            if (threadIdx.x == 0)
                ws.r_mean[ws.batch_first[t] + b] = (float)(rsum / (double)d->rows);
        }
        return;
    }
    float alpha = s->af_rho;
    if (s->af_scale_parameter) {
        double sum = block_sequential_sum(ws.partial + ws.chunk_first[t], af_chunks(d), tile);
        double rms_x = sqrt(sum / (double)d->n);
        alpha = (float)((double)s->af_rho * fmax((double)s->af_eps2, rms_x));
    }
    if (threadIdx.x == 0)
        ws.scale[2 * t] = alpha;
}

/* Launch 4: partial sums of u^2 over ADAFACTOR_SUM_CHUNK chunks. */
static __global__ void __launch_bounds__(MAX_THREADS)
    adafactor_usum_kernel(const optim_tensor_desc *T, int W, const optim_group_scalars *G, af_layout ws)
{
    __shared__ block_ctx c;
    __shared__ float tile[AF_WARPS][32][33];
    ctx_of_plan(&c, T, W, G, ws.usum_first);
    const optim_tensor_desc *d = &c.d;
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int64_t seg0 = c.local * AF_SEGS + warp * 32, nseg = af_chunks(d);
    const float *r_mean = ws.r_mean + ws.batch_first[c.t];
    double acc = warp_segment_sums<SEG_UPDATE_SQ>(d, &c.s, r_mean, seg0, nseg, ADAFACTOR_SUM_CHUNK, tile[warp]);
    if (seg0 + lane < nseg)
        ws.partial[ws.chunk_first[c.t] + seg0 + lane] = acc;
}

/* Launch 5, one CUDA block per tensor: the clipping divisor max(1, RMS(u) / clip_threshold). */
static __global__ void __launch_bounds__(MAX_THREADS)
    adafactor_clip_kernel(const optim_tensor_desc *T, const optim_group_scalars *G, af_layout ws)
{
    __shared__ double tile[MAX_THREADS];
    int t = blockIdx.x;
    const optim_tensor_desc *d = &T[t];
    const optim_group_scalars *s = &G[d->group];
    double sum = block_sequential_sum(ws.partial + ws.chunk_first[t], af_chunks(d), tile);
    if (threadIdx.x == 0) {
        double rms_u = sqrt(sum / (double)d->n);
        ws.scale[2 * t + 1] = (float)fmax(1.0, rms_u / (double)s->af_clip);
    }
}

/* Launch 6: p (and the momentum m, when beta1 is used) from the update, element-wise. */
static __global__ void __launch_bounds__(MAX_THREADS)
    adafactor_apply_kernel(const optim_tensor_desc *T, int W, const optim_group_scalars *G, af_layout ws)
{
    __shared__ block_ctx c;
    ctx_of_plan(&c, T, W, G, ws.apply_first);
    const optim_tensor_desc *d = &c.d;
    float alpha = ws.scale[2 * c.t], clip_div = ws.scale[2 * c.t + 1];
    const float *r_mean = ws.r_mean + ws.batch_first[c.t];
    for (int k = 0; k < AF_PER_THREAD; k++) {
        int64_t i = c.local * AF_ELEMS + k * MAX_THREADS + threadIdx.x;
        if (i >= d->n)
            break;
        float m = d->m ? d->m[i] : 0.0f;
        d->p[i] = adafactor_apply_one(d->p[i], af_update(d, r_mean, i), clip_div, alpha, &m, &c.s);
        if (d->m)
            d->m[i] = m;
    }
}

/* Sums the grid sizes over the host copy of the list. */
static void af_count(const optim_tensor_desc *H, int W, af_totals *tot)
{
    memset(tot, 0, sizeof *tot);
    for (int t = 0; t < W; t++) {
        tot->chunks += af_chunks(&H[t]);
        tot->batches += H[t].batch;
        tot->stats_blocks += af_stats_blocks(&H[t]);
        tot->usum_blocks += af_usum_blocks(&H[t]);
        tot->apply_blocks += af_apply_blocks(&H[t]);
    }
}

/* Carves the layout out of L->workspace; fails with OCTET_ERR_ARG when it is too small (the
 * host sized it with adafactor_workspace_floats(), so this is a broken invariant). */
static int af_place(const optim_launch *L, const af_totals *tot, af_layout *ws)
{
    int64_t W = L->n_tensors;
    int64_t words = AF_PLAN_ARRAYS * (W + 1) + W + (tot->batches + 1) / 2 + tot->chunks;
    if (!L->workspace || 2 * words > L->workspace_floats) {
        octet_log(OCTET_LOG_ERR, "optim", "adafactor: workspace of %lld floats, %lld needed",
                  (long long)L->workspace_floats, (long long)(2 * words));
        return OCTET_ERR_ARG;
    }
    int64_t *w = (int64_t *)L->workspace; /* cudaMalloc'd: 8-byte aligned */
    ws->chunk_first = w;
    ws->batch_first = w + (W + 1);
    ws->stats_first = w + 2 * (W + 1);
    ws->usum_first = w + 3 * (W + 1);
    ws->apply_first = w + 4 * (W + 1);
    w += AF_PLAN_ARRAYS * (W + 1);
    ws->scale = (float *)w;
    w += W;
    ws->r_mean = (float *)w;
    w += (tot->batches + 1) / 2;
    ws->partial = (double *)w;
    return OCTET_OK;
}

static int adafactor_launch(const optim_launch *L)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)L->stream;
    int W = L->n_tensors;
    af_totals tot;
    af_layout ws;
    unsigned g_stats, g_usum, g_apply, g_tensors, g_scale;
    af_count(L->host_tensors, W, &tot);
    if ((rc = af_place(L, &tot, &ws)) || (rc = grid_of(tot.stats_blocks, "adafactor stats", &g_stats)) ||
        (rc = grid_of(tot.usum_blocks, "adafactor usum", &g_usum)) ||
        (rc = grid_of(tot.apply_blocks, "adafactor apply", &g_apply)) || (rc = grid_of(W, "adafactor", &g_tensors)) ||
        (rc = grid_of(2 * (int64_t)W, "adafactor scale", &g_scale)))
        return rc;
    adafactor_plan_kernel<<<1, 32, 0, st>>>(L->tensors, W, ws);
    CUDA_TRY(cudaGetLastError());
    adafactor_stats_kernel<<<g_stats, MAX_THREADS, 0, st>>>(L->tensors, W, L->groups, ws);
    CUDA_TRY(cudaGetLastError());
    adafactor_scale_kernel<<<g_scale, MAX_THREADS, 0, st>>>(L->tensors, W, L->groups, ws);
    CUDA_TRY(cudaGetLastError());
    adafactor_usum_kernel<<<g_usum, MAX_THREADS, 0, st>>>(L->tensors, W, L->groups, ws);
    CUDA_TRY(cudaGetLastError());
    adafactor_clip_kernel<<<g_tensors, MAX_THREADS, 0, st>>>(L->tensors, L->groups, ws);
    CUDA_TRY(cudaGetLastError());
    adafactor_apply_kernel<<<g_apply, MAX_THREADS, 0, st>>>(L->tensors, W, L->groups, ws);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ================================================================== stand-alone quantizer */

/* One quantization block of B = E * blockDim.x elements per CUDA block: absmax over the valid
 * elements (from 0, as the CPU twin), then nearest codes without the sign fix. */
template <int E>
static __global__ void __launch_bounds__(MAX_THREADS)
    quantize_kernel(const float *x, int64_t n, int B, const float *code, int is_signed, uint8_t *codes,
                    float *absmax)
{
    __shared__ float q[QMAP_SIZE];
    __shared__ float red[32];
    map_to_shared(q, code);
    int64_t b = blockIdx.x, start = b * B;
    int valid = n - start < B ? (int)(n - start) : B;
    float xs[E]; /* (E) this thread's values */
    float a = 0.0f;
#pragma unroll
    for (int k = 0; k < E; k++) {
        int j = threadIdx.x + k * blockDim.x;
        xs[k] = j < valid ? x[start + j] : 0.0f;
        if (j < valid)
            a = fmaxf(a, fabsf(xs[k]));
    }
    a = block_max(a, red); /* synchronises: the map is visible from here on */
    if (threadIdx.x == 0)
        absmax[b] = a;
    const float r = quant_inv_absmax(a);
#pragma unroll
    for (int k = 0; k < E; k++) {
        int j = threadIdx.x + k * blockDim.x;
        if (j < valid)
            codes[start + j] = quant_plain_one(q, xs[k], a, r, is_signed);
    }
}

static int quantize_launch(const float *x, int64_t n, int block, const float *code, int is_signed, uint8_t *codes,
                           float *absmax, void *stream)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)stream;
    int threads = qblock_threads(block);
    unsigned grid;
    if ((rc = grid_of(ceil_div64(n, block), "quantize", &grid)))
        return rc;
#define QUANT_CASE(E)                                                                                  \
    case E:                                                                                            \
        quantize_kernel<E><<<grid, threads, 0, st>>>(x, n, block, code, is_signed, codes, absmax);     \
        break
    switch (block / threads) {
        QUANT_CASE(1);
        QUANT_CASE(2);
        QUANT_CASE(4);
        QUANT_CASE(8);
        QUANT_CASE(16);
    default:
        octet_log(OCTET_LOG_ERR, "optim", "quantize: block size %d is not a power of two in %d..%d", block,
                  OPTIM_BLOCK_MIN, OPTIM_BLOCK_MAX);
        return OCTET_ERR_ARG;
    }
#undef QUANT_CASE
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* x[i] = code[codes[i]] * absmax[i / B], grid-stride. */
static __global__ void __launch_bounds__(MAX_THREADS)
    dequantize_kernel(const uint8_t *codes, int64_t n, int B, const float *code, const float *absmax, float *x)
{
    __shared__ float q[QMAP_SIZE];
    map_to_shared(q, code);
    __syncthreads();
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        x[i] = quant_dequant_one(q, codes[i], absmax[i / B]);
}

static int dequantize_launch(const uint8_t *codes, int64_t n, int block, const float *code, const float *absmax,
                             float *x, void *stream)
{
    int rc = OCTET_OK;
    cudaStream_t st = (cudaStream_t)stream;
    if (n <= 0 || block <= 0)
        return OCTET_ERR_ARG;
    int64_t blocks = ceil_div64(n, MAX_THREADS);
    unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
    dequantize_kernel<<<grid, MAX_THREADS, 0, st>>>(codes, n, block, code, absmax, x);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ================================================================== the twin table */

static const optim_kernels cuda_kernels = {
    "cuda", adam8_launch, adam32_launch, sgd_launch, adafactor_launch, quantize_launch, dequantize_launch,
};

extern "C" const optim_kernels *optim_kernels_cuda(void) { return &cuda_kernels; }
