/*
 * tests/test_kernels.c - quantizers and integer kernels.
 *
 *   - SDR reproduces every line of the golden sdr_vectors.txt (made by the oracle).
 *   - Every kernel level (scalar, AVX2, AVX-512 where the CPU has them) gives exactly the
 *     integers of a direct evaluation of docs/SPEC.md section 3 on random shapes, groups,
 *     codes and shifts, extremes included.
 *   - Long reductions at the largest codes and shifts do not overflow.
 *   - Whole matmuls give identical floats for 1, 2, 3 and 8 threads.
 *   - SiLU's exp is within 3 DBL_EPSILON of libm's, SwiGLU rounds to libm's floats, and every
 *     level gives the scalar SwiGLU's bits.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/floatops.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/simd.h"
#include "kernels/threadpool.h"
#include "tests/test.h"

/* ------------------------------------------------------------------ stage 1 and SDR */

static void test_stage1_rounds_half_away(void) {
    /* s = 127 / 127 = 1, so the codes are the values rounded: 2.5 -> 3 and -2.5 -> -3
     * (half away from zero; lrintf's half-to-even would give 2 and -2). */
    const float x[] = {127.0f, 2.5f, -2.5f, 0.4f, -127.0f, 0.5f};
    const float s = absmax_scale(x, 6, QMAX_INT8);
    CHECK(s == 1.0f);
    const int want[] = {127, 3, -3, 0, -127, 1};
    for (int i = 0; i < 6; i++)
        CHECKF(quantize_value(x[i], s, QMAX_INT8) == want[i], "x=%g -> %d", x[i],
               quantize_value(x[i], s, QMAX_INT8));
    const float zero[4] = {0};
    CHECK(absmax_scale(zero, 4, QMAX_INT16) == 0.0f && quantize_value(0.0f, 0.0f, QMAX_INT16) == 0);
    /* Defined for every float: a NaN has no value (0), infinities saturate. */
    CHECK(quantize_value(NAN, 1.0f, QMAX_INT8) == 0 && quantize_value(-NAN, 1.0f, QMAX_INT8) == 0);
    CHECK(quantize_value(INFINITY, 1.0f, QMAX_INT8) == 127 && quantize_value(-INFINITY, 1.0f, QMAX_INT8) == -127);
    CHECK(quantize_value(INFINITY, INFINITY, QMAX_INT16) == 0 && quantize_value(1.0f, INFINITY, QMAX_INT16) == 0);
    const float with_nan[3] = {NAN, -2.0f, 1.0f};
    CHECK(absmax_scale(with_nan, 3, 2) == 1.0f); /* NaN is skipped, as fmaxf does */
}

/* Parses "a b c" into ints; returns how many. */
static int parse_ints(const char *s, const char *end, int32_t *out, int cap) {
    int n = 0;
    while (s < end && n < cap) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || e > end) break;
        out[n++] = (int32_t)v;
        s = e;
    }
    return n;
}

static void test_sdr_matches_golden_vectors(void) {
    char *text = test_read_file("tests/data/golden/sdr_vectors.txt", NULL);
    if (!text) return;
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *bar1 = strchr(line, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL,
             *bar3 = bar2 ? strchr(bar2 + 1, '|') : NULL;
        if (!CHECKF(bar3 != NULL, "malformed line: %.60s", line)) continue;
        const int G = atoi(line);
        static int32_t values[1024], codes[1024], shifts[64];
        const int n = parse_ints(bar1 + 1, bar2, values, 1024);
        const int nc = parse_ints(bar2 + 1, bar3, codes, 1024);
        const int ns = parse_ints(bar3 + 1, bar3 + strlen(bar3), shifts, 64);
        if (!CHECKF(n == nc && ns == (n + G - 1) / G, "line %d: %d values, %d codes, %d shifts",
                    lines, n, nc, ns))
            continue;
        int8_t got[1024];
        int got_shifts[64];
        for (int g = 0; g * G < n; g++) /* stage 2, group by group */
            got_shifts[g] = sdr_group(values + g * G, qr_group_len(n, G, g), 3, 1, got + g * G);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += got[i] != codes[i];
        for (int g = 0; g < ns; g++) bad += got_shifts[g] != shifts[g];
        CHECKF(bad == 0, "line %d (G=%d, n=%d): %d codes or shifts differ", lines, G, n, bad);
        lines++;
    }
    CHECKF(lines >= 100, "only %d vectors read", lines);
    free(text);
}

static void test_sdr_truncation(void) {
    /* 15 = 0b1111: leading one at bit 3, shift 1; rounding (15+1)>>1 = 8 saturates to 7,
     * truncation 15>>1 = 7. 13 = 0b1101: rounding (13+1)>>1 = 7, truncation 6. */
    const int32_t q[] = {15, 13, -13, 1};
    int8_t round[4], trunc[4];
    CHECK(sdr_group(q, 4, 3, 1, round) == 1 && sdr_group(q, 4, 3, 0, trunc) == 1);
    CHECK(round[0] == 7 && round[1] == 7 && round[2] == -7 && round[3] == 1);
    CHECK(trunc[0] == 7 && trunc[1] == 6 && trunc[2] == -6 && trunc[3] == 0);
}

