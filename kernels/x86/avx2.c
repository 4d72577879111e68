/*
 * kernels/x86/avx2.c - the avx2 level: AVX2 + FMA kernels (compiled with -mavx2 -mfma; only
 * called after CPU detection says so). Every entry of the table is its own.
 *
 * The 4-bit kernel, and why it is exact:
 *   - One 64-byte step of the R4Matrix holds 16 rows x 8 columns; its first 32 bytes are
 *     rows 0-7, the last 32 rows 8-15. `and 0x0F` gives the low nibbles (columns 0-3 of
 *     each row, as bytes), a 16-bit shift right by 4 then `and 0x0F` the high nibbles
 *     (columns 4-7). These are the excess-8 codes w + 8, unsigned 0..15.
 *   - vpmaddubsw multiplies them by the activation codes (4 of them broadcast to every
 *     32-bit lane, signed) and adds adjacent pairs into 16-bit lanes: |sum| <= 2*15*112,
 *     no saturation. vpmaddwd by 1 adds those pairs into 32-bit lanes: each lane is now
 *     one row's sum over 4 columns.
 *   - Summing over the group and starting from -8 * (sum of the group's activation codes)
 *     gives sum a_i * w_i exactly (the excess-8 identity of qformat.h).
 *   - vpsllvd shifts each row's group sum by its own sa + sw; the result is added to a
 *     32-bit accumulator, widened to 64 bits every 512 columns, before it could overflow:
 *     512 columns x 49 x 2^16 < 2^31.
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

static inline __m256i bcast4(const int8_t *p) { /* 4 bytes to every 32-bit lane */
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Adds the 8 int32 lanes of v, widened, to dst[0..7]. */
static inline void widen_add(int64_t *dst, __m256i v) {
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1));
    _mm256_storeu_si256((__m256i *)dst, _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)dst), lo));
    _mm256_storeu_si256((__m256i *)(dst + 4),
                        _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(dst + 4)), hi));
}

/* Rows 8*half .. 8*half+7 of one block against NT <= 4 vectors (a compile-time constant at
 * every call, so the accumulators stay in the 16 registers). */
static inline __attribute__((always_inline)) void r4_half_tile(int64_t *acc, const R4Matrix *w, int rb,
                                                               int half, const R4Acts *x, int t0,
                                                               const int NT) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int G = x->group;
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w) + half * 32;
    const uint8_t *wshift = w->shifts ? w->shifts + (size_t)rb * w->n_groups * 8 : NULL;
    __m256i acc32[4];
    UNROLL_TILE
    for (int t = 0; t < NT; t++) acc32[t] = _mm256_setzero_si256();
    int since_flush = 0;
    for (int g = 0; g < x->n_groups; g++) {
        const int start = g * G, end = start + G < x->len ? start + G : x->len;
        const int steps = (end - start + QR_STEP_COLS - 1) / QR_STEP_COLS;
        /* The 8 rows' weight shifts: byte j holds row j (low nibble), row j+8 (high). */
        __m256i sw = _mm256_setzero_si256();
        if (wshift) {
            const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(wshift + (size_t)g * 8)));
            sw = half ? _mm256_srli_epi32(b, 4) : _mm256_and_si256(b, _mm256_set1_epi32(15));
        }
        __m256i gacc[4];
        UNROLL_TILE
        for (int t = 0; t < NT; t++)
            gacc[t] = _mm256_set1_epi32(x->corr[(size_t)(t0 + t) * x->n_groups + g]);
        const uint8_t *codes = block + (size_t)(start / QR_STEP_COLS) * QR_STEP_BYTES;
        for (int s = 0; s < steps; s++) {
            _mm_prefetch((const char *)codes + (size_t)s * QR_STEP_BYTES + PREFETCH_BYTES, _MM_HINT_T0);
            const __m256i v = _mm256_loadu_si256((const __m256i *)(codes + (size_t)s * QR_STEP_BYTES));
            const __m256i lo = _mm256_and_si256(v, low4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            const int col = start + s * QR_STEP_COLS;
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                const int8_t *a = x->codes + (size_t)(t0 + t) * x->stride + col;
                const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, bcast4(a)), ones);
                const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, bcast4(a + 4)), ones);
                gacc[t] = _mm256_add_epi32(gacc[t], _mm256_add_epi32(plo, phi));
            }
        }
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const __m256i sh = _mm256_add_epi32(sw, _mm256_set1_epi32(x->shifts[(size_t)(t0 + t) * x->n_groups + g]));
            acc32[t] = _mm256_add_epi32(acc32[t], _mm256_sllv_epi32(gacc[t], sh));
        }
        since_flush += G;
        if (since_flush >= QR_FLUSH_COLS || g == x->n_groups - 1) {
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                widen_add(acc + t * QR_BLOCK_ROWS + half * 8, acc32[t]);
                acc32[t] = _mm256_setzero_si256();
            }
            since_flush = 0;
        }
    }
}

static void r4_block_avx2(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                          int nt) {
    /* Padding rows hold code 0 and shift 0, so they come out as 0 with no special case. */
    for (int i = 0; i < nt * QR_BLOCK_ROWS; i++) acc[i] = 0;
    for (int done = 0; done < nt; done += 4) { /* vectors in groups of up to 4 */
        int64_t *out = acc + done * QR_BLOCK_ROWS;
        for (int half = 0; half < 2; half++) {
            switch (nt - done < 4 ? nt - done : 4) {
            case 1: r4_half_tile(out, w, rb, half, x, t0 + done, 1); break;
            case 2: r4_half_tile(out, w, rb, half, x, t0 + done, 2); break;
            case 3: r4_half_tile(out, w, rb, half, x, t0 + done, 3); break;
            default: r4_half_tile(out, w, rb, half, x, t0 + done, 4); break;
            }
        }
    }
}

/* INT8 x INT16: vpmaddwd on sign-extended weights; each 32-bit lane gains at most
 * 2 * 127 * 32767 per step, so lanes are widened every 256 steps (4096 columns). */
