/*
 * kernels/qformat.h - every quantized data format of the engine, in one place.
 *
 * The numbers follow docs/SPEC.md (the QRazor numerics contract):
 *   stage 1  absmax scaling to wide integers: INT8 weights (one scale per row), INT16
 *            activations (one scale per vector), INT8 key/value entries (one scale per
 *            token per head);
 *   stage 2  Significant Data Razoring (SDR): in each group of G consecutive integers
 *            along the reduction axis, keep the 3 magnitude bits below the group's leading
 *            one (rounded) plus a sign: a 4-bit code c in [-7, 7] per element and one
 *            shift s in [0, 12] per group. The razored integer is c << s.
 * and a matmul multiplies codes, never decompressed values:
 *   acc[r] = sum over groups g of ( sum_{i in g} a_i * w_i ) << (sa_g + sw_g)   (int64, exact)
 *   y[r]   = ((float)acc[r] * Sa) * Sw[r]
 *
 * The layouts below are ours (docs/SPEC.md leaves memory layout to the implementation). They
 * are chosen for the AVX-512 VNNI kernel; the scalar kernel reads them through the small
 * accessors at the end of this file, which double as their definition.
 *
 * ============================================================ R4Matrix: 4-bit codes
 *
 * A rows x cols matrix of razored codes (weights, the key cache, the transposed value
 * cache), stored in blocks of 16 rows (QR_BLOCK_ROWS). Within a block, columns go in
 * steps of 8; one step is 64 bytes that hold 16 rows x 8 columns:
 *
 *     byte  4*rr + e   (rr = row in block 0..15, e = 0..3)
 *       low nibble:  code of (row rr, column 8j + e)
 *       high nibble: code of (row rr, column 8j + 4 + e)
 *
 *        64-byte step j of a 16-row block
 *        +--------+--------+--------+--------+--------+-- ... --+--------+
 *   byte |   0    |   1    |   2    |   3    |   4    |         |   63   |
 *   lo   | r0 c0  | r0 c1  | r0 c2  | r0 c3  | r1 c0  |         | r15 c3 |
 *   hi   | r0 c4  | r0 c5  | r0 c6  | r0 c7  | r1 c4  |         | r15 c7 |
 *        +--------+--------+--------+--------+--------+-- ... --+--------+
 *        (c = column 8j + ...)
 *
 * So the low nibbles of one step, read as 64 bytes, are 16 lanes of 4 consecutive codes
 * of one row each: exactly the operand of one VNNI dot-product instruction (vpdpbusd sums
 * 4 byte products into each 32-bit lane), and the high nibbles are the next 4 columns.
 *
 * A code c is stored as the "excess-8" nibble c + 8 (so -7..7 -> 1..15, and 8 means 0).
 * This is still the 4-bit sign-magnitude code of docs/SPEC.md, relabelled: the instruction
 * wants an unsigned operand, and sum (c_i + 8) a_i = sum c_i a_i + 8 sum a_i, where the
 * last sum belongs to the activation and is computed once per vector.
 *
 * Columns are padded to a multiple of 8 with code 0; rows to a multiple of 16 likewise.
 *
 * Shifts: one 4-bit shift per (row, group of G columns). Per block and group, 8 bytes:
 *     byte j: low nibble = shift of row j, high nibble = shift of row j + 8.
 * A matrix whose shifts are all zero (the transposed value cache, RTN4 baselines may use
 * them too) can have shifts == NULL.
 *
 * Column shifts: a matrix whose shifts belong to its columns instead (V^T of the KV cache:
 * a value's group shifts belong to its position, a column of V^T) has shifts == NULL and
 * one 4-bit shift per group of G rows and column:
 *     col_shifts[(r / G) * col_shift_stride + c / 2], the low nibble for even c,
 * (col_shift_stride >= cols_pad / 2), and its element (r, c) stands for code << col_shift,
 * the shift at most 4 (from INT8 bases, as every weight shift). A product reduces over columns, so
 * these shifts vary along the reduction; section 3 becomes
 *     acc[r] = sum over groups g of ( sum_{i in g} a_i * (w_i << sc_i) ) << (sa_g + sw_g).
 * Every other matrix has col_shifts == NULL. (The memory is its owner's: r4_matrix_free
 * does not free it.)
 *
 * Scales: one float per row (stage 1).
 *
 * Memory per element: 4 bits + 4/G bits of shift (4.25 bits at G = 16) + 32/cols of scale.
 *
 * ============================================================ R4Acts: razored vectors
 *
 * A batch of n activation vectors of length len, razored along their length in groups of
 * G, kept one code per byte (they live only for one matmul): for vector t,
 *     codes[t * stride + i]  signed code of element i (padding up to stride is 0)
 *     shifts[t * n_groups + g]
 *     scale[t]
 *     corr[t * n_groups + g] = -8 * (sum of the group's codes): the excess-8 correction
 *                            the SIMD r4_block kernels start each group from; not the
 *                            quantizer's to write: a product prepares it (the level's
 *                            r4_pack, kernels/simd.h, or r4_acts_set_corr)
 * Shifts and corrections are 32-bit so that the SIMD kernels broadcast them straight
 * from memory.
 * The codes are 4-bit values in [-7, 7] for razored activations. (r4_block kernels also
 * take wider int8 codes, as long as |a_i * w_i| << (sa + sw) <= 49 << 16, the bound of
 * razored operands; the GEMM refuses them, see kernels/simd.h.)
 *
 * For products of a matrix with several vectors at once (the GEMMs), a level may prepare
 * the batch once per product ("packing") in two buffers it owns, `packed` (a byte per
 * code) and `gemm_words` (up to two 32-bit words per 16 codes). The AVX2 GEMM rearranges
 * the codes, so that its inner loop reads each operand with one load:
 *     unit width U = min(G, 32); unit u = columns [uU, uU + U), all in group uU / G;
 *     pair i = units A = 2i and B = 2i + 1 (n_pairs = ceil(len / 2U));
 *     packed[t * stride + 2U i + 4k + e] for k < U / 2, e < 4 =
 *         8 + a(2iU + 2k + e)             e = 0, 1   (columns 2k, 2k + 1 of unit A)
 *         8 + a((2i + 1)U + 2k + e - 2)   e = 2, 3   (the same columns of unit B)
 *     gemm_words[t * gemm_stride + i] = 2^sa(A) | 2^sa(B) << 16   (two int16 multipliers)
 * Four bytes k of a pair are what one 32-bit lane of vpmaddubsw multiplies: two columns
 * of A summed into the lane's low 16 bits, the same two columns of B into its high 16
 * bits. kernels/x86/avx2.c explains the arithmetic; codes past len read as 0 (so 8 here).
 * The ARM GEMMs (the dotprod and i8mm levels) read the codes where they are, and take one
 * word per unit u of 16 codes (columns [16u, 16u + 16), all in group 16u / G):
 *     gemm_words[t * gemm_stride + u] = 2^sa(u) - 2^sa(u + 1)   (a uint32, modulo 2^32)
 *                                     = 2^sa(u)   for the last unit of the vector or of a
 *                                                 512-column panel (u % 32 == 31)
 * the multiplier of their running sum of units 0 .. u of a panel; kernels/arm/gemm.h
 * explains the arithmetic.
 *
 * ============================================================ INT8 x INT16 (stage 1 only)
 *
 * I8Matrix: row-major int8 codes [rows][cols] with one float scale per row.
 * I16Acts:  n vectors of int16 codes [n][stride] with one float scale per vector.
 */
