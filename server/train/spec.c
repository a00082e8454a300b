/* spec.c: parsing, validation, defaults and the normalised JSON of a job spec (see spec.h).
 *
 * One small reader per JSON type (want_int, want_number, ...) checks a value and names its
 * path on failure; one function per spec object (model, dataset, optimizer, training) walks
 * that object's keys against its list of allowed keys, so an unknown key is refused with the
 * list of what is allowed. The optimizer's fields and its param_groups' fields go through the
 * optim_params table (the same table the catalog shows), so the spec and GET /optimizers
 * cannot disagree on names, types or defaults; the engine's optim_config_validate() has the
 * last word on ranges. */
#include "config.h"
#include "train/spec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "train/optim_json.h"
#include "train/distilbert.h"
#include "train/model.h"

#define SPEC_MAX_USER_GROUPS 32 /* leaves room for the Trainer's generated no-decay groups */

static const char *const arch_names[] = {"mlp", "distilbert"};
static const char *const sched_names[] = {"linear", "constant", "cosine"};
static const char *const prec_names[] = {"fp32", "bf16", "fp16"};

const char *spec_arch_name(spec_arch a) { return (unsigned)a < 2 ? arch_names[a] : "?"; }
const char *spec_precision_name(spec_precision p) { return (unsigned)p < 3 ? prec_names[p] : "?"; }

/* ------------------------------------------------------------------ readers of one value */

/* "prefix.key" into buf. */
static const char *path_of(char *buf, size_t len, const char *prefix, const char *key)
{
    snprintf(buf, len, "%s.%s", prefix, key);
    return buf;
}

static int want_int(const json_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out, octet_err *e)
{
    if (!json_is_integer(v))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer from %lld to %lld", (long long)lo,
                          (long long)hi);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an integer from %lld to %lld, got %lld", (long long)lo,
                          (long long)hi, (long long)x);
    *out = x;
    return OCTET_OK;
}

static int want_int32(const json_t *v, const char *field, int lo, int hi, int *out, octet_err *e)
{
    int64_t x = 0;
    int rc = want_int(v, field, lo, hi, &x, e);
    if (rc == OCTET_OK)
        *out = (int)x;
    return rc;
}

/* A finite number in [lo, hi] (lo_open/hi_open make that end open). */
static int want_number(const json_t *v, const char *field, double lo, int lo_open, double hi, int hi_open,
                       double *out, octet_err *e)
{
    char range[64];
    snprintf(range, sizeof range, "%c%g, %g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a finite number in %s", range);
    double x = json_number_value(v);
    if (x < lo || x > hi || (lo_open && x == lo) || (hi_open && x == hi))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a finite number in %s, got %g", range, x);
    *out = x;
    return OCTET_OK;
}

/* A non-empty string shorter than `cap`, copied into out. */
static int want_string(const json_t *v, const char *field, char *out, size_t cap, octet_err *e)
{
    if (!json_is_string(v))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a string");
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n == 0 || n >= cap || n != json_string_length(v))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a non-empty string of at most %zu bytes", cap - 1);
    memcpy(out, s, n + 1);
    return OCTET_OK;
}

/* One of `names`; the index goes to *out. */
static int want_enum(const json_t *v, const char *field, const char *const *names, int n, int *out, octet_err *e)
{
    char allowed[160] = "";
    for (int i = 0; i < n; i++) {
        strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, names[i], sizeof allowed - strlen(allowed) - 1);
    }
    if (json_is_string(v))
        for (int i = 0; i < n; i++)
            if (!strcmp(json_string_value(v), names[i])) {
                *out = i;
                return OCTET_OK;
            }
    return octet_fail(e, OCTET_ERR_ARG, field, "must be one of: %s", allowed);
}

/* Refuses a key of obj that is not in `allowed` (NULL-terminated). */
static int check_keys(const json_t *obj, const char *prefix, const char *const *allowed, octet_err *e)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(key, allowed[i]);
        if (ok)
            continue;
        char field[96], list[256] = "";
        for (int i = 0; allowed[i]; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, allowed[i], sizeof list - strlen(list) - 1);
        }
        if (*prefix)
            snprintf(field, sizeof field, "%s.%s", prefix, key);
        else
            snprintf(field, sizeof field, "%s", key);
        return octet_fail(e, OCTET_ERR_ARG, field, "unknown field; allowed: %s", list);
    }
    return OCTET_OK;
}

/* The value of an optional field, NULL when absent or null (null is how spec_to_json writes
 * "not set: the default", so a normalised spec parses back). */
