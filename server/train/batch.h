/* batch.h: turning dataset examples into model batches: the seeded per-epoch shuffle of the
 * training set, and the gathering of a list of example indices into a host-side model_batch
 * (feature rows for the MLP; for text, token ids tokenized once up front, then framed,
 * truncated to max_length and padded to the batch's longest, as Transformers'
 * DataCollatorWithPadding does).
 *
 * The shuffle of epoch `epoch` is a pure function of (seed, epoch): Fisher-Yates driven by a
 * splitmix64 stream keyed by both, so a resumed run draws exactly the batches an
 * uninterrupted one would. */
#ifndef OCTET_TRAIN_BATCH_H
#define OCTET_TRAIN_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "train/dataset.h"
#include "train/model.h"
#include "train/tokenizer.h"

typedef struct batcher {
    const octet_dataset *ds;
    const octet_tokenizer *tok;   /* text sets only */
    octet_ids *ids, *pair_ids;    /* (n) pre-tokenized texts (and pairs), no framing */
    octet_ids *rows, *pair_rows;  /* (max_batch) views of the rows of one batch */
    int max_length, max_batch;
    float *features;              /* (max_batch, n_features) */
    int32_t *labels;              /* (max_batch) */
    octet_encoding enc;           /* the last text batch */
} batcher;

/* Prepares batches of at most max_batch rows of ds (which must outlive b). Text sets need a
 * tokenizer and are tokenized here. Fails with OCTET_ERR_ARG (a text set without tokenizer, a
 * feature set with one), OCTET_ERR_NOMEM, or the tokenizer's error. */
int batcher_init(batcher *b, const octet_dataset *ds, const octet_tokenizer *tok, int max_length, int max_batch,
                 octet_err *e);
void batcher_free(batcher *b);

/* Gathers examples idx[0..count) into *out (pointers into b, valid until the next call).
 * count must be in [1, max_batch]. Fails with OCTET_ERR_ARG or the tokenizer's error. */
int batcher_make(batcher *b, const size_t *idx, int count, model_batch *out, octet_err *e);

/* The longest framed sequence over the whole set (text), capped at max_length; 0 for features. */
int batcher_longest(const batcher *b);

/* perm (n) = the training order of epoch `epoch` (0-based) under `seed`. */
void batch_permutation(uint64_t seed, uint64_t epoch, size_t n, size_t *perm);

#endif
