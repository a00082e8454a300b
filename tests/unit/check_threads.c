/* check_threads.c: the thread policy (kernels/threads.h) and what it promises of the CPU ops.
 *
 * The policy's arithmetic: workers x threads <= cores for the default share, an explicit count
 * honoured, bad input refused; the default is the affinity mask's CPU count (the test narrows
 * its own mask; Check forks every test, so the mask dies with it), whatever OMP_NUM_THREADS
 * says. octet_threads_set really changes what OpenMP and OpenBLAS use, read back from them
 * (omp_get_max_threads, the size of a team, openblas_get_num_threads), per calling thread for
 * OpenMP (a second pthread keeps its own count, as two octetd workers do), and gemm_cpu puts
 * OpenBLAS back to one thread when someone changed it. The ops' results do not depend on the
 * thread count: tiled GEMMs (row and column tiles, every transpose, beta 0 and 1) and the
 * parallel attention heads, forward and backward, are compared bit for bit at 1, 2, 3 and 4
 * threads, and the tiled GEMMs against a double reference, so a tile at the wrong offset cannot
 * pass by being wrong the same way at every count. No test here times anything. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "config.h"
#include "check_ops.h"
#include "threads.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(HAVE_OPENBLAS_GET_PARALLEL)
void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void);
/* OpenBLAS's pthreads build (Debian's default): its count is the process's, settable. */
static int blas_pthreads(void) { return openblas_get_parallel() == 1; }
#else
static int blas_pthreads(void) { return 0; }
#endif

/* ------------------------------------------------------------------ arithmetic */

START_TEST(test_share_keeps_workers_times_threads_within_cores)
{
    ck_assert_int_eq(octet_threads_share(2, 1, 0), 2);
    ck_assert_int_eq(octet_threads_share(2, 2, 0), 1);
    ck_assert_int_eq(octet_threads_share(16, 3, 0), 5);
    ck_assert_int_eq(octet_threads_share(2, 4, 0), 1); /* more workers than cores: one each */
    ck_assert_int_eq(octet_threads_share(1, 1, 0), 1);
    for (int cores = 1; cores <= 130; cores++)
        for (int workers = 1; workers <= 20; workers++) {
            int t = octet_threads_share(cores, workers, 0);
            ck_assert_int_ge(t, 1);
            if (cores >= workers) {
                ck_assert_msg(workers * t <= cores, "%d workers x %d threads > %d cores", workers, t, cores);
                ck_assert_msg(workers * (t + 1) > cores, "%d workers x %d threads leave a thread per worker idle "
                              "on %d cores", workers, t, cores);
            }
        }
}
END_TEST

START_TEST(test_share_honours_an_explicit_count_and_refuses_bad_input)
{
    ck_assert_int_eq(octet_threads_share(2, 2, 3), 3); /* --threads wins, oversubscribed or not */
    ck_assert_int_eq(octet_threads_share(64, 1, 1), 1);
    ck_assert_int_eq(octet_threads_share(0, 1, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_threads_share(2, 0, 0), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_threads_share(2, 1, -1), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_threads_share(2, 1, OCTET_THREADS_MAX + 1), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_threads_set(-1), OCTET_ERR_ARG);
    ck_assert_int_eq(octet_threads_set(OCTET_THREADS_MAX + 1), OCTET_ERR_ARG);
}
END_TEST

/* ------------------------------------------------------------------ the default */

START_TEST(test_default_is_the_affinity_mask)
{
    cpu_set_t mine, one;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
    int n = CPU_COUNT(&mine);
    setenv("OMP_NUM_THREADS", "7", 1); /* the policy's default is the mask, not the environment */
    ck_assert_int_eq(octet_threads_available(), n);
    ck_assert_int_eq(octet_threads_set(0), n);
    ck_assert_int_eq(octet_threads_current(), n);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &mine))
            first = c;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    ck_assert_int_eq(octet_threads_available(), 1);
    ck_assert_int_eq(octet_threads_set(0), 1);
    ck_assert_int_eq(octet_threads_current(), 1);
}
END_TEST

/* ------------------------------------------------------------------ OpenMP and OpenBLAS */

/* The size of a team started from the calling thread. */
static int team_size(void)
{
    int n = 1;
#ifdef _OPENMP
#pragma omp parallel
    {
#pragma omp single
        n = omp_get_num_threads();
    }
#endif
    return n;
}

