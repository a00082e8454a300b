/* check_train_data_tok.c: the tokenizer suite: hand-checked WordPiece examples on the small
 * vocabulary in tests/data/wordpiece/ (cased and uncased, accents, CJK, long words, special
 * tokens written in text), framing, pair truncation and padding, the byte-level tokenizer,
 * refused vocabularies and configs, and a cross-check against tests/data/bert_reference.py
 * (a transcription of Transformers' BertTokenizer on Python's unicodedata; Debian bookworm
 * packages neither transformers nor tokenizers) on tests/data/tokenizer_cases.txt plus a few
 * hundred real fortunes in six languages, under four lower-case / accent settings. */
#include "check_train_data.h"
#include "testlib.h"
#include "train/dataset.h"
#include "train/tokenizer.h"
#include "train/unicode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static octet_tokenizer *load_uncased(void)
{
    char dir[512];
    td_data("wordpiece", dir, sizeof dir);
    octet_tokenizer *t = NULL;
    octet_err e = {0};
    ck_assert_msg(octet_tok_load_dir(dir, &t, &e) == OCTET_OK, "%s", e.message);
    return t;
}

static octet_tokenizer *load_with(int lower, int strip, int chinese)
{
    char vocab[512];
    td_data("wordpiece/vocab.txt", vocab, sizeof vocab);
    octet_tok_options o;
    octet_tok_options_default(&o);
    o.do_lower_case = lower;
    o.strip_accents = strip;
    o.tokenize_chinese_chars = chinese;
    octet_tokenizer *t = NULL;
    octet_err e = {0};
    ck_assert_msg(octet_tok_load_vocab(vocab, &o, &t, &e) == OCTET_OK, "%s", e.message);
    return t;
}

/* The WordPiece tokens of text joined by spaces, into out. */
static const char *pieces(const octet_tokenizer *t, const char *text, char *out, size_t cap)
{
    octet_ids ids = {0};
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_tokenize(t, text, &ids, &e), OCTET_OK);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ids.n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", octet_tok_id_to_token(t, ids.v[i]));
    octet_ids_free(&ids);
    return out;
}

#define CK_PIECES(t, text, want)                                                              \
    do {                                                                                      \
        char buf_[4096];                                                                      \
        ck_assert_str_eq(pieces(t, text, buf_, sizeof buf_), want);                           \
    } while (0)

START_TEST(test_uncased_examples)
{
    octet_tokenizer *t = load_uncased();
    ck_assert_uint_eq(octet_tok_vocab_size(t), 93);
    ck_assert_uint_eq(octet_tok_model_max_length(t), 512);
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_PAD), 0);
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_UNK), 1);
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_CLS), 2);
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_SEP), 3);
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_MASK), 4);
    CK_PIECES(t, "Hello, world!", "hello , world !");
    CK_PIECES(t, "unaffable", "un ##aff ##able");
    CK_PIECES(t, "Café Élan", "cafe elan");
    CK_PIECES(t, "UNwant\xC3\xA9" "d,running", "un ##want ##ed , runn ##ing");   /* Transformers' own test */
    CK_PIECES(t, "  Zürich\t\nüber ", "zurich uber");
    CK_PIECES(t, "uber", "uber");
    CK_PIECES(t, "\xE4\xB8\xAD\xE5\x9B\xBD\xE4\xBA\xBA" "ok", "\xE4\xB8\xAD \xE5\x9B\xBD \xE4\xBA\xBA ok"); /* 中国人ok */
    CK_PIECES(t, "resume R\xC3\xA9sum\xC3\xA9", "resume resume");
    CK_PIECES(t, "okay", "ok ##ay");
    CK_PIECES(t, "quickly", "[UNK]");                  /* no ##ly: the whole word is [UNK] */
    CK_PIECES(t, "x[SEP]y [MASK] [mask]", "x [SEP] [UNK] [MASK] [ [UNK] ]");
    CK_PIECES(t, "a\x01" "b\xEF\xBF\xBD", "[UNK]");    /* control char and U+FFFD dropped: "ab" */
    CK_PIECES(t, "e\xCC\x81", "e");                    /* e + combining acute, stripped */
    CK_PIECES(t, "", "");
    CK_PIECES(t, " \t\n", "");
    ck_assert_int_eq(octet_tok_token_to_id(t, "##s"), 92);  /* listed twice: the last line wins */
    ck_assert_int_eq(octet_tok_token_to_id(t, "nope"), -1);
    octet_tok_free(t);
}
END_TEST

