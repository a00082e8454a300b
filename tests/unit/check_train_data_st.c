/* check_train_data_st.c: the safetensors suite: fp16/bf16 conversions (hand-checked values
 * and an exhaustive half round trip), a write/read round trip, files written by an
 * independent Python implementation (tests/data/safetensors_ref.py, numpy + torch) read here,
 * files written here checked byte for byte there, and damaged files refused with
 * OCTET_ERR_FORMAT naming the tensor. */
#include "check_train_data.h"
#include "testlib.h"
#include "train/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static float f_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Writes a safetensors file from a header string and raw data. */
static void write_raw(const char *path, const char *header, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t h = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(h >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, h, f);
    if (n)
        fwrite(data, 1, n, f);
    fclose(f);
}

/* Opens path expecting failure `status` with `needle` in the message. */
static void expect_refused(const char *path, int status, const char *needle)
{
    octet_st_file *f = NULL;
    octet_err e = {0};
    int rc = octet_st_open(path, &f, &e);
    ck_assert_msg(rc == status, "%s: rc %d (%s), want %d", path, rc, e.message, status);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(e.message, needle) != NULL, "message \"%s\" lacks \"%s\"", e.message, needle);
}

START_TEST(test_f16_known_values)
{
    ck_assert_uint_eq(octet_f32_to_f16(1.0f), 0x3C00);
    ck_assert_uint_eq(octet_f32_to_f16(-2.0f), 0xC000);
    ck_assert_uint_eq(octet_f32_to_f16(65504.0f), 0x7BFF);          /* largest half */
    ck_assert_uint_eq(octet_f32_to_f16(65519.99f), 0x7BFF);         /* just under the rounding edge */
    ck_assert_uint_eq(octet_f32_to_f16(65520.0f), 0x7C00);          /* ties to even -> infinity */
    ck_assert_uint_eq(octet_f32_to_f16(1e9f), 0x7C00);
    ck_assert_uint_eq(octet_f32_to_f16(-INFINITY), 0xFC00);
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(1, -24)), 0x0001);     /* smallest subnormal */
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(1, -25)), 0x0000);     /* tie -> even (0) */
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(3, -26)), 0x0001);     /* 1.5 ulp -> up */
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(3, -25)), 0x0002);     /* tie 1.5 -> even 2 */
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(1, -14)), 0x0400);     /* smallest normal */
    ck_assert_uint_eq(octet_f32_to_f16(ldexpf(1023, -24) + ldexpf(1, -25)), 0x0400); /* rounds up into normal */
    ck_assert_uint_eq(octet_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3C00);      /* tie -> even */
    ck_assert_uint_eq(octet_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3C02);      /* tie -> even (up) */
    ck_assert_uint_eq(octet_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3C01);
    ck_assert_uint_eq(octet_f32_to_f16(-0.0f), 0x8000);
    uint16_t nan = octet_f32_to_f16(NAN);
    ck_assert((nan & 0x7C00) == 0x7C00 && (nan & 0x3FF) != 0);
    ck_assert(isnan(octet_f16_to_f32(nan)));
    ck_assert(octet_f16_to_f32(0x0001) == ldexpf(1, -24));
    ck_assert(octet_f16_to_f32(0x7BFF) == 65504.0f);
    ck_assert(octet_f16_to_f32(0xC000) == -2.0f);
}
END_TEST