static int64_t dot_i8_avx2(const int8_t *w, const int16_t *a, int n) {
    const int n16 = n / 16 * 16;
    __m256i acc64 = _mm256_setzero_si256();
    for (int i0 = 0; i0 < n16; i0 += 4096) {
        const int i1 = i0 + 4096 < n16 ? i0 + 4096 : n16;
        __m256i acc32 = _mm256_setzero_si256();
        for (int i = i0; i < i1; i += 16) {
            const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
            acc32 = _mm256_add_epi32(acc32, _mm256_madd_epi16(wv, _mm256_loadu_si256((const __m256i *)(a + i))));
        }
        acc64 = _mm256_add_epi64(acc64, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc32)));
        acc64 = _mm256_add_epi64(acc64, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc32, 1)));
    }
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc64), _mm256_extracti128_si256(acc64, 1));
    int64_t sum = _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
    for (int i = n16; i < n; i++) sum += (int32_t)a[i] * w[i];
    return sum;
}

/* dot_f32_scalar's order: its 64 sums are the 8 lanes of r[0..7] (sum 8k + j is lane j
 * of r[k]); products are rounded before they are added (mul, then add: no FMA); the tail
 * is loaded with zeros past n; then the same halving folds. Eight independent sums also
 * hide the latency of the adds. */
static float dot_f32_avx2(const float *w, const float *x, int n) {
    __m256 r[8];
    for (int k = 0; k < 8; k++) r[k] = _mm256_setzero_ps();
    const int n64 = n / 64 * 64;
    for (int i = 0; i < n64; i += 64)
        for (int k = 0; k < 8; k++)
            r[k] = _mm256_add_ps(r[k], _mm256_mul_ps(_mm256_loadu_ps(w + i + 8 * k), _mm256_loadu_ps(x + i + 8 * k)));
    for (int k = 0; n64 + 8 * k < n; k++) {
        const int at = n64 + 8 * k;
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - at), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        r[k] = _mm256_add_ps(r[k], _mm256_mul_ps(_mm256_maskload_ps(w + at, m), _mm256_maskload_ps(x + at, m)));
    }
    for (int k = 0; k < 4; k++) r[k] = _mm256_add_ps(r[k], r[k + 4]); /* j + 32 */
    r[0] = _mm256_add_ps(r[0], r[2]);                                  /* j + 16 */
    r[1] = _mm256_add_ps(r[1], r[3]);
    r[0] = _mm256_add_ps(r[0], r[1]);                                  /* j + 8 */
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(r[0]), _mm256_extractf128_ps(r[0], 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ------------------------------------------------------------------ activation quantizer */

/* Lanes 0 .. n-1 set (n <= 8), for masked loads. */
static inline __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The first n of 8 floats at p (the rest 0): a plain load when all 8 are wanted (a masked
 * load is much slower on some CPUs, AMD Zen among them). */
static inline __m256 load_first(const float *p, int n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(n));
}

/* Stage 1 of 8 values: quantize_value's round(v / s), clamped to [-qmax, qmax], 0 for a
 * NaN. The same division; then clamping before rounding (qmax is an integer, so the order
 * does not matter), and roundf's half-away-from-zero rounding as truncation after adding
 * copysign(0.5 - 2^-25, d): exact for every float below 2^16 in magnitude (checked for
 * all of them; the largest 0.5 - 2^-25 can make no smaller float cross the next integer,
 * and x.5 still rounds up). */
static inline __m256i stage1(__m256 v, __m256 s, __m256 lo, __m256 hi) {
    const __m256 d = _mm256_div_ps(v, s);
    const __m256 c = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(d, lo), hi), _mm256_cmp_ps(d, d, _CMP_ORD_Q));
    const __m256 half = _mm256_or_ps(_mm256_and_ps(c, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(0x1.fffffep-2f));
    return _mm256_cvttps_epi32(_mm256_add_ps(c, half));
}

/* Lane j of the result (j < 16) = the OR of the 16 int16 lanes of v[j], 0 for j >= count: a
 * tree of unpacks that folds 16 vectors at once, instead of 16 horizontal reductions. */
static inline __m256i or16(const __m256i v[16], int count) {
#define V(j) ((j) < count ? v[j] : _mm256_setzero_si256())
    __m256i u[8], w[4], z[2];
    for (int k = 0; k < 8; k++) /* per 128-bit half: even lanes v[2k], odd v[2k + 1], 2 lanes each */
        u[k] = _mm256_or_si256(_mm256_unpacklo_epi16(V(2 * k), V(2 * k + 1)), _mm256_unpackhi_epi16(V(2 * k), V(2 * k + 1)));
    for (int k = 0; k < 4; k++) /* lanes v[4k] .. v[4k + 3], twice per half, 4 lanes each */
        w[k] = _mm256_or_si256(_mm256_unpacklo_epi32(u[2 * k], u[2 * k + 1]), _mm256_unpackhi_epi32(u[2 * k], u[2 * k + 1]));
    for (int k = 0; k < 2; k++) /* lanes v[8k] .. v[8k + 7] per half, 8 lanes each */
        z[k] = _mm256_or_si256(_mm256_unpacklo_epi64(w[2 * k], w[2 * k + 1]), _mm256_unpackhi_epi64(w[2 * k], w[2 * k + 1]));
    return _mm256_or_si256(_mm256_permute2x128_si256(z[0], z[1], 0x20), _mm256_permute2x128_si256(z[0], z[1], 0x31));
#undef V
}

/* r4_acts_quantize_scalar, 256 values (16 chunks of 16) at a time: stage 1 as above in
 * 32-bit lanes, packed to 16 (every code fits: |q| <= 32767); then the OR of each group's
 * magnitudes for all the groups of the 256 values at once (or16), their leading ones
 * and shifts in vector lanes, and the razored codes in 16-bit lanes (|q| + half <= 32767 +
 * 2^11 stays below 2^16 as an unsigned number), packed to bytes. The same bytes as the
 * definition. G must be a
 * multiple of 16 (16 .. 128, as docs/SPEC.md allows); others take the scalar way. */
