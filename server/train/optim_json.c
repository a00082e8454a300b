/* optim_json.c: a field of the optimizer table as JSON (see optim_json.h): the type checks of
 * a spec value and its conversion to and from the numbers the table stores. */
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
