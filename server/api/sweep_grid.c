/* sweep_grid.c: a sweep's grid, the part of POST /sweeps that is pure JSON: the dotted spec
 * paths checked, the number of combinations bounded, and combination c's spec built from the
 * base (an object value merged into the base's object at its path, any other value put
 * there). No HTTP and no store, so the fuzzer drives it directly (tests/fuzz/fuzz_sweep.c). */
#include "config.h"
#include "api/sweep_grid.h"

#include <stdio.h>
#include <string.h>

static const char *const sections[] = {"name", "model", "dataset", "optimizer", "training", NULL};

/* A path of lower-case segments [a-z_][a-z0-9_]* joined by '.', starting with a spec section. */
static int path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n >= SWEEP_PATH_MAX)
        return 0;
    int at_start = 1;
    for (const char *p = path; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (at_start)
                return 0;
            at_start = 1;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || c == '_' || (!at_start && c >= '0' && c <= '9');
        if (!ok)
            return 0;
        at_start = 0;
    }
    if (at_start)
        return 0;
    const char *dot = strchr(path, '.');
    size_t first = dot ? (size_t)(dot - path) : n;
    for (int i = 0; sections[i]; i++)
        if (strlen(sections[i]) == first && !strncmp(path, sections[i], first))
            return 1;
    return 0;
}

/* Puts `value` at dotted `path` in spec (objects created on the way; an object value merged). */
static int put_at(json_t *spec, const char *path, json_t *value)
{
    char buf[SWEEP_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *obj = spec;
    char *key = buf;
    for (char *dot; (dot = strchr(key, '.')) != NULL; key = dot + 1) {
        *dot = '\0';
        json_t *next = json_object_get(obj, key);
        if (!json_is_object(next)) {
            next = json_object();
            if (json_object_set_new(obj, key, next))
                return -1;
        }
        obj = next;
    }
    json_t *cur = json_object_get(obj, key);
    if (json_is_object(value) && json_is_object(cur)) {
        const char *k;
        json_t *v;
        json_object_foreach(value, k, v) {
            if (json_is_null(v))
                json_object_del(cur, k);
            else
                json_object_set(cur, k, v);
        }
        return 0;
    }
    return json_object_set(obj, key, value);
}

int sweep_grid_read(json_t *g, long long max_combinations, sweep_grid *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    out->obj = g;
    if (!json_is_object(g) || json_object_size(g) == 0)
        return octet_fail(e, OCTET_ERR_ARG, "grid",
                          "must be an object of spec paths to non-empty lists of values, e.g. "
                          "{\"optimizer.name\": [\"adamw\", \"adamw8bit\"], \"training.seed\": [1, 2]}");
    if (json_object_size(g) > SWEEP_GRID_MAX_PATHS)
        return octet_fail(e, OCTET_ERR_ARG, "grid", "at most %d paths", SWEEP_GRID_MAX_PATHS);
    out->combinations = 1;
    const char *path;
    json_t *values;
    json_object_foreach(g, path, values) {
        char field[SWEEP_PATH_MAX + 8];
        snprintf(field, sizeof field, "grid.%.*s", SWEEP_PATH_MAX, path);
        if (!path_ok(path))
            return octet_fail(e, OCTET_ERR_ARG, field,
                              "a grid path is a dotted spec path starting with name, model, dataset, optimizer or "
                              "training (lower-case segments), e.g. optimizer.lr");
        if (!json_is_array(values) || json_array_size(values) == 0)
            return octet_fail(e, OCTET_ERR_ARG, field, "must be a non-empty list of values");
        out->path[out->n_paths] = path;
        out->values[out->n_paths] = values;
        out->count[out->n_paths] = json_array_size(values);
        if (out->combinations <= (size_t)max_combinations) /* past it the product is not needed */
            out->combinations *= json_array_size(values);
        out->n_paths++;
    }
    if (out->combinations > (size_t)max_combinations)
        return octet_fail(e, OCTET_ERR_MISMATCH, "grid",
                          "the grid makes more than %lld combinations, the most this server takes (--max-sweep)",
                          max_combinations);
    return OCTET_OK;
}

void sweep_grid_indices(const sweep_grid *g, size_t c, size_t *idx)
{
    for (int p = g->n_paths - 1; p >= 0; p--) {
        idx[p] = c % g->count[p];
        c /= g->count[p];
    }
}

json_t *sweep_grid_combination(const sweep_grid *g, const json_t *base, size_t c, json_t **values)
{
    size_t idx[SWEEP_GRID_MAX_PATHS];
    sweep_grid_indices(g, c, idx);
    json_t *spec = json_deep_copy(base);
    *values = json_object();
    for (int p = 0; spec && p < g->n_paths; p++) {
        json_t *v = json_array_get(g->values[p], idx[p]);
        json_t *copy = json_deep_copy(v);
        put_at(spec, g->path[p], copy);
        json_decref(copy);
        json_object_set(*values, g->path[p], v);
    }
    return spec;
}
