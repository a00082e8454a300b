/* check_train_data_set.c: the dataset suite: IDX parsing and its refusals, Debian's
 * Fashion-MNIST (counts, ranges, class balance, first labels and pixels as Python's
 * gzip+struct read them), the fortunes-lang builder on a miniature fortunes tree with known
 * answers and on the installed packages (six classes, deterministic, no train/validation
 * overlap, fast), JSONL and CSV user files with every refusal naming file and line, the
 * label map, and the train/eval limits. */
#include "check_train_data.h"
#include "testlib.h"
#include "train/dataset.h"
#include "train/idx.h"
#include "fileio.h"
#include "train/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist"
#define FORTUNES "/usr/share/games/fortunes"

/* CPU seconds of this process: robust on a machine shared with other builds. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void expect_fail(int rc, const octet_err *e, int status, const char *needle)
{
    ck_assert_msg(rc == status, "rc %d (%s), want %d", rc, e->message, status);
    ck_assert_msg(strstr(e->message, needle) != NULL, "message \"%s\" lacks \"%s\"", e->message, needle);
}

static int find_text(const octet_dataset *d, const char *text)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->text[i], text) == 0)
            return (int)i;
    return -1;
}

/* ---- IDX ---- */

static void write_gz(const char *path, const unsigned char *b, size_t n)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    gzclose(f);
}

START_TEST(test_idx_small_and_refusals)
{
    char dir[256], p[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "dataset"), 0);
    const unsigned char img[16 + 12] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                                        0, 255, 51, 102, 153, 204, 1, 2, 3, 4, 5, 6};
    float *px;
    size_t n, r, c;
    octet_err e = {0};
    snprintf(p, sizeof p, "%s/img.gz", dir);
    write_gz(p, img, sizeof img);
    ck_assert_int_eq(octet_idx_read_images(p, &px, &n, &r, &c, &e), OCTET_OK);
    ck_assert(n == 2 && r == 2 && c == 3);
    ck_assert(px[0] == 0.0f && px[1] == 1.0f && px[2] == 0.2f && px[11] == 6.0f / 255.0f);
    free(px);
    test_write_file(dir, "img.raw", img, sizeof img, p, sizeof p);    /* uncompressed works too */
    ck_assert_int_eq(octet_idx_read_images(p, &px, &n, &r, &c, &e), OCTET_OK);
    free(px);
    test_write_file(dir, "short", img, sizeof img - 1, p, sizeof p);
    expect_fail(octet_idx_read_images(p, &px, &n, &r, &c, &e), &e, OCTET_ERR_FORMAT, "truncated");
    unsigned char more[sizeof img + 1];
    memcpy(more, img, sizeof img);
    more[sizeof img] = 9;
    test_write_file(dir, "long", more, sizeof more, p, sizeof p);
    expect_fail(octet_idx_read_images(p, &px, &n, &r, &c, &e), &e, OCTET_ERR_FORMAT, "past the");
    expect_fail(octet_idx_read_labels(p, (int32_t **)&px, &n, &e), &e, OCTET_ERR_FORMAT, "magic 00 00 08 03");
    ck_assert_ptr_nonnull(strstr(e.message, "long"));
    const unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9};
    int32_t *l;
    test_write_file(dir, "lab", lab, sizeof lab, p, sizeof p);
    ck_assert_int_eq(octet_idx_read_labels(p, &l, &n, &e), OCTET_OK);
    ck_assert(n == 3 && l[0] == 7 && l[2] == 9);
    free(l);
    test_write_file(dir, "notgz.gz", "\x1f\x8b\x08\x00garbage", 12, p, sizeof p);
    ck_assert_int_eq(octet_idx_read_labels(p, &l, &n, &e), OCTET_ERR_FORMAT);
    snprintf(p, sizeof p, "%s/absent.gz", dir);
    expect_fail(octet_idx_read_labels(p, &l, &n, &e), &e, OCTET_ERR_IO, "absent.gz");
    test_rmtree(dir);
}
END_TEST

/* A FIFO, a directory or a device named as a data file is refused at once, never waited on
 * (a FIFO with no writer would block fopen() forever): OCTET_ERR_IO, "not a regular file",
 * the field that named it. test_mkfifo's alarm fails the test if anything blocks. */
