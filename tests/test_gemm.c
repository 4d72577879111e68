/*
 * tests/test_gemm.c - 4-bit products of a matrix with a batch of vectors (the GEMM of the
 * levels that have one, kernels/simd.h; the r4_block tiles of the others).
 *
 *   - matmul_r4 gives, bit for bit, the floats of docs/SPEC.md section 3 evaluated
 *     directly (qr_dot on plain arrays, then qr_output), at every SIMD level this CPU has
 *     and for 1, 2 and 3 threads; on shapes that leave partial groups (G = 16 to 128),
 *     partial 16-row blocks, partial token tiles and chunks, several 512-column panels,
 *     and vectors shorter than the matrix's rows (the attention's V^T);
 *   - each level's GEMM called directly (whatever matmul would choose) does the same, for
 *     every batch size;
 *   - the largest codes and shifts over 16384 columns do not overflow;
 *   - matrices whose shifts belong to their columns (the KV cache's V^T) are multiplied
 *     exactly too, at every level (by the GEMM where there is one, for any batch size);
 *   - a batch with codes beyond 4 bits is refused by the GEMM's packing and still
 *     multiplied exactly;
 *   - steps between large and small activation shifts, which make the ARM GEMMs'
 *     intermediate terms wrap around 32 bits, give the exact sums.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/simd.h"
#include "kernels/threadpool.h"
#include "tests/test.h"

/* A matrix of rows x cols razored codes and a batch of n vectors of len <= cols codes, with
 * the same numbers kept as plain int32 arrays for qr_dot. */
typedef struct {
    int rows, cols, len, n, G;
    R4Matrix w;
    R4Acts x;
    int32_t *wc, *ws; /* [rows][cols] codes (shifted by column shifts), [rows][groups of cols] shifts */
    int32_t *xc, *xs; /* [n][len] codes, [n][groups of len] shifts */
} Batch;

enum { NO_SHIFTS, ROW_SHIFTS, COL_SHIFTS }; /* the weight shifts of a Batch */

/* style 0: random codes and shifts; 1: every code +7 at the largest shifts (4 and 12);
 * 2: like 1 with random signs. a_max bounds the activation codes (7, or 112 for the
 * attention's shifted probabilities). shifts: the matrix's kind of shifts. */
static int batch_make(Batch *b, uint64_t *rng, int rows, int cols, int len, int n, int G, int style,
                      int shifts, int a_max) {
    memset(b, 0, sizeof *b);
    *b = (Batch){.rows = rows, .cols = cols, .len = len, .n = n, .G = G};
    const int wg = (cols + G - 1) / G, xg = (len + G - 1) / G, with_shifts = shifts == ROW_SHIFTS;
    if (r4_matrix_alloc(&b->w, rows, cols, G, with_shifts) || r4_acts_alloc(&b->x, n, len, G)) return -1;
    if (shifts == COL_SHIFTS) { /* one per group of G rows and column, as the KV cache's V^T */
        b->w.col_shift_stride = b->w.cols_pad / 2;
        b->w.col_shifts = malloc((size_t)((rows + G - 1) / G) * b->w.col_shift_stride);
        if (!b->w.col_shifts) return -1;
        for (size_t i = 0; i < (size_t)((rows + G - 1) / G) * b->w.col_shift_stride; i++)
            b->w.col_shifts[i] = (uint8_t)(style ? 0x44 : test_rand_range(rng, 0, 4) | test_rand_range(rng, 0, 4) << 4);
    }
    b->wc = malloc((size_t)rows * cols * sizeof *b->wc);
    b->ws = calloc((size_t)rows * wg, sizeof *b->ws);
    b->xc = malloc((size_t)n * len * sizeof *b->xc);
    b->xs = malloc((size_t)n * xg * sizeof *b->xs);
    int8_t *row = malloc((size_t)(cols > len ? cols : len));
    if (!b->wc || !b->ws || !b->xc || !b->xs || !row) {
        free(row);
        return -1;
    }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            int v = style == 0 ? test_rand_range(rng, -7, 7) : 7;
            if (style == 2 && test_rand(rng) & 1) v = -v;
            row[c] = (int8_t)v;
            b->wc[(size_t)r * cols + c] = v * (1 << r4_get_col_shift(&b->w, r, c));
        }
        for (int g = 0; with_shifts && g < wg; g++) b->ws[r * wg + g] = style ? 4 : test_rand_range(rng, 0, 4);
        r4_matrix_set_row(&b->w, r, row, b->ws + r * wg, (float)test_rand_range(rng, 1, 1000) * 1e-4f);
    }
    r4_acts_shape(&b->x, n, len);
    for (int t = 0; t < n; t++) {
        int8_t *codes = b->x.codes + (size_t)t * b->x.stride;
        memset(codes, 0, (size_t)b->x.stride);
        for (int c = 0; c < len; c++) {
            int v = style == 0 ? test_rand_range(rng, -a_max, a_max) : 7;
            if (style == 2 && test_rand(rng) & 1) v = -v;
            codes[c] = (int8_t)v;
            b->xc[(size_t)t * len + c] = v;
        }
        for (int g = 0; g < xg; g++) { /* wide codes keep |a w| << (sa + sw) <= 49 << 16 */
            const int s = style ? 12 : test_rand_range(rng, 0, a_max > 7 ? 8 : 12);
            b->x.shifts[(size_t)t * xg + g] = s;
            b->xs[(size_t)t * xg + g] = s;
        }
        b->x.scale[t] = (float)test_rand_range(rng, 1, 1000) * 1e-3f;
        r4_acts_set_corr(&b->x, t);
    }
    free(row);
    return 0;
}

