/* check_qmap.c: the dynamic maps against the published values, and the block-wise quantizer
 * against bitsandbytes' error thresholds (reference/8bit-adam.md §1.2, §2.5, Appendix A).
 * The appendix values below are transcribed from the reference (9 significant digits). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "device.h"
#include "ops_math.h" /* ops_float_bits, ops_bits_float */
#include "qmap.h"
#include "quant.h"

static const float appendix_signed[256] = {
    -0.99296874f, -0.97890627f, -0.96484375f, -0.95078123f, -0.93671876f, -0.92265624f,
    -0.90859377f, -0.89453125f, -0.88046873f, -0.86640626f, -0.85234374f, -0.83828127f,
    -0.82421875f, -0.81015623f, -0.79609376f, -0.78203124f, -0.76796877f, -0.75390625f,
    -0.73984379f, -0.72578126f, -0.71171874f, -0.69765627f, -0.68359375f, -0.66953129f,
    -0.65546876f, -0.64140624f, -0.62734377f, -0.61328125f, -0.59921879f, -0.58515626f,
    -0.57109374f, -0.55703127f, -0.54296875f, -0.52890623f, -0.51484376f, -0.50078124f,
    -0.48671871f, -0.47265625f, -0.45859373f, -0.44453123f, -0.43046874f, -0.41640621f,
    -0.40234375f, -0.38828123f, -0.37421876f, -0.36015624f, -0.34609371f, -0.33203125f,
    -0.31796873f, -0.30390626f, -0.28984374f, -0.27578124f, -0.26171875f, -0.24765624f,
    -0.23359375f, -0.21953125f, -0.20546874f, -0.19140625f, -0.17734374f, -0.16328125f,
    -0.14921875f, -0.13515624f, -0.12109375f, -0.10703126f, -0.098593749f, -0.095781259f,
    -0.092968754f, -0.09015625f, -0.087343752f, -0.084531248f, -0.081718758f, -0.078906253f,
    -0.076093756f, -0.073281251f, -0.070468746f, -0.067656256f, -0.064843751f, -0.06203125f,
    -0.059218753f, -0.056406248f, -0.053593755f, -0.05078125f, -0.047968749f, -0.045156248f,
    -0.042343747f, -0.03953125f, -0.036718752f, -0.033906247f, -0.03109375f, -0.028281247f,
    -0.02546875f, -0.022656251f, -0.01984375f, -0.017031251f, -0.01421875f, -0.01140625f,
    -0.0097187497f, -0.0091562495f, -0.0085937502f, -0.00803125f, -0.0074687498f, -0.00690625f,
    -0.0063437503f, -0.0057812501f, -0.0052187503f, -0.0046562497f, -0.0040937499f, -0.0035312497f,
    -0.00296875f, -0.00240625f, -0.00184375f, -0.0012812499f, -0.00094375008f, -0.00083124998f,
    -0.00071875006f, -0.00060625008f, -0.00049374998f, -0.00038124999f, -0.00026875004f, -0.00015625001f,
    -8.8749999e-05f, -6.6250002e-05f, -4.3749998e-05f, -2.1249998e-05f, -7.7499999e-06f, -3.2500002e-06f,
    -5.5000004e-07f, 0.0f, 5.5000004e-07f, 3.2500002e-06f, 7.7499999e-06f, 2.1249998e-05f,
    4.3749998e-05f, 6.6250002e-05f, 8.8749999e-05f, 0.00015625001f, 0.00026875004f, 0.00038124999f,
    0.00049374998f, 0.00060625008f, 0.00071875006f, 0.00083124998f, 0.00094375008f, 0.0012812499f,
    0.00184375f, 0.00240625f, 0.00296875f, 0.0035312497f, 0.0040937499f, 0.0046562497f,
    0.0052187503f, 0.0057812501f, 0.0063437503f, 0.00690625f, 0.0074687498f, 0.00803125f,
    0.0085937502f, 0.0091562495f, 0.0097187497f, 0.01140625f, 0.01421875f, 0.017031251f,
    0.01984375f, 0.022656251f, 0.02546875f, 0.028281247f, 0.03109375f, 0.033906247f,
    0.036718752f, 0.03953125f, 0.042343747f, 0.045156248f, 0.047968749f, 0.05078125f,
    0.053593755f, 0.056406248f, 0.059218753f, 0.06203125f, 0.064843751f, 0.067656256f,
    0.070468746f, 0.073281251f, 0.076093756f, 0.078906253f, 0.081718758f, 0.084531248f,
    0.087343752f, 0.09015625f, 0.092968754f, 0.095781259f, 0.098593749f, 0.10703126f,
    0.12109375f, 0.13515624f, 0.14921875f, 0.16328125f, 0.17734374f, 0.19140625f,
    0.20546874f, 0.21953125f, 0.23359375f, 0.24765624f, 0.26171875f, 0.27578124f,
    0.28984374f, 0.30390626f, 0.31796873f, 0.33203125f, 0.34609371f, 0.36015624f,
    0.37421876f, 0.38828123f, 0.40234375f, 0.41640621f, 0.43046874f, 0.44453123f,
    0.45859373f, 0.47265625f, 0.48671871f, 0.50078124f, 0.51484376f, 0.52890623f,
    0.54296875f, 0.55703127f, 0.57109374f, 0.58515626f, 0.59921879f, 0.61328125f,
    0.62734377f, 0.64140624f, 0.65546876f, 0.66953129f, 0.68359375f, 0.69765627f,
    0.71171874f, 0.72578126f, 0.73984379f, 0.75390625f, 0.76796877f, 0.78203124f,
    0.79609376f, 0.81015623f, 0.82421875f, 0.83828127f, 0.85234374f, 0.86640626f,
    0.88046873f, 0.89453125f, 0.90859377f, 0.92265624f, 0.93671876f, 0.95078123f,
    0.96484375f, 0.97890627f, 0.99296874f, 1.0f};