static const json_t *given(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static int want_object(const json_t *v, const char *field, octet_err *e)
{
    if (!json_is_object(v))
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a JSON object");
    return OCTET_OK;
}

/* A path to a file or directory: under SPEC_SERVER relative and free of "..". */
static int want_path(const json_t *v, const char *field, unsigned flags, char *out, octet_err *e)
{
    int rc = want_string(v, field, out, SPEC_PATH_MAX, e);
    if (rc || !(flags & SPEC_SERVER))
        return rc;
    if (out[0] == '/')
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a path relative to the server's data directory");
    for (const char *p = out; (p = strstr(p, "..")) != NULL; p += 2) {
        int starts = p == out || p[-1] == '/';
        int ends = p[2] == '\0' || p[2] == '/';
        if (starts && ends)
            return octet_fail(e, OCTET_ERR_ARG, field, "must not contain '..'");
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ model */

static int parse_model_config(const json_t *o, spec_model_config *c, octet_err *e)
{
    static const char *const keys[] = {"dim", "n_layers", "n_heads", "hidden_dim", "vocab_size",
                                       "max_position_embeddings", NULL};
    int rc = want_object(o, "model.config", e);
    if (rc || (rc = check_keys(o, "model.config", keys, e)))
        return rc;
    int *dst[] = {&c->dim, &c->n_layers, &c->n_heads, &c->hidden_dim, &c->vocab_size, &c->max_position_embeddings};
    static const int hi[] = {8192, 64, 128, 65536, 1 << 22, 65536};
    char f[96];
    for (int i = 0; keys[i]; i++) {
        const json_t *v = json_object_get(o, keys[i]);
        if (v && (rc = want_int32(v, path_of(f, sizeof f, "model.config", keys[i]), 1, hi[i], dst[i], e)))
            return rc;
    }
    if (c->dim && c->n_heads && c->dim % c->n_heads)
        return octet_fail(e, OCTET_ERR_ARG, "model.config.n_heads", "must divide dim (%d), got %d", c->dim, c->n_heads);
    return OCTET_OK;
}

static int parse_hidden(const json_t *v, spec_model *m, octet_err *e)
{
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > SPEC_MAX_HIDDEN)
        return octet_fail(e, OCTET_ERR_ARG, "model.hidden", "must be an array of 1 to %d layer sizes",
                          SPEC_MAX_HIDDEN);
    m->n_hidden = (int)json_array_size(v);
    for (int i = 0; i < m->n_hidden; i++) {
        char f[64];
        snprintf(f, sizeof f, "model.hidden[%d]", i);
        int rc = want_int32(json_array_get(v, (size_t)i), f, 1, 65536, &m->hidden[i], e);
        if (rc)
            return rc;
    }
    return OCTET_OK;
}

/* Fields that only one arch takes. */
static int check_arch_fields(const json_t *o, spec_arch arch, octet_err *e)
{
    static const char *const mlp_only[] = {"hidden", NULL};
    static const char *const bert_only[] = {"preset", "path", "config", NULL};
    const char *const *wrong = arch == SPEC_ARCH_MLP ? bert_only : mlp_only;
    for (int i = 0; wrong[i]; i++)
        if (json_object_get(o, wrong[i])) {
            char f[64];
            return octet_fail(e, OCTET_ERR_ARG, path_of(f, sizeof f, "model", wrong[i]), "is not a field of arch %s",
                              arch_names[arch]);
        }
    return OCTET_OK;
}

/* A DistilBERT preset and its overrides must make a valid configuration; a model directory's
 * config.json fixes the architecture, so it takes no overrides. */
static int check_distilbert(const json_t *o, const spec_model *m, octet_err *e)
{
    if (m->path[0]) {
        if (json_object_get(o, "config"))
            return octet_fail(e, OCTET_ERR_ARG, "model.config",
                              "cannot be combined with model.path: the directory's config.json fixes the architecture");
        return OCTET_OK;
    }
    distilbert_config c;
    int rc = distilbert_preset(m->preset, &c, e);
    if (rc)
        return rc;
    const spec_model_config *k = &m->config;
    if (k->dim) c.dim = k->dim;
    if (k->n_layers) c.n_layers = k->n_layers;
    if (k->n_heads) c.n_heads = k->n_heads;
    if (k->hidden_dim) c.hidden_dim = k->hidden_dim;
    if (k->vocab_size) c.vocab_size = k->vocab_size;
    if (k->max_position_embeddings) c.max_position_embeddings = k->max_position_embeddings;
    if (m->num_labels) c.num_labels = m->num_labels;
    return distilbert_config_validate(&c, e);
}

static int parse_model(const json_t *o, unsigned flags, spec_model *m, octet_err *e)
{
    static const char *const keys[] = {"arch", "preset", "path", "config", "hidden", "num_labels", "dropout", NULL};
    int rc = want_object(o, "model", e), a = 0;
    if (rc || (rc = check_keys(o, "model", keys, e)))
        return rc;
    const json_t *v = json_object_get(o, "arch");
    if (!v)
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "is required: one of mlp, distilbert");
    if ((rc = want_enum(v, "model.arch", arch_names, 2, &a, e)) || (rc = check_arch_fields(o, (spec_arch)a, e)))
        return rc;
    m->arch = (spec_arch)a;
    if ((v = json_object_get(o, "preset")) && (rc = want_string(v, "model.preset", m->preset, sizeof m->preset, e)))
        return rc;
    if ((v = json_object_get(o, "path")) && (rc = want_path(v, "model.path", flags, m->path, e)))
        return rc;
    if (m->preset[0] && m->path[0])
        return octet_fail(e, OCTET_ERR_ARG, "model.path", "give either model.preset or model.path, not both");
    if (m->arch == SPEC_ARCH_DISTILBERT && !m->preset[0] && !m->path[0])
        snprintf(m->preset, sizeof m->preset, "%s", "distilbert-base-uncased");
    if ((v = json_object_get(o, "config")) && (rc = parse_model_config(v, &m->config, e)))
        return rc;
    if ((v = json_object_get(o, "hidden")) && (rc = parse_hidden(v, m, e)))
        return rc;
    if (m->arch == SPEC_ARCH_MLP && m->n_hidden == 0)
        return octet_fail(e, OCTET_ERR_ARG, "model.hidden", "is required for arch mlp: the hidden layer sizes, e.g. [256, 128, 100]");
    if ((v = given(o, "num_labels")) &&
        (rc = want_int32(v, "model.num_labels", MODEL_MIN_CLASSES, MODEL_MAX_LABELS, &m->num_labels, e)))
        return rc;
    if ((v = given(o, "dropout")) && (rc = want_number(v, "model.dropout", 0, 0, 1, 1, &m->dropout, e)))
        return rc;
    return m->arch == SPEC_ARCH_DISTILBERT ? check_distilbert(o, m, e) : OCTET_OK;
}

/* ------------------------------------------------------------------ dataset */

static int parse_dataset(const json_t *o, unsigned flags, spec_dataset *d, octet_err *e)
{
    static const char *const keys[] = {"name", "train_file", "eval_file", "max_length", "train_limit",
                                       "eval_limit", NULL};
    int rc = want_object(o, "dataset", e);
    if (rc || (rc = check_keys(o, "dataset", keys, e)))
        return rc;
    const json_t *v;
    if ((v = json_object_get(o, "name")) && (rc = want_string(v, "dataset.name", d->name, sizeof d->name, e)))
        return rc;
    for (const char *p = d->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-", *p)))
            return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "may hold only letters, digits, '.', '_' and '-'");
    if ((v = json_object_get(o, "train_file")) && (rc = want_path(v, "dataset.train_file", flags, d->train_file, e)))
        return rc;
    if ((v = json_object_get(o, "eval_file")) && (rc = want_path(v, "dataset.eval_file", flags, d->eval_file, e)))
        return rc;
    if (d->name[0] && (d->train_file[0] || d->eval_file[0]))
        return octet_fail(e, OCTET_ERR_ARG, d->train_file[0] ? "dataset.train_file" : "dataset.eval_file",
                          "give either dataset.name or dataset.train_file and dataset.eval_file, not both");
    if (!d->name[0] && !d->train_file[0])
        return octet_fail(e, OCTET_ERR_ARG, d->eval_file[0] ? "dataset.train_file" : "dataset.name",
                          "is required: a dataset name (fashion-mnist, fortunes-lang or an uploaded one), or "
                          "train_file and eval_file");
    if (d->train_file[0] && !d->eval_file[0])
        return octet_fail(e, OCTET_ERR_ARG, "dataset.eval_file", "is required with dataset.train_file");
    if ((v = json_object_get(o, "max_length")) && (rc = want_int32(v, "dataset.max_length", 3, 65536, &d->max_length, e)))
        return rc;
    if ((v = given(o, "train_limit")) && (rc = want_int(v, "dataset.train_limit", 1, INT32_MAX, &d->train_limit, e)))
        return rc;
    if ((v = given(o, "eval_limit")) && (rc = want_int(v, "dataset.eval_limit", 1, INT32_MAX, &d->eval_limit, e)))
        return rc;
    return OCTET_OK;
}

/* ------------------------------------------------------------------ optimizer */

/* [a, b] of finite numbers, each element's path named on failure. */
static int want_pair(const json_t *v, const char *field, double *a, double *b, octet_err *e)
{
    if (!json_is_array(v) || json_array_size(v) != 2)
        return octet_fail(e, OCTET_ERR_ARG, field, "must be an array of two finite numbers");
    double *dst[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        const json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) {
            char f[128];
            snprintf(f, sizeof f, "%s[%d]", field, i);
            return octet_fail(e, OCTET_ERR_ARG, f, "must be a finite number");
        }
        *dst[i] = json_number_value(x);
    }
    return OCTET_OK;
}

