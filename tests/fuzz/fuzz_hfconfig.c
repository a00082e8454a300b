/* fuzz_hfconfig.c: libFuzzer harness of a model directory's config.json (model.path), read over
 * Hugging Face's DistilBERT defaults with every field's range checked. The input is config.json;
 * when its first byte is odd a small vocab.txt sits beside it, so the vocabulary-size checks
 * run too. */
#include "config.h"
#include <sys/stat.h>
#include "fuzz_util.h"
#include "train/hfdir.h"
#include "train/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/model", fuzz_dir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    unlink(path);
    if (size && (data[0] & 1)) {
        static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n";
        FILE *f = fopen(path, "wb");
        if (!f)
            abort();
        fwrite(vocab, 1, sizeof vocab - 1, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
    distilbert_config cfg;
    octet_tokenizer *tok = NULL;
    octet_err e;
    if (hfdir_read_config(dir, &cfg, &tok, &e) == OCTET_OK && tok)
        octet_tok_free(tok);
    return 0;
}