/* docs/SPEC.md section 6: the razor keeping 4 magnitude bits (r5). Expected codes worked
 * out by hand from the spec. 127 | 100 | 37 | 16 = 0b1111111: leading one at bit 6, so
 * shift 6 - 3 = 3; rounding adds 4: 131 >> 3 = 16 saturates at 15, 104 >> 3 = 13,
 * 41 >> 3 = 5, 20 >> 3 = 2; truncating: 15, 12, 4, 2. */
static void test_sdr_five_bit_codes(void) {
    const int32_t q[] = {127, -100, 37, 0, 16};
    int8_t round[5], trunc[5];
    CHECK(sdr_group(q, 5, 4, 1, round) == 3 && sdr_group(q, 5, 4, 0, trunc) == 3);
    const int want_round[] = {15, -13, 5, 0, 2}, want_trunc[] = {15, -12, 4, 0, 2};
    for (int i = 0; i < 5; i++) CHECKF(round[i] == want_round[i] && trunc[i] == want_trunc[i], "element %d", i);
    /* Four magnitude bits fit without a shift up to 15; 31 needs shift 1 and saturates. */
    const int32_t small[] = {15, -9}, big[] = {31};
    int8_t c[2];
    CHECK(sdr_group(small, 2, 4, 1, c) == 0 && c[0] == 15 && c[1] == -9);
    CHECK(sdr_group(big, 1, 4, 1, c) == 1 && c[0] == 15);
    /* From an INT8 base the shift is at most 3 (section 6), so c << s <= 120 is a byte. */
    int8_t codes[16];
    int32_t all_max[16];
    for (int i = 0; i < 16; i++) all_max[i] = i % 2 ? 127 : -127;
    CHECK(sdr_group(all_max, 16, 4, 1, codes) == 3 && codes[1] == 15 && codes[0] == -15);
}

/* ------------------------------------------------------------------ packed format */

static void test_r4_pack_roundtrip(void) {
    uint64_t rng = 11;
    for (int trial = 0; trial < 50; trial++) {
        const int rows = test_rand_range(&rng, 1, 40), cols = test_rand_range(&rng, 1, 300);
        const int G = 16 << test_rand_range(&rng, 0, 3);
        R4Matrix m;
        if (!CHECK(r4_matrix_alloc(&m, rows, cols, G, 1) == 0)) return;
        int8_t *codes = malloc((size_t)rows * cols);
        uint8_t *shifts = malloc((size_t)rows * m.n_groups);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                codes[r * cols + c] = (int8_t)test_rand_range(&rng, -7, 7);
                r4_set_code(&m, r, c, codes[r * cols + c]);
            }
            for (int g = 0; g < m.n_groups; g++) {
                shifts[r * m.n_groups + g] = (uint8_t)test_rand_range(&rng, 0, 15);
                r4_set_shift(&m, r, g, shifts[r * m.n_groups + g]);
            }
        }
        int bad = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) bad += r4_get_code(&m, r, c) != codes[r * cols + c];
            for (int g = 0; g < m.n_groups; g++)
                bad += r4_get_shift(&m, r, g) != shifts[r * m.n_groups + g];
        }
        CHECKF(bad == 0, "%dx%d G=%d: %d values read back wrong", rows, cols, G, bad);
        /* A whole row written at once (as the KV cache does) reads back the same. */
        const int r = test_rand_range(&rng, 0, rows - 1);
        int32_t row_shifts[64];
        for (int g = 0; g < m.n_groups; g++) row_shifts[g] = test_rand_range(&rng, 0, 12);
        r4_matrix_set_row(&m, r, codes + r * cols, row_shifts, 0.5f);
        bad = m.scales[r] != 0.5f;
        for (int c = 0; c < cols; c++) bad += r4_get_code(&m, r, c) != codes[r * cols + c];
        for (int g = 0; g < m.n_groups; g++) bad += r4_get_shift(&m, r, g) != row_shifts[g];
        for (int o = 0; o < rows; o++) /* the other rows are untouched */
            for (int c = 0; o != r && c < cols; c++) bad += r4_get_code(&m, o, c) != codes[o * cols + c];
        CHECKF(bad == 0, "%dx%d: set_row of row %d: %d values wrong", rows, cols, r, bad);
        free(codes);
        free(shifts);
        r4_matrix_free(&m);
    }
}

/* ------------------------------------------------------------------ integer kernels */

static int64_t shl64(int64_t x, int s) { return x * ((int64_t)1 << s); }

/* A random R4 problem: matrix codes and shifts, n razored activation vectors; and the
 * expected accumulators, computed from plain arrays (not the packed format). */
typedef struct {
    R4Matrix w;
    R4Acts x;
    int64_t *want; /* [n][rows] */
} R4Problem;

