/* unicode.c: UTF-8 (decoding, encoding, and the validity check every text input goes
 * through), categories, lower-casing, NFD and NFC over code-point arrays, for the BERT basic
 * tokenizer and the data loaders; see unicode.h. Table lookups are binary searches over the sorted
 * arrays of unicode_tables.h; ASCII takes fast paths. */
#include "train/unicode.h"

#include <stdlib.h>
#include <string.h>

#include "train/unicode_tables.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Hangul syllable arithmetic (Unicode 3.12). */
enum { H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7,
       H_LCOUNT = 19, H_VCOUNT = 21, H_TCOUNT = 28, H_NCOUNT = 588, H_SCOUNT = 11172 };

const char *uc_unicode_version(void) { return UT_UNICODE_VERSION; }

int uc_push(uc_buf *b, uint32_t cp)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = cp;
    return 0;
}

void uc_free(uc_buf *b)
{
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* ---- UTF-8 ---- */

/* Length of a well-formed sequence starting at s (at most `left` bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left, uint32_t *cp)
{
    unsigned c = s[0];
    size_t n;
    uint32_t v, lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return n;
}

int uc_decode_utf8(const char *s, size_t len, uc_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (uc_push(out, n ? cp : 0xFFFD) != 0)
            return -1;
        i += n ? n : 1;
    }
    return 0;
}

size_t uc_utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { /* ASCII runs: the common case */
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (!n)
            break;
        i += n;
    }
    return i;
}

int uc_check_utf8(const char *s, size_t len, const char *path, size_t line, const char *where, const char *field,
                  octet_err *e)
{
    size_t bad = uc_utf8_valid_prefix(s, len);
    if (bad == len)
        return OCTET_OK;
    size_t line_start = 0;
    for (size_t i = 0; i < bad; i++)
        if (s[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    unsigned byte = (unsigned char)s[bad];
    if (where)
        return octet_fail(e, OCTET_ERR_FORMAT, field, "%s:%zu: %s: invalid UTF-8 (byte 0x%02X)", path, line, where,
                          byte);
    return octet_fail(e, OCTET_ERR_FORMAT, field, "%s:%zu:%zu: invalid UTF-8 (byte 0x%02X)", path, line,
                      bad - line_start + 1, byte);
}

size_t uc_encode_utf8(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- categories ---- */

static int in_ranges(const ut_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int uc_is_punct(uint32_t cp)
{
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
        return 1;
    return cp >= 0x80 && in_ranges(ut_punct, NELEM(ut_punct), cp);
}

int uc_is_control(uint32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return 0;
    return in_ranges(ut_control, NELEM(ut_control), cp);
}

int uc_is_whitespace(uint32_t cp)
{
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r')
        return 1;
    return cp >= 0x80 && in_ranges(ut_space_zs, NELEM(ut_space_zs), cp);
}

int uc_is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int uc_is_mn(uint32_t cp)
{
    return cp >= 0x300 && in_ranges(ut_mark_mn, NELEM(ut_mark_mn), cp);
}

unsigned uc_ccc(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    size_t lo = 0, hi = NELEM(ut_combining);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < ut_combining[mid].lo)
            hi = mid;
        else if (cp > ut_combining[mid].hi)
            lo = mid + 1;
        else
            return ut_combining[mid].ccc;
    }
    return 0;
}

/* ---- lower-casing ---- */

static uint32_t lower_simple(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    size_t lo = 0, hi = NELEM(ut_lower);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < ut_lower[mid].cp)
            hi = mid;
        else if (cp > ut_lower[mid].cp)
            lo = mid + 1;
        else
            return ut_lower[mid].to;
    }
    return cp;
}

/* Approximates Unicode's Cased property: a letter with a case mapping either way. */
static int is_cased(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (lower_simple(cp) != cp)
        return 1;
    for (size_t i = 0; i < NELEM(ut_lower); i++)
        if (ut_lower[i].to == cp)
            return 1;
    return 0;
}

/* Approximates Case_Ignorable: marks, format characters, apostrophes, periods, colons. */
static int is_case_ignorable(uint32_t cp)
{
    return cp == '\'' || cp == '.' || cp == ':' || cp == 0xB7 || cp == 0xAD || cp == 0x2019 || uc_ccc(cp) ||
           uc_is_mn(cp);
}

