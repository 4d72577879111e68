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

#include "engine/transformer.h"
#include "kernels/hadamard.h"
#include "kernels/simd.h"
#include "tests/golden.h"
#include "tests/test.h"
#include "weights/model.h"

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

/* ------------------------------------------------------------------ the knob */

/* `rot` combines with every mode; rtn4 with it is quarot, by either name. */
static void test_mode_names(void) {
    static const char *const given[][2] = {{"quarot", "quarot"},          {"rtn4/rot", "quarot"},
                                           {"quarot/cls=fp32", "quarot/cls=fp32"}, {"qrazor/rot", "qrazor/rot"},
                                           {"qrazor/g32/rot/k8", "qrazor/rot/g32/k8"}, {"fp32/rot", "fp32/rot"},
                                           {"w8a16/rot", "w8a16/rot"}, {"sdr-kv/rot", "sdr-kv/rot"}, {"rtn4", "rtn4"}};
    for (size_t k = 0; k < sizeof given / sizeof given[0]; k++) {
        QuantConfig q;
        char err[256] = "", name[64] = "";
        if (!CHECKF(quant_config_parse(given[k][0], &q, err, sizeof err) == 0, "%s: %s", given[k][0], err)) continue;
        quant_config_name(&q, name, sizeof name);
        CHECKF(!strcmp(name, given[k][1]) && q.rotate == (strcmp(given[k][0], "rtn4") != 0), "%s is named %s",
               given[k][0], name);
        CHECK(quant_config_check(&q, err, sizeof err) == 0);
    }
    QuantConfig q;
    char err[256] = "";
    CHECK(quant_config_parse("quarot", &q, err, sizeof err) == 0 && q.weights == QUANT_RTN4 && q.keys == QUANT_RTN4);
    CHECKF(quant_config_parse("quarot/k5", &q, err, sizeof err) != 0 && strstr(err, "qrazor only"), "%s", err);
    CHECKF(quant_config_parse("qrazor/rotate", &q, err, sizeof err) != 0 && strstr(err, "rot,"), "%s", err);
}

/* ------------------------------------------------------------------ whole models */

/* The oracle's -rot files (tools/oracle.py --rot): every case has fp32-rot, rtn4-rot and
 * qrazor-g16-rot, and `modes` more. stories260K's hidden size 172 = 4 x 43 and wide48's head
 * size 48 = 16 x 3 have partial power-of-two blocks. */
static const GoldenCase rot_cases[] = {
    {"models/stories260K.bin", "tests/data/golden/stories260K-rot/lily", "w8a16-rot rtn4-rot-clsq"},
    {"tests/data/llama2xs.bin", "tests/data/golden/llama2xs-rot/park", ""},
    {"tests/data/wide64.bin", "tests/data/golden/wide64-rot/sara", "qrazor-g64-rot"},
    {"tests/data/wide48.bin", "tests/data/golden/wide48-rot/sara", ""},
};
enum { N_ROT_CASES = sizeof rot_cases / sizeof rot_cases[0] };

/* Every -rot golden case in every mode it has, at every SIMD level, on one thread and on
 * three (tests/test_reference.c checks the same modes bit for bit against the reference
 * at every level and thread count, batched and not). Tolerances as without rotations
 * (tests/test_forward.c): 1e-4 of the logit range for fp32, where the oracle adds in
 * float64; golden_tolerance for the integer modes. */
static void test_golden_every_level(void) {
    ThreadPool *pool = threadpool_new(3);
    if (!CHECK(pool != NULL)) return;
    const SimdLevel start = simd_current();
    for (int l = 0; l < SIMD_LEVELS; l++) {
        if (!test_level(l)) continue;
        simd_use(simd_level_name((SimdLevel)l));
        for (int c = 0; c < N_ROT_CASES; c++) {
            char modes[160];
            snprintf(modes, sizeof modes, "fp32-rot rtn4-rot qrazor-g16-rot %s", rot_cases[c].modes);
            char *save = NULL;
            for (char *m = strtok_r(modes, " ", &save); m; m = strtok_r(NULL, " ", &save)) {
                const double tolerance = strcmp(m, "fp32-rot") ? golden_tolerance(m) : 1e-4;
                golden_check_case(&rot_cases[c], m, tolerance, NULL);
                golden_check_case(&rot_cases[c], m, tolerance, pool);
            }
        }
    }
    simd_use(simd_level_name(start));
    threadpool_free(pool);
}

/* A float32 model computes the same function rotated: the logits of fp32/rot are those of
 * fp32 but for float rounding (the oracle finds 2.4e-7 of the logit range between the two).
 * Every rotated product adds in another basis, so the rounding differs in the last bits of
 * every activation; 1e-5 of the range bounds what that amounts to through these models. */
static void test_fp32_rot_is_fp32(void) {
    static const char *const models[] = {"models/stories260K.bin", "tests/data/llama2xs.bin", "tests/data/wide64.bin",
                                         "tests/data/wide48.bin"};
    enum { N = 40 };
    for (int k = 0; k < 4; k++) {
        float *logits[2] = {NULL, NULL};
        int vocab = 0;
        for (int rot = 0; rot < 2; rot++) {
            char err[256] = "";
            QuantConfig q;
            ModelWeights w;
            quant_config_parse(rot ? "fp32/rot" : "fp32", &q, err, sizeof err);
            if (!CHECKF(model_open(&w, models[k], &q, NULL, err, sizeof err) == 0, "%s", err)) continue;
            Transformer *t = transformer_new(&w, NULL, N, err, sizeof err);
            vocab = w.cfg.vocab_size;
            int tokens[N];
            for (int i = 0; i < N; i++) tokens[i] = i ? (i * 37 + 11) % vocab : 1;
            logits[rot] = malloc((size_t)N * vocab * sizeof(float));
            CHECKF(t && logits[rot] && transformer_run(t, tokens, N, 0, logits[rot]), "%s", err);
            transformer_free(t);
            model_close(&w);
        }
        double worst = 0;
        for (int pos = 0; logits[0] && logits[1] && pos < N; pos++) {
            const float *a = logits[0] + (size_t)pos * vocab, *b = logits[1] + (size_t)pos * vocab;
            float lo = a[0], hi = a[0];
            double d = 0;
            for (int i = 0; i < vocab; i++) {
                lo = a[i] < lo ? a[i] : lo, hi = a[i] > hi ? a[i] : hi;
                d = fmax(d, fabs((double)a[i] - b[i]));
            }
            worst = fmax(worst, d / (hi - lo));
        }
        printf("    %s: fp32/rot differs from fp32 by %.2e of the logit range\n", models[k], worst);
        CHECKF(logits[0] && logits[1] && worst <= 1e-5, "%s: fp32/rot is %.3g of the range from fp32", models[k], worst);
        free(logits[0]), free(logits[1]);
    }
}

void suite_rotation(void) {
    test_run("rotation_block_and_signs", test_block_and_signs);
    test_run("rotation_f64_is_the_matrix", test_f64_is_the_matrix);
    test_run("rotation_scalar_is_the_matrix", test_scalar_is_the_matrix);
    test_run("rotation_hadamard_same_every_level", test_hadamard_same_every_level);
    test_run("rotation_mode_names", test_mode_names);
    test_run("rotation_golden_every_level_and_thread_count", test_golden_every_level);
    test_run("rotation_fp32_rot_is_fp32", test_fp32_rot_is_fp32);
}
