/* model.h: the interface every trainable model implements (mlp, distilbert), and what the
 * training loop, the checkpoints and the optimizer see of a model.
 *
 * A model owns its parameters and their gradients as fp32 buffers on one device (categories
 * `params` and `grads`), listed in a fixed order with Hugging Face's names and shapes, and the
 * activation buffers of the largest batch it was sized for (category `activations`). It runs a
 * forward pass on a batch (training mode applies dropout, with masks drawn from the seed and a
 * per-step counter) and a backward pass that ACCUMULATES into the gradients, so gradient
 * accumulation is just several forward/backward pairs between two optimizer steps.
 *
 * Batches come in host memory; the model uploads them (the only host->device copies on the hot
 * path besides reading the loss and predictions back). Every function returns OCTET_OK or a
 * status, filling octet_err with a field name for user-facing problems; nothing exits. */
#ifndef OCTET_TRAIN_MODEL_H
#define OCTET_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"
#include "hd.h"
#include "ops.h"
#include "status.h"

OCTET_EXTERN_C_BEGIN

#define MODEL_MAX_DIMS 4

/* num_labels, the size of the classifier head, in one place for every layer that checks it:
 * the spec (model.num_labels), the datasets (class ids 0..MODEL_MAX_LABELS-1), the trainer,
 * the MLP, DistilBERT and a model directory's config.json.
 *  - A job classifies, and classification needs two classes: MODEL_MIN_CLASSES is the least
 *    a spec or a dataset may have.
 *  - The models also build a head of 1, Hugging Face's regression (MSE on float targets,
 *    model_batch.targets); no dataset produces float targets, so only model code and its
 *    reference tests use it, and a config.json saying 1 is overridden by the job's classes.
 *  - MODEL_MAX_LABELS bounds them all. */
#define MODEL_MIN_CLASSES 2
#define MODEL_MAX_LABELS 65536

typedef struct model_param {
    char *name;                       /* Hugging Face name, e.g. "distilbert.embeddings.word_embeddings.weight" */
    int ndim;
    int64_t shape[MODEL_MAX_DIMS];
    int64_t n;                        /* prod(shape) */
    float *data;                      /* (n) on the device, category params */
    float *grad;                      /* (n) on the device, category grads */
    int no_decay;                     /* HF Trainer's default: biases and LayerNorm weights */
} model_param;

/* One batch, in host memory. Text models use ids/mask (B,T); the MLP uses features (B,F).
 * Labels are class ids in [0, num_labels) (classification) or targets (num_labels == 1). */
typedef struct model_batch {
    int B, T;                         /* rows; sequence length (text models) */
    const int32_t *ids;               /* (B,T) token ids */
    const int32_t *mask;              /* (B,T) 1 = real token, 0 = padding */
    const float *features;            /* (B,F) */
    const int32_t *labels;            /* (B) classification labels, or NULL */
    const float *targets;             /* (B) regression targets, or NULL */
} model_batch;

/* What a forward pass reports back to the host. */
typedef struct model_output {
    float loss;                       /* mean loss over the batch */
    int32_t *pred;                    /* (B) caller's host buffer for argmax predictions, or NULL */
    float *logits;                    /* (B, num_labels) caller's host buffer, or NULL */
} model_output;

/* How a model keeps the activations its backward pass reads between forward() and
 * backward() (chosen when the model is created; the training precision picks it). Arithmetic
 * is fp32 either way: MODEL_ACT_BF16 / MODEL_ACT_FP16 only round what is SAVED, to halve its
 * memory (DistilBERT; the MLP always stores fp32, its activations being a few rows). */
typedef enum model_act_dtype {
    MODEL_ACT_FP32 = 0,               /* saved activations in fp32 (the default) */
    MODEL_ACT_BF16 = 1,               /* saved in bf16 (8 significant bits, fp32's range) */
    MODEL_ACT_FP16 = 2                /* saved in fp16 (11 significant bits, |x| <= 65504) */
} model_act_dtype;

/* "fp32", "bf16", "fp16" ("?" for anything else). */
const char *model_act_dtype_name(model_act_dtype t);

typedef struct model model;

typedef struct model_vtable {
    const char *arch;                 /* "mlp" or "distilbert" */
    /* Forward on a batch of at most the model's max_batch rows (and max_len tokens). train = 1
     * applies dropout and keeps the activations for backward(); train = 0 is evaluation. */
    int (*forward)(model *m, const model_batch *b, int train, model_output *out, octet_err *e);
    /* Backward of the last training forward: gradients += d(dloss * loss)/d(params). An
     * evaluation forward in between overwrites the activations, so backward() then fails with
     * OCTET_ERR_ARG, as it does after a forward on a batch without labels. */
    int (*backward)(model *m, float dloss, octet_err *e);
    /* Frees the architecture's own state (impl, its activations); model_destroy() calls it and
     * then frees the parameters and the struct. */
    void (*destroy)(model *m);
} model_vtable;

