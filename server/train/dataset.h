/* dataset.h: the labelled examples a job trains and evaluates on, and where they come from.
 *
 * A dataset is n examples, each either a float feature vector (images) or a UTF-8 text with
 * an optional second text (text_pair), and an integer label in [0, num_classes), plus the
 * class names. octet_data_load turns a job's `dataset` spec into a train and an eval set:
 *
 *   fashion-mnist       Debian's dataset-fashion-mnist IDX files: 60000 train / 10000 test
 *                       images of 28x28 = 784 features in [0, 1], 10 classes.
 *   fortunes-lang       fortune cookies by language from Debian's fortunes, fortunes-de,
 *                       fortunes-it, fortunes-es, fortunes-br and fortunes-pl: 6 classes
 *                       (en, de, it, es, pt-br, pl), balanced by keeping every language's
 *                       first N texts in a fixed hash order, N = the smallest language's count.
 *   fortunes-lang-full  the same texts without balancing.
 *   train_file/eval_file  JSONL (one object per line: "text", optional "text_pair", "label"
 *                       as an integer id or a string name) or CSV (RFC 4180, a header row
 *                       naming the columns text, label and optionally text_pair). String
 *                       labels become ids in first-seen order, the train file first, the eval
 *                       file sharing (and extending) the map; a CSV label column of integers
 *                       only is read as ids. Without an eval_file, the train file is split
 *                       (a very small file may leave the eval set empty). Paths are taken as
 *                       given: confining them to a data directory is the caller's job.
 *
 * Splits of fortunes and of a lone train file are by a hash of the text: 1 in 10 goes to
 * validation, so the split is deterministic and never puts one text on both sides (texts are
 * deduplicated first). train_limit / eval_limit keep the first N examples of a seeded shuffle
 * (not stratified), in their original order. Every failure names what is wrong: the unknown
 * name (listing the built-in ones), the file and line of a malformed row, a one-class set, a
 * label out of range. */
#ifndef OCTET_TRAIN_DATASET_H
#define OCTET_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

typedef struct octet_dataset {
    char *name;            /* e.g. "fortunes-lang/train" or the file path */
    size_t n;
    size_t n_features;     /* > 0 for feature rows, 0 for text */
    float *features;       /* n x n_features row-major, or NULL */
    char **text;           /* n strings, or NULL for feature sets */
    char **text_pair;      /* n strings, or NULL when the set has no pairs */
    int32_t *labels;       /* n values in [0, num_classes) */
    int num_classes;
    char **class_names;    /* num_classes strings */
} octet_dataset;

/* What a job's "dataset" object asks for. Zeroed fields take the defaults. */
typedef struct octet_data_spec {
    const char *name;                 /* a built-in name, or NULL when train_file is given */
    const char *train_file;           /* JSONL or CSV (by extension .jsonl/.json/.csv, else sniffed) */
    const char *eval_file;            /* optional */
    size_t train_limit, eval_limit;   /* 0: everything */
    uint64_t seed;                    /* for the limits' shuffle */
    int num_labels;                   /* > 0: every label must be below it (the model's head) */
    const char *fashion_mnist_dir;    /* NULL: /usr/share/datasets/fashion-mnist */
    const char *fortunes_dir;         /* NULL: /usr/share/games/fortunes */
} octet_data_spec;

/* One built-in dataset, for catalogs (GET /datasets). */
typedef struct octet_data_builtin {
    const char *name;
    const char *kind;          /* "image" or "text" */
    int num_classes;
    const char *description;
} octet_data_builtin;

const octet_data_builtin *octet_data_builtins(size_t *count);
/* Non-zero when name is a built-in dataset. */
int octet_data_is_builtin(const char *name);

/* Builds train and eval from spec. Fails with OCTET_ERR_ARG (unknown name — the message lists
 * the built-in names —, neither name nor train_file, a one-class set, labels >= num_labels:
 * field "dataset.name", "dataset.train_file", "dataset.eval_file" or "model.num_labels"),
 * OCTET_ERR_IO (a file cannot be read), OCTET_ERR_FORMAT (a malformed file: the message gives
 * file:line and the column or key) or OCTET_ERR_NOMEM. Both sets are empty on failure. */
int octet_data_load(const octet_data_spec *spec, octet_dataset *train, octet_dataset *eval, octet_err *e);

void octet_dataset_free(octet_dataset *d);

/* What an estimate needs of a job's data, read as cheaply as each source allows. */
typedef struct octet_data_shape {
    size_t n_features;        /* > 0: feature rows (the MLP's input width); 0: text */
    int num_classes;          /* the larger of the train and eval sets' class counts */
    size_t n_train, n_eval;   /* after the limits; 0 when the source was not read (fortunes) */
    int loaded;               /* 1: the sets were built in full (files), 0: headers or nothing */
} octet_data_shape;

/* The shape of what octet_data_load would build from spec, decoding as little as the source
 * allows: fashion-mnist reads the headers of its four IDX files (28 x 28 = 784 features, the
 * image and label counts, which must agree; its 10 classes are fixed by the source),
 * fortunes-lang(-full) reads nothing (text, 6 classes: the sets' sizes are not known without
 * building them, which takes about 0.2 s, so a missing fortunes package is found only when the
 * job loads it), and train/eval files are loaded in full (octet_data_load: the classes are in
 * the labels). Fails as octet_data_load does for what it reads (OCTET_ERR_ARG for an unknown
 * name or labels beyond spec->num_labels, OCTET_ERR_IO, OCTET_ERR_FORMAT, OCTET_ERR_NOMEM). */
int octet_data_shape_of(const octet_data_spec *spec, octet_data_shape *out, octet_err *e);

/* Examples per class into counts[num_classes]. */
void octet_dataset_class_counts(const octet_dataset *d, size_t *counts);

/* ---- the sources, usable alone ---- */

/* Fashion-MNIST from dir ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz); fails as
 * octet_data_load, plus OCTET_ERR_FORMAT when image and label counts differ. */
int octet_data_fashion_mnist(const char *dir, octet_dataset *train, octet_dataset *eval, octet_err *e);
/* The features per image and the two sets' sizes from the IDX headers alone; fails as
 * octet_data_fashion_mnist. */
int octet_data_fashion_mnist_shape(const char *dir, size_t *n_features, size_t *n_train, size_t *n_eval,
                                   octet_err *e);

/* The fortune set from dir; balanced or not. OCTET_ERR_IO when a language's files are
 * missing (the message names the Debian package to install). */
int octet_data_fortunes(const char *dir, int balanced, octet_dataset *train, octet_dataset *eval, octet_err *e);

/* User files: train_file (and eval_file, or a hash split of train_file when NULL).
 * num_labels as in octet_data_spec. */
int octet_data_files(const char *train_file, const char *eval_file, int num_labels, octet_dataset *train,
                     octet_dataset *eval, octet_err *e);

/* Keeps the first `limit` examples of a shuffle seeded by `seed` (in their original order);
 * no-op when limit is 0 or >= n. OCTET_ERR_NOMEM only. */
int octet_dataset_limit(octet_dataset *d, size_t limit, uint64_t seed, octet_err *e);

OCTET_EXTERN_C_END
#endif
