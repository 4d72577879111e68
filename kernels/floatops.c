/*
 * kernels/floatops.c - RMSNorm, softmax, RoPE and SwiGLU in float32.
 *
 * Two choices here are about reproducibility, not speed:
 *   - Sums (RMSNorm's mean square, softmax's normalizer) are pairwise: eight running
 *     partial sums combined as a tree, halves recursively above 128 terms. It is more
 *     accurate than a running sum, it is the order an 8-lane SIMD loop produces, and it is
 *     NumPy's order, so the engine and the NumPy oracle of docs/SPEC.md agree to the bit.
 *   - SiLU is evaluated in double precision and rounded once, as the oracle does, and
 *     softmax's exp in double rounded once to float (correctly rounded but in rare
 *     near-halfway cases), with an exp of our own (exp_core) whose additions and
 *     multiplications the SIMD levels repeat lane by lane, so that every level gives the
 *     same bits.
 * In the integer modes these matter: every float here feeds a quantizer, and a value
 * that lands exactly on a rounding boundary (x / s = k + 0.5 happens by chance, and
 * structurally in RTN4) is decided by its last bit.
 */
#include "kernels/floatops.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/simd.h"

/* Pairwise sum of a[0..n) (of a[i]^2 if square): NumPy's float32 summation order. */
static float pairwise_sum_of(const float *a, int n, int square) {
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
    return pairwise_sum_of(a, half, square) + pairwise_sum_of(a + half, n - half, square);
}

float pairwise_sum(const float *a, int n) { return pairwise_sum_of(a, n, 0); }

void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    const float mean_square = pairwise_sum_of(x, n, 1) / (float)n + eps;
    const float inv = 1.0f / sqrtf(mean_square);
    for (int i = 0; i < n; i++) o[i] = w[i] * (inv * x[i]);
}

void softmax_scalar(float *x, int n, float divisor) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) {
        x[i] /= divisor;
        max = x[i] > max ? x[i] : max; /* a NaN is skipped */
    }
    for (int i = 0; i < n; i++) x[i] = softmax_exp(x[i] - max);
    const float sum = pairwise_sum(x, n);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void softmax_scaled(float *x, int n, float divisor) { simd_current_kernels()->softmax(x, n, divisor); }

void softmax(float *x, int n) { softmax_scaled(x, n, 1.0f); }

void rope_angles(float *cos_t, float *sin_t, int pos, int n_pairs, const double *inv_freq) {
    for (int i = 0; i < n_pairs; i++) {
        const double angle = (double)pos * inv_freq[i];
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

/* exp(x) = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2, |r| <= ln2 / 2; e^r by its
 * Taylor series to r^13 (the next term, below 0.35^14 / 14! = 4e-18, is out of reach of a
 * double). ln 2 is split in two: SILU_EXP_LN2_HI has 32 trailing zero bits, so
 * n * SILU_EXP_LN2_HI is exact and r loses nothing to cancellation. The series is summed
 * by Estrin's scheme, pairs of terms, then pairs of pairs: a chain of 4 multiply-adds where
 * Horner's rule has 13, which lets a SIMD level start the next lanes sooner. */
const double silu_exp_taylor[SILU_EXP_TERMS] = { /* 1/k! for k = 0 .. 13 */
    1.0, 1.0, 1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0,
    1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0};

double exp_core(double x) {
    const double *c = silu_exp_taylor;
    const double n = floor(x * SILU_EXP_LOG2E + 0.5);
    const double r = (x - n * SILU_EXP_LN2_HI) - n * SILU_EXP_LN2_LO;
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double q[7]; /* q[j] = c[2j] + c[2j+1] r */
    for (int j = 0; j < 7; j++) q[j] = c[2 * j] + c[2 * j + 1] * r;
    const double s0 = q[0] + q[1] * r2, s1 = q[2] + q[3] * r2, s2 = q[4] + q[5] * r2;
    const double p = (s0 + s1 * r4) + (s2 + q[6] * r4) * r8;
    const uint64_t bits = (uint64_t)((int64_t)n + 1023) << 52; /* 2^n: its callers keep n in [-1022, 1023] */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

double silu_exp(double x) {
    if (!(x >= SILU_EXP_MIN)) x = SILU_EXP_MIN; /* NaN too: silu then gives NaN * 1 */
    if (x > SILU_EXP_MAX) x = SILU_EXP_MAX;
    return exp_core(x);
}

float softmax_exp(float x) {
    if (x != x) return x;
    return x < SOFTMAX_EXP_MIN ? 0.0f : (float)exp_core((double)x);
}

void swiglu_scalar(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const double g = gate[i];
        gate[i] = (float)(g * (1.0 / (1.0 + silu_exp(-g)))) * up[i];
    }
}

void swiglu(float *gate, const float *up, int n) { simd_current_kernels()->swiglu(gate, up, n); }
