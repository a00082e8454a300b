/* check_trainer_estimate.c: the memory estimate of a job spec (server/train/estimate.h) against
 * what a real run of the same spec books in the device's ledger, the admission rule, the
 * device probe, the published presets, the models catalog and octet-train's admission
 * (suite_trainer_estimate).
 *
 * Estimate against run. Each spec is estimated (trainer_estimate_spec on the CPU) and then run
 * (trainer_open, one epoch of a few optimizer steps with an evaluation, the final memory
 * figures); the run's figures must equal the estimate's, every one EXACTLY (margin 0):
 * parameters, weights, gradients, the optimizer state in its layout (codes, absmax, maps,
 * fp32, total, and the ledger's optimizer_state category), the activations' and the
 * workspace's peaks, and the ledger's peak over all categories. Exact because the estimate
 * sizes the same buffers with the same code (the parameter lists the models are built from,
 * the trainer's optimizer groups, the optimizer's planner, the models' activation layouts) and
 * the trainer allocates them all in trainer_open and nothing afterwards (a step, the evaluation
 * and the memory report go through host memory), so the peak is their sum. The one bound —
 * DistilBERT's activations are sized for dataset.max_length, the real run for the longest
 * tokenized example capped there — is met with equality on fortunes-lang with the byte
 * tokenizer (its longest fortunes pass 128 bytes), which each DistilBERT case checks
 * (trainer_info.max_len == the estimate's max_length). Cases: the MLP on fashion-mnist under
 * adamw, adamw8bit with a param_group at optim_bits 32 and min_8bit_size, adafactor and sgd
 * with momentum, the eval batch larger than the training batch; distilbert-tiny under the same
 * four; distilbert-small; an inline config; a model directory; the published
 * distilbert-base-cased (one step of it: see the published preset below). Half storage (bf16) is checked against the
 * layout written out here from distilbert.c's description (check_train_estimate_device.c does
 * it against a real CUDA run where a GPU is present).
 *
 * A preset is the published model: distilbert-base-cased / -uncased keep their 28996 / 30522
 * vocabulary rows when run without a vocab.txt (the byte tokenizer's ids index the first 261),
 * counted by Hugging Face's formula for DistilBertForSequenceClassification written here, with
 * the published 66,955,010 (uncased, 2 labels) and 65,783,042 (cased); ours (small, tiny) have
 * the 261-row byte vocabulary; model.config.vocab_size still overrides.
 *
 * octet-train: a DistilBERT far beyond the device (dim 8192, 64 layers) is refused before
 * anything is allocated (exit 2, the field and the figures, well under a second, a small peak
 * RSS), and so is a small job under a --memory-limit below its peak, while the same job under a
 * limit above its peak runs. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include "check_trainer.h"
#include "device.h"
#include "fileio.h"
#include "optim_impl.h"
#include "testlib.h"
#include "train/distilbert.h"
#include "train/estimate.h"
#include "train/hfdir.h"
#include "train/models_catalog.h"
#include "train/tokenizer.h"
#include "estimate_check.h"

/* ------------------------------------------------------------------ estimate against run */

static trainer_options cpu_options(void)
{
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    return o;
}

static void estimate_ok(const job_spec *s, const trainer_options *o, trainer_estimate *est)
{
    octet_err e;
    octet_err_clear(&e);
    int rc = trainer_estimate_spec(s, o, est, &e);
    ck_assert_msg(rc == OCTET_OK, "estimate refused: %s: %s", e.field, e.message);
}

/* The estimate of spec `json` against a run of one epoch of it on the CPU (estimate_check.c). */
static trainer_estimate estimate_vs_run(const char *label, const char *json)
{
    return estimate_vs_run_on(label, json, "cpu", NULL, NULL);
}

static const char *const optimizers[4] = {
    "{\"name\": \"adamw\", \"lr\": 1e-3}",
    "{\"name\": \"adamw8bit\", \"lr\": 1e-3, \"min_8bit_size\": 1024,"
    " \"param_groups\": [{\"match\": \"%s\", \"optim_bits\": 32}]}",
    "{\"name\": \"adafactor\", \"lr\": 1e-3}",
    "{\"name\": \"sgd\", \"lr\": 1e-2, \"momentum\": 0.9}",
};

START_TEST(test_mlp_against_run)
{
    char opt[512], json[2048], label[64];
    snprintf(opt, sizeof opt, optimizers[_i], "layers.2.*");
    snprintf(json, sizeof json,
             "{\"model\": {\"arch\": \"mlp\", \"hidden\": [64, 48]}, \"dataset\": {\"name\": \"fashion-mnist\","
             " \"train_limit\": 96, \"eval_limit\": 40}, \"optimizer\": %s,"
             " \"training\": {\"epochs\": 1, \"batch_size\": 32, \"eval_batch_size\": 40, \"device\": \"cpu\"}}",
             opt);
    snprintf(label, sizeof label, "mlp %s", _i == 0 ? "adamw" : _i == 1 ? "adamw8bit" : _i == 2 ? "adafactor" : "sgd");
    trainer_estimate est = estimate_vs_run(label, json);
    ck_assert_int_eq(est.batch_size, 40); /* the larger of the two batches sizes the activations */
    ck_assert_str_eq(est.batch_field, "training.eval_batch_size");
    ck_assert_int_eq(est.n_parameters, (784 + 1) * 64 + (64 + 1) * 48 + (48 + 1) * 10);
    if (_i == 1) { /* the 8-bit layout: only layers.0.weight is 8-bit */
        ck_assert_uint_gt(est.optimizer_state.codes, 0);
        ck_assert_uint_eq(est.optimizer_state.codes, 2u * 784 * 64); /* layers.2.* fp32, layers.4 too small */
        ck_assert_uint_eq(est.optimizer_state.maps, 2u * 256 * 4);
    }
    if (_i == 2)
        ck_assert_uint_gt(est.workspace_bytes, 0); /* Adafactor's scratch: the one CPU workspace */
    else
        ck_assert_uint_eq(est.workspace_bytes, 0);
}
END_TEST