static const float appendix_unsigned[256] = {
    0.0f, 3.2500003e-07f, 7.7499999e-07f, 2.1249998e-06f, 4.3749997e-06f, 6.625e-06f,
    8.8749994e-06f, 1.5624999e-05f, 2.6875001e-05f, 3.8124996e-05f, 4.9374998e-05f, 6.0625003e-05f,
    7.1875002e-05f, 8.3124993e-05f, 9.4374998e-05f, 0.000128125f, 0.00018437501f, 0.000240625f,
    0.00029687502f, 0.00035312498f, 0.000409375f, 0.00046562502f, 0.00052187504f, 0.00057812501f,
    0.00063437509f, 0.00069062505f, 0.00074687501f, 0.00080312509f, 0.00085937505f, 0.00091562502f,
    0.00097187504f, 0.001140625f, 0.001421875f, 0.001703125f, 0.0019843748f, 0.0022656249f,
    0.0025468748f, 0.0028281247f, 0.0031093748f, 0.0033906247f, 0.003671875f, 0.0039531249f,
    0.0042343745f, 0.0045156246f, 0.0047968747f, 0.0050781248f, 0.0053593754f, 0.0056406246f,
    0.0059218751f, 0.0062031248f, 0.0064843749f, 0.0067656254f, 0.0070468746f, 0.0073281252f,
    0.0076093748f, 0.0078906249f, 0.008171875f, 0.0084531242f, 0.0087343752f, 0.0090156244f,
    0.0092968745f, 0.0095781256f, 0.0098593747f, 0.010703126f, 0.012109376f, 0.013515624f,
    0.014921876f, 0.016328124f, 0.017734375f, 0.019140625f, 0.020546874f, 0.021953126f,
    0.023359375f, 0.024765624f, 0.026171876f, 0.027578125f, 0.028984373f, 0.030390626f,
    0.031796873f, 0.033203125f, 0.034609374f, 0.036015626f, 0.037421878f, 0.038828123f,
    0.040234376f, 0.041640621f, 0.043046873f, 0.044453125f, 0.045859374f, 0.047265626f,
    0.048671871f, 0.050078124f, 0.051484376f, 0.052890625f, 0.054296877f, 0.05570313f,
    0.057109375f, 0.058515627f, 0.059921879f, 0.061328124f, 0.06273438f, 0.064140625f,
    0.065546878f, 0.06695313f, 0.068359375f, 0.069765627f, 0.071171872f, 0.072578125f,
    0.073984377f, 0.075390629f, 0.076796882f, 0.078203127f, 0.079609379f, 0.081015624f,
    0.082421876f, 0.083828129f, 0.085234374f, 0.086640626f, 0.088046871f, 0.089453124f,
    0.090859376f, 0.092265628f, 0.093671881f, 0.095078126f, 0.096484378f, 0.09789063f,
    0.099296875f, 0.10351562f, 0.11054687f, 0.11757813f, 0.12460937f, 0.13164061f,
    0.13867188f, 0.14570314f, 0.15273437f, 0.15976563f, 0.16679686f, 0.17382812f,
    0.18085937f, 0.18789062f, 0.19492188f, 0.20195311f, 0.20898438f, 0.21601562f,
    0.22304687f, 0.23007813f, 0.23710938f, 0.24414062f, 0.25117189f, 0.25820312f,
    0.26523435f, 0.27226561f, 0.27929688f, 0.28632814f, 0.29335937f, 0.3003906f,
    0.30742186f, 0.31445312f, 0.32148439f, 0.32851562f, 0.33554685f, 0.34257811f,
    0.34960938f, 0.35664061f, 0.36367187f, 0.3707031f, 0.37773436f, 0.38476562f,
    0.39179686f, 0.39882812f, 0.40585935f, 0.41289061f, 0.41992188f, 0.42695311f,
    0.43398434f, 0.4410156f, 0.44804686f, 0.45507812f, 0.46210936f, 0.46914059f,
    0.47617185f, 0.48320311f, 0.49023438f, 0.49726561f, 0.5042969f, 0.5113281f,
    0.51835942f, 0.52539062f, 0.53242183f, 0.53945315f, 0.54648435f, 0.55351567f,
    0.56054688f, 0.56757814f, 0.5746094f, 0.5816406f, 0.58867192f, 0.59570312f,
    0.60273439f, 0.60976565f, 0.61679685f, 0.62382817f, 0.63085938f, 0.63789064f,
    0.6449219f, 0.6519531f, 0.65898442f, 0.66601562f, 0.67304689f, 0.68007815f,
    0.68710935f, 0.69414067f, 0.70117188f, 0.70820314f, 0.7152344f, 0.7222656f,
    0.72929692f, 0.73632812f, 0.74335939f, 0.75039065f, 0.75742185f, 0.76445317f,
    0.77148438f, 0.77851558f, 0.7855469f, 0.7925781f, 0.79960942f, 0.80664062f,
    0.81367183f, 0.82070315f, 0.82773435f, 0.83476567f, 0.84179688f, 0.84882808f,
    0.8558594f, 0.8628906f, 0.86992192f, 0.87695312f, 0.88398433f, 0.89101565f,
    0.89804685f, 0.90507817f, 0.91210938f, 0.91914058f, 0.9261719f, 0.9332031f,
    0.94023442f, 0.94726562f, 0.95429683f, 0.96132815f, 0.96835935f, 0.97539067f,
    0.98242188f, 0.98945308f, 0.9964844f, 1.0f};

