/*
 * engine/linear.c - quantized input batches, and products of weight matrices by them.
 */
#include "engine/linear.h"

#include <math.h>
#include <string.h>

#include "kernels/matmul.h"
#include "kernels/simd.h"

int qacts_init(QActs *a, QuantKind kind, QuantKind partner, int cap_n, int cap_len, int group) {
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->storage = storage_for(kind, partner);
    if (a->storage == STORE_INT) return i16_acts_alloc(&a->i16, cap_n, cap_len);
    if (a->storage == STORE_R4) return r4_acts_alloc(&a->r4, cap_n, cap_len, group);
    return 0;
}

void qacts_free(QActs *a) {
    if (a->storage == STORE_INT) i16_acts_free(&a->i16);
    if (a->storage == STORE_R4) r4_acts_free(&a->r4);
}

void qacts_shape(QActs *a, int n, int len) {
    if (a->storage == STORE_INT) i16_acts_shape(&a->i16, n, len);
    if (a->storage == STORE_R4) r4_acts_shape(&a->r4, n, len);
}

void qacts_quantize(QActs *a, int t, const float *x, const QuantConfig *q) {
    if (a->storage == STORE_INT) i16_acts_quantize(&a->i16, t, x, a->kind, q->group, q->rounding);
    if (a->storage == STORE_R4) r4_acts_quantize(&a->r4, t, x, a->kind, QMAX_INT16, q->rounding);
}

typedef struct {
    QActs *a;
    const float *x;
    size_t stride;
    const QuantConfig *q;
} QuantizeRows;

static void quantize_rows(void *ctx, int thread, int t0, int t1) {
    (void)thread;
    const QuantizeRows *job = ctx;
    for (int t = t0; t < t1; t++) qacts_quantize(job->a, t, job->x + (size_t)t * job->stride, job->q);
}

int qacts_set(QActs *a, const float *x, int n, int len, size_t stride, const QuantConfig *q,
              ThreadPool *pool) {
    if (a->storage == STORE_F32) return 0;
    qacts_shape(a, n, len);
    QuantizeRows job = {a, x, stride, q};
    /* A vector is a few hundred operations per value: worth threads from a few vectors. */
    const int grain = (long)n * len < 16384 ? n : threadpool_grain(pool, n, 2);
    threadpool_parallel_for(pool, n, grain, quantize_rows, &job);
    const float *scale = a->storage == STORE_INT ? a->i16.scale : a->r4.scale;
    for (int t = 0; t < n; t++)
        if (!isfinite(scale[t])) return -1;
    return 0;
}

/* The matmul kernels' view of a linear: its first n_rows rows into y. */
static MatmulOut matmul_out(float *y, size_t y_stride, const Linear *w, int n_rows) {
    return (MatmulOut){y, y_stride, n_rows, w->storage == STORE_R4 ? &w->r4 : NULL,
                       w->storage == STORE_INT ? &w->i8 : NULL, w->storage == STORE_F32 ? w->f32 : NULL};
}

static MatmulIn matmul_in(const Linear *w, const float *x, int n, const QActs *qx) {
    const Storage st = w->storage;
    return (MatmulIn){st == STORE_R4 ? &qx->r4 : NULL, st == STORE_INT ? &qx->i16 : NULL,
                      st == STORE_F32 ? x : NULL, w->cols, n, (size_t)w->cols};
}

void linears_apply(float *const *ys, const Linear *const *ws, int count, const float *x, int n,
                   const QActs *qx, ThreadPool *pool) {
    MatmulOut outs[4];
    for (int i = 0; i < count; i++) outs[i] = matmul_out(ys[i], (size_t)ws[i]->rows, ws[i], ws[i]->rows);
    const MatmulIn in = matmul_in(ws[0], x, n, qx);
    matmul_shared(outs, count, &in, pool);
}

void linear_apply_rows(float *y, size_t y_stride, const Linear *w, int n_rows, const float *x,
                       int n, const QActs *qx, ThreadPool *pool) {
    const MatmulOut out = matmul_out(y, y_stride, w, n_rows);
    MatmulIn in = matmul_in(w, x, n, qx);
    in.cols = w->storage == STORE_R4 ? qx->r4.len : w->storage == STORE_INT ? qx->i16.len : w->cols;
    matmul_shared(&out, 1, &in, pool);
}