/* kind: 0 random codes/shifts; 1 all codes +7 and maximal shifts; 2 like 1 with random signs */
static int r4_problem(R4Problem *p, uint64_t *rng, int rows, int cols, int G, int n, int kind,
                      int with_shifts) {
    if (r4_matrix_alloc(&p->w, rows, cols, G, with_shifts) || r4_acts_alloc(&p->x, n, cols, G))
        return -1;
    r4_acts_shape(&p->x, n, cols);
    int8_t *wc = malloc((size_t)rows * cols);
    uint8_t *ws = calloc((size_t)rows * p->w.n_groups, 1);
    p->want = malloc((size_t)n * rows * sizeof *p->want);
    for (int r = 0; r < rows; r++) {
        p->w.scales[r] = 1.0f;
        for (int c = 0; c < cols; c++) {
            int v = kind == 0 ? test_rand_range(rng, -7, 7) : 7;
            if (kind == 2 && test_rand(rng) & 1) v = -v;
            wc[r * cols + c] = (int8_t)v;
            r4_set_code(&p->w, r, c, v);
        }
        for (int g = 0; with_shifts && g < p->w.n_groups; g++) {
            ws[r * p->w.n_groups + g] = (uint8_t)(kind ? 4 : test_rand_range(rng, 0, 4));
            r4_set_shift(&p->w, r, g, ws[r * p->w.n_groups + g]);
        }
    }
    for (int t = 0; t < n; t++) {
        int8_t *a = p->x.codes + (size_t)t * p->x.stride;
        memset(a, 0, (size_t)p->x.stride);
        for (int c = 0; c < cols; c++) {
            int v = kind == 0 ? test_rand_range(rng, -7, 7) : 7;
            if (kind == 2 && test_rand(rng) & 1) v = -v;
            a[c] = (int8_t)v;
        }
        for (int g = 0; g < p->x.n_groups; g++)
            p->x.shifts[t * p->x.n_groups + g] = kind ? 12 : test_rand_range(rng, 0, 12);
        p->x.scale[t] = 1.0f;
        /* docs/SPEC.md section 3, directly on the arrays. */
        for (int r = 0; r < rows; r++) {
            int64_t acc = 0;
            for (int g = 0; g < p->x.n_groups; g++) {
                int64_t dot = 0;
                for (int c = g * G; c < cols && c < (g + 1) * G; c++) dot += a[c] * wc[r * cols + c];
                acc += shl64(dot, p->x.shifts[t * p->x.n_groups + g] + ws[r * p->w.n_groups + g]);
            }
            p->want[(size_t)t * rows + r] = acc;
        }
    }
    free(wc);
    free(ws);
    return 0;
}

static void r4_problem_free(R4Problem *p) {
    r4_matrix_free(&p->w);
    r4_acts_free(&p->x);
    free(p->want);
}

/* Runs one kernel level over every block and token tile, after the preparation its
 * r4_block needs (the level's r4_pack, as matmul does; the corrections it must write are
 * poisoned first); counts mismatches. */
static int r4_mismatches(const KernelTable *k, const R4Problem *p) {
    int bad = 0;
    memset(p->x.corr, 0x55, (size_t)p->x.n * p->x.n_groups * sizeof *p->x.corr);
    if (k->r4_pack) k->r4_pack(&p->x, 0, p->x.n);
    for (int rb = 0; rb < p->w.n_blocks; rb++) {
        for (int t0 = 0; t0 < p->x.n; t0 += QR_TILE_TOKENS) {
            const int nt = p->x.n - t0 < QR_TILE_TOKENS ? p->x.n - t0 : QR_TILE_TOKENS;
            int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
            k->r4_block(acc, &p->w, rb, &p->x, t0, nt);
            for (int t = 0; t < nt; t++)
                for (int rr = 0; rr < QR_BLOCK_ROWS; rr++) {
                    const int r = rb * QR_BLOCK_ROWS + rr;
                    const int64_t want = r < p->w.rows ? p->want[(size_t)(t0 + t) * p->w.rows + r] : 0;
                    bad += acc[t * QR_BLOCK_ROWS + rr] != want;
                }
        }
    }
    return bad;
}

static void test_r4_kernels_exact(void) {
    uint64_t rng = 2026;
    for (int trial = 0; trial < 120; trial++) {
        const int G = 16 << (trial % 4);
        const int rows = test_rand_range(&rng, 1, 50);
        const int cols = trial % 7 == 0 ? test_rand_range(&rng, 1, 15)          /* < one group */
                                        : G * test_rand_range(&rng, 1, 4) + test_rand_range(&rng, 0, G - 1);
        const int n = test_rand_range(&rng, 1, 11); /* crosses the 8-vector tile */
        R4Problem p;
        if (!CHECK(r4_problem(&p, &rng, rows, cols, G, n, 0, trial % 5 != 0) == 0)) return;
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            const int bad = r4_mismatches(k, &p);
            CHECKF(bad == 0, "%s: %dx%d G=%d n=%d: %d accumulators differ", k->name, rows, cols,
                   G, n, bad);
        }
        r4_problem_free(&p);
    }
}

