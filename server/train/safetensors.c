/* safetensors.c: the safetensors reader (validate the header and layout once, pread tensor
 * data on demand, convert to fp32) and the atomic writer. See safetensors.h for the format
 * and the rules the reader enforces; the layout rules are the reference implementation's:
 * tensors sorted by offset must tile the data section exactly, from 0 to its end, with no
 * hole, overlap or trailing byte, and each must hold exactly numel x dtype-size bytes. */
#include "train/safetensors.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Elements converted per chunk when reading or writing non-F32 data. */
#define ST_CHUNK 65536

static const struct { const char *name; size_t size; } st_dtypes[OCTET_ST_NDTYPES] = {
    [OCTET_ST_F32] = {"F32", 4},   [OCTET_ST_F16] = {"F16", 2},   [OCTET_ST_BF16] = {"BF16", 2},
    [OCTET_ST_F64] = {"F64", 8},   [OCTET_ST_BOOL] = {"BOOL", 1}, [OCTET_ST_U8] = {"U8", 1},
    [OCTET_ST_I8] = {"I8", 1},     [OCTET_ST_I16] = {"I16", 2},   [OCTET_ST_U16] = {"U16", 2},
    [OCTET_ST_I32] = {"I32", 4},   [OCTET_ST_U32] = {"U32", 4},   [OCTET_ST_I64] = {"I64", 8},
    [OCTET_ST_U64] = {"U64", 8},   [OCTET_ST_F8_E4M3] = {"F8_E4M3", 1},
    [OCTET_ST_F8_E5M2] = {"F8_E5M2", 1},
};

struct octet_st_file {
    int fd;
    char *path;
    uint64_t data_start;   /* 8 + header length */
    uint64_t data_len;
    json_t *root;          /* owns the tensor names */
    json_t *metadata;      /* borrowed from root, may be NULL */
    octet_st_tensor *t;
    size_t n;
};

typedef struct st_entry {
    char *name;
    int dtype, ndim;
    int64_t shape[OCTET_ST_MAX_DIMS];
    uint64_t numel;
    const float *data;
} st_entry;

struct octet_st_writer {
    st_entry *e;
    size_t n, cap;
    json_t *metadata;
};

const char *octet_st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < OCTET_ST_NDTYPES ? st_dtypes[dtype].name : "?";
}

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < OCTET_ST_NDTYPES; i++)
        if (strcmp(s, st_dtypes[i].name) == 0)
            return i;
    return -1;
}

/* ---- fp32 <-> f16 / bf16 ---- */

static uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

uint16_t octet_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000, ax = u & 0x7fffffffu;
    if (ax >= 0x7f800000u) {                       /* Inf or NaN (NaN keeps its top payload) */
        uint32_t h = 0x7c00u;
        if (ax > 0x7f800000u) {
            h |= (ax & 0x7fffffu) >> 13;
            if (h == 0x7c00u)
                h++;
        }
        return (uint16_t)(sign | h);
    }
    if (ax >= 0x477ff000u)                         /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {                        /* below 2^-14: half subnormal or zero */
        int e = (int)(ax >> 23);
        if (e < 102)                               /* below 2^-25: rounds to zero */
            return (uint16_t)sign;
        uint32_t m = (ax & 0x7fffffu) | 0x800000u, shift = (uint32_t)(126 - e);
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = (ax >> 13) - (112u << 10), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

uint16_t octet_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7fc0u);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float octet_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    if (e == 0x1f)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0)
            return bits_f32(sign);
        e = 113;                                   /* normalise the subnormal */
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        return bits_f32(sign | (e << 23) | ((m & 0x3ffu) << 13));
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

float octet_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- file I/O helpers ---- */

/* Reads exactly n bytes at off; -1 on an OS error, 0 on a short read, 1 on success. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- reader: header validation ---- */

/* Parses a JSON array of non-negative integers into dims; fails on anything else. */
static int parse_dims(const json_t *a, int64_t *dims, int max, int *count)
{
    if (!json_is_array(a) || json_array_size(a) > (size_t)max)
        return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return -1;
        dims[i] = (int64_t)json_integer_value(v);
    }
    *count = (int)json_array_size(a);
    return 0;
}

