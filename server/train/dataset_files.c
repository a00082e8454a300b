/* dataset_files.c: user datasets from JSONL or CSV files (see dataset.h for the formats).
 *
 * Each file is first parsed into raw rows (text, optional text_pair, the label as written,
 * and the line it started on), then the labels of train and eval are resolved together: ids
 * when the train file's labels are JSON integers (JSONL) or all decimal integers (CSV),
 * names otherwise, mapped to ids in first-seen order, train first. Every malformed row is
 * an error naming file:line and the column or key; a CSV record's line is the line where it
 * starts (a quoted field may span lines). Text must be valid UTF-8 (uc_check_utf8, the rule
 * of every text input): a JSONL line is checked before jansson parses it, a CSV record field
 * by field, so the error names file:line and the byte column or the CSV column. */
#include "train/dataset.h"
#include "train/dataset_impl.h"
#include "train/model.h"
#include "fileio.h"
#include "train/unicode.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_FILE_MAX ((size_t)1 << 30)
#define MAX_LABEL_ID (MODEL_MAX_LABELS - 1)

enum { LABEL_STRING = 0, LABEL_INT = 1 };

typedef struct raw_row {
    char *text, *pair, *label;
    int label_kind;             /* JSONL: LABEL_INT / LABEL_STRING; CSV: LABEL_STRING */
    size_t line;
} raw_row;

typedef struct raw_file {
    const char *path;
    const char *field;          /* "dataset.train_file" or "dataset.eval_file" */
    int csv;
    int has_pair;               /* JSONL: some row has text_pair; CSV: the header names it */
    raw_row *v;
    size_t n, cap;
} raw_file;

static void raw_free(raw_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].text);
        free(f->v[i].pair);
        free(f->v[i].label);
    }
    free(f->v);
    f->v = NULL;
    f->n = f->cap = 0;
}

/* Appends a row taking ownership of the strings; -1 when out of memory (strings freed). */
static int raw_push(raw_file *f, raw_row r)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        raw_row *v = realloc(f->v, cap * sizeof *v);
        if (!v) {
            free(r.text);
            free(r.pair);
            free(r.label);
            return -1;
        }
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = r;
    return 0;
}

static int nomem(const raw_file *f, octet_err *e)
{
    return octet_fail(e, OCTET_ERR_NOMEM, f->field, "%s: out of memory", f->path);
}

/* ---- JSONL ---- */

static int jsonl_string(const raw_file *f, size_t line, json_t *o, const char *key, int required, char **out,
                        octet_err *e)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || (json_is_null(v) && !required))
        return required ? octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: missing \"%s\"", f->path, line, key)
                        : OCTET_OK;
    if (!json_is_string(v))
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: \"%s\" must be a string", f->path, line, key);
    return (*out = strdup(json_string_value(v))) ? OCTET_OK : nomem(f, e);
}

static int jsonl_label(const raw_file *f, size_t line, json_t *o, raw_row *r, octet_err *e)
{
    json_t *v = json_object_get(o, "label");
    char buf[32];
    if (!v)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: missing \"label\"", f->path, line);
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        r->label_kind = LABEL_INT;
    } else if (json_is_string(v) && json_string_length(v) > 0) {
        r->label_kind = LABEL_STRING;
    } else {
        return octet_fail(e, OCTET_ERR_FORMAT, f->field,
                          "%s:%zu: \"label\" must be an integer or a non-empty string", f->path, line);
    }
    r->label = strdup(r->label_kind == LABEL_INT ? buf : json_string_value(v));
    return r->label ? OCTET_OK : nomem(f, e);
}

