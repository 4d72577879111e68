/*
 * kernels/arm/neon.c - the neon level: ARMv8.0 Advanced SIMD, which every AArch64 CPU has
 * (Raspberry Pi 4's Cortex-A72 is the slowest in use). Every entry of the table is its
 * own; it has no GEMM, so its 4-bit kernel also takes matrices with column shifts.
 *
 * The 4-bit kernel is kernels/arm/neon.h's (which says why it is exact) with this dot8:
 * ARMv8.0 has no dot product instruction, so smull / smlal multiply 8 bytes of codes by 8
 * activation codes into 16-bit lanes (one product each, plus the product of the same row
 * and column 4 further on: |2 x 15 x 128| and |2 x 112 x 128| are below 2^15), and two
 * pairwise additions (widening to 32 bits first) gather each row's 8 products in its lane.
 */
#include "kernels/arm/arm.h"

#if SIMD_BUILD_ARM
#include <math.h>

#include "kernels/floatops.h"
#include "kernels/hadamard.h"

static inline int32x4_t dot8(int32x4_t acc, int8x16_t lo, int8x16_t hi, int8x8_t a) {
    const int32x2_t a32 = vreinterpret_s32_s8(a);
    const int8x8_t a_lo = vreinterpret_s8_s32(vdup_lane_s32(a32, 0)); /* a[0..3] twice */
    const int8x8_t a_hi = vreinterpret_s8_s32(vdup_lane_s32(a32, 1)); /* a[4..7] twice */
    const int16x8_t rows01 = vmlal_s8(vmull_s8(vget_low_s8(lo), a_lo), vget_low_s8(hi), a_hi);
    const int16x8_t rows23 = vmlal_s8(vmull_s8(vget_high_s8(lo), a_lo), vget_high_s8(hi), a_hi);
    return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(rows01), vpaddlq_s16(rows23)));
}

#include "kernels/arm/neon.h" /* r4_block_level, around this dot8 */

/* The first n <= 4 floats at p, the others 0. */
static inline float32x4_t load_first(const float *p, int n) {
    if (n >= 4) return vld1q_f32(p);
    float lanes[4] = {0};
    memcpy(lanes, p, (size_t)(n > 0 ? n : 0) * sizeof *lanes);
    return vld1q_f32(lanes);
}

/* ------------------------------------------------------------------ floats of a tile */

/* r4_finish_scalar, 4 rows at a time. An accumulator of at most 2^53 in magnitude becomes
 * a double exactly, and the double rounds to float once, to nearest even, as (float)acc
 * does; then the same two products in the same order. Accumulators are far below that
 * (len x 49 x 2^16); a tile with larger ones takes the scalar conversion. */
void r4_finish_neon(float *y, size_t y_stride, const int64_t *acc, int nt, int rows, const float *sa,
                    const float *sw) {
    const uint64x2_t offset = vdupq_n_u64(1ULL << 53), limit = vdupq_n_u64(1ULL << 54);
    for (int t = 0; t < nt; t++) {
        const float32x4_t scale_a = vdupq_n_f32(sa[t]);
        for (int r = 0; r < rows; r += 4) {
            const int64_t *a = acc + t * QR_BLOCK_ROWS + r; /* 16 per vector: 4 always exist */
            float *yt = y + (size_t)t * y_stride + r;
            const int64x2_t lo = vld1q_s64(a), hi = vld1q_s64(a + 2);
            /* a + 2^53 above 2^54 as unsigned: a outside [-2^53, 2^53] */
            const uint64x2_t out = vorrq_u64(vcgtq_u64(vaddq_u64(vreinterpretq_u64_s64(lo), offset), limit),
                                             vcgtq_u64(vaddq_u64(vreinterpretq_u64_s64(hi), offset), limit));
            if (vgetq_lane_u64(out, 0) | vgetq_lane_u64(out, 1)) {
                for (int k = 0; k < 4 && r + k < rows; k++) yt[k] = qr_output(a[k], sa[t], sw[r + k]);
                continue;
            }
            const float32x4_t f = vcombine_f32(vcvt_f32_f64(vcvtq_f64_s64(lo)), vcvt_f32_f64(vcvtq_f64_s64(hi)));
            const float32x4_t v = vmulq_f32(vmulq_f32(f, scale_a), load_first(sw + r, rows - r));
            if (rows - r >= 4) {
                vst1q_f32(yt, v);
            } else {
                float lanes[4];
                vst1q_f32(lanes, v);
                memcpy(yt, lanes, (size_t)(rows - r) * sizeof *yt);
            }
        }
    }
}