/* Exact bits from the reference's verification table (§1.2). */
typedef struct hex_entry {
    int idx;
    uint32_t bits;
} hex_entry;

static const hex_entry signed_hex[] = {
    {0, 0xbf7e3333},   {1, 0xbf7a999a},   {2, 0xbf770000},   {3, 0xbf736666},   {4, 0xbf6fcccd},   {123, 0xb7b24206},
    {124, 0xb70205ff}, {125, 0xb65a1a94}, {126, 0xb513a3b7}, {127, 0x00000000}, {128, 0x3513a3b7}, {129, 0x365a1a94},
    {130, 0x370205ff}, {252, 0x3f770000}, {253, 0x3f7a999a}, {254, 0x3f7e3333}, {255, 0x3f800000}};
static const hex_entry unsigned_hex[] = {
    {0, 0x00000000},   {1, 0x34ae7baa},   {2, 0x35500998},   {3, 0x360e9b38},   {4, 0x3692ccf6},   {126, 0x3dcb5c29},
    {127, 0x3dd40000}, {128, 0x3de26666}, {252, 0x3f7b8000}, {253, 0x3f7d4ccc}, {254, 0x3f7f199a}, {255, 0x3f800000}};

/* Builds the signed or unsigned map into map and asserts it is within 1 ulp of the appendix
 * (256 values) and of the table's exact bits (nhex entries), and strictly ascending; a failure
 * names the map and the index. */
