/* check_trainer_loop.c: the pieces of the training loop against hand computations (the
 * Hugging Face schedules, accuracy and F1 as scikit-learn defines them, clip_grad_norm_, the
 * Trainer's no-decay groups), and the loop as a whole: two CPU runs with one seed end with
 * identical weights, and so do runs at 1, 2 and 3 threads; a run interrupted after an epoch (or
 * cancelled mid-epoch) and resumed ends bit-identical to an uninterrupted one (weights and
 * optimizer state), a diverging run
 * stops with OCTET_ERR_NAN naming the step, a run that never applied a step fails, and a
 * checkpoint of another spec is refused. The command lines last: octet-train's (run as a
 * binary) and setup.sh serve's hand-over to octetd (on stand-ins). */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check_trainer.h"
#include "fileio.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/distilbert.h"
#include "train/hfdir.h"
#include "train/tokenizer.h"
#include "train/mlp.h"
#include "testlib.h"
#include <sys/wait.h>
#include "train/schedule.h"
#include "device.h"
#include "threads.h"

#define NEAR(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-12, "%.17g != %.17g", (double)(a), (double)(b))

/* ------------------------------------------------------------------ schedules */

START_TEST(test_linear_schedule)
{
    /* T = 10, W = 3: warm-up s/3, then (10 - s)/7 */
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 0, 10, 3), 0.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 1, 10, 3), 1.0 / 3);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 2, 10, 3), 2.0 / 3);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 3, 10, 3), 1.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 5, 10, 3), 5.0 / 7);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 9, 10, 3), 1.0 / 7);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 10, 10, 3), 0.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 12, 10, 3), 0.0);
    /* no warm-up: the first step uses the full lr */
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 0, 4, 0), 1.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 1, 4, 0), 0.75);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 3, 4, 0), 0.25);
    /* degenerate: W = T */
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 2, 4, 4), 0.5);
    NEAR(sched_lr_lambda(SPEC_SCHED_LINEAR, 4, 4, 4), 0.0);
}
END_TEST

START_TEST(test_constant_and_cosine)
{
    NEAR(sched_lr_lambda(SPEC_SCHED_CONSTANT, 0, 10, 0), 1.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_CONSTANT, 9, 10, 0), 1.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_CONSTANT, 1, 10, 4), 0.25);
    NEAR(sched_lr_lambda(SPEC_SCHED_CONSTANT, 4, 10, 4), 1.0);
    /* cosine, T = 10, W = 2: 0.5 (1 + cos(pi (s - 2)/8)) */
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 1, 10, 2), 0.5);
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 2, 10, 2), 1.0);
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 4, 10, 2), 0.5 * (1 + cos(M_PI * 0.25)));
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 6, 10, 2), 0.5);
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 9, 10, 2), 0.5 * (1 + cos(M_PI * 7.0 / 8)));
    NEAR(sched_lr_lambda(SPEC_SCHED_COSINE, 10, 10, 2), 0.0);
}
END_TEST

START_TEST(test_warmup_and_step_counts)
{
    spec_training t;
    memset(&t, 0, sizeof t);
    t.warmup_steps = 7;
    ck_assert_int_eq(sched_warmup_steps(&t, 100), 7);
    t.warmup_is_ratio = 1;
    t.warmup_ratio = 0.1;
    ck_assert_int_eq(sched_warmup_steps(&t, 100), 10);
    t.warmup_ratio = 0.05;
    ck_assert_int_eq(sched_warmup_steps(&t, 15), 1); /* ceil(0.75) */
    t.warmup_ratio = 0.0;
    ck_assert_int_eq(sched_warmup_steps(&t, 15), 0);
    ck_assert_int_eq(sched_steps_per_epoch(10, 1), 10);
    ck_assert_int_eq(sched_steps_per_epoch(10, 4), 3);
    ck_assert_int_eq(sched_steps_per_epoch(12, 4), 3);
    ck_assert_int_eq(sched_steps_per_epoch(1, 4), 1);
}
END_TEST

/* ------------------------------------------------------------------ metrics */

START_TEST(test_binary_metrics)
{
    /* labels 1 1 0 0 1 0, predictions 1 0 0 1 1 0: TP 2, FP 1, FN 1, TN 2 */
    const int32_t y[] = {1, 1, 0, 0, 1, 0}, p[] = {1, 0, 0, 1, 1, 0};
    metric_counts m;
    ck_assert_int_eq(metric_init(&m, 2), OCTET_OK);
    metric_add(&m, y, p, 3);
    metric_add(&m, y + 3, p + 3, 3);
    NEAR(metric_accuracy(&m), 4.0 / 6);
    NEAR(metric_f1(&m), 2.0 * 2 / (2.0 * 2 + 1 + 1)); /* precision 2/3, recall 2/3 */
    metric_reset(&m);
    const int32_t y0[] = {0, 0}, p0[] = {0, 0};
    metric_add(&m, y0, p0, 2);
    NEAR(metric_f1(&m), 0.0); /* no positives at all: zero_division = 0 */
    NEAR(metric_accuracy(&m), 1.0);
    metric_free(&m);
}
END_TEST

START_TEST(test_macro_f1)
{
    /* sklearn.metrics.f1_score([0,1,2,0,1,2], [0,2,1,0,0,1], average='macro') = 0.26666... */
    const int32_t y[] = {0, 1, 2, 0, 1, 2}, p[] = {0, 2, 1, 0, 0, 1};
    metric_counts m;
    ck_assert_int_eq(metric_init(&m, 4), OCTET_OK); /* class 3 never occurs: left out of the mean */
    metric_add(&m, y, p, 6);
    NEAR(metric_accuracy(&m), 2.0 / 6);
    NEAR(metric_f1(&m), 0.8 / 3);
    /* a class only predicted counts (F1 0), as sklearn's labels = union of y and pred */
    const int32_t y2[] = {0}, p2[] = {3};
    metric_add(&m, y2, p2, 1);
    /* class 0: tp 2, fp 1, fn 1 -> 4/6; classes 1, 2, 3: 0 */
    NEAR(metric_f1(&m), (4.0 / 6) / 4);
    /* an ignored label (-100) is not counted */
    const int32_t y3[] = {-100}, p3[] = {1};
    metric_add(&m, y3, p3, 1);
    ck_assert_int_eq(m.n, 7);
    metric_free(&m);
}
END_TEST

