/*
 * kernels/x86/x86.h - what the x86 level files share: the intrinsics, the pairwise sum of
 * softmax, and the prefetching of a GEMM's next panel.
 */
#ifndef KERNELS_X86_X86_H
#define KERNELS_X86_X86_H

#include "kernels/simd.h"

#if SIMD_BUILD_X86
#if !defined(SIMD_EMULATED) /* the emulated test build gets SIMDe's intrinsics (tests/simde/) */
#include <immintrin.h>
#endif
#include <math.h>
#include <stdint.h>

/* pairwise_sum (kernels/floatops.c) with its 8 running sums in the 8 lanes of a ymm
 * register, and its tree ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) as two horizontal
 * adds: the same bits. AVX: both x86 levels have it. */
static inline float pairwise_sum_x86(const float *a, int n) {
    if (n > 128) {
        const int half = n / 2 - n / 2 % 8;
        return pairwise_sum_x86(a, half) + pairwise_sum_x86(a + half, n - half);
    }
    float s = 0.0f;
    int i = 0;
    if (n >= 8) {
        __m256 r = _mm256_loadu_ps(a);
        for (i = 8; i + 8 <= n; i += 8) r = _mm256_add_ps(r, _mm256_loadu_ps(a + i));
        const __m256 h = _mm256_hadd_ps(r, r), hh = _mm256_hadd_ps(h, h); /* per half: (r0 + r1) + (r2 + r3) */
        s = _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(hh), _mm256_extractf128_ps(hh, 1)));
    }
    for (; i < n; i++) s += a[i];
    return s;
}

/* Asks for the codes of block rb's columns [c0, c1) (and its group shifts) to be brought
 * into the cache: the next panel's, while this one's vectors are multiplied, so that
 * packing it does not wait on memory (the weights of a product stream from DRAM once per
 * chunk of vectors, and the hardware's prefetcher sees too little of that stream). Inlined
 * by force: as a function of its own, gcc finds it has no effect and drops its calls. */
static inline __attribute__((always_inline)) void prefetch_panel(const R4Matrix *w, int rb, int c0, int c1) {
    const char *codes = (const char *)(w->codes + (size_t)rb * r4_block_bytes(w) + (size_t)(c0 / QR_STEP_COLS) * QR_STEP_BYTES);
    for (int col = c0; col < c1 && col < w->cols_pad; col += QR_STEP_COLS, codes += QR_STEP_BYTES)
        _mm_prefetch(codes, _MM_HINT_T0);
    if (w->shifts) _mm_prefetch((const char *)(w->shifts + ((size_t)rb * w->n_groups + c0 / w->group) * 8), _MM_HINT_T0);
}

#endif
#endif
