/* trainer.h: the runner of one fine-tuning job, shared by octet-train and octetd: it builds
 * the device, datasets, tokenizer, model and optimizer from a job spec and trains with Hugging
 * Face Trainer's semantics, reporting through callbacks.
 *
 * The loop: every epoch draws a seeded shuffle of the training set (batch.h) and cuts it into
 * batches of training.batch_size (the last one smaller); gradients of
 * gradient_accumulation_steps batches are accumulated with the loss scaled by 1/(batches in
 * the group) before one optimizer step (the epoch's last group may be shorter); before each
 * step the global gradient norm is computed and, with max_grad_norm > 0, clipped as
 * torch.nn.utils.clip_grad_norm_ (eps 1e-6); the step's learning rate is base lr x the
 * schedule's factor (schedule.h) passed to optim_step(). Weight decay follows the Trainer's
 * default groups: parameters marked no_decay (biases, LayerNorm weights) get weight_decay 0
 * unless a param_group of the spec that matches them sets weight_decay itself; the spec's
 * other group settings (lr, optim_bits, ...) still apply to them. After every epoch the
 * evaluation set is scored (eval_loss, eval_accuracy, eval_f1) and, with a checkpoint
 * directory, a checkpoint is written (checkpoint.h) before the epoch is reported, so a
 * reported epoch is never lost; a resumed run continues from the newest checkpoint and ends
 * with the same weights, bit for bit on the CPU, as an uninterrupted one.
 *
 * A gradient norm that is not finite (a NaN/Inf loss or gradient) skips that optimizer step
 * (the gradients are dropped, as a loss scaler does); three such steps in a row stop the run
 * with OCTET_ERR_NAN naming the step, and a run that ends without having applied a single
 * optimizer step fails the same way, however few steps it had (a resumed run counts the steps
 * applied before its checkpoint: the optimizer's step count, which the checkpoint restores).
 * Cancellation is polled before every batch.
 *
 * A run can also be suspended (the suspend callback, polled before every optimizer step): it
 * writes a checkpoint of the position reached inside the epoch (the trainer state then holds
 * the step within the epoch and the epoch's running sums) and returns OCTET_OK with
 * result.suspended = 1. Resuming from that checkpoint continues with the next optimizer step
 * and ends with the same weights as an uninterrupted run.
 *
 * The whole job runs on the job's device: batches are uploaded (device_upload), the loss and
 * predictions read back (device_download), weights and optimizer state cross only for
 * checkpoints; trainer_train binds the calling thread to the device first (device_bind_thread),
 * so a worker thread may run it; with trainer_options.threads it also sets that thread's CPU
 * thread count (kernels/threads.h: OpenMP's, per thread; OpenBLAS one thread per call), so each
 * octetd worker runs its own share. training.precision "bf16" / "fp16" (CUDA only; spec.h) switch
 * the device's matmuls to bf16 / fp16 tensor cores and DistilBERT's saved activations to bf16 /
 * fp16 storage (about half the activation memory), with fp32 master weights, arithmetic and
 * optimizer math; "fp16" adds GradScaler's dynamic loss scaling (loss_scale.h): the loss
 * gradient is multiplied by the scale, the gradients are unscaled before clipping, a non-finite
 * gradient skips the step and halves the scale. Such skips count toward the three-in-a-row stop
 * only once the scale has fallen below 1 (scaling can then no longer be the cause), but they
 * are steps not applied: a run in which every step overflowed fails as one whose every step was
 * NaN.
 *
 * Memory: every device allocation of a job that fails (parameters, activations, optimizer
 * state) fails the job with OCTET_ERR_NOMEM and the figures "asked X bytes, Y free of Z"
 * (device_alloc_fail); everything the job holds is freed by trainer_close, so the worker runs
 * the next job on a clean device.
 *
 * With a checkpoint directory, trainer_open first checks that it can be created and written
 * (ckpt_check_dir), so a bad directory fails before any training, naming checkpoint_dir.
 *
 * Every function returns OCTET_OK or a status with an octet_err naming the field at fault
 * ("dataset.name", "model.preset", "training.precision", ...). Nothing here exits. */
#ifndef OCTET_TRAIN_TRAINER_H
#define OCTET_TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include "optim.h"
#include "status.h"
#include "train/dataset.h"
#include "train/model.h"
#include "train/spec.h"

