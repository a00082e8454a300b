/* sweeps.c: the sweep resource: POST /sweeps (a base spec and a grid, one job per
 * combination; ?dry_run=1 lists the combinations), GET /sweeps, GET /sweeps/{id} (the view:
 * jobs grouped by everything but the seed, with seed statistics per epoch), POST
 * /sweeps/{id}/cancel and DELETE /sweeps/{id}.
 *
 * A grid maps dotted spec paths ("optimizer", "optimizer.lr", "training.seed") to non-empty
 * lists of values. Each combination's spec is the base with, for every path, the value put at
 * that path: an object value is merged into the object already there (RFC 7386: its keys
 * replace the base's, null removes one), any other value replaces what is there. Combinations
 * are taken in the grid's order, the last path varying fastest. Every combination is parsed,
 * checked and admitted before any job is created, and all of them are created in one
 * transaction, so a sweep is whole or absent; each is admitted as a job is (its estimated peak
 * must fit the device), and a dry run shows each combination's estimate. An error names where
 * it comes from: a grid value ("grid.optimizer.lr[1]", "grid.optimizer[1].betas[1]"), a grid
 * path that names no field ("grid.optimizer.lrr") or the base ("base.training.epochs").
 *
 * Statistics are over the seeds of a group: mean, min, max and the sample standard deviation
 * (n - 1; null for a single value). */
#define LOG_PREFIX "sweeps"
#include "config.h"
#include "api/api.h"
#include "log.h"
#include "api/sweep_grid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_PATH "training.seed"
#define LIST_DEFAULT 50
#define LIST_MAX 500

/* True when the object value `v` holds the first key of `rest` (".betas[1]" -> "betas"). */
static int value_holds(const json_t *v, const char *rest)
{
    if (!json_is_object(v) || rest[0] != '.')
        return 0;
    char key[SWEEP_PATH_MAX];
    size_t n = strcspn(rest + 1, ".[");
    if (n >= sizeof key)
        return 0;
    memcpy(key, rest + 1, n);
    key[n] = '\0';
    return json_object_get(v, key) != NULL;
}

/* Names where a combination's error comes from, the spec field itself appended: the grid
 * value at fault when field F is its path, lies below it inside that value ("optimizer" with
 * {"betas": ...} and F "optimizer.betas[1]": "grid.optimizer[1].betas[1]"), or lies above the
 * path; a path that names no field ("grid.optimizer.lrr"); else the base ("base.F"), e.g. a
 * field of the base's optimizer object that the grid value merged into it does not hold. */
static void blame(const sweep_grid *g, size_t c, const octet_err *err, char *field, size_t cap)
{
    size_t idx[SWEEP_GRID_MAX_PATHS];
    sweep_grid_indices(g, c, idx);
    const char *f = err->field;
    for (int p = g->n_paths - 1; p >= 0; p--) {
        const char *k = g->path[p];
        size_t nk = strlen(k), nf = strlen(f);
        int below = !strncmp(f, k, nk) && (f[nk] == '\0' || f[nk] == '.' || f[nk] == '[');
        int above = nf > 0 && !strncmp(k, f, nf) && k[nf] == '.';
        if (!below && !above)
            continue;
        const json_t *v = json_array_get(g->values[p], idx[p]);
        const char *rest = below ? f + nk : "";
        if (below && rest[0] == '.' && json_is_object(v) && !value_holds(v, rest))
            break; /* the base's part of a merged object */
        int unknown = !strcmp(f, k) &&
                      (strstr(err->message, "unknown field") || strstr(err->message, "is not a field"));
        if (unknown)
            snprintf(field, cap, "grid.%s", k);
        else
            snprintf(field, cap, "grid.%s[%zu]%s", k, idx[p], rest);
        return;
    }
    snprintf(field, cap, "base%s%s", *f ? "." : "", f);
}

typedef struct combo {
    json_t *values;             /* grid values */
    json_t *spec;               /* normalised */
    json_t *estimate;           /* its memory estimate */
    job_spec *parsed;
} combo;

