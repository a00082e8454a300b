/* optim_json.h: the JSON form of the optimizer fields of a job spec: a field's value in an
 * optim_config (or a param_group's) as JSON, and a field of an optim_config (or of a
 * param_group) set from a JSON value, each through its entry in the engine's parameter table
 * (kernels/optim/optim_params.h).
 *
 * The spec parser (spec.c) applies a job's "optimizer" object and its param_groups and writes
 * the normalised spec with these, and the catalog (GET /optimizers) renders the defaults with
 * them. */
#ifndef OCTET_TRAIN_OPTIM_JSON_H
#define OCTET_TRAIN_OPTIM_JSON_H

#include <jansson.h>
#include "optim_params.h"
#include "status.h"

/* The value of p in cfg as JSON (a new reference; NULL when out of memory). */
json_t *optim_param_get(const optim_param *p, const optim_config *cfg);
/* Sets p in cfg from `value`. Checks the JSON type only (ranges are the engine's job:
 * optim_config_validate). Fails with OCTET_ERR_ARG naming "optimizer.<name>". */
int optim_param_set(const optim_param *p, optim_config *cfg, const json_t *value, octet_err *e);

/* The value of param_group field p (p->group_set != 0) in h as JSON (a new reference; NULL
 * when out of memory). */
json_t *optim_param_group_get(const optim_param *p, const optim_hparams *h);
/* Sets param_group field p of g from `value` and adds p->group_set to g->set. Checks the JSON
 * type, and an integer's range (ranges of numbers are the engine's job). Fails with
 * OCTET_ERR_ARG naming `field` ("optimizer.param_groups[0].lr"), or `field`[i] for one item of
 * a pair. */
int optim_param_group_set(const optim_param *p, optim_group_spec *g, const json_t *value, const char *field,
                          octet_err *e);

#endif