/* What the run looks like, reported once before training. */
typedef struct trainer_info {
    const char *device;          /* "cpu" or "cuda" */
    const char *arch;
    int64_t n_train, n_eval;
    int num_labels;
    int64_t n_parameters;
    int max_len;                 /* tokens per sequence the model was sized for (text) */
    int64_t steps_per_epoch, total_steps, warmup_steps;
    int epochs;
    int start_epoch;             /* epochs already done (resume), 0 for a fresh run */
    const char *tokenizer;       /* "wordpiece", "bytes" or "" */
} trainer_info;

/* One logged training step (every training.log_every optimizer steps). */
typedef struct trainer_step_log {
    int64_t step;                /* optimizer steps done */
    double epoch;                /* fractional epoch, as the Trainer logs it */
    double loss;                 /* mean training loss of the steps since the last log */
    double learning_rate;        /* the lr of the next step (the Trainer's get_last_lr) */
    double grad_norm;            /* global norm of the last step's gradients, before clipping */
    double elapsed_s;            /* since the start of this run */
} trainer_step_log;

/* The metrics of one finished epoch. */
typedef struct trainer_epoch_metrics {
    int epoch;                   /* 1-based */
    int64_t step;                /* optimizer steps done at its end */
    double train_loss;           /* mean of the epoch's step losses */
    double eval_loss, eval_accuracy, eval_f1;
    int64_t eval_samples;
    double train_seconds, eval_seconds;
    double train_samples_per_s;
    double learning_rate;        /* the lr at the epoch's end */
    int restored;                /* 1: replayed from a checkpoint when resuming */
} trainer_epoch_metrics;

/* Memory figures (bytes) from the device's ledger and the optimizer's exact layout. */
typedef struct trainer_memory {
    const char *device;
    int64_t n_parameters;
    size_t params_bytes, grads_bytes;
    size_t optimizer_state_bytes;      /* the ledger's optimizer_state category (current) */
    optim_state_bytes optimizer_state; /* optim_state_bytes_total: codes, absmax, maps, fp32 */
    size_t adam8bit_estimate_bytes;    /* 2 B per parameter: the 8-bit Adam rule of thumb */
    size_t adamw_bytes;                /* 8 B per parameter: AdamW's fp32 m and v, for comparison */
    size_t activations_peak, workspace_peak;
    size_t peak_total;                 /* the ledger's peak over all categories */
    size_t driver_free, driver_total;  /* CUDA's cudaMemGetInfo; 0 on the CPU */
} trainer_memory;

/* Callbacks; any may be NULL. A callback returning non-zero (a status) stops the run with it. */
typedef struct trainer_callbacks {
    void *user;
    int (*on_start)(void *user, const trainer_info *info);
    int (*on_step)(void *user, const trainer_step_log *log);
    int (*on_epoch)(void *user, const trainer_epoch_metrics *m);
    /* After the first optimizer step (final = 0) and at the end of the run (final = 1). */
    int (*on_memory)(void *user, const trainer_memory *mem, int final);
    /* Polled before every batch; non-zero cancels (OCTET_ERR_CANCEL). */
    int (*cancelled)(void *user);
    /* Polled before every optimizer step (the first batch of a gradient-accumulation group);
     * non-zero checkpoints the position (needs checkpoint_dir) and ends the run, suspended. */
    int (*suspend)(void *user);
    /* After every optimizer step: steps done and the run's total. */
    int (*on_progress)(void *user, int64_t step, int64_t total_steps);
} trainer_callbacks;

enum { TRAINER_RESUME_NO = 0, TRAINER_RESUME_IF_ANY, TRAINER_RESUME_REQUIRED };

typedef struct trainer_options {
    const char *device;                /* overrides training.device when non-NULL */
    int device_index;                  /* which CUDA device (0 for the first) */
    const char *checkpoint_dir;        /* NULL: no checkpoints */
    int resume;                        /* TRAINER_RESUME_* (needs checkpoint_dir) */
    int stop_after_epochs;             /* > 0: end this run (OCTET_OK) after so many epochs */
    const char *data_dir;              /* relative dataset/model paths are resolved here (octetd) */
    const char *fashion_mnist_dir;     /* NULL: Debian's */
    const char *fortunes_dir;          /* NULL: Debian's */
    const octet_dataset *train_data;   /* borrowed; when set, used instead of spec.dataset */
    const octet_dataset *eval_data;
    size_t device_mem_limit;           /* > 0: cap the job's device allocations at so many bytes
                                        * (device_set_limit; tests of a job that does not fit) */
    int threads;                       /* > 0: the CPU ops of trainer_train use so many threads,
                                        * set for the calling thread (octet_threads_set, threads.h);
                                        * 0: the calling thread's setting as it is */
    trainer_callbacks cb;
} trainer_options;

