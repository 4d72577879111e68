/*
 * kernels/x86/avx512.c - the avx512 level: AVX-512 (F, CD, DQ, BW, VL) + VNNI kernels
 * (compiled with those flags; only called after CPU detection says so). Every entry of the
 * table is its own.
 *
 * The 4-bit matrix-vector kernel (decode) is the AVX2 one (see avx2.c for why it is exact)
 * with the whole 16-row block in one register:
 *   - one 64-byte step = 16 rows x 8 columns; `and 0x0F` / shift-and-mask split it into
 *     two registers of 16 lanes x 4 excess-8 codes (columns 0-3 and 4-7 of every row);
 *   - vpdpbusd multiplies each lane's 4 unsigned codes by 4 signed activation codes
 *     (broadcast) and adds the 4 products to the lane: one instruction per 64 products;
 *   - vpsllvd applies each row's sa + sw to its group sum; 32-bit lanes are widened to
 *     64 bits every 512 columns (512 x 49 x 2^16 < 2^31).
 * The batched product (prefill) has a GEMM of its own, further down.
 */
#include "kernels/x86/x86.h"

#if SIMD_BUILD_X86
#include <math.h>
#include <string.h>

#include "kernels/floatops.h"
#include "kernels/hadamard.h"

/* The loops over a tile's vectors must be unrolled for the accumulators to stay in
 * registers; compilers will not do it at -O2 on their own (it grows the code). */
#define UNROLL_TILE _Pragma("GCC unroll 8")

/* Prefetch distance, in bytes ahead in the code stream: a decode step streams every
 * weight once, and the hardware prefetcher alone leaves the loads waiting. */
#define PREFETCH_BYTES 2048

/* Lanes 0 .. n-1 of 16, for masked loads and stores. */
static inline __mmask16 first_lanes(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

/* The largest of 16 floats (none NaN), written out, so that the emulated build needs no
 * reduction of SIMDe's. */
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

/* Stage 1 of 16 values: quantize_value's round(v / s), clamped to [-qmax, qmax], 0 for a
 * NaN: the same division, then avx2.c's rounding (clamping first, then truncation after
 * adding copysign(0.5 - 2^-25, d): half away from zero, exact for every float below 2^16
 * in magnitude). */
static inline __m512i stage1(__m512 v, __m512 s, __m512 lo, __m512 hi) {
    const __m512 d = _mm512_div_ps(v, s);
    const __m512 c = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, d, _CMP_ORD_Q), _mm512_min_ps(_mm512_max_ps(d, lo), hi));
    const __m512 half = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(c), _mm512_set1_epi32((int)0x80000000u)),
        _mm512_castps_si512(_mm512_set1_ps(0x1.fffffep-2f))));
    return _mm512_cvttps_epi32(_mm512_add_ps(c, half));
}

/* Lane j of the result (j < N) = the OR of the 16 int32 lanes of v[j]: a tree of unpacks
 * and lane shuffles that folds N vectors at once (N = 2, 4, 8 or 16, a compile-time constant
 * at every call, so that the tree lives in registers), instead of a horizontal reduction
 * each. */