START_TEST(test_cased_and_accents)
{
    octet_tokenizer *cased = load_with(0, -1, 1);
    CK_PIECES(cased, "Hello World", "Hello World");
    CK_PIECES(cased, "hello world", "hello world");
    CK_PIECES(cased, "Café Élan", "Café Élan");            /* no lower-casing, accents kept */
    CK_PIECES(cased, "Cafe\xCC\x81", "Café");               /* NFC composes e + U+0301 */
    CK_PIECES(cased, "HELLO", "[UNK]");
    octet_tok_free(cased);
    octet_tokenizer *keep = load_with(1, 0, 1);             /* lower-case, strip_accents false */
    CK_PIECES(keep, "CAFÉ naïve Zürich", "café naïve zürich");
    octet_tok_free(keep);
    octet_tokenizer *strip = load_with(0, 1, 1);            /* strip without lower-casing */
    CK_PIECES(strip, "Café Élan", "[UNK] [UNK]");           /* "Cafe", "Elan" are not in the vocab */
    CK_PIECES(strip, "café", "cafe");
    octet_tok_free(strip);
    octet_tokenizer *nocjk = load_with(1, -1, 0);
    CK_PIECES(nocjk, "\xE4\xB8\xAD\xE5\x9B\xBD", "[UNK]");   /* one word, no ##国 */
    octet_tok_free(nocjk);
}
END_TEST

START_TEST(test_long_words)
{
    octet_tokenizer *t = load_uncased();
    char w[128], want[512];
    memset(w, 'x', 100);
    w[100] = '\0';
    size_t len = (size_t)snprintf(want, sizeof want, "x");
    for (int i = 0; i < 49; i++)
        len += (size_t)snprintf(want + len, sizeof want - len, " ##xx");
    snprintf(want + len, sizeof want - len, " ##x");
    CK_PIECES(t, w, want);                                   /* 100 chars: pieces */
    w[100] = 'x';
    w[101] = '\0';
    CK_PIECES(t, w, "[UNK]");                                /* 101 chars: [UNK] */
    char acc[256] = "";                                      /* 101 code points, 202 bytes */
    for (int i = 0; i < 101; i++)
        strcat(acc, "\xC3\xA9");
    CK_PIECES(t, acc, "[UNK]");
    octet_tok_free(t);
}
END_TEST

