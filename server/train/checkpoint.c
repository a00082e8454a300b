/* checkpoint.c: writing and reading the checkpoints of a run (checkpoint.h): a
 * temporary directory filled and fsync'ed, then renamed into place; the reader checks every
 * tensor's name and shape against the model. */
#include "config.h"
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileio.h"
#include "train/safetensors.h"

#define CKPT_PREFIX "checkpoint-"
#define CKPT_STATE_MAX ((size_t)256 << 20) /* the trainer state JSON (metrics grow with epochs) */

/* out = a/b; returns 0, or -1 when it does not fit (out is then empty). */
static int join(char *out, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb + 1 > cap) {
        if (cap)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return 0;
}

/* mkdir -p of one or two levels; OCTET_ERR_IO naming the path. */
static int make_dirs(const char *dir, octet_err *e)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "path too long: %s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot create %s: %s", buf, strerror(errno));
    return OCTET_OK;
}

int ckpt_check_dir(const char *dir, octet_err *e)
{
    int rc = make_dirs(dir, e);
    if (rc != OCTET_OK)
        return rc;
    char probe[PATH_MAX], name[64];
    snprintf(name, sizeof name, ".octet-probe-%ld", (long)getpid());
    if (join(probe, sizeof probe, dir, name))
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "path too long: %s", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot write in %s: %s", dir, strerror(errno));
    close(fd);
    if (unlink(probe))
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot remove %s: %s", probe, strerror(errno));
    return OCTET_OK;
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Removes a checkpoint directory and the files in it (no deeper levels exist). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        char f[PATH_MAX];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            join(f, sizeof f, path, de->d_name);
            unlink(f);
        }
        closedir(d);
    }
    rmdir(path);
}

/* The step of a name "checkpoint-<n>" (decimal digits, no suffix), or -1. */
static int64_t step_of(const char *name)
{
    if (strncmp(name, CKPT_PREFIX, strlen(CKPT_PREFIX)))
        return -1;
    const char *p = name + strlen(CKPT_PREFIX);
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || *end || *p < '0' || *p > '9' || v < 0 || errno)
        return -1;
    return (int64_t)v;
}

/* ------------------------------------------------------------------ weights */

int ckpt_save_weights(const char *file, model *m, octet_err *e)
{
    octet_st_writer *w = octet_st_writer_new();
    float **host = calloc((size_t)m->n_params + 1, sizeof *host);
    int rc = w && host ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory saving the weights");
    for (int i = 0; rc == OCTET_OK && i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        host[i] = malloc((size_t)p->n * sizeof(float));
        if (!host[i])
            rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory saving %s", p->name);
        else if ((rc = model_param_get(m, i, host[i])) != OCTET_OK)
            rc = octet_fail(e, rc, "", "could not read %s back from the device", p->name);
        else
            rc = octet_st_writer_add(w, p->name, OCTET_ST_F32, p->ndim, p->shape, host[i], e);
    }
    if (rc == OCTET_OK)
        rc = octet_st_writer_set_metadata(w, "format", "pt", e);
    if (rc == OCTET_OK)
        rc = octet_st_writer_write(w, file, e);
    for (int i = 0; host && i < m->n_params; i++)
        free(host[i]);
    free(host);
    octet_st_writer_free(w);
    return rc;
}

static int load_one(octet_st_file *f, const char *file, model *m, int i, float *buf, octet_err *e)
{
    const model_param *p = &m->params[i];
    const octet_st_tensor *t = octet_st_find(f, p->name);
    if (!t)
        return octet_fail(e, OCTET_ERR_MISMATCH, "checkpoint", "%s has no tensor %s", file, p->name);
    int same = t->ndim == p->ndim;
    for (int k = 0; same && k < p->ndim; k++)
        same = t->shape[k] == p->shape[k];
    if (!same)
        return octet_fail(e, OCTET_ERR_MISMATCH, "checkpoint", "%s: tensor %s has another shape than the model's",
                          file, p->name);
    int rc = octet_st_read_f32(f, p->name, buf, (size_t)p->n, e);
    if (rc == OCTET_OK && (rc = model_param_set(m, i, buf)) != OCTET_OK)
        rc = octet_fail(e, rc, "checkpoint", "could not upload %s", p->name);
    return rc;
}