static void batch_free(Batch *b) {
    free(b->w.col_shifts); /* the test's own, not r4_matrix_alloc's */
    b->w.col_shifts = NULL;
    r4_matrix_free(&b->w);
    r4_acts_free(&b->x);
    free(b->wc), free(b->ws), free(b->xc), free(b->xs);
}

/* The accumulator of row r and vector t: docs/SPEC.md section 3 on the plain arrays. */
static int64_t batch_acc(const Batch *b, int t, int r) {
    const int wg = (b->cols + b->G - 1) / b->G, xg = (b->len + b->G - 1) / b->G;
    return qr_dot(b->xc + (size_t)t * b->len, b->xs + (size_t)t * xg, b->wc + (size_t)r * b->cols,
                  b->ws + (size_t)r * wg, b->len, b->G);
}

/* y[t][r] for r < n_rows as section 3 says, and a sentinel past n_rows (rows of y are
 * y_stride = n_rows + 3 floats apart). */
static float *batch_want(const Batch *b, int n_rows) {
    const size_t ys = (size_t)n_rows + 3;
    float *y = malloc((size_t)b->n * ys * sizeof *y);
    for (int t = 0; y && t < b->n; t++)
        for (size_t r = 0; r < ys; r++)
            y[t * ys + r] = (int)r < n_rows ? qr_output(batch_acc(b, t, (int)r), b->x.scale[t], b->w.scales[r]) : -1.0f;
    return y;
}

/* Outputs that differ from want (floats compared bit for bit, sentinels included). */
static int mismatches(const float *got, const float *want, size_t count) {
    int bad = 0;
    for (size_t i = 0; i < count; i++) bad += memcmp(&got[i], &want[i], sizeof *got) != 0;
    return bad;
}

/* Runs matmul_r4 at every level and thread count, and each level's GEMM directly; counts
 * the configurations that differ from want and reports them. */
