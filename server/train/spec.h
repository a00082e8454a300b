/* spec.h: a fine-tuning job spec (DESIGN.md "Spec shape") parsed, validated and normalised
 * into a plain C struct, shared by octet-train and octetd.
 *
 * spec_parse() reads the JSON object strictly: unknown keys, wrong types and values out of
 * range are refused with an octet_err whose `field` is the dotted path of the culprit
 * ("optimizer.betas[1]", "training.batch_size", "optimizer.param_groups[0].match") and whose
 * message says what is allowed. Absent fields get their defaults: the training fields follow
 * Hugging Face's Trainer (3 epochs, batch 8, max_grad_norm 1.0, linear schedule, seed 42, ...),
 * the optimizer fields the reference optimizer (optim_config_defaults; Adafactor switches to
 * the Trainer's scale_parameter=false, relative_step=false when an lr is given). Finally the
 * optimizer config goes through optim_config_validate(), and a DistilBERT preset with its
 * model.config overrides through distilbert_config_validate(). spec_to_json() gives the
 * normalised spec back with every default filled in (null for "not set": num_labels from the
 * dataset, the model's own dropout, no limit), which is what a job stores and shows; it parses
 * back to the same spec. Defaults of fields the Trainer lacks: dataset.max_length 128, a
 * DistilBERT without preset or path is distilbert-base-uncased; model.hidden is required for
 * the MLP.
 *
 * Nothing here touches the file system: paths are only checked for shape (SPEC_SERVER refuses
 * absolute paths and ".." so that octetd can resolve them inside its data directory), and
 * dataset names are resolved by the runner (built-in or uploaded). The struct holds no
 * pointers, so it can be copied freely; spec_optim_config() hands out the optimizer config
 * with its groups' globs pointing into the spec. */
#ifndef OCTET_TRAIN_SPEC_H
#define OCTET_TRAIN_SPEC_H

#include <jansson.h>
#include <stdint.h>
#include "optim.h"
#include "status.h"

#define SPEC_NAME_MAX 128
#define SPEC_PATH_MAX 512
#define SPEC_MAX_HIDDEN 16
#define SPEC_MATCH_MAX 128

/* spec_parse flags */
enum {
    SPEC_SERVER = 1 << 0   /* octetd: data/model paths must be relative, without ".." */
};

typedef enum { SPEC_ARCH_MLP = 0, SPEC_ARCH_DISTILBERT } spec_arch;
typedef enum { SPEC_SCHED_LINEAR = 0, SPEC_SCHED_CONSTANT, SPEC_SCHED_COSINE } spec_sched;
typedef enum { SPEC_PREC_FP32 = 0, SPEC_PREC_BF16, SPEC_PREC_FP16 } spec_precision;

/* DistilBERT architecture overrides (model.config); 0 = not given (preset's value). */
typedef struct spec_model_config {
    int dim, n_layers, n_heads, hidden_dim, vocab_size, max_position_embeddings;
} spec_model_config;

typedef struct spec_model {
    spec_arch arch;
    char preset[SPEC_NAME_MAX];      /* distilbert: a preset name, or "" when `path` is given */
    char path[SPEC_PATH_MAX];        /* distilbert: a Hugging Face model directory, or "" */
    spec_model_config config;
    int n_hidden;                    /* mlp: hidden layer sizes */
    int hidden[SPEC_MAX_HIDDEN];
    int num_labels;                  /* 0: the dataset's number of classes */
    double dropout;                  /* < 0: the model's own probabilities */
} spec_model;

typedef struct spec_dataset {
    char name[SPEC_NAME_MAX];        /* built-in or uploaded; "" when files are given */
    char train_file[SPEC_PATH_MAX];  /* JSONL/CSV; "" when `name` is given */
    char eval_file[SPEC_PATH_MAX];
    int max_length;                  /* tokens per text example (128) */
    int64_t train_limit, eval_limit; /* 0: all */
} spec_dataset;

