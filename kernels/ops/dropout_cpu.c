/* dropout_cpu.c: the CPU twin of dropout, forward and backward.
 *
 * No mask is stored: element i's factor (0 or 1/(1-p)) is a pure function of (seed, offset, i)
 * through the counter-based generator of ops_math.h, so the backward pass, any thread split and
 * the CUDA twin all draw the same mask. p = 0 is the identity (evaluation). */
#include "config.h"
#include "ops_cpu.h"
#include "threads.h"
#include "ops_math.h"

#include <string.h>

/* Elements per OpenMP work item: a multiple of 4, so every chunk but the last is whole Philox
 * lane groups. The mask is a function of the element index alone, so the split does not matter. */
#define DROP_CHUNK 4096

/* dropout_run, compiled once per ISA (OPS_CPU_CLONES): the Philox rounds vectorise across lane
 * groups, 16 per AVX-512 vector. */
OPS_CPU_CLONES static void drop_run(float *y, const float *x, int64_t n, ops_dropout drop, float scale,
                                    uint64_t idx0)
{
    dropout_run(y, x, n, drop.p, scale, drop.seed, drop.offset, idx0);
}

/* y = x * factor(i) for the mask of `drop`; y may alias x. */
static void apply_mask(float *y, const float *x, int64_t N, ops_dropout drop)
{
    if (drop.p <= 0.0f) {
        if (y != x)
            memcpy(y, x, sizeof(float) * (size_t)N);
        return;
    }
    float scale = dropout_scale(drop.p);
    int64_t chunks = (N + DROP_CHUNK - 1) / DROP_CHUNK;
#pragma omp parallel for schedule(static) if (OCTET_PAR(N))
    for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * DROP_CHUNK, n = N - i0 < DROP_CHUNK ? N - i0 : DROP_CHUNK;
        drop_run(y + i0, x + i0, n, drop, scale, (uint64_t)i0);
    }
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
