/* hfdir.c: Hugging Face model directories (hfdir.h): reading config.json, vocab.txt and
 * model.safetensors into a DistilBERT to fine-tune from, matching tensor names as
 * Transformers does and reporting unused and freshly initialised tensors; and writing a
 * model's weights and configuration back in the same layout. */
#define LOG_PREFIX "hfdir"
#include "config.h"
#include "hfdir.h"
#include "fileio.h"
#include "log.h"
#include "mlp.h"
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASE_PREFIX "distilbert."

/* ------------------------------------------------------------------ the report */

void hfdir_report_free(hfdir_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_unused; i++)
        free(r->unused[i]);
    for (int i = 0; i < r->n_fresh; i++)
        free(r->fresh[i]);
    free(r->unused);
    free(r->fresh);
    memset(r, 0, sizeof *r);
}

/* "[a, b, c]" of a name list into buf (truncated with "..." when it does not fit). */
static void join_names(char *buf, size_t cap, char *const *names, int n)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s'%s'", i ? ", " : "", names[i]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
    else if (cap > 4)
        strcpy(buf + cap - 5, "...]");
}

void hfdir_report_log(const hfdir_report *r, const char *source, const char *arch)
{
    char list[2048];
    if (r->n_unused) {
        join_names(list, sizeof list, r->unused, r->n_unused);
        log_warn("Some weights of the model checkpoint at %s were not used when initializing %s: %s", source, arch, list);
    }
    if (r->n_fresh) {
        join_names(list, sizeof list, r->fresh, r->n_fresh);
        log_warn("Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                 "initialized: %s", arch, source, list);
    }
    log_info("loaded %d tensors from %s", r->n_loaded, source);
}

/* Appends a copy of name to a list. OCTET_ERR_NOMEM only. */
static int push_name(char ***list, int *n, const char *name)
{
    char **grown = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return OCTET_ERR_NOMEM;
    *list = grown;
    if (!(grown[*n] = strdup(name)))
        return OCTET_ERR_NOMEM;
    (*n)++;
    return OCTET_OK;
}

/* ------------------------------------------------------------------ loading weights */

/* The checkpoint tensor that parameter `name` takes: the same name, else the name without
 * the base-model prefix; NULL when neither is there. */
static const octet_st_tensor *match(const octet_st_file *f, const char *name)
{
    const octet_st_tensor *t = octet_st_find(f, name);
    if (!t && !strncmp(name, BASE_PREFIX, strlen(BASE_PREFIX)))
        t = octet_st_find(f, name + strlen(BASE_PREFIX));
    return t;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < ndim && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

/* Checks that every matched tensor has its parameter's shape; fills taken[] (per checkpoint
 * tensor, by index) and the fresh list. */
static int check_shapes(model *m, const octet_st_file *f, const char *path, char *taken, hfdir_report *rep,
                        octet_err *e)
{
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        const octet_st_tensor *t = match(f, p->name);
        if (!t) {
            if (push_name(&rep->fresh, &rep->n_fresh, p->name))
                return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
            continue;
        }
        int same = t->ndim == p->ndim;
        for (int k = 0; same && k < p->ndim; k++)
            same = t->shape[k] == p->shape[k];
        if (!same) {
            char want[96], got[96];
            shape_str(want, sizeof want, p->ndim, p->shape);
            shape_str(got, sizeof got, t->ndim, t->shape);
            return octet_fail(e, OCTET_ERR_MISMATCH, "model.path",
                              "%s: tensor %s has shape %s, but the model's %s is %s", path, t->name, got, p->name, want);
        }
        for (size_t j = 0; j < octet_st_count(f); j++)
            if (octet_st_at(f, j) == t)
                taken[j] = 1;
    }
    return OCTET_OK;
}

/* The unused list: checkpoint tensors nothing took, except position_ids buffers. */
static int list_unused(const octet_st_file *f, const char *taken, hfdir_report *rep, octet_err *e)
{
    for (size_t j = 0; j < octet_st_count(f); j++) {
        const char *name = octet_st_at(f, j)->name;
        size_t len = strlen(name);
        if (taken[j] || (len >= 12 && !strcmp(name + len - 12, "position_ids")))
            continue;
        if (push_name(&rep->unused, &rep->n_unused, name))
            return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    return OCTET_OK;
}

/* Copies every matched tensor into its parameter through one host buffer. */
static int copy_tensors(model *m, const octet_st_file *f, hfdir_report *rep, octet_err *e)
{
    int64_t most = 1;
    for (int i = 0; i < m->n_params; i++)
        most = m->params[i].n > most ? m->params[i].n : most;
    float *buf = malloc((size_t)most * sizeof *buf);
    if (!buf)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory reading the checkpoint");
    int rc = OCTET_OK;
    for (int i = 0; i < m->n_params && rc == OCTET_OK; i++) {
        const octet_st_tensor *t = match(f, m->params[i].name);
        if (!t)
            continue;
        rc = octet_st_read_f32(f, t->name, buf, (size_t)m->params[i].n, e);
        if (rc == OCTET_OK && (rc = model_param_set(m, i, buf)) != OCTET_OK)
            octet_fail(e, rc, "", "could not copy %s to the device", m->params[i].name);
        rep->n_loaded += rc == OCTET_OK;
    }
    free(buf);
    return rc;
}

int hfdir_load_weights(model *m, const char *path, int strict, hfdir_report *rep_out, octet_err *e)
{
    hfdir_report rep = {0};
    if (rep_out)
        memset(rep_out, 0, sizeof *rep_out);
    octet_st_file *f = NULL;
    int rc = octet_st_open(path, &f, e);
    if (rc != OCTET_OK) { /* the reader names the file; the spec field that chose it is model.path */
        if (e)
            snprintf(e->field, sizeof e->field, "model.path");
        return rc;
    }
    char *taken = calloc(octet_st_count(f) + 1, 1);
    rc = taken ? check_shapes(m, f, path, taken, &rep, e) : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    if (rc == OCTET_OK)
        rc = list_unused(f, taken, &rep, e);
    if (rc == OCTET_OK && strict && (rep.n_unused || rep.n_fresh))
        rc = octet_fail(e, OCTET_ERR_MISMATCH, "model.path", "%s does not fit the model: %s%s%s", path,
                        rep.n_fresh ? rep.fresh[0] : rep.unused[0],
                        rep.n_fresh ? " is missing" : " is not a parameter of the model",
                        rep.n_fresh + rep.n_unused > 1 ? " (and more)" : "");
    if (rc == OCTET_OK)
        rc = copy_tensors(m, f, &rep, e);
    free(taken);
    octet_st_close(f);
    if (rc != OCTET_OK || !rep_out)
        hfdir_report_free(&rep);
    else
        *rep_out = rep;
    return rc;
}

/* ------------------------------------------------------------------ directories */

/* The tokenizer of dir (NULL without vocab.txt), checked against the config's vocabulary. */
static int read_tokenizer(const char *dir, const distilbert_config *cfg, octet_tokenizer **tok, octet_err *e)
{
    char *vocab = octet_join_path(dir, "vocab.txt");
    if (!vocab)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    int present = access(vocab, F_OK) == 0;
    free(vocab);
    if (!present)
        return OCTET_OK;
    int rc = octet_tok_load_dir(dir, tok, e);
    if (rc != OCTET_OK) { /* the tokenizer names its file; the spec field that chose it is model.path */
        if (e)
            snprintf(e->field, sizeof e->field, "model.path");
        return rc;
    }
    size_t V = octet_tok_vocab_size(*tok);
    if (V > (size_t)cfg->vocab_size) {
        octet_tok_free(*tok);
        *tok = NULL;
        return octet_fail(e, OCTET_ERR_FORMAT, "model.path",
                          "%s: vocab.txt has %zu tokens but config.json's vocab_size is %d", dir, V, cfg->vocab_size);
    }
    if (octet_tok_special_id(*tok, OCTET_TOK_PAD) != cfg->pad_token_id)
        log_warn("%s: [PAD] is token %d but config.json's pad_token_id is %d", dir,
                 (int)octet_tok_special_id(*tok, OCTET_TOK_PAD), cfg->pad_token_id);
    return OCTET_OK;
}

int hfdir_read_config(const char *dir, distilbert_config *cfg, octet_tokenizer **tok, octet_err *e)
{
    if (tok)
        *tok = NULL;
    char *path = octet_join_path(dir, "config.json");
    if (!path)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    distilbert_config_default(cfg);
    int rc = distilbert_config_load(path, cfg, e);
    free(path);
    if (rc == OCTET_OK && tok)
        rc = read_tokenizer(dir, cfg, tok, e);
    return rc;
}

int hfdir_load_distilbert(device *d, const char *dir, const hfdir_options *o, model **out, octet_tokenizer **tok,
                          hfdir_report *rep, octet_err *e)
{
    *out = NULL;
    if (rep)
        memset(rep, 0, sizeof *rep);
    distilbert_config cfg;
    int rc = hfdir_read_config(dir, &cfg, tok, e);
    if (rc == OCTET_OK && o->num_labels > 0)
        cfg.num_labels = o->num_labels;
    if (rc == OCTET_OK && o->dropout >= 0.0f)
        rc = distilbert_config_set_dropout(&cfg, o->dropout, e);
    model *m = NULL;
    if (rc == OCTET_OK)
        rc = distilbert_create_ex(d, &cfg, o->max_batch, o->max_len, o->seed, o->act, &m, e);
    char *weights = rc == OCTET_OK ? octet_join_path(dir, "model.safetensors") : NULL;
    if (rc == OCTET_OK)
        rc = weights ? hfdir_load_weights(m, weights, 0, rep, e) : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    free(weights);
    if (rc != OCTET_OK) {
        model_destroy(m);
        if (tok && *tok) {
            octet_tok_free(*tok);
            *tok = NULL;
        }
        return rc;
    }
    *out = m;
    return OCTET_OK;
}

/* ------------------------------------------------------------------ saving */

/* The config.json of an MLP. */
static json_t *mlp_config_json(const mlp_shape *s)
{
    json_t *hidden = json_array();
    for (int i = 0; hidden && i < s->n_hidden; i++)
        json_array_append_new(hidden, json_integer(s->hidden[i]));
    return json_pack("{s:[s], s:s, s:i, s:o, s:i}", "architectures", "MLP", "model_type", "octet-mlp", "in_features",
                     s->in_features, "hidden", hidden, "num_labels", s->num_labels);
}

/* Writes text to path atomically (temporary file, fsync, rename). */
static int write_atomic(const char *path, const char *text, octet_err *e)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t len = strlen(text);
    int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int err = errno;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        err = errno ? errno : err;
        unlink(tmp);
        free(tmp);
        return octet_fail(e, OCTET_ERR_IO, "", "cannot write %s: %s", path, strerror(err));
    }
    free(tmp);
    return OCTET_OK;
}

