/* optim_params.h: the optimizers' parameter table: for each field of a job spec's "optimizer"
 * object, its name, its JSON type, the optimizers that take it, where it lives in optim_config,
 * its allowed range and a further rule in words, and a line of documentation; and for each
 * field a param_group may set, the optimizers whose groups take it and its OPTIM_SET_* bit.
 * Defaults are not in the table: they are read from optim_config_defaults(), never restated.
 *
 * The spec parser applies a job's "optimizer" object and its param_groups through this table,
 * spec_to_json writes them back through it and the catalog (GET /optimizers) renders it, so
 * none of them can drift apart; the JSON form of a field is
 * server/train/optim_json.h's. The ranges repeat, as data, what optim_config_validate()
 * enforces; a unit test checks each bound against the engine. Plain C: no JSON library. */
#ifndef OCTET_OPTIM_PARAMS_H
#define OCTET_OPTIM_PARAMS_H

#include <stddef.h>
#include "optim.h"

OCTET_EXTERN_C_BEGIN

typedef enum {
    OP_NUMBER = 0,      /* a finite number */
    OP_INTEGER,         /* an integer */
    OP_BOOLEAN,
    OP_NUMBER_PAIR,     /* [a, b]; the range applies to each */
    OP_NUMBER_OR_NULL   /* a number, or null for "unset" */
} optim_param_type;

typedef enum { OS_DOUBLE = 0, OS_INT, OS_INT64 } optim_param_storage;

#define OP_UNSET ((size_t)-1)

typedef struct optim_param {
    const char *name;           /* the spec's field name under "optimizer" */
    optim_param_type type;
    unsigned kinds;             /* bit (1u << kind) for each optimizer that takes it under
                                 * "optimizer" (0: a param_group field only) */
    unsigned group_kinds;       /* bit (1u << kind) for each optimizer whose param_groups may set it */
    unsigned group_set;         /* the OPTIM_SET_* bit a param_group sets (0 when none may) */
    optim_param_storage storage;
    size_t off;                 /* offset in optim_config; inside `base` when groups take it */
    size_t off2;                /* pair: the second value; or-null: the int flag that null clears
                                 * (OP_UNSET: null is stored as 0) */
    int has_min, has_max, min_open, max_open;
    double min, max;
    const char *rule;           /* a further rule in words, or NULL */
    const char *doc;
} optim_param;

extern const optim_param optim_params[];
extern const int optim_params_count;

/* The parameter `name` of optimizer k, or NULL when k does not take it. */
const optim_param *optim_param_find(optim_kind k, const char *name);
/* The field `name` of a param_group of optimizer k, or NULL when k's groups do not take it. */
const optim_param *optim_param_find_group(optim_kind k, const char *name);
/* The optimizers whose param_groups take `name`, as "adam8bit, adamw8bit", into buf ("" when
 * none do). */
void optim_param_group_kinds_text(const char *name, char *buf, size_t len);
/* p's value in cfg as a double: the one at `off`, or with `second` the one at `off2` (a pair's
 * second number; an or-null entry's int flag, 0 when off2 is OP_UNSET). */
double optim_param_load(const optim_param *p, const optim_config *cfg, int second);
/* Stores v (converted to p's storage) at `off`, or with `second` at `off2`; storing at an
 * OP_UNSET off2 does nothing. */
void optim_param_store(const optim_param *p, optim_config *cfg, int second, double v);
/* The same for a param_group field (p->group_set != 0) in a group's hyper-parameters. */
double optim_param_group_load(const optim_param *p, const optim_hparams *h, int second);
void optim_param_group_store(const optim_param *p, optim_hparams *h, int second, double v);
/* Writes p's range in words ("(0, inf)", "[0, 1)", "any") into buf. */
void optim_param_range_text(const optim_param *p, char *buf, size_t len);

OCTET_EXTERN_C_END
#endif