static void test_r4_long_reduction_no_overflow(void) {
    /* 16384 inputs, every code +-7, weight shifts 4 and activation shifts 12 (the largest
     * of INT8 and INT16 bases): each product is 49 << 16 and the sum needs 36 bits. */
    uint64_t rng = 5;
    for (int kind = 1; kind <= 2; kind++) {
        for (int G = 16; G <= 128; G *= 2) {
            R4Problem p;
            if (!CHECK(r4_problem(&p, &rng, 20, 16384, G, 2, kind, 1) == 0)) return;
            if (kind == 1) /* independent of the reference loop: the closed form */
                CHECK(p.want[0] == (int64_t)16384 * 49 * 65536);
            for (int l = 0; l < SIMD_LEVELS; l++) {
                const KernelTable *k = test_level(l);
                if (k) CHECKF(r4_mismatches(k, &p) == 0, "%s: overflow at G=%d", k->name, G);
            }
            r4_problem_free(&p);
        }
    }
}

/* INT8 x INT16: random lengths, and the extremes (+-127 x +-32767) over long vectors. */
static void test_i8_kernels_exact(void) {
    uint64_t rng = 77;
    for (int trial = 0; trial < 200; trial++) {
        const int extreme = trial % 10 == 0;
        const int n = extreme ? 16384 + test_rand_range(&rng, 0, 40) : test_rand_range(&rng, 1, 700);
        int8_t *w = malloc((size_t)n);
        int16_t *a = malloc((size_t)n * sizeof *a);
        int64_t want = 0;
        for (int i = 0; i < n; i++) {
            w[i] = (int8_t)(extreme ? (trial % 20 ? 127 : -127) : test_rand_range(&rng, -127, 127));
            a[i] = (int16_t)(extreme ? 32767 : test_rand_range(&rng, -32767, 32767));
            want += (int64_t)w[i] * a[i];
        }
        if (extreme) CHECK(want == (trial % 20 ? 1 : -1) * (int64_t)n * 127 * 32767);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            const int64_t got = k->dot_i8(w, a, n);
            CHECKF(got == want, "%s: n=%d: %lld, expected %lld", k->name, n, (long long)got,
                   (long long)want);
        }
        free(w);
        free(a);
    }
}

/* Float kernels: every level adds in dot_f32_scalar's order, so the floats are equal bit
 * for bit; and that order is within float rounding of a double-precision dot product. */
static void test_f32_kernels_same_every_level(void) {
    uint64_t rng = 99;
    for (int trial = 0; trial < 200; trial++) {
        const int n = trial < 130 ? trial + 1 : test_rand_range(&rng, 1, 1500);
        float *w = malloc((size_t)n * sizeof *w), *x = malloc((size_t)n * sizeof *x);
        double exact = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            w[i] = (float)((int)(test_rand(&rng) % 2001) - 1000) / 1000.0f;
            x[i] = (float)((int)(test_rand(&rng) % 2001) - 1000) / 1000.0f;
            exact += (double)w[i] * x[i];
            mag += fabs((double)w[i] * x[i]);
        }
        const float want = dot_f32_scalar(w, x, n);
        /* n float additions are within n * 2^-24 of the exact sum, relative to the sum of
         * magnitudes. */
        const double err = fabs(want - exact) / (mag + 1e-30);
        CHECKF(err <= n * 6e-8, "n=%d relative error %.3g", n, err);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            const float got = k->dot_f32(w, x, n);
            CHECKF(memcmp(&got, &want, sizeof got) == 0, "%s: n=%d: %.9g, scalar %.9g", k->name, n, got, want);
        }
        free(w), free(x);
    }
}

/* ------------------------------------------------------------------ SwiGLU */

/* silu_exp against libm's exp over its whole range, ends and clamps included. */
/* exp_core against libm's exp over the arguments of softmax and SiLU; SiLU's clamps. */
static void test_exp_core_accuracy(void) {
    double worst = 0, worst_x = 0;
    const int steps = 2000000;
    for (int i = 0; i <= steps; i++) {
        const double x = SOFTMAX_EXP_MIN + (SILU_EXP_MAX - SOFTMAX_EXP_MIN) * i / steps;
        const double want = exp(x), rel = fabs(exp_core(x) - want) / want;
        if (rel > worst) worst = rel, worst_x = x;
    }
    printf("    worst relative error %.3g (%.2f DBL_EPSILON) at x = %.6f\n", worst, worst / DBL_EPSILON, worst_x);
    CHECKF(worst < 3 * DBL_EPSILON, "relative error %.3g at %.17g", worst, worst_x);
    CHECK(silu_exp(-1000.0) == silu_exp(SILU_EXP_MIN) && silu_exp(-INFINITY) == silu_exp(SILU_EXP_MIN));
    CHECK(silu_exp(NAN) == silu_exp(SILU_EXP_MIN));
    CHECK(silu_exp(1e300) == silu_exp(SILU_EXP_MAX) && isfinite(silu_exp(INFINITY)));
    CHECK(silu_exp(0.0) == 1.0);
}

