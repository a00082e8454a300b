/* device.c: backend selection and the accounting allocator (see device.h).
 *
 * The ledger maps each live pointer to its size and category in an open-addressing hash table
 * guarded by a mutex, so device_free() needs only the pointer. The table grows by doubling;
 * a failed growth makes the allocation fail rather than lose track of a pointer. This is the
 * only file (with the CUDA twin it registers) that knows whether CUDA was built in. */
#define LOG_PREFIX "device"
#include "config.h"
#include "device.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CUDA
#include "device_cuda.h"
#endif

typedef struct ledger_slot {
    void *ptr;     /* NULL = empty, LEDGER_TOMB = deleted */
    size_t bytes;
    int cat;
} ledger_slot;

#define LEDGER_TOMB ((void *)1)

struct device {
    octet_device_kind kind;
    int index;
    const device_backend *be;
    void *ctx;                 /* backend context (CUDA: stream, cuBLAS handle) */
    pthread_mutex_t lock;
    ledger_slot *slots;        /* capacity is a power of two */
    size_t capacity, used;     /* used counts live and tombstoned slots */
    device_mem_stats stats;
    size_t limit;              /* device_set_limit's cap on stats.current_total; 0 = none */
};

/* ---------------------------------------------------------------- CPU backend */

static int cpu_alloc(void *ctx, void **p, size_t bytes)
{
    (void)ctx;
    /* 64-byte alignment for vector loads; calloc semantics by hand. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *q = aligned_alloc(64, rounded);
    if (!q)
        return OCTET_ERR_NOMEM;
    memset(q, 0, rounded);
    *p = q;
    return OCTET_OK;
}
static void cpu_free(void *ctx, void *p) { (void)ctx; free(p); }
static int cpu_memcpy(void *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    if (n)
        memmove(dst, src, n);
    return OCTET_OK;
}
static int cpu_zero(void *ctx, void *p, size_t n) { (void)ctx; if (n) memset(p, 0, n); return OCTET_OK; }
static int cpu_sync(void *ctx) { (void)ctx; return OCTET_OK; }

static const device_backend cpu_backend = {
    "cpu", cpu_alloc, cpu_free, cpu_memcpy, cpu_memcpy, cpu_memcpy, cpu_zero, cpu_sync, NULL, NULL};


/* ---------------------------------------------------------------- selection */

int device_cuda_usable(char *why, size_t whylen)
{
#ifdef HAVE_CUDA
    return device_cuda_probe(0, why, whylen);
#else
    if (why)
        snprintf(why, whylen, "this build has no CUDA backend (configured --without-cuda or no CUDA toolkit)");
    return 0;
#endif
}

int device_cuda_count(void)
{
#ifdef HAVE_CUDA
    int n = 0;
    while (n < 64 && device_cuda_probe(n, NULL, 0))
        n++;
    return n;
#else
    return 0;
#endif
}

static int open_cuda(device *d, int index, octet_err *e)
{
#ifdef HAVE_CUDA
    char why[256];
    if (!device_cuda_probe(index, why, sizeof why))
        return octet_fail(e, OCTET_ERR_NODEV, "training.device", "CUDA device %d is not usable: %s", index, why);
    int rc = device_cuda_open(index, &d->ctx, why, sizeof why);
    if (rc != OCTET_OK)
        return octet_fail(e, rc, "training.device", "could not open CUDA device %d: %s", index, why);
    d->be = device_cuda_backend();
    d->kind = OCTET_DEV_CUDA;
    return OCTET_OK;
#else
    (void)d;
    return octet_fail(e, OCTET_ERR_NODEV, "training.device",
                      "CUDA device %d is not usable: this build has no CUDA backend", index);
#endif
}

int device_open(const char *want, int index, device **out, octet_err *e)
{
    *out = NULL;
    if (!want)
        want = "auto";
    if (strcmp(want, "cpu") && strcmp(want, "cuda") && strcmp(want, "auto"))
        return octet_fail(e, OCTET_ERR_ARG, "training.device",
                          "unknown device '%s'; allowed: cpu, cuda, auto", want);
    if (index < 0)
        return octet_fail(e, OCTET_ERR_ARG, "training.device", "device index must be >= 0, got %d", index);
    device *d = calloc(1, sizeof *d);
    if (!d)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    pthread_mutex_init(&d->lock, NULL);
    d->index = index;
    d->be = &cpu_backend;
    d->kind = OCTET_DEV_CPU;
    int rc = OCTET_OK;
    if (!strcmp(want, "cuda")) {
        rc = open_cuda(d, index, e);
    } else if (!strcmp(want, "auto")) {
        char why[256];
        if (device_cuda_usable(why, sizeof why) && open_cuda(d, index, NULL) == OCTET_OK)
            log_info("device auto: using CUDA device %d", index);
        else
            log_info("device auto: no CUDA device (%s); using the CPU", why);
    }
    if (rc != OCTET_OK) {
        pthread_mutex_destroy(&d->lock);
        free(d);
        return rc;
    }
    *out = d;
    return OCTET_OK;
}

void device_close(device *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->capacity; i++)
        if (d->slots[i].ptr && d->slots[i].ptr != LEDGER_TOMB)
            d->be->free(d->ctx, d->slots[i].ptr);
    free(d->slots);
    if (d->be->close)
        d->be->close(d->ctx);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

octet_device_kind device_kind(const device *d) { return d->kind; }
const char *device_name(const device *d) { return d->be->name; }
void *device_stream(const device *d)
{
#ifdef HAVE_CUDA
    return d->kind == OCTET_DEV_CUDA ? device_cuda_stream(d->ctx) : NULL;
#else
    (void)d;
    return NULL;
#endif
}
void *device_blas(const device *d)
{
#ifdef HAVE_CUDA
    return d->kind == OCTET_DEV_CUDA ? device_cuda_blas(d->ctx) : NULL;
#else
    (void)d;
    return NULL;
#endif
}

/* ---------------------------------------------------------------- ledger */

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static void ledger_put(ledger_slot *slots, size_t cap, void *p, size_t bytes, int cat)
{
    size_t i = ptr_hash(p, cap);
    while (slots[i].ptr && slots[i].ptr != LEDGER_TOMB)
        i = (i + 1) & (cap - 1);
    slots[i].ptr = p;
    slots[i].bytes = bytes;
    slots[i].cat = cat;
}

/* Makes room for one more entry; returns 0 when the table could not grow. */
static int ledger_reserve(device *d)
{
    if ((d->used + 1) * 4 < d->capacity * 3)
        return 1;
    size_t cap = d->capacity ? d->capacity * 2 : 256;
    ledger_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return 0;
    size_t live = 0;
    for (size_t i = 0; i < d->capacity; i++)
        if (d->slots[i].ptr && d->slots[i].ptr != LEDGER_TOMB) {
            ledger_put(slots, cap, d->slots[i].ptr, d->slots[i].bytes, d->slots[i].cat);
            live++;
        }
    free(d->slots);
    d->slots = slots;
    d->capacity = cap;
    d->used = live;
    return 1;
}

static ledger_slot *ledger_find(device *d, const void *p)
{
    if (!d->capacity)
        return NULL;
    size_t i = ptr_hash(p, d->capacity);
    while (d->slots[i].ptr) {
        if (d->slots[i].ptr == p)
            return &d->slots[i];
        i = (i + 1) & (d->capacity - 1);
    }
    return NULL;
}

/* True when `bytes` more would pass device_set_limit's cap. Call with d->lock held. */
static int over_limit(const device *d, size_t bytes)
{
    return d->limit && (bytes > d->limit || d->stats.current_total > d->limit - bytes);
}

void *device_alloc(device *d, size_t bytes, mem_category cat)
{
    if (!bytes || cat < 0 || cat >= MEM_NCATEGORIES)
        return NULL;
    void *p = NULL;
    pthread_mutex_lock(&d->lock);
    int over = over_limit(d, bytes);
    pthread_mutex_unlock(&d->lock);
    if (over) /* what a full device does; the cap is checked again below against racing allocations */
        return NULL;
    if (d->be->alloc(d->ctx, &p, bytes) != OCTET_OK)
        return NULL;
    pthread_mutex_lock(&d->lock);
    if (over_limit(d, bytes) || !ledger_reserve(d)) {
        pthread_mutex_unlock(&d->lock);
        d->be->free(d->ctx, p);
        return NULL;
    }
    ledger_put(d->slots, d->capacity, p, bytes, cat);
    d->used++;
    device_mem_stats *s = &d->stats;
    s->current[cat] += bytes;
    s->current_total += bytes;
    if (s->current[cat] > s->peak[cat])
        s->peak[cat] = s->current[cat];
    if (s->current_total > s->peak_total)
        s->peak_total = s->current_total;
    pthread_mutex_unlock(&d->lock);
    return p;
}

void device_free(device *d, void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&d->lock);
    ledger_slot *slot = ledger_find(d, p);
    if (slot) {
        d->stats.current[slot->cat] -= slot->bytes;
        d->stats.current_total -= slot->bytes;
        slot->ptr = LEDGER_TOMB;
    } else {
        log_err("device_free of a pointer this device did not allocate (%p)", p);
    }
    pthread_mutex_unlock(&d->lock);
    if (slot)
        d->be->free(d->ctx, p);
}

