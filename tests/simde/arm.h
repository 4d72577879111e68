/*
 * tests/simde/arm.h - the ARM NEON intrinsics for the emulated test build (make test's
 * second pass): every kernel file of kernels/arm/ is compiled a second time with this
 * header forced in (-include) instead of <arm_neon.h>, so that the neon, dotprod and i8mm
 * levels run, and are checked against the scalar definition, on any CPU.
 *
 * SIMDe (Debian: libsimde-dev) implements the intrinsics in portable C. The version Debian
 * 12 ships (0.7.4) lacks some that the kernels use, and shifts negative values left in C
 * (undefined behaviour, which make test-asan's sanitizer stops at) for the shifts that
 * follow; those are given below, each written from Arm's description of the instruction
 * (the Arm Architecture Reference Manual), one lane at a time. The emulation is checked the way the x86 one is: make test-arm runs the
 * same every_level tests natively under qemu-aarch64, where a difference from the emulated
 * pass would be a fault of the emulation. Nothing here is linked into ./run.
 */
#ifndef TESTS_SIMDE_ARM_H
#define TESTS_SIMDE_ARM_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lanes.h" /* GAP_LANES, GAP_VEC */


/* sshl: each signed lane shifted by the signed low byte of the matching lane of b, left when
 * it is positive (bits past the lane are lost: two's complement, done on the unsigned
 * value), right arithmetically when negative. */
static inline int64_t gap_sshl(int64_t x, int bits, int8_t by) {
    const uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    if (by >= bits) return 0;
    if (by >= 0) { /* the low `bits` bits of x << by, sign-extended from there */
        const uint64_t v = ((uint64_t)x << by) & mask, sign = 1ull << (bits - 1);
        return (int64_t)((v ^ sign) - sign);
    }
    return by <= -bits ? (x < 0 ? -1 : 0) : x >> -by; /* arithmetic: gcc and clang shift signs in */
}

static inline simde_int32x4_t gap_vshlq_s32(simde_int32x4_t a, simde_int32x4_t b) {
    GAP_LANES(int32_t, x, a, 4);
    GAP_LANES(int32_t, y, b, 4);
    int32_t r[4];
    for (int i = 0; i < 4; i++) r[i] = (int32_t)gap_sshl(x[i], 32, (int8_t)y[i]);
    return GAP_VEC(simde_int32x4_t, r);
}
#undef vshlq_s32
#define vshlq_s32 gap_vshlq_s32

static inline simde_int8x16_t gap_vshlq_s8(simde_int8x16_t a, simde_int8x16_t b) {
    GAP_LANES(int8_t, x, a, 16);
    GAP_LANES(int8_t, y, b, 16);
    int8_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (int8_t)gap_sshl(x[i], 8, y[i]);
    return GAP_VEC(simde_int8x16_t, r);
}
#undef vshlq_s8
#define vshlq_s8 gap_vshlq_s8

/* shl by an immediate: the same, left only. */
static inline simde_int8x16_t gap_vshlq_n_s8(simde_int8x16_t a, int n) {
    GAP_LANES(int8_t, x, a, 16);
    int8_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (int8_t)gap_sshl(x[i], 8, (int8_t)n);
    return GAP_VEC(simde_int8x16_t, r);
}
#undef vshlq_n_s8
#define vshlq_n_s8 gap_vshlq_n_s8

/* fdiv: lane by lane, IEEE division. */
static inline simde_float32x4_t gap_vdivq_f32(simde_float32x4_t a, simde_float32x4_t b) {
    GAP_LANES(float, x, a, 4);
    GAP_LANES(float, y, b, 4);
    float r[4];
    for (int i = 0; i < 4; i++) r[i] = x[i] / y[i];
    return GAP_VEC(simde_float32x4_t, r);
}
#define vdivq_f32 gap_vdivq_f32

static inline simde_float64x2_t gap_vdivq_f64(simde_float64x2_t a, simde_float64x2_t b) {
    GAP_LANES(double, x, a, 2);
    GAP_LANES(double, y, b, 2);
    double r[2];
    for (int i = 0; i < 2; i++) r[i] = x[i] / y[i];
    return GAP_VEC(simde_float64x2_t, r);
}
#define vdivq_f64 gap_vdivq_f64

/* fcvtas: each float to int32, rounded to nearest with ties away from zero (roundf),
 * saturated to the int32 range; a NaN gives 0. */
static inline simde_int32x4_t gap_vcvtaq_s32_f32(simde_float32x4_t a) {
    GAP_LANES(float, x, a, 4);
    int32_t r[4];
    for (int i = 0; i < 4; i++) {
        const float v = roundf(x[i]);
        r[i] = v != v ? 0 : v >= 2147483648.0f ? INT32_MAX : v < -2147483648.0f ? INT32_MIN : (int32_t)v;
    }
    return GAP_VEC(simde_int32x4_t, r);
}
#define vcvtaq_s32_f32 gap_vcvtaq_s32_f32

/* fcvtl2: the upper 2 floats to double (exact). */
static inline simde_float64x2_t gap_vcvt_high_f64_f32(simde_float32x4_t a) {
    GAP_LANES(float, x, a, 4);
    const double r[2] = {x[2], x[3]};
    return GAP_VEC(simde_float64x2_t, r);
}
#define vcvt_high_f64_f32 gap_vcvt_high_f64_f32

/* smmla: the 2 x 8 matrix of signed bytes in a (row i in bytes 8i .. 8i + 7) times the 8 x 2
 * one in b (column j in bytes 8j .. 8j + 7), added to the 2 x 2 int32 matrix r (row-major:
 * lane 2i + j). */
static inline simde_int32x4_t gap_vmmlaq_s32(simde_int32x4_t r, simde_int8x16_t a, simde_int8x16_t b) {
    GAP_LANES(int32_t, acc, r, 4);
    GAP_LANES(int8_t, x, a, 16);
    GAP_LANES(int8_t, y, b, 16);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 8; k++) acc[2 * i + j] += (int32_t)x[8 * i + k] * y[8 * j + k];
    return GAP_VEC(simde_int32x4_t, acc);
}
#define vmmlaq_s32 gap_vmmlaq_s32

#endif
