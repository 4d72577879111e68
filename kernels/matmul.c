/*
 * kernels/matmul.c - splits matrix products into 16-row blocks over the thread pool and
 * turns exact integer accumulators into floats.
 */
#include "kernels/matmul.h"

#include <assert.h>

#include "kernels/simd.h"

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

/* Integer blocks: exact accumulators for up to 8 vectors, then y = (acc * Sa) * Sw. */
static void int_blocks(const Product *p, int rb0, int rb1) {
    const int n = p->kind == PRODUCT_R4 ? p->r4x->n : p->i16x->n;
    const float *sa = p->kind == PRODUCT_R4 ? p->r4x->scale : p->i16x->scale;
    const float *sw = p->kind == PRODUCT_R4 ? p->r4->scales : p->i8->scales;
    for (int rb = rb0; rb < rb1; rb++) {
        for (int t0 = 0; t0 < n; t0 += QR_TILE_TOKENS) {
            const int nt = n - t0 < QR_TILE_TOKENS ? n - t0 : QR_TILE_TOKENS;
            int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
            if (p->kind == PRODUCT_R4)
                p->k->r4_block(acc, p->r4, rb, p->r4x, t0, nt);
            else
                p->k->i8_block(acc, p->i8, rb, p->i16x, t0, nt);
            for (int t = 0; t < nt; t++) {
                for (int rr = 0; rr < QR_BLOCK_ROWS; rr++) {
                    const int r = rb * QR_BLOCK_ROWS + rr;
                    if (r >= p->n_rows) break;
                    p->y[(size_t)(t0 + t) * p->y_stride + r] =
                        ((float)acc[t * QR_BLOCK_ROWS + rr] * sa[t0 + t]) * sw[r];
                }
            }
        }
    }
}

static void product_task(void *ctx, int thread, int n_threads) {
    const Product *p = ctx;
    const int n_blocks = (p->n_rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
    const int rb0 = (int)((long)n_blocks * thread / n_threads);
    const int rb1 = (int)((long)n_blocks * (thread + 1) / n_threads);
    if (p->kind == PRODUCT_F32) {
        const int r0 = rb0 * QR_BLOCK_ROWS;
        const int r1 = rb1 * QR_BLOCK_ROWS < p->n_rows ? rb1 * QR_BLOCK_ROWS : p->n_rows;
        p->k->f32_rows(p->y, p->y_stride, p->f32, p->cols, r0, r1, p->f32x, p->x_stride, p->n);
    } else {
        int_blocks(p, rb0, rb1);
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
                 .i16x = x};
    run_product(&p, (long)n_rows * x->len * x->n, pool);
}

void matmul_f32(float *y, size_t y_stride, const float *w, int rows, int cols, const float *x,
                size_t x_stride, int n, ThreadPool *pool) {
    Product p = {.kind = PRODUCT_F32, .y = y, .y_stride = y_stride, .n_rows = rows, .f32 = w,
                 .f32x = x, .cols = cols, .n = n, .x_stride = x_stride};
    run_product(&p, (long)rows * cols * n, pool);
}
