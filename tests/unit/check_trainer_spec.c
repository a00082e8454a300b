/* check_trainer_spec.c: the job spec parser (server/train/spec.c): every field's bad value
 * refused with its own field path (every optimizer field of the optim_params table with
 * values out of range and overflowing ones), unknown keys refused at every level, the Trainer's and the
 * optimizers' defaults filled in, Adafactor's lr rule, and the normalised JSON parsing back to
 * the same spec. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include "optim_params.h"
#include "check_trainer.h"
#include "testlib.h"
#include "train/distilbert.h"
#include "train/hfdir.h"
#include "train/mlp.h"
#include "train/model.h"

static const char BASE_MLP[] =
    "{\"name\": \"t\", \"model\": {\"arch\": \"mlp\", \"hidden\": [16], \"num_labels\": 10},"
    " \"dataset\": {\"name\": \"fashion-mnist\"},"
    " \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001},"
    " \"training\": {\"epochs\": 1, \"batch_size\": 4}}";

void tr_parse_ok(const char *json, job_spec *s)
{
    octet_err e;
    octet_err_clear(&e);
    int rc = spec_parse_text(json, 0, s, &e);
    ck_assert_msg(rc == OCTET_OK, "spec refused: %s: %s\n%s", e.field, e.message, json);
}

/* Sets the value at dotted `path` (objects created as needed; "-" as the value deletes). */
static void set_path(json_t *root, const char *path, const char *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *o = root;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.')) != NULL) {
        *dot = '\0';
        json_t *next = json_object_get(o, key);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(o, key, next);
        }
        o = next;
        key = dot + 1;
    }
    if (!strcmp(value, "-")) {
        json_object_del(o, key);
        return;
    }
    json_error_t je;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "bad test value %s", value);
    json_object_set_new(o, key, v);
}

typedef struct bad_case {
    const char *base;   /* NULL: BASE_MLP */
    const char *path;   /* dotted path to change */
    const char *value;  /* JSON, or "-" to delete */
    const char *field;  /* the field the error must name */
} bad_case;

static const char BASE_BERT[] =
    "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"},"
    " \"dataset\": {\"name\": \"fortunes-lang\"}}";
static const char BASE_A8[] =
    "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
    " \"optimizer\": {\"name\": \"adamw8bit\"}}";
static const char BASE_SGD[] =
    "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
    " \"optimizer\": {\"name\": \"sgd\", \"lr\": 0.1}}";
static const char BASE_AF[] =
    "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
    " \"optimizer\": {\"name\": \"adafactor\"}}";

