/* check_models_hfdir.c: Hugging Face model directories: octet's own
 * checkpoints round-trip bit for bit (weights and config.json, DistilBERT and MLP), and
 * directories written by PyTorch (tests/reference/models_ref.py hfdir) load as Transformers
 * loads them into DistilBertForSequenceClassification: a DistilBertForMaskedLM checkpoint with
 * the "distilbert." prefix in F16 (its vocab_* head reported unused), a DistilBertModel
 * checkpoint without the prefix in BF16 (its position_ids buffer skipped), the classifier head
 * reported as newly initialised, every loaded value equal to the file's after conversion; and
 * the refusals: a shape that differs (naming the tensor), a strict load of a foreign
 * checkpoint, a vocab.txt larger than the embeddings, a missing or malformed config.json.
 * The PyTorch script is required: without /usr/bin/python3 and torch these tests FAIL. */
#include "config.h"
#include "check_models.h"
#include "testlib.h"
#include "train/distilbert.h"
#include "train/hfdir.h"
#include "train/mlp.h"
#include "train/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[512];        /* the script's directories: g_dir/mlm, g_dir/base */
static char g_error[1024];

static void hf_setup(void)
{
    g_error[0] = 0;
    if (test_tmpdir(g_dir, sizeof g_dir, "models_hfdir") != 0)
        snprintf(g_error, sizeof g_error, "cannot create a scratch directory (test_tmpdir printed why on stderr)");
    else
        tm_run_reference("hfdir", g_dir, g_error, sizeof g_error);
}

static void hf_teardown(void)
{
    test_rmtree(g_dir);
}

static void path_of(char *buf, size_t cap, const char *sub, const char *file)
{
    ck_assert_msg(g_error[0] == 0, "%s", g_error);
    snprintf(buf, cap, "%s/%s%s%s", g_dir, sub, file ? "/" : "", file ? file : "");
}

/* ------------------------------------------------------------------ octet's own checkpoints */

START_TEST(test_roundtrip_distilbert)
{
    device *d = tm_device();
    distilbert_config c;
    ck_assert_int_eq(distilbert_preset("distilbert-tiny", &c, NULL), OCTET_OK);
    c.vocab_size = 261;
    c.num_labels = 4;
    c.dropout = 0.05f;
    model *a = NULL, *b = NULL;
    octet_err e;
    ck_assert_int_eq(distilbert_create(d, &c, 2, 16, 1, &a, &e), OCTET_OK);
    tm_fill_params(a, 77);
    char dir[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "models_save"), 0);
    ck_assert_msg(hfdir_save(a, dir, &e) == OCTET_OK, "%s", e.message);
    ck_assert_msg(hfdir_save(a, dir, &e) == OCTET_OK, "%s", e.message); /* replacing works too */
    distilbert_config back;
    octet_tokenizer *tok = (octet_tokenizer *)1;
    ck_assert_msg(hfdir_read_config(dir, &back, &tok, &e) == OCTET_OK, "%s", e.message);
    ck_assert_ptr_null(tok); /* no vocab.txt */
    ck_assert(memcmp(&back, &c, sizeof c) == 0);
    ck_assert_int_eq(distilbert_create(d, &back, 2, 16, 2, &b, &e), OCTET_OK);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    hfdir_report rep;
    ck_assert_msg(hfdir_load_weights(b, path, 1, &rep, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(rep.n_loaded, b->n_params);
    ck_assert_int_eq(rep.n_unused + rep.n_fresh, 0);
    hfdir_report_free(&rep);
    for (int i = 0; i < a->n_params; i++) {
        float *x = tm_param_host(a, i), *y = tm_param_host(b, i);
        ck_assert_msg(memcmp(x, y, (size_t)a->params[i].n * sizeof *x) == 0, "%s differs", a->params[i].name);
        free(x);
        free(y);
    }
    /* the file is what PyTorch expects: F32, HF names in order, metadata format pt */
    octet_st_file *f = NULL;
    ck_assert_int_eq(octet_st_open(path, &f, &e), OCTET_OK);
    ck_assert_uint_eq(octet_st_count(f), (size_t)a->n_params);
    ck_assert_str_eq(octet_st_metadata(f, "format"), "pt");
    for (size_t i = 0; i < octet_st_count(f); i++) {
        ck_assert_str_eq(octet_st_at(f, i)->name, a->params[i].name);
        ck_assert_int_eq(octet_st_at(f, i)->dtype, OCTET_ST_F32);
    }
    octet_st_close(f);
    model_destroy(a);
    model_destroy(b);
    test_rmtree(dir);
    device_close(d);
}
END_TEST

START_TEST(test_roundtrip_mlp)
{
    device *d = tm_device();
    const int hidden[2] = {12, 6};
    model *a = NULL, *b = NULL;
    octet_err e;
    ck_assert_int_eq(mlp_create(d, 10, hidden, 2, 3, 4, 1, &a, &e), OCTET_OK);
    ck_assert_int_eq(mlp_create(d, 10, hidden, 2, 3, 4, 2, &b, &e), OCTET_OK);
    char dir[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "models_save"), 0);
    ck_assert_msg(hfdir_save(a, dir, &e) == OCTET_OK, "%s", e.message);
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_type")), "octet-mlp");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "in_features")), 10);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(j, "hidden"), 1)), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "num_labels")), 3);
    json_decref(j);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_msg(hfdir_load_weights(b, path, 1, NULL, &e) == OCTET_OK, "%s", e.message);
    for (int i = 0; i < a->n_params; i++) {
        float *x = tm_param_host(a, i), *y = tm_param_host(b, i);
        ck_assert(memcmp(x, y, (size_t)a->params[i].n * sizeof *x) == 0);
        free(x);
        free(y);
    }
    /* a checkpoint of other sizes is refused, naming the tensor and both shapes */
    model_destroy(b);
    const int other[2] = {12, 7};
    ck_assert_int_eq(mlp_create(d, 10, other, 2, 3, 4, 2, &b, &e), OCTET_OK);
    ck_assert_int_eq(hfdir_load_weights(b, path, 1, NULL, &e), OCTET_ERR_MISMATCH);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "layers.2.weight") && strstr(e.message, "[6, 12]") && strstr(e.message, "[7, 12]"),
                  "%s", e.message);
    model_destroy(a);
    model_destroy(b);
    test_rmtree(dir);
    device_close(d);
}
END_TEST

