/* gradnorm_cpu.c: the CPU twin's sum of squares over many buffers, the reduction behind
 * gradient clipping by global norm (ops_clip_grad_norm in ops.c).
 *
 * Deterministic whatever the thread count: each buffer is cut into GN_PARTS parts whose bounds
 * depend only on its length, each part is summed in double in index order, and the parts and
 * then the buffers are added in order. No allocation: the part sums live on the stack. */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"

#define GN_PARTS 64 /* parts per buffer */

static double buffer_sumsq(const float *x, int64_t n)
{
    double part[GN_PARTS];
#pragma omp parallel for schedule(static) if (OCTET_PAR(n))
    for (int p = 0; p < GN_PARTS; p++) {
        int64_t i0 = n * p / GN_PARTS, i1 = n * (p + 1) / GN_PARTS;
        double s = 0.0;
        for (int64_t i = i0; i < i1; i++)
            s += (double)x[i] * x[i];
        part[p] = s;
    }
    double s = 0.0;
    for (int p = 0; p < GN_PARTS; p++)
        s += part[p];
    return s;
}

int sumsq_cpu(device *d, double *out, const float *const *bufs, const int64_t *n, int count)
{
    (void)d;
    if (!out || count < 0 || (count > 0 && (!bufs || !n)))
        return OCTET_ERR_ARG;
    double s = 0.0;
    for (int i = 0; i < count; i++)
        if (n[i] > 0 && bufs[i])
            s += buffer_sumsq(bufs[i], n[i]);
    *out = s;
    return OCTET_OK;
}
