/* vec_ops_probe.c: how many of each AVX-512 instruction the 8-bit Adam step uses this core
 * retires per cycle, alone and mixed in pairs.
 *
 * The 8-bit step on the VBMI path (kernels/optim/optim_cpu.c) is bound by vector execution
 * units, not memory, at 1M parameters. This probe measures the throughput those units give to
 * the step's instruction kinds: byte and word permutes (vpermt2b, vpermb, vpermw,
 * vpmultishiftqb), float multiply, add and max, integer word ops, blends and unpacks. Each
 * line runs 12 independent chains of one instruction (or 6 + 6 of two, interleaved) for 2M
 * iterations and prints core cycles per instruction (per pair for two), with the core clock
 * calibrated against a chain of dependent integer adds (one per cycle). 0.25 means four per
 * cycle, 0.5 two; a pair at 1.0 means the two kinds share the same two units, at 0.5 that they
 * run side by side. bench/RESULTS.md turns these into a cycle floor for the step.
 *
 * Built on request, like the other benchmarks: `make bench/vec_ops_probe`, then run
 * bench/vec_ops_probe from the build directory; it prints one Markdown table.
 * Exit status 0; 77 (and a line on stderr) on a CPU without AVX-512 VBMI or not x86-64. */
#include <stdint.h>
#include <stdio.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <x86intrin.h>

#define ITERS 2000000
#define SINK(x) __asm__ volatile("" : "+v"(x))
#define TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vbmi")))

/* TSC ticks per core cycle: a chain of dependent adds runs at one per cycle. */
static double ticks_per_cycle(void)
{
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        uint64_t x = 1, t0 = __rdtsc();
        for (long i = 0; i < 20000000; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
        double t = (double)(__rdtsc() - t0) / 80000000.0;
        best = t < best ? t : best;
    }
    return best;
}

/* The operands of every instruction, made opaque to the compiler (no constant folding). */
#define OPERANDS                                                                                       \
    __m512i g_a = _mm512_set1_epi32(0x01020304), g_b = _mm512_set1_epi32(0x05060708);                  \
    __m512 g_f = _mm512_set1_ps(1.0000001f);                                                           \
    SINK(g_a);                                                                                         \
    SINK(g_b);                                                                                         \
    SINK(g_f)

/* One instruction kind as a function of the chain's value. */
#define OP_P2B(x) _mm512_permutex2var_epi8(g_a, x, g_b)
#define OP_PB(x) _mm512_permutexvar_epi8(x, g_b)
#define OP_PW(x) _mm512_permutexvar_epi16(x, g_b)
#define OP_MS(x) _mm512_multishift_epi64_epi8(g_b, x)
#define OP_MULPS(x) _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(x), g_f))
#define OP_ADDPS(x) _mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(x), g_f))
#define OP_MAXPS(x) _mm512_castps_si512(_mm512_max_ps(_mm512_castsi512_ps(x), g_f))
#define OP_SQRTPS(x) _mm512_castps_si512(_mm512_sqrt_ps(_mm512_castsi512_ps(x)))
#define OP_DIVPS(x) _mm512_castps_si512(_mm512_div_ps(_mm512_castsi512_ps(x), g_f))
#define OP_MULHI(x) _mm512_mulhi_epu16(x, g_b)
#define OP_PADDW(x) _mm512_add_epi16(x, g_b)
#define OP_PSRLD(x) _mm512_srli_epi32(x, 7)
#define OP_UNPACK(x) _mm512_unpacklo_epi8(x, g_b)
#define OP_BLEND(x) _mm512_mask_blend_epi8((__mmask64)0x5555aaaa5555aaaaull, x, g_b)

