/* datasets.c: GET /datasets, POST /datasets?name=, DELETE /datasets/{name}: the built-in
 * datasets (the engine's, server/train/dataset.h) and those uploaded to this server.
 *
 * An upload is a JSONL or CSV body (the format from ?format= or the Content-Type:
 * application/x-ndjson, application/jsonl or text/csv), at most --max-upload bytes. It is
 * written to a temporary file under DATA_DIR/datasets, parsed with the training parsers
 * (octet_data_files: the same rules and errors a job meets), and only then renamed to
 * DATA_DIR/datasets/<name>.<format> and recorded; a body that does not parse is 422 naming the
 * line, and nothing is kept. A spec names an upload as dataset.name. Names are
 * [a-z0-9][a-z0-9._-]{0,63} and never a built-in's. A dataset a queued or running job uses
 * cannot be deleted (409).
 *
 * The built-ins' sizes are measured by loading them once, on the first listing; a built-in
 * whose Debian package is missing is listed with available false and the reason. */
#define _GNU_SOURCE
#define LOG_PREFIX "datasets"
#include "config.h"
#include "api/api.h"
#include "fileio.h"
#include "log.h"
#include "train/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int api_dataset_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ the built-ins */

static pthread_mutex_t builtin_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *builtin_cache; /* the measured list, once measured */

static const char *task_of(const octet_dataset *d)
{
    return d->n_features ? "image-classification" : d->text_pair ? "text-pair-classification" : "text-classification";
}

static json_t *measure_builtin(const octet_data_builtin *b)
{
    octet_data_spec ds;
    memset(&ds, 0, sizeof ds);
    ds.name = b->name;
    octet_dataset tr, ev;
    octet_err e;
    octet_err_clear(&e);
    json_t *o = json_pack("{ss ss ss ss si}", "name", b->name, "kind", "builtin", "format",
                          !strcmp(b->kind, "image") ? "idx" : "fortunes", "description", b->description,
                          "num_labels", b->num_classes);
    if (octet_data_load(&ds, &tr, &ev, &e) != OCTET_OK) {
        json_object_set_new(o, "available", json_false());
        json_object_set_new(o, "reason", json_string(e.message));
        json_object_set_new(o, "task", json_string(!strcmp(b->kind, "image") ? "image-classification"
                                                                               : "text-classification"));
        return o;
    }
    json_object_set_new(o, "available", json_true());
    json_object_set_new(o, "task", json_string(task_of(&tr)));
    json_object_set_new(o, "n_train", json_integer((json_int_t)tr.n));
    json_object_set_new(o, "n_eval", json_integer((json_int_t)ev.n));
    if (tr.n_features)
        json_object_set_new(o, "features", json_integer((json_int_t)tr.n_features));
    json_t *names = json_array();
    for (int c = 0; c < tr.num_classes; c++)
        json_array_append_new(names, json_string(tr.class_names[c]));
    json_object_set_new(o, "classes", names);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    return o;
}

/* The built-ins (a new reference), measured on first use. */
static json_t *builtins(void)
{
    pthread_mutex_lock(&builtin_lock);
    if (!builtin_cache) {
        size_t n = 0;
        const octet_data_builtin *b = octet_data_builtins(&n);
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, measure_builtin(&b[i]));
        builtin_cache = list;
    }
    json_t *copy = json_deep_copy(builtin_cache);
    pthread_mutex_unlock(&builtin_lock);
    return copy;
}

