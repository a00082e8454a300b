/* testlib.c: see testlib.h. */
#define _GNU_SOURCE /* nftw */
#include "testlib.h"

#include <errno.h>
#include <stdarg.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void rng_seed(test_rng *r, uint64_t seed)
{
    r->s = seed ? seed * 0x9E3779B97F4A7C15ULL : 0x853c49e6748fea9bULL;
    r->has_spare = 0;
}

uint64_t rng_u64(test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

double rng_uniform(test_rng *r) { return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double rng_normal(test_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * rng_uniform(r) - 1.0;
        v = 2.0 * rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

void rng_fill_normal(test_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_normal(r) * scale;
}

void rng_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)rng_uniform(r);
}

float *fbuf(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *dbuf(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

int *ibuf(int64_t n)
{
    int *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

float *frand(test_rng *r, int64_t n, float scale)
{
    float *p = fbuf(n);
    rng_fill_normal(r, p, (size_t)n, scale);
    return p;
}

int *padding_mask(int B, int T, const int *lens)
{
    int *m = ibuf((int64_t)B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            m[b * T + t] = t < lens[b];
    return m;
}

static int64_t ordered(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - (int64_t)i : (int64_t)i;
}

int64_t ulp_distance(float a, float b)
{
    int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

size_t count_mismatches(const char *what, const float *ref, const float *got, size_t n, double atol, double rtol)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)ref[i] - (double)got[i]);
        if (!(diff <= atol + rtol * fabs((double)ref[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s[%zu]: want %.9g got %.9g (diff %.3g)\n", what, i, ref[i], got[i], diff);
            bad++;
        }
    }
    return bad;
}

const char *test_srcdir(void)
{
    const char *s = getenv("OCTET_SRCDIR");
    return s && *s ? s : ".";
}

const char *test_builddir(void)
{
    const char *s = getenv("OCTET_BUILDDIR");
    return s && *s ? s : ".";
}

int test_tmpdir(char *buf, size_t cap, const char *tag)
{
    const char *t = getenv("TMPDIR"), *base = t && *t ? t : "/tmp";
    int n = snprintf(buf, cap, "%s/octet-%s-XXXXXX", base, tag);
    int fits = n >= 0 && (size_t)n < cap;
    if (fits && mkdtemp(buf))
        return 0;
    fprintf(stderr, "test_tmpdir: cannot create %s/octet-%s-XXXXXX: %s\n", base, tag,
            fits ? strerror(errno) : "path too long");
    if (cap)
        buf[0] = '\0';
    return -1;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "test_rmtree: cannot remove %s: %s\n", path, strerror(errno));
    return 0; /* go on with the rest */
}

void test_rmtree(const char *dir)
{
    const char *keep = getenv("OCTET_KEEP_REF");
    if (!dir || !*dir)
        return;
    if (keep && *keep == '1')
        fprintf(stderr, "OCTET_KEEP_REF=1: keeping %s\n", dir);
    else
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void test_write_file(const char *dir, const char *name, const void *data, size_t n, char *path, size_t cap)
{
    char own[4096];
    if (!path) {
        path = own;
        cap = sizeof own;
    }
    int len = snprintf(path, cap, "%s/%s", dir, name);
    ck_assert_msg(len >= 0 && (size_t)len < cap, "path too long: %s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void test_mkfifo(const char *dir, const char *name, char *path, size_t cap)
{
    char own[4096];
    if (!path) {
        path = own;
        cap = sizeof own;
    }
    int len = snprintf(path, cap, "%s/%s", dir, name);
    ck_assert_msg(len >= 0 && (size_t)len < cap, "path too long: %s/%s", dir, name);
    unlink(path);
    ck_assert_msg(mkfifo(path, 0600) == 0, "cannot make the FIFO %s: %s", path, strerror(errno));
    alarm(FIFO_TEST_SECONDS); /* a reader that blocks on it fails the test instead of hanging it */
}

void test_write_text(const char *dir, const char *name, const char *text)
{
    test_write_file(dir, name, text, strlen(text), NULL, 0);
}

/* The last cap - 1 bytes of a file into buf, trailing newlines and blanks trimmed; "" when the
 * file cannot be read. */
static void file_tail(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f), from = size > (long)cap - 1 ? size - (long)cap + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(buf, 1, cap - 1, f);
    buf[got] = 0;
    fclose(f);
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        buf[--got] = 0;
}

int test_run_torch_script(const char *script, const char *args, const char *log, char *err, size_t cap)
{
    const char *py = getenv("OCTET_TORCH_PYTHON");
    if (!py || !*py)
        py = "/usr/bin/python3";
    if (access(py, X_OK) != 0) {
        snprintf(err, cap, "%s not found: the PyTorch reference tests need Debian's python3 with python3-torch", py);
        return -1;
    }
    char cmd[4096], tail[600];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/%s' %s >'%s' 2>&1", py, test_srcdir(), script, args, log);
    int rc = system(cmd);
    if (rc != 0) {
        file_tail(log, tail, sizeof tail);
        snprintf(err, cap, "PyTorch reference script %s failed (exit %d; is python3-torch installed?): %s", script,
                 WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, tail);
    }
    unlink(log);
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ visible skips */

#define SKIP_FILE_ENV "OCTET_SKIP_FILE"

void test_skips_begin(void)
{
    char dir[512], path[600];
    if (test_tmpdir(dir, sizeof dir, "skips") != 0)
        return; /* test_skip then fails the test: no list to record in */
    snprintf(path, sizeof path, "%s/skips", dir);
    setenv(SKIP_FILE_ENV, path, 1);
}

void test_skip(const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *req = getenv("OCTET_REQUIRE_ALL");
    if (req && !strcmp(req, "1"))
        ck_abort_msg("OCTET_REQUIRE_ALL=1, but this test would skip: %s", why);
    const char *list = getenv(SKIP_FILE_ENV);
    FILE *f = list ? fopen(list, "a") : NULL;
    ck_assert_msg(f != NULL, "cannot record a skip (%s): %s", list ? list : "no test_skips_begin", why);
    fprintf(f, "%s\n", why);
    fclose(f);
    fprintf(stderr, "SKIP: %s\n", why);
}

int test_skips_end(int failed)
{
    const char *list = getenv(SKIP_FILE_ENV);
    int skipped = 0;
    FILE *f = list ? fopen(list, "r") : NULL;
    if (f) {
        char line[600];
        while (fgets(line, sizeof line, f)) {
            printf("SKIP: %s", line);
            skipped++;
        }
        fclose(f);
    }
    if (list) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s", list);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        test_rmtree(dir);
    }
    if (failed)
        return EXIT_FAILURE;
    if (skipped) {
        printf("%d test%s skipped (above); the rest passed\n", skipped, skipped == 1 ? "" : "s");
        return 77;
    }
    return EXIT_SUCCESS;
}
