/* check_models.c: the models on their own: DistilBERT's parameter names, shapes and
 * order as Hugging Face's named_parameters(), the parameter counts of every preset from the
 * published formula (and distilbert-base-uncased's 66,955,010), the MLP's nn.Sequential
 * names, config.json parsing and validation errors that name the field, the seeded
 * initialisation (HF's normal(0, 0.02), padding row zero; nn.Linear's uniform for the MLP),
 * memory booked once under `activations` and nothing allocated per step, dropout (deterministic
 * per step, off in evaluation, backward through the same masks: finite differences with
 * dropout on), gradient accumulation, and both models learning a small task with our AdamW. */
#include "config.h"
#include "check_models.h"
#include "optim.h"
#include "testlib.h"
#include "train/distilbert.h"
#include "train/mlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static model *make_distilbert(device *d, const distilbert_config *c, int B, int T, uint64_t seed)
{
    model *m = NULL;
    octet_err e;
    octet_err_clear(&e);
    int rc = distilbert_create(d, c, B, T, seed, &m, &e);
    ck_assert_msg(rc == OCTET_OK, "distilbert_create: %s: %s", e.field, e.message);
    return m;
}

/* ------------------------------------------------------------------ names, shapes, counts */

START_TEST(test_distilbert_names)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 3, 0.1f);
    model *m = make_distilbert(d, &c, 2, 8, 1);
    static const char *const layer[] = {
        "attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight", "attention.k_lin.bias",
        "attention.v_lin.weight", "attention.v_lin.bias", "attention.out_lin.weight", "attention.out_lin.bias",
        "sa_layer_norm.weight", "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight",
        "ffn.lin2.bias", "output_layer_norm.weight", "output_layer_norm.bias"};
    static const int64_t lshape[16][2] = {{16, 16}, {16, 0}, {16, 16}, {16, 0}, {16, 16}, {16, 0}, {16, 16}, {16, 0},
                                          {16, 0},  {16, 0}, {24, 16}, {24, 0}, {16, 24}, {16, 0}, {16, 0},  {16, 0}};
    char want[64][128];
    int64_t wshape[64][2];
    int n = 0;
#define WANT(nm, a, b) (snprintf(want[n], sizeof want[n], "%s", nm), wshape[n][0] = a, wshape[n][1] = b, n++)
    WANT("distilbert.embeddings.word_embeddings.weight", 30, 16);
    WANT("distilbert.embeddings.position_embeddings.weight", 10, 16);
    WANT("distilbert.embeddings.LayerNorm.weight", 16, 0);
    WANT("distilbert.embeddings.LayerNorm.bias", 16, 0);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 16; k++) {
            snprintf(want[n], sizeof want[n], "distilbert.transformer.layer.%d.%s", l, layer[k]);
            wshape[n][0] = lshape[k][0];
            wshape[n][1] = lshape[k][1];
            n++;
        }
    WANT("pre_classifier.weight", 16, 16);
    WANT("pre_classifier.bias", 16, 0);
    WANT("classifier.weight", 3, 16);
    WANT("classifier.bias", 3, 0);
#undef WANT
    ck_assert_int_eq(m->n_params, n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const model_param *p = &m->params[i];
        ck_assert_str_eq(p->name, want[i]);
        ck_assert_int_eq(p->ndim, wshape[i][1] ? 2 : 1);
        ck_assert_int_eq(p->shape[0], wshape[i][0]);
        if (wshape[i][1])
            ck_assert_int_eq(p->shape[1], wshape[i][1]);
        int no_decay = strstr(p->name, "bias") || strstr(p->name, "LayerNorm") || strstr(p->name, "layer_norm");
        ck_assert_msg(p->no_decay == no_decay, "%s: no_decay %d", p->name, p->no_decay);
        ck_assert_ptr_eq(model_find_param(m, p->name), p);
        total += p->n;
    }
    ck_assert_int_eq(m->n_parameters, total);
    ck_assert_int_eq(m->num_labels, 3);
    ck_assert_str_eq(m->vt->arch, "distilbert");
    ck_assert_ptr_null(model_find_param(m, "nope"));
    model_destroy(m);
    device_close(d);
}
END_TEST

