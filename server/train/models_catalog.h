/* models_catalog.h: the models a job spec can name, as the data of GET /api/v1/models: every
 * DistilBERT preset (published or ours) with its configuration and exact parameter count for a
 * given num_labels, and the MLP with its parameter formula (its hidden sizes are the user's). */
#ifndef OCTET_TRAIN_MODELS_CATALOG_H
#define OCTET_TRAIN_MODELS_CATALOG_H

#include <jansson.h>

/* {"num_labels": L, "models": [ one object per DistilBERT preset in distilbert_preset order:
 *    {"name", "arch": "distilbert", "published" (true for Hugging Face's distilbert-base-cased
 *     and -uncased, which are those configurations exactly, vocabulary included), "hub_id"
 *     (the published model's id, or null), "default" (the preset of a spec that names none),
 *     "tokenizer" (what runs it), "config": {"dim", "n_layers", "n_heads", "hidden_dim",
 *     "vocab_size", "max_position_embeddings", "dropout", "attention_dropout",
 *     "seq_classif_dropout"}, "parameters" (exact, with a head of L labels),
 *     "parameters_formula"},
 *  then {"name": "mlp", "arch": "mlp", "published": false, "hub_id": null, "default": false,
 *     "parameters_formula", "example": {"dataset", "in_features", "hidden", "num_labels",
 *     "parameters"}} ]}
 * A new reference; NULL when num_labels is outside 1..MODEL_MAX_LABELS (validate it first) or
 * out of memory. */
json_t *trainer_models_catalog(int num_labels);

#endif
