/* tokenizer.c: BERT WordPiece and the byte-level tokenizer; see tokenizer.h for the
 * behaviour. The vocabulary sits in one buffer (the file's bytes, lines NUL-terminated in
 * place) with an open-addressing hash index from token to id; the basic tokenizer works on
 * code-point arrays (unicode.h), WordPiece on the UTF-8 bytes of one word. */
#include "train/tokenizer.h"
#include "fileio.h"
#include "train/unicode.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB_MAX_BYTES ((size_t)64 << 20)
#define CONFIG_MAX_BYTES ((size_t)1 << 20)

static const char *const special_default[OCTET_TOK_NSPECIAL] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
static const char *const special_config_key[OCTET_TOK_NSPECIAL] = {"pad_token", "unk_token", "cls_token",
                                                                   "sep_token", "mask_token"};

struct octet_tokenizer {
    int kind;
    octet_tok_options opt;
    int strip;                       /* resolved strip_accents */
    size_t model_max_length;
    char *buf;                       /* vocab bytes; tokens[i] point into it */
    char **tokens;
    size_t n;
    int32_t *slot;                   /* hash index: id or -1 */
    size_t mask;                     /* slot count - 1 */
    char *special_str[OCTET_TOK_NSPECIAL];
    int32_t special[OCTET_TOK_NSPECIAL];
    char byte_token[256][2];         /* byte tokenizer: one-byte strings for id_to_token */
};

void octet_tok_options_default(octet_tok_options *o)
{
    o->do_lower_case = 1;
    o->strip_accents = -1;
    o->tokenize_chinese_chars = 1;
    o->max_input_chars_per_word = 100;
}

/* ---- ids and encodings ---- */

int octet_ids_push(octet_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? 2 * ids->cap : 32;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return OCTET_ERR_NOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return OCTET_OK;
}

void octet_ids_free(octet_ids *ids)
{
    free(ids->v);
    memset(ids, 0, sizeof *ids);
}

void octet_encoding_free(octet_encoding *enc)
{
    free(enc->input_ids);
    free(enc->token_type_ids);
    free(enc->attention_mask);
    free(enc->lengths);
    memset(enc, 0, sizeof *enc);
}

/* ---- vocabulary ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The id of the n-byte token s, or -1. */
static int32_t vocab_find(const octet_tokenizer *t, const char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->slot[i];
        if (id < 0)
            return -1;
        if (strncmp(t->tokens[id], s, n) == 0 && t->tokens[id][n] == '\0')
            return id;
    }
}

/* Indexes every token; a token listed twice maps to its last line, as in Transformers. */
static int vocab_index(octet_tokenizer *t)
{
    size_t slots = 64;
    while (slots < 2 * t->n)
        slots *= 2;
    t->slot = malloc(slots * sizeof *t->slot);
    if (!t->slot)
        return OCTET_ERR_NOMEM;
    memset(t->slot, 0xff, slots * sizeof *t->slot);
    t->mask = slots - 1;
    for (size_t id = 0; id < t->n; id++) {
        const char *s = t->tokens[id];
        size_t i = hash_bytes(s, strlen(s)) & t->mask;
        while (t->slot[i] >= 0 && strcmp(t->tokens[t->slot[i]], s) != 0)
            i = (i + 1) & t->mask;
        t->slot[i] = (int32_t)id;
    }
    return OCTET_OK;
}

/* Splits t->buf into lines in place ("\n" or "\r\n"; a final newline ends the last line). */
static int vocab_split(octet_tokenizer *t, size_t len)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += t->buf[i] == '\n';
    lines += len > 0 && t->buf[len - 1] != '\n';
    t->tokens = malloc((lines ? lines : 1) * sizeof *t->tokens);
    if (!t->tokens)
        return OCTET_ERR_NOMEM;
    char *p = t->buf, *end = t->buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r')
            stop[-1] = '\0';
        *stop = '\0';
        t->tokens[t->n++] = p;
        p = stop + 1;
    }
    return OCTET_OK;
}

static int resolve_specials(octet_tokenizer *t, const char *path, octet_err *e)
{
    for (int k = 0; k < OCTET_TOK_NSPECIAL; k++) {
        const char *s = t->special_str[k];
        t->special[k] = vocab_find(t, s, strlen(s));
        if (t->special[k] < 0 && k != OCTET_TOK_MASK)
            return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: special token %s is not in the vocabulary", path, s);
    }
    return OCTET_OK;
}

