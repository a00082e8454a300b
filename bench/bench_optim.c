/* bench_optim.c: optimizer-step throughput of the engine against the machine's copy bandwidth.
 *
 * For each optimizer (adamw, adam8bit, adamw8bit, adafactor, sgd with momentum) and each shape
 * set (default: one 1024x1024 tensor, one 4096x4096 tensor, and 256 tensors of 256x256), it
 * creates the optimizer on the chosen device, runs warm-up steps, times N steps one by one
 * (device synchronised after each), takes their median, repeats that R times with a fresh
 * optimizer and reports the best median (as optim_torch.py does for the peer) as Mparam/s, the bytes a step moves
 * (read + written, per the model in bytes_per_param()) as GB/s, and that as a share of the
 * ceiling: the device's streaming bandwidth measured in the same run, right before each row
 * (256 MiB buffers, as many threads as the optimizer uses, read + write bytes counted, the
 * faster of memcpy and a b += a loop, best of 5; see probe_gbps()). It also reports the exact
 * optimizer-state bytes (optim_state_bytes_total, checked against the allocator's ledger) beside
 * AdamW's for the same shapes. bench/optim.sh puts these rows beside PyTorch's AdamW
 * (bench/optim_torch.py) in one table; --tsv prints the machine-readable rows it reads.
 *
 * Usage: bench_optim [--device cpu|cuda] [--shapes LIST] [--optims LIST] [--steps N]
 *                    [--warmup N] [--repeats R] [--tsv]
 *   LIST of shapes: comma-separated RxC or RxC*T (T tensors of RxC), e.g. 4096x4096,256x256*256
 *   default shapes: cpu 1024x1024,4096x4096,256x256*256; cuda 4096x4096,16384x16384
 * Exit status: 0; 2 for a usage error; 77 when --device cuda finds no usable CUDA device (the
 * message says why; a GPU script treats 77 as "skipped"); 1 when the engine fails. */
#include "config.h"
#include "device.h"
#include "optim.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_SHAPES 16
#define MAX_OPTIMS 8

typedef struct shape_set {
    char label[48];   /* e.g. "16M 4096x4096" or "16M 256x(256x256)" */
    char spec[32];    /* as given, e.g. "256x256*256"; the key bench/optim.sh joins on */
    int64_t rows, cols;
    int count;        /* tensors of rows x cols */
} shape_set;

typedef struct bench_opts {
    const char *device;
    shape_set shapes[MAX_SHAPES];
    int n_shapes;
    optim_kind optims[MAX_OPTIMS];
    int n_optims;
    int steps, warmup, repeats;
    int tsv;
} bench_opts;

typedef struct bench_row {
    optim_kind kind;
    const shape_set *shape;
    int64_t n;                  /* parameters */
    double median_s;
    double mparam_s, bytes_per_param, gbps;
    double ceiling_gbps;        /* copy bandwidth measured right before this row */
    double pct_ceiling;
    size_t state_bytes;         /* optim_state_bytes_total */
    size_t ledger_state_bytes;  /* the allocator's optimizer_state figure */
    size_t adamw_state_bytes;   /* optim_estimate for adamw on the same shapes */
} bench_row;

static int threads_in_use(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* ------------------------------------------------------------------ options */

/* Parses "RxC" or "RxC*T" into s; returns -1 for anything else. */
static int parse_shape(const char *text, shape_set *s)
{
    long long r = 0, c = 0, t = 1;
    char tail = 0;
    int got = sscanf(text, "%lldx%lld*%lld%c", &r, &c, &t, &tail);
    if (got < 2 || got > 3 || r <= 0 || c <= 0 || t <= 0 || t > 100000 || strlen(text) >= sizeof s->spec)
        return -1;
    s->rows = r;
    s->cols = c;
    s->count = (int)t;
    snprintf(s->spec, sizeof s->spec, "%s", text);
    double n = (double)r * (double)c * (double)t;
    double mega = n / (1 << 20);
    char num[16];
    if (mega >= 1.0)
        snprintf(num, sizeof num, "%.0fM", mega);
    else
        snprintf(num, sizeof num, "%.0fK", n / 1024);
    if (t == 1)
        snprintf(s->label, sizeof s->label, "%s %lldx%lld", num, r, c);
    else
        snprintf(s->label, sizeof s->label, "%s %lldx(%lldx%lld)", num, t, r, c);
    return 0;
}

/* Splits a comma list and calls `one` on each item; returns -1 when an item is refused. */
static int parse_list(const char *list, int (*one)(const char *item, bench_opts *o), bench_opts *o)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save))
        if (one(it, o))
            return -1;
    return 0;
}