/* Parses one non-blank line into a row. */
static int jsonl_row(raw_file *f, const char *s, size_t len, size_t line, octet_err *e)
{
    int rc = uc_check_utf8(s, len, f->path, line, NULL, f->field, e);
    if (rc != OCTET_OK)
        return rc;
    json_error_t je;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu:%d: invalid JSON: %s", f->path, line, je.column,
                          je.text);
    raw_row r = {.line = line};
    rc = json_is_object(o) ? OCTET_OK
                               : octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: expected a JSON object",
                                            f->path, line);
    if (rc == OCTET_OK)
        rc = jsonl_string(f, line, o, "text", 1, &r.text, e);
    if (rc == OCTET_OK)
        rc = jsonl_string(f, line, o, "text_pair", 0, &r.pair, e);
    if (rc == OCTET_OK)
        rc = jsonl_label(f, line, o, &r, e);
    json_decref(o);
    if (rc != OCTET_OK) {
        free(r.text);
        free(r.pair);
        free(r.label);
        return rc;
    }
    f->has_pair |= r.pair != NULL;
    return raw_push(f, r) == 0 ? OCTET_OK : nomem(f, e);
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

static int parse_jsonl(raw_file *f, const char *buf, size_t len, octet_err *e)
{
    size_t line = 1;
    for (const char *p = buf, *end = buf + len; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (!is_blank(p, n)) {
            int rc = jsonl_row(f, p, n, line, e);
            if (rc != OCTET_OK)
                return rc;
        }
        p = stop + 1;
    }
    return OCTET_OK;
}

/* ---- CSV (RFC 4180) ---- */

typedef struct csv_reader {
    const raw_file *f;
    const char *p, *end;
    size_t line;                /* the current physical line */
    char **fields;
    size_t nfields, cap;
    char *acc;                  /* the field being read */
    size_t alen, acap;
} csv_reader;

static int acc_put(csv_reader *c, char ch)
{
    if (c->alen + 2 > c->acap) {
        size_t cap = c->acap ? 2 * c->acap : 256;
        char *a = realloc(c->acc, cap);
        if (!a)
            return -1;
        c->acc = a;
        c->acap = cap;
    }
    c->acc[c->alen++] = ch;
    c->acc[c->alen] = '\0';
    return 0;
}

static int field_end(csv_reader *c)
{
    if (c->nfields == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        char **v = realloc(c->fields, cap * sizeof *v);
        if (!v)
            return -1;
        c->fields = v;
        c->cap = cap;
    }
    char *s = malloc(c->alen + 1);
    if (!s)
        return -1;
    memcpy(s, c->acc ? c->acc : "", c->alen);
    s[c->alen] = '\0';
    c->fields[c->nfields++] = s;
    c->alen = 0;
    return 0;
}

static void fields_clear(csv_reader *c)
{
    for (size_t i = 0; i < c->nfields; i++)
        free(c->fields[i]);
    c->nfields = 0;
}

static int at_record_end(const csv_reader *c)
{
    return c->p == c->end || *c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n');
}

/* A quoted field: doubled quotes are one quote, newlines are content. */
static int csv_quoted(csv_reader *c, size_t start_line, octet_err *e)
{
    c->p++;
    for (;;) {
        if (c->p == c->end)
            return octet_fail(e, OCTET_ERR_FORMAT, c->f->field, "%s:%zu: column %zu: quoted field never closed",
                              c->f->path, start_line, c->nfields + 1);
        char ch = *c->p++;
        if (ch == '"') {
            if (c->p < c->end && *c->p == '"')
                c->p++;
            else
                break;
        }
        c->line += ch == '\n';
        if (acc_put(c, ch) != 0)
            return nomem(c->f, e);
    }
    if (!at_record_end(c) && *c->p != ',')
        return octet_fail(e, OCTET_ERR_FORMAT, c->f->field, "%s:%zu: column %zu: text after the closing quote",
                          c->f->path, c->line, c->nfields + 1);
    return OCTET_OK;
}

