/* tokenizer.h: turning text into model inputs: BERT's WordPiece tokenizer, loaded from a
 * model directory's `vocab.txt` and `tokenizer_config.json`, and a byte-level tokenizer for
 * models trained here without a vocabulary.
 *
 * WordPiece follows Transformers' BertTokenizer: special tokens written in the text
 * ("[SEP]", case-sensitive) are kept whole; the rest is cleaned (NUL, U+FFFD and every C*
 * code point dropped, whitespace made ' '), CJK ideographs are split off
 * (tokenize_chinese_chars), NFC-composed, split on whitespace, lower-cased (do_lower_case,
 * with Greek final sigma) and stripped of accents (strip_accents; by default on exactly when
 * lower-casing: NFD, then every Mn mark removed), split at punctuation (ASCII 33-47, 58-64,
 * 91-96, 123-126 and Unicode P*), and each word is cut into greedy longest-match-first pieces,
 * continuation pieces carrying "##"; a word longer than max_input_chars_per_word (100) code
 * points, or one with no matching piece, becomes [UNK]. The Unicode data (categories,
 * lower-case, decompositions, compositions) is generated from Python's unicodedata into
 * unicode_tables.h and covers all of Unicode; NFC is simplified to composing each mark with
 * the character right before it (no canonical reordering), which covers precomposed Latin,
 * Greek and Cyrillic letters and Hangul.
 *
 * Encoding frames one text as [CLS] a [SEP] (token_type 0) or a pair as [CLS] a [SEP] b [SEP]
 * (b and its [SEP] have token_type 1), truncates to max_length (a pair: longest_first, one
 * token at a time from the longer side, from b on ties, as Transformers does), pads on the
 * right with [PAD] to max_length or to the batch's longest, and gives the attention mask.
 *
 * The byte-level tokenizer has 261 ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK], then
 * byte b of the UTF-8 text is id b + 5; it frames, truncates and pads the same way. */
#ifndef OCTET_TRAIN_TOKENIZER_H
#define OCTET_TRAIN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

enum octet_tok_kind { OCTET_TOK_WORDPIECE = 0, OCTET_TOK_BYTES = 1 };
enum octet_tok_special { OCTET_TOK_PAD = 0, OCTET_TOK_UNK, OCTET_TOK_CLS, OCTET_TOK_SEP, OCTET_TOK_MASK,
                         OCTET_TOK_NSPECIAL };
enum octet_padding { OCTET_PAD_LONGEST = 0, OCTET_PAD_MAX_LENGTH = 1 };

#define OCTET_TOK_BYTE_OFFSET 5
#define OCTET_TOK_BYTE_VOCAB 261

/* WordPiece settings; tokenizer_config.json overrides the defaults. */
typedef struct octet_tok_options {
    int do_lower_case;             /* 1 (BertTokenizer's default) */
    int strip_accents;             /* -1: follow do_lower_case (default); 0 never; 1 always */
    int tokenize_chinese_chars;    /* 1 */
    int max_input_chars_per_word;  /* 100 */
} octet_tok_options;

typedef struct octet_tokenizer octet_tokenizer;

/* A growable list of token ids. */
typedef struct octet_ids {
    int32_t *v;
    size_t n, cap;
} octet_ids;

/* A padded batch: row r holds input_ids[r*seq_len ...]; lengths[r] real tokens. */
typedef struct octet_encoding {
    size_t batch, seq_len;
    int32_t *input_ids, *token_type_ids, *attention_mask;
    size_t *lengths;
} octet_encoding;

void octet_tok_options_default(octet_tok_options *o);

/* WordPiece from a vocab file (one token per line, id = line number, "\n" or "\r\n") with
 * options `o` (NULL: defaults). Fails with OCTET_ERR_IO (unreadable), OCTET_ERR_FORMAT (empty
 * vocab, or [UNK]/[CLS]/[SEP]/[PAD] missing: the message names the file and the token) or
 * OCTET_ERR_NOMEM. */
int octet_tok_load_vocab(const char *vocab_path, const octet_tok_options *o, octet_tokenizer **out, octet_err *e);

/* WordPiece from a model directory: `vocab.txt` plus, when present, `tokenizer_config.json`
 * (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length, and the
 * unk/sep/pad/cls/mask token strings). Fails as octet_tok_load_vocab, and with
 * OCTET_ERR_FORMAT when the config is not JSON or a key has the wrong type (the message
 * names the file, line and key). */
int octet_tok_load_dir(const char *dir, octet_tokenizer **out, octet_err *e);

/* The byte-level tokenizer. OCTET_ERR_NOMEM only. */
int octet_tok_new_bytes(octet_tokenizer **out, octet_err *e);

void octet_tok_free(octet_tokenizer *t);

int octet_tok_kind(const octet_tokenizer *t);
size_t octet_tok_vocab_size(const octet_tokenizer *t);
/* model_max_length from tokenizer_config.json, or 0 when not given. */
size_t octet_tok_model_max_length(const octet_tokenizer *t);
/* The id of [PAD], [UNK], [CLS], [SEP] or [MASK]; -1 when the vocab lacks [MASK]. */
int32_t octet_tok_special_id(const octet_tokenizer *t, int which);
/* -1 when the token is not in the vocabulary. */
int32_t octet_tok_token_to_id(const octet_tokenizer *t, const char *token);
/* The token string, or NULL for an id out of range. For the byte tokenizer: the specials'
 * names, else a one-byte string. */
const char *octet_tok_id_to_token(const octet_tokenizer *t, int32_t id);

/* Appends the ids of `text` (UTF-8; invalid bytes are dropped) to out, no framing.
 * OCTET_ERR_NOMEM only. */
int octet_tok_tokenize(const octet_tokenizer *t, const char *text, octet_ids *out, octet_err *e);

/* The basic (pre-WordPiece) tokens of `text` joined by single spaces, malloc'd into *out;
 * specials written in the text stay whole. For tests and debugging. OCTET_ERR_NOMEM only. */
int octet_tok_basic_split(const octet_tokenizer *t, const char *text, char **out, octet_err *e);

/* Frames, truncates and pads `batch` token-id lists into out: b == NULL encodes single
 * texts, otherwise every row i is the pair (a[i], b[i]). max_length 0 means no truncation (then padding must be OCTET_PAD_LONGEST). Fails with
 * OCTET_ERR_ARG (field "dataset.max_length") when max_length is below the 2 (single) or 3
 * (pair) special tokens, or 0 with OCTET_PAD_MAX_LENGTH; OCTET_ERR_NOMEM. */
int octet_tok_encode_ids(const octet_tokenizer *t, const octet_ids *a, const octet_ids *b, size_t batch,
                         size_t max_length, int padding, octet_encoding *out, octet_err *e);

/* Tokenizes and encodes `batch` texts (pairs: NULL for single texts, or an array with an
 * entry per text). Fails as octet_tok_encode_ids. */
int octet_tok_encode_batch(const octet_tokenizer *t, const char *const *texts, const char *const *pairs,
                           size_t batch, size_t max_length, int padding, octet_encoding *out, octet_err *e);

void octet_encoding_free(octet_encoding *enc);
void octet_ids_free(octet_ids *ids);
/* Appends one id; OCTET_ERR_NOMEM only. */
int octet_ids_push(octet_ids *ids, int32_t id);

OCTET_EXTERN_C_END
#endif
