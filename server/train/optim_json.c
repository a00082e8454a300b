/* optim_json.c: a field of the optimizer table as JSON (see optim_json.h): the type checks of
 * a spec value and its conversion to and from the numbers the table stores, for the whole
 * optimizer and for a param_group. */
#include "config.h"
#include "train/optim_json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

json_t *optim_param_get(const optim_param *p, const optim_config *cfg)
{
    double v = optim_param_load(p, cfg, 0);
    switch (p->type) {
    case OP_BOOLEAN: return json_boolean(v != 0.0);
    case OP_INTEGER: return json_integer((json_int_t)v);
    case OP_NUMBER_PAIR: return json_pack("[ff]", v, optim_param_load(p, cfg, 1));
    case OP_NUMBER_OR_NULL: {
        int unset = p->off2 == OP_UNSET ? v == 0.0 : optim_param_load(p, cfg, 1) == 0.0;
        return unset ? json_null() : json_real(v);
    }
    default: return json_real(v);
    }
}

/* A JSON number as a double; 0 when `value` is not a number. */
static int json_to_number(const json_t *value, double *v)
{
    if (!json_is_number(value))
        return 0;
    *v = json_number_value(value);
    return isfinite(*v);
}

int optim_param_set(const optim_param *p, optim_config *cfg, const json_t *value, octet_err *e)
{
    char field[64];
    snprintf(field, sizeof field, "optimizer.%s", p->name);
    double a = 0.0, b = 0.0;
    switch (p->type) {
    case OP_BOOLEAN:
        if (!json_is_boolean(value))
            return octet_fail(e, OCTET_ERR_ARG, field, "must be true or false");
        optim_param_store(p, cfg, 0, json_is_true(value));
        return OCTET_OK;
    case OP_INTEGER:
        if (!json_is_integer(value))
            return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer");
        if (p->storage == OS_INT && (json_integer_value(value) > INT32_MAX || json_integer_value(value) < INT32_MIN))
            return octet_fail(e, OCTET_ERR_ARG, field, "is out of range");
        optim_param_store(p, cfg, 0, (double)json_integer_value(value));
        return OCTET_OK;
    case OP_NUMBER_PAIR:
        if (!json_is_array(value) || json_array_size(value) != 2 || !json_to_number(json_array_get(value, 0), &a) ||
            !json_to_number(json_array_get(value, 1), &b))
            return octet_fail(e, OCTET_ERR_ARG, field, "must be an array of two finite numbers");
        optim_param_store(p, cfg, 0, a);
        optim_param_store(p, cfg, 1, b);
        return OCTET_OK;
    case OP_NUMBER_OR_NULL:
        if (json_is_null(value)) {
            optim_param_store(p, cfg, 0, 0.0);
            optim_param_store(p, cfg, 1, 0.0);
            return OCTET_OK;
        }
        if (!json_to_number(value, &a))
            return octet_fail(e, OCTET_ERR_ARG, field, "must be a finite number or null");
        optim_param_store(p, cfg, 0, a);
        optim_param_store(p, cfg, 1, 1.0);
        return OCTET_OK;
    default:
        if (!json_to_number(value, &a))
            return octet_fail(e, OCTET_ERR_ARG, field, "must be a finite number");
        optim_param_store(p, cfg, 0, a);
        return OCTET_OK;
    }
}

json_t *optim_param_group_get(const optim_param *p, const optim_hparams *h)
{
    double v = optim_param_group_load(p, h, 0);
    if (p->type == OP_NUMBER_PAIR)
        return json_pack("[ff]", v, optim_param_group_load(p, h, 1));
    return p->type == OP_INTEGER ? json_integer((json_int_t)v) : json_real(v);
}

/* A group's [a, b]: each item's path named when it is not a finite number. */
static int group_pair(const json_t *value, const char *field, double *ab, octet_err *e)
{
    if (!json_is_array(value) || json_array_size(value) != 2)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an array of two finite numbers");
    for (int i = 0; i < 2; i++)
        if (!json_to_number(json_array_get(value, (size_t)i), &ab[i])) {
            char f[128];
            snprintf(f, sizeof f, "%s[%d]", field, i);
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a finite number");
        }
    return OCTET_OK;
}

/* A group's integer, within the table's range. */
static int group_integer(const optim_param *p, const json_t *value, const char *field, double *x, octet_err *e)
{
    double lo = p->has_min ? p->min : INT32_MIN, hi = p->has_max ? p->max : INT32_MAX;
    if (!json_is_integer(value))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer from %g to %g", lo, hi);
    *x = (double)json_integer_value(value);
    if (*x < lo || *x > hi)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer from %g to %g, got %lld", lo, hi,
                          (long long)json_integer_value(value));
    return OCTET_OK;
}

int optim_param_group_set(const optim_param *p, optim_group_spec *g, const json_t *value, const char *field,
                          octet_err *e)
{
    double v[2] = {0.0, 0.0};
    int rc;
    if (p->type == OP_NUMBER_PAIR)
        rc = group_pair(value, field, v, e);
    else if (p->type == OP_INTEGER)
        rc = group_integer(p, value, field, &v[0], e);
    else
        rc = json_to_number(value, &v[0]) ? OCTET_OK : octet_fail(e, OCTET_ERR_ARG, field, "must be a finite number");
    if (rc)
        return rc;
    optim_param_group_store(p, &g->hp, 0, v[0]);
    optim_param_group_store(p, &g->hp, 1, v[1]);
    g->set |= p->group_set;
    return OCTET_OK;
}
