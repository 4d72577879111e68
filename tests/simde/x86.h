/*
 * tests/simde/x86.h - the x86 intrinsics for the emulated test build (make test's second
 * pass): every kernel file of kernels/x86/ is compiled a second time with this header
 * forced in (-include) instead of <immintrin.h>, so that the AVX2 and AVX-512 levels run,
 * and are checked against the scalar definition, on any CPU.
 *
 * SIMDe (Debian: libsimde-dev) implements the intrinsics in portable C. The version Debian
 * 12 ships (0.7.4) lacks some that the kernels use, and gets a few wrong; those are given
 * below, each written from Intel's description of the instruction (the Intel Intrinsics
 * Guide), one lane at a time. They were found by running the emulated pass on a CPU with
 * every level, where the native pass checks the same kernels: a difference between the
 * two passes is a fault of the emulation. Nothing here is linked into ./run.
 *
 * Wrong in SIMDe 0.7.4 (so replaced here, and not to be used in kernels without a check):
 *   _mm_testz_si128, _mm256_testz_si256   report "all zero" when any 64-bit half is zero
 *   _mm512_roundscale_ps, _pd             read the rounding immediate as a scale
 *   _mm256_maskload_ps                    reads all 8 lanes, past the end of an array
 *                                         (found by make test-asan)
 */
#ifndef TESTS_SIMDE_X86_H
#define TESTS_SIMDE_X86_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lanes.h" /* GAP_LANES, GAP_VEC */

/* Rounding-control constants under their Intel names. */
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#define _MM_FROUND_TO_ZERO SIMDE_MM_FROUND_TO_ZERO
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#define _MM_FROUND_TO_NEG_INF SIMDE_MM_FROUND_TO_NEG_INF
#endif

/* The mask types under their Intel names. */
#define __mmask8 simde__mmask8
#define __mmask16 simde__mmask16
#define __mmask32 simde__mmask32
#define __mmask64 simde__mmask64


/* ptest / vptest: 1 when a AND b is zero in every bit. */
static inline int gap_mm_testz_si128(simde__m128i a, simde__m128i b) {
    GAP_LANES(uint64_t, x, a, 2);
    GAP_LANES(uint64_t, y, b, 2);
    return ((x[0] & y[0]) | (x[1] & y[1])) == 0;
}
#undef _mm_testz_si128
#define _mm_testz_si128 gap_mm_testz_si128

static inline int gap_mm256_testz_si256(simde__m256i a, simde__m256i b) {
    GAP_LANES(uint64_t, x, a, 4);
    GAP_LANES(uint64_t, y, b, 4);
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) any |= x[i] & y[i];
    return any == 0;
}
#undef _mm256_testz_si256
#define _mm256_testz_si256 gap_mm256_testz_si256

/* vrndscaleps with a scale of 0 (imm8 bits 7:4 zero): each float rounded to an integer as
 * imm8 bits 1:0 say (0 nearest even, 1 down, 2 up, 3 toward zero). */
static inline simde__m512 gap_mm512_roundscale_ps(simde__m512 a, int imm8) {
    GAP_LANES(float, x, a, 16);
    float r[16];
    for (int i = 0; i < 16; i++) {
        switch (imm8 & 3) {
        case 0: r[i] = nearbyintf(x[i]); break; /* the default mode: to nearest even */
        case 1: r[i] = floorf(x[i]); break;
        case 2: r[i] = ceilf(x[i]); break;
        default: r[i] = truncf(x[i]); break;
        }
    }
    return GAP_VEC(simde__m512, r);
}
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps gap_mm512_roundscale_ps

static inline simde__m512d gap_mm512_roundscale_pd(simde__m512d a, int imm8) {
    GAP_LANES(double, x, a, 8);
    double r[8];
    for (int i = 0; i < 8; i++) {
        switch (imm8 & 3) {
        case 0: r[i] = nearbyint(x[i]); break;
        case 1: r[i] = floor(x[i]); break;
        case 2: r[i] = ceil(x[i]); break;
        default: r[i] = trunc(x[i]); break;
        }
    }
    return GAP_VEC(simde__m512d, r);
}
#undef _mm512_roundscale_pd
#define _mm512_roundscale_pd gap_mm512_roundscale_pd

