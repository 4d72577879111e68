/*
 * kernels/matmul.c - splits matrix products into 16-row blocks over the thread pool and
 * turns exact integer accumulators into floats.
 */
#include "kernels/matmul.h"

#include <assert.h>

#include "kernels/simd.h"

/* Rows are handed out in blocks of 16 for every kind of product (the 4-bit format needs
 * whole blocks; the others do not mind). */

/* Below this many multiply-adds a product runs on the calling thread alone: waking the
 * other threads would cost more than the work. Either way the results are identical. */
#define PARALLEL_MIN_MACS (1 << 16)

typedef enum { PRODUCT_R4, PRODUCT_I8, PRODUCT_F32 } ProductKind;

typedef struct {
    ProductKind kind;
    const KernelTable *k;
    float *y;
    size_t y_stride;
    int n_rows;
    const R4Matrix *r4;
    const R4Acts *r4x;
    const I8Matrix *i8;
    const I16Acts *i16x;
    const float *f32, *f32x;
    int cols, n;
    size_t x_stride;
} Product;

/* 4-bit blocks: exact accumulators for up to 8 vectors, then y = (acc * Sa) * Sw. */
static void r4_blocks(const Product *p, int rb0, int rb1) {
    const R4Acts *x = p->r4x;
    for (int rb = rb0; rb < rb1; rb++) {
        for (int t0 = 0; t0 < x->n; t0 += QR_TILE_TOKENS) {
            const int nt = x->n - t0 < QR_TILE_TOKENS ? x->n - t0 : QR_TILE_TOKENS;
            int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
            p->k->r4_block(acc, p->r4, rb, x, t0, nt);
            for (int t = 0; t < nt; t++) {
                for (int rr = 0; rr < QR_BLOCK_ROWS; rr++) {
                    const int r = rb * QR_BLOCK_ROWS + rr;
                    if (r >= p->n_rows) break;
                    p->y[(size_t)(t0 + t) * p->y_stride + r] =
                        ((float)acc[t * QR_BLOCK_ROWS + rr] * x->scale[t0 + t]) * p->r4->scales[r];
                }
            }
        }
    }
}

/* Row-major rows [r0, r1): one dot product per row and vector. */
static void row_dots(const Product *p, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        for (int t = 0; t < p->n; t++) {
            float *y = &p->y[(size_t)t * p->y_stride + r];
            if (p->kind == PRODUCT_F32) {
                *y = p->k->dot_f32(p->f32 + (size_t)r * p->cols, p->f32x + (size_t)t * p->x_stride, p->cols);
            } else {
                const I16Acts *x = p->i16x;
                const int64_t acc = p->k->dot_i8(p->i8->q + (size_t)r * p->i8->cols,
                                                 x->q + (size_t)t * x->stride, x->len);
                *y = ((float)acc * x->scale[t]) * p->i8->scales[r];
            }
        }
    }
}

static void product_task(void *ctx, int thread, int n_threads) {
    const Product *p = ctx;
    const int n_blocks = (p->n_rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
    const int rb0 = (int)((long)n_blocks * thread / n_threads);
    const int rb1 = (int)((long)n_blocks * (thread + 1) / n_threads);
    if (p->kind == PRODUCT_R4) {
        r4_blocks(p, rb0, rb1);
    } else {
        const int r1 = rb1 * QR_BLOCK_ROWS < p->n_rows ? rb1 * QR_BLOCK_ROWS : p->n_rows;
        row_dots(p, rb0 * QR_BLOCK_ROWS, r1);
    }
}

static void run_product(Product *p, long macs, ThreadPool *pool) {
    p->k = simd_current_kernels();
    if (!pool || threadpool_size(pool) == 1 || macs < PARALLEL_MIN_MACS)
        product_task(p, 0, 1);
    else
        threadpool_run(pool, product_task, p);
}

void matmul_r4(float *y, size_t y_stride, const R4Matrix *w, int n_rows, const R4Acts *x,
               ThreadPool *pool) {
    assert(w->group == x->group && x->len <= w->cols && n_rows <= w->rows);
    Product p = {.kind = PRODUCT_R4, .y = y, .y_stride = y_stride, .n_rows = n_rows, .r4 = w,
                 .r4x = x};
    run_product(&p, (long)n_rows * x->len * x->n, pool);
}

void matmul_i8(float *y, size_t y_stride, const I8Matrix *w, int n_rows, const I16Acts *x,
               ThreadPool *pool) {
    assert(x->len <= w->cols && n_rows <= w->rows);
    Product p = {.kind = PRODUCT_I8, .y = y, .y_stride = y_stride, .n_rows = n_rows, .i8 = w,
                 .i16x = x, .n = x->n};
    run_product(&p, (long)n_rows * x->len * x->n, pool);
}

void matmul_f32(float *y, size_t y_stride, const float *w, int rows, int cols, const float *x,
                size_t x_stride, int n, ThreadPool *pool) {
    Product p = {.kind = PRODUCT_F32, .y = y, .y_stride = y_stride, .n_rows = rows, .f32 = w,
                 .f32x = x, .cols = cols, .n = n, .x_stride = x_stride};
    run_product(&p, (long)rows * cols * n, pool);
}
