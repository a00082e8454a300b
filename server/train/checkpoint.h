/* checkpoint.h: the epoch checkpoints of a training run, so an interrupted job resumes.
 *
 * A checkpoint directory DIR holds one sub-directory per saved position, `checkpoint-<step>`
 * named by the optimizer steps done (as Hugging Face's Trainer names them), each with the model weights (`model.safetensors`, F32, Hugging Face names), the optimizer
 * state (`optimizer.bin`, optim_save's format) and the trainer's state (`trainer_state.json`:
 * epoch, global step, dropout step counter, seed, metrics so far, the normalised spec). A
 * checkpoint is written into `checkpoint-<step>.tmp`, every file fsync'ed, and renamed into
 * place, so a crash leaves either the old or the new checkpoint, never half of one; older
 * checkpoints are then removed (the latest one is kept, like save_total_limit=1). */
#ifndef OCTET_TRAIN_CHECKPOINT_H
#define OCTET_TRAIN_CHECKPOINT_H

#include <jansson.h>
#include <stddef.h>
#include "optim.h"
#include "status.h"
#include "train/model.h"

#define CKPT_WEIGHTS "model.safetensors"
#define CKPT_OPTIM "optimizer.bin"
#define CKPT_STATE "trainer_state.json"

/* Makes sure checkpoints can be written under dir before anything is trained: creates it
 * (and its parent) if missing, then creates and removes a probe file in it. Fails with
 * OCTET_ERR_IO naming "checkpoint_dir" (the message names the path and the OS error). */
int ckpt_check_dir(const char *dir, octet_err *e);

/* Writes checkpoint-<step> under dir (created if missing) with m's weights, o's state and
 * `state` (borrowed), then removes older checkpoints. Fails with OCTET_ERR_IO (the message
 * names the path and the OS error; nothing half-written stays behind), OCTET_ERR_NOMEM, or the
 * device's status reading the weights back. */
int ckpt_save(const char *dir, int64_t step, model *m, optim *o, const json_t *state, octet_err *e);

/* The newest complete checkpoint under dir: its step into *step and its path into path.
 * Returns 1 when found, 0 when there is none (or dir does not exist). */
int ckpt_find_latest(const char *dir, int64_t *step, char *path, size_t cap);

/* Loads the weights of checkpoint directory `path` into m and the optimizer state into o, and
 * returns the trainer state in *state (a new reference). Fails with OCTET_ERR_IO,
 * OCTET_ERR_FORMAT (a damaged file), OCTET_ERR_MISMATCH (a tensor missing or of another shape,
 * an optimizer state of another optimizer or layout); the message names the file, the field is
 * "checkpoint". */
int ckpt_load(const char *path, model *m, optim *o, json_t **state, octet_err *e);

/* Writes m's weights to a safetensors file (atomically). Fails as ckpt_save. */
int ckpt_save_weights(const char *file, model *m, octet_err *e);
/* Reads weights from a safetensors file into every parameter of m; a parameter missing from
 * the file or of another shape is OCTET_ERR_MISMATCH naming it. */
int ckpt_load_weights(const char *file, model *m, octet_err *e);

#endif