typedef struct trainer_result {
    int epochs_done;                   /* epochs finished in total (resumed ones included) */
    int64_t global_step;
    int have_metrics;
    trainer_epoch_metrics last;        /* the last epoch's metrics, when have_metrics */
    trainer_memory memory;
    double seconds;                    /* wall time of this run */
    int suspended;                     /* 1: the suspend callback ended it, checkpointed */
} trainer_result;

typedef struct trainer trainer;

/* Builds everything a run needs; with opt->resume, loads the newest checkpoint. Fails with the
 * status of the part that failed: OCTET_ERR_ARG (a field that does not fit: unknown dataset
 * or preset, labels beyond model.num_labels, bf16 on the CPU, a param_group that matches no
 * parameter, ...), OCTET_ERR_NODEV, OCTET_ERR_IO / FORMAT (data, model directory or
 * checkpoint; a checkpoint directory that cannot be created or written is OCTET_ERR_IO on
 * checkpoint_dir, checked first), OCTET_ERR_MISMATCH (a checkpoint of another spec),
 * OCTET_ERR_NOMEM; trainer_options.threads outside 0..OCTET_THREADS_MAX is OCTET_ERR_ARG on
 * "threads". */
int trainer_open(const job_spec *spec, const trainer_options *opt, trainer **out, octet_err *e);
/* Trains the remaining epochs. Fails with OCTET_ERR_CANCEL, OCTET_ERR_NAN, OCTET_ERR_IO (a
 * checkpoint could not be written), a callback's status, or the device's. */
int trainer_train(trainer *t, trainer_result *res, octet_err *e);
void trainer_close(trainer *t);
/* open + train + close. */
int trainer_run(const job_spec *spec, const trainer_options *opt, trainer_result *res, octet_err *e);

model *trainer_model(trainer *t);
optim *trainer_optim(trainer *t);
const trainer_info *trainer_get_info(const trainer *t);
/* The memory figures now. */
void trainer_memory_get(trainer *t, trainer_memory *out);
/* Scores the evaluation set with the current weights. Fails with the model's status. */
int trainer_evaluate(trainer *t, trainer_epoch_metrics *m, octet_err *e);

/* The code an error of `status` is reported with ("invalid_spec", "out_of_memory", ...), by
 * octet-train and octetd alike. */
const char *trainer_error_code(int status);

/* JSON of the reports (new references), as octet-train prints them and octetd stores them. */
json_t *trainer_info_json(const trainer_info *i);
json_t *trainer_step_json(const trainer_step_log *s);
json_t *trainer_epoch_json(const trainer_epoch_metrics *m);
json_t *trainer_memory_json(const trainer_memory *m);

/* The optimizer config of a job on a model: the spec's param_groups, preceded by groups that
 * give weight_decay 0 to the no_decay parameters a spec group matches without setting
 * weight_decay, and followed by the Trainer's default no-decay groups (weight_decay 0 for every
 * other no_decay parameter). Globs are compressed ("*.bias", "*.LayerNorm.weight") so that
 * each matches only the parameters meant. Fails with OCTET_ERR_ARG naming
 * "optimizer.param_groups[i].match" for a spec group that matches no parameter, or
 * "optimizer.param_groups" when the groups do not fit in OPTIM_MAX_GROUPS. */
typedef struct trainer_groups {
    optim_config cfg;                  /* cfg.groups points into this struct */
    optim_group_spec groups[OPTIM_MAX_GROUPS];
    char match[OPTIM_MAX_GROUPS][SPEC_MATCH_MAX];
    int n_user;                        /* the spec's groups, in cfg.groups[n_before ...] */
    int n_before;                      /* derived groups placed before the spec's */
} trainer_groups;
int trainer_build_groups(const job_spec *spec, const model_param *params, int n_params, trainer_groups *out,
                         octet_err *e);

/* Global-norm gradient clipping over every gradient of m (torch.nn.utils.clip_grad_norm_):
 * *norm gets the norm before clipping; with max_norm > 0 and a finite norm above it, every
 * gradient is scaled by max_norm / (norm + 1e-6). Fails with the device's status. */
int trainer_clip_grads(model *m, double max_norm, double *norm);

#endif