static void quantize_r4_avx2(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                               int rounding) {
    const int n = a->len, G = a->group, qmax = kind == QUANT_RTN4 ? QMAX_RTN4 : base_qmax;
    if (G % 16 != 0 || G > QR_MAX_GROUP) {
        r4_acts_quantize_scalar(a, t, x, kind, base_qmax, rounding);
        return;
    }
    int8_t *codes = a->codes + (size_t)t * a->stride;
    int32_t *shifts = a->shifts + (size_t)t * a->n_groups;
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        /* max_ps returns its second operand when either is NaN: a NaN input is skipped,
         * as fmaxf skips it in absmax_scale */
        amax = _mm256_max_ps(_mm256_andnot_ps(sign_bit, load_first(x + i, n - i)), amax);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float s = _mm_cvtss_f32(m4) / (float)qmax;
    a->scale[t] = s;
    if (s == 0.0f) { /* an all-zero vector: codes 0, shifts 0 */
        memset(codes, 0, (size_t)a->stride);
        memset(shifts, 0, (size_t)a->n_groups * sizeof *shifts);
        return;
    }
    const __m256 vs = _mm256_set1_ps(s), hi = _mm256_set1_ps((float)qmax), lo = _mm256_set1_ps((float)-qmax);
    const int per_group = G / 16; /* chunks of 16 values per group */
    for (int start = 0; start < n; start += 256) {
        const int chunks = (n - start < 256 ? n - start + 15 : 256) / 16, g0 = start / G;
        const int groups = (chunks + per_group - 1) / per_group;
        __m256i q[16], fold[16];
        for (int c = 0, g = 0, in_group = 0; c < chunks; c++) { /* lanes past n load as 0: code 0 */
            const float *v = x + start + 16 * c;
            const int left = n - start - 16 * c;
            const __m256i q0 = stage1(load_first(v, left), vs, lo, hi);
            const __m256i q1 = stage1(load_first(v + 8, left - 8), vs, lo, hi);
            /* 16-bit lanes in the order of packs: values 0-3, 8-11, 4-7, 12-15 (each group's
             * OR and sum do not mind; the codes are put back in order as bytes) */
            q[c] = _mm256_packs_epi32(q0, q1);
            fold[g] = in_group ? _mm256_or_si256(fold[g], _mm256_abs_epi16(q[c])) : _mm256_abs_epi16(q[c]);
            if (++in_group == per_group) g++, in_group = 0;
        }
        /* Each group's leading one (the exponent of the OR of its magnitudes as a float,
         * exact below 2^24; 0 gives a negative one), three bits kept below it. */
        const __m256i mags = or16(fold, groups);
        _Alignas(32) int32_t shift[16], half[16];
        for (int k = 0; k < 2; k++) {
            const __m256i m = _mm256_cvtepu16_epi32(k ? _mm256_extracti128_si256(mags, 1) : _mm256_castsi256_si128(mags));
            const __m256i lead = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(m)), 23),
                                                  _mm256_set1_epi32(127));
            __m256i sh = _mm256_max_epi32(_mm256_sub_epi32(lead, _mm256_set1_epi32(2)), _mm256_setzero_si256());
            if (kind == QUANT_RTN4) sh = _mm256_setzero_si256();
            /* rounding adds half of the last kept bit: 1 << (shift - 1), none at shift 0
             * (a shift count of -1 shifts everything out) */
            const __m256i h = rounding ? _mm256_sllv_epi32(_mm256_set1_epi32(1), _mm256_sub_epi32(sh, _mm256_set1_epi32(1)))
                                       : _mm256_setzero_si256();
            _mm256_store_si256((__m256i *)(shift + 8 * k), sh);
            _mm256_store_si256((__m256i *)(half + 8 * k), h);
        }
        memcpy(shifts + g0, shift, (size_t)groups * sizeof *shifts);
        for (int c = 0; c < chunks; c++) {
            const int g = c / per_group;
            const __m256i mag = _mm256_min_epu16(_mm256_srl_epi16(_mm256_add_epi16(_mm256_abs_epi16(q[c]),
                                                                                  _mm256_set1_epi16((short)half[g])),
                                                                 _mm_cvtsi32_si128(shift[g])),
                                                 _mm256_set1_epi16(7));
            const __m256i code = _mm256_sign_epi16(mag, q[c]); /* -mag where q < 0; 0 stays 0 */
            const __m256i bytes = _mm256_packs_epi16(code, code); /* per half: 0-3, 8-11 | 4-7, 12-15 */
            _mm_storeu_si128((__m128i *)(codes + start + 16 * c),
                             _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1)));
        }
    }
    const int written = (n + 15) / 16 * 16; /* whole chunks, their lanes past n as 0 */
    memset(codes + written, 0, (size_t)(a->stride - written));
}

/* ------------------------------------------------------------------ floats of a tile */

/* An int64 below 2^51 in magnitude as a double, exactly: added to the bits of 2^52 + 2^51
 * it becomes the mantissa of a double of that exponent, from which 2^52 + 2^51 is then
 * subtracted. (AVX2 has no int64 conversion.) */
static inline __m256d small_i64_to_f64(__m256i v) {
    const __m256d magic = _mm256_set1_pd(6755399441055744.0); /* 2^52 + 2^51 */
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(v, _mm256_castpd_si256(magic))), magic);
}

/* r4_finish_scalar, 8 rows at a time. An accumulator is at most len * 49 * 2^16 in
 * magnitude, far below 2^51, so it becomes a double exactly and the double rounds to float
 * once, to nearest even, as (float)acc does; then the same two products in the same order.
 * A tile with larger values (none in practice) takes the scalar conversion. */