static octet_tokenizer *tok_alloc(int kind)
{
    octet_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    octet_tok_options_default(&t->opt);
    for (int b = 0; b < 256; b++)
        t->byte_token[b][0] = (char)b;
    for (int k = 0; k < OCTET_TOK_NSPECIAL; k++) {
        t->special[k] = k;
        if (!(t->special_str[k] = strdup(special_default[k]))) {
            octet_tok_free(t);
            return NULL;
        }
    }
    return t;
}

void octet_tok_free(octet_tokenizer *t)
{
    if (!t)
        return;
    for (int k = 0; k < OCTET_TOK_NSPECIAL; k++)
        free(t->special_str[k]);
    free(t->buf);
    free(t->tokens);
    free(t->slot);
    free(t);
}

/* Reads the vocab into t (options and special strings already set). */
static int load_vocab_into(octet_tokenizer *t, const char *path, octet_err *e)
{
    size_t len;
    int rc = octet_read_file(path, VOCAB_MAX_BYTES, path, &t->buf, &len, e);
    if (rc == OCTET_OK)
        rc = uc_check_utf8(t->buf, len, path, 1, NULL, path, e);
    if (rc != OCTET_OK)
        return rc;
    if (vocab_split(t, len) != OCTET_OK || vocab_index(t) != OCTET_OK)
        return octet_fail(e, OCTET_ERR_NOMEM, path, "%s: out of memory", path);
    if (t->n == 0)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: empty vocabulary", path);
    if (t->n > INT32_MAX)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s: too many tokens", path);
    t->strip = t->opt.strip_accents < 0 ? t->opt.do_lower_case : t->opt.strip_accents;
    return resolve_specials(t, path, e);
}

int octet_tok_load_vocab(const char *vocab_path, const octet_tok_options *o, octet_tokenizer **out, octet_err *e)
{
    *out = NULL;
    octet_tokenizer *t = tok_alloc(OCTET_TOK_WORDPIECE);
    if (!t)
        return octet_fail(e, OCTET_ERR_NOMEM, vocab_path, "out of memory");
    if (o)
        t->opt = *o;
    int rc = load_vocab_into(t, vocab_path, e);
    if (rc != OCTET_OK) {
        octet_tok_free(t);
        return rc;
    }
    *out = t;
    return OCTET_OK;
}

/* ---- tokenizer_config.json ---- */

static int config_bool(const char *path, json_t *root, const char *key, int *dst, int allow_null, octet_err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return OCTET_OK;
    if (json_is_boolean(v))
        *dst = json_is_true(v);
    else if (json_is_null(v) && allow_null)
        *dst = -1;
    else
        return octet_fail(e, OCTET_ERR_FORMAT, key, "%s: \"%s\" must be true or false%s", path, key,
                          allow_null ? " or null" : "");
    return OCTET_OK;
}

/* A special token given as "[X]" or as an AddedToken object {"content": "[X]", ...}. */
static int config_special(const char *path, json_t *root, octet_tokenizer *t, int k, octet_err *e)
{
    const char *key = special_config_key[k];
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return OCTET_OK;
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return octet_fail(e, OCTET_ERR_FORMAT, key, "%s: \"%s\" must be a non-empty string or {\"content\": string}",
                          path, key);
    char *s = strdup(json_string_value(v));
    if (!s)
        return octet_fail(e, OCTET_ERR_NOMEM, key, "out of memory");
    free(t->special_str[k]);
    t->special_str[k] = s;
    return OCTET_OK;
}

static int config_max_length(const char *path, json_t *root, octet_tokenizer *t, octet_err *e)
{
    json_t *v = json_object_get(root, "model_max_length");
    if (!v || json_is_null(v))
        return OCTET_OK;
    if (!json_is_number(v) || json_number_value(v) < 1)
        return octet_fail(e, OCTET_ERR_FORMAT, "model_max_length", "%s: \"model_max_length\" must be a positive number",
                          path);
    double d = json_number_value(v);
    t->model_max_length = d > 1e9 ? 0 : (size_t)d;  /* Transformers writes 1e30 for "no limit" */
    return OCTET_OK;
}