START_TEST(test_bf16_known_values)
{
    ck_assert_uint_eq(octet_f32_to_bf16(1.0f), 0x3F80);
    ck_assert_uint_eq(octet_f32_to_bf16(1.0f + ldexpf(1, -8)), 0x3F80);      /* tie -> even */
    ck_assert_uint_eq(octet_f32_to_bf16(1.0f + ldexpf(3, -8)), 0x3F82);      /* tie -> even (up) */
    ck_assert_uint_eq(octet_f32_to_bf16(1.0f + ldexpf(1, -8) + ldexpf(1, -20)), 0x3F81);
    ck_assert_uint_eq(octet_f32_to_bf16(f_bits(0x7F7FFFFF)), 0x7F80);       /* max float -> inf */
    ck_assert_uint_eq(octet_f32_to_bf16(-INFINITY), 0xFF80);
    ck_assert_uint_eq(octet_f32_to_bf16(f_bits(0x00000001)), 0x0000);       /* tiny subnormal */
    ck_assert_uint_eq(octet_f32_to_bf16(NAN), 0x7FC0);
    ck_assert(octet_bf16_to_f32(0x3FC0) == 1.5f);
}
END_TEST

START_TEST(test_f16_exhaustive_round_trip)
{
    int bad = 0;                     /* counted, then asserted: ck_assert per value is slow */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = octet_f16_to_f32((uint16_t)h);
        int ok = isnan(f) ? isnan(octet_f16_to_f32(octet_f32_to_f16(f))) : octet_f32_to_f16(f) == h;
        if (!ok && bad++ < 5)
            fprintf(stderr, "half 0x%04x -> %g -> 0x%04x\n", h, f, octet_f32_to_f16(f));
    }
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = octet_bf16_to_f32((uint16_t)b);
        if (!isnan(f) && octet_f32_to_bf16(f) != b && bad++ < 5)
            fprintf(stderr, "bf16 0x%04x -> %g -> 0x%04x\n", b, f, octet_f32_to_bf16(f));
    }
    ck_assert_int_eq(bad, 0);
}
END_TEST

