/*
 * kernels/matmul_f32.c - the float32 matrix-vector product of the reference (fp32) mode.
 */
#include "kernels/matmul_f32.h"

void matmul_f32(float *y, const float *w, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *row = w + (size_t)r * (size_t)cols;
        float sum = 0.0f;
        for (int i = 0; i < cols; i++) sum += row[i] * x[i];
        y[r] = sum;
    }
}
