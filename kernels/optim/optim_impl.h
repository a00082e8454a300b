/* optim_impl.h: what optim.c hands to the CPU and CUDA twins (internal to kernels/optim).
 *
 * optim.c sorts the tensors into launch lists by update rule (8-bit Adam, fp32 Adam, SGD,
 * Adafactor) and describes each list with a table of optim_tensor_desc in the device's memory.
 * A list is cut into "units" — one quantization block for 8-bit Adam, OPTIM_CHUNK elements for
 * the fp32 rules — numbered across all tensors of the list (first_unit is the prefix sum), so a
 * twin can process the whole list in one pass: the CPU loops over units, the CUDA twin launches
 * one grid over all of them (one launch per list per step, not one per tensor). */
#ifndef OCTET_OPTIM_IMPL_H
#define OCTET_OPTIM_IMPL_H

#include <stdint.h>
#include "hd.h"
#include "optim.h"
#include "optim_math.h"

OCTET_EXTERN_C_BEGIN

#define OPTIM_CHUNK 2048          /* elements per unit of the fp32 rules */
#define ADAFACTOR_SUM_CHUNK 1024  /* fixed summation blocks, so both twins sum in one order */

typedef struct optim_tensor_desc {
    float *p;                  /* (n) parameter */
    const float *g;            /* (n) gradient */
    uint8_t *code1, *code2;    /* (n) 8-bit m, v */
    float *absmax1, *absmax2;  /* (nblocks) */
    float *m, *v;              /* (n) fp32 states (Adam m/v, SGD buffer in m, Adafactor v and momentum m) */
    float *row, *col;          /* Adafactor: (batch, rows), (batch, cols) */
    int64_t n;
    int64_t batch, rows, cols; /* Adafactor factored view of the shape (..., rows, cols) */
    int64_t first_unit;        /* index of this tensor's first unit within its list */
    int64_t n_units;
    int group;                 /* index into the group-scalar table (0 = base group) */
    int factored;              /* Adafactor */
} optim_tensor_desc;

typedef struct optim_launch {
    const optim_tensor_desc *tensors;     /* table in the device's memory */
    const optim_tensor_desc *host_tensors;/* the same table on the host */
    int n_tensors;
    int64_t n_units;                      /* total units of the list */
    const optim_group_scalars *groups;    /* per-group scalars in the device's memory */
    const optim_group_scalars *host_groups;
    const float *qmap1, *qmap2;           /* signed and unsigned maps, device memory */
    int block_size;                       /* 8-bit quantization block */
    float *workspace;                     /* scratch in device memory (Adafactor) */
    int64_t workspace_floats;
    void *stream;                         /* cudaStream_t on CUDA */
} optim_launch;

/* The twin table: same signatures on both backends. Each returns OCTET_OK or a status. */
typedef struct optim_kernels {
    const char *name;
    int (*adam8)(const optim_launch *L);
    int (*adam32)(const optim_launch *L, int torch_order); /* torch_order: AdamW, else bnb 32-bit */
    int (*sgd)(const optim_launch *L);
    int (*adafactor)(const optim_launch *L);
    /* Stand-alone block-wise (de)quantization of n values with block `block` (no sign fix). */
    int (*quantize)(const float *x, int64_t n, int block, const float *code, int is_signed,
                    uint8_t *codes, float *absmax, void *stream);
    int (*dequantize)(const uint8_t *codes, int64_t n, int block, const float *code,
                      const float *absmax, float *x, void *stream);
} optim_kernels;

const optim_kernels *optim_kernels_cpu(void);
/* The CPU twin's table-driven nearest-code search; equal to quant_nearest_one() (tested). */
uint8_t optim_cpu_nearest_code(const float *map, float x, int is_signed);
/* Tests: caps the CPU twin's vector paths (the 8-bit step, Adafactor's sums) at one of these
 * (BEST: whatever the CPU has; PORTABLE: the plain loops). */
enum { OPTIM_CPU_PATH_PORTABLE = 0, OPTIM_CPU_PATH_AVX512 = 1, OPTIM_CPU_PATH_VBMI = 2, OPTIM_CPU_PATH_BEST = 99 };
void optim_cpu_force_path(int path);
/* Tests: the codes the CPU twin's 8-bit step stores for the fresh moments m, v (n values) of a
 * block whose new absmax are n1, n2 (the block's values need not be below them), on the path
 * optim_cpu_force_path() allows, with the maps q1 (signed, state 1) and q2 (unsigned). */
void optim_cpu_block_codes(const float *q1, const float *q2, const float *m, const float *v, int n, float n1,
                           float n2, uint8_t *c1, uint8_t *c2);
#ifdef HAVE_CUDA
const optim_kernels *optim_kernels_cuda(void);
#endif
/* The twin that runs on dev: the CUDA table for a CUDA device (in a build with CUDA), else
 * the CPU table. Never NULL. */
const optim_kernels *optim_kernels_for(device *dev);

/* Workspace floats the Adafactor twin needs for a list (per-tensor sums and scales). */
int64_t adafactor_workspace_floats(const optim_tensor_desc *tensors, int n);

OCTET_EXTERN_C_END
#endif