static void free_combos(combo *cs, size_t n)
{
    for (size_t i = 0; cs && i < n; i++) {
        json_decref(cs[i].values);
        json_decref(cs[i].spec);
        json_decref(cs[i].estimate);
        free(cs[i].parsed);
    }
    free(cs);
}

/* Parses and checks every combination; replies 422 naming the culprit (or a store error)
 * and returns NULL when one fails. */
static combo *build_all(http_request *req, store *st, const sweep_grid *g, const json_t *base)
{
    api_ctx *app = req->app;
    combo *cs = calloc(g->combinations, sizeof *cs);
    if (!cs) {
        http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
        return NULL;
    }
    for (size_t c = 0; c < g->combinations; c++) {
        json_t *spec = sweep_grid_combination(g, base, c, &cs[c].values);
        cs[c].parsed = malloc(sizeof *cs[c].parsed);
        octet_err e;
        octet_err_clear(&e);
        int rc = !spec || !cs[c].parsed ? octet_fail(&e, OCTET_ERR_NOMEM, "", "out of memory")
                                        : spec_parse(spec, SPEC_SERVER, cs[c].parsed, &e);
        if (rc == OCTET_OK)
            rc = jobs_check_spec(st, app->data_dir, app->cuda_devices, cs[c].parsed, 0, &e);
        if (rc == OCTET_OK)
            rc = api_admit(app, st, cs[c].parsed, &cs[c].estimate, &e);
        if (rc == OCTET_OK && !(cs[c].spec = spec_to_json(cs[c].parsed)))
            rc = octet_fail(&e, OCTET_ERR_NOMEM, "", "out of memory");
        json_decref(spec);
        int blamed = rc == OCTET_ERR_ARG || rc == OCTET_ERR_NODEV || rc == OCTET_ERR_IO || rc == OCTET_ERR_FORMAT ||
                     (rc == OCTET_ERR_NOMEM && e.field[0]);
        if (blamed) {
            char field[SWEEP_PATH_MAX + 40];
            blame(g, c, &e, field, sizeof field);
            char *vals = json_dumps(cs[c].values, JSON_COMPACT | JSON_SORT_KEYS);
            const char *code = rc == OCTET_ERR_NOMEM ? "does_not_fit"
                               : rc == OCTET_ERR_ARG  ? "invalid_spec"
                                                      : "bad_data";
            http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, code, field,
                             "combination %zu (%s): %s%s%s", c + 1, vals ? vals : "", e.field, *e.field ? ": " : "",
                             e.message);
            free(vals);
        } else if (rc != OCTET_OK) {
            api_reply_spec_error(req, rc, &e);
        }
        if (rc != OCTET_OK) {
            free_combos(cs, g->combinations);
            return NULL;
        }
    }
    return cs;
}

/* "name [optimizer=adamw8bit training.seed=2]" for a job of the sweep: each grid value as
 * compact JSON without quotes, an object {"name": x} as x. Cut to cap. */
static void job_name(const char *sweep, const json_t *values, char *out, size_t cap)
{
    char buf[1024];
    size_t used = (size_t)snprintf(buf, sizeof buf, "%s%s[", sweep, *sweep ? " " : "");
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach((json_t *)values, k, v) {
        json_t *shown = json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "name")
                            ? json_object_get(v, "name") : v;
        char *text = json_dumps(shown, JSON_COMPACT | JSON_ENCODE_ANY);
        if (used < sizeof buf)
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s=%s", first ? "" : " ", k, text ? text : "?");
        free(text);
        first = 0;
    }
    if (used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "]");
    size_t o = 0;
    for (const char *q = buf; *q && o + 1 < cap; q++)
        if (*q != '"')
            out[o++] = *q;
    out[o] = '\0';
}

/* ------------------------------------------------------------------ the view */

/* {n, mean, min, max, std}; std is the sample standard deviation (null for n < 2). Two passes
 * over `xs` keep it exact enough; the values are few. */
