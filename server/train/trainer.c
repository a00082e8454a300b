/* trainer.c: the runner of one job (trainer.h): building the pieces from a spec, the
 * training loop with Hugging Face Trainer's semantics, evaluation, checkpoints and resume.
 * The JSON of the reports is in trainer_report.c, the optimizer groups in trainer_groups.c. */
#include "config.h"
#define LOG_PREFIX "trainer"
#include "train/trainer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "log.h"
#include "ops.h"
#include "ops_cuda.h"
#include "threads.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/distilbert.h"
#include "train/hfdir.h"
#include "train/mlp.h"
#include "train/schedule.h"
#include "train/tokenizer.h"
#include "train/trainer_impl.h"

#define NAN_STEPS_MAX 3 /* non-finite steps in a row before the run stops */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ building */

static int load_data(trainer *t, octet_err *e)
{
    if (t->opt.train_data) {
        t->train = t->opt.train_data;
        t->eval = t->opt.eval_data ? t->opt.eval_data : t->opt.train_data;
        return OCTET_OK;
    }
    const spec_dataset *d = &t->spec.dataset;
    char tf[PATH_MAX], ef[PATH_MAX];
    octet_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.name = d->name[0] ? d->name : NULL;
    ds.train_file = d->train_file[0] ? trainer_resolve_path(t->opt.data_dir, d->train_file, tf, sizeof tf) : NULL;
    ds.eval_file = d->eval_file[0] ? trainer_resolve_path(t->opt.data_dir, d->eval_file, ef, sizeof ef) : NULL;
    ds.train_limit = (size_t)d->train_limit;
    ds.eval_limit = (size_t)d->eval_limit;
    ds.seed = t->spec.training.seed;
    ds.num_labels = t->spec.model.num_labels;
    ds.fashion_mnist_dir = t->opt.fashion_mnist_dir;
    ds.fortunes_dir = t->opt.fortunes_dir;
    int rc = octet_data_load(&ds, &t->train_own, &t->eval_own, e);
    t->train = &t->train_own;
    t->eval = &t->eval_own;
    return rc;
}

int trainer_num_labels(const job_spec *spec, int num_classes, const octet_dataset *train, const octet_dataset *eval,
                       int *out, octet_err *e)
{
    int n = spec->model.num_labels ? spec->model.num_labels : num_classes;
    if (n < MODEL_MIN_CLASSES)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "the dataset has %d class: at least %d are needed", n,
                          MODEL_MIN_CLASSES);
    if (n > MODEL_MAX_LABELS)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "the dataset has %d classes: at most %d are supported", n,
                          MODEL_MAX_LABELS);
    const octet_dataset *sets[2] = {train, eval};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; sets[s] && i < sets[s]->n; i++)
            if (sets[s]->labels[i] < 0 || sets[s]->labels[i] >= n)
                return octet_fail(e, OCTET_ERR_ARG, "model.num_labels",
                                  "%s has label %d, beyond model.num_labels = %d", sets[s]->name,
                                  (int)sets[s]->labels[i], n);
    *out = n;
    return OCTET_OK;
}

/* The number of classes: model.num_labels, or the datasets'. */
static int resolve_labels(trainer *t, octet_err *e)
{
    int classes = t->train->num_classes > t->eval->num_classes ? t->train->num_classes : t->eval->num_classes;
    return trainer_num_labels(&t->spec, classes, t->train, t->eval, &t->num_labels, e);
}

/* dir/path when data_dir is set and path is relative, else path (trainer_impl.h). */
const char *trainer_resolve_path(const char *data_dir, const char *path, char *buf, size_t cap)
{
    if (!data_dir || !path || !*path || path[0] == '/')
        return path;
    snprintf(buf, cap, "%s/%s", data_dir, path);
    return buf;
}

/* The DistilBERT configuration of a job (trainer_impl.h) and its tokenizer: the model
 * directory's WordPiece, else the byte tokenizer (DESIGN.md: "a byte-level tokenizer for
 * models with no vocab"; hfdir_save writes no vocab.txt, so a directory octet saved from a
 * byte-level model has none). Without a vocab.txt the byte ids must fit the model's
 * embeddings: a directory whose vocab_size is smaller than the byte vocabulary is refused
 * here, naming model.path, instead of failing on a token id in the middle of training. A
 * preset keeps its own vocabulary (distilbert_preset): a published one (distilbert-base-*) is
 * the published model, its 28996 / 30522 rows included, and the byte ids 0..260 (the same
 * [PAD] 0 as its pad_token_id) index the first rows of that embedding; ours have exactly the
 * byte vocabulary. model.config.vocab_size overrides either; the other model.config fields
 * override a preset's (a model directory's config.json is taken as it is). */