/* The keys a param_group of optimizer k takes ("match, lr, ..."), for messages. */
static void group_fields(optim_kind k, char *buf, size_t len)
{
    snprintf(buf, len, "match");
    for (int i = 0; i < optim_params_count; i++)
        if (optim_params[i].group_kinds & (1u << k)) {
            strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, optim_params[i].name, len - strlen(buf) - 1);
        }
}

/* Refuses a key of param_group `prefix` that the groups of optimizer k do not take, saying why:
 * a field of the whole optimizer only, a group field of other optimizers, or unknown. */
static int check_group_keys(const json_t *o, const char *prefix, optim_kind k, octet_err *e)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        if (!strcmp(key, "match") || optim_param_find_group(k, key))
            continue;
        char f[128], list[192];
        snprintf(f, sizeof f, "%s.%s", prefix, key);
        if (optim_param_find(k, key))
            return octet_fail(e, OCTET_ERR_ARG, f, "%s's %s is set for the whole optimizer only", optim_kind_name(k),
                              key);
        optim_param_group_kinds_text(key, list, sizeof list);
        if (list[0])
            return octet_fail(e, OCTET_ERR_ARG, f, "is a param_group field of %s only, not of %s", list,
                              optim_kind_name(k));
        group_fields(k, list, sizeof list);
        return octet_fail(e, OCTET_ERR_ARG, f, "unknown field; allowed: %s", list);
    }
    return OCTET_OK;
}

