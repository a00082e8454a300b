/* quant.c: the device-independent side of stand-alone block-wise quantization (quant.h):
 * argument checks, the map on the device, and the call into the CPU or CUDA twin. */
#include "config.h"
#include "quant.h"
#include "optim.h"
#include "optim_impl.h"
#include "qmap.h"

int quant_check_block(int block, octet_err *e) { return optim_block_size_check(block, "block_size", e); }

int64_t quant_nblocks(int64_t n, int block) { return (n + block - 1) / block; }

/* Puts the map on the device; returns NULL on allocation failure. */
static float *map_on_device(device *d, int is_signed)
{
    float host[QMAP_SIZE];
    qmap_build(host, is_signed);
    float *dev = device_alloc(d, sizeof host, MEM_WORKSPACE);
    if (dev && device_upload(d, dev, host, sizeof host) != OCTET_OK) {
        device_free(d, dev);
        return NULL;
    }
    return dev;
}

int quant_blockwise(device *d, const float *x, int64_t n, int block, int is_signed, uint8_t *codes, float *absmax,
                    octet_err *e)
{
    int rc = quant_check_block(block, e);
    if (rc)
        return rc;
    if (n <= 0)
        return octet_fail(e, OCTET_ERR_ARG, "n", "must be > 0");
    float *map = map_on_device(d, is_signed);
    if (!map)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "could not place the map on %s", device_name(d));
    rc = optim_kernels_for(d)->quantize(x, n, block, map, is_signed, codes, absmax, device_stream(d));
    if (rc == OCTET_OK)
        rc = device_sync(d);
    device_free(d, map);
    return rc;
}

int dequant_blockwise(device *d, const uint8_t *codes, int64_t n, int block, int is_signed, const float *absmax,
                      float *x, octet_err *e)
{
    int rc = quant_check_block(block, e);
    if (rc)
        return rc;
    if (n <= 0)
        return octet_fail(e, OCTET_ERR_ARG, "n", "must be > 0");
    float *map = map_on_device(d, is_signed);
    if (!map)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "could not place the map on %s", device_name(d));
    rc = optim_kernels_for(d)->dequantize(codes, n, block, map, absmax, x, device_stream(d));
    if (rc == OCTET_OK)
        rc = device_sync(d);
    device_free(d, map);
    return rc;
}