static void r4_finish_avx2(float *y, size_t y_stride, const int64_t *acc, int nt, int rows, const float *sa,
                           const float *sw) {
    const __m256i big = _mm256_set1_epi64x((1LL << 51) - 1), small = _mm256_set1_epi64x(-(1LL << 51));
    for (int half = 0; half < 2 && 8 * half < rows; half++) {
        const __m256 scale_w = load_first(sw + 8 * half, rows - 8 * half);
        for (int t = 0; t < nt; t++) {
            const int64_t *a = acc + t * QR_BLOCK_ROWS + 8 * half;
            const __m256i lo = _mm256_loadu_si256((const __m256i *)a), hi = _mm256_loadu_si256((const __m256i *)(a + 4));
            const __m256i out = _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi64(lo, big), _mm256_cmpgt_epi64(small, lo)),
                                                _mm256_or_si256(_mm256_cmpgt_epi64(hi, big), _mm256_cmpgt_epi64(small, hi)));
            float *yt = y + (size_t)t * y_stride + 8 * half;
            if (!_mm256_testz_si256(out, out)) {
                for (int r = 0; r < 8 && 8 * half + r < rows; r++) yt[r] = qr_output(a[r], sa[t], sw[8 * half + r]);
                continue;
            }
            const __m256 f = _mm256_set_m128(_mm256_cvtpd_ps(small_i64_to_f64(hi)), _mm256_cvtpd_ps(small_i64_to_f64(lo)));
            const __m256 v = _mm256_mul_ps(_mm256_mul_ps(f, _mm256_set1_ps(sa[t])), scale_w);
            if (rows - 8 * half >= 8) { /* a masked store is slow on some CPUs: only for a tail */
                _mm256_storeu_ps(yt, v);
            } else {
                float lanes[8];
                _mm256_storeu_ps(lanes, v);
                memcpy(yt, lanes, (size_t)(rows - 8 * half) * sizeof *yt);
            }
        }
    }
}

/* ------------------------------------------------------------------ batched products (GEMM)
 *
 * For a batch of vectors, each 16-row block of weights is unpacked once per 512 columns
 * into a panel that stays in L1 while every vector of the batch goes through it, three at
 * a time, with the accumulators of 16 rows x 3 vectors in registers. The arithmetic is
 * arranged so that the multiply port (one vpmaddubsw or vpmaddwd per cycle) does little
 * else:
 *   - the weight's shift (its row's group shift, or its column shift) goes into the
 *     weight: w' = c << sw, |w'| <= 7 << 4 = 112, still a signed byte, computed while
 *     packing the panel;
 *   - the activation code is offset to an unsigned byte, a + 8 (1..15), and
 *     sum (a + 8) w' = sum a w' + 8 sum w': the correction -8 sum w' depends on the
 *     weights only; the panel holds it, and each sum starts from it;
 *   - vpmaddubsw multiplies (a + 8) by w' and adds pairs of products into 16-bit lanes
 *     (no pair saturates: 2 * 15 * 112 = 3360), and vpaddw sums a unit of up to 32
 *     columns there exactly: the unit's sum a w' is at most 32 * 7 * 112 = 25088 < 2^15
 *     in magnitude, and 16-bit addition is exact modulo 2^16, so partial sums may wrap
 *     but the last cannot;
 *   - the two 16-bit halves of a 32-bit lane hold two units A and B (the packed layout of
 *     qformat.h), and one vpmaddwd by (2^sa(A), 2^sa(B)) applies both activation shifts
 *     and adds the halves into 32 bits, exactly: 2 * 25088 * 2^12 < 2^31;
 *   - a 32-bit lane gathers at most 512 columns (each |a w'| 2^sa <= 784 * 2^12, and 512 of
 *     them < 2^31) before it is added to the int64 accumulators.
 * Per 8 rows x 32 columns x 1 vector (G = 16): 8 vpmaddubsw and 1 vpmaddwd, where r4_block
 * needs 16 multiplies. Column shifts (the values of the KV cache) go into w' the same way.
 * Activation codes beyond 4 bits would break the 16-bit bounds; r4_pack_avx2 refuses them
 * and matmul uses r4_block.
 */

enum {
    GEMM_TILE = 3,            /* vectors per register tile: 2 x 3 sums of 16 and 32 bits, in 12 registers */
    GEMM_CHUNK = 64,          /* vectors whose int64 accumulators one pass keeps */
    GEMM_COLS = QR_FLUSH_COLS /* columns per panel: 32-bit lanes are widened after each */
};

/* A panel, per pair of units of width U: 2 x 32 bytes of corrections (int16 pairs for rows
 * 0-7, then 8-15), then U / 2 steps of 2 x 32 bytes of w' (rows 0-7, rows 8-15), lane r of
 * a step k holding w' of columns 2k, 2k + 1 of unit A and the same of unit B. */
static inline int pair_bytes(int U) { return 64 + 32 * U; }
enum { PANEL_BYTES = GEMM_COLS / 32 * (64 + 32 * 16) }; /* the most: U = 16 */

static inline int unit_width(int group) { return group < 32 ? group : 32; }

/* The sum of 16 signed codes: vpsadbw of the codes + 128 against 0 (two sums of 8), less
 * 16 * 128. SSE2: every x86-64 CPU has it. */
static inline int sum16_codes(const int8_t *p) {
    const __m128i biased = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi8((char)0x80));
    const __m128i sad = _mm_sad_epu8(biased, _mm_setzero_si128());
    return _mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 128;
}

/* r4_acts_set_corr (kernels/quant.h) for vector t, 16 codes at a time (G a multiple of 16). */
static inline void set_corr_x86(const R4Acts *x, int t) {
    const int8_t *a = x->codes + (size_t)t * x->stride; /* zero past len, up to stride */
    int32_t *corr = x->corr + (size_t)t * x->n_groups;
    if (x->group % 16 != 0) {
        r4_acts_set_corr(x, t);
        return;
    }
    for (int g = 0; g < x->n_groups; g++) {
        int sum = 0;
        for (int i = g * x->group; i < (g + 1) * x->group && i < x->len; i += 16) sum += sum16_codes(a + i);
        corr[g] = -8 * sum;
    }
}
int r4_pack_avx2(const R4Acts *x, int t0, int t1) {
    for (int t = t0; t < t1; t++) set_corr_x86(x, t); /* for r4_block */
    if (x->group % 16 != 0 || x->group > QR_MAX_GROUP) return -1; /* docs/SPEC.md's G: 16 .. 128 */
    const int U = unit_width(x->group), n_pairs = (x->len + 2 * U - 1) / (2 * U);
    const __m128i eight = _mm_set1_epi8(8), seven = _mm_set1_epi8(7);
    __m128i over = _mm_setzero_si128(); /* bytes of codes above 7 in magnitude */
    for (int t = t0; t < t1; t++) {
        /* Units lie within stride (2U n_pairs <= len rounded up to 64), past len all 0. */
        const int8_t *a = x->codes + (size_t)t * x->stride;
        const int32_t *sa = x->shifts + (size_t)t * x->n_groups;
        uint8_t *out = x->packed + (size_t)t * x->stride;
        int32_t *mult = x->gemm_words + (size_t)t * x->gemm_stride;
        for (int i = 0; i < n_pairs; i++) {
            const int ua = 2 * i * U, ub = ua + U;
            for (int c = 0; c < U; c += 16) {
                const __m128i A = _mm_loadu_si128((const __m128i *)(a + ua + c));
                const __m128i B = _mm_loadu_si128((const __m128i *)(a + ub + c));
                over = _mm_or_si128(over, _mm_cmpgt_epi8(_mm_max_epu8(_mm_abs_epi8(A), _mm_abs_epi8(B)), seven));
                const __m128i A8 = _mm_add_epi8(A, eight), B8 = _mm_add_epi8(B, eight);
                _mm_storeu_si128((__m128i *)(out + ua + 2 * c), _mm_unpacklo_epi16(A8, B8));
                _mm_storeu_si128((__m128i *)(out + ua + 2 * c + 16), _mm_unpackhi_epi16(A8, B8));
            }
            const int sb = ub < x->len ? sa[ub / x->group] : 0;
            mult[i] = (int32_t)((1u << sa[ua / x->group]) | (1u << sb) << 16);
        }
    }
    return _mm_movemask_epi8(over) ? -1 : 0;
}

