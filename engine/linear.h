/*
 * engine/linear.h - matrix products of the forward pass in every mode: a batch of float
 * vectors is quantized as the input of a matmul (QActs), then multiplied by one or more
 * weight matrices stored as the mode says (Linear, weights/model.h).
 *
 * In an integer mode the input is quantized first: INT16 for w8a16, INT16 then razored to
 * 4-bit codes for qrazor, 4-bit absmax for rtn4 (docs/SPEC.md sections 1-2). A product of
 * two 4-bit operands runs on the codes; when only one side is 4-bit (the ablation modes),
 * that side is expanded to its integer values c << s and the INT8 x INT16 kernel computes
 * the same integers (storage_for decides which).
 */
#ifndef ENGINE_LINEAR_H
#define ENGINE_LINEAR_H

#include <stddef.h>

#include "kernels/threadpool.h"
#include "weights/model.h"

/* A batch of float vectors quantized as the inputs of a matmul (INT16 base). */
typedef struct {
    Storage storage;
    QuantKind kind;
    I16Acts i16; /* STORE_INT */
    R4Acts r4;   /* STORE_R4 */
} QActs;

/* Allocates a batch of up to cap_n vectors of up to cap_len values, quantized as `kind`
 * to meet a partner of kind `partner`. Returns 0, or -1 when out of memory. */
int qacts_init(QActs *a, QuantKind kind, QuantKind partner, int cap_n, int cap_len, int group);
void qacts_free(QActs *a);

/* Sets the batch to n vectors of len values, then quantizes vector t from len floats:
 * for callers that produce the vectors one at a time. */
void qacts_shape(QActs *a, int n, int len);
void qacts_quantize(QActs *a, int t, const float *x, const QuantConfig *q);

/* Quantizes n rows of x (stride floats apart, len values each) on the pool's threads.
 * Returns 0, or -1 when a row holds an infinity (its scale is not finite): the caller
 * reports it, the codes are defined either way. Float32 batches are left alone. */
int qacts_set(QActs *a, const float *x, int n, int len, size_t stride, const QuantConfig *q,
              ThreadPool *pool);

/* y_i[t][r] = W_i[r] . x[t] for i < count (at most 4) linears that share one input, in
 * one pass over the thread pool: x holds n float vectors of W's cols values (used when the
 * weights are float32), qx the same vectors quantized by qacts_set. */
void linears_apply(float *const *ys, const Linear *const *ws, int count, const float *x, int n,
                   const QActs *qx, ThreadPool *pool);

/* The same for one linear, whose first n_rows rows only are computed, into y with rows
 * y_stride apart (the attention products use part of a matrix: the positions so far). */
void linear_apply_rows(float *y, size_t y_stride, const Linear *w, int n_rows, const float *x,
                       int n, const QActs *qx, ThreadPool *pool);

#endif
