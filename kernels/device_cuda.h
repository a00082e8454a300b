/* device_cuda.h: the CUDA backend of device.c (implemented in device_cuda.cu, built only
 * with CUDA). Only device.c includes this. */
#ifndef OCTET_DEVICE_CUDA_H
#define OCTET_DEVICE_CUDA_H

#include <stddef.h>
#include "device.h"

OCTET_EXTERN_C_BEGIN

/* 1 when device `index` exists and answers; else 0 with the CUDA error string in `why`. */
int device_cuda_probe(int index, char *why, size_t whylen);
/* Selects the device, creates its stream and cuBLAS handle. */
int device_cuda_open(int index, void **ctx, char *why, size_t whylen);
const device_backend *device_cuda_backend(void);
/* cudaSetDevice(index of ctx) for the calling thread; OCTET_ERR_CUDA (logged) on failure. */
int device_cuda_bind(void *ctx);
/* cudaMemGetInfo of device `index` without opening it: the calling thread's current device is
 * switched for the call and restored. OCTET_ERR_CUDA (the error string in `why`) on failure. */
int device_cuda_mem_info(int index, size_t *free_bytes, size_t *total_bytes, char *why, size_t whylen);
void *device_cuda_stream(void *ctx);
void *device_cuda_blas(void *ctx);

OCTET_EXTERN_C_END
#endif
