/*
 * kernels/x86/avx512.c - the avx512 level: AVX-512 (F, DQ, BW, VL) + VNNI kernels (compiled
 * with those flags; only called after CPU detection says so). It borrows the AVX2 GEMM,
 * its packing and SwiGLU (every AVX-512 CPU has AVX2).
 *
 * The 4-bit kernel is the AVX2 one (see avx2.c for why it is exact) with the
 * whole 16-row block in one register:
 *   - one 64-byte step = 16 rows x 8 columns; `and 0x0F` / shift-and-mask split it into
 *     two registers of 16 lanes x 4 excess-8 codes (columns 0-3 and 4-7 of every row);
 *   - vpdpbusd multiplies each lane's 4 unsigned codes by 4 signed activation codes
 *     (broadcast) and adds the 4 products to the lane: one instruction per 64 products;
 *   - vpsllvd applies each row's sa + sw to its group sum; 32-bit lanes are widened to
 *     64 bits every 512 columns (512 x 49 x 2^16 < 2^31).
 */
#include "kernels/simd.h"

#if SIMD_BUILD_X86
#if !defined(SIMD_EMULATED) /* the emulated test build gets SIMDe's intrinsics (tests/simde/) */
#include <immintrin.h>
#endif
#include <string.h>

/* The loops over a tile's vectors must be unrolled for the accumulators to stay in
 * registers; compilers will not do it at -O2 on their own (it grows the code). */
#define UNROLL_TILE _Pragma("GCC unroll 8")

/* Prefetch distance, in bytes ahead in the code stream: a decode step streams every
 * weight once, and the hardware prefetcher alone leaves the loads waiting. */
#define PREFETCH_BYTES 2048

/* Lanes 0 .. n-1 of 16, for masked loads and stores. */
static inline __mmask16 first_lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

/* The sum of the 16 int32 lanes, the OR of them, and the largest of 16 floats (none NaN):
 * written out, so that the emulated build needs no reduction of SIMDe's. */
static inline int32_t add_lanes_epi32(__m512i v) {
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4E));
    q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1));
    return _mm_cvtsi128_si32(q);
}

static inline int32_t or_lanes_epi32(__m512i v) {
    __m256i h = _mm256_or_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i q = _mm_or_si128(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    q = _mm_or_si128(q, _mm_shuffle_epi32(q, 0x4E));
    q = _mm_or_si128(q, _mm_shuffle_epi32(q, 0xB1));
    return _mm_cvtsi128_si32(q);
}

static inline float max_lanes_ps(__m512 v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Adds the 16 int32 lanes of v, widened, to dst[0..15]. */
static inline void widen_add(int64_t *dst, __m512i v) {
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1));
    _mm512_storeu_si512(dst, _mm512_add_epi64(_mm512_loadu_si512(dst), lo));
    _mm512_storeu_si512(dst + 8, _mm512_add_epi64(_mm512_loadu_si512(dst + 8), hi));
}

/* The 16 rows' weight shifts of one group as 32-bit lanes. The 8 bytes hold row j in the
 * low nibble of byte j and row j + 8 in the high one: broadcast them to both halves of a
 * 16-byte vector, widen every byte to a lane, shift lanes 8-15 right by 4, mask. */
static inline __m512i row_shifts(const uint8_t *p) {
    uint64_t bits;
    memcpy(&bits, p, 8);
    const __m512i high_half = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i lanes = _mm512_cvtepu8_epi32(_mm_set1_epi64x((long long)bits));
    return _mm512_and_si512(_mm512_srlv_epi32(lanes, high_half), _mm512_set1_epi32(15));
}

/* One block of 16 rows against NT vectors. NT is a compile-time constant at every call
 * (r4_block_avx512 below), so the per-vector accumulators live in registers. */