/* ------------------------------------------------------------------ dot products */

/* INT8 x INT16: smlal on weights widened to 16 bits, two products per 32-bit lane and step
 * (each at most 128 x 32768 = 2^22), widened to 64 bits every 1024 columns (2^8 x 2^23). */
int64_t dot_i8_neon(const int8_t *w, const int16_t *a, int n) {
    const int n8 = n / 8 * 8;
    int64x2_t acc64 = vdupq_n_s64(0);
    for (int i0 = 0; i0 < n8; i0 += 1024) {
        const int i1 = i0 + 1024 < n8 ? i0 + 1024 : n8;
        int32x4_t acc32 = vdupq_n_s32(0);
        for (int i = i0; i < i1; i += 8) {
            const int16x8_t wv = vmovl_s8(vld1_s8(w + i)), av = vld1q_s16(a + i);
            acc32 = vmlal_s16(acc32, vget_low_s16(wv), vget_low_s16(av));
            acc32 = vmlal_high_s16(acc32, wv, av);
        }
        acc64 = vpadalq_s32(acc64, acc32);
    }
    int64_t sum = vgetq_lane_s64(acc64, 0) + vgetq_lane_s64(acc64, 1);
    for (int i = n8; i < n; i++) sum += (int32_t)a[i] * w[i];
    return sum;
}

/* dot_f32_scalar's order: its 64 sums are the 4 lanes of r[0..15] (sum 4k + j is lane j of
 * r[k]); products are rounded before they are added (fmul, then fadd: no fused
 * multiply-add); the tail is loaded with zeros past n; then the same halving folds. */