/* ------------------------------------------------------------------ clipping */

static model *small_mlp(device *d)
{
    int hidden[1] = {3};
    model *m = NULL;
    octet_err e;
    ck_assert_int_eq(mlp_create(d, 2, hidden, 1, 2, 4, 1, &m, &e), OCTET_OK);
    return m;
}

/* Sets every gradient of m to value(i, j) and returns the sum of squares. */
static double set_grads(model *m, double scale)
{
    double ss = 0.0;
    for (int i = 0; i < m->n_params; i++) {
        float *g = malloc((size_t)m->params[i].n * sizeof *g);
        for (int64_t j = 0; j < m->params[i].n; j++) {
            g[j] = (float)(scale * ((i + 1) * 0.5 - 0.25 * (double)j));
            ss += (double)g[j] * g[j];
        }
        device_upload(m->dev, m->params[i].grad, g, (size_t)m->params[i].n * sizeof *g);
        free(g);
    }
    return ss;
}

static void check_grads(model *m, double scale, double factor)
{
    for (int i = 0; i < m->n_params; i++) {
        float *g = malloc((size_t)m->params[i].n * sizeof *g);
        device_download(m->dev, g, m->params[i].grad, (size_t)m->params[i].n * sizeof *g);
        for (int64_t j = 0; j < m->params[i].n; j++) {
            float want = (float)(scale * ((i + 1) * 0.5 - 0.25 * (double)j)) * (float)factor;
            ck_assert_msg(fabsf(g[j] - want) <= 1e-6f * fabsf(want) + 1e-12f, "grad %d[%lld] %g != %g", i,
                          (long long)j, g[j], want);
        }
        free(g);
    }
}

START_TEST(test_clip_by_hand)
{
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    model *m = small_mlp(d);
    double ss = set_grads(m, 1.0), norm = 0;
    ck_assert_int_eq(trainer_clip_grads(m, 1.0, &norm), OCTET_OK);
    ck_assert_msg(fabs(norm - sqrt(ss)) < 1e-9 * sqrt(ss), "norm %g, by hand %g", norm, sqrt(ss));
    ck_assert(norm > 1.0);
    check_grads(m, 1.0, 1.0 / (sqrt(ss) + 1e-6)); /* torch: max_norm / (total + 1e-6) */
    /* below the threshold: untouched */
    ss = set_grads(m, 0.01);
    ck_assert(sqrt(ss) < 1.0);
    ck_assert_int_eq(trainer_clip_grads(m, 1.0, &norm), OCTET_OK);
    check_grads(m, 0.01, 1.0);
    /* max_grad_norm 0: the norm is still measured, nothing is scaled */
    ss = set_grads(m, 3.0);
    ck_assert_int_eq(trainer_clip_grads(m, 0.0, &norm), OCTET_OK);
    ck_assert(fabs(norm - sqrt(ss)) < 1e-9 * sqrt(ss));
    check_grads(m, 3.0, 1.0);
    model_destroy(m);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ groups */

/* The effective weight decay and optim_bits of parameter `name` under cfg (first match). */
static void effective(const optim_config *cfg, const char *name, double *wd, int *bits)
{
    *wd = cfg->base.weight_decay;
    *bits = cfg->base.optim_bits;
    for (int g = 0; g < cfg->n_groups; g++)
        if (fnmatch(cfg->groups[g].match, name, 0) == 0) {
            if (cfg->groups[g].set & OPTIM_SET_WEIGHT_DECAY)
                *wd = cfg->groups[g].hp.weight_decay;
            if (cfg->groups[g].set & OPTIM_SET_OPTIM_BITS)
                *bits = cfg->groups[g].hp.optim_bits;
            return;
        }
}

static model *tiny_bert(device *d)
{
    distilbert_config c;
    octet_err e;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, &e), OCTET_OK);
    c.vocab_size = 300;
    model *m = NULL;
    ck_assert_int_eq(distilbert_create(d, &c, 2, 8, 1, &m, &e), OCTET_OK);
    return m;
}

static void build_groups(const char *optimizer_json, model *m, trainer_groups *g)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"},"
             " \"dataset\": {\"name\": \"fortunes-lang\"}, \"optimizer\": %s}", optimizer_json);
    job_spec s;
    tr_parse_ok(json, &s);
    octet_err e;
    ck_assert_msg(trainer_build_groups(&s, m->params, m->n_params, g, &e) == OCTET_OK, "%s: %s", e.field, e.message);
    ck_assert_int_eq(optim_config_validate(&g->cfg, &e), OCTET_OK);
}