/* fortunes-lang at max_length 128 with the byte tokenizer: the longest fortunes reach 128. */
#define FORTUNES "\"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 128, \"train_limit\": 24, \"eval_limit\": 24}"

START_TEST(test_distilbert_tiny_against_run)
{
    char opt[512], json[2048], label[64];
    snprintf(opt, sizeof opt, optimizers[_i], "*.word_embeddings.*");
    snprintf(json, sizeof json,
             "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"}, " FORTUNES ","
             " \"optimizer\": %s, \"training\": {\"epochs\": 1, \"batch_size\": 8, \"device\": \"cpu\"}}",
             opt);
    snprintf(label, sizeof label, "distilbert-tiny %s",
             _i == 0 ? "adamw" : _i == 1 ? "adamw8bit" : _i == 2 ? "adafactor" : "sgd");
    trainer_estimate est = estimate_vs_run(label, json);
    ck_assert_int_eq(est.max_length, 128);
    ck_assert_int_eq(est.num_labels, 6);
    if (_i == 1) /* word_embeddings (261 x 64) at 32 bits, the other matrices 8-bit */
        ck_assert(est.optimizer_state.codes > 0 && est.optimizer_state.fp32 >= 8u * 261 * 64);
}
END_TEST

START_TEST(test_distilbert_small_and_inline_against_run)
{
    estimate_vs_run("distilbert-small adamw8bit",
                    "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-small\"}, " FORTUNES ","
                    " \"optimizer\": {\"name\": \"adamw8bit\"}, \"training\": {\"epochs\": 1, \"batch_size\": 8,"
                    " \"eval_batch_size\": 4, \"device\": \"cpu\"}}");
    trainer_estimate est = estimate_vs_run(
        "inline config adamw",
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"dim\": 48,"
        " \"n_layers\": 1, \"n_heads\": 4, \"hidden_dim\": 96, \"vocab_size\": 300, \"max_position_embeddings\": 128}},"
        " " FORTUNES ", \"optimizer\": {\"name\": \"adamw\"}, \"training\": {\"epochs\": 1, \"batch_size\": 8,"
        " \"device\": \"cpu\"}}");
    int64_t d = 48, h = 96, L = 6;
    ck_assert_int_eq(est.n_parameters, 300 * d + 128 * d + 2 * d + 4 * (d * d + d) + 4 * d + (d * h + h) +
                                           (h * d + d) + d * d + d + d * L + L);
    ck_assert_str_eq(est.model_field, "model.config.dim");
}
END_TEST

/* A Hugging Face model directory (config.json and model.safetensors, no vocab.txt: the layout
 * octet saves) fine-tuned: its config.json sizes the model (dim 32, 1 layer, FFN 80, 261 rows),
 * the job's labels its head. */
