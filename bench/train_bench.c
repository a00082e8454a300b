/* train_bench.c: training throughput of the runner (server/train/trainer.h) on the CPU, in
 * samples per second, for bench/train.sh to set beside PyTorch's (bench/train_torch.py).
 *
 * One measurement is one epoch of the real training loop over a synthetic in-memory set of
 * `steps` batches: batching, forward, backward, global-norm clipping, the AdamW step and the
 * linear schedule, exactly what octet-train runs (evaluation and data loading excluded). The
 * MLP is Fashion-MNIST's 784-256-128-100-10; DistilBERT is the distilbert-small preset (dim
 * 256, 4 layers, 4 heads, FFN 1024) over byte tokens, every sequence exactly `seq` tokens.
 * Prints one line: "model threads batch seq samples_per_s" (the best of `repeats` epochs).
 *
 * Usage: train_bench mlp|distilbert [--batch B] [--steps N] [--seq T] [--repeats R]
 * Threads: OMP_NUM_THREADS (and OPENBLAS_NUM_THREADS) as for octet-train.
 * Exit status 0, or 1 with the runner's error on stderr. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "train/spec.h"
#include "train/trainer.h"

typedef struct bench_args {
    const char *model;
    int batch, steps, seq, repeats;
} bench_args;

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
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (v < 1)
            return -1;
        if (!strcmp(argv[i], "--batch")) a->batch = v;
        else if (!strcmp(argv[i], "--steps")) a->steps = v;
        else if (!strcmp(argv[i], "--seq")) a->seq = v;
        else if (!strcmp(argv[i], "--repeats")) a->repeats = v;
        else return -1;
    }
    return a->seq < 3 ? -1 : 0;
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

static int on_epoch(void *user, const trainer_epoch_metrics *m)
{
    double *best = user;
    if (m->train_samples_per_s > *best)
        *best = m->train_samples_per_s;
    return 0;
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse(argc, argv, &a)) {
        fprintf(stderr, "usage: train_bench mlp|distilbert [--batch B] [--steps N] [--seq T] [--repeats R]\n");
        return 1;
    }
    int bert = !strcmp(a.model, "distilbert");
    char json[1024];
    snprintf(json, sizeof json,
             bert ? "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-small\"},"
                    " \"dataset\": {\"name\": \"synthetic\", \"max_length\": %d},"
                    " \"optimizer\": {\"name\": \"adamw\", \"lr\": 5e-5},"
                    " \"training\": {\"epochs\": %d, \"batch_size\": %d, \"eval_batch_size\": %d, \"log_every\": 1000000}}"
                  : "{\"model\": {\"arch\": \"mlp\", \"hidden\": [256, 128, 100]},"
                    " \"dataset\": {\"name\": \"synthetic\", \"max_length\": %d},"
                    " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3},"
                    " \"training\": {\"epochs\": %d, \"batch_size\": %d, \"eval_batch_size\": %d, \"log_every\": 1000000}}",
             a.seq, a.repeats, a.batch, a.batch);
    job_spec spec;
    octet_err e;
    octet_dataset train, eval;
    if (spec_parse_text(json, 0, &spec, &e) ||
        synthetic(&train, (size_t)a.batch * (size_t)a.steps, bert, a.seq - 2) ||
        synthetic(&eval, (size_t)a.batch, bert, a.seq - 2)) {
        fprintf(stderr, "train_bench: setup failed: %s\n", e.message);
        return 1;
    }
    double best = 0.0;
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    o.train_data = &train;
    o.eval_data = &eval;
    o.cb.user = &best;
    o.cb.on_epoch = on_epoch;
    trainer_result r;
    int rc = trainer_run(&spec, &o, &r, &e);
    free_synthetic(&train);
    free_synthetic(&eval);
    if (rc) {
        fprintf(stderr, "train_bench: %s: %s\n", e.field, e.message);
        return 1;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("%s %d %d %d %.1f\n", a.model, threads, a.batch, bert ? a.seq : 0, best);
    return 0;
}
