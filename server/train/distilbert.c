/* distilbert.c: Hugging Face's DistilBertForSequenceClassification (distilbert.h) on the ops
 * table, llm.c style: a struct of activation pointers carved once from one block sized for
 * (max_batch, max_len), a forward pass that fills them, and a backward pass that walks the
 * same steps in reverse order, accumulating into the parameter gradients.
 *
 * Dropout masks are keyed by (model seed, offset = step * n_sites + site), with the sites
 * 0 = embeddings, 1 + 2l = attention probabilities of layer l, 2 + 2l = FFN output of layer l,
 * 1 + 2 n_layers = before the classifier; the backward pass regenerates the same masks.
 * Attention scales the scores q.k by 1/sqrt(head_dim) inside the op, which is HF's q/sqrt(d)
 * before the product up to float rounding.
 *
 * Half-precision activation storage (distilbert_create_ex with MODEL_ACT_BF16 / _FP16; the
 * training precisions bf16 / fp16 pick it). The tensors a block saves for its backward pass —
 * q, k, v, att, ctx, res1, ln1, fc1, res2, ln2 — are kept per layer in 16 bits (db_half_layer,
 * uint16_t), while the LayerNorm statistics (mean, rstd) stay fp32 per layer and gelu is not
 * saved at all: the backward pass recomputes it from the stored fc1. Every block computes in
 * one fp32 working layer (db_acts.wk, carved once): block_forward(l) runs there on x = the
 * previous block's output, which is the working layer's own ln2 (safe: x is read only by the
 * q/k/v projections and the first residual add, and ln2 is written last), then packs the saved
 * tensors of the batch's B,T (not the maximum) into layer l's store (ops to_half). So the
 * forward arithmetic is the fp32 arithmetic and the loss bit for bit the fp32 run's.
 * block_backward(l) first unpacks layer l's store into the working layer (ops from_half) and
 * its input x — layer l-1's ln2, or emb_ln (fp32) for l = 0 — into the working layer's ln2
 * (the backward never reads a block's own ln2), recomputes gelu, and then runs the fp32 backward:
 * the gradients see the 16-bit-rounded activations. Embeddings, the head and the scratch
 * buffers stay fp32. Saved memory per layer: (8 BTC + BHTT + BTF) x 2 bytes instead of
 * (8 BTC + BHTT + 2 BTF) x 4, plus one fp32 working layer for the whole model
 * (distilbert_activation_bytes has the exact figure). */
#include "config.h"
#include "distilbert.h"
#include "fileio.h"
#include "tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-12f
#define CONFIG_JSON_MAX ((size_t)16 << 20) /* a model directory's config.json */

/* The tensors of block l within m->params, in named_parameters() order. */
enum {
    Q_W, Q_B, K_W, K_B, V_W, V_B, O_W, O_B, SA_W, SA_B, L1_W, L1_B, L2_W, L2_B, OUT_W, OUT_B, N_LAYER_PARAMS
};
enum { WTE = 0, WPE = 1, EMB_LN_W = 2, EMB_LN_B = 3, N_EMB_PARAMS = 4 };
enum { PRE_W = 0, PRE_B, CLS_W, CLS_B };

#define LP(m, l, w) (&(m)->params[N_EMB_PARAMS + (l) * N_LAYER_PARAMS + (w)])
#define EP(m, w) (&(m)->params[(w)])
#define HP(m, L, w) (&(m)->params[N_EMB_PARAMS + (L) * N_LAYER_PARAMS + (w)])

/* One block's activations (B,T of the current batch; sized for the largest). */
typedef struct db_layer_acts {
    float *q, *k, *v;             /* (B,T,C) projections */
    float *att;                   /* (B,H,T,T) attention probabilities before dropout */
    float *ctx;                   /* (B,T,C) attention output, before out_lin */
    float *res1;                  /* (B,T,C) out_lin(ctx) + x: sa_layer_norm's input */
    float *ln1;                   /* (B,T,C) sa_layer_norm output */
    float *ln1_mean, *ln1_rstd;   /* (B,T) */
    float *fc1;                   /* (B,T,F) lin1 output, before GELU */
    float *gelu;                  /* (B,T,F) */
    float *res2;                  /* (B,T,C) dropout(lin2(gelu)) + ln1: output_layer_norm's input */
    float *ln2;                   /* (B,T,C) the block's output */
    float *ln2_mean, *ln2_rstd;   /* (B,T) */
} db_layer_acts;

/* One block's saved activations in 16 bits (half storage; the shapes of db_layer_acts). gelu is
 * recomputed from fc1 in the backward pass; the LayerNorm statistics are in db_layer_acts. */
typedef struct db_half_layer {
    uint16_t *q, *k, *v;          /* (B,T,C) */
    uint16_t *att;                /* (B,H,T,T) */
    uint16_t *ctx, *res1, *ln1;   /* (B,T,C) */
    uint16_t *fc1;                /* (B,T,F) */
    uint16_t *res2, *ln2;         /* (B,T,C); ln2 is block l+1's input */
} db_half_layer;

typedef struct db_acts {
    int *ids, *mask;              /* (B,T) the batch on the device */
    float *emb;                   /* (B,T,C) word + position rows */
    float *emb_ln;                /* (B,T,C) LayerNorm(emb), dropped out in place: block 0's input */
    float *emb_mean, *emb_rstd;   /* (B,T) */
    db_layer_acts *layer;         /* (n_layers); with half storage only the LayerNorm statistics */
    db_half_layer *half;          /* (n_layers) half storage, else NULL */
    db_layer_acts wk;             /* half storage: the fp32 working layer (statistics unused) */
    float *pooled;                /* (B,C) hidden[:, 0] */
    float *pre;                   /* (B,C) pre_classifier output */
    float *pre_act;               /* (B,C) ReLU(pre), dropped out in place: the classifier's input */
    float *logits;                /* (B,L) */
    float *losses, *loss;         /* (B), (1) */
    float *targets;               /* (B) regression targets */
    int *labels, *pred;           /* (B) */
    /* scratch and gradients of activations, shared by all blocks */
    float *work;                  /* (B,H,T,T) attention scratch */
    float *dx;                    /* (B,T,C) gradient of the residual stream */
    float *dtmp;                  /* (B,T,C) */
    float *dq, *dk, *dv;          /* (B,T,C) */
    float *dff;                   /* (B,T,F) */
    float *dlogits;               /* (B,L) */
    float *dpre, *dpooled;        /* (B,C) */
} db_acts;

typedef struct db_impl {
    distilbert_config cfg;
    db_acts a;
    float *block;                 /* the one activation allocation */
    float *host_targets;          /* (Bm) labels converted for regression */
    int B, T;                     /* shape of the last training forward; B = 0: none kept */
    int has_labels, has_mask;
    int n_sites;                  /* dropout sites per step */
    int half_kind;                /* OPS_HALF_BF16 / OPS_HALF_FP16 with half storage, else -1 */
} db_impl;