/* The published formula, written out here independently of distilbert.c. */
static int64_t published_count(int64_t V, int64_t P, int64_t d, int64_t h, int64_t layers, int64_t L)
{
    int64_t emb = V * d + P * d + 2 * d;
    int64_t layer = 4 * (d * d + d) + 2 * 2 * d + (d * h + h) + (h * d + d);
    int64_t head = d * d + d + d * L + L;
    return emb + layers * layer + head;
}

START_TEST(test_preset_counts)
{
    static const struct { const char *name; int V, d, layers, heads, h; } want[] = {
        {"distilbert-base-cased", 28996, 768, 6, 12, 3072},
        {"distilbert-base-uncased", 30522, 768, 6, 12, 3072},
        {"distilbert-small", 261, 256, 4, 4, 1024}, /* ours: the byte tokenizer's vocabulary */
        {"distilbert-tiny", 261, 64, 2, 4, 256},
    };
    device *d = tm_device();
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(distilbert_preset_name(i), want[i].name);
        ck_assert_int_eq(distilbert_preset_hub_id(i) != NULL, i < 2); /* the published two */
        distilbert_config c;
        ck_assert_int_eq(distilbert_preset(want[i].name, &c, NULL), OCTET_OK);
        ck_assert_int_eq(c.vocab_size, want[i].V);
        ck_assert_int_eq(c.dim, want[i].d);
        ck_assert_int_eq(c.n_layers, want[i].layers);
        ck_assert_int_eq(c.n_heads, want[i].heads);
        ck_assert_int_eq(c.hidden_dim, want[i].h);
        ck_assert_int_eq(c.max_position_embeddings, 512);
        ck_assert_int_eq(c.num_labels, 2);
        ck_assert(c.dropout == 0.1f && c.attention_dropout == 0.1f && c.seq_classif_dropout == 0.2f);
        model *m = make_distilbert(d, &c, 1, 4, 1);
        int64_t formula = published_count(want[i].V, 512, want[i].d, want[i].h, want[i].layers, 2);
        printf("%-24s %lld parameters (formula %lld)\n", want[i].name, (long long)m->n_parameters, (long long)formula);
        ck_assert_int_eq(m->n_parameters, formula);
        ck_assert_int_eq(distilbert_count_params(&c), formula);
        model_destroy(m);
    }
    ck_assert_ptr_null(distilbert_preset_name(4));
    /* the published figure (reference/8bit-adam.md): distilbert-base-uncased, 2 labels */
    distilbert_config c;
    distilbert_preset("distilbert-base-uncased", &c, NULL);
    ck_assert_int_eq(distilbert_count_params(&c), 66955010);
    c.num_labels = 5;
    ck_assert_int_eq(distilbert_count_params(&c), 66955010 + 3 * 769);
    device_close(d);
}
END_TEST

START_TEST(test_mlp_names)
{
    device *d = tm_device();
    model *m = NULL;
    octet_err e;
    const int hidden[3] = {256, 128, 100};
    ck_assert_int_eq(mlp_create(d, 784, hidden, 3, 10, 64, 42, &m, &e), OCTET_OK);
    static const char *const names[] = {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                                        "layers.4.weight", "layers.4.bias", "layers.6.weight", "layers.6.bias"};
    static const int64_t shapes[8][2] = {{256, 784}, {256, 0}, {128, 256}, {128, 0}, {100, 128}, {100, 0}, {10, 100}, {10, 0}};
    ck_assert_int_eq(m->n_params, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_str_eq(m->params[i].name, names[i]);
        ck_assert_int_eq(m->params[i].shape[0], shapes[i][0]);
        ck_assert_int_eq(m->params[i].ndim, shapes[i][1] ? 2 : 1);
        if (shapes[i][1])
            ck_assert_int_eq(m->params[i].shape[1], shapes[i][1]);
        ck_assert_int_eq(m->params[i].no_decay, i % 2);
    }
    ck_assert_int_eq(m->n_parameters, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 100 + 100 + 100 * 10 + 10);
    ck_assert_int_eq(mlp_count_params(784, hidden, 3, 10), m->n_parameters);
    ck_assert_str_eq(m->vt->arch, "mlp");
    mlp_shape s;
    ck_assert_int_eq(mlp_shape_of(m, &s), OCTET_OK);
    ck_assert_int_eq(s.in_features, 784);
    ck_assert_int_eq(s.n_hidden, 3);
    ck_assert_int_eq(s.hidden[2], 100);
    ck_assert_ptr_null(distilbert_config_of(m));
    model_destroy(m);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ configuration */

/* Parses text as JSON and overlays it on the defaults; returns the status, field in e. */
static int parse(const char *text, distilbert_config *c, octet_err *e)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    ck_assert_msg(j != NULL, "bad test JSON: %s", jerr.text);
    distilbert_config_default(c);
    octet_err_clear(e);
    int rc = distilbert_config_from_json(j, "model.config", c, e);
    if (rc == OCTET_OK)
        rc = distilbert_config_validate(c, e);
    json_decref(j);
    return rc;
}