START_TEST(test_round_trip)
{
    char dir[256], path[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    float w[6] = {1.0f, -2.5f, 3.25f, 1e-3f, 65504.0f, -0.0f}, s = 42.0f, h[4] = {0.1f, 1.0f, -7.0f, 1e5f};
    int64_t shape_w[2] = {2, 3}, shape_e[2] = {0, 4}, shape_h[1] = {4};
    octet_err e = {0};
    octet_st_writer *wr = octet_st_writer_new();
    ck_assert_int_eq(octet_st_writer_add(wr, "layer.weight", OCTET_ST_F32, 2, shape_w, w, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_add(wr, "scale", OCTET_ST_F32, 0, NULL, &s, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_add(wr, "empty", OCTET_ST_F32, 2, shape_e, NULL, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_add(wr, "half", OCTET_ST_F16, 1, shape_h, h, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_add(wr, "brain", OCTET_ST_BF16, 1, shape_h, h, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_set_metadata(wr, "format", "pt", &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_add(wr, "scale", OCTET_ST_F32, 0, NULL, &s, &e), OCTET_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(e.message, "twice"));
    ck_assert_int_eq(octet_st_writer_add(wr, "x", OCTET_ST_I64, 0, NULL, &s, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_st_writer_add(wr, "__metadata__", OCTET_ST_F32, 0, NULL, &s, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_st_writer_write(wr, path, &e), OCTET_OK);
    octet_st_writer_free(wr);

    octet_st_file *f;
    ck_assert_int_eq(octet_st_open(path, &f, &e), OCTET_OK);
    ck_assert_uint_eq(octet_st_count(f), 5);
    ck_assert_str_eq(octet_st_metadata(f, "format"), "pt");
    ck_assert_ptr_null(octet_st_metadata(f, "nope"));
    const octet_st_tensor *t = octet_st_find(f, "layer.weight");
    ck_assert(t && t->dtype == OCTET_ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    ck_assert_uint_eq(t->numel, 6);
    ck_assert_str_eq(octet_st_at(f, 0)->name, "layer.weight");   /* file order */
    float got[6];
    ck_assert_int_eq(octet_st_read_f32(f, "layer.weight", got, 6, &e), OCTET_OK);
    ck_assert(memcmp(got, w, sizeof w) == 0);
    ck_assert_int_eq(octet_st_read_f32(f, "scale", got, 1, &e), OCTET_OK);
    ck_assert(got[0] == 42.0f && octet_st_find(f, "scale")->ndim == 0);
    ck_assert_int_eq(octet_st_read_f32(f, "empty", got, 0, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_read_f32(f, "half", got, 4, &e), OCTET_OK);
    for (int i = 0; i < 4; i++)
        ck_assert(got[i] == octet_f16_to_f32(octet_f32_to_f16(h[i])));
    ck_assert_int_eq(octet_st_read_f32(f, "brain", got, 4, &e), OCTET_OK);
    for (int i = 0; i < 4; i++)
        ck_assert(got[i] == octet_bf16_to_f32(octet_f32_to_bf16(h[i])));
    ck_assert_int_eq(octet_st_read_f32(f, "layer.weight", got, 5, &e), OCTET_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(e.message, "[2, 3]"));
    ck_assert_int_eq(octet_st_read_f32(f, "missing", got, 1, &e), OCTET_ERR_ARG);
    octet_st_close(f);
    test_rmtree(dir);
}
END_TEST

START_TEST(test_writer_atomic)
{
    char dir[256], path[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    float a = 1.0f, b[2] = {2.0f, 3.0f};
    int64_t two = 2;
    octet_err e = {0};
    octet_st_writer *w1 = octet_st_writer_new(), *w2 = octet_st_writer_new();
    octet_st_writer_add(w1, "a", OCTET_ST_F32, 0, NULL, &a, &e);
    octet_st_writer_add(w2, "b", OCTET_ST_F32, 1, &two, b, &e);
    ck_assert_int_eq(octet_st_writer_write(w1, path, &e), OCTET_OK);
    ck_assert_int_eq(octet_st_writer_write(w2, path, &e), OCTET_OK);      /* replaces */
    octet_st_file *f;
    ck_assert_int_eq(octet_st_open(path, &f, &e), OCTET_OK);
    ck_assert_uint_eq(octet_st_count(f), 1);
    ck_assert_ptr_nonnull(octet_st_find(f, "b"));
    octet_st_close(f);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    ck_assert_int_eq(octet_st_writer_write(w1, bad, &e), OCTET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.message, "no/such/dir"));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -a '%s' | grep -c tmp) -eq 0", dir);
    ck_assert_int_eq(td_run(cmd), 0);                                      /* no temp file left */
    octet_st_writer_free(w1);
    octet_st_writer_free(w2);
    test_rmtree(dir);
}
END_TEST

/* A file from the independent Python writer, read here and compared with its expectations. */
START_TEST(test_read_python_written)
{
    if (!td_python_has("numpy")) {
        test_skip("safetensors: no /usr/bin/python3 with numpy for the Python cross-check");
        return;
    }
    char dir[256], script[512], file[512], expect[512], cmd[2048];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
    td_data("safetensors_ref.py", script, sizeof script);
    snprintf(file, sizeof file, "%s/ref.safetensors", dir);
    snprintf(expect, sizeof expect, "%s/expected.json", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' write '%s' '%s'", script, file, expect);
    ck_assert_int_eq(td_run(cmd), 0);
    octet_err e = {0};
    octet_st_file *f;
    ck_assert_msg(octet_st_open(file, &f, &e) == OCTET_OK, "%s", e.message);
    ck_assert_str_eq(octet_st_metadata(f, "writer"), "safetensors_ref.py");
    json_error_t je;
    json_t *exp = json_load_file(expect, 0, &je);
    ck_assert_ptr_nonnull(exp);
    ck_assert_uint_eq(octet_st_count(f), json_object_size(exp));
    const char *name;
    json_t *v;
    int checked = 0;
    json_object_foreach(exp, name, v) {
        const octet_st_tensor *t = octet_st_find(f, name);
        ck_assert_msg(t != NULL, "tensor %s missing", name);
        ck_assert_str_eq(octet_st_dtype_name(t->dtype), json_string_value(json_object_get(v, "dtype")));
        json_t *vals = json_object_get(v, "values");
        float buf[64];
        if (json_is_null(vals)) {   /* I64: listed, not readable as float */
            ck_assert_int_eq(octet_st_read_f32(f, name, buf, (size_t)t->numel, &e), OCTET_ERR_FORMAT);
            ck_assert_ptr_nonnull(strstr(e.message, "I64"));
            continue;
        }
        ck_assert_uint_eq(t->numel, json_array_size(vals));
        ck_assert_int_eq(octet_st_read_f32(f, name, buf, (size_t)t->numel, &e), OCTET_OK);
        for (size_t i = 0; i < t->numel; i++)
            ck_assert_msg(buf[i] == (float)json_real_value(json_array_get(vals, i)) ||
                              (json_is_integer(json_array_get(vals, i)) &&
                               buf[i] == (float)json_integer_value(json_array_get(vals, i))),
                          "%s[%zu]: %g", name, i, buf[i]);
        checked++;
    }
    ck_assert_int_ge(checked, 4);
    json_decref(exp);
    octet_st_close(f);
    test_rmtree(dir);
}
END_TEST

/* A file written here, checked byte for byte by the Python implementation (numpy's F16 and
 * torch's BF16 rounding). */
START_TEST(test_python_reads_ours)
{
    if (!td_python_has("numpy")) {
        test_skip("safetensors: no /usr/bin/python3 with numpy for the Python cross-check");
        return;
    }
    enum { N = 4096 };
    static float x[N];
    test_rng r;
    rng_seed(&r, 7);
    rng_fill_normal(&r, x, N, 3.0f);
    const float edge[] = {65504.0f, 65519.0f, 65520.0f, 1e-8f, 5.9604645e-08f, 2.9802322e-08f, 1.0004883f,
                          1.0014648f, 1.00390625f, 1.01171875f, -0.0f, 3.0e38f, -3.4e38f, 1e-40f, 0.1f, 100000.0f};
    memcpy(x, edge, sizeof edge);
    for (int i = 16; i < 64; i++)
        x[i] = ldexpf(x[i], -(i - 10));   /* down into f16's subnormals */
    char dir[256], file[512], src[512], script[512], cmd[2048];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
    snprintf(file, sizeof file, "%s/ours.safetensors", dir);
    snprintf(src, sizeof src, "%s/source.json", dir);
    td_data("safetensors_ref.py", script, sizeof script);
    int64_t shape[2] = {64, 64};
    const int dtypes[3] = {OCTET_ST_F32, OCTET_ST_F16, OCTET_ST_BF16};
    const char *names[3] = {"t.f32", "t.f16", "t.bf16"};
    octet_err e = {0};
    octet_st_writer *w = octet_st_writer_new();
    json_t *doc = json_object(), *vals = json_array();
    for (int i = 0; i < N; i++)
        json_array_append_new(vals, json_real(x[i]));
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(octet_st_writer_add(w, names[k], dtypes[k], 2, shape, x, &e), OCTET_OK);
        json_object_set_new(doc, names[k], json_pack("{s:s, s:[i,i], s:O}", "dtype", octet_st_dtype_name(dtypes[k]),
                                                     "shape", 64, 64, "values", vals));
    }
    json_decref(vals);
    octet_st_writer_set_metadata(w, "source", "octet", &e);
    ck_assert_int_eq(octet_st_writer_write(w, file, &e), OCTET_OK);
    ck_assert_int_eq(json_dump_file(doc, src, 0), 0);
    json_decref(doc);
    octet_st_writer_free(w);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' check '%s' '%s' >&2", script, file, src);
    ck_assert_int_eq(td_run(cmd), 0);
    test_rmtree(dir);
}
END_TEST

static const char F8[] = "\0\0\x80\x3f\0\0\0\x40";   /* two F32: 1.0, 2.0 */

START_TEST(test_refuses_damaged_files)
{
    char dir[256], p[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
#define CASE(name, header, data, n, needle)                                                      \
    do {                                                                                         \
        snprintf(p, sizeof p, "%s/%s", dir, name);                                               \
        write_raw(p, header, data, n);                                                           \
        expect_refused(p, OCTET_ERR_FORMAT, needle);                                             \
    } while (0)
    CASE("lying_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", F8, 8, "'w'");
    CASE("wrong_size", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", F8, 8, "needs 12");
    CASE("reversed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", F8, 8, "begin 8 > end 0");
    CASE("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}", F8, 8, "overlap");
    CASE("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[6,8]}}", F8, 8, "'b': hole");
    CASE("trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", F8, 8, "trailing");
    CASE("truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", F8, 5, "truncated");
    CASE("bad_json", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],", F8, 8, "not valid JSON");
    CASE("not_object", "[1, 2]", F8, 0, "start with '{'");
    CASE("unknown_dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,8]}}", F8, 8,
         "unknown dtype 'F128'");
    CASE("duplicate", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", F8, 8, "duplicate");
    CASE("bad_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", F8, 8, "\"shape\"");
    CASE("neg_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", F8, 8, "\"shape\"");
    CASE("no_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", F8, 8, "data_offsets");
    CASE("bad_meta", "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         F8, 8, "'k'");
    CASE("entry_not_object", "{\"a\":3}", F8, 0, "'a'");
#undef CASE
    /* a header length larger than the file, and a file shorter than the length prefix */
    test_write_file(dir, "huge_len", "\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10, p, sizeof p);
    expect_refused(p, OCTET_ERR_FORMAT, "header length");
    test_write_file(dir, "tiny", "\x02\0\0", 3, p, sizeof p);
    expect_refused(p, OCTET_ERR_FORMAT, "too short");
    snprintf(p, sizeof p, "%s/absent.safetensors", dir);
    expect_refused(p, OCTET_ERR_IO, "absent.safetensors");
    /* a FIFO (it would block open() forever) and a directory are refused at once */
    test_mkfifo(dir, "fifo.safetensors", p, sizeof p);
    expect_refused(p, OCTET_ERR_IO, "not a regular file");
    expect_refused(dir, OCTET_ERR_IO, "not a regular file");
    test_rmtree(dir);
}
END_TEST

/* Truncating a real file anywhere never crashes and is always refused. */
START_TEST(test_every_truncation_refused)
{
    char dir[256], path[512], cut[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "safetensors"), 0);
    snprintf(path, sizeof path, "%s/full.safetensors", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    float v[3] = {1, 2, 3};
    int64_t three = 3;
    octet_err e = {0};
    octet_st_writer *w = octet_st_writer_new();
    octet_st_writer_add(w, "v", OCTET_ST_F32, 1, &three, v, &e);
    octet_st_writer_add(w, "h", OCTET_ST_F16, 1, &three, v, &e);
    ck_assert_int_eq(octet_st_writer_write(w, path, &e), OCTET_OK);
    octet_st_writer_free(w);
    FILE *f = fopen(path, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t k = 0; k < n; k++) {
        FILE *g = fopen(cut, "wb");
        fwrite(buf, 1, k, g);
        fclose(g);
        octet_st_file *sf = NULL;
        ck_assert_msg(octet_st_open(cut, &sf, &e) == OCTET_ERR_FORMAT, "cut at %zu accepted", k);
    }
    test_rmtree(dir);
}
END_TEST

Suite *suite_safetensors(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_f16_known_values);
    tcase_add_test(tc, test_bf16_known_values);
    tcase_add_test(tc, test_f16_exhaustive_round_trip);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_writer_atomic);
    tcase_add_test(tc, test_read_python_written);
    tcase_add_test(tc, test_python_reads_ours);
    tcase_add_test(tc, test_refuses_damaged_files);
    tcase_add_test(tc, test_every_truncation_refused);
    suite_add_tcase(s, tc);
    return s;
}