static const bad_case bad_cases[] = {
    /* top level */
    {NULL, "bogus", "1", "bogus"},
    {NULL, "name", "5", "name"},
    {NULL, "name", "\"\"", "name"},
    {NULL, "model", "-", "model"},
    {NULL, "dataset", "-", "dataset"},
    {NULL, "model", "[]", "model"},
    {NULL, "training", "3", "training"},
    /* model */
    {NULL, "model.arch", "\"cnn\"", "model.arch"},
    {NULL, "model.arch", "-", "model.arch"},
    {NULL, "model.hidden", "[]", "model.hidden"},
    {NULL, "model.hidden", "-", "model.hidden"},
    {NULL, "model.hidden", "[16, 0]", "model.hidden[1]"},
    {NULL, "model.hidden", "[16, \"x\"]", "model.hidden[1]"},
    {NULL, "model.hidden", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "model.hidden"},
    {NULL, "model.num_labels", "1", "model.num_labels"},
    {NULL, "model.num_labels", "65537", "model.num_labels"},
    {NULL, "model.num_labels", "2.5", "model.num_labels"},
    {NULL, "model.dropout", "1.0", "model.dropout"},
    {NULL, "model.dropout", "-0.1", "model.dropout"},
    {NULL, "model.dropout", "\"none\"", "model.dropout"},
    {NULL, "model.preset", "\"distilbert-tiny\"", "model.preset"},
    {NULL, "model.config", "{\"dim\": 8}", "model.config"},
    {NULL, "model.colour", "1", "model.colour"},
    {BASE_BERT, "model.preset", "\"nope\"", "model.preset"},
    {BASE_BERT, "model.preset", "7", "model.preset"},
    {BASE_BERT, "model.config", "{\"n_heads\": 5}", "model.config.n_heads"},
    {BASE_BERT, "model.config", "{\"dim\": 0}", "model.config.dim"},
    {BASE_BERT, "model.config", "{\"n_layers\": 1.5}", "model.config.n_layers"},
    {BASE_BERT, "model.config", "{\"bogus\": 1}", "model.config.bogus"},
    {BASE_BERT, "model.config", "5", "model.config"},
    {BASE_BERT, "model.path", "\"models/x\"", "model.path"},
    {BASE_BERT, "model.hidden", "[8]", "model.hidden"},
    /* dataset */
    {NULL, "dataset.name", "5", "dataset.name"},
    {NULL, "dataset.name", "\"a/b\"", "dataset.name"},
    {NULL, "dataset.name", "-", "dataset.name"},
    {NULL, "dataset.train_file", "\"t.jsonl\"", "dataset.train_file"},
    {NULL, "dataset.max_length", "2", "dataset.max_length"},
    {NULL, "dataset.max_length", "\"long\"", "dataset.max_length"},
    {NULL, "dataset.train_limit", "0", "dataset.train_limit"},
    {NULL, "dataset.eval_limit", "-1", "dataset.eval_limit"},
    {NULL, "dataset.colour", "1", "dataset.colour"},
    /* optimizer */
    {NULL, "optimizer.name", "\"adamx\"", "optimizer.name"},
    {NULL, "optimizer.name", "3", "optimizer.name"},
    {NULL, "optimizer.lr", "-1", "optimizer.lr"},
    {NULL, "optimizer.lr", "0", "optimizer.lr"},
    {NULL, "optimizer.lr", "\"fast\"", "optimizer.lr"},
    {NULL, "optimizer.lr", "null", "optimizer.lr"},
    {NULL, "optimizer.betas", "[0.9]", "optimizer.betas"},
    {NULL, "optimizer.betas", "0.9", "optimizer.betas"},
    {NULL, "optimizer.betas", "[0.9, 1.0]", "optimizer.betas[1]"},
    {NULL, "optimizer.betas", "[0.9, \"x\"]", "optimizer.betas[1]"},
    {NULL, "optimizer.betas", "[-0.1, 0.9]", "optimizer.betas[0]"},
    {NULL, "optimizer.eps", "0", "optimizer.eps"},
    {NULL, "optimizer.eps", "[1e-8, 1e-8]", "optimizer.eps"},
    {NULL, "optimizer.weight_decay", "-1", "optimizer.weight_decay"},
    {NULL, "optimizer.momentum", "0.9", "optimizer.momentum"},
    {NULL, "optimizer.min_8bit_size", "10", "optimizer.min_8bit_size"},
    {NULL, "optimizer.relative_step", "true", "optimizer.relative_step"},
    {NULL, "optimizer.colour", "1", "optimizer.colour"},
    {NULL, "optimizer.param_groups", "{}", "optimizer.param_groups"},
    {NULL, "optimizer.param_groups", "[5]", "optimizer.param_groups[0]"},
    {NULL, "optimizer.param_groups", "[{\"lr\": 1}]", "optimizer.param_groups[0].match"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"\"}]", "optimizer.param_groups[0].match"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"lr\": -1}]", "optimizer.param_groups[0].lr"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"weight_decay\": -1}]",
     "optimizer.param_groups[0].weight_decay"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"betas\": [0.9, 1.5]}]",
     "optimizer.param_groups[0].betas[1]"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"optim_bits\": 8}]", "optimizer.param_groups[0].optim_bits"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"optim_bits\": 32}]", "optimizer.param_groups[0].optim_bits"},
    {BASE_SGD, "optimizer.param_groups", "[{\"match\": \"*\", \"optim_bits\": 32}]",
     "optimizer.param_groups[0].optim_bits"},
    {BASE_AF, "optimizer.param_groups", "[{\"match\": \"*\", \"optim_bits\": 32}]",
     "optimizer.param_groups[0].optim_bits"},
    {BASE_AF, "optimizer.param_groups", "[{\"match\": \"*\", \"eps\": 1e-30}]", "optimizer.param_groups[0].eps"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"colour\": 1}]", "optimizer.param_groups[0].colour"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"*\", \"momentum\": 0.9}]", "optimizer.param_groups[0].momentum"},
    {NULL, "optimizer.param_groups", "[{\"match\": \"a\"}, {\"match\": 7}]", "optimizer.param_groups[1].match"},
    {BASE_A8, "optimizer.block_size", "100", "optimizer.block_size"},
    {BASE_A8, "optimizer.block_size", "8192", "optimizer.block_size"},
    {BASE_A8, "optimizer.min_8bit_size", "-1", "optimizer.min_8bit_size"},
    {BASE_A8, "optimizer.min_8bit_size", "1.5", "optimizer.min_8bit_size"},
    {BASE_A8, "optimizer.param_groups", "[{\"match\": \"*\", \"optim_bits\": 4}]", "optimizer.param_groups[0].optim_bits"},
    {BASE_A8, "optimizer.param_groups", "[{\"match\": \"*\", \"block_size\": 512}]", "optimizer.param_groups[0].block_size"},
    {BASE_SGD, "optimizer.momentum", "-1", "optimizer.momentum"},
    {BASE_SGD, "optimizer.nesterov", "true", "optimizer.nesterov"},
    {BASE_SGD, "optimizer.nesterov", "\"yes\"", "optimizer.nesterov"},
    {BASE_SGD, "optimizer.dampening", "2", "optimizer.dampening"},
    {BASE_SGD, "optimizer.betas", "[0.9, 0.99]", "optimizer.betas"},
    {BASE_AF, "optimizer.eps", "[1e-30]", "optimizer.eps"},
    {BASE_AF, "optimizer.eps", "[1e-30, 0]", "optimizer.eps[1]"},
    {BASE_AF, "optimizer.eps", "1e-30", "optimizer.eps"},
    {BASE_AF, "optimizer.clip_threshold", "0", "optimizer.clip_threshold"},
    {BASE_AF, "optimizer.decay_rate", "0.5", "optimizer.decay_rate"},
    {BASE_AF, "optimizer.beta1", "1.0", "optimizer.beta1"},
    {BASE_AF, "optimizer.beta1", "\"x\"", "optimizer.beta1"},
    {BASE_AF, "optimizer.warmup_init", "1", "optimizer.warmup_init"},
    {BASE_AF, "optimizer.betas", "[0.9, 0.99]", "optimizer.betas"},
    {BASE_AF, "optimizer.lr", "-0.5", "optimizer.lr"},
    /* training */
    {NULL, "training.epochs", "0", "training.epochs"},
    {NULL, "training.epochs", "\"2\"", "training.epochs"},
    {NULL, "training.epochs", "1.5", "training.epochs"},
    {NULL, "training.batch_size", "0", "training.batch_size"},
    {NULL, "training.batch_size", "-4", "training.batch_size"},
    {NULL, "training.eval_batch_size", "0", "training.eval_batch_size"},
    {NULL, "training.gradient_accumulation_steps", "0", "training.gradient_accumulation_steps"},
    {NULL, "training.max_grad_norm", "-1", "training.max_grad_norm"},
    {NULL, "training.max_grad_norm", "true", "training.max_grad_norm"},
    {NULL, "training.lr_scheduler", "\"step\"", "training.lr_scheduler"},
    {NULL, "training.warmup_steps", "-1", "training.warmup_steps"},
    {NULL, "training.warmup_steps", "1.5", "training.warmup_steps"},
    {NULL, "training.warmup_steps", "\"10%\"", "training.warmup_steps"},
    {NULL, "training.seed", "-1", "training.seed"},
    {NULL, "training.seed", "0.5", "training.seed"},
    {NULL, "training.device", "\"tpu\"", "training.device"},
    {NULL, "training.precision", "\"int8\"", "training.precision"},
    {NULL, "training.log_every", "0", "training.log_every"},
    {NULL, "training.colour", "1", "training.colour"},
};

