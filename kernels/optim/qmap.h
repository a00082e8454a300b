/* qmap.h: the dynamic quantization maps of 8-bit optimizers (bitsandbytes'
 * create_dynamic_map, reference/8bit-adam.md §1), built at run time.
 *
 * The signed map (for Adam's first moment) holds 0, +1.0 and 127 magnitudes per sign in seven
 * decades 1e-6..1; -1.0 is not representable (index 0 is -0.99296874). The unsigned map (for the
 * second moment) gives each decade twice the levels. Both are sorted ascending, 256 float32
 * entries, and match the reference's Appendix A within 1 ulp (the scalar-linspace build). */
#ifndef OCTET_QMAP_H
#define OCTET_QMAP_H

#include "hd.h"

OCTET_EXTERN_C_BEGIN

#define QMAP_SIZE 256
#define QMAP_SIGNED_PAD 128    /* bnb pads tail elements of state 1 with this code (+5.5e-7) */

/* Fills out[256] with the signed (is_signed=1) or unsigned dynamic map for 8 total bits and 7
 * exponent bits. Never fails. */
void qmap_build(float *out, int is_signed);

OCTET_EXTERN_C_END
#endif