static int add_shape(const char *item, bench_opts *o)
{
    if (o->n_shapes >= MAX_SHAPES || parse_shape(item, &o->shapes[o->n_shapes])) {
        fprintf(stderr, "bench_optim: bad shape '%s' (want RxC or RxC*T)\n", item);
        return -1;
    }
    o->n_shapes++;
    return 0;
}

static int add_optim(const char *item, bench_opts *o)
{
    octet_err e = {0};
    if (o->n_optims >= MAX_OPTIMS || optim_kind_from_name(item, &o->optims[o->n_optims], &e) != OCTET_OK) {
        fprintf(stderr, "bench_optim: %s\n", e.message[0] ? e.message : "too many optimizers");
        return -1;
    }
    o->n_optims++;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_optim [--device cpu|cuda] [--shapes RxC[*T],...] [--optims NAME,...]\n"
                    "                   [--steps N] [--warmup N] [--repeats R] [--tsv]\n");
}

/* Fills o from argv; returns 0, or -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "cpu";
    o->steps = 20;
    o->warmup = 3;
    o->repeats = 3;
    const char *shapes = NULL, *optims = "adamw,adam8bit,adamw8bit,adafactor,sgd";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--tsv"))
            o->tsv = 1;
        else if (!strcmp(a, "--device") && has_val)
            o->device = argv[++i];
        else if (!strcmp(a, "--shapes") && has_val)
            shapes = argv[++i];
        else if (!strcmp(a, "--optims") && has_val)
            optims = argv[++i];
        else if (!strcmp(a, "--steps") && has_val)
            o->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && has_val)
            o->warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--repeats") && has_val)
            o->repeats = atoi(argv[++i]);
        else {
            usage();
            return -1;
        }
    }
    if (strcmp(o->device, "cpu") && strcmp(o->device, "cuda")) {
        fprintf(stderr, "bench_optim: --device must be cpu or cuda, got '%s'\n", o->device);
        return -1;
    }
    if (o->steps < 1 || o->warmup < 0 || o->repeats < 1) {
        fprintf(stderr, "bench_optim: --steps and --repeats must be >= 1, --warmup >= 0\n");
        return -1;
    }
    if (!shapes)
        shapes = strcmp(o->device, "cuda") ? "1024x1024,4096x4096,256x256*256" : "4096x4096,16384x16384";
    return parse_list(shapes, add_shape, o) || parse_list(optims, add_optim, o) ? -1 : 0;
}

/* ------------------------------------------------------------------ the byte model */

/* Bytes one step reads plus writes per parameter, for an RxC matrix, as the twins do it. These
 * are logical bytes: write-allocate (read-for-ownership) traffic is not counted, the same
 * convention as the 28 B/param AdamW figure.
 *   adamw      read p g m v, write p m v                          4*7 = 28
 *   8-bit      read p g (4+4) + codes m v (1+1), write p + codes   16, plus absmax of both
 *              states read and written once per block              + 2*2*4/block
 *   sgd        with momentum: read p g buf, write p buf            4*5 = 20
 *   adafactor  factored, no beta1, as optim_cpu.c's adafactor_tensor_cpu runs it (four
 *              passes, no full-size U buffer): RMS(X) reads p (4); the row/column statistics
 *              read g (4); RMS(U), with U = g*r*c recomputed, reads g (4); the apply pass
 *              recomputes U, reads p and g and writes p (12): 24 B/param, plus the row/column
 *              vectors (about 3 passes over 4*(R+C) bytes, i.e. 12*(R+C)/(R*C) per parameter). */
