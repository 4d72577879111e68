/*
 * weights/rotate.h - the offline half of docs/SPEC.md section 7 (QuaRot-style rotations):
 * when a model is loaded or written with `rot`, every RMSNorm gain is folded into the
 * linears that read its output (the gains become 1), the residual stream is rotated by
 * Q_dim, the values of each head by Q_hs and w2's input by Q_hidden (kernels/hadamard.h),
 * in double, each tensor rounded to float32 once. The model then computes the same
 * function, once the online half (engine/: the query and key heads after RoPE, and w2's
 * input, rotated as the model runs) is applied; what changes is what each quantizer sees:
 * outliers spread over whole blocks.
 */
#ifndef WEIGHTS_ROTATE_H
#define WEIGHTS_ROTATE_H

#include "kernels/threadpool.h"
#include "weights/qrz.h"

/* How one tensor is rotated: its columns (inputs) multiplied by the gain of the RMSNorm
 * before it, then each row's consecutive segments of in_seg values by Q_in_seg (the input
 * side, which reads the rotated stream), then each column's consecutive segments of out_seg
 * values by Q_out_seg (the output side, which writes it). */
typedef struct {
    int rows, cols;
    int gain_role, gain_row; /* the norm tensor (a .qrz role, weights/qrz.h) and the row of it
                                (the layer) whose gain is folded in; gain_role -1: none */
    int in_seg, out_seg;     /* 0: that side is not rotated */
} Rotation;

/* The rotation of the tensor of a .qrz role (the embedding, the classifier or a linear) in
 * a model of shape c:
 *   embedding        rows by Q_dim
 *   classifier       rms_final folded, rows by Q_dim (a tied classifier becomes a matrix
 *                    of its own: the embedding has no gain folded)
 *   wq, wk, w1, w3   rms_att or rms_ffn folded, rows by Q_dim
 *   wv               rms_att folded, rows by Q_dim, then each head's hs rows (as columns
 *                    of hs values) by Q_hs: the values of each head
 *   wo               each row's hs values of each query head by Q_hs, then columns by Q_dim
 *   w2               rows by Q_hidden, then columns by Q_dim */
Rotation rotation_of(const ModelConfig *c, int role);

/* The double-precision memory rotate_rows works in, kept from one call to the next (it
 * only grows), so that rotating a model tensor by tensor does not fault in fresh pages
 * for each. Start it zeroed; free it with rotate_scratch_free. */
typedef struct {
    double *mem;
    size_t size; /* doubles */
} RotateScratch;
void rotate_scratch_free(RotateScratch *s);

/* out = n rows of a tensor as rot rotates them, from their float32 values w and the gain
 * (NULL when rot folds none; cols values otherwise), in double, rounded to float32 once.
 * With an output side the rows must be the whole tensor (n = rot->rows); without one, any
 * of its rows (each is rotated alone). out may be w. Runs on the pool's threads (NULL: the
 * caller's). Returns 0, or -1 when out of memory. */
int rotate_rows(float *out, const float *w, int n, const Rotation *rot, const float *gain, RotateScratch *scratch,
                ThreadPool *pool);

/* A model's rows as docs/SPEC.md section 7 rotates them, read from another source of rows
 * (weights/qrz.h): what import writes with `rot`. A tensor rotated on both sides is read and
 * rotated whole when its first rows are asked for, and held until its last rows are. */
typedef struct {
    QrzSource in;
    float *gain;            /* [dim] the gain last read, of (gain_role, gain_row) */
    int gain_role, gain_row;
    float *whole;           /* a tensor rotated on both sides, while it is read */
    int whole_role;
    RotateScratch scratch;
} RotatedSource;

/* Makes *out the source of the rotated model whose unrotated rows `in` gives (in must
 * outlive it): in's model with quant.rotate set and the classifier its own tensor (tied 0),
 * the norm gains all 1. Free with rotated_source_free. */
void rotated_source_init(RotatedSource *r, const QrzSource *in, QrzSource *out);
void rotated_source_free(RotatedSource *r);

#endif