static inline __attribute__((always_inline)) void r4_tile(int64_t *acc, const R4Matrix *w, int rb,
                                                          const R4Acts *x, int t0, const int NT) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const int G = x->group;
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const uint8_t *wshift = w->shifts ? w->shifts + (size_t)rb * w->n_groups * 8 : NULL;
    const int8_t *a[QR_TILE_TOKENS];
    const int32_t *sa[QR_TILE_TOKENS], *corr[QR_TILE_TOKENS];
    __m512i acc32[QR_TILE_TOKENS];
    UNROLL_TILE
    for (int t = 0; t < NT; t++) {
        a[t] = x->codes + (size_t)(t0 + t) * x->stride;
        sa[t] = x->shifts + (size_t)(t0 + t) * x->n_groups;
        corr[t] = x->corr + (size_t)(t0 + t) * x->n_groups;
        acc32[t] = _mm512_setzero_si512();
    }
    for (int i = 0; i < NT * QR_BLOCK_ROWS; i++) acc[i] = 0;

    int since_flush = 0;
    for (int g = 0; g < x->n_groups; g++) {
        const int start = g * G, end = start + G < x->len ? start + G : x->len;
        const int steps = (end - start + QR_STEP_COLS - 1) / QR_STEP_COLS;
        const __m512i sw = wshift ? row_shifts(wshift + (size_t)g * 8) : _mm512_setzero_si512();
        __m512i gacc[QR_TILE_TOKENS];
        UNROLL_TILE
        for (int t = 0; t < NT; t++) gacc[t] = _mm512_set1_epi32(corr[t][g]);
        const uint8_t *codes = block + (size_t)(start / QR_STEP_COLS) * QR_STEP_BYTES;
        for (int s = 0; s < steps; s++) {
            _mm_prefetch((const char *)codes + (size_t)s * QR_STEP_BYTES + PREFETCH_BYTES, _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512(codes + (size_t)s * QR_STEP_BYTES);
            const __m512i lo = _mm512_and_si512(v, low4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            const int col = start + s * QR_STEP_COLS;
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                gacc[t] = _mm512_dpbusd_epi32(gacc[t], lo, bcast4(a[t] + col));
                gacc[t] = _mm512_dpbusd_epi32(gacc[t], hi, bcast4(a[t] + col + 4));
            }
        }
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const __m512i sh = _mm512_add_epi32(sw, _mm512_set1_epi32(sa[t][g]));
            acc32[t] = _mm512_add_epi32(acc32[t], _mm512_sllv_epi32(gacc[t], sh));
        }
        since_flush += G;
        if (since_flush >= QR_FLUSH_COLS || g == x->n_groups - 1) {
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                widen_add(acc + t * QR_BLOCK_ROWS, acc32[t]);
                acc32[t] = _mm512_setzero_si512();
            }
            since_flush = 0;
        }
    }
}

static void r4_block_avx512(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                            int nt) {
    switch (nt) {
    case 1: r4_tile(acc, w, rb, x, t0, 1); break;
    case 2: r4_tile(acc, w, rb, x, t0, 2); break;
    case 3: r4_tile(acc, w, rb, x, t0, 3); break;
    case 4: r4_tile(acc, w, rb, x, t0, 4); break;
    case 5: r4_tile(acc, w, rb, x, t0, 5); break;
    case 6: r4_tile(acc, w, rb, x, t0, 6); break;
    case 7: r4_tile(acc, w, rb, x, t0, 7); break;
    default: r4_tile(acc, w, rb, x, t0, 8); break;
    }
}

/* y = ((float)acc * Sa) * Sw for a tile: vcvtqq2ps (AVX-512DQ) rounds each int64 to float
 * as the scalar conversion does, then the same two products in the same order. */
