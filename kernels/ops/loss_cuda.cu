/* loss_cuda.cu: the CUDA twin of loss_cpu.c — cross-entropy from logits with integer labels
 * (torch.nn.CrossEntropyLoss, mean reduction, labels outside [0,C) ignored like torch's
 * ignore_index -100) with per-sample losses and the argmax prediction, and mean squared error.
 *
 * Classification heads have a handful of classes, so a sample is one thread's work: it runs the
 * CPU twin's row loops verbatim (max, exp-sum in double, log; the argmax by ops_math.h's
 * sequential scan, first index on ties, NaN winning as in torch.argmax), which makes pred
 * identical to the CPU twin's even with NaN logits, and losses differ only where CUDA's
 * expf/log round differently from glibc's.
 * The forward pass also needs the mean over samples (mse too): one CUDA block of OPS_THREADS
 * threads takes samples b = tid, tid + OPS_THREADS, ... and the per-thread double sums and counts
 * are combined by a fixed shared-memory tree, so the result is deterministic (it differs from
 * the CPU twin's row-order double sum only by double rounding). The loss stays in device memory:
 * no host synchronisation. The cross-entropy backward runs one thread per sample over a grid;
 * every CUDA block first counts the valid labels itself (a block-wide scan of B ints), so no
 * second launch or scratch is needed. A vocabulary-sized C would want a warp per row instead.
 * Failures: OCTET_ERR_ARG for the CPU twin's argument errors or a non-CUDA device,
 * OCTET_ERR_CUDA (logged) when a launch fails; no exits. */
#include "config.h"
#include "ops_cuda.h"
#include "ops_math.h"

/* ------------------------------------------------------------------ per-row helpers (as loss_cpu.c) */

/* max and log-sum-exp of one row of logits (C). */
__device__ static float row_logsumexp(const float *x, int C)
{
    float mx = x[0];
    for (int c = 1; c < C; c++)
        mx = x[c] > mx ? x[c] : mx;
    double s = 0.0;
    for (int c = 0; c < C; c++)
        s += expf(x[c] - mx);
    return mx + (float)log(s);
}

/* Adds the OPS_THREADS values of sum[] and cnt[] into element 0 by a fixed tree; every thread
 * of the block calls it (it synchronises). */
__device__ static void block_tree_sum(double *sum, int *cnt)
{
    __syncthreads();
    for (int half = OPS_THREADS / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) {
            sum[threadIdx.x] += sum[threadIdx.x + half];
            cnt[threadIdx.x] += cnt[threadIdx.x + half];
        }
        __syncthreads();
    }
}

/* ------------------------------------------------------------------ CUDA kernels */

/* One block of OPS_THREADS threads; thread tid handles samples tid, tid + OPS_THREADS, ... */
static __global__ void __launch_bounds__(OPS_THREADS)
    crossentropy_forward_kernel(float *losses, float *loss, int *pred, const float *logits, const int *labels,
                                int B, int C)
{
    __shared__ double sum[OPS_THREADS];
    __shared__ int cnt[OPS_THREADS];
    double s = 0.0;
    int n = 0;
    for (int b = threadIdx.x; b < B; b += OPS_THREADS) {
        const float *x = logits + (int64_t)b * C; /* (C) */
        if (pred)
            pred[b] = ops_argmax_row(x, C);
        if (!labels)
            continue;
        int y = labels[b];
        float l = 0.0f;
        if (y >= 0 && y < C) {
            l = row_logsumexp(x, C) - x[y];
            s += l;
            n++;
        }
        if (losses)
            losses[b] = l;
    }
    sum[threadIdx.x] = s;
    cnt[threadIdx.x] = n;
    block_tree_sum(sum, cnt);
    if (threadIdx.x == 0 && loss)
        loss[0] = cnt[0] ? (float)(sum[0] / cnt[0]) : 0.0f;
}

/* One thread per sample b: dlogits[b] = dloss * (softmax - onehot) / n_counted, 0 rows for
 * ignored samples. Each block counts the valid labels of all B samples first. */
