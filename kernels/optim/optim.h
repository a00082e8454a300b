/* optim.h: the optimizer engine's public interface.
 *
 * One interface for every optimizer (adamw, adam8bit, adamw8bit, adafactor, sgd): create it
 * from a parameter list (names, shapes, param and grad buffers on a device) and a config (base
 * hyper-parameters plus param_groups that match parameter names by glob), then call
 * optim_step() after each backward pass. The engine owns the optimizer state, allocated on the
 * same device under the `optimizer_state` category, and can report its exact size, save it and
 * load it back bit for bit.
 *
 * Parameters are assigned to the first param_group whose glob matches their name, else to the
 * base group. 8-bit optimizers keep fp32 states for tensors under min_8bit_size elements and
 * for tensors whose group sets optim_bits = 32 (bitsandbytes' override).
 *
 * Every function returns OCTET_OK or a negative status; user errors fill an octet_err naming
 * the field ("optimizer.betas[1]", "optimizer.param_groups[0].match"). Nothing here exits. */
#ifndef OCTET_OPTIM_H
#define OCTET_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "device.h"
#include "hd.h"
#include "status.h"

OCTET_EXTERN_C_BEGIN

typedef enum {
    OPTIM_ADAMW = 0,
    OPTIM_ADAM8BIT,
    OPTIM_ADAMW8BIT,
    OPTIM_ADAFACTOR,
    OPTIM_SGD,
    OPTIM_NKINDS
} optim_kind;

#define OPTIM_MAX_DIMS 4
#define OPTIM_MAX_GROUPS 64
/* Quantization blocks of the 8-bit optimizers (and of quant.h): a power of two in this range. */
#define OPTIM_BLOCK_MIN 64
#define OPTIM_BLOCK_MAX 4096

/* Hyper-parameters of a group. Fields an optimizer does not use are ignored. */
typedef struct optim_hparams {
    double lr;              /* > 0 and finite; adafactor with relative_step: 0 (unset) */
    double beta1, beta2;    /* in [0, 1) */
    double eps;             /* > 0; adafactor: eps1 (added to g^2) */
    double weight_decay;    /* >= 0 */
    int optim_bits;         /* 8-bit optimizers: 8 or 32 */
    double momentum;        /* sgd: >= 0 */
    double dampening;       /* sgd: in [0, 1] */
    int nesterov;           /* sgd: needs momentum > 0 and dampening 0 */
    double eps2;            /* adafactor: floor of RMS(X) in scale_parameter */
    double clip_threshold;  /* adafactor: > 0 */
    double decay_rate;      /* adafactor: < 0 */
    int use_beta1;          /* adafactor: beta1 given (momentum on the update) */
    int scale_parameter, relative_step, warmup_init; /* adafactor flags */
} optim_hparams;

/* Which fields of a param_group override the base group. The optimizers whose groups take
 * each field, and its spec name, are its entry's in optim_params.h (group_kinds, group_set). */
enum {
    OPTIM_SET_LR = 1 << 0,
    OPTIM_SET_BETAS = 1 << 1,
    OPTIM_SET_EPS = 1 << 2,
    OPTIM_SET_WEIGHT_DECAY = 1 << 3,
    OPTIM_SET_OPTIM_BITS = 1 << 4,
    OPTIM_SET_MOMENTUM = 1 << 5
};

typedef struct optim_group_spec {
    const char *match;      /* fnmatch glob over parameter names; must match at least one */
    unsigned set;           /* OPTIM_SET_* bits */
    optim_hparams hp;       /* values of the fields named in `set` */
} optim_group_spec;

typedef struct optim_config {
    optim_kind kind;
    optim_hparams base;
    int64_t min_8bit_size;  /* 8-bit: tensors with fewer elements keep fp32 states (4096) */
    int block_size;         /* 8-bit: optim_block_size_ok (256) */
    int n_groups;
    const optim_group_spec *groups;
} optim_config;

/* One parameter tensor, as the model owns it. `param` and `grad` are fp32 buffers of
 * prod(shape) elements in the device's memory; the optimizer keeps the pointers. */
typedef struct optim_tensor {
    const char *name;
    int ndim;
    int64_t shape[OPTIM_MAX_DIMS];
    float *param;
    const float *grad;
} optim_tensor;

