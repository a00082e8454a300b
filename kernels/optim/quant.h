/* quant.h: stand-alone block-wise quantization of a float buffer with the dynamic maps, as
 * bitsandbytes' quantize_blockwise / dequantize_blockwise (nearest rounding, no sign fix).
 *
 * The buffer is cut into blocks of `block` elements (optim_block_size_ok in optim.h; the last
 * block may be partial); each block stores one fp32 absmax and one uint8 code per element.
 * Buffers live on the device `d`. Returns OCTET_OK or OCTET_ERR_ARG (bad block size, with a
 * message naming "block_size") or the backend's error. */
#ifndef OCTET_QUANT_H
#define OCTET_QUANT_H

#include <stdint.h>
#include "device.h"
#include "hd.h"
#include "status.h"

OCTET_EXTERN_C_BEGIN

int quant_check_block(int block, octet_err *e);
int64_t quant_nblocks(int64_t n, int block);
/* codes: (n) uint8, absmax: (quant_nblocks(n, block)) fp32 */
int quant_blockwise(device *d, const float *x, int64_t n, int block, int is_signed, uint8_t *codes,
                    float *absmax, octet_err *e);
int dequant_blockwise(device *d, const uint8_t *codes, int64_t n, int block, int is_signed,
                      const float *absmax, float *x, octet_err *e);

OCTET_EXTERN_C_END
#endif