float dot_f32_neon(const float *w, const float *x, int n) {
    float32x4_t r[16];
    for (int k = 0; k < 16; k++) r[k] = vdupq_n_f32(0.0f);
    const int n64 = n / 64 * 64;
    for (int i = 0; i < n64; i += 64)
        for (int k = 0; k < 16; k++) r[k] = vaddq_f32(r[k], vmulq_f32(vld1q_f32(w + i + 4 * k), vld1q_f32(x + i + 4 * k)));
    for (int k = 0; n64 + 4 * k < n; k++) {
        const int at = n64 + 4 * k;
        r[k] = vaddq_f32(r[k], vmulq_f32(load_first(w + at, n - at), load_first(x + at, n - at)));
    }
    for (int half = 8; half >= 1; half /= 2) /* j + 32, j + 16, j + 8, j + 4 */
        for (int k = 0; k < half; k++) r[k] = vaddq_f32(r[k], r[k + half]);
    const float32x2_t s = vadd_f32(vget_low_f32(r[0]), vget_high_f32(r[0])); /* j + 2 */
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

/* ------------------------------------------------------------------ activation quantizer */

/* quantize_value for 4 lanes: the same division, then fcvtas, which rounds half away from
 * zero as roundf does, saturates (so infinities and huge values reach the clamp as they
 * do in float) and gives 0 for a NaN. */
static inline int32x4_t stage1(float32x4_t v, float32x4_t s, int32x4_t qmax) {
    const int32x4_t q = vcvtaq_s32_f32(vdivq_f32(v, s));
    return vmaxq_s32(vminq_s32(q, qmax), vnegq_s32(qmax));
}

/* r4_acts_quantize_scalar, 4 values at a time: the largest magnitude with fmaxnm (which
 * skips a NaN, as fmaxf does), stage 1 as above, and per group the OR of the magnitudes,
 * its leading one, and the razored codes, as sdr_group computes them. The same bytes. G
 * must be a multiple of 4 (docs/SPEC.md's are); others take the scalar way. */
void quantize_r4_neon(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax, int rounding) {
    const int n = a->len, G = a->group, qmax = kind == QUANT_RTN4 ? QMAX_RTN4 : base_qmax;
    if (G % 4 != 0 || G > QR_MAX_GROUP) {
        r4_acts_quantize_scalar(a, t, x, kind, base_qmax, rounding);
        return;
    }
    int8_t *codes = a->codes + (size_t)t * a->stride;
    int32_t *shifts = a->shifts + (size_t)t * a->n_groups;
    float32x4_t amax4 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) amax4 = vmaxnmq_f32(amax4, vabsq_f32(vld1q_f32(x + i)));
    float amax = fmaxf(fmaxf(vgetq_lane_f32(amax4, 0), vgetq_lane_f32(amax4, 1)),
                       fmaxf(vgetq_lane_f32(amax4, 2), vgetq_lane_f32(amax4, 3)));
    for (; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float s = amax / (float)qmax;
    a->scale[t] = s;
    memset(codes, 0, (size_t)a->stride); /* padding is code 0 */
    if (s == 0.0f) { /* an all-zero vector: codes 0, shifts 0 */
        memset(shifts, 0, (size_t)a->n_groups * sizeof *shifts);
        return;
    }
    const float32x4_t vs = vdupq_n_f32(s);
    const int32x4_t vqmax = vdupq_n_s32(qmax);
    for (int g = 0; g < a->n_groups; g++) {
        const int start = g * G, len = qr_group_len(n, G, g), chunks = (len + 3) / 4;
        int32x4_t q[QR_MAX_GROUP / 4];
        uint32x4_t mags = vdupq_n_u32(0);
        for (int c = 0; c < chunks; c++) { /* lanes past the group load as 0: code 0 */
            q[c] = stage1(load_first(x + start + 4 * c, len - 4 * c), vs, vqmax);
            mags = vorrq_u32(mags, vreinterpretq_u32_s32(vabsq_s32(q[c])));
        }
        int shift = 0;
        if (kind != QUANT_RTN4) { /* the group's leading one, three bits kept below it */
            const uint32x2_t m2 = vorr_u32(vget_low_u32(mags), vget_high_u32(mags));
            const uint32_t m = vget_lane_u32(m2, 0) | vget_lane_u32(m2, 1);
            const int lead = m ? 31 - __builtin_clz(m) : 0;
            shift = lead > 2 ? lead - 2 : 0;
        }
        const uint32x4_t half = vdupq_n_u32(rounding && shift > 0 ? 1u << (shift - 1) : 0);
        const int32x4_t right = vdupq_n_s32(-shift);
        for (int c = 0; c < chunks; c++) {
            const uint32x4_t mag = vminq_u32(vshlq_u32(vaddq_u32(vreinterpretq_u32_s32(vabsq_s32(q[c])), half), right),
                                             vdupq_n_u32(7));
            const int32x4_t m = vreinterpretq_s32_u32(mag);
            const int32x4_t code = vbslq_s32(vcltq_s32(q[c], vdupq_n_s32(0)), vnegq_s32(m), m);
            /* 4 bytes: within the group, or past len in the zero padding of the last one */
            const int8x8_t bytes = vmovn_s16(vcombine_s16(vmovn_s32(code), vdup_n_s16(0)));
            vst1_lane_s32((int32_t *)(void *)(codes + start + 4 * c), vreinterpret_s32_s8(bytes), 0);
        }
        shifts[g] = shift;
    }
}

/* The preparation of a batch for r4_block: its corrections (the definition's loop; a few
 * additions per code, once per product). There is no GEMM to pack for: -1. */
static int r4_pack_neon(const R4Acts *x, int t0, int t1) {
    for (int t = t0; t < t1; t++) r4_acts_set_corr(x, t);
    return -1;
}

/* ------------------------------------------------------------------ SwiGLU */

/* exp_core (kernels/floatops.c) on 2 lanes, operation by operation, so each lane has the
 * scalar's bits. */
static inline float64x2_t exp_core2(float64x2_t x) {
    const float64x2_t n = vrndmq_f64(vaddq_f64(vmulq_f64(x, vdupq_n_f64(SILU_EXP_LOG2E)), vdupq_n_f64(0.5)));
    const float64x2_t r = vsubq_f64(vsubq_f64(x, vmulq_f64(n, vdupq_n_f64(SILU_EXP_LN2_HI))),
                                    vmulq_f64(n, vdupq_n_f64(SILU_EXP_LN2_LO)));
    const double *c = silu_exp_taylor;
    const float64x2_t r2 = vmulq_f64(r, r), r4 = vmulq_f64(r2, r2), r8 = vmulq_f64(r4, r4);
    float64x2_t q[7];
    for (int j = 0; j < 7; j++) q[j] = vaddq_f64(vdupq_n_f64(c[2 * j]), vmulq_f64(vdupq_n_f64(c[2 * j + 1]), r));
    const float64x2_t s0 = vaddq_f64(q[0], vmulq_f64(q[1], r2));
    const float64x2_t s1 = vaddq_f64(q[2], vmulq_f64(q[3], r2));
    const float64x2_t s2 = vaddq_f64(q[4], vmulq_f64(q[5], r2));
    const float64x2_t p = vaddq_f64(vaddq_f64(s0, vmulq_f64(s1, r4)), vmulq_f64(vaddq_f64(s2, vmulq_f64(q[6], r4)), r8));
    const int64x2_t biased = vaddq_s64(vcvtq_s64_f64(n), vdupq_n_s64(1023)); /* n is an integer */
    return vmulq_f64(p, vreinterpretq_f64_s64(vshlq_n_s64(biased, 52)));
}

/* silu_exp: the clamp, then exp_core. fmaxnm returns the number when the other operand is
 * NaN: a NaN lane takes SILU_EXP_MIN, as in the scalar. */
static inline float64x2_t silu_exp2(float64x2_t x) {
    return exp_core2(vminq_f64(vmaxnmq_f64(x, vdupq_n_f64(SILU_EXP_MIN)), vdupq_n_f64(SILU_EXP_MAX)));
}

/* silu(g) in double, rounded once to float, times up: swiglu_scalar on 2 lanes. */
static inline float32x2_t silu2(float64x2_t g) {
    const float64x2_t e = silu_exp2(vnegq_f64(g)); /* exp(-g) */
    const float64x2_t one = vdupq_n_f64(1.0);
    return vcvt_f32_f64(vmulq_f64(g, vdivq_f64(one, vaddq_f64(one, e))));
}

void swiglu_neon(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t g = vld1q_f32(gate + i);
        const float32x4_t silu = vcombine_f32(silu2(vcvt_f64_f32(vget_low_f32(g))), silu2(vcvt_high_f64_f32(g)));
        vst1q_f32(gate + i, vmulq_f32(silu, vld1q_f32(up + i)));
    }
    swiglu_scalar(gate + i, up + i, n - i);
}