#ifndef KERNELS_QFORMAT_H
#define KERNELS_QFORMAT_H

#include <stddef.h>
#include <stdint.h>

enum {
    QR_BLOCK_ROWS = 16,   /* rows per interleaved block */
    QR_STEP_COLS = 8,     /* columns per 64-byte step */
    QR_STEP_BYTES = 64,   /* bytes per step */
    QR_MAX_GROUP = 128,   /* largest supported group size G */
    QR_FLUSH_COLS = 512,  /* int32 lanes are widened to int64 at least this often */
};

typedef struct {
    int rows, cols, group;
    int n_groups;   /* ceil(cols / group) */
    int cols_pad;   /* cols rounded up to a multiple of 8 */
    int n_blocks;   /* ceil(rows / 16) */
    uint8_t *codes; /* n_blocks * cols_pad * 8 bytes (16 rows x 4 bits per column) */
    uint8_t *shifts;/* n_blocks * n_groups * 8 bytes, or NULL when all shifts are 0 */
    float *scales;  /* [n_blocks * 16] */
    uint8_t *col_shifts;  /* NULL, or [ceil(rows / group)][col_shift_stride]: see above */
    int col_shift_stride; /* at least cols_pad / 2 */
} R4Matrix;

typedef struct {
    int n, len, group;  /* n vectors of len codes, groups of `group` */
    int n_groups;       /* ceil(len / group) */
    int stride;         /* len rounded up to a multiple of 8 (and of 64 for alignment) */
    int cap_n, cap_len; /* what the buffers were allocated for */
    int8_t *codes;      /* [cap_n][stride] */
    int32_t *shifts;    /* [cap_n][n_groups] */
    int32_t *corr;      /* [cap_n][n_groups] */
    float *scale;       /* [cap_n] */
    uint8_t *packed;     /* [cap_n][stride]: the codes packed for a GEMM (above) */
    int32_t *gemm_words; /* [cap_n][gemm_stride]: a GEMM's words per vector (above) */
    int gemm_stride;     /* 2 * (cap_len / 16 + 1): two words per 16 codes of the longest vector */
} R4Acts;