START_TEST(test_model_dir_against_run)
{
    char dir[256], json[1024];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "estdir"), 0);
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, &e), OCTET_OK);
    c.n_layers = 1;
    c.dim = 32;
    c.hidden_dim = 80;
    c.num_labels = 6; /* fortunes-lang's, so the checkpoint's head fits */
    model *m = NULL;
    ck_assert_msg(distilbert_create(d, &c, 2, 16, 1, &m, &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(hfdir_save(m, dir, &e) == OCTET_OK, "%s", e.message);
    model_destroy(m);
    device_close(d);
    snprintf(json, sizeof json, "{\"model\": {\"arch\": \"distilbert\", \"path\": \"%s\"}, " FORTUNES ","
             " \"optimizer\": {\"name\": \"adamw8bit\", \"min_8bit_size\": 512}, \"training\": {\"epochs\": 1,"
             " \"batch_size\": 8, \"device\": \"cpu\"}}", dir);
    trainer_estimate est = estimate_vs_run("model directory adamw8bit", json);
    ck_assert_str_eq(est.model_field, "model.path");
    int64_t dd = 32, h = 80, L = 6;
    ck_assert_int_eq(est.n_parameters, 261 * dd + 512 * dd + 2 * dd + 4 * (dd * dd + dd) + 4 * dd + (dd * h + h) +
                                           (h * dd + dd) + dd * dd + dd + dd * L + L);
    test_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ a preset is the published model */

/* Hugging Face's DistilBertForSequenceClassification, from its published architecture:
 * embeddings word (V x d) + position (512 x d) + LayerNorm (2d); per layer q/k/v/out_lin
 * (d x d + d each), sa_layer_norm and output_layer_norm (2d each), lin1 (d x h + h), lin2
 * (h x d + d); pre_classifier (d x d + d); classifier (d x L + L). */
static int64_t hf_distilbert_params(int64_t V, int64_t d, int64_t layers, int64_t h, int64_t L)
{
    int64_t embeddings = V * d + 512 * d + 2 * d;
    int64_t layer = 4 * (d * d + d) + 2 * (2 * d) + (d * h + h) + (h * d + d);
    return embeddings + layers * layer + (d * d + d) + (d * L + L);
}

/* A two-class text set in memory (for specs with num_labels 2). */
static void two_class_text(octet_dataset *d, size_t n)
{
    memset(d, 0, sizeof *d);
    d->name = strdup("two-class");
    d->n = n;
    d->num_classes = 2;
    d->text = calloc(n, sizeof *d->text);
    d->labels = calloc(n, sizeof *d->labels);
    ck_assert(d->name && d->text && d->labels);
    for (size_t i = 0; i < n; i++) {
        d->text[i] = strdup(i % 2 ? "an example of the second class, long enough" : "first class text, also long");
        d->labels[i] = (int32_t)(i % 2);
    }
}

static void free_text(octet_dataset *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->text[i]);
    free(d->text);
    free(d->labels);
    free(d->name);
    memset(d, 0, sizeof *d);
}

START_TEST(test_preset_counts_published)
{
    static const struct { const char *name; int64_t V, d, layers, h, published; } presets[4] = {
        {"distilbert-base-cased", 28996, 768, 6, 3072, 65783042},
        {"distilbert-base-uncased", 30522, 768, 6, 3072, 66955010},
        {"distilbert-small", 261, 256, 4, 1024, 0},
        {"distilbert-tiny", 261, 64, 2, 256, 0},
    };
    octet_dataset tr;
    two_class_text(&tr, 8);
    trainer_options o = cpu_options();
    o.train_data = &tr;
    for (int i = 0; i < 4; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"%s\", \"num_labels\": 2},"
                 " \"dataset\": {\"name\": \"x\"}, \"training\": {\"device\": \"cpu\"}}", presets[i].name);
        job_spec s;
        tr_parse_ok(json, &s);
        trainer_estimate est;
        estimate_ok(&s, &o, &est);
        int64_t want = hf_distilbert_params(presets[i].V, presets[i].d, presets[i].layers, presets[i].h, 2);
        ck_assert_msg(est.n_parameters == want, "%s: %lld, the published formula %lld", presets[i].name,
                      (long long)est.n_parameters, (long long)want);
        if (presets[i].published)
            ck_assert_int_eq(est.n_parameters, presets[i].published);
        distilbert_config c;
        ck_assert_int_eq(distilbert_preset(presets[i].name, &c, NULL), OCTET_OK);
        ck_assert_int_eq(c.vocab_size, presets[i].V);
        ck_assert_int_eq(distilbert_count_params(&c), want);
        ck_assert_int_eq(c.n_heads, presets[i].d == 768 ? 12 : 4);
        ck_assert_int_eq(c.max_position_embeddings, 512);
    }
    free_text(&tr);
}
END_TEST

/* distilbert-base-cased without a model directory is the published model: 28996 embedding
 * rows (not the byte tokenizer's 261), the byte tokenizer's ids indexing its first rows, one
 * training step and an evaluation run; the estimate matches it. Ours keep 261 rows; an inline
 * vocab_size still overrides either. */
START_TEST(test_published_preset_without_vocab)
{
    trainer_estimate est = estimate_vs_run(
        "distilbert-base-cased sgd",
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-base-cased\"}, \"dataset\": {\"name\":"
        " \"fortunes-lang\", \"max_length\": 16, \"train_limit\": 4, \"eval_limit\": 2}, \"optimizer\": {\"name\":"
        " \"sgd\", \"lr\": 1e-3}, \"training\": {\"epochs\": 1, \"batch_size\": 2, \"device\": \"cpu\"}}");
    ck_assert_int_eq(est.n_parameters, hf_distilbert_params(28996, 768, 6, 3072, 6));
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-base-uncased\"}, \"dataset\":"
                " {\"name\": \"fortunes-lang\", \"max_length\": 8, \"train_limit\": 2, \"eval_limit\": 2},"
                " \"optimizer\": {\"name\": \"sgd\", \"lr\": 1e-3}, \"training\": {\"batch_size\": 1, \"device\": \"cpu\"}}",
                &s);
    trainer_options o = cpu_options();
    trainer *t = NULL;
    octet_err e;
    ck_assert_msg(trainer_open(&s, &o, &t, &e) == OCTET_OK, "%s", e.message);
    ck_assert_str_eq(trainer_get_info(t)->tokenizer, "bytes");
    model_param *wte = model_find_param(trainer_model(t), "distilbert.embeddings.word_embeddings.weight");
    ck_assert_ptr_nonnull(wte);
    ck_assert_int_eq(wte->shape[0], 30522);
    ck_assert_int_eq(trainer_get_info(t)->n_parameters, hf_distilbert_params(30522, 768, 6, 3072, 6));
    trainer_close(t);
    /* ours: the byte vocabulary; an inline vocab_size overrides a published preset's */
    const char *specs[2] = {
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"}, \"dataset\": {\"name\":"
        " \"fortunes-lang\", \"max_length\": 8, \"train_limit\": 2, \"eval_limit\": 2}, \"training\": {\"device\": \"cpu\"}}",
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-base-cased\", \"config\": {\"vocab_size\": 300}},"
        " \"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 8, \"train_limit\": 2, \"eval_limit\": 2},"
        " \"training\": {\"device\": \"cpu\"}}"};
    const int rows[2] = {OCTET_TOK_BYTE_VOCAB, 300};
    for (int i = 0; i < 2; i++) {
        tr_parse_ok(specs[i], &s);
        ck_assert_msg(trainer_open(&s, &o, &t, &e) == OCTET_OK, "%s", e.message);
        wte = model_find_param(trainer_model(t), "distilbert.embeddings.word_embeddings.weight");
        ck_assert_int_eq(wte->shape[0], rows[i]);
        trainer_estimate est2;
        estimate_ok(&s, &o, &est2);
        ck_assert_int_eq(est2.n_parameters, trainer_get_info(t)->n_parameters);
        trainer_close(t);
    }
}
END_TEST