int trainer_distilbert_config(const job_spec *spec, const char *model_dir, int num_labels, distilbert_config *cfg,
                              octet_tokenizer **tok, octet_err *e)
{
    const spec_model *m = &spec->model;
    int rc;
    *tok = NULL;
    if (m->path[0]) {
        if ((rc = hfdir_read_config(model_dir, cfg, tok, e)))
            return rc;
        if (!*tok && cfg->vocab_size < OCTET_TOK_BYTE_VOCAB)
            return octet_fail(e, OCTET_ERR_ARG, "model.path",
                              "%s has no vocab.txt, so texts would be tokenized as bytes (ids 0..%d), but its "
                              "config.json's vocab_size is %d: add the model's vocab.txt", model_dir,
                              OCTET_TOK_BYTE_VOCAB - 1, cfg->vocab_size);
    } else {
        if ((rc = distilbert_preset(m->preset, cfg, e)))
            return rc;
        const spec_model_config *k = &m->config;
        if (k->vocab_size && k->vocab_size < OCTET_TOK_BYTE_VOCAB)
            return octet_fail(e, OCTET_ERR_ARG, "model.config.vocab_size",
                              "the byte tokenizer needs a vocabulary of at least %d, got %d", OCTET_TOK_BYTE_VOCAB,
                              k->vocab_size);
        if (k->vocab_size) cfg->vocab_size = k->vocab_size;
        if (k->dim) cfg->dim = k->dim;
        if (k->n_layers) cfg->n_layers = k->n_layers;
        if (k->n_heads) cfg->n_heads = k->n_heads;
        if (k->hidden_dim) cfg->hidden_dim = k->hidden_dim;
        if (k->max_position_embeddings) cfg->max_position_embeddings = k->max_position_embeddings;
    }
    cfg->num_labels = num_labels;
    rc = m->dropout >= 0 ? distilbert_config_set_dropout(cfg, (float)m->dropout, e) : OCTET_OK;
    if (rc != OCTET_OK && *tok) {
        octet_tok_free(*tok);
        *tok = NULL;
    }
    return rc;
}

static int make_tokenizer(trainer *t, distilbert_config *cfg, octet_err *e)
{
    const spec_model *m = &t->spec.model;
    char dir[PATH_MAX];
    const char *path = trainer_resolve_path(t->opt.data_dir, m->path, dir, sizeof dir);
    int rc = trainer_distilbert_config(&t->spec, path, t->num_labels, cfg, &t->tok, e);
    if (rc)
        return rc;
    if (!t->tok && m->path[0])
        log_warn("%s has no vocab.txt: texts are tokenized as bytes", path);
    else if (!t->tok && cfg->vocab_size > OCTET_TOK_BYTE_VOCAB)
        log_info("%s without a model directory: texts are tokenized as bytes (ids 0..%d of its %d-row embedding)",
                 m->preset, OCTET_TOK_BYTE_VOCAB - 1, cfg->vocab_size);
    return t->tok ? OCTET_OK : octet_tok_new_bytes(&t->tok, e);
}

static int make_batchers(trainer *t, octet_err *e)
{
    const spec_training *tr = &t->spec.training;
    int rc = batcher_init(&t->btrain, t->train, t->tok, t->spec.dataset.max_length, tr->batch_size, e);
    if (rc == OCTET_OK)
        rc = batcher_init(&t->beval, t->eval, t->tok, t->spec.dataset.max_length, tr->eval_batch_size, e);
    if (rc == OCTET_OK && (t->train->n == 0 || t->eval->n == 0))
        rc = octet_fail(e, OCTET_ERR_ARG, t->train->n ? "dataset.eval_limit" : "dataset.train_limit",
                        "the %s set is empty", t->train->n ? "evaluation" : "training");
    int a = batcher_longest(&t->btrain), b = batcher_longest(&t->beval);
    t->max_len = a > b ? a : b;
    return rc;
}

/* The storage of DistilBERT's saved activations for training.precision: bf16 / fp16 storage
 * with bf16 / fp16 matmuls (half the activation memory; the arithmetic stays fp32), fp32
 * otherwise. The MLP always stores fp32 (mlp.c). */