static inline __attribute__((always_inline)) __m512i or_fold(const __m512i *v, const int N) {
    __m512i u[8], w[4], z[2];
    for (int k = 0; k < N / 2; k++) /* per 128-bit lane: v[2k] and v[2k + 1], 2 partial results each */
        u[k] = _mm512_or_si512(_mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
    if (N == 2) u[1] = _mm512_setzero_si512();
    for (int k = 0; k < (N + 3) / 4; k++) /* per 128-bit lane: one partial result of v[4k] .. v[4k + 3] each */
        w[k] = _mm512_or_si512(_mm512_unpacklo_epi64(u[2 * k], u[2 * k + 1]), _mm512_unpackhi_epi64(u[2 * k], u[2 * k + 1]));
    if (N <= 4) w[1] = _mm512_setzero_si512();
    for (int k = 0; k < (N + 7) / 8; k++) /* lanes 0+1 and 2+3 of w[2k], then of w[2k + 1] */
        z[k] = _mm512_or_si512(_mm512_shuffle_i32x4(w[2 * k], w[2 * k + 1], 0x88), _mm512_shuffle_i32x4(w[2 * k], w[2 * k + 1], 0xDD));
    if (N <= 8) z[1] = _mm512_setzero_si512();
    return _mm512_or_si512(_mm512_shuffle_i32x4(z[0], z[1], 0x88), _mm512_shuffle_i32x4(z[0], z[1], 0xDD));
}

/* or_fold of the first count <= 16 vectors of v, whose vectors from count to the next of
 * 2, 4, 8, 16 are 0. */
static __m512i or16(const __m512i v[16], int count) {
    return count <= 2 ? or_fold(v, 2) : count <= 4 ? or_fold(v, 4) : count <= 8 ? or_fold(v, 8) : or_fold(v, 16);
}

/* r4_acts_quantize_scalar for SDR and RTN4, 256 values (16 chunks of 16) at a time: stage 1
 * as above; the OR of each group's magnitudes for all the groups of the 256 values at once
 * (or16), their leading ones and shifts in vector lanes; the razored codes. The same bytes
 * as the definition. */
static void quantize_r4_avx512(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                               int rounding) {
    const int n = a->len, G = a->group, qmax = kind == QUANT_RTN4 ? QMAX_RTN4 : base_qmax;
    int8_t *codes = a->codes + (size_t)t * a->stride;
    int32_t *shifts = a->shifts + (size_t)t * a->n_groups;
    __m512 amax = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16)
        /* max_ps returns its second operand when either is NaN: a NaN input is skipped,
         * as fmaxf skips it in absmax_scale */
        amax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(first_lanes(n - i), x + i)), amax);
    const float s = max_lanes_ps(amax) / (float)qmax;
    a->scale[t] = s;
    if (s == 0.0f) { /* an all-zero vector: codes 0, shifts 0 */
        memset(codes, 0, (size_t)a->stride);
        memset(shifts, 0, (size_t)a->n_groups * sizeof *shifts);
        return;
    }
    const __m512 vs = _mm512_set1_ps(s), hi = _mm512_set1_ps((float)qmax), lo = _mm512_set1_ps((float)-qmax);
    const int per_group = G / 16; /* chunks of 16 values per group (G is 16 .. 128) */
    for (int start = 0; start < n; start += 256) {
        const int chunks = (n - start < 256 ? n - start + 15 : 256) / 16, g0 = start / G;
        const int groups = (chunks + per_group - 1) / per_group;
        __m512i q[16], fold[16];
        for (int c = 0; c < chunks; c++) { /* lanes past n load as 0: code 0 */
            q[c] = stage1(_mm512_maskz_loadu_ps(first_lanes(n - start - 16 * c), x + start + 16 * c), vs, lo, hi);
            const int g = c / per_group;
            fold[g] = c % per_group ? _mm512_or_si512(fold[g], _mm512_abs_epi32(q[c])) : _mm512_abs_epi32(q[c]);
        }
        for (int g = groups; g < 2 || (g < 16 && (g & (g - 1)) != 0); g++) fold[g] = _mm512_setzero_si512(); /* to a power of 2 */
        /* Each group's leading one: 31 - lzcnt of the OR of its magnitudes; three bits kept
         * below it (none for RTN4, whose codes are 4 bits already). */
        const __m512i mags = or16(fold, groups);
        __m512i sh = _mm512_max_epi32(_mm512_sub_epi32(_mm512_set1_epi32(31 - 2), _mm512_lzcnt_epi32(mags)),
                                      _mm512_setzero_si512());
        if (kind == QUANT_RTN4) sh = _mm512_setzero_si512();
        /* rounding adds half of the last kept bit: 1 << (shift - 1), none at shift 0 */
        const __m512i half = rounding ? _mm512_srli_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), sh), 1)
                                      : _mm512_setzero_si512();
        _Alignas(64) int32_t shift[16], halves[16];
        _mm512_store_si512(shift, sh);
        _mm512_store_si512(halves, half);
        _mm512_mask_storeu_epi32(shifts + g0, first_lanes(groups), sh);
        for (int c = 0; c < chunks; c++) {
            const int g = c / per_group;
            const __m512i mag = _mm512_min_epi32(_mm512_srl_epi32(_mm512_add_epi32(_mm512_abs_epi32(q[c]),
                                                                                   _mm512_set1_epi32(halves[g])),
                                                                  _mm_cvtsi32_si128(shift[g])),
                                                 _mm512_set1_epi32(7));
            const __mmask16 neg = _mm512_cmplt_epi32_mask(q[c], _mm512_setzero_si512());
            const __m512i code = _mm512_mask_sub_epi32(mag, neg, _mm512_setzero_si512(), mag);
            _mm_storeu_si128((__m128i *)(codes + start + 16 * c), _mm512_cvtepi32_epi8(code));
        }
    }
    for (int i = (n + 15) / 16 * 16; i < a->stride; i += 16) /* past the whole chunks written: 0 */
        _mm_storeu_si128((__m128i *)(codes + i), _mm_setzero_si128());
}

