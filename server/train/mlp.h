/* mlp.h: the fully connected classifier (arch "mlp"): Linear -> ReLU for every hidden size,
 * then a Linear classifier, trained with cross-entropy (mean squared error when num_labels is
 * 1, as Hugging Face's regression heads do).
 *
 * Parameter names are those PyTorch gives `self.layers = nn.Sequential(Linear, ReLU, Linear,
 * ReLU, ..., Linear)`: the Linear of hidden layer i is module 2i, so its tensors are
 * "layers.<2i>.weight" (hidden[i], in) and "layers.<2i>.bias" (hidden[i]), and the classifier
 * is "layers.<2 n_hidden>.weight" (num_labels, last) and ".bias" (num_labels). The weights are
 * initialised as nn.Linear's default (model_init_linear_default: uniform in +-1/sqrt(fan_in)
 * for weight and bias), which trains a ReLU MLP well from the first step (the normal(0, 0.02)
 * of transformers shrinks the signal ~5x per layer of a 784-256-128-100 network). */
#ifndef OCTET_TRAIN_MLP_H
#define OCTET_TRAIN_MLP_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"

OCTET_EXTERN_C_BEGIN

#define MLP_MAX_HIDDEN 16      /* hidden layers */
#define MLP_MAX_WIDTH 65536    /* features and hidden sizes; labels: MODEL_MAX_LABELS */

/* The sizes an MLP was built with. */
typedef struct mlp_shape {
    int in_features;
    int n_hidden;
    int hidden[MLP_MAX_HIDDEN];
    int num_labels;
} mlp_shape;

/* Builds an MLP on device d with activations for up to max_batch rows, weights initialised
 * from `seed`. Fails with OCTET_ERR_ARG naming the field ("dataset" for in_features,
 * "model.hidden[i]", "model.hidden" for too many layers, "model.num_labels",
 * "training.batch_size" for max_batch), OCTET_ERR_NOMEM (the message says what did not fit) or
 * OCTET_ERR_NODEV (no ops for the device). *out is NULL on failure. */
int mlp_create(device *d, int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch,
               uint64_t seed, model **out, octet_err *e);

/* The shape of an MLP built by mlp_create; OCTET_ERR_ARG when m is not an MLP. */
int mlp_shape_of(const model *m, mlp_shape *out);

/* Trainable parameters of an MLP of these sizes (no allocation), for estimates. Sizes are
 * assumed valid. */
int64_t mlp_count_params(int in_features, const int *hidden, int n_hidden, int num_labels);

/* ---- the same MLP without a device (estimates) ---- */

/* The checks mlp_create makes before it allocates anything; fails as mlp_create does with
 * OCTET_ERR_ARG naming the field. */
int mlp_check(int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch, octet_err *e);
/* The parameters mlp_create adds (model_param_list: names, shapes, order; mlp_create builds
 * from this list). Sizes assumed valid (mlp_check). Fails with OCTET_ERR_NOMEM only. */
int mlp_param_list(int in_features, const int *hidden, int n_hidden, int num_labels, model_param_list *out,
                   octet_err *e);
/* Bytes of the activation block mlp_create allocates for max_batch rows: the figure the
 * device's ledger books under activations. Sizes assumed valid. */
size_t mlp_activation_bytes(int in_features, const int *hidden, int n_hidden, int num_labels, int max_batch);

OCTET_EXTERN_C_END
#endif
