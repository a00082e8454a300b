/* idx.c: IDX (MNIST format) reading through zlib's gzread, which also reads uncompressed
 * files; see idx.h. The file is opened by octet_open_regular (a FIFO or device is refused, not
 * waited on) and handed to gzdopen. The body is read straight into a byte buffer and then
 * widened. */
#include "train/idx.h"
#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_DIMS 4
#define IDX_MAX_BYTES ((uint64_t)1 << 32)

typedef struct idx_head {
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
    uint64_t count;   /* product of dims */
} idx_head;

/* Reads exactly n bytes; 1 on success, 0 at a premature end, -1 on an error. */
static int gz_read_full(gzFile f, void *buf, uint64_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(f, p, chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        p += r;
        n -= (uint64_t)r;
    }
    return 1;
}

static int head_read(gzFile f, const char *path, int want_ndim, idx_head *h, octet_err *e)
{
    unsigned char m[4], d[4 * IDX_MAX_DIMS];
    if (gz_read_full(f, m, 4) != 1)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: too short for an IDX header (corrupt gzip?)", path);
    if (m[0] != 0 || m[1] != 0 || m[2] != 0x08 || m[3] != want_ndim)
        return octet_fail(e, OCTET_ERR_FORMAT, path,
                          "%s: IDX magic %02x %02x %02x %02x, expected 00 00 08 %02x (unsigned bytes, %d dims)", path,
                          m[0], m[1], m[2], m[3], want_ndim, want_ndim);
    h->ndim = want_ndim;
    if (gz_read_full(f, d, 4 * (uint64_t)want_ndim) != 1)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: truncated in the IDX dims", path);
    h->count = 1;
    for (int i = 0; i < want_ndim; i++) {
        h->dims[i] = (uint32_t)d[4 * i] << 24 | (uint32_t)d[4 * i + 1] << 16 | (uint32_t)d[4 * i + 2] << 8 | d[4 * i + 3];
        h->count *= h->dims[i];
        if (h->dims[i] == 0 || h->count > IDX_MAX_BYTES)
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: IDX dim %d is %u (empty or too large)", path, i,
                              h->dims[i]);
    }
    return OCTET_OK;
}

/* Opens path as a gzip stream (plain files read through too) into *f. */
static int idx_open(const char *path, gzFile *f, octet_err *e)
{
    int fd;
    int rc = octet_open_regular(path, path, &fd, NULL, e);
    if (rc != OCTET_OK)
        return rc;
    if (!(*f = gzdopen(fd, "rb"))) {
        close(fd);
        return octet_fail(e, OCTET_ERR_NOMEM, path, "%s: out of memory opening the gzip stream", path);
    }
    return OCTET_OK;
}

int octet_idx_read_dims(const char *path, int ndim, size_t *dims, octet_err *e)
{
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return octet_fail(e, OCTET_ERR_ARG, path, "%s: %d IDX dims asked (1..%d)", path, ndim, IDX_MAX_DIMS);
    gzFile f;
    int rc = idx_open(path, &f, e);
    if (rc != OCTET_OK)
        return rc;
    idx_head h;
    rc = head_read(f, path, ndim, &h, e);
    gzclose(f);
    for (int i = 0; rc == OCTET_OK && i < ndim; i++)
        dims[i] = h.dims[i];
    return rc;
}

/* Opens path, checks the header and reads the whole body into *body. */
static int idx_load(const char *path, int want_ndim, idx_head *h, unsigned char **body, octet_err *e)
{
    *body = NULL;
    gzFile f;
    int rc = idx_open(path, &f, e);
    if (rc != OCTET_OK)
        return rc;
    rc = head_read(f, path, want_ndim, h, e);
    if (rc == OCTET_OK && !(*body = malloc(h->count)))
        rc = octet_fail(e, OCTET_ERR_NOMEM, path, "%s: out of memory for %llu bytes", path,
                        (unsigned long long)h->count);
    if (rc == OCTET_OK) {
        int r = gz_read_full(f, *body, h->count);
        unsigned char extra;
        if (r < 0)
            rc = octet_fail(e, OCTET_ERR_FORMAT, path, "%s: corrupt gzip data", path);
        else if (r == 0)
            rc = octet_fail(e, OCTET_ERR_FORMAT, path, "%s: truncated: the header promises %llu data bytes", path,
                            (unsigned long long)h->count);
        else if (gzread(f, &extra, 1) != 0)
            rc = octet_fail(e, OCTET_ERR_FORMAT, path, "%s: data continues past the %llu bytes the header gives", path,
                            (unsigned long long)h->count);
    }
    gzclose(f);
    if (rc != OCTET_OK) {
        free(*body);
        *body = NULL;
    }
    return rc;
}

int octet_idx_read_images(const char *path, float **pixels, size_t *n, size_t *rows, size_t *cols, octet_err *e)
{
    *pixels = NULL;
    idx_head h;
    unsigned char *body;
    int rc = idx_load(path, 3, &h, &body, e);
    if (rc != OCTET_OK)
        return rc;
    float *px = malloc(h.count * sizeof *px);
    if (!px) {
        free(body);
        return octet_fail(e, OCTET_ERR_NOMEM, path, "%s: out of memory for %llu pixels", path,
                          (unsigned long long)h.count);
    }
    for (uint64_t i = 0; i < h.count; i++)
        px[i] = (float)body[i] / 255.0f;
    free(body);
    *pixels = px;
    *n = h.dims[0];
    *rows = h.dims[1];
    *cols = h.dims[2];
    return OCTET_OK;
}

int octet_idx_read_labels(const char *path, int32_t **labels, size_t *n, octet_err *e)
{
    *labels = NULL;
    idx_head h;
    unsigned char *body;
    int rc = idx_load(path, 1, &h, &body, e);
    if (rc != OCTET_OK)
        return rc;
    int32_t *l = malloc(h.count * sizeof *l);
    if (!l) {
        free(body);
        return octet_fail(e, OCTET_ERR_NOMEM, path, "%s: out of memory", path);
    }
    for (uint64_t i = 0; i < h.count; i++)
        l[i] = body[i];
    free(body);
    *labels = l;
    *n = h.dims[0];
    return OCTET_OK;
}