/* ------------------------------------------------------------------ batched products (GEMM)
 *
 * For a batch of vectors, each 16-row block of weights is unpacked once per 512 columns
 * into a panel that stays in L1 while every vector of the batch goes through it, eight at
 * a time, with the sums of 16 rows x 8 vectors in registers. vpdpbusd multiplies 4
 * unsigned bytes by 4 signed bytes and adds the 4 products to a 32-bit lane: one
 * instruction for 16 rows x 4 columns of one vector. The arithmetic, per unit of 16
 * columns (which lie in one group of G >= 16):
 *   - the weight's shift (its row's group shift, or its column shift) goes into the
 *     weight, w' = c << sw, |w'| <= 7 << 4 = 112, and the weight becomes the unsigned
 *     operand by an offset of 128: u = w' + 128, in 16 .. 240 (the panel holds u);
 *   - the activation codes are the signed operand as they are, 4 of them broadcast from
 *     the vector's codes to every lane, so no copy of the batch is made;
 *   - sum u a = sum w' a + 128 sum a: each unit's sum starts from -128 * (the sum of its
 *     16 activation codes), so that after its 4 vpdpbusd it holds sum w' a exactly (every
 *     partial sum is far below 2^31);
 *   - vpsllvd shifts it by the unit's activation shift sa, and it is added to the 32-bit
 *     sum of its row and vector. A product in any kernel is at most 49 << 16 (kernels/
 *     simd.h), so 512 columns stay below 2^31 (512 x 49 x 2^16 < 2^31) before the sums are
 *     widened to 64 bits. That bound is all the GEMM needs: it takes activation codes of up
 *     to 8 bits (the attention's shifted probabilities) as well as 4-bit ones.
 * Per 16 rows x 16 columns x 1 vector: 4 vpdpbusd, 1 vpsllvd, 1 vpaddd and the starting
 * broadcast. r4_pack_avx512 writes, per vector and unit u, gemm_words[2u] = -128 * (sum of
 * the unit's codes) and gemm_words[2u + 1] = sa (kernels/qformat.h).
 */

enum {
    GEMM_TILE = 8,            /* vectors per register tile: 8 x (a running sum and a unit's sum) */
    GEMM_CHUNK = 128,         /* vectors whose int64 sums one pass keeps */
    GEMM_COLS = QR_FLUSH_COLS /* columns per panel: 32-bit sums are widened after each */
};

/* A panel: per 4 columns, 64 bytes u (row rr's 4 columns in bytes 4 rr .. 4 rr + 3). */
enum { PANEL_STEPS = GEMM_COLS / 4 };