START_TEST(test_decay_groups)
{
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    model *m = tiny_bert(d);
    trainer_groups *g = malloc(sizeof *g);
    double wd;
    int bits;

    /* the Trainer's default: biases and LayerNorm weights get no decay, in a few short globs */
    build_groups("{\"name\": \"adamw8bit\", \"weight_decay\": 0.05}", m, g);
    ck_assert_int_le(g->cfg.n_groups, 6);
    int n_no_decay = 0;
    for (int i = 0; i < m->n_params; i++) {
        effective(&g->cfg, m->params[i].name, &wd, &bits);
        n_no_decay += m->params[i].no_decay;
        ck_assert_msg(wd == (m->params[i].no_decay ? 0.0 : 0.05), "%s: wd %g", m->params[i].name, wd);
        ck_assert_int_eq(bits, 8);
    }
    ck_assert_int_gt(n_no_decay, 10);

    /* a spec group without weight_decay still leaves its no_decay parameters undecayed */
    build_groups("{\"name\": \"adamw8bit\", \"weight_decay\": 0.05, \"param_groups\": [{\"match\": "
                 "\"distilbert.embeddings.*\", \"optim_bits\": 32}]}", m, g);
    for (int i = 0; i < m->n_params; i++) {
        const char *name = m->params[i].name;
        effective(&g->cfg, name, &wd, &bits);
        ck_assert_msg(wd == (m->params[i].no_decay ? 0.0 : 0.05), "%s: wd %g", name, wd);
        ck_assert_msg(bits == (strncmp(name, "distilbert.embeddings.", 22) ? 8 : 32), "%s: bits %d", name, bits);
    }

    /* a spec group that sets weight_decay wins, for no_decay parameters too */
    build_groups("{\"name\": \"adamw\", \"weight_decay\": 0.05, \"param_groups\": [{\"match\": \"*.bias\","
                 " \"weight_decay\": 0.5}]}", m, g);
    for (int i = 0; i < m->n_params; i++) {
        const char *name = m->params[i].name;
        effective(&g->cfg, name, &wd, &bits);
        size_t len = strlen(name);
        double want = len > 5 && !strcmp(name + len - 5, ".bias") ? 0.5 : m->params[i].no_decay ? 0.0 : 0.05;
        ck_assert_msg(wd == want, "%s: wd %g, want %g", name, wd, want);
    }

    /* a spec group matching nothing is named with the spec's own index */
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"}, \"dataset\": {\"name\":"
                " \"fortunes-lang\"}, \"optimizer\": {\"param_groups\": [{\"match\": \"*.bias\"}, {\"match\": "
                "\"*.nothing\"}]}}", &s);
    ck_assert_int_eq(trainer_build_groups(&s, m->params, m->n_params, g, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "optimizer.param_groups[1].match");
    free(g);
    model_destroy(m);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ whole runs */

static octet_dataset fm_train, fm_eval;

/* A small Fashion-MNIST subset shared by the run tests (loaded once per test process). */
static void fashion_subset(size_t n_train, size_t n_eval)
{
    octet_err e;
    octet_dataset_free(&fm_train);
    octet_dataset_free(&fm_eval);
    octet_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.name = "fashion-mnist";
    ds.train_limit = n_train;
    ds.eval_limit = n_eval;
    ds.seed = 1;
    ck_assert_msg(octet_data_load(&ds, &fm_train, &fm_eval, &e) == OCTET_OK, "%s", e.message);
}

static const char *MLP_SPEC =
    "{\"model\": {\"arch\": \"mlp\", \"hidden\": [32, 16]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
    " \"optimizer\": {\"name\": \"%s\", \"lr\": 2e-3, \"min_8bit_size\": 256},"
    " \"training\": {\"epochs\": 3, \"batch_size\": 16, \"gradient_accumulation_steps\": 2, \"seed\": 5,"
    " \"device\": \"cpu\", \"warmup_steps\": 0.2, \"log_every\": 3}}";

static void mlp_spec(const char *optimizer, job_spec *s)
{
    char json[1024];
    snprintf(json, sizeof json, MLP_SPEC, optimizer);
    if (strcmp(optimizer, "adamw8bit")) { /* min_8bit_size is an 8-bit field */
        char *p = strstr(json, ", \"min_8bit_size\": 256");
        memmove(p, p + strlen(", \"min_8bit_size\": 256"), strlen(p + strlen(", \"min_8bit_size\": 256")) + 1);
    }
    tr_parse_ok(json, s);
}

typedef struct snapshot {
    float *w;
    size_t nw;
    char *state;
    size_t nstate;
} snapshot;

static void take_snapshot(trainer *t, snapshot *s)
{
    model *m = trainer_model(t);
    s->nw = (size_t)m->n_parameters;
    s->w = malloc(s->nw * sizeof *s->w);
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        ck_assert_int_eq(model_param_get(m, i, s->w + at), OCTET_OK);
        at += (size_t)m->params[i].n;
    }
    FILE *f = open_memstream(&s->state, &s->nstate);
    octet_err e;
    ck_assert_int_eq(optim_save(trainer_optim(t), f, &e), OCTET_OK);
    fclose(f);
}

static void free_snapshot(snapshot *s)
{
    free(s->w);
    free(s->state);
}

static void assert_same(const snapshot *a, const snapshot *b, const char *what)
{
    ck_assert_int_eq(a->nw, b->nw);
    size_t diff = 0;
    for (size_t i = 0; i < a->nw; i++)
        diff += memcmp(&a->w[i], &b->w[i], sizeof(float)) != 0;
    ck_assert_msg(diff == 0, "%s: %zu of %zu weights differ", what, diff, a->nw);
    ck_assert_int_eq(a->nstate, b->nstate);
    ck_assert_msg(memcmp(a->state, b->state, a->nstate) == 0, "%s: optimizer states differ", what);
}

typedef struct counter {
    int steps, epochs, restored, memory, starts;
    int cancel_at_step;           /* > 0: cancel once this many steps were logged... */
    int polls;                    /* cancellation polls so far */
    int cancel_after_polls;       /* > 0: cancel at this poll */
    int suspend_polls;            /* suspend polls so far */
    int suspend_after_polls;      /* > 0: suspend at this poll */
    int64_t progress_step;        /* the last on_progress step */
    double first_loss, last_eval_acc;
    double train_loss[8];         /* per epoch, as reported */
} counter;

static int cb_start(void *u, const trainer_info *i) { ((counter *)u)->starts++; return 0; }
static int cb_step(void *u, const trainer_step_log *s)
{
    counter *c = u;
    if (!c->steps++)
        c->first_loss = s->loss;
    ck_assert(isfinite(s->loss) && s->learning_rate >= 0 && s->grad_norm > 0);
    return 0;
}
static int cb_epoch(void *u, const trainer_epoch_metrics *m)
{
    counter *c = u;
    c->epochs++;
    c->restored += m->restored;
    c->last_eval_acc = m->eval_accuracy;
    if (m->epoch >= 1 && m->epoch <= 8)
        c->train_loss[m->epoch - 1] = m->train_loss;
    return 0;
}
static int cb_suspend(void *u)
{
    counter *c = u;
    return c->suspend_after_polls > 0 && ++c->suspend_polls >= c->suspend_after_polls;
}
static int cb_progress(void *u, int64_t step, int64_t total)
{
    counter *c = u;
    ck_assert_int_eq(step, c->progress_step ? c->progress_step + 1 : step);
    ck_assert_int_le(step, total);
    c->progress_step = step;
    return 0;
}
static int cb_memory(void *u, const trainer_memory *m, int final) { ((counter *)u)->memory++; return 0; }
static int cb_cancelled(void *u)
{
    counter *c = u;
    return c->cancel_after_polls > 0 && ++c->polls >= c->cancel_after_polls;
}

