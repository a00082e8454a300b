/* check_trainer_gpujob.c: the device-independent parts of a job on the GPU, checked on the CPU
 * (suite_trainer_gpujob):
 *  - the fp16 loss scaler (loss_scale.h) against torch.cuda.amp.GradScaler's rules: a sequence
 *    of finite / non-finite flags gives the scale, growth tracker and skip decisions that
 *    GradScaler's _amp_update_scale_ gives (init 65536, backoff 0.5, growth 2.0 after 2000
 *    good steps, no growth to infinity), hand-checked cases plus a long random sequence
 *    against a transcription of torch's kernel;
 *  - precision bf16 / fp16 refused on the CPU naming training.precision;
 *  - `--device cuda` where no CUDA device is usable: OCTET_ERR_NODEV naming training.device,
 *    the device ("CUDA device 0") and, in a CUDA build, the CUDA error string (in a CPU-only
 *    build: that the build has no CUDA backend); nothing to check where a device answers;
 *  - the device memory cap (device_set_limit): allocations beyond it fail like a full device
 *    with the figures; a job whose model or optimizer state does not fit fails at allocation
 *    with "asked X bytes, Y free of Z", and the same process then runs a small job fine. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check_trainer.h"
#include "device.h"
#include "testlib.h"
#include "train/loss_scale.h"

/* ------------------------------------------------------------------ the loss scaler */

/* torch's _amp_update_scale_cpu_ / the CUDA kernel, transcribed: float32 scale, int tracker. */
typedef struct torch_scaler {
    float scale;
    int tracker;
} torch_scaler;

static int torch_update(torch_scaler *s, int found_inf)
{
    if (found_inf) {
        s->scale *= 0.5f;
        s->tracker = 0;
        return 1; /* GradScaler.step skips optimizer.step when found_inf */
    }
    int successful = s->tracker + 1;
    if (successful == 2000) {
        float ns = s->scale * 2.0f;
        if (isfinite(ns))
            s->scale = ns;
        s->tracker = 0;
    } else {
        s->tracker = successful;
    }
    return 0;
}

START_TEST(test_loss_scale_defaults)
{
    loss_scaler s;
    loss_scale_init(&s, 1);
    ck_assert(s.scale == 65536.0f);
    ck_assert(loss_scale_factor(&s) == 65536.0f);
    ck_assert(loss_scale_inv(&s) == 1.0f / 65536.0f);
    ck_assert_int_eq(s.growth_interval, 2000);
    ck_assert(s.growth_factor == 2.0f && s.backoff_factor == 0.5f);
    /* a non-finite step: skipped, halved */
    ck_assert_int_eq(loss_scale_update(&s, 1), 1);
    ck_assert(s.scale == 32768.0f);
    ck_assert_int_eq(s.growth_tracker, 0);
    /* 1999 good steps: no growth yet */
    for (int i = 0; i < 1999; i++)
        ck_assert_int_eq(loss_scale_update(&s, 0), 0);
    ck_assert(s.scale == 32768.0f);
    ck_assert_int_eq(s.growth_tracker, 1999);
    /* the 2000th: doubled, tracker restarts */
    ck_assert_int_eq(loss_scale_update(&s, 0), 0);
    ck_assert(s.scale == 65536.0f);
    ck_assert_int_eq(s.growth_tracker, 0);
    /* an overflow in the middle of a run of good steps restarts the count */
    for (int i = 0; i < 1500; i++)
        loss_scale_update(&s, 0);
    ck_assert_int_eq(loss_scale_update(&s, 1), 1);
    ck_assert(s.scale == 32768.0f);
    for (int i = 0; i < 1999; i++)
        loss_scale_update(&s, 0);
    ck_assert(s.scale == 32768.0f);
    loss_scale_update(&s, 0);
    ck_assert(s.scale == 65536.0f);
    ck_assert_int_eq(s.skipped, 2);
    /* 17 overflows in a row: 2^16 * 2^-17 = 0.5 (GradScaler has no floor) */
    for (int i = 0; i < 17; i++)
        ck_assert_int_eq(loss_scale_update(&s, 1), 1);
    ck_assert(s.scale == 0.5f);
    ck_assert(loss_scale_inv(&s) == 2.0f);
}
END_TEST