static int r4_pack_avx512(const R4Acts *x, int t0, int t1) {
    const int units = (x->len + 15) / 16, per_group = x->group / 16;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int t = t0; t < t1; t++) {
        const int8_t *a = x->codes + (size_t)t * x->stride; /* zero past len, up to stride */
        const int32_t *sa = x->shifts + (size_t)t * x->n_groups;
        int32_t *words = x->gemm_words + (size_t)t * x->gemm_stride, *corr = x->corr + (size_t)t * x->n_groups;
        memset(corr, 0, (size_t)x->n_groups * sizeof *corr);
        for (int u0 = 0, g = 0, in_group = 0; u0 < units; u0 += 4) { /* 4 units, within stride */
            /* Their code sums: vpdpbusd by bytes of 1 sums 4 codes in each lane; then the 4
             * lanes of each 128-bit lane (one unit's) are summed into its lane 0. */
            __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(a + 16 * u0));
            sum = _mm512_add_epi32(sum, _mm512_unpackhi_epi64(sum, sum)); /* lanes 0 + 2, 1 + 3 */
            sum = _mm512_add_epi32(sum, _mm512_srli_epi64(sum, 32));      /* 0 + 1 */
            _Alignas(64) int32_t sums[16];
            _mm512_store_si512(sums, sum);
            for (int k = 0; k < 4 && u0 + k < units; k++) {
                const int u = u0 + k;
                words[2 * u] = -128 * sums[4 * k];
                words[2 * u + 1] = sa[g];
                corr[g] -= 8 * sums[4 * k]; /* for r4_block */
                if (++in_group == per_group) g++, in_group = 0;
            }
        }
    }
    return 0;
}

/* The 16 rows' weight shifts of group g as 32-bit lanes (the 8 bytes of a block's group:
 * row j in the low nibble of byte j, row j + 8 in the high one). */
static inline __m512i group_row_shifts(const R4Matrix *w, int rb, int g) {
    if (!w->shifts) return _mm512_setzero_si512();
    return row_shifts(w->shifts + ((size_t)rb * w->n_groups + g) * 8);
}

/* u = (x << s) + 128 - (8 << s) for the excess-8 nibbles x (as bytes) and the shifts s
 * (0 .. 4) of the bytes of s_bytes: 2^s and 128 - (8 << s) looked up by vpshufb, then two
 * 16-bit multiplies, one for the low bytes of the 16-bit halves, one for the high ones
 * (x << s <= 15 << 4 fits a byte). For column shifts, which differ byte by byte. */
static inline __m512i shifted_u_bytes(__m512i x, __m512i s_bytes) {
    const __m512i pow2 = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 2, 4, 8, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512i offset = _mm512_broadcast_i32x4(_mm_setr_epi8(120, 112, 96, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512i low_bytes = _mm512_set1_epi16(0x00FF);
    const __m512i m = _mm512_shuffle_epi8(pow2, s_bytes);
    const __m512i shifted = _mm512_or_si512(_mm512_mullo_epi16(_mm512_and_si512(x, low_bytes), _mm512_and_si512(m, low_bytes)),
                                            _mm512_mullo_epi16(_mm512_andnot_si512(low_bytes, x), _mm512_srli_epi16(m, 8)));
    return _mm512_add_epi8(shifted, _mm512_shuffle_epi8(offset, s_bytes));
}

/* The column shifts of columns col .. col + 7 (the 8 nibbles of shifts8, column col in the
 * lowest) as bytes 0-3 of every 32-bit lane: columns 0-3 in *lo, 4-7 in *hi. */
static inline void column_shift_bytes(uint32_t shifts8, __m512i *lo, __m512i *hi) {
    const __m128i v = _mm_set1_epi32((int)shifts8), low4 = _mm_set1_epi8(0x0F);
    /* even nibbles from the low halves of the bytes, odd ones from the high halves */
    const __m128i nibbles = _mm_unpacklo_epi8(_mm_and_si128(v, low4), _mm_and_si128(_mm_srli_epi16(v, 4), low4));
    const __m512i all = _mm512_broadcast_i32x4(nibbles);
    *lo = _mm512_shuffle_epi8(all, _mm512_set1_epi32(0x03020100));
    *hi = _mm512_shuffle_epi8(all, _mm512_set1_epi32(0x07060504));
}

/* The panel of block rb for columns [c0, c1) (c0 a multiple of GEMM_COLS, c1 - c0 <= it),
 * in units of 16 columns; columns past the matrix's padded width are u = 128 (w' = 0).
 * Returns its number of units. */
static int pack_panel(__m512i *panel, const R4Matrix *w, int rb, int c0, int c1) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), u_zero = _mm512_set1_epi8((char)0x80);
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const int units = (c1 - c0 + 15) / 16, G = w->group;
    /* The block's 16 rows lie in one group of G rows (G is a multiple of 16). */
    const uint8_t *cs = w->col_shifts ? w->col_shifts + (size_t)(rb * QR_BLOCK_ROWS / G) * w->col_shift_stride : NULL;
    __m512i sw = _mm512_setzero_si512(), offset = _mm512_setzero_si512();
    for (int j = 0; j < 2 * units; j++) { /* R4Matrix steps of 8 columns */
        const int col = c0 + 8 * j;
        if (col >= w->cols_pad) {
            panel[2 * j] = panel[2 * j + 1] = u_zero;
            continue;
        }
        const __m512i v = _mm512_loadu_si512(block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES);
        const __m512i x_lo = _mm512_and_si512(v, low4), x_hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        if (cs) {
            uint32_t shifts8;
            memcpy(&shifts8, cs + col / 2, 4);
            __m512i s_lo, s_hi;
            column_shift_bytes(shifts8, &s_lo, &s_hi);
            panel[2 * j] = shifted_u_bytes(x_lo, s_lo);
            panel[2 * j + 1] = shifted_u_bytes(x_hi, s_hi);
        } else {
            if (col % G == 0 || j == 0) { /* a new group: its row shifts, and 128 - (8 << sw) */
                sw = group_row_shifts(w, rb, col / G);
                offset = _mm512_sub_epi8(u_zero, _mm512_sllv_epi32(_mm512_set1_epi8(8), sw));
            }
            panel[2 * j] = _mm512_add_epi8(_mm512_sllv_epi32(x_lo, sw), offset);
            panel[2 * j + 1] = _mm512_add_epi8(_mm512_sllv_epi32(x_hi, sw), offset);
        }
    }
    return units;
}

