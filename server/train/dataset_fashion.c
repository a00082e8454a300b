/* dataset_fashion.c: the fashion-mnist built-in: Debian's dataset-fashion-mnist IDX files
 * (gzip) read through idx.c into 784-feature rows in [0, 1] with the ten class names of the
 * Fashion-MNIST paper, train = the 60000 training images, eval = the 10000 test images; and its
 * shape from the IDX headers alone, for estimates. */
#include "train/dataset.h"
#include "train/dataset_impl.h"
#include "train/idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fashion_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Reads one split (prefix "train" or "t10k") into d. */
static int fashion_split(const char *dir, const char *prefix, const char *name, octet_dataset *d, octet_err *e)
{
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    size_t n = 0, rows = 0, cols = 0, nl = 0;
    int rc = octet_idx_read_images(ipath, &d->features, &n, &rows, &cols, e);
    if (rc == OCTET_ERR_IO) {
        char why[384];
        snprintf(why, sizeof why, "%.300s", e ? e->message : ipath);
        return octet_fail(e, rc, "dataset.name", "fashion-mnist: %s (install Debian's dataset-fashion-mnist)", why);
    }
    if (rc == OCTET_OK)
        rc = octet_idx_read_labels(lpath, &d->labels, &nl, e);
    if (rc == OCTET_OK && nl != n)
        rc = octet_fail(e, OCTET_ERR_FORMAT, "dataset.name", "fashion-mnist: %s has %zu images but %s has %zu labels",
                        ipath, n, lpath, nl);
    for (size_t i = 0; rc == OCTET_OK && i < n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= 10)
            rc = octet_fail(e, OCTET_ERR_FORMAT, "dataset.name", "%s: label %d of image %zu is not in 0..9", lpath,
                            d->labels[i], i);
    d->n = n;
    d->n_features = rows * cols;
    d->num_classes = 10;
    d->class_names = calloc(10, sizeof *d->class_names);
    d->name = strdup(name);
    if (rc == OCTET_OK && (!d->class_names || !d->name))
        rc = octet_fail(e, OCTET_ERR_NOMEM, "dataset.name", "out of memory");
    for (int c = 0; rc == OCTET_OK && c < 10; c++)
        if (!(d->class_names[c] = strdup(fashion_classes[c])))
            rc = octet_fail(e, OCTET_ERR_NOMEM, "dataset.name", "out of memory");
    if (rc != OCTET_OK)
        octet_dataset_free(d);
    return rc;
}

int octet_data_fashion_mnist(const char *dir, octet_dataset *train, octet_dataset *eval, octet_err *e)
{
    memset(train, 0, sizeof *train);
    memset(eval, 0, sizeof *eval);
    int rc = fashion_split(dir, "train", "fashion-mnist/train", train, e);
    if (rc == OCTET_OK)
        rc = fashion_split(dir, "t10k", "fashion-mnist/test", eval, e);
    if (rc != OCTET_OK)
        octet_dataset_free(train);
    return rc;
}

/* The number of images of one split and the features per image, from the headers. */
static int fashion_split_shape(const char *dir, const char *prefix, size_t *n, size_t *features, octet_err *e)
{
    char ipath[4096], lpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    size_t dims[3], nl = 0;
    int rc = octet_idx_read_dims(ipath, 3, dims, e);
    if (rc == OCTET_ERR_IO) {
        char why[384];
        snprintf(why, sizeof why, "%.300s", e ? e->message : ipath);
        return octet_fail(e, rc, "dataset.name", "fashion-mnist: %s (install Debian's dataset-fashion-mnist)", why);
    }
    if (rc == OCTET_OK)
        rc = octet_idx_read_dims(lpath, 1, &nl, e);
    if (rc == OCTET_OK && nl != dims[0])
        rc = octet_fail(e, OCTET_ERR_FORMAT, "dataset.name", "fashion-mnist: %s has %zu images but %s has %zu labels",
                        ipath, dims[0], lpath, nl);
    *n = dims[0];
    *features = dims[1] * dims[2];
    return rc;
}

int octet_data_fashion_mnist_shape(const char *dir, size_t *n_features, size_t *n_train, size_t *n_eval,
                                   octet_err *e)
{
    size_t fe = 0;
    int rc = fashion_split_shape(dir, "train", n_train, n_features, e);
    if (rc == OCTET_OK)
        rc = fashion_split_shape(dir, "t10k", n_eval, &fe, e);
    return rc;
}