START_TEST(test_config_json)
{
    distilbert_config c;
    octet_err e;
    const char *hf = "{\"activation\": \"gelu\", \"architectures\": [\"DistilBertForMaskedLM\"],"
                     " \"attention_dropout\": 0.05, \"dim\": 128, \"dropout\": 0.15, \"hidden_dim\": 512,"
                     " \"initializer_range\": 0.03, \"max_position_embeddings\": 256, \"model_type\": \"distilbert\","
                     " \"n_heads\": 8, \"n_layers\": 3, \"pad_token_id\": 1, \"qa_dropout\": 0.1,"
                     " \"seq_classif_dropout\": 0.25, \"sinusoidal_pos_embds\": false, \"tie_weights_\": true,"
                     " \"transformers_version\": \"4.40.0\", \"vocab_size\": 1000,"
                     " \"id2label\": {\"0\": \"a\", \"1\": \"b\", \"2\": \"c\"}}";
    ck_assert_int_eq(parse(hf, &c, &e), OCTET_OK);
    ck_assert_int_eq(c.dim, 128);
    ck_assert_int_eq(c.n_layers, 3);
    ck_assert_int_eq(c.n_heads, 8);
    ck_assert_int_eq(c.hidden_dim, 512);
    ck_assert_int_eq(c.vocab_size, 1000);
    ck_assert_int_eq(c.max_position_embeddings, 256);
    ck_assert_int_eq(c.pad_token_id, 1);
    ck_assert_int_eq(c.num_labels, 3);
    ck_assert(c.dropout == 0.15f && c.attention_dropout == 0.05f && c.seq_classif_dropout == 0.25f);
    ck_assert(c.initializer_range == 0.03f);
    /* to_json and back */
    json_t *j = distilbert_config_to_json(&c);
    distilbert_config back;
    distilbert_config_default(&back);
    ck_assert_int_eq(distilbert_config_from_json(j, "x", &back, &e), OCTET_OK);
    ck_assert(memcmp(&back, &c, sizeof c) == 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_type")), "distilbert");
    json_decref(j);
    /* the dropout override */
    ck_assert_int_eq(distilbert_config_set_dropout(&c, 0.0f, &e), OCTET_OK);
    ck_assert(c.dropout == 0.0f && c.attention_dropout == 0.0f && c.seq_classif_dropout == 0.0f);
    ck_assert_int_eq(distilbert_config_set_dropout(&c, 1.0f, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.dropout");
    ck_assert_int_eq(distilbert_preset("bert-large", &c, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.preset");
    ck_assert_ptr_nonnull(strstr(e.message, "distilbert-tiny"));
}
END_TEST

START_TEST(test_config_errors)
{
    static const struct { const char *json, *field; } bad[] = {
        {"{\"n_heads\": 5}", "model.config.n_heads"},             /* does not divide 768 */
        {"{\"n_heads\": \"12\"}", "model.config.n_heads"},
        {"{\"n_layers\": 0}", "model.config.n_layers"},
        {"{\"dim\": -8}", "model.config.dim"},
        {"{\"dim\": 1.5}", "model.config.dim"},
        {"{\"hidden_dim\": 0}", "model.config.hidden_dim"},
        {"{\"vocab_size\": 0}", "model.config.vocab_size"},
        {"{\"max_position_embeddings\": 100000000}", "model.config.max_position_embeddings"},
        {"{\"dropout\": 1.0}", "model.config.dropout"},
        {"{\"attention_dropout\": -0.1}", "model.config.attention_dropout"},
        {"{\"seq_classif_dropout\": \"x\"}", "model.config.seq_classif_dropout"},
        {"{\"pad_token_id\": 30522}", "model.config.pad_token_id"},
        {"{\"num_labels\": 0}", "model.num_labels"},
        {"{\"model_type\": \"bert\"}", "model.config.model_type"},
        {"{\"activation\": \"relu\"}", "model.config.activation"},
        {"{\"sinusoidal_pos_embds\": true}", "model.config.sinusoidal_pos_embds"},
        {"{\"id2label\": {}}", "model.config.id2label"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        distilbert_config c;
        octet_err e;
        ck_assert_msg(parse(bad[i].json, &c, &e) == OCTET_ERR_ARG, "%s accepted", bad[i].json);
        ck_assert_msg(!strcmp(e.field, bad[i].field), "%s: field %s, want %s (%s)", bad[i].json, e.field, bad[i].field,
                      e.message);
        ck_assert(e.message[0]);
    }
}
END_TEST

START_TEST(test_create_errors)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 2, 0.1f);
    model *m = (model *)1;
    octet_err e;
    ck_assert_int_eq(distilbert_create(d, &c, 2, 11, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "dataset.max_length");
    ck_assert_ptr_null(m);
    ck_assert_int_eq(distilbert_create(d, &c, 0, 8, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "training.batch_size");
    c.n_heads = 3;
    ck_assert_int_eq(distilbert_create(d, &c, 2, 8, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.config.n_heads");
    const int hidden[2] = {8, 0};
    ck_assert_int_eq(mlp_create(d, 4, hidden, 2, 3, 4, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.hidden[1]");
    ck_assert_int_eq(mlp_create(d, 4, hidden, 1, 0, 4, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.num_labels");
    ck_assert_int_eq(mlp_create(d, 4, hidden, MLP_MAX_HIDDEN + 1, 2, 4, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.hidden");
    /* batches that do not fit, ids outside the vocabulary, backward without forward */
    tm_small_config(&c, 2, 0.1f);
    m = make_distilbert(d, &c, 2, 4, 1);
    int32_t ids[12] = {2, 5, 6, 0, 2, 7, 30, 0, 2, 1, 1, 1}, mask[12] = {1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1};
    int32_t labels[3] = {0, 1, 1};
    model_batch b = {3, 4, ids, mask, NULL, labels, NULL};
    model_output out = {0};
    ck_assert_int_eq(m->vt->backward(m, 1.0f, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "training.batch_size");
    b.B = 2;
    b.T = 5;
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "dataset.max_length");
    b.T = 4;
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_ERR_ARG); /* id 30 */
    ck_assert_str_eq(e.field, "dataset");
    ids[6] = 29;
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_OK);
    ck_assert(isfinite(out.loss) && out.loss > 0.0f);
    b.labels = NULL; /* evaluation without labels: no loss, no backward */
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_OK);
    ck_assert(out.loss == 0.0f);
    ck_assert_int_eq(m->vt->backward(m, 1.0f, &e), OCTET_ERR_ARG);
    model_destroy(m);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ initialisation */

static void stats(const float *x, int64_t n, double *mean, double *std)
{
    double s = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        ss += (double)x[i] * x[i];
    }
    *mean = s / n;
    *std = sqrt(fmax(ss / n - *mean * *mean, 0.0));
}

START_TEST(test_init_distilbert)
{
    device *d = tm_device();
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, NULL), OCTET_OK);
    c.pad_token_id = 3;
    model *m = make_distilbert(d, &c, 1, 8, 42);
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        float *x = tm_param_host(m, i);
        double mean, std;
        if (strstr(p->name, "LayerNorm.weight") || strstr(p->name, "layer_norm.weight")) {
            for (int64_t j = 0; j < p->n; j++)
                ck_assert(x[j] == 1.0f);
        } else if (strstr(p->name, ".bias")) {
            for (int64_t j = 0; j < p->n; j++)
                ck_assert(x[j] == 0.0f);
        } else {
            int64_t n = p->n;
            if (i == 0) { /* the padding row of the word embeddings is zero, as nn.Embedding(padding_idx) */
                for (int j = 0; j < c.dim; j++)
                    ck_assert(x[3 * c.dim + j] == 0.0f);
                memmove(x + 3 * c.dim, x + 4 * c.dim, (size_t)(n - 4 * c.dim) * sizeof *x);
                n -= c.dim;
            }
            stats(x, n, &mean, &std);
            ck_assert_msg(fabs(mean) < 5.0 * 0.02 / sqrt((double)n), "%s: mean %g", p->name, mean);
            ck_assert_msg(fabs(std - 0.02) < 0.02 * 6.0 / sqrt((double)n), "%s: std %g", p->name, std);
        }
        free(x);
    }
    /* the same seed gives the same weights; another seed others */
    model *same = make_distilbert(d, &c, 1, 8, 42), *other = make_distilbert(d, &c, 1, 8, 43);
    for (int i = 0; i < m->n_params; i++) {
        float *a = tm_param_host(m, i), *b = tm_param_host(same, i), *o = tm_param_host(other, i);
        ck_assert(memcmp(a, b, (size_t)m->params[i].n * sizeof *a) == 0);
        if (m->params[i].ndim == 2)
            ck_assert(memcmp(a, o, (size_t)m->params[i].n * sizeof *a) != 0);
        free(a);
        free(b);
        free(o);
    }
    model_destroy(m);
    model_destroy(same);
    model_destroy(other);
    device_close(d);
}
END_TEST

START_TEST(test_init_mlp)
{
    device *d = tm_device();
    model *m = NULL;
    const int hidden[2] = {256, 64};
    ck_assert_int_eq(mlp_create(d, 784, hidden, 2, 10, 8, 3, &m, NULL), OCTET_OK);
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        int64_t fan_in = i % 2 ? m->params[i - 1].shape[1] : p->shape[1];
        double bound = 1.0 / sqrt((double)fan_in), mean, std;
        float *x = tm_param_host(m, i);
        for (int64_t j = 0; j < p->n; j++)
            ck_assert_msg(fabs(x[j]) <= bound, "%s[%lld] = %g beyond %g", p->name, (long long)j, x[j], bound);
        stats(x, p->n, &mean, &std);
        ck_assert_msg(fabs(std - bound / sqrt(3.0)) < bound * 5.0 / sqrt((double)p->n), "%s: std %g", p->name, std);
        free(x);
    }
    model_destroy(m);
    device_close(d);
    /* the generator: normal moments over a long stream */
    int64_t n = 1 << 20;
    float *x = malloc((size_t)n * sizeof *x);
    model_fill_normal(x, n, 2.0f, 7, "any");
    double mean, std, k4 = 0.0;
    stats(x, n, &mean, &std);
    for (int64_t i = 0; i < n; i++)
        k4 += pow(x[i] / 2.0, 4);
    ck_assert(fabs(mean) < 0.01 && fabs(std - 2.0) < 0.01 && fabs(k4 / n - 3.0) < 0.05);
    free(x);
}
END_TEST

/* ------------------------------------------------------------------ memory, dropout, gradients */

/* A batch of the small config: 3 rows of 6 tokens with padding. */
static void make_small_batch(tm_small_batch *s) { tm_make_small_batch(s, 5, 3, (const int32_t[3]){0, 1, 1}); }

START_TEST(test_memory_once)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 2, 0.1f);
    device_mem_stats before, after;
    device_mem_stats_get(d, &before);
    model *m = make_distilbert(d, &c, 3, 6, 1);
    device_mem_stats_get(d, &after);
    ck_assert_uint_eq(after.current[MEM_PARAMS] - before.current[MEM_PARAMS], (size_t)m->n_parameters * 4);
    ck_assert_uint_eq(after.current[MEM_GRADS] - before.current[MEM_GRADS], (size_t)m->n_parameters * 4);
    ck_assert_uint_eq(after.current[MEM_ACTIVATIONS] - before.current[MEM_ACTIVATIONS],
                      distilbert_activation_bytes(&c, 3, 6, MODEL_ACT_FP32));
    tm_small_batch sb;
    make_small_batch(&sb);
    model_output out = {0};
    octet_err e;
    device_mem_stats_get(d, &before);
    for (int s = 0; s < 3; s++) {
        m->step = (uint64_t)s;
        ck_assert_int_eq(m->vt->forward(m, &sb.b, 1, &out, &e), OCTET_OK);
        ck_assert_int_eq(m->vt->backward(m, 1.0f, &e), OCTET_OK);
        ck_assert_int_eq(m->vt->forward(m, &sb.b, 0, &out, &e), OCTET_OK);
    }
    device_mem_stats_get(d, &after);
    ck_assert_uint_eq(after.current_total, before.current_total);
    ck_assert_uint_eq(after.peak_total, before.peak_total);
    model_destroy(m);
    device_mem_stats_get(d, &after);
    ck_assert_uint_eq(after.current_total, 0);
    device_close(d);
}
END_TEST

/* Loss of one forward (train = 1 at the model's current step). */
static float loss_of(model *m, const model_batch *b, int train, float *logits)
{
    model_output out = {0.0f, NULL, logits};
    octet_err e;
    ck_assert_msg(m->vt->forward(m, b, train, &out, &e) == OCTET_OK, "%s", e.message);
    return out.loss;
}

START_TEST(test_dropout_modes)
{
    device *d = tm_device();
    distilbert_config c, off;
    tm_small_config(&c, 2, 0.1f);
    off = c;
    distilbert_config_set_dropout(&off, 0.0f, NULL);
    model *m = make_distilbert(d, &c, 3, 6, 5), *m0 = make_distilbert(d, &off, 3, 6, 5);
    tm_fill_params(m, 11);
    tm_fill_params(m0, 11);
    tm_small_batch sb;
    make_small_batch(&sb);
    float la[6], lb[6];
    m->step = 4;
    float l1 = loss_of(m, &sb.b, 1, la), l2 = loss_of(m, &sb.b, 1, lb);
    ck_assert(l1 == l2 && !memcmp(la, lb, sizeof la)); /* the same step draws the same masks */
    m->step = 5;
    ck_assert(loss_of(m, &sb.b, 1, lb) != l1);          /* another step, other masks */
    float eval = loss_of(m, &sb.b, 0, la);               /* evaluation: no dropout */
    ck_assert(eval == loss_of(m0, &sb.b, 1, lb) && !memcmp(la, lb, sizeof la));
    ck_assert(eval != l1);
    model_destroy(m);
    model_destroy(m0);
    device_close(d);
}
END_TEST

/* Gradient of element j of parameter i by central differences of the training loss. */
static double numeric_grad(model *m, const model_batch *b, int i, int64_t j, float h)
{
    float *x = tm_param_host(m, i), x0 = x[j];
    x[j] = x0 + h;
    model_param_set(m, i, x);
    double up = loss_of(m, b, 1, NULL);
    x[j] = x0 - h;
    model_param_set(m, i, x);
    double down = loss_of(m, b, 1, NULL);
    x[j] = x0;
    model_param_set(m, i, x);
    free(x);
    return (up - down) / (2.0 * (double)h);
}

/* Checks the largest-gradient element of every parameter against finite differences. */
static void check_fd(model *m, const model_batch *b, double *worst)
{
    octet_err e;
    ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
    loss_of(m, b, 1, NULL);
    ck_assert_int_eq(m->vt->backward(m, 1.0f, &e), OCTET_OK);
    for (int i = 0; i < m->n_params; i++) {
        float *g = tm_grad_host(m, i);
        int64_t at = 0;
        for (int64_t j = 1; j < m->params[i].n; j++)
            at = fabsf(g[j]) > fabsf(g[at]) ? j : at;
        double an = g[at], fd = numeric_grad(m, b, i, at, 1e-2f);
        double err = fabs(fd - an) / fmax(fabs(an), 1e-2);
        *worst = fmax(*worst, err);
        ck_assert_msg(err < 5e-3, "%s[%lld]: backward %.6g, finite differences %.6g", m->params[i].name, (long long)at, an,
                      fd);
        free(g);
    }
}

START_TEST(test_finite_differences)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 3, 0.2f); /* every dropout on: backward must use the forward's masks */
    model *m = make_distilbert(d, &c, 3, 6, 9);
    tm_fill_params(m, 21);
    tm_small_batch sb;
    make_small_batch(&sb);
    sb.labels[1] = 2;
    m->step = 17;
    double worst = 0.0;
    check_fd(m, &sb.b, &worst);
    model_destroy(m);
    /* the MLP, with 3 classes and as a regression */
    for (int labels = 3; labels >= 1; labels -= 2) {
        const int hidden[2] = {7, 5};
        float feats[12];
        int32_t lab[3] = {0, 2, 1};
        float targets[3] = {0.5f, -1.0f, 2.0f};
        for (int k = 0; k < 12; k++)
            feats[k] = sinf(1.0f + 0.7f * k);
        model_batch b = {3, 1, NULL, NULL, feats, labels > 1 ? lab : NULL, labels > 1 ? NULL : targets};
        ck_assert_int_eq(mlp_create(d, 4, hidden, 2, labels, 3, 2, &m, NULL), OCTET_OK);
        check_fd(m, &b, &worst);
        model_destroy(m);
    }
    printf("finite differences (dropout on): worst relative error %.2g\n", worst);
    device_close(d);
}
END_TEST

START_TEST(test_accumulation)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 2, 0.1f);
    model *m = make_distilbert(d, &c, 3, 6, 9);
    tm_small_batch sb;
    make_small_batch(&sb);
    octet_err e;
    float **one = calloc((size_t)m->n_params, sizeof *one);
    ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
    loss_of(m, &sb.b, 1, NULL);
    ck_assert_int_eq(m->vt->backward(m, 0.5f, &e), OCTET_OK);
    for (int i = 0; i < m->n_params; i++)
        one[i] = tm_grad_host(m, i);
    loss_of(m, &sb.b, 1, NULL);
    ck_assert_int_eq(m->vt->backward(m, 0.5f, &e), OCTET_OK); /* accumulates */
    loss_of(m, &sb.b, 1, NULL);
    ck_assert_int_eq(m->vt->backward(m, 1.0f, &e), OCTET_OK);
    for (int i = 0; i < m->n_params; i++) {
        float *g = tm_grad_host(m, i);
        for (int64_t j = 0; j < m->params[i].n; j++)
            ck_assert_msg(fabsf(g[j] - 4.0f * one[i][j]) <= 1e-6f * fabsf(g[j]) + 1e-12f, "%s[%lld]: %g vs 4 x %g",
                          m->params[i].name, (long long)j, g[j], one[i][j]);
        free(g);
        free(one[i]);
    }
    free(one);
    ck_assert_int_eq(model_zero_grad(m), OCTET_OK);
    float *g = tm_grad_host(m, 0);
    for (int64_t j = 0; j < m->params[0].n; j++)
        ck_assert(g[j] == 0.0f);
    free(g);
    model_destroy(m);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ learning */

START_TEST(test_distilbert_learns)
{
    device *d = tm_device();
    distilbert_config c;
    tm_small_config(&c, 2, 0.1f);
    model *m = make_distilbert(d, &c, 16, 8, 3);
    optim *o = tm_adamw(m, 3e-3);
    tm_toy_task_learns(m, o, "distilbert toy task");
    optim_destroy(o);
    model_destroy(m);
    device_close(d);
}
END_TEST

START_TEST(test_mlp_learns)
{
    /* four Gaussian blobs in 8 dimensions */
    device *d = tm_device();
    enum { B = 32, F = 8 };
    const int hidden[2] = {32, 16};
    model *m = NULL;
    ck_assert_int_eq(mlp_create(d, F, hidden, 2, 4, B, 1, &m, NULL), OCTET_OK);
    optim *o = tm_adamw(m, 1e-2);
    test_rng r;
    rng_seed(&r, 8);
    float feats[B * F];
    int32_t labels[B], pred[B];
    model_batch b = {B, 1, NULL, NULL, feats, labels, NULL};
    int correct = 0;
    for (int s = 0; s < 150; s++) {
        for (int i = 0; i < B; i++) {
            labels[i] = (int)(rng_u64(&r) % 4);
            for (int f = 0; f < F; f++)
                feats[i * F + f] = (float)rng_normal(&r) * 0.5f + (f % 4 == labels[i] ? 2.0f : 0.0f);
        }
        tm_train_step(m, o, &b, pred);
        for (int i = 0; s >= 130 && i < B; i++)
            correct += pred[i] == labels[i];
    }
    printf("mlp blobs: accuracy %.1f%% over the last 20 steps\n", 100.0 * correct / (20 * B));
    ck_assert(correct > 0.97 * 20 * B);
    optim_destroy(o);
    model_destroy(m);
    device_close(d);
}
END_TEST

Suite *suite_models(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("shapes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_distilbert_names);
    tcase_add_test(tc, test_preset_counts);
    tcase_add_test(tc, test_mlp_names);
    tcase_add_test(tc, test_config_json);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_init_distilbert);
    tcase_add_test(tc, test_init_mlp);
    suite_add_tcase(s, tc);
    tc = tcase_create("training");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_memory_once);
    tcase_add_test(tc, test_dropout_modes);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_test(tc, test_accumulation);
    tcase_add_test(tc, test_distilbert_learns);
    tcase_add_test(tc, test_mlp_learns);
    suite_add_tcase(s, tc);
    return s;
}
