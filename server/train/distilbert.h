/* distilbert.h: Hugging Face's DistilBertForSequenceClassification (arch "distilbert"),
 * exactly: the same parameter names, shapes and order as its named_parameters(), the same
 * forward pass (word + position embeddings -> LayerNorm(eps 1e-12) -> dropout; n_layers
 * post-LayerNorm blocks of multi-head self-attention with a padding mask and FFN with exact
 * GELU; the [CLS] row -> pre_classifier -> ReLU -> dropout -> classifier) and its losses
 * (cross-entropy; MSE when num_labels is 1). Weights start as HF's _init_weights: normal(0,
 * initializer_range) for linear and embedding weights, the padding row of the word embeddings
 * zero, biases 0, LayerNorm weights 1.
 *
 * A configuration comes from a preset (distilbert_preset), from HF's config.json
 * (distilbert_config_from_json / distilbert_config_load) or both: the JSON fields overlay
 * what is there. Parameter order (L = layer index):
 *   distilbert.embeddings.word_embeddings.weight        (vocab_size, dim)
 *   distilbert.embeddings.position_embeddings.weight    (max_position_embeddings, dim)
 *   distilbert.embeddings.LayerNorm.{weight,bias}       (dim)
 *   distilbert.transformer.layer.L.attention.{q_lin,k_lin,v_lin,out_lin}.{weight (dim,dim), bias (dim)}
 *   distilbert.transformer.layer.L.sa_layer_norm.{weight,bias}       (dim)
 *   distilbert.transformer.layer.L.ffn.lin1.{weight (hidden_dim,dim), bias (hidden_dim)}
 *   distilbert.transformer.layer.L.ffn.lin2.{weight (dim,hidden_dim), bias (dim)}
 *   distilbert.transformer.layer.L.output_layer_norm.{weight,bias}   (dim)
 *   pre_classifier.{weight (dim,dim), bias (dim)}
 *   classifier.{weight (num_labels,dim), bias (num_labels)} */
#ifndef OCTET_TRAIN_DISTILBERT_H
#define OCTET_TRAIN_DISTILBERT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "model.h"

OCTET_EXTERN_C_BEGIN

/* Fields and defaults of HF's DistilBertConfig (the defaults are distilbert-base-uncased's). */
typedef struct distilbert_config {
    int dim;                      /* 768 */
    int n_layers;                 /* 6 */
    int n_heads;                  /* 12 */
    int hidden_dim;               /* 3072 */
    int vocab_size;               /* 30522 */
    int max_position_embeddings;  /* 512 */
    float dropout;                /* 0.1: embeddings and the FFN output */
    float attention_dropout;      /* 0.1: attention probabilities */
    float seq_classif_dropout;    /* 0.2: before the classifier */
    int pad_token_id;             /* 0: the word embedding row with no gradient */
    int num_labels;               /* 2 */
    float initializer_range;      /* 0.02 */
} distilbert_config;

/* Sanity limits of validation. */
#define DISTILBERT_MAX_DIM 16384
#define DISTILBERT_MAX_LAYERS 128
#define DISTILBERT_MAX_VOCAB 4000000
#define DISTILBERT_MAX_POSITIONS 65536     /* num_labels: MODEL_MAX_LABELS (model.h) */

/* HF's defaults (distilbert-base-uncased with 2 labels). */
void distilbert_config_default(distilbert_config *cfg);

/* The presets. A published one is the published model's configuration exactly, vocabulary
 * included, whatever tokenizer runs it: "distilbert-base-cased" (vocab 28996) and
 * "distilbert-base-uncased" (30522), both dim 768, 6 layers, 12 heads, hidden 3072, 512
 * positions (66,955,010 parameters for uncased with 2 labels). Ours, sized for CPU work, have
 * the byte tokenizer's vocabulary (OCTET_TOK_BYTE_VOCAB = 261 rows: a model trained here
 * without a vocab.txt uses no other id): "distilbert-small" (dim 256, 4 layers, 4 heads,
 * hidden 1024) and "distilbert-tiny" (dim 64, 2 layers, 4 heads, hidden 256), 512 positions.
 * Every preset has HF's dropouts and 2 labels. Fails with OCTET_ERR_ARG naming "model.preset"
 * and listing the names. */
int distilbert_preset(const char *name, distilbert_config *cfg, octet_err *e);
/* The i-th preset's name, NULL past the end (for the catalog). */
const char *distilbert_preset_name(int i);
/* The i-th preset's Hugging Face id ("distilbert/distilbert-base-cased") when it is a published
 * model, NULL for ours and past the end. */
const char *distilbert_preset_hub_id(int i);

