/* trainer_state.c: the trainer's side of checkpoints (trainer_impl.h): the trainer state it
 * saves beside the weights and optimizer state (epochs done, global step, the optimizer steps
 * applied (skipped non-finite steps excluded; the optimizer state restores the same count, so
 * a resumed run knows whether any step was ever applied), the dropout step counter, the
 * shuffle's seed, the fp16 loss scaler's scale and growth tracker (GradScaler's state_dict,
 * present only for fp16), the metrics so far, the normalised spec, and for a checkpoint
 * written inside an epoch (a suspended run) "in_epoch": the optimizer steps done in it and its
 * running sums), and resuming from it, which refuses a checkpoint written for a spec that
 * trains differently. */
#include "config.h"
#define LOG_PREFIX "trainer"
#include "train/trainer_impl.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "log.h"
#include "train/checkpoint.h"

#define STATE_VERSION 1

/* The position inside the current epoch, for a checkpoint written there. Reals are written
 * with 17 digits (checkpoint.c), so the sums come back bit for bit. */
static json_t *in_epoch_json(const trainer *t)
{
    return json_pack("{si sf sI sf sI si sf}", "steps", t->step_in_epoch, "epoch_loss", t->epoch_loss, "epoch_steps",
                     (json_int_t)t->epoch_steps, "log_loss", t->log_loss, "log_steps", (json_int_t)t->log_steps,
                     "nan_streak", t->nan_streak, "train_seconds", t->epoch_seconds_before);
}

static json_t *state_json(const trainer *t, int in_epoch)
{
    json_t *st = json_object();
    json_object_set_new(st, "version", json_integer(STATE_VERSION));
    json_object_set_new(st, "epoch", json_integer(t->epochs_done));
    json_object_set_new(st, "global_step", json_integer(t->global_step));
    json_object_set_new(st, "optimizer_step", json_integer(optim_step_count(t->o)));
    json_object_set_new(st, "model_step", json_integer((json_int_t)t->m->step));
    json_object_set_new(st, "rng", json_pack("{ss sI sI}", "shuffle", "splitmix64 Fisher-Yates keyed by (seed, epoch)",
                                             "seed", (json_int_t)t->spec.training.seed, "next_epoch",
                                             (json_int_t)t->epochs_done));
    if (t->scaler.enabled)
        json_object_set_new(st, "loss_scale", json_pack("{sf sI sI}", "scale", (double)t->scaler.scale,
                                                        "growth_tracker", (json_int_t)t->scaler.growth_tracker,
                                                        "skipped", (json_int_t)t->scaler.skipped));
    if (in_epoch)
        json_object_set_new(st, "in_epoch", in_epoch_json(t));
    json_object_set(st, "metrics", t->history);
    json_object_set_new(st, "spec", spec_to_json(&t->spec));
    return st;
}

int trainer_checkpoint(trainer *t, int in_epoch, octet_err *e)
{
    json_t *st = state_json(t, in_epoch);
    if (!st)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    int rc = ckpt_save(t->opt.checkpoint_dir, t->global_step, t->m, t->o, st, e);
    json_decref(st);
    return rc;
}

/* ------------------------------------------------------------------ resume */

/* The spec fields that change what is trained; the rest (device, log_every, eval batch, name)
 * may differ between the interrupted run and the resumed one. */
static json_t *training_identity(const json_t *spec)
{
    json_t *c = json_deep_copy(spec);
    if (!c)
        return NULL;
    json_object_del(c, "name");
    json_t *tr = json_object_get(c, "training");
    json_object_del(tr, "device");
    json_object_del(tr, "log_every");
    json_object_del(tr, "eval_batch_size");
    return c;
}

/* The first key (section.key) where a and b differ, into buf. */
static void first_difference(const json_t *a, const json_t *b, char *buf, size_t cap)
{
    const char *sec;
    json_t *va;
    snprintf(buf, cap, "spec");
    json_object_foreach((json_t *)a, sec, va) {
        json_t *vb = json_object_get(b, sec);
        if (json_equal(va, vb))
            continue;
        snprintf(buf, cap, "%s", sec);
        const char *key;
        json_t *x;
        if (!json_is_object(va) || !json_is_object(vb))
            return;
        json_object_foreach(va, key, x)
            if (!json_equal(x, json_object_get(vb, key))) {
                snprintf(buf, cap, "%s.%s", sec, key);
                return;
            }
        return;
    }
}

static int check_spec(trainer *t, const json_t *st, const char *path, octet_err *e)
{
    json_t *now = spec_to_json(&t->spec);
    json_t *a = training_identity(json_object_get(st, "spec")), *b = training_identity(now);
    int rc = OCTET_OK;
    if (!a || !b || !json_equal(a, b)) {
        char field[96];
        if (a && b)
            first_difference(b, a, field, sizeof field);
        else
            snprintf(field, sizeof field, "spec");
        rc = octet_fail(e, OCTET_ERR_MISMATCH, field,
                        "the checkpoint in %s was written for another spec (%s differs); start a new run instead",
                        path, field);
    }
    json_decref(a);
    json_decref(b);
    json_decref(now);
    return rc;
}

/* The position inside an epoch of a checkpoint written there; OCTET_ERR_FORMAT when it does
 * not fit the run. */