/* ------------------------------------------------------------------ half storage */

/* Floats of one tensor of n floats in the activation block: every tensor starts 64-byte
 * aligned (16 floats). */
static int64_t al(int64_t n) { return (n + 15) / 16 * 16; }
/* The same for n 16-bit values. */
static int64_t alh(int64_t n) { return al((n + 1) / 2); }

/* DistilBERT's activation block for (B, T) as distilbert.c describes it, in bytes. Shared by
 * both storages: ids, mask (BT int32), emb, emb_ln (BTC), their LayerNorm statistics (BT);
 * the head: pooled, pre, pre_act (BC), logits (BL), losses, targets, labels, pred (B), the loss
 * (1); scratch: attention work (BHTT), dx, dtmp, dq, dk, dv (BTC), dff (BTF), dlogits (BL),
 * dpre, dpooled (BC). fp32 storage: per layer q, k, v, ctx, res1, ln1, res2, ln2 (BTC), att
 * (BHTT), fc1 and gelu (BTF), four LayerNorm statistics (BT). Half storage: per layer the four
 * statistics in fp32 and q, k, v, att, ctx, res1, ln1, fc1, res2, ln2 in 16 bits (gelu is
 * recomputed), plus one fp32 working layer holding a whole block's tensors without statistics. */
static size_t db_activation_formula(int64_t B, int64_t T, int64_t C, int64_t H, int64_t F, int64_t Lb, int64_t L,
                                    int half)
{
    int64_t BT = B * T, BTC = BT * C, BTF = BT * F, BHTT = B * H * T * T;
    int64_t f = 2 * al(BT) + 2 * al(BTC) + 2 * al(BT);
    int64_t block32 = 8 * al(BTC) + al(BHTT) + 2 * al(BTF);
    if (half)
        f += Lb * (4 * al(BT) + 8 * alh(BTC) + alh(BHTT) + alh(BTF)) + block32;
    else
        f += Lb * (block32 + 4 * al(BT));
    f += 3 * al(B * C) + al(B * L) + al(B) + al(1) + 3 * al(B);
    f += al(BHTT) + 5 * al(BTC) + al(BTF) + al(B * L) + 2 * al(B * C);
    return (size_t)f * 4;
}

START_TEST(test_half_activations_formula)
{
    const char *json = "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-small\"}, " FORTUNES ","
                       " \"training\": {\"batch_size\": 6, \"eval_batch_size\": 6, \"precision\": \"%s\"}}";
    char buf[1024];
    trainer_estimate e32, e16;
    job_spec s;
    octet_err e;
    snprintf(buf, sizeof buf, json, "fp32");
    tr_parse_ok(buf, &s);
    ck_assert_int_eq(trainer_estimate_on(&s, NULL, "cuda", &e32, &e), OCTET_OK);
    snprintf(buf, sizeof buf, json, "bf16");
    tr_parse_ok(buf, &s);
    ck_assert_msg(trainer_estimate_on(&s, NULL, "cuda", &e16, &e) == OCTET_OK, "%s", e.message);
    ck_assert_uint_eq(e32.activations_bytes, db_activation_formula(6, 128, 256, 4, 1024, 4, 6, 0));
    ck_assert_uint_eq(e16.activations_bytes, db_activation_formula(6, 128, 256, 4, 1024, 4, 6, 1));
    ck_assert_uint_lt(e16.activations_bytes, e32.activations_bytes * 7 / 10); /* about half */
    ck_assert_str_eq(e16.precision, "bf16");
    /* the rest is the fp32 run's: master weights, gradients and the optimizer stay fp32 */
    ck_assert_uint_eq(e16.params_bytes, e32.params_bytes);
    ck_assert_uint_eq(e16.optimizer_state.total, e32.optimizer_state.total);
    /* CUDA books the optimizer's descriptor and scalar tables as workspace; the CPU does not */
    ck_assert_uint_gt(e32.workspace_bytes, 0);
    /* and bf16 on the CPU is refused as the trainer refuses it */
    ck_assert_int_eq(trainer_estimate_on(&s, NULL, "cpu", &e16, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "training.precision");
}
END_TEST

/* On CUDA the optimizer's launch tables live in device memory and are booked as workspace: one
 * descriptor per tensor and one scalar record per group (the base group included); the CPU twin
 * reads both in host memory. An MLP 784-16-10 under sgd has 4 tensors and 2 groups (the base and
 * the Trainer's no-decay group of the biases, "*.bias"). */
START_TEST(test_cuda_workspace_tables)
{
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [16]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"sgd\", \"momentum\": 0.9}}", &s);
    trainer_estimate cpu, cuda;
    octet_err e;
    ck_assert_int_eq(trainer_estimate_on(&s, NULL, "cpu", &cpu, &e), OCTET_OK);
    ck_assert_int_eq(trainer_estimate_on(&s, NULL, "cuda", &cuda, &e), OCTET_OK);
    ck_assert_uint_eq(cpu.workspace_bytes, 0);
    ck_assert_uint_eq(cuda.workspace_bytes, 4 * sizeof(optim_tensor_desc) + 2 * sizeof(optim_group_scalars));
    ck_assert_uint_eq(cuda.peak_bytes, cpu.peak_bytes + cuda.workspace_bytes);
    ck_assert_str_eq(cuda.device, "cuda");
}
END_TEST

