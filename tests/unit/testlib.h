/* testlib.h: helpers shared by the Check suites: a seeded RNG, buffer comparison with the
 * first mismatches printed, ulp distance, and paths to the source and build trees.
 * Every suite constructor is declared here; run_cpu.c / run_cuda.c add them to a runner. */
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

/* Distance in units in the last place between two finite floats (0 when equal, incl. +-0). */
int64_t ulp_distance(float a, float b);

/* Counts elements with |a-b| > atol + rtol*|a|; prints the first few with their index. */
size_t count_mismatches(const char *what, const float *ref, const float *got, size_t n, double atol, double rtol);

/* $OCTET_SRCDIR / $OCTET_BUILDDIR (set by make check), or "." */
const char *test_srcdir(void);
const char *test_builddir(void);

Suite *suite_qmap(void);
Suite *suite_optim(void);
Suite *suite_optim_ref(void);
Suite *suite_parity(void);

#endif
