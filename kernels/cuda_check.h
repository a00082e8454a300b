/* cuda_check.h: the check macros every CUDA and cuBLAS call goes through (.cu files only).
 *
 * CUDA_TRY(stmt) logs file:line, the statement and the CUDA error string, sets `rc` to
 * OCTET_ERR_CUDA and jumps to `out`; the enclosing function must declare `int rc` and an `out:`
 * label. Every <<<>>> launch is followed by CUDA_TRY(cudaGetLastError()). CUBLAS_TRY does the
 * same for cuBLAS status codes. */
#ifndef OCTET_CUDA_CHECK_H
#define OCTET_CUDA_CHECK_H

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include "log.h"
#include "status.h"

#define CUDA_TRY(stmt)                                                                      \
    do {                                                                                    \
        cudaError_t e_ = (stmt);                                                            \
        if (e_ != cudaSuccess) {                                                            \
            octet_log(OCTET_LOG_ERR, "cuda", "%s:%d %s: %s -> %s", __FILE__, __LINE__,      \
                      __func__, #stmt, cudaGetErrorString(e_));                             \
            rc = OCTET_ERR_CUDA;                                                            \
            goto out;                                                                       \
        }                                                                                   \
    } while (0)

#define CUBLAS_TRY(stmt)                                                                    \
    do {                                                                                    \
        cublasStatus_t s_ = (stmt);                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                  \
            octet_log(OCTET_LOG_ERR, "cublas", "%s:%d %s: %s -> %s", __FILE__, __LINE__,    \
                      __func__, #stmt, cublasGetStatusString(s_));                          \
            rc = OCTET_ERR_CUDA;                                                            \
            goto out;                                                                       \
        }                                                                                   \
    } while (0)

#endif
