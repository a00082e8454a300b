/* check_catalog.c: the optimizer catalog agrees with the engine and with the spec parser.
 * Every optimizer is listed under its engine name; every field's default, written back
 * through optim_param_set, still validates; every stated bound is the engine's bound (the
 * value just outside fails optim_config_validate, the value just inside passes); the
 * param_group fields listed are exactly the keys the spec parser takes in a param_group; and
 * the state bytes are the layout's (AdamW 8, 8-bit Adam 2 + 8/256, SGD with momentum 4,
 * Adafactor factored). */
#include "config.h"
#include "server_suites.h"
#include "api/api.h"
#include "train/optim_json.h"
#include "train/spec.h"
#include "optim.h"

#include <math.h>
#include <string.h>

/* A defaults config in which parameter p is in force (Adafactor's lr needs relative_step off). */
static void config_for(optim_kind k, const optim_param *p, optim_config *cfg)
{
    optim_config_defaults(k, cfg);
    if (k == OPTIM_ADAFACTOR && !strcmp(p->name, "lr")) {
        cfg->base.relative_step = 0;
        cfg->base.scale_parameter = 0;
        cfg->base.lr = 1e-3;
    }
}

/* Sets p to x (both items for a pair, one at a time when `which` is 0 or 1) and validates. */
static int validate_with(optim_kind k, const optim_param *p, double x, int which)
{
    optim_config cfg;
    config_for(k, p, &cfg);
    json_t *v;
    if (p->type == OP_NUMBER_PAIR) {
        json_t *cur = optim_param_get(p, &cfg);
        v = json_pack("[ff]", which == 0 ? x : json_real_value(json_array_get(cur, 0)),
                      which == 1 ? x : json_real_value(json_array_get(cur, 1)));
        json_decref(cur);
    } else if (p->type == OP_INTEGER) {
        v = json_integer((json_int_t)x);
    } else {
        v = json_real(x);
    }
    octet_err e;
    octet_err_clear(&e);
    ck_assert_int_eq(optim_param_set(p, &cfg, v, &e), OCTET_OK);
    json_decref(v);
    return optim_config_validate(&cfg, &e);
}

START_TEST(test_names_and_order)
{
    json_t *c = api_optimizers_catalog();
    json_t *list = json_object_get(c, "optimizers");
    ck_assert_uint_eq(json_array_size(list), OPTIM_NKINDS);
    for (int k = 0; k < OPTIM_NKINDS; k++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, (size_t)k), "name")),
                         optim_kind_name((optim_kind)k));
    json_decref(c);
}
END_TEST

START_TEST(test_defaults_round_trip)
{
    for (int k = 0; k < OPTIM_NKINDS; k++)
        for (int i = 0; i < optim_params_count; i++) {
            const optim_param *p = &optim_params[i];
            if (!(p->kinds & (1u << k)))
                continue;
            optim_config cfg;
            optim_config_defaults((optim_kind)k, &cfg);
            json_t *v = optim_param_get(p, &cfg);
            octet_err e;
            ck_assert_int_eq(optim_param_set(p, &cfg, v, &e), OCTET_OK);
            json_t *again = optim_param_get(p, &cfg);
            ck_assert_msg(json_equal(v, again), "%s.%s does not round-trip", optim_kind_name(k), p->name);
            ck_assert_int_eq(optim_config_validate(&cfg, &e), OCTET_OK);
            json_decref(v);
            json_decref(again);
        }
}
END_TEST

/* Checks one bound: `out` must fail, `in` must pass. */
static void check_bound(optim_kind k, const optim_param *p, double out, double in)
{
    int items = p->type == OP_NUMBER_PAIR ? 2 : 1;
    for (int which = 0; which < items; which++) {
        ck_assert_msg(validate_with(k, p, out, which) == OCTET_ERR_ARG, "%s.%s = %g[%d] accepted", optim_kind_name(k),
                      p->name, out, which);
        ck_assert_msg(validate_with(k, p, in, which) == OCTET_OK, "%s.%s = %g[%d] refused", optim_kind_name(k),
                      p->name, in, which);
    }
}

