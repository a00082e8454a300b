/* estimate.h: what a run of a job spec will book in its device's memory ledger, worked out
 * from the spec and the model's shapes alone, before anything is allocated on a device; and
 * the admission rule that refuses a job whose peak the device cannot give.
 *
 * The figures are the ledger's own categories (kernels/device.h), computed by the same code
 * that sizes the real buffers: the parameter list the model is built from
 * (mlp_param_list, distilbert_param_list), the optimizer groups the trainer builds
 * (trainer_build_groups), the optimizer's exact state and workspace (optim_estimate,
 * optim_estimate_workspace) and the models' activation layouts (mlp_activation_bytes,
 * distilbert_activation_bytes). trainer_open allocates all of it once and a step allocates
 * nothing (the ops never do; batches, predictions, evaluation and checkpoints go through host
 * memory), so the ledger's peak is the sum: weights + gradients + optimizer state +
 * activations + workspace, reached when trainer_open returns and held to the end.
 *
 * What is exact and what is a bound. Parameters, weights, gradients, optimizer state and
 * workspace are exact. Activations are sized for the larger of training.batch_size and
 * eval_batch_size rows (as the trainer sizes them) and, for DistilBERT, for max_length =
 * min(dataset.max_length, the model's max_position_embeddings) tokens: the trainer sizes them
 * for the longest tokenized example of the data, capped at dataset.max_length, which the
 * estimate does not tokenize. So for text the activations and the peak are an upper bound,
 * exact when some example reaches dataset.max_length (fortunes-lang does at the default 128
 * with the byte tokenizer), and `assumed` says what was assumed.
 *
 * What is read. The data only as far as the shape needs (octet_data_shape_of: fashion-mnist's
 * IDX headers; nothing of fortunes-lang; train/eval files in full, their classes being in their
 * labels), or the in-memory sets of opt->train_data; a model directory's config.json and, when
 * present, vocab.txt and tokenizer_config.json (never model.safetensors). Nothing is allocated
 * on any device: trainer_estimate_spec asks the device what it can give (device_mem_probe,
 * which on CUDA is one cudaMemGetInfo), trainer_estimate_on not even that. opt->checkpoint_dir,
 * opt->resume and the callbacks are ignored. */
#ifndef OCTET_TRAIN_ESTIMATE_H
#define OCTET_TRAIN_ESTIMATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "optim.h"
#include "status.h"
#include "train/spec.h"
#include "train/trainer.h"

typedef struct trainer_estimate {
    const char *device;                 /* "cpu" or "cuda" */
    int64_t n_parameters;
    int num_labels, max_length;         /* what the estimate assumed (max_length 0: the MLP has none) */
    size_t params_bytes, grads_bytes;
    optim_state_bytes optimizer_state;  /* exact layout */
    size_t adam8bit_rule_bytes, adamw_bytes; /* 2 and 8 bytes per parameter */
    size_t activations_bytes, workspace_bytes;
    size_t peak_bytes;                  /* expected peak of the ledger */
    size_t device_free, device_total;   /* what the device can give (device_mem_probe, or the cap);
                                         * 0 from trainer_estimate_on */
    /* also assumed, and what trainer_admit names */
    int batch_size;                     /* rows the activations hold: max(batch_size, eval_batch_size) */
    const char *arch;                   /* "mlp" or "distilbert" */
    const char *precision;              /* "fp32", "bf16", "fp16" */
    const char *optimizer;              /* "adamw", "adamw8bit", ... */
    const char *batch_field;            /* "training.batch_size", or "training.eval_batch_size" when larger */
    const char *model_field;            /* the spec field that sizes the model: "model.hidden" (MLP),
                                         * "model.path", "model.config.<first override of dim,
                                         * n_layers, hidden_dim, vocab_size,
                                         * max_position_embeddings>", or "model.preset" */
} trainer_estimate;

/* Estimates what a run of spec books. opt may be NULL; opt->device (else training.device),
 * opt->device_index, opt->data_dir, opt->device_mem_limit, opt->train_data / eval_data and the
 * dataset directories are honoured as trainer_open does. Fails as trainer_open would, naming
 * the same field, before it allocates anything: OCTET_ERR_ARG (a field that does not fit:
 * training.precision on the CPU, model.num_labels, model.arch for text on an MLP,
 * optimizer.param_groups[i].match, a config out of range, ...), OCTET_ERR_NODEV
 * (training.device), OCTET_ERR_IO / FORMAT for what it reads (see above), OCTET_ERR_NOMEM (host
 * memory). *out is zeroed on failure. */
int trainer_estimate_spec(const job_spec *spec, const trainer_options *opt, trainer_estimate *out, octet_err *e);

/* The same figures for a device of kind `device` ("cpu" or "cuda") without asking whether one
 * is there or what it has free (device_free and device_total stay 0): what the spec would take
 * on a GPU, asked on a machine without one. The workspace differs by kind (optim.h). Fails as
 * trainer_estimate_spec, but never with OCTET_ERR_NODEV; OCTET_ERR_ARG for another name. */
int trainer_estimate_on(const job_spec *spec, const trainer_options *opt, const char *device, trainer_estimate *out,
                        octet_err *e);

/* {"device", "parameters", "params_bytes", "grads_bytes",
 *  "optimizer_state": {"codes", "absmax", "maps", "fp32", "total"}, "optimizer_state_bytes",
 *  "adam8bit_rule_bytes", "adamw_bytes", "activations_bytes", "workspace_bytes", "peak_bytes",
 *  "device_free_bytes", "device_total_bytes", "fits",
 *  "assumed": {"num_labels", "max_length", "batch_size", "precision"}}
 * "fits" is peak_bytes <= device_free_bytes, null when the device's figures are unknown
 * (device_total 0); "max_length" is null for the MLP. A new reference; NULL when out of memory. */
json_t *trainer_estimate_json(const trainer_estimate *est);

/* OCTET_OK when est->peak_bytes <= available; else OCTET_ERR_NOMEM with a message giving the
 * peak, what the device can give and the parts (weights, gradients, optimizer state,
 * activations with the rows and tokens they hold, workspace), and e->field naming the spec
 * field to change. The rule: the largest of three parts decides — the activations, the
 * weights with their gradients, the optimizer's state (the workspace, small, never decides);
 * ties go to the activations, then to the weights:
 *  - activations: dataset.max_length for DistilBERT when it is above 128 (the spec's default:
 *    attention memory grows with its square) or the batch is already 1; otherwise the batch
 *    field that sizes them (est->batch_field); an MLP at batch 1: est->model_field;
 *  - the optimizer state, when larger than weights and gradients (AdamW's 8 B per parameter
 *    only ties with them): optimizer.name (adamw8bit keeps ~2 B per parameter, adafactor less);
 *  - the weights: est->model_field (model.preset, model.config.*, model.path, model.hidden).
 * A zeroed est's missing names fall back to "training.batch_size" and "model". */
int trainer_admit(const trainer_estimate *est, size_t available, octet_err *e);

#endif
