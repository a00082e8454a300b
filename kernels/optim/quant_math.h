/* quant_math.h: per-element block-wise quantization, shared by the CPU and CUDA twins.
 *
 * quant_nearest_one() is bitsandbytes' quantize_2D: a 7-step binary search over the sorted
 * 256-entry map (pivot 127, steps 64..1) and a final midpoint test against the last bracketing
 * pivots; exact ties stay on the pivot the search landed on. NaN lands on index 0, which is why
 * callers guard zero absmax before normalising. Only + - * / and comparisons are used, so the
 * CPU (-ffp-contract=off) and CUDA (--fmad=false) builds agree bit for bit.
 *
 * Normalisation by reciprocal: a block's values are normalised as x = s * r with
 * r = quant_inv_absmax(a) = 1.0f / a, one IEEE division per block (every twin and every CPU path
 * computes r the same way and multiplies), not s / a per element. bitsandbytes' stand-alone
 * kQuantizeBlockwise does exactly this (1.0f / absmax once, then a multiply); its optimizer
 * kernel divides with the approximate __fdividef, so exact division was never its semantics.
 * For normal a and r, |s| <= a gives |s * r| <= 1 (checked over every float). One exception
 * keeps tiny blocks exact: when r overflows to +Inf (0 < a < 2^-128, subnormal absmax) the block
 * is normalised by s / a instead (quant_norm_one); a == 0 is the all-zero guard below. An
 * infinite absmax gives r = 0 and a NaN one r = NaN, which normalise as s / a would (0 for
 * finite s, NaN otherwise). */
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

/* The reciprocal of a block's absmax, computed once per block (IEEE division). */
OCTET_HD float quant_inv_absmax(float a)
{
    return 1.0f / a;
}

/* s normalised by its block's absmax a (r = quant_inv_absmax(a)): s * r, or s / a in a block
 * whose reciprocal overflowed (see the file comment). */
OCTET_HD float quant_norm_one(float s, float a, float r)
{
    return isinf(r) ? s / a : s * r;
}

/* Code of a signed state value s in a block whose absmax is a (r = quant_inv_absmax(a)), with
 * bitsandbytes' sign fix: if
 * the chosen code's sign bit differs from s's, move one step toward s's sign, so a small
 * negative moment never rounds to +0. A zero absmax (all-zero block) gives the code of 0.0
 * instead of bnb's NaN search; both dequantize to exactly 0. */
OCTET_HD uint8_t quant_signed_state_one(const float *code, float s, float a, float r)
{
    if (a == 0.0f)
        return 127;
    uint8_t q = quant_nearest_one(code, quant_norm_one(s, a, r), 1);
    if ((signbit(code[q]) != 0) != (signbit(s) != 0))
        q = (uint8_t)(s > 0.0f ? q + 1 : q - 1);
    return q;
}

/* Code of a non-negative state value s in a block whose absmax is a (unsigned map; r as above). */
OCTET_HD uint8_t quant_unsigned_state_one(const float *code, float s, float a, float r)
{
    if (a == 0.0f)
        return 0;
    return quant_nearest_one(code, quant_norm_one(s, a, r), 0);
}

/* Stand-alone quantizer (no sign fix), as bnb's quantize_blockwise, with the same reciprocal
 * normalisation as the optimizer (which is also what bnb's kQuantizeBlockwise does), so that
 * quantize() of a block of moments gives the optimizer's codes up to the sign fix. */
OCTET_HD uint8_t quant_plain_one(const float *code, float x, float a, float r, int is_signed)
{
    if (a == 0.0f)
        return (uint8_t)(is_signed ? 127 : 0);
    return quant_nearest_one(code, quant_norm_one(x, a, r), is_signed);
}

OCTET_HD float quant_dequant_one(const float *code, uint8_t q, float a)
{
    return code[q] * a;
}

#endif
