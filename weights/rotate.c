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

enum { STRIP = 64 }; /* columns the output side rotates together (a few cache lines a row) */

typedef struct {
    const Rotation *rot;
    const float *w, *gain;
    float *out;
    double *work;  /* the rows in double: all of them (output side), or one per thread */
    int two_sided; /* rot has an output side */
} RotateJob;

/* The input side of rows [r0, r1): the gain folded in, each segment by Q_in_seg; rounded to
 * out at once unless the output side follows. */
static void input_side(void *ctx, int thread, int r0, int r1) {
    const RotateJob *job = ctx;
    const int cols = job->rot->cols, seg = job->rot->in_seg;
    for (int r = r0; r < r1; r++) {
        double *x = job->work + (size_t)(job->two_sided ? r : thread) * cols;
        const float *w = job->w + (size_t)r * cols;
        for (int c = 0; c < cols; c++) x[c] = job->gain ? (double)w[c] * job->gain[c] : (double)w[c];
        for (int s = 0; seg && s < cols; s += seg) hadamard_f64(x + s, seg, 1, 1);
        if (!job->two_sided)
            for (int c = 0; c < cols; c++) job->out[(size_t)r * cols + c] = (float)x[c];
    }
}

/* The output side of column strips [s0, s1): each segment of out_seg rows by Q_out_seg, as
 * vectors whose elements are those rows' strips; then rounded to out. */
static void output_side(void *ctx, int thread, int s0, int s1) {
    (void)thread;
    const RotateJob *job = ctx;
    const int rows = job->rot->rows, cols = job->rot->cols, seg = job->rot->out_seg;
    const int c0 = s0 * STRIP, c1 = s1 * STRIP < cols ? s1 * STRIP : cols;
    for (int r = 0; r < rows; r += seg) hadamard_f64(job->work + (size_t)r * cols + c0, seg, (size_t)cols, (size_t)(c1 - c0));
    for (int r = 0; r < rows; r++)
        for (int c = c0; c < c1; c++) job->out[(size_t)r * cols + c] = (float)job->work[(size_t)r * cols + c];
}

int rotate_rows(float *out, const float *w, int n, const Rotation *rot, const float *gain, ThreadPool *pool) {
    const int two_sided = rot->out_seg > 0, cols = rot->cols;
    const size_t work_rows = two_sided ? (size_t)n : (size_t)threadpool_size(pool);
    RotateJob job = {rot, w, gain, out, malloc(work_rows * cols * sizeof(double)), two_sided};
    if (!job.work) return -1;
    threadpool_parallel_for(pool, n, threadpool_grain(pool, n, 4), input_side, &job);
    const int strips = (cols + STRIP - 1) / STRIP;
    if (two_sided) threadpool_parallel_for(pool, strips, threadpool_grain(pool, strips, 2), output_side, &job);
    free(job.work);
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
        return rotate_rows(out, out, n, &rot, gain, NULL) == 0 ? 0 : (snprintf(err, errlen, "out of memory"), -1);
    }
    if (r->whole_role != role) { /* its first rows: read and rotate it whole */
        free(r->whole);
        r->whole_role = -1;
        if (!(r->whole = malloc((size_t)rot.rows * cols * sizeof *r->whole))) goto out_of_memory;
        if (r->in.read_rows(r->in.ctx, role, 0, rot.rows, r->whole, err, errlen) != 0) return -1;
        if (rotate_rows(r->whole, r->whole, rot.rows, &rot, gain, NULL) != 0) goto out_of_memory;
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
    *r = (RotatedSource){*in, NULL, -1, -1, NULL, -1};
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
    *r = (RotatedSource){0};
}