/* Python's Final_Sigma: a cased letter before (skipping ignorables), none after. */
static int final_sigma(const uint32_t *v, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable(v[j - 1]))
        j--;
    if (j == 0 || !is_cased(v[j - 1]))
        return 0;
    for (j = i + 1; j < n && is_case_ignorable(v[j]); j++)
        ;
    return j == n || !is_cased(v[j]);
}

int uc_lower(uc_buf *b)
{
    uc_buf out = {0};
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        int rc;
        if (c == 0x130)                                 /* İ -> i + combining dot above */
            rc = uc_push(&out, 'i') || uc_push(&out, 0x307);
        else if (c == 0x3A3)
            rc = uc_push(&out, final_sigma(b->v, b->n, i) ? 0x3C2 : 0x3C3);
        else
            rc = uc_push(&out, lower_simple(c));
        if (rc) {
            uc_free(&out);
            return -1;
        }
    }
    uc_free(b);
    *b = out;
    return 0;
}

/* ---- normalization ---- */

static const ut_decomp *find_decomp(uint32_t cp)
{
    size_t lo = 0, hi = NELEM(ut_nfd);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < ut_nfd[mid].cp)
            hi = mid;
        else if (cp > ut_nfd[mid].cp)
            lo = mid + 1;
        else
            return &ut_nfd[mid];
    }
    return NULL;
}

static int push_decomposed(uc_buf *out, uint32_t c)
{
    if (c >= H_SBASE && c < H_SBASE + H_SCOUNT) {
        uint32_t s = c - H_SBASE, t = s % H_TCOUNT;
        if (uc_push(out, H_LBASE + s / H_NCOUNT) || uc_push(out, H_VBASE + (s % H_NCOUNT) / H_TCOUNT))
            return -1;
        return t ? uc_push(out, H_TBASE + t) : 0;
    }
    const ut_decomp *d = c >= 0xC0 ? find_decomp(c) : NULL;
    if (!d)
        return uc_push(out, c);
    for (int k = 0; k < 4 && d->to[k]; k++)
        if (uc_push(out, d->to[k]))
            return -1;
    return 0;
}

/* Canonical ordering: stable sort of each run of non-starters by combining class. */
static void canonical_order(uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        unsigned c = uc_ccc(v[i]);
        if (c == 0)
            continue;
        for (size_t j = i; j > 0; j--) {
            unsigned p = uc_ccc(v[j - 1]);
            if (p <= c)
                break;
            uint32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
}

static int all_below(const uc_buf *b, uint32_t limit)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i] >= limit)
            return 0;
    return 1;
}

int uc_nfd(uc_buf *b)
{
    if (all_below(b, 0xC0))
        return 0;
    uc_buf out = {0};
    for (size_t i = 0; i < b->n; i++)
        if (push_decomposed(&out, b->v[i])) {
            uc_free(&out);
            return -1;
        }
    canonical_order(out.v, out.n);
    uc_free(b);
    *b = out;
    return 0;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 && b > H_TBASE &&
        b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    size_t lo = 0, hi = NELEM(ut_nfc_pairs);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const ut_compose *p = &ut_nfc_pairs[mid];
        if (a < p->first || (a == p->first && b < p->second))
            hi = mid;
        else if (a > p->first || b > p->second)
            lo = mid + 1;
        else
            return p->to;
    }
    return 0;
}

int uc_nfc(uc_buf *b)
{
    if (all_below(b, 0x80))
        return 0;
    if (uc_nfd(b))
        return -1;
    size_t w = 0, starter = (size_t)-1;
    unsigned last = 0;                 /* ccc of the last character kept after the starter */
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        unsigned cc = uc_ccc(c);
        int adjacent = starter != (size_t)-1 && w == starter + 1;
        if (starter != (size_t)-1 && (adjacent || (last != 0 && last < cc))) {
            uint32_t comp = compose(b->v[starter], c);
            if (comp) {
                b->v[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = w;
            last = 0;
        } else {
            last = cc;
        }
        b->v[w++] = c;
    }
    b->n = w;
    return 0;
}

int uc_strip_accents(uc_buf *b)
{
    if (uc_nfd(b))
        return -1;
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!uc_is_mn(b->v[i]))
            b->v[w++] = b->v[i];
    b->n = w;
    return 0;
}