static json_t *stats_json(const double *xs, int n)
{
    if (n == 0)
        return json_pack("{si sn sn sn sn}", "n", 0, "mean", "min", "max", "std");
    double mean = 0, lo = xs[0], hi = xs[0];
    for (int i = 0; i < n; i++) {
        mean += xs[i];
        lo = xs[i] < lo ? xs[i] : lo;
        hi = xs[i] > hi ? xs[i] : hi;
    }
    mean /= n;
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (xs[i] - mean) * (xs[i] - mean);
    json_t *std = n > 1 ? json_real(sqrt(ss / (n - 1))) : json_null();
    return json_pack("{si sf sf sf so}", "n", n, "mean", mean, "min", lo, "max", hi, "std", std);
}

/* Collects member `key` of every object in `objs` (skipping non-numbers) and summarises it. */
static json_t *summarise(json_t *objs, const char *key)
{
    size_t n = json_array_size(objs), i;
    double *xs = malloc((n ? n : 1) * sizeof *xs);
    int k = 0;
    json_t *o;
    json_array_foreach(objs, i, o) {
        json_t *v = json_object_get(o, key);
        if (xs && json_is_number(v) && isfinite(json_number_value(v)))
            xs[k++] = json_number_value(v);
    }
    json_t *s = xs ? stats_json(xs, k) : json_null();
    free(xs);
    return s;
}

static const char *const metrics[] = {"train_loss", "eval_loss", "eval_accuracy", "eval_f1", NULL};

/* Per epoch, the metrics' statistics over the group's jobs that reached it. */
static json_t *epoch_stats(json_t *jobs)
{
    int max_epoch = 0;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        json_t *eps = json_object_get(j, "epochs");
        json_t *last = json_array_get(eps, json_array_size(eps) - 1);
        int e = last ? (int)json_integer_value(json_object_get(last, "epoch")) : 0;
        max_epoch = e > max_epoch ? e : max_epoch;
    }
    json_t *out = json_array();
    for (int ep = 1; ep <= max_epoch; ep++) {
        json_t *rows = json_array();
        json_array_foreach(jobs, i, j) {
            size_t k;
            json_t *row;
            json_array_foreach(json_object_get(j, "epochs"), k, row)
                if (json_integer_value(json_object_get(row, "epoch")) == ep)
                    json_array_append(rows, row);
        }
        json_t *o = json_pack("{si si}", "epoch", ep, "n", (int)json_array_size(rows));
        for (int m = 0; metrics[m]; m++)
            json_object_set_new(o, metrics[m], summarise(rows, metrics[m]));
        json_array_append_new(out, o);
        json_decref(rows);
    }
    return out;
}

/* The final metrics (each succeeded job's last epoch), time and memory of a group. */
static void group_figures(json_t *group, json_t *jobs)
{
    json_t *finals = json_array(), *all_epochs = json_array(), *mems = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        json_t *eps = json_object_get(j, "epochs");
        if (!strcmp(json_string_value(json_object_get(j, "status")), STORE_SUCCEEDED) && json_array_size(eps))
            json_array_append(finals, json_array_get(eps, json_array_size(eps) - 1));
        size_t k;
        json_t *row;
        json_array_foreach(eps, k, row) {
            json_t *r = json_deep_copy(row);
            double secs = json_number_value(json_object_get(r, "train_seconds")) +
                          json_number_value(json_object_get(r, "eval_seconds"));
            json_object_set_new(r, "seconds", json_real(secs));
            json_array_append_new(all_epochs, r);
        }
        json_t *m = json_object_get(j, "memory");
        if (json_is_object(m)) {
            json_t *mm = json_deep_copy(m);
            double aw = json_number_value(json_object_get(m, "adamw_bytes"));
            if (aw > 0)
                json_object_set_new(mm, "relative_to_adamw",
                                    json_real(json_number_value(json_object_get(m, "optimizer_state_bytes")) / aw));
            json_array_append_new(mems, mm);
        }
    }
    json_t *final = json_object();
    for (int m = 0; metrics[m]; m++)
        json_object_set_new(final, metrics[m], summarise(finals, metrics[m]));
    json_object_set_new(group, "final", final);
    json_object_set_new(group, "seconds_per_epoch", summarise(all_epochs, "seconds"));
    json_object_set_new(group, "samples_per_second", summarise(all_epochs, "train_samples_per_second"));
    json_t *memory = json_object();
    static const char *const mkeys[] = {"parameters", "optimizer_state_bytes", "adamw_bytes", "relative_to_adamw",
                                        "peak_bytes", NULL};
    for (int m = 0; mkeys[m]; m++) { /* the same for every seed: the mean is that value */
        json_t *s = summarise(mems, mkeys[m]);
        double mean = json_number_value(json_object_get(s, "mean"));
        int bytes = strcmp(mkeys[m], "relative_to_adamw") != 0;
        json_object_set_new(memory, mkeys[m], !json_integer_value(json_object_get(s, "n")) ? json_null()
                                              : bytes ? json_integer((json_int_t)llround(mean)) : json_real(mean));
        json_decref(s);
    }
    json_object_set_new(group, "memory", memory);
    json_decref(finals);
    json_decref(all_epochs);
    json_decref(mems);
}

