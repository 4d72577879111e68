/*
 * kernels/arm/dotprod.c - the dotprod level: ARMv8.2's dot product instructions (compiled
 * with -march=armv8.2-a+dotprod; only called after CPU detection says so): Apple M1 and
 * later, Graviton 2 and later, Raspberry Pi 5's Cortex-A76. Its own are the 4-bit kernel,
 * the batch's preparation and the batched product (GEMM); it borrows the other entries
 * from neon.c (the finish, both dot products, the quantizer, SwiGLU, softmax, the rotation).
 *
 * The 4-bit kernel is kernels/arm/neon.h's (which says why it is exact) with this dot8:
 * sdot multiplies each 32-bit lane's 4 signed bytes by 4 activation codes (one 32-bit lane
 * of a, broadcast) and adds the 4 products to the lane: a row's 4 columns per instruction.
 * The GEMM is further down.
 */
#include "kernels/arm/arm.h"

#if SIMD_BUILD_ARM

static inline int32x4_t dot8(int32x4_t acc, int8x16_t lo, int8x16_t hi, int8x8_t a) {
    return vdotq_lane_s32(vdotq_lane_s32(acc, lo, a, 0), hi, a, 1);
}

#include "kernels/arm/neon.h" /* r4_block_level, around this dot8 */

/* The 4-bit kernel under a name of its own, for the i8mm level to borrow. */
void r4_block_dotprod(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0, int nt) {
    r4_block_level(acc, w, rb, x, t0, nt);
}

/* ------------------------------------------------------------------ batched products (GEMM)
 *
 * kernels/arm/gemm.h's, with sdot by element: per unit, a row quad's 4 registers (4 rows x 4
 * columns each) by the unit's 16 codes of one vector, 4 at a time, into the quad's running
 * sum. Per 16 rows x 16 columns x 1 vector: 16 sdot and 4 mla.
 */
#include "kernels/arm/gemm.h"

/* The preparation of a batch for r4_block (the corrections) and for the GEMMs of this level
 * and i8mm's: per vector t and unit u, gemm_words[t * gemm_stride + u] = m_u (gemm.h,
 * kernels/qformat.h). Activation shifts are at most 12 (docs/SPEC.md), so 2^sa is a 32-bit
 * word. A group size that is not a multiple of 16 is not the GEMMs': -1. */
int r4_pack_dotprod(const R4Acts *x, int t0, int t1) {
    const int G = x->group, units = (x->len + GEMM_UNIT - 1) / GEMM_UNIT;
    for (int t = t0; t < t1; t++) {
        if (G % GEMM_UNIT != 0) {
            r4_acts_set_corr(x, t);
            continue;
        }
        const int8_t *a = x->codes + (size_t)t * x->stride; /* zero past len, up to stride (64 | stride) */
        const int32_t *sa = x->shifts + (size_t)t * x->n_groups;
        int32_t *corr = x->corr + (size_t)t * x->n_groups;
        uint32_t *m = (uint32_t *)x->gemm_words + (size_t)t * x->gemm_stride;
        memset(corr, 0, (size_t)x->n_groups * sizeof *corr);
        for (int u = 0; u < units; u++) {
            const int g = u * GEMM_UNIT / G;
            corr[g] -= 8 * vaddlvq_s8(vld1q_s8(a + u * GEMM_UNIT));
            const int last = u + 1 == units || (u + 1) % PANEL_UNITS == 0;
            m[u] = ((uint32_t)1 << sa[g]) - (last ? 0 : (uint32_t)1 << sa[(u + 1) * GEMM_UNIT / G]);
        }
    }
    return G % GEMM_UNIT == 0 ? 0 : -1;
}

/* A unit's registers: w[4q + k] holds rows 4q .. 4q + 3, columns 4k .. 4k + 3: the operand
 * of one sdot. */
static inline void panel_store(PanelUnit *unit, int q, int half, int8x16_t lo, int8x16_t hi) {
    unit->w[4 * q + 2 * half] = lo;
    unit->w[4 * q + 2 * half + 1] = hi;
}

/* One unit for one row quad: the running sum plus the unit's 16 columns of w' times its 16
 * activation codes a. */
static inline int32x4_t dot16(int32x4_t run, const int8x16_t w[4], int8x16_t a) {
    run = vdotq_laneq_s32(run, w[0], a, 0);
    run = vdotq_laneq_s32(run, w[1], a, 1);
    run = vdotq_laneq_s32(run, w[2], a, 2);
    return vdotq_laneq_s32(run, w[3], a, 3);
}

/* The tile (gemm.h): 4 row quads x NT vectors, a running sum and a row sum each. One unit
 * per pass: gcc regroups the multiply-adds of two into a multiply, a multiply-add and an
 * add. */
static inline __attribute__((always_inline)) void gemm_tile(int64_t *acc, int live, const PanelUnit *panel, int units,
                                                            const int8_t *a, size_t a_stride, const uint32_t *m,
                                                            size_t m_stride, const int NT) {
    int32x4_t run[GEMM_TILE][4];
    uint32x4_t sum[GEMM_TILE][4];
    UNROLL_TILE
    for (int t = 0; t < NT; t++)
        UNROLL_TILE
        for (int q = 0; q < 4; q++) run[t][q] = vdupq_n_s32(0), sum[t][q] = vdupq_n_u32(0);
    for (int u = 0; u < units; u++) {
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const int8x16_t codes = vld1q_s8(a + t * a_stride + GEMM_UNIT * u);
            const uint32_t mult = m[t * m_stride + u];
            UNROLL_TILE
            for (int q = 0; q < 4; q++) {
                run[t][q] = dot16(run[t][q], &panel[u].w[4 * q], codes);
                sum[t][q] = vmlaq_n_u32(sum[t][q], vreinterpretq_u32_s32(run[t][q]), mult);
            }
        }
    }
    UNROLL_TILE
    for (int t = 0; t < NT; t++)
        UNROLL_TILE
        for (int q = 0; q < 4; q++) {
            int64_t *out = acc + t * QR_BLOCK_ROWS + 4 * q;
            const int32x4_t s = vreinterpretq_s32_u32(sum[t][q]);
            const int64x2_t lo = vmovl_s32(vget_low_s32(s)), hi = vmovl_high_s32(s);
            vst1q_s64(out, live ? vaddq_s64(vld1q_s64(out), lo) : lo);
            vst1q_s64(out + 2, live ? vaddq_s64(vld1q_s64(out + 2), hi) : hi);
        }
}

const KernelTable kernels_dotprod = {.name = "dotprod",
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