START_TEST(test_bad_values)
{
    const bad_case *c = &bad_cases[_i];
    json_error_t je;
    json_t *root = json_loads(c->base ? c->base : BASE_MLP, 0, &je);
    ck_assert_ptr_nonnull(root);
    set_path(root, c->path, c->value);
    job_spec s;
    octet_err e;
    octet_err_clear(&e);
    int rc = spec_parse(root, 0, &s, &e);
    char *text = json_dumps(root, JSON_COMPACT);
    ck_assert_msg(rc == OCTET_ERR_ARG, "accepted %s = %s: %s", c->path, c->value, text);
    ck_assert_msg(!strcmp(e.field, c->field), "%s = %s: field '%s' (%s), want '%s'", c->path, c->value, e.field,
                  e.message, c->field);
    ck_assert_msg(strlen(e.message) > 5, "%s: no message", c->path);
    free(text);
    json_decref(root);
}
END_TEST

START_TEST(test_not_json)
{
    job_spec s;
    octet_err e;
    octet_err_clear(&e);
    ck_assert_int_eq(spec_parse_text("{\"model\": ", 0, &s, &e), OCTET_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(e.message, "line"));
    ck_assert_int_eq(spec_parse_text("[1, 2]", 0, &s, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(spec_parse_text("{\"name\": \"a\", \"name\": \"b\"}", 0, &s, &e), OCTET_ERR_ARG);
}
END_TEST

/* ------------------------------------------------------------------ optimizer fields */

/* Parses a spec whose optimizer object is {"name": kind, <body>} and checks that it is refused
 * naming `field`. */
static void expect_optimizer_field(const char *kind, const char *body, const char *field)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
             " \"optimizer\": {\"name\": \"%s\", %s}}", kind, body);
    job_spec s;
    octet_err e;
    octet_err_clear(&e);
    int rc = spec_parse_text(json, 0, &s, &e);
    ck_assert_msg(rc == OCTET_ERR_ARG, "%s: accepted {%s}", kind, body);
    ck_assert_msg(!strcmp(e.field, field), "%s {%s}: field '%s' (%s), want '%s'", kind, body, e.field, e.message,
                  field);
}