static model_act_dtype act_dtype_of(spec_precision p)
{
    return p == SPEC_PREC_BF16 ? MODEL_ACT_BF16 : p == SPEC_PREC_FP16 ? MODEL_ACT_FP16 : MODEL_ACT_FP32;
}

static int make_distilbert(trainer *t, distilbert_config *cfg, int max_batch, octet_err *e)
{
    const spec_model *m = &t->spec.model;
    uint64_t seed = t->spec.training.seed;
    model_act_dtype act = act_dtype_of(t->spec.training.precision);
    if (m->path[0]) { /* the configuration trainer_distilbert_config read, and the weights */
        char dir[PATH_MAX];
        hfdir_options o = {t->num_labels, (float)m->dropout, max_batch, t->max_len, seed, act};
        hfdir_report rep;
        memset(&rep, 0, sizeof rep);
        const char *path = trainer_resolve_path(t->opt.data_dir, m->path, dir, sizeof dir);
        int rc = hfdir_load_distilbert(t->dev, path, &o, &t->m, NULL, &rep, e);
        if (rc == OCTET_OK)
            hfdir_report_log(&rep, path, "DistilBertForSequenceClassification");
        hfdir_report_free(&rep);
        return rc;
    }
    return distilbert_create_ex(t->dev, cfg, max_batch, t->max_len, seed, act, &t->m, e);
}

static int make_model(trainer *t, distilbert_config *cfg, octet_err *e)
{
    const spec_model *m = &t->spec.model;
    const spec_training *tr = &t->spec.training;
    int max_batch = tr->batch_size > tr->eval_batch_size ? tr->batch_size : tr->eval_batch_size;
    if (m->arch == SPEC_ARCH_DISTILBERT)
        return make_distilbert(t, cfg, max_batch, e);
    if (t->train->n_features == 0)
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "%s holds text: use arch distilbert", t->train->name);
    if (t->train->n_features > INT_MAX)
        return octet_fail(e, OCTET_ERR_ARG, "dataset", "too many features");
    return mlp_create(t->dev, (int)t->train->n_features, m->hidden, m->n_hidden, t->num_labels, max_batch,
                      tr->seed, &t->m, e);
}