static double bytes_per_param(optim_kind k, int64_t rows, int64_t cols, int block)
{
    switch (k) {
    case OPTIM_ADAMW: return 28.0;
    case OPTIM_ADAM8BIT:
    case OPTIM_ADAMW8BIT: return 16.0 + 16.0 / (double)block;
    case OPTIM_SGD: return 20.0;
    case OPTIM_ADAFACTOR: return 24.0 + 12.0 * (double)(rows + cols) / ((double)rows * (double)cols);
    default: return 0.0;
    }
}

/* ------------------------------------------------------------------ the ceiling */

/* Two buffers (256 MiB on the CPU, 1 GiB on CUDA), allocated once, that the bandwidth probes use. */
typedef struct copy_probe {
    device *dev;
    char *a, *b;
    size_t bytes;
} copy_probe;

/* Allocates the probe's buffers (zero-filled, so every page is mapped). Returns 0, or -1 when
 * the device has not the memory to spare. */
static int probe_open(device *dev, copy_probe *cp)
{
    cp->dev = dev;
    cp->bytes = (size_t)(device_kind(dev) == OCTET_DEV_CPU ? 256 : 1024) << 20; /* GPU: long enough to time */
    cp->a = device_alloc(dev, cp->bytes, MEM_WORKSPACE);
    cp->b = device_alloc(dev, cp->bytes, MEM_WORKSPACE);
    if (cp->a && cp->b)
        return 0;
    device_free(dev, cp->a);
    device_free(dev, cp->b);
    return -1;
}

static void probe_close(copy_probe *cp)
{
    device_free(cp->dev, cp->a);
    device_free(cp->dev, cp->b);
}

/* One copy a -> b: on the CPU split across the optimizer's OpenMP threads, each memcpy-ing its
 * own contiguous share; on CUDA one device-to-device copy. Returns the seconds it took. */
static double probe_copy_once(const copy_probe *cp)
{
    double t0 = now_s();
    if (device_kind(cp->dev) == OCTET_DEV_CPU) {
#pragma omp parallel
        {
            int nt = 1, id = 0;
#ifdef _OPENMP
            nt = omp_get_num_threads();
            id = omp_get_thread_num();
#endif
            size_t share = (cp->bytes / (size_t)nt) & ~(size_t)63;
            size_t from = (size_t)id * share, len = id == nt - 1 ? cp->bytes - from : share;
            memcpy(cp->b + from, cp->a + from, len);
        }
    } else {
        device_copy(cp->dev, cp->b, cp->a, cp->bytes);
        device_sync(cp->dev);
    }
    return now_s() - t0;
}

/* One read-modify-write stream b[i] += a[i] over the probe's buffers (the access pattern of an
 * optimizer's parameter update: read p and more, write p back), split across the threads.
 * Returns the seconds it took. Logical bytes: 12 per float (read a and b, write b). The
 * buffers are zero, so the values stay 0 (no denormals). */
static double probe_rmw_once(const copy_probe *cp)
{
    float *a = (float *)cp->a, *b = (float *)cp->b;
    int64_t n = (int64_t)(cp->bytes / sizeof(float));
    double t0 = now_s();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++)
        b[i] = b[i] + a[i];
    return now_s() - t0;
}

/* The ceiling in GB/s, read + write bytes counted: the faster of a memcpy stream (8 B per
 * float moved) and, on the CPU, a read-modify-write stream (12 B per float), each the best of
 * `reps` runs after one warm-up. The best, not the median: the host's memory bandwidth is
 * shared with other machines and moves by 2x within seconds, and the ceiling is what the
 * memory can do. Why two streams: glibc's memcpy of a large buffer uses non-temporal stores,
 * which on some machines (this one) run slower than ordinary cached read-modify-write loops,
 * so memcpy alone would understate what an optimizer step can reach. *copy and *rmw (may be
 * NULL) get the two figures; rmw is 0 on CUDA. */
