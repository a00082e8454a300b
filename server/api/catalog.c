/* catalog.c: GET /api/v1/optimizers: the catalog of every optimizer the engine has: what it
 * implements, each spec field with its type, default and allowed range, the fields a
 * param_group may set, and its optimizer-state memory.
 *
 * Nothing numeric is restated here: names come from optim_kind_name(), defaults from
 * optim_config_defaults(), fields, ranges and param_group fields from the optim_params table
 * (kernels/optim/optim_params.h), and the state bytes from optim_estimate() on two reference
 * tensors (a 1024x1024 matrix and a 1024-element vector), so the figures are the engine's
 * exact layout: 8 B/param for AdamW, 2 B of codes plus 8 B of absmax per 256-element block for
 * 8-bit Adam (small tensors stay fp32), row and column vectors for Adafactor's matrices, one
 * fp32 buffer for SGD with momentum. */
#include "config.h"
#include "api/api.h"
#include "train/optim_json.h"
#include "optim.h"

typedef struct kind_text {
    const char *description;
    const char *state_layout;
} kind_text;

static const kind_text kind_texts[OPTIM_NKINDS] = {
    [OPTIM_ADAMW] = {"torch.optim.AdamW: Adam with decoupled weight decay, applied before the step",
                     "m and v in fp32"},
    [OPTIM_ADAM8BIT] = {"bitsandbytes Adam8bit: block-wise quantized 8-bit m and v (dynamic maps, block-wise absmax), "
                        "decoupled weight decay after the step, off by default",
                        "m and v as 8-bit codes plus one fp32 absmax per block for each; tensors under min_8bit_size "
                        "and param_groups with optim_bits 32 keep fp32 m and v; the two 256-entry maps once"},
    [OPTIM_ADAMW8BIT] = {"bitsandbytes AdamW8bit: adam8bit with decoupled weight decay on by default",
                         "as adam8bit"},
    [OPTIM_ADAFACTOR] = {"Hugging Face Adafactor: factored second moments; relative step by default, or the job's lr "
                         "with relative_step false and scale_parameter false (the Trainer's way)",
                         "matrices: one fp32 row vector and one column vector; vectors: fp32 v; plus fp32 m when "
                         "beta1 is set"},
    [OPTIM_SGD] = {"torch.optim.SGD with momentum, dampening and Nesterov",
                   "one fp32 momentum buffer when momentum > 0; nothing with momentum 0 (the default)"},
};

/* Fields a param_group of optimizer k may set: "match" and the table's group fields of k. */
static json_t *group_fields(optim_kind k)
{
    json_t *a = json_pack("[s]", "match");
    for (int i = 0; i < optim_params_count; i++)
        if (optim_params[i].group_kinds & (1u << k))
            json_array_append_new(a, json_string(optim_params[i].name));
    return a;
}

static json_t *param_json(const optim_param *p, const optim_config *defaults)
{
    static const char *type_names[] = {"number", "integer", "boolean", "array", "number"};
    char range[64];
    optim_param_range_text(p, range, sizeof range);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "type", json_string(type_names[p->type]));
    if (p->type == OP_NUMBER_PAIR) {
        json_object_set_new(o, "items", json_string("number"));
        json_object_set_new(o, "length", json_integer(2));
    }
    if (p->type == OP_NUMBER_OR_NULL)
        json_object_set_new(o, "nullable", json_true());
    json_object_set_new(o, "default", optim_param_get(p, defaults));
    if (p->has_min) {
        json_object_set_new(o, "min", json_real(p->min));
        json_object_set_new(o, "exclusive_min", json_boolean(p->min_open));
    }
    if (p->has_max) {
        json_object_set_new(o, "max", json_real(p->max));
        json_object_set_new(o, "exclusive_max", json_boolean(p->max_open));
    }
    json_object_set_new(o, "range", json_string(range));
    if (p->rule)
        json_object_set_new(o, "rule", json_string(p->rule));
    json_object_set_new(o, "doc", json_string(p->doc));
    return o;
}

/* The state of cfg's optimizer for one tensor of `shape` (ndim 1 or 2), as an example; its
 * bytes per parameter in *per_param, the whole estimate in *b (zero when it fails). */
static json_t *state_example(const optim_config *cfg, int ndim, int64_t rows, int64_t cols, double *per_param,
                             optim_state_bytes *b)
{
    optim_tensor t = {.name = ndim == 2 ? "example.weight" : "example.bias", .ndim = ndim, .shape = {rows, cols}};
    int64_t n = ndim == 2 ? rows * cols : rows;
    if (optim_estimate(cfg, &t, 1, b, NULL) != OCTET_OK) {
        *b = (optim_state_bytes){0};
        return NULL;
    }
    *per_param = (double)(b->total - b->maps) / (double)n;
    json_t *shape = ndim == 2 ? json_pack("[II]", (json_int_t)rows, (json_int_t)cols) : json_pack("[I]", (json_int_t)rows);
    return json_pack("{s:o, s:I, s:f}", "shape", shape, "bytes", (json_int_t)(b->total - b->maps), "bytes_per_param",
                     *per_param);
}

static json_t *state_json(optim_kind k)
{
    optim_config cfg;
    optim_config_defaults(k, &cfg);
    if (k == OPTIM_SGD)
        cfg.base.momentum = 0.9;  /* the figure with momentum; without it there is no state */
    double matrix_pp = 0.0, vector_pp = 0.0;
    optim_state_bytes b, vector_b;
    json_t *examples = json_array();
    json_array_append_new(examples, state_example(&cfg, 2, 1024, 1024, &matrix_pp, &b));
    json_array_append_new(examples, state_example(&cfg, 1, 1024, 0, &vector_pp, &vector_b));
    json_t *s = json_object();
    json_object_set_new(s, "bytes_per_param", json_real(matrix_pp));
    json_object_set_new(s, "factored", json_boolean(k == OPTIM_ADAFACTOR));
    json_object_set_new(s, "maps_bytes", json_integer((json_int_t)b.maps));
    json_object_set_new(s, "layout", json_string(kind_texts[k].state_layout));
    if (k == OPTIM_SGD)
        json_object_set_new(s, "assumes", json_pack("{s:f}", "momentum", cfg.base.momentum));
    json_object_set_new(s, "examples", examples);
    return s;
}

static json_t *optimizer_json(optim_kind k)
{
    optim_config defaults;
    optim_config_defaults(k, &defaults);
    json_t *params = json_array();
    for (int i = 0; i < optim_params_count; i++)
        if (optim_params[i].kinds & (1u << k))
            json_array_append_new(params, param_json(&optim_params[i], &defaults));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(optim_kind_name(k)));
    json_object_set_new(o, "description", json_string(kind_texts[k].description));
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "param_group_fields", group_fields(k));
    json_object_set_new(o, "state", state_json(k));
    return o;
}

json_t *api_optimizers_catalog(void)
{
    json_t *list = json_array();
    for (int k = 0; k < OPTIM_NKINDS; k++)
        json_array_append_new(list, optimizer_json((optim_kind)k));
    return json_pack("{s:o}", "optimizers", list);
}

enum MHD_Result api_optimizers_get(http_request *req)
{
    return http_reply_json(req, MHD_HTTP_OK, api_optimizers_catalog());
}
