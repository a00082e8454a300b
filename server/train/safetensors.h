/* safetensors.h: reading and writing checkpoints in the safetensors format (Hugging Face's
 * `model.safetensors`), so octet can fine-tune from a downloaded model directory and save its
 * own weights in a form PyTorch and Transformers load.
 *
 * The format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data section that follows the header) plus an optional "__metadata__" object of string
 * values, then the data section. The reader checks everything a lying or damaged file can
 * get wrong — header length against file size, bad JSON, duplicate names, unknown dtypes,
 * offsets out of bounds or reversed, byte counts that do not match shape x dtype size,
 * overlapping tensors, holes or trailing bytes — and refuses the file with OCTET_ERR_FORMAT
 * and a message naming the file and the tensor. Tensor data is read on demand (pread), so a
 * large checkpoint never sits in memory twice. Reading converts F32, F16, BF16 and F64 to
 * fp32; the other dtypes of the spec open fine (their names and shapes are listed) but
 * cannot be read as floats. The writer emits F32, F16 or BF16 (round-to-nearest-even from
 * fp32) and replaces the destination atomically (temporary file in the same directory,
 * fsync, rename). */
#ifndef OCTET_TRAIN_SAFETENSORS_H
#define OCTET_TRAIN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

/* The dtypes of the safetensors spec. Only F32/F16/BF16/F64 can be read as floats; only
 * F32/F16/BF16 can be written. */
enum octet_st_dtype {
    OCTET_ST_F32 = 0, OCTET_ST_F16, OCTET_ST_BF16, OCTET_ST_F64,
    OCTET_ST_BOOL, OCTET_ST_U8, OCTET_ST_I8, OCTET_ST_I16, OCTET_ST_U16,
    OCTET_ST_I32, OCTET_ST_U32, OCTET_ST_I64, OCTET_ST_U64,
    OCTET_ST_F8_E4M3, OCTET_ST_F8_E5M2,
    OCTET_ST_NDTYPES
};

#define OCTET_ST_MAX_DIMS 8

/* One tensor as the header describes it. */
typedef struct octet_st_tensor {
    const char *name;
    int dtype;                          /* enum octet_st_dtype */
    int ndim;                           /* 0 for a scalar */
    int64_t shape[OCTET_ST_MAX_DIMS];
    uint64_t numel;                     /* product of shape (1 for a scalar) */
    uint64_t begin, end;                /* byte offsets within the data section */
} octet_st_tensor;

typedef struct octet_st_file octet_st_file;

/* "F32", "BF16", … or "?" for an out-of-range value. */
const char *octet_st_dtype_name(int dtype);

/* Opens `path` and validates its header and layout. Fails with OCTET_ERR_IO (cannot open or
 * read), OCTET_ERR_FORMAT (anything malformed; the message names the file and the tensor) or
 * OCTET_ERR_NOMEM; *out is NULL then. */
int octet_st_open(const char *path, octet_st_file **out, octet_err *e);
void octet_st_close(octet_st_file *f);

/* Tensors in header order (the order of data_offsets, i.e. file order). */
size_t octet_st_count(const octet_st_file *f);
const octet_st_tensor *octet_st_at(const octet_st_file *f, size_t i);
/* NULL when no tensor has that name. */
const octet_st_tensor *octet_st_find(const octet_st_file *f, const char *name);
/* A `__metadata__` value, or NULL when absent. */
const char *octet_st_metadata(const octet_st_file *f, const char *key);

/* Reads tensor `name` converted to fp32 into dst, which holds `n` floats; n must equal the
 * tensor's numel. Fails with OCTET_ERR_ARG (no such tensor, or n differs: the message gives
 * both shapes), OCTET_ERR_FORMAT (a dtype that is not a float type) or OCTET_ERR_IO. */
int octet_st_read_f32(const octet_st_file *f, const char *name, float *dst, size_t n, octet_err *e);

/* ---- writing ---- */
typedef struct octet_st_writer octet_st_writer;

/* NULL when out of memory. */
octet_st_writer *octet_st_writer_new(void);
void octet_st_writer_free(octet_st_writer *w);

/* Adds a tensor of fp32 values to be stored as `dtype` (F32, F16 or BF16). The data is not
 * copied: it must stay valid until octet_st_writer_write returns. Fails with OCTET_ERR_ARG
 * for an empty, reserved ("__metadata__") or duplicate name, a dtype that cannot be written,
 * more than OCTET_ST_MAX_DIMS dims or a negative dim; OCTET_ERR_NOMEM. */
int octet_st_writer_add(octet_st_writer *w, const char *name, int dtype, int ndim,
                        const int64_t *shape, const float *data, octet_err *e);
/* Sets a `__metadata__` string entry (replacing an earlier one). OCTET_ERR_NOMEM only. */
int octet_st_writer_set_metadata(octet_st_writer *w, const char *key, const char *value, octet_err *e);
/* Writes every added tensor to `path` atomically: a temporary file beside it, fsync, rename.
 * Fails with OCTET_ERR_IO (the message names the path and the OS error; no partial file is
 * left behind) or OCTET_ERR_NOMEM. */
int octet_st_writer_write(const octet_st_writer *w, const char *path, octet_err *e);

/* Conversions used by the reader and writer, exposed for tests: IEEE half and bfloat16 from
 * fp32 with round-to-nearest-even (NaN stays NaN, overflow becomes infinity), and back. */
uint16_t octet_f32_to_f16(float x);
uint16_t octet_f32_to_bf16(float x);
float octet_f16_to_f32(uint16_t h);
float octet_bf16_to_f32(uint16_t b);

OCTET_EXTERN_C_END
#endif
