/*
 * kernels/floatops.c - RMSNorm, softmax, RoPE and SwiGLU in plain float32.
 */
#include "kernels/floatops.h"

#include <math.h>
#include <stddef.h>

void rmsnorm(float *o, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = ss / (float)n + 1e-5f;
    const float inv = 1.0f / sqrtf(ss);
    for (int i = 0; i < n; i++) o[i] = w[i] * (inv * x[i]);
}

void softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
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
    for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