static int check_metadata(const char *path, const json_t *m, octet_err *e)
{
    if (!json_is_object(m))
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: __metadata__ must be an object of strings", path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: __metadata__ entry '%s' is not a string", path, k);
    }
    return OCTET_OK;
}

/* Fills t from one header entry, checking dtype, shape, offsets and byte count. */
static int parse_tensor(const char *path, const char *name, const json_t *v, uint64_t data_len,
                        octet_st_tensor *t, octet_err *e)
{
    if (!json_is_object(v))
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': entry is not an object", path, name);
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    const json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': missing string \"dtype\"", path, name);
    t->name = name;
    t->dtype = dtype_from_name(json_string_value(dt));
    if (t->dtype < 0)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': unknown dtype '%s'", path, name,
                          json_string_value(dt));
    if (parse_dims(sh, t->shape, OCTET_ST_MAX_DIMS, &t->ndim) != 0)
        return octet_fail(e, OCTET_ERR_FORMAT, path,
                          "%s: tensor '%s': \"shape\" must be an array of at most %d non-negative integers",
                          path, name, OCTET_ST_MAX_DIMS);
    int64_t o[2];
    int no = 0;
    if (parse_dims(off, o, 2, &no) != 0 || no != 2)
        return octet_fail(e, OCTET_ERR_FORMAT, path,
                          "%s: tensor '%s': \"data_offsets\" must be [begin, end] of non-negative integers", path, name);
    t->begin = (uint64_t)o[0];
    t->end = (uint64_t)o[1];
    if (t->begin > t->end)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': data_offsets begin %llu > end %llu", path,
                          name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return octet_fail(e, OCTET_ERR_FORMAT, path,
                          "%s: tensor '%s': data_offsets end %llu is past the data section (%llu bytes; file truncated?)",
                          path, name, (unsigned long long)t->end, (unsigned long long)data_len);
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] != 0 && t->numel > UINT64_MAX / 16 / (uint64_t)t->shape[i])
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': shape overflows", path, name);
        t->numel *= (uint64_t)t->shape[i];
    }
    uint64_t want = t->numel * st_dtypes[t->dtype].size;
    if (t->end - t->begin != want)
        return octet_fail(e, OCTET_ERR_FORMAT, path,
                          "%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %llu", path, name,
                          (unsigned long long)(t->end - t->begin), st_dtypes[t->dtype].name,
                          (unsigned long long)want);
    return OCTET_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const octet_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Tensors sorted by offset must tile [0, data_len) exactly. */
static int check_tiling(const char *path, octet_st_tensor *t, size_t n, uint64_t data_len, octet_err *e)
{
    qsort(t, n, sizeof *t, cmp_begin);
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].begin > pos)
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': hole of %llu bytes before it (begins at %llu, "
                              "previous data ends at %llu)", path, t[i].name, (unsigned long long)(t[i].begin - pos),
                              (unsigned long long)t[i].begin, (unsigned long long)pos);
        if (t[i].begin < pos)
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: tensor '%s': bytes [%llu, %llu) overlap tensor '%s'", path,
                              t[i].name, (unsigned long long)t[i].begin, (unsigned long long)t[i].end, t[i - 1].name);
        pos = t[i].end;
    }
    if (pos != data_len)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: data section is %llu bytes but the tensors cover %llu "
                          "(trailing bytes)", path, (unsigned long long)data_len, (unsigned long long)pos);
    return OCTET_OK;
}

/* Parses the JSON header into f->root, f->metadata and f->t. */
static int parse_header(octet_st_file *f, const char *hdr, size_t hlen, octet_err *e)
{
    if (hlen == 0 || hdr[0] != '{')
        return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: header does not start with '{'", f->path);
    json_error_t je;
    f->root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!f->root)
        return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: header is not valid JSON: %s (header column %d)", f->path,
                          je.text, je.column);
    if (!json_is_object(f->root))
        return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: header is not a JSON object", f->path);
    f->t = calloc(json_object_size(f->root) + 1, sizeof *f->t);
    if (!f->t)
        return octet_fail(e, OCTET_ERR_NOMEM, f->path, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(f->root, k, v) {
        int rc;
        if (strcmp(k, "__metadata__") == 0) {
            f->metadata = v;
            rc = check_metadata(f->path, v, e);
        } else {
            rc = parse_tensor(f->path, k, v, f->data_len, &f->t[f->n], e);
            f->n++;
        }
        if (rc != OCTET_OK)
            return rc;
    }
    return check_tiling(f->path, f->t, f->n, f->data_len, e);
}

