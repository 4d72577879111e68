/*
 * kernels/matmul.c - splits matrix products into 16-row blocks over the thread pool and
 * turns exact integer accumulators into floats. Rows are handed out in blocks of 16 for
 * every kind of product (the 4-bit format needs whole blocks; the others do not mind).
 */
#include "kernels/matmul.h"

#include <assert.h>
#include <stdatomic.h>

#include "kernels/simd.h"

/* Below this many multiply-adds a product runs on the calling thread alone: waking the
 * other threads would cost more than the work. Either way the results are identical. */
#define PARALLEL_MIN_MACS (1 << 16)

enum { MAX_SHARED = 4 };

/* From this many vectors on, a 4-bit product runs as a GEMM where the level has one (the
 * weights are unpacked into a panel once per block, which pays for itself over a few
 * vectors); below, it runs in r4_block tiles. Either way the results are identical.
 * Matrices with column shifts (qformat.h) always go to the GEMM where there is one. */
#define GEMM_MIN_VECTORS 4

/* Codes below which a batch is packed on the calling thread alone. */
#define PARALLEL_MIN_PACK 16384

typedef struct {
    const KernelTable *k;
    const MatmulOut *outs;
    int count;
    const MatmulIn *in;
    int blocks[MAX_SHARED]; /* 16-row blocks of each product */
    int total_blocks;
    int packed;             /* the input is packed for the level's GEMM */
} Product;

/* Whether output o runs as the GEMM. */
static int gemm_for(const Product *p, const MatmulOut *o) {
    return p->packed && (p->in->n >= GEMM_MIN_VECTORS || o->r4->col_shifts);
}

/* 4-bit blocks [rb0, rb1) of one product: exact accumulators for up to 8 vectors, then
 * y = (acc * Sa) * Sw. */
static void r4_blocks(const Product *p, const MatmulOut *o, int rb0, int rb1) {
    const R4Acts *x = p->in->r4;
    if (gemm_for(p, o)) {
        p->k->r4_gemm(o->y, o->y_stride, o->r4, o->n_rows, rb0, rb1, x);
        return;
    }
    /* Only the scalar r4_block takes column shifts (a level's GEMM that refused the batch
     * leaves them to it). */
    const KernelTable *k = o->r4->col_shifts ? simd_kernels(SIMD_SCALAR) : p->k;
    for (int rb = rb0; rb < rb1; rb++) {
        for (int t0 = 0; t0 < x->n; t0 += QR_TILE_TOKENS) {
            const int nt = x->n - t0 < QR_TILE_TOKENS ? x->n - t0 : QR_TILE_TOKENS;
            int64_t acc[QR_TILE_TOKENS * QR_BLOCK_ROWS];
            k->r4_block(acc, o->r4, rb, x, t0, nt);
            const int rows = o->n_rows - rb * QR_BLOCK_ROWS < QR_BLOCK_ROWS ? o->n_rows - rb * QR_BLOCK_ROWS
                                                                           : QR_BLOCK_ROWS;
            k->r4_finish(o->y + (size_t)t0 * o->y_stride + rb * QR_BLOCK_ROWS, o->y_stride, acc, nt,
                            rows, x->scale + t0, o->r4->scales + rb * QR_BLOCK_ROWS);
        }
    }
}

/* Row-major rows [r0, r1) of one product: one dot product per row and vector. */
static void row_dots(const Product *p, const MatmulOut *o, int r0, int r1) {
    const MatmulIn *in = p->in;
    for (int r = r0; r < r1; r++) {
        for (int t = 0; t < in->n; t++) {
            float *y = &o->y[(size_t)t * o->y_stride + r];
            if (o->f32) {
                *y = p->k->dot_f32(o->f32 + (size_t)r * in->cols, in->f32 + (size_t)t * in->x_stride, in->cols);
            } else {
                const I16Acts *x = in->i16;
                const int64_t acc = p->k->dot_i8(o->i8->q + (size_t)r * o->i8->cols,
                                                 x->q + (size_t)t * x->stride, x->len);
                *y = qr_output(acc, x->scale[t], o->i8->scales[r]);
            }
        }
    }
}

