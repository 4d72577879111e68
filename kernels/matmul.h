/*
 * kernels/matmul.h - whole-matrix products, split across the thread pool.
 *
 * Each call computes, for the first n_rows rows of a matrix and every vector t of a batch,
 *     y[t * y_stride + r]
 * with the kernels of the current SIMD level (simd.h). Integer products are exact and
 * then scaled as docs/SPEC.md section 3 says: y = ((float)acc * Sa[t]) * Sw[r]. Rows go
 * to threads in blocks of 16: each thread runs its own share of the blocks, then helps
 * with the others' (so a slowed thread takes fewer; threadpool.h). A block is computed
 * whole by one thread in one fixed order, so the output does not depend on the thread
 * count or on who took what.
 */
#ifndef KERNELS_MATMUL_H
#define KERNELS_MATMUL_H

#include <stddef.h>

#include "kernels/qformat.h"
#include "kernels/threadpool.h"

/* Several products of one input (wq, wk and wv of a layer; w1 and w3): one pass over the
 * thread pool for all of them, their 16-row blocks shared out among the threads. Each
 * output names its matrix (exactly one of r4, i8, f32, matching the input's kind) and
 * where its first n_rows rows go. */
typedef struct {
    float *y; /* y[t * y_stride + r] */
    size_t y_stride;
    int n_rows;
    const R4Matrix *r4;
    const I8Matrix *i8;
    const float *f32; /* [n_rows][cols] */
} MatmulOut;

typedef struct {
    const R4Acts *r4;   /* 4-bit activations, or */
    const I16Acts *i16; /* INT16 activations, or */
    const float *f32;   /* n float vectors of cols values, x_stride apart */
    int cols, n;
    size_t x_stride;
} MatmulIn;

void matmul_shared(const MatmulOut *outs, int count, const MatmulIn *in, ThreadPool *pool);

/* One product (matmul_shared with one output). */

/* 4-bit razored (or RTN4) weights x razored activations. */
void matmul_r4(float *y, size_t y_stride, const R4Matrix *w, int n_rows, const R4Acts *x,
               ThreadPool *pool);

/* INT8 weights x INT16 activations (stage 1 only). */
void matmul_i8(float *y, size_t y_stride, const I8Matrix *w, int n_rows, const I16Acts *x,
               ThreadPool *pool);

#endif