/* Where a tile's sums go after a panel: added to the int64 sums acc[t * 16 + rr]
 * (acc_live: they hold earlier panels' sums, else they are overwritten), or, after the
 * last panel, with those sums turned into floats y[t * y_stride + rr] = ((float)acc *
 * sa[t]) * sw[rr] for rr < rows (y != NULL). */
typedef struct {
    int64_t *acc;
    int acc_live;
    float *y;
    size_t y_stride;
    const float *sa;
    __m512 sw;
    int rows;
} TileOut;

/* The floats of 16 rows whose exact sums are sum32 plus, when live, acc[0..15]: an int32
 * or an int64 rounds to float once, as (float)acc does. */
static inline __m512 tile_floats(const int64_t *acc, int live, __m512i sum32) {
    if (!live) return _mm512_cvtepi32_ps(sum32);
    const __m512i lo = _mm512_add_epi64(_mm512_loadu_si512(acc), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sum32)));
    const __m512i hi = _mm512_add_epi64(_mm512_loadu_si512(acc + 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sum32, 1)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtepi64_ps(lo)), _mm512_cvtepi64_ps(hi), 1);
}

/* NT <= 8 vectors (codes a, the t-th at a + t * a_stride; words likewise) through a
 * panel of `units` units, into out. NT is a compile-time constant at every call, so the
 * sums stay in registers. */
static inline __attribute__((always_inline)) void gemm_tile(const TileOut *out, const __m512i *panel, int units,
                                                            const int8_t *a, size_t a_stride, const int32_t *words,
                                                            size_t w_stride, const int NT) {
    __m512i sum32[GEMM_TILE];
    UNROLL_TILE
    for (int t = 0; t < NT; t++) sum32[t] = _mm512_setzero_si512();
    for (int u = 0; u < units; u++) {
        const __m512i *p = panel + 4 * u;
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const int8_t *at = a + t * a_stride + 16 * u;
            const int32_t *wt = words + t * w_stride + 2 * u;
            __m512i unit = _mm512_set1_epi32(wt[0]);
            unit = _mm512_dpbusd_epi32(unit, p[0], bcast4(at));
            unit = _mm512_dpbusd_epi32(unit, p[1], bcast4(at + 4));
            unit = _mm512_dpbusd_epi32(unit, p[2], bcast4(at + 8));
            unit = _mm512_dpbusd_epi32(unit, p[3], bcast4(at + 12));
            sum32[t] = _mm512_add_epi32(sum32[t], _mm512_sllv_epi32(unit, _mm512_set1_epi32(wt[1])));
        }
    }
    const __mmask16 keep = first_lanes(out->rows);
    UNROLL_TILE
    for (int t = 0; t < NT; t++) {
        int64_t *acc = out->acc + t * QR_BLOCK_ROWS;
        if (out->y) {
            const __m512 f = tile_floats(acc, out->acc_live, sum32[t]);
            _mm512_mask_storeu_ps(out->y + (size_t)t * out->y_stride, keep,
                                  _mm512_mul_ps(_mm512_mul_ps(f, _mm512_set1_ps(out->sa[t])), out->sw));
        } else if (out->acc_live) {
            widen_add(acc, sum32[t]);
        } else {
            _mm512_storeu_si512(acc, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sum32[t])));
            _mm512_storeu_si512(acc + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sum32[t], 1)));
        }
    }
}