static int parse_group(const json_t *o, int i, spec_optimizer *so, octet_err *e)
{
    char prefix[64], f[96];
    snprintf(prefix, sizeof prefix, "optimizer.param_groups[%d]", i);
    int rc = want_object(o, prefix, e);
    if (rc || (rc = check_group_keys(o, prefix, so->cfg.kind, e)))
        return rc;
    optim_group_spec *g = &so->groups[i];
    memset(g, 0, sizeof *g);
    const json_t *v = json_object_get(o, "match");
    if (!v)
        return octet_fail(e, OCTET_ERR_ARG, path_of(f, sizeof f, prefix, "match"),
                          "is required: a glob over parameter names, e.g. \"*.word_embeddings.*\"");
    if ((rc = want_string(v, path_of(f, sizeof f, prefix, "match"), so->match[i], SPEC_MATCH_MAX, e)))
        return rc;
    g->match = NULL; /* spec_optim_config points it at so->match[i] */
    for (int j = 0; j < optim_params_count; j++) {
        const optim_param *p = &optim_params[j];
        if (!(p->group_kinds & (1u << so->cfg.kind)) || !(v = json_object_get(o, p->name)))
            continue;
        if ((rc = optim_param_group_set(p, g, v, path_of(f, sizeof f, prefix, p->name), e)))
            return rc;
    }
    return OCTET_OK;
}

static int parse_groups(const json_t *v, spec_optimizer *so, octet_err *e)
{
    if (!json_is_array(v) || json_array_size(v) > SPEC_MAX_USER_GROUPS)
        return octet_fail(e, OCTET_ERR_ARG, "optimizer.param_groups", "must be an array of at most %d groups",
                          SPEC_MAX_USER_GROUPS);
    so->cfg.n_groups = (int)json_array_size(v);
    for (int i = 0; i < so->cfg.n_groups; i++) {
        int rc = parse_group(json_array_get(v, (size_t)i), i, so, e);
        if (rc)
            return rc;
    }
    return OCTET_OK;
}

/* The fields of optimizer kind k, for messages. */
static void kind_fields(optim_kind k, char *buf, size_t len)
{
    snprintf(buf, len, "name");
    for (int i = 0; i < optim_params_count; i++)
        if (optim_params[i].kinds & (1u << k)) {
            strncat(buf, ", ", len - strlen(buf) - 1);
            strncat(buf, optim_params[i].name, len - strlen(buf) - 1);
        }
    strncat(buf, ", param_groups", len - strlen(buf) - 1);
}