static double probe_gbps(const copy_probe *cp, int reps, double *copy, double *rmw)
{
    double best_copy = INFINITY, best_rmw = INFINITY;
    probe_copy_once(cp);
    for (int r = 0; r < reps; r++)
        best_copy = fmin(best_copy, probe_copy_once(cp));
    double gb_copy = 2.0 * (double)cp->bytes / best_copy / 1e9, gb_rmw = 0.0;
    if (device_kind(cp->dev) == OCTET_DEV_CPU) {
        probe_rmw_once(cp);
        for (int r = 0; r < reps; r++)
            best_rmw = fmin(best_rmw, probe_rmw_once(cp));
        gb_rmw = 3.0 * (double)cp->bytes / best_rmw / 1e9;
    }
    if (copy)
        *copy = gb_copy;
    if (rmw)
        *rmw = gb_rmw;
    return fmax(gb_copy, gb_rmw);
}

/* How many cores the threads really get: the time of a fixed compute-only loop on one thread
 * over its time when every thread runs it at once (about the thread count on a quiet machine;
 * about 1 where the host lets this machine use only one core's worth of time, as a CPU quota
 * on a shared virtual machine does). Tables made with a low figure measure the host, not us. */
static double parallel_speedup(void)
{
    double one = INFINITY, all = INFINITY;
    volatile double sink = 0.0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s(), x = 1.0;
        for (long i = 0; i < 20000000L; i++)
            x = x * 1.0000001 + 1e-9;
        one = fmin(one, now_s() - t0);
        sink += x;
        t0 = now_s();
#pragma omp parallel
        {
            double y = 1.0;
            for (long i = 0; i < 20000000L; i++)
                y = y * 1.0000001 + 1e-9;
#pragma omp atomic
            sink += y;
        }
        all = fmin(all, now_s() - t0);
    }
    return one / all * threads_in_use();
}

/* ------------------------------------------------------------------ one measurement */