static trainer_options run_options(counter *c, const char *ckdir)
{
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    o.checkpoint_dir = ckdir;
    o.train_data = &fm_train;
    o.eval_data = &fm_eval;
    o.cb.user = c;
    o.cb.on_start = cb_start;
    o.cb.on_step = cb_step;
    o.cb.on_epoch = cb_epoch;
    o.cb.on_memory = cb_memory;
    o.cb.cancelled = cb_cancelled;
    o.cb.suspend = cb_suspend;
    o.cb.on_progress = cb_progress;
    return o;
}

/* A full run of spec s; its final weights and state into snap. */
static void full_run(const job_spec *s, snapshot *snap)
{
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    trainer *t = NULL;
    octet_err e;
    ck_assert_msg(trainer_open(s, &o, &t, &e) == OCTET_OK, "%s: %s", e.field, e.message);
    trainer_result r;
    ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(r.epochs_done, s->training.epochs);
    ck_assert_int_eq(c.epochs, s->training.epochs);
    ck_assert_int_eq(c.memory, 2);
    ck_assert_int_gt(c.steps, 0);
    take_snapshot(t, snap);
    trainer_close(t);
}

START_TEST(test_determinism)
{
    fashion_subset(200, 50);
    job_spec s;
    mlp_spec("adamw", &s);
    snapshot a, b;
    full_run(&s, &a);
    full_run(&s, &b);
    assert_same(&a, &b, "two runs with one seed");
    free_snapshot(&b);
    s.training.seed = 6;
    full_run(&s, &b);
    ck_assert_msg(memcmp(a.w, b.w, a.nw * sizeof *a.w) != 0, "another seed trained the same weights");
    free_snapshot(&a);
    free_snapshot(&b);
}
END_TEST

/* A run of spec s on train/eval with trainer_options.threads = threads; its weights and state
 * into snap. The calling thread keeps that count afterwards (trainer_train sets it). */
static void run_at(const job_spec *s, const octet_dataset *train, const octet_dataset *eval, int threads,
                   snapshot *snap)
{
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    o.train_data = train;
    o.eval_data = eval;
    o.threads = threads;
    trainer *t = NULL;
    octet_err e;
    ck_assert_msg(trainer_open(s, &o, &t, &e) == OCTET_OK, "%s: %s", e.field, e.message);
    trainer_result r;
    ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(octet_threads_current(), threads);
    take_snapshot(t, snap);
    trainer_close(t);
}

/* The CPU run is deterministic whatever the thread count (kernels/threads.h): the same weights
 * and optimizer state, bit for bit, at 1, 2 and 3 threads. The shapes reach every parallel path:
 * the MLP's 64x256x784 products are cut into GEMM tiles, its 200K-weight layer has its gradient
 * norm and AdamW step split over the threads; DistilBERT (with dropout) has tiled FFN products and
 * enough attention heads to run them in parallel. OpenBLAS's own threading would not pass this
 * (its sgemm results change with its thread count); the engine keeps it at one thread. */
START_TEST(test_same_weights_at_any_thread_count)
{
    fashion_subset(256, 64);
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [256, 128]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3},"
                " \"training\": {\"epochs\": 1, \"batch_size\": 64, \"seed\": 3, \"device\": \"cpu\"}}", &s);
    snapshot one, many;
    run_at(&s, &fm_train, &fm_eval, 1, &one);
    for (int threads = 2; threads <= 3; threads++) {
        run_at(&s, &fm_train, &fm_eval, threads, &many);
        char what[64];
        snprintf(what, sizeof what, "mlp at %d threads", threads);
        assert_same(&one, &many, what);
        free_snapshot(&many);
    }
    free_snapshot(&one);

    octet_dataset tr, ev;
    memset(&tr, 0, sizeof tr);
    memset(&ev, 0, sizeof ev);
    octet_err e;
    octet_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.name = "fortunes-lang";
    ds.train_limit = 32;
    ds.eval_limit = 16;
    ds.seed = 1;
    ck_assert_msg(octet_data_load(&ds, &tr, &ev, &e) == OCTET_OK, "%s", e.message);
    tr_parse_ok("{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"n_layers\": 1}},"
                " \"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 64},"
                " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3},"
                " \"training\": {\"epochs\": 1, \"batch_size\": 16, \"seed\": 9, \"device\": \"cpu\"}}", &s);
    run_at(&s, &tr, &ev, 1, &one);
    for (int threads = 2; threads <= 3; threads++) {
        run_at(&s, &tr, &ev, threads, &many);
        char what[64];
        snprintf(what, sizeof what, "distilbert at %d threads", threads);
        assert_same(&one, &many, what);
        free_snapshot(&many);
    }
    free_snapshot(&one);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);

    /* a count the policy cannot take is the option's fault */
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    o.threads = -1;
    trainer *t = NULL;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "threads");
    ck_assert_ptr_null(t);
}
END_TEST

/* Interrupts the run (after `stop_epochs` epochs, or by cancelling at poll `cancel_poll`) and
 * resumes it; the result must equal the uninterrupted run's. */
static void resume_case(const job_spec *s, int stop_epochs, int cancel_poll, const snapshot *want, const char *tag)
{
    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, tag), 0);
    counter c;
    memset(&c, 0, sizeof c);
    c.cancel_after_polls = cancel_poll;
    trainer_options o = run_options(&c, dir);
    o.stop_after_epochs = stop_epochs;
    octet_err e;
    trainer_result r;
    int rc = trainer_run(s, &o, &r, &e);
    ck_assert_msg(rc == (cancel_poll ? OCTET_ERR_CANCEL : OCTET_OK), "%s: %s", tag, e.message);
    ck_assert_int_eq(r.epochs_done, cancel_poll ? c.epochs : stop_epochs);
    int first_done = r.epochs_done;
    ck_assert_int_ge(first_done, 1);

    memset(&c, 0, sizeof c);
    o = run_options(&c, dir);
    o.resume = TRAINER_RESUME_REQUIRED;
    trainer *t = NULL;
    ck_assert_msg(trainer_open(s, &o, &t, &e) == OCTET_OK, "%s: resume: %s", tag, e.message);
    ck_assert_int_eq(trainer_get_info(t)->start_epoch, first_done);
    ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s: %s", tag, e.message);
    ck_assert_int_eq(c.restored, first_done);
    ck_assert_int_eq(c.epochs, s->training.epochs);
    snapshot got;
    take_snapshot(t, &got);
    trainer_close(t);
    assert_same(want, &got, tag);
    free_snapshot(&got);
    /* only the newest checkpoint is kept: the last epoch's, named by its step */
    int64_t step = 0;
    char path[512];
    ck_assert(ckpt_find_latest(dir, &step, path, sizeof path));
    ck_assert_int_eq(step, r.global_step);
    test_rmtree(dir);
}