/* ------------------------------------------------------------------ softmax */

/* softmax_exp of 4 lanes: exp_core in double at max(x, SOFTMAX_EXP_MIN) (fmaxnm: a NaN lane
 * takes the minimum), rounded to float; then 0 where x < SOFTMAX_EXP_MIN and x itself where
 * it is NaN, as in the scalar. */
static inline float32x4_t softmax_exp4(float32x4_t x) {
    const float32x4_t lo = vdupq_n_f32(SOFTMAX_EXP_MIN), c = vmaxnmq_f32(x, lo);
    const float32x4_t e = vcombine_f32(vcvt_f32_f64(exp_core2(vcvt_f64_f32(vget_low_f32(c)))),
                                       vcvt_f32_f64(exp_core2(vcvt_high_f64_f32(c))));
    const uint32x4_t below = vcltq_f32(x, lo), number = vceqq_f32(x, x);
    return vbslq_f32(number, vbslq_f32(below, vdupq_n_f32(0.0f), e), x);
}

/* pairwise_sum (kernels/floatops.c) with its 8 running sums in two registers, and its tree
 * ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) by pairwise adds: the same bits. */
static float pairwise_sum_neon(const float *a, int n) {
    if (n > 128) {
        const int half = n / 2 - n / 2 % 8;
        return pairwise_sum_neon(a, half) + pairwise_sum_neon(a + half, n - half);
    }
    float s = 0.0f;
    int i = 0;
    if (n >= 8) {
        float32x4_t lo = vld1q_f32(a), hi = vld1q_f32(a + 4);
        for (i = 8; i + 8 <= n; i += 8) lo = vaddq_f32(lo, vld1q_f32(a + i)), hi = vaddq_f32(hi, vld1q_f32(a + i + 4));
        const float32x4_t p = vpaddq_f32(lo, hi); /* r0 + r1, r2 + r3, r4 + r5, r6 + r7 */
        const float32x4_t pp = vpaddq_f32(p, p);
        s = vgetq_lane_f32(pp, 0) + vgetq_lane_f32(pp, 1);
    }
    for (; i < n; i++) s += a[i];
    return s;
}

/* softmax_scalar, 4 lanes at a time: the division, the maximum (the scalar's comparison, so
 * a NaN is skipped), softmax_exp on 2 doubles, the pairwise sum, the division by it. */
