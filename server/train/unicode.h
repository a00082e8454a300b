/* unicode.h: the Unicode operations BERT's basic tokenizer needs, on arrays of code points:
 * UTF-8 decoding and encoding, the category tests (punctuation, control, whitespace, CJK
 * ideograph, Mn mark), lower-casing (Python's str.lower(): simple mappings, U+0130 -> "i"
 * U+0307, Greek final sigma), canonical decomposition (NFD) and composition (NFC), both with
 * canonical reordering of combining marks and Hangul done algorithmically. The data comes
 * from unicode_tables.h, generated from Python's unicodedata (see gen_unicode_tables.py).
 * Nothing here fails except for memory: functions returning int give 0 or -1 (out of
 * memory). */
#ifndef OCTET_TRAIN_UNICODE_H
#define OCTET_TRAIN_UNICODE_H

#include <stddef.h>
#include <stdint.h>

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