static int make_optimizer(trainer *t, octet_err *e)
{
    int rc = trainer_build_groups(&t->spec, t->m->params, t->m->n_params, &t->groups, e);
    if (rc)
        return rc;
    optim_tensor *ts = calloc((size_t)t->m->n_params, sizeof *ts);
    if (!ts)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    for (int i = 0; i < t->m->n_params; i++) {
        const model_param *p = &t->m->params[i];
        ts[i].name = p->name;
        ts[i].ndim = p->ndim;
        memcpy(ts[i].shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
        ts[i].param = p->data;
        ts[i].grad = p->grad;
    }
    rc = optim_create(t->dev, &t->groups.cfg, ts, t->m->n_params, &t->o, e);
    if (rc == OCTET_ERR_NOMEM) { /* the figures: the exact layout asked, what the device has free */
        optim_state_bytes est;
        memset(&est, 0, sizeof est);
        optim_estimate(&t->groups.cfg, ts, t->m->n_params, &est, NULL);
        char what[96];
        snprintf(what, sizeof what, "the %s optimizer state", optim_kind_name(t->groups.cfg.kind));
        rc = device_alloc_fail(t->dev, e, "optimizer.name", est.total, what);
    }
    free(ts);
    return rc;
}

/* Step counts and the info record. */
static int plan_run(trainer *t, octet_err *e)
{
    const spec_training *tr = &t->spec.training;
    int64_t n_batches = ((int64_t)t->train->n + tr->batch_size - 1) / tr->batch_size;
    t->steps_per_epoch = sched_steps_per_epoch(n_batches, tr->grad_accum);
    t->total_steps = t->steps_per_epoch * tr->epochs;
    t->warmup_steps = sched_warmup_steps(tr, t->total_steps);
    t->perm = calloc(t->train->n, sizeof *t->perm);
    t->pred = calloc((size_t)tr->eval_batch_size, sizeof *t->pred);
    t->history = json_array();
    if (!t->perm || !t->pred || !t->history || metric_init(&t->mc, t->num_labels))
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    trainer_info *i = &t->info;
    i->device = device_name(t->dev);
    i->arch = spec_arch_name(t->spec.model.arch);
    i->n_train = (int64_t)t->train->n;
    i->n_eval = (int64_t)t->eval->n;
    i->num_labels = t->num_labels;
    i->n_parameters = t->m->n_parameters;
    i->max_len = t->max_len;
    i->steps_per_epoch = t->steps_per_epoch;
    i->total_steps = t->total_steps;
    i->warmup_steps = t->warmup_steps;
    i->epochs = tr->epochs;
    i->tokenizer = !t->tok ? "" : octet_tok_kind(t->tok) == OCTET_TOK_BYTES ? "bytes" : "wordpiece";
    return OCTET_OK;
}

/* training.precision on the opened device: the matmul mode (bf16 / fp16 tensor cores) and the
 * fp16 loss scaler; the third part, DistilBERT's bf16 / fp16 activation storage, is chosen when
 * the model is built (make_distilbert). spec_check_device has refused both on the CPU. Fails
 * with OCTET_ERR_ARG naming training.precision when the device will not take the mode. */
static int set_precision(trainer *t, octet_err *e)
{
    spec_precision p = t->spec.training.precision;
    loss_scale_init(&t->scaler, p == SPEC_PREC_FP16);
    if (p == SPEC_PREC_FP32)
        return OCTET_OK;
    int mode = p == SPEC_PREC_BF16 ? OPS_MATMUL_BF16 : OPS_MATMUL_FP16;
    int rc = ops_cuda_set_matmul_precision(t->dev, mode);
    if (rc != OCTET_OK)
        return octet_fail(e, OCTET_ERR_ARG, "training.precision", "the %s device does not take %s matmuls (%s)",
                          device_name(t->dev), spec_precision_name(p), octet_strerror(rc));
    t->matmul_mode = mode;
    return OCTET_OK;
}

static int open_device(trainer *t, octet_err *e)
{
    const char *want = t->opt.device ? t->opt.device : t->spec.training.device;
    int rc = device_open(want, t->opt.device_index, &t->dev, e);
    if (rc == OCTET_OK && !ops_for(t->dev) && !strcmp(want, "auto")) {
        log_info("no compute ops for %s in this build; training on the CPU", device_name(t->dev));
        device_close(t->dev);
        t->dev = NULL;
        rc = device_open("cpu", 0, &t->dev, e);
    }
    if (rc == OCTET_OK)
        rc = spec_check_device(&t->spec, device_kind(t->dev) == OCTET_DEV_CUDA, e);
    if (rc == OCTET_OK && !ops_for(t->dev))
        rc = octet_fail(e, OCTET_ERR_NODEV, "training.device", "this build has no compute ops for %s",
                        device_name(t->dev));
    if (rc == OCTET_OK && t->opt.device_mem_limit)
        device_set_limit(t->dev, t->opt.device_mem_limit);
    if (rc == OCTET_OK)
        rc = set_precision(t, e);
    return rc;
}

static int build(trainer *t, octet_err *e)
{
    distilbert_config cfg;
    distilbert_config_default(&cfg);
    int text = t->spec.model.arch == SPEC_ARCH_DISTILBERT;
    int rc = open_device(t, e);
    if (rc == OCTET_OK)
        rc = load_data(t, e);
    if (rc == OCTET_OK)
        rc = resolve_labels(t, e);
    if (rc == OCTET_OK && text)
        rc = make_tokenizer(t, &cfg, e);
    if (rc == OCTET_OK)
        rc = make_batchers(t, e);
    if (rc == OCTET_OK)
        rc = make_model(t, &cfg, e);
    if (rc == OCTET_OK)
        rc = make_optimizer(t, e);
    if (rc == OCTET_OK)
        rc = plan_run(t, e);
    return rc;
}

int trainer_open(const job_spec *spec, const trainer_options *opt, trainer **out, octet_err *e)
{
    *out = NULL;
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    t->spec = *spec;
    if (opt)
        t->opt = *opt;
    int rc = OCTET_OK;
    if (t->opt.threads < 0 || t->opt.threads > OCTET_THREADS_MAX)
        rc = octet_fail(e, OCTET_ERR_ARG, "threads", "must be 0 (this thread's setting) or 1..%d, got %d",
                        OCTET_THREADS_MAX, t->opt.threads);
    /* a checkpoint directory that cannot be written fails now, not after the first epoch */
    if (rc == OCTET_OK && t->opt.checkpoint_dir)
        rc = ckpt_check_dir(t->opt.checkpoint_dir, e);
    if (rc == OCTET_OK)
        rc = build(t, e);
    if (rc == OCTET_OK && t->opt.resume && !t->opt.checkpoint_dir)
        rc = octet_fail(e, OCTET_ERR_ARG, "checkpoint_dir", "resuming needs a checkpoint directory");
    if (rc == OCTET_OK && t->opt.resume)
        rc = trainer_resume(t, e);
    if (rc != OCTET_OK) {
        trainer_close(t);
        return rc;
    }
    *out = t;
    return OCTET_OK;
}

void trainer_close(trainer *t)
{
    if (!t)
        return;
    optim_destroy(t->o);
    model_destroy(t->m);
    batcher_free(&t->btrain);
    batcher_free(&t->beval);
    octet_tok_free(t->tok);
    octet_dataset_free(&t->train_own);
    octet_dataset_free(&t->eval_own);
    metric_free(&t->mc);
    json_decref(t->history);
    free(t->perm);
    free(t->pred);
    if (t->dev && t->matmul_mode != OPS_MATMUL_FP32) /* the mode table is keyed by the pointer */
        ops_cuda_set_matmul_precision(t->dev, OPS_MATMUL_FP32);
    device_close(t->dev);
    free(t);
}

model *trainer_model(trainer *t) { return t->m; }
optim *trainer_optim(trainer *t) { return t->o; }
const trainer_info *trainer_get_info(const trainer *t) { return &t->info; }

/* ------------------------------------------------------------------ the pieces of a step */

int trainer_clip_grads(model *m, double max_norm, double *norm)
{
    return ops_clip_grad_norm(m->dev, m->grad_list, m->grad_len, m->n_params, max_norm, norm);
}

void trainer_memory_get(trainer *t, trainer_memory *out)
{
    memset(out, 0, sizeof *out);
    device_mem_stats st;
    device_mem_stats_get(t->dev, &st);
    out->device = device_name(t->dev);
    out->n_parameters = t->m ? t->m->n_parameters : 0;
    out->params_bytes = st.current[MEM_PARAMS];
    out->grads_bytes = st.current[MEM_GRADS];
    out->optimizer_state_bytes = st.current[MEM_OPTIMIZER_STATE];
    if (t->o)
        optim_state_bytes_total(t->o, &out->optimizer_state);
    out->adam8bit_estimate_bytes = 2 * (size_t)out->n_parameters;
    out->adamw_bytes = 8 * (size_t)out->n_parameters;
    out->activations_peak = st.peak[MEM_ACTIVATIONS];
    out->workspace_peak = st.peak[MEM_WORKSPACE];
    out->peak_total = st.peak_total;
    out->driver_free = st.driver_free;
    out->driver_total = st.driver_total;
}

static int report_memory(trainer *t, int final)
{
    if (!t->opt.cb.on_memory)
        return OCTET_OK;
    trainer_memory mem;
    trainer_memory_get(t, &mem);
    return t->opt.cb.on_memory(t->opt.cb.user, &mem, final);
}

static int callback_failed(int rc, const char *what, octet_err *e)
{
    if (rc == OCTET_ERR_CANCEL)
        return octet_fail(e, rc, "", "cancelled by the %s callback", what);
    return octet_fail(e, rc < 0 ? rc : OCTET_ERR, "", "the %s callback stopped the run (%s)", what,
                      octet_strerror(rc < 0 ? rc : OCTET_ERR));
}

/* The lr factor of the step with 0-based index `step`. */
static double lr_factor(const trainer *t, int64_t step)
{
    return sched_lr_lambda(t->spec.training.lr_scheduler, step, t->total_steps, t->warmup_steps);
}

static double base_lr(const trainer *t) { return t->spec.optimizer.cfg.base.lr; }

/* Forward and backward of one training batch; the batch's mean loss into *loss. */
static int micro_step(trainer *t, const size_t *idx, int count, float dloss, double *loss, octet_err *e)
{
    model_batch b;
    int rc = batcher_make(&t->btrain, idx, count, &b, e);
    if (rc)
        return rc;
    model_output out = {0.0f, NULL, NULL};
    t->m->step++;
    if ((rc = t->m->vt->forward(t->m, &b, 1, &out, e)))
        return rc;
    if ((rc = t->m->vt->backward(t->m, dloss * loss_scale_factor(&t->scaler), e)))
        return rc;
    *loss = out.loss;
    return OCTET_OK;
}

/* fp16: multiplies every gradient by the loss scaler's inverse scale (GradScaler.unscale_). */
static int unscale_grads(trainer *t)
{
    if (!t->scaler.enabled)
        return OCTET_OK;
    float inv = loss_scale_inv(&t->scaler);
    int rc = OCTET_OK;
    for (int i = 0; i < t->m->n_params && rc == OCTET_OK; i++)
        rc = t->m->ops->scale(t->dev, t->m->params[i].grad, t->m->params[i].n, inv);
    return rc;
}

/* Unscales (fp16), clips, checks and applies the accumulated gradients; *applied = 0 when
 * skipped. */
static int apply_step(trainer *t, double *norm, int *applied, octet_err *e)
{
    int rc = unscale_grads(t);
    if (rc == OCTET_OK)
        rc = trainer_clip_grads(t->m, t->spec.training.max_grad_norm, norm);
    if (rc)
        return octet_fail(e, rc, "", "gradient clipping failed at step %lld", (long long)t->global_step + 1);
    *applied = isfinite(*norm);
    float scale_before = t->scaler.scale;
    if (loss_scale_update(&t->scaler, !*applied) && t->scaler.scale >= 1.0f) {
        /* the loss scaler's overflow: GradScaler skips the step and backs off, no more */
        log_info("step %lld: gradients not finite at loss scale %g; step skipped, scale now %g",
                 (long long)t->global_step + 1, (double)scale_before, (double)t->scaler.scale);
    } else if (!*applied) {
        t->nan_streak++;
        log_warn("step %lld: gradient norm is %g; the step is skipped", (long long)t->global_step + 1, *norm);
        if (t->nan_streak >= NAN_STEPS_MAX)
            return octet_fail(e, OCTET_ERR_NAN, "optimizer.lr",
                              "the loss or the gradients were not finite (NaN/Inf) at step %lld and the %d steps "
                              "before it; lower the learning rate or check the data",
                              (long long)t->global_step + 1, NAN_STEPS_MAX - 1);
    } else {
        t->nan_streak = 0;
        rc = optim_step(t->o, lr_factor(t, t->global_step));
        if (rc)
            return octet_fail(e, rc, "", "optimizer step %lld failed", (long long)t->global_step + 1);
    }
    t->global_step++;
    rc = model_zero_grad(t->m);
    return rc ? octet_fail(e, rc, "", "could not zero the gradients") : OCTET_OK;
}

static int log_step(trainer *t, double norm, int step_in_epoch, octet_err *e)
{
    trainer_step_log L;
    L.step = t->global_step;
    L.epoch = t->epochs_done + (double)step_in_epoch / (double)t->steps_per_epoch;
    L.loss = t->log_steps ? t->log_loss / t->log_steps : NAN;
    L.learning_rate = base_lr(t) * lr_factor(t, t->global_step);
    L.grad_norm = norm;
    L.elapsed_s = now_s() - t->t_start;
    t->log_loss = 0.0;
    t->log_steps = 0;
    int rc = t->opt.cb.on_step ? t->opt.cb.on_step(t->opt.cb.user, &L) : OCTET_OK;
    return rc ? callback_failed(rc, "step", e) : OCTET_OK;
}

static int check_cancel(trainer *t, octet_err *e)
{
    if (t->opt.cb.cancelled && t->opt.cb.cancelled(t->opt.cb.user))
        return octet_fail(e, OCTET_ERR_CANCEL, "", "cancelled at step %lld (epoch %d)", (long long)t->global_step,
                          t->epochs_done + 1);
    return OCTET_OK;
}

/* The steps after an optimizer step: memory report, logging. */
static int after_step(trainer *t, double norm, int applied, double group_loss, int step_in_epoch, octet_err *e)
{
    int rc = OCTET_OK;
    if (applied) {
        t->log_loss += group_loss;
        t->log_steps++;
        t->epoch_loss += group_loss;
        t->epoch_steps++;
    }
    if (!t->memory_reported) {
        t->memory_reported = 1;
        if ((rc = report_memory(t, 0)))
            return callback_failed(rc, "memory", e);
    }
    if (t->opt.cb.on_progress && (rc = t->opt.cb.on_progress(t->opt.cb.user, t->global_step, t->total_steps)))
        return callback_failed(rc, "progress", e);
    if (t->global_step % t->spec.training.log_every == 0)
        rc = log_step(t, norm, step_in_epoch, e);
    return rc;
}

#define TRAINER_SUSPENDED 1 /* train_epoch's status when the suspend callback ended the run */

/* The suspend callback: non-zero checkpoints the position and returns TRAINER_SUSPENDED. */
static int maybe_suspend(trainer *t, double t0, octet_err *e)
{
    if (!t->opt.cb.suspend || !t->opt.cb.suspend(t->opt.cb.user))
        return OCTET_OK;
    if (!t->opt.checkpoint_dir)
        return octet_fail(e, OCTET_ERR_ARG, "checkpoint_dir", "suspending a run needs a checkpoint directory");
    double before = t->epoch_seconds_before;
    t->epoch_seconds_before += now_s() - t0;
    int rc = trainer_checkpoint(t, 1, e);
    t->epoch_seconds_before = before;
    if (rc == OCTET_OK)
        log_info("suspended at step %lld (epoch %d, step %d of %lld in it); checkpoint written",
                 (long long)t->global_step, t->epochs_done + 1, t->step_in_epoch, (long long)t->steps_per_epoch);
    return rc == OCTET_OK ? TRAINER_SUSPENDED : rc;
}

/* One epoch of training over the shuffled set, from its first optimizer step or, after a
 * resume inside it, from the step reached. Returns TRAINER_SUSPENDED when suspended. */
static int train_epoch(trainer *t, double t0, octet_err *e)
{
    const spec_training *tr = &t->spec.training;
    size_t n = t->train->n, bs = (size_t)tr->batch_size;
    size_t n_batches = (n + bs - 1) / bs;
    batch_permutation(tr->seed, (uint64_t)t->epochs_done, n, t->perm);
    if (!t->resume_in_epoch) {
        t->epoch_loss = 0.0;
        t->epoch_steps = 0;
        t->step_in_epoch = 0;
        t->epoch_seconds_before = 0.0;
    }
    t->resume_in_epoch = 0;
    int rc = OCTET_OK;
    size_t first = (size_t)t->step_in_epoch * (size_t)tr->grad_accum;
    for (size_t g0 = first; g0 < n_batches && rc == OCTET_OK; g0 += (size_t)tr->grad_accum) {
        if ((rc = maybe_suspend(t, t0, e)) != OCTET_OK)
            break;
        size_t g1 = g0 + (size_t)tr->grad_accum < n_batches ? g0 + (size_t)tr->grad_accum : n_batches;
        float dloss = 1.0f / (float)(g1 - g0);
        double group_loss = 0.0, loss = 0.0, norm = 0.0;
        for (size_t bi = g0; bi < g1 && rc == OCTET_OK; bi++) {
            size_t at = bi * bs, count = at + bs <= n ? bs : n - at;
            if ((rc = check_cancel(t, e)) == OCTET_OK &&
                (rc = micro_step(t, t->perm + at, (int)count, dloss, &loss, e)) == OCTET_OK)
                group_loss += loss * dloss;
        }
        int applied = 0;
        if (rc == OCTET_OK && (rc = apply_step(t, &norm, &applied, e)) == OCTET_OK)
            rc = after_step(t, norm, applied, group_loss, ++t->step_in_epoch, e);
    }
    return rc;
}

/* ------------------------------------------------------------------ evaluation */

int trainer_evaluate(trainer *t, trainer_epoch_metrics *m, octet_err *e)
{
    size_t n = t->eval->n, bs = (size_t)t->spec.training.eval_batch_size;
    size_t *idx = malloc(bs * sizeof *idx);
    if (!idx)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    metric_reset(&t->mc);
    double loss_sum = 0.0;
    int rc = OCTET_OK;
    for (size_t at = 0; at < n && rc == OCTET_OK; at += bs) {
        size_t count = at + bs <= n ? bs : n - at;
        for (size_t r = 0; r < count; r++)
            idx[r] = at + r;
        model_batch b;
        model_output out = {0.0f, t->pred, NULL};
        if ((rc = batcher_make(&t->beval, idx, (int)count, &b, e)) == OCTET_OK &&
            (rc = t->m->vt->forward(t->m, &b, 0, &out, e)) == OCTET_OK) {
            loss_sum += (double)out.loss * (double)count;
            metric_add(&t->mc, b.labels, t->pred, (int)count);
        }
    }
    free(idx);
    m->eval_loss = n ? loss_sum / (double)n : 0.0;
    m->eval_accuracy = metric_accuracy(&t->mc);
    m->eval_f1 = metric_f1(&t->mc);
    m->eval_samples = (int64_t)n;
    return rc;
}

/* ------------------------------------------------------------------ epochs */

static int finish_epoch(trainer *t, double t0, octet_err *e)
{
    trainer_epoch_metrics m;
    memset(&m, 0, sizeof m);
    double t1 = now_s();
    int rc = trainer_evaluate(t, &m, e);
    if (rc)
        return rc;
    t->epochs_done++;
    m.epoch = t->epochs_done;
    m.step = t->global_step;
    m.train_loss = t->epoch_steps ? t->epoch_loss / t->epoch_steps : NAN;
    m.train_seconds = t1 - t0 + t->epoch_seconds_before;
    m.eval_seconds = now_s() - t1;
    m.train_samples_per_s = m.train_seconds > 0 ? (double)t->train->n / m.train_seconds : 0.0;
    m.learning_rate = base_lr(t) * lr_factor(t, t->global_step);
    t->last = m;
    t->have_last = 1;
    json_array_append_new(t->history, trainer_epoch_json(&m));
    if (t->opt.checkpoint_dir && (rc = trainer_checkpoint(t, 0, e)))
        return rc;
    rc = t->opt.cb.on_epoch ? t->opt.cb.on_epoch(t->opt.cb.user, &m) : OCTET_OK;
    return rc ? callback_failed(rc, "epoch", e) : OCTET_OK;
}

/* The failure of a run that ended without applying a single optimizer step: every step was
 * skipped as non-finite without NAN_STEPS_MAX of them in a row stopping it first (a short
 * run, or fp16, whose loss-scale overflows do not count toward that stop). The overflows are
 * steps not applied all the same: an fp16 run in which every step overflowed trained nothing
 * either. */
static int no_step_applied(const trainer *t, octet_err *e)
{
    char why[160] = "";
    if (t->scaler.enabled)
        snprintf(why, sizeof why, " (fp16: %lld of them overflowed the dynamic loss scale, which fell to %g; bf16 "
                 "has the range to avoid that)", (long long)t->scaler.skipped, (double)t->scaler.scale);
    return octet_fail(e, OCTET_ERR_NAN, "optimizer.lr",
                      "no optimizer step was applied: the loss or the gradients were not finite (NaN/Inf) at "
                      "every one of the %lld steps%s; lower the learning rate or check the data",
                      (long long)t->global_step, why);
}

int trainer_train(trainer *t, trainer_result *res, octet_err *e)
{
    t->t_start = now_s();
    int rc = device_bind_thread(t->dev); /* this thread may not be the one that opened it */
    if (rc)
        rc = octet_fail(e, rc, "training.device", "could not bind this thread to the %s device",
                        device_name(t->dev));
    if (rc == OCTET_OK && t->opt.threads > 0) /* the CPU ops' threads, for this thread (threads.h) */
        octet_threads_set(t->opt.threads);
    if (rc == OCTET_OK && t->opt.cb.on_start && (rc = t->opt.cb.on_start(t->opt.cb.user, &t->info)))
        rc = callback_failed(rc, "start", e);
    if (rc == OCTET_OK)
        rc = trainer_replay_restored(t, e);
    int run_epochs = 0;
    while (rc == OCTET_OK && t->epochs_done < t->spec.training.epochs) {
        if (t->opt.stop_after_epochs > 0 && run_epochs >= t->opt.stop_after_epochs)
            break;
        double t0 = now_s();
        if ((rc = train_epoch(t, t0, e)) == OCTET_OK)
            rc = finish_epoch(t, t0, e);
        run_epochs++;
    }
    int suspended = rc == TRAINER_SUSPENDED;
    if (suspended)
        rc = OCTET_OK;
    if (rc == OCTET_OK && !suspended && t->global_step > 0 && optim_step_count(t->o) == 0)
        rc = no_step_applied(t, e);
    if (rc == OCTET_OK && !suspended) {
        int mr = report_memory(t, 1);
        if (mr)
            rc = callback_failed(mr, "memory", e);
    }
    if (res) {
        memset(res, 0, sizeof *res);
        res->epochs_done = t->epochs_done;
        res->global_step = t->global_step;
        res->have_metrics = t->have_last;
        res->last = t->last;
        trainer_memory_get(t, &res->memory);
        res->seconds = now_s() - t->t_start;
        res->suspended = suspended;
    }
    return rc;
}

int trainer_run(const job_spec *spec, const trainer_options *opt, trainer_result *res, octet_err *e)
{
    trainer *t = NULL;
    int rc = trainer_open(spec, opt, &t, e);
    if (rc == OCTET_OK)
        rc = trainer_train(t, res, e);
    trainer_close(t);
    return rc;
}