/* Overlays the DistilBertConfig fields present in `obj` on cfg: dim, n_layers, n_heads,
 * hidden_dim, vocab_size, max_position_embeddings, dropout, attention_dropout,
 * seq_classif_dropout, pad_token_id, initializer_range, num_labels (or the size of id2label),
 * and checks model_type ("distilbert"), activation ("gelu") and sinusoidal_pos_embds (false);
 * other keys are ignored. `prefix` names the object in errors ("model.config" gives
 * "model.config.n_heads"). Fails with OCTET_ERR_ARG for a wrong type or an unsupported value.
 * Does not validate ranges: call distilbert_config_validate. */
int distilbert_config_from_json(const json_t *obj, const char *prefix, distilbert_config *cfg, octet_err *e);
/* Reads a config.json file, overlays it on cfg as above and validates the result
 * (distilbert_config_validate). OCTET_ERR_IO when unreadable, OCTET_ERR_FORMAT when not a JSON
 * object (the message names the file, line and column), OCTET_ERR_ARG for a wrong or
 * out-of-range value. Every failure names the field "model.path" (the spec field that chose
 * the directory, not the inline overrides model.config.*), the message the file and the
 * config.json key: "<path>: n_heads: must divide dim (8), got 3". */
int distilbert_config_load(const char *path, distilbert_config *cfg, octet_err *e);
/* The config as HF's config.json (architectures, model_type, activation, every field above,
 * id2label/label2id "LABEL_i"); a new reference, NULL when out of memory. */
json_t *distilbert_config_to_json(const distilbert_config *cfg);

/* Sets every dropout probability (dropout, attention_dropout, seq_classif_dropout) to p;
 * 0 turns them all off. OCTET_ERR_ARG ("model.dropout") unless 0 <= p < 1. */
int distilbert_config_set_dropout(distilbert_config *cfg, float p, octet_err *e);

/* Checks sizes (positive and within the limits above), dim divisible by n_heads, dropouts in
 * [0, 1), pad_token_id in [0, vocab_size), initializer_range >= 0. The error names the field
 * as "model.config.<name>" ("model.num_labels" for num_labels). */
int distilbert_config_validate(const distilbert_config *cfg, octet_err *e);

/* Trainable parameters by the published formula: embeddings V d + P d + 2 d; per layer
 * 4 (d^2 + d) + 2 (2 d) + (d h + h) + (h d + d); head d^2 + d + d L + L. */
int64_t distilbert_count_params(const distilbert_config *cfg);
/* Bytes of the activation block distilbert_create_ex allocates for (max_batch, max_len) with
 * activation storage `act` (the exact figure, the one the device's ledger books under
 * activations). With MODEL_ACT_BF16 / MODEL_ACT_FP16 (the same size) the per-layer saved
 * tensors take 2 bytes an element and gelu is not saved, plus one fp32 working layer: for
 * distilbert-base at batch 32, seq 128: 1453 MiB fp32 against 877 MiB half (60%). */
size_t distilbert_activation_bytes(const distilbert_config *cfg, int max_batch, int max_len, model_act_dtype act);

/* The parameters distilbert_create_ex adds for cfg (model_param_list: the names, shapes and
 * order above; the model is built from this list), without a device. cfg assumed valid
 * (distilbert_config_validate). Fails with OCTET_ERR_NOMEM only. */
int distilbert_param_list(const distilbert_config *cfg, model_param_list *out, octet_err *e);

/* Builds the model on device d with activations for up to max_batch sequences of max_len
 * tokens, weights initialised from `seed` (model_init_weights with initializer_range, then the
 * padding row zeroed), activations stored in fp32. Fails with OCTET_ERR_ARG (an invalid config, as
 * distilbert_config_validate; "training.batch_size"; "dataset.max_length" when max_len is not
 * in 1..max_position_embeddings), OCTET_ERR_NOMEM (the message says what did not fit) or
 * OCTET_ERR_NODEV. *out is NULL on failure. */
int distilbert_create(device *d, const distilbert_config *cfg, int max_batch, int max_len, uint64_t seed,
                      model **out, octet_err *e);

/* distilbert_create with the activations its backward pass reads stored as `act`
 * (model_act_dtype; distilbert.c's header describes half storage: fp32 arithmetic, the saved
 * tensors rounded to bf16 / fp16, about half the activation memory). Works on every device.
 * Fails as distilbert_create, and with OCTET_ERR_ARG ("training.precision") for an unknown act. */
int distilbert_create_ex(device *d, const distilbert_config *cfg, int max_batch, int max_len, uint64_t seed,
                         model_act_dtype act, model **out, octet_err *e);

/* The configuration a DistilBERT model was built with; NULL when m is not one. */
const distilbert_config *distilbert_config_of(const model *m);

OCTET_EXTERN_C_END
#endif
