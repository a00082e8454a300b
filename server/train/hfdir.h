/* hfdir.h: Hugging Face model directories as checkpoints: loading one (config.json,
 * model.safetensors, vocab.txt, tokenizer_config.json) to fine-tune from, and saving a
 * model's weights in the same layout (model.safetensors + config.json) so PyTorch,
 * Transformers and octet itself can load them back.
 *
 * Loading matches tensors by name as Transformers' from_pretrained does for
 * DistilBertForSequenceClassification: a model parameter "distilbert.X" is taken from the
 * checkpoint's "distilbert.X" or, for a base-model checkpoint saved without the prefix, "X".
 * Checkpoint tensors no parameter takes (e.g. the masked-LM head vocab_transform.*,
 * vocab_layer_norm.*, vocab_projector.*) are reported as unused, parameters the checkpoint
 * lacks (pre_classifier.*, classifier.*) as freshly initialised; the buffer "*.position_ids"
 * of older checkpoints is skipped silently, as Transformers does. A tensor present under the
 * right name with another shape is an error naming it. F16, BF16 and F64 tensors are
 * converted to fp32. */
#ifndef OCTET_TRAIN_HFDIR_H
#define OCTET_TRAIN_HFDIR_H

#include <stdint.h>
#include "distilbert.h"
#include "model.h"
#include "tokenizer.h"

OCTET_EXTERN_C_BEGIN

/* What a load did, for the job's log and the API. */
typedef struct hfdir_report {
    int n_loaded;      /* parameters taken from the checkpoint */
    int n_unused;
    char **unused;     /* checkpoint tensors no parameter took, in file order */
    int n_fresh;
    char **fresh;      /* parameters the checkpoint lacks (left as initialised), in model order */
} hfdir_report;

void hfdir_report_free(hfdir_report *r);
/* Logs the report as Transformers words it ("Some weights of the model checkpoint at <source>
 * were not used when initializing <arch>: [...]", "... newly initialized: [...]"). */
void hfdir_report_log(const hfdir_report *r, const char *source, const char *arch);

/* Loads the tensors of safetensors file `path` into m's parameters (names matched as above).
 * strict = 1 (resuming octet's own checkpoint) also refuses unused tensors and missing
 * parameters. rep (may be NULL) receives the report (empty on failure); free it with
 * hfdir_report_free. Shapes are checked for every tensor before any is copied. Fails with
 * OCTET_ERR_IO / OCTET_ERR_FORMAT (the file, from safetensors.h), OCTET_ERR_MISMATCH (a shape
 * differs: the message names the tensor and both shapes; strict: what is unused or missing),
 * OCTET_ERR_NOMEM; field "model.path". A read error after the checks leaves the parameters
 * partly loaded. */
int hfdir_load_weights(model *m, const char *path, int strict, hfdir_report *rep, octet_err *e);

/* The configuration of model directory `dir`: config.json over HF's defaults. When tok is not
 * NULL and the directory has vocab.txt, *tok receives its WordPiece tokenizer (with
 * tokenizer_config.json), else NULL. A vocab.txt larger than config.json's vocab_size is an
 * error (ids would fall outside the embeddings). Fails with OCTET_ERR_IO (no config.json),
 * OCTET_ERR_FORMAT / OCTET_ERR_ARG (a bad config or vocab; field "model.path"). */
int hfdir_read_config(const char *dir, distilbert_config *cfg, octet_tokenizer **tok, octet_err *e);

/* How to build the model of a directory. */
typedef struct hfdir_options {
    int num_labels;    /* > 0 overrides config.json's (id2label's size, else 2) */
    float dropout;     /* >= 0 overrides every dropout probability; < 0 keeps config.json's */
    int max_batch;     /* activations: sequences per batch */
    int max_len;       /* activations: tokens per sequence */
    uint64_t seed;     /* initialisation of the fresh tensors, and dropout */
    model_act_dtype act; /* storage of the saved activations (0: MODEL_ACT_FP32) */
} hfdir_options;

/* Reads dir's configuration (hfdir_read_config), applies the options, builds a DistilBERT
 * (distilbert_create_ex) and loads dir/model.safetensors into it (hfdir_load_weights, not
 * strict). *out, *tok (may be NULL) and rep (may be NULL) as above; on failure *out is NULL. */
int hfdir_load_distilbert(device *d, const char *dir, const hfdir_options *o, model **out, octet_tokenizer **tok,
                          hfdir_report *rep, octet_err *e);

/* Writes m's weights to dir/model.safetensors (F32, Hugging Face names, metadata
 * {"format": "pt"}) and its configuration to dir/config.json (DistilBERT: HF's
 * DistilBertConfig; MLP: {"model_type": "octet-mlp", "in_features", "hidden", "num_labels"}),
 * creating dir if needed. Each file is replaced atomically. Fails with OCTET_ERR_IO (the
 * message names the path and the OS error), OCTET_ERR_NOMEM, or the device's status. */
int hfdir_save(model *m, const char *dir, octet_err *e);

OCTET_EXTERN_C_END
#endif