/* The 8 rows' weight shifts of group g for rows 8 * half .. 8 * half + 7, as 32-bit lanes
 * (byte j of a block's group holds row j in its low nibble, row j + 8 in its high one). */
static inline __m256i half_shifts(const R4Matrix *w, int rb, int g, int half) {
    if (!w->shifts) return _mm256_setzero_si256();
    const __m128i bytes = _mm_loadl_epi64((const __m128i *)(w->shifts + ((size_t)rb * w->n_groups + g) * 8));
    const __m256i b = _mm256_cvtepu8_epi32(bytes);
    return half ? _mm256_srli_epi32(b, 4) : _mm256_and_si256(b, _mm256_set1_epi32(15));
}

/* The shifts of columns col .. col + 7 (the 8 nibbles of shifts8, column col in the lowest)
 * as bytes 0-3 of every 32-bit lane: columns 0-3 in *lo, 4-7 in *hi. */
static inline void column_shift_bytes(uint32_t shifts8, __m256i *lo, __m256i *hi) {
    const __m256i v = _mm256_set1_epi32((int)shifts8), low4 = _mm256_set1_epi8(0x0F);
    /* even nibbles from the low halves of the bytes, odd ones from the high halves,
     * interleaved: bytes 0-7 of each 128-bit half are nibbles 0-7 */
    const __m256i nibbles = _mm256_unpacklo_epi8(_mm256_and_si256(v, low4),
                                                 _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    *lo = _mm256_shuffle_epi8(nibbles, _mm256_set1_epi32(0x03020100));
    *hi = _mm256_shuffle_epi8(nibbles, _mm256_set1_epi32(0x07060504));
}

/* (x - 8) << s for the excess-8 bytes x and the shifts s (0 .. 4) of the bytes of s_bytes:
 * 2^s and 8 << s looked up by vpshufb, then two 16-bit multiplies, one for the low bytes
 * of the 16-bit halves, one for the high ones (x << s <= 15 << 4 fits a byte). */
static inline __m256i times_pow2(__m256i x, __m256i s_bytes) {
    const __m256i pow2 = _mm256_setr_epi8(1, 2, 4, 8, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 2, 4, 8, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i eights = _mm256_setr_epi8(8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
    const __m256i m = _mm256_shuffle_epi8(pow2, s_bytes);
    const __m256i shifted = _mm256_or_si256(_mm256_mullo_epi16(_mm256_and_si256(x, low_bytes), _mm256_and_si256(m, low_bytes)),
                                            _mm256_mullo_epi16(_mm256_andnot_si256(low_bytes, x), _mm256_srli_epi16(m, 8)));
    return _mm256_sub_epi8(shifted, _mm256_shuffle_epi8(eights, s_bytes));
}

/* w' of one 8-column step (columns col .. col + 7, col a multiple of 8) of rows 8 * half
 * .. + 7: lanes of columns 0-3 in *lo, 4-7 in *hi; columns at or past end are 0. From the
 * excess-8 nibbles x = c + 8, with the rows' shifts sw (one per lane): (x << sw) - (8 <<
 * sw), each byte shifted inside its 32-bit lane (x << sw <= 15 << 4 fits a byte, so nothing
 * crosses into the next); or, for a matrix with column shifts, cs (the 4-bit shifts of the
 * block's group of rows, one per column) not NULL: times_pow2 per column. */
static inline void unpack_step(const uint8_t *block, int col, int end, int half, __m256i sw, const uint8_t *cs,
                               __m256i *lo, __m256i *hi) {
    if (col >= end) {
        *lo = *hi = _mm256_setzero_si256();
        return;
    }
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i v = _mm256_loadu_si256((const __m256i *)(block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES + half * 32));
    const __m256i x_lo = _mm256_and_si256(v, low4), x_hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    if (cs) {
        uint32_t shifts8; /* nibble k: the shift of column col + k */
        memcpy(&shifts8, cs + col / 2, 4);
        __m256i s_lo, s_hi;
        column_shift_bytes(shifts8, &s_lo, &s_hi);
        *lo = times_pow2(x_lo, s_lo);
        *hi = times_pow2(x_hi, s_hi);
    } else {
        const __m256i eights = _mm256_sllv_epi32(_mm256_set1_epi8(8), sw);
        *lo = _mm256_sub_epi8(_mm256_sllv_epi32(x_lo, sw), eights);
        *hi = _mm256_sub_epi8(_mm256_sllv_epi32(x_hi, sw), eights);
    }
    if (col + QR_STEP_COLS > end) {
        const __m256i left = _mm256_set1_epi8((char)(end - col));
        const __m256i e = _mm256_set1_epi32(0x03020100);
        *lo = _mm256_and_si256(*lo, _mm256_cmpgt_epi8(left, e));
        *hi = _mm256_and_si256(*hi, _mm256_cmpgt_epi8(left, _mm256_add_epi8(e, _mm256_set1_epi8(4))));
    }
}

/* The panel of block rb for columns [c0, c1) (c0 a multiple of GEMM_COLS, c1 - c0 <= it);
 * columns past c1 are 0. Returns its number of pairs. */
static int pack_panel(uint8_t *panel, const R4Matrix *w, int rb, int c0, int c1, int U) {
    const __m256i eights = _mm256_set1_epi8(8), zero = _mm256_setzero_si256();
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const int n_pairs = (c1 - c0 + 2 * U - 1) / (2 * U), G = w->group;
    /* The block's 16 rows lie in one group of G rows (G is a multiple of 16). */
    const uint8_t *cs = w->col_shifts ? w->col_shifts + (size_t)(rb * QR_BLOCK_ROWS / G) * w->col_shift_stride : NULL;
    for (int i = 0; i < n_pairs; i++) {
        uint8_t *out = panel + (size_t)i * pair_bytes(U);
        const int ua = c0 + 2 * i * U, ub = ua + U;
        for (int half = 0; half < 2; half++) {
            const __m256i swa = half_shifts(w, rb, ua / G, half);
            const __m256i swb = ub < c1 ? half_shifts(w, rb, ub / G, half) : zero;
            __m256i sum = zero; /* 8 sum w' of each unit, in the lanes' halves */
            for (int j = 0; j < U / QR_STEP_COLS; j++) {
                __m256i alo, ahi, blo, bhi;
                unpack_step(block, ua + QR_STEP_COLS * j, c1, half, swa, cs, &alo, &ahi);
                unpack_step(block, ub + QR_STEP_COLS * j, c1, half, swb, cs, &blo, &bhi);
                /* A lane of alo holds columns 0-3 of unit A's step: 0, 1 with B's 0, 1 make
                 * step 4j, their 2, 3 step 4j + 1; ahi and bhi likewise steps 4j + 2, 4j + 3. */
                const __m256i steps[4] = {
                    _mm256_blend_epi16(alo, _mm256_slli_epi32(blo, 16), 0xAA),
                    _mm256_blend_epi16(_mm256_srli_epi32(alo, 16), blo, 0xAA),
                    _mm256_blend_epi16(ahi, _mm256_slli_epi32(bhi, 16), 0xAA),
                    _mm256_blend_epi16(_mm256_srli_epi32(ahi, 16), bhi, 0xAA),
                };
                for (int q = 0; q < 4; q++) {
                    _mm256_store_si256((__m256i *)(out + 64 + (size_t)(4 * j + q) * 64 + half * 32), steps[q]);
                    sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(eights, steps[q]));
                }
            }
            _mm256_store_si256((__m256i *)(out + half * 32), _mm256_sub_epi16(zero, sum));
        }
    }
    return n_pairs;
}

/* Where a tile's sums go after a panel: added to the int64 accumulators acc[t * 16 + rr]
 * (acc_live: they hold earlier panels' sums, else they are overwritten), or, after the
 * last panel, with those accumulators turned into floats y[t * y_stride + rr] =
 * ((float)acc * sa[t]) * sw[rr] for rr < rows (y != NULL). */
typedef struct {
    int64_t *acc;
    int acc_live;
    float *y;
    size_t y_stride;
    const float *sa;
    __m256 sw[2];
    int rows;
} TileOut;

/* The first n <= 8 floats of v to y. */
static inline void store_first(float *y, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(y, v);
    } else if (n > 0) { /* a masked store is slow on some CPUs */
        float lanes[8];
        _mm256_storeu_ps(lanes, v);
        memcpy(y, lanes, (size_t)n * sizeof *y);
    }
}

/* The float outputs of 8 rows whose exact sums are sum32 plus, when live, acc[0..7]. A
 * sum of one panel is the int32 itself, converted to float with one rounding as the int64
 * would be; a longer sum is at most len * 49 * 2^16 < 2^51 in magnitude, so the double it
 * becomes is exact and rounds to float once (r4_finish_avx2). */
static inline __m256 tile_floats(const int64_t *acc, int live, __m256i sum32) {
    if (!live) return _mm256_cvtepi32_ps(sum32);
    const __m256i lo = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)acc),
                                        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(sum32)));
    const __m256i hi = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(acc + 4)),
                                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(sum32, 1)));
    return _mm256_set_m128(_mm256_cvtpd_ps(small_i64_to_f64(hi)), _mm256_cvtpd_ps(small_i64_to_f64(lo)));
}