static const model_vtable distilbert_vtable;

/* ------------------------------------------------------------------ configuration */

void distilbert_config_default(distilbert_config *c)
{
    c->dim = 768;
    c->n_layers = 6;
    c->n_heads = 12;
    c->hidden_dim = 3072;
    c->vocab_size = 30522;
    c->max_position_embeddings = 512;
    c->dropout = 0.1f;
    c->attention_dropout = 0.1f;
    c->seq_classif_dropout = 0.2f;
    c->pad_token_id = 0;
    c->num_labels = 2;
    c->initializer_range = 0.02f;
}

typedef struct db_preset {
    const char *name;
    int dim, n_layers, n_heads, hidden_dim, vocab_size;
    const char *hub_id;           /* the published model's Hugging Face id; NULL for ours */
} db_preset;

/* The published two are Hugging Face's configurations exactly (config.json of
 * distilbert/distilbert-base-{cased,uncased}); ours are sized for CPU work over the byte
 * tokenizer's OCTET_TOK_BYTE_VOCAB ids. */
static const db_preset presets[] = {
    {"distilbert-base-cased", 768, 6, 12, 3072, 28996, "distilbert/distilbert-base-cased"},
    {"distilbert-base-uncased", 768, 6, 12, 3072, 30522, "distilbert/distilbert-base-uncased"},
    {"distilbert-small", 256, 4, 4, 1024, OCTET_TOK_BYTE_VOCAB, NULL},
    {"distilbert-tiny", 64, 2, 4, 256, OCTET_TOK_BYTE_VOCAB, NULL},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

const char *distilbert_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }
const char *distilbert_preset_hub_id(int i) { return i >= 0 && i < N_PRESETS ? presets[i].hub_id : NULL; }

int distilbert_preset(const char *name, distilbert_config *cfg, octet_err *e)
{
    for (int i = 0; name && i < N_PRESETS; i++) {
        if (strcmp(name, presets[i].name))
            continue;
        distilbert_config_default(cfg);
        cfg->dim = presets[i].dim;
        cfg->n_layers = presets[i].n_layers;
        cfg->n_heads = presets[i].n_heads;
        cfg->hidden_dim = presets[i].hidden_dim;
        cfg->vocab_size = presets[i].vocab_size;
        return OCTET_OK;
    }
    return octet_fail(e, OCTET_ERR_ARG, "model.preset",
                      "unknown preset '%s'; allowed: distilbert-base-cased, distilbert-base-uncased, "
                      "distilbert-small, distilbert-tiny", name ? name : "(none)");
}

int distilbert_config_set_dropout(distilbert_config *cfg, float p, octet_err *e)
{
    if (!(p >= 0.0f && p < 1.0f))
        return octet_fail(e, OCTET_ERR_ARG, "model.dropout", "must be in [0, 1), got %g", p);
    cfg->dropout = cfg->attention_dropout = cfg->seq_classif_dropout = p;
    return OCTET_OK;
}

/* Fails naming prefix.key with a message (and the offending value, when given). */
static int field_fail(octet_err *e, const char *prefix, const char *key, const char *msg, const char *got)
{
    octet_fail(e, OCTET_ERR_ARG, "", "%s%s%s", msg, got ? ", got " : "", got ? got : "");
    if (e)
        snprintf(e->field, sizeof e->field, "%s.%s", prefix, key);
    return OCTET_ERR_ARG;
}

/* An integer field of obj, if present: a JSON integer (or a real with an integral value)
 * within int range. */
static int json_int_field(const json_t *obj, const char *key, const char *prefix, int *out, octet_err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return OCTET_OK;
    double x = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
    if (!(x == floor(x)) || x < -2147483648.0 || x > 2147483647.0)
        return field_fail(e, prefix, key, "must be an integer", NULL);
    *out = (int)x;
    return OCTET_OK;
}

/* A probability or scale field of obj, if present: any JSON number. */
static int json_float_field(const json_t *obj, const char *key, const char *prefix, float *out, octet_err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return OCTET_OK;
    if (!json_is_number(v))
        return field_fail(e, prefix, key, "must be a number", NULL);
    *out = (float)json_number_value(v);
    return OCTET_OK;
}

/* model_type, activation and sinusoidal_pos_embds: the variants this implementation has. */
static int check_variant(const json_t *obj, const char *prefix, octet_err *e)
{
    json_t *v = json_object_get(obj, "model_type");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "distilbert")))
        return field_fail(e, prefix, "model_type", "must be \"distilbert\"", json_is_string(v) ? json_string_value(v) : NULL);
    v = json_object_get(obj, "activation");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gelu")))
        return field_fail(e, prefix, "activation", "only \"gelu\" is supported", json_is_string(v) ? json_string_value(v) : NULL);
    v = json_object_get(obj, "sinusoidal_pos_embds");
    if (v && !json_is_false(v))
        return field_fail(e, prefix, "sinusoidal_pos_embds", "only false (learned position embeddings) is supported", NULL);
    return OCTET_OK;
}

int distilbert_config_from_json(const json_t *obj, const char *prefix, distilbert_config *cfg, octet_err *e)
{
    if (!prefix)
        prefix = "model.config";
    if (!json_is_object(obj)) {
        octet_fail(e, OCTET_ERR_ARG, prefix, "must be a JSON object");
        return OCTET_ERR_ARG;
    }
    int rc = check_variant(obj, prefix, e);
    if (rc)
        return rc;
    struct { const char *key; int *dst; } ints[] = {
        {"dim", &cfg->dim}, {"n_layers", &cfg->n_layers}, {"n_heads", &cfg->n_heads},
        {"hidden_dim", &cfg->hidden_dim}, {"vocab_size", &cfg->vocab_size},
        {"max_position_embeddings", &cfg->max_position_embeddings}, {"pad_token_id", &cfg->pad_token_id},
        {"num_labels", &cfg->num_labels}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((rc = json_int_field(obj, ints[i].key, prefix, ints[i].dst, e)))
            return rc;
    struct { const char *key; float *dst; } floats[] = {
        {"dropout", &cfg->dropout}, {"attention_dropout", &cfg->attention_dropout},
        {"seq_classif_dropout", &cfg->seq_classif_dropout}, {"initializer_range", &cfg->initializer_range}};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if ((rc = json_float_field(obj, floats[i].key, prefix, floats[i].dst, e)))
            return rc;
    json_t *id2label = json_object_get(obj, "id2label");
    if (id2label && !json_object_get(obj, "num_labels")) {
        if (!json_is_object(id2label) || json_object_size(id2label) == 0)
            return field_fail(e, prefix, "id2label", "must be a non-empty object", NULL);
        cfg->num_labels = (int)json_object_size(id2label);
    }
    return OCTET_OK;
}

int distilbert_config_load(const char *path, distilbert_config *cfg, octet_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = octet_read_file(path, CONFIG_JSON_MAX, "model.path", &text, &len, e);
    if (rc != OCTET_OK)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return octet_fail(e, OCTET_ERR_FORMAT, "model.path", "%s:%d:%d: %s", path, jerr.line, jerr.column,
                          root ? "not a JSON object" : jerr.text);
    }
    octet_err inner;
    octet_err_clear(&inner);
    rc = distilbert_config_from_json(root, "config.json", cfg, &inner);
    json_decref(root);
    if (rc == OCTET_OK) /* values in range too, or they would be blamed on model.config.* */
        rc = distilbert_config_validate(cfg, &inner);
    if (rc != OCTET_OK) { /* the user named the directory: point there, quoting the key */
        const char *key = inner.field;
        static const char *const prefixes[] = {"config.json.", "model.config.", "model."};
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (!strncmp(key, prefixes[i], strlen(prefixes[i]))) {
                key += strlen(prefixes[i]);
                break;
            }
        return octet_fail(e, rc, "model.path", "%s: %s: %s", path, key, inner.message);
    }
    return OCTET_OK;
}