/* softmax_exp is correctly rounded but in rare near-halfway cases: over [-104, 0] densely,
 * against libm's exp in double rounded to float (the same but in such cases too), and
 * counted against libm's expf (glibc's is within 0.502 ulp: a float apart now and then). */
static void test_softmax_exp_matches_expf(void) {
    const int steps = 4000000;
    int differ = 0, from_expf = 0, far = 0;
    for (int i = 0; i <= steps; i++) {
        const float x = SOFTMAX_EXP_MIN * (float)i / (float)steps, got = softmax_exp(x), want = (float)exp((double)x);
        differ += got != want;
        from_expf += got != expf(x);
        far += fabsf(got - expf(x)) > fabsf(nextafterf(expf(x), 2.0f) - expf(x));
    }
    printf("    of %d values, %d differ from exp in double rounded to float, %d from expf (by a float)\n", steps + 1,
           differ, from_expf);
    CHECKF(differ <= steps / 1000000 && far == 0, "%d values differ from libm's exp, %d by more than a float from expf",
           differ, far);
    CHECK(softmax_exp(0.0f) == 1.0f && softmax_exp(-0.0f) == 1.0f);
    CHECK(softmax_exp(-104.0f) == 0.0f && softmax_exp(-1e30f) == 0.0f && softmax_exp(-INFINITY) == 0.0f);
    CHECK(softmax_exp(-103.9f) > 0.0f && softmax_exp(-103.9f) == expf(-103.9f)); /* a denormal */
    CHECK(isnan(softmax_exp(NAN)));
}

/* A softmax row for the tests: scores of every size, huge gaps (exp underflows), ties,
 * and in some rows -inf, NaN and +inf. */
static float softmax_test_value(uint64_t *rng, int kind) {
    const double u = (double)(test_rand(rng) % 2000001) / 1000000.0 - 1.0;
    switch (kind) {
    case 0: return (float)(u * 20.0);
    case 1: return (float)(u * 300.0);             /* e^(x - max) below SOFTMAX_EXP_MIN too */
    case 2: return (float)((int)(u * 4.0));        /* ties */
    default: {
        const float odd[] = {-INFINITY, NAN, INFINITY, -0.0f};
        return test_rand(rng) % 8 ? (float)(u * 10.0) : odd[test_rand(rng) % 4];
    }
    }
}

static void test_softmax_same_every_level(void) {
    uint64_t rng = 31;
    const float divisors[] = {1.0f, 6.92820323f, 8.0f, 0.7f};
    for (int trial = 0; trial < 400; trial++) {
        const int n = trial < 40 ? trial + 1 : trial % 9 == 0 ? test_rand_range(&rng, 129, 1100) : test_rand_range(&rng, 1, 300);
        float *x = malloc((size_t)n * sizeof *x), *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
        if (!CHECK(x && want && got)) { free(x), free(want), free(got); return; }
        for (int i = 0; i < n; i++) x[i] = softmax_test_value(&rng, trial % 4);
        const float divisor = divisors[trial % 4];
        memcpy(want, x, (size_t)n * sizeof *x);
        softmax_scalar(want, n, divisor);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            memcpy(got, x, (size_t)n * sizeof *x);
            k->softmax(got, n, divisor);
            int bad = 0; /* the same bits, or NaN both (which NaN: as the additions' operands fell) */
            for (int i = 0; i < n; i++) bad += memcmp(&got[i], &want[i], sizeof *got) && !(isnan(got[i]) && isnan(want[i]));
            CHECKF(bad == 0, "%s: n=%d kind=%d divisor %g: %d values differ from the scalar", k->name, n, trial % 4,
                   divisor, bad);
        }
        free(x), free(want), free(got);
    }
}

/* Random gates and ups over many magnitudes, then the values at the edges. */
static float swiglu_test_value(uint64_t *rng, int i) {
    static const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 40.0f, -40.0f, 88.0f, -88.0f, 104.0f, -104.0f,
                                  709.5f, -709.5f, 1e30f, -1e30f, 1e-40f, -1e-40f, INFINITY, -INFINITY, NAN};
    const int n_edges = (int)(sizeof edges / sizeof edges[0]);
    if (i % 97 < n_edges) return edges[i % 97];
    const double mag = pow(10.0, (double)(test_rand(rng) % 9000) / 1000.0 - 5.0); /* 1e-5 .. 1e4 */
    return (float)((test_rand(rng) & 1 ? -mag : mag) * (double)(test_rand(rng) % 1000 + 1) / 1000.0);
}

/* The float SwiGLU gives libm's double SiLU rounded once, but for a value that lands within
 * silu_exp's error of a rounding boundary between floats (odds near 2^-27 per value), and
 * but for infinite gates, where both give a value that is not finite. */