int ckpt_load_weights(const char *file, model *m, octet_err *e)
{
    octet_st_file *f = NULL;
    int rc = octet_st_open(file, &f, e);
    if (rc != OCTET_OK)
        return rc;
    int64_t most = 1;
    for (int i = 0; i < m->n_params; i++)
        most = m->params[i].n > most ? m->params[i].n : most;
    float *buf = malloc((size_t)most * sizeof *buf);
    if (!buf)
        rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory loading %s", file);
    for (int i = 0; rc == OCTET_OK && i < m->n_params; i++)
        rc = load_one(f, file, m, i, buf, e);
    free(buf);
    octet_st_close(f);
    return rc;
}

/* ------------------------------------------------------------------ save */

static int write_optim(const char *file, optim *o, octet_err *e)
{
    FILE *f = fopen(file, "wb");
    if (!f)
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot create %s: %s", file, strerror(errno));
    int rc = optim_save(o, f, e);
    if (rc == OCTET_OK && (fflush(f) || fsync(fileno(f))))
        rc = octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot write %s: %s", file, strerror(errno));
    if (fclose(f) && rc == OCTET_OK)
        rc = octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot write %s: %s", file, strerror(errno));
    return rc;
}

static int write_state(const char *file, const json_t *state, octet_err *e)
{
    FILE *f = fopen(file, "w");
    if (!f)
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot create %s: %s", file, strerror(errno));
    int rc = json_dumpf(state, f, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) ? OCTET_ERR_IO : OCTET_OK;
    if (rc == OCTET_OK && (fputc('\n', f) == EOF || fflush(f) || fsync(fileno(f))))
        rc = OCTET_ERR_IO;
    if (fclose(f))
        rc = OCTET_ERR_IO;
    return rc ? octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot write %s: %s", file, strerror(errno)) : rc;
}

/* Removes every checkpoint-<n> with n != keep, and stale .tmp directories. */
static void prune(const char *dir, int64_t keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        int64_t ep = step_of(de->d_name);
        size_t len = strlen(de->d_name);
        int stale = !strncmp(de->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) && len > 4 &&
                    !strcmp(de->d_name + len - 4, ".tmp");
        if ((ep >= 0 && ep != keep) || stale) {
            join(path, sizeof path, dir, de->d_name);
            remove_tree(path);
        }
    }
    closedir(d);
}

static int fill_tmp(const char *tmp, model *m, optim *o, const json_t *state, octet_err *e)
{
    char file[PATH_MAX];
    join(file, sizeof file, tmp, CKPT_WEIGHTS);
    int rc = ckpt_save_weights(file, m, e);
    join(file, sizeof file, tmp, CKPT_OPTIM);
    if (rc == OCTET_OK)
        rc = write_optim(file, o, e);
    join(file, sizeof file, tmp, CKPT_STATE);
    if (rc == OCTET_OK)
        rc = write_state(file, state, e);
    return rc;
}

/* About how many bytes a checkpoint of m and o takes: the fp32 weights and the optimizer's
 * state (the trainer state's JSON is a few KiB more). */
static size_t checkpoint_bytes(const model *m, const optim *o)
{
    size_t bytes = (size_t)m->n_parameters * sizeof(float);
    if (o) {
        optim_state_bytes sb;
        optim_state_bytes_total(o, &sb);
        bytes += sb.total;
    }
    return bytes;
}

/* Appends to e's message what a failed write needed and what the file system under dir has
 * free, so that a full disk reads as one: "... (the checkpoint needs about N bytes; M are free
 * in DIR)". */