/* x as the shortest decimal that reads back as the same float (0.1f -> 0.1). */
static json_t *json_float(float x)
{
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) { /* 9 digits always read back exactly */
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x)
            break;
    }
    return json_real(strtod(buf, NULL));
}

json_t *distilbert_config_to_json(const distilbert_config *c)
{
    json_t *o = json_object(), *id2label = json_object(), *label2id = json_object();
    int ok = o && id2label && label2id;
    for (int i = 0; ok && i < c->num_labels; i++) {
        char id[16], label[32];
        snprintf(id, sizeof id, "%d", i);
        snprintf(label, sizeof label, "LABEL_%d", i);
        ok = !json_object_set_new(id2label, id, json_string(label)) &&
             !json_object_set_new(label2id, label, json_integer(i));
    }
    ok = ok && !json_object_set_new(o, "architectures", json_pack("[s]", "DistilBertForSequenceClassification")) &&
         !json_object_set_new(o, "model_type", json_string("distilbert")) &&
         !json_object_set_new(o, "activation", json_string("gelu")) &&
         !json_object_set_new(o, "dim", json_integer(c->dim)) &&
         !json_object_set_new(o, "n_layers", json_integer(c->n_layers)) &&
         !json_object_set_new(o, "n_heads", json_integer(c->n_heads)) &&
         !json_object_set_new(o, "hidden_dim", json_integer(c->hidden_dim)) &&
         !json_object_set_new(o, "vocab_size", json_integer(c->vocab_size)) &&
         !json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings)) &&
         !json_object_set_new(o, "dropout", json_float(c->dropout)) &&
         !json_object_set_new(o, "attention_dropout", json_float(c->attention_dropout)) &&
         !json_object_set_new(o, "seq_classif_dropout", json_float(c->seq_classif_dropout)) &&
         !json_object_set_new(o, "qa_dropout", json_float(0.1f)) &&
         !json_object_set_new(o, "initializer_range", json_float(c->initializer_range)) &&
         !json_object_set_new(o, "pad_token_id", json_integer(c->pad_token_id)) &&
         !json_object_set_new(o, "sinusoidal_pos_embds", json_false()) &&
         !json_object_set_new(o, "tie_weights_", json_true()) &&
         !json_object_set(o, "id2label", id2label) && !json_object_set(o, "label2id", label2id);
    json_decref(id2label);
    json_decref(label2id);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Fails unless lo <= v <= hi, naming model.config.<key>. */
static int range_int(int v, int lo, int hi, const char *key, octet_err *e)
{
    if (v >= lo && v <= hi)
        return OCTET_OK;
    char field[64];
    snprintf(field, sizeof field, "model.config.%s", key);
    return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer in %d..%d, got %d", lo, hi, v);
}

static int range_p(float p, const char *key, octet_err *e)
{
    if (p >= 0.0f && p < 1.0f)
        return OCTET_OK;
    char field[64];
    snprintf(field, sizeof field, "model.config.%s", key);
    return octet_fail(e, OCTET_ERR_ARG, field, "must be a probability in [0, 1), got %g", p);
}

int distilbert_config_validate(const distilbert_config *c, octet_err *e)
{
    if (range_int(c->dim, 1, DISTILBERT_MAX_DIM, "dim", e) || range_int(c->n_layers, 1, DISTILBERT_MAX_LAYERS, "n_layers", e) ||
        range_int(c->n_heads, 1, c->dim, "n_heads", e) ||
        range_int(c->hidden_dim, 1, 4 * DISTILBERT_MAX_DIM, "hidden_dim", e) ||
        range_int(c->vocab_size, 1, DISTILBERT_MAX_VOCAB, "vocab_size", e) ||
        range_int(c->max_position_embeddings, 1, DISTILBERT_MAX_POSITIONS, "max_position_embeddings", e) ||
        range_int(c->pad_token_id, 0, c->vocab_size - 1, "pad_token_id", e))
        return OCTET_ERR_ARG;
    if (c->dim % c->n_heads)
        return octet_fail(e, OCTET_ERR_ARG, "model.config.n_heads", "must divide dim (%d), got %d", c->dim, c->n_heads);
    if (range_p(c->dropout, "dropout", e) || range_p(c->attention_dropout, "attention_dropout", e) ||
        range_p(c->seq_classif_dropout, "seq_classif_dropout", e))
        return OCTET_ERR_ARG;
    if (c->num_labels < 1 || c->num_labels > MODEL_MAX_LABELS) /* 1: regression (model.h) */
        return octet_fail(e, OCTET_ERR_ARG, "model.num_labels", "must be an integer in 1..%d, got %d",
                          MODEL_MAX_LABELS, c->num_labels);
    if (!(c->initializer_range >= 0.0f && c->initializer_range <= 1.0f))
        return octet_fail(e, OCTET_ERR_ARG, "model.config.initializer_range", "must be in [0, 1], got %g",
                          c->initializer_range);
    return OCTET_OK;
}

int64_t distilbert_count_params(const distilbert_config *c)
{
    int64_t d = c->dim, h = c->hidden_dim, V = c->vocab_size, P = c->max_position_embeddings, L = c->num_labels;
    int64_t emb = V * d + P * d + 2 * d;
    int64_t layer = 4 * (d * d + d) + 2 * (2 * d) + (d * h + h) + (h * d + d);
    int64_t head = d * d + d + d * L + L;
    return emb + c->n_layers * layer + head;
}