static void assert_map_matches(float *map, int is_signed, const float *appendix, const hex_entry *hex, size_t nhex)
{
    const char *which = is_signed ? "signed" : "unsigned";
    qmap_build(map, is_signed);
    for (int i = 0; i < 256; i++)
        ck_assert_msg(ulp_distance(map[i], appendix[i]) <= 1, "%s[%d] = %.9g, appendix %.9g", which, i, map[i],
                      appendix[i]);
    for (size_t k = 0; k < nhex; k++)
        ck_assert_msg(ulp_distance(map[hex[k].idx], ops_bits_float((int32_t)hex[k].bits)) <= 1, "%s[%d] bits %08x, table %08x", which,
                      hex[k].idx, ops_float_bits(map[hex[k].idx]), hex[k].bits);
    for (int i = 1; i < 256; i++)
        ck_assert_msg(map[i - 1] < map[i], "%s map not strictly ascending at %d", which, i);
}

START_TEST(test_qmap_signed_matches_appendix)
{
    float map[256];
    assert_map_matches(map, 1, appendix_signed, signed_hex, sizeof signed_hex / sizeof signed_hex[0]);
    ck_assert_float_eq(map[127], 0.0f);
    ck_assert_float_eq(map[255], 1.0f);
}
END_TEST

START_TEST(test_qmap_unsigned_matches_appendix)
{
    float map[256];
    assert_map_matches(map, 0, appendix_unsigned, unsigned_hex, sizeof unsigned_hex / sizeof unsigned_hex[0]);
    ck_assert_float_eq(map[0], 0.0f);
}
END_TEST

/* Mean absolute and relative error of a quantize/dequantize round trip. */
static void roundtrip_error(device *d, const float *x, int64_t n, int block, int is_signed, double *abs_err,
                            double *rel_err)
{
    uint8_t *codes = malloc((size_t)n);
    float *absmax = malloc((size_t)quant_nblocks(n, block) * sizeof(float));
    float *y = malloc((size_t)n * sizeof(float));
    octet_err e;
    ck_assert_int_eq(quant_blockwise(d, x, n, block, is_signed, codes, absmax, &e), OCTET_OK);
    ck_assert_int_eq(dequant_blockwise(d, codes, n, block, is_signed, absmax, y, &e), OCTET_OK);
    double sa = 0, sr = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)x[i] - y[i]);
        sa += err;
        sr += err / (fabs((double)x[i]) + 1e-8);
    }
    *abs_err = sa / (double)n;
    *rel_err = sr / (double)n;
    free(codes);
    free(absmax);
    free(y);
}

/* bitsandbytes' thresholds (test_functional.py) for every block size 64..4096; n = 2^18 + 77 so
 * the last block is partial. The 256-block figures must also be near the reference's derived
 * statistics (§2.5), which catches a quantizer that is merely "not terrible". */
