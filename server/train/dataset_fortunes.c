/* dataset_fortunes.c: the fortunes-lang built-in, a real six-way text classification set
 * made from Debian's fortune packages: the label is the language, the text one fortune.
 *
 * Sources under the fortunes directory (/usr/share/games/fortunes), every regular file that
 * is not an index (.dat), a link (.u8 and the packages' compatibility links) or ASCII art:
 *   en     the top level (fortunes, fortunes-min), except brasil   de  de/ (fortunes-de)
 *   it     it/ (fortunes-it)                                      es  es/ (fortunes-es)
 *   pt-br  brasil (fortunes-br)                                   pl  pl/ (fortunes-pl)
 * The offensive collections live in off/ subdirectories and are never read. Every file read
 * must be valid UTF-8, the rule of all text inputs (uc_check_utf8): one that is not fails the
 * load with OCTET_ERR_FORMAT naming file:line:column. Debian's files all are (every file of
 * fortunes, fortunes-min, -de, -it, -es, -br and -pl, off/ included, checked with bookworm's
 * packages), so the counts below are unchanged; a Latin-1 file from elsewhere must be
 * converted (iconv -f latin1 -t utf8) before use. Entries end at a line that is exactly "%".
 * Each is cleaned (backspace overstrikes undone, escape sequences and control bytes dropped,
 * whitespace runs made one space, trimmed; none of which can split a UTF-8 sequence) and kept
 * when it has a letter and at most 512 bytes. Duplicates are dropped; a text found under two languages is dropped
 * from both. Files are read in name order, so the result only depends on the packages.
 *
 * Counts with Debian bookworm's packages (fortunes and fortunes-min 1:1.99.1-7.3, fortunes-de
 * 0.35-1, fortunes-it 1.99-4.1, fortunes-es 1.36, fortunes-br 20220821, fortunes-pl
 * 0.0.20130525-3):
 *   full:     en 14151, de 18024, it 7942, es 10778, pt-br 2495, pl 7119 (60509 texts)
 *   balanced: 2495 per language (14970 texts: 13412 train, 1558 validation) — each
 *             language's first 2495 texts in the order of a salted hash of the text
 * and about 1 in 10 of each goes to validation (hash of the text). Building either takes
 * about 0.2 s; nothing is cached. */
#define LOG_PREFIX "fortunes"
#include "train/dataset.h"
#include "train/dataset_impl.h"
#include "fileio.h"
#include "log.h"
#include "train/unicode.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FORTUNE_MAX_BYTES 512
#define FORTUNE_FILE_MAX ((size_t)64 << 20)
#define NLANG 6

typedef struct lang_src {
    const char *label;
    const char *subdir;     /* NULL: the top level */
    const char *only;       /* read only this file, or NULL */
    const char *package;
} lang_src;

static const lang_src langs[NLANG] = {
    {"en", NULL, NULL, "fortunes"},  {"de", "de", NULL, "fortunes-de"},
    {"it", "it", NULL, "fortunes-it"}, {"es", "es", NULL, "fortunes-es"},
    {"pt-br", NULL, "brasil", "fortunes-br"}, {"pl", "pl", NULL, "fortunes-pl"},
};

/* ASCII-art collections (meaningless once whitespace is normalised) and pt-br's file. */
static const char *const skipped[] = {"ascii-art", "asciiart", "cows", "brasil"};

typedef struct entry {
    char *text;
    size_t len;
    uint64_t hash;
    int label;
    int dropped;          /* found under another language too */
} entry;

typedef struct corpus {
    entry *v;
    size_t n, cap;
    size_t *slot;         /* dedupe index: entry index + 1, 0 = empty */
    size_t mask;
} corpus;

