/* testlib.h: helpers shared by the Check suites: a seeded RNG, zero-filled and random host
 * buffers, an attention padding mask, buffer comparison with the first mismatches printed, ulp
 * distance, paths to the source and build trees, and scratch directories (make one, write files
 * into it, remove it). Linked into every test program, tests/api/run_api included.
 * The suite constructors of run_cpu.c / run_cuda.c are declared here too. */
#ifndef OCTET_TESTLIB_H
#define OCTET_TESTLIB_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* xorshift64* with Box-Muller normals: the same seed gives the same stream on every machine. */
typedef struct test_rng {
    uint64_t s;
    int has_spare;
    double spare;
} test_rng;

void rng_seed(test_rng *r, uint64_t seed);
uint64_t rng_u64(test_rng *r);
double rng_uniform(test_rng *r);  /* [0, 1) */
double rng_normal(test_rng *r);   /* N(0, 1) */
void rng_fill_normal(test_rng *r, float *x, size_t n, float scale);
void rng_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi);

/* Zero-filled host buffers of n elements (at least one, so n = 0 is no special case); a failed
 * allocation fails the test. Free with free(). */
float *fbuf(int64_t n);
double *dbuf(int64_t n);
int *ibuf(int64_t n);
/* fbuf(n) filled with N(0, scale^2) from r. */
float *frand(test_rng *r, int64_t n, float scale);

/* An attention padding mask (B, T) from ibuf: row b keeps its first lens[b] keys (1), the rest
 * are 0; lens[b] = 0 masks the whole row. */
int *padding_mask(int B, int T, const int *lens);

/* Distance in units in the last place between two finite floats (0 when equal, incl. +-0). */
int64_t ulp_distance(float a, float b);

/* Counts elements with |a-b| > atol + rtol*|a|; prints the first few with their index. */
size_t count_mismatches(const char *what, const float *ref, const float *got, size_t n, double atol, double rtol);

/* $OCTET_SRCDIR / $OCTET_BUILDDIR (set by make check); "." when unset or empty. */
const char *test_srcdir(void);
const char *test_builddir(void);

/* Makes a fresh, empty directory $TMPDIR/octet-<tag>-XXXXXX (/tmp when TMPDIR is unset or
 * empty) and writes its path to buf. Returns 0; on failure (the path does not fit in cap, or
 * mkdtemp fails) returns -1 with buf = "" and one line on stderr naming the template and the
 * reason. It asserts nothing, so unchecked fixtures and run_api's main() can use it; inside a
 * test, wrap it: ck_assert_int_eq(test_tmpdir(dir, sizeof dir, "x"), 0). */
int test_tmpdir(char *buf, size_t cap, const char *tag);

/* rm -rf dir, without a shell: symlinks are removed, never followed. NULL or "" does nothing.
 * OCTET_KEEP_REF=1 keeps the directory (its path goes to stderr) for inspection. What cannot be
 * removed is named on stderr; the test does not fail for it. */
void test_rmtree(const char *dir);

/* Runs tests/reference/<script> (from the source tree) with `args` (already shell-quoted) under
 * the Python that has PyTorch ($OCTET_TORCH_PYTHON, else Debian's /usr/bin/python3), its stdout
 * and stderr into `log`, which is removed afterwards. Returns 0; -1 with err saying why: no such
 * interpreter, or the script's exit status and the last lines it printed. */
int test_run_torch_script(const char *script, const char *args, const char *log, char *err, size_t cap);

/* Writes n bytes of data to dir/name (created or truncated) and, when path is not NULL, the
 * file's path to path[cap]. Fails the test when the path does not fit or the file cannot be
 * written, so use it inside a test only. */
void test_write_file(const char *dir, const char *name, const void *data, size_t n, char *path, size_t cap);
/* Makes dir/name a FIFO with no writer (replacing a file of that name) and, when path is not
 * NULL, writes its path to path[cap]; then arms alarm(FIFO_TEST_SECONDS), so a reader that
 * would block on the FIFO ends the test with an error (a signal) instead of hanging it. For
 * use inside a test (Check forks each one, so the alarm dies with it); a test that goes on
 * with slow work after its FIFO checks cancels it with alarm(0). */
#define FIFO_TEST_SECONDS 20
void test_mkfifo(const char *dir, const char *name, char *path, size_t cap);
/* test_write_file of the NUL-terminated text, without the path. */
void test_write_text(const char *dir, const char *name, const char *text);

/* Skips, visibly. A test whose data or tool is missing calls test_skip("why") and returns: the
 * reason goes to stderr and to the runner's skip list, and test_skips_end() in the runner's main
 * then prints "SKIP: <reason>" per skip and makes the runner exit 77 (Automake's SKIP) when
 * nothing failed, so a missing dataset never counts as a pass. With OCTET_REQUIRE_ALL=1 (CI
 * sets it: it installs everything) a skip fails the test instead. test_skips_begin() before
 * srunner_run_all sets the list up (a file, since Check runs each test in a child process). */
void test_skips_begin(void);
void test_skip(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The runner's exit status from its failure count: EXIT_FAILURE when any test failed, 77 when
 * none failed but some skipped (each reason printed), else EXIT_SUCCESS. Removes the list. */
int test_skips_end(int failed);

Suite *suite_qmap(void);
Suite *suite_optim(void);
Suite *suite_optim_ref(void);
Suite *suite_parity(void);

#endif