START_TEST(test_loss_scale_no_infinite_growth)
{
    loss_scaler s;
    loss_scale_init(&s, 1);
    s.scale = ldexpf(1.0f, 127); /* growing would give +inf */
    for (int i = 0; i < 2000; i++)
        loss_scale_update(&s, 0);
    ck_assert(s.scale == ldexpf(1.0f, 127));
    ck_assert_int_eq(s.growth_tracker, 0); /* the tracker restarts anyway, as torch's */
    /* inv of an odd scale is the float of the double reciprocal */
    s.scale = 3.0f;
    ck_assert(loss_scale_inv(&s) == (float)(1.0 / 3.0));
}
END_TEST

START_TEST(test_loss_scale_disabled)
{
    loss_scaler s;
    loss_scale_init(&s, 0);
    ck_assert(loss_scale_factor(&s) == 1.0f && loss_scale_inv(&s) == 1.0f);
    ck_assert_int_eq(loss_scale_update(&s, 1), 0); /* bf16 / fp32: the trainer's own NaN rule applies */
    ck_assert(s.scale == 1.0f);
    ck_assert_int_eq(s.skipped, 0);
}
END_TEST

START_TEST(test_loss_scale_random_sequence)
{
    test_rng r;
    rng_seed(&r, 2024);
    loss_scaler s;
    loss_scale_init(&s, 1);
    torch_scaler t = {65536.0f, 0};
    int64_t skips = 0;
    for (int i = 0; i < 200000; i++) {
        /* bursts: mostly good steps, overflow runs now and then, long quiet stretches */
        double p = (i / 10000) % 3 == 0 ? 1e-4 : (i / 10000) % 3 == 1 ? 2e-3 : 0.0;
        int inf = rng_uniform(&r) < p;
        int a = loss_scale_update(&s, inf), b = torch_update(&t, inf);
        skips += b;
        ck_assert_msg(a == b && s.scale == t.scale && s.growth_tracker == t.tracker,
                      "step %d: skip %d/%d scale %g/%g tracker %d/%d", i, a, b, (double)s.scale, (double)t.scale,
                      s.growth_tracker, t.tracker);
    }
    ck_assert_int_eq(s.skipped, skips);
    ck_assert_int_gt(skips, 0);
}
END_TEST

/* ------------------------------------------------------------------ a synthetic feature set */

/* n rows of F features in [0, 1) with 2 classes (the label is whether the first feature > 0.5). */
static void synthetic(octet_dataset *d, size_t n, size_t F, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    test_rng r;
    rng_seed(&r, seed);
    d->name = strdup("synthetic");
    d->n = n;
    d->n_features = F;
    d->num_classes = 2;
    d->features = malloc(n * F * sizeof *d->features);
    d->labels = malloc(n * sizeof *d->labels);
    ck_assert(d->name && d->features && d->labels);
    rng_fill_uniform(&r, d->features, n * F, 0.0f, 1.0f);
    for (size_t i = 0; i < n; i++)
        d->labels[i] = d->features[i * F] > 0.5f;
}

static void free_synthetic(octet_dataset *d)
{
    free(d->name);
    free(d->features);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static void mlp_job(const char *hidden, const char *optimizer, const char *precision, job_spec *s)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"arch\": \"mlp\", \"hidden\": %s}, \"dataset\": {\"name\": \"synthetic\"},"
             " \"optimizer\": {\"name\": \"%s\", \"lr\": 1e-3},"
             " \"training\": {\"epochs\": 1, \"batch_size\": 8, \"precision\": \"%s\"}}",
             hidden, optimizer, precision);
    tr_parse_ok(json, s);
}

static trainer_options data_options(const octet_dataset *train, const octet_dataset *eval, const char *device,
                                    size_t limit)
{
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = device;
    o.train_data = train;
    o.eval_data = eval;
    o.device_mem_limit = limit;
    return o;
}

