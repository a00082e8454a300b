/* qmap.c: construction of the dynamic maps (see qmap.h).
 *
 * bitsandbytes builds the maps with torch.linspace in float32 and a multiply by a Python float.
 * We reproduce PyTorch's scalar linspace path: step = (end - start) / (steps - 1) in float,
 * start + step*i for the first half and end - step*(steps-1-i) for the second, all in float.
 * The SIMD path of some PyTorch builds differs by 1 ulp in a few entries; tests allow 1 ulp. */
#include "qmap.h"

#include <math.h>
#include <stdlib.h>

/* PyTorch's scalar linspace(start, end, steps) in float32. */
static void linspace_f32(float *out, float start, float end, int steps)
{
    float step = (end - start) / (float)(steps - 1);
    int halfway = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - 1 - i);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void qmap_build(float *out, int is_signed)
{
    const int max_exponent_bits = 7, total_bits = 8;
    /* 7 fraction bits for both maps: the unsigned map reuses the sign bit by doubling each
     * decade's levels (the +1 below), not by a wider non_sign_bits (bnb 0.36-0.41's bug). */
    const int non_sign_bits = total_bits - 1;
    const int additional_items = (1 << (non_sign_bits - max_exponent_bits)) - 1;
    float bounds[257];
    int n = 0;
    for (int i = 0; i < max_exponent_bits; i++) {
        int fraction_items = is_signed ? (1 << (i + non_sign_bits - max_exponent_bits)) + 1
                                       : (1 << (i + non_sign_bits - max_exponent_bits + 1)) + 1;
        linspace_f32(bounds, 0.1f, 1.0f, fraction_items);
        float scale = (float)pow(10.0, (double)(-(max_exponent_bits - 1) + i));
        for (int k = 0; k + 1 < fraction_items; k++) {
            float mean = (bounds[k] + bounds[k + 1]) / 2.0f;
            out[n++] = scale * mean;
            if (is_signed)
                out[n++] = -(scale * mean);
        }
    }
    (void)additional_items; /* 0 for the default 8/7 map: that branch of bnb adds nothing */
    out[n++] = 0.0f;
    out[n++] = 1.0f;
    while (n < QMAP_SIZE)
        out[n++] = 0.0f;
    qsort(out, QMAP_SIZE, sizeof *out, cmp_float);
}
