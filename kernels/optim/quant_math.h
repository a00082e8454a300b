/* quant_math.h: per-element block-wise quantization, shared by the CPU and CUDA twins.
 *
 * quant_nearest_one() is bitsandbytes' quantize_2D: a 7-step binary search over the sorted
 * 256-entry map (pivot 127, steps 64..1) and a final midpoint test against the last bracketing
 * pivots; exact ties stay on the pivot the search landed on. NaN lands on index 0, which is why
 * callers guard zero absmax before dividing. Only + - * / and comparisons are used, so the
 * CPU (-ffp-contract=off) and CUDA (--fmad=false) builds agree bit for bit. */
#ifndef OCTET_QUANT_MATH_H
#define OCTET_QUANT_MATH_H

#include <math.h>
#include <stdint.h>
#include "hd.h"

/* Nearest code index for x (already divided by its block's absmax). */
OCTET_HD uint8_t quant_nearest_one(const float *code, float x, int is_signed)
{
    int pivot = 127, upper_pivot = 255, lower_pivot = 0;
    float lower = is_signed ? -1.0f : 0.0f, upper = 1.0f;
    float val = code[127];
    for (int i = 64; i > 0; i >>= 1) {
        if (x > val) {
            lower_pivot = pivot;
            lower = val;
            pivot += i;
        } else {
            upper_pivot = pivot;
            upper = val;
            pivot -= i;
        }
        val = code[pivot];
    }
    if (x > val) {
        float midpoint = (upper + val) * 0.5f;
        return (uint8_t)(x > midpoint ? upper_pivot : pivot);
    }
    float midpoint = (lower + val) * 0.5f;
    return (uint8_t)(x < midpoint ? lower_pivot : pivot);
}

/* Code of a signed state value s in a block whose absmax is a, with bitsandbytes' sign fix: if
 * the chosen code's sign bit differs from s's, move one step toward s's sign, so a small
 * negative moment never rounds to +0. A zero absmax (all-zero block) gives the code of 0.0
 * instead of bnb's NaN search; both dequantize to exactly 0. */
OCTET_HD uint8_t quant_signed_state_one(const float *code, float s, float a)
{
    if (a == 0.0f)
        return 127;
    uint8_t q = quant_nearest_one(code, s / a, 1);
    if ((signbit(code[q]) != 0) != (signbit(s) != 0))
        q = (uint8_t)(s > 0.0f ? q + 1 : q - 1);
    return q;
}

/* Code of a non-negative state value s in a block whose absmax is a (unsigned map). */
OCTET_HD uint8_t quant_unsigned_state_one(const float *code, float s, float a)
{
    if (a == 0.0f)
        return 0;
    return quant_nearest_one(code, s / a, 0);
}

/* Stand-alone quantizer (no sign fix), as bnb's quantize_blockwise. */
OCTET_HD uint8_t quant_plain_one(const float *code, float x, float a, int is_signed)
{
    if (a == 0.0f)
        return (uint8_t)(is_signed ? 127 : 0);
    return quant_nearest_one(code, x / a, is_signed);
}

OCTET_HD float quant_dequant_one(const float *code, uint8_t q, float a)
{
    return code[q] * a;
}

#endif