static void check_batch(const Batch *b, int n_rows, const float *want, ThreadPool *const *pools, int n_pools,
                        const char *what) {
    const size_t ys = (size_t)n_rows + 3, count = (size_t)b->n * ys;
    float *y = malloc(count * sizeof *y);
    if (!CHECK(y != NULL)) return;
    for (int l = 0; l < SIMD_LEVELS; l++) {
        const KernelTable *k = test_level(l);
        if (!k) continue;
        CHECK(simd_use(k->name) == 0);
        for (int p = 0; p < n_pools; p++) {
            for (size_t i = 0; i < count; i++) y[i] = -1.0f;
            matmul_r4(y, ys, &b->w, n_rows, &b->x, pools[p]);
            const int bad = mismatches(y, want, count);
            CHECKF(bad == 0, "%s, %s, %d threads: %d of %zu outputs differ", what, k->name,
                   threadpool_size(pools[p]), bad, count);
        }
        if (k->r4_gemm && k->r4_pack(&b->x, 0, b->n) == 0) {
            for (size_t i = 0; i < count; i++) y[i] = -1.0f;
            k->r4_gemm(y, ys, &b->w, n_rows, 0, (n_rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS, &b->x);
            const int bad = mismatches(y, want, count);
            CHECKF(bad == 0, "%s, %s GEMM called directly: %d of %zu outputs differ", what, k->name, bad, count);
        }
    }
    CHECK(simd_use(simd_level_name(simd_detect())) == 0);
    free(y);
}

static void test_gemm_matches_spec(void) {
    uint64_t rng = 4242;
    ThreadPool *pools[3] = {NULL, threadpool_new(2), threadpool_new(3)};
    if (!CHECK(pools[1] && pools[2])) return;
    for (int trial = 0; trial < 64; trial++) {
        const int G = 16 << (trial % 4);
        const int rows = test_rand_range(&rng, 1, 70);
        /* Lengths: shorter than a group, a few groups with a partial last one, or several
         * 512-column panels (not always a multiple of 8). */
        const int shape = trial % 8;
        const int cols = shape == 0   ? test_rand_range(&rng, 1, G - 1)
                         : shape == 7 ? test_rand_range(&rng, 513, 1400)
                                      : G * test_rand_range(&rng, 1, 5) + test_rand_range(&rng, 0, G - 1);
        const int len = trial % 5 == 3 ? test_rand_range(&rng, 1, cols) : cols; /* V^T: fewer positions */
        /* Batches: 1 to 11 (tiles of 3 and the GEMM's lower bound), or more than a chunk of 64. */
        const int n = trial % 9 == 4 ? test_rand_range(&rng, 65, 140) : test_rand_range(&rng, 1, 11);
        const int n_rows = trial % 3 == 1 ? test_rand_range(&rng, 1, rows) : rows;
        Batch b;
        const int shifts = trial % 6 == 5 ? NO_SHIFTS : trial % 6 == 2 ? COL_SHIFTS : ROW_SHIFTS;
        if (!CHECK(batch_make(&b, &rng, rows, cols, len, n, G, 0, shifts, 7) == 0)) break;
        float *want = batch_want(&b, n_rows);
        char what[96];
        snprintf(what, sizeof what, "rows %d (first %d) x cols %d, len %d, n %d, G %d, shifts %d", rows, n_rows,
                 cols, len, n, G, shifts);
        if (CHECK(want != NULL)) check_batch(&b, n_rows, want, pools, 3, what);
        free(want);
        batch_free(&b);
    }
    threadpool_free(pools[1]);
    threadpool_free(pools[2]);
}

static void test_gemm_extremes_do_not_overflow(void) {
    /* Every product 49 << 16 (codes +-7, weight shifts 4, activation shifts 12) over 16384
     * columns: 36-bit sums, and 32-bit lanes that would overflow if widened late. */
    uint64_t rng = 8;
    ThreadPool *pools[1] = {NULL};
    for (int style = 1; style <= 4; style++) {
        for (int G = 16; G <= 128; G *= 2) {
            Batch b; /* styles 3 and 4: 1 and 2 with column shifts instead of row shifts */
            if (!CHECK(batch_make(&b, &rng, 20, 16384, 16384, 5, G, (style - 1) % 2 + 1, style > 2 ? COL_SHIFTS : ROW_SHIFTS,
                                  7) == 0))
                return;
            if (style == 1 || style == 3) /* the closed form, independent of qr_dot */
                CHECK(batch_acc(&b, 0, 0) == (int64_t)16384 * 49 * 65536);
            float *want = batch_want(&b, 20);
            char what[64];
            snprintf(what, sizeof what, "extremes (style %d), G %d", style, G);
            if (CHECK(want != NULL)) check_batch(&b, 20, want, pools, 1, what);
            free(want);
            batch_free(&b);
        }
    }
}

static void test_gemm_wide_codes_exact(void) {
    /* Codes up to +-112 (as the attention's probabilities shifted by the values' shifts)
     * with smaller shifts, within the bound every kernel takes, |a w| << (sa + sw) <= 49 <<
     * 16: too wide for the AVX2 GEMM's 16-bit sums against weights shifted by up to 4, whose
     * packing refuses them (matmul then runs r4_block tiles); the AVX-512 GEMM takes them.
     * Either way, the scalar definition's floats. */
    uint64_t rng = 99;
    ThreadPool *pools[2] = {NULL, threadpool_new(2)};
    if (!CHECK(pools[1] != NULL)) return;
    for (int trial = 0; trial < 8; trial++) {
        /* Small batches, and batches packed by several threads, where in half the trials
         * only the last vector's codes are wide. */
        const int G = 16 << (trial % 4), cols = test_rand_range(&rng, 240, 400), n = trial < 4 ? 9 : 70;
        const int last_wide = trial % 2;
        Batch b;
        if (!CHECK(batch_make(&b, &rng, 48, cols, cols, n, G, 0, trial % 3 == 2 ? COL_SHIFTS : ROW_SHIFTS, 112) == 0))
            break;
        for (int t = 0; last_wide && t < n - 1; t++) {
            for (int c = 0; c < cols; c++) {
                int8_t *a = &b.x.codes[(size_t)t * b.x.stride + c];
                *a = (int8_t)(*a / 16);
                b.xc[(size_t)t * cols + c] = *a;
            }
            r4_acts_set_corr(&b.x, t);
        }
        float *want = batch_want(&b, 48);
        if (CHECK(want != NULL)) check_batch(&b, 48, want, pools, 2, "codes up to 112");
        free(want);
        batch_free(&b);
    }
    threadpool_free(pools[1]);
}

static void test_gemm_shift_steps_exact(void) {
    /* Groups of codes +112 at activation shift 0 between groups of 4-bit codes at shift 12,
     * against weights +7 << 4: every product within the bound, but a GEMM that carries one
     * running sum through a panel and multiplies it by differences of 2^sa (the ARM ones,
     * kernels/arm/gemm.h) forms terms far beyond 32 bits, which must cancel modulo 2^32.
     * The scalar definition's floats, at every level. */
    uint64_t rng = 12;
    ThreadPool *pools[1] = {NULL};
    for (int trial = 0; trial < 8; trial++) {
        const int G = 16 << (trial % 4), cols = 1100, n = 5;
        Batch b;
        if (!CHECK(batch_make(&b, &rng, 20, cols, cols, n, G, 1, trial < 4 ? ROW_SHIFTS : COL_SHIFTS, 7) == 0))
            break;
        const int xg = (cols + G - 1) / G;
        for (int t = 0; t < n; t++) {
            for (int g = 0; g < xg; g++) {
                const int wide = g % 4 != 3; /* three wide groups, then a narrow one */
                for (int c = g * G; c < cols && c < (g + 1) * G; c++) {
                    const int v = wide ? 112 : test_rand_range(&rng, -7, 7);
                    b.x.codes[(size_t)t * b.x.stride + c] = (int8_t)v;
                    b.xc[(size_t)t * cols + c] = v;
                }
                b.x.shifts[(size_t)t * xg + g] = b.xs[(size_t)t * xg + g] = wide ? 0 : 12;
            }
            r4_acts_set_corr(&b.x, t);
        }
        float *want = batch_want(&b, 20);
        char what[64];
        snprintf(what, sizeof what, "shift steps 0 / 12, G %d, shifts %d", G, trial < 4 ? ROW_SHIFTS : COL_SHIFTS);
        if (CHECK(want != NULL)) check_batch(&b, 20, want, pools, 1, what);
        free(want);
        batch_free(&b);
    }
}

/* The floats of a tile at every level, for accumulators on both sides of 2^51 (where the
 * AVX2 conversion changes method) and up to the int64 limits: the scalar bits. */
static void test_finish_large_accumulators(void) {
    uint64_t rng = 51;
    int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
    float sa[QR_TILE_TOKENS], sw[QR_BLOCK_ROWS], want[QR_TILE_TOKENS * 16], got[QR_TILE_TOKENS * 16];
    for (int trial = 0; trial < 300; trial++) {
        const int nt = test_rand_range(&rng, 1, QR_TILE_TOKENS), rows = test_rand_range(&rng, 1, QR_BLOCK_ROWS);
        const int bits = 48 + trial % 16; /* magnitudes around 2^48 .. 2^63 */
        for (int i = 0; i < QR_TILE_TOKENS * QR_BLOCK_ROWS; i++) {
            const uint64_t mag = test_rand(&rng) >> (64 - bits);
            acc[i] = test_rand(&rng) & 1 ? -(int64_t)mag : (int64_t)mag;
        }
        if (trial == 0) acc[0] = INT64_MIN, acc[1] = INT64_MAX, acc[2] = (1LL << 51) - 1, acc[3] = -(1LL << 51);
        for (int t = 0; t < nt; t++) sa[t] = (float)test_rand_range(&rng, 1, 10000) * 1e-12f;
        for (int r = 0; r < rows; r++) sw[r] = (float)test_rand_range(&rng, 1, 10000) * 1e-6f;
        r4_finish_scalar(want, 16, acc, nt, rows, sa, sw);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            k->r4_finish(got, 16, acc, nt, rows, sa, sw);
            int bad = 0;
            for (int t = 0; t < nt; t++) bad += mismatches(got + t * 16, want + t * 16, (size_t)rows);
            CHECKF(bad == 0, "%s: %d floats differ (magnitudes ~2^%d)", k->name, bad, bits);
        }
    }
}

void suite_gemm(void) {
    test_run("gemm_matches_spec_every_level_and_thread_count", test_gemm_matches_spec);
    test_run("gemm_extremes_do_not_overflow_every_level", test_gemm_extremes_do_not_overflow);
    test_run("gemm_wide_codes_exact_every_level", test_gemm_wide_codes_exact);
    test_run("gemm_shift_steps_exact_every_level", test_gemm_shift_steps_exact);
    test_run("gemm_finish_large_accumulators_every_level", test_finish_large_accumulators);
}
