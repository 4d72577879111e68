/*
 * kernels/arm/neon.h - the 4-bit kernel (r4_block) of the ARM levels, around a multiply-add
 * of 4 rows x 8 columns that each level file defines with its own instructions.
 * Each level file defines, before it includes this header,
 *
 *     static inline int32x4_t dot8(int32x4_t acc, int8x16_t lo, int8x16_t hi, int8x8_t a);
 *
 * which adds to lane i of acc the 8 products of row i with the activation codes a[0..7]:
 * row i's columns 0-3 are bytes 4i .. 4i+3 of lo, its columns 4-7 the same bytes of hi.
 *
 * Why the kernel is exact:
 *   - One 64-byte step of the R4Matrix holds 16 rows x 8 columns (qformat.h): four
 *     registers of 4 rows x 4 bytes. `and 0x0F` gives the low nibbles (columns
 *     0-3), a byte shift right by 4 the high ones (columns 4-7): the excess-8 codes w + 8.
 *   - dot8 multiplies them by the signed activation codes; started from -8 * (the group's
 *     sum of activation codes), the group's sum is sum a_i * w_i exactly (the excess-8
 *     identity of qformat.h).
 *   - A matrix with column shifts (the KV cache's V^T) is unpacked to signed codes instead
 *     (nibble XOR 8, sign-extended), each shifted left by its column's shift with a per-byte
 *     shift (|w << s| <= 7 << 4 = 112, a byte), and its sums start from 0.
 *   - Each row's group sum is shifted by its own sa + sw and added to a 32-bit accumulator,
 *     widened to 64 bits every 512 columns, before it could overflow: 512 x 49 x 2^16 < 2^31
 *     (section 3's bound on every |a w| << (sa + sw)).
 */
#ifndef KERNELS_ARM_NEON_H
#define KERNELS_ARM_NEON_H

#include "kernels/arm/arm.h"

/* The weight shifts of QUADS x 4 rows from row 4 * quad0 on (16 rows from 0, or 8 from 0
 * or 8) in one group, 4 lanes per vector: byte j of the group's 8 holds row j in its low
 * nibble, row j + 8 in its high one. */
static inline void row_shifts(const uint8_t *p, int quad0, const int QUADS, int32x4_t *sw) {
    const uint8x8_t bytes = vld1_u8(p);
    const uint16x8_t low = vmovl_u8(vand_u8(bytes, vdup_n_u8(15))), high = vmovl_u8(vshr_n_u8(bytes, 4));
    const uint16x4_t quads[4] = {vget_low_u16(low), vget_high_u16(low), vget_low_u16(high), vget_high_u16(high)};
    UNROLL_TILE
    for (int q = 0; q < QUADS; q++) sw[q] = vreinterpretq_s32_u32(vmovl_u16(quads[quad0 + q]));
}

/* QUADS x 4 rows of block rb from row 4 * quad0 on (the whole block, QUADS = 4, or a half
 * of it) against NT vectors; COL_SHIFTS says whether the matrix has column shifts. All
 * three are compile-time constants at every call (r4_block_level), so the sums, NT x QUADS
 * x 2 vectors of them, stay in registers. */
