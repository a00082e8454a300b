/* schedule.h: the learning-rate schedules and the evaluation metrics of the training loop,
 * as pure functions so that tests can hold them against Hugging Face's formulas and
 * scikit-learn's definitions.
 *
 * Schedules return the factor that optim_step() multiplies every group's lr by, for the
 * optimizer step with 0-based index `step` (Hugging Face's LambdaLR: the first update uses
 * lambda(0)); `total` is the number of optimizer steps of the whole run, `warmup` the warm-up
 * steps (Transformers' get_*_schedule_with_warmup):
 *   linear    step < W: step / max(1, W);  else max(0, (T - step) / max(1, T - W))
 *   constant  step < W: step / max(1, W);  else 1   (HF constant_with_warmup; W = 0: constant)
 *   cosine    step < W: step / max(1, W);  else max(0, 0.5 (1 + cos(pi p))), p = (step - W) / max(1, T - W)
 *
 * Metrics follow scikit-learn: accuracy = correct / n; with 2 classes F1 is the F1 of class 1
 * (average='binary'), with more the unweighted mean of the per-class F1 over the classes that
 * occur in the labels or the predictions (average='macro'); an F1 with no true or predicted
 * positives is 0 (zero_division=0). */
#ifndef OCTET_TRAIN_SCHEDULE_H
#define OCTET_TRAIN_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>
#include "train/spec.h"

/* The lr factor of step `step` (0-based) of `total`, with `warmup` warm-up steps. Never fails:
 * out-of-range inputs are clamped (a negative step is 0). */
double sched_lr_lambda(spec_sched kind, int64_t step, int64_t total, int64_t warmup);

/* Warm-up steps of a run of `total` steps: training.warmup_steps, or ceil(total * ratio)
 * when it was given as a ratio (Transformers' get_warmup_steps). */
int64_t sched_warmup_steps(const spec_training *t, int64_t total);

/* Optimizer steps per epoch with n_batches batches and gradient accumulation over `accum`:
 * ceil(n_batches / accum) (the epoch's last, partial group of batches also steps). */
int64_t sched_steps_per_epoch(int64_t n_batches, int accum);

/* A confusion matrix being filled during an evaluation. */
typedef struct metric_counts {
    int num_classes;
    int64_t n, correct;
    int64_t *tp, *fp, *fn;   /* per class */
} metric_counts;

/* Fails with OCTET_ERR_NOMEM only (or OCTET_ERR_ARG for num_classes < 1). */
int metric_init(metric_counts *m, int num_classes);
void metric_free(metric_counts *m);
void metric_reset(metric_counts *m);
/* Adds B predictions; labels outside [0, num_classes) are ignored (torch's ignore_index). */
void metric_add(metric_counts *m, const int32_t *labels, const int32_t *pred, int B);
double metric_accuracy(const metric_counts *m);
/* Binary F1 of class 1 for 2 classes, macro F1 otherwise (see above). */
double metric_f1(const metric_counts *m);

#endif