/* NT <= 3 vectors (packed codes a, t-th at a + t * a_stride; pair multipliers m likewise)
 * through a panel of n_pairs pairs of width U, into out. NT and U are compile-time
 * constants at every call, so the sums stay in registers. */
static inline __attribute__((always_inline)) void gemm_tile(const TileOut *out, const uint8_t *panel, int n_pairs,
                                                            const uint8_t *a, size_t a_stride, const int32_t *m,
                                                            size_t m_stride, const int NT, const int U) {
    __m256i sum32[GEMM_TILE][2];
    UNROLL_TILE
    for (int t = 0; t < NT; t++) sum32[t][0] = sum32[t][1] = _mm256_setzero_si256();
    for (int i = 0; i < n_pairs; i++) {
        const uint8_t *pw = panel + (size_t)i * pair_bytes(U), *pa = a + (size_t)i * 2 * U;
        __m256i sum16[GEMM_TILE][2];
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            sum16[t][0] = _mm256_load_si256((const __m256i *)pw);
            sum16[t][1] = _mm256_load_si256((const __m256i *)(pw + 32));
        }
        for (int k = 0; k < U / 2; k++) {
            const __m256i w0 = _mm256_load_si256((const __m256i *)(pw + 64 + 64 * k));
            const __m256i w1 = _mm256_load_si256((const __m256i *)(pw + 96 + 64 * k));
            UNROLL_TILE
            for (int t = 0; t < NT; t++) {
                const __m256i b = bcast4((const int8_t *)pa + t * a_stride + 4 * k);
                sum16[t][0] = _mm256_add_epi16(sum16[t][0], _mm256_maddubs_epi16(b, w0));
                sum16[t][1] = _mm256_add_epi16(sum16[t][1], _mm256_maddubs_epi16(b, w1));
            }
        }
        UNROLL_TILE
        for (int t = 0; t < NT; t++) {
            const __m256i shifts = _mm256_set1_epi32(m[t * m_stride + i]);
            sum32[t][0] = _mm256_add_epi32(sum32[t][0], _mm256_madd_epi16(sum16[t][0], shifts));
            sum32[t][1] = _mm256_add_epi32(sum32[t][1], _mm256_madd_epi16(sum16[t][1], shifts));
        }
    }
    UNROLL_TILE
    for (int t = 0; t < NT; t++) {
        int64_t *acc = out->acc + t * QR_BLOCK_ROWS;
        if (out->y) {
            float *y = out->y + (size_t)t * out->y_stride;
            const __m256 sa = _mm256_set1_ps(out->sa[t]);
            for (int half = 0; half < 2; half++) {
                const __m256 f = tile_floats(acc + 8 * half, out->acc_live, sum32[t][half]);
                store_first(y + 8 * half, _mm256_mul_ps(_mm256_mul_ps(f, sa), out->sw[half]), out->rows - 8 * half);
            }
        } else if (out->acc_live) {
            widen_add(acc, sum32[t][0]);
            widen_add(acc + 8, sum32[t][1]);
        } else {
            for (int half = 0; half < 2; half++) {
                _mm256_storeu_si256((__m256i *)(acc + 8 * half), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(sum32[t][half])));
                _mm256_storeu_si256((__m256i *)(acc + 8 * half + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(sum32[t][half], 1)));
            }
        }
    }
}