struct model {
    const model_vtable *vt;
    device *dev;
    const ops_table *ops;
    int n_params;
    model_param *params;              /* in Hugging Face's order (named_parameters()) */
    float **grad_list;                /* (n_params) params[i].grad and params[i].n, as the lists */
    int64_t *grad_len;                /* that ops_clip_grad_norm() takes */
    int64_t n_parameters;             /* total trainable elements */
    int num_labels;                   /* classes, or 1 for regression */
    int max_batch, max_len;           /* the largest batch the activations were sized for */
    uint64_t seed;                    /* dropout masks: (seed, step, site) */
    uint64_t step;                    /* incremented by the training loop before each forward */
    model_act_dtype act_dtype;        /* how the saved activations are stored (MODEL_ACT_FP32 for the MLP) */
    void *impl;                       /* the architecture's own state */
};

/* Generic helpers (model.c). */
void model_destroy(model *m);
model_param *model_find_param(model *m, const char *name);
/* Zeroes every gradient buffer. */
int model_zero_grad(model *m);
/* Adds a parameter (name copied) and allocates data (zero) and grad on the device. Returns
 * OCTET_ERR_NOMEM when the device is full, with the figures in e (device_alloc_fail: asked,
 * free, total). */
int model_add_param(model *m, const char *name, int ndim, const int64_t *shape, int no_decay, octet_err *e);
/* Initialises every parameter as Hugging Face does for DistilBERT and nn.Linear models:
 * weights normal(0, std) from a seeded generator (documented in model.c), biases 0,
 * LayerNorm weights 1 (names ending in "LayerNorm.weight" or "layer_norm.weight"). */
int model_init_weights(model *m, float std, uint64_t seed, octet_err *e);

/* ---- a model's parameters as names and shapes, without a device ---- */

/* The parameters of an architecture for one configuration, enumerated without touching a
 * device (estimates, catalogs): names, shapes, order and no_decay flags exactly as the model's
 * creation adds them — mlp_create and distilbert_create_ex build their parameters from this
 * very list (mlp_param_list, distilbert_param_list) — with data and grad NULL. Host memory
 * only: the names. */
typedef struct model_param_list {
    model_param *v;                   /* (n) data and grad NULL */
    int n, cap;
    int64_t n_parameters;             /* sum of v[i].n */
} model_param_list;

/* Appends one parameter (name copied). Fails with OCTET_ERR_ARG ("model": dims out of 1..
 * MODEL_MAX_DIMS or a size <= 0, as model_add_param) or OCTET_ERR_NOMEM. */
int model_param_list_add(model_param_list *l, const char *name, int ndim, const int64_t *shape, int no_decay,
                         octet_err *e);
void model_param_list_free(model_param_list *l);
/* Adds every parameter of l to m in order (model_add_param: allocates data and grad). Fails as
 * model_add_param. */
int model_add_param_list(model *m, const model_param_list *l, octet_err *e);

/* ---- construction, initialisation, parameter copies, activation memory ---- */

/* A new, empty model on device d (its ops table looked up): no parameters yet. Fails with
 * OCTET_ERR_NODEV when the build has no ops twin for d's backend, OCTET_ERR_NOMEM. */
int model_new(device *d, const model_vtable *vt, model **out, octet_err *e);
/* Initialises every parameter as PyTorch's nn.Linear does by default (kaiming_uniform_ with
 * a = sqrt(5)): a weight (out, in) and the bias of the same layer ("X.weight", "X.bias") are
 * uniform in [-1/sqrt(in), 1/sqrt(in)], from the same seeded generator as
 * model_init_weights. Used by the MLP. Fails as model_init_weights. */
int model_init_linear_default(model *m, uint64_t seed, octet_err *e);
/* The generator behind both initialisers, exposed for tests: fills x (n, host memory) with
 * normal(0, std) draws from the stream of parameter `name` under `seed` (see model.c). */
void model_fill_normal(float *x, int64_t n, float std, uint64_t seed, const char *name);
/* Copies parameter i (n floats) from the device to host memory, or from host memory to the
 * device. OCTET_ERR_ARG for a bad index, else the device's status. */
int model_param_get(model *m, int i, float *host);
int model_param_set(model *m, int i, const float *host);
/* Allocates one activation block of `bytes` (category activations) for the model, or fails
 * with OCTET_ERR_NOMEM saying how much was asked for `what` and how much of how much the device
 * has free (device_alloc_fail). */
void *model_alloc_activations(model *m, size_t bytes, const char *what, octet_err *e);

/* Carving one activation block into tensors (llm.c's "malloc and point"): run the layout once
 * with base NULL to count (take() then returns NULL), allocate used * 4 bytes, run it again with
 * base set. Every tensor starts 64-byte aligned. int32 buffers are taken as floats and cast. */
typedef struct model_arena {
    float *base;      /* NULL while counting */
    int64_t used;     /* floats handed out so far, padding included */
} model_arena;
float *model_arena_take(model_arena *a, int64_t n);

OCTET_EXTERN_C_END
#endif
