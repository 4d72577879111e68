/*
 * tests/test_rotation.c - the rotations of docs/SPEC.md section 7 (QuaRot-style, the knob
 * `rot` of every mode).
 *
 *   - Q_n (kernels/hadamard.c) is the matrix the spec describes: built here entry by entry
 *     from Sylvester's definition of a Hadamard matrix, H[i][j] = (-1)^popcount(i & j), with
 *     the spec's signs and scale; it keeps lengths; every SIMD level gives the scalar bits.
 *   - Whole models against the oracle's golden -rot files, and fp32/rot against fp32.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/hadamard.h"
#include "kernels/simd.h"
#include "tests/test.h"

/* ------------------------------------------------------------------ Q_n itself */

/* s_i of docs/SPEC.md section 7, step 1, as its words say. */
static double spec_sign(int i) {
    const uint32_t h = (uint32_t)i * 2654435761u + 0x9E3779B9u;
    return (h >> 31) & 1 ? -1.0 : 1.0;
}

/* (Q_n x)_i from the matrix: block b = i / B holds (1 / sqrt(B)) H_B diag(s) of its B
 * elements, with H_B[r][c] = (-1)^popcount(r & c). */
static double spec_rotated(const double *x, int n, int i) {
    const int B = n & -n, b = i / B * B, r = i % B;
    double sum = 0;
    for (int c = 0; c < B; c++) sum += (__builtin_popcount((unsigned)(r & c)) & 1 ? -1.0 : 1.0) * spec_sign(b + c) * x[b + c];
    return sum / sqrt((double)B);
}

static double test_value(uint64_t *rng) { return (double)(int64_t)(test_rand(rng) % 2000001) / 1000.0 - 1000.0; }

/* The block sizes the spec lists, and the signs of the first elements worked out by hand:
 * h(0) = 0x9E3779B9 has bit 31 set, h(1) = 0x3C6EF36A (after wrapping) has not. */
static void test_block_and_signs(void) {
    const int n[] = {64, 172, 288, 768, 5632, 8, 48, 1, 3}, B[] = {64, 4, 32, 256, 512, 8, 16, 1, 1};
    for (int k = 0; k < 9; k++) CHECKF(hadamard_block(n[k]) == B[k], "B of %d is %d", n[k], hadamard_block(n[k]));
    CHECK(hadamard_flips(0) && !hadamard_flips(1));
    int wrong = 0;
    for (int i = 0; i < 100000; i++) wrong += hadamard_flips(i) != (spec_sign(i) < 0);
    CHECKF(wrong == 0, "%d of the first 100000 signs differ from the spec's", wrong);
}

/* hadamard_f64 is the matrix product (within the rounding of a few additions), keeps the
 * length, and rotates a matrix's columns with one call exactly as one call per column. */
static void test_f64_is_the_matrix(void) {
    static const int lengths[] = {1, 2, 8, 48, 64, 172, 288, 344};
    uint64_t rng = 5;
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const int n = lengths[k];
        double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        double *cols = malloc((size_t)n * 3 * sizeof *cols);
        if (!CHECK(x && y && cols)) return;
        double norm_x = 0, norm_y = 0, worst = 0;
        for (int i = 0; i < n; i++) x[i] = y[i] = test_value(&rng), norm_x += x[i] * x[i];
        hadamard_f64(y, n, 1, 1);
        for (int i = 0; i < n; i++) {
            worst = fmax(worst, fabs(y[i] - spec_rotated(x, n, i)));
            norm_y += y[i] * y[i];
        }
        CHECKF(worst <= 1e-9, "n=%d: %.3g from the matrix product", n, worst);
        CHECKF(fabs(norm_y - norm_x) <= 1e-12 * norm_x, "n=%d: the length changed", n);
        for (int i = 0; i < n; i++) /* three columns: x, -x, 2x */
            cols[3 * i] = x[i], cols[3 * i + 1] = -x[i], cols[3 * i + 2] = 2 * x[i];
        hadamard_f64(cols, n, 3, 3);
        int same = 1;
        for (int i = 0; i < n; i++) same &= cols[3 * i] == y[i] && cols[3 * i + 1] == -y[i] && cols[3 * i + 2] == 2 * y[i];
        CHECKF(same, "n=%d: a matrix's columns are not rotated as vectors", n);
        free(x), free(y), free(cols);
    }
}

/* The float32 definition is the matrix product too, within float rounding, on each of
 * several vectors. */
static void test_scalar_is_the_matrix(void) {
    static const int lengths[] = {1, 8, 48, 64, 172, 768};
    uint64_t rng = 9;
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const int n = lengths[k], vecs = 3;
        float *v = malloc((size_t)n * vecs * sizeof *v);
        double *x = malloc((size_t)n * sizeof *x);
        if (!CHECK(v && x)) return;
        for (int i = 0; i < n * vecs; i++) v[i] = (float)test_value(&rng);
        float *orig = malloc((size_t)n * vecs * sizeof *orig);
        memcpy(orig, v, (size_t)n * vecs * sizeof *v);
        hadamard_scalar(v, vecs, n);
        for (int t = 0; t < vecs; t++) {
            double worst = 0, big = 0;
            for (int i = 0; i < n; i++) x[i] = orig[t * n + i], big = fmax(big, fabs(x[i]));
            for (int i = 0; i < n; i++) worst = fmax(worst, fabs(v[t * n + i] - spec_rotated(x, n, i)));
            CHECKF(worst <= 1e-5 * big, "n=%d vector %d: %.3g from the matrix product", n, t, worst);
        }
        free(v), free(x), free(orig);
    }
}

static void test_hadamard_same_every_level(void) {
    static const int lengths[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 172, 256, 288, 344, 768, 2048, 5632};
    uint64_t rng = 13;
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        for (int vecs = 1; vecs <= 3; vecs += 2) {
            const int n = lengths[k];
            float *want = malloc((size_t)n * vecs * sizeof *want), *got = malloc((size_t)n * vecs * sizeof *got);
            float *in = malloc((size_t)n * vecs * sizeof *in);
            if (!CHECK(want && got && in)) return;
            for (int i = 0; i < n * vecs; i++) /* magnitudes from 1e-6 to 1e6, and zeros of both signs */
                in[i] = i % 17 == 3 ? (i % 2 ? -0.0f : 0.0f)
                                    : (float)(test_value(&rng) * pow(10.0, (double)(test_rand(&rng) % 13) - 6.0));
            memcpy(want, in, (size_t)n * vecs * sizeof *in);
            hadamard_scalar(want, vecs, n);
            for (int l = 0; l < SIMD_LEVELS; l++) {
                const KernelTable *kt = test_level(l);
                if (!kt) continue;
                memcpy(got, in, (size_t)n * vecs * sizeof *in);
                kt->hadamard(got, vecs, n);
                CHECKF(!memcmp(got, want, (size_t)n * vecs * sizeof *got), "%s: n=%d x %d differs from the scalar",
                       kt->name, n, vecs);
            }
            free(want), free(got), free(in);
        }
    }
}

void suite_rotation(void) {
    test_run("rotation_block_and_signs", test_block_and_signs);
    test_run("rotation_f64_is_the_matrix", test_f64_is_the_matrix);
    test_run("rotation_scalar_is_the_matrix", test_scalar_is_the_matrix);
    test_run("rotation_hadamard_same_every_level", test_hadamard_same_every_level);
}