typedef struct {
    int rows, cols;
    int8_t *q;     /* [rows][cols] */
    float *scales; /* [rows] */
} I8Matrix;

typedef struct {
    int n, len;         /* n vectors of len codes */
    int stride;         /* len rounded up to a multiple of 32 (zero padded) */
    int cap_n, cap_len;
    int16_t *q;         /* [cap_n][stride] */
    float *scale;       /* [cap_n] */
} I16Acts;

/* The length of group g of an axis of n elements cut into groups of `group`: `group`,
 * except for a shorter last group when n is not a multiple of it (docs/SPEC.md section 2). */
static inline int qr_group_len(int n, int group, int g) {
    const int start = g * group;
    return n - start < group ? n - start : group;
}

/* x << s for a signed x, the razored value c << s and the shifted group sums of a
 * product: written as a multiplication because shifting a negative number left is
 * undefined in C. */
static inline int64_t qr_shl(int64_t x, int s) { return x * ((int64_t)1 << s); }

/* ------------------------------------------------------------------ R4Matrix accessors */

static inline size_t r4_block_bytes(const R4Matrix *m) { return (size_t)m->cols_pad * 8; }

/* Address of the byte holding code (r, c) and whether it is the high nibble. */
static inline uint8_t *r4_code_byte(const R4Matrix *m, int r, int c, int *high) {
    const int rb = r / QR_BLOCK_ROWS, rr = r % QR_BLOCK_ROWS;
    *high = (c % QR_STEP_COLS) >= 4;
    return m->codes + (size_t)rb * r4_block_bytes(m) + (size_t)(c / QR_STEP_COLS) * QR_STEP_BYTES +
           (size_t)(rr * 4 + c % 4);
}

/* Signed code at (r, c). */
static inline int r4_get_code(const R4Matrix *m, int r, int c) {
    int high;
    const uint8_t b = *r4_code_byte(m, r, c, &high);
    return (high ? b >> 4 : b & 15) - 8;
}

static inline void r4_set_code(R4Matrix *m, int r, int c, int code) {
    int high;
    uint8_t *b = r4_code_byte(m, r, c, &high);
    const uint8_t nib = (uint8_t)(code + 8);
    *b = high ? (uint8_t)((*b & 0x0F) | (nib << 4)) : (uint8_t)((*b & 0xF0) | nib);
}

/* Shift of row r in group g (0 when the matrix has no shifts). */
static inline int r4_get_shift(const R4Matrix *m, int r, int g) {
    if (!m->shifts) return 0;
    const int rb = r / QR_BLOCK_ROWS, rr = r % QR_BLOCK_ROWS;
    const uint8_t b = m->shifts[((size_t)rb * m->n_groups + g) * 8 + rr % 8];
    return rr < 8 ? b & 15 : b >> 4;
}

/* The column shift of element (r, c) (0 when the matrix has none), and setting it for the
 * rows of r's group. */
static inline int r4_get_col_shift(const R4Matrix *m, int r, int c) {
    if (!m->col_shifts) return 0;
    const uint8_t b = m->col_shifts[(size_t)(r / m->group) * m->col_shift_stride + c / 2];
    return c % 2 ? b >> 4 : b & 15;
}

static inline void r4_set_col_shift(R4Matrix *m, int r, int c, int shift) {
    uint8_t *b = &m->col_shifts[(size_t)(r / m->group) * m->col_shift_stride + c / 2];
    *b = c % 2 ? (uint8_t)((*b & 0x0F) | (shift << 4)) : (uint8_t)((*b & 0xF0) | shift);
}

static inline void r4_set_shift(R4Matrix *m, int r, int g, int shift) {
    const int rb = r / QR_BLOCK_ROWS, rr = r % QR_BLOCK_ROWS;
    uint8_t *b = &m->shifts[((size_t)rb * m->n_groups + g) * 8 + rr % 8];
    *b = rr < 8 ? (uint8_t)((*b & 0xF0) | shift) : (uint8_t)((*b & 0x0F) | (shift << 4));
}

#endif
