/* fuzz_safetensors.c: libFuzzer harness of the safetensors reader (a model directory's
 * model.safetensors, a checkpoint's weights): header JSON, offsets, dtypes, shapes. Every
 * tensor an opened file lists is read as fp32, which touches every byte range it claims. */
#include "config.h"
#include "fuzz_util.h"
#include "train/safetensors.h"

#define MAX_READ_FLOATS ((uint64_t)1 << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.safetensors", data, size);
    octet_st_file *f = NULL;
    octet_err e;
    if (octet_st_open(path, &f, &e) != OCTET_OK)
        return 0;
    for (size_t i = 0; i < octet_st_count(f); i++) {
        const octet_st_tensor *t = octet_st_at(f, i);
        if (t->numel > MAX_READ_FLOATS)
            continue;
        float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
        if (!dst)
            continue;
        octet_st_read_f32(f, t->name, dst, (size_t)t->numel, &e);
        free(dst);
    }
    octet_st_metadata(f, "format");
    octet_st_close(f);
    return 0;
}