/* Twelve independent chains in named registers (an array would live on the stack). */
#define STEP1(E, x) x = E(x); SINK(x)
#define ONE(name, E)                                                                                   \
    TARGET static double one_##name(double tpc)                                                      \
    {                                                                                                  \
        OPERANDS;                                                                                      \
        __m512i a0 = g_a, a1 = g_a, a2 = g_a, a3 = g_a, a4 = g_a, a5 = g_a;                            \
        __m512i a6 = g_a, a7 = g_a, a8 = g_a, a9 = g_a, a10 = g_a, a11 = g_a;                          \
        uint64_t t0 = __rdtsc();                                                                       \
        for (int n = 0; n < ITERS; n++) {                                                              \
            STEP1(E, a0); STEP1(E, a1); STEP1(E, a2); STEP1(E, a3); STEP1(E, a4); STEP1(E, a5);      \
            STEP1(E, a6); STEP1(E, a7); STEP1(E, a8); STEP1(E, a9); STEP1(E, a10); STEP1(E, a11);    \
        }                                                                                              \
        return (double)(__rdtsc() - t0) / tpc / (ITERS * 12.0);                                        \
    }
#define STEP2(E, F, x, y) x = E(x); y = F(y); SINK(x); SINK(y)
#define PAIR(name, E, F)                                                                               \
    TARGET static double pair_##name(double tpc)                                                     \
    {                                                                                                  \
        OPERANDS;                                                                                      \
        __m512i a0 = g_a, a1 = g_a, a2 = g_a, a3 = g_a, a4 = g_a, a5 = g_a;                            \
        __m512i b0 = g_a, b1 = g_a, b2 = g_a, b3 = g_a, b4 = g_a, b5 = g_a;                            \
        uint64_t t0 = __rdtsc();                                                                       \
        for (int n = 0; n < ITERS; n++) {                                                              \
            STEP2(E, F, a0, b0); STEP2(E, F, a1, b1); STEP2(E, F, a2, b2);                             \
            STEP2(E, F, a3, b3); STEP2(E, F, a4, b4); STEP2(E, F, a5, b5);                             \
        }                                                                                              \
        return (double)(__rdtsc() - t0) / tpc / (ITERS * 6.0);                                         \
    }

/* 512-bit loads from L1 (each added into a chain with vpaddw, four per cycle alone): twelve
 * per iteration from six lines, the address hidden from the compiler each time. */
static __m512i load_lines[6] __attribute__((aligned(64)));
#define LOADW(x, k) __asm__ volatile("" : "+r"(mem)); x = _mm512_add_epi16(x, _mm512_load_si512(mem + (k))); SINK(x)
TARGET static double one_load(double tpc)
{
    OPERANDS;
    const __m512i *mem = load_lines;
    __m512i a0 = g_a, a1 = g_a, a2 = g_a, a3 = g_a, a4 = g_a, a5 = g_a;
    __m512i a6 = g_a, a7 = g_a, a8 = g_a, a9 = g_a, a10 = g_a, a11 = g_a;
    (void)g_b, (void)g_f;
    uint64_t t0 = __rdtsc();
    for (int n = 0; n < ITERS; n++) {
        LOADW(a0, 0); LOADW(a1, 1); LOADW(a2, 2); LOADW(a3, 3); LOADW(a4, 4); LOADW(a5, 5);
        LOADW(a6, 0); LOADW(a7, 1); LOADW(a8, 2); LOADW(a9, 3); LOADW(a10, 4); LOADW(a11, 5);
    }
    return (double)(__rdtsc() - t0) / tpc / (ITERS * 12.0);
}