static int apply_config(const char *path, octet_tokenizer *t, octet_err *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = octet_read_file(path, CONFIG_MAX_BYTES, path, &text, &len, e);
    if (rc == OCTET_OK && (rc = uc_check_utf8(text, len, path, 1, NULL, path, e)) != OCTET_OK)
        free(text);
    if (rc != OCTET_OK)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root)
        return octet_fail(e, OCTET_ERR_FORMAT, path, "%s:%d:%d: not valid JSON: %s", path, je.line, je.column, je.text);
    rc = json_is_object(root) ? OCTET_OK : octet_fail(e, OCTET_ERR_FORMAT, path, "%s: not a JSON object", path);
    if (rc == OCTET_OK)
        rc = config_bool(path, root, "do_lower_case", &t->opt.do_lower_case, 0, e);
    if (rc == OCTET_OK)
        rc = config_bool(path, root, "strip_accents", &t->opt.strip_accents, 1, e);
    if (rc == OCTET_OK)
        rc = config_bool(path, root, "tokenize_chinese_chars", &t->opt.tokenize_chinese_chars, 0, e);
    if (rc == OCTET_OK)
        rc = config_max_length(path, root, t, e);
    for (int k = 0; k < OCTET_TOK_NSPECIAL && rc == OCTET_OK; k++)
        rc = config_special(path, root, t, k, e);
    json_decref(root);
    return rc;
}

int octet_tok_load_dir(const char *dir, octet_tokenizer **out, octet_err *e)
{
    *out = NULL;
    char *vocab = octet_join_path(dir, "vocab.txt"), *config = octet_join_path(dir, "tokenizer_config.json");
    octet_tokenizer *t = tok_alloc(OCTET_TOK_WORDPIECE);
    int rc = OCTET_OK;
    if (!vocab || !config || !t)
        rc = octet_fail(e, OCTET_ERR_NOMEM, dir, "out of memory");
    if (rc == OCTET_OK && access(config, F_OK) == 0) /* read through octet_read_file: never a FIFO */
        rc = apply_config(config, t, e);
    if (rc == OCTET_OK)
        rc = load_vocab_into(t, vocab, e);
    free(vocab);
    free(config);
    if (rc != OCTET_OK) {
        octet_tok_free(t);
        return rc;
    }
    *out = t;
    return OCTET_OK;
}

int octet_tok_new_bytes(octet_tokenizer **out, octet_err *e)
{
    *out = tok_alloc(OCTET_TOK_BYTES);
    return *out ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
}

int octet_tok_kind(const octet_tokenizer *t) { return t->kind; }

size_t octet_tok_vocab_size(const octet_tokenizer *t)
{
    return t->kind == OCTET_TOK_BYTES ? OCTET_TOK_BYTE_VOCAB : t->n;
}

size_t octet_tok_model_max_length(const octet_tokenizer *t) { return t->model_max_length; }

int32_t octet_tok_special_id(const octet_tokenizer *t, int which)
{
    return which >= 0 && which < OCTET_TOK_NSPECIAL ? t->special[which] : -1;
}

int32_t octet_tok_token_to_id(const octet_tokenizer *t, const char *token)
{
    if (t->kind == OCTET_TOK_WORDPIECE)
        return vocab_find(t, token, strlen(token));
    for (int k = 0; k < OCTET_TOK_NSPECIAL; k++)
        if (strcmp(token, special_default[k]) == 0)
            return k;
    return strlen(token) == 1 ? (unsigned char)token[0] + OCTET_TOK_BYTE_OFFSET : -1;
}

const char *octet_tok_id_to_token(const octet_tokenizer *t, int32_t id)
{
    if (id < 0 || (size_t)id >= octet_tok_vocab_size(t))
        return NULL;
    if (t->kind == OCTET_TOK_WORDPIECE)
        return t->tokens[id];
    if (id < OCTET_TOK_BYTE_OFFSET)
        return special_default[id];
    return t->byte_token[id - OCTET_TOK_BYTE_OFFSET];
}

/* ---- the basic tokenizer and WordPiece ---- */

/* Where words go: WordPiece ids, or the basic tokens as text (octet_tok_basic_split). */
typedef struct sink {
    const octet_tokenizer *t;
    octet_ids *ids;
    int want_text;
    char *text;
    size_t tlen, tcap;
    octet_ids piece;                 /* the pieces of the current word */
    char *utf8;                      /* the current word's bytes */
    size_t *off;                     /* byte offset of each code point, n + 1 entries */
    size_t wcap;
} sink;