START_TEST(test_set_changes_openmp_and_openblas)
{
#ifndef _OPENMP
    return; /* a build without OpenMP: one thread, nothing to change */
#else
    if (blas_pthreads())
        openblas_set_num_threads(2); /* as OPENBLAS_NUM_THREADS=2 would */
    omp_set_num_threads(5);          /* as OMP_NUM_THREADS=5 would */
    ck_assert_int_eq(octet_threads_set(3), 3);
    ck_assert_int_eq(omp_get_max_threads(), 3);
    ck_assert_int_eq(team_size(), 3);
    if (blas_pthreads())
        ck_assert_int_eq(octet_threads_blas(), 1);
    ck_assert_int_eq(octet_threads_set(1), 1);
    ck_assert_int_eq(omp_get_max_threads(), 1);
    ck_assert_int_eq(team_size(), 1);
    ck_assert_int_eq(octet_threads_set(-2), OCTET_ERR_ARG); /* refused: nothing changes */
    ck_assert_int_eq(omp_get_max_threads(), 1);
#endif
}
END_TEST

typedef struct worker_seen {
    int chosen, max_threads, team;
} worker_seen;

static void *worker_main(void *arg)
{
    worker_seen *w = arg;
    w->chosen = octet_threads_set(1);
    w->max_threads = octet_threads_current();
    w->team = team_size();
    return NULL;
}

START_TEST(test_set_is_per_calling_thread)
{
#ifdef _OPENMP
    ck_assert_int_eq(octet_threads_set(2), 2);
    worker_seen w = {0, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, worker_main, &w), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(w.chosen, 1);
    ck_assert_int_eq(w.max_threads, 1);
    ck_assert_int_eq(w.team, 1);
    ck_assert_int_eq(omp_get_max_threads(), 2); /* this thread keeps its own share */
    ck_assert_int_eq(team_size(), 2);
#endif
}
END_TEST

START_TEST(test_gemm_puts_openblas_back_to_one_thread)
{
    if (!blas_pthreads())
        return; /* only OpenBLAS's pthreads build has a process-wide count to put back */
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(HAVE_OPENBLAS_GET_PARALLEL)
    openblas_set_num_threads(2);
    ck_assert_int_eq(octet_threads_blas(), 2);
    float a[4] = {1, 2, 3, 4}, c[4];
    ck_assert_int_eq(ops_test_table()->gemm(ops_test_device(), c, a, a, 2, 2, 2, 0, 0, 1.0f, 0.0f), OCTET_OK);
    ck_assert_int_eq(octet_threads_blas(), 1);
#endif
}
END_TEST

/* ------------------------------------------------------------------ same bits at any count */

/* c = alpha op(a) op(b) + beta c0 in double. */
static void gemm_ref(double *c, const float *a, const float *b, const float *c0, int M, int N, int K, int ta,
                     int tb, double alpha, double beta)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? a[(int64_t)k * M + i] : a[(int64_t)i * K + k]) *
                     (tb ? b[(int64_t)j * K + k] : b[(int64_t)k * N + j]);
            c[(int64_t)i * N + j] = alpha * s + beta * c0[(int64_t)i * N + j];
        }
}

/* Shapes tiled by gemm_cpu (OCTET_PAR_GEMM_MIN multiply-adds and more): 4 row tiles, 2 column
 * tiles (the MLP's 64-row batch), 16 row tiles; and one kept whole. */
static const int tiled_shapes[][3] = {{512, 256, 128}, {64, 512, 256}, {2048, 64, 512}, {64, 100, 128}};

START_TEST(test_gemm_same_bits_at_any_thread_count)
{
    const ops_table *ops = ops_test_table();
    int M = tiled_shapes[_i][0], N = tiled_shapes[_i][1], K = tiled_shapes[_i][2];
    int64_t mn = (int64_t)M * N;
    test_rng r;
    rng_seed(&r, 7000 + (uint64_t)_i);
    float *a = frand(&r, (int64_t)M * K, 1.0f), *b = frand(&r, (int64_t)K * N, 1.0f), *c0 = frand(&r, mn, 1.0f);
    float *c1 = fbuf(mn), *cn = fbuf(mn);
    double *want = dbuf(mn);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        float beta = ta == tb ? 1.0f : 0.0f, alpha = t == 3 ? 0.5f : 1.0f;
        memcpy(c1, c0, sizeof(float) * (size_t)mn);
        ck_assert_int_eq(octet_threads_set(1), 1);
        ck_assert_int_eq(ops->gemm(ops_test_device(), c1, a, b, M, N, K, ta, tb, alpha, beta), OCTET_OK);
        gemm_ref(want, a, b, c0, M, N, K, ta, tb, alpha, beta);
        char what[96];
        snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d", M, N, K, ta, tb);
        ck_assert_int_eq(mismatches(what, c1, want, mn, FWD_RTOL, 1e-4), 0);
        for (int threads = 2; threads <= 4; threads++) {
            memcpy(cn, c0, sizeof(float) * (size_t)mn);
            ck_assert_int_eq(octet_threads_set(threads), threads);
            ck_assert_int_eq(ops->gemm(ops_test_device(), cn, a, b, M, N, K, ta, tb, alpha, beta), OCTET_OK);
            ck_assert_msg(memcmp(c1, cn, sizeof(float) * (size_t)mn) == 0, "%s: %d threads changed the bits", what,
                          threads);
        }
    }
    free(a), free(b), free(c0), free(c1), free(cn), free(want);
}
END_TEST

