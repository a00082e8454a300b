/* unicode.h: the Unicode operations BERT's basic tokenizer needs, on arrays of code points:
 * UTF-8 decoding and encoding, the category tests (punctuation, control, whitespace, CJK
 * ideograph, Mn mark), lower-casing (Python's str.lower(): simple mappings, U+0130 -> "i"
 * U+0307, Greek final sigma), canonical decomposition (NFD) and composition (NFC), both with
 * canonical reordering of combining marks and Hangul done algorithmically. The data comes
 * from unicode_tables.h, generated from Python's unicodedata (see gen_unicode_tables.py).
 * Nothing here fails except for memory: functions returning int give 0 or -1 (out of
 * memory); the one exception is uc_check_utf8, the validity rule of every text input, which
 * reports an octet status.
 *
 * One rule for all text inputs: every text a dataset or tokenizer reads (JSONL lines, CSV
 * fields, vocab.txt, tokenizer_config.json, the fortune files) must be valid UTF-8, checked
 * by uc_check_utf8 when the file is read, so invalid bytes are refused with the same error
 * wherever they come from (jansson refuses them in JSON on its own; the check runs first, so
 * the message is the same there too). */
#ifndef OCTET_TRAIN_UNICODE_H
#define OCTET_TRAIN_UNICODE_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* A growable array of code points. */
typedef struct uc_buf {
    uint32_t *v;
    size_t n, cap;
} uc_buf;

int uc_push(uc_buf *b, uint32_t cp);
void uc_free(uc_buf *b);

/* Appends the code points of len bytes of UTF-8; each invalid or truncated sequence, overlong
 * form or surrogate becomes one U+FFFD. */
int uc_decode_utf8(const char *s, size_t len, uc_buf *out);
/* The length of the longest prefix of s[0..len) that is well-formed UTF-8 (the sequences
 * uc_decode_utf8 accepts: no overlong forms, surrogates, code points past U+10FFFF or
 * truncated sequences); len when all of it is. */
size_t uc_utf8_valid_prefix(const char *s, size_t len);

/* Checks that s[0..len), text read from `path` starting on line `line`, is valid UTF-8.
 * Returns OCTET_OK, or OCTET_ERR_FORMAT naming `field`, with the message
 *   "<path>:<line>:<column>: invalid UTF-8 (byte 0xNN)"            where is NULL, or
 *   "<path>:<line>: <where>: invalid UTF-8 (byte 0xNN)"             where names the CSV
 * column or JSON key; the line is that of the first bad byte (newlines in s counted), the
 * column its 1-based byte offset in that line. */
int uc_check_utf8(const char *s, size_t len, const char *path, size_t line, const char *where, const char *field,
                  octet_err *e);

/* Writes cp as UTF-8 into out (4 bytes room); returns the byte count. */
size_t uc_encode_utf8(uint32_t cp, char *out);

int uc_is_punct(uint32_t cp);       /* BERT: ASCII 33-47, 58-64, 91-96, 123-126, or P* */
int uc_is_control(uint32_t cp);     /* BERT: any C* category except \t \n \r */
int uc_is_whitespace(uint32_t cp);  /* BERT: ' ' \t \n \r or Zs */
int uc_is_cjk(uint32_t cp);         /* BERT's CJK ideograph blocks */
int uc_is_mn(uint32_t cp);
unsigned uc_ccc(uint32_t cp);       /* canonical combining class */

/* In-place transforms of b->v[0..n). */
int uc_lower(uc_buf *b);
int uc_nfd(uc_buf *b);
int uc_nfc(uc_buf *b);
/* NFD, then every Mn mark removed (BERT's _run_strip_accents). */
int uc_strip_accents(uc_buf *b);

const char *uc_unicode_version(void);

#endif