/* The range of table entry p for value x (named `field`), in the table's words. */
static int check_range(const optim_param *p, double x, const char *field, octet_err *e)
{
    int low = p->has_min && (x < p->min || (p->min_open && x == p->min));
    int high = p->has_max && (x > p->max || (p->max_open && x == p->max));
    if (!low && !high)
        return OCTET_OK;
    char range[64];
    optim_param_range_text(p, range, sizeof range);
    return octet_fail(e, OCTET_ERR_ARG, field, "must be in %s, got %g", range, x);
}

/* Range checks of a value already known to have the right type. */
static int check_ranges(const optim_param *p, const json_t *v, const char *field, octet_err *e)
{
    if (p->type == OP_BOOLEAN || json_is_null(v))
        return OCTET_OK;
    if (p->type != OP_NUMBER_PAIR)
        return check_range(p, json_number_value(v), field, e);
    for (int i = 0; i < 2; i++) {
        char f[128];
        snprintf(f, sizeof f, "%s[%d]", field, i);
        int rc = check_range(p, json_number_value(json_array_get(v, (size_t)i)), f, e);
        if (rc)
            return rc;
    }
    return OCTET_OK;
}

static int set_optim_field(spec_optimizer *so, const char *key, const json_t *v, octet_err *e)
{
    char f[96];
    path_of(f, sizeof f, "optimizer", key);
    const optim_param *p = optim_param_find(so->cfg.kind, key);
    if (!p) {
        char list[320];
        kind_fields(so->cfg.kind, list, sizeof list);
        return octet_fail(e, OCTET_ERR_ARG, f, "is not a field of %s; its fields: %s", optim_kind_name(so->cfg.kind),
                          list);
    }
    double a, b;
    int rc;
    if (p->type == OP_NUMBER_PAIR && (rc = want_pair(v, f, &a, &b, e)))
        return rc;
    if ((rc = optim_param_set(p, &so->cfg, v, e)))
        return rc;
    return check_ranges(p, v, f, e);
}

static int parse_optimizer(const json_t *o, spec_optimizer *so, octet_err *e)
{
    int rc = want_object(o, "optimizer", e);
    if (rc)
        return rc;
    const json_t *v = json_object_get(o, "name");
    optim_kind k = OPTIM_ADAMW;
    if (v && !json_is_string(v))
        return optim_kind_from_name("", &k, e);
    if (v && (rc = optim_kind_from_name(json_string_value(v), &k, e)))
        return rc;
    optim_config_defaults(k, &so->cfg);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val) {
        if (!strcmp(key, "name"))
            continue;
        rc = !strcmp(key, "param_groups") ? parse_groups(val, so, e) : set_optim_field(so, key, val, e);
        if (rc)
            return rc;
    }
    /* The Trainer's Adafactor: an explicit lr turns the relative step and parameter scaling off. */
    const json_t *lr = json_object_get(o, "lr");
    if (k == OPTIM_ADAFACTOR && lr && !json_is_null(lr)) {
        if (!json_object_get(o, "relative_step"))
            so->cfg.base.relative_step = 0;
        if (!json_object_get(o, "scale_parameter"))
            so->cfg.base.scale_parameter = 0;
    }
    optim_group_spec groups[OPTIM_MAX_GROUPS];
    optim_config cfg = so->cfg;
    for (int i = 0; i < cfg.n_groups; i++) {
        groups[i] = so->groups[i];
        groups[i].match = so->match[i];
    }
    cfg.groups = groups;
    return optim_config_validate(&cfg, e);
}

/* ------------------------------------------------------------------ training */

static int parse_warmup(const json_t *v, spec_training *t, octet_err *e)
{
    const char *f = "training.warmup_steps";
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return octet_fail(e, OCTET_ERR_ARG, f, "must be an integer number of steps >= 0 or a ratio in [0, 1)");
        t->warmup_is_ratio = 0;
        t->warmup_steps = json_integer_value(v);
        return OCTET_OK;
    }
    double x = json_is_real(v) ? json_real_value(v) : NAN;
    if (isfinite(x) && x >= 0.0 && x < 1.0) {
        t->warmup_is_ratio = 1;
        t->warmup_ratio = x;
        return OCTET_OK;
    }
    if (isfinite(x) && x >= 1.0 && x <= INT32_MAX && x == floor(x)) {
        t->warmup_is_ratio = 0;
        t->warmup_steps = (int64_t)x;
        return OCTET_OK;
    }
    return octet_fail(e, OCTET_ERR_ARG, f, "must be an integer number of steps >= 0 or a ratio in [0, 1)");
}

