/* optim_params.h: the optimizer fields of a job spec: for each optimizer the fields it takes,
 * their JSON types, their defaults (read from the engine, never restated), their allowed
 * ranges, and how a JSON value sets the engine's optim_config.
 *
 * The catalog (GET /optimizers) renders this table, and a job spec's "optimizer" object is
 * applied through it, so the two cannot drift apart. The ranges repeat, as data, what
 * optim_config_validate() enforces; a unit test checks each bound against the engine. */
#ifndef OCTET_OPTIM_PARAMS_H
#define OCTET_OPTIM_PARAMS_H

#include <jansson.h>
#include <stddef.h>
#include "optim.h"

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
    unsigned kinds;             /* bit (1u << kind) for each optimizer that takes it */
    optim_param_storage storage;
    size_t off;                 /* offset in optim_config */
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
/* The value of p in cfg as JSON (a new reference; NULL when out of memory). */
json_t *optim_param_get(const optim_param *p, const optim_config *cfg);
/* Sets p in cfg from `value`. Checks the JSON type only (ranges are the engine's job:
 * optim_config_validate). Fails with OCTET_ERR_ARG naming "optimizer.<name>". */
int optim_param_set(const optim_param *p, optim_config *cfg, const json_t *value, octet_err *e);
/* Writes p's range in words ("(0, inf)", "[0, 1)", "any") into buf. */
void optim_param_range_text(const optim_param *p, char *buf, size_t len);

#endif