/* Every optimizer field of every optimizer (the optim_params table, so a new field is covered
 * as it is added), and every param_groups field, with values out of its range and values that
 * overflow: 1e309 overflows a double (jansson refuses the whole text), 1e39 a float (the
 * engine's arithmetic), 99999999999999999999 a 64-bit integer. Each error must name the field
 * itself, never another (a weight_decay of 1e39 used to pass and come back as a NaN loss
 * blaming optimizer.lr). */
START_TEST(test_optimizer_field_errors)
{
    int checked = 0;
    for (int k = 0; k < OPTIM_NKINDS; k++) {
        const char *kind = optim_kind_name((optim_kind)k);
        for (int i = 0; i < optim_params_count; i++) {
            const optim_param *p = &optim_params[i];
            if (!(p->kinds & (1u << k)))
                continue;
            const char *values[6];
            char lo[32], hi[32];
            int nv = 0, negative = p->has_max && p->max <= 0.0;
            if (p->type == OP_BOOLEAN) {
                values[nv++] = "2";
            } else {
                if (p->has_min) {
                    snprintf(lo, sizeof lo, "%.17g", p->min_open ? p->min : p->min - 1.0);
                    values[nv++] = lo;
                }
                if (p->has_max) {
                    snprintf(hi, sizeof hi, "%.17g", p->max_open ? p->max : p->max + 1.0);
                    values[nv++] = hi;
                }
                values[nv++] = negative ? "-1e309" : "1e309";
                if (p->type == OP_INTEGER)
                    values[nv++] = "99999999999999999999";
                else
                    values[nv++] = negative ? "-1e39" : "1e39";
            }
            for (int v = 0; v < nv; v++) {
                char body[256], field[96];
                if (p->type != OP_NUMBER_PAIR) {
                    snprintf(body, sizeof body, "\"%s\": %s", p->name, values[v]);
                    snprintf(field, sizeof field, "optimizer.%s", p->name);
                    expect_optimizer_field(kind, body, field);
                    checked++;
                    continue;
                }
                for (int at = 0; at < 2; at++) {
                    snprintf(body, sizeof body, at ? "\"%s\": [0.5, %s]" : "\"%s\": [%s, 0.5]", p->name, values[v]);
                    snprintf(field, sizeof field, "optimizer.%s[%d]", p->name, at);
                    expect_optimizer_field(kind, body, field);
                    checked++;
                }
            }
        }
        /* the fields of a parameter group */
        static const struct {
            const char *key, *bad[4];
        } group[] = {{"lr", {"-1", "1e39", "1e309", NULL}},
                     {"eps", {"0", "1e39", "1e309", NULL}},
                     {"weight_decay", {"-1", "1e39", "1e309", NULL}},
                     {"momentum", {"-1", "1e39", "1e309", NULL}},
                     {"optim_bits", {"16", "4", "99999999999999999999", "1e309"}}};
        for (size_t g = 0; g < sizeof group / sizeof group[0]; g++) {
            int bits = !strcmp(group[g].key, "optim_bits");
            if ((bits && k != OPTIM_ADAM8BIT && k != OPTIM_ADAMW8BIT) || (!bits && !optim_param_find(k, group[g].key)) ||
                (k == OPTIM_ADAFACTOR && !strcmp(group[g].key, "eps")))
                continue;
            for (int v = 0; v < 4 && group[g].bad[v]; v++) {
                char body[256], field[96];
                snprintf(body, sizeof body, "\"param_groups\": [{\"match\": \"*.bias\", \"%s\": %s}]", group[g].key,
                         group[g].bad[v]);
                snprintf(field, sizeof field, "optimizer.param_groups[0].%s", group[g].key);
                expect_optimizer_field(kind, body, field);
                checked++;
            }
        }
        if (optim_param_find(k, "betas") && k != OPTIM_ADAFACTOR) {
            expect_optimizer_field(kind, "\"param_groups\": [{\"match\": \"*\", \"betas\": [1, 0.5]}]",
                                   "optimizer.param_groups[0].betas[0]");
            expect_optimizer_field(kind, "\"param_groups\": [{\"match\": \"*\", \"betas\": [0.5, 1e309]}]",
                                   "optimizer.param_groups[0].betas[1]");
            checked += 2;
        }
    }
    ck_assert_int_ge(checked, 100);
    /* decoupled decay multiplies the weights by 1 - lr x weight_decay: past 1 the field at
     * fault is named, the base's and a group's */
    expect_optimizer_field("adamw", "\"lr\": 1e-3, \"weight_decay\": 1e4", "optimizer.weight_decay");
    expect_optimizer_field("adamw8bit", "\"lr\": 10, \"weight_decay\": 0.5", "optimizer.lr");
    expect_optimizer_field("adam8bit", "\"lr\": 1e-3, \"param_groups\": [{\"match\": \"*\", \"weight_decay\": 2000}]",
                           "optimizer.param_groups[0].weight_decay");
    expect_optimizer_field("adamw", "\"param_groups\": [{\"match\": \"*\", \"lr\": 500}]",
                           "optimizer.param_groups[0].lr");
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.5, \"weight_decay\": 2}}", &s); /* 1: allowed */
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"sgd\", \"lr\": 1e30}}", &s); /* no decay: any float lr */
}
END_TEST