enum MHD_Result api_datasets_list(http_request *req)
{
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    json_t *uploaded = NULL;
    octet_err e;
    if (store_dataset_list(st, &uploaded, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    json_t *list = builtins();
    size_t i;
    json_t *d;
    json_array_foreach(uploaded, i, d) {
        json_object_set_new(d, "kind", json_string("uploaded"));
        json_object_set_new(d, "available", json_true());
        json_object_del(d, "path");
        json_array_append(list, d);
    }
    json_decref(uploaded);
    return http_reply_json(req, MHD_HTTP_OK, json_pack("{so}", "datasets", list));
}

/* ------------------------------------------------------------------ uploads */

/* "jsonl" or "csv" from ?format= or the Content-Type; NULL (and 415 replied) otherwise. */
static const char *upload_format(http_request *req)
{
    const char *f = http_query(req, "format");
    if (f && (!strcmp(f, "jsonl") || !strcmp(f, "csv")))
        return f;
    if (f) {
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", "format", "format must be jsonl or csv");
        return NULL;
    }
    const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char *const jsonl[] = {"application/x-ndjson", "application/jsonl", "application/json-lines",
                                        "application/x-jsonlines", "application/jsonlines"};
    for (size_t i = 0; ct && i < sizeof jsonl / sizeof jsonl[0]; i++)
        if (!strncasecmp(ct, jsonl[i], strlen(jsonl[i])))
            return "jsonl";
    if (ct && !strncasecmp(ct, "text/csv", 8))
        return "csv";
    http_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Content-Type",
                     "send JSONL (Content-Type: application/x-ndjson) or CSV (text/csv), or say ?format=jsonl|csv");
    return NULL;
}

/* Writes the body to a new temporary file DATA_DIR/datasets/.upload-XXXXXX.<format>. */
static int write_temp(const char *dir, const char *format, const char *data, size_t len, char *path, size_t cap,
                      octet_err *e)
{
    if ((size_t)snprintf(path, cap, "%s/.upload-XXXXXX.%s", dir, format) >= cap)
        return octet_fail(e, OCTET_ERR_IO, "", "the data directory's path is too long");
    int fd = mkstemps(path, (int)strlen(format) + 1);
    if (fd < 0)
        return octet_fail(e, OCTET_ERR_IO, "", "cannot create a file in %s: %s", dir, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return octet_fail(e, OCTET_ERR_IO, "", "cannot write the upload (%zu bytes) into %s: %s; %llu bytes are free there",
                          len, dir, strerror(saved), octet_free_bytes(dir));
    }
    return OCTET_OK;
}

/* Parses the file as a job would; fills d's counts and task. */
static int parse_upload(const char *path, store_dataset *d, octet_err *e)
{
    octet_dataset tr, ev;
    int rc = octet_data_files(path, NULL, 0, &tr, &ev, e);
    if (rc != OCTET_OK)
        return rc;
    d->num_labels = tr.num_classes > ev.num_classes ? tr.num_classes : ev.num_classes;
    d->n_train = (int64_t)tr.n;
    d->n_eval = (int64_t)ev.n;
    d->task = task_of(&tr);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    if (d->num_labels < 2)
        return octet_fail(e, OCTET_ERR_FORMAT, "body", "the data has %d class: at least 2 are needed", d->num_labels);
    return OCTET_OK;
}

/* The name of the upload: ?name=, valid and free; NULL with a reply otherwise. */
static const char *upload_name(http_request *req)
{
    const char *name = http_query(req, "name");
    if (!name) {
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", "name", "?name= is required");
        return NULL;
    }
    if (!api_dataset_name_ok(name)) {
        http_reply_error(req, MHD_HTTP_BAD_REQUEST, "invalid_query", "name",
                         "a dataset name is 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
        return NULL;
    }
    if (octet_data_is_builtin(name)) {
        http_reply_error(req, MHD_HTTP_CONFLICT, "dataset_exists", "name", "%s is a built-in dataset", name);
        return NULL;
    }
    return name;
}

/* Parses, keeps and records the upload in tmp; replies. */
static enum MHD_Result keep_upload(http_request *req, store *st, const char *name, const char *format,
                                   const char *tmp)
{
    api_ctx *app = req->app;
    store_dataset d = {.name = name, .format = format, .bytes = (int64_t)req->raw_len};
    octet_err e;
    octet_err_clear(&e);
    int rc = parse_upload(tmp, &d, &e);
    if (rc != OCTET_OK) {
        unlink(tmp);
        if (rc == OCTET_ERR_NOMEM)
            return http_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_memory", NULL, "out of memory");
        /* the parser names the temporary file: say "line N" of the body instead */
        const char *at = strstr(e.message, tmp);
        const char *msg = at ? at + strlen(tmp) + (at[strlen(tmp)] == ':' ? 1 : 0) : e.message;
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_dataset", "body", "the %s body: %s%s",
                                format, at ? "line " : "", msg);
    }
    char final[PATH_MAX], rel[160];
    snprintf(rel, sizeof rel, "datasets/%s.%s", name, format);
    snprintf(final, sizeof final, "%s/%s", app->data_dir, rel);
    d.path = rel;
    if ((rc = store_dataset_add(st, &d, &e)) != OCTET_OK) {
        unlink(tmp);
        if (rc == OCTET_ERR_MISMATCH)
            return http_reply_error(req, MHD_HTTP_CONFLICT, "dataset_exists", "name", "a dataset named %s exists", name);
        return api_reply_store_error(req, &e);
    }
    if (rename(tmp, final)) {
        int found;
        log_err("cannot rename %s to %s: %s", tmp, final, strerror(errno));
        store_dataset_delete(st, name, &found, &e);
        unlink(tmp);
        return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, "cannot keep the upload");
    }
    log_info("dataset %s uploaded: %lld train / %lld eval examples, %d classes", name, (long long)d.n_train,
             (long long)d.n_eval, d.num_labels);
    char location[128];
    snprintf(location, sizeof location, HTTP_API_PREFIX "/datasets/%s", name);
    http_reply_header(req, MHD_HTTP_HEADER_LOCATION, location);
    json_t *row = NULL;
    store_dataset_get(st, name, &row, &e);
    if (row) {
        json_object_del(row, "path");
        json_object_set_new(row, "kind", json_string("uploaded"));
        json_object_set_new(row, "available", json_true());
    }
    return http_reply_json(req, MHD_HTTP_CREATED, row);
}