/* Reads the length prefix and the header, checking both against the file size. */
static int read_header(octet_st_file *f, octet_err *e)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return octet_fail(e, OCTET_ERR_IO, f->path, "%s: %s", f->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return octet_fail(e, OCTET_ERR_IO, f->path, "%s: not a regular file", f->path);
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8 || pread_full(f->fd, len8, 8, 0) != 1)
        return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: %llu bytes, too short for the 8-byte header length",
                          f->path, (unsigned long long)size);
    uint64_t hlen = load_le64(len8);
    if (hlen > size - 8 || hlen > ST_MAX_HEADER)
        return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: header length %llu exceeds the file (%llu bytes) "
                          "or the 100 MB limit", f->path, (unsigned long long)hlen, (unsigned long long)size);
    f->data_start = 8 + hlen;
    f->data_len = size - f->data_start;
    char *hdr = malloc(hlen ? hlen : 1);
    if (!hdr)
        return octet_fail(e, OCTET_ERR_NOMEM, f->path, "out of memory for a %llu-byte header", (unsigned long long)hlen);
    int rc = pread_full(f->fd, hdr, hlen, 8) == 1
                 ? parse_header(f, hdr, hlen, e)
                 : octet_fail(e, OCTET_ERR_IO, f->path, "%s: cannot read the header", f->path);
    free(hdr);
    return rc;
}

int octet_st_open(const char *path, octet_st_file **out, octet_err *e)
{
    *out = NULL;
    octet_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return octet_fail(e, OCTET_ERR_NOMEM, path, "out of memory");
    }
    int rc = octet_open_regular(path, path, &f->fd, NULL, e);
    if (rc != OCTET_OK) {
        octet_st_close(f);
        return rc;
    }
    rc = read_header(f, e);
    if (rc != OCTET_OK) {
        octet_st_close(f);
        return rc;
    }
    *out = f;
    return OCTET_OK;
}

void octet_st_close(octet_st_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    json_decref(f->root);
    free(f->t);
    free(f->path);
    free(f);
}

size_t octet_st_count(const octet_st_file *f) { return f->n; }

const octet_st_tensor *octet_st_at(const octet_st_file *f, size_t i)
{
    return i < f->n ? &f->t[i] : NULL;
}

const octet_st_tensor *octet_st_find(const octet_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

const char *octet_st_metadata(const octet_st_file *f, const char *key)
{
    return f->metadata ? json_string_value(json_object_get(f->metadata, key)) : NULL;
}

/* ---- reader: data ---- */

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* Converts n little-endian elements of `dtype` in src to fp32. */
static void convert_to_f32(int dtype, const unsigned char *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (dtype == OCTET_ST_F16 || dtype == OCTET_ST_BF16) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            dst[i] = dtype == OCTET_ST_F16 ? octet_f16_to_f32(h) : octet_bf16_to_f32(h);
        } else if (dtype == OCTET_ST_F32) {
            uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 | (uint32_t)src[4 * i + 2] << 16 |
                         (uint32_t)src[4 * i + 3] << 24;
            dst[i] = bits_f32(u);
        } else {
            uint64_t u = load_le64(src + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
        }
    }
}

static int read_failed(const octet_st_file *f, const octet_st_tensor *t, int r, octet_err *e)
{
    if (r < 0)
        return octet_fail(e, OCTET_ERR_IO, f->path, "%s: tensor '%s': %s", f->path, t->name, strerror(errno));
    return octet_fail(e, OCTET_ERR_FORMAT, f->path, "%s: tensor '%s': file ends inside its data (truncated)",
                      f->path, t->name);
}

