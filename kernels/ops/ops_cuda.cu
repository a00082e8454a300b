/* ops_cuda.cu: the CUDA twin's ops_table, gathering the *_cuda entry points of this folder
 * (matmul_cuda.cu, act_cuda.cu, norm_cuda.cu, embed_cuda.cu, attention_cuda.cu,
 * dropout_cuda.cu, loss_cuda.cu, gradnorm_cuda.cu, cast_cuda.cu), in the order of ops.h, as
 * ops_cpu.c does for the CPU twin. ops_for() (ops.c) returns it for a CUDA device in builds with OCTET_OPS_CUDA.
 *
 * Every entry has the CPU twin's signature and argument checks, runs on the device's stream
 * (device_stream; cuBLAS through device_blas, bound to that stream), never touches the default
 * stream, never copies between host and device and never synchronises — except sumsq, whose
 * contract returns a host double. Besides the CPU twin's OCTET_ERR_ARG cases, every entry also
 * returns OCTET_ERR_ARG when given a device that is not a CUDA device, and OCTET_ERR_CUDA
 * (logged with file:line) when a launch or a cuBLAS call fails. Asynchronous faults surface at
 * the next synchronising call (a download, device_sync, sumsq). */
#include "config.h"
#include "ops_cuda.h"

static const ops_table cuda_table = {
    "cuda",
    gemm_cuda,
    matmul_forward_cuda,
    matmul_backward_cuda,
    add_forward_cuda,
    relu_forward_cuda,
    relu_backward_cuda,
    gelu_forward_cuda,
    gelu_backward_cuda,
    bias_gelu_forward_cuda,
    layernorm_forward_cuda,
    layernorm_backward_cuda,
    embedding_forward_cuda,
    embedding_backward_cuda,
    softmax_forward_cuda,
    softmax_backward_cuda,
    attention_forward_cuda,
    attention_backward_cuda,
    dropout_forward_cuda,
    dropout_backward_cuda,
    token_select_forward_cuda,
    token_select_backward_cuda,
    crossentropy_forward_cuda,
    crossentropy_backward_cuda,
    mse_forward_cuda,
    mse_backward_cuda,
    sumsq_cuda,
    scale_cuda,
    to_half_cuda,
    from_half_cuda,
};

const ops_table *ops_table_cuda(void) { return &cuda_table; }