static void test_swiglu_matches_libm(void) {
    uint64_t rng = 7;
    const int n = 1 << 20;
    float *gate = malloc((size_t)n * sizeof *gate), *up = malloc((size_t)n * sizeof *up);
    float *want = malloc((size_t)n * sizeof *want);
    CHECK(gate && up && want);
    if (!gate || !up || !want) goto out;
    for (int i = 0; i < n; i++) {
        gate[i] = swiglu_test_value(&rng, i), up[i] = swiglu_test_value(&rng, i + 31);
        const double g = gate[i];
        want[i] = (float)(g * (1.0 / (1.0 + exp(-g)))) * up[i];
    }
    swiglu_scalar(gate, up, n);
    int differ = 0;
    for (int i = 0; i < n; i++) {
        if (memcmp(&gate[i], &want[i], sizeof want[i]) == 0 || (isnan(gate[i]) && isnan(want[i]))) continue;
        if (!isfinite(want[i])) { /* an infinite gate: -inf * 0 is NaN in libm's, -inf here */
            CHECKF(!isfinite(gate[i]), "value %d: %.9g, libm gives %.9g", i, gate[i], want[i]);
            continue;
        }
        differ++;
        CHECKF(nextafterf(want[i], gate[i]) == gate[i], "value %d: %.9g, libm gives %.9g", i, gate[i], want[i]);
    }
    printf("    %d of %d values a float ulp from libm's\n", differ, n);
    CHECKF(differ <= 2, "%d values differ from libm's", differ);
out:
    free(gate), free(up), free(want);
}

static void test_swiglu_same_every_level(void) {
    uint64_t rng = 11;
    for (int trial = 0; trial < 300; trial++) {
        const int n = trial < 40 ? trial + 1 : test_rand_range(&rng, 1, 6000);
        float *gate = malloc((size_t)n * sizeof *gate), *up = malloc((size_t)n * sizeof *up);
        float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
        CHECK(gate && up && want && got);
        if (!gate || !up || !want || !got) { free(gate), free(up), free(want), free(got); return; }
        for (int i = 0; i < n; i++) gate[i] = swiglu_test_value(&rng, i + trial), up[i] = swiglu_test_value(&rng, i);
        memcpy(want, gate, (size_t)n * sizeof *want);
        swiglu_scalar(want, up, n);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            memcpy(got, gate, (size_t)n * sizeof *got);
            k->swiglu(got, up, n);
            CHECKF(memcmp(got, want, (size_t)n * sizeof *got) == 0, "%s: n=%d differs from the scalar", k->name, n);
        }
        free(gate), free(up), free(want), free(got);
    }
}

/* The float conversion of a tile: every level gives the scalar floats, bit for bit. */
static void test_r4_finish_exact_every_level(void) {
    uint64_t rng = 777;
    int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
    float sa[QR_TILE_TOKENS], sw[QR_BLOCK_ROWS], want[QR_TILE_TOKENS * 20], got[QR_TILE_TOKENS * 20];
    for (int trial = 0; trial < 200; trial++) {
        const int nt = test_rand_range(&rng, 1, QR_TILE_TOKENS), rows = test_rand_range(&rng, 1, QR_BLOCK_ROWS);
        for (int i = 0; i < QR_TILE_TOKENS * QR_BLOCK_ROWS; i++) /* up to 2^40: rounding matters */
            acc[i] = (int64_t)(test_rand(&rng) % (1ULL << 41)) - (1LL << 40);
        for (int t = 0; t < nt; t++) sa[t] = (float)(test_rand(&rng) % 10000 + 1) * 1e-9f;
        for (int r = 0; r < rows; r++) sw[r] = (float)(test_rand(&rng) % 10000 + 1) * 1e-5f;
        r4_finish_scalar(want, 20, acc, nt, rows, sa, sw);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            memset(got, 0, sizeof got);
            k->r4_finish(got, 20, acc, nt, rows, sa, sw);
            int bad = 0;
            for (int t = 0; t < nt; t++)
                for (int r = 0; r < 20; r++) bad += r < rows ? got[t * 20 + r] != want[t * 20 + r] : got[t * 20 + r] != 0;
            CHECKF(bad == 0, "%s: nt=%d rows=%d: %d floats differ or written past rows", k->name, nt, rows, bad);
        }
    }
}

/* Activation quantizers: every level writes the bytes of the scalar definition, on random
 * vectors, exact .5 ties (s = 1 when the largest value is 32767), zeros and tiny values. */
