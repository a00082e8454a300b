/* trainer_report.c: the JSON form of the trainer's reports (trainer.h): logged steps, epoch
 * metrics and memory figures, as octet-train prints them and octetd stores and serves them.
 * Names follow Hugging Face Trainer's logs (loss, learning_rate, grad_norm, eval_loss,
 * eval_accuracy, eval_f1); a value that is not finite is written as null. */
#include "config.h"
#include "train/trainer_impl.h"

#include <math.h>
#include <string.h>

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *size(size_t x) { return json_integer((json_int_t)x); }

json_t *trainer_step_json(const trainer_step_log *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "step", json_integer(s->step));
    json_object_set_new(o, "epoch", num(s->epoch));
    json_object_set_new(o, "loss", num(s->loss));
    json_object_set_new(o, "learning_rate", num(s->learning_rate));
    json_object_set_new(o, "grad_norm", num(s->grad_norm));
    json_object_set_new(o, "elapsed_s", num(s->elapsed_s));
    return o;
}

json_t *trainer_epoch_json(const trainer_epoch_metrics *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "epoch", json_integer(m->epoch));
    json_object_set_new(o, "step", json_integer(m->step));
    json_object_set_new(o, "train_loss", num(m->train_loss));
    json_object_set_new(o, "eval_loss", num(m->eval_loss));
    json_object_set_new(o, "eval_accuracy", num(m->eval_accuracy));
    json_object_set_new(o, "eval_f1", num(m->eval_f1));
    json_object_set_new(o, "eval_samples", json_integer(m->eval_samples));
    json_object_set_new(o, "train_seconds", num(m->train_seconds));
    json_object_set_new(o, "eval_seconds", num(m->eval_seconds));
    json_object_set_new(o, "train_samples_per_second", num(m->train_samples_per_s));
    json_object_set_new(o, "learning_rate", num(m->learning_rate));
    return o;
}

static double num_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int trainer_epoch_from_json(const json_t *o, trainer_epoch_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "epoch")))
        return -1;
    m->epoch = (int)json_integer_value(json_object_get(o, "epoch"));
    m->step = json_integer_value(json_object_get(o, "step"));
    m->train_loss = num_of(o, "train_loss");
    m->eval_loss = num_of(o, "eval_loss");
    m->eval_accuracy = num_of(o, "eval_accuracy");
    m->eval_f1 = num_of(o, "eval_f1");
    m->eval_samples = json_integer_value(json_object_get(o, "eval_samples"));
    m->train_seconds = num_of(o, "train_seconds");
    m->eval_seconds = num_of(o, "eval_seconds");
    m->train_samples_per_s = num_of(o, "train_samples_per_second");
    m->learning_rate = num_of(o, "learning_rate");
    return 0;
}

json_t *trainer_memory_json(const trainer_memory *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "device", json_string(m->device ? m->device : ""));
    json_object_set_new(o, "parameters", json_integer(m->n_parameters));
    json_object_set_new(o, "params_bytes", size(m->params_bytes));
    json_object_set_new(o, "grads_bytes", size(m->grads_bytes));
    json_object_set_new(o, "optimizer_state_bytes", size(m->optimizer_state_bytes));
    json_t *st = json_object();
    json_object_set_new(st, "codes", size(m->optimizer_state.codes));
    json_object_set_new(st, "absmax", size(m->optimizer_state.absmax));
    json_object_set_new(st, "maps", size(m->optimizer_state.maps));
    json_object_set_new(st, "fp32", size(m->optimizer_state.fp32));
    json_object_set_new(st, "total", size(m->optimizer_state.total));
    json_object_set_new(o, "optimizer_state", st);
    json_object_set_new(o, "adam8bit_estimate_bytes", size(m->adam8bit_estimate_bytes));
    json_object_set_new(o, "adamw_bytes", size(m->adamw_bytes));
    json_object_set_new(o, "activations_peak_bytes", size(m->activations_peak));
    json_object_set_new(o, "workspace_peak_bytes", size(m->workspace_peak));
    json_object_set_new(o, "peak_bytes", size(m->peak_total));
    if (m->driver_total) {
        json_object_set_new(o, "driver_free_bytes", size(m->driver_free));
        json_object_set_new(o, "driver_total_bytes", size(m->driver_total));
    }
    return o;
}