static int csv_unquoted(csv_reader *c, octet_err *e)
{
    while (!at_record_end(c) && *c->p != ',') {
        if (*c->p == '"')
            return octet_fail(e, OCTET_ERR_FORMAT, c->f->field,
                              "%s:%zu: column %zu: quote inside an unquoted field (quote the field and double "
                              "the quote)", c->f->path, c->line, c->nfields + 1);
        if (acc_put(c, *c->p++) != 0)
            return nomem(c->f, e);
    }
    return OCTET_OK;
}

/* Reads one record into c->fields; *start gets its first line. */
static int csv_record(csv_reader *c, size_t *start, octet_err *e)
{
    fields_clear(c);
    *start = c->line;
    for (;;) {
        c->alen = 0;
        int rc = c->p < c->end && *c->p == '"' ? csv_quoted(c, c->line, e) : csv_unquoted(c, e);
        if (rc != OCTET_OK)
            return rc;
        if (field_end(c) != 0)
            return nomem(c->f, e);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end)
            c->p += *c->p == '\r' ? 2 : 1;
        c->line++;
        return OCTET_OK;
    }
}

typedef struct csv_cols {
    size_t n;
    long text, label, pair;    /* column indices, -1 when absent */
} csv_cols;

static int header_is(const char *s, const char *name)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(name);
    if (strncasecmp(s, name, n) != 0)
        return 0;
    for (s += n; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* Every field of the record just read (starting on `line`) must be valid UTF-8; the error
 * names the column, by its header name once the header is known (h NULL: the header row). */
static int csv_utf8(const csv_reader *c, size_t line, const csv_cols *h, octet_err *e)
{
    for (size_t i = 0; i < c->nfields; i++) {
        const char *s = c->fields[i];
        size_t n = strlen(s);
        if (uc_utf8_valid_prefix(s, n) != n) {
            const char *name = !h ? "header" : (long)i == h->text ? "text" : (long)i == h->label ? "label"
                             : (long)i == h->pair ? "text_pair" : NULL;
            char where[64];
            if (name)
                snprintf(where, sizeof where, "column %zu (%s)", i + 1, name);
            else
                snprintf(where, sizeof where, "column %zu", i + 1);
            return uc_check_utf8(s, n, c->f->path, line, where, c->f->field, e);
        }
        for (size_t k = 0; k < n; k++) /* a quoted field's newlines move the next field's line */
            line += s[k] == '\n';
    }
    return OCTET_OK;
}

static int csv_header(csv_reader *c, size_t line, csv_cols *h, octet_err *e)
{
    static const char *const names[3] = {"text", "label", "text_pair"};
    long *slot[3] = {&h->text, &h->label, &h->pair};
    h->n = c->nfields;
    h->text = h->label = h->pair = -1;
    for (size_t i = 0; i < c->nfields; i++)
        for (int k = 0; k < 3; k++) {
            if (!header_is(c->fields[i], names[k]))
                continue;
            if (*slot[k] >= 0)
                return octet_fail(e, OCTET_ERR_FORMAT, c->f->field, "%s:%zu: column \"%s\" appears twice in the header",
                                  c->f->path, line, names[k]);
            *slot[k] = (long)i;
        }
    if (h->text < 0 || h->label < 0)
        return octet_fail(e, OCTET_ERR_FORMAT, c->f->field,
                          "%s:%zu: the header row must name the columns text and label (optionally text_pair), "
                          "got \"%s%s\"%s", c->f->path, line, c->fields[0], c->nfields > 1 ? ", ..." : "",
                          c->nfields > 1 ? "" : " (one column: is the file comma-separated?)");
    return OCTET_OK;
}

static int csv_row(csv_reader *c, const csv_cols *h, size_t line, raw_file *f, octet_err *e)
{
    if (c->nfields != h->n)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: %zu fields, but the header has %zu", f->path, line,
                          c->nfields, h->n);
    if (c->fields[h->label][0] == '\0')
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: column %ld (label) is empty", f->path, line,
                          h->label + 1);
    raw_row r = {.line = line, .label_kind = LABEL_STRING};
    r.text = c->fields[h->text];
    r.label = c->fields[h->label];
    r.pair = h->pair >= 0 ? c->fields[h->pair] : NULL;
    c->fields[h->text] = c->fields[h->label] = NULL;
    if (h->pair >= 0)
        c->fields[h->pair] = NULL;
    return raw_push(f, r) == 0 ? OCTET_OK : nomem(f, e);
}