/* Fills n floats with uniform values in [-scale, scale) from a fixed xorshift stream. */
static void fill_uniform(float *x, int64_t n, float scale, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        x[i] = scale * (float)((double)((s * 2685821657736338717ULL) >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
}

/* The parameter and gradient buffers of a shape set on dev. */
typedef struct bench_tensors {
    int count;
    optim_tensor *t;
    char (*names)[32];
} bench_tensors;

static void free_tensors(device *dev, bench_tensors *bt)
{
    for (int i = 0; bt->t && i < bt->count; i++) {
        device_free(dev, bt->t[i].param);
        device_free(dev, (void *)bt->t[i].grad);
    }
    free(bt->t);
    free(bt->names);
    memset(bt, 0, sizeof *bt);
}

/* Allocates and fills (p in [-1, 1), g in [-0.01, 0.01)) the tensors of s on dev. Returns 0,
 * or -1 (everything freed) when memory runs out. */
static int make_tensors(device *dev, const shape_set *s, bench_tensors *bt)
{
    int64_t n = s->rows * s->cols;
    bt->count = s->count;
    bt->t = calloc((size_t)s->count, sizeof *bt->t);
    bt->names = calloc((size_t)s->count, sizeof *bt->names);
    float *host = malloc((size_t)n * sizeof *host);
    int ok = bt->t && bt->names && host;
    for (int i = 0; ok && i < s->count; i++) {
        optim_tensor *t = &bt->t[i];
        snprintf(bt->names[i], sizeof bt->names[i], "layer.%d.weight", i);
        t->name = bt->names[i];
        t->ndim = 2;
        t->shape[0] = s->rows;
        t->shape[1] = s->cols;
        t->param = device_alloc(dev, (size_t)n * sizeof(float), MEM_PARAMS);
        float *g = device_alloc(dev, (size_t)n * sizeof(float), MEM_GRADS);
        t->grad = g;
        ok = t->param && g;
        if (ok) {
            fill_uniform(host, n, 1.0f, 2 * (uint64_t)i + 1);
            ok = device_upload(dev, t->param, host, (size_t)n * sizeof(float)) == OCTET_OK;
            fill_uniform(host, n, 0.01f, 2 * (uint64_t)i + 2);
            ok = ok && device_upload(dev, g, host, (size_t)n * sizeof(float)) == OCTET_OK;
        }
    }
    free(host);
    if (!ok)
        free_tensors(dev, bt);
    return ok ? 0 : -1;
}

/* The optimizer config a measurement uses: the optimizer's defaults; sgd with momentum 0.9. */
static void bench_config(optim_kind k, optim_config *cfg)
{
    optim_config_defaults(k, cfg);
    if (k == OPTIM_SGD)
        cfg->base.momentum = 0.9;
}

/* One timing run: creates the optimizer for cfg on bt, runs o->warmup + o->steps steps and
 * stores the median step time, the state bytes and the ledger's optimizer_state figure. Returns
 * OCTET_OK, or the engine's status with e filled (creation refused, no memory, a step failed). */
static int time_once(device *dev, const bench_opts *o, const optim_config *cfg, const bench_tensors *bt,
                     double *median_s, optim_state_bytes *sb, size_t *ledger, octet_err *e)
{
    optim *opt = NULL;
    double *t = calloc((size_t)o->steps, sizeof *t);
    int rc = t ? optim_create(dev, cfg, bt->t, bt->count, &opt, e) : OCTET_ERR_NOMEM;
    for (int i = 0; rc == OCTET_OK && i < o->warmup + o->steps; i++) {
        double t0 = now_s();
        rc = optim_step(opt, 1.0);
        if (rc == OCTET_OK)
            rc = device_sync(dev);
        if (i >= o->warmup)
            t[i - o->warmup] = now_s() - t0;
    }
    if (rc == OCTET_OK) {
        device_mem_stats ms;
        device_mem_stats_get(dev, &ms);
        optim_state_bytes_total(opt, sb);
        *ledger = ms.current[MEM_OPTIMIZER_STATE];
        *median_s = median(t, o->steps);
    }
    free(t);
    optim_destroy(opt);
    return rc;
}

/* Measures optimizer k on shape set s: the best of o->repeats timing runs, against the copy
 * bandwidth measured just before them. Returns 0 with *row filled, or -1 after printing the
 * engine's error. */
static int measure(device *dev, const bench_opts *o, optim_kind k, const shape_set *s, const bench_tensors *bt,
                   const copy_probe *cp, bench_row *row)
{
    optim_config cfg, adamw;
    bench_config(k, &cfg);
    bench_config(OPTIM_ADAMW, &adamw);
    octet_err e = {0};
    optim_state_bytes sb, ab;
    size_t ledger = 0;
    double best = INFINITY, ceiling = probe_gbps(cp, 5, NULL, NULL);
    int rc = optim_estimate(&adamw, bt->t, bt->count, &ab, &e);
    for (int r = 0; rc == OCTET_OK && r < o->repeats; r++) {
        double med = 0.0;
        rc = time_once(dev, o, &cfg, bt, &med, &sb, &ledger, &e);
        best = fmin(best, med);
    }
    if (rc != OCTET_OK) {
        fprintf(stderr, "bench_optim: %s on %s: %s\n", optim_kind_name(k), s->label,
                e.message[0] ? e.message : octet_strerror(rc));
        return -1;
    }
    memset(row, 0, sizeof *row);
    row->kind = k;
    row->shape = s;
    row->n = s->rows * s->cols * s->count;
    row->median_s = best;
    row->mparam_s = (double)row->n / best / 1e6;
    row->bytes_per_param = bytes_per_param(k, s->rows, s->cols, cfg.block_size);
    row->gbps = row->bytes_per_param * (double)row->n / best / 1e9;
    row->ceiling_gbps = ceiling;
    row->pct_ceiling = 100.0 * row->gbps / ceiling;
    row->state_bytes = sb.total;
    row->ledger_state_bytes = ledger;
    row->adamw_state_bytes = ab.total;
    return 0;
}

/* ------------------------------------------------------------------ output */

static void print_header(const bench_opts *o, device *dev, const copy_probe *cp, double cores)
{
    double copy, rmw, ceiling = probe_gbps(cp, 7, &copy, &rmw);
    if (o->tsv) {
        printf("ceiling\t%s\t%d\t%.3f\t%.2f\t%.3f\t%.3f\n", device_name(dev), threads_in_use(), ceiling, cores, copy,
               rmw);
        return;
    }
    printf("bench_optim: device %s, %d thread(s) (%.2f cores' worth of compute measured), best of %d medians of\n"
           "%d timed steps after %d warm-up\n",
           device_name(dev), threads_in_use(), cores, o->repeats, o->steps, o->warmup);
    printf("bandwidth ceiling at start: %.2f GB/s (read + write; memcpy %.2f, b += a %.2f); each row's\n"
           "%%ceil is against the ceiling measured right before it (column 'ceil GB/s')\n\n", ceiling, copy, rmw);
    printf("%-10s %-20s %10s %9s %8s %9s %7s %12s %12s %9s\n", "optimizer", "size", "Mparam/s", "B/param", "GB/s",
           "ceil GB/s", "%ceil", "state MB", "adamw MB", "ledger ok");
}

static void print_row(const bench_opts *o, const bench_row *r)
{
    int ledger_ok = r->ledger_state_bytes == r->state_bytes;
    if (o->tsv) {
        printf("row\t%s\t%s\t%s\t%lld\t%.4f\t%.2f\t%.4f\t%.3f\t%.2f\t%zu\t%zu\t%d\t%.3f\n", optim_kind_name(r->kind),
               r->shape->spec, r->shape->label, (long long)r->n, r->median_s * 1e3, r->mparam_s, r->bytes_per_param,
               r->gbps, r->pct_ceiling, r->state_bytes, r->adamw_state_bytes, ledger_ok, r->ceiling_gbps);
    } else {
        printf("%-10s %-20s %10.1f %9.3f %8.2f %9.2f %6.1f%% %12.3f %12.3f %9s\n", optim_kind_name(r->kind),
               r->shape->label, r->mparam_s, r->bytes_per_param, r->gbps, r->ceiling_gbps, r->pct_ceiling,
               r->state_bytes / 1e6,
               r->adamw_state_bytes / 1e6, ledger_ok ? "yes" : "NO");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    device *dev = NULL;
    octet_err e = {0};
    if (device_open(o.device, 0, &dev, &e) != OCTET_OK) {
        if (!strcmp(o.device, "cuda")) {
            fprintf(stderr, "bench_optim: no CUDA device: %s\n", e.message);
            return 77;
        }
        fprintf(stderr, "bench_optim: %s\n", e.message);
        return 1;
    }
    copy_probe cp;
    if (probe_open(dev, &cp)) {
        fprintf(stderr, "bench_optim: no memory on %s for the copy-bandwidth buffers (512 MiB)\n", device_name(dev));
        device_close(dev);
        return 1;
    }
    print_header(&o, dev, &cp, parallel_speedup());
    int failed = 0;
    for (int si = 0; si < o.n_shapes; si++) {
        bench_tensors bt; /* shared by the optimizers of this shape set: values do not matter */
        if (make_tensors(dev, &o.shapes[si], &bt)) {
            fprintf(stderr, "bench_optim: out of %s memory for %s\n", device_name(dev), o.shapes[si].label);
            failed = 1;
            continue;
        }
        for (int oi = 0; oi < o.n_optims; oi++) {
            bench_row r;
            if (measure(dev, &o, o.optims[oi], &o.shapes[si], &bt, &cp, &r) == 0)
                print_row(&o, &r);
            else
                failed = 1;
        }
        free_tensors(dev, &bt);
    }
    probe_close(&cp);
    device_close(dev);
    return failed;
}