/* ------------------------------------------------------------------ precision and devices */

START_TEST(test_precision_refused_on_cpu)
{
    octet_dataset tr, ev;
    synthetic(&tr, 16, 8, 1);
    synthetic(&ev, 8, 8, 2);
    const char *precs[2] = {"bf16", "fp16"};
    for (int i = 0; i < 2; i++) {
        job_spec s;
        mlp_job("[4]", "adamw", precs[i], &s);
        trainer_options o = data_options(&tr, &ev, "cpu", 0);
        trainer_result r;
        octet_err e;
        octet_err_clear(&e);
        ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_ERR_ARG);
        ck_assert_str_eq(e.field, "training.precision");
        ck_assert_msg(strstr(e.message, precs[i]) && strstr(e.message, "CUDA"), "%s", e.message);
    }
    free_synthetic(&tr);
    free_synthetic(&ev);
}
END_TEST

START_TEST(test_cuda_unusable_is_an_error)
{
    char why[256];
    if (device_cuda_usable(why, sizeof why)) {
        printf("test_cuda_unusable_is_an_error: a CUDA device answers here; nothing to check\n");
        return;
    }
    octet_dataset tr, ev;
    synthetic(&tr, 16, 8, 1);
    synthetic(&ev, 8, 8, 2);
    job_spec s;
    mlp_job("[4]", "adamw", "fp32", &s);
    trainer_options o = data_options(&tr, &ev, "cuda", 0);
    trainer_result r;
    octet_err e;
    octet_err_clear(&e);
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_ERR_NODEV);
    ck_assert_str_eq(e.field, "training.device");
    ck_assert_msg(strstr(e.message, "CUDA device 0"), "%s", e.message);
#ifdef HAVE_CUDA
    /* the CUDA runtime's own words, e.g. "no CUDA device: CUDA driver version is insufficient
     * for CUDA runtime version" or "... no CUDA-capable device is detected" */
    ck_assert_msg(strstr(e.message, why), "'%s' lacks the CUDA error '%s'", e.message, why);
    ck_assert_msg(strstr(e.message, "no CUDA device: "), "%s", e.message);
#else
    ck_assert_msg(strstr(e.message, "no CUDA backend"), "%s", e.message);
#endif
    /* the CPU still works in the same process */
    o.device = "cpu";
    ck_assert_msg(trainer_run(&s, &o, &r, &e) == OCTET_OK, "%s", e.message);
    free_synthetic(&tr);
    free_synthetic(&ev);
}
END_TEST

/* ------------------------------------------------------------------ the memory cap */

START_TEST(test_device_limit)
{
    device *d = NULL;
    octet_err e;
    ck_assert_int_eq(device_open("cpu", 0, &d, &e), OCTET_OK);
    ck_assert_int_eq(device_bind_thread(d), OCTET_OK); /* a no-op on the CPU */
    size_t fr = 0, tot = 0;
    device_mem_available(d, &fr, &tot);
    ck_assert_uint_gt(tot, 0); /* the host's memory */
    device_set_limit(d, 1000);
    void *a = device_alloc(d, 800, MEM_PARAMS);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(device_alloc(d, 300, MEM_GRADS)); /* 1100 > 1000 */
    ck_assert_ptr_null(device_alloc(d, (size_t)-1, MEM_GRADS));
    device_mem_stats st;
    device_mem_stats_get(d, &st);
    ck_assert_uint_eq(st.current_total, 800);
    ck_assert_uint_eq(st.current[MEM_GRADS], 0);
    device_mem_available(d, &fr, &tot);
    ck_assert_uint_eq(fr, 200);
    ck_assert_uint_eq(tot, 1000);
    ck_assert_int_eq(device_alloc_fail(d, &e, "model", 300, "the test buffer"), OCTET_ERR_NOMEM);
    ck_assert_str_eq(e.field, "model");
    ck_assert_msg(strstr(e.message, "out of cpu memory allocating the test buffer: asked 300 bytes") &&
                      strstr(e.message, "200 free of 1000"),
                  "%s", e.message);
    void *b = device_alloc(d, 200, MEM_GRADS); /* exactly up to the cap */
    ck_assert_ptr_nonnull(b);
    device_free(d, a);
    ck_assert_ptr_nonnull(a = device_alloc(d, 300, MEM_GRADS));
    device_set_limit(d, 0); /* no cap */
    void *c = device_alloc(d, 1 << 20, MEM_ACTIVATIONS);
    ck_assert_ptr_nonnull(c);
    device_free(d, a);
    device_free(d, b);
    device_free(d, c);
    device_close(d);
}
END_TEST