/* Suspends a run at each of the given suspend polls in turn (each one a fresh run resumed from
 * the checkpoint the previous one wrote), then finishes it; weights, optimizer state and every
 * epoch's train_loss must equal the uninterrupted run's. */
static void suspend_case(const job_spec *s, const int *polls, int n, const char *tag)
{
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    trainer *t = NULL;
    octet_err e;
    trainer_result r;
    ck_assert_msg(trainer_open(s, &o, &t, &e) == OCTET_OK, "%s: %s", tag, e.message);
    ck_assert_int_eq(trainer_train(t, &r, &e), OCTET_OK);
    ck_assert_int_eq(r.suspended, 0);
    snapshot want, got;
    take_snapshot(t, &want);
    trainer_close(t);
    counter whole = c;

    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, tag), 0);
    int64_t last_step = -1;
    double losses[8] = {0};
    for (int i = 0; i <= n; i++) {
        memset(&c, 0, sizeof c);
        c.suspend_after_polls = i < n ? polls[i] : 0;
        o = run_options(&c, dir);
        o.resume = i ? TRAINER_RESUME_REQUIRED : TRAINER_RESUME_NO;
        ck_assert_msg(trainer_open(s, &o, &t, &e) == OCTET_OK, "%s run %d: %s", tag, i, e.message);
        ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s run %d: %s", tag, i, e.message);
        ck_assert_int_eq(r.suspended, i < n);
        ck_assert_int_ge(r.global_step, last_step); /* every run went on from where the last one stopped */
        last_step = r.global_step;
        for (int k = 0; k < 8; k++)
            if (c.train_loss[k] != 0.0)
                losses[k] = c.train_loss[k];
        if (i == n)
            take_snapshot(t, &got);
        trainer_close(t);
    }
    assert_same(&want, &got, tag);
    for (int k = 0; k < s->training.epochs; k++)
        ck_assert_msg(losses[k] == whole.train_loss[k], "%s: epoch %d train_loss %.17g != %.17g", tag, k + 1,
                      losses[k], whole.train_loss[k]);
    free_snapshot(&want);
    free_snapshot(&got);
    test_rmtree(dir);
}

START_TEST(test_suspend_resume)
{
    fashion_subset(200, 50);
    job_spec s;
    mlp_spec("adamw8bit", &s);
    s.training.log_every = 3;
    /* 7 optimizer steps an epoch: suspend inside epoch 1, inside epoch 2, then at once again
     * (a checkpoint rewritten at the step it was read from) */
    static const int polls[] = {5, 10, 1};
    suspend_case(&s, polls, 3, "suspend");
    /* accumulation: 7 batches in groups of 3 = 3 steps an epoch, the last group shorter */
    s.training.grad_accum = 3;
    static const int polls2[] = {2, 4};
    suspend_case(&s, polls2, 2, "suspend-accum");
}
END_TEST

START_TEST(test_resume_mlp)
{
    fashion_subset(200, 50);
    static const char *opts[] = {"adamw", "adamw8bit"};
    for (int k = 0; k < 2; k++) {
        job_spec s;
        mlp_spec(opts[k], &s);
        snapshot want;
        full_run(&s, &want);
        resume_case(&s, 1, 0, &want, "stop1");
        resume_case(&s, 2, 0, &want, "stop2");
        /* 200 samples / 16 = 13 batches an epoch; poll 20 is inside epoch 2 */
        resume_case(&s, 0, 20, &want, "cancel");
        free_snapshot(&want);
    }
}
END_TEST

/* DistilBERT with dropout: the resumed run must draw the same dropout masks. */
START_TEST(test_resume_distilbert)
{
    octet_dataset tr, ev;
    memset(&tr, 0, sizeof tr);
    memset(&ev, 0, sizeof ev);
    octet_err e;
    octet_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.name = "fortunes-lang";
    ds.train_limit = 48;
    ds.eval_limit = 16;
    ds.seed = 1;
    ck_assert_msg(octet_data_load(&ds, &tr, &ev, &e) == OCTET_OK, "%s", e.message);
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"n_layers\": 1}},"
                " \"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 24},"
                " \"optimizer\": {\"name\": \"adamw8bit\", \"lr\": 1e-3, \"min_8bit_size\": 1024,"
                " \"param_groups\": [{\"match\": \"*.word_embeddings.*\", \"optim_bits\": 32}]},"
                " \"training\": {\"epochs\": 2, \"batch_size\": 8, \"seed\": 9, \"log_every\": 2}}", &s);
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    o.train_data = &tr;
    o.eval_data = &ev;
    trainer *t = NULL;
    ck_assert_msg(trainer_open(&s, &o, &t, &e) == OCTET_OK, "%s: %s", e.field, e.message);
    trainer_result r;
    ck_assert_int_eq(trainer_train(t, &r, &e), OCTET_OK);
    snapshot want, got;
    take_snapshot(t, &want);
    trainer_close(t);

    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "bert"), 0);
    memset(&c, 0, sizeof c);
    o = run_options(&c, dir);
    o.train_data = &tr;
    o.eval_data = &ev;
    o.stop_after_epochs = 1;
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_OK);
    o.stop_after_epochs = 0;
    o.resume = TRAINER_RESUME_REQUIRED;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_OK);
    ck_assert_int_eq(trainer_train(t, &r, &e), OCTET_OK);
    take_snapshot(t, &got);
    trainer_close(t);
    assert_same(&want, &got, "distilbert resume");
    free_snapshot(&want);
    free_snapshot(&got);
    test_rmtree(dir);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
}
END_TEST