static int text_append(sink *s, const char *p, size_t n)
{
    if (s->tlen + n + 2 > s->tcap) {
        size_t cap = s->tcap ? s->tcap : 128;
        while (cap < s->tlen + n + 2)
            cap *= 2;
        char *x = realloc(s->text, cap);
        if (!x)
            return -1;
        s->text = x;
        s->tcap = cap;
    }
    if (s->tlen > 0)
        s->text[s->tlen++] = ' ';
    memcpy(s->text + s->tlen, p, n);
    s->tlen += n;
    s->text[s->tlen] = '\0';
    return 0;
}

/* Hash lookup of prefix + body without building the key. */
static int32_t vocab_find2(const octet_tokenizer *t, const char *prefix, size_t plen, const char *body, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < plen; i++)
        h = (h ^ (unsigned char)prefix[i]) * 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)body[i]) * 1099511628211ull;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        int32_t id = t->slot[i];
        if (id < 0)
            return -1;
        const char *tok = t->tokens[id];
        if (strncmp(tok, prefix, plen) == 0 && strncmp(tok + plen, body, n) == 0 && tok[plen + n] == '\0')
            return id;
    }
}

static int word_utf8(sink *s, const uint32_t *cps, size_t n)
{
    if (n + 1 > s->wcap) {
        size_t cap = n + 1;
        char *u = realloc(s->utf8, 4 * cap);
        size_t *o = u ? realloc(s->off, cap * sizeof *o) : NULL;
        if (u)
            s->utf8 = u;
        if (!o)
            return -1;
        s->off = o;
        s->wcap = cap;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        s->off[i] = len;
        len += uc_encode_utf8(cps[i], s->utf8 + len);
    }
    s->off[n] = len;
    return 0;
}

/* Greedy longest-match-first pieces of one word, or [UNK]. */
static int wordpiece(sink *s, size_t n)
{
    const octet_tokenizer *t = s->t;
    int32_t unk = t->special[OCTET_TOK_UNK];
    if (n > (size_t)t->opt.max_input_chars_per_word)
        return octet_ids_push(s->ids, unk);
    s->piece.n = 0;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            const char *body = s->utf8 + s->off[start];
            id = vocab_find2(t, "##", start > 0 ? 2 : 0, body, s->off[end] - s->off[start]);
            if (id >= 0)
                break;
        }
        if (id < 0)
            return octet_ids_push(s->ids, unk);
        if (octet_ids_push(&s->piece, id) != OCTET_OK)
            return OCTET_ERR_NOMEM;
        start = end;
    }
    for (size_t i = 0; i < s->piece.n; i++)
        if (octet_ids_push(s->ids, s->piece.v[i]) != OCTET_OK)
            return OCTET_ERR_NOMEM;
    return OCTET_OK;
}

static int emit_word(sink *s, const uint32_t *cps, size_t n)
{
    if (n == 0)
        return 0;
    if (word_utf8(s, cps, n) != 0)
        return -1;
    if (s->want_text && text_append(s, s->utf8, s->off[n]) != 0)
        return -1;
    return s->ids ? wordpiece(s, n) : 0;
}

/* Lower-cases, strips accents and splits one whitespace-delimited token at punctuation. */
static int emit_token(sink *s, uc_buf *tok)
{
    const octet_tokenizer *t = s->t;
    if (t->opt.do_lower_case && uc_lower(tok) != 0)
        return -1;
    if (t->strip && uc_strip_accents(tok) != 0)
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < tok->n; i++) {
        if (!uc_is_punct(tok->v[i]))
            continue;
        if (emit_word(s, tok->v + run, i - run) != 0 || emit_word(s, tok->v + i, 1) != 0)
            return -1;
        run = i + 1;
    }
    return emit_word(s, tok->v + run, tok->n - run);
}

/* Drops NUL, U+FFFD and control characters, maps whitespace (and U+2028/U+2029, which Python's
 * str.split() splits at) to ' ', spaces out CJK ideographs. */