static int record_blank(const csv_reader *c)
{
    return c->nfields == 1 && c->fields[0][0] == '\0';
}

static int parse_csv(raw_file *f, const char *buf, size_t len, octet_err *e)
{
    csv_reader c = {.f = f, .p = buf, .end = buf + len, .line = 1};
    csv_cols h = {0};
    int have_header = 0, rc = OCTET_OK;
    while (rc == OCTET_OK && c.p < c.end) {
        size_t line;
        rc = csv_record(&c, &line, e);
        if (rc != OCTET_OK || record_blank(&c))
            continue;
        if (!have_header) {
            if ((rc = csv_utf8(&c, line, NULL, e)) == OCTET_OK)
                rc = csv_header(&c, line, &h, e);
            have_header = 1;
            f->has_pair = h.pair >= 0;
        } else if ((rc = csv_utf8(&c, line, &h, e)) == OCTET_OK) {
            rc = csv_row(&c, &h, line, f, e);
        }
    }
    fields_clear(&c);
    free(c.fields);
    free(c.acc);
    return rc;
}

/* ---- reading a file ---- */

static int detect_csv(const char *path, const char *buf)
{
    const char *dot = strrchr(path, '.');
    if (dot && (strcasecmp(dot, ".csv") == 0))
        return 1;
    if (dot && (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".json") == 0 || strcasecmp(dot, ".ndjson") == 0))
        return 0;
    while (isspace((unsigned char)*buf))
        buf++;
    return *buf != '{';
}

static int read_raw(raw_file *f, octet_err *e)
{
    char *buf;
    size_t len;
    int rc = octet_read_file(f->path, DATA_FILE_MAX, f->field, &buf, &len, e);
    if (rc != OCTET_OK)
        return rc;
    const char *body = buf;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {     /* UTF-8 byte-order mark */
        body += 3;
        len -= 3;
    }
    f->csv = detect_csv(f->path, body);
    rc = f->csv ? parse_csv(f, body, len, e) : parse_jsonl(f, body, len, e);
    free(buf);
    if (rc == OCTET_OK && f->n == 0)
        rc = octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s: no examples (empty file%s)", f->path,
                        f->csv ? " or a header only" : "");
    return rc;
}

/* ---- labels ---- */

typedef struct label_ctx {
    int ids;                    /* 1: labels are ids; 0: names */
    int num_labels;             /* > 0: the model's head size */
    label_map map;
    long max_id;
} label_ctx;

/* A CSV label of decimal digits (optionally signed) is an integer. */
static int is_int_text(const char *s)
{
    s += *s == '-' || *s == '+';
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    return *s == '\0';
}

static int row_is_int(const raw_file *f, const raw_row *r)
{
    return f->csv ? is_int_text(r->label) : r->label_kind == LABEL_INT;
}

/* Decides ids or names from the train file; JSONL may not mix integers and strings. */
static int label_mode(const raw_file *train, label_ctx *lc, octet_err *e)
{
    lc->ids = 1;
    for (size_t i = 0; i < train->n; i++)
        lc->ids &= row_is_int(train, &train->v[i]);
    if (train->csv || lc->ids)
        return OCTET_OK;
    int first = train->v[0].label_kind;
    for (size_t i = 1; i < train->n; i++)
        if (train->v[i].label_kind != first)
            return octet_fail(e, OCTET_ERR_FORMAT, train->field,
                              "%s:%zu: \"label\" is %s but line %zu's is %s; use one kind in a file", train->path,
                              train->v[i].line, train->v[i].label_kind == LABEL_INT ? "an integer" : "a string",
                              train->v[0].line, first == LABEL_INT ? "an integer" : "a string");
    return OCTET_OK;
}

