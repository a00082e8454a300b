/* idx.h: reading the IDX files MNIST and Fashion-MNIST ship in (gzip-compressed or plain):
 * a 4-byte magic (0, 0, type 0x08 = unsigned byte, number of dims), the dims as big-endian
 * 32-bit counts, then the data row-major. Images (3 dims) come back as floats scaled to
 * [0, 1] (pixel / 255), labels (1 dim) as int32. Every check names the file: the magic, the
 * dims, a truncated body, bytes past the end. */
#ifndef OCTET_TRAIN_IDX_H
#define OCTET_TRAIN_IDX_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

/* Reads an images file (magic 0x00000803): *pixels gets n x rows x cols floats in [0, 1].
 * Fails with OCTET_ERR_IO (cannot open/read), OCTET_ERR_FORMAT (wrong magic or dims,
 * truncated, trailing bytes) or OCTET_ERR_NOMEM; the message names `path`. */
int octet_idx_read_images(const char *path, float **pixels, size_t *n, size_t *rows, size_t *cols, octet_err *e);

/* Reads a labels file (magic 0x00000801) into *labels (n int32 values 0..255). Fails as
 * octet_idx_read_images. */
int octet_idx_read_labels(const char *path, int32_t **labels, size_t *n, octet_err *e);

/* Reads only the header of an IDX file of `ndim` dims (3: images, 1: labels) into dims[ndim],
 * decompressing a few bytes: the shape without the data. Fails with OCTET_ERR_IO (cannot
 * open) or OCTET_ERR_FORMAT (wrong magic, truncated or empty dims); the message names `path`. */
int octet_idx_read_dims(const char *path, int ndim, size_t *dims, octet_err *e);

OCTET_EXTERN_C_END
#endif