enum MHD_Result api_datasets_post(http_request *req)
{
    api_ctx *app = req->app;
    const char *name = upload_name(req);
    const char *format = name ? upload_format(req) : NULL;
    if (!format)
        return MHD_YES;
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    json_t *existing = NULL;
    octet_err e;
    if (store_dataset_get(st, name, &existing, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (existing) {
        json_decref(existing);
        return http_reply_error(req, MHD_HTTP_CONFLICT, "dataset_exists", "name",
                                "a dataset named %s exists; delete it first", name);
    }
    if (req->raw_len == 0)
        return http_reply_error(req, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_dataset", "body", "the body is empty");
    char dir[PATH_MAX], tmp[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/datasets", app->data_dir);
    if (mkdir(dir, 0755) && errno != EEXIST)
        return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, "cannot create %s", dir);
    if (write_temp(dir, format, req->raw_body, req->raw_len, tmp, sizeof tmp, &e) != OCTET_OK) {
        log_err("%s", e.message);
        return http_reply_error(req, MHD_HTTP_INSUFFICIENT_STORAGE, "cannot_store", NULL, "%s", e.message);
    }
    return keep_upload(req, st, name, format, tmp);
}

enum MHD_Result api_dataset_delete(http_request *req)
{
    api_ctx *app = req->app;
    const char *name = req->args[0];
    if (octet_data_is_builtin(name))
        return http_reply_error(req, MHD_HTTP_CONFLICT, "builtin_dataset", NULL, "%s is built in and stays", name);
    if (!api_dataset_name_ok(name))
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no dataset %.64s", name);
    store *st = api_store(req);
    if (!st)
        return MHD_YES;
    json_t *row = NULL;
    int64_t users = 0;
    octet_err e;
    if (store_dataset_get(st, name, &row, &e) != OCTET_OK || store_dataset_users(st, name, &users, &e) != OCTET_OK) {
        json_decref(row);
        return api_reply_store_error(req, &e);
    }
    if (!row)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no dataset %s", name);
    if (users) {
        json_decref(row);
        return http_reply_error(req, MHD_HTTP_CONFLICT, "dataset_in_use", NULL,
                                "%lld queued or running jobs use %s", (long long)users, name);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", app->data_dir, json_string_value(json_object_get(row, "path")));
    json_decref(row);
    int found = 0;
    if (store_dataset_delete(st, name, &found, &e) != OCTET_OK)
        return api_reply_store_error(req, &e);
    if (unlink(path) && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    log_info("dataset %s deleted", name);
    return http_reply_no_content(req);
}