START_TEST(test_non_regular_files_refused)
{
    char dir[256], fifo[512], good[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "fifo"), 0);
    test_mkfifo(dir, "train.jsonl", fifo, sizeof fifo);
    const char *others[2] = {dir, "/dev/null"};
    char *buf;
    size_t len;
    octet_err e = {0};
    expect_fail(octet_read_file(fifo, 1 << 20, "some.field", &buf, &len, &e), &e, OCTET_ERR_IO, "not a regular file");
    ck_assert_str_eq(e.field, "some.field");
    ck_assert_ptr_null(buf);
    for (int i = 0; i < 2; i++)
        expect_fail(octet_read_file(others[i], 1 << 20, "some.field", &buf, &len, &e), &e, OCTET_ERR_IO,
                    "not a regular file");
    float *px;
    size_t n, r, c;
    expect_fail(octet_idx_read_images(fifo, &px, &n, &r, &c, &e), &e, OCTET_ERR_IO, "not a regular file");
    octet_dataset tr, ev;
    octet_data_spec spec = {.train_file = fifo};
    expect_fail(octet_data_load(&spec, &tr, &ev, &e), &e, OCTET_ERR_IO, "not a regular file");
    ck_assert_str_eq(e.field, "dataset.train_file");
    test_write_file(dir, "good.jsonl", "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1}\n",
                    strlen("{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1}\n"), good, sizeof good);
    octet_data_spec spec2 = {.train_file = good, .eval_file = fifo};
    expect_fail(octet_data_load(&spec2, &tr, &ev, &e), &e, OCTET_ERR_IO, "not a regular file");
    ck_assert_str_eq(e.field, "dataset.eval_file");
    /* fortunes: a FIFO among a language's files is passed over; as pt-br's one file, refused */
    char root[512];
    snprintf(root, sizeof root, "%s/fortunes", dir);
    const char *subs[4] = {"de", "it", "es", "pl"};
    char sub[1024];
    ck_assert_int_eq(mkdir(root, 0755), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", root, subs[i]);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        test_write_text(sub, "a", i == 0 ? "Guten Tag.\n%\nAuf Wiedersehen.\n" : "Ciao, amico.\n%\nHola, amigo.\n");
    }
    test_write_text(root, "wisdom", "Look before you leap.\n%\nHaste makes waste.\n");
    test_write_text(root, "brasil", "Bom dia.\n%\nBoa noite.\n");
    snprintf(sub, sizeof sub, "%s/de", root);
    test_mkfifo(sub, "zz-fifo", NULL, 0);
    octet_err_clear(&e);
    int rc = octet_data_fortunes(root, 0, &tr, &ev, &e);
    ck_assert_msg(rc == OCTET_OK, "%s", e.message);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    test_mkfifo(root, "brasil", NULL, 0);
    expect_fail(octet_data_fortunes(root, 0, &tr, &ev, &e), &e, OCTET_ERR_IO, "pt-br");
    ck_assert_str_eq(e.field, "dataset.name");
    test_rmtree(dir);
}
END_TEST

/* The fortune files are text inputs like any other: a file that is not valid UTF-8 (here a
 * Latin-1 one) fails the load naming file:line:column, instead of losing its entries
 * silently. (Debian's own files are all UTF-8: test_fortunes_installed loads them.) */
START_TEST(test_fortunes_refuse_invalid_utf8)
{
    char dir[256], sub[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "fortunes-utf8"), 0);
    const char *subs[4] = {"de", "it", "es", "pl"};
    for (int i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        test_write_text(sub, "a", i == 0 ? "Gr\xc3\xbc\xc3\x9f Gott.\n%\nAuf Wiedersehen.\n" : "Ciao.\n%\nHola.\n");
    }
    test_write_text(dir, "wisdom", "Look before you leap.\n%\nHaste makes waste.\n");
    test_write_text(dir, "brasil", "Bom dia.\n%\nBoa noite.\n");
    octet_dataset tr, ev;
    octet_err e = {0};
    ck_assert_msg(octet_data_fortunes(dir, 0, &tr, &ev, &e) == OCTET_OK, "%s", e.message);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    snprintf(sub, sizeof sub, "%s/de", dir);
    test_write_text(sub, "b", "Guten Tag.\n%\nSch\xf6nen Tag noch.\n");
    expect_fail(octet_data_fortunes(dir, 0, &tr, &ev, &e), &e, OCTET_ERR_FORMAT, "/de/b:3:4: invalid UTF-8 (byte 0xF6)");
    ck_assert_str_eq(e.field, "dataset.name");
    ck_assert_uint_eq(tr.n, 0);
    test_rmtree(dir);
}
END_TEST

