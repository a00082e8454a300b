/* ops_cpu.c: the CPU twin's ops_table, gathering the *_cpu entry points of this folder
 * (matmul_cpu.c, act_cpu.c, norm_cpu.c, embed_cpu.c, attention_cpu.c, dropout_cpu.c,
 * loss_cpu.c, gradnorm_cpu.c, cast_cpu.c). The order of the initialisers is the order of ops.h. */
#include "config.h"
#include "ops_cpu.h"

static const ops_table cpu_table = {
    "cpu",
    gemm_cpu,
    matmul_forward_cpu,
    matmul_backward_cpu,
    add_forward_cpu,
    relu_forward_cpu,
    relu_backward_cpu,
    gelu_forward_cpu,
    gelu_backward_cpu,
    bias_gelu_forward_cpu,
    layernorm_forward_cpu,
    layernorm_backward_cpu,
    embedding_forward_cpu,
    embedding_backward_cpu,
    softmax_forward_cpu,
    softmax_backward_cpu,
    attention_forward_cpu,
    attention_backward_cpu,
    dropout_forward_cpu,
    dropout_backward_cpu,
    token_select_forward_cpu,
    token_select_backward_cpu,
    crossentropy_forward_cpu,
    crossentropy_backward_cpu,
    mse_forward_cpu,
    mse_backward_cpu,
    sumsq_cpu,
    scale_cpu,
    to_half_cpu,
    from_half_cpu,
};

const ops_table *ops_table_cpu(void) { return &cpu_table; }