static int resolve_id(const raw_file *f, const raw_row *r, label_ctx *lc, octet_err *e)
{
    if (!row_is_int(f, r))
        return octet_fail(e, OCTET_ERR_FORMAT, f->field,
                          "%s:%zu: label \"%s\" is not an integer, but the train file's labels are", f->path, r->line,
                          r->label);
    errno = 0;
    long v = strtol(r->label, NULL, 10);
    if (v < 0 || v > MAX_LABEL_ID || errno)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: label %s is out of range (0..%d)", f->path, r->line,
                          r->label, MAX_LABEL_ID);
    if (lc->num_labels > 0 && v >= lc->num_labels)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: label %ld is out of range: model.num_labels is %d",
                          f->path, r->line, v, lc->num_labels);
    if (v > lc->max_id)
        lc->max_id = v;
    return (int)v;
}

static int resolve_name(const raw_file *f, const raw_row *r, label_ctx *lc, octet_err *e)
{
    if (!f->csv && r->label_kind == LABEL_INT)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field,
                          "%s:%zu: label %s is an integer, but the train file's labels are strings", f->path, r->line,
                          r->label);
    int id = label_map_id(&lc->map, r->label);
    if (id < 0)
        return nomem(f, e);
    if (id > MAX_LABEL_ID)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: label \"%s\" would be class %d: at most %d classes",
                          f->path, r->line, r->label, id, MODEL_MAX_LABELS);
    if (lc->num_labels > 0 && id >= lc->num_labels)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field,
                          "%s:%zu: label \"%s\" would be class %d, but model.num_labels is %d", f->path, r->line,
                          r->label, id, lc->num_labels);
    return id;
}

/* Resolves every row's label; ids[] gets them. Returns OCTET_OK or the failure. */
static int resolve_labels(const raw_file *f, label_ctx *lc, int32_t *ids, octet_err *e)
{
    for (size_t i = 0; i < f->n; i++) {
        int id = lc->ids ? resolve_id(f, &f->v[i], lc, e) : resolve_name(f, &f->v[i], lc, e);
        if (id < 0)
            return id;                               /* the status octet_fail returned */
        ids[i] = id;
    }
    return OCTET_OK;
}

static int count_distinct(const int32_t *ids, size_t n, int32_t *first)
{
    int32_t a = n ? ids[0] : 0;
    *first = a;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != a)
            return 2;
    return n ? 1 : 0;
}

/* ---- building the datasets ---- */

static int pair_check(const raw_file *f, int has_pair, octet_err *e)
{
    if (f->csv && f->has_pair != has_pair)
        return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s: %s a text_pair column, unlike the train file", f->path,
                          f->has_pair ? "has" : "lacks");
    for (size_t i = 0; i < f->n && !f->csv; i++)
        if ((f->v[i].pair != NULL) != has_pair)
            return octet_fail(e, OCTET_ERR_FORMAT, f->field, "%s:%zu: %s \"text_pair\" (%s)", f->path,
                              f->v[i].line, has_pair ? "missing" : "unexpected",
                              has_pair ? "other rows have one" : "the train file has none");
    return OCTET_OK;
}

/* Pushes rows into builders: all to `to`, or by text hash when `held_out` is given. */
static int push_rows(const raw_file *f, const int32_t *ids, ds_builder *to, ds_builder *held_out, octet_err *e)
{
    to->has_pair = f->has_pair;
    if (held_out)
        held_out->has_pair = f->has_pair;
    for (size_t i = 0; i < f->n; i++) {
        const raw_row *r = &f->v[i];
        ds_builder *b = held_out && ds_is_eval(r->text, r->pair) ? held_out : to;
        if (dsb_push(b, r->text, strlen(r->text), r->pair, ids[i]) != 0)
            return nomem(f, e);
    }
    return OCTET_OK;
}