/* ---- Fashion-MNIST ---- */

START_TEST(test_fashion_mnist)
{
    if (access(FASHION "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        test_skip("fashion-mnist: %s missing (Debian dataset-fashion-mnist)", FASHION);
        return;
    }
    octet_dataset tr, te;
    octet_err e = {0};
    octet_data_spec spec = {.name = "fashion-mnist"};
    double t0 = cpu_s();
    ck_assert_msg(octet_data_load(&spec, &tr, &te, &e) == OCTET_OK, "%s", e.message);
    fprintf(stderr, "fashion-mnist: loaded in %.2f CPU s\n", cpu_s() - t0);
    ck_assert_uint_eq(tr.n, 60000);
    ck_assert_uint_eq(te.n, 10000);
    ck_assert_uint_eq(tr.n_features, 784);
    ck_assert_int_eq(tr.num_classes, 10);
    ck_assert_str_eq(tr.class_names[0], "T-shirt/top");
    ck_assert_str_eq(tr.class_names[9], "Ankle boot");
    ck_assert_ptr_null(tr.text);
    size_t out_of_range = 0;        /* counted, then asserted: ck_assert per element is slow */
    for (size_t i = 0; i < tr.n * 784; i++)
        out_of_range += !(tr.features[i] >= 0.0f && tr.features[i] <= 1.0f);
    for (size_t i = 0; i < te.n * 784; i++)
        out_of_range += !(te.features[i] >= 0.0f && te.features[i] <= 1.0f);
    ck_assert_uint_eq(out_of_range, 0);
    size_t counts[10];
    octet_dataset_class_counts(&tr, counts);
    for (int k = 0; k < 10; k++)
        ck_assert_uint_eq(counts[k], 6000);
    octet_dataset_class_counts(&te, counts);
    for (int k = 0; k < 10; k++)
        ck_assert_uint_eq(counts[k], 1000);
    /* as read by python3: gzip.open(...).read(), struct.unpack('>II', ...), labels[8:] */
    const int32_t first_train[12] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
    const int32_t first_test[12] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5};
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(tr.labels[i], first_train[i]);
        ck_assert_int_eq(te.labels[i], first_test[i]);
    }
    double sum0 = 0, sum_last = 0;
    for (int j = 0; j < 784; j++) {
        sum0 += tr.features[j] * 255.0;
        sum_last += te.features[(te.n - 1) * 784 + j] * 255.0;
    }
    ck_assert_int_eq((int)(sum0 + 0.5), 76247);        /* sum of image 0's bytes */
    ck_assert_int_eq((int)(sum_last + 0.5), 24390);
    ck_assert(tr.features[14 * 28 + 14] == 217.0f / 255.0f);
    octet_dataset_free(&tr);
    octet_dataset_free(&te);
}
END_TEST

START_TEST(test_fashion_mismatch_refused)
{
    char dir[256], p[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "dataset"), 0);
    const unsigned char img[16 + 4] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4};
    const unsigned char lab[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(p, img, sizeof img);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    write_gz(p, lab, sizeof lab);
    octet_dataset tr, te;
    octet_err e = {0};
    expect_fail(octet_data_fashion_mnist(dir, &tr, &te, &e), &e, OCTET_ERR_FORMAT, "1 images but");
    test_rmtree(dir);
    octet_data_spec spec = {.name = "fashion-mnist", .fashion_mnist_dir = "/nonexistent"};
    expect_fail(octet_data_load(&spec, &tr, &te, &e), &e, OCTET_ERR_IO, "dataset-fashion-mnist");
}
END_TEST

/* ---- fortunes ---- */

