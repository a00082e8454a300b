/* models_catalog.c: the models catalog (models_catalog.h), built from the presets' own
 * definitions (distilbert_preset, distilbert_config_to_json, distilbert_count_params) and the
 * MLP's count (mlp_count_params), so the catalog cannot say other than what a job builds. */
#include "config.h"
#include "train/models_catalog.h"

#include <string.h>
#include "train/distilbert.h"
#include "train/mlp.h"
#include "train/tokenizer.h"

#define DEFAULT_PRESET "distilbert-base-uncased" /* spec.c's default for a DistilBERT without preset or path */

static const char *const db_formula =
    "vocab_size*dim + max_position_embeddings*dim + 2*dim (embeddings and their LayerNorm) + n_layers*(4*(dim^2+dim) "
    "(q/k/v/out_lin) + 4*dim (two LayerNorms) + dim*hidden_dim+hidden_dim + hidden_dim*dim+dim (the FFN)) + "
    "dim^2+dim (pre_classifier) + dim*num_labels+num_labels (classifier)";

static const char *const mlp_formula =
    "sum over the Linear layers of (in + 1) * out: in of the first = the dataset's features (784 for fashion-mnist), "
    "out = model.hidden[i] in turn, the last out = num_labels; each layer's in is the previous one's out";

/* One preset's entry. */
static json_t *preset_entry(int i, int num_labels)
{
    const char *name = distilbert_preset_name(i), *hub = distilbert_preset_hub_id(i);
    distilbert_config c;
    if (distilbert_preset(name, &c, NULL) != OCTET_OK)
        return NULL;
    c.num_labels = num_labels;
    json_t *hf = distilbert_config_to_json(&c), *cfg = json_object();
    static const char *const keys[] = {"dim", "n_layers", "n_heads", "hidden_dim", "vocab_size",
                                       "max_position_embeddings", "dropout", "attention_dropout",
                                       "seq_classif_dropout"};
    int ok = hf && cfg;
    for (size_t k = 0; ok && k < sizeof keys / sizeof keys[0]; k++)
        ok = !json_object_set(cfg, keys[k], json_object_get(hf, keys[k]));
    json_decref(hf);
    char tok[160];
    if (hub)
        snprintf(tok, sizeof tok, "WordPiece from the model directory's vocab.txt (model.path); without one, bytes "
                 "(ids 0..%d of the %d-row embedding)", OCTET_TOK_BYTE_VOCAB - 1, c.vocab_size);
    else
        snprintf(tok, sizeof tok, "bytes (its %d-row vocabulary is the byte tokenizer's)", c.vocab_size);
    json_t *o = ok ? json_pack("{s:s, s:s, s:b, s:o, s:b, s:s, s:O, s:I, s:s}", "name", name, "arch", "distilbert",
                               "published", hub != NULL, "hub_id", hub ? json_string(hub) : json_null(), "default",
                               !strcmp(name, DEFAULT_PRESET), "tokenizer", tok, "config", cfg, "parameters",
                               (json_int_t)distilbert_count_params(&c), "parameters_formula", db_formula)
                   : NULL;
    json_decref(cfg);
    return o;
}

static json_t *mlp_entry(int num_labels)
{
    static const int hidden[3] = {256, 128, 100};
    json_t *example = json_pack("{s:s, s:i, s:[iii], s:i, s:I}", "dataset", "fashion-mnist", "in_features", 784,
                                "hidden", hidden[0], hidden[1], hidden[2], "num_labels", num_labels, "parameters",
                                (json_int_t)mlp_count_params(784, hidden, 3, num_labels));
    return example ? json_pack("{s:s, s:s, s:b, s:n, s:b, s:s, s:o}", "name", "mlp", "arch", "mlp", "published", 0,
                               "hub_id", "default", 0, "parameters_formula", mlp_formula, "example", example)
                   : NULL;
}

json_t *trainer_models_catalog(int num_labels)
{
    if (num_labels < 1 || num_labels > MODEL_MAX_LABELS)
        return NULL;
    json_t *models = json_array();
    int ok = models != NULL;
    for (int i = 0; ok && distilbert_preset_name(i); i++)
        ok = !json_array_append_new(models, preset_entry(i, num_labels));
    ok = ok && !json_array_append_new(models, mlp_entry(num_labels));
    if (!ok) {
        json_decref(models);
        return NULL;
    }
    return json_pack("{s:i, s:o}", "num_labels", num_labels, "models", models);
}