void softmax_neon(float *x, int n, float divisor) {
    const float32x4_t d = vdupq_n_f32(divisor);
    float32x4_t m = vdupq_n_f32(-INFINITY);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vdivq_f32(vld1q_f32(x + i), d);
        vst1q_f32(x + i, v);
        m = vbslq_f32(vcgtq_f32(v, m), v, m);
    }
    float max = fmaxf(fmaxf(vgetq_lane_f32(m, 0), vgetq_lane_f32(m, 1)), fmaxf(vgetq_lane_f32(m, 2), vgetq_lane_f32(m, 3)));
    for (; i < n; i++) {
        x[i] /= divisor;
        max = x[i] > max ? x[i] : max;
    }
    const float32x4_t vmax = vdupq_n_f32(max);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, softmax_exp4(vsubq_f32(vld1q_f32(x + i), vmax)));
    for (; i < n; i++) x[i] = softmax_exp(x[i] - max);
    const float sum = pairwise_sum_neon(x, n);
    const float32x4_t vsum = vdupq_n_f32(sum);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vdivq_f32(vld1q_f32(x + i), vsum));
    for (; i < n; i++) x[i] /= sum;
}

/* ------------------------------------------------------------------ Q_n (docs/SPEC.md section 7) */

/* The sign flips of elements i .. i + 3 (kernels/hadamard.c, hadamard_flips) as a float's
 * sign bit in each lane: bit 31 of i * 2654435761 + 0x9E3779B9, wrapping as unsigned. */
static inline uint32x4_t hadamard_signs4(int i) {
    static const uint32_t step[4] = {0, 1, 2, 3};
    const uint32x4_t index = vaddq_u32(vdupq_n_u32((uint32_t)i), vld1q_u32(step));
    const uint32x4_t h = vmlaq_u32(vdupq_n_u32(0x9E3779B9u), index, vdupq_n_u32(2654435761u));
    return vandq_u32(h, vdupq_n_u32(0x80000000u));
}

/* The butterfly stages h = 1, 2 within 4 lanes: lane l pairs with lane l ^ h (s holds the
 * partners); the lower of a pair takes a + b, the upper a - b, which in the upper lane is
 * s - x. */
static inline float32x4_t hadamard_lanes4(float32x4_t x) {
    static const uint32_t odd[4] = {0, ~0u, 0, ~0u}, upper[4] = {0, 0, ~0u, ~0u};
    float32x4_t s = vrev64q_f32(x); /* h = 1: neighbours swapped */
    x = vbslq_f32(vld1q_u32(odd), vsubq_f32(s, x), vaddq_f32(x, s));
    s = vextq_f32(x, x, 2); /* h = 2: halves swapped */
    return vbslq_f32(vld1q_u32(upper), vsubq_f32(s, x), vaddq_f32(x, s));
}

/* hadamard_scalar's steps, 4 elements at a time: the signs and the stages below 4 in one
 * pass over each vector, then one pass per stage from 4 on, the last one scaling. Blocks
 * of fewer than 4 go to the scalar definition. */
void hadamard_neon(float *v, int n_vecs, int len) {
    const int B = hadamard_block(len);
    if (B < 4) {
        hadamard_scalar(v, n_vecs, len);
        return;
    }
    const float32x4_t scale = vdupq_n_f32((float)(1.0 / sqrt((double)B)));
    for (int t = 0; t < n_vecs; t++) {
        float *x = v + (size_t)t * len;
        for (int i = 0; i < len; i += 4) {
            const float32x4_t flipped =
                vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(vld1q_f32(x + i)), hadamard_signs4(i)));
            const float32x4_t y = hadamard_lanes4(flipped);
            vst1q_f32(x + i, B == 4 ? vmulq_f32(y, scale) : y);
        }
        for (int h = 4; h < B; h *= 2) {
            const float32x4_t last = 2 * h == B ? scale : vdupq_n_f32(1.0f); /* x 1 changes nothing */
            for (int j = 0; j < len; j += 2 * h)
                for (int i = j; i < j + h; i += 4) {
                    const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + h);
                    vst1q_f32(x + i, vmulq_f32(vaddq_f32(a, b), last));
                    vst1q_f32(x + i + h, vmulq_f32(vsubq_f32(a, b), last));
                }
        }
    }
}

const KernelTable kernels_neon = {.name = "neon",
                                  .r4_block = r4_block_level,
                                  .r4_finish = r4_finish_neon,
                                  .dot_i8 = dot_i8_neon,
                                  .dot_f32 = dot_f32_neon,
                                  .quantize_r4 = quantize_r4_neon,
                                  .r4_pack = r4_pack_neon,
                                  .swiglu = swiglu_neon,
                                  .softmax = softmax_neon,
                                  .hadamard = hadamard_neon};
#endif