/* ------------------------------------------------------------------ activations */

/* n 16-bit values from the arena (which counts floats): (n+1)/2 floats, 64-byte aligned. */
static uint16_t *take_half(model_arena *ar, int64_t n) { return (uint16_t *)model_arena_take(ar, (n + 1) / 2); }

/* Carves one block's fp32 tensors from ar, in db_layer_acts' order; the LayerNorm statistics
 * only with stats (else NULL). */
static void db_layout_block(db_layer_acts *y, model_arena *ar, int64_t BT, int64_t C, int64_t F, int64_t BHTT,
                            int stats)
{
    y->q = model_arena_take(ar, BT * C);
    y->k = model_arena_take(ar, BT * C);
    y->v = model_arena_take(ar, BT * C);
    y->att = model_arena_take(ar, BHTT);
    y->ctx = model_arena_take(ar, BT * C);
    y->res1 = model_arena_take(ar, BT * C);
    y->ln1 = model_arena_take(ar, BT * C);
    y->ln1_mean = stats ? model_arena_take(ar, BT) : NULL;
    y->ln1_rstd = stats ? model_arena_take(ar, BT) : NULL;
    y->fc1 = model_arena_take(ar, BT * F);
    y->gelu = model_arena_take(ar, BT * F);
    y->res2 = model_arena_take(ar, BT * C);
    y->ln2 = model_arena_take(ar, BT * C);
    y->ln2_mean = stats ? model_arena_take(ar, BT) : NULL;
    y->ln2_rstd = stats ? model_arena_take(ar, BT) : NULL;
}

/* Points the activations into ar (base NULL: counts floats) for (Bm, Tm), with fp32 storage
 * (half 0: every layer's tensors fp32, the layout before half storage existed) or half storage
 * (half 1: per layer the fp32 statistics and a->half[l], then one fp32 working layer). */
static void db_layout(db_acts *a, model_arena *ar, const distilbert_config *c, int Bm, int Tm, int half)
{
    int64_t BT = (int64_t)Bm * Tm, C = c->dim, F = c->hidden_dim, BHTT = (int64_t)Bm * c->n_heads * Tm * Tm;
    a->ids = (int *)model_arena_take(ar, BT);
    a->mask = (int *)model_arena_take(ar, BT);
    a->emb = model_arena_take(ar, BT * C);
    a->emb_ln = model_arena_take(ar, BT * C);
    a->emb_mean = model_arena_take(ar, BT);
    a->emb_rstd = model_arena_take(ar, BT);
    for (int l = 0; l < c->n_layers && half; l++) {
        db_layer_acts *y = a->layer ? &a->layer[l] : &(db_layer_acts){0};
        db_half_layer *h = a->half ? &a->half[l] : &(db_half_layer){0};
        y->ln1_mean = model_arena_take(ar, BT);
        y->ln1_rstd = model_arena_take(ar, BT);
        y->ln2_mean = model_arena_take(ar, BT);
        y->ln2_rstd = model_arena_take(ar, BT);
        h->q = take_half(ar, BT * C);
        h->k = take_half(ar, BT * C);
        h->v = take_half(ar, BT * C);
        h->att = take_half(ar, BHTT);
        h->ctx = take_half(ar, BT * C);
        h->res1 = take_half(ar, BT * C);
        h->ln1 = take_half(ar, BT * C);
        h->fc1 = take_half(ar, BT * F);
        h->res2 = take_half(ar, BT * C);
        h->ln2 = take_half(ar, BT * C);
    }
    if (half) /* the working layer: every tensor of a block in fp32, no statistics */
        db_layout_block(&a->wk, ar, BT, C, F, BHTT, 0);
    for (int l = 0; l < c->n_layers && !half; l++)
        db_layout_block(a->layer ? &a->layer[l] : &(db_layer_acts){0}, ar, BT, C, F, BHTT, 1);
    a->pooled = model_arena_take(ar, Bm * C);
    a->pre = model_arena_take(ar, Bm * C);
    a->pre_act = model_arena_take(ar, Bm * C);
    a->logits = model_arena_take(ar, (int64_t)Bm * c->num_labels);
    a->losses = model_arena_take(ar, Bm);
    a->loss = model_arena_take(ar, 1);
    a->targets = model_arena_take(ar, Bm);
    a->labels = (int *)model_arena_take(ar, Bm);
    a->pred = (int *)model_arena_take(ar, Bm);
    a->work = model_arena_take(ar, BHTT);
    a->dx = model_arena_take(ar, BT * C);
    a->dtmp = model_arena_take(ar, BT * C);
    a->dq = model_arena_take(ar, BT * C);
    a->dk = model_arena_take(ar, BT * C);
    a->dv = model_arena_take(ar, BT * C);
    a->dff = model_arena_take(ar, BT * F);
    a->dlogits = model_arena_take(ar, (int64_t)Bm * c->num_labels);
    a->dpre = model_arena_take(ar, Bm * C);
    a->dpooled = model_arena_take(ar, Bm * C);
}

size_t distilbert_activation_bytes(const distilbert_config *c, int max_batch, int max_len, model_act_dtype act)
{
    db_acts a;
    memset(&a, 0, sizeof a);
    model_arena ar = {NULL, 0};
    db_layout(&a, &ar, c, max_batch, max_len, act != MODEL_ACT_FP32);
    return (size_t)ar.used * sizeof(float);
}

static int db_alloc_acts(model *m, db_impl *im, octet_err *e)
{
    model_arena ar = {NULL, 0};
    int half = im->half_kind >= 0;
    im->a.layer = calloc((size_t)im->cfg.n_layers, sizeof *im->a.layer);
    im->a.half = half ? calloc((size_t)im->cfg.n_layers, sizeof *im->a.half) : NULL;
    im->host_targets = malloc((size_t)m->max_batch * sizeof(float));
    if (!im->a.layer || (half && !im->a.half) || !im->host_targets)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    db_layout(&im->a, &ar, &im->cfg, m->max_batch, m->max_len, half);
    im->block = model_alloc_activations(m, (size_t)ar.used * sizeof(float), "DistilBERT's activations", e);
    if (!im->block)
        return OCTET_ERR_NOMEM;
    ar.base = im->block;
    ar.used = 0;
    db_layout(&im->a, &ar, &im->cfg, m->max_batch, m->max_len, half);
    return OCTET_OK;
}

/* ------------------------------------------------------------------ parameters */