/* F32 on a little-endian host: straight into dst. Other cases: chunks through a buffer. */
static int read_converted(const octet_st_file *f, const octet_st_tensor *t, float *dst, octet_err *e)
{
    uint64_t off = f->data_start + t->begin;
    if (t->dtype == OCTET_ST_F32 && host_is_le()) {
        int r = pread_full(f->fd, dst, (size_t)t->numel * 4, off);
        return r == 1 ? OCTET_OK : read_failed(f, t, r, e);
    }
    size_t es = st_dtypes[t->dtype].size;
    unsigned char *buf = malloc(ST_CHUNK * es);
    if (!buf)
        return octet_fail(e, OCTET_ERR_NOMEM, f->path, "out of memory");
    int rc = OCTET_OK;
    for (uint64_t i = 0; i < t->numel && rc == OCTET_OK; i += ST_CHUNK) {
        size_t k = t->numel - i < ST_CHUNK ? (size_t)(t->numel - i) : ST_CHUNK;
        int r = pread_full(f->fd, buf, k * es, off + i * es);
        if (r != 1)
            rc = read_failed(f, t, r, e);
        else
            convert_to_f32(t->dtype, buf, dst + i, k);
    }
    free(buf);
    return rc;
}

static void shape_str(const octet_st_tensor *t, char *s, size_t cap)
{
    size_t len = (size_t)snprintf(s, cap, "[");
    for (int i = 0; i < t->ndim && len < cap; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (len < cap)
        snprintf(s + len, cap - len, "]");
}

int octet_st_read_f32(const octet_st_file *f, const char *name, float *dst, size_t n, octet_err *e)
{
    const octet_st_tensor *t = octet_st_find(f, name);
    if (!t)
        return octet_fail(e, OCTET_ERR_ARG, name, "%s: no tensor named '%s'", f->path, name);
    if (t->numel != n) {
        char s[160];
        shape_str(t, s, sizeof s);
        return octet_fail(e, OCTET_ERR_ARG, name, "%s: tensor '%s' has shape %s (%llu elements), expected %zu elements",
                          f->path, name, s, (unsigned long long)t->numel, n);
    }
    if (t->dtype != OCTET_ST_F32 && t->dtype != OCTET_ST_F16 && t->dtype != OCTET_ST_BF16 && t->dtype != OCTET_ST_F64)
        return octet_fail(e, OCTET_ERR_FORMAT, name, "%s: tensor '%s' has dtype %s, which cannot be read as float",
                          f->path, name, st_dtypes[t->dtype].name);
    return n == 0 ? OCTET_OK : read_converted(f, t, dst, e);
}

/* ---- writer ---- */

octet_st_writer *octet_st_writer_new(void)
{
    octet_st_writer *w = calloc(1, sizeof *w);
    if (w && !(w->metadata = json_object())) {
        free(w);
        return NULL;
    }
    return w;
}

void octet_st_writer_free(octet_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    json_decref(w->metadata);
    free(w);
}

static int writer_check(const octet_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                        octet_err *e)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return octet_fail(e, OCTET_ERR_ARG, "name", "tensor name must be non-empty and not \"__metadata__\"");
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return octet_fail(e, OCTET_ERR_ARG, name, "tensor '%s' added twice", name);
    if (dtype != OCTET_ST_F32 && dtype != OCTET_ST_F16 && dtype != OCTET_ST_BF16)
        return octet_fail(e, OCTET_ERR_ARG, name, "tensor '%s': can write F32, F16 or BF16, not %s", name,
                          octet_st_dtype_name(dtype));
    if (ndim < 0 || ndim > OCTET_ST_MAX_DIMS)
        return octet_fail(e, OCTET_ERR_ARG, name, "tensor '%s': %d dims, at most %d", name, ndim, OCTET_ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return octet_fail(e, OCTET_ERR_ARG, name, "tensor '%s': dim %d is negative", name, i);
    return OCTET_OK;
}

int octet_st_writer_add(octet_st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                        const float *data, octet_err *e)
{
    int rc = writer_check(w, name, dtype, ndim, shape, e);
    if (rc != OCTET_OK)
        return rc;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_entry *ne = realloc(w->e, cap * sizeof *ne);
        if (!ne)
            return octet_fail(e, OCTET_ERR_NOMEM, name, "out of memory");
        w->e = ne;
        w->cap = cap;
    }
    st_entry *x = &w->e[w->n];
    memset(x, 0, sizeof *x);
    if (!(x->name = strdup(name)))
        return octet_fail(e, OCTET_ERR_NOMEM, name, "out of memory");
    x->dtype = dtype;
    x->ndim = ndim;
    x->numel = 1;
    for (int i = 0; i < ndim; i++) {
        x->shape[i] = shape[i];
        x->numel *= (uint64_t)shape[i];
    }
    x->data = data;
    w->n++;
    return OCTET_OK;
}

