/* check_models.h: the model suites (run by tests/unit/run_models) and the helpers they share:
 * a CPU device, the PyTorch reference script (run in a testlib.h scratch directory),
 * deterministic test weights and batches, and the per-tensor comparison used against PyTorch. */
#ifndef OCTET_CHECK_MODELS_H
#define OCTET_CHECK_MODELS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include "optim.h"
#include "train/distilbert.h"
#include "train/model.h"

Suite *suite_models(void);        /* check_models.c: shapes, names, counts, configs, init, dropout, learning */
Suite *suite_models_hfdir(void);  /* check_models_hfdir.c: model directories, save/load */
Suite *suite_models_ref(void);    /* check_models_ref.c: against PyTorch */
Suite *suite_models_half(void);   /* check_models_half.c: bf16 / fp16 activation storage */

/* The small DistilBERT of the model suites: dim 16, 2 layers, 4 heads, hidden 24, vocab 30,
 * 10 positions (distilbert.h's config; ck_assert on failure). */
void tm_small_config(distilbert_config *c, int num_labels, float dropout);

/* A batch of the small config: 3 rows of 6 tokens, lengths 6, 4, 2 with padding (id 0); token 0
 * is id 2, token t of row i id 4 + (i ki + t kt) % 25. b points into the struct. */
typedef struct tm_small_batch {
    int32_t ids[18], mask[18], labels[3];
    model_batch b;
} tm_small_batch;
void tm_make_small_batch(tm_small_batch *s, int ki, int kt, const int32_t labels[3]);

/* AdamW at learning rate lr over every parameter of m (ck_assert on failure). */
optim *tm_adamw(model *m, double lr);

/* A training forward and backward of m on b at m's current step, gradients zeroed first;
 * returns the loss, predictions into pred unless NULL (ck_assert on failure, with the model's
 * message). */
float tm_forward_backward(model *m, const model_batch *b, int32_t *pred);

/* One training step: m's step + 1, tm_forward_backward, then o's step (ck_assert on failure);
 * returns the loss. */
float tm_train_step(model *m, optim *o, const model_batch *b, int32_t *pred);

/* The toy task of the model suites, 300 training steps of batch 16 x 8 with opt on m (made for
 * at least that size, 2 labels): label 1 iff token 7 occurs in the padded sequence, which needs
 * attention over the tokens. Asserts the loss falls below a quarter of its start and more than
 * 90% right over the last 20 steps; `what` names the run in the printed line. */
void tm_toy_task_learns(model *m, optim *o, const char *what);

/* A CPU device (ck_assert on failure). */
device *tm_device(void);

/* Runs `/usr/bin/python3 tests/reference/models_ref.py <mode> <dir>` (OCTET_TORCH_PYTHON
 * overrides the interpreter). Returns 0, or -1 with a message in err (missing interpreter,
 * missing torch, the script's last output lines). */
int tm_run_reference(const char *mode, const char *dir, char *err, size_t cap);

/* Overwrites every parameter with test values that exercise everything (no zero biases):
 * LayerNorm weights 1 + N(0, 0.1), other vectors N(0, 0.1), embeddings N(0, 0.5), matrices
 * normal with std 1/sqrt(fan_in). */
void tm_fill_params(model *m, uint64_t seed);

/* A malloc'd host copy of parameter i's values or gradient. */
float *tm_param_host(model *m, int i);
float *tm_grad_host(model *m, int i);

/* The agreement of two arrays: err = max |got - want|, scale = max |want| (FLT_MIN when all
 * zero), worst = err / scale, at = index of the largest difference. */
typedef struct tm_cmp {
    double err, scale, worst;
    int64_t at;
} tm_cmp;
tm_cmp tm_compare(const float *got, const float *want, int64_t n);

#endif