/* Appends one parameter named fmt (with the layer index l) of 1 or 2 dims. */
static int add(model_param_list *m, int l, const char *fmt, int64_t d0, int64_t d1, int no_decay, octet_err *e)
{
    char name[160];
    snprintf(name, sizeof name, fmt, l);
    int64_t shape[2] = {d0, d1};
    return model_param_list_add(m, name, d1 ? 2 : 1, shape, no_decay, e);
}

static int add_layer_params(model_param_list *m, int l, int64_t C, int64_t F, octet_err *e)
{
    static const char *const lins[4] = {"q_lin", "k_lin", "v_lin", "out_lin"};
    int rc = OCTET_OK;
    char fmt[160];
    for (int i = 0; i < 4 && rc == OCTET_OK; i++) {
        snprintf(fmt, sizeof fmt, "distilbert.transformer.layer.%%d.attention.%s.weight", lins[i]);
        rc = add(m, l, fmt, C, C, 0, e);
        snprintf(fmt, sizeof fmt, "distilbert.transformer.layer.%%d.attention.%s.bias", lins[i]);
        if (rc == OCTET_OK)
            rc = add(m, l, fmt, C, 0, 1, e);
    }
    const char *p = "distilbert.transformer.layer.%d.";
#define ADD(suffix, d0, d1, nd) \
    if (rc == OCTET_OK) { snprintf(fmt, sizeof fmt, "%s%s", p, suffix); rc = add(m, l, fmt, d0, d1, nd, e); }
    ADD("sa_layer_norm.weight", C, 0, 1)
    ADD("sa_layer_norm.bias", C, 0, 1)
    ADD("ffn.lin1.weight", F, C, 0)
    ADD("ffn.lin1.bias", F, 0, 1)
    ADD("ffn.lin2.weight", C, F, 0)
    ADD("ffn.lin2.bias", C, 0, 1)
    ADD("output_layer_norm.weight", C, 0, 1)
    ADD("output_layer_norm.bias", C, 0, 1)
#undef ADD
    return rc;
}

/* Every parameter in named_parameters() order. */
int distilbert_param_list(const distilbert_config *c, model_param_list *m, octet_err *e)
{
    memset(m, 0, sizeof *m);
    int64_t C = c->dim;
    int rc = add(m, 0, "distilbert.embeddings.word_embeddings.weight", c->vocab_size, C, 0, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "distilbert.embeddings.position_embeddings.weight", c->max_position_embeddings, C, 0, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "distilbert.embeddings.LayerNorm.weight", C, 0, 1, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "distilbert.embeddings.LayerNorm.bias", C, 0, 1, e);
    for (int l = 0; l < c->n_layers && rc == OCTET_OK; l++)
        rc = add_layer_params(m, l, C, c->hidden_dim, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "pre_classifier.weight", C, C, 0, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "pre_classifier.bias", C, 0, 1, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "classifier.weight", c->num_labels, C, 0, e);
    if (rc == OCTET_OK)
        rc = add(m, 0, "classifier.bias", c->num_labels, 0, 1, e);
    if (rc != OCTET_OK)
        model_param_list_free(m);
    return rc;
}

static int db_add_params(model *m, const distilbert_config *c, octet_err *e)
{
    model_param_list l;
    int rc = distilbert_param_list(c, &l, e);
    if (rc == OCTET_OK)
        rc = model_add_param_list(m, &l, e);
    model_param_list_free(&l);
    return rc;
}

/* HF's _init_weights: normal(0, initializer_range) weights, zero biases, unit LayerNorm
 * weights, and the word embeddings' padding row zero. */
static int db_init(model *m, const distilbert_config *c, uint64_t seed, octet_err *e)
{
    int rc = model_init_weights(m, c->initializer_range, seed, e);
    if (rc != OCTET_OK)
        return rc;
    float *row = EP(m, WTE)->data + (int64_t)c->pad_token_id * c->dim; /* (C) on the device */
    rc = device_zero(m->dev, row, (size_t)c->dim * sizeof(float));
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "could not zero the padding embedding");
}

int distilbert_create(device *d, const distilbert_config *cfg, int max_batch, int max_len, uint64_t seed,
                      model **out, octet_err *e)
{
    return distilbert_create_ex(d, cfg, max_batch, max_len, seed, MODEL_ACT_FP32, out, e);
}

int distilbert_create_ex(device *d, const distilbert_config *cfg, int max_batch, int max_len, uint64_t seed,
                         model_act_dtype act, model **out, octet_err *e)
{
    *out = NULL;
    if (act != MODEL_ACT_FP32 && act != MODEL_ACT_BF16 && act != MODEL_ACT_FP16)
        return octet_fail(e, OCTET_ERR_ARG, "training.precision", "unknown activation storage %d", (int)act);
    int rc = distilbert_config_validate(cfg, e);
    if (rc != OCTET_OK)
        return rc;
    if (max_batch < 1 || max_batch > (1 << 20))
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size", "must be in 1..%d, got %d", 1 << 20, max_batch);
    if (max_len < 1 || max_len > cfg->max_position_embeddings)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.max_length",
                          "must be in 1..%d (the model's max_position_embeddings), got %d",
                          cfg->max_position_embeddings, max_len);
    model *m = NULL;
    if ((rc = model_new(d, &distilbert_vtable, &m, e)) != OCTET_OK)
        return rc;
    db_impl *im = calloc(1, sizeof *im);
    if (!im) {
        model_destroy(m);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    m->impl = im;
    im->cfg = *cfg;
    im->n_sites = 2 + 2 * cfg->n_layers;
    m->num_labels = cfg->num_labels;
    m->max_batch = max_batch;
    m->max_len = max_len;
    m->seed = seed;
    m->act_dtype = act;
    im->half_kind = act == MODEL_ACT_BF16 ? OPS_HALF_BF16 : act == MODEL_ACT_FP16 ? OPS_HALF_FP16 : -1;
    rc = db_add_params(m, cfg, e);
    if (rc == OCTET_OK)
        rc = db_alloc_acts(m, im, e);
    if (rc == OCTET_OK)
        rc = db_init(m, cfg, seed, e);
    if (rc != OCTET_OK) {
        model_destroy(m);
        return rc;
    }
    *out = m;
    return OCTET_OK;
}

const distilbert_config *distilbert_config_of(const model *m)
{
    return m && m->vt == &distilbert_vtable ? &((const db_impl *)m->impl)->cfg : NULL;
}

static void db_destroy(model *m)
{
    db_impl *im = m->impl;
    if (!im)
        return;
    device_free(m->dev, im->block);
    free(im->a.layer);
    free(im->a.half);
    free(im->host_targets);
    free(im);
    m->impl = NULL;
}

/* ------------------------------------------------------------------ forward */