/* num_labels has one range everywhere (model.h): a spec, a dataset and a job need
 * MODEL_MIN_CLASSES = 2 classes and take up to MODEL_MAX_LABELS; the models take the same
 * maximum and also 1 (a regression head); a model directory's config.json the same. Checked
 * at each boundary. */
START_TEST(test_num_labels_bounds)
{
    static const char *const bases[2] = {
        "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8], \"num_labels\": %d}, \"dataset\": {\"name\": \"fashion-mnist\"}}",
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"num_labels\": %d},"
        " \"dataset\": {\"name\": \"fortunes-lang\"}}"};
    const int good[2] = {MODEL_MIN_CLASSES, MODEL_MAX_LABELS}, bad[3] = {0, MODEL_MIN_CLASSES - 1, MODEL_MAX_LABELS + 1};
    for (int b = 0; b < 2; b++) {
        char json[512];
        job_spec s;
        for (int i = 0; i < 2; i++) {
            snprintf(json, sizeof json, bases[b], good[i]);
            tr_parse_ok(json, &s);
            ck_assert_int_eq(s.model.num_labels, good[i]);
        }
        for (int i = 0; i < 3; i++) {
            snprintf(json, sizeof json, bases[b], bad[i]);
            octet_err e;
            ck_assert_msg(spec_parse_text(json, 0, &s, &e) == OCTET_ERR_ARG, "accepted %s", json);
            ck_assert_str_eq(e.field, "model.num_labels");
        }
    }
    /* the models: 1..MODEL_MAX_LABELS */
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    const int hidden[1] = {2};
    model *m = NULL;
    ck_assert_int_eq(mlp_create(d, 3, hidden, 1, MODEL_MAX_LABELS, 1, 1, &m, &e), OCTET_OK);
    model_destroy(m);
    ck_assert_int_eq(mlp_create(d, 3, hidden, 1, 1, 1, 1, &m, &e), OCTET_OK);
    model_destroy(m);
    ck_assert_int_eq(mlp_create(d, 3, hidden, 1, MODEL_MAX_LABELS + 1, 1, 1, &m, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.num_labels");
    ck_assert_int_eq(mlp_create(d, 3, hidden, 1, 0, 1, 1, &m, &e), OCTET_ERR_ARG);
    device_close(d);
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, &e), OCTET_OK);
    const int db_good[3] = {1, 2, MODEL_MAX_LABELS}, db_bad[2] = {0, MODEL_MAX_LABELS + 1};
    for (int i = 0; i < 3; i++) {
        c.num_labels = db_good[i];
        ck_assert_int_eq(distilbert_config_validate(&c, &e), OCTET_OK);
    }
    for (int i = 0; i < 2; i++) {
        c.num_labels = db_bad[i];
        ck_assert_int_eq(distilbert_config_validate(&c, &e), OCTET_ERR_ARG);
        ck_assert_str_eq(e.field, "model.num_labels");
    }
    /* a model directory's config.json: the same range, reported as model.path */
    char dir[256];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "labels"), 0);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "{\"num_labels\": %d}", MODEL_MAX_LABELS);
    test_write_text(dir, "config.json", cfg);
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_OK);
    ck_assert_int_eq(c.num_labels, MODEL_MAX_LABELS);
    snprintf(cfg, sizeof cfg, "{\"num_labels\": %d}", MODEL_MAX_LABELS + 1);
    test_write_text(dir, "config.json", cfg);
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_ptr_nonnull(strstr(e.message, "num_labels"));
    test_rmtree(dir);
}
END_TEST

