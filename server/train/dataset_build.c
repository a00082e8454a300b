/* dataset_build.c: the dataset object (free, class counts, limits) and the helpers the
 * sources build one with (dataset_impl.h): a growable builder, the label map for named
 * labels, and the text hash behind deterministic splits. It depends on no source. */
#include "train/dataset.h"
#include "train/dataset_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- the dataset object ---- */

static void free_strings(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void octet_dataset_free(octet_dataset *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->features);
    free_strings(d->text, d->n);
    free_strings(d->text_pair, d->n);
    free(d->labels);
    free_strings(d->class_names, (size_t)d->num_classes);
    memset(d, 0, sizeof *d);
}

void octet_dataset_class_counts(const octet_dataset *d, size_t *counts)
{
    memset(counts, 0, (size_t)d->num_classes * sizeof *counts);
    for (size_t i = 0; i < d->n; i++)
        if (d->labels[i] >= 0 && d->labels[i] < d->num_classes)
            counts[d->labels[i]]++;
}

/* splitmix64: the stream behind the limits' shuffle. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Moves the kept examples (sorted indices keep[0..k)) to the front and frees the rest. */
static void compact(octet_dataset *d, const size_t *keep, size_t k)
{
    size_t next = 0;
    for (size_t i = 0, j = 0; i < d->n; i++) {
        int kept = j < k && keep[j] == i;
        if (!kept) {
            if (d->text)
                free(d->text[i]);
            if (d->text_pair)
                free(d->text_pair[i]);
            continue;
        }
        j++;
        if (d->features)
            memmove(d->features + next * d->n_features, d->features + i * d->n_features,
                    d->n_features * sizeof *d->features);
        if (d->text)
            d->text[next] = d->text[i];
        if (d->text_pair)
            d->text_pair[next] = d->text_pair[i];
        d->labels[next] = d->labels[i];
        next++;
    }
    d->n = k;
}

int octet_dataset_limit(octet_dataset *d, size_t limit, uint64_t seed, octet_err *e)
{
    if (limit == 0 || limit >= d->n)
        return OCTET_OK;
    size_t *perm = malloc(d->n * sizeof *perm);
    if (!perm)
        return octet_fail(e, OCTET_ERR_NOMEM, "dataset", "out of memory");
    for (size_t i = 0; i < d->n; i++)
        perm[i] = i;
    uint64_t s = seed;
    for (size_t i = d->n - 1; i > 0; i--) {         /* Fisher-Yates */
        size_t j = (size_t)(splitmix64(&s) % (i + 1));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    qsort(perm, limit, sizeof *perm, cmp_size);
    compact(d, perm, limit);
    free(perm);
    return OCTET_OK;
}

/* ---- shared helpers (dataset_impl.h) ---- */

uint64_t ds_hash(const char *s, size_t n, uint64_t salt)
{
    uint64_t h = 1469598103934665603ull ^ salt;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return splitmix64(&h);
}

int ds_is_eval(const char *text, const char *pair)
{
    uint64_t h = ds_hash(text, strlen(text), 0x5eed);
    if (pair)
        h ^= ds_hash(pair, strlen(pair), 0xfa12);
    return h % 10 == 0;
}

int dsb_push(ds_builder *b, const char *text, size_t len, const char *pair, int32_t label)
{
    octet_dataset *d = &b->d;
    if (d->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 1024;
        char **t = realloc(d->text, cap * sizeof *t);
        if (t)
            d->text = t;
        char **p = t ? realloc(d->text_pair, cap * sizeof *p) : NULL;
        if (p)
            d->text_pair = p;
        int32_t *l = p ? realloc(d->labels, cap * sizeof *l) : NULL;
        if (!l)
            return -1;
        d->labels = l;
        b->cap = cap;
    }
    char *s = malloc(len + 1);
    char *ps = pair ? strdup(pair) : NULL;
    if (!s || (pair && !ps)) {
        free(s);
        free(ps);
        return -1;
    }
    memcpy(s, text, len);
    s[len] = '\0';
    d->text[d->n] = s;
    d->text_pair[d->n] = ps;
    d->labels[d->n] = label;
    d->n++;
    b->has_pair |= pair != NULL;
    return 0;
}

int dsb_finish(ds_builder *b, const char *name, char *const *class_names, int num_classes, octet_dataset *out)
{
    octet_dataset *d = &b->d;
    if (!b->has_pair) {
        free(d->text_pair);
        d->text_pair = NULL;
    }
    if (!d->text && !(d->text = calloc(1, sizeof *d->text)))
        return -1;
    if (!d->labels && !(d->labels = calloc(1, sizeof *d->labels)))
        return -1;
    d->num_classes = num_classes;
    d->class_names = calloc((size_t)(num_classes > 0 ? num_classes : 1), sizeof *d->class_names);
    d->name = strdup(name);
    if (!d->class_names || !d->name)
        return -1;
    for (int i = 0; i < num_classes; i++)
        if (!(d->class_names[i] = strdup(class_names[i])))
            return -1;
    *out = *d;
    memset(b, 0, sizeof *b);
    return 0;
}

void dsb_free(ds_builder *b)
{
    octet_dataset_free(&b->d);
    memset(b, 0, sizeof *b);
}

int label_map_id(label_map *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        char **v = realloc(m->names, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        m->names = v;
        m->cap = cap;
    }
    if (!(m->names[m->n] = strdup(name)))
        return -1;
    return m->n++;
}

void label_map_free(label_map *m)
{
    free_strings(m->names, (size_t)m->n);
    memset(m, 0, sizeof *m);
}