/* The dropout of `site` for this step: p when training, 0 in evaluation. */
static ops_dropout drop_at(const model *m, const db_impl *im, int site, float p, int train)
{
    ops_dropout d;
    d.p = train ? p : 0.0f;
    d.seed = m->seed;
    d.offset = m->step * (uint64_t)im->n_sites + (uint64_t)site;
    return d;
}

/* Checks the batch against the model's size and vocabulary, then uploads ids, mask and labels
 * (or regression targets). */
static int db_upload(model *m, db_impl *im, const model_batch *b, octet_err *e)
{
    const distilbert_config *c = &im->cfg;
    int B = b->B, T = b->T, rc;
    if (B < 1 || B > m->max_batch)
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size", "batch of %d rows; the model holds 1..%d", B, m->max_batch);
    if (T < 1 || T > m->max_len || !b->ids)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.max_length", "sequences of %d tokens; the model holds 1..%d%s", T,
                          m->max_len, b->ids ? "" : " (no token ids)");
    for (int64_t i = 0; i < (int64_t)B * T; i++)
        if (b->ids[i] < 0 || b->ids[i] >= c->vocab_size)
            return octet_fail(e, OCTET_ERR_ARG, "dataset", "token id %d outside the model's vocabulary (0..%d)",
                              (int)b->ids[i], c->vocab_size - 1);
    rc = device_upload(m->dev, im->a.ids, b->ids, (size_t)B * T * sizeof(int));
    if (rc == OCTET_OK && b->mask)
        rc = device_upload(m->dev, im->a.mask, b->mask, (size_t)B * T * sizeof(int));
    im->has_mask = b->mask != NULL;
    im->has_labels = 0;
    if (rc == OCTET_OK && c->num_labels > 1 && b->labels) {
        rc = device_upload(m->dev, im->a.labels, b->labels, (size_t)B * sizeof(int));
        im->has_labels = 1;
    } else if (rc == OCTET_OK && c->num_labels == 1 && (b->targets || b->labels)) {
        const float *t = b->targets;
        if (!t) {
            for (int i = 0; i < B; i++)
                im->host_targets[i] = (float)b->labels[i];
            t = im->host_targets;
        }
        rc = device_upload(m->dev, im->a.targets, t, (size_t)B * sizeof(float));
        im->has_labels = 1;
    }
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "could not upload the batch");
}

/* Embeddings: emb_ln = dropout(LayerNorm(word + position)). */
static int embed_forward(model *m, db_impl *im, int B, int T, int train)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_acts *a = &im->a;
    int64_t BT = (int64_t)B * T, C = c->dim;
    int rc = ops->embedding_forward(m->dev, a->emb, a->ids, EP(m, WTE)->data, EP(m, WPE)->data, B, T, c->dim,
                                    c->vocab_size);
    if (rc == OCTET_OK)
        rc = ops->layernorm_forward(m->dev, a->emb_ln, a->emb_mean, a->emb_rstd, a->emb, EP(m, EMB_LN_W)->data,
                                    EP(m, EMB_LN_B)->data, (int)BT, c->dim, LN_EPS);
    if (rc == OCTET_OK)
        rc = ops->dropout_forward(m->dev, a->emb_ln, a->emb_ln, BT * C, drop_at(m, im, 0, c->dropout, train));
    return rc;
}

/* Where block l computes: its own tensors (fp32 storage), or the working layer with layer l's
 * LayerNorm statistics (half storage), in *y. */
static void block_acts(db_impl *im, int l, db_layer_acts *y)
{
    if (im->half_kind < 0) {
        *y = im->a.layer[l];
        return;
    }
    const db_layer_acts *s = &im->a.layer[l];
    *y = im->a.wk;
    y->ln1_mean = s->ln1_mean;
    y->ln1_rstd = s->ln1_rstd;
    y->ln2_mean = s->ln2_mean;
    y->ln2_rstd = s->ln2_rstd;
}

/* The saved tensors of block l as (16-bit store, fp32 working tensor, elements of a B,T batch)
 * triples, in one place for pack and unpack; returns the count (10). ln2 comes last: the
 * backward of block l does not unpack it (it is block l+1's input). */
typedef struct db_half_pair {
    uint16_t *h;
    float *f;
    int64_t n;
} db_half_pair;

static int half_pairs(db_impl *im, int l, int B, int T, db_half_pair *p)
{
    const distilbert_config *c = &im->cfg;
    const db_half_layer *h = &im->a.half[l];
    const db_layer_acts *w = &im->a.wk;
    int64_t BTC = (int64_t)B * T * c->dim, BTF = (int64_t)B * T * c->hidden_dim;
    int64_t BHTT = (int64_t)B * c->n_heads * T * T;
    const db_half_pair all[10] = {{h->q, w->q, BTC},     {h->k, w->k, BTC},       {h->v, w->v, BTC},
                                  {h->att, w->att, BHTT}, {h->ctx, w->ctx, BTC},   {h->res1, w->res1, BTC},
                                  {h->ln1, w->ln1, BTC},  {h->fc1, w->fc1, BTF},   {h->res2, w->res2, BTC},
                                  {h->ln2, w->ln2, BTC}};
    memcpy(p, all, sizeof all);
    return 10;
}

/* Half storage: block l's saved tensors from the working layer into its 16-bit store. */
static int pack_layer(model *m, db_impl *im, int l, int B, int T)
{
    db_half_pair p[10];
    int n = half_pairs(im, l, B, T, p), rc = OCTET_OK;
    for (int i = 0; i < n && rc == OCTET_OK; i++)
        rc = m->ops->to_half(m->dev, p[i].h, p[i].f, p[i].n, im->half_kind);
    return rc;
}

/* Half storage: what block l's backward reads, back into the working layer: its saved tensors
 * but ln2, gelu recomputed from fc1, and its input x (layer l-1's ln2, l > 0) into wk.ln2. */
static int unpack_layer(model *m, db_impl *im, int l, int B, int T)
{
    db_half_pair p[10];
    int n = half_pairs(im, l, B, T, p) - 1, rc = OCTET_OK; /* all but ln2 */
    for (int i = 0; i < n && rc == OCTET_OK; i++)
        rc = m->ops->from_half(m->dev, p[i].f, p[i].h, p[i].n, im->half_kind);
    if (rc == OCTET_OK)
        rc = m->ops->gelu_forward(m->dev, im->a.wk.gelu, im->a.wk.fc1, (int64_t)B * T * im->cfg.hidden_dim);
    if (rc == OCTET_OK && l > 0)
        rc = m->ops->from_half(m->dev, im->a.wk.ln2, im->a.half[l - 1].ln2, (int64_t)B * T * im->cfg.dim,
                               im->half_kind);
    return rc;
}

/* Block l on input x (B,T,C): attention, residual, sa_layer_norm, FFN, residual,
 * output_layer_norm into y->ln2 (with half storage x may be the working layer's ln2 itself:
 * it is read only before ln2 is written). A training forward with half storage then packs
 * the saved tensors. */