static __global__ void __launch_bounds__(OPS_THREADS)
    crossentropy_backward_kernel(float *dlogits, const float *logits, const int *labels, int B, int C, float dloss)
{
    int counted = 0;
    for (int b0 = 0; b0 < B; b0 += OPS_THREADS) {
        int b = b0 + threadIdx.x;
        counted += __syncthreads_count(b < B && labels[b] >= 0 && labels[b] < C);
    }
    float g = counted ? dloss / (float)counted : 0.0f; /* gradient of each counted sample's loss */
    for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < B; b += (int64_t)gridDim.x * blockDim.x) {
        const float *x = logits + b * C; /* (C) */
        float *dx = dlogits + b * C;     /* (C) */
        int y = labels[b];
        float lse = row_logsumexp(x, C);
        if (y < 0 || y >= C) { /* 0 x the softmax: 0, or NaN where the row is not finite, as torch */
            for (int c = 0; c < C; c++)
                dx[c] = 0.0f * expf(x[c] - lse);
            continue;
        }
        for (int c = 0; c < C; c++)
            dx[c] = g * (expf(x[c] - lse) - (c == y ? 1.0f : 0.0f));
    }
}

/* One block: losses[b] = (pred[b] - target[b])^2, loss[0] = their mean (double sum). */
static __global__ void __launch_bounds__(OPS_THREADS)
    mse_forward_kernel(float *losses, float *loss, const float *pred, const float *target, int B)
{
    __shared__ double sum[OPS_THREADS];
    __shared__ int cnt[OPS_THREADS];
    double s = 0.0;
    for (int b = threadIdx.x; b < B; b += OPS_THREADS) {
        float e = pred[b] - target[b];
        if (losses)
            losses[b] = e * e;
        s += (double)e * e;
    }
    sum[threadIdx.x] = s;
    cnt[threadIdx.x] = 0;
    block_tree_sum(sum, cnt);
    if (threadIdx.x == 0 && loss)
        loss[0] = (float)(sum[0] / B);
}

static __global__ void mse_backward_kernel(float *dpred, const float *pred, const float *target, int B, float g)
{
    for (int64_t b = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; b < B; b += (int64_t)gridDim.x * blockDim.x)
        dpred[b] = g * (pred[b] - target[b]);
}

/* ------------------------------------------------------------------ kernel launchers */

static int crossentropy_forward_launch(float *losses, float *loss, int *pred, const float *logits, const int *labels,
                                       int B, int C, cudaStream_t st)
{
    int rc = OCTET_OK;
    crossentropy_forward_kernel<<<1, OPS_THREADS, 0, st>>>(losses, loss, pred, logits, labels, B, C);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int crossentropy_backward_launch(float *dlogits, const float *logits, const int *labels, int B, int C,
                                        float dloss, cudaStream_t st)
{
    int rc = OCTET_OK;
    crossentropy_backward_kernel<<<ops_grid(B, OPS_THREADS), OPS_THREADS, 0, st>>>(dlogits, logits, labels, B, C,
                                                                                   dloss);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int mse_forward_launch(float *losses, float *loss, const float *pred, const float *target, int B,
                              cudaStream_t st)
{
    int rc = OCTET_OK;
    mse_forward_kernel<<<1, OPS_THREADS, 0, st>>>(losses, loss, pred, target, B);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

static int mse_backward_launch(float *dpred, const float *pred, const float *target, int B, float g, cudaStream_t st)
{
    int rc = OCTET_OK;
    mse_backward_kernel<<<ops_grid(B, OPS_THREADS), OPS_THREADS, 0, st>>>(dpred, pred, target, B, g);
    CUDA_TRY(cudaGetLastError());
out:
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int crossentropy_forward_cuda(device *d, float *losses, float *loss, int *pred, const float *logits,
                              const int *labels, int B, int C)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK2(B, C) || !logits || ((losses || loss) && !labels) || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return crossentropy_forward_launch(losses, loss, pred, logits, labels, B, C, st);
}

int crossentropy_backward_cuda(device *d, float *dlogits, const float *logits, const int *labels, int B,
                               int C, float dloss)
{
    cudaStream_t st;
    if (!OPS_DIMS_OK2(B, C) || !dlogits || !logits || !labels || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return crossentropy_backward_launch(dlogits, logits, labels, B, C, dloss, st);
}

int mse_forward_cuda(device *d, float *losses, float *loss, const float *pred, const float *target, int B)
{
    cudaStream_t st;
    if (B <= 0 || !pred || !target || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    return mse_forward_launch(losses, loss, pred, target, B, st);
}

int mse_backward_cuda(device *d, float *dpred, const float *pred, const float *target, int B, float dloss)
{
    cudaStream_t st;
    if (B <= 0 || !dpred || !pred || !target || !ops_cuda_stream(d, &st))
        return OCTET_ERR_ARG;
    float g = 2.0f * dloss / (float)B;
    return mse_backward_launch(dpred, pred, target, B, g, st);
}