static int save_config(model *m, const char *dir, octet_err *e)
{
    const distilbert_config *cfg = distilbert_config_of(m);
    mlp_shape s;
    json_t *j = cfg ? distilbert_config_to_json(cfg) : mlp_shape_of(m, &s) == OCTET_OK ? mlp_config_json(&s) : NULL;
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    char *path = octet_join_path(dir, "config.json");
    json_decref(j);
    int rc = text && path ? write_atomic(path, text, e) : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    free(text);
    free(path);
    return rc;
}

/* Downloads every parameter into one host buffer and writes them as F32. */
static int save_weights(model *m, const char *dir, octet_err *e)
{
    float *host = malloc((size_t)m->n_parameters * sizeof *host);
    octet_st_writer *w = octet_st_writer_new();
    char *path = octet_join_path(dir, "model.safetensors");
    int rc = host && w && path ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    if (rc == OCTET_OK)
        rc = octet_st_writer_set_metadata(w, "format", "pt", e);
    float *at = host;
    for (int i = 0; i < m->n_params && rc == OCTET_OK; i++) {
        const model_param *p = &m->params[i];
        if ((rc = model_param_get(m, i, at)) != OCTET_OK)
            octet_fail(e, rc, "", "could not read %s from the device", p->name);
        else
            rc = octet_st_writer_add(w, p->name, OCTET_ST_F32, p->ndim, p->shape, at, e);
        at += p->n;
    }
    if (rc == OCTET_OK)
        rc = octet_st_writer_write(w, path, e);
    octet_st_writer_free(w);
    free(host);
    free(path);
    return rc;
}

int hfdir_save(model *m, const char *dir, octet_err *e)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return octet_fail(e, OCTET_ERR_IO, "", "cannot create %s: %s", dir, strerror(errno));
    int rc = save_weights(m, dir, e);
    if (rc == OCTET_OK)
        rc = save_config(m, dir, e);
    return rc;
}