static void r4_gemm_avx512(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1,
                           const R4Acts *x) {
    __m512i panel[PANEL_STEPS];
    int64_t acc[GEMM_CHUNK * QR_BLOCK_ROWS]; /* for products of more than one panel */
    for (int rb = rb0; rb < rb1; rb++) {
        const int rows = n_rows - rb * QR_BLOCK_ROWS < QR_BLOCK_ROWS ? n_rows - rb * QR_BLOCK_ROWS : QR_BLOCK_ROWS;
        const __m512 sw = _mm512_maskz_loadu_ps(first_lanes(rows), w->scales + rb * QR_BLOCK_ROWS);
        for (int t0 = 0; t0 < x->n; t0 += GEMM_CHUNK) {
            const int nt = x->n - t0 < GEMM_CHUNK ? x->n - t0 : GEMM_CHUNK;
            for (int c0 = 0; c0 < x->len; c0 += GEMM_COLS) {
                const int c1 = x->len - c0 < GEMM_COLS ? x->len : c0 + GEMM_COLS;
                const int units = pack_panel(panel, w, rb, c0, c1);
                if (c1 < x->len) /* the next panel: this block's next columns, or the next block's first */
                    prefetch_panel(w, rb, c1, c1 + GEMM_COLS);
                else if (t0 + GEMM_CHUNK >= x->n && rb + 1 < rb1)
                    prefetch_panel(w, rb + 1, 0, GEMM_COLS);
                for (int t = 0; t < nt; t += GEMM_TILE) {
                    const TileOut out = {acc + t * QR_BLOCK_ROWS, c0 > 0,
                                         c1 == x->len ? y + (size_t)(t0 + t) * y_stride + rb * QR_BLOCK_ROWS : NULL,
                                         y_stride, x->scale + t0 + t, sw, rows};
                    const int8_t *a = x->codes + (size_t)(t0 + t) * x->stride + c0;
                    const int32_t *words = x->gemm_words + (size_t)(t0 + t) * x->gemm_stride + 2 * (c0 / 16);
                    const size_t as = (size_t)x->stride, ws = (size_t)x->gemm_stride;
                    switch (nt - t < GEMM_TILE ? nt - t : GEMM_TILE) {
                    case 1: gemm_tile(&out, panel, units, a, as, words, ws, 1); break;
                    case 2: gemm_tile(&out, panel, units, a, as, words, ws, 2); break;
                    case 3: gemm_tile(&out, panel, units, a, as, words, ws, 3); break;
                    case 4: gemm_tile(&out, panel, units, a, as, words, ws, 4); break;
                    case 5: gemm_tile(&out, panel, units, a, as, words, ws, 5); break;
                    case 6: gemm_tile(&out, panel, units, a, as, words, ws, 6); break;
                    case 7: gemm_tile(&out, panel, units, a, as, words, ws, 7); break;
                    default: gemm_tile(&out, panel, units, a, as, words, ws, 8); break;
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ SwiGLU */

/* exp_core (kernels/floatops.c) on 8 lanes, operation by operation, so each lane has the
 * scalar's bits. */
static inline __m512d exp_core8(__m512d x) {
    const __m512d n = _mm512_roundscale_pd(_mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(SILU_EXP_LOG2E)),
                                                         _mm512_set1_pd(0.5)),
                                           _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); /* floor */
    const __m512d r = _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(n, _mm512_set1_pd(SILU_EXP_LN2_HI))),
                                    _mm512_mul_pd(n, _mm512_set1_pd(SILU_EXP_LN2_LO)));
    const double *c = silu_exp_taylor;
    const __m512d r2 = _mm512_mul_pd(r, r), r4 = _mm512_mul_pd(r2, r2), r8 = _mm512_mul_pd(r4, r4);
    __m512d q[7];
    for (int j = 0; j < 7; j++)
        q[j] = _mm512_add_pd(_mm512_set1_pd(c[2 * j]), _mm512_mul_pd(_mm512_set1_pd(c[2 * j + 1]), r));
    const __m512d s0 = _mm512_add_pd(q[0], _mm512_mul_pd(q[1], r2));
    const __m512d s1 = _mm512_add_pd(q[2], _mm512_mul_pd(q[3], r2));
    const __m512d s2 = _mm512_add_pd(q[4], _mm512_mul_pd(q[5], r2));
    const __m512d p = _mm512_add_pd(_mm512_add_pd(s0, _mm512_mul_pd(s1, r4)),
                                    _mm512_mul_pd(_mm512_add_pd(s2, _mm512_mul_pd(q[6], r4)), r8));
    const __m256i biased = _mm256_add_epi32(_mm512_cvtpd_epi32(n), _mm256_set1_epi32(1023)); /* n is an integer */
    return _mm512_mul_pd(p, _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepi32_epi64(biased), 52)));
}