START_TEST(test_resume_refusals)
{
    fashion_subset(64, 16);
    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "refuse"), 0);
    job_spec s;
    mlp_spec("adamw", &s);
    s.training.epochs = 2;
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, dir);
    octet_err e;
    trainer *t = NULL;
    /* nothing to resume from */
    o.resume = TRAINER_RESUME_REQUIRED;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "checkpoint_dir");
    o.resume = TRAINER_RESUME_IF_ANY;
    o.stop_after_epochs = 1;
    trainer_result r;
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_OK);
    /* another learning rate trains differently: refused, naming the field */
    job_spec s2 = s;
    s2.optimizer.cfg.base.lr = 5e-3;
    ck_assert_int_eq(trainer_open(&s2, &o, &t, &e), OCTET_ERR_MISMATCH);
    ck_assert_str_eq(e.field, "optimizer.lr");
    /* another optimizer: refused */
    job_spec s3;
    mlp_spec("adamw8bit", &s3);
    s3.training.epochs = 2;
    ck_assert_int_ne(trainer_open(&s3, &o, &t, &e), OCTET_OK);
    /* the log interval and the device may change */
    job_spec s4 = s;
    s4.training.log_every = 1;
    ck_assert_int_eq(trainer_open(&s4, &o, &t, &e), OCTET_OK);
    ck_assert_int_eq(trainer_get_info(t)->start_epoch, 1);
    trainer_close(t);
    test_rmtree(dir);
}
END_TEST

/* A checkpoint whose files were replaced by FIFOs (a reader would block on them forever) is
 * refused at once when resuming, naming the checkpoint: the trainer state, the weights, the
 * optimizer state. */
START_TEST(test_resume_refuses_fifos)
{
    fashion_subset(32, 8);
    char dir[256], ck[512], fifo[1024];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "ckfifo"), 0);
    job_spec s;
    mlp_spec("adamw", &s);
    s.training.epochs = 2;
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, dir);
    o.stop_after_epochs = 1;
    octet_err e;
    trainer_result r;
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_OK);
    snprintf(ck, sizeof ck, "%s/checkpoint-1", dir);
    const char *files[3] = {CKPT_STATE, CKPT_WEIGHTS, CKPT_OPTIM};
    for (int i = 0; i < 3; i++) {
        char keep[1024], saved[1100];
        snprintf(keep, sizeof keep, "%s/%s", ck, files[i]);
        snprintf(saved, sizeof saved, "%s.saved", keep);
        ck_assert_int_eq(rename(keep, saved), 0);
        test_mkfifo(ck, files[i], fifo, sizeof fifo);
        memset(&c, 0, sizeof c);
        o = run_options(&c, dir);
        o.resume = TRAINER_RESUME_REQUIRED;
        trainer *t = NULL;
        ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_ERR_IO);
        ck_assert_msg(!strcmp(e.field, "checkpoint") && strstr(e.message, "not a regular file"), "%s: %s: %s",
                      files[i], e.field, e.message);
        ck_assert_int_eq(unlink(fifo), 0);
        ck_assert_int_eq(rename(saved, keep), 0);
    }
    test_rmtree(dir);
}
END_TEST

START_TEST(test_nan_stops)
{
    fashion_subset(128, 16);
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [16]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"sgd\", \"lr\": 1e30}, \"training\": {\"epochs\": 1, \"batch_size\": 8,"
                " \"max_grad_norm\": 0, \"lr_scheduler\": \"constant\"}}", &s);
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    octet_err e;
    trainer_result r;
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_ERR_NAN);
    ck_assert_ptr_nonnull(strstr(e.message, "step"));
    ck_assert_int_eq(c.epochs, 0);
}
END_TEST

/* Puts a NaN into the first weight of t's model. */
static void poison_first_weight(trainer *t)
{
    model *m = trainer_model(t);
    float *w = malloc((size_t)m->params[0].n * sizeof *w);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(model_param_get(m, 0, w), OCTET_OK);
    w[0] = NAN;
    ck_assert_int_eq(model_param_set(m, 0, w), OCTET_OK);
    free(w);
}

/* A run whose every step is skipped as non-finite fails however few steps it has (here 2, under
 * the three-in-a-row stop): one NaN weight makes every loss NaN, as NaN propagates through the
 * MLP's ReLU as through torch's (a ReLU that mapped NaN to 0 let such a model train "fine"). A
 * resumed run whose own steps are all skipped still succeeds when steps were applied before
 * its checkpoint. */
START_TEST(test_all_steps_skipped_fails)
{
    fashion_subset(16, 8);
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [16]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3}, \"training\": {\"epochs\": 1,"
                " \"batch_size\": 8, \"log_every\": 1000}}", &s);
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    trainer *t = NULL;
    octet_err e;
    trainer_result r;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_OK);
    poison_first_weight(t);
    ck_assert_int_eq(trainer_train(t, &r, &e), OCTET_ERR_NAN);
    ck_assert_str_eq(e.field, "optimizer.lr");
    ck_assert_msg(strstr(e.message, "no optimizer step was applied") && strstr(e.message, "2 steps"), "%s",
                  e.message);
    ck_assert_int_eq(r.global_step, 2);
    trainer_close(t);

    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "skipped"), 0);
    s.training.epochs = 2;
    memset(&c, 0, sizeof c);
    o = run_options(&c, dir);
    o.stop_after_epochs = 1;
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_OK);
    o.stop_after_epochs = 0;
    o.resume = TRAINER_RESUME_REQUIRED;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_OK);
    poison_first_weight(t);
    ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(r.global_step, 4);
    ck_assert_int_eq(optim_step_count(trainer_optim(t)), 2);
    trainer_close(t);
    test_rmtree(dir);
}
END_TEST