/* ---- reading the files ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int wanted_file(int dirfd, const char *name)
{
    if (name[0] == '.' || ends_with(name, ".dat") || ends_with(name, ".u8"))
        return 0;
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (strcmp(name, skipped[i]) == 0)
            return 0;
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The wanted file names of dir, sorted; -1 when dir cannot be opened or out of memory. */
static int list_files(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (!wanted_file(dirfd(d), de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(*names, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            *names = v;
        }
        if (!((*names)[*n] = strdup(de->d_name)))
            rc = -1;
        else
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_str);
    return rc;
}

/* ---- cleaning one entry ---- */

/* Cleans src[0..n) into out (n + 1 bytes); returns the cleaned length. */
static size_t clean_entry(const char *src, size_t n, char *out)
{
    size_t w = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\b') {                                    /* overstrike: drop the char before */
            while (w > 0 && ((unsigned char)out[w - 1] & 0xC0) == 0x80)
                w--;
            if (w > 0)
                w--;
            continue;
        }
        if (c == 0x1b) {                                    /* ESC [ params letter */
            if (i + 1 < n && src[i + 1] == '[')
                for (i += 2; i < n && !isalpha((unsigned char)src[i]); i++)
                    ;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            space = w > 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            continue;
        if (space)
            out[w++] = ' ';
        space = 0;
        out[w++] = (char)c;
    }
    out[w] = '\0';
    return w;
}

