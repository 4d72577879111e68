/*
 * kernels/x86/x86.h - what the x86 level files share: the intrinsics, and the corrections
 * their r4_block kernels start from.
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

/* The sum of 16 signed codes: vpsadbw of the codes + 128 against 0 (two sums of 8), less
 * 16 * 128. SSE2: every x86-64 CPU has it. */
static inline int sum16_codes(const int8_t *p) {
    const __m128i biased = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8((char)0x80));
    const __m128i sad = _mm_sad_epu8(biased, _mm_setzero_si128());
    return _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 128;
}

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

/* r4_acts_set_corr (kernels/quant.h) for vector t, 16 codes at a time (G a multiple of 16). */
static inline void set_corr_x86(const R4Acts *x, int t) {
    const int8_t *a = x->codes + (size_t)t * x->stride; /* zero past len, up to stride */
    int32_t *corr = x->corr + (size_t)t * x->n_groups;
    if (x->group % 16 != 0) {
        r4_acts_set_corr(x, t);
        return;
    }
    for (int g = 0; g < x->n_groups; g++) {
        int sum = 0;
        for (int i = g * x->group; i < (g + 1) * x->group && i < x->len; i += 16) sum += sum16_codes(a + i);
        corr[g] = -8 * sum;
    }
}
#endif
#endif