static int clean_text(const octet_tokenizer *t, const uc_buf *in, uc_buf *out)
{
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        int rc = 0;
        if (c == 0 || c == 0xFFFD || uc_is_control(c))
            continue;
        if (uc_is_whitespace(c) || c == 0x2028 || c == 0x2029)   /* Zl/Zp: Python's split() */
            rc = uc_push(out, ' ');
        else if (t->opt.tokenize_chinese_chars && uc_is_cjk(c))
            rc = uc_push(out, ' ') || uc_push(out, c) || uc_push(out, ' ');
        else
            rc = uc_push(out, c);
        if (rc)
            return -1;
    }
    return 0;
}

/* Basic-tokenizes a stretch of text that holds no special token. */
static int emit_segment(sink *s, const char *p, size_t len)
{
    uc_buf raw = {0}, clean = {0}, tok = {0};
    int rc = uc_decode_utf8(p, len, &raw) || clean_text(s->t, &raw, &clean) || uc_nfc(&clean);
    for (size_t i = 0; i < clean.n && !rc;) {
        while (i < clean.n && clean.v[i] == ' ')
            i++;
        size_t j = i;
        while (j < clean.n && clean.v[j] != ' ')
            j++;
        tok.n = 0;
        for (size_t k = i; k < j && !rc; k++)
            rc = uc_push(&tok, clean.v[k]);
        if (!rc && j > i)
            rc = emit_token(s, &tok);
        i = j;
    }
    uc_free(&raw);
    uc_free(&clean);
    uc_free(&tok);
    return rc ? -1 : 0;
}

/* The earliest special token written in p (the longest on a tie), or -1. */
static int find_special(const octet_tokenizer *t, const char *p, const char **at)
{
    int best = -1;
    size_t best_len = 0;
    *at = NULL;
    for (int k = 0; k < OCTET_TOK_NSPECIAL; k++) {
        if (t->special[k] < 0)
            continue;
        const char *q = strstr(p, t->special_str[k]);
        size_t len = strlen(t->special_str[k]);
        if (q && (!*at || q < *at || (q == *at && len > best_len))) {
            *at = q;
            best = k;
            best_len = len;
        }
    }
    return best;
}

static int run_wordpiece(sink *s, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *at;
        int k = find_special(s->t, p, &at);
        size_t seg = k < 0 ? strlen(p) : (size_t)(at - p);
        if (emit_segment(s, p, seg) != 0)
            return -1;
        if (k < 0)
            break;
        const char *name = s->t->special_str[k];
        if ((s->want_text && text_append(s, name, strlen(name)) != 0) ||
            (s->ids && octet_ids_push(s->ids, s->t->special[k]) != OCTET_OK))
            return -1;
        p = at + strlen(name);
    }
    return 0;
}

static void sink_free(sink *s)
{
    octet_ids_free(&s->piece);
    free(s->utf8);
    free(s->off);
}

int octet_tok_tokenize(const octet_tokenizer *t, const char *text, octet_ids *out, octet_err *e)
{
    if (t->kind == OCTET_TOK_BYTES) {
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
            if (octet_ids_push(out, *p + OCTET_TOK_BYTE_OFFSET) != OCTET_OK)
                return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory while tokenizing");
        return OCTET_OK;
    }
    sink s = {.t = t, .ids = out};
    int rc = run_wordpiece(&s, text);
    sink_free(&s);
    return rc ? octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory while tokenizing") : OCTET_OK;
}

int octet_tok_basic_split(const octet_tokenizer *t, const char *text, char **out, octet_err *e)
{
    *out = NULL;
    if (t->kind == OCTET_TOK_BYTES) {
        *out = strdup(text);
        return *out ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    }
    sink s = {.t = t, .want_text = 1};
    int rc = run_wordpiece(&s, text);
    sink_free(&s);
    if (!rc && !s.text)
        rc = !(s.text = strdup(""));
    if (rc) {
        free(s.text);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory while tokenizing");
    }
    *out = s.text;
    return OCTET_OK;
}

/* ---- framing, truncation, padding ---- */

/* Lengths of a and b kept under a budget: longest_first, one token at a time. */
static void truncate_pair(size_t *na, size_t *nb, size_t budget)
{
    while (*na + *nb > budget) {
        if (*na > *nb)
            (*na)--;
        else
            (*nb)--;
    }
}