START_TEST(test_fortunes_fixture)
{
    char root[512];
    td_data("fortunes", root, sizeof root);
    octet_dataset tr, va;
    octet_err e = {0};
    ck_assert_msg(octet_data_fortunes(root, 0, &tr, &va, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(tr.num_classes, 6);
    const char *names[6] = {"en", "de", "it", "es", "pt-br", "pl"};
    for (int k = 0; k < 6; k++)
        ck_assert_str_eq(tr.class_names[k], names[k]);
    size_t a[6], b[6];
    octet_dataset_class_counts(&tr, a);
    octet_dataset_class_counts(&va, b);
    const size_t want[6] = {4, 2, 3, 2, 2, 3};   /* see tests/data/README.txt */
    for (int k = 0; k < 6; k++)
        ck_assert_msg(a[k] + b[k] == want[k], "class %s: %zu + %zu", names[k], a[k], b[k]);
    octet_dataset *both[2] = {&tr, &va};
    int found = 0;
    for (int s = 0; s < 2; s++) {
        const octet_dataset *d = both[s];
        for (size_t i = 0; i < d->n; i++) {
            ck_assert(strstr(d->text[i], "Berliner") == NULL);        /* in en and de: dropped */
            ck_assert(strstr(d->text[i], "OFFENSIVE") == NULL);
            ck_assert(strstr(d->text[i], "binary") == NULL);
            ck_assert(strlen(d->text[i]) <= 512 && strchr(d->text[i], '\r') == NULL);
        }
        found += find_text(d, "Look before you leap.") >= 0;
        found += find_text(d, "Underlined word.") >= 0;
        found += find_text(d, "Time flies like an arrow. -- Groucho Marx") >= 0;
        found += find_text(d, "Tra il dire e il fare c'è di mezzo il mare.") >= 0;
    }
    ck_assert_int_eq(found, 4);
    octet_dataset_free(&tr);
    octet_dataset_free(&va);
    ck_assert_int_eq(octet_data_fortunes(root, 1, &tr, &va, &e), OCTET_OK);   /* balanced: 2 each */
    octet_dataset_class_counts(&tr, a);
    octet_dataset_class_counts(&va, b);
    for (int k = 0; k < 6; k++)
        ck_assert_uint_eq(a[k] + b[k], 2);
    ck_assert_str_eq(tr.name, "fortunes-lang/train");
    octet_dataset_free(&tr);
    octet_dataset_free(&va);
    /* a tree without the German files names the package to install */
    char dir[256], p[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "dataset"), 0);
    test_write_file(dir, "wisdom", "Hello there.\n", 13, p, sizeof p);
    expect_fail(octet_data_fortunes(dir, 0, &tr, &va, &e), &e, OCTET_ERR_IO, "fortunes-de");
    test_rmtree(dir);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_no_overlap(const octet_dataset *tr, const octet_dataset *va)
{
    /* sort copies of the pointers and merge */
    char **x = malloc(tr->n * sizeof *x), **y = malloc(va->n * sizeof *y);
    memcpy(x, tr->text, tr->n * sizeof *x);
    memcpy(y, va->text, va->n * sizeof *y);
    qsort(x, tr->n, sizeof *x, cmp_str);
    qsort(y, va->n, sizeof *y, cmp_str);
    size_t dups = 0, shared = 0;
    for (size_t i = 1; i < tr->n; i++)
        dups += strcmp(x[i - 1], x[i]) == 0;
    size_t i = 0, j = 0;
    while (i < tr->n && j < va->n) {
        int c = strcmp(x[i], y[j]);
        shared += c == 0;
        if (c <= 0)
            i++;
        else
            j++;
    }
    ck_assert_msg(dups == 0 && shared == 0, "%zu duplicates in train, %zu texts in both", dups, shared);
    free(x);
    free(y);
}

START_TEST(test_fortunes_installed)
{
    if (access(FORTUNES "/pl", R_OK) != 0 || access(FORTUNES "/brasil", R_OK) != 0) {
        test_skip("fortunes-lang: Debian's fortune packages missing (fortunes-pl, fortunes-br, ...)");
        return;
    }
    octet_dataset tr, va, tr2, va2;
    octet_err e = {0};
    octet_data_spec spec = {.name = "fortunes-lang"};
    double t0 = cpu_s();
    ck_assert_msg(octet_data_load(&spec, &tr, &va, &e) == OCTET_OK, "%s", e.message);
    double dt = cpu_s() - t0;
    ck_assert_msg(dt < 2.0, "building fortunes-lang took %.2f s of CPU", dt);
    ck_assert_int_ge(tr.num_classes, 6);
    size_t a[6], b[6], total = 0;
    octet_dataset_class_counts(&tr, a);
    octet_dataset_class_counts(&va, b);
    for (int k = 0; k < 6; k++) {
        ck_assert_uint_eq(a[k] + b[k], a[0] + b[0]);            /* balanced */
        ck_assert_uint_gt(b[k], 0);
        total += a[k] + b[k];
    }
    ck_assert_uint_gt(a[0] + b[0], 1000);
    ck_assert(va.n * 100 > total * 7 && va.n * 100 < total * 13);   /* about a tenth */
    fprintf(stderr, "fortunes-lang: %zu train + %zu validation, %zu per language, built in %.2f CPU s\n", tr.n, va.n,
            a[0] + b[0], dt);
    check_no_overlap(&tr, &va);
    ck_assert_int_eq(octet_data_load(&spec, &tr2, &va2, &e), OCTET_OK);   /* deterministic */
    ck_assert_uint_eq(tr.n, tr2.n);
    ck_assert_uint_eq(va.n, va2.n);
    size_t differ = 0, bad = 0;
    for (size_t i = 0; i < tr.n; i++)
        differ += strcmp(tr.text[i], tr2.text[i]) != 0 || tr.labels[i] != tr2.labels[i];
    for (size_t i = 0; i < va.n; i++)
        differ += strcmp(va.text[i], va2.text[i]) != 0 || va.labels[i] != va2.labels[i];
    ck_assert_uint_eq(differ, 0);
    octet_dataset_free(&tr2);
    octet_dataset_free(&va2);
    for (size_t i = 0; i < tr.n; i++)
        bad += tr.text[i][0] == '\0' || strlen(tr.text[i]) > 512 || tr.text[i][0] == ' ';
    ck_assert_uint_eq(bad, 0);
    octet_dataset_free(&tr);
    octet_dataset_free(&va);
    spec.name = "fortunes-lang-full";
    ck_assert_int_eq(octet_data_load(&spec, &tr, &va, &e), OCTET_OK);
    octet_dataset_class_counts(&tr, a);
    octet_dataset_class_counts(&va, b);
    fprintf(stderr, "fortunes-lang-full: en %zu de %zu it %zu es %zu pt-br %zu pl %zu\n", a[0] + b[0], a[1] + b[1],
            a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5]);
    check_no_overlap(&tr, &va);
    octet_dataset_free(&tr);
    octet_dataset_free(&va);
}
END_TEST

/* ---- user files ---- */

START_TEST(test_jsonl_named_labels)
{
    char trf[512], evf[512];
    td_data("train_small.jsonl", trf, sizeof trf);
    td_data("eval_small.jsonl", evf, sizeof evf);
    octet_data_spec spec = {.train_file = trf, .eval_file = evf};
    octet_dataset tr, ev;
    octet_err e = {0};
    ck_assert_msg(octet_data_load(&spec, &tr, &ev, &e) == OCTET_OK, "%s", e.message);
    ck_assert_uint_eq(tr.n, 6);
    ck_assert_uint_eq(ev.n, 3);
    ck_assert_int_eq(tr.num_classes, 4);                      /* pos neg neutral, then mixed from eval */
    ck_assert_int_eq(ev.num_classes, 4);
    const char *names[4] = {"pos", "neg", "neutral", "mixed"};
    for (int k = 0; k < 4; k++)
        ck_assert_str_eq(tr.class_names[k], names[k]);
    const int32_t want[6] = {0, 1, 0, 2, 0, 1}, want_ev[3] = {0, 1, 3};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(tr.labels[i], want[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ev.labels[i], want_ev[i]);
    ck_assert_str_eq(tr.text[4], "Brilliant, funny and warm \xC3\xA9");
    ck_assert_ptr_null(tr.text_pair);
    ck_assert_uint_eq(tr.n_features, 0);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    spec.num_labels = 3;                                       /* "mixed" would be class 3 */
    expect_fail(octet_data_load(&spec, &tr, &ev, &e), &e, OCTET_ERR_FORMAT, "eval_small.jsonl:3");
    ck_assert_str_eq(e.field, "dataset.eval_file");
}
END_TEST

START_TEST(test_csv_pairs_and_quoting)
{
    char trf[512], evf[512];
    td_data("train_pairs.csv", trf, sizeof trf);
    td_data("eval_pairs.csv", evf, sizeof evf);
    octet_dataset tr, ev;
    octet_err e = {0};
    ck_assert_msg(octet_data_files(trf, evf, 0, &tr, &ev, &e) == OCTET_OK, "%s", e.message);
    ck_assert_uint_eq(tr.n, 4);
    ck_assert_uint_eq(ev.n, 2);
    ck_assert_str_eq(tr.text[0], "A man, a plan");
    ck_assert_str_eq(tr.text_pair[0], "a canal: Panama");
    ck_assert_str_eq(tr.text[1], "He said \"hi\"");
    ck_assert_str_eq(tr.text_pair[1], "She said hello");
    ck_assert_str_eq(tr.text[2], "line one\nline two");
    ck_assert_str_eq(tr.text_pair[3], "");
    ck_assert_int_eq(tr.num_classes, 2);                      /* integer labels: ids */
    ck_assert_str_eq(tr.class_names[1], "1");
    ck_assert(tr.labels[0] == 1 && tr.labels[1] == 0 && tr.labels[2] == 1 && tr.labels[3] == 0);
    ck_assert_str_eq(ev.text[0], "x, y");                      /* other column order */
    ck_assert_str_eq(ev.text_pair[0], "z");
    ck_assert(ev.labels[0] == 0 && ev.labels[1] == 1);
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
    td_data("train_names.csv", trf, sizeof trf);               /* BOM, names, no eval file */
    ck_assert_int_eq(octet_data_files(trf, NULL, 0, &tr, &ev, &e), OCTET_OK);
    ck_assert_uint_eq(tr.n + ev.n, 3);
    ck_assert_int_eq(tr.num_classes, 2);
    ck_assert_str_eq(tr.class_names[0], "pos");
    ck_assert_ptr_nonnull(strstr(ev.name, "held-out"));
    octet_dataset_free(&tr);
    octet_dataset_free(&ev);
}
END_TEST

/* Each malformed file: (name, contents, eval contents or NULL, num_labels, status, needle). */
typedef struct bad_case {
    const char *name, *body, *eval;
    int num_labels, status;
    const char *needle;
} bad_case;

static const bad_case bad_cases[] = {
    /* class ids stop at MODEL_MAX_LABELS - 1 (model.h), the one limit of num_labels */
    {"toolarge.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":65536}\n", NULL, 0, OCTET_ERR_FORMAT,
     "toolarge.jsonl:2: label 65536 is out of range (0..65535)"},
    /* text must be valid UTF-8 in every format (uc_check_utf8): a stray Latin-1 byte, an
     * overlong form, a surrogate, a sequence cut short; the error names file:line and the byte
     * column (JSONL) or the CSV column */
    {"latin1.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"caf\xe9\",\"label\":1}\n", NULL, 0,
     OCTET_ERR_FORMAT, "latin1.jsonl:2:13: invalid UTF-8 (byte 0xE9)"},
    {"latin1.csv", "text,label\na,0\ncaf\xe9,1\n", NULL, 0, OCTET_ERR_FORMAT,
     "latin1.csv:3: column 1 (text): invalid UTF-8 (byte 0xE9)"},
    {"overlong.csv", "text,label\na,0\nb,\xc0\xaf\n", NULL, 0, OCTET_ERR_FORMAT,
     "overlong.csv:3: column 2 (label): invalid UTF-8 (byte 0xC0)"},
    {"surrogate.csv", "text,text_pair,label\na,\"x\ny\xed\xa0\x80\",0\n", NULL, 0, OCTET_ERR_FORMAT,
     "surrogate.csv:3: column 2 (text_pair): invalid UTF-8 (byte 0xED)"},
    {"othercol.csv", "text,label,note\na,0,\xff\n", NULL, 0, OCTET_ERR_FORMAT,
     "othercol.csv:2: column 3: invalid UTF-8 (byte 0xFF)"},
    {"header.csv", "text,label,n\xf6te\na,0,x\n", NULL, 0, OCTET_ERR_FORMAT,
     "header.csv:1: column 3 (header): invalid UTF-8 (byte 0xF6)"},
    {"cut.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n", "{\"text\":\"\xe2\x82\", \"label\":1}\n",
     0, OCTET_ERR_FORMAT, "eval.jsonl:1:10: invalid UTF-8 (byte 0xE2)"},
    {"badjson.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n{\"text\": \"c\", \"label\" 1}\n",
     NULL, 0, OCTET_ERR_FORMAT, "badjson.jsonl:3:"},
    {"nolabel.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\"}\n", NULL, 0, OCTET_ERR_FORMAT,
     "nolabel.jsonl:2: missing \"label\""},
    {"notext.jsonl", "{\"label\":0}\n", NULL, 0, OCTET_ERR_FORMAT, "notext.jsonl:1: missing \"text\""},
    {"textnum.jsonl", "{\"text\":5,\"label\":0}\n", NULL, 0, OCTET_ERR_FORMAT, "\"text\" must be a string"},
    {"float.jsonl", "{\"text\":\"a\",\"label\":0.5}\n", NULL, 0, OCTET_ERR_FORMAT,
     "float.jsonl:1: \"label\" must be an integer or a non-empty string"},
    {"array.jsonl", "[1, 2]\n", NULL, 0, OCTET_ERR_FORMAT, "array.jsonl:1: expected a JSON object"},
    {"dupkey.jsonl", "{\"text\":\"a\",\"text\":\"b\",\"label\":1}\n", NULL, 0, OCTET_ERR_FORMAT, "dupkey.jsonl:1:"},
    {"mixed.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":\"x\"}\n", NULL, 0, OCTET_ERR_FORMAT,
     "mixed.jsonl:2: \"label\" is a string but line 1's is an integer"},
    {"pairs.jsonl", "{\"text\":\"a\",\"text_pair\":\"p\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n", NULL, 0,
     OCTET_ERR_FORMAT, "pairs.jsonl:2: missing \"text_pair\""},
    {"negative.jsonl", "{\"text\":\"a\",\"label\":-1}\n{\"text\":\"b\",\"label\":1}\n", NULL, 0, OCTET_ERR_FORMAT,
     "negative.jsonl:1: label -1 is out of range"},
    {"range.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":5}\n", NULL, 2, OCTET_ERR_FORMAT,
     "range.jsonl:2: label 5 is out of range: model.num_labels is 2"},
    {"oneclass.jsonl", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"x\"}\n", NULL, 0, OCTET_ERR_ARG,
     "at least 2 classes"},
    {"empty.jsonl", "\n  \n", NULL, 0, OCTET_ERR_FORMAT, "empty.jsonl: no examples"},
    {"evalkind.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n",
     "{\"text\":\"c\",\"label\":1}\n{\"text\":\"d\",\"label\":\"one\"}\n", 0, OCTET_ERR_FORMAT,
     "eval.jsonl:2: label \"one\" is not an integer"},
    {"fields.csv", "text,label\na,1\nb,2,3\n", NULL, 0, OCTET_ERR_FORMAT, "fields.csv:3: 3 fields, but the header has 2"},
    {"open.csv", "text,label\na,1\n\"never\nclosed,1\n", NULL, 0, OCTET_ERR_FORMAT,
     "open.csv:3: column 1: quoted field never closed"},
    {"stray.csv", "text,label\nsay \"hi\",1\n", NULL, 0, OCTET_ERR_FORMAT, "stray.csv:2: column 1: quote inside"},
    {"after.csv", "text,label\n\"a\"b,1\n", NULL, 0, OCTET_ERR_FORMAT, "after.csv:2: column 1: text after the closing"},
    {"header.csv", "sentence,label\na,1\n", NULL, 0, OCTET_ERR_FORMAT, "header.csv:1: the header row must name"},
    {"semicolon.csv", "text;label\na;1\n", NULL, 0, OCTET_ERR_FORMAT, "comma-separated"},
    {"emptylabel.csv", "text,label\na,\n", NULL, 0, OCTET_ERR_FORMAT, "emptylabel.csv:2: column 2 (label) is empty"},
    {"headeronly.csv", "text,label\n", NULL, 0, OCTET_ERR_FORMAT, "no examples"},
    {"nopaircol.csv", "text,text_pair,label\na,b,0\nc,d,1\n", "text,label\na,0\n", 0, OCTET_ERR_FORMAT,
     "lacks a text_pair column"},
};