static int has_letter(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isalpha((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* ---- the corpus with deduplication ---- */

static int corpus_grow_index(corpus *c)
{
    size_t slots = c->mask ? 2 * (c->mask + 1) : 1 << 16;
    size_t *s = calloc(slots, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < c->n; i++) {
        size_t j = c->v[i].hash & (slots - 1);
        while (s[j])
            j = (j + 1) & (slots - 1);
        s[j] = i + 1;
    }
    free(c->slot);
    c->slot = s;
    c->mask = slots - 1;
    return 0;
}

/* Adds a cleaned text under label unless present; a second label marks it dropped. */
static int corpus_add(corpus *c, const char *text, size_t len, int label)
{
    if (!c->slot || 2 * (c->n + 1) > c->mask + 1)
        if (corpus_grow_index(c) != 0)
            return -1;
    uint64_t h = ds_hash(text, len, 0);
    size_t j = h & c->mask;
    for (; c->slot[j]; j = (j + 1) & c->mask) {
        entry *x = &c->v[c->slot[j] - 1];
        if (x->hash == h && x->len == len && memcmp(x->text, text, len) == 0) {
            x->dropped |= x->label != label;
            return 0;
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4096;
        entry *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return -1;
        c->v = v;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, text, len + 1);
    c->v[c->n] = (entry){.text = copy, .len = len, .hash = h, .label = label};
    c->slot[j] = ++c->n;
    return 0;
}

static void corpus_free(corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].text);
    free(c->v);
    free(c->slot);
    memset(c, 0, sizeof *c);
}

/* Splits one file's bytes into entries and adds the keepers. */
static int add_file_entries(corpus *c, char *buf, size_t len, int label)
{
    char *clean = malloc(len + 1);
    if (!clean)
        return -1;
    int rc = 0;
    /* Scan line by line: an entry is the text between "%" lines. */
    size_t entry_start = 0, line_start = 0;
    for (size_t i = 0; i <= len && rc == 0; i++) {
        if (i < len && buf[i] != '\n')
            continue;
        size_t line_end = i > line_start && buf[i - 1] == '\r' ? i - 1 : i;
        int is_sep = line_end - line_start == 1 && buf[line_start] == '%';
        if (is_sep || i == len) {
            size_t end = is_sep ? line_start : len;
            size_t n = clean_entry(buf + entry_start, end - entry_start, clean);
            if (n > 0 && n <= FORTUNE_MAX_BYTES && has_letter(clean, n))
                rc = corpus_add(c, clean, n, label);
            entry_start = i + 1;
        }
        line_start = i + 1;
    }
    free(clean);
    return rc;
}

static int add_file(corpus *c, const char *path, int label, octet_err *e)
{
    char *buf;
    size_t len;
    int rc = octet_read_file(path, FORTUNE_FILE_MAX, "dataset.name", &buf, &len, e);
    if (rc == OCTET_OK && (rc = uc_check_utf8(buf, len, path, 1, NULL, "dataset.name", e)) != OCTET_OK)
        free(buf);
    if (rc != OCTET_OK)
        return rc;
    if (add_file_entries(c, buf, len, label) != 0)
        rc = octet_fail(e, OCTET_ERR_NOMEM, "dataset.name", "out of memory reading %s", path);
    free(buf);
    return rc;
}

static int missing_lang(const char *dir, const lang_src *l, octet_err *e)
{
    return octet_fail(e, OCTET_ERR_IO, "dataset.name",
                      "fortunes-lang: no '%s' fortunes under %s/%s (install Debian's %s)", l->label, dir,
                      l->only ? l->only : l->subdir ? l->subdir : "", l->package);
}

/* Reads every file of one language into the corpus. */
static int add_lang(corpus *c, const char *root, int label, octet_err *e)
{
    const lang_src *l = &langs[label];
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s%s%s", root, l->subdir ? "/" : "", l->subdir ? l->subdir : "");
    if (l->only) {
        snprintf(path, sizeof path, "%s/%s", dir, l->only);
        int rc = add_file(c, path, label, e);
        return rc == OCTET_ERR_IO ? missing_lang(root, l, e) : rc;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = list_files(dir, &names, &n) != 0 || n == 0 ? missing_lang(root, l, e) : OCTET_OK;
    for (size_t i = 0; i < n && rc == OCTET_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = add_file(c, path, label, e);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

typedef struct ranked {
    uint64_t key;
    size_t index;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Keeps, per language, the `keep` texts first in salted-hash order; drops the others. */
static int balance(corpus *c, const size_t *counts)
{
    size_t keep = SIZE_MAX;
    for (int l = 0; l < NLANG; l++)
        if (counts[l] < keep)
            keep = counts[l];
    ranked *r = malloc((c->n ? c->n : 1) * sizeof *r);
    if (!r)
        return -1;
    for (int l = 0; l < NLANG; l++) {
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++)
            if (!c->v[i].dropped && c->v[i].label == l)
                r[k++] = (ranked){ds_hash(c->v[i].text, c->v[i].len, 0xba1a), i};
        qsort(r, k, sizeof *r, cmp_ranked);
        for (size_t j = keep; j < k; j++)
            c->v[r[j].index].dropped = 1;
    }
    free(r);
    return 0;
}

/* Moves the kept entries into the train and eval builders. */
static int split_corpus(corpus *c, ds_builder *train, ds_builder *eval)
{
    for (size_t i = 0; i < c->n; i++) {
        const entry *x = &c->v[i];
        if (x->dropped)
            continue;
        ds_builder *b = ds_is_eval(x->text, NULL) ? eval : train;
        if (dsb_push(b, x->text, x->len, NULL, x->label) != 0)
            return -1;
    }
    return 0;
}

static int build_corpus(const char *root, int balanced, corpus *c, octet_err *e)
{
    for (int l = 0; l < NLANG; l++) {
        int rc = add_lang(c, root, l, e);
        if (rc != OCTET_OK)
            return rc;
    }
    size_t counts[NLANG] = {0};
    for (size_t i = 0; i < c->n; i++)
        if (!c->v[i].dropped)
            counts[c->v[i].label]++;
    log_debug("full counts: en %zu de %zu it %zu es %zu pt-br %zu pl %zu", counts[0], counts[1], counts[2], counts[3],
              counts[4], counts[5]);
    if (balanced && balance(c, counts) != 0)
        return octet_fail(e, OCTET_ERR_NOMEM, "dataset.name", "out of memory");
    return OCTET_OK;
}

int octet_data_fortunes(const char *dir, int balanced, octet_dataset *train, octet_dataset *eval, octet_err *e)
{
    memset(train, 0, sizeof *train);
    memset(eval, 0, sizeof *eval);
    corpus c = {0};
    ds_builder tb = {0}, eb = {0};
    char *names[NLANG];
    for (int l = 0; l < NLANG; l++)
        names[l] = (char *)langs[l].label;
    const char *base = balanced ? "fortunes-lang" : "fortunes-lang-full";
    char tname[64], ename[64];
    snprintf(tname, sizeof tname, "%s/train", base);
    snprintf(ename, sizeof ename, "%s/validation", base);
    int rc = build_corpus(dir, balanced, &c, e);
    if (rc == OCTET_OK && (split_corpus(&c, &tb, &eb) != 0 || dsb_finish(&tb, tname, names, NLANG, train) != 0 ||
                           dsb_finish(&eb, ename, names, NLANG, eval) != 0))
        rc = octet_fail(e, OCTET_ERR_NOMEM, "dataset.name", "out of memory");
    corpus_free(&c);
    dsb_free(&tb);
    dsb_free(&eb);
    if (rc != OCTET_OK) {
        octet_dataset_free(train);
        octet_dataset_free(eval);
    }
    return rc;
}