/* silu_exp: the clamp, then exp_core. vmaxpd returns its second operand when the first is
 * NaN: a NaN lane takes SILU_EXP_MIN, as in the scalar. */
static inline __m512d silu_exp8(__m512d x) {
    return exp_core8(_mm512_min_pd(_mm512_max_pd(x, _mm512_set1_pd(SILU_EXP_MIN)), _mm512_set1_pd(SILU_EXP_MAX)));
}

static void swiglu_avx512(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d g = _mm512_cvtps_pd(_mm256_loadu_ps(gate + i));
        const __m512d e = silu_exp8(_mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(g),
                                                                         _mm512_set1_epi64((long long)0x8000000000000000ull)))); /* exp(-g) */
        const __m512d sig = _mm512_div_pd(_mm512_set1_pd(1.0), _mm512_add_pd(_mm512_set1_pd(1.0), e));
        const __m256 silu = _mm512_cvtpd_ps(_mm512_mul_pd(g, sig));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    swiglu_scalar(gate + i, up + i, n - i);
}

/* ------------------------------------------------------------------ Q_n (docs/SPEC.md section 7) */

/* The sign flips of elements i .. i + 15 (kernels/hadamard.c, hadamard_flips) as a float's
 * sign bit in each lane: bit 31 of i * 2654435761 + 0x9E3779B9, wrapping as unsigned. */
static inline __m512 hadamard_signs16(int i) {
    const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(i),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i h = _mm512_add_epi32(_mm512_mullo_epi32(index, _mm512_set1_epi32((int)2654435761u)),
                                       _mm512_set1_epi32((int)0x9E3779B9u));
    return _mm512_castsi512_ps(_mm512_and_si512(h, _mm512_set1_epi32((int)0x80000000u)));
}

/* The butterfly stages h = 1, 2, 4, 8 within 16 lanes: lane l pairs with lane l ^ h (s
 * holds the partners); the lower of a pair takes a + b, the upper a - b, which in the
 * upper lane is s - x. */
static inline __m512 hadamard_lanes16(__m512 x) {
    __m512 s = _mm512_permute_ps(x, 0xB1); /* h = 1: neighbours swapped */
    x = _mm512_mask_blend_ps(0xAAAA, _mm512_add_ps(x, s), _mm512_sub_ps(s, x));
    s = _mm512_permute_ps(x, 0x4E); /* h = 2: pairs of lanes swapped */
    x = _mm512_mask_blend_ps(0xCCCC, _mm512_add_ps(x, s), _mm512_sub_ps(s, x));
    s = _mm512_shuffle_f32x4(x, x, 0xB1); /* h = 4: 128-bit quarters swapped in pairs */
    x = _mm512_mask_blend_ps(0xF0F0, _mm512_add_ps(x, s), _mm512_sub_ps(s, x));
    s = _mm512_shuffle_f32x4(x, x, 0x4E); /* h = 8: halves swapped */
    return _mm512_mask_blend_ps(0xFF00, _mm512_add_ps(x, s), _mm512_sub_ps(s, x));
}