typedef struct spec_optimizer {
    optim_config cfg;                /* groups == NULL here; see spec_optim_config() */
    optim_group_spec groups[OPTIM_MAX_GROUPS]; /* match == NULL here: the glob is match[i] */
    char match[OPTIM_MAX_GROUPS][SPEC_MATCH_MAX];
} spec_optimizer;

typedef struct spec_training {
    int epochs;                      /* 3 */
    int batch_size;                  /* 8 (per_device_train_batch_size) */
    int eval_batch_size;             /* 8 */
    int grad_accum;                  /* gradient_accumulation_steps, 1 */
    double max_grad_norm;            /* 1.0; 0 = no clipping */
    spec_sched lr_scheduler;         /* linear */
    int warmup_is_ratio;             /* warmup_steps was a float in [0, 1) */
    double warmup_ratio;             /* when warmup_is_ratio */
    int64_t warmup_steps;            /* otherwise (0) */
    uint64_t seed;                   /* 42 */
    char device[8];                  /* "auto" | "cpu" | "cuda" */
    spec_precision precision;        /* fp32; see spec_check_device for bf16 / fp16 */
    int log_every;                   /* logging_steps, 500 */
} spec_training;

typedef struct job_spec {
    char name[SPEC_NAME_MAX];
    spec_model model;
    spec_dataset dataset;
    spec_optimizer optimizer;
    spec_training training;
} job_spec;

/* Parses and validates `root` (a JSON object) into *out. Returns OCTET_OK, or OCTET_ERR_ARG
 * with e naming the field and what is allowed; *out is then unspecified. */
int spec_parse(const json_t *root, unsigned flags, job_spec *out, octet_err *e);
/* The same from JSON text; a syntax error is OCTET_ERR_ARG with the line and column (field ""). */
int spec_parse_text(const char *text, unsigned flags, job_spec *out, octet_err *e);
/* Fills *s with the defaults of a spec (adamw, mlp with no hidden layers, no dataset): the
 * starting point of spec_parse and of tests. */
void spec_defaults(job_spec *s);

/* The normalised spec, every default filled in (a new reference; NULL when out of memory). */
json_t *spec_to_json(const job_spec *s);

/* The optimizer config of s: *cfg with cfg->groups = groups (OPTIM_MAX_GROUPS entries, filled
 * here), whose globs point into s (valid while s lives and is not moved). */
void spec_optim_config(const job_spec *s, optim_config *cfg, optim_group_spec *groups);

/* Refuses on the CPU what only CUDA can do (bf16/fp16 precision): OCTET_ERR_ARG naming
 * "training.precision". device_kind_is_cuda: the device the job will run on.
 *
 * What the precisions mean on CUDA: the master weights, the gradients and the optimizer
 * states and math stay fp32; "bf16" runs the matmuls (linear layers, attention products) on
 * bf16 tensor cores (operands rounded to bf16, fp32 accumulation and output;
 * kernels/ops/ops_cuda.h) and stores the activations DistilBERT saves for its backward pass in
 * bf16 (server/train/distilbert.c: fp32 arithmetic, about half the activation memory); "fp16"
 * does the same with fp16 tensor cores and fp16 activation storage, plus dynamic loss scaling
 * exactly as torch.cuda.amp.GradScaler (server/train/loss_scale.h: scale 65536, halved and the
 * step skipped on a non-finite gradient, doubled after 2000 good steps). Not autocast: the
 * other ops (LayerNorm, softmax, GELU) still compute in fp32. The MLP keeps fp32 activations. */
int spec_check_device(const job_spec *s, int device_kind_is_cuda, octet_err *e);

/* A short label of s's model for lists, into buf: the preset ("distilbert-base-uncased", with
 * " +config" when it has overrides), the model directory, or the MLP's layer sizes
 * ("mlp 256-128"). Cut to cap. */
void spec_model_label(const job_spec *s, char *buf, size_t cap);

const char *spec_arch_name(spec_arch a);
const char *spec_precision_name(spec_precision p);

#endif