static void r4_finish_avx512(float *y, size_t y_stride, const int64_t *acc, int nt, int rows,
                             const float *sa, const float *sw) {
    const __mmask16 keep = rows >= 16 ? 0xFFFF : (__mmask16)((1u << rows) - 1);
    const __m512 scale_w = _mm512_maskz_loadu_ps(keep, sw);
    for (int t = 0; t < nt; t++) {
        const __m256 lo = _mm512_cvtepi64_ps(_mm512_loadu_si512(acc + t * QR_BLOCK_ROWS));
        const __m256 hi = _mm512_cvtepi64_ps(_mm512_loadu_si512(acc + t * QR_BLOCK_ROWS + 8));
        const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
        const __m512 v = _mm512_mul_ps(_mm512_mul_ps(f, _mm512_set1_ps(sa[t])), scale_w);
        _mm512_mask_storeu_ps(y + (size_t)t * y_stride, keep, v);
    }
}

/* INT8 x INT16 with vpdpwssd (VNNI): 32 products per instruction; each 32-bit lane gains
 * at most 2 * 127 * 32767 per step, so lanes are widened every 256 steps (8192 columns). */
static int64_t dot_i8_avx512(const int8_t *w, const int16_t *a, int n) {
    const int n32 = n / 32 * 32;
    __m512i acc64 = _mm512_setzero_si512();
    for (int i0 = 0; i0 < n32; i0 += 8192) {
        const int i1 = i0 + 8192 < n32 ? i0 + 8192 : n32;
        __m512i acc32 = _mm512_setzero_si512();
        for (int i = i0; i < i1; i += 32) {
            const __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i)));
            acc32 = _mm512_dpwssd_epi32(acc32, wv, _mm512_loadu_si512(a + i));
        }
        acc64 = _mm512_add_epi64(acc64, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc32)));
        acc64 = _mm512_add_epi64(acc64, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc32, 1)));
    }
    const __m256i h = _mm256_add_epi64(_mm512_castsi512_si256(acc64), _mm512_extracti64x4_epi64(acc64, 1));
    const __m128i q = _mm_add_epi64(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    int64_t sum = _mm_cvtsi128_si64(q) + _mm_extract_epi64(q, 1);
    for (int i = n32; i < n; i++) sum += (int32_t)a[i] * w[i];
    return sum;
}

/* dot_f32_scalar's order: its 64 sums are the 16 lanes of r[0..3] (sum 16k + j is lane j
 * of r[k]); products are rounded before they are added (mul, then add: no FMA); the tail
 * is loaded with zeros past n; then the same halving folds, written out (a compiler's
 * reduction would add in an order of its own). */
static float dot_f32_avx512(const float *w, const float *x, int n) {
    __m512 r[4];
    for (int k = 0; k < 4; k++) r[k] = _mm512_setzero_ps();
    const int n64 = n / 64 * 64;
    for (int i = 0; i < n64; i += 64)
        for (int k = 0; k < 4; k++)
            r[k] = _mm512_add_ps(r[k], _mm512_mul_ps(_mm512_loadu_ps(w + i + 16 * k), _mm512_loadu_ps(x + i + 16 * k)));
    for (int k = 0; n64 + 16 * k < n; k++) {
        const int at = n64 + 16 * k;
        const __mmask16 m = first_lanes(n - at);
        r[k] = _mm512_add_ps(r[k], _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + at), _mm512_maskz_loadu_ps(m, x + at)));
    }
    r[0] = _mm512_add_ps(r[0], r[2]); /* j + 32 */
    r[1] = _mm512_add_ps(r[1], r[3]);
    r[0] = _mm512_add_ps(r[0], r[1]); /* j + 16 */
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(r[0]), _mm512_extractf32x8_ps(r[0], 1)); /* j + 8 */
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ------------------------------------------------------------------ activation quantizer */

/* roundf's rounding, half away from zero: truncate, then step one away from zero when the
 * dropped fraction |v| - |trunc v| (exact in floating point) is at least one half. */
static inline __m512 round_half_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_sub_ps(_mm512_abs_ps(v), _mm512_abs_ps(t));
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u));
    const __m512 away = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)), sign));
    return _mm512_mask_add_ps(t, up, t, away);
}

/* r4_acts_quantize_scalar, 16 lanes at a time: the same float division and rounding for
 * stage 1, the same OR / leading-one / rounded shift for each group, so the same bytes. */