/* ------------------------------------------------------------------ errors, the device, JSON */

/* The estimate fails where trainer_open would, naming the same field. */
START_TEST(test_estimate_errors_as_trainer)
{
    static const struct { const char *json; const char *field; } bad[] = {
        {"{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fortunes-lang\"}}", "model.arch"},
        {"{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"}, \"dataset\": {\"name\":"
         " \"fashion-mnist\"}}", "model.arch"},
        {"{\"model\": {\"arch\": \"mlp\", \"hidden\": [8], \"num_labels\": 5}, \"dataset\": {\"name\": \"fashion-mnist\"}}",
         "model.num_labels"},
        {"{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
         " \"optimizer\": {\"name\": \"adamw\", \"param_groups\": [{\"match\": \"nothing.*\", \"lr\": 1}]}}",
         "optimizer.param_groups[0].match"},
        {"{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"vocab_size\": 100}},"
         " \"dataset\": {\"name\": \"fortunes-lang\"}}", "model.config.vocab_size"},
        {"{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
         " \"training\": {\"precision\": \"bf16\"}}", "training.precision"},
        /* two faults: the first the run meets (the model's configuration, then the data's fit) */
        {"{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"vocab_size\": 100}},"
         " \"dataset\": {\"name\": \"fashion-mnist\"}}", "model.config.vocab_size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        job_spec s;
        tr_parse_ok(bad[i].json, &s);
        trainer_options o = cpu_options();
        trainer_estimate est;
        octet_err e1, e2;
        octet_err_clear(&e1);
        octet_err_clear(&e2);
        int rc = trainer_estimate_spec(&s, &o, &est, &e1);
        ck_assert_msg(rc == OCTET_ERR_ARG && !strcmp(e1.field, bad[i].field), "%zu: %d %s: %s", i, rc, e1.field,
                      e1.message);
        trainer *t = NULL;
        ck_assert_int_eq(trainer_open(&s, &o, &t, &e2), rc);
        ck_assert_str_eq(e2.field, e1.field);
        ck_assert_uint_eq(est.peak_bytes, 0);
    }
    /* a fashion-mnist directory that is not there: IO, as the run */
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"}}", &s);
    trainer_options o = cpu_options();
    o.fashion_mnist_dir = "/nonexistent";
    trainer_estimate est;
    octet_err e;
    ck_assert_int_eq(trainer_estimate_spec(&s, &o, &est, &e), OCTET_ERR_IO);
    ck_assert_str_eq(e.field, "dataset.name");
#ifndef HAVE_CUDA
    o = cpu_options();
    o.device = "cuda";
    ck_assert_int_eq(trainer_estimate_spec(&s, &o, &est, &e), OCTET_ERR_NODEV);
    ck_assert_str_eq(e.field, "training.device");
#endif
}
END_TEST

START_TEST(test_device_probe)
{
    size_t fr = 0, tot = 0;
    const char *kind = NULL;
    octet_err e;
    ck_assert_int_eq(device_mem_probe("cpu", 0, 0, &kind, &fr, &tot, &e), OCTET_OK);
    ck_assert_str_eq(kind, "cpu");
    ck_assert_uint_gt(tot, 0);
    ck_assert_uint_gt(fr, 0);
    ck_assert_uint_le(fr, tot);
    /* the host's MemAvailable, as an opened CPU device reports it */
    device *d = NULL;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    size_t dfr = 0, dtot = 0;
    device_mem_available(d, &dfr, &dtot);
    ck_assert_uint_eq(dtot, tot);
    ck_assert_msg(dfr / 4 < fr && fr / 4 < dfr, "probe %zu, device %zu", fr, dfr); /* the same figure, moments apart */
    device_close(d);
    /* a cap wins when smaller */
    ck_assert_int_eq(device_mem_probe("cpu", 0, 1000000, NULL, &fr, &tot, &e), OCTET_OK);
    ck_assert_uint_eq(fr, 1000000);
    ck_assert_uint_eq(tot, 1000000);
    ck_assert_int_eq(device_mem_probe("tpu", 0, 0, NULL, &fr, &tot, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "training.device");
    char why[256];
    if (!device_cuda_usable(why, sizeof why)) {
        ck_assert_int_eq(device_mem_probe("cuda", 0, 0, NULL, &fr, &tot, &e), OCTET_ERR_NODEV);
        ck_assert_str_eq(e.field, "training.device");
        ck_assert_int_eq(device_mem_probe("auto", 0, 0, &kind, &fr, &tot, &e), OCTET_OK);
        ck_assert_str_eq(kind, "cpu");
    }
    /* the estimate carries the figures, the cap included */
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"}}", &s);
    trainer_options o = cpu_options();
    o.device_mem_limit = 12345678;
    trainer_estimate est;
    estimate_ok(&s, &o, &est);
    ck_assert_uint_eq(est.device_free, 12345678);
    ck_assert_uint_eq(est.device_total, 12345678);
}
END_TEST