typedef struct files_job {
    raw_file train, eval;
    int32_t *tid, *eid;
    label_ctx lc;
    ds_builder tb, eb;
} files_job;

static int files_labels(files_job *j, octet_err *e)
{
    int rc = label_mode(&j->train, &j->lc, e);
    if (rc == OCTET_OK && !(j->tid = malloc(j->train.n * sizeof *j->tid)))
        rc = nomem(&j->train, e);
    if (rc == OCTET_OK)
        rc = resolve_labels(&j->train, &j->lc, j->tid, e);
    int32_t first;
    if (rc == OCTET_OK && count_distinct(j->tid, j->train.n, &first) < 2)
        rc = octet_fail(e, OCTET_ERR_ARG, j->train.field,
                        "%s: every example has the label \"%s\"; classification needs at least 2 classes",
                        j->train.path, j->train.v[0].label);
    if (rc == OCTET_OK && j->eval.path && !(j->eid = malloc(j->eval.n * sizeof *j->eid)))
        rc = nomem(&j->eval, e);
    if (rc == OCTET_OK && j->eval.path)
        rc = resolve_labels(&j->eval, &j->lc, j->eid, e);
    return rc;
}

/* Class names: the label map, or "0".."max". */
static int files_finish(files_job *j, octet_dataset *train, octet_dataset *eval, octet_err *e)
{
    int k = j->lc.ids ? (int)j->lc.max_id + 1 : j->lc.map.n;
    char **names = calloc((size_t)k, sizeof *names);
    int rc = names ? OCTET_OK : nomem(&j->train, e);
    for (int i = 0; i < k && rc == OCTET_OK; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        if (!(names[i] = strdup(j->lc.ids ? buf : j->lc.map.names[i])))
            rc = nomem(&j->train, e);
    }
    char ename[4200];
    snprintf(ename, sizeof ename, "%s%s", j->eval.path ? j->eval.path : j->train.path,
             j->eval.path ? "" : " (held-out tenth)");
    if (rc == OCTET_OK && (dsb_finish(&j->tb, j->train.path, names, k, train) != 0 ||
                           dsb_finish(&j->eb, ename, names, k, eval) != 0))
        rc = nomem(&j->train, e);
    for (int i = 0; names && i < k; i++)
        free(names[i]);
    free(names);
    return rc;
}

int octet_data_files(const char *train_file, const char *eval_file, int num_labels, octet_dataset *train,
                     octet_dataset *eval, octet_err *e)
{
    memset(train, 0, sizeof *train);
    memset(eval, 0, sizeof *eval);
    files_job j = {.train = {.path = train_file, .field = "dataset.train_file"},
                   .eval = {.path = eval_file && *eval_file ? eval_file : NULL, .field = "dataset.eval_file"},
                   .lc = {.num_labels = num_labels, .max_id = -1}};
    int rc = read_raw(&j.train, e);
    if (rc == OCTET_OK && j.eval.path)
        rc = read_raw(&j.eval, e);
    if (rc == OCTET_OK && j.eval.path)
        rc = pair_check(&j.eval, j.train.has_pair, e);
    if (rc == OCTET_OK)
        rc = pair_check(&j.train, j.train.has_pair, e);
    if (rc == OCTET_OK)
        rc = files_labels(&j, e);
    if (rc == OCTET_OK)
        rc = push_rows(&j.train, j.tid, &j.tb, j.eval.path ? NULL : &j.eb, e);
    if (rc == OCTET_OK && j.eval.path)
        rc = push_rows(&j.eval, j.eid, &j.eb, NULL, e);
    if (rc == OCTET_OK)
        rc = files_finish(&j, train, eval, e);
    raw_free(&j.train);
    raw_free(&j.eval);
    free(j.tid);
    free(j.eid);
    label_map_free(&j.lc.map);
    dsb_free(&j.tb);
    dsb_free(&j.eb);
    return rc;
}