/* Blocks [b0, b1) of the concatenation of all the products' blocks. */
static void run_blocks(const Product *p, int b0, int b1) {
    for (int i = 0, first = 0; i < p->count && b0 < b1; first += p->blocks[i], i++) {
        const int end = first + p->blocks[i];
        if (b0 >= end) continue;
        const int lo = b0 - first, hi = (b1 < end ? b1 : end) - first;
        const MatmulOut *o = &p->outs[i];
        if (o->r4) {
            r4_blocks(p, o, lo, hi);
        } else {
            const int r1 = hi * QR_BLOCK_ROWS < o->n_rows ? hi * QR_BLOCK_ROWS : o->n_rows;
            row_dots(p, o, lo * QR_BLOCK_ROWS, r1);
        }
        b0 = first + hi;
    }
}

/* Preparing the batch for the level's kernels, vectors [t0, t1) per range. */
typedef struct {
    const KernelTable *k;
    const R4Acts *x;
    atomic_int refused;
} Pack;

static void pack_range(void *ctx, int thread, int t0, int t1) {
    (void)thread;
    Pack *p = ctx;
    if (p->k->r4_pack(p->x, t0, t1) != 0) atomic_store_explicit(&p->refused, 1, memory_order_relaxed);
}

/* Prepares a 4-bit input for the level's kernels (on the pool's threads when it is long),
 * for r4_block and the GEMM alike; returns whether the GEMM takes it. */
static int pack_for_gemm(const Product *p, ThreadPool *pool) {
    const R4Acts *x = p->in->r4;
    if (!x || !p->k->r4_pack) return 0; /* the scalar r4_block needs no preparation */
    Pack pack = {p->k, x, 0};
    const int grain = (long)x->n * x->len < PARALLEL_MIN_PACK ? x->n : threadpool_grain(pool, x->n, 2);
    threadpool_parallel_for(pool, x->n, grain, pack_range, &pack);
    return p->k->r4_gemm && !atomic_load_explicit(&pack.refused, memory_order_relaxed);
}

/* Blocks are the items of the parallel for: each is computed whole by one thread, so the
 * results do not depend on who took it. */
static void block_range(void *ctx, int thread, int b0, int b1) {
    (void)thread;
    run_blocks(ctx, b0, b1);
}

void matmul_shared(const MatmulOut *outs, int count, const MatmulIn *in, ThreadPool *pool) {
    assert(count >= 1 && count <= MAX_SHARED);
    Product p = {simd_current_kernels(), outs, count, in, {0}, 0, 0};
    long macs = 0;
    for (int i = 0; i < count; i++) {
        p.blocks[i] = (outs[i].n_rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
        p.total_blocks += p.blocks[i];
        macs += (long)outs[i].n_rows * in->cols * in->n;
        if (outs[i].r4) assert(in->r4 && outs[i].r4->group == in->r4->group && in->cols <= outs[i].r4->cols);
        if (outs[i].i8) assert(in->i16 && in->cols <= outs[i].i8->cols);
        if (outs[i].f32) assert(in->f32);
    }
    p.packed = pack_for_gemm(&p, pool);
    /* About 8 ranges per thread: few enough atomics, small enough to even out. */
    const int grain = macs < PARALLEL_MIN_MACS ? p.total_blocks : threadpool_grain(pool, p.total_blocks, 8);
    threadpool_parallel_for(pool, p.total_blocks, grain, block_range, &p);
}

void matmul_r4(float *y, size_t y_stride, const R4Matrix *w, int n_rows, const R4Acts *x,
               ThreadPool *pool) {
    const MatmulOut o = {.y = y, .y_stride = y_stride, .n_rows = n_rows, .r4 = w};
    const MatmulIn in = {.r4 = x, .cols = x->len, .n = x->n};
    matmul_shared(&o, 1, &in, pool);
}

void matmul_i8(float *y, size_t y_stride, const I8Matrix *w, int n_rows, const I16Acts *x,
               ThreadPool *pool) {
    const MatmulOut o = {.y = y, .y_stride = y_stride, .n_rows = n_rows, .i8 = w};
    const MatmulIn in = {.i16 = x, .cols = x->len, .n = x->n};
    matmul_shared(&o, 1, &in, pool);
}
