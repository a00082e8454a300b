/* fuzz_tokenizer.c: libFuzzer harness of the WordPiece tokenizer: a vocab.txt and arbitrary
 * text (invalid UTF-8 included). The input is the vocabulary, a NUL byte, then the text; without
 * a NUL the whole input is text for the byte tokenizer and for a fixed small vocabulary. Loads
 * the vocabulary (lower-casing per the first byte), tokenizes, and encodes the text as a pair. */
#include "config.h"
#include "fuzz_util.h"
#include "train/tokenizer.h"

static const char fixed_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\na\n##ing\nhello\n,\n.\n!\n\xc3\xa9t\xc3\xa9\n\xe4\xb8\xad\n";

static void run(const octet_tokenizer *t, const char *text)
{
    octet_ids ids = {0};
    octet_err e;
    if (octet_tok_tokenize(t, text, &ids, &e) == OCTET_OK)
        octet_ids_free(&ids);
    const char *texts[1] = {text}, *pairs[1] = {text};
    octet_encoding enc;
    memset(&enc, 0, sizeof enc);
    if (octet_tok_encode_batch(t, texts, pairs, 1, 32, 1, &enc, &e) == OCTET_OK)
        octet_encoding_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    octet_tokenizer *t = NULL;
    octet_err e;
    octet_tok_options o;
    octet_tok_options_default(&o);
    char *text;
    const char *vocab;
    if (nul) {
        vocab = fuzz_file("vocab.txt", data, (size_t)(nul - data));
        text = fuzz_string(nul + 1, size - (size_t)(nul - data) - 1);
        o.do_lower_case = size && (data[0] & 1);
    } else {
        vocab = fuzz_file("vocab.txt", (const uint8_t *)fixed_vocab, sizeof fixed_vocab - 1);
        text = fuzz_string(data, size);
        octet_tokenizer *bytes = NULL;
        if (octet_tok_new_bytes(&bytes, &e) == OCTET_OK) {
            run(bytes, text);
            octet_tok_free(bytes);
        }
    }
    if (octet_tok_load_vocab(vocab, &o, &t, &e) == OCTET_OK) {
        run(t, text);
        octet_tok_free(t);
    }
    free(text);
    return 0;
}