static void test_quantizers_exact_every_level(void) {
    uint64_t rng = 1234;
    float x[700];
    for (int trial = 0; trial < 400; trial++) {
        const int n = test_rand_range(&rng, 1, 700), G = 16 << (trial % 4);
        const QuantKind kind = trial % 3 == 2 ? QUANT_RTN4 : QUANT_SDR;
        const int rounding = trial % 5 != 4, style = trial % 4;
        for (int i = 0; i < n; i++) {
            const double u = (double)(test_rand(&rng) % 2000001) / 1000000.0 - 1.0;
            x[i] = style == 0   ? (float)u                                    /* uniform */
                   : style == 1 ? (float)((int)(u * 32767) + 0.5)             /* ties */
                   : style == 2 ? (float)(u * u * u * 1e-30)                  /* tiny */
                                : (test_rand(&rng) % 3 ? 0.0f : (float)u);    /* sparse */
        }
        if (style == 1) x[test_rand_range(&rng, 0, n - 1)] = 32767.0f; /* s = 1: exact ties */
        if (trial % 7 == 3) { /* non-finite and huge inputs: every level defined, and alike */
            const float odd[] = {NAN, -NAN, INFINITY, -INFINITY, 3e38f, -3e38f};
            for (int k = 0; k < 3; k++) x[test_rand_range(&rng, 0, n - 1)] = odd[test_rand(&rng) % 6];
        }
        if (trial % 50 == 0) memset(x, 0, sizeof x);                     /* all zero */
        R4Acts ref, got;
        if (!CHECK(r4_acts_alloc(&ref, 1, n, G) == 0 && r4_acts_alloc(&got, 1, n, G) == 0)) return;
        const int base = trial % 2 ? QMAX_INT16 : QMAX_INT8; /* activations, key/value entries */
        r4_acts_shape(&ref, 1, n);
        r4_acts_quantize_scalar(&ref, 0, x, kind, base, rounding);
        for (int l = 0; l < SIMD_LEVELS; l++) {
            const KernelTable *k = test_level(l);
            if (!k) continue;
            r4_acts_shape(&got, 1, n);
            memset(got.codes, 0x55, (size_t)got.stride); /* padding must be written as 0 */
            k->quantize_r4(&got, 0, x, kind, base, rounding);
            const int same = !memcmp(ref.codes, got.codes, (size_t)ref.stride) &&
                             !memcmp(ref.shifts, got.shifts, (size_t)ref.n_groups * sizeof(int32_t)) &&
                             ref.scale[0] == got.scale[0];
            CHECKF(same, "%s: n=%d G=%d kind=%d rounding=%d style=%d: different bytes", k->name, n, G,
                   kind, rounding, style);
        }
        r4_acts_free(&ref);
        r4_acts_free(&got);
    }
}

/* ------------------------------------------------------------------ threads */

/* What a parallel for did: how often each item was run, and by which thread. */
enum { LOOP_MAX_ITEMS = 1000 };
typedef struct {
    _Atomic int runs[LOOP_MAX_ITEMS];
    int by[LOOP_MAX_ITEMS];
    int grain, too_long, slow_thread;
} LoopLog;

static void log_range(void *ctx, int thread, int i0, int i1) {
    LoopLog *rec = ctx;
    if (i1 - i0 > rec->grain || i0 < 0 || i1 > LOOP_MAX_ITEMS || i0 >= i1) {
        rec->too_long = 1; /* only a broken pool gets here, so a racy write is fine */
        return;
    }
    for (int i = i0; i < i1; i++) atomic_fetch_add(&rec->runs[i], 1), rec->by[i] = thread;
    if (thread == rec->slow_thread) nanosleep(&(struct timespec){0, 5000000}, NULL); /* 5 ms */
}

/* Every item of [0, n) runs exactly once, in ranges of at most `grain` (one range on one
 * thread), for any n, grain and thread count; and a slowed thread's share is taken over
 * by the others. */
static void test_threadpool_runs_every_item_once(void) {
    static LoopLog rec;
    const int counts[] = {1, 2, 3, 8}, sizes[] = {1, 2, 7, 64, 999, 1000}, grains[] = {1, 3, 16, 1000};
    for (int c = 0; c < 4; c++) {
        ThreadPool *pool = threadpool_new(counts[c]);
        if (!CHECK(pool != NULL)) continue;
        for (int s = 0; s < 6; s++)
            for (int g = 0; g < 4; g++) {
                memset(&rec, 0, sizeof rec);
                rec.grain = counts[c] == 1 ? sizes[s] : grains[g], rec.slow_thread = -1; /* 1: all at once */
                threadpool_parallel_for(pool, sizes[s], grains[g], log_range, &rec);
                int wrong = rec.too_long;
                for (int i = 0; i < LOOP_MAX_ITEMS; i++) wrong += atomic_load(&rec.runs[i]) != (i < sizes[s]);
                CHECKF(!wrong, "%d threads, n %d, grain %d: %d items not run exactly once", counts[c], sizes[s],
                       grains[g], wrong);
            }
        threadpool_free(pool);
    }
    /* Thread 1 sleeps 5 ms after each of its ranges: its share is [50, 100), 10 ranges,
     * and the caller, done with its own in microseconds, takes most of the rest. */
    ThreadPool *pool = threadpool_new(2);
    if (!CHECK(pool != NULL)) return;
    memset(&rec, 0, sizeof rec);
    rec.grain = 5, rec.slow_thread = 1;
    threadpool_parallel_for(pool, 100, 5, log_range, &rec);
    int by_caller = 0;
    for (int i = 0; i < 100; i++) by_caller += rec.by[i] == 0;
    CHECKF(by_caller > 50, "the caller ran %d of 100 items: nobody helped the slowed thread", by_caller);
    threadpool_free(pool);
}

