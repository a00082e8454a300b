/* device.h: run-time backend choice and the accounting allocator.
 *
 * A `device` is one compute backend instance (the CPU, or one CUDA device with its stream and
 * cuBLAS handle) plus the memory ledger that the memory figures of a job come from. Every
 * buffer that training or an optimizer touches is allocated here with a category (params,
 * grads, optimizer_state, activations, workspace); the device keeps current and peak bytes per
 * category and in total. Model, optimizer and training code call through the backend table
 * (`device_backend`) and never contain #ifdef HAVE_CUDA; only device.c knows which tables exist.
 *
 * Pointers returned by device_alloc() live in the device's address space: host memory for the
 * CPU backend, device memory for CUDA. Use device_upload/download to cross. */
#ifndef OCTET_DEVICE_H
#define OCTET_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "hd.h"
#include "status.h"

OCTET_EXTERN_C_BEGIN

typedef enum { OCTET_DEV_CPU = 0, OCTET_DEV_CUDA = 1 } octet_device_kind;

typedef enum {
    MEM_PARAMS = 0,
    MEM_GRADS,
    MEM_OPTIMIZER_STATE,
    MEM_ACTIVATIONS,
    MEM_WORKSPACE,
    MEM_NCATEGORIES
} mem_category;

/* The backend table: what differs between the CPU and a CUDA device for memory. Ops and
 * optimizers have their own tables (kernels/ops, kernels/optim) selected by the same kind. */
typedef struct device_backend {
    const char *name;                                   /* "cpu" or "cuda" */
    int (*alloc)(void *ctx, void **p, size_t bytes);    /* zero-filled; OCTET_ERR_NOMEM on failure */
    void (*free)(void *ctx, void *p);
    int (*upload)(void *ctx, void *dst, const void *src, size_t bytes);   /* host -> device */
    int (*download)(void *ctx, void *dst, const void *src, size_t bytes); /* device -> host */
    int (*copy)(void *ctx, void *dst, const void *src, size_t bytes);     /* device -> device */
    int (*zero)(void *ctx, void *p, size_t bytes);
    int (*sync)(void *ctx);
    int (*mem_info)(void *ctx, size_t *free_bytes, size_t *total_bytes); /* driver's view; may be NULL */
    void (*close)(void *ctx);
} device_backend;

typedef struct device_mem_stats {
    size_t current[MEM_NCATEGORIES];  /* bytes live now, per category */
    size_t peak[MEM_NCATEGORIES];     /* high-water mark per category */
    size_t current_total;             /* bytes live now, all categories */
    size_t peak_total;                /* high-water mark of the total */
    size_t driver_free, driver_total; /* cudaMemGetInfo on CUDA; 0 on the CPU */
} device_mem_stats;

typedef struct device device;

/* Opens a backend. `want` is "cpu", "cuda" or "auto" (CUDA when a device answers, else the
 * CPU, said in one log line). `index` selects the CUDA device. Returns OCTET_OK, OCTET_ERR_ARG
 * for an unknown name, or OCTET_ERR_NODEV (with the CUDA error string in `e`) when "cuda" was
 * asked for and no usable device exists; never falls back silently. */
int device_open(const char *want, int index, device **out, octet_err *e);
void device_close(device *d);

octet_device_kind device_kind(const device *d);
const char *device_name(const device *d);
/* True when this build has the CUDA backend and a device answers; `why` gets the reason when
 * not (may be NULL). Cheap enough to call once per program. */
int device_cuda_usable(char *why, size_t whylen);
/* The number of usable CUDA devices (0 without the CUDA backend or a device). */
int device_cuda_count(void);
/* The CUDA stream (cudaStream_t) and cuBLAS handle of a CUDA device; NULL on the CPU. */
void *device_stream(const device *d);
void *device_blas(const device *d);

/* Allocates `bytes` zero-filled bytes of category `cat` on the device, and books them.
 * Returns NULL on failure (the ledger is unchanged). bytes == 0 returns NULL too. */
void *device_alloc(device *d, size_t bytes, mem_category cat);
/* Frees a pointer from device_alloc and unbooks it; NULL is ignored. */
void device_free(device *d, void *p);

int device_upload(device *d, void *dst, const void *src, size_t bytes);
int device_download(device *d, void *dst, const void *src, size_t bytes);
int device_copy(device *d, void *dst, const void *src, size_t bytes);
int device_zero(device *d, void *p, size_t bytes);
int device_sync(device *d);

void device_mem_stats_get(device *d, device_mem_stats *out);

/* ---- worker threads, the memory cap, free memory and allocation failures ---- */

/* Makes d the current device of the calling thread (cudaSetDevice(index) on CUDA; nothing on
 * the CPU). A worker thread calls it before it touches d: the CUDA runtime's current device is
 * per thread, and a thread that never set it would allocate and launch on device 0. Returns
 * OCTET_OK, or OCTET_ERR_CUDA (logged) when the CUDA runtime refuses. */
int device_bind_thread(device *d);

/* Caps the bytes d's ledger may hold at once (all categories together); 0 removes the cap. An
 * allocation that would pass it fails exactly as on a full device (device_alloc returns NULL,
 * the ledger is unchanged), so tests can make a job that does not fit on any machine. Lowering
 * the cap below what is live frees nothing; later allocations fail until enough is freed. */
void device_set_limit(device *d, size_t bytes);

/* What the allocator could still hand out: *free_bytes and *total_bytes are the cap's (cap -
 * live, cap) when device_set_limit set one, else the driver's (cudaMemGetInfo) on CUDA, else
 * the host's on the CPU (MemAvailable and MemTotal of /proc/meminfo: free memory plus the page
 * cache the kernel can reclaim; sysconf's free and physical pages where that file cannot be
 * read); the smaller view wins when both apply. Either pointer may be NULL. */
void device_mem_available(device *d, size_t *free_bytes, size_t *total_bytes);

/* What a device could give a job, without opening it (no stream, no cuBLAS handle, no
 * allocation): the figures device_mem_available gives on a freshly opened device of that kind
 * with `limit` as its cap (0: none). `want` is "cpu", "cuda" or "auto" (CUDA device `index`
 * when it answers, as device_open chooses, else the CPU); *chosen (may be NULL) gets "cpu" or
 * "cuda". On CUDA this asks cudaMemGetInfo of device `index` (which makes the CUDA runtime set
 * up its context there, as any CUDA call does) and leaves the calling thread's current device
 * as it was. Fails with OCTET_ERR_ARG ("training.device": an unknown name, a negative index),
 * OCTET_ERR_NODEV ("training.device": "cuda" asked and device `index` does not answer, with the
 * CUDA error string) or OCTET_ERR_CUDA (cudaMemGetInfo failed). */
int device_mem_probe(const char *want, int index, size_t limit, const char **chosen, size_t *free_bytes,
                     size_t *total_bytes, octet_err *e);

/* Records the failure of an allocation of `bytes` for `what` in e and returns OCTET_ERR_NOMEM:
 * "out of <device> memory allocating <what>: asked X bytes, Y free of Z (W in use)" with the
 * figures of device_mem_available and the ledger. `field` names the spec field at fault ("model",
 * "optimizer.name", ...; may be ""). e may be NULL. */
int device_alloc_fail(device *d, octet_err *e, const char *field, size_t bytes, const char *what);

OCTET_EXTERN_C_END
#endif
