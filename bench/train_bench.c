/* train_bench.c: training throughput of the runner (server/train/trainer.h), in samples per
 * second, for bench/train.sh (CPU, beside bench/train_torch.py) and tests/gpu/run.sh (CUDA,
 * beside bench/train_gpu_torch.py).
 *
 * One measurement is one epoch of the real training loop over a synthetic in-memory set of
 * `steps` batches: batching, upload, forward, backward, global-norm clipping, the optimizer step
 * and the linear schedule, exactly what octet-train runs (evaluation and data loading excluded).
 * The MLP is Fashion-MNIST's 784-256-128-100-10; DistilBERT is the distilbert-small preset (dim
 * 256, 4 layers, 4 heads, FFN 1024) over byte tokens, every sequence exactly `seq` tokens, or
 * with --preset NAME that preset with its own vocabulary size (distilbert-base-cased: 28996,
 * 66M parameters, as bench/train_gpu_torch.py builds it; token ids are still bytes, which
 * changes nothing in the work done per step). Without --warmup the best of `repeats` epochs is
 * reported (the first epoch warms up cuBLAS and the caches). With --warmup W (the GPU runs) one
 * epoch of W + `steps` batches is trained and the rate is timed over the `steps` optimizer steps
 * after the first W, from the runner's per-step log (as bench/train_gpu_torch.py times its 50
 * steps after 5 warm-up steps); the last step's optimizer kernels may still be in flight when
 * its log arrives, an error under 1/steps.
 *
 * Prints one line: "model threads batch seq samples_per_s device precision optimizer
 * peak_bytes optimizer_state_bytes activation_bytes" (the first five fields as before;
 * peak_bytes is the device ledger's high-water mark over all categories, optimizer_state_bytes
 * the optimizer's exact state, optim_state_bytes_total, activation_bytes the ledger's peak of
 * the activations category: with --precision bf16 / fp16 DistilBERT stores its saved
 * activations in 16 bits, which this figure shows).
 *
 * Usage: train_bench mlp|distilbert [--batch B] [--steps N] [--seq T] [--repeats R] [--warmup W]
 *        [--device cpu|cuda] [--preset NAME] [--optim adamw|adamw8bit]
 *        [--precision fp32|bf16|fp16] [--threads N]
 * Threads: the engine's policy (kernels/threads.h) as octet-train applies it: --threads N, else
 * the CPUs this process may use; the "threads" field printed is the count the run used.
 * Exit status 0; 77 when --device cuda finds no usable CUDA device (a skip, with the reason
 * on stderr); 1 with the runner's error on stderr. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "device.h"
#include "threads.h"
#include "train/distilbert.h"
#include "train/spec.h"
#include "train/trainer.h"

typedef struct bench_args {
    const char *model;
    int batch, steps, seq, repeats, warmup, threads;
    const char *device, *preset, *optim, *precision;
} bench_args;

static int one_of(const char *v, const char *a, const char *b, const char *c)
{
    return !strcmp(v, a) || !strcmp(v, b) || (c && !strcmp(v, c));
}

static int parse(int argc, char **argv, bench_args *a)
{
    a->model = argc > 1 ? argv[1] : "";
    int bert = !strcmp(a->model, "distilbert");
    if (!bert && strcmp(a->model, "mlp"))
        return -1;
    a->batch = bert ? 32 : 64;
    a->steps = bert ? 8 : 200;
    a->seq = 64;
    a->repeats = 3;
    a->warmup = 0;
    a->threads = 0;
    a->device = "cpu";
    a->preset = NULL;
    a->optim = "adamw";
    a->precision = "fp32";
    if (argc % 2 != 0)
        return -1; /* a flag without its value */
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *s = argv[i + 1];
        if (!strcmp(argv[i], "--device")) {
            if (!one_of(s, "cpu", "cuda", NULL)) return -1;
            a->device = s;
            continue;
        }
        if (!strcmp(argv[i], "--preset")) { a->preset = s; continue; }
        if (!strcmp(argv[i], "--optim")) {
            if (!one_of(s, "adamw", "adamw8bit", NULL)) return -1;
            a->optim = s;
            continue;
        }
        if (!strcmp(argv[i], "--precision")) {
            if (!one_of(s, "fp32", "bf16", "fp16")) return -1;
            a->precision = s;
            continue;
        }
        int v = atoi(s);
        if (!strcmp(argv[i], "--threads") && (v >= 1 || !strcmp(s, "0"))) { a->threads = v; continue; }
        if (v < 1)
            return -1;
        if (!strcmp(argv[i], "--batch")) a->batch = v;
        else if (!strcmp(argv[i], "--steps")) a->steps = v;
        else if (!strcmp(argv[i], "--seq")) a->seq = v;
        else if (!strcmp(argv[i], "--repeats")) a->repeats = v;
        else if (!strcmp(argv[i], "--warmup")) a->warmup = v;
        else return -1;
    }
    return a->seq < 3 || (a->preset && !bert) ? -1 : 0;
}