/* The validity rule of every text input: well-formed UTF-8 as uc_decode_utf8 accepts it. */
START_TEST(test_utf8_validity)
{
    static const struct {
        const char *s;
        size_t valid;
    } cases[] = {
        {"plain ascii", 11},     {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14},
        {"a\xe9" "b", 1},            /* Latin-1 */
        {"a\xc0\xaf" "b", 1},        /* overlong '/' */
        {"a\xed\xa0\x80", 1},     /* surrogate U+D800 */
        {"a\xf4\x90\x80\x80", 1}, /* past U+10FFFF */
        {"ab\xe2\x82", 2},        /* cut short */
        {"\x80", 0},              /* a lone continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(uc_utf8_valid_prefix(cases[i].s, strlen(cases[i].s)) == cases[i].valid, "case %zu", i);
    octet_err e = {0};
    ck_assert_int_eq(uc_check_utf8("ok\nfine", 7, "f.txt", 1, NULL, "x", &e), OCTET_OK);
    ck_assert_int_eq(uc_check_utf8("ok\nab\xff", 6, "f.txt", 10, NULL, "x", &e), OCTET_ERR_FORMAT);
    ck_assert_str_eq(e.message, "f.txt:11:3: invalid UTF-8 (byte 0xFF)");
    ck_assert_str_eq(e.field, "x");
}
END_TEST

START_TEST(test_basic_split)
{
    octet_tokenizer *t = load_uncased();
    char *s;
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_basic_split(t, "Don't STOP--now! «Ça va?»", &s, &e), OCTET_OK);
    ck_assert_str_eq(s, "don ' t stop - - now ! « ca va ? »");
    free(s);
    ck_assert_int_eq(octet_tok_basic_split(t, "$5+3=8 a_b", &s, &e), OCTET_OK);
    ck_assert_str_eq(s, "$ 5 + 3 = 8 a _ b");
    free(s);
    octet_tok_free(t);
}
END_TEST

static void ids_of(const octet_tokenizer *t, const char *text, octet_ids *out)
{
    octet_err e = {0};
    memset(out, 0, sizeof *out);
    ck_assert_int_eq(octet_tok_tokenize(t, text, out, &e), OCTET_OK);
}

START_TEST(test_encode_single_and_padding)
{
    octet_tokenizer *t = load_uncased();
    const char *texts[2] = {"Hello, world!", "the dog"};
    octet_encoding enc;
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 0, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    ck_assert_uint_eq(enc.batch, 2);
    ck_assert_uint_eq(enc.seq_len, 6);
    const int32_t want0[6] = {2, 47, 16, 48, 5, 3}, want1[6] = {2, 31, 46, 3, 0, 0};
    const int32_t mask1[6] = {1, 1, 1, 1, 0, 0};
    for (int j = 0; j < 6; j++) {
        ck_assert_int_eq(enc.input_ids[j], want0[j]);
        ck_assert_int_eq(enc.input_ids[6 + j], want1[j]);
        ck_assert_int_eq(enc.attention_mask[j], 1);
        ck_assert_int_eq(enc.attention_mask[6 + j], mask1[j]);
        ck_assert_int_eq(enc.token_type_ids[j] + enc.token_type_ids[6 + j], 0);
    }
    ck_assert_uint_eq(enc.lengths[0], 6);
    ck_assert_uint_eq(enc.lengths[1], 4);
    octet_encoding_free(&enc);
    /* padding to max_length, and truncation of a single text to max_length */
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 8, OCTET_PAD_MAX_LENGTH, &enc, &e), OCTET_OK);
    ck_assert_uint_eq(enc.seq_len, 8);
    ck_assert_int_eq(enc.input_ids[8 + 4], 0);
    ck_assert_int_eq(enc.attention_mask[8 + 7], 0);
    octet_encoding_free(&enc);
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 4, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    const int32_t cut[4] = {2, 47, 16, 3};                 /* [CLS] hello , [SEP] */
    for (int j = 0; j < 4; j++)
        ck_assert_int_eq(enc.input_ids[j], cut[j]);
    ck_assert_uint_eq(enc.seq_len, 4);
    octet_encoding_free(&enc);
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 1, OCTET_PAD_LONGEST, &enc, &e), OCTET_ERR_ARG);
    ck_assert_str_eq(e.field, "dataset.max_length");
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 0, OCTET_PAD_MAX_LENGTH, &enc, &e), OCTET_ERR_ARG);
    octet_tok_free(t);
}
END_TEST