START_TEST(test_malformed_files)
{
    const bad_case *c = &bad_cases[_i];
    char dir[256], trf[512], evf[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "dataset"), 0);
    test_write_file(dir, c->name, c->body, strlen(c->body), trf, sizeof trf);
    const char *ext = strrchr(c->name, '.');
    char evname[32];
    snprintf(evname, sizeof evname, "eval%s", ext);
    if (c->eval)
        test_write_file(dir, evname, c->eval, strlen(c->eval), evf, sizeof evf);
    octet_data_spec spec = {.train_file = trf, .eval_file = c->eval ? evf : NULL, .num_labels = c->num_labels};
    octet_dataset tr, ev;
    octet_err e = {0};
    int rc = octet_data_load(&spec, &tr, &ev, &e);
    ck_assert_msg(rc == c->status, "%s: rc %d (%s)", c->name, rc, e.message);
    ck_assert_msg(strstr(e.message, c->needle) != NULL, "%s: \"%s\" lacks \"%s\"", c->name, e.message, c->needle);
    ck_assert(strncmp(e.field, "dataset.", 8) == 0);
    ck_assert(tr.n == 0 && ev.n == 0 && tr.text == NULL);
    test_rmtree(dir);
}
END_TEST

START_TEST(test_spec_errors)
{
    octet_dataset tr, ev;
    octet_err e = {0};
    octet_data_spec spec = {.name = "imagenet"};
    expect_fail(octet_data_load(&spec, &tr, &ev, &e), &e, OCTET_ERR_ARG, "unknown dataset 'imagenet'");
    ck_assert_ptr_nonnull(strstr(e.message, "fashion-mnist, fortunes-lang, fortunes-lang-full"));
    ck_assert_str_eq(e.field, "dataset.name");
    octet_data_spec none = {0};
    expect_fail(octet_data_load(&none, &tr, &ev, &e), &e, OCTET_ERR_ARG, "train_file");
    octet_data_spec missing = {.train_file = "/nonexistent/train.jsonl"};
    expect_fail(octet_data_load(&missing, &tr, &ev, &e), &e, OCTET_ERR_IO, "/nonexistent/train.jsonl");
    ck_assert_str_eq(e.field, "dataset.train_file");
    char root[512];
    td_data("fortunes", root, sizeof root);
    octet_data_spec small = {.name = "fortunes-lang-full", .fortunes_dir = root, .num_labels = 4};
    expect_fail(octet_data_load(&small, &tr, &ev, &e), &e, OCTET_ERR_ARG, "6 classes but model.num_labels is 4");
    size_t n;
    const octet_data_builtin *b = octet_data_builtins(&n);
    ck_assert_uint_eq(n, 3);
    ck_assert(octet_data_is_builtin("fortunes-lang") && !octet_data_is_builtin("fortunes"));
    ck_assert_str_eq(b[0].kind, "image");
}
END_TEST