/* hadamard_scalar's steps, 16 elements at a time: the signs and the stages below 16 in
 * one pass over each vector, then one pass per stage from 16 on, the last one scaling.
 * Blocks of fewer than 16 go to the scalar definition. */
static void hadamard_avx512(float *v, int n_vecs, int len) {
    const int B = hadamard_block(len);
    if (B < 16) {
        hadamard_scalar(v, n_vecs, len);
        return;
    }
    const __m512 scale = _mm512_set1_ps((float)(1.0 / sqrt((double)B)));
    for (int t = 0; t < n_vecs; t++) {
        float *x = v + (size_t)t * len;
        for (int i = 0; i < len; i += 16) {
            const __m512 flipped = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)),
                                                                        _mm512_castps_si512(hadamard_signs16(i))));
            const __m512 y = hadamard_lanes16(flipped);
            _mm512_storeu_ps(x + i, B == 16 ? _mm512_mul_ps(y, scale) : y);
        }
        for (int h = 16; h < B; h *= 2) {
            const __m512 last = 2 * h == B ? scale : _mm512_set1_ps(1.0f); /* x 1 changes nothing */
            for (int j = 0; j < len; j += 2 * h)
                for (int i = j; i < j + h; i += 16) {
                    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + h);
                    _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_add_ps(a, b), last));
                    _mm512_storeu_ps(x + i + h, _mm512_mul_ps(_mm512_sub_ps(a, b), last));
                }
        }
    }
}

/* ------------------------------------------------------------------ softmax */

/* softmax_exp of 8 lanes: exp_core in double at max(x, SOFTMAX_EXP_MIN), rounded to float;
 * then 0 where x < SOFTMAX_EXP_MIN and x itself where it is NaN, as in the scalar. */
static inline __m256 softmax_exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(SOFTMAX_EXP_MIN);
    const __m256 e = _mm512_cvtpd_ps(exp_core8(_mm512_cvtps_pd(_mm256_max_ps(x, lo))));
    return _mm256_blendv_ps(_mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), e), x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* softmax_scalar, 16 lanes at a time: the division, the maximum (vmaxps returns its second
 * operand when the first is NaN: a NaN is skipped; lanes past n take -inf), softmax_exp on
 * 8 doubles, the pairwise sum, the division by it. */
static void softmax_avx512(float *x, int n, float divisor) {
    const __m512 d = _mm512_set1_ps(divisor), minus_inf = _mm512_set1_ps(-INFINITY);
    __m512 m = minus_inf;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = first_lanes(n - i);
        const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), d);
        _mm512_mask_storeu_ps(x + i, k, v);
        m = _mm512_max_ps(_mm512_mask_blend_ps(k, minus_inf, v), m);
    }
    const __m256 max = _mm256_set1_ps(max_lanes_ps(m));
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, softmax_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max)));
    for (; i < n; i++) x[i] = softmax_exp(x[i] - _mm256_cvtss_f32(max));
    const __m512 sum = _mm512_set1_ps(pairwise_sum_x86(x, n));
    for (i = 0; i < n; i += 16) {
        const __mmask16 k = first_lanes(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), sum));
    }
}

const KernelTable kernels_avx512 = {.name = "avx512",
                                    .r4_block = r4_block_avx512,
                                    .r4_finish = r4_finish_avx512,
                                    .dot_i8 = dot_i8_avx512,
                                    .dot_f32 = dot_f32_avx512,
                                    .quantize_r4 = quantize_r4_avx512,
                                    .r4_pack = r4_pack_avx512,
                                    .r4_gemm = r4_gemm_avx512,
                                    .swiglu = swiglu_avx512,
                                    .softmax = softmax_avx512,
                                    .hadamard = hadamard_avx512};
#endif