START_TEST(test_server_paths)
{
    static const char *paths[] = {"\"/etc/passwd\"", "\"../x.jsonl\"", "\"a/../../x.jsonl\"", "\"a/..\""};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        json_t *root = json_loads(BASE_MLP, 0, NULL);
        set_path(root, "dataset.name", "-");
        set_path(root, "dataset.train_file", paths[i]);
        set_path(root, "dataset.eval_file", "\"e.csv\"");
        job_spec s;
        octet_err e;
        ck_assert_int_eq(spec_parse(root, SPEC_SERVER, &s, &e), OCTET_ERR_ARG);
        ck_assert_str_eq(e.field, "dataset.train_file");
        /* octet-train takes any readable path */
        ck_assert_int_eq(spec_parse(root, 0, &s, &e), OCTET_OK);
        json_decref(root);
    }
    json_t *root = json_loads(BASE_MLP, 0, NULL);
    set_path(root, "dataset.name", "-");
    set_path(root, "dataset.train_file", "\"up/..data.jsonl\"");
    set_path(root, "dataset.eval_file", "\"e.csv\"");
    job_spec s;
    octet_err e;
    ck_assert_int_eq(spec_parse(root, SPEC_SERVER, &s, &e), OCTET_OK);
    json_decref(root);
}
END_TEST

START_TEST(test_defaults)
{
    job_spec s;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"}}", &s);
    const spec_training *t = &s.training;
    ck_assert_int_eq(t->epochs, 3);
    ck_assert_int_eq(t->batch_size, 8);
    ck_assert_int_eq(t->eval_batch_size, 8);
    ck_assert_int_eq(t->grad_accum, 1);
    ck_assert(t->max_grad_norm == 1.0);
    ck_assert_int_eq(t->lr_scheduler, SPEC_SCHED_LINEAR);
    ck_assert_int_eq(t->warmup_is_ratio, 0);
    ck_assert_int_eq(t->warmup_steps, 0);
    ck_assert_int_eq(t->seed, 42);
    ck_assert_str_eq(t->device, "auto");
    ck_assert_int_eq(t->precision, SPEC_PREC_FP32);
    ck_assert_int_eq(t->log_every, 500);
    const optim_config *c = &s.optimizer.cfg;
    ck_assert_int_eq(c->kind, OPTIM_ADAMW);
    ck_assert(c->base.lr == 1e-3 && c->base.beta1 == 0.9 && c->base.beta2 == 0.999 && c->base.eps == 1e-8);
    ck_assert(c->base.weight_decay == 1e-2);
    ck_assert_int_eq(c->n_groups, 0);
    ck_assert_int_eq(s.model.num_labels, 0);
    ck_assert(s.model.dropout < 0);
    ck_assert_int_eq(s.dataset.max_length, 128);
    ck_assert_int_eq(s.dataset.train_limit, 0);

    tr_parse_ok("{\"model\": {\"arch\": \"distilbert\"}, \"dataset\": {\"name\": \"fortunes-lang\"},"
                " \"optimizer\": {\"name\": \"adam8bit\"}}", &s);
    ck_assert_str_eq(s.model.preset, "distilbert-base-uncased");
    ck_assert(s.optimizer.cfg.base.weight_decay == 0.0);
    ck_assert_int_eq(s.optimizer.cfg.min_8bit_size, 4096);
    ck_assert_int_eq(s.optimizer.cfg.block_size, 256);
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adamw8bit\"}, \"training\": {\"warmup_steps\": 0.1}}", &s);
    ck_assert(s.optimizer.cfg.base.weight_decay == 1e-2);
    ck_assert_int_eq(s.training.warmup_is_ratio, 1);
    ck_assert(s.training.warmup_ratio == 0.1);
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"training\": {\"warmup_steps\": 20.0, \"precision\": \"bf16\"}}", &s);
    ck_assert_int_eq(s.training.warmup_is_ratio, 0);
    ck_assert_int_eq(s.training.warmup_steps, 20);
}
END_TEST

