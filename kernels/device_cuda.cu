/* device_cuda.cu: the CUDA backend table for device.c: cudaMalloc/cudaFree, copies on the
 * device's stream, cudaMemGetInfo as the driver's view, one stream and one cuBLAS handle per
 * opened device. Every call is checked; failures come back as OCTET_ERR_CUDA with the CUDA
 * error string logged, never as an exit. */
#include "config.h"
#include "device_cuda.h"
#include "cuda_check.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct cuda_ctx {
    int index;
    cudaStream_t stream;
    cublasHandle_t blas;
} cuda_ctx;

extern "C" int device_cuda_probe(int index, char *why, size_t whylen)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) snprintf(why, whylen, "no CUDA device: %s", cudaGetErrorString(e));
        return 0;
    }
    if (index >= n) {
        if (why) snprintf(why, whylen, "no CUDA device %d (%d present)", index, n);
        return 0;
    }
    return 1;
}

extern "C" int device_cuda_open(int index, void **out, char *why, size_t whylen)
{
    int rc = OCTET_OK;
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!c) return OCTET_ERR_NOMEM;
    c->index = index;
    CUDA_TRY(cudaSetDevice(index));
    CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_TRY(cublasCreate(&c->blas));
    CUBLAS_TRY(cublasSetStream(c->blas, c->stream));
    *out = c;
    return OCTET_OK;
out:
    if (why) snprintf(why, whylen, "CUDA initialisation failed (see log)");
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
    return rc;
}

static int cuda_alloc(void *ctx, void **p, size_t bytes)
{
    int rc = OCTET_OK;
    cuda_ctx *c = (cuda_ctx *)ctx;
    void *q = NULL;
    cudaError_t e = cudaMalloc(&q, bytes);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        octet_log(OCTET_LOG_ERR, "cuda", "cudaMalloc of %zu bytes failed: %s (free %zu of %zu)",
                  bytes, cudaGetErrorString(e), fr, tot);
        cudaGetLastError();
        return OCTET_ERR_NOMEM;
    }
    CUDA_TRY(cudaMemsetAsync(q, 0, bytes, c->stream));
    CUDA_TRY(cudaStreamSynchronize(c->stream));
    *p = q;
    return OCTET_OK;
out:
    cudaFree(q);
    return rc;
}

static void cuda_free(void *ctx, void *p)
{
    (void)ctx;
    cudaFree(p);
}

static int cuda_copy_kind(cuda_ctx *c, void *dst, const void *src, size_t n, cudaMemcpyKind kind)
{
    int rc = OCTET_OK;
    if (!n) return OCTET_OK;
    CUDA_TRY(cudaMemcpyAsync(dst, src, n, kind, c->stream));
    CUDA_TRY(cudaStreamSynchronize(c->stream));
out:
    return rc;
}

static int cuda_upload(void *ctx, void *dst, const void *src, size_t n)
{ return cuda_copy_kind((cuda_ctx *)ctx, dst, src, n, cudaMemcpyHostToDevice); }
static int cuda_download(void *ctx, void *dst, const void *src, size_t n)
{ return cuda_copy_kind((cuda_ctx *)ctx, dst, src, n, cudaMemcpyDeviceToHost); }
static int cuda_copy(void *ctx, void *dst, const void *src, size_t n)
{ return cuda_copy_kind((cuda_ctx *)ctx, dst, src, n, cudaMemcpyDeviceToDevice); }

static int cuda_zero(void *ctx, void *p, size_t n)
{
    int rc = OCTET_OK;
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (!n) return OCTET_OK;
    CUDA_TRY(cudaMemsetAsync(p, 0, n, c->stream));
out:
    return rc;
}

static int cuda_sync(void *ctx)
{
    int rc = OCTET_OK;
    CUDA_TRY(cudaStreamSynchronize(((cuda_ctx *)ctx)->stream));
out:
    return rc;
}

static int cuda_mem_info(void *ctx, size_t *fr, size_t *tot)
{
    int rc = OCTET_OK;
    (void)ctx;
    CUDA_TRY(cudaMemGetInfo(fr, tot));
out:
    return rc;
}

static void cuda_close(void *ctx)
{
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    cublasDestroy(c->blas);
    cudaStreamDestroy(c->stream);
    free(c);
}

static const device_backend cuda_backend = {
    "cuda", cuda_alloc, cuda_free, cuda_upload, cuda_download, cuda_copy, cuda_zero, cuda_sync,
    cuda_mem_info, cuda_close};

extern "C" const device_backend *device_cuda_backend(void) { return &cuda_backend; }

extern "C" int device_cuda_bind(void *ctx)
{
    int rc = OCTET_OK;
    CUDA_TRY(cudaSetDevice(((cuda_ctx *)ctx)->index));
out:
    return rc;
}
extern "C" int device_cuda_mem_info(int index, size_t *fr, size_t *tot, char *why, size_t whylen)
{
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess)
        prev = -1;
    cudaError_t e = cudaSetDevice(index);
    if (e == cudaSuccess)
        e = cudaMemGetInfo(fr, tot);
    if (prev >= 0 && prev != index)
        cudaSetDevice(prev);
    if (e != cudaSuccess) {
        if (why) snprintf(why, whylen, "%s", cudaGetErrorString(e));
        cudaGetLastError();
        return OCTET_ERR_CUDA;
    }
    return OCTET_OK;
}
extern "C" void *device_cuda_stream(void *ctx) { return (void *)((cuda_ctx *)ctx)->stream; }
extern "C" void *device_cuda_blas(void *ctx) { return (void *)((cuda_ctx *)ctx)->blas; }