START_TEST(test_limits)
{
    char root[512];
    td_data("fortunes", root, sizeof root);
    octet_data_spec spec = {.name = "fortunes-lang-full", .fortunes_dir = root};
    octet_dataset full, fev, a, aev, b, bev, c, cev;
    octet_err e = {0};
    ck_assert_int_eq(octet_data_load(&spec, &full, &fev, &e), OCTET_OK);
    spec.train_limit = 5;
    spec.eval_limit = 1000;                                    /* larger than the set: all of it */
    spec.seed = 42;
    ck_assert_int_eq(octet_data_load(&spec, &a, &aev, &e), OCTET_OK);
    ck_assert_int_eq(octet_data_load(&spec, &b, &bev, &e), OCTET_OK);
    spec.seed = 43;
    ck_assert_int_eq(octet_data_load(&spec, &c, &cev, &e), OCTET_OK);
    ck_assert_uint_eq(a.n, 5);
    ck_assert_uint_eq(aev.n, fev.n);
    int same_as_other_seed = 1, last = -1;
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(a.text[i], b.text[i]);               /* same seed, same subset */
        same_as_other_seed &= strcmp(a.text[i], c.text[i]) == 0;
        int at = find_text(&full, a.text[i]);                  /* a subset, in the original order */
        ck_assert_int_gt(at, last);
        ck_assert_int_eq(a.labels[i], full.labels[at]);
        last = at;
    }
    ck_assert(!same_as_other_seed);
    octet_dataset *all[8] = {&full, &fev, &a, &aev, &b, &bev, &c, &cev};
    for (int i = 0; i < 8; i++)
        octet_dataset_free(all[i]);
    /* the largest class id, MODEL_MAX_LABELS - 1, makes MODEL_MAX_LABELS classes */
    char dir[256], trf[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "labels"), 0);
    const char *body = "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":65535}\n";
    test_write_file(dir, "max.jsonl", body, strlen(body), trf, sizeof trf);
    ck_assert_msg(octet_data_files(trf, NULL, 0, &a, &aev, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(a.num_classes, MODEL_MAX_LABELS);
    octet_dataset_free(&a);
    octet_dataset_free(&aev);
    test_rmtree(dir);
}
END_TEST

Suite *suite_dataset(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_idx_small_and_refusals);
    tcase_add_test(tc, test_non_regular_files_refused);
    tcase_add_test(tc, test_fashion_mnist);
    tcase_add_test(tc, test_fashion_mismatch_refused);
    tcase_add_test(tc, test_fortunes_fixture);
    tcase_add_test(tc, test_fortunes_installed);
    tcase_add_test(tc, test_fortunes_refuse_invalid_utf8);
    tcase_add_test(tc, test_jsonl_named_labels);
    tcase_add_test(tc, test_csv_pairs_and_quoting);
    tcase_add_loop_test(tc, test_malformed_files, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_spec_errors);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);
    return s;
}