START_TEST(test_adafactor_lr_rule)
{
    job_spec s;
    tr_parse_ok(BASE_AF, &s);
    ck_assert_int_eq(s.optimizer.cfg.base.relative_step, 1);
    ck_assert_int_eq(s.optimizer.cfg.base.scale_parameter, 1);
    ck_assert(s.optimizer.cfg.base.lr == 0.0);
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adafactor\", \"lr\": 1e-3, \"eps\": [1e-30, 2e-3]}}", &s);
    ck_assert_int_eq(s.optimizer.cfg.base.relative_step, 0);
    ck_assert_int_eq(s.optimizer.cfg.base.scale_parameter, 0);
    ck_assert(s.optimizer.cfg.base.lr == 1e-3 && s.optimizer.cfg.base.eps2 == 2e-3);
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adafactor\", \"lr\": 1e-3, \"scale_parameter\": true}}", &s);
    ck_assert_int_eq(s.optimizer.cfg.base.scale_parameter, 1);
    ck_assert_int_eq(s.optimizer.cfg.base.relative_step, 0);
    octet_err e;
    ck_assert_int_eq(spec_parse_text("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": "
                                     "\"fashion-mnist\"}, \"optimizer\": {\"name\": \"adafactor\", \"lr\": 1e-3, "
                                     "\"relative_step\": true}}", 0, &s, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "optimizer.lr");
}
END_TEST

/* optim_bits is a param_group field of the 8-bit optimizers only; for the others the error
 * says which optimizers take it. */
START_TEST(test_optim_bits_group_8bit_only)
{
    static const char *const names[] = {"adamw", "adafactor", "sgd"};
    char json[512];
    job_spec s;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(json, sizeof json,
                 "{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                 " \"optimizer\": {\"name\": \"%s\", \"param_groups\": [{\"match\": \"*\", \"optim_bits\": 32}]}}",
                 names[i]);
        octet_err e;
        octet_err_clear(&e);
        ck_assert_int_eq(spec_parse_text(json, 0, &s, &e), OCTET_ERR_ARG);
        ck_assert_str_eq(e.field, "optimizer.param_groups[0].optim_bits");
        ck_assert_msg(strstr(e.message, "adam8bit, adamw8bit") != NULL, "%s: %s", names[i], e.message);
    }
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"optimizer\": {\"name\": \"adam8bit\", \"param_groups\": [{\"match\": \"*\", \"optim_bits\": 32}]}}",
                &s);
    ck_assert(s.optimizer.groups[0].set == OPTIM_SET_OPTIM_BITS && s.optimizer.groups[0].hp.optim_bits == 32);
}
END_TEST

