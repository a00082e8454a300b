/* check_train_estimate_device.c: the memory estimate against real runs on the device under test
 * (suite_train_estimate, run by run_train_cuda: "cuda", or "cpu" with --self-test). Every
 * figure must be exact, as on the CPU (check_trainer_estimate.c says why), including what only
 * CUDA books: the optimizer's descriptor and group-scalar tables (workspace) and, with
 * training.precision bf16 / fp16, DistilBERT's 16-bit activation storage. The data are made
 * here in memory (a GPU machine has no Debian datasets): 24 texts of 20 to 300 bytes in 3
 * classes, so that the byte tokenizer's longest sequence reaches max_length 128 and the
 * estimate's bound is the run's length; 64 rows of 20 features in 2 classes for the MLP.
 * Cases: distilbert-tiny under adamw8bit in fp32, bf16 and fp16 (the half precisions on CUDA
 * only), and the MLP under adafactor (its scratch beside the tables). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "estimate_check.h"

Suite *suite_train_estimate(const char *device);

static const char *device_under_test = "cuda";

/* n texts of 20 + 37 i mod 281 bytes of letters, labels i mod 3. */
static void texts(octet_dataset *d, size_t n)
{
    memset(d, 0, sizeof *d);
    d->name = strdup("texts");
    d->n = n;
    d->num_classes = 3;
    d->text = calloc(n, sizeof *d->text);
    d->labels = calloc(n, sizeof *d->labels);
    ck_assert(d->name && d->text && d->labels);
    for (size_t i = 0; i < n; i++) {
        size_t len = 20 + (37 * i) % 281;
        ck_assert_ptr_nonnull(d->text[i] = malloc(len + 1));
        for (size_t k = 0; k < len; k++)
            d->text[i][k] = (char)('a' + (i + 7 * k) % 26);
        d->text[i][len] = '\0';
        d->labels[i] = (int32_t)(i % 3);
    }
}

/* n rows of F features, labels i mod 2. */
static void features(octet_dataset *d, size_t n, size_t F)
{
    memset(d, 0, sizeof *d);
    d->name = strdup("features");
    d->n = n;
    d->n_features = F;
    d->num_classes = 2;
    d->features = calloc(n * F, sizeof *d->features);
    d->labels = calloc(n, sizeof *d->labels);
    ck_assert(d->name && d->features && d->labels);
    for (size_t i = 0; i < n * F; i++)
        d->features[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (size_t i = 0; i < n; i++)
        d->labels[i] = (int32_t)(i % 2);
}

static void release(octet_dataset *d)
{
    for (size_t i = 0; d->text && i < d->n; i++)
        free(d->text[i]);
    free(d->text);
    free(d->features);
    free(d->labels);
    free(d->name);
}

START_TEST(test_distilbert_estimate_on_device)
{
    static const char *const precisions[3] = {"fp32", "bf16", "fp16"};
    if (_i > 0 && strcmp(device_under_test, "cuda")) {
        printf("estimate %s: %s needs CUDA; skipped on %s\n", device_under_test, precisions[_i], device_under_test);
        return;
    }
    char json[1024], label[64];
    snprintf(json, sizeof json,
             "{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\"}, \"dataset\": {\"name\":"
             " \"texts\", \"max_length\": 128}, \"optimizer\": {\"name\": \"adamw8bit\", \"min_8bit_size\": 1024},"
             " \"training\": {\"epochs\": 1, \"batch_size\": 8, \"precision\": \"%s\"}}", precisions[_i]);
    snprintf(label, sizeof label, "distilbert-tiny %s", precisions[_i]);
    octet_dataset tr;
    texts(&tr, 24);
    trainer_estimate est = estimate_vs_run_on(label, json, device_under_test, &tr, &tr);
    ck_assert_str_eq(est.precision, precisions[_i]);
    ck_assert_int_eq(est.max_length, 128);
    release(&tr);
}
END_TEST

START_TEST(test_mlp_adafactor_on_device)
{
    octet_dataset tr;
    features(&tr, 64, 20);
    trainer_estimate est = estimate_vs_run_on(
        "mlp adafactor",
        "{\"model\": {\"arch\": \"mlp\", \"hidden\": [64]}, \"dataset\": {\"name\": \"features\"}, \"optimizer\":"
        " {\"name\": \"adafactor\", \"lr\": 1e-3}, \"training\": {\"epochs\": 1, \"batch_size\": 16}}",
        device_under_test, &tr, &tr);
    ck_assert_uint_gt(est.workspace_bytes, 0);
    release(&tr);
}
END_TEST

Suite *suite_train_estimate(const char *device)
{
    device_under_test = device;
    Suite *s = suite_create("train_estimate");
    TCase *tc = tcase_create("estimate_on_device");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_distilbert_estimate_on_device, 0, 3);
    tcase_add_test(tc, test_mlp_adafactor_on_device);
    suite_add_tcase(s, tc);
    return s;
}