static int block_forward(model *m, db_impl *im, int l, const float *x, int B, int T, int train)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_layer_acts acts, *y = &acts;
    block_acts(im, l, y);
    int BT = B * T, C = c->dim, F = c->hidden_dim;
    int64_t BTC = (int64_t)BT * C;
    const int *mask = im->has_mask ? im->a.mask : NULL;
    device *d = m->dev;
    int rc = ops->matmul_forward(d, y->q, x, LP(m, l, Q_W)->data, LP(m, l, Q_B)->data, BT, C, C);
    if (!rc) rc = ops->matmul_forward(d, y->k, x, LP(m, l, K_W)->data, LP(m, l, K_B)->data, BT, C, C);
    if (!rc) rc = ops->matmul_forward(d, y->v, x, LP(m, l, V_W)->data, LP(m, l, V_B)->data, BT, C, C);
    if (!rc) rc = ops->attention_forward(d, y->ctx, y->att, im->a.work, y->q, y->k, y->v, mask, B, T, C, c->n_heads,
                                         drop_at(m, im, 1 + 2 * l, c->attention_dropout, train));
    if (!rc) rc = ops->matmul_forward(d, y->res1, y->ctx, LP(m, l, O_W)->data, LP(m, l, O_B)->data, BT, C, C);
    if (!rc) rc = ops->add_forward(d, y->res1, y->res1, x, BTC);
    if (!rc) rc = ops->layernorm_forward(d, y->ln1, y->ln1_mean, y->ln1_rstd, y->res1, LP(m, l, SA_W)->data,
                                         LP(m, l, SA_B)->data, BT, C, LN_EPS);
    /* lin1 then GELU; the bias add is fused into the GELU pass (fc1 keeps the biased value) */
    if (!rc) rc = ops->matmul_forward(d, y->fc1, y->ln1, LP(m, l, L1_W)->data, NULL, BT, C, F);
    if (!rc) rc = ops->bias_gelu_forward(d, y->fc1, y->gelu, LP(m, l, L1_B)->data, BT, F);
    if (!rc) rc = ops->matmul_forward(d, y->res2, y->gelu, LP(m, l, L2_W)->data, LP(m, l, L2_B)->data, BT, F, C);
    if (!rc) rc = ops->dropout_forward(d, y->res2, y->res2, BTC, drop_at(m, im, 2 + 2 * l, c->dropout, train));
    if (!rc) rc = ops->add_forward(d, y->res2, y->res2, y->ln1, BTC);
    if (!rc) rc = ops->layernorm_forward(d, y->ln2, y->ln2_mean, y->ln2_rstd, y->res2, LP(m, l, OUT_W)->data,
                                         LP(m, l, OUT_B)->data, BT, C, LN_EPS);
    if (!rc && train && im->half_kind >= 0)
        rc = pack_layer(m, im, l, B, T);
    return rc;
}

/* Head: logits = classifier(dropout(relu(pre_classifier(x[:, 0])))). */
static int head_forward(model *m, db_impl *im, const float *x, int B, int T, int train)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_acts *a = &im->a;
    int L = c->n_layers, C = c->dim;
    int rc = ops->token_select_forward(m->dev, a->pooled, x, B, T, C, 0);
    if (!rc) rc = ops->matmul_forward(m->dev, a->pre, a->pooled, HP(m, L, PRE_W)->data, HP(m, L, PRE_B)->data, B, C, C);
    if (!rc) rc = ops->relu_forward(m->dev, a->pre_act, a->pre, (int64_t)B * C);
    if (!rc) rc = ops->dropout_forward(m->dev, a->pre_act, a->pre_act, (int64_t)B * C,
                                       drop_at(m, im, 1 + 2 * L, c->seq_classif_dropout, train));
    if (!rc) rc = ops->matmul_forward(m->dev, a->logits, a->pre_act, HP(m, L, CLS_W)->data, HP(m, L, CLS_B)->data, B, C,
                                      c->num_labels);
    return rc;
}

/* The loss (when the batch has labels) and the argmax predictions (all 0 for regression). */
static int loss_forward(model *m, db_impl *im, int B)
{
    const ops_table *ops = m->ops;
    db_acts *a = &im->a;
    int NL = im->cfg.num_labels, has = im->has_labels;
    if (NL > 1)
        return ops->crossentropy_forward(m->dev, has ? a->losses : NULL, has ? a->loss : NULL, a->pred, a->logits,
                                         has ? a->labels : NULL, B, NL);
    int rc = ops->crossentropy_forward(m->dev, NULL, NULL, a->pred, a->logits, NULL, B, NL);
    if (rc == OCTET_OK && has)
        rc = ops->mse_forward(m->dev, a->losses, a->loss, a->logits, a->targets, B);
    return rc;
}

/* Copies what the caller asked for to host memory. */
static int report(model *m, db_impl *im, int B, model_output *out)
{
    int rc = OCTET_OK;
    out->loss = 0.0f;
    if (im->has_labels)
        rc = device_download(m->dev, &out->loss, im->a.loss, sizeof(float));
    if (rc == OCTET_OK && out->pred)
        rc = device_download(m->dev, out->pred, im->a.pred, (size_t)B * sizeof(int32_t));
    if (rc == OCTET_OK && out->logits)
        rc = device_download(m->dev, out->logits, im->a.logits, (size_t)B * im->cfg.num_labels * sizeof(float));
    return rc;
}