int octet_st_writer_set_metadata(octet_st_writer *w, const char *key, const char *value, octet_err *e)
{
    json_t *s = json_string(value);
    if (!s || json_object_set_new(w->metadata, key, s) != 0)
        return octet_fail(e, OCTET_ERR_NOMEM, key, "cannot store metadata '%s' (out of memory or not UTF-8)", key);
    return OCTET_OK;
}

/* The JSON header, padded with spaces so the data section starts 8-byte aligned. */
static char *writer_header(const octet_st_writer *w, size_t *len)
{
    json_t *h = json_object();
    if (!h)
        return NULL;
    int bad = json_object_size(w->metadata) > 0 && json_object_set(h, "__metadata__", w->metadata) != 0;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n && !bad; i++) {
        const st_entry *x = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < x->ndim && shape; d++)
            bad |= json_array_append_new(shape, json_integer(x->shape[d])) != 0;
        uint64_t end = off + x->numel * st_dtypes[x->dtype].size;
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtypes[x->dtype].name, "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)end);
        bad |= json_object_set_new(h, x->name, t) != 0;
        off = end;
    }
    char *s = bad ? NULL : json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!s)
        return NULL;
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *p = realloc(s, padded + 1);
    if (!p) {
        free(s);
        return NULL;
    }
    memset(p + n, ' ', padded - n);
    p[padded] = '\0';
    *len = padded;
    return p;
}

/* Writes one tensor's data as little-endian `dtype` elements. */
static int write_tensor(int fd, const st_entry *x, unsigned char *buf)
{
    size_t es = st_dtypes[x->dtype].size;
    for (uint64_t i = 0; i < x->numel; i += ST_CHUNK) {
        size_t k = x->numel - i < ST_CHUNK ? (size_t)(x->numel - i) : ST_CHUNK;
        for (size_t j = 0; j < k; j++) {
            float v = x->data[i + j];
            uint32_t u = x->dtype == OCTET_ST_F32 ? f32_bits(v)
                         : x->dtype == OCTET_ST_F16 ? octet_f32_to_f16(v) : octet_f32_to_bf16(v);
            for (size_t b = 0; b < es; b++)
                buf[j * es + b] = (unsigned char)(u >> (8 * b));
        }
        if (write_full(fd, buf, k * es) != 0)
            return -1;
    }
    return 0;
}

static int write_body(int fd, const octet_st_writer *w, const char *hdr, size_t hlen)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if (write_full(fd, len8, 8) != 0 || write_full(fd, hdr, hlen) != 0)
        return -1;
    unsigned char *buf = malloc(ST_CHUNK * 4);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < w->n && rc == 0; i++)
        rc = write_tensor(fd, &w->e[i], buf);
    free(buf);
    return rc == 0 ? fsync(fd) : -1;
}

/* fsync the directory holding path so the rename is durable; best effort. */
static void sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int octet_st_writer_write(const octet_st_writer *w, const char *path, octet_err *e)
{
    size_t hlen = 0;
    char *hdr = writer_header(w, &hlen);
    if (!hdr)
        return octet_fail(e, OCTET_ERR_NOMEM, path, "%s: cannot build the header (out of memory, or a name "
                          "that is not UTF-8)", path);
    size_t tlen = strlen(path) + 16;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(hdr);
        return octet_fail(e, OCTET_ERR_NOMEM, path, "out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp), rc = OCTET_OK;
    if (fd < 0) {
        rc = octet_fail(e, OCTET_ERR_IO, path, "%s: cannot create a temporary file: %s", path, strerror(errno));
    } else {
        int wr = fchmod(fd, 0644) == 0 ? write_body(fd, w, hdr, hlen) : -1;
        int err = errno;
        if (close(fd) != 0 && wr == 0) {
            wr = -1;
            err = errno;
        }
        if (wr == 0 && rename(tmp, path) != 0) {
            wr = -1;
            err = errno;
        }
        if (wr != 0) {
            unlink(tmp);
            rc = octet_fail(e, OCTET_ERR_IO, path, "%s: write failed: %s", path, strerror(err));
        } else {
            sync_parent_dir(path);
        }
    }
    free(tmp);
    free(hdr);
    return rc;
}
