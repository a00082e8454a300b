/* dataset.c: the built-in catalog and the dispatch from a job's dataset spec to a source
 * (dataset_fashion.c, dataset_fortunes.c, dataset_files.c), followed by the label check and
 * the limits. The dataset object and the helpers the sources build it with are
 * dataset_build.c's, so the sources depend on those helpers and this file on the sources. */
#include "train/dataset.h"

#include <string.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define FORTUNES_DIR "/usr/share/games/fortunes"

static const octet_data_builtin builtins[] = {
    {"fashion-mnist", "image", 10, "Fashion-MNIST (Debian dataset-fashion-mnist): 60000 train / 10000 test "
                                   "28x28 grey images, 784 features in [0,1], 10 clothing classes"},
    {"fortunes-lang", "text", 6, "fortune cookies by language (Debian fortunes, -de, -it, -es, -br, -pl): "
                                 "en de it es pt-br pl, balanced, 90/10 train/validation split by text hash"},
    {"fortunes-lang-full", "text", 6, "fortunes-lang without balancing: every deduplicated fortune of up to "
                                      "512 bytes"},
};
#define NBUILTIN (sizeof builtins / sizeof builtins[0])

const octet_data_builtin *octet_data_builtins(size_t *count)
{
    *count = NBUILTIN;
    return builtins;
}

int octet_data_is_builtin(const char *name)
{
    for (size_t i = 0; i < NBUILTIN; i++)
        if (name && strcmp(name, builtins[i].name) == 0)
            return 1;
    return 0;
}

/* ---- dispatch ---- */

static int unknown_name(const char *name, octet_err *e)
{
    char list[256] = "";
    for (size_t i = 0; i < NBUILTIN; i++) {
        strncat(list, builtins[i].name, sizeof list - strlen(list) - 1);
        if (i + 1 < NBUILTIN)
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return octet_fail(e, OCTET_ERR_ARG, "dataset.name",
                      "unknown dataset '%s'; built-in datasets are: %s (or give train_file/eval_file)", name, list);
}

/* Labels must fit the model's head when its size is known. */
static int check_num_labels(const octet_dataset *d, int num_labels, octet_err *e)
{
    if (num_labels <= 0 || d->num_classes <= num_labels)
        return OCTET_OK;
    return octet_fail(e, OCTET_ERR_ARG, "model.num_labels", "dataset %s has %d classes but model.num_labels is %d",
                      d->name, d->num_classes, num_labels);
}

static int load_source(const octet_data_spec *s, octet_dataset *train, octet_dataset *eval, octet_err *e)
{
    if (s->name && *s->name) {
        if (strcmp(s->name, "fashion-mnist") == 0)
            return octet_data_fashion_mnist(s->fashion_mnist_dir ? s->fashion_mnist_dir : FASHION_DIR, train, eval, e);
        if (strcmp(s->name, "fortunes-lang") == 0 || strcmp(s->name, "fortunes-lang-full") == 0)
            return octet_data_fortunes(s->fortunes_dir ? s->fortunes_dir : FORTUNES_DIR,
                                       strcmp(s->name, "fortunes-lang") == 0, train, eval, e);
        return unknown_name(s->name, e);
    }
    if (!s->train_file || !*s->train_file)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.name", "give a dataset name or a train_file");
    return octet_data_files(s->train_file, s->eval_file, s->num_labels, train, eval, e);
}

int octet_data_load(const octet_data_spec *spec, octet_dataset *train, octet_dataset *eval, octet_err *e)
{
    memset(train, 0, sizeof *train);
    memset(eval, 0, sizeof *eval);
    int rc = load_source(spec, train, eval, e);
    if (rc == OCTET_OK)
        rc = check_num_labels(train, spec->num_labels, e);
    if (rc == OCTET_OK)
        rc = octet_dataset_limit(train, spec->train_limit, spec->seed, e);
    if (rc == OCTET_OK)
        rc = octet_dataset_limit(eval, spec->eval_limit, spec->seed ^ 0xe7a1e7a1e7a1e7a1ull, e);
    if (rc != OCTET_OK) {
        octet_dataset_free(train);
        octet_dataset_free(eval);
    }
    return rc;
}

/* ---- the shape alone ---- */

static size_t limited(size_t n, size_t limit) { return limit && limit < n ? limit : n; }

int octet_data_shape_of(const octet_data_spec *s, octet_data_shape *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    int rc = OCTET_OK;
    const char *name = s->name && *s->name ? s->name : NULL;
    if (name && strcmp(name, "fashion-mnist") == 0) {
        rc = octet_data_fashion_mnist_shape(s->fashion_mnist_dir ? s->fashion_mnist_dir : FASHION_DIR,
                                            &out->n_features, &out->n_train, &out->n_eval, e);
        out->n_train = limited(out->n_train, s->train_limit);
        out->n_eval = limited(out->n_eval, s->eval_limit);
        out->num_classes = 10;
    } else if (name && (strcmp(name, "fortunes-lang") == 0 || strcmp(name, "fortunes-lang-full") == 0)) {
        out->num_classes = 6;
    } else if (name) {
        return unknown_name(name, e);
    } else {
        octet_dataset train, eval;
        if ((rc = octet_data_load(s, &train, &eval, e)) != OCTET_OK)
            return rc;
        out->n_features = train.n_features;
        out->num_classes = train.num_classes > eval.num_classes ? train.num_classes : eval.num_classes;
        out->n_train = train.n;
        out->n_eval = eval.n;
        out->loaded = 1;
        octet_dataset_free(&train);
        octet_dataset_free(&eval);
        return OCTET_OK;
    }
    if (rc == OCTET_OK && s->num_labels > 0 && out->num_classes > s->num_labels) /* check_num_labels's rule */
        rc = octet_fail(e, OCTET_ERR_ARG, "model.num_labels", "dataset %s has %d classes but model.num_labels is %d",
                        name, out->num_classes, s->num_labels);
    return rc;
}