ONE(vpermt2b, OP_P2B)
ONE(vpermb, OP_PB)
ONE(vpermw, OP_PW)
ONE(vpmultishiftqb, OP_MS)
ONE(vmulps, OP_MULPS)
ONE(vaddps, OP_ADDPS)
ONE(vmaxps, OP_MAXPS)
ONE(vsqrtps, OP_SQRTPS)
ONE(vdivps, OP_DIVPS)
ONE(vpmulhuw, OP_MULHI)
ONE(vpaddw, OP_PADDW)
ONE(vpsrld, OP_PSRLD)
ONE(vpunpcklbw, OP_UNPACK)
ONE(vpblendmb, OP_BLEND)
PAIR(vpermt2b_vmulps, OP_P2B, OP_MULPS)
PAIR(vpermt2b_vaddps, OP_P2B, OP_ADDPS)
PAIR(vpermt2b_vpermt2b, OP_P2B, OP_P2B)
PAIR(vpermt2b_vpmultishiftqb, OP_P2B, OP_MS)
PAIR(vpermt2b_vpaddw, OP_P2B, OP_PADDW)
PAIR(vpermt2b_vpblendmb, OP_P2B, OP_BLEND)
PAIR(vsqrtps_vdivps, OP_SQRTPS, OP_DIVPS)
PAIR(vsqrtps_vpermt2b, OP_SQRTPS, OP_P2B)
PAIR(vdivps_vmulps, OP_DIVPS, OP_MULPS)
PAIR(vmulps_vaddps, OP_MULPS, OP_ADDPS)
PAIR(vmulps_vmaxps, OP_MULPS, OP_MAXPS)
PAIR(vaddps_vmaxps, OP_ADDPS, OP_MAXPS)
PAIR(vmulps_vpsrld, OP_MULPS, OP_PSRLD)
PAIR(vaddps_vpsrld, OP_ADDPS, OP_PSRLD)

int main(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vbmi")) {
        fprintf(stderr, "vec_ops_probe: this CPU has no AVX-512 VBMI\n");
        return 77;
    }
    double tpc = ticks_per_cycle();
    printf("| instruction(s) | cycles per instruction (alone) or per pair |\n|---|---:|\n");
#define SHOW(fn, label) printf("| %s | %.3f |\n", label, fn(tpc))
    SHOW(one_vpermt2b, "vpermt2b");
    SHOW(one_vpermb, "vpermb");
    SHOW(one_vpermw, "vpermw");
    SHOW(one_vpmultishiftqb, "vpmultishiftqb");
    SHOW(one_vmulps, "vmulps");
    SHOW(one_vaddps, "vaddps");
    SHOW(one_vmaxps, "vmaxps");
    SHOW(one_vsqrtps, "vsqrtps");
    SHOW(one_vdivps, "vdivps");
    SHOW(one_vpmulhuw, "vpmulhuw");
    SHOW(one_vpaddw, "vpaddw");
    SHOW(one_vpsrld, "vpsrld");
    SHOW(one_vpunpcklbw, "vpunpcklbw");
    SHOW(one_vpblendmb, "vpblendmb");
    SHOW(one_load, "512-bit load + vpaddw");
    SHOW(pair_vpermt2b_vmulps, "vpermt2b + vmulps");
    SHOW(pair_vpermt2b_vaddps, "vpermt2b + vaddps");
    SHOW(pair_vpermt2b_vpermt2b, "vpermt2b + vpermt2b");
    SHOW(pair_vpermt2b_vpmultishiftqb, "vpermt2b + vpmultishiftqb");
    SHOW(pair_vpermt2b_vpaddw, "vpermt2b + vpaddw");
    SHOW(pair_vpermt2b_vpblendmb, "vpermt2b + vpblendmb");
    SHOW(pair_vsqrtps_vdivps, "vsqrtps + vdivps");
    SHOW(pair_vsqrtps_vpermt2b, "vsqrtps + vpermt2b");
    SHOW(pair_vdivps_vmulps, "vdivps + vmulps");
    SHOW(pair_vmulps_vaddps, "vmulps + vaddps");
    SHOW(pair_vmulps_vmaxps, "vmulps + vmaxps");
    SHOW(pair_vaddps_vmaxps, "vaddps + vmaxps");
    SHOW(pair_vmulps_vpsrld, "vmulps + vpsrld");
    SHOW(pair_vaddps_vpsrld, "vaddps + vpsrld");
    printf("(%.3f TSC ticks per core cycle)\n", tpc);
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "vec_ops_probe: x86-64 only\n");
    return 77;
}
#endif
