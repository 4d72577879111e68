/*
 * kernels/floatops.h - the float32 steps between matmuls: RMSNorm, softmax, RoPE, SwiGLU.
 *
 * These stay in float in every mode (docs/SPEC.md section 4); only matmuls are quantized.
 */
#ifndef KERNELS_FLOATOPS_H
#define KERNELS_FLOATOPS_H

/* o = w * x / sqrt(mean(x^2) + eps). o may alias x. */
void rmsnorm(float *o, const float *x, const float *w, int n, float eps);

/* x = exp(x - max x) / sum; in place. */
void softmax(float *x, int n);

/* The RoPE rotation of position pos: pair i (of head_size / 2) of every head turns by
 * pos / theta^(2i / head_size); writes its cosine and sine to cos_t[i], sin_t[i]. Computed
 * in double precision and rounded once, so each is as exact as float32 allows. */
void rope_angles(float *cos_t, float *sin_t, int pos, int head_size, double theta);

/* Rotates pair (v[2i], v[2i+1]) of each of n_vecs consecutive vectors of length `len` by the
 * angle whose cosine and sine are cos_t[i], sin_t[i] (RoPE, llama2.c's interleaved pairs). */
void rope_rotate(float *v, int n_vecs, int len, const float *cos_t, const float *sin_t);

/* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). */
void swiglu(float *gate, const float *up, int n);

#endif