static int parse_device(const json_t *v, spec_training *t, octet_err *e)
{
    static const char *const names[] = {"auto", "cpu", "cuda"};
    int i = 0;
    int rc = want_enum(v, "training.device", names, 3, &i, e);
    if (rc == OCTET_OK)
        snprintf(t->device, sizeof t->device, "%s", names[i]);
    return rc;
}

static int parse_training(const json_t *o, spec_training *t, octet_err *e)
{
    static const char *const keys[] = {"epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                                       "max_grad_norm", "lr_scheduler", "warmup_steps", "seed", "device",
                                       "precision", "log_every", NULL};
    int rc = want_object(o, "training", e), x = 0;
    if (rc || (rc = check_keys(o, "training", keys, e)))
        return rc;
    const json_t *v;
    int64_t seed = 0;
#define INT_FIELD(key, lo, hi, dst) \
    if ((v = json_object_get(o, key)) && (rc = want_int32(v, "training." key, lo, hi, dst, e))) return rc
    INT_FIELD("epochs", 1, 100000, &t->epochs);
    INT_FIELD("batch_size", 1, 65536, &t->batch_size);
    INT_FIELD("eval_batch_size", 1, 65536, &t->eval_batch_size);
    INT_FIELD("gradient_accumulation_steps", 1, 65536, &t->grad_accum);
    INT_FIELD("log_every", 1, INT32_MAX, &t->log_every);
#undef INT_FIELD
    if ((v = json_object_get(o, "max_grad_norm")) &&
        (rc = want_number(v, "training.max_grad_norm", 0, 0, INFINITY, 1, &t->max_grad_norm, e)))
        return rc;
    if ((v = json_object_get(o, "lr_scheduler"))) {
        if ((rc = want_enum(v, "training.lr_scheduler", sched_names, 3, &x, e)))
            return rc;
        t->lr_scheduler = (spec_sched)x;
    }
    if ((v = json_object_get(o, "warmup_steps")) && (rc = parse_warmup(v, t, e)))
        return rc;
    if ((v = json_object_get(o, "seed"))) {
        if ((rc = want_int(v, "training.seed", 0, INT64_MAX, &seed, e)))
            return rc;
        t->seed = (uint64_t)seed;
    }
    if ((v = json_object_get(o, "device")) && (rc = parse_device(v, t, e)))
        return rc;
    if ((v = json_object_get(o, "precision"))) {
        if ((rc = want_enum(v, "training.precision", prec_names, 3, &x, e)))
            return rc;
        t->precision = (spec_precision)x;
    }
    return OCTET_OK;
}

/* ------------------------------------------------------------------ the whole spec */

void spec_defaults(job_spec *s)
{
    memset(s, 0, sizeof *s);
    s->model.arch = SPEC_ARCH_MLP;
    s->model.dropout = -1.0;
    s->dataset.max_length = 128;
    optim_config_defaults(OPTIM_ADAMW, &s->optimizer.cfg);
    spec_training *t = &s->training;
    t->epochs = 3;
    t->batch_size = 8;
    t->eval_batch_size = 8;
    t->grad_accum = 1;
    t->max_grad_norm = 1.0;
    t->lr_scheduler = SPEC_SCHED_LINEAR;
    t->seed = 42;
    snprintf(t->device, sizeof t->device, "auto");
    t->precision = SPEC_PREC_FP32;
    t->log_every = 500;
}

static int required_object(const json_t *root, const char *key, octet_err *e)
{
    if (!json_object_get(root, key))
        return octet_fail(e, OCTET_ERR_ARG, key, "is required");
    return OCTET_OK;
}

int spec_parse(const json_t *root, unsigned flags, job_spec *out, octet_err *e)
{
    static const char *const keys[] = {"name", "model", "dataset", "optimizer", "training", NULL};
    spec_defaults(out);
    if (!json_is_object(root))
        return octet_fail(e, OCTET_ERR_ARG, "", "a job spec must be a JSON object");
    int rc = check_keys(root, "", keys, e);
    if (rc || (rc = required_object(root, "model", e)) || (rc = required_object(root, "dataset", e)))
        return rc;
    const json_t *v = json_object_get(root, "name");
    if (v && (rc = want_string(v, "name", out->name, sizeof out->name, e)))
        return rc;
    if ((rc = parse_model(json_object_get(root, "model"), flags, &out->model, e)) ||
        (rc = parse_dataset(json_object_get(root, "dataset"), flags, &out->dataset, e)))
        return rc;
    if ((v = json_object_get(root, "optimizer")) && (rc = parse_optimizer(v, &out->optimizer, e)))
        return rc;
    if ((v = json_object_get(root, "training")) && (rc = parse_training(v, &out->training, e)))
        return rc;
    return OCTET_OK;
}

