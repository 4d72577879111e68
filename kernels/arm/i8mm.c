/*
 * kernels/arm/i8mm.c - the i8mm level: the int8 matrix multiply-accumulate of ARMv8.6
 * (optional from ARMv8.2; compiled with -march=armv8.2-a+dotprod+i8mm, only called after
 * CPU detection says so): Apple M2 and later, Graviton 3 and later, Neoverse N2 and V1.
 * Its own is the batched product (GEMM); it borrows the other entries from dotprod.c (the
 * 4-bit kernel, the batch's preparation) and neon.c (the rest).
 *
 * The GEMM is kernels/arm/gemm.h's (which says why it is exact) with smmla: one
 * instruction multiplies a 2 x 8 matrix of signed bytes by an 8 x 2 one and adds the 2 x 2
 * products, 8 multiply-adds each, to the four 32-bit lanes of its accumulator: twice the
 * work of an sdot. Per unit of 16 columns, the two vectors' codes are interleaved in 8-byte
 * halves (zip1 and zip2 of the two units: columns 0-7 of each, then 8-15), which is the 2 x
 * 8 operand; a panel register holds 2 rows x 8 columns of w', the other; the lanes of a
 * product are (vector, row) = (0, 2p), (0, 2p + 1), (1, 2p), (1, 2p + 1), which are
 * multiplied by the vectors' multipliers m, m, m', m'. Per 16 rows x 16 columns x 2
 * vectors: 16 smmla and 8 mla (sdot: 32 and 8).
 */
#include "kernels/arm/arm.h"

#if SIMD_BUILD_ARM

#include "kernels/arm/gemm.h"

/* A unit's registers: w[2p + h] holds rows 2p and 2p + 1, columns 8h .. 8h + 7 (one row per
 * 8 bytes): the weights' operand of one smmla. A step's lo and hi (rows 4q .. 4q + 3, 4
 * columns each) interleaved by 32-bit lanes give rows 4q, 4q + 1 and 4q + 2, 4q + 3. */
static inline void panel_store(PanelUnit *unit, int q, int half, int8x16_t lo, int8x16_t hi) {
    const int32x4_t l = vreinterpretq_s32_s8(lo), h = vreinterpretq_s32_s8(hi);
    unit->w[2 * (2 * q) + half] = vreinterpretq_s8_s32(vzip1q_s32(l, h));
    unit->w[2 * (2 * q + 1) + half] = vreinterpretq_s8_s32(vzip2q_s32(l, h));
}

/* The tile (gemm.h): 8 row pairs x 2 vectors, a running sum and a row sum each (a lone
 * vector is paired with itself, and its second copy's sums are not stored). */
static inline __attribute__((always_inline)) void gemm_tile(int64_t *acc, int live, const PanelUnit *panel, int units,
                                                            const int8_t *a, size_t a_stride, const uint32_t *m,
                                                            size_t m_stride, const int NT) {
    const int8_t *a1 = NT == 2 ? a + a_stride : a;
    const uint32_t *m1 = NT == 2 ? m + m_stride : m;
    int32x4_t run[8];
    uint32x4_t sum[8];
    UNROLL_TILE
    for (int p = 0; p < 8; p++) run[p] = vdupq_n_s32(0), sum[p] = vdupq_n_u32(0);
    for (int u = 0; u < units; u++) {
        const int64x2_t c0 = vreinterpretq_s64_s8(vld1q_s8(a + GEMM_UNIT * u));
        const int64x2_t c1 = vreinterpretq_s64_s8(vld1q_s8(a1 + GEMM_UNIT * u));
        const int8x16_t lo = vreinterpretq_s8_s64(vzip1q_s64(c0, c1)), hi = vreinterpretq_s8_s64(vzip2q_s64(c0, c1));
        const uint32x4_t mult = vcombine_u32(vdup_n_u32(m[u]), vdup_n_u32(m1[u]));
        UNROLL_TILE
        for (int p = 0; p < 8; p++) {
            run[p] = vmmlaq_s32(vmmlaq_s32(run[p], lo, panel[u].w[2 * p]), hi, panel[u].w[2 * p + 1]);
            sum[p] = vmlaq_u32(sum[p], vreinterpretq_u32_s32(run[p]), mult);
        }
    }
    UNROLL_TILE
    for (int p = 0; p < 8; p++) { /* lanes 0, 1: the first vector's rows 2p, 2p + 1; 2, 3: the second's */
        const int32x4_t s = vreinterpretq_s32_u32(sum[p]);
        const int64x2_t first = vmovl_s32(vget_low_s32(s)), second = vmovl_high_s32(s);
        int64_t *out = acc + 2 * p;
        vst1q_s64(out, live ? vaddq_s64(vld1q_s64(out), first) : first);
        if (NT == 2) vst1q_s64(out + QR_BLOCK_ROWS, live ? vaddq_s64(vld1q_s64(out + QR_BLOCK_ROWS), second) : second);
    }
}

const KernelTable kernels_i8mm = {.name = "i8mm",
                                  .r4_block = r4_block_dotprod,
                                  .r4_finish = r4_finish_neon,
                                  .dot_i8 = dot_i8_neon,
                                  .dot_f32 = dot_f32_neon,
                                  .quantize_r4 = quantize_r4_neon,
                                  .r4_pack = r4_pack_dotprod,
                                  .r4_gemm = r4_gemm_level,
                                  .swiglu = swiglu_neon,
                                  .softmax = softmax_neon,
                                  .hadamard = hadamard_neon};
#endif
