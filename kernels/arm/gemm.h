/*
 * kernels/arm/gemm.h - what the ARM GEMMs share (the batched 4-bit products of the dotprod
 * and i8mm levels): the panel of weights, and the loops around a level's register tile.
 * Each level file that includes it defines the two functions declared below, panel_store
 * and gemm_tile, with its own instructions; r4_pack_dotprod (dotprod.c) prepares the batch
 * for both.
 *
 * For a batch of vectors, each 16-row block of weights is unpacked once per 512 columns
 * into a panel that stays in L1 while every vector of the batch goes through it, two at a
 * time, with the sums of 16 rows x 2 vectors in registers (kernels/x86/avx512.c's GEMM in
 * NEON's terms). The arithmetic, per unit of 16 columns (which lie in one group: G is a
 * multiple of 16):
 *   - the weight's shift (its row's group shift, or its column shift) goes into the
 *     weight: the panel holds w' = c << sw, a signed byte (|w'| <= 7 << 4 = 112);
 *   - the level's instruction multiplies w' by activation codes, signed by signed, and adds
 *     the products of a row and a vector into a 32-bit lane: sdot 4 of them (4 rows x 4
 *     columns by 4 codes), smmla 8 (2 rows x 8 columns by 2 vectors' 8 codes); the codes
 *     are read straight from the batch, one unit of 16 per register: no copy, no offset,
 *     no correction;
 *   - each unit's sum counts shifted by its activation shift sa. Rather than starting every
 *     unit's sum from 0, shifting it and adding it (three instructions per lane and unit),
 *     one running sum V_k = (the sum of units 1 .. k of the panel) goes on through the
 *     panel, and is multiplied into the row's sum once per unit, by one mla:
 *         sum_k (V_k - V_k-1) << sa(k)  =  sum_k V_k m_k,
 *         m_k = 2^sa(k) - 2^sa(k+1), and m_k = 2^sa(k) for the panel's last unit
 *     (m_k is 0 between two units of one group). r4_pack_dotprod writes the m_k
 *     (kernels/qformat.h).
 *   - A term V_k m_k can exceed 32 bits where the sum does not, so the multiply-adds are
 *     unsigned: modular arithmetic gives the sum modulo 2^32, which is the sum, because
 *     it lies within int32: a product in any kernel is at most 49 << 16 (kernels/simd.h),
 *     and a panel of 512 columns stays below 2^31 (512 x 49 x 2^16). The running sums
 *     themselves are at most 512 x 128 x 112 < 2^23. That bound is all the GEMM needs: it
 *     takes activation codes of 8 bits (the attention's shifted probabilities) as well.
 * After each panel the 32-bit sums are widened to 64 bits; after the last, the tile's
 * floats are r4_finish_neon's.
 */
#ifndef KERNELS_ARM_GEMM_H
#define KERNELS_ARM_GEMM_H

#include "kernels/arm/arm.h"

enum {
    GEMM_UNIT = 16,            /* columns per activation multiplier */
    GEMM_TILE = 2,             /* vectors per register tile */
    GEMM_CHUNK = 128,          /* vectors whose int64 sums one pass keeps */
    GEMM_COLS = QR_FLUSH_COLS, /* columns per panel: 32-bit sums are widened after each */
    PANEL_UNITS = GEMM_COLS / GEMM_UNIT
};

/* One unit of a panel: 16 rows x 16 columns of w', in 16 registers arranged as the level's
 * instruction reads them (panel_store). */
typedef struct {
    int8x16_t w[16];
} PanelUnit;

/* Defined by the level file: where a step's rows 4q .. 4q + 3 go in a unit, given as lo
 * (row 4q + i's columns 8 half + 0..3 in bytes 4i .. 4i + 3) and hi (its next 4 columns). */
static inline void panel_store(PanelUnit *unit, int q, int half, int8x16_t lo, int8x16_t hi);

/* Defined by the level file: NT <= GEMM_TILE vectors (codes a, the t-th at a + t * a_stride;
 * multipliers m likewise) through a panel of `units` units; their sums of 16 rows go to
 * acc[t * 16 + rr], added to what is there when live. NT is a compile-time constant at
 * every call, so that the sums stay in registers. */
static inline __attribute__((always_inline)) void gemm_tile(int64_t *acc, int live, const PanelUnit *panel, int units,
                                                            const int8_t *a, size_t a_stride, const uint32_t *m,
                                                            size_t m_stride, const int NT);

/* Borrowed from neon.c. */
void r4_finish_neon(float *y, size_t y_stride, const int64_t *acc, int nt, int rows, const float *sa,
                    const float *sw);

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
        const int col = c0 + QR_STEP_COLS * j;
        PanelUnit *unit = &panel[j / 2];
        if (col >= w->cols_pad) {
            for (int q = 0; q < 4; q++) panel_store(unit, q, j % 2, vdupq_n_s8(0), vdupq_n_s8(0));
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
        for (int q = 0; q < 4; q++) {
            int8x16_t lo, hi;
            shifted_codes(vld1q_u8(step + 16 * q), slo[q], shi[q], &lo, &hi);
            panel_store(unit, q, j % 2, lo, hi);
        }
    }
    return units;
}

/* The batched product (kernels/simd.h's R4GemmKernel) of the level that includes this header,
 * on a batch that r4_pack_dotprod prepared. */
static void r4_gemm_level(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1,
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

#endif