int device_upload(device *d, void *dst, const void *src, size_t n) { return d->be->upload(d->ctx, dst, src, n); }
int device_download(device *d, void *dst, const void *src, size_t n) { return d->be->download(d->ctx, dst, src, n); }
int device_copy(device *d, void *dst, const void *src, size_t n) { return d->be->copy(d->ctx, dst, src, n); }
int device_zero(device *d, void *p, size_t n) { return d->be->zero(d->ctx, p, n); }
int device_sync(device *d) { return d->be->sync(d->ctx); }

void device_mem_stats_get(device *d, device_mem_stats *out)
{
    pthread_mutex_lock(&d->lock);
    *out = d->stats;
    pthread_mutex_unlock(&d->lock);
    out->driver_free = out->driver_total = 0;
    if (d->be->mem_info)
        d->be->mem_info(d->ctx, &out->driver_free, &out->driver_total);
}

/* ---------------------------------------------------------------- threads, the cap, free memory */

int device_bind_thread(device *d)
{
#ifdef HAVE_CUDA
    if (d && d->kind == OCTET_DEV_CUDA)
        return device_cuda_bind(d->ctx);
#else
    (void)d;
#endif
    return OCTET_OK;
}

void device_set_limit(device *d, size_t bytes)
{
    pthread_mutex_lock(&d->lock);
    d->limit = bytes;
    pthread_mutex_unlock(&d->lock);
}

