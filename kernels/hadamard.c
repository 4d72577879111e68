/*
 * kernels/hadamard.c - Q_n of docs/SPEC.md section 7, in double and in float32.
 *
 * The order of operations is the spec's and the oracle's: signs first, then the butterfly
 * stages h = 1, 2, 4, ..., B/2 one after the other, then the scale. A butterfly is one
 * addition and one subtraction, so any code that pairs the same elements at each stage
 * (a SIMD level does several pairs at once) rounds exactly as this one does.
 */
#include "kernels/hadamard.h"

#include <math.h>
#include <stdint.h>

#include "kernels/simd.h"

int hadamard_block(int n) { return n & -n; }

int hadamard_flips(int i) { return (int)(((uint32_t)i * 2654435761u + 0x9E3779B9u) >> 31); }

/* a, b = a + b, a - b on width doubles: in blocks of 8 with a fixed inner count, which
 * compilers vectorize even at -O2 for a plain x86-64, then the rest. */
static void butterfly_f64(double *restrict a, double *restrict b, size_t width) {
    size_t k = 0;
    for (; k + 8 <= width; k += 8)
        for (int e = 0; e < 8; e++) {
            const double u = a[k + e], v = b[k + e];
            a[k + e] = u + v;
            b[k + e] = u - v;
        }
    for (; k < width; k++) {
        const double u = a[k], v = b[k];
        a[k] = u + v;
        b[k] = u - v;
    }
}

void hadamard_f64(double *x, int n, size_t stride, size_t width) {
    const int B = hadamard_block(n);
    const double scale = 1.0 / sqrt((double)B);
    for (int i = 0; i < n; i++)
        if (hadamard_flips(i))
            for (size_t k = 0; k < width; k++) x[i * stride + k] = -x[i * stride + k];
    for (int h = 1; h < B; h *= 2)
        for (int j = 0; j < n; j += 2 * h) /* the pairs (i, i + h) of each run of 2h */
            for (int i = j; i < j + h; i++) butterfly_f64(x + i * stride, x + (i + h) * stride, width);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < width; k++) x[i * stride + k] *= scale;
}

/* Runs of 2h never straddle two blocks: 2h divides B, which divides len. */
void hadamard_scalar(float *v, int n_vecs, int len) {
    const int B = hadamard_block(len);
    const float scale = (float)(1.0 / sqrt((double)B)); /* in double, rounded once */
    for (int t = 0; t < n_vecs; t++) {
        float *x = v + (size_t)t * len;
        for (int i = 0; i < len; i++)
            if (hadamard_flips(i)) x[i] = -x[i];
        for (int h = 1; h < B; h *= 2)
            for (int j = 0; j < len; j += 2 * h)
                for (int i = j; i < j + h; i++) {
                    const float a = x[i], b = x[i + h];
                    x[i] = a + b;
                    x[i + h] = a - b;
                }
        for (int i = 0; i < len; i++) x[i] *= scale;
    }
}

void hadamard(float *v, int n_vecs, int len) { simd_current_kernels()->hadamard(v, n_vecs, len); }