START_TEST(test_quant_error_within_bnb_thresholds)
{
    const int64_t n = (1 << 18) + 77;
    float *normal = malloc((size_t)n * sizeof(float)), *uniform = malloc((size_t)n * sizeof(float));
    test_rng r;
    rng_seed(&r, 1234);
    rng_fill_normal(&r, normal, (size_t)n, 1.0f);
    rng_fill_uniform(&r, uniform, (size_t)n, 0.0f, 1.0f);
    device *d;
    ck_assert_int_eq(device_open("cpu", 0, &d, NULL), OCTET_OK);
    for (int block = 64; block <= 4096; block *= 2) {
        double a, rel;
        roundtrip_error(d, normal, n, block, 1, &a, &rel);
        ck_assert_msg(a < 0.011 && rel < 0.018, "randn/signed B=%d: abs %.5f rel %.5f", block, a, rel);
        if (block == 256)
            ck_assert_msg(fabs(a - 0.00854) < 0.0006, "randn/signed B=256 abs %.5f, reference 0.00854", a);
        roundtrip_error(d, uniform, n, block, 1, &a, &rel);
        ck_assert_msg(a < 0.0036 && rel < 0.015, "U(0,1)/signed B=%d: abs %.5f rel %.5f", block, a, rel);
        if (block == 256)
            ck_assert_msg(fabs(a - 0.00319) < 0.0003, "U/signed B=256 abs %.5f, reference 0.00319", a);
        roundtrip_error(d, uniform, n, block, 0, &a, &rel);
        ck_assert_msg(a < 0.0023 && rel < 0.012, "U(0,1)/unsigned B=%d: abs %.5f rel %.5f", block, a, rel);
        if (block == 256)
            ck_assert_msg(fabs(a - 0.00160) < 0.0002, "U/unsigned B=256 abs %.5f, reference 0.00160", a);
    }
    device_close(d);
    free(normal);
    free(uniform);
}
END_TEST

/* The quantizer picks the nearest map entry: brute force over all 256 entries agrees except at
 * exact ties; the block's absmax element maps to +-1 exactly. Partial last block included. */
START_TEST(test_quant_nearest_against_brute_force)
{
    const int64_t n = 1000; /* 3 full blocks of 256 and a partial one */
    float x[1000], map[256];
    uint8_t codes[1000];
    float absmax[4];
    test_rng r;
    rng_seed(&r, 99);
    rng_fill_normal(&r, x, (size_t)n, 0.3f);
    device *d;
    ck_assert_int_eq(device_open("cpu", 0, &d, NULL), OCTET_OK);
    for (int is_signed = 0; is_signed <= 1; is_signed++) {
        if (!is_signed)
            for (int i = 0; i < n; i++)
                x[i] = fabsf(x[i]);
        qmap_build(map, is_signed);
        ck_assert_int_eq(quant_blockwise(d, x, n, 256, is_signed, codes, absmax, NULL), OCTET_OK);
        for (int64_t i = 0; i < n; i++) {
            float a = absmax[i / 256], v = x[i] / a;
            float best = fabsf(map[codes[i]] - v);
            for (int k = 0; k < 256; k++)
                ck_assert_msg(fabsf(map[k] - v) >= best, "x[%lld]: code %d (%.7g) but %d (%.7g) is nearer to %.7g",
                              (long long)i, codes[i], map[codes[i]], k, map[k], v);
        }
        for (int b = 0; b * 256 < n; b++) { /* each block's scale is its largest |x|, the partial one too */
            float want = 0.0f;
            for (int64_t i = (int64_t)b * 256; i < n && i < (int64_t)(b + 1) * 256; i++)
                want = fmaxf(want, fabsf(x[i]));
            ck_assert_msg(absmax[b] == want, "block %d: absmax %.9g, want %.9g", b, absmax[b], want);
        }
    }
    device_close(d);
}
END_TEST

START_TEST(test_quant_rejects_bad_block_sizes)
{
    float x[4] = {1, 2, 3, 4}, absmax[1];
    uint8_t codes[4];
    device *d;
    ck_assert_int_eq(device_open("cpu", 0, &d, NULL), OCTET_OK);
    int bad[] = {0, 32, 100, 8192, 255, -256};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octet_err e;
        octet_err_clear(&e);
        ck_assert_int_eq(quant_blockwise(d, x, 4, bad[i], 1, codes, absmax, &e), OCTET_ERR_ARG);
        ck_assert_str_eq(e.field, "block_size");
    }
    device_close(d);
}
END_TEST

Suite *suite_qmap(void)
{
    Suite *s = suite_create("qmap");
    TCase *tc = tcase_create("maps");
    tcase_add_test(tc, test_qmap_signed_matches_appendix);
    tcase_add_test(tc, test_qmap_unsigned_matches_appendix);
    suite_add_tcase(s, tc);
    tc = tcase_create("quantizer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_quant_error_within_bnb_thresholds);
    tcase_add_test(tc, test_quant_nearest_against_brute_force);
    tcase_add_test(tc, test_quant_rejects_bad_block_sizes);
    suite_add_tcase(s, tc);
    return s;
}