static void quantize_r4_avx512(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                               int rounding) {
    const int n = a->len, G = a->group, qmax = kind == QUANT_RTN4 ? QMAX_RTN4 : base_qmax;
    int8_t *codes = a->codes + (size_t)t * a->stride;
    int32_t *shifts = a->shifts + (size_t)t * a->n_groups;
    int32_t *corr = a->corr + (size_t)t * a->n_groups;
    __m512 amax = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        /* max_ps returns its second operand when either is NaN: a NaN input is skipped,
         * as fmaxf skips it in absmax_scale */
        amax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(first_lanes(n - i), x + i)), amax);
    const float s = max_lanes_ps(amax) / (float)qmax;
    memset(codes, 0, (size_t)a->stride);
    a->scale[t] = s;
    if (s == 0.0f) { /* an all-zero vector: codes 0, shifts 0 */
        memset(shifts, 0, (size_t)a->n_groups * sizeof *shifts);
        memset(corr, 0, (size_t)a->n_groups * sizeof *corr);
        return;
    }
    const __m512 vs = _mm512_set1_ps(s), hi = _mm512_set1_ps((float)qmax), lo = _mm512_set1_ps((float)-qmax);
    for (int g = 0; g < a->n_groups; g++) {
        const int start = g * G, len = n - start < G ? n - start : G, chunks = (len + 15) / 16;
        __m512i q[QR_MAX_GROUP / 16];
        __m512i mags = _mm512_setzero_si512();
        for (int c = 0; c < chunks; c++) {
            const __m512 v = _mm512_maskz_loadu_ps(first_lanes(len - 16 * c), x + start + 16 * c);
            const __m512 d = _mm512_div_ps(v, vs); /* a NaN (NaN input, inf / inf) gives code 0 */
            const __m512 r = _mm512_min_ps(_mm512_max_ps(round_half_away(d), lo), hi);
            q[c] = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(d, d, _CMP_ORD_Q), _mm512_cvttps_epi32(r));
            mags = _mm512_or_si512(mags, _mm512_abs_epi32(q[c]));
        }
        int shift = 0;
        if (kind != QUANT_RTN4) { /* the group's leading one, three bits kept below it */
            const uint32_t m = (uint32_t)or_lanes_epi32(mags);
            const int lead = m ? 31 - __builtin_clz(m) : 0;
            shift = lead > 2 ? lead - 2 : 0;
        }
        const __m512i half = _mm512_set1_epi32(rounding && shift > 0 ? 1 << (shift - 1) : 0);
        const __m512i count = _mm512_set1_epi32(shift);
        __m512i sum = _mm512_setzero_si512();
        for (int c = 0; c < chunks; c++) {
            const __m512i mag = _mm512_min_epi32(
                _mm512_srlv_epi32(_mm512_add_epi32(_mm512_abs_epi32(q[c]), half), count), _mm512_set1_epi32(7));
            const __mmask16 neg = _mm512_cmplt_epi32_mask(q[c], _mm512_setzero_si512());
            const __m512i code = _mm512_mask_sub_epi32(mag, neg, _mm512_setzero_si512(), mag);
            sum = _mm512_add_epi32(sum, code);
            _mm512_mask_cvtepi32_storeu_epi8(codes + start + 16 * c, first_lanes(len - 16 * c), code);
        }
        shifts[g] = shift;
        corr[g] = -8 * add_lanes_epi32(sum);
    }
}

/* Borrowed from avx2.c. */
int r4_pack_avx2(const R4Acts *x, int t0, int t1);
void r4_gemm_avx2(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1, const R4Acts *x);
void swiglu_avx2(float *gate, const float *up, int n);

const KernelTable kernels_avx512 = {"avx512", r4_block_avx512, r4_finish_avx512, dot_i8_avx512,
                                    dot_f32_avx512, quantize_r4_avx512, r4_pack_avx2, r4_gemm_avx2,
                                    swiglu_avx2};
#endif
