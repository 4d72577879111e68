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
#include <stdint.h>

/* The sum of 16 signed codes: vpsadbw of the codes + 128 against 0 (two sums of 8), less
 * 16 * 128. SSE2: every x86-64 CPU has it. */
static inline int sum16_codes(const int8_t *p) {
    const __m128i biased = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8((char)0x80));
    const __m128i sad = _mm_sad_epu8(biased, _mm_setzero_si128());
    return _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 128;
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