/* The host's memory: MemAvailable and MemTotal of /proc/meminfo (kB), else sysconf's free and
 * physical pages (free memory only: the page cache the kernel would reclaim is not counted, so
 * this undercounts). Returns 0 when neither answers. */
static int host_mem(size_t *fr, size_t *tot)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long avail = 0, total = 0;
    int have = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f) && have != 3) {
            if (sscanf(line, "MemAvailable: %llu kB", &avail) == 1)
                have |= 1;
            else if (sscanf(line, "MemTotal: %llu kB", &total) == 1)
                have |= 2;
        }
        fclose(f);
    }
    if (have == 3) {
        *fr = (size_t)avail * 1024;
        *tot = (size_t)total * 1024;
        return 1;
    }
    long pages = sysconf(_SC_PHYS_PAGES), avpages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || avpages < 0 || size <= 0)
        return 0;
    *tot = (size_t)pages * (size_t)size;
    *fr = (size_t)avpages * (size_t)size;
    return 1;
}

/* The figures under a cap: the smaller view wins (known = 0: the device's own are unknown). */
static void apply_limit(size_t limit, size_t live, int known, size_t *fr, size_t *tot)
{
    if (!known)
        *fr = *tot = 0;
    if (!limit)
        return;
    size_t lfree = live < limit ? limit - live : 0;
    if (!known || limit < *tot)
        *tot = limit;
    if (!known || lfree < *fr)
        *fr = lfree;
}

