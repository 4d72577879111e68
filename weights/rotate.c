/*
 * weights/rotate.c - the offline rotation of docs/SPEC.md section 7 (weights/rotate.h).
 */
#include "weights/rotate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/hadamard.h"

Rotation rotation_of(const ModelConfig *c, int role) {
    const int dim = c->dim, hid = c->hidden_dim, kv = config_kv_dim(c), hs = config_head_size(c);
    if (role == QRZ_ROLE_EMBEDDING) return (Rotation){c->vocab_size, dim, -1, 0, dim, 0};
    if (role == QRZ_ROLE_CLASSIFIER) return (Rotation){c->vocab_size, dim, QRZ_ROLE_RMS_FINAL, 0, dim, 0};
    const int layer = (role - QRZ_ROLE_LINEAR) / 7;
    switch ((role - QRZ_ROLE_LINEAR) % 7) {
    case 0: return (Rotation){dim, dim, QRZ_ROLE_RMS_ATT, layer, dim, 0};  /* wq */
    case 1: return (Rotation){kv, dim, QRZ_ROLE_RMS_ATT, layer, dim, 0};   /* wk */
    case 2: return (Rotation){kv, dim, QRZ_ROLE_RMS_ATT, layer, dim, hs};  /* wv */
    case 3: return (Rotation){dim, dim, -1, 0, hs, dim};                   /* wo */
    case 4: return (Rotation){hid, dim, QRZ_ROLE_RMS_FFN, layer, dim, 0};  /* w1 */
    case 5: return (Rotation){dim, hid, -1, 0, hid, dim};                  /* w2 */
    default: return (Rotation){hid, dim, QRZ_ROLE_RMS_FFN, layer, dim, 0}; /* w3 */
    }
}

/* ------------------------------------------------------------------ rotating rows */

/* The input side rotates rows 8 at a time, each element of the vectors being the 8 rows'
 * values at one column, side by side: every butterfly then works on 8 doubles, which
 * vectorizes; each value sees the same operations as in a row of its own. */
enum { ROW_BLOCK = 8 };
enum { STRIP = 64 }; /* columns the output side rotates together (a few cache lines a row) */

typedef struct {
    const Rotation *rot;
    const float *w, *gain;
    float *out;
    int n;
    double *whole;  /* two-sided: the n rows in double, between the sides; else NULL */
    double *blocks; /* per thread: a block of rows, [cols][ROW_BLOCK] */
} RotateJob;

/* The input side of row blocks [b0, b1): the gain folded in, each segment by Q_in_seg;
 * into whole, or rounded to out when there is no output side. */
static void input_side(void *ctx, int thread, int b0, int b1) {
    const RotateJob *job = ctx;
    const int cols = job->rot->cols, seg = job->rot->in_seg;
    double *t = job->blocks + (size_t)thread * cols * ROW_BLOCK;
    for (int b = b0; b < b1; b++) {
        const int r0 = b * ROW_BLOCK, rows = job->n - r0 < ROW_BLOCK ? job->n - r0 : ROW_BLOCK;
        for (int e = 0; e < ROW_BLOCK; e++) /* rows past the end are zeros, computed and dropped */
            for (int c = 0; c < cols; c++) {
                const double w = e < rows ? job->w[(size_t)(r0 + e) * cols + c] : 0.0;
                t[(size_t)c * ROW_BLOCK + e] = job->gain ? w * job->gain[c] : w;
            }
        for (int s = 0; seg && s < cols; s += seg) hadamard_f64(t + (size_t)s * ROW_BLOCK, seg, ROW_BLOCK, ROW_BLOCK);
        for (int e = 0; e < rows; e++)
            for (int c = 0; c < cols; c++) {
                const size_t at = (size_t)(r0 + e) * cols + c;
                if (job->whole) job->whole[at] = t[(size_t)c * ROW_BLOCK + e];
                else job->out[at] = (float)t[(size_t)c * ROW_BLOCK + e];
            }
    }
}

/* The output side of column strips [s0, s1): each segment of out_seg rows by Q_out_seg, as
 * vectors whose elements are those rows' strips; then rounded to out. */
static void output_side(void *ctx, int thread, int s0, int s1) {
    (void)thread;
    const RotateJob *job = ctx;
    const int rows = job->rot->rows, cols = job->rot->cols, seg = job->rot->out_seg;
    const int c0 = s0 * STRIP, c1 = s1 * STRIP < cols ? s1 * STRIP : cols;
    for (int r = 0; r < rows; r += seg)
        hadamard_f64(job->whole + (size_t)r * cols + c0, seg, (size_t)cols, (size_t)(c1 - c0));
    for (int r = 0; r < rows; r++)
        for (int c = c0; c < c1; c++) job->out[(size_t)r * cols + c] = (float)job->whole[(size_t)r * cols + c];
}

