/* check_ops.h: what the ops suites (check_ops*.c, run by run_ops.c) share: the suite
 * constructors, a double copy of a float buffer, comparison against a double-precision reference,
 * and the finite-difference harness that checks every backward pass.
 *
 * The gradient check: a test writes an independent double-precision forward of the op (plain
 * loops, no code from kernels/ops except the dropout mask function, which is tested on its own),
 * picks random weights w of the output's shape and takes loss = sum(out * w). Central differences
 * of that loss in double (h = 1e-6) give dloss/dx to about 1e-8; the op's fp32 backward, fed
 * dout = w, must match them within FD_RTOL relative + FD_ATOL absolute. fp32 rounding in the
 * backward stays below ~1e-5 on these sizes (inputs and weights are O(1)); a real mistake (a
 * missing term, a wrong index, a wrong mask) is off by O(0.1). The bounds sit between the two. */
#ifndef OCTET_CHECK_OPS_H
#define OCTET_CHECK_OPS_H

#include <stdint.h>
#include "device.h"
#include "ops.h"
#include "testlib.h"

#define FD_H 1e-6
#define FD_RTOL 1e-3
#define FD_ATOL 1e-4
/* fp32 forward against the double reference: a few ulp per accumulated term. */
#define FWD_RTOL 1e-4
#define FWD_ATOL 1e-5

Suite *suite_ops_dense(void);
Suite *suite_ops_norm(void);
Suite *suite_ops_attention(void);
Suite *suite_ops_loss(void);
Suite *suite_ops_cast(void);
Suite *suite_threads(void);

/* The CPU device and its ops table, opened once per test process (Check forks per test). */
device *ops_test_device(void);
const ops_table *ops_test_table(void);

/* A dbuf copy of x (free()). The zero-filled and random buffers (fbuf, dbuf, ibuf, frand) and
 * the padding mask are testlib.h's. */
double *to_double(const float *x, int64_t n);

/* Counts elements with |got - want| > atol + rtol*|want| and prints the first five with their
 * index; returns the count. */
int64_t mismatches(const char *what, const float *got, const double *want, int64_t n, double rtol,
                   double atol);

/* A double-precision forward: reads its inputs from ctx, writes the op's output to out. */
typedef void (*ref_forward_fn)(void *ctx, double *out);

typedef struct fd_problem {
    ref_forward_fn ref;
    void *ctx;
    int64_t n_out;
    double *w;   /* (n_out) the loss weights, random N(0,1) */
    double *out; /* (n_out) scratch */
} fd_problem;

/* Sets up a problem with random weights; fd_free releases them. */
void fd_init(fd_problem *p, ref_forward_fn ref, void *ctx, int64_t n_out, test_rng *r);
void fd_free(fd_problem *p);
/* The weights as floats: the dout to feed the backward under test (free()). */
float *fd_dout(const fd_problem *p);
/* loss = sum(out * w) at the current inputs. */
double fd_loss(fd_problem *p);
/* grad (n) = dloss/dx by central differences; x is one of the inputs the reference reads. */
void fd_grad(fd_problem *p, double *x, int64_t n, double *grad);
/* Checks an analytic gradient against the finite differences of x; returns the mismatch count. */
int64_t fd_check(const char *what, fd_problem *p, double *x, const float *analytic, int64_t n);

#endif
