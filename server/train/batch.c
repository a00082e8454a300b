/* batch.c: seeded epoch shuffles and the gathering of examples into model batches (batch.h). */
#include "config.h"
#include "train/batch.h"

#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void batch_permutation(uint64_t seed, uint64_t epoch, size_t n, size_t *perm)
{
    uint64_t key = splitmix64(seed ^ 0x73687566666c65ULL /* "shuffle" */) ^ splitmix64(epoch + 1);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        uint64_t r = splitmix64(key + (uint64_t)i * 0x9E3779B97F4A7C15ULL);
        size_t j = (size_t)(((unsigned __int128)r * (unsigned __int128)i) >> 64); /* in [0, i) */
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static void free_ids(octet_ids *ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        octet_ids_free(&ids[i]);
    free(ids);
}

void batcher_free(batcher *b)
{
    if (!b)
        return;
    size_t n = b->ds ? b->ds->n : 0;
    free_ids(b->ids, n);
    free_ids(b->pair_ids, n);
    free(b->rows);
    free(b->pair_rows);
    free(b->features);
    free(b->labels);
    octet_encoding_free(&b->enc);
    memset(b, 0, sizeof *b);
}

/* Tokenizes every text (and pair) of the set once. */
static int pretokenize(batcher *b, octet_err *e)
{
    const octet_dataset *ds = b->ds;
    b->ids = calloc(ds->n ? ds->n : 1, sizeof *b->ids);
    b->rows = calloc((size_t)b->max_batch, sizeof *b->rows);
    b->pair_rows = calloc((size_t)b->max_batch, sizeof *b->pair_rows);
    if (ds->text_pair)
        b->pair_ids = calloc(ds->n ? ds->n : 1, sizeof *b->pair_ids);
    if (!b->ids || !b->rows || !b->pair_rows || (ds->text_pair && !b->pair_ids))
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory tokenizing %s", ds->name ? ds->name : "the dataset");
    for (size_t i = 0; i < ds->n; i++) {
        int rc = octet_tok_tokenize(b->tok, ds->text[i], &b->ids[i], e);
        if (rc == OCTET_OK && b->pair_ids)
            rc = octet_tok_tokenize(b->tok, ds->text_pair[i] ? ds->text_pair[i] : "", &b->pair_ids[i], e);
        if (rc != OCTET_OK)
            return rc;
    }
    return OCTET_OK;
}

int batcher_init(batcher *b, const octet_dataset *ds, const octet_tokenizer *tok, int max_length, int max_batch,
                 octet_err *e)
{
    memset(b, 0, sizeof *b);
    b->ds = ds;
    b->tok = tok;
    b->max_length = max_length;
    b->max_batch = max_batch;
    if (max_batch < 1)
        return octet_fail(e, OCTET_ERR_ARG, "training.batch_size", "must be >= 1");
    if (ds->n_features > 0 && tok)
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "%s holds feature vectors, not text", ds->name);
    if (ds->n_features == 0 && (!tok || !ds->text))
        return octet_fail(e, OCTET_ERR_ARG, "model.arch", "%s holds text: it needs a text model (distilbert)",
                          ds->name);
    b->labels = calloc((size_t)max_batch, sizeof *b->labels);
    if (ds->n_features)
        b->features = calloc((size_t)max_batch * ds->n_features, sizeof *b->features);
    if (!b->labels || (ds->n_features && !b->features))
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory for the batch buffers");
    return ds->n_features ? OCTET_OK : pretokenize(b, e);
}

int batcher_longest(const batcher *b)
{
    if (!b->ids)
        return 0;
    size_t most = 0;
    for (size_t i = 0; i < b->ds->n; i++) {
        size_t len = b->ids[i].n + 2 + (b->pair_ids ? b->pair_ids[i].n + 1 : 0);
        most = len > most ? len : most;
    }
    return (int)(most < (size_t)b->max_length ? most : (size_t)b->max_length);
}

static int make_text(batcher *b, const size_t *idx, int count, model_batch *out, octet_err *e)
{
    octet_ids *a = b->rows, *p = b->pair_rows;
    for (int r = 0; r < count; r++) {
        a[r] = b->ids[idx[r]];
        if (b->pair_ids)
            p[r] = b->pair_ids[idx[r]];
    }
    octet_encoding_free(&b->enc);
    int rc = octet_tok_encode_ids(b->tok, a, b->pair_ids ? p : NULL, (size_t)count, (size_t)b->max_length,
                                  OCTET_PAD_LONGEST, &b->enc, e);
    if (rc != OCTET_OK)
        return rc;
    out->T = (int)b->enc.seq_len;
    out->ids = b->enc.input_ids;
    out->mask = b->enc.attention_mask;
    return OCTET_OK;
}

int batcher_make(batcher *b, const size_t *idx, int count, model_batch *out, octet_err *e)
{
    const octet_dataset *ds = b->ds;
    if (count < 1 || count > b->max_batch)
        return octet_fail(e, OCTET_ERR_ARG, "", "batch of %d rows (1..%d allowed)", count, b->max_batch);
    memset(out, 0, sizeof *out);
    out->B = count;
    for (int r = 0; r < count; r++)
        b->labels[r] = ds->labels[idx[r]];
    out->labels = b->labels;
    if (!ds->n_features)
        return make_text(b, idx, count, out, e);
    size_t F = ds->n_features;
    for (int r = 0; r < count; r++)
        memcpy(b->features + (size_t)r * F, ds->features + idx[r] * F, F * sizeof(float));
    out->features = b->features;
    return OCTET_OK;
}