/* The grid values without the seed, as the group key; the seed into *seed (null if none). */
static json_t *group_key(const json_t *values, json_t **seed)
{
    json_t *k = json_deep_copy(values);
    *seed = json_incref(json_object_get(values, SEED_PATH));
    json_object_del(k, SEED_PATH);
    return k;
}

static json_t *group_of(json_t *groups, const json_t *key)
{
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
        if (json_equal(json_object_get(g, "key"), key))
            return g;
    g = json_pack("{sO s[] s[] s[]}", "key", key, "jobs", "seeds", "members");
    json_array_append_new(groups, g);
    return g;
}

static json_t *status_counts(json_t *jobs)
{
    json_t *c = json_object();
    for (int i = 0; i < 5; i++)
        json_object_set_new(c, store_statuses[i], json_integer(0));
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        const char *s = json_string_value(json_object_get(j, "status"));
        json_object_set_new(c, s, json_integer(json_integer_value(json_object_get(c, s)) + 1));
    }
    return c;
}

/* The sweep's status from its jobs' counts: queued, running, succeeded, failed or cancelled. */
static const char *sweep_status(const json_t *counts)
{
    json_int_t q = json_integer_value(json_object_get(counts, STORE_QUEUED)),
               r = json_integer_value(json_object_get(counts, STORE_RUNNING)),
               s = json_integer_value(json_object_get(counts, STORE_SUCCEEDED)),
               f = json_integer_value(json_object_get(counts, STORE_FAILED)),
               c = json_integer_value(json_object_get(counts, STORE_CANCELLED));
    if (r || (q && (s || f || c)))
        return STORE_RUNNING;
    if (q)
        return STORE_QUEUED;
    return f ? STORE_FAILED : c ? STORE_CANCELLED : STORE_SUCCEEDED;
}

static json_t *groups_view(json_t *jobs)
{
    json_t *groups = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) {
        json_t *seed = NULL, *key = group_key(json_object_get(j, "grid_values"), &seed);
        json_t *g = group_of(groups, key);
        json_array_append_new(json_object_get(g, "jobs"), json_integer(json_integer_value(json_object_get(j, "id"))));
        json_array_append_new(json_object_get(g, "seeds"), seed ? seed : json_null());
        json_array_append(json_object_get(g, "members"), j);
        json_decref(key);
    }
    json_array_foreach(groups, i, j) {
        json_t *members = json_object_get(j, "members");
        json_object_set_new(j, "counts", status_counts(members));
        json_object_set_new(j, "epochs", epoch_stats(members));
        group_figures(j, members);
        json_object_del(j, "members");
    }
    return groups;
}

/* Replies with sweep id's view and `status`; a 200 is also cached under cache_key (NULL: not)
 * at `generation`. */