static void test_matmul_same_for_any_thread_count(void) {
    uint64_t rng = 31337;
    const int rows = 200, cols = 700, n = 3; /* big enough to be split across threads */
    R4Problem p;
    if (!CHECK(r4_problem(&p, &rng, rows, cols, 32, n, 0, 1) == 0)) return;
    for (int r = 0; r < rows; r++) p.w.scales[r] = 0.001f * (float)(r + 1);
    for (int t = 0; t < n; t++) p.x.scale[t] = 0.37f / (float)(t + 1);
    float *fw = malloc((size_t)rows * cols * sizeof *fw), *fx = malloc((size_t)n * cols * sizeof *fx);
    for (int i = 0; i < rows * cols; i++) fw[i] = (float)(test_rand(&rng) % 1000) / 997.0f - 0.5f;
    for (int i = 0; i < n * cols; i++) fx[i] = (float)(test_rand(&rng) % 1000) / 991.0f - 0.5f;
    float *y1 = malloc((size_t)n * rows * sizeof *y1), *yk = malloc((size_t)n * rows * sizeof *yk);
    float *f1 = malloc((size_t)n * rows * sizeof *f1), *fk = malloc((size_t)n * rows * sizeof *fk);

    /* The reference: one thread. Floats are checked against the exact accumulators. */
    matmul_r4(y1, (size_t)rows, &p.w, rows, &p.x, NULL);
    const MatmulIn fin = {.f32 = fx, .cols = cols, .n = n, .x_stride = (size_t)cols};
    const MatmulOut fout1 = {.y = f1, .y_stride = (size_t)rows, .n_rows = rows, .f32 = fw};
    const MatmulOut foutk = {.y = fk, .y_stride = (size_t)rows, .n_rows = rows, .f32 = fw};
    matmul_shared(&fout1, 1, &fin, NULL);
    int bad = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++)
            bad += y1[t * rows + r] != ((float)p.want[(size_t)t * rows + r] * p.x.scale[t]) * p.w.scales[r];
    CHECKF(bad == 0, "%d outputs are not ((float)acc * Sa) * Sw", bad);

    const int counts[] = {2, 3, 8};
    for (int i = 0; i < 3; i++) {
        ThreadPool *pool = threadpool_new(counts[i]);
        if (!CHECK(pool != NULL)) continue;
        for (int rep = 0; rep < 20; rep++) { /* repeated runs exercise the pool's handshake */
            matmul_r4(yk, (size_t)rows, &p.w, rows, &p.x, pool);
            matmul_shared(&foutk, 1, &fin, pool);
            CHECKF(!memcmp(y1, yk, (size_t)n * rows * sizeof *y1), "r4: %d threads differ", counts[i]);
            CHECKF(!memcmp(f1, fk, (size_t)n * rows * sizeof *f1), "f32: %d threads differ", counts[i]);
        }
        threadpool_free(pool);
    }
    free(fw), free(fx), free(y1), free(yk), free(f1), free(fk);
    r4_problem_free(&p);
}

void suite_kernels(void) {
    test_run("kernels_stage1_rounds_half_away", test_stage1_rounds_half_away);
    test_run("kernels_sdr_matches_golden_vectors", test_sdr_matches_golden_vectors);
    test_run("kernels_sdr_truncation", test_sdr_truncation);
    test_run("kernels_sdr_five_bit_codes", test_sdr_five_bit_codes);
    test_run("kernels_r4_pack_roundtrip", test_r4_pack_roundtrip);
    test_run("kernels_r4_exact_every_level", test_r4_kernels_exact);
    test_run("kernels_r4_long_reduction_no_overflow_every_level", test_r4_long_reduction_no_overflow);
    test_run("kernels_i8_exact_every_level", test_i8_kernels_exact);
    test_run("kernels_quantizers_exact_every_level", test_quantizers_exact_every_level);
    test_run("kernels_r4_finish_exact_every_level", test_r4_finish_exact_every_level);
    test_run("kernels_f32_same_every_level", test_f32_kernels_same_every_level);
    test_run("kernels_threadpool_runs_every_item_once", test_threadpool_runs_every_item_once);
    test_run("kernels_matmul_same_for_any_thread_count", test_matmul_same_for_any_thread_count);
    test_run("kernels_exp_core_accuracy", test_exp_core_accuracy);
    test_run("kernels_softmax_exp_matches_expf", test_softmax_exp_matches_expf);
    test_run("kernels_softmax_same_every_level", test_softmax_same_every_level);
    test_run("kernels_swiglu_matches_libm", test_swiglu_matches_libm);
    test_run("kernels_swiglu_same_every_level", test_swiglu_same_every_level);
}