void device_mem_available(device *d, size_t *free_bytes, size_t *total_bytes)
{
    size_t fr = 0, tot = 0, live, limit;
    pthread_mutex_lock(&d->lock);
    live = d->stats.current_total;
    limit = d->limit;
    pthread_mutex_unlock(&d->lock);
    int known = d->be->mem_info ? d->be->mem_info(d->ctx, &fr, &tot) == OCTET_OK : host_mem(&fr, &tot);
    apply_limit(limit, live, known, &fr, &tot);
    if (free_bytes)
        *free_bytes = fr;
    if (total_bytes)
        *total_bytes = tot;
}

int device_mem_probe(const char *want, int index, size_t limit, const char **chosen, size_t *free_bytes,
                     size_t *total_bytes, octet_err *e)
{
    if (!want)
        want = "auto";
    if (strcmp(want, "cpu") && strcmp(want, "cuda") && strcmp(want, "auto"))
        return octet_fail(e, OCTET_ERR_ARG, "training.device", "unknown device '%s'; allowed: cpu, cuda, auto", want);
    if (index < 0)
        return octet_fail(e, OCTET_ERR_ARG, "training.device", "device index must be >= 0, got %d", index);
    size_t fr = 0, tot = 0;
    int known, cuda = 0;
#ifdef HAVE_CUDA
    char why[256] = "";
    if (!strcmp(want, "cuda") && !device_cuda_probe(index, why, sizeof why))
        return octet_fail(e, OCTET_ERR_NODEV, "training.device", "CUDA device %d is not usable: %s", index, why);
    cuda = !strcmp(want, "cuda") || (!strcmp(want, "auto") && device_cuda_usable(NULL, 0) &&
                                     device_cuda_probe(index, NULL, 0));
    if (cuda && device_cuda_mem_info(index, &fr, &tot, why, sizeof why) != OCTET_OK)
        return octet_fail(e, OCTET_ERR_CUDA, "training.device", "cudaMemGetInfo of CUDA device %d failed: %s",
                          index, why);
    known = cuda ? 1 : host_mem(&fr, &tot);
#else
    if (!strcmp(want, "cuda"))
        return octet_fail(e, OCTET_ERR_NODEV, "training.device",
                          "CUDA device %d is not usable: this build has no CUDA backend", index);
    known = host_mem(&fr, &tot);
#endif
    apply_limit(limit, 0, known, &fr, &tot);
    if (chosen)
        *chosen = cuda ? "cuda" : "cpu";
    if (free_bytes)
        *free_bytes = fr;
    if (total_bytes)
        *total_bytes = tot;
    return OCTET_OK;
}

int device_alloc_fail(device *d, octet_err *e, const char *field, size_t bytes, const char *what)
{
    size_t fr = 0, tot = 0;
    device_mem_available(d, &fr, &tot);
    device_mem_stats st;
    pthread_mutex_lock(&d->lock);
    st = d->stats;
    pthread_mutex_unlock(&d->lock);
    return octet_fail(e, OCTET_ERR_NOMEM, field ? field : "",
                      "out of %s memory allocating %s: asked %zu bytes (%.1f MiB), %zu free of %zu (%.1f MiB of "
                      "%.1f MiB; %.1f MiB in use by this job)",
                      d->be->name, what ? what : "a buffer", bytes, bytes / 1048576.0, fr, tot, fr / 1048576.0,
                      tot / 1048576.0, st.current_total / 1048576.0);
}
