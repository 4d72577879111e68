/*
 * kernels/arm/dotprod.c - the dotprod level: ARMv8.2's dot product instructions (compiled
 * with -march=armv8.2-a+dotprod; only called after CPU detection says so): Apple M1 and
 * later, Graviton 2 and later, Raspberry Pi 5's Cortex-A76. It borrows every entry but the
 * 4-bit kernel from neon.c (the finish, both dot products, the quantizer, the batch's
 * preparation, SwiGLU, softmax).
 *
 * The 4-bit kernel is kernels/arm/neon.h's (which says why it is exact) with this dot8:
 * sdot multiplies each 32-bit lane's 4 signed bytes by 4 activation codes (one 32-bit lane
 * of a, broadcast) and adds the 4 products to the lane: a row's 4 columns per instruction.
 */
#include "kernels/simd.h"

#if SIMD_BUILD_ARM
#if !defined(SIMD_EMULATED) /* the emulated test build gets SIMDe's intrinsics (tests/simde/) */
#include <arm_neon.h>
#endif

static inline int32x4_t dot8(int32x4_t acc, int8x16_t lo, int8x16_t hi, int8x8_t a) {
    return vdotq_lane_s32(vdotq_lane_s32(acc, lo, a, 0), hi, a, 1);
}

#include "kernels/arm/neon.h" /* r4_block_level, around this dot8 */

/* Borrowed from neon.c. */
void r4_finish_neon(float *y, size_t y_stride, const int64_t *acc, int nt, int rows, const float *sa,
                    const float *sw);
int64_t dot_i8_neon(const int8_t *w, const int16_t *a, int n);
float dot_f32_neon(const float *w, const float *x, int n);
void quantize_r4_neon(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax, int rounding);
int r4_pack_neon(const R4Acts *x, int t0, int t1);
void swiglu_neon(float *gate, const float *up, int n);
void softmax_neon(float *x, int n, float divisor);
void hadamard_neon(float *v, int n_vecs, int len);

const KernelTable kernels_dotprod = {.name = "dotprod",
                                     .r4_block = r4_block_level,
                                     .r4_finish = r4_finish_neon,
                                     .dot_i8 = dot_i8_neon,
                                     .dot_f32 = dot_f32_neon,
                                     .quantize_r4 = quantize_r4_neon,
                                     .r4_pack = r4_pack_neon,
                                     .swiglu = swiglu_neon,
                                     .softmax = softmax_neon,
                                     .hadamard = hadamard_neon};
#endif
