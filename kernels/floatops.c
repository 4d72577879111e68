/*
 * kernels/floatops.c - RMSNorm, softmax, RoPE and SwiGLU in float32.
 *
 * Two choices here are about reproducibility, not speed:
 *   - Sums (RMSNorm's mean square, softmax's normalizer) are pairwise: eight running
 *     partial sums combined as a tree, halves recursively above 128 terms. It is more
 *     accurate than a running sum, it is the order an 8-lane SIMD loop produces, and it is
 *     NumPy's order, so the engine and the NumPy oracle of docs/SPEC.md agree to the bit.
 *   - SiLU is evaluated in double precision and rounded once, as the oracle does.
 * In the integer modes these matter: every float here feeds a quantizer, and a value
 * that lands exactly on a rounding boundary (x / s = k + 0.5 happens by chance, and
 * structurally in RTN4) is decided by its last bit.
 */
#include "kernels/floatops.h"

#include <math.h>
#include <stddef.h>

/* Pairwise sum of a[0..n) (of a[i]^2 if square): NumPy's float32 summation order. */
static float pairwise_sum(const float *a, int n, int square) {
    if (n < 8) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += square ? a[i] * a[i] : a[i];
        return s;
    }
    if (n <= 128) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = square ? a[j] * a[j] : a[j];
        int i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += square ? a[i + j] * a[i + j] : a[i + j];
        float s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += square ? a[i] * a[i] : a[i];
        return s;
    }
    const int half = n / 2 - (n / 2) % 8;
    return pairwise_sum(a, half, square) + pairwise_sum(a + half, n - half, square);
}

void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    const float mean_square = pairwise_sum(x, n, 1) / (float)n + eps;
    const float inv = 1.0f / sqrtf(mean_square);
    for (int i = 0; i < n; i++) o[i] = w[i] * (inv * x[i]);
}

void softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++) x[i] = expf(x[i] - max);
    const float sum = pairwise_sum(x, n, 0);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void rope_angles(float *cos_t, float *sin_t, int pos, int head_size, double theta) {
    for (int i = 0; i < head_size / 2; i++) {
        const double angle = (double)pos * (1.0 / pow(theta, (double)(2 * i) / (double)head_size));
        cos_t[i] = (float)cos(angle);
        sin_t[i] = (float)sin(angle);
    }
}

void rope_rotate(float *v, int n_vecs, int len, const float *cos_t, const float *sin_t) {
    for (int h = 0; h < n_vecs; h++) {
        float *vh = v + (size_t)h * (size_t)len;
        for (int i = 0; i < len / 2; i++) {
            const float v0 = vh[2 * i], v1 = vh[2 * i + 1], c = cos_t[i], s = sin_t[i];
            vh[2 * i] = v0 * c - v1 * s;
            vh[2 * i + 1] = v0 * s + v1 * c;
        }
    }
}

void swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const double g = gate[i];
        gate[i] = (float)(g * (1.0 / (1.0 + exp(-g)))) * up[i];
    }
}
