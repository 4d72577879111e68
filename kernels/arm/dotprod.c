/*
 * kernels/arm/dotprod.c - the dotprod level: ARMv8.2's dot product instructions (compiled
 * with -march=armv8.2-a+dotprod; only called after CPU detection says so): Apple M1 and
 * later, Graviton 2 and later, Raspberry Pi 5's Cortex-A76. Its own are the 4-bit kernel,
 * the batch's preparation and the batched product (GEMM); it borrows the other entries
 * from neon.c (the finish, both dot products, the quantizer, SwiGLU, softmax).
 *
 * The 4-bit kernel is kernels/arm/neon.h's (which says why it is exact) with this dot8:
 * sdot multiplies each 32-bit lane's 4 signed bytes by 4 activation codes (one 32-bit lane
 * of a, broadcast) and adds the 4 products to the lane: a row's 4 columns per instruction.
 * The GEMM is further down.
 */
#include "kernels/simd.h"

#if SIMD_BUILD_ARM
#if !defined(SIMD_EMULATED) /* the emulated test build gets SIMDe's intrinsics (tests/simde/) */
#include <arm_neon.h>
#endif
#include <string.h>

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
void swiglu_neon(float *gate, const float *up, int n);
void softmax_neon(float *x, int n, float divisor);

/* ------------------------------------------------------------------ batched products (GEMM)
 *
 * For a batch of vectors, each 16-row block of weights is unpacked once per 512 columns
 * into a panel that stays in L1 while every vector of the batch goes through it, two at a
 * time, with the sums of 16 rows x 2 vectors in registers (kernels/x86/avx512.c's GEMM in
 * NEON's terms). The arithmetic, per unit of 16 columns (which lie in one group: G is a
 * multiple of 16):
 *   - the weight's shift (its row's group shift, or its column shift) goes into the
 *     weight: the panel holds w' = c << sw, a signed byte (|w'| <= 7 << 4 = 112);
 *   - sdot (by element) multiplies 4 rows x 4 columns of w' by 4 activation codes, signed
 *     by signed, and adds each row's 4 products to its lane; the codes are read straight
 *     from the batch, one unit of 16 per register: no copy, no offset, no correction;
 *   - each unit's sum counts shifted by its activation shift sa. Rather than starting every
 *     unit's sum from 0, shifting it and adding it (three instructions per 4 sdot), one
 *     running sum V_k = (the sum of units 1 .. k of the panel) goes on through the panel,
 *     and is multiplied into the row's sum once per unit, by one mla:
 *         sum_k (V_k - V_k-1) << sa(k)  =  sum_k V_k m_k,
 *         m_k = 2^sa(k) - 2^sa(k+1), and m_k = 2^sa(k) for the panel's last unit
 *     (m_k is 0 between two units of one group). r4_pack_dotprod writes the m_k.
 *   - A term V_k m_k can exceed 32 bits where the sum does not, so the multiply-adds are
 *     unsigned: modular arithmetic gives the sum modulo 2^32, which is the sum, because
 *     it lies within int32: a product in any kernel is at most 49 << 16 (kernels/simd.h),
 *     and a panel of 512 columns stays below 2^31 (512 x 49 x 2^16). The running sums
 *     themselves are at most 512 x 128 x 112 < 2^23. That bound is all the GEMM needs: it
 *     takes activation codes of 8 bits (the attention's shifted probabilities) as well.
 * After each panel the 32-bit sums are widened to 64 bits; after the last, the tile's
 * floats are r4_finish_neon's. Per 16 rows x 16 columns x 1 vector: 16 sdot and 4 mla.
 */

enum {
    GEMM_UNIT = 16,            /* columns per activation multiplier */
    GEMM_TILE = 2,             /* vectors per register tile: 2 x 4 x (running sum, row sum) */
    GEMM_CHUNK = 128,          /* vectors whose int64 sums one pass keeps */
    GEMM_COLS = QR_FLUSH_COLS, /* columns per panel: 32-bit sums are widened after each */
    PANEL_UNITS = GEMM_COLS / GEMM_UNIT
};

/* One unit of a panel: per row quad q (rows 4q .. 4q + 3) and column quad k (columns 4k
 * .. 4k + 3 of the unit), 16 bytes w' with row 4q + i's 4 columns in bytes 4i .. 4i + 3:
 * the operand of one sdot. */
typedef struct {
    int8x16_t w[4][4]; /* [q][k] */
} PanelUnit;

/* The preparation of a batch for r4_block (the corrections) and for the GEMM: per vector
 * t and unit u (kernels/qformat.h), gemm_words[t * gemm_stride + u] = m_u as above.
 * Activation shifts are at most 12 (docs/SPEC.md), so 2^sa is a 32-bit word. A group size
 * that is not a multiple of 16 is not the GEMM's: -1. */
