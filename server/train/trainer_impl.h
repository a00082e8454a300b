/* trainer_impl.h: the trainer's internal state, shared by trainer.c (building and the loop)
 * and trainer_state.c (checkpoints and resume); nothing outside server/train uses it. */
#ifndef OCTET_TRAIN_TRAINER_IMPL_H
#define OCTET_TRAIN_TRAINER_IMPL_H

#include <jansson.h>
#include "train/batch.h"
#include "train/distilbert.h"
#include "train/loss_scale.h"
#include "train/schedule.h"
#include "train/trainer.h"

struct trainer {
    job_spec spec;
    trainer_options opt;
    device *dev;
    octet_dataset train_own, eval_own;       /* loaded here, unless opt supplied the sets */
    const octet_dataset *train, *eval;
    octet_tokenizer *tok;
    batcher btrain, beval;
    model *m;
    trainer_groups groups;
    optim *o;
    trainer_info info;
    int num_labels, max_len;
    int64_t steps_per_epoch, total_steps, warmup_steps;

    /* progress */
    int epochs_done;
    int64_t global_step;
    int nan_streak;
    loss_scaler scaler;                       /* fp16: GradScaler's; disabled otherwise */
    int matmul_mode;                          /* OPS_MATMUL_* set on dev (reset before closing it) */
    double log_loss;                          /* sum of step losses since the last log */
    int64_t log_steps;
    double epoch_loss;
    int64_t epoch_steps;
    int step_in_epoch;                        /* optimizer steps done in the current epoch */
    double epoch_seconds_before;              /* training seconds of this epoch before a resume */
    int resume_in_epoch;                      /* 1: the next epoch continues at step_in_epoch */
    int memory_reported;
    double t_start;
    json_t *history;                          /* epoch metrics so far (JSON array) */
    int n_restored;                           /* leading entries of history from a checkpoint */
    trainer_epoch_metrics last;
    int have_last;

    /* buffers */
    size_t *perm;                             /* (n_train) this epoch's order */
    int32_t *pred;                            /* (eval_batch_size) */
    metric_counts mc;
};

/* dir/path when data_dir is set and path is relative, else path (buf holds the join). */
const char *trainer_resolve_path(const char *data_dir, const char *path, char *buf, size_t cap);
/* The classifier's size: model.num_labels, or num_classes (the data's), refused outside
 * MODEL_MIN_CLASSES..MODEL_MAX_LABELS ("dataset.name"); every label of train and eval (either
 * may be NULL) must be below it ("model.num_labels"). Shared by trainer_open and the estimate. */
int trainer_num_labels(const job_spec *spec, int num_classes, const octet_dataset *train, const octet_dataset *eval,
                       int *out, octet_err *e);
/* The DistilBERT configuration a job builds (trainer.c has the rules: a model directory's
 * config.json, or a preset with the spec's model.config overrides; the job's num_labels and
 * model.dropout), for trainer_open and the estimate alike. model_dir: spec->model.path
 * resolved. *tok gets the directory's WordPiece tokenizer, or NULL when texts will be
 * tokenized as bytes. Does not validate ranges (distilbert_config_validate). Fails with
 * OCTET_ERR_ARG (model.preset, model.path, model.config.vocab_size), OCTET_ERR_IO / FORMAT
 * (the model directory), OCTET_ERR_NOMEM. */
int trainer_distilbert_config(const job_spec *spec, const char *model_dir, int num_labels, distilbert_config *cfg,
                              octet_tokenizer **tok, octet_err *e);

/* Writes a checkpoint of the position reached (trainer_state.c): the epoch just finished, or
 * with in_epoch = 1 the step reached inside the current one. Fails as ckpt_save. */
int trainer_checkpoint(trainer *t, int in_epoch, octet_err *e);
/* Loads the newest checkpoint of opt.checkpoint_dir, per opt.resume. Fails with OCTET_ERR_ARG
 * (TRAINER_RESUME_REQUIRED and none found), OCTET_ERR_MISMATCH (saved for another spec), or
 * as ckpt_load. */
int trainer_resume(trainer *t, octet_err *e);
/* Calls on_epoch for every epoch restored from a checkpoint (restored = 1). */
int trainer_replay_restored(trainer *t, octet_err *e);
/* Parses one epoch's JSON (trainer_epoch_json) back. Returns 0 on success, -1 when malformed. */
int trainer_epoch_from_json(const json_t *o, trainer_epoch_metrics *m);

#endif
