/* estimate.c: the memory a job spec will book, without a device (estimate.h). It walks
 * trainer_open's steps in the same order — the device, the data, the number of labels, the
 * model's configuration, the model's checks, the optimizer groups — with the same functions
 * where they need no device (trainer_num_labels, trainer_distilbert_config, mlp_check,
 * distilbert_config_validate, trainer_build_groups), so an estimate fails where the run would,
 * naming the same field; and it sums the ledger's categories from the shapes those give. */
#include "config.h"
#include "train/estimate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/distilbert.h"
#include "train/mlp.h"
#include "train/tokenizer.h"
#include "train/trainer_impl.h"

#define MIB (1024.0 * 1024.0)
#define LONG_SEQUENCE 128 /* dataset.max_length's default: above it, sequences are "long" (trainer_admit) */

/* What the data gives the estimate: a feature width or text, the classes, the sets' sizes
 * (0 = not known), and a name for messages. */
typedef struct est_data {
    octet_data_shape shape;
    int known_sizes;
    char name[512];
} est_data;

static int read_data(const job_spec *spec, const trainer_options *opt, est_data *d, int *num_labels, octet_err *e)
{
    memset(d, 0, sizeof *d);
    if (opt->train_data) { /* the trainer's borrowed sets */
        const octet_dataset *tr = opt->train_data, *ev = opt->eval_data ? opt->eval_data : opt->train_data;
        d->shape.n_features = tr->n_features;
        d->shape.num_classes = tr->num_classes > ev->num_classes ? tr->num_classes : ev->num_classes;
        d->shape.n_train = tr->n;
        d->shape.n_eval = ev->n;
        d->known_sizes = 1;
        snprintf(d->name, sizeof d->name, "%s", tr->name ? tr->name : "the training set");
        return trainer_num_labels(spec, d->shape.num_classes, tr, ev, num_labels, e);
    }
    const spec_dataset *ds = &spec->dataset;
    char tf[PATH_MAX], ef[PATH_MAX];
    octet_data_spec q;
    memset(&q, 0, sizeof q);
    q.name = ds->name[0] ? ds->name : NULL;
    q.train_file = ds->train_file[0] ? trainer_resolve_path(opt->data_dir, ds->train_file, tf, sizeof tf) : NULL;
    q.eval_file = ds->eval_file[0] ? trainer_resolve_path(opt->data_dir, ds->eval_file, ef, sizeof ef) : NULL;
    q.train_limit = (size_t)ds->train_limit;
    q.eval_limit = (size_t)ds->eval_limit;
    q.seed = spec->training.seed;
    q.num_labels = spec->model.num_labels;
    q.fashion_mnist_dir = opt->fashion_mnist_dir;
    q.fortunes_dir = opt->fortunes_dir;
    int rc = octet_data_shape_of(&q, &d->shape, e);
    if (rc != OCTET_OK)
        return rc;
    d->known_sizes = d->shape.loaded || d->shape.n_features > 0;
    snprintf(d->name, sizeof d->name, "%s", q.name ? q.name : q.train_file);
    return trainer_num_labels(spec, d->shape.num_classes, NULL, NULL, num_labels, e);
}

/* batcher_init's and make_batchers' refusals: text on an MLP, features on DistilBERT, an empty
 * set. */
static int check_data_fits(const job_spec *spec, const est_data *d, octet_err *e)
{
    int text = d->shape.n_features == 0;
    if (spec->model.arch == SPEC_ARCH_DISTILBERT && !text)
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "%s holds feature vectors, not text", d->name);
    if (spec->model.arch == SPEC_ARCH_MLP && text)
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "%s holds text: it needs a text model (distilbert)",
                          d->name);
    if (d->known_sizes && (d->shape.n_train == 0 || d->shape.n_eval == 0))
        return octet_fail(e, OCTET_ERR_ARG, d->shape.n_train ? "dataset.eval_limit" : "dataset.train_limit",
                          "the %s set is empty", d->shape.n_train ? "evaluation" : "training");
    if (d->shape.n_features > INT_MAX)
        return octet_fail(e, OCTET_ERR_ARG, "dataset", "too many features");
    return OCTET_OK;
}