static uint64_t next(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* n random examples: 784 features in [0, 1) and 10 classes, or texts of `len` letters and 6. */
static int synthetic(octet_dataset *d, size_t n, int text, int len)
{
    memset(d, 0, sizeof *d);
    uint64_t s = 12345;
    d->name = strdup("synthetic");
    d->n = n;
    d->num_classes = text ? 6 : 10;
    d->labels = malloc(n * sizeof *d->labels);
    if (!d->name || !d->labels)
        return -1;
    for (size_t i = 0; i < n; i++)
        d->labels[i] = (int32_t)(next(&s) % (uint64_t)d->num_classes);
    if (!text) {
        d->n_features = 784;
        d->features = malloc(n * 784 * sizeof *d->features);
        for (size_t i = 0; d->features && i < n * 784; i++)
            d->features[i] = (float)(next(&s) >> 40) / 16777216.0f;
        return d->features ? 0 : -1;
    }
    d->text = calloc(n, sizeof *d->text);
    for (size_t i = 0; d->text && i < n; i++) {
        d->text[i] = malloc((size_t)len + 1);
        if (!d->text[i])
            return -1;
        for (int k = 0; k < len; k++)
            d->text[i][k] = (char)('a' + next(&s) % 26);
        d->text[i][len] = '\0';
    }
    return d->text ? 0 : -1;
}

static void free_synthetic(octet_dataset *d)
{
    for (size_t i = 0; d->text && i < d->n; i++)
        free(d->text[i]);
    free(d->text);
    free(d->features);
    free(d->labels);
    free(d->name);
}

typedef struct bench_timer {
    double best;               /* samples/s */
    int64_t from, to;          /* --warmup: the optimizer steps that bound the timed window */
    double t_from, t_to;
} bench_timer;

static int on_epoch(void *user, const trainer_epoch_metrics *m)
{
    bench_timer *b = user;
    if (!b->to && m->train_samples_per_s > b->best)
        b->best = m->train_samples_per_s;
    return 0;
}

static int on_step(void *user, const trainer_step_log *s)
{
    bench_timer *b = user;
    if (s->step == b->from)
        b->t_from = s->elapsed_s;
    if (s->step == b->to)
        b->t_to = s->elapsed_s;
    return 0;
}

#define USAGE                                                                                    \
    "usage: train_bench mlp|distilbert [--batch B] [--steps N] [--seq T] [--repeats R] [--warmup W]\n" \
    "                   [--device cpu|cuda] [--preset NAME] [--optim adamw|adamw8bit]\n"           \
    "                   [--precision fp32|bf16|fp16] [--threads N]\n"

int main(int argc, char **argv)
{
    bench_args a;
    if (parse(argc, argv, &a)) {
        fputs(USAGE, stderr);
        return 1;
    }
    char why[256];
    if (!strcmp(a.device, "cuda") && !device_cuda_usable(why, sizeof why)) {
        fprintf(stderr, "train_bench: no CUDA device (%s); skipped\n", why);
        return 77;
    }
    int bert = !strcmp(a.model, "distilbert");
    octet_err e;
    memset(&e, 0, sizeof e);
    char model_json[256];
    if (bert && a.preset) { /* the preset's own vocabulary, not the byte tokenizer's 259 */
        distilbert_config cfg;
        distilbert_config_default(&cfg);
        if (distilbert_preset(a.preset, &cfg, &e)) {
            fprintf(stderr, "train_bench: %s: %s\n", e.field, e.message);
            return 1;
        }
        snprintf(model_json, sizeof model_json,
                 "{\"arch\": \"distilbert\", \"preset\": \"%s\", \"config\": {\"vocab_size\": %d}}", a.preset,
                 cfg.vocab_size);
    } else if (bert) {
        snprintf(model_json, sizeof model_json, "{\"arch\": \"distilbert\", \"preset\": \"distilbert-small\"}");
    } else {
        snprintf(model_json, sizeof model_json, "{\"arch\": \"mlp\", \"hidden\": [256, 128, 100]}");
    }
    char json[2048];
    snprintf(json, sizeof json,
             "{\"model\": %s, \"dataset\": {\"name\": \"synthetic\", \"max_length\": %d},"
             " \"optimizer\": {\"name\": \"%s\", \"lr\": %s},"
             " \"training\": {\"epochs\": %d, \"batch_size\": %d, \"eval_batch_size\": %d, \"log_every\": %d,"
             " \"precision\": \"%s\"}}",
             model_json, a.seq, a.optim, bert ? "5e-5" : "1e-3", a.warmup ? 1 : a.repeats, a.batch, a.batch,
             a.warmup ? 1 : 1000000, a.precision);
    int batches = a.warmup + a.steps;
    job_spec spec;
    octet_dataset train, eval;
    if (spec_parse_text(json, 0, &spec, &e) ||
        synthetic(&train, (size_t)a.batch * (size_t)batches, bert, a.seq - 2) ||
        synthetic(&eval, (size_t)a.batch, bert, a.seq - 2)) {
        fprintf(stderr, "train_bench: setup failed: %s\n", e.message);
        return 1;
    }
    bench_timer timer = {0.0, a.warmup, a.warmup ? batches : 0, 0.0, 0.0};
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = a.device;
    o.threads = octet_threads_set(a.threads); /* as octet-train: logged, and this thread's */
    o.train_data = &train;
    o.eval_data = &eval;
    o.cb.user = &timer;
    o.cb.on_epoch = on_epoch;
    o.cb.on_step = on_step;
    trainer_result r;
    int rc = trainer_run(&spec, &o, &r, &e);
    free_synthetic(&train);
    free_synthetic(&eval);
    if (rc == OCTET_ERR_NODEV) {
        fprintf(stderr, "train_bench: no CUDA device (%s); skipped\n", e.message);
        return 77;
    }
    if (rc) {
        fprintf(stderr, "train_bench: %s: %s\n", e.field, e.message);
        return 1;
    }
    double best = timer.best;
    if (a.warmup) /* the steps after the warm-up */
        best = timer.t_to > timer.t_from ? (double)a.steps * a.batch / (timer.t_to - timer.t_from) : 0.0;
    int threads = octet_threads_current();
    printf("%s %d %d %d %.1f %s %s %s %zu %zu %zu\n", a.model, threads, a.batch, bert ? a.seq : 0, best, a.device,
           a.precision, a.optim, r.memory.peak_total, r.memory.optimizer_state.total, r.memory.activations_peak);
    return 0;
}