static int db_forward(model *m, const model_batch *b, int train, model_output *out, octet_err *e)
{
    db_impl *im = m->impl;
    im->B = 0;
    int rc = db_upload(m, im, b, e);
    if (rc != OCTET_OK)
        return rc;
    int B = b->B, T = b->T;
    rc = embed_forward(m, im, B, T, train);
    const float *x = im->a.emb_ln; /* (B,T,C) */
    for (int l = 0; l < im->cfg.n_layers && rc == OCTET_OK; l++) {
        rc = block_forward(m, im, l, x, B, T, train);
        x = im->half_kind >= 0 ? im->a.wk.ln2 : im->a.layer[l].ln2;
    }
    if (rc == OCTET_OK)
        rc = head_forward(m, im, x, B, T, train);
    if (rc == OCTET_OK)
        rc = loss_forward(m, im, B);
    if (rc == OCTET_OK && out)
        rc = report(m, im, B, out);
    if (rc != OCTET_OK)
        return octet_fail(e, rc, "", "DistilBERT forward failed: %s", octet_strerror(rc));
    if (train) {
        im->B = B;
        im->T = T;
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ backward */

/* Head backward: from the loss down to dx (B,T,C), the gradient of the last block's output
 * (zero except at token 0). */
static int head_backward(model *m, db_impl *im, float dloss)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_acts *a = &im->a;
    int B = im->B, T = im->T, L = c->n_layers, C = c->dim, NL = c->num_labels;
    model_param *pw = HP(m, L, PRE_W), *pb = HP(m, L, PRE_B), *cw = HP(m, L, CLS_W), *cb = HP(m, L, CLS_B);
    int rc = NL > 1 ? ops->crossentropy_backward(m->dev, a->dlogits, a->logits, a->labels, B, NL, dloss)
                    : ops->mse_backward(m->dev, a->dlogits, a->logits, a->targets, B, dloss);
    if (!rc) rc = ops->matmul_backward(m->dev, a->dpre, cw->grad, cb->grad, a->dlogits, a->pre_act, cw->data, B, C, NL, 0);
    if (!rc) rc = ops->dropout_backward(m->dev, a->dpre, a->dpre, (int64_t)B * C,
                                        drop_at(m, im, 1 + 2 * L, c->seq_classif_dropout, 1));
    if (!rc) rc = ops->relu_backward(m->dev, a->dpre, a->pre, a->dpre, (int64_t)B * C);
    if (!rc) rc = ops->matmul_backward(m->dev, a->dpooled, pw->grad, pb->grad, a->dpre, a->pooled, pw->data, B, C, C, 0);
    if (!rc) rc = ops->token_select_backward(m->dev, a->dx, a->dpooled, B, T, C, 0);
    return rc;
}

/* Block l backward: on entry a->dx is d(block output), on exit d(block input x). x is block
 * l's input in fp32 storage; with half storage it is ignored, and block l's tensors and input
 * are first unpacked into the working layer (unpack_layer). */
static int block_backward(model *m, db_impl *im, int l, const float *x)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_acts *a = &im->a;
    db_layer_acts acts, *y = &acts;
    block_acts(im, l, y);
    int B = im->B, T = im->T, BT = B * T, C = c->dim, F = c->hidden_dim;
    int64_t BTC = (int64_t)BT * C;
    const int *mask = im->has_mask ? a->mask : NULL;
    device *d = m->dev;
    int rc = OCTET_OK;
    if (im->half_kind >= 0) {
        rc = unpack_layer(m, im, l, B, T);
        x = l ? a->wk.ln2 : a->emb_ln;
    }
#define G(w) LP(m, l, w)->grad
#define W(w) LP(m, l, w)->data
    /* output_layer_norm: dx = d res2 */
    if (!rc) rc = ops->layernorm_backward(d, a->dx, G(OUT_W), G(OUT_B), a->dx, y->res2, W(OUT_W), y->ln2_mean, y->ln2_rstd, BT, C);
    /* FFN: res2 = dropout(lin2(gelu(lin1(ln1)))) + ln1 */
    if (!rc) rc = ops->dropout_backward(d, a->dtmp, a->dx, BTC, drop_at(m, im, 2 + 2 * l, c->dropout, 1));
    if (!rc) rc = ops->matmul_backward(d, a->dff, G(L2_W), G(L2_B), a->dtmp, y->gelu, W(L2_W), BT, F, C, 0);
    if (!rc) rc = ops->gelu_backward(d, a->dff, y->fc1, a->dff, (int64_t)BT * F);
    if (!rc) rc = ops->matmul_backward(d, a->dx, G(L1_W), G(L1_B), a->dff, y->ln1, W(L1_W), BT, C, F, 1); /* dx = d ln1 */
    /* sa_layer_norm: dx = d res1 */
    if (!rc) rc = ops->layernorm_backward(d, a->dx, G(SA_W), G(SA_B), a->dx, y->res1, W(SA_W), y->ln1_mean, y->ln1_rstd, BT, C);
    /* attention: res1 = out_lin(attention(q_lin(x), k_lin(x), v_lin(x))) + x */
    if (!rc) rc = ops->matmul_backward(d, a->dtmp, G(O_W), G(O_B), a->dx, y->ctx, W(O_W), BT, C, C, 0);
    if (!rc) rc = ops->attention_backward(d, a->dq, a->dk, a->dv, a->work, a->dtmp, y->q, y->k, y->v, y->att, mask, B, T,
                                          C, c->n_heads, drop_at(m, im, 1 + 2 * l, c->attention_dropout, 1));
    if (!rc) rc = ops->matmul_backward(d, a->dx, G(Q_W), G(Q_B), a->dq, x, W(Q_W), BT, C, C, 1);
    if (!rc) rc = ops->matmul_backward(d, a->dx, G(K_W), G(K_B), a->dk, x, W(K_W), BT, C, C, 1);
    if (!rc) rc = ops->matmul_backward(d, a->dx, G(V_W), G(V_B), a->dv, x, W(V_W), BT, C, C, 1);
#undef G
#undef W
    return rc;
}

/* Embeddings backward from dx = d(block 0's input). */
static int embed_backward(model *m, db_impl *im)
{
    const ops_table *ops = m->ops;
    const distilbert_config *c = &im->cfg;
    db_acts *a = &im->a;
    int B = im->B, T = im->T, BT = B * T, C = c->dim;
    int rc = ops->dropout_backward(m->dev, a->dx, a->dx, (int64_t)BT * C, drop_at(m, im, 0, c->dropout, 1));
    if (!rc) rc = ops->layernorm_backward(m->dev, a->dx, EP(m, EMB_LN_W)->grad, EP(m, EMB_LN_B)->grad, a->dx, a->emb,
                                          EP(m, EMB_LN_W)->data, a->emb_mean, a->emb_rstd, BT, C);
    if (!rc) rc = ops->embedding_backward(m->dev, EP(m, WTE)->grad, EP(m, WPE)->grad, a->dx, a->ids, B, T, C,
                                          c->vocab_size, c->pad_token_id);
    return rc;
}

static int db_backward(model *m, float dloss, octet_err *e)
{
    db_impl *im = m->impl;
    if (im->B == 0 || !im->has_labels)
        return octet_fail(e, OCTET_ERR_ARG, "", "backward() needs a training forward() on a labelled batch");
    int rc = head_backward(m, im, dloss);
    for (int l = im->cfg.n_layers - 1; l >= 0 && rc == OCTET_OK; l--)
        rc = block_backward(m, im, l, im->half_kind >= 0 ? NULL : l ? im->a.layer[l - 1].ln2 : im->a.emb_ln);
    if (rc == OCTET_OK)
        rc = embed_backward(m, im);
    return rc == OCTET_OK ? rc : octet_fail(e, rc, "", "DistilBERT backward failed: %s", octet_strerror(rc));
}

static const model_vtable distilbert_vtable = {"distilbert", db_forward, db_backward, db_destroy};