START_TEST(test_estimate_json)
{
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adamw8bit\", \"min_8bit_size\": 16}}", &s);
    trainer_options o = cpu_options();
    o.device_mem_limit = 1u << 30;
    trainer_estimate est;
    estimate_ok(&s, &o, &est);
    json_t *j = trainer_estimate_json(&est);
    ck_assert_ptr_nonnull(j);
    static const char *const keys[] = {"device", "parameters", "params_bytes", "grads_bytes", "optimizer_state",
                                       "optimizer_state_bytes", "adam8bit_rule_bytes", "adamw_bytes",
                                       "activations_bytes", "workspace_bytes", "peak_bytes", "device_free_bytes",
                                       "device_total_bytes", "fits", "assumed"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_msg(json_object_get(j, keys[i]) != NULL, "no %s", keys[i]);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "parameters")), est.n_parameters);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "peak_bytes")), (json_int_t)est.peak_bytes);
    json_t *st = json_object_get(j, "optimizer_state");
    ck_assert_int_eq(json_integer_value(json_object_get(st, "codes")), (json_int_t)est.optimizer_state.codes);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "total")),
                     json_integer_value(json_object_get(j, "optimizer_state_bytes")));
    ck_assert(json_is_true(json_object_get(j, "fits")));
    json_t *as = json_object_get(j, "assumed");
    ck_assert_int_eq(json_integer_value(json_object_get(as, "num_labels")), 10);
    ck_assert(json_is_null(json_object_get(as, "max_length")));
    ck_assert_int_eq(json_integer_value(json_object_get(as, "batch_size")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "adamw_bytes")), 8 * est.n_parameters);
    json_decref(j);
    est.device_total = 0; /* unknown: fits is null */
    j = trainer_estimate_json(&est);
    ck_assert(json_is_null(json_object_get(j, "fits")));
    json_decref(j);
}
END_TEST

/* ------------------------------------------------------------------ admission */

static trainer_estimate parts(size_t weights, size_t state, size_t acts, const char *arch, int batch, int len)
{
    trainer_estimate t;
    memset(&t, 0, sizeof t);
    t.device = "cpu";
    t.params_bytes = t.grads_bytes = weights / 2;
    t.optimizer_state.total = state;
    t.activations_bytes = acts;
    t.peak_bytes = weights + state + acts;
    t.arch = arch;
    t.batch_size = batch;
    t.max_length = len;
    t.optimizer = "adamw";
    t.batch_field = "training.batch_size";
    t.model_field = !strcmp(arch, "mlp") ? "model.hidden" : "model.preset";
    return t;
}