/* The dotted path ("optimizer.weight_decay", "optimizer.betas[1]") of the value being read at
 * byte `at` of JSON text that is well-formed up to there; "" when `at` is not inside the value
 * of an object member or an array element. It names the field of a number that jansson refuses
 * as out of range (1e309 overflows a double), which fails the whole parse, so no field would
 * otherwise be known. */
static void json_path_at(const char *text, size_t at, char *buf, size_t cap)
{
    enum { MAX_DEPTH = 16, KEY_MAX = 48 };
    struct { int array, have_key; long index; char key[KEY_MAX]; } st[MAX_DEPTH];
    int depth = 0, expect_key = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < at && text[i]; i++) {
        char c = text[i];
        if (c == '"') { /* a string: a key where one is expected, else a value to skip */
            size_t j = i + 1, n = 0;
            int key = depth > 0 && !st[depth - 1].array && expect_key;
            for (; j < at && text[j] && text[j] != '"'; j++) {
                if (text[j] == '\\' && text[j + 1])
                    j++;
                if (key && n + 1 < KEY_MAX)
                    st[depth - 1].key[n++] = text[j];
            }
            if (key) {
                st[depth - 1].key[n] = '\0';
                st[depth - 1].have_key = 1;
                expect_key = 0;
            }
            i = j;
        } else if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return;
            st[depth].array = c == '[';
            st[depth].have_key = 0;
            st[depth].index = 0;
            depth++;
            expect_key = c == '{';
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
            expect_key = 0;
        } else if (c == ',' && depth > 0) {
            st[depth - 1].index++;
            st[depth - 1].have_key = 0;
            expect_key = !st[depth - 1].array;
        }
    }
    if (depth == 0 || expect_key)
        return;
    size_t len = 0;
    for (int d = 0; d < depth && len < cap; d++) {
        if (!st[d].array && !st[d].have_key) {
            buf[0] = '\0';
            return;
        }
        int n = st[d].array ? snprintf(buf + len, cap - len, "[%ld]", st[d].index)
                            : snprintf(buf + len, cap - len, "%s%s", len ? "." : "", st[d].key);
        len += n > 0 ? (size_t)n : 0;
    }
    if (len >= cap)
        buf[0] = '\0';
}

int spec_parse_text(const char *text, unsigned flags, job_spec *out, octet_err *e)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow) {
        char field[96];
        json_path_at(text, (size_t)je.position, field, sizeof field);
        if (field[0])
            return octet_fail(e, OCTET_ERR_ARG, field, "is a number out of range (%s; line %d, column %d)", je.text,
                              je.line, je.column);
    }
    if (!root)
        return octet_fail(e, OCTET_ERR_ARG, "", "not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
    int rc = spec_parse(root, flags, out, e);
    json_decref(root);
    return rc;
}

void spec_optim_config(const job_spec *s, optim_config *cfg, optim_group_spec *groups)
{
    *cfg = s->optimizer.cfg;
    for (int i = 0; i < cfg->n_groups; i++) {
        groups[i] = s->optimizer.groups[i];
        groups[i].match = s->optimizer.match[i];
    }
    cfg->groups = cfg->n_groups ? groups : NULL;
}

int spec_check_device(const job_spec *s, int is_cuda, octet_err *e)
{
    if (s->training.precision != SPEC_PREC_FP32 && !is_cuda)
        return octet_fail(e, OCTET_ERR_ARG, "training.precision",
                          "%s mixed precision needs a CUDA device; the CPU trains in fp32 only",
                          prec_names[s->training.precision]);
    return OCTET_OK;
}

/* ------------------------------------------------------------------ normalised JSON */

void spec_model_label(const job_spec *s, char *buf, size_t cap)
{
    const spec_model *m = &s->model;
    if (m->arch == SPEC_ARCH_MLP) {
        size_t used = (size_t)snprintf(buf, cap, "mlp ");
        for (int i = 0; i < m->n_hidden && used < cap; i++)
            used += (size_t)snprintf(buf + used, cap - used, "%s%d", i ? "-" : "", m->hidden[i]);
        return;
    }
    const spec_model_config *k = &m->config;
    int overrides = k->dim || k->n_layers || k->n_heads || k->hidden_dim || k->vocab_size || k->max_position_embeddings;
    snprintf(buf, cap, "%s%s", m->path[0] ? m->path : m->preset, overrides ? " +config" : "");
}