static int restore_in_epoch(trainer *t, const json_t *ie, const char *path, octet_err *e)
{
    json_int_t steps = json_integer_value(json_object_get(ie, "steps"));
    if (!json_is_object(ie) || steps < 0 || steps >= t->steps_per_epoch ||
        !json_is_number(json_object_get(ie, "epoch_loss")) || !json_is_number(json_object_get(ie, "log_loss")))
        return octet_fail(e, OCTET_ERR_FORMAT, "checkpoint", "%s/%s: inconsistent position in the epoch", path,
                          CKPT_STATE);
    t->step_in_epoch = (int)steps;
    t->epoch_loss = json_number_value(json_object_get(ie, "epoch_loss"));
    t->epoch_steps = json_integer_value(json_object_get(ie, "epoch_steps"));
    t->log_loss = json_number_value(json_object_get(ie, "log_loss"));
    t->log_steps = json_integer_value(json_object_get(ie, "log_steps"));
    t->nan_streak = (int)json_integer_value(json_object_get(ie, "nan_streak"));
    t->epoch_seconds_before = json_number_value(json_object_get(ie, "train_seconds"));
    t->resume_in_epoch = 1;
    return OCTET_OK;
}

static int restore_counters(trainer *t, const json_t *st, const char *path, octet_err *e)
{
    json_int_t epoch = json_integer_value(json_object_get(st, "epoch"));
    json_int_t step = json_integer_value(json_object_get(st, "global_step"));
    json_int_t mstep = json_integer_value(json_object_get(st, "model_step"));
    json_t *metrics = json_object_get(st, "metrics");
    const json_t *in_epoch = json_object_get(st, "in_epoch");
    if (json_integer_value(json_object_get(st, "version")) != STATE_VERSION || epoch < (in_epoch ? 0 : 1) ||
        epoch > t->spec.training.epochs - (in_epoch ? 1 : 0) || step < 0 || mstep < 0 || !json_is_array(metrics) ||
        json_array_size(metrics) != (size_t)epoch)
        return octet_fail(e, OCTET_ERR_FORMAT, "checkpoint", "%s/%s: inconsistent trainer state", path, CKPT_STATE);
    if (in_epoch && restore_in_epoch(t, in_epoch, path, e) != OCTET_OK)
        return OCTET_ERR_FORMAT;
    json_t *ls = json_object_get(st, "loss_scale");
    if (ls && t->scaler.enabled) {
        double scale = json_number_value(json_object_get(ls, "scale"));
        json_int_t tracker = json_integer_value(json_object_get(ls, "growth_tracker"));
        if (!(scale > 0.0) || tracker < 0 || tracker >= t->scaler.growth_interval)
            return octet_fail(e, OCTET_ERR_FORMAT, "checkpoint", "%s/%s: inconsistent loss scale", path, CKPT_STATE);
        t->scaler.scale = (float)scale;
        t->scaler.growth_tracker = (int)tracker;
        t->scaler.skipped = json_integer_value(json_object_get(ls, "skipped"));
    }
    t->epochs_done = (int)epoch;
    t->global_step = step;
    t->m->step = (uint64_t)mstep;
    json_array_clear(t->history);
    json_array_extend(t->history, metrics);
    t->n_restored = (int)epoch;
    t->have_last = epoch > 0 && trainer_epoch_from_json(json_array_get(metrics, (size_t)epoch - 1), &t->last) == 0;
    return OCTET_OK;
}

int trainer_resume(trainer *t, octet_err *e)
{
    char path[PATH_MAX];
    int64_t step = 0;
    if (!ckpt_find_latest(t->opt.checkpoint_dir, &step, path, sizeof path)) {
        if (t->opt.resume == TRAINER_RESUME_REQUIRED)
            return octet_fail(e, OCTET_ERR_ARG, "checkpoint_dir", "no checkpoint to resume from in %s",
                              t->opt.checkpoint_dir);
        return OCTET_OK;
    }
    json_t *st = NULL;
    int rc = ckpt_load(path, t->m, t->o, &st, e);
    if (rc == OCTET_OK)
        rc = check_spec(t, st, path, e);
    if (rc == OCTET_OK)
        rc = restore_counters(t, st, path, e);
    if (rc == OCTET_OK) {
        t->info.start_epoch = t->epochs_done;
        log_info("resuming from %s: %d epochs done, step %lld", path, t->epochs_done, (long long)t->global_step);
    }
    json_decref(st);
    return rc;
}

int trainer_replay_restored(trainer *t, octet_err *e)
{
    for (int i = 0; i < t->n_restored && t->opt.cb.on_epoch; i++) {
        trainer_epoch_metrics m;
        if (trainer_epoch_from_json(json_array_get(t->history, (size_t)i), &m))
            return octet_fail(e, OCTET_ERR_FORMAT, "checkpoint", "malformed epoch %d in the trainer state", i + 1);
        m.restored = 1;
        int rc = t->opt.cb.on_epoch(t->opt.cb.user, &m);
        if (rc)
            return octet_fail(e, rc < 0 ? rc : OCTET_ERR, "", "the epoch callback stopped the run");
    }
    return OCTET_OK;
}