void r4_gemm_avx2(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1,
                  const R4Acts *x) {
    const int U = unit_width(x->group);
    _Alignas(32) uint8_t panel[PANEL_BYTES];
    int64_t acc[GEMM_CHUNK * QR_BLOCK_ROWS]; /* for products of more than one panel */
    for (int rb = rb0; rb < rb1; rb++) {
        const int rows = n_rows - rb * QR_BLOCK_ROWS < QR_BLOCK_ROWS ? n_rows - rb * QR_BLOCK_ROWS : QR_BLOCK_ROWS;
        const float *sw = w->scales + rb * QR_BLOCK_ROWS;
        for (int t0 = 0; t0 < x->n; t0 += GEMM_CHUNK) {
            const int nt = x->n - t0 < GEMM_CHUNK ? x->n - t0 : GEMM_CHUNK;
            for (int c0 = 0; c0 < x->len; c0 += GEMM_COLS) {
                const int c1 = x->len - c0 < GEMM_COLS ? x->len : c0 + GEMM_COLS;
                const int n_pairs = pack_panel(panel, w, rb, c0, c1, U);
                if (c1 < x->len) /* the next panel: this block's next columns, or the next block's first */
                    prefetch_panel(w, rb, c1, c1 + GEMM_COLS);
                else if (t0 + GEMM_CHUNK >= x->n && rb + 1 < rb1)
                    prefetch_panel(w, rb + 1, 0, GEMM_COLS);
                /* The chunk's first pair is pair c0 / 2U: at byte c0 of a packed vector. */
                const uint8_t *a = x->packed + (size_t)t0 * x->stride + c0;
                const int32_t *m = x->gemm_words + (size_t)t0 * x->gemm_stride + c0 / (2 * U);
                for (int t = 0; t < nt; t += GEMM_TILE) {
                    const TileOut out = {acc + t * QR_BLOCK_ROWS, c0 > 0,
                                         c1 == x->len ? y + (size_t)(t0 + t) * y_stride + rb * QR_BLOCK_ROWS : NULL,
                                         y_stride, x->scale + t0 + t, {load_first(sw, rows), load_first(sw + 8, rows - 8)},
                                         rows};
                    const uint8_t *as = a + (size_t)t * x->stride;
                    const int32_t *ms = m + (size_t)t * x->gemm_stride;
                    const size_t sa = (size_t)x->stride, sm = (size_t)x->gemm_stride;
                    switch ((nt - t < GEMM_TILE ? nt - t : GEMM_TILE) * 100 + U) {
                    case 116: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 1, 16); break;
                    case 216: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 2, 16); break;
                    case 316: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 3, 16); break;
                    case 132: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 1, 32); break;
                    case 232: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 2, 32); break;
                    default: gemm_tile(&out, panel, n_pairs, as, sa, ms, sm, 3, 32); break;
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ SwiGLU */

/* exp_core (kernels/floatops.c) on 4 lanes, operation by operation, so each lane has the
 * scalar's bits. */
static inline __m256d exp_core4(__m256d x) {
    const __m256d n = _mm256_floor_pd(_mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(SILU_EXP_LOG2E)),
                                                    _mm256_set1_pd(0.5)));
    const __m256d r = _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(n, _mm256_set1_pd(SILU_EXP_LN2_HI))),
                                    _mm256_mul_pd(n, _mm256_set1_pd(SILU_EXP_LN2_LO)));
    const double *c = silu_exp_taylor;
    const __m256d r2 = _mm256_mul_pd(r, r), r4 = _mm256_mul_pd(r2, r2), r8 = _mm256_mul_pd(r4, r4);
    __m256d q[7];
    for (int j = 0; j < 7; j++)
        q[j] = _mm256_add_pd(_mm256_set1_pd(c[2 * j]), _mm256_mul_pd(_mm256_set1_pd(c[2 * j + 1]), r));
    const __m256d s0 = _mm256_add_pd(q[0], _mm256_mul_pd(q[1], r2));
    const __m256d s1 = _mm256_add_pd(q[2], _mm256_mul_pd(q[3], r2));
    const __m256d s2 = _mm256_add_pd(q[4], _mm256_mul_pd(q[5], r2));
    const __m256d p = _mm256_add_pd(_mm256_add_pd(s0, _mm256_mul_pd(s1, r4)),
                                    _mm256_mul_pd(_mm256_add_pd(s2, _mm256_mul_pd(q[6], r4)), r8));
    const __m128i biased = _mm_add_epi32(_mm256_cvtpd_epi32(n), _mm_set1_epi32(1023)); /* n is an integer */
    return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_cvtepi32_epi64(biased), 52)));
}

/* silu_exp: the clamp, then exp_core. vmaxpd returns its second operand when the first is
 * NaN: a NaN lane takes SILU_EXP_MIN, as in the scalar. */