START_TEST(test_memory_figures)
{
    fashion_subset(64, 16);
    job_spec s;
    mlp_spec("adamw8bit", &s);
    s.training.epochs = 1;
    counter c;
    memset(&c, 0, sizeof c);
    trainer_options o = run_options(&c, NULL);
    trainer *t = NULL;
    octet_err e;
    ck_assert_int_eq(trainer_open(&s, &o, &t, &e), OCTET_OK);
    trainer_result r;
    ck_assert_int_eq(trainer_train(t, &r, &e), OCTET_OK);
    const trainer_memory *m = &r.memory;
    int64_t n = 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10;
    ck_assert_int_eq(m->n_parameters, n);
    ck_assert_int_eq(m->params_bytes, 4 * n);
    ck_assert_int_eq(m->grads_bytes, 4 * n);
    ck_assert_int_eq(m->adamw_bytes, 8 * n);
    ck_assert_int_eq(m->adam8bit_estimate_bytes, 2 * n);
    ck_assert_int_eq(m->optimizer_state_bytes, m->optimizer_state.total);
    ck_assert_int_gt(m->optimizer_state.codes, 0);   /* 784x32 weights are 8-bit */
    ck_assert_int_gt(m->optimizer_state.fp32, 0);    /* biases stay fp32 */
    ck_assert_int_lt(m->optimizer_state.total, m->adamw_bytes);
    ck_assert_int_gt(m->activations_peak, 0);
    ck_assert_int_ge(m->peak_total, m->params_bytes + m->grads_bytes + m->optimizer_state_bytes);
    json_t *j = trainer_memory_json(m);
    ck_assert_ptr_nonnull(json_object_get(j, "adamw_bytes"));
    json_decref(j);
    trainer_close(t);
}
END_TEST

/* ------------------------------------------------------------------ octet-train */

static int run_cli(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && ./octet-train %s 2>/dev/null", test_builddir(), args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_cli)
{
    char dir[256], path[512], args[2048], out[65536];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "cli"), 0);
    ck_assert_int_eq(system(NULL) != 0, 1);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
          " \"training\": {\"batch_size\": 0}}", f);
    fclose(f);
    snprintf(args, sizeof args, "%s", path);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 2);
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "field")), "training.batch_size");
    json_decref(j);
    ck_assert_int_eq(run_cli("", out, sizeof out), 2);
    /* -h / --help: usage for people on stdout, exit 0, whatever else is on the line */
    const char *help[3] = {"--help", "-h", "spec.json --device cpu -h"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(run_cli(help[i], out, sizeof out), 0);
        ck_assert_msg(!strncmp(out, "usage: octet-train SPEC.json", 28) && strstr(out, "--checkpoint-dir DIR") &&
                          strstr(out, "--threads N") && strstr(out, "exit status") &&
                          !json_loads(out, JSON_DISABLE_EOF_CHECK, NULL),
                      "%s: %s", help[i], out);
    }
    /* --threads takes 0 (the default) to OCTET_THREADS_MAX; anything else is a usage error */
    const char *bad_threads[3] = {"spec.json --threads -1", "spec.json --threads two", "spec.json --threads 1025"};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(run_cli(bad_threads[i], out, sizeof out) == 2 && strstr(out, "--threads"), "%s: %s",
                      bad_threads[i], out);
    }
    /* a spec that cannot be read is a bad spec too (the README's exit 2), with the JSON error
     * line: missing, a directory, a FIFO (refused, not waited on), unreadable, not JSON */
    char fifo[512], noperm[512], notjson[512];
    test_mkfifo(dir, "fifo.json", fifo, sizeof fifo);
    snprintf(noperm, sizeof noperm, "%s/noperm.json", dir);
    f = fopen(noperm, "w");
    fputs("{}", f);
    fclose(f);
    chmod(noperm, 0);
    snprintf(notjson, sizeof notjson, "%s/notjson.json", dir);
    f = fopen(notjson, "w");
    fputs("{\"model\": ", f);
    fclose(f);
    char none[512];
    snprintf(none, sizeof none, "%s/none.json", dir);
    const char *unreadable[5] = {none, dir, fifo, notjson, geteuid() != 0 ? noperm : NULL};
    for (int i = 0; i < 5; i++) {
        if (!unreadable[i])
            continue; /* root reads a file of mode 0 */
        ck_assert_msg(run_cli(unreadable[i], out, sizeof out) == 2, "%s: %s", unreadable[i], out);
        json_t *err = json_object_get(j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL), "error");
        ck_assert_msg(json_is_string(json_object_get(err, "message")), "%s: %s", unreadable[i], out);
        json_decref(j);
    }
    alarm(0); /* test_mkfifo's guard: the training runs below may take longer */

    snprintf(path, sizeof path, "%s/ok.json", dir);
    f = fopen(path, "w");
    fputs("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\","
          " \"train_limit\": 64, \"eval_limit\": 32}, \"training\": {\"epochs\": 2, \"batch_size\": 16,"
          " \"log_every\": 2}}", f);
    fclose(f);
    /* a checkpoint directory that cannot be made (under a regular file) is found before any
     * training: exit 2, a JSON error on checkpoint_dir, no step or epoch line */
    snprintf(args, sizeof args, "%s --device cpu --checkpoint-dir %s/ck", path, path);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 2);
    ck_assert_msg(!strstr(out, "\"event\""), "%s", out);
    j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "field")), "checkpoint_dir");
    json_decref(j);
    snprintf(args, sizeof args, "%s --device cpu --threads 2 --checkpoint-dir %s/ck", path, dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
    int steps = 0, epochs = 0, memory = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_msg(o != NULL, "not JSON: %s", line);
        const char *ev = json_string_value(json_object_get(o, "event"));
        ck_assert_ptr_nonnull(ev);
        steps += !strcmp(ev, "step");
        epochs += !strcmp(ev, "epoch");
        memory += !strcmp(ev, "memory");
        if (!strcmp(ev, "epoch"))
            ck_assert(json_is_number(json_object_get(o, "eval_accuracy")));
        json_decref(o);
    }
    ck_assert_int_eq(steps, 4); /* 4 steps an epoch, logged every 2 */
    ck_assert_int_eq(epochs, 2);
    ck_assert_int_eq(memory, 1);
    /* resuming a finished run replays its epochs and trains nothing */
    snprintf(args, sizeof args, "%s --checkpoint-dir %s/ck --resume", path, dir);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"restored\":true"));
    test_rmtree(dir);
}
END_TEST