static enum MHD_Result reply_sweep(http_request *req, store *st, int64_t id, unsigned status, const char *cache_key,
                                   uint64_t generation)
{
    json_t *sweep = NULL, *jobs = NULL;
    octet_err e;
    if (store_sweep_get(st, id, &sweep, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (!sweep)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no sweep %lld", (long long)id);
    if (store_sweep_jobs(st, id, &jobs, &e) != OCTET_OK) {
        json_decref(sweep);
        return api_reply_store_error(req, &e);
    }
    json_t *counts = status_counts(jobs), *ids = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
        json_array_append_new(ids, json_integer(json_integer_value(json_object_get(j, "id"))));
    json_object_set_new(sweep, "status", json_string(sweep_status(counts)));
    json_object_set_new(sweep, "counts", counts);
    json_object_set_new(sweep, "jobs", ids);
    json_object_set_new(sweep, "seed_path", json_string(SEED_PATH));
    json_object_set_new(sweep, "groups", groups_view(jobs));
    char self[64], jobs_url[96];
    snprintf(self, sizeof self, HTTP_API_PREFIX "/sweeps/%lld", (long long)id);
    snprintf(jobs_url, sizeof jobs_url, HTTP_API_PREFIX "/jobs?sweep=%lld", (long long)id);
    json_object_set_new(sweep, "links", json_pack("{ss ss}", "self", self, "jobs", jobs_url));
    json_decref(jobs);
    if (cache_key && status == MHD_HTTP_OK)
        return api_reply_json_cached(req, sweep, cache_key, generation);
    return http_reply_json(req, status, sweep);
}

/* ------------------------------------------------------------------ handlers */

static int sweep_id(http_request *req, int64_t *id)
{
    char *end = NULL;
    const char *s = req->args[0];
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v <= 0 || s[0] == '+' || s[0] == '0') {
        http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no sweep %.40s: sweep ids are positive integers",
                         s);
        return 0;
    }
    *id = v;
    return 1;
}

/* Checks the request's shape: {"name"?, "base", "grid"}; replies 422 otherwise. */
static int read_request(http_request *req, const char **name, json_t **base, json_t **g)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)req->body, key, v)
        if (strcmp(key, "name") && strcmp(key, "base") && strcmp(key, "grid")) {
            http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_sweep", key,
                             "unknown field; a sweep has name, base and grid");
            return 0;
        }
    json_t *n = json_object_get(req->body, "name");
    if (n && (!json_is_string(n) || json_string_length(n) >= SPEC_NAME_MAX)) {
        http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_sweep", "name",
                         "must be a string of at most %d bytes", SPEC_NAME_MAX - 1);
        return 0;
    }
    *name = n ? json_string_value(n) : "";
    *base = json_object_get(req->body, "base");
    if (!json_is_object(*base)) {
        http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_sweep", "base",
                         "is required: the job spec every combination starts from");
        return 0;
    }
    *g = json_object_get(req->body, "grid");
    return 1;
}

static enum MHD_Result dry_run_reply(http_request *req, combo *cs, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{sO sO sO}", "grid_values", cs[i].values, "spec", cs[i].spec,
                                              "estimate", cs[i].estimate ? cs[i].estimate : json_null()));
    return http_reply_json(req, MHD_HTTP_OK, json_pack("{sb sI so}", "valid", 1, "count", (json_int_t)n,
                                                       "combinations", list));
}