/* The spec field that sizes the model (trainer_admit's "make it smaller"). */
static const char *model_field_of(const spec_model *m)
{
    if (m->arch == SPEC_ARCH_MLP)
        return "model.hidden";
    if (m->path[0])
        return "model.path";
    const spec_model_config *k = &m->config;
    return k->dim ? "model.config.dim" : k->n_layers ? "model.config.n_layers" : k->hidden_dim ? "model.config.hidden_dim"
           : k->vocab_size ? "model.config.vocab_size"
           : k->max_position_embeddings ? "model.config.max_position_embeddings" : "model.preset";
}

/* The storage of DistilBERT's saved activations for training.precision (trainer.c's rule). */
static model_act_dtype act_dtype_of(spec_precision p)
{
    return p == SPEC_PREC_BF16 ? MODEL_ACT_BF16 : p == SPEC_PREC_FP16 ? MODEL_ACT_FP16 : MODEL_ACT_FP32;
}

/* DistilBERT: the configuration, the data's fit, the model's checks (distilbert_create_ex's),
 * in trainer_open's order; the parameter list and the activations for (max_batch, max_len). */
static int distilbert_shapes(const job_spec *spec, const trainer_options *opt, const est_data *data, int num_labels,
                             int max_batch, model_param_list *params, trainer_estimate *out, octet_err *e)
{
    char dir[PATH_MAX];
    const char *path = trainer_resolve_path(opt->data_dir, spec->model.path, dir, sizeof dir);
    distilbert_config cfg;
    distilbert_config_default(&cfg);
    octet_tokenizer *tok = NULL;
    int rc = trainer_distilbert_config(spec, path, num_labels, &cfg, &tok, e);
    octet_tok_free(tok); /* only its presence and size mattered, checked there */
    if (rc != OCTET_OK || (rc = check_data_fits(spec, data, e)) != OCTET_OK)
        return rc;
    if ((rc = distilbert_config_validate(&cfg, e)) != OCTET_OK)
        return rc;
    if (max_batch < 1 || max_batch > (1 << 20))
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size", "must be in 1..%d, got %d", 1 << 20, max_batch);
    int max_len = spec->dataset.max_length < cfg.max_position_embeddings ? spec->dataset.max_length
                                                                          : cfg.max_position_embeddings;
    if (max_len < 1)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.max_length", "must be in 1..%d (the model's "
                          "max_position_embeddings), got %d", cfg.max_position_embeddings, max_len);
    out->max_length = max_len;
    out->activations_bytes = distilbert_activation_bytes(&cfg, max_batch, max_len, act_dtype_of(spec->training.precision));
    return distilbert_param_list(&cfg, params, e);
}

/* The MLP: the data's fit, mlp_create's checks, the parameter list and the activations. */
static int mlp_shapes(const job_spec *spec, const est_data *data, int num_labels, int max_batch,
                      model_param_list *params, trainer_estimate *out, octet_err *e)
{
    const spec_model *m = &spec->model;
    int rc = check_data_fits(spec, data, e);
    if (rc != OCTET_OK)
        return rc;
    int n_features = (int)data->shape.n_features;
    if ((rc = mlp_check(n_features, m->hidden, m->n_hidden, num_labels, max_batch, e)) != OCTET_OK)
        return rc;
    out->max_length = 0;
    out->activations_bytes = mlp_activation_bytes(n_features, m->hidden, m->n_hidden, num_labels, max_batch);
    return mlp_param_list(n_features, m->hidden, m->n_hidden, num_labels, params, e);
}