/* Saves a 1-layer distilbert-tiny with `vocab` rows and 6 labels (fortunes-lang's) to dir the way
 * octet saves a model: config.json and model.safetensors, no vocab.txt. */
static void save_model_dir(const char *dir, int vocab)
{
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, &e), OCTET_OK);
    c.vocab_size = vocab;
    c.n_layers = 1;
    c.num_labels = 6;
    model *m = NULL;
    ck_assert_msg(distilbert_create(d, &c, 2, 16, 1, &m, &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(hfdir_save(m, dir, &e) == OCTET_OK, "%s", e.message);
    model_destroy(m);
    device_close(d);
}

/* A model directory without vocab.txt falls back to the byte tokenizer (the layout octet saves);
 * when its vocabulary cannot hold the byte ids, octet-train says so when it opens the run,
 * naming model.path and vocab.txt (exit 2), never with a token-id error from inside training. */
START_TEST(test_cli_model_dir_without_vocab)
{
    char dir[256], mdir[512], spec[512], args[1024], out[65536];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "novocab"), 0);
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    save_model_dir(mdir, 100);
    snprintf(spec, sizeof spec, "%s/spec.json", dir);
    FILE *f = fopen(spec, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"model\": {\"arch\": \"distilbert\", \"path\": \"%s\"}, \"dataset\": {\"name\": \"fortunes-lang\","
               " \"train_limit\": 16, \"eval_limit\": 8, \"max_length\": 16}, \"training\": {\"epochs\": 1,"
               " \"batch_size\": 8}}", mdir);
    fclose(f);
    snprintf(args, sizeof args, "%s --device cpu", spec);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 2);
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "field")), "model.path");
    const char *msg = json_string_value(json_object_get(err, "message"));
    ck_assert_msg(strstr(msg, "vocab.txt") && strstr(msg, "vocab_size is 100") && !strstr(msg, "token id"), "%s", msg);
    json_decref(j);
    /* a vocabulary that holds the byte ids trains */
    test_rmtree(mdir);
    save_model_dir(mdir, OCTET_TOK_BYTE_VOCAB);
    ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"event\":\"epoch\""));
    test_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ setup.sh serve */

/* Writes an executable shell script dir/name. */
static void write_script(const char *dir, const char *name, const char *body)
{
    char path[1024];
    test_write_file(dir, name, body, strlen(body), path, sizeof path);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

/* The text of dir/name ("" when it cannot be read; free()). */
static char *slurp(const char *dir, const char *name)
{
    char path[1024], *buf = NULL;
    size_t len = 0;
    octet_err e;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (octet_read_file(path, 1 << 20, "test", &buf, &len, &e) != OCTET_OK)
        buf = strdup("");
    return buf;
}

/* `setup.sh serve` hands the caller's octetd options on after its defaults, and announces no
 * address of its own: it used to print http://127.0.0.1:8080/ whatever --port or --listen said
 * (octetd's own "listening on" line gives the real one). Run on a scratch copy whose octetd,
 * make and dpkg-query are stand-ins, so nothing is installed, built or served. */
START_TEST(test_setup_serve_announcement)
{
    char dir[256], bin[512], cmd[2048];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "setup"), 0);
    snprintf(cmd, sizeof cmd, "cp '%s/setup.sh' '%s/setup.sh'", test_srcdir(), dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(bin, sizeof bin, "%s/bin", dir);
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    write_script(bin, "make", "#!/bin/sh\nexit 0\n");
    write_script(bin, "dpkg-query", "#!/bin/sh\necho installed\n");
    write_script(dir, "configure", "#!/bin/sh\nexit 0\n");
    test_write_text(dir, "Makefile", "");
    write_script(dir, "octetd", "#!/bin/sh\nprintf '%s\\n' \"$@\" >args\n"
                                "echo 'octetd 0.1.0 listening on http://0.0.0.0:9123/'\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && PATH='%s':\"$PATH\" ./setup.sh serve --port 9123 --listen=0.0.0.0 >out 2>err",
             dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    char *err = slurp(dir, "err"), *out = slurp(dir, "out"), *args = slurp(dir, "args");
    ck_assert_msg(strstr(err, "starting octetd") && !strstr(err, "8080") && !strstr(err, "127.0.0.1"), "%s", err);
    ck_assert_msg(strstr(out, "listening on http://0.0.0.0:9123/"), "%s", out);
    const char *tail = "--port\n9123\n--listen=0.0.0.0\n";
    ck_assert_msg(strlen(args) > strlen(tail) && !strcmp(args + strlen(args) - strlen(tail), tail) &&
                      strstr(args, "--db\ndata/octet.db\n"),
                  "octetd got: %s", args);
    free(err), free(out), free(args);
    test_rmtree(dir);
}
END_TEST

Suite *suite_trainer_loop(void)
{
    Suite *s = suite_create("trainer_loop");
    TCase *pieces = tcase_create("pieces");
    tcase_add_test(pieces, test_linear_schedule);
    tcase_add_test(pieces, test_constant_and_cosine);
    tcase_add_test(pieces, test_warmup_and_step_counts);
    tcase_add_test(pieces, test_binary_metrics);
    tcase_add_test(pieces, test_macro_f1);
    tcase_add_test(pieces, test_clip_by_hand);
    tcase_add_test(pieces, test_decay_groups);
    suite_add_tcase(s, pieces);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_determinism);
    tcase_add_test(runs, test_same_weights_at_any_thread_count);
    tcase_add_test(runs, test_resume_mlp);
    tcase_add_test(runs, test_suspend_resume);
    tcase_add_test(runs, test_resume_distilbert);
    tcase_add_test(runs, test_resume_refusals);
    tcase_add_test(runs, test_resume_refuses_fifos);
    tcase_add_test(runs, test_nan_stops);
    tcase_add_test(runs, test_all_steps_skipped_fails);
    tcase_add_test(runs, test_memory_figures);
    tcase_add_test(runs, test_cli);
    tcase_add_test(runs, test_cli_model_dir_without_vocab);
    tcase_add_test(runs, test_setup_serve_announcement);
    suite_add_tcase(s, runs);
    return s;
}
