/*
 * kernels/arm/arm.h - what the ARM level files share: the intrinsics, and the unpacking of
 * 4-bit codes into signed, shifted bytes that the 4-bit kernel (neon.h) and the GEMMs
 * (gemm.h) both do.
 */
#ifndef KERNELS_ARM_ARM_H
#define KERNELS_ARM_ARM_H

#include "kernels/simd.h"

#if SIMD_BUILD_ARM
#if !defined(SIMD_EMULATED) /* the emulated test build gets SIMDe's intrinsics (tests/simde/) */
#include <arm_neon.h>
#endif
#include <string.h>

/* The entries the levels share: neon.c's float and quantizer kernels, which the dotprod and
 * i8mm levels take as they are, and the dotprod level's 4-bit kernel and packing, which the
 * i8mm level takes (r4_finish_neon is gemm.h's). */
int64_t dot_i8_neon(const int8_t *w, const int16_t *a, int n);
float dot_f32_neon(const float *w, const float *x, int n);
void quantize_r4_neon(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax, int rounding);
void swiglu_neon(float *gate, const float *up, int n);
void softmax_neon(float *x, int n, float divisor);
void hadamard_neon(float *v, int n_vecs, int len);
void r4_block_dotprod(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0, int nt);
int r4_pack_dotprod(const R4Acts *x, int t0, int t1);

/* The loops over a tile's vectors and rows must be unrolled for the accumulators to stay in
 * registers; compilers will not do it at -O2 on their own (it grows the code). */
#define UNROLL_TILE _Pragma("GCC unroll 8")

/* Prefetch distance, in bytes ahead in the code stream: a decode step streams every
 * weight once, and the hardware prefetcher alone leaves the loads waiting. */
#define PREFETCH_BYTES 2048

/* The column shifts of columns col .. col + 7 (8 nibbles from cs[col / 2] on, column col in
 * the lowest), as per-byte shift counts in the pattern of the codes: columns 0-3 repeated
 * for every row in *lo, columns 4-7 in *hi. */
static inline void col_shift_bytes(const uint8_t *cs, int col, int8x16_t *lo, int8x16_t *hi) {
    uint32_t packed;
    memcpy(&packed, cs + col / 2, 4);
    const uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(packed));
    /* even columns are the low nibbles, odd ones the high: interleaved, bytes 0-7 are columns 0-7 */
    const uint32x2_t cols = vreinterpret_u32_u8(vzip1_u8(vand_u8(b, vdup_n_u8(15)), vshr_n_u8(b, 4)));
    *lo = vreinterpretq_s8_u32(vdupq_lane_u32(cols, 0));
    *hi = vreinterpretq_s8_u32(vdupq_lane_u32(cols, 1));
}

/* One 16-byte quarter of a step (4 rows x 8 columns of excess-8 nibbles) as signed codes,
 * each shifted left by its byte of slo (columns 0-3, into *lo) or shi (columns 4-7, into
 * *hi): nibble XOR 8 is the code's two's complement in 4 bits, sign-extended by shifting it
 * to the top of its byte and back; |c << s| <= 7 << 4 = 112 is a byte. */
static inline void shifted_codes(uint8x16_t v, int8x16_t slo, int8x16_t shi, int8x16_t *lo, int8x16_t *hi) {
    const int8x16_t signed_codes = vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x88)));
    *lo = vshlq_s8(vshrq_n_s8(vshlq_n_s8(signed_codes, 4), 4), slo);
    *hi = vshlq_s8(vshrq_n_s8(signed_codes, 4), shi);
}

#endif
#endif
