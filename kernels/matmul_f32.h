/*
 * kernels/matmul_f32.h - float32 matrix-vector product (the fp32 reference mode).
 */
#ifndef KERNELS_MATMUL_F32_H
#define KERNELS_MATMUL_F32_H

#include <stddef.h>

/* y[r] = sum_i w[r][i] * x[i] for r in [0, rows): w is row-major [rows][cols]. */
void matmul_f32(float *y, const float *w, const float *x, int rows, int cols);

#endif