/* The overrides a preset was given (those left at 0 are the preset's own). */
static json_t *model_config_json(const spec_model_config *k)
{
    json_t *c = json_object();
    const char *names[] = {"dim", "n_layers", "n_heads", "hidden_dim", "vocab_size", "max_position_embeddings"};
    const int vals[] = {k->dim, k->n_layers, k->n_heads, k->hidden_dim, k->vocab_size, k->max_position_embeddings};
    for (int i = 0; i < 6; i++)
        if (vals[i])
            json_object_set_new(c, names[i], json_integer(vals[i]));
    return c;
}

static json_t *model_json(const spec_model *m)
{
    json_t *o = json_pack("{ss}", "arch", arch_names[m->arch]);
    if (m->arch == SPEC_ARCH_MLP) {
        json_t *h = json_array();
        for (int i = 0; i < m->n_hidden; i++)
            json_array_append_new(h, json_integer(m->hidden[i]));
        json_object_set_new(o, "hidden", h);
    } else {
        if (m->preset[0])
            json_object_set_new(o, "preset", json_string(m->preset));
        if (m->path[0]) /* the directory's config.json fixes the architecture: no overrides */
            json_object_set_new(o, "path", json_string(m->path));
        else
            json_object_set_new(o, "config", model_config_json(&m->config));
    }
    json_object_set_new(o, "num_labels", m->num_labels ? json_integer(m->num_labels) : json_null());
    json_object_set_new(o, "dropout", m->dropout >= 0 ? json_real(m->dropout) : json_null());
    return o;
}

static json_t *dataset_json(const spec_dataset *d)
{
    json_t *o = json_object();
    if (d->name[0])
        json_object_set_new(o, "name", json_string(d->name));
    else {
        json_object_set_new(o, "train_file", json_string(d->train_file));
        json_object_set_new(o, "eval_file", json_string(d->eval_file));
    }
    json_object_set_new(o, "max_length", json_integer(d->max_length));
    json_object_set_new(o, "train_limit", d->train_limit ? json_integer(d->train_limit) : json_null());
    json_object_set_new(o, "eval_limit", d->eval_limit ? json_integer(d->eval_limit) : json_null());
    return o;
}

static json_t *group_json(optim_kind k, const optim_group_spec *g, const char *match)
{
    json_t *o = json_pack("{ss}", "match", match);
    for (int i = 0; i < optim_params_count; i++) {
        const optim_param *p = &optim_params[i];
        if ((p->group_kinds & (1u << k)) && (g->set & p->group_set))
            json_object_set_new(o, p->name, optim_param_group_get(p, &g->hp));
    }
    return o;
}

static json_t *optimizer_json(const spec_optimizer *so)
{
    const optim_config *c = &so->cfg;
    json_t *o = json_pack("{ss}", "name", optim_kind_name(c->kind));
    for (int i = 0; i < optim_params_count; i++)
        if (optim_params[i].kinds & (1u << c->kind))
            json_object_set_new(o, optim_params[i].name, optim_param_get(&optim_params[i], c));
    json_t *groups = json_array();
    for (int i = 0; i < c->n_groups; i++)
        json_array_append_new(groups, group_json(c->kind, &so->groups[i], so->match[i]));
    json_object_set_new(o, "param_groups", groups);
    return o;
}

static json_t *training_json(const spec_training *t)
{
    json_t *o = json_pack("{si si si si sf ss}", "epochs", t->epochs, "batch_size", t->batch_size,
                          "eval_batch_size", t->eval_batch_size, "gradient_accumulation_steps", t->grad_accum,
                          "max_grad_norm", t->max_grad_norm, "lr_scheduler", sched_names[t->lr_scheduler]);
    json_object_set_new(o, "warmup_steps",
                        t->warmup_is_ratio ? json_real(t->warmup_ratio) : json_integer(t->warmup_steps));
    json_object_set_new(o, "seed", json_integer((json_int_t)t->seed));
    json_object_set_new(o, "device", json_string(t->device));
    json_object_set_new(o, "precision", json_string(prec_names[t->precision]));
    json_object_set_new(o, "log_every", json_integer(t->log_every));
    return o;
}

json_t *spec_to_json(const job_spec *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (s->name[0])
        json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "model", model_json(&s->model));
    json_object_set_new(o, "dataset", dataset_json(&s->dataset));
    json_object_set_new(o, "optimizer", optimizer_json(&s->optimizer));
    json_object_set_new(o, "training", training_json(&s->training));
    return o;
}