START_TEST(test_bounds_match_engine)
{
    int checked = 0;
    for (int k = 0; k < OPTIM_NKINDS; k++)
        for (int i = 0; i < optim_params_count; i++) {
            const optim_param *p = &optim_params[i];
            if (!(p->kinds & (1u << k)) || p->type == OP_BOOLEAN)
                continue;
            int integer = p->type == OP_INTEGER;
            if (p->has_min) {
                double out = p->min_open ? p->min : integer ? p->min - 1 : nextafter(p->min, -INFINITY);
                double in = !p->min_open ? p->min : nextafter(p->min, INFINITY) * 2;
                check_bound((optim_kind)k, p, out, in);
                checked++;
            }
            if (p->has_max) {
                double out = p->max_open ? p->max : integer ? p->max + 1 : nextafter(p->max, INFINITY);
                double in = !p->max_open ? p->max : p->max > 0 ? nextafter(p->max, 0) : -1e-300;
                check_bound((optim_kind)k, p, out, in);
                checked++;
            }
        }
    ck_assert_int_ge(checked, 20);
}
END_TEST

START_TEST(test_block_size_power_of_two)
{
    const optim_param *p = optim_param_find(OPTIM_ADAMW8BIT, "block_size");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(validate_with(OPTIM_ADAMW8BIT, p, 96, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(validate_with(OPTIM_ADAMW8BIT, p, 512, 0), OCTET_OK);
}
END_TEST

START_TEST(test_set_rejects_wrong_types)
{
    optim_config cfg;
    optim_config_defaults(OPTIM_ADAMW, &cfg);
    octet_err e;
    json_t *s = json_string("fast"), *one = json_pack("[f]", 0.9), *t = json_true();
    ck_assert_int_eq(optim_param_set(optim_param_find(OPTIM_ADAMW, "lr"), &cfg, s, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "optimizer.lr");
    ck_assert_int_eq(optim_param_set(optim_param_find(OPTIM_ADAMW, "betas"), &cfg, one, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(optim_param_set(optim_param_find(OPTIM_ADAMW, "eps"), &cfg, t, &e), OCTET_ERR_ARG);
    ck_assert_ptr_null(optim_param_find(OPTIM_ADAMW, "momentum"));
    ck_assert_ptr_null(optim_param_find(OPTIM_SGD, "betas"));
    json_decref(s);
    json_decref(one);
    json_decref(t);
}
END_TEST

/* Every table entry a param_group may set says with which bit, lives in the hyper-parameters
 * a group carries, and no two entries of one name apply to the same optimizer. */
START_TEST(test_group_entries_consistent)
{
    for (int i = 0; i < optim_params_count; i++) {
        const optim_param *p = &optim_params[i];
        ck_assert_msg(!p->group_kinds == !p->group_set, "%s: group_kinds and group_set disagree", p->name);
        if (p->group_set) {
            size_t lo = offsetof(optim_config, base), hi = lo + sizeof(optim_hparams);
            ck_assert_msg(p->off >= lo && p->off < hi, "%s: not in optim_hparams", p->name);
            ck_assert_msg(p->off2 == OP_UNSET || p->type != OP_NUMBER_PAIR || (p->off2 >= lo && p->off2 < hi),
                          "%s: second value not in optim_hparams", p->name);
        }
        for (int j = i + 1; j < optim_params_count; j++)
            if (!strcmp(p->name, optim_params[j].name))
                ck_assert_msg(!(p->kinds & optim_params[j].kinds) && !(p->group_kinds & optim_params[j].group_kinds),
                              "two entries %s for one optimizer", p->name);
    }
}
END_TEST

/* A value of the type of the table's field `name` that the engine accepts in a group. */
static json_t *group_sample(const char *name)
{
    for (int i = 0; i < optim_params_count; i++) {
        const optim_param *p = &optim_params[i];
        if (strcmp(p->name, name))
            continue;
        switch (p->type) {
        case OP_NUMBER_PAIR: return json_pack("[ff]", 0.5, 0.5);
        case OP_INTEGER: return json_integer(p->has_max ? (json_int_t)p->max : 1);
        case OP_BOOLEAN: return json_false();
        default: return json_real(0.5);
        }
    }
    return json_integer(1);
}

/* Whether the spec parser takes `key` in a param_group of optimizer k; when it does not, the
 * error must name that key. */
static int parser_takes_group_key(optim_kind k, const char *key)
{
    json_t *group = json_pack("{s:s}", "match", "*");
    if (strcmp(key, "match"))
        json_object_set_new(group, key, group_sample(key));
    json_t *spec = json_pack("{s:{s:s, s:[i]}, s:{s:s}, s:{s:s, s:[o]}}", "model", "arch", "mlp", "hidden", 4,
                             "dataset", "name", "fashion-mnist", "optimizer", "name", optim_kind_name(k),
                             "param_groups", group);
    job_spec s;
    octet_err e;
    octet_err_clear(&e);
    int rc = spec_parse(spec, 0, &s, &e);
    json_decref(spec);
    if (rc == OCTET_OK)
        return 1;
    char want[96];
    snprintf(want, sizeof want, "optimizer.param_groups[0].%s", key);
    ck_assert_msg(!strcmp(e.field, want), "%s group key %s: refused as %s (%s)", optim_kind_name(k), key, e.field,
                  e.message);
    return 0;
}

static int array_has(const json_t *a, const char *s)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!strcmp(json_string_value(json_array_get(a, i)), s))
            return 1;
    return 0;
}

/* For every optimizer, param_group_fields is the set of keys the parser takes in a group: each
 * listed key is taken, and each other candidate (every field name of the table, and one no
 * optimizer knows) is refused. */
START_TEST(test_group_fields_match_parser)
{
    json_t *c = api_optimizers_catalog();
    for (int k = 0; k < OPTIM_NKINDS; k++) {
        json_t *listed = json_object_get(json_array_get(json_object_get(c, "optimizers"), (size_t)k),
                                         "param_group_fields");
        ck_assert(array_has(listed, "match"));
        for (size_t i = 0; i < json_array_size(listed); i++) {
            const char *key = json_string_value(json_array_get(listed, i));
            ck_assert_msg(parser_takes_group_key((optim_kind)k, key), "%s: catalog lists %s, the parser refuses it",
                          optim_kind_name(k), key);
        }
        for (int i = 0; i <= optim_params_count; i++) {
            const char *key = i < optim_params_count ? optim_params[i].name : "colour";
            if (!array_has(listed, key))
                ck_assert_msg(!parser_takes_group_key((optim_kind)k, key),
                              "%s: the parser takes %s, the catalog does not list it", optim_kind_name(k), key);
        }
    }
    json_decref(c);
}
END_TEST

static double bpp(json_t *catalog, int k)
{
    json_t *o = json_array_get(json_object_get(catalog, "optimizers"), (size_t)k);
    return json_number_value(json_object_get(json_object_get(o, "state"), "bytes_per_param"));
}

START_TEST(test_state_bytes)
{
    json_t *c = api_optimizers_catalog();
    ck_assert_double_eq(bpp(c, OPTIM_ADAMW), 8.0);
    ck_assert_double_eq(bpp(c, OPTIM_ADAM8BIT), 2.0 + 8.0 / 256.0);
    ck_assert_double_eq(bpp(c, OPTIM_ADAMW8BIT), 2.0 + 8.0 / 256.0);
    ck_assert_double_eq(bpp(c, OPTIM_SGD), 4.0);
    ck_assert_double_eq(bpp(c, OPTIM_ADAFACTOR), 4.0 * 2048.0 / (1024.0 * 1024.0));
    json_t *a8 = json_object_get(json_array_get(json_object_get(c, "optimizers"), OPTIM_ADAM8BIT), "state");
    ck_assert_int_eq(json_integer_value(json_object_get(a8, "maps_bytes")), 2 * 256 * 4);
    json_decref(c);
}
END_TEST

Suite *suite_catalog(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("engine agreement");
    tcase_add_test(tc, test_names_and_order);
    tcase_add_test(tc, test_defaults_round_trip);
    tcase_add_test(tc, test_bounds_match_engine);
    tcase_add_test(tc, test_block_size_power_of_two);
    tcase_add_test(tc, test_set_rejects_wrong_types);
    tcase_add_test(tc, test_group_entries_consistent);
    tcase_add_test(tc, test_group_fields_match_parser);
    tcase_add_test(tc, test_state_bytes);
    suite_add_tcase(s, tc);
    return s;
}
