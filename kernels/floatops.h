/*
 * kernels/floatops.h - the float32 steps between matmuls: RMSNorm, softmax, RoPE, SwiGLU.
 *
 * These stay in float in every mode (docs/SPEC.md section 4); only matmuls are quantized.
 */
#ifndef KERNELS_FLOATOPS_H
#define KERNELS_FLOATOPS_H

/* o = w * x / sqrt(mean(x^2) + eps). o may alias x. */
void rmsnorm(float *o, const float *x, const float *w, int n, float eps);

/* x = softmax(x / divisor): x[i] / divisor, then exp(x[i] - max) / sum, in place (max over
 * the values that are not NaN; the exp is softmax_exp; the sum in the pairwise order of
 * floatops.c). softmax_scalar is the definition, softmax_scaled runs it at the current SIMD
 * level (kernels/simd.h), which gives the same bits; softmax divides by 1, which changes
 * nothing. */
void softmax_scalar(float *x, int n, float divisor);
void softmax_scaled(float *x, int n, float divisor);
void softmax(float *x, int n);

/* The float32 sum of a[0..n) in NumPy's pairwise order (floatops.c): the order the SIMD
 * levels' sums repeat. */
float pairwise_sum(const float *a, int n);

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

/* e^x in double for x where 2^round(x / ln 2) is a normal double (about [-708, 709]):
 * relative error below 3 DBL_EPSILON (tests/test_kernels.c measures it against libm's exp).
 * Its own rather than libm's so that a SIMD level can repeat it, operation by operation, on
 * 2, 4 or 8 lanes: silu_exp_taylor holds the coefficients. */
double exp_core(double x);

/* The exp of SiLU: exp_core of x clamped to [SILU_EXP_MIN, SILU_EXP_MAX] (NaN gives
 * exp(SILU_EXP_MIN)). Neither clamp changes a SiLU in double: below -40, 1 + exp(x) rounds
 * to 1 already; above 709 (exp(709.79) is the largest double), g / (1 + exp(-g)) is below
 * 1e-305 and rounds to a float 0 of g's sign, as g * 0 does. */
enum { SILU_EXP_TERMS = 14 };
#define SILU_EXP_MIN (-40.0)
#define SILU_EXP_MAX 709.0
#define SILU_EXP_LOG2E 1.44269504088896338700e+00
#define SILU_EXP_LN2_HI 6.93147180369123816490e-01 /* fdlibm's split of ln 2 */
#define SILU_EXP_LN2_LO 1.90821492927058770002e-10
extern const double silu_exp_taylor[SILU_EXP_TERMS];
double silu_exp(double x);

/* The exp of softmax, for its arguments x - max <= 0: exp_core in double, rounded once to
 * float, so correctly rounded but for values within about 3e-16 of halfway between two
 * floats (libm's expf agrees but in such cases); 0 below SOFTMAX_EXP_MIN, where e^x is under
 * half the smallest float; NaN stays NaN. */
#define SOFTMAX_EXP_MIN (-104.0f)
float softmax_exp(float x);

#endif