/* longest_first: one token at a time from the longer side, from the pair on ties. */
START_TEST(test_pair_truncation)
{
    octet_tokenizer *t = load_uncased();
    octet_ids a, b;
    ids_of(t, "the quick brown fox jumps over the lazy dog and", &a);    /* 11 tokens */
    ids_of(t, "hello world ! !", &b);                                       /* 4 tokens */
    ck_assert_uint_eq(a.n, 11);
    ck_assert_uint_eq(b.n, 4);
    octet_encoding enc;
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_encode_ids(t, &a, &b, 1, 12, OCTET_PAD_MAX_LENGTH, &enc, &e), OCTET_OK);
    /* budget 9: a loses 6 (11 -> 5), b keeps 4 */
    const int32_t want[12] = {2, 31, 39, 40, 41, 42, 3, 47, 48, 5, 5, 3};
    const int32_t types[12] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    for (int j = 0; j < 12; j++) {
        ck_assert_int_eq(enc.input_ids[j], want[j]);
        ck_assert_int_eq(enc.token_type_ids[j], types[j]);
        ck_assert_int_eq(enc.attention_mask[j], 1);
    }
    octet_encoding_free(&enc);
    octet_ids c, d;
    ids_of(t, "a a a a a", &c);
    ids_of(t, "i i i i i", &d);
    ck_assert_int_eq(octet_tok_encode_ids(t, &c, &d, 1, 10, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    /* 5 + 5 into 7: b, a, b -> 4 + 3 */
    const int32_t want2[10] = {2, 32, 32, 32, 32, 3, 70, 70, 70, 3};
    for (int j = 0; j < 10; j++)
        ck_assert_int_eq(enc.input_ids[j], want2[j]);
    ck_assert_uint_eq(enc.lengths[0], 10);
    octet_encoding_free(&enc);
    ck_assert_int_eq(octet_tok_encode_ids(t, &c, &d, 1, 2, OCTET_PAD_LONGEST, &enc, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_tok_encode_ids(t, &c, &d, 1, 3, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    ck_assert_uint_eq(enc.seq_len, 3);                     /* [CLS] [SEP] [SEP] */
    octet_encoding_free(&enc);
    /* batch: pairs padded to the longest, types 0 on padding */
    const char *x[2] = {"hello", "the dog"}, *y[2] = {"world", ""};
    ck_assert_int_eq(octet_tok_encode_batch(t, x, y, 2, 0, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    ck_assert_uint_eq(enc.seq_len, 5);
    const int32_t row1[5] = {2, 31, 46, 3, 3}, types1[5] = {0, 0, 0, 0, 1};
    for (int j = 0; j < 5; j++) {
        ck_assert_int_eq(enc.input_ids[5 + j], row1[j]);
        ck_assert_int_eq(enc.token_type_ids[5 + j], types1[j]);
    }
    octet_encoding_free(&enc);
    octet_ids_free(&a);
    octet_ids_free(&b);
    octet_ids_free(&c);
    octet_ids_free(&d);
    octet_tok_free(t);
}
END_TEST

START_TEST(test_byte_tokenizer)
{
    octet_tokenizer *t;
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_new_bytes(&t, &e), OCTET_OK);
    ck_assert_int_eq(octet_tok_kind(t), OCTET_TOK_BYTES);
    ck_assert_uint_eq(octet_tok_vocab_size(t), 261);
    ck_assert_str_eq(octet_tok_id_to_token(t, 0), "[PAD]");
    ck_assert_str_eq(octet_tok_id_to_token(t, 4), "[MASK]");
    ck_assert_str_eq(octet_tok_id_to_token(t, 'A' + 5), "A");
    ck_assert_ptr_null(octet_tok_id_to_token(t, 261));
    ck_assert_int_eq(octet_tok_token_to_id(t, "[SEP]"), 3);
    const char *texts[2] = {"Hi", "\xC3\xA9"};           /* "é" is two bytes */
    octet_encoding enc;
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, NULL, 2, 0, OCTET_PAD_LONGEST, &enc, &e), OCTET_OK);
    const int32_t want[8] = {2, 'H' + 5, 'i' + 5, 3, 2, 0xC3 + 5, 0xA9 + 5, 3};
    for (int j = 0; j < 8; j++)
        ck_assert_int_eq(enc.input_ids[j], want[j]);
    octet_encoding_free(&enc);
    ck_assert_int_eq(octet_tok_encode_batch(t, texts, texts, 2, 5, OCTET_PAD_MAX_LENGTH, &enc, &e), OCTET_OK);
    const int32_t pair0[5] = {2, 'H' + 5, 3, 'H' + 5, 3};   /* 2 + 2 into 2: b, a */
    for (int j = 0; j < 5; j++)
        ck_assert_int_eq(enc.input_ids[j], pair0[j]);
    octet_encoding_free(&enc);
    octet_tok_free(t);
}
END_TEST

START_TEST(test_refused_inputs)
{
    char dir[256], p[512], cfg[512];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "tokenizer"), 0);
    octet_tokenizer *t = NULL;
    octet_err e = {0};
    test_write_file(dir, "vocab.txt", "[PAD]\n[UNK]\n[SEP]\nhello\n", 24, p, sizeof p);
    ck_assert_int_eq(octet_tok_load_vocab(p, NULL, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.message, "[CLS]"));
    ck_assert_ptr_nonnull(strstr(e.message, "vocab.txt"));
    test_write_file(dir, "vocab.txt", "", 0, p, sizeof p);
    ck_assert_int_eq(octet_tok_load_vocab(p, NULL, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.message, "empty"));
    snprintf(p, sizeof p, "%s/missing", dir);
    ck_assert_int_eq(octet_tok_load_dir(p, &t, &e), OCTET_ERR_IO);
    ck_assert_ptr_null(t);
    /* a vocab.txt line and a tokenizer_config.json that are not UTF-8 (Latin-1 bytes) */
    test_write_file(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n", 29, p, sizeof p);
    ck_assert_int_eq(octet_tok_load_vocab(p, NULL, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_msg(strstr(e.message, "vocab.txt:5:4: invalid UTF-8 (byte 0xE9)"), "%s", e.message);
    ck_assert_ptr_null(t);
    test_write_file(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhi\n", 27, p, sizeof p);
    test_write_file(dir, "tokenizer_config.json", "{\"unk_token\": \"[UNK]\",\n \"x\": \"\xe9\"}", 33, cfg, sizeof cfg);
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_msg(strstr(e.message, "tokenizer_config.json:2:8: invalid UTF-8"), "%s", e.message);
    ck_assert_ptr_null(t);
    /* a model directory with a broken tokenizer_config.json */
    test_write_file(dir, "vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhi\r\n", 31, p, sizeof p);
    test_write_file(dir, "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}", 24, cfg, sizeof cfg);
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.message, "do_lower_case"));
    test_write_file(dir, "tokenizer_config.json", "{\n\"do_lower_case\": true,\n", 25, cfg, sizeof cfg);
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.message, "tokenizer_config.json:3"));
    test_write_file(dir, "tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": null}", 47, cfg,
                    sizeof cfg);
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_OK);   /* CRLF vocab, no [MASK] */
    ck_assert_int_eq(octet_tok_special_id(t, OCTET_TOK_MASK), -1);
    ck_assert_int_eq(octet_tok_token_to_id(t, "hi"), 4);
    CK_PIECES(t, "hi [MASK]", "hi [UNK] [UNK] [UNK]");   /* "[" "MASK" "]": none in this vocab */
    octet_tok_free(t);
    /* a FIFO as tokenizer_config.json or as vocab.txt is refused, never waited on */
    test_mkfifo(dir, "tokenizer_config.json", cfg, sizeof cfg);
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_ERR_IO);
    ck_assert_msg(strstr(e.message, "not a regular file") && strstr(e.message, "tokenizer_config.json"), "%s",
                  e.message);
    unlink(cfg);
    test_mkfifo(dir, "vocab.txt", p, sizeof p);
    ck_assert_int_eq(octet_tok_load_vocab(p, NULL, &t, &e), OCTET_ERR_IO);
    ck_assert_ptr_nonnull(strstr(e.message, "not a regular file"));
    ck_assert_int_eq(octet_tok_load_dir(dir, &t, &e), OCTET_ERR_IO);
    ck_assert_ptr_null(t);
    test_rmtree(dir);
}
END_TEST

