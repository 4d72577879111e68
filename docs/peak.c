/*
 * docs/peak.c - what one core can do at most, for docs/PERFORMANCE.md (make bench builds
 * and runs it; it is not part of the engine):
 *
 *   clock   a chain of dependent integer additions, one per cycle (an addition's latency is
 *           one cycle on every x86-64 core of this century): additions per second = cycles
 *           per second, the clock the core ran at while measured;
 *   peak    twelve independent chains of the widest integer multiply-add the CPU has:
 *           vpdpbusd on 512 bits (AVX-512 VNNI: 64 int8 multiply-adds an instruction), else
 *           vpmaddubsw on 256 bits (AVX2: 32 int8 products summed in pairs, counted as 32
 *           multiply-adds); instructions per second x multiply-adds per instruction.
 *   units   peak instructions per cycle: how many of those units the core has.
 *
 * Prints one line: "clock_ghz peak_gmacs instructions_per_cycle instruction". Best of 20
 * runs, as a benchmark's noise only ever slows it down.
 */
#define _POSIX_C_SOURCE 199309L
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { ITERS = 20000000, CHAINS = 12 };

/* ITERS x 8 dependent additions; returns their count per second. */
static double additions_per_second(void) {
    uint64_t x = 1;
    const double t0 = now();
    for (long i = 0; i < ITERS; i++)
        __asm__ volatile("add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\t"
                         "add %0, %0\n\tadd %0, %0\n\tadd %0, %0\n\tadd %0, %0"
                         : "+r"(x));
    return 8.0 * ITERS / (now() - t0);
}

/* Twelve accumulators as variables of their own, so that they stay in registers. */
#define EACH(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)

__attribute__((target("avx512f,avx512vnni"))) static double vpdpbusd_per_second(void) {
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
#define DECLARE(k) __m512i acc##k = _mm512_set1_epi32(k); /* distinct, so none is merged */
    EACH(DECLARE)
#undef DECLARE
    const double t0 = now();
    for (long i = 0; i < ITERS / 4; i++) {
#define DP(k) acc##k = _mm512_dpbusd_epi32(acc##k, a, b);
        EACH(DP)
#undef DP
    }
    const double rate = (double)CHAINS * (ITERS / 4) / (now() - t0);
    __m512i sum = _mm512_setzero_si512();
#define SUM(k) sum = _mm512_add_epi32(sum, acc##k);
    EACH(SUM)
#undef SUM
    return _mm_cvtsi128_si32(_mm512_castsi512_si128(sum)) == 42 ? 0 : rate; /* the sums are used */
}

__attribute__((target("avx2"))) static double vpmaddubsw_per_second(void) {
    const __m256i a = _mm256_set1_epi8(1);
#define DECLARE(k) __m256i acc##k = _mm256_set1_epi8(k + 1);
    EACH(DECLARE)
#undef DECLARE
    const double t0 = now();
    for (long i = 0; i < ITERS / 4; i++) {
#define MA(k) acc##k = _mm256_maddubs_epi16(a, acc##k);
        EACH(MA)
#undef MA
    }
    const double rate = (double)CHAINS * (ITERS / 4) / (now() - t0);
    __m256i sum = _mm256_setzero_si256();
#define SUM(k) sum = _mm256_add_epi16(sum, acc##k);
    EACH(SUM)
#undef SUM
    return _mm_cvtsi128_si32(_mm256_castsi256_si128(sum)) == 42 ? 0 : rate;
}

int main(void) {
    __builtin_cpu_init();
    const int vnni = __builtin_cpu_supports("avx512vnni"), avx2 = __builtin_cpu_supports("avx2");
    if (!vnni && !avx2) {
        fprintf(stderr, "peak: this CPU has neither AVX-512 VNNI nor AVX2\n");
        return 1;
    }
    double clock = 0, rate = 0;
    for (int run = 0; run < 20; run++) {
        const double c = additions_per_second(), r = vnni ? vpdpbusd_per_second() : vpmaddubsw_per_second();
        clock = c > clock ? c : clock;
        rate = r > rate ? r : rate;
    }
    const int macs = vnni ? 64 : 32;
    printf("%.2f %.1f %.2f %s\n", clock / 1e9, rate * macs / 1e9, rate / clock, vnni ? "vpdpbusd" : "vpmaddubsw");
    return 0;
}