/* One attention forward and backward (dropout on) at `threads`; every output into out[0..5]. */
static void attention_at(int threads, int B, int T, int C, int H, float *const q[3], const float *dout,
                         float *res[6])
{
    const ops_table *ops = ops_test_table();
    device *d = ops_test_device();
    int64_t att_n = (int64_t)B * H * T * T;
    ops_dropout drop = {0.1f, 77, 0};
    float *work = fbuf(att_n);
    ck_assert_int_eq(octet_threads_set(threads), threads);
    ck_assert_int_eq(ops->attention_forward(d, res[0], res[1], work, q[0], q[1], q[2], NULL, B, T, C, H, drop),
                     OCTET_OK);
    ck_assert_int_eq(ops->attention_backward(d, res[2], res[3], res[4], work, dout, q[0], q[1], q[2], res[1], NULL, B,
                                             T, C, H, drop),
                     OCTET_OK);
    memcpy(res[5], work, sizeof(float) * (size_t)att_n);
    free(work);
}

START_TEST(test_attention_same_bits_at_any_thread_count)
{
    /* 16 heads of 64x64x64: OCTET_PAR_GEMM_MIN multiply-adds per product over all heads, so the
     * heads run in parallel from two threads on */
    int B = 8, T = 64, C = 128, H = 2;
    ck_assert((int64_t)B * H * T * T * (C / H) >= OCTET_PAR_GEMM_MIN);
    int64_t btc = (int64_t)B * T * C, att_n = (int64_t)B * H * T * T;
    test_rng r;
    rng_seed(&r, 4242);
    float *q[3] = {frand(&r, btc, 1.0f), frand(&r, btc, 1.0f), frand(&r, btc, 1.0f)};
    float *dout = frand(&r, btc, 1.0f);
    int64_t sizes[6] = {btc, att_n, btc, btc, btc, att_n};
    const char *names[6] = {"out", "att", "dq", "dk", "dv", "work"};
    float *one[6], *many[6];
    for (int i = 0; i < 6; i++)
        one[i] = fbuf(sizes[i]), many[i] = fbuf(sizes[i]);
    attention_at(1, B, T, C, H, q, dout, one);
    for (int threads = 2; threads <= 4; threads++) {
        attention_at(threads, B, T, C, H, q, dout, many);
        for (int i = 0; i < 6; i++)
            ck_assert_msg(memcmp(one[i], many[i], sizeof(float) * (size_t)sizes[i]) == 0,
                          "attention %s: %d threads changed the bits", names[i], threads);
    }
    for (int i = 0; i < 6; i++)
        free(one[i]), free(many[i]);
    for (int i = 0; i < 3; i++)
        free(q[i]);
    free(dout);
}
END_TEST

Suite *suite_threads(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, test_share_keeps_workers_times_threads_within_cores);
    tcase_add_test(tc, test_share_honours_an_explicit_count_and_refuses_bad_input);
    tcase_add_test(tc, test_default_is_the_affinity_mask);
    tcase_add_test(tc, test_set_changes_openmp_and_openblas);
    tcase_add_test(tc, test_set_is_per_calling_thread);
    tcase_add_test(tc, test_gemm_puts_openblas_back_to_one_thread);
    suite_add_tcase(s, tc);
    tc = tcase_create("same bits");
    tcase_add_loop_test(tc, test_gemm_same_bits_at_any_thread_count, 0, 4);
    tcase_add_test(tc, test_attention_same_bits_at_any_thread_count);
    suite_add_tcase(s, tc);
    return s;
}
