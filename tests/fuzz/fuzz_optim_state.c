/* fuzz_optim_state.c: libFuzzer harness of the optimizer-state file loader (a checkpoint's
 * optimizer.bin, read on every resume). Three optimizers are made once over the same tensors (an
 * 8-bit one, with one tensor under min_8bit_size kept in fp32; AdamW; Adafactor, whose states
 * are factored) and the first byte picks which one loads the rest of the input. A load may fail
 * however it likes; it must not read or write out of bounds, leak, or hang. After a successful
 * load one step runs on the loaded state. */
#include "config.h"
#include <sys/stat.h>
#include "fuzz_util.h"
#include "device.h"
#include "optim.h"

#define N_TENSORS 3

static device *dev;
static optim *opts[3];
static float *grads[N_TENSORS];

static void setup(void)
{
    static const int64_t shapes[N_TENSORS][2] = {{64, 80}, {300, 1}, {48, 96}};
    static const char *const names[N_TENSORS] = {"a.weight", "a.bias", "b.weight"};
    optim_tensor t[N_TENSORS];
    if (device_open("cpu", 0, &dev, NULL) != OCTET_OK)
        abort();
    for (int i = 0; i < N_TENSORS; i++) {
        size_t n = (size_t)(shapes[i][0] * shapes[i][1]);
        float *p = device_alloc(dev, n * sizeof(float), MEM_PARAMS);
        grads[i] = device_alloc(dev, n * sizeof(float), MEM_GRADS);
        if (!p || !grads[i])
            abort();
        for (size_t k = 0; k < n; k++)
            p[k] = 0.01f * (float)(k % 17), grads[i][k] = 0.001f * (float)(k % 13) - 0.005f;
        t[i] = (optim_tensor){.name = names[i], .ndim = shapes[i][1] > 1 ? 2 : 1,
                              .shape = {shapes[i][0], shapes[i][1]}, .param = p, .grad = grads[i]};
    }
    const optim_kind kinds[3] = {OPTIM_ADAMW8BIT, OPTIM_ADAMW, OPTIM_ADAFACTOR};
    for (int k = 0; k < 3; k++) {
        optim_config cfg;
        optim_config_defaults(kinds[k], &cfg);
        octet_err e;
        if (optim_create(dev, &cfg, t, N_TENSORS, &opts[k], &e) != OCTET_OK || optim_step(opts[k], 1.0) != OCTET_OK)
            abort();
    }
}

/* Writes each optimizer's saved state, behind its selector byte, into $OCTET_FUZZ_SEEDS (when
 * set): the valid files the fuzzer starts from. */
static void write_seeds(const char *dir)
{
    mkdir(dir, 0755);
    for (int k = 0; k < 3; k++) {
        char tmp[600], seed[600];
        snprintf(tmp, sizeof tmp, "%s/saved", fuzz_dir());
        octet_err e;
        if (optim_save_path(opts[k], tmp, &e) != OCTET_OK)
            abort();
        FILE *in = fopen(tmp, "rb");
        snprintf(seed, sizeof seed, "%s/state-%d", dir, k);
        FILE *out = fopen(seed, "wb");
        if (!in || !out)
            abort();
        fputc(k, out);
        int c;
        while ((c = fgetc(in)) != EOF)
            fputc(c, out);
        fclose(in);
        fclose(out);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setup();
    const char *seeds = getenv("OCTET_FUZZ_SEEDS");
    if (seeds && *seeds)
        write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    optim *o = opts[data[0] % 3];
    const char *path = fuzz_file("optimizer.bin", data + 1, size - 1);
    octet_err e;
    if (optim_load_path(o, path, &e) == OCTET_OK)
        optim_step(o, 1.0);
    return 0;
}
