/* paths.c: what octetd lets a spec name on its disk: paths inside the data directory only
 * (symlinks resolved before the check), datasets that are built in or uploaded, devices the
 * server has; and each job's checkpoint directory under DATA_DIR/checkpoints.
 *
 * A path is checked with realpath(), so "..", absolute paths and symlinks that lead out are
 * all refused the same way: the real path must start with the data directory's real path. */
#define _XOPEN_SOURCE 700
#define LOG_PREFIX "jobs"
#include "config.h"
#include "jobs/jobs.h"
#include "log.h"
#include "train/dataset.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int jobs_resolve_path(const char *data_dir, const char *rel, const char *field, char *out, size_t cap,
                      octet_err *e)
{
    if (!rel[0] || rel[0] == '/')
        return octet_fail(e, OCTET_ERR_ARG, field, "must be a path relative to the server's data directory, got '%s'",
                          rel);
    char joined[PATH_MAX * 2], real[PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", data_dir, rel);
    if (!realpath(joined, real))
        return octet_fail(e, OCTET_ERR_ARG, field, "'%s' %s in the server's data directory", rel,
                          errno == ENOENT || errno == ENOTDIR ? "does not exist" : "cannot be resolved");
    size_t n = strlen(data_dir);
    if (strncmp(real, data_dir, n) || (real[n] != '/' && real[n] != '\0'))
        return octet_fail(e, OCTET_ERR_ARG, field, "'%s' leads outside the server's data directory", rel);
    if (strlen(real) >= cap)
        return octet_fail(e, OCTET_ERR_ARG, field, "'%s' resolves to a path longer than %zu bytes", rel, cap - 1);
    memcpy(out, real, strlen(real) + 1);
    return OCTET_OK;
}

/* Checks one path field; with resolve, replaces it by its real path. */
static int check_path(const char *data_dir, char *path, size_t cap, const char *field, int resolve, octet_err *e)
{
    if (!path[0])
        return OCTET_OK;
    char real[PATH_MAX];
    int rc = jobs_resolve_path(data_dir, path, field, real, sizeof real, e);
    if (rc == OCTET_OK && resolve) {
        if (strlen(real) >= cap)
            return octet_fail(e, OCTET_ERR_ARG, field, "resolves to a path longer than %zu bytes", cap - 1);
        memcpy(path, real, strlen(real) + 1);
    }
    return rc;
}

/* "fashion-mnist, fortunes-lang, ..." and the uploaded names, into buf. */
static void known_datasets(store *st, char *buf, size_t cap)
{
    size_t n = 0, used = 0;
    const octet_data_builtin *b = octet_data_builtins(&n);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%s%s", i ? ", " : "", b[i].name);
    json_t *list = NULL;
    octet_err ignored;
    if (store_dataset_list(st, &list, &ignored) == OCTET_OK) {
        size_t i;
        json_t *d;
        json_array_foreach(list, i, d)
            if (used < cap)
                used += (size_t)snprintf(buf + used, cap - used, ", %s",
                                         json_string_value(json_object_get(d, "name")));
    }
    json_decref(list);
}

/* dataset.name: built in, or uploaded (with resolve: its file becomes dataset.train_file). */
static int check_dataset(store *st, const char *data_dir, job_spec *spec, int resolve, octet_err *e)
{
    spec_dataset *d = &spec->dataset;
    if (!d->name[0] || octet_data_is_builtin(d->name))
        return OCTET_OK;
    json_t *row = NULL;
    int rc = store_dataset_get(st, d->name, &row, e);
    if (rc != OCTET_OK)
        return rc;
    if (!row) {
        char known[512];
        known_datasets(st, known, sizeof known);
        return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "no dataset named '%s'; this server has: %s", d->name,
                          known);
    }
    const char *path = json_string_value(json_object_get(row, "path"));
    char real[PATH_MAX];
    rc = jobs_resolve_path(data_dir, path ? path : "", "dataset.name", real, sizeof real, e);
    json_decref(row);
    if (rc == OCTET_OK && resolve) {
        if (strlen(real) >= sizeof d->train_file)
            return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "the dataset's path is too long");
        memcpy(d->train_file, real, strlen(real) + 1);
        d->name[0] = '\0';
    }
    return rc;
}

static int check_device(int cuda_devices, const job_spec *spec, octet_err *e)
{
    const char *want = spec->training.device;
    if (!strcmp(want, "cuda") && cuda_devices == 0)
        return octet_fail(e, OCTET_ERR_ARG, "training.device",
                          "this server has no usable CUDA device; use \"cpu\" or \"auto\"");
    int on_cuda = cuda_devices > 0 && strcmp(want, "cpu");
    return spec_check_device(spec, on_cuda, e);
}

int jobs_check_spec(store *st, const char *data_dir, int cuda_devices, job_spec *spec, int resolve, octet_err *e)
{
    /* the files first: an uploaded dataset.name becomes a train_file that is already resolved */
    int rc = check_path(data_dir, spec->dataset.train_file, sizeof spec->dataset.train_file, "dataset.train_file",
                        resolve, e);
    if (rc == OCTET_OK)
        rc = check_path(data_dir, spec->dataset.eval_file, sizeof spec->dataset.eval_file, "dataset.eval_file",
                        resolve, e);
    if (rc == OCTET_OK)
        rc = check_path(data_dir, spec->model.path, sizeof spec->model.path, "model.path", resolve, e);
    if (rc == OCTET_OK)
        rc = check_dataset(st, data_dir, spec, resolve, e);
    if (rc == OCTET_OK)
        rc = check_device(cuda_devices, spec, e);
    return rc;
}

void jobs_checkpoint_dir(const char *data_dir, int64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/checkpoints/%lld", data_dir, (long long)id);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (r && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

void jobs_remove_checkpoints(const char *data_dir, int64_t id)
{
    char dir[PATH_MAX];
    jobs_checkpoint_dir(data_dir, id, dir, sizeof dir);
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
        log_warn("cannot remove %s: %s", dir, strerror(errno));
}