static inline __attribute__((always_inline)) void r4_tile(int64_t *acc, const R4Matrix *w, int rb, int quad0,
                                                          const R4Acts *x, int t0, const int NT, const int QUADS,
                                                          const int COL_SHIFTS) {
    const int G = x->group, n_groups = x->n_groups;
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w) + quad0 * 16;
    const uint8_t *wshift = w->shifts ? w->shifts + (size_t)rb * w->n_groups * 8 : NULL;
    /* The block's 16 rows lie in one group of G rows (G is a multiple of 16). */
    const uint8_t *cs = COL_SHIFTS ? w->col_shifts + (size_t)(rb * QR_BLOCK_ROWS / G) * w->col_shift_stride : NULL;
    const int8_t *a[4];
    const int32_t *sa[4], *corr[4];
    int32x4_t acc32[4][4];
    UNROLL_TILE
    for (int t = 0; t < NT; t++) {
        a[t] = x->codes + (size_t)(t0 + t) * x->stride;
        sa[t] = x->shifts + (size_t)(t0 + t) * n_groups;
        corr[t] = x->corr + (size_t)(t0 + t) * n_groups;
        UNROLL_TILE
        for (int q = 0; q < QUADS; q++) acc32[t][q] = vdupq_n_s32(0);
    }
    int since_flush = 0;
    for (int g = 0; g < n_groups; g++) {
        const int start = g * G, end = start + G < x->len ? start + G : x->len;
        int32x4_t sw[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
        if (wshift) row_shifts(wshift + (size_t)g * 8, quad0, QUADS, sw);
        int32x4_t gacc[4][4];
        UNROLL_TILE
        for (int t = 0; t < NT; t++)
            UNROLL_TILE
            for (int q = 0; q < QUADS; q++) gacc[t][q] = vdupq_n_s32(COL_SHIFTS ? 0 : corr[t][g]);
        for (int col = start; col < end; col += QR_STEP_COLS) {
            const uint8_t *step = block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES;
            __builtin_prefetch(step + PREFETCH_BYTES);
            int8x16_t lo[4], hi[4];
            int8x16_t slo = vdupq_n_s8(0), shi = vdupq_n_s8(0);
            if (COL_SHIFTS) col_shift_bytes(cs, col, &slo, &shi);
            UNROLL_TILE
            for (int q = 0; q < QUADS; q++) {
                const uint8x16_t v = vld1q_u8(step + 16 * q);
                if (COL_SHIFTS) {
                    shifted_codes(v, slo, shi, &lo[q], &hi[q]);
                } else {
                    lo[q] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
                    hi[q] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                }
            }
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                const int8x8_t codes = vld1_s8(a[t] + col);
                UNROLL_TILE
                for (int q = 0; q < QUADS; q++) gacc[t][q] = dot8(gacc[t][q], lo[q], hi[q], codes);
            }
        }
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const int32x4_t shift_a = vdupq_n_s32(sa[t][g]);
            UNROLL_TILE
            for (int q = 0; q < QUADS; q++)
                acc32[t][q] = vaddq_s32(acc32[t][q], vshlq_s32(gacc[t][q], vaddq_s32(sw[q], shift_a)));
        }
        since_flush += G;
        if (since_flush >= QR_FLUSH_COLS || g == n_groups - 1) {
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                int64_t *out = acc + t * QR_BLOCK_ROWS + quad0 * 4;
                UNROLL_TILE
                for (int q = 0; q < QUADS; q++) {
                    vst1q_s64(out + 4 * q, vaddw_s32(vld1q_s64(out + 4 * q), vget_low_s32(acc32[t][q])));
                    vst1q_s64(out + 4 * q + 2, vaddw_high_s32(vld1q_s64(out + 4 * q + 2), acc32[t][q]));
                    acc32[t][q] = vdupq_n_s32(0);
                }
            }
            since_flush = 0;
        }
    }
}

/* The 4-bit kernel of the level that includes this header (kernels/simd.h's R4BlockKernel):
 * vectors in tiles of up to 4; a tile of one or two goes through the whole block at once,
 * one of three or four through each half of it. */
static void r4_block_level(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0, int nt) {
    /* Padding rows hold code 0 and shift 0, so they come out as 0 with no special case. */
    for (int i = 0; i < nt * QR_BLOCK_ROWS; i++) acc[i] = 0;
    const int col_shifts = w->col_shifts != NULL;
    for (int done = 0; done < nt; done += 4) {
        int64_t *out = acc + done * QR_BLOCK_ROWS;
        const int tile = nt - done < 4 ? nt - done : 4;
        switch (tile * 2 + col_shifts) {
        case 2: r4_tile(out, w, rb, 0, x, t0 + done, 1, 4, 0); continue;
        case 3: r4_tile(out, w, rb, 0, x, t0 + done, 1, 4, 1); continue;
        case 4: r4_tile(out, w, rb, 0, x, t0 + done, 2, 4, 0); continue;
        case 5: r4_tile(out, w, rb, 0, x, t0 + done, 2, 4, 1); continue;
        }
        for (int quad0 = 0; quad0 < 4; quad0 += 2) {
            switch (tile * 2 + col_shifts) {
            case 6: r4_tile(out, w, rb, quad0, x, t0 + done, 3, 2, 0); break;
            case 7: r4_tile(out, w, rb, quad0, x, t0 + done, 3, 2, 1); break;
            case 8: r4_tile(out, w, rb, quad0, x, t0 + done, 4, 2, 0); break;
            default: r4_tile(out, w, rb, quad0, x, t0 + done, 4, 2, 1); break;
            }
        }
    }
}

#endif