static inline __m256d silu_exp4(__m256d x) {
    return exp_core4(_mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(SILU_EXP_MIN)), _mm256_set1_pd(SILU_EXP_MAX)));
}

void swiglu_avx2(float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(gate + i));
        const __m256d e = silu_exp4(_mm256_xor_pd(g, _mm256_set1_pd(-0.0))); /* exp(-g) */
        const __m256d sig = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_set1_pd(1.0), e));
        const __m128 silu = _mm256_cvtpd_ps(_mm256_mul_pd(g, sig));
        _mm_storeu_ps(gate + i, _mm_mul_ps(silu, _mm_loadu_ps(up + i)));
    }
    swiglu_scalar(gate + i, up + i, n - i);
}

/* ------------------------------------------------------------------ softmax */

/* softmax_exp of 4 lanes: exp_core in double at max(x, SOFTMAX_EXP_MIN), rounded to float;
 * then 0 where x < SOFTMAX_EXP_MIN and x itself where it is NaN, as in the scalar. */
static inline __m128 softmax_exp4(__m128 x) {
    const __m128 lo = _mm_set1_ps(SOFTMAX_EXP_MIN);
    const __m128 e = _mm256_cvtpd_ps(exp_core4(_mm256_cvtps_pd(_mm_max_ps(x, lo))));
    return _mm_blendv_ps(_mm_andnot_ps(_mm_cmplt_ps(x, lo), e), x, _mm_cmpunord_ps(x, x));
}

/* softmax_scalar, 8 lanes at a time: the division, the maximum (vmaxps returns its second
 * operand when the first is NaN: a NaN is skipped; lanes past n take -inf), softmax_exp on
 * 4 doubles, the pairwise sum, the division by it. */
static void softmax_avx2(float *x, int n, float divisor) {
    const __m256 d = _mm256_set1_ps(divisor), minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 m = minus_inf;
    for (int i = 0; i < n; i += 8) {
        const __m256 v = _mm256_div_ps(load_first(x + i, n - i), d);
        store_first(x + i, v, n - i);
        m = _mm256_max_ps(n - i >= 8 ? v : _mm256_blendv_ps(minus_inf, v, _mm256_castsi256_ps(first_lanes(n - i))), m);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const __m128 max = _mm_set1_ps(_mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4))));
    int i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, softmax_exp4(_mm_sub_ps(_mm_loadu_ps(x + i), max)));
    for (; i < n; i++) x[i] = softmax_exp(x[i] - _mm_cvtss_f32(max));
    const __m256 sum = _mm256_set1_ps(pairwise_sum_x86(x, n));
    for (i = 0; i < n; i += 8) store_first(x + i, _mm256_div_ps(load_first(x + i, n - i), sum), n - i);
}

/* ------------------------------------------------------------------ Q_n (docs/SPEC.md section 7) */

/* The sign flips of elements i .. i + 7 (kernels/hadamard.c, hadamard_flips) as a float's
 * sign bit in each lane: bit 31 of i * 2654435761 + 0x9E3779B9, wrapping as unsigned. */
static inline __m256 hadamard_signs8(int i) {
    const __m256i index = _mm256_add_epi32(_mm256_set1_epi32(i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i h = _mm256_add_epi32(_mm256_mullo_epi32(index, _mm256_set1_epi32((int)2654435761u)),
                                       _mm256_set1_epi32((int)0x9E3779B9u));
    return _mm256_castsi256_ps(_mm256_and_si256(h, _mm256_set1_epi32((int)0x80000000u)));
}

/* The butterfly stages h = 1, 2, 4 within 8 lanes: lane l pairs with lane l ^ h (s holds
 * the partners); the lower of a pair takes a + b, the upper a - b, which in the upper lane
 * is s - x. */
static inline __m256 hadamard_lanes8(__m256 x) {
    __m256 s = _mm256_permute_ps(x, 0xB1); /* h = 1: neighbours swapped */
    x = _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0xAA);
    s = _mm256_permute_ps(x, 0x4E); /* h = 2: pairs of lanes swapped */
    x = _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0xCC);
    s = _mm256_permute2f128_ps(x, x, 0x01); /* h = 4: halves swapped */
    return _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0xF0);
}

/* hadamard_scalar's steps, 8 elements at a time: the signs and the stages below 8 in one
 * pass over each vector, then one pass per stage from 8 on, the last one scaling. Blocks
 * of fewer than 8 go to the scalar definition. */
static void hadamard_avx2(float *v, int n_vecs, int len) {
    const int B = hadamard_block(len);
    if (B < 8) {
        hadamard_scalar(v, n_vecs, len);
        return;
    }
    const __m256 scale = _mm256_set1_ps((float)(1.0 / sqrt((double)B)));
    for (int t = 0; t < n_vecs; t++) {
        float *x = v + (size_t)t * len;
        for (int i = 0; i < len; i += 8) {
            const __m256 y = hadamard_lanes8(_mm256_xor_ps(_mm256_loadu_ps(x + i), hadamard_signs8(i)));
            _mm256_storeu_ps(x + i, B == 8 ? _mm256_mul_ps(y, scale) : y);
        }
        for (int h = 8; h < B; h *= 2) {
            const __m256 last = 2 * h == B ? scale : _mm256_set1_ps(1.0f); /* x 1 changes nothing */
            for (int j = 0; j < len; j += 2 * h)
                for (int i = j; i < j + h; i += 8) {
                    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + h);
                    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_add_ps(a, b), last));
                    _mm256_storeu_ps(x + i + h, _mm256_mul_ps(_mm256_sub_ps(a, b), last));
                }
        }
    }
}

const KernelTable kernels_avx2 = {.name = "avx2",
                                  .r4_block = r4_block_avx2,
                                  .r4_finish = r4_finish_avx2,
                                  .dot_i8 = dot_i8_avx2,
                                  .dot_f32 = dot_f32_avx2,
                                  .quantize_r4 = quantize_r4_avx2,
                                  .r4_pack = r4_pack_avx2,
                                  .r4_gemm = r4_gemm_avx2,
                                  .swiglu = swiglu_avx2,
                                  .softmax = softmax_avx2,
                                  .hadamard = hadamard_avx2};
#endif