/* ------------------------------------------------------------------ directories from PyTorch */

static const char *const fresh_names[] = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight",
                                          "classifier.bias"};

/* Loads directory `sub` as a 3-label classifier; checks the report and every loaded value. */
static void load_pytorch_dir(const char *sub, const char *const *unused, int n_unused)
{
    char dir[1200], path[1300];
    path_of(dir, sizeof dir, sub, NULL);
    device *d = tm_device();
    hfdir_options o = {3, -1.0f, 2, 24, 5, MODEL_ACT_FP32};
    model *m = NULL;
    octet_tokenizer *tok = NULL;
    hfdir_report rep;
    octet_err e;
    octet_err_clear(&e);
    int rc = hfdir_load_distilbert(d, dir, &o, &m, &tok, &rep, &e);
    ck_assert_msg(rc == OCTET_OK, "%s: %s: %s", sub, e.field, e.message);
    hfdir_report_log(&rep, dir, "DistilBertForSequenceClassification");
    const distilbert_config *c = distilbert_config_of(m);
    ck_assert_int_eq(c->dim, 16);
    ck_assert_int_eq(c->n_layers, 2);
    ck_assert_int_eq(c->vocab_size, 40);
    ck_assert_int_eq(c->num_labels, 3);
    ck_assert(c->dropout == 0.1f);
    ck_assert_ptr_nonnull(tok);
    ck_assert_uint_eq(octet_tok_vocab_size(tok), 40);
    ck_assert_uint_eq(octet_tok_model_max_length(tok), 24);
    ck_assert_int_eq(rep.n_loaded, m->n_params - 4);
    ck_assert_int_eq(rep.n_fresh, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(rep.fresh[i], fresh_names[i]);
    ck_assert_int_eq(rep.n_unused, n_unused);
    for (int i = 0; i < n_unused; i++)
        ck_assert_str_eq(rep.unused[i], unused[i]);
    /* every loaded value is the file's, converted to fp32 */
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    octet_st_file *f = NULL;
    ck_assert_int_eq(octet_st_open(path, &f, &e), OCTET_OK);
    ck_assert_uint_eq(octet_st_count(f), (size_t)m->n_params - 4);
    for (int i = 0; i < m->n_params - 4; i++) {
        float *got = tm_param_host(m, i), *want = malloc((size_t)m->params[i].n * sizeof *want);
        ck_assert_msg(octet_st_read_f32(f, m->params[i].name, want, (size_t)m->params[i].n, &e) == OCTET_OK, "%s",
                      e.message);
        ck_assert_msg(memcmp(got, want, (size_t)m->params[i].n * sizeof *got) == 0, "%s: %s differs", sub,
                      m->params[i].name);
        free(got);
        free(want);
    }
    octet_st_close(f);
    /* the fresh head is HF's initialisation: normal(0, 0.02) weights, zero biases */
    float *w = tm_param_host(m, m->n_params - 2), *bias = tm_param_host(m, m->n_params - 1);
    double ss = 0.0;
    for (int j = 0; j < 3 * 16; j++)
        ss += (double)w[j] * w[j];
    ck_assert(sqrt(ss / 48) > 0.01 && sqrt(ss / 48) < 0.03);
    for (int j = 0; j < 3; j++)
        ck_assert(bias[j] == 0.0f);
    free(w);
    free(bias);
    /* and the model runs */
    int32_t ids[6] = {2, 7, 3, 2, 3, 0}, mask[6] = {1, 1, 1, 1, 1, 0}, labels[2] = {2, 0};
    model_batch b = {2, 3, ids, mask, NULL, labels, NULL};
    model_output out = {0};
    ck_assert_int_eq(m->vt->forward(m, &b, 1, &out, &e), OCTET_OK);
    ck_assert(isfinite(out.loss));
    hfdir_report_free(&rep);
    octet_tok_free(tok);
    model_destroy(m);
    device_close(d);
}

START_TEST(test_load_mlm_prefixed_f16)
{
    static const char *const unused[] = {"vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight",
                                         "vocab_layer_norm.bias", "vocab_projector.weight", "vocab_projector.bias"};
    load_pytorch_dir("mlm", unused, 6);
}
END_TEST

START_TEST(test_load_base_unprefixed_bf16)
{
    load_pytorch_dir("base", NULL, 0);
}
END_TEST

START_TEST(test_load_refusals)
{
    char path[1200];
    path_of(path, sizeof path, "mlm", "model.safetensors");
    device *d = tm_device();
    distilbert_config c;
    char dir[1200];
    path_of(dir, sizeof dir, "mlm", NULL);
    octet_err e;
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_OK);
    /* embeddings of another vocabulary size: an error naming the tensor and both shapes */
    c.vocab_size = 41;
    model *m = NULL;
    ck_assert_int_eq(distilbert_create(d, &c, 1, 4, 1, &m, &e), OCTET_OK);
    hfdir_report rep = {0};
    ck_assert_int_eq(hfdir_load_weights(m, path, 0, &rep, &e), OCTET_ERR_MISMATCH);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "distilbert.embeddings.word_embeddings.weight") && strstr(e.message, "[40, 16]") &&
                      strstr(e.message, "[41, 16]"),
                  "%s", e.message);
    ck_assert_int_eq(rep.n_unused + rep.n_fresh, 0);
    model_destroy(m);
    /* strict (resuming our own checkpoint): a foreign checkpoint is refused */
    c.vocab_size = 40;
    ck_assert_int_eq(distilbert_create(d, &c, 1, 4, 1, &m, &e), OCTET_OK);
    ck_assert_int_eq(hfdir_load_weights(m, path, 1, NULL, &e), OCTET_ERR_MISMATCH);
    ck_assert_msg(strstr(e.message, "pre_classifier.weight is missing"), "%s", e.message);
    model_destroy(m);
    /* no such directory; not a safetensors file */
    ck_assert_int_eq(hfdir_read_config("/nonexistent/model", &c, NULL, &e), OCTET_ERR_IO);
    ck_assert_str_eq(e.field, "model.path");
    path_of(path, sizeof path, "mlm", "config.json");
    ck_assert_int_eq(distilbert_create(d, &c, 1, 4, 1, &m, &e), OCTET_OK);
    ck_assert_int_eq(hfdir_load_weights(m, path, 0, NULL, &e), OCTET_ERR_FORMAT);
    model_destroy(m);
    device_close(d);
}
END_TEST