void rotate_scratch_free(RotateScratch *s) {
    free(s->mem);
    *s = (RotateScratch){NULL, 0};
}

int rotate_rows(float *out, const float *w, int n, const Rotation *rot, const float *gain, RotateScratch *scratch,
                ThreadPool *pool) {
    const size_t cols = (size_t)rot->cols, whole = rot->out_seg ? (size_t)n * cols : 0;
    const size_t need = whole + (size_t)threadpool_size(pool) * cols * ROW_BLOCK;
    if (scratch->size < need) { /* grown, never shrunk: the next tensor likely needs as much */
        free(scratch->mem);
        scratch->size = 0;
        if (!(scratch->mem = malloc(need * sizeof *scratch->mem))) return -1;
        scratch->size = need;
    }
    RotateJob job = {rot, w, gain, out, n, whole ? scratch->mem : NULL, scratch->mem + whole};
    const int blocks = (n + ROW_BLOCK - 1) / ROW_BLOCK, strips = (rot->cols + STRIP - 1) / STRIP;
    threadpool_parallel_for(pool, blocks, threadpool_grain(pool, blocks, 4), input_side, &job);
    if (whole) threadpool_parallel_for(pool, strips, threadpool_grain(pool, strips, 2), output_side, &job);
    return 0;
}

/* ------------------------------------------------------------------ the source for import */

static int read_rotated_rows(void *ctx, int role, int row0, int n, float *out, char *err, size_t errlen) {
    RotatedSource *r = ctx;
    const ModelConfig *c = &r->in.cfg;
    if (role == QRZ_ROLE_RMS_ATT || role == QRZ_ROLE_RMS_FFN || role == QRZ_ROLE_RMS_FINAL) {
        for (size_t i = 0; i < (size_t)n * c->dim; i++) out[i] = 1.0f; /* folded into the linears */
        return 0;
    }
    const Rotation rot = rotation_of(c, role);
    const size_t cols = (size_t)rot.cols;
    if (rot.gain_role >= 0 && (rot.gain_role != r->gain_role || rot.gain_row != r->gain_row)) {
        if (!r->gain && !(r->gain = malloc((size_t)c->dim * sizeof *r->gain))) goto out_of_memory;
        if (r->in.read_rows(r->in.ctx, rot.gain_role, rot.gain_row, 1, r->gain, err, errlen) != 0) return -1;
        r->gain_role = rot.gain_role, r->gain_row = rot.gain_row;
    }
    const float *gain = rot.gain_role >= 0 ? r->gain : NULL;
    if (rot.out_seg == 0) { /* row by row, as they come */
        if (r->in.read_rows(r->in.ctx, role, row0, n, out, err, errlen) != 0) return -1;
        return rotate_rows(out, out, n, &rot, gain, &r->scratch, NULL) == 0 ? 0
                                                                             : (snprintf(err, errlen, "out of memory"), -1);
    }
    if (r->whole_role != role) { /* its first rows: read and rotate it whole */
        free(r->whole);
        r->whole_role = -1;
        if (!(r->whole = malloc((size_t)rot.rows * cols * sizeof *r->whole))) goto out_of_memory;
        if (r->in.read_rows(r->in.ctx, role, 0, rot.rows, r->whole, err, errlen) != 0) return -1;
        if (rotate_rows(r->whole, r->whole, rot.rows, &rot, gain, &r->scratch, NULL) != 0) goto out_of_memory;
        r->whole_role = role;
    }
    memcpy(out, r->whole + (size_t)row0 * cols, (size_t)n * cols * sizeof *out);
    if (row0 + n == rot.rows) { /* its last rows */
        free(r->whole);
        r->whole = NULL;
        r->whole_role = -1;
    }
    return 0;
out_of_memory:
    snprintf(err, errlen, "out of memory rotating a %dx%d tensor", rot.rows, rot.cols);
    return -1;
}

static void rotated_progress(void *ctx, int i, int n, uint64_t bytes, uint64_t file_bytes) {
    const RotatedSource *r = ctx;
    r->in.progress(r->in.ctx, i, n, bytes, file_bytes);
}

void rotated_source_init(RotatedSource *r, const QrzSource *in, QrzSource *out) {
    *r = (RotatedSource){*in, NULL, -1, -1, NULL, -1, {NULL, 0}};
    *out = *in;
    out->quant.rotate = 1;
    out->tied = 0;
    out->read_rows = read_rotated_rows;
    out->progress = in->progress ? rotated_progress : NULL;
    out->ctx = r;
}

void rotated_source_free(RotatedSource *r) {
    free(r->gain);
    free(r->whole);
    rotate_scratch_free(&r->scratch);
    *r = (RotatedSource){0};
}