/* Creates the sweep and its jobs; replies 201 with the view. */
static enum MHD_Result create(http_request *req, store *st, const char *name, const sweep_grid *g, combo *cs)
{
    api_ctx *app = req->app;
    size_t n = g->combinations;
    store_new_job *jobs = calloc(n, sizeof *jobs);
    int64_t *ids = calloc(n, sizeof *ids);
    char **texts = calloc(3 * n, sizeof *texts);
    char (*names)[SPEC_NAME_MAX] = calloc(n, sizeof *names);
    char (*models)[SPEC_PATH_MAX + 16] = calloc(n, sizeof *models);
    char *base = json_dumps(json_object_get(req->body, "base"), JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *grid_text = json_dumps(g->obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    int ok = jobs && ids && texts && names && models && base && grid_text;
    for (size_t i = 0; ok && i < n; i++) {
        const job_spec *s = cs[i].parsed;
        texts[3 * i] = json_dumps(cs[i].spec, JSON_COMPACT | JSON_REAL_PRECISION(17));
        texts[3 * i + 1] = json_dumps(cs[i].values, JSON_COMPACT | JSON_REAL_PRECISION(17));
        job_name(*s->name ? s->name : name, cs[i].values, names[i], sizeof names[i]);
        spec_model_label(s, models[i], sizeof models[i]);
        ok = texts[3 * i] && texts[3 * i + 1];
        jobs[i] = (store_new_job){.name = names[i], .spec = texts[3 * i], .arch = spec_arch_name(s->model.arch),
                                  .model = models[i],
                                  .optimizer = optim_kind_name(s->optimizer.cfg.kind),
                                  .dataset = s->dataset.name[0] ? s->dataset.name : s->dataset.train_file,
                                  .grid_values = texts[3 * i + 1]};
    }
    int64_t id = 0;
    octet_err e;
    int rc = ok ? store_sweep_insert(st, name, base, grid_text, jobs, (int)n, &id, ids, &e)
                : octet_fail(&e, OCTET_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; texts && i < 3 * n; i++)
        free(texts[i]);
    free(texts);
    free(names);
    free(models);
    free(jobs);
    free(base);
    free(grid_text);
    if (rc != OCTET_OK) {
        free(ids);
        return rc == OCTET_ERR_NOMEM ? http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL,
                                                        "out of memory")
                                     : api_reply_store_error(req, &e);
    }
    for (size_t i = 0; i < n; i++)
        jobs_hub_notify(app->hub, ids[i]);
    free(ids);
    jobs_wake(app->jobs);
    log_info("sweep %lld queued: %zu jobs", (long long)id, n);
    char location[64];
    snprintf(location, sizeof location, HTTP_API_PREFIX "/sweeps/%lld", (long long)id);
    http_reply_header(req, MHD_HTTP_HEADER_LOCATION, location);
    return reply_sweep(req, st, id, MHD_HTTP_CREATED, NULL, 0);
}

enum MHD_Result api_sweeps_post(http_request *req)
{
    api_ctx *app = req->app;
    const char *dry = http_query(req, "dry_run");
    int dry_run = dry && (!strcmp(dry, "1") || !strcmp(dry, "true") || !*dry);
    if (dry && !dry_run && strcmp(dry, "0") && strcmp(dry, "false"))
        return http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", "dry_run",
                                "dry_run must be 1, true, 0 or false");
    const char *name;
    json_t *base, *gobj;
    sweep_grid g;
    if (!read_request(req, &name, &base, &gobj))
        return MHD_YES;
    octet_err ge;
    int grc = sweep_grid_read(gobj, app->max_sweep, &g, &ge);
    if (grc != OCTET_OK)
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                grc == OCTET_ERR_MISMATCH ? "sweep_too_large" : "invalid_sweep", ge.field, "%s",
                                ge.message);
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    if (app->stopping) {
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "10");
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down", NULL,
                                "the server is stopping; submit again when it is back");
    }
    combo *cs = build_all(req, st, &g, base);
    if (!cs)
        return MHD_YES;
    enum MHD_Result r;
    int64_t queued = 0;
    octet_err e;
    if (dry_run)
        r = dry_run_reply(req, cs, g.combinations);
    else if (store_queue_length(st, &queued, &e) != OCTET_OK)
        r = api_reply_store_error(req, &e);
    else if (queued + (int64_t)g.combinations > app->max_queued) {
        http_reply_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "30");
        r = http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "queue_full", NULL,
                             "%lld jobs are queued; %zu more would pass this server's --max-queued (%lld)",
                             (long long)queued, g.combinations, (long long)app->max_queued);
    } else
        r = create(req, st, name, &g, cs);
    free_combos(cs, g.combinations);
    return r;
}