/* Exact optimizer-state bytes. */
typedef struct optim_state_bytes {
    size_t codes;   /* uint8 quantized states */
    size_t absmax;  /* fp32 per-block scales */
    size_t maps;    /* the two 256-entry fp32 maps (once per optimizer) */
    size_t fp32;    /* fp32 states: Adam m and v, SGD momentum, Adafactor rows/cols/v/m */
    size_t total;
} optim_state_bytes;

/* A view of one tensor's state, for tests and diagnostics. Pointers are device pointers. */
typedef struct optim_tensor_state {
    int is_8bit;             /* 1: code1/code2/absmax1/absmax2; 0: fp32 states */
    int group;               /* index into the config's groups, -1 for the base group */
    int64_t n, nblocks;
    uint8_t *code1, *code2;  /* (n) 8-bit m and v */
    float *absmax1, *absmax2;/* (nblocks) */
    float *m, *v;            /* (n) fp32 Adam states; SGD momentum in m; Adafactor momentum in m */
    float *row, *col;        /* Adafactor factored statistics: (batch, rows), (batch, cols) */
    int factored;            /* Adafactor: 1 if row/col, 0 if v */
} optim_tensor_state;

typedef struct optim optim;

const char *optim_kind_name(optim_kind k);
/* Returns OCTET_OK and sets *k, or OCTET_ERR_ARG naming "optimizer.name" and the allowed names. */
int optim_kind_from_name(const char *name, optim_kind *k, octet_err *e);
/* The defaults of an optimizer: torch's for adamw/sgd, bitsandbytes' for the 8-bit ones, Hugging
 * Face's for adafactor (relative_step, scale_parameter, no lr). */
void optim_config_defaults(optim_kind k, optim_config *cfg);
/* Checks every hyper-parameter of cfg (base and groups); no tensors needed. */
int optim_config_validate(const optim_config *cfg, octet_err *e);
/* Whether b is a quantization block size: a power of two from OPTIM_BLOCK_MIN to OPTIM_BLOCK_MAX. */
int optim_block_size_ok(int b);
/* The same as a status: OCTET_OK, or OCTET_ERR_ARG naming `field` with the rule and b. */
int optim_block_size_check(int b, const char *field, octet_err *e);

int optim_create(device *dev, const optim_config *cfg, const optim_tensor *tensors, int n_tensors,
                 optim **out, octet_err *e);
void optim_destroy(optim *o);

/* One update of every tensor from its current gradient. lr_scale multiplies every group's lr
 * (the scheduler's factor; 1.0 for none). Returns OCTET_OK, OCTET_ERR_ARG for a non-finite or
 * negative lr_scale, or the backend's error. */
int optim_step(optim *o, double lr_scale);
int64_t optim_step_count(const optim *o);

void optim_state_bytes_total(const optim *o, optim_state_bytes *out);
int optim_state_bytes_of(const optim *o, int tensor, optim_state_bytes *out);
int optim_tensor_state_get(const optim *o, int tensor, optim_tensor_state *out);
int optim_n_tensors(const optim *o);
/* The maps (device pointers to 256 floats each) of an 8-bit optimizer; NULL otherwise. */
const float *optim_qmap(const optim *o, int is_signed);

/* Memory the optimizer would take for these shapes, without allocating: fills *out (the exact
 * layout). `tensors` may have NULL buffers. */
int optim_estimate(const optim_config *cfg, const optim_tensor *tensors, int n_tensors,
                   optim_state_bytes *out, octet_err *e);

/* The bytes optim_create would book under `workspace` for these shapes on a device of kind
 * `kind`, without allocating: Adafactor's scratch on every device; on CUDA also each launch
 * list's descriptor table and the table of per-group scalars (the CPU twin reads both in host
 * memory, unbooked). The same figure as the ledger's, byte for byte. Fails as optim_estimate. */
int optim_estimate_workspace(const optim_config *cfg, const optim_tensor *tensors, int n_tensors,
                             octet_device_kind kind, size_t *bytes, octet_err *e);

/* Saves the whole state (step, hyper-parameter kind, layout, codes, scales, maps, fp32 states)
 * to f. Load refuses (OCTET_ERR_MISMATCH, with a message) a state saved for another optimizer,
 * other tensor names or shapes, or another layout, and OCTET_ERR_FORMAT for a truncated or
 * corrupt stream; on failure the optimizer's state is unchanged. */
int optim_save(optim *o, FILE *f, octet_err *e);
int optim_load(optim *o, FILE *f, octet_err *e);
int optim_save_path(optim *o, const char *path, octet_err *e);
int optim_load_path(optim *o, const char *path, octet_err *e);

OCTET_EXTERN_C_END
#endif