static int r4_pack_dotprod(const R4Acts *x, int t0, int t1) {
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

/* A block's row shifts of one group as bytes in the pattern of the codes: row 4q + i's in
 * bytes 4i .. 4i + 3 of s[q] (the group's 8 bytes hold row j in the low nibble of byte j,
 * row j + 8 in the high one). */
static inline void row_shift_bytes(const uint8_t *p, int8x16_t s[4]) {
    static const uint8_t row_of_byte[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    const uint8x8_t b = vld1_u8(p);
    const uint8x16_t rows = vcombine_u8(vand_u8(b, vdup_n_u8(15)), vshr_n_u8(b, 4)); /* byte r: row r's */
    const uint8x16_t quad0 = vld1q_u8(row_of_byte);
    for (int q = 0; q < 4; q++)
        s[q] = vreinterpretq_s8_u8(vqtbl1q_u8(rows, vaddq_u8(quad0, vdupq_n_u8((uint8_t)(4 * q)))));
}

/* The panel of block rb for columns [c0, c1) (c0 a multiple of GEMM_COLS, c1 - c0 <= it);
 * columns past the matrix's padded width are 0. Returns its number of units. */
static int pack_panel(PanelUnit *panel, const R4Matrix *w, int rb, int c0, int c1) {
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const int units = (c1 - c0 + GEMM_UNIT - 1) / GEMM_UNIT, G = w->group;
    /* The block's 16 rows lie in one group of G rows (G is a multiple of 16). */
    const uint8_t *cs = w->col_shifts ? w->col_shifts + (size_t)(rb * QR_BLOCK_ROWS / G) * w->col_shift_stride : NULL;
    int8x16_t slo[4], shi[4];
    for (int j = 0; j < 2 * units; j++) { /* R4Matrix steps of 8 columns: half a unit */
        const int col = c0 + QR_STEP_COLS * j, k = 2 * (j % 2);
        PanelUnit *unit = &panel[j / 2];
        if (col >= w->cols_pad) {
            for (int q = 0; q < 4; q++) unit->w[q][k] = unit->w[q][k + 1] = vdupq_n_s8(0);
            continue;
        }
        const uint8_t *step = block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES;
        __builtin_prefetch(step + PREFETCH_BYTES);
        if (cs) { /* the same for every row */
            col_shift_bytes(cs, col, &slo[0], &shi[0]);
            for (int q = 1; q < 4; q++) slo[q] = slo[0], shi[q] = shi[0];
        } else if (j == 0 || col % G == 0) { /* a new group */
            if (w->shifts)
                row_shift_bytes(w->shifts + ((size_t)rb * w->n_groups + col / G) * 8, slo);
            else
                for (int q = 0; q < 4; q++) slo[q] = vdupq_n_s8(0);
            for (int q = 0; q < 4; q++) shi[q] = slo[q];
        }
        for (int q = 0; q < 4; q++)
            shifted_codes(vld1q_u8(step + 16 * q), slo[q], shi[q], &unit->w[q][k], &unit->w[q][k + 1]);
    }
    return units;
}

/* One unit for one row quad: the running sum plus the unit's 16 columns of w' times its 16
 * activation codes a. */
static inline int32x4_t dot16(int32x4_t run, const int8x16_t w[4], int8x16_t a) {
    run = vdotq_laneq_s32(run, w[0], a, 0);
    run = vdotq_laneq_s32(run, w[1], a, 1);
    run = vdotq_laneq_s32(run, w[2], a, 2);
    return vdotq_laneq_s32(run, w[3], a, 3);
}

/* NT <= 2 vectors (codes a, the t-th at a + t * a_stride; multipliers m likewise) through
 * a panel of `units` units; their sums of 16 rows go to acc[t * 16 + rr], added to what is
 * there when live. NT is a compile-time constant at every call, so the sums stay in
 * registers. (One unit per pass: the compiler regroups the multiply-adds of two into a
 * multiply, a multiply-add and an add.) */
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
                run[t][q] = dot16(run[t][q], panel[u].w[q], codes);
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

static void r4_gemm_dotprod(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1,
                            const R4Acts *x) {
    PanelUnit panel[PANEL_UNITS];
    int64_t acc[GEMM_CHUNK * QR_BLOCK_ROWS];
    const uint32_t *words = (const uint32_t *)x->gemm_words;
    const size_t as = (size_t)x->stride, ms = (size_t)x->gemm_stride;
    for (int rb = rb0; rb < rb1; rb++) {
        const int rows = n_rows - rb * QR_BLOCK_ROWS < QR_BLOCK_ROWS ? n_rows - rb * QR_BLOCK_ROWS : QR_BLOCK_ROWS;
        for (int t0 = 0; t0 < x->n; t0 += GEMM_CHUNK) {
            const int nt = x->n - t0 < GEMM_CHUNK ? x->n - t0 : GEMM_CHUNK;
            for (int c0 = 0; c0 < x->len; c0 += GEMM_COLS) {
                const int units = pack_panel(panel, w, rb, c0, x->len - c0 < GEMM_COLS ? x->len : c0 + GEMM_COLS);
                for (int t = 0; t < nt; t += GEMM_TILE) {
                    const int8_t *a = x->codes + (size_t)(t0 + t) * as + c0;
                    const uint32_t *m = words + (size_t)(t0 + t) * ms + c0 / GEMM_UNIT;
                    if (nt - t >= 2)
                        gemm_tile(acc + t * QR_BLOCK_ROWS, c0 > 0, panel, units, a, as, m, ms, 2);
                    else
                        gemm_tile(acc + t * QR_BLOCK_ROWS, c0 > 0, panel, units, a, as, m, ms, 1);
                }
            }
            r4_finish_neon(y + (size_t)t0 * y_stride + rb * QR_BLOCK_ROWS, y_stride, acc, nt, rows, x->scale + t0,
                           w->scales + rb * QR_BLOCK_ROWS);
        }
    }
}

const KernelTable kernels_dotprod = {.name = "dotprod",
                                     .r4_block = r4_block_level,
                                     .r4_finish = r4_finish_neon,
                                     .dot_i8 = dot_i8_neon,
                                     .dot_f32 = dot_f32_neon,
                                     .quantize_r4 = quantize_r4_neon,
                                     .r4_pack = r4_pack_dotprod,
                                     .r4_gemm = r4_gemm_dotprod,
                                     .swiglu = swiglu_neon,
                                     .softmax = softmax_neon};
#endif
