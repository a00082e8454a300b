/* dropout_cpu.c: the CPU twin of dropout, forward and backward.
 *
 * No mask is stored: element i's factor (0 or 1/(1-p)) is a pure function of (seed, offset, i)
 * through the counter-based generator of ops_math.h, so the backward pass, any thread split and
 * the CUDA twin all draw the same mask. p = 0 is the identity (evaluation). */
#include "config.h"
#include "ops_cpu.h"
#include "ops_math.h"

#include <string.h>

/* y = x * factor(i) for the mask of `drop`; y may alias x. */
static void apply_mask(float *y, const float *x, int64_t N, ops_dropout drop)
{
    if (drop.p <= 0.0f) {
        if (y != x)
            memcpy(y, x, sizeof(float) * (size_t)N);
        return;
    }
    float scale = dropout_scale(drop.p);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N; i++)
        y[i] = x[i] * dropout_factor_one(drop.p, scale, drop.seed, drop.offset, (uint64_t)i);
}

int dropout_forward_cpu(device *d, float *out, const float *inp, int64_t N, ops_dropout drop)
{
    (void)d;
    if (N <= 0 || !out || !inp || !ops_p_ok(drop.p))
        return OCTET_ERR_ARG;
    apply_mask(out, inp, N, drop);
    return OCTET_OK;
}

int dropout_backward_cpu(device *d, float *dinp, const float *dout, int64_t N, ops_dropout drop)
{
    (void)d;
    if (N <= 0 || !dinp || !dout || !ops_p_ok(drop.p))
        return OCTET_ERR_ARG;
    apply_mask(dinp, dout, N, drop);
    return OCTET_OK;
}
