/*
 * kernels/hadamard.h - the rotation Q_n of docs/SPEC.md section 7 (QuaRot-style): each
 * element's sign flipped or not by a fixed hash of its index, then Walsh-Hadamard
 * butterflies in blocks of B, the largest power of two dividing n, then a scale of
 * 1/sqrt(B). Q_n is orthogonal: it writes a vector in another basis without changing its
 * length, and it spreads one large element over its whole block, which is what a
 * quantizer with one scale per vector wants.
 *
 * Two versions of the same steps: in double for the weights, which are rotated once when a
 * model is loaded or written (weights/rotate.c), and in float32 for the activations
 * rotated while the model runs (the query and key heads, w2's input), at every SIMD level.
 */
#ifndef KERNELS_HADAMARD_H
#define KERNELS_HADAMARD_H

#include <stddef.h>

/* B = n & -n: 64 for 64, 4 for 172, 32 for 288, 256 for 768, 512 for 5632. Where n is not a
 * power of two, Q_n is a block-diagonal of n / B Hadamard matrices: weaker than QuaRot's
 * own non-power-of-two matrices (docs/SPEC.md section 7 says so). */
int hadamard_block(int n);

/* Whether step 1 flips element i: bit 31 of h = i * 2654435761 + 0x9E3779B9 (unsigned
 * 32-bit arithmetic, so h wraps). */
int hadamard_flips(int i);

/* Q_n in double along the first axis of x: element i is the `width` doubles at x + i *
 * stride, each transformed alike (stride and width 1: a vector). So one call rotates a
 * vector, or each column of an n-row matrix at once, with the same operations on every
 * value as its own call would make (the sums of a butterfly pair rows, elementwise). */
void hadamard_f64(double *x, int n, size_t stride, size_t width);

/* Q_len in float32 on each of n_vecs consecutive vectors of len floats, in place: the
 * online rotations of docs/SPEC.md section 7. hadamard_scalar is the definition; hadamard
 * runs it at the current SIMD level (kernels/simd.h), which gives the same bits. */
void hadamard_scalar(float *v, int n_vecs, int len);
void hadamard(float *v, int n_vecs, int len);

#endif