START_TEST(test_bad_directories)
{
    char dir[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "models_baddir"), 0);
    distilbert_config c;
    octet_tokenizer *tok = NULL;
    octet_err e;
    /* a vocab.txt with more tokens than the embeddings have rows */
    test_write_text(dir, "config.json",
                    "{\"model_type\": \"distilbert\", \"vocab_size\": 6, \"dim\": 8, \"n_heads\": 2}");
    test_write_text(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\n");
    ck_assert_int_eq(hfdir_read_config(dir, &c, &tok, &e), OCTET_ERR_FORMAT);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "7 tokens") && strstr(e.message, "vocab_size is 6"), "%s", e.message);
    ck_assert_ptr_null(tok);
    /* a config field of the wrong type names the key */
    test_write_text(dir, "config.json", "{\"n_heads\": \"two\"}");
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "n_heads"), "%s", e.message);
    /* not JSON */
    test_write_text(dir, "config.json", "{\"dim\": 8,");
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_FORMAT);
    ck_assert_msg(strstr(e.message, "config.json:1:"), "%s", e.message);
    /* values out of range are the directory's fault too: model.path, naming the file and the
     * config.json key, never the spec's inline overrides model.config.* */
    static const struct {
        const char *json, *key;
    } out_of_range[] = {{"{\"dim\": 0}", "dim"},
                        {"{\"dim\": 8, \"n_heads\": 3}", "n_heads"},
                        {"{\"vocab_size\": 5, \"pad_token_id\": 7}", "pad_token_id"},
                        {"{\"max_position_embeddings\": 100000000}", "max_position_embeddings"},
                        {"{\"attention_dropout\": 1.5}", "attention_dropout"},
                        {"{\"num_labels\": 0}", "num_labels"},
                        {"{\"initializer_range\": -1}", "initializer_range"}};
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        test_write_text(dir, "config.json", out_of_range[i].json);
        ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_ARG);
        ck_assert_msg(!strcmp(e.field, "model.path"), "%s: field %s", out_of_range[i].json, e.field);
        char want[64];
        snprintf(want, sizeof want, "config.json: %s: ", out_of_range[i].key);
        ck_assert_msg(strstr(e.message, want), "%s: %s lacks %s", out_of_range[i].json, e.message, want);
    }
    /* an unsupported variant */
    test_write_text(dir, "config.json", "{\"model_type\": \"distilbert\", \"activation\": \"relu\"}");
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_ARG);
    ck_assert_msg(strstr(e.message, "activation"), "%s", e.message);
    /* FIFOs (which would block a reader forever) as config.json, vocab.txt, model.safetensors:
     * refused at once, naming model.path */
    char fifo[1024];
    test_mkfifo(dir, "config.json", fifo, sizeof fifo);
    ck_assert_int_eq(hfdir_read_config(dir, &c, NULL, &e), OCTET_ERR_IO);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "not a regular file"), "%s", e.message);
    unlink(fifo);
    test_write_text(dir, "config.json", "{\"model_type\": \"distilbert\", \"vocab_size\": 300, \"dim\": 8, "
                    "\"n_heads\": 2, \"n_layers\": 1, \"hidden_dim\": 16, \"max_position_embeddings\": 16}");
    test_mkfifo(dir, "vocab.txt", fifo, sizeof fifo);
    ck_assert_int_eq(hfdir_read_config(dir, &c, &tok, &e), OCTET_ERR_IO);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_ptr_null(tok);
    unlink(fifo);
    test_mkfifo(dir, "model.safetensors", fifo, sizeof fifo);
    hfdir_options o = {2, -1.0f, 2, 8, 1, MODEL_ACT_FP32};
    model *m = NULL;
    device *dv = tm_device();
    ck_assert_int_eq(hfdir_load_distilbert(dv, dir, &o, &m, NULL, NULL, &e), OCTET_ERR_IO);
    ck_assert_str_eq(e.field, "model.path");
    ck_assert_msg(strstr(e.message, "not a regular file"), "%s", e.message);
    ck_assert_ptr_null(m);
    device_close(dv);
    test_rmtree(dir);
}
END_TEST

Suite *suite_models_hfdir(void)
{
    Suite *s = suite_create("models_hfdir");
    TCase *tc = tcase_create("own");
    tcase_add_test(tc, test_roundtrip_distilbert);
    tcase_add_test(tc, test_roundtrip_mlp);
    tcase_add_test(tc, test_bad_directories);
    suite_add_tcase(s, tc);
    tc = tcase_create("pytorch");
    tcase_add_unchecked_fixture(tc, hf_setup, hf_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load_mlm_prefixed_f16);
    tcase_add_test(tc, test_load_base_unprefixed_bf16);
    tcase_add_test(tc, test_load_refusals);
    suite_add_tcase(s, tc);
    return s;
}