static void row_lengths(const octet_ids *a, const octet_ids *b, size_t i, size_t max_length, size_t *na,
                        size_t *nb)
{
    size_t specials = b ? 3 : 2;
    *na = a[i].n;
    *nb = b ? b[i].n : 0;
    if (max_length == 0)
        return;
    if (b)
        truncate_pair(na, nb, max_length - specials);
    else if (*na > max_length - specials)
        *na = max_length - specials;
}

static void fill_row(const octet_tokenizer *t, const octet_ids *a, const octet_ids *b, size_t na, size_t nb,
                     int32_t *ids, int32_t *types, int32_t *mask, size_t seq)
{
    size_t k = 0;
    ids[k++] = t->special[OCTET_TOK_CLS];
    if (na)
        memcpy(ids + k, a->v, na * sizeof *ids);
    k += na;
    ids[k++] = t->special[OCTET_TOK_SEP];
    size_t first = k;
    if (b) {
        if (nb)
            memcpy(ids + k, b->v, nb * sizeof *ids);
        k += nb;
        ids[k++] = t->special[OCTET_TOK_SEP];
    }
    for (size_t j = 0; j < seq; j++) {
        if (j >= k)
            ids[j] = t->special[OCTET_TOK_PAD];
        types[j] = j >= first && j < k;
        mask[j] = j < k;
    }
}

int octet_tok_encode_ids(const octet_tokenizer *t, const octet_ids *a, const octet_ids *b, size_t batch,
                         size_t max_length, int padding, octet_encoding *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    size_t specials = b ? 3 : 2;
    if (max_length != 0 && max_length < specials)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.max_length", "must be at least %zu (room for the %s), got %zu",
                          specials, b ? "[CLS] and two [SEP]" : "[CLS] and [SEP]", max_length);
    if (max_length == 0 && padding == OCTET_PAD_MAX_LENGTH)
        return octet_fail(e, OCTET_ERR_ARG, "dataset.max_length", "padding to max_length needs a max_length > 0");
    size_t seq = padding == OCTET_PAD_MAX_LENGTH ? max_length : 0;
    for (size_t i = 0; i < batch && padding != OCTET_PAD_MAX_LENGTH; i++) {
        size_t na, nb;
        row_lengths(a, b, i, max_length, &na, &nb);
        if (na + nb + specials > seq)
            seq = na + nb + specials;
    }
    size_t cells = batch * seq > 0 ? batch * seq : 1;
    out->input_ids = malloc(cells * sizeof(int32_t));
    out->token_type_ids = malloc(cells * sizeof(int32_t));
    out->attention_mask = malloc(cells * sizeof(int32_t));
    out->lengths = malloc((batch ? batch : 1) * sizeof(size_t));
    if (!out->input_ids || !out->token_type_ids || !out->attention_mask || !out->lengths) {
        octet_encoding_free(out);
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory for a %zu x %zu batch", batch, seq);
    }
    out->batch = batch;
    out->seq_len = seq;
    for (size_t i = 0; i < batch; i++) {
        size_t na, nb, o = i * seq;
        row_lengths(a, b, i, max_length, &na, &nb);
        fill_row(t, &a[i], b ? &b[i] : NULL, na, nb, out->input_ids + o, out->token_type_ids + o,
                 out->attention_mask + o, seq);
        out->lengths[i] = na + nb + specials;
    }
    return OCTET_OK;
}

int octet_tok_encode_batch(const octet_tokenizer *t, const char *const *texts, const char *const *pairs,
                           size_t batch, size_t max_length, int padding, octet_encoding *out, octet_err *e)
{
    memset(out, 0, sizeof *out);
    octet_ids *a = calloc(batch ? batch : 1, sizeof *a), *b = pairs ? calloc(batch ? batch : 1, sizeof *b) : NULL;
    int rc = a && (!pairs || b) ? OCTET_OK : octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; i < batch && rc == OCTET_OK; i++) {
        rc = octet_tok_tokenize(t, texts[i], &a[i], e);
        if (rc == OCTET_OK && pairs)
            rc = octet_tok_tokenize(t, pairs[i] ? pairs[i] : "", &b[i], e);
    }
    if (rc == OCTET_OK)
        rc = octet_tok_encode_ids(t, a, b, batch, max_length, padding, out, e);
    for (size_t i = 0; i < batch; i++) {
        if (a)
            octet_ids_free(&a[i]);
        if (b)
            octet_ids_free(&b[i]);
    }
    free(a);
    free(b);
    return rc;
}