static void add_space(octet_err *e, const char *dir, size_t need)
{
    size_t len = strlen(e->message);
    snprintf(e->message + len, sizeof e->message - len, " (the checkpoint needs about %zu bytes; %llu are free in %s)",
             need, octet_free_bytes(dir), dir);
}

int ckpt_save(const char *dir, int64_t step, model *m, optim *o, const json_t *state, octet_err *e)
{
    char tmp[PATH_MAX], final[PATH_MAX], name[40];
    snprintf(name, sizeof name, CKPT_PREFIX "%lld", (long long)step);
    if (join(final, sizeof final - 8, dir, name))
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "path too long: %s", dir);
    memcpy(tmp, final, strlen(final));
    strcpy(tmp + strlen(final), ".tmp");
    int rc = make_dirs(dir, e);
    if (rc != OCTET_OK)
        return rc;
    remove_tree(tmp);
    if (mkdir(tmp, 0755))
        return octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot create %s: %s", tmp, strerror(errno));
    if ((rc = fill_tmp(tmp, m, o, state, e)) != OCTET_OK) {
        remove_tree(tmp);
        if (rc == OCTET_ERR_IO)
            add_space(e, dir, checkpoint_bytes(m, o));
        return rc;
    }
    fsync_path(tmp);
    remove_tree(final); /* a stale one from an earlier run in the same directory */
    if (rename(tmp, final)) {
        rc = octet_fail(e, OCTET_ERR_IO, "checkpoint_dir", "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        remove_tree(tmp);
        return rc;
    }
    fsync_path(dir);
    prune(dir, step);
    return OCTET_OK;
}

/* ------------------------------------------------------------------ find and load */

int ckpt_find_latest(const char *dir, int64_t *step, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int64_t best = -1;
    struct dirent *de;
    char state[PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        int64_t ep = step_of(de->d_name);
        if (ep <= best)
            continue;
        char sub[PATH_MAX];
        if (join(sub, sizeof sub, dir, de->d_name) == 0 && join(state, sizeof state, sub, CKPT_STATE) == 0 &&
            access(state, R_OK) == 0)
            best = ep;
    }
    closedir(d);
    if (best < 0)
        return 0;
    char name[40];
    snprintf(name, sizeof name, CKPT_PREFIX "%lld", (long long)best);
    *step = best;
    return join(path, cap, dir, name) == 0;
}

int ckpt_load(const char *path, model *m, optim *o, json_t **state, octet_err *e)
{
    char file[PATH_MAX];
    *state = NULL;
    join(file, sizeof file, path, CKPT_STATE);
    char *text = NULL;
    size_t len = 0;
    int rc = octet_read_file(file, CKPT_STATE_MAX, "checkpoint", &text, &len, e);
    if (rc != OCTET_OK)
        return rc;
    json_error_t je;
    json_t *st = json_loadb(text, len, 0, &je);
    free(text);
    if (!st || !json_is_object(st)) {
        json_decref(st);
        return octet_fail(e, OCTET_ERR_FORMAT, "checkpoint", "%s: not a trainer state (%s)", file,
                          st ? "not a JSON object" : je.text);
    }
    join(file, sizeof file, path, CKPT_WEIGHTS);
    rc = ckpt_load_weights(file, m, e);
    if (rc != OCTET_OK && e) /* the safetensors reader names the file, not the input */
        snprintf(e->field, sizeof e->field, "checkpoint");
    join(file, sizeof file, path, CKPT_OPTIM);
    if (rc == OCTET_OK && (rc = optim_load_path(o, file, e)) != OCTET_OK) {
        char msg[sizeof e->message];
        snprintf(msg, sizeof msg, "%s", e ? e->message : "");
        rc = octet_fail(e, rc, "checkpoint", "%s: %s", file, msg);
    }
    if (rc != OCTET_OK) {
        json_decref(st);
        return rc;
    }
    *state = st;
    return OCTET_OK;
}
