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

/* The RoPE rotation of position pos: pair i (of n_pairs) of every head turns by
 * pos * inv_freq[i] (the model's frequencies: config_rope_frequencies); writes its cosine
 * and sine to cos_t[i], sin_t[i]. Computed in double precision and rounded once, so each is
 * as exact as float32 allows. */
void rope_angles(float *cos_t, float *sin_t, int pos, int n_pairs, const double *inv_freq);

/* Rotates pair (v[2i], v[2i+1]) of each of n_vecs consecutive vectors of length `len` by the
 * angle whose cosine and sine are cos_t[i], sin_t[i] (RoPE, llama2.c's interleaved pairs). */
void rope_rotate(float *v, int n_vecs, int len, const float *cos_t, const float *sin_t);

/* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), in double and rounded once
 * to float before the product with up[i]. swiglu_scalar is the definition; swiglu runs it at
 * the current SIMD level (kernels/simd.h), which gives the same bits. */
void swiglu_scalar(float *gate, const float *up, int n);
void swiglu(float *gate, const float *up, int n);

/* The exp of SiLU: relative error below 3 DBL_EPSILON for x in [SILU_EXP_MIN, SILU_EXP_MAX]
 * (tests/test_kernels.c measures it against libm's exp), and the value at the nearer end
 * outside (NaN gives exp(SILU_EXP_MIN)). Neither clamp changes a SiLU in double: below -40,
 * 1 + exp(x) rounds to 1 already; above 709 (exp(709.79) is the largest double),
 * g / (1 + exp(-g)) is below 1e-305 and rounds to a float 0 of g's sign, as g * 0 does. Its
 * own rather than libm's so that a SIMD level can repeat it, operation by operation, on 4
 * lanes: silu_exp_taylor holds the coefficients. */
enum { SILU_EXP_TERMS = 14 };
#define SILU_EXP_MIN (-40.0)
#define SILU_EXP_MAX 709.0
#define SILU_EXP_LOG2E 1.44269504088896338700e+00
#define SILU_EXP_LN2_HI 6.93147180369123816490e-01 /* fdlibm's split of ln 2 */
#define SILU_EXP_LN2_LO 1.90821492927058770002e-10
extern const double silu_exp_taylor[SILU_EXP_TERMS];
double silu_exp(double x);

#endif