/* vpmovsxdq: 8 int32 sign-extended to int64. */
static inline simde__m512i gap_mm512_cvtepi32_epi64(simde__m256i a) {
    GAP_LANES(int32_t, x, a, 8);
    int64_t r[8];
    for (int i = 0; i < 8; i++) r[i] = x[i];
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_cvtepi32_epi64 gap_mm512_cvtepi32_epi64

/* vpmovzxbd: 16 uint8 zero-extended to int32. */
static inline simde__m512i gap_mm512_cvtepu8_epi32(simde__m128i a) {
    GAP_LANES(uint8_t, x, a, 16);
    int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = x[i];
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_cvtepu8_epi32 gap_mm512_cvtepu8_epi32

/* vcvtqq2ps: 8 int64 to float, rounded as the rounding mode says (to nearest even, as C's
 * conversion rounds in the default mode). */
static inline simde__m256 gap_mm512_cvtepi64_ps(simde__m512i a) {
    GAP_LANES(int64_t, x, a, 8);
    float r[8];
    for (int i = 0; i < 8; i++) r[i] = (float)x[i];
    return GAP_VEC(simde__m256, r);
}
#define _mm512_cvtepi64_ps gap_mm512_cvtepi64_ps

/* vcvtdq2ps: 16 int32 to float, rounded to nearest even. */
static inline simde__m512 gap_mm512_cvtepi32_ps(simde__m512i a) {
    GAP_LANES(int32_t, x, a, 16);
    float r[16];
    for (int i = 0; i < 16; i++) r[i] = (float)x[i];
    return GAP_VEC(simde__m512, r);
}
#define _mm512_cvtepi32_ps gap_mm512_cvtepi32_ps

/* The "integer indefinite" 0x80000000 that x86 conversions give for a NaN or a value out of
 * the int32 range. */
static inline int32_t gap_to_int32(double v) {
    return v == v && v > -2147483649.0 && v < 2147483648.0 ? (int32_t)v : INT32_MIN;
}

/* vcvttps2dq: 16 floats to int32, truncated. */
static inline simde__m512i gap_mm512_cvttps_epi32(simde__m512 a) {
    GAP_LANES(float, x, a, 16);
    int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = gap_to_int32(truncf(x[i]));
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_cvttps_epi32 gap_mm512_cvttps_epi32

/* vcvtps2pd: 8 floats to double (exact). */
static inline simde__m512d gap_mm512_cvtps_pd(simde__m256 a) {
    GAP_LANES(float, x, a, 8);
    double r[8];
    for (int i = 0; i < 8; i++) r[i] = x[i];
    return GAP_VEC(simde__m512d, r);
}
#define _mm512_cvtps_pd gap_mm512_cvtps_pd

/* vcvtpd2ps: 8 doubles to float, rounded to nearest even. */
static inline simde__m256 gap_mm512_cvtpd_ps(simde__m512d a) {
    GAP_LANES(double, x, a, 8);
    float r[8];
    for (int i = 0; i < 8; i++) r[i] = (float)x[i];
    return GAP_VEC(simde__m256, r);
}
#define _mm512_cvtpd_ps gap_mm512_cvtpd_ps

/* vcvtpd2dq: 8 doubles to int32, rounded to nearest even. */
static inline simde__m256i gap_mm512_cvtpd_epi32(simde__m512d a) {
    GAP_LANES(double, x, a, 8);
    int32_t r[8];
    for (int i = 0; i < 8; i++) r[i] = gap_to_int32(nearbyint(x[i]));
    return GAP_VEC(simde__m256i, r);
}
#define _mm512_cvtpd_epi32 gap_mm512_cvtpd_epi32

/* vpmovsxwd: 16 int16 sign-extended to int32. */
static inline simde__m512i gap_mm512_cvtepi16_epi32(simde__m256i a) {
    GAP_LANES(int16_t, x, a, 16);
    int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = x[i];
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_cvtepi16_epi32 gap_mm512_cvtepi16_epi32

/* vpcmpd (less than): bit i set when lane i of a < lane i of b, signed. */
static inline simde__mmask16 gap_mm512_cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
    GAP_LANES(int32_t, x, a, 16);
    GAP_LANES(int32_t, y, b, 16);
    simde__mmask16 m = 0;
    for (int i = 0; i < 16; i++) m |= (simde__mmask16)((x[i] < y[i]) << i);
    return m;
}
#define _mm512_cmplt_epi32_mask gap_mm512_cmplt_epi32_mask

/* Masked loads: lanes whose mask bit is set are read, the others are 0 and their memory is
 * not touched (it may not exist). */
static inline simde__m256 gap_mm256_maskload_ps(const float *p, simde__m256i mask) {
    GAP_LANES(int32_t, m, mask, 8);
    float r[8] = {0};
    for (int i = 0; i < 8; i++)
        if (m[i] < 0) r[i] = p[i]; /* the lane's mask is its sign bit */
    return GAP_VEC(simde__m256, r);
}
#undef _mm256_maskload_ps
#define _mm256_maskload_ps gap_mm256_maskload_ps

static inline simde__m512 gap_mm512_maskz_loadu_ps(simde__mmask16 k, const void *p) {
    float r[16] = {0};
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy(&r[i], (const char *)p + 4 * i, 4);
    return GAP_VEC(simde__m512, r);
}
#define _mm512_maskz_loadu_ps gap_mm512_maskz_loadu_ps

static inline simde__m512i gap_mm512_maskz_loadu_epi32(simde__mmask16 k, const void *p) {
    int32_t r[16] = {0};
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy(&r[i], (const char *)p + 4 * i, 4);
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_maskz_loadu_epi32 gap_mm512_maskz_loadu_epi32

static inline simde__m512i gap_mm512_maskz_loadu_epi8(simde__mmask64 k, const void *p) {
    int8_t r[64] = {0};
    for (int i = 0; i < 64; i++)
        if (k >> i & 1) r[i] = ((const int8_t *)p)[i];
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_maskz_loadu_epi8 gap_mm512_maskz_loadu_epi8

/* Masked stores: only the lanes whose mask bit is set are written. */
static inline void gap_mm512_mask_storeu_ps(void *p, simde__mmask16 k, simde__m512 a) {
    GAP_LANES(float, x, a, 16);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)p + 4 * i, &x[i], 4);
}
#define _mm512_mask_storeu_ps gap_mm512_mask_storeu_ps

static inline void gap_mm512_mask_storeu_epi32(void *p, simde__mmask16 k, simde__m512i a) {
    GAP_LANES(int32_t, x, a, 16);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((char *)p + 4 * i, &x[i], 4);
}
#define _mm512_mask_storeu_epi32 gap_mm512_mask_storeu_epi32

/* vpmovdb with a mask: the low byte of each int32 lane whose mask bit is set. */
static inline void gap_mm512_mask_cvtepi32_storeu_epi8(void *p, simde__mmask16 k, simde__m512i a) {
    GAP_LANES(int32_t, x, a, 16);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) ((int8_t *)p)[i] = (int8_t)(x[i] & 0xFF);
}
#define _mm512_mask_cvtepi32_storeu_epi8 gap_mm512_mask_cvtepi32_storeu_epi8

/* vpmovdb: the low byte of each of 16 int32 lanes. */
static inline simde__m128i gap_mm512_cvtepi32_epi8(simde__m512i a) {
    GAP_LANES(int32_t, x, a, 16);
    int8_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (int8_t)(x[i] & 0xFF);
    return GAP_VEC(simde__m128i, r);
}
#define _mm512_cvtepi32_epi8 gap_mm512_cvtepi32_epi8

/* vplzcntd: the leading zero bits of each of 16 int32 lanes (32 for 0). */
static inline simde__m512i gap_mm512_lzcnt_epi32(simde__m512i a) {
    GAP_LANES(uint32_t, x, a, 16);
    int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = x[i] ? __builtin_clz(x[i]) : 32;
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_lzcnt_epi32 gap_mm512_lzcnt_epi32

/* vextractf32x8: the 8 floats of half imm (0 low, 1 high). */
#define _mm512_extractf32x8_ps(a, imm) simde_mm256_castpd_ps(simde_mm512_extractf64x4_pd(simde_mm512_castps_pd(a), imm))

/* vpsrad by an immediate: 16 int32 lanes shifted right arithmetically (counts above 31 give
 * the sign in every bit). */
static inline simde__m512i gap_mm512_srai_epi32(simde__m512i a, unsigned count) {
    GAP_LANES(int32_t, x, a, 16);
    int32_t r[16];
    for (int i = 0; i < 16; i++) r[i] = x[i] < 0 ? ~(int32_t)(~(uint32_t)x[i] >> (count > 31 ? 31 : count))
                                                 : (int32_t)((uint32_t)x[i] >> (count > 31 ? 31 : count));
    return GAP_VEC(simde__m512i, r);
}
#define _mm512_srai_epi32 gap_mm512_srai_epi32

/* vpermilps with an immediate: in each 128-bit lane, float j takes float (imm >> 2j) & 3
 * of the same lane. */
static inline simde__m512 gap_mm512_permute_ps(simde__m512 a, int imm8) {
    GAP_LANES(float, x, a, 16);
    float r[16];
    for (int i = 0; i < 16; i++) r[i] = x[i / 4 * 4 + ((imm8 >> 2 * (i % 4)) & 3)];
    return GAP_VEC(simde__m512, r);
}
#define _mm512_permute_ps gap_mm512_permute_ps

/* vshuff32x4: 128-bit lanes 0 and 1 of the result are lanes imm[1:0] and imm[3:2] of a, 2
 * and 3 are lanes imm[5:4] and imm[7:6] of b. */
static inline simde__m512 gap_mm512_shuffle_f32x4(simde__m512 a, simde__m512 b, int imm8) {
    GAP_LANES(float, x, a, 16);
    GAP_LANES(float, y, b, 16);
    float r[16];
    for (int q = 0; q < 4; q++)
        memcpy(r + 4 * q, (q < 2 ? x : y) + 4 * ((imm8 >> 2 * q) & 3), 4 * sizeof(float));
    return GAP_VEC(simde__m512, r);
}
#define _mm512_shuffle_f32x4 gap_mm512_shuffle_f32x4

#endif