/* Writes the test texts: the hand-written cases plus every 100th fortune-lang text. */
static int write_cross_texts(const char *path)
{
    char cases[512];
    td_data("tokenizer_cases.txt", cases, sizeof cases);
    FILE *in = fopen(cases, "rb"), *out = fopen(path, "wb");
    ck_assert(in && out);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        fputs(line, out);
        n++;
    }
    fclose(in);
    octet_dataset tr, ev;
    octet_err e = {0};
    if (octet_data_fortunes("/usr/share/games/fortunes", 0, &tr, &ev, &e) == OCTET_OK) {
        for (size_t i = 0; i < tr.n; i += 100, n++) {
            for (const char *p = tr.text[i]; *p; p++)
                fputs(*p == '\\' ? "\\\\" : (char[]){*p, 0}, out);
            fputc('\n', out);
        }
        octet_dataset_free(&tr);
        octet_dataset_free(&ev);
    } else {
        fprintf(stderr, "tokenizer cross-check: no fortunes (%s); hand-written cases only\n", e.message);
    }
    fclose(out);
    return n;
}

/* \n \t \\ \uXXXX, as bert_reference.py reads them. */
static void unescape(char *s)
{
    char *w = s;
    for (char *p = s; *p;) {
        if (p[0] == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == '\\')) {
            *w++ = p[1] == 'n' ? '\n' : p[1] == 't' ? '\t' : '\\';
            p += 2;
        } else if (p[0] == '\\' && p[1] == 'u' && strspn(p + 2, "0123456789abcdefABCDEF") >= 4) {
            char h[5] = {p[2], p[3], p[4], p[5], 0};
            w += uc_encode_utf8((uint32_t)strtoul(h, NULL, 16), w);
            p += 6;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

/* Compares one setting; returns the number of differing lines. */
static int cross_one(const char *dir, const char *texts, const char *vocab, int lower, int strip)
{
    char cmd[4096], script[512], ref[512];
    td_data("bert_reference.py", script, sizeof script);
    snprintf(ref, sizeof ref, "%s/ref_%d_%d.txt", dir, lower, strip);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' tokenize '%s' %d %d < '%s' > '%s'", script, vocab, lower, strip,
             texts, ref);
    ck_assert_int_eq(td_run(cmd), 0);
    octet_tok_options o;
    octet_tok_options_default(&o);
    o.do_lower_case = lower;
    o.strip_accents = strip;
    octet_tokenizer *t;
    octet_err e = {0};
    ck_assert_int_eq(octet_tok_load_vocab(vocab, &o, &t, &e), OCTET_OK);
    FILE *tf = fopen(texts, "rb"), *rf = fopen(ref, "rb");
    static char text[1 << 16], want[1 << 17], got[1 << 17];
    int bad = 0, lines = 0;
    while (fgets(text, sizeof text, tf) && fgets(want, sizeof want, rf)) {
        text[strcspn(text, "\n")] = '\0';
        want[strcspn(want, "\n")] = '\0';
        unescape(text);
        char *basic;
        ck_assert_int_eq(octet_tok_basic_split(t, text, &basic, &e), OCTET_OK);
        int len = snprintf(got, sizeof got, "%s\t", basic);
        pieces(t, text, got + len, sizeof got - (size_t)len);
        free(basic);
        lines++;
        if (strcmp(got, want) != 0 && bad++ < 3)
            fprintf(stderr, "lower=%d strip=%d line %d:\n  python: %s\n  octet:  %s\n", lower, strip, lines, want,
                    got);
    }
    fclose(tf);
    fclose(rf);
    octet_tok_free(t);
    ck_assert_int_ge(lines, 40);
    return bad;
}

START_TEST(test_cross_check_python_reference)
{
    if (!td_python_has("unicodedata")) {
        test_skip("tokenizer: no /usr/bin/python3 for the Python reference cross-check");
        return;
    }
    char dir[256], texts[512], base[512], vocab[512], script[512], cmd[4096];
    ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "tokenizer"), 0);
    snprintf(texts, sizeof texts, "%s/texts.txt", dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    td_data("wordpiece/vocab.txt", base, sizeof base);
    td_data("bert_reference.py", script, sizeof script);
    int n = write_cross_texts(texts);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' make-vocab '%s' '%s' < '%s'", script, base, vocab, texts);
    ck_assert_int_eq(td_run(cmd), 0);
    int bad = 0;
    const int settings[4][2] = {{1, -1}, {0, -1}, {1, 0}, {0, 1}};
    for (int k = 0; k < 4; k++)
        bad += cross_one(dir, texts, vocab, settings[k][0], settings[k][1]);
    fprintf(stderr, "tokenizer cross-check: %d texts x 4 settings, %d differences (Unicode %s)\n", n, bad,
            uc_unicode_version());
    ck_assert_int_eq(bad, 0);
    test_rmtree(dir);
}
END_TEST

Suite *suite_tokenizer(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_uncased_examples);
    tcase_add_test(tc, test_cased_and_accents);
    tcase_add_test(tc, test_long_words);
    tcase_add_test(tc, test_utf8_validity);
    tcase_add_test(tc, test_basic_split);
    tcase_add_test(tc, test_encode_single_and_padding);
    tcase_add_test(tc, test_pair_truncation);
    tcase_add_test(tc, test_byte_tokenizer);
    tcase_add_test(tc, test_refused_inputs);
    tcase_add_test(tc, test_cross_check_python_reference);
    suite_add_tcase(s, tc);
    return s;
}