enum MHD_Result api_sweeps_list(http_request *req)
{
    int64_t limit, cursor;
    if (!api_query_int(req, "limit", LIST_DEFAULT, 1, LIST_MAX, &limit) ||
        !api_query_int(req, "cursor", 0, 1, INT64_MAX, &cursor))
        return MHD_YES;
    char key[64];
    snprintf(key, sizeof key, "sweeps\x1f%lld\x1f%lld", (long long)limit, (long long)cursor);
    uint64_t generation = store_generation(); /* before any read */
    int replied = 0;
    enum MHD_Result r = api_reply_from_cache(req, key, generation, &replied);
    if (replied)
        return r;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    json_t *items = NULL;
    int64_t next = 0;
    octet_err e;
    if (store_sweep_list(st, cursor, (int)limit, &items, &next, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    size_t i;
    json_t *s;
    json_array_foreach(items, i, s) {
        json_object_set_new(s, "status", json_string(sweep_status(json_object_get(s, "counts"))));
        char self[64];
        snprintf(self, sizeof self, HTTP_API_PREFIX "/sweeps/%lld",
                 (long long)json_integer_value(json_object_get(s, "id")));
        json_object_set_new(s, "links", json_pack("{ss}", "self", self));
    }
    char c[32];
    snprintf(c, sizeof c, "%lld", (long long)next);
    return api_reply_json_cached(req, json_pack("{so so}", "sweeps", items, "next_cursor",
                                                next ? json_string(c) : json_null()), key, generation);
}

enum MHD_Result api_sweep_get(http_request *req)
{
    int64_t id;
    if (!sweep_id(req, &id))
        return MHD_YES;
    char key[64];
    snprintf(key, sizeof key, "sweep\x1f%lld", (long long)id);
    uint64_t generation = store_generation(); /* before any read */
    int replied = 0;
    enum MHD_Result r = api_reply_from_cache(req, key, generation, &replied);
    if (replied)
        return r;
    store *st = api_store(req);
    return st ? reply_sweep(req, st, id, MHD_HTTP_OK, key, generation) : MHD_YES;
}

enum MHD_Result api_sweep_cancel(http_request *req)
{
    api_ctx *app = req->app;
    int64_t id;
    if (!sweep_id(req, &id))
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    int found = 0, n = 0;
    int64_t running[256];
    octet_err e;
    if (store_sweep_cancel(st, id, &found, running, 256, &n, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (!found)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no sweep %lld", (long long)id);
    for (int i = 0; i < n; i++)
        jobs_cancel(app->jobs, running[i]);
    json_t *jobs = NULL;
    if (store_sweep_jobs(st, id, &jobs, &e) == OCTET_OK) {
        size_t i;
        json_t *j;
        json_array_foreach(jobs, i, j)
            jobs_hub_notify(app->hub, json_integer_value(json_object_get(j, "id")));
        json_decref(jobs);
    }
    return reply_sweep(req, st, id, n ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK, NULL, 0);
}

enum MHD_Result api_sweep_delete(http_request *req)
{
    api_ctx *app = req->app;
    int64_t id;
    if (!sweep_id(req, &id))
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    int outcome = 0, n = 0;
    int64_t *ids = malloc(4096 * sizeof *ids);
    octet_err e;
    if (!ids)
        return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
    if (store_sweep_delete(st, id, &outcome, ids, 4096, &n, &e) != OCTET_OK) {
        free(ids);
        return api_reply_store_error(req, &e);
    }
    enum MHD_Result r;
    if (outcome == STORE_NO_JOB)
        r = http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no sweep %lld", (long long)id);
    else if (outcome == STORE_DELETE_ACTIVE)
        r = http_reply_error(req, MHD_HTTP_CONFLICT, "sweep_active", NULL,
                             "sweep %lld has queued or running jobs; cancel it first", (long long)id);
    else {
        for (int i = 0; i < n; i++) {
            jobs_remove_checkpoints(app->data_dir, ids[i]);
            jobs_hub_notify(app->hub, ids[i]);
        }
        log_info("sweep %lld deleted with its %d jobs", (long long)id, n);
        r = http_reply_no_content(req);
    }
    free(ids);
    return r;
}