START_TEST(test_admit_rule)
{
    static const struct { size_t w, s, a; const char *arch; int batch, len; const char *field; } cases[] = {
        {100, 200, 800, "distilbert", 16, 128, "training.batch_size"},   /* activations, usual length */
        {100, 200, 800, "distilbert", 16, 512, "dataset.max_length"},    /* activations, long sequences */
        {100, 200, 800, "distilbert", 1, 64, "dataset.max_length"},      /* the batch is already 1 */
        {100, 200, 800, "mlp", 64, 0, "training.batch_size"},
        {100, 200, 800, "mlp", 1, 0, "model.hidden"},
        {100, 800, 200, "distilbert", 16, 128, "optimizer.name"},        /* the optimizer state */
        {800, 200, 100, "distilbert", 16, 128, "model.preset"},          /* the weights */
        {400, 400, 100, "distilbert", 16, 128, "model.preset"},          /* AdamW's tie: the model */
        {400, 400, 400, "distilbert", 16, 128, "training.batch_size"},   /* a tie with the activations */
        {800, 200, 100, "mlp", 16, 0, "model.hidden"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trainer_estimate t = parts(cases[i].w, cases[i].s, cases[i].a, cases[i].arch, cases[i].batch, cases[i].len);
        octet_err e;
        octet_err_clear(&e);
        ck_assert_int_eq(trainer_admit(&t, t.peak_bytes, &e), OCTET_OK); /* exactly enough */
        ck_assert_int_eq(trainer_admit(&t, t.peak_bytes - 1, &e), OCTET_ERR_NOMEM);
        ck_assert_msg(!strcmp(e.field, cases[i].field), "case %zu: %s, want %s", i, e.field, cases[i].field);
        char want[64];
        snprintf(want, sizeof want, "needs %zu bytes", t.peak_bytes);
        ck_assert_msg(strstr(e.message, want), "%s", e.message);
        snprintf(want, sizeof want, "can give %zu (", t.peak_bytes - 1);
        ck_assert_msg(strstr(e.message, want) && strstr(e.message, cases[i].field), "%s", e.message);
    }
    /* the eval batch, when it is the larger, is the field to lower */
    trainer_estimate t = parts(10, 10, 100, "distilbert", 32, 128);
    t.batch_field = "training.eval_batch_size";
    octet_err e;
    ck_assert_int_eq(trainer_admit(&t, 50, &e), OCTET_ERR_NOMEM);
    ck_assert_str_eq(e.field, "training.eval_batch_size");
    ck_assert_msg(strstr(e.message, "32 rows x 128 tokens"), "%s", e.message);
}
END_TEST

/* ------------------------------------------------------------------ the models catalog */

START_TEST(test_models_catalog)
{
    json_t *cat = trainer_models_catalog(2);
    ck_assert_ptr_nonnull(cat);
    json_t *models = json_object_get(cat, "models");
    ck_assert(json_is_array(models));
    int seen = 0, mlp = 0;
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        ck_assert_ptr_nonnull(name);
        if (!strcmp(name, "mlp")) {
            mlp = 1;
            ck_assert_ptr_nonnull(json_string_value(json_object_get(m, "parameters_formula")));
            json_t *ex = json_object_get(m, "example");
            ck_assert_int_eq(json_integer_value(json_object_get(ex, "parameters")),
                             (784 + 1) * 256 + (256 + 1) * 128 + (128 + 1) * 100 + (100 + 1) * 2);
            continue;
        }
        distilbert_config c;
        ck_assert_int_eq(distilbert_preset(name, &c, NULL), OCTET_OK);
        json_t *cfg = json_object_get(m, "config");
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "vocab_size")), c.vocab_size);
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "dim")), c.dim);
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "n_layers")), c.n_layers);
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "n_heads")), c.n_heads);
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "hidden_dim")), c.hidden_dim);
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "max_position_embeddings")), 512);
        ck_assert(json_real_value(json_object_get(cfg, "seq_classif_dropout")) == 0.2);
        int published = json_is_true(json_object_get(m, "published"));
        ck_assert_int_eq(published, !strncmp(name, "distilbert-base-", 16));
        int64_t want = hf_distilbert_params(c.vocab_size, c.dim, c.n_layers, c.hidden_dim, 2);
        ck_assert_int_eq(json_integer_value(json_object_get(m, "parameters")), want);
        if (!strcmp(name, "distilbert-base-uncased"))
            ck_assert_int_eq(want, 66955010);
        seen++;
    }
    ck_assert_int_eq(seen, 4);
    ck_assert_int_eq(mlp, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(cat, "num_labels")), 2);
    json_decref(cat);
    /* the head follows num_labels: (d + 1) per extra label */
    cat = trainer_models_catalog(6);
    m = json_array_get(json_object_get(cat, "models"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(m, "name")), "distilbert-base-uncased");
    ck_assert_int_eq(json_integer_value(json_object_get(m, "parameters")), 66955010 + 4 * 769);
    json_decref(cat);
    ck_assert_ptr_null(trainer_models_catalog(0));
}
END_TEST

/* ------------------------------------------------------------------ octet-train's admission */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Runs octet-train with args; its stdout into out, the exit status returned, the wall time and
 * the peak RSS (KiB) of the largest child so far into *seconds and *rss_kb. */
static int run_train(const char *args, char *out, size_t cap, double *seconds, long *rss_kb)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && exec ./octet-train %s 2>/dev/null", test_builddir(), args);
    double t0 = now_s();
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    *seconds = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    *rss_kb = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_spec(const char *dir, const char *name, const char *json, char *path, size_t cap)
{
    test_write_file(dir, name, json, strlen(json), path, cap);
}