/* "asked N bytes" of a message, or 0. */
static size_t asked_of(const char *msg)
{
    const char *p = strstr(msg, "asked ");
    return p ? (size_t)strtoull(p + 6, NULL, 10) : 0;
}

START_TEST(test_job_too_big_then_small)
{
    octet_dataset tr, ev;
    synthetic(&tr, 32, 64, 3);
    synthetic(&ev, 16, 64, 4);
    const size_t limit = 8u << 20; /* 8 MiB */
    job_spec s;
    trainer_result r;
    octet_err e;

    /* the model: layers.2.weight (4096 x 4096 floats, 64 MiB) cannot fit */
    mlp_job("[4096, 4096]", "adamw", "fp32", &s);
    trainer_options o = data_options(&tr, &ev, "cpu", limit);
    octet_err_clear(&e);
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_ERR_NOMEM);
    ck_assert_str_eq(e.field, "model");
    ck_assert_msg(strstr(e.message, "layers.2.weight") && strstr(e.message, "free of 8388608"), "%s", e.message);
    ck_assert_uint_eq(asked_of(e.message), (size_t)4096 * 4096 * 4);

    /* the optimizer state: 64-512-2 (34306 parameters: 134 KiB of weights, as much of gradients)
     * fits in 400 KB, AdamW's 8 B per parameter on top does not */
    mlp_job("[512]", "adamw", "fp32", &s);
    o = data_options(&tr, &ev, "cpu", 400000);
    octet_err_clear(&e);
    ck_assert_int_eq(trainer_run(&s, &o, &r, &e), OCTET_ERR_NOMEM);
    ck_assert_str_eq(e.field, "optimizer.name");
    ck_assert_msg(strstr(e.message, "adamw optimizer state") && strstr(e.message, "free of 400000"), "%s",
                  e.message);
    ck_assert_uint_eq(asked_of(e.message), (size_t)8 * (64 * 512 + 512 + 512 * 2 + 2));

    /* the same process, the same cap: a small job runs */
    mlp_job("[16]", "adamw8bit", "fp32", &s);
    o = data_options(&tr, &ev, "cpu", limit);
    ck_assert_msg(trainer_run(&s, &o, &r, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(r.epochs_done, 1);
    ck_assert_uint_le(r.memory.peak_total, limit);
    ck_assert_uint_gt(r.memory.peak_total, 0);
    free_synthetic(&tr);
    free_synthetic(&ev);
}
END_TEST

Suite *suite_trainer_gpujob(void)
{
    Suite *s = suite_create("trainer_gpujob");
    TCase *scale = tcase_create("loss_scale");
    tcase_add_test(scale, test_loss_scale_defaults);
    tcase_add_test(scale, test_loss_scale_no_infinite_growth);
    tcase_add_test(scale, test_loss_scale_disabled);
    tcase_add_test(scale, test_loss_scale_random_sequence);
    suite_add_tcase(s, scale);
    TCase *dev = tcase_create("device");
    tcase_add_test(dev, test_precision_refused_on_cpu);
    tcase_add_test(dev, test_cuda_unusable_is_an_error);
    tcase_add_test(dev, test_device_limit);
    tcase_add_test(dev, test_job_too_big_then_small);
    suite_add_tcase(s, dev);
    return s;
}
