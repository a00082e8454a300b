/* dataset_impl.h: what dataset_build.c gives the dataset sources (dataset_fashion.c,
 * dataset_fortunes.c, dataset_files.c) and nothing else uses: a growable dataset builder, the
 * label map for named labels, and the text hash behind deterministic splits. */
#ifndef OCTET_TRAIN_DATASET_IMPL_H
#define OCTET_TRAIN_DATASET_IMPL_H

#include "train/dataset.h"

/* Growable text dataset. */
typedef struct ds_builder {
    octet_dataset d;
    size_t cap;
    int has_pair;
} ds_builder;

/* Appends a copy of text (len bytes) and pair (NULL or a string). -1 when out of memory. */
int dsb_push(ds_builder *b, const char *text, size_t len, const char *pair, int32_t label);
/* Moves the builder's examples into out (which must be empty); names and classes are
 * copied. -1 when out of memory. */
int dsb_finish(ds_builder *b, const char *name, char *const *class_names, int num_classes, octet_dataset *out);
void dsb_free(ds_builder *b);

/* Class names in first-seen order. */
typedef struct label_map {
    char **names;
    int n, cap;
} label_map;

/* The id of name, added when new; -1 when out of memory. */
int label_map_id(label_map *m, const char *name);
void label_map_free(label_map *m);

/* 64-bit hash of bytes with a salt, well mixed in every bit (FNV-1a, then a splitmix64 finish). */
uint64_t ds_hash(const char *s, size_t n, uint64_t salt);
/* Whether a text (and pair) belongs to the validation tenth. */
int ds_is_eval(const char *text, const char *pair);

#endif