/* The optimizer the trainer would create for the parameters: its exact state and workspace. */
static int optimizer_shapes(const job_spec *spec, const model_param_list *params, octet_device_kind kind,
                            trainer_estimate *out, octet_err *e)
{
    trainer_groups *groups = malloc(sizeof *groups); /* large: not on the stack */
    optim_tensor *ts = calloc((size_t)params->n + 1, sizeof *ts);
    int rc = groups && ts ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    if (rc == OCTET_OK)
        rc = trainer_build_groups(spec, params->v, params->n, groups, e);
    for (int i = 0; rc == OCTET_OK && i < params->n; i++) {
        const model_param *p = &params->v[i];
        ts[i].name = p->name;
        ts[i].ndim = p->ndim;
        memcpy(ts[i].shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
    }
    if (rc == OCTET_OK)
        rc = optim_estimate(&groups->cfg, ts, params->n, &out->optimizer_state, e);
    if (rc == OCTET_OK)
        rc = optim_estimate_workspace(&groups->cfg, ts, params->n, kind, &out->workspace_bytes, e);
    free(ts);
    free(groups);
    return rc;
}

int trainer_estimate_on(const job_spec *spec, const trainer_options *opt_in, const char *device,
                        trainer_estimate *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    trainer_options none;
    memset(&none, 0, sizeof none);
    const trainer_options *opt = opt_in ? opt_in : &none;
    if (!device || (strcmp(device, "cpu") && strcmp(device, "cuda")))
        return octet_fail(e, OCTET_ERR_ARG, "training.device", "an estimate is for 'cpu' or 'cuda', got '%s'",
                          device ? device : "(null)");
    int cuda = !strcmp(device, "cuda");
    int rc = spec_check_device(spec, cuda, e);
    est_data data;
    int num_labels = 0;
    if (rc == OCTET_OK)
        rc = read_data(spec, opt, &data, &num_labels, e);
    const spec_training *tr = &spec->training;
    int max_batch = tr->batch_size > tr->eval_batch_size ? tr->batch_size : tr->eval_batch_size;
    model_param_list params;
    memset(&params, 0, sizeof params);
    if (rc == OCTET_OK)
        rc = spec->model.arch == SPEC_ARCH_DISTILBERT
                 ? distilbert_shapes(spec, opt, &data, num_labels, max_batch, &params, out, e)
                 : mlp_shapes(spec, &data, num_labels, max_batch, &params, out, e);
    if (rc == OCTET_OK)
        rc = optimizer_shapes(spec, &params, cuda ? OCTET_DEV_CUDA : OCTET_DEV_CPU, out, e);
    if (rc == OCTET_OK) {
        out->device = cuda ? "cuda" : "cpu";
        out->n_parameters = params.n_parameters;
        out->num_labels = num_labels;
        out->params_bytes = out->grads_bytes = (size_t)params.n_parameters * sizeof(float);
        out->adam8bit_rule_bytes = 2 * (size_t)params.n_parameters;
        out->adamw_bytes = 8 * (size_t)params.n_parameters;
        out->peak_bytes = out->params_bytes + out->grads_bytes + out->optimizer_state.total +
                          out->activations_bytes + out->workspace_bytes;
        out->batch_size = max_batch;
        out->arch = spec_arch_name(spec->model.arch);
        out->precision = spec_precision_name(tr->precision);
        out->optimizer = optim_kind_name(spec->optimizer.cfg.kind);
        out->batch_field = tr->eval_batch_size > tr->batch_size ? "training.eval_batch_size" : "training.batch_size";
        out->model_field = model_field_of(&spec->model);
    }
    model_param_list_free(&params);
    if (rc != OCTET_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int trainer_estimate_spec(const job_spec *spec, const trainer_options *opt, trainer_estimate *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    const char *want = opt && opt->device ? opt->device : spec->training.device;
    const char *kind = NULL;
    size_t fr = 0, tot = 0;
    int rc = device_mem_probe(want, opt ? opt->device_index : 0, opt ? opt->device_mem_limit : 0, &kind, &fr, &tot, e);
    if (rc == OCTET_OK)
        rc = trainer_estimate_on(spec, opt, kind, out, e);
    if (rc == OCTET_OK) {
        out->device_free = fr;
        out->device_total = tot;
    }
    return rc;
}

/* ------------------------------------------------------------------ JSON */

json_t *trainer_estimate_json(const trainer_estimate *est)
{
    const optim_state_bytes *s = &est->optimizer_state;
    json_t *assumed = json_pack("{s:i, s:o, s:i, s:s}", "num_labels", est->num_labels, "max_length",
                                est->max_length > 0 ? json_integer(est->max_length) : json_null(), "batch_size",
                                est->batch_size, "precision", est->precision ? est->precision : "fp32");
    json_t *state = json_pack("{s:I, s:I, s:I, s:I, s:I}", "codes", (json_int_t)s->codes, "absmax",
                              (json_int_t)s->absmax, "maps", (json_int_t)s->maps, "fp32", (json_int_t)s->fp32,
                              "total", (json_int_t)s->total);
    json_t *fits = est->device_total ? json_boolean(est->peak_bytes <= est->device_free) : json_null();
    if (!assumed || !state || !fits) {
        json_decref(assumed);
        json_decref(state);
        json_decref(fits);
        return NULL;
    }
    return json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "device",
                     est->device ? est->device : "", "parameters", (json_int_t)est->n_parameters, "params_bytes",
                     (json_int_t)est->params_bytes, "grads_bytes", (json_int_t)est->grads_bytes, "optimizer_state",
                     state, "optimizer_state_bytes", (json_int_t)s->total, "adam8bit_rule_bytes",
                     (json_int_t)est->adam8bit_rule_bytes, "adamw_bytes", (json_int_t)est->adamw_bytes,
                     "activations_bytes", (json_int_t)est->activations_bytes, "workspace_bytes",
                     (json_int_t)est->workspace_bytes, "peak_bytes", (json_int_t)est->peak_bytes,
                     "device_free_bytes", (json_int_t)est->device_free, "device_total_bytes",
                     (json_int_t)est->device_total, "fits", fits, "assumed", assumed);
}

/* ------------------------------------------------------------------ admission */

int trainer_admit(const trainer_estimate *est, size_t available, octet_err *e)
{
    if (est->peak_bytes <= available)
        return OCTET_OK;
    size_t weights = est->params_bytes + est->grads_bytes;
    size_t state = est->optimizer_state.total; /* the workspace (tables, scratch) never decides */
    size_t acts = est->activations_bytes;
    int bert = est->arch && !strcmp(est->arch, "distilbert");
    const char *model = est->model_field ? est->model_field : "model";
    const char *batch = est->batch_field ? est->batch_field : "training.batch_size";
    const char *field, *hint;
    if (acts >= weights && acts >= state) {
        if (bert && (est->max_length > LONG_SEQUENCE || est->batch_size <= 1)) {
            field = "dataset.max_length";
            hint = "shorter sequences (attention grows with their square)";
        } else if (est->batch_size > 1) {
            field = batch;
            hint = "a smaller batch (activations grow with it)";
        } else {
            field = model;
            hint = "narrower layers";
        }
    } else if (state > weights) { /* a tie (AdamW's 8 B against weights and gradients' 8 B) names the model */
        field = "optimizer.name";
        hint = "an optimizer with a smaller state (adamw8bit ~2 B/param, adafactor)";
    } else {
        field = model;
        hint = "a smaller model";
    }
    char tokens[48] = "";
    if (est->max_length > 0)
        snprintf(tokens, sizeof tokens, " x %d tokens", est->max_length);
    return octet_fail(e, OCTET_ERR_NOMEM, field,
                      "the job needs %zu bytes (%.1f MiB) at its peak, the %s device can give %zu (%.1f MiB): "
                      "weights %.1f + gradients %.1f + %s state %.1f + activations %.1f (%d rows%s) + workspace "
                      "%.1f MiB; change %s: %s",
                      est->peak_bytes, est->peak_bytes / MIB, est->device ? est->device : "", available,
                      available / MIB, est->params_bytes / MIB, est->grads_bytes / MIB,
                      est->optimizer ? est->optimizer : "optimizer", est->optimizer_state.total / MIB, acts / MIB,
                      est->batch_size, tokens, est->workspace_bytes / MIB, field, hint);
}