START_TEST(test_cli_admission)
{
    char dir[256], path[512], args[1024], out[65536];
    double secs, base_secs;
    long rss, base_rss;
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "admit"), 0);
    /* what the program itself costs (a CUDA build maps cuBLAS: some 200 MiB of RSS, 0.2 s) */
    ck_assert_int_eq(run_train("--help", out, sizeof out, &base_secs, &base_rss), 0);
    /* 64 layers of dim 8192: some 50 G parameters, 800 GB with AdamW. Refused before anything is
     * allocated; under a 2 GiB cap, so that a build without admission fails after 2 GiB, not
     * after all the host's memory. */
    const char *huge = "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-base-uncased\", \"config\":"
                       " {\"dim\": 8192, \"n_layers\": 64, \"n_heads\": 64, \"hidden_dim\": 32768}}, \"dataset\":"
                       " {\"name\": \"fortunes-lang\"}, \"training\": {\"epochs\": 1, \"batch_size\": 8,"
                       " \"device\": \"cpu\"}}";
    write_spec(dir, "huge.json", huge, path, sizeof path);
    snprintf(args, sizeof args, "%s --memory-limit 2147483648", path);
    int rc = run_train(args, out, sizeof out, &secs, &rss);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "out_of_memory");
    ck_assert_str_eq(json_string_value(json_object_get(err, "field")), "model.config.dim");
    const char *msg = json_string_value(json_object_get(err, "message"));
    ck_assert_msg(strstr(msg, "the job needs ") && strstr(msg, "can give 2147483648 (") && strstr(msg, "weights "),
                  "%s", msg);
    json_decref(j);
    ck_assert_msg(!strstr(out, "\"event\""), "%s", out);
    printf("octet-train refused the 64 x 8192 DistilBERT in %.3f s (--help: %.3f s), peak RSS %ld KiB (--help: %ld)\n",
           secs, base_secs, rss, base_rss);
    ck_assert_msg(secs < base_secs + 0.5, "took %.2f s", secs);
    ck_assert_msg(rss < base_rss + 64 * 1024, "peak RSS %ld KiB against %ld: something was allocated", rss, base_rss);
    /* without a cap the device's free memory is the bound (in process: a run would take it all) */
    job_spec hs;
    tr_parse_ok(huge, &hs);
    trainer_options ho = cpu_options();
    trainer_estimate hest;
    estimate_ok(&hs, &ho, &hest);
    ck_assert_uint_gt(hest.device_free, 0);
    octet_err he;
    ck_assert_int_eq(trainer_admit(&hest, hest.device_free, &he), OCTET_ERR_NOMEM);
    ck_assert_str_eq(he.field, "model.config.dim");

    /* a small job: refused under a cap below its peak, naming the largest part; runs above it */
    write_spec(dir, "small.json",
               "{\"model\": {\"arch\": \"mlp\", \"hidden\": [32]}, \"dataset\": {\"name\": \"fashion-mnist\","
               " \"train_limit\": 64, \"eval_limit\": 32}, \"optimizer\": {\"name\": \"adamw\"},"
               " \"training\": {\"epochs\": 1, \"batch_size\": 16, \"device\": \"cpu\"}}",
               path, sizeof path);
    job_spec s;
    char *text = NULL;
    size_t len = 0;
    octet_err e;
    ck_assert_int_eq(octet_read_file(path, 1 << 20, "spec", &text, &len, &e), OCTET_OK);
    tr_parse_ok(text, &s);
    free(text);
    trainer_options o = cpu_options();
    trainer_estimate est;
    estimate_ok(&s, &o, &est);
    snprintf(args, sizeof args, "%s --memory-limit %zu", path, est.peak_bytes - 1);
    ck_assert_int_eq(run_train(args, out, sizeof out, &secs, &rss), 2);
    j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    err = json_object_get(j, "error");
    /* AdamW's 8 B per parameter ties with the weights and gradients: the model is named */
    ck_assert_str_eq(json_string_value(json_object_get(err, "field")), "model.hidden");
    msg = json_string_value(json_object_get(err, "message"));
    char want[96];
    snprintf(want, sizeof want, "needs %zu bytes", est.peak_bytes);
    ck_assert_msg(strstr(msg, want), "%s", msg);
    snprintf(want, sizeof want, "can give %zu (", est.peak_bytes - 1);
    ck_assert_msg(strstr(msg, want), "%s", msg);
    json_decref(j);
    snprintf(args, sizeof args, "%s --memory-limit %zu", path, est.peak_bytes);
    rc = run_train(args, out, sizeof out, &secs, &rss);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "\"event\":\"epoch\""));
    char *mem = strstr(out, "\"event\":\"memory\"");
    ck_assert_ptr_nonnull(mem);
    snprintf(want, sizeof want, "\"peak_bytes\":%zu", est.peak_bytes);
    ck_assert_msg(strstr(out, want), "the run's peak is not the estimate's %zu: %s", est.peak_bytes, out);
    /* the option's own errors */
    const char *bad[5] = {"--memory-limit", "--memory-limit 12x", "--memory-limit -5", "--memory-limit 0",
                          "--memory-limit 99999999999999999999999"};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "%s %s", path, bad[i]);
        ck_assert_msg(run_train(args, out, sizeof out, &secs, &rss) == 2, "%s: %s", bad[i], out);
        ck_assert_ptr_nonnull(strstr(out, "\"error\""));
    }
    test_rmtree(dir);
}
END_TEST

Suite *suite_trainer_estimate(void)
{
    Suite *s = suite_create("trainer_estimate");
    TCase *runs = tcase_create("against_runs");
    tcase_set_timeout(runs, 300);
    tcase_add_loop_test(runs, test_mlp_against_run, 0, 4);
    tcase_add_loop_test(runs, test_distilbert_tiny_against_run, 0, 4);
    tcase_add_test(runs, test_distilbert_small_and_inline_against_run);
    tcase_add_test(runs, test_model_dir_against_run);
    tcase_add_test(runs, test_published_preset_without_vocab);
    suite_add_tcase(s, runs);
    TCase *rules = tcase_create("rules");
    tcase_set_timeout(rules, 120); /* the error cases open real runs: fashion-mnist loads each time */
    tcase_add_test(rules, test_preset_counts_published);
    tcase_add_test(rules, test_half_activations_formula);
    tcase_add_test(rules, test_cuda_workspace_tables);
    tcase_add_test(rules, test_estimate_errors_as_trainer);
    tcase_add_test(rules, test_device_probe);
    tcase_add_test(rules, test_estimate_json);
    tcase_add_test(rules, test_admit_rule);
    tcase_add_test(rules, test_models_catalog);
    suite_add_tcase(s, rules);
    TCase *cli = tcase_create("octet_train");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, test_cli_admission);
    suite_add_tcase(s, cli);
    return s;
}