START_TEST(test_precision_on_cpu)
{
    job_spec s;
    octet_err e;
    tr_parse_ok("{\"model\": {\"arch\": \"mlp\", \"hidden\": [8]}, \"dataset\": {\"name\": \"fashion-mnist\"},"
                " \"training\": {\"precision\": \"bf16\"}}", &s);
    ck_assert_int_eq(spec_check_device(&s, 0, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "training.precision");
    ck_assert_ptr_nonnull(strstr(e.message, "CUDA"));
    s.training.precision = SPEC_PREC_FP32;
    ck_assert_int_eq(spec_check_device(&s, 0, &e), OCTET_OK);
}
END_TEST

/* spec_to_json fills every default, and parses back to an identical spec. */
START_TEST(test_normalised_round_trip)
{
    static const char *specs[] = {
        "{\"name\": \"distilbert 8-bit\", \"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-base-cased\","
        " \"num_labels\": 2}, \"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 128, \"train_limit\": 2000},"
        " \"optimizer\": {\"name\": \"adamw8bit\", \"lr\": 5e-5, \"betas\": [0.9, 0.999], \"eps\": 1e-8,"
        " \"weight_decay\": 0.01, \"param_groups\": [{\"match\": \"*.word_embeddings.*\", \"optim_bits\": 32}]},"
        " \"training\": {\"epochs\": 2, \"batch_size\": 16, \"seed\": 42, \"device\": \"auto\", \"precision\": \"fp32\"}}",
        "{\"name\": \"fashion mlp\", \"model\": {\"arch\": \"mlp\", \"hidden\": [256, 128, 100], \"num_labels\": 10},"
        " \"dataset\": {\"name\": \"fashion-mnist\"}, \"optimizer\": {\"name\": \"adamw\", \"lr\": 1e-3,"
        " \"weight_decay\": 0.01}, \"training\": {\"epochs\": 15, \"batch_size\": 64}}",
        BASE_AF, BASE_SGD,
        "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"config\": {\"n_layers\": 1},"
        " \"dropout\": 0}, \"dataset\": {\"train_file\": \"a.jsonl\", \"eval_file\": \"b.csv\"},"
        " \"optimizer\": {\"name\": \"adafactor\", \"lr\": 0.01, \"beta1\": 0.9},"
        " \"training\": {\"warmup_steps\": 0.25, \"lr_scheduler\": \"cosine\", \"gradient_accumulation_steps\": 4}}",
        /* a model directory fixes the architecture: its normalised form has no model.config */
        "{\"model\": {\"arch\": \"distilbert\", \"path\": \"models/mine\"}, \"dataset\": {\"name\": \"fortunes-lang\"}}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        job_spec a, b;
        tr_parse_ok(specs[i], &a);
        json_t *ja = spec_to_json(&a);
        ck_assert_ptr_nonnull(ja);
        ck_assert_ptr_nonnull(json_object_get(json_object_get(ja, "training"), "max_grad_norm"));
        ck_assert_ptr_nonnull(json_object_get(json_object_get(ja, "optimizer"), "weight_decay"));
        char *text = json_dumps(ja, JSON_REAL_PRECISION(17));
        tr_parse_ok(text, &b);
        json_t *jb = spec_to_json(&b);
        ck_assert_msg(json_equal(ja, jb), "round trip differs: %s", text);
        /* a copy stands alone: nothing in it points into the original */
        job_spec c = a;
        memset(&a, 0xA5, sizeof a);
        json_t *jc = spec_to_json(&c);
        ck_assert_msg(json_equal(jb, jc), "a copied spec differs once the original is gone: %s", text);
        json_decref(jc);
        free(text);
        json_decref(ja);
        json_decref(jb);
    }
}
END_TEST

/* Every spec file shipped (tests/data/specs, the examples bench/fashion-*.json and
 * bench/fortunes-*.json) parses. */
START_TEST(test_spec_files)
{
    static const char *dirs[] = {"tests/data/specs", "bench"};
    int n = 0;
    for (int k = 0; k < 2; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", test_srcdir(), dirs[k]);
        DIR *d = opendir(dir);
        ck_assert_msg(d != NULL, "cannot open %s", dir);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
                continue;
            if (k == 1 && strncmp(de->d_name, "fashion-", 8) && strncmp(de->d_name, "fortunes-", 9))
                continue; /* bench/ also holds other benchmarks' files */
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            json_error_t je;
            json_t *root = json_load_file(path, 0, &je);
            ck_assert_msg(root != NULL, "%s: %s", path, je.text);
            job_spec s;
            octet_err e;
            ck_assert_msg(spec_parse(root, 0, &s, &e) == OCTET_OK, "%s: %s: %s", path, e.field, e.message);
            json_decref(root);
            n++;
        }
        closedir(d);
    }
    ck_assert_int_ge(n, 7);
}
END_TEST

Suite *suite_trainer_spec(void)
{
    Suite *s = suite_create("trainer_spec");
    TCase *tc = tcase_create("spec");
    tcase_add_loop_test(tc, test_bad_values, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_optimizer_field_errors);
    tcase_add_test(tc, test_num_labels_bounds);
    tcase_add_test(tc, test_server_paths);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_adafactor_lr_rule);
    tcase_add_test(tc, test_optim_bits_group_8bit_only);
    tcase_add_test(tc, test_precision_on_cpu);
    tcase_add_test(tc, test_normalised_round_trip);
    tcase_add_test(tc, test_spec_files);
    suite_add_tcase(s, tc);
    return s;
}
