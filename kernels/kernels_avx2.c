/*
 * kernels/kernels_avx2.c - AVX2 + FMA kernels (compiled with -mavx2 -mfma; only called
 * after CPU detection says so).
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
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/simd.h"

static inline __m256i bcast4(const int8_t *p) { /* 4 bytes to every 32-bit lane */
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Adds the 8 int32 lanes of v, widened, to dst[0..7]. */
static inline void widen_add(int64_t *dst, __m256i v) {
    __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
    __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1));
    _mm256_storeu_si256((__m256i *)dst,
                        _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)dst), lo));
    _mm256_storeu_si256((__m256i *)(dst + 4),
                        _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(dst + 4)), hi));
}

static void r4_block_avx2(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                          int nt) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const int G = x->group;
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const uint8_t *wshift = w->shifts ? w->shifts + (size_t)rb * w->n_groups * 8 : NULL;
    /* Padding rows hold code 0 and shift 0, so they come out as 0 with no special case. */
    for (int i = 0; i < nt * QR_BLOCK_ROWS; i++) acc[i] = 0;

    for (int half = 0; half < 2; half++) { /* rows 0-7, then rows 8-15 */
        __m256i acc32[QR_TILE_TOKENS];
        for (int t = 0; t < nt; t++) acc32[t] = _mm256_setzero_si256();
        int since_flush = 0;
        for (int g = 0; g < x->n_groups; g++) {
            const int start = g * G, end = start + G < x->len ? start + G : x->len;
            const int steps = (end - start + QR_STEP_COLS - 1) / QR_STEP_COLS;
            /* The 8 rows' weight shifts: byte j holds row j (low nibble), row j+8 (high). */
            __m256i sw = _mm256_setzero_si256();
            if (wshift) {
                __m128i b = _mm_loadl_epi64((const __m128i *)(wshift + (size_t)g * 8));
                sw = _mm256_cvtepu8_epi32(b);
                sw = half ? _mm256_srli_epi32(sw, 4) : _mm256_and_si256(sw, _mm256_set1_epi32(15));
            }
            __m256i gacc[QR_TILE_TOKENS];
            for (int t = 0; t < nt; t++)
                gacc[t] = _mm256_set1_epi32(-8 * x->group_sum[(size_t)(t0 + t) * x->n_groups + g]);
            for (int s = 0; s < steps; s++) {
                const int col = start + s * QR_STEP_COLS;
                const __m256i v = _mm256_loadu_si256(
                    (const __m256i *)(block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES + half * 32));
                const __m256i lo = _mm256_and_si256(v, low4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
                for (int t = 0; t < nt; t++) {
                    const int8_t *a = x->codes + (size_t)(t0 + t) * x->stride + col;
                    const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, bcast4(a)), ones);
                    const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, bcast4(a + 4)), ones);
                    gacc[t] = _mm256_add_epi32(gacc[t], _mm256_add_epi32(plo, phi));
                }
            }
            for (int t = 0; t < nt; t++) {
                const __m256i sh = _mm256_add_epi32(
                    sw, _mm256_set1_epi32(x->shifts[(size_t)(t0 + t) * x->n_groups + g]));
                acc32[t] = _mm256_add_epi32(acc32[t], _mm256_sllv_epi32(gacc[t], sh));
            }
            since_flush += G;
            if (since_flush >= QR_FLUSH_COLS || g == x->n_groups - 1) {
                for (int t = 0; t < nt; t++) {
                    widen_add(acc + t * QR_BLOCK_ROWS + half * 8, acc32[t]);
                    acc32[t] = _mm256_setzero_si256();
                }
                since_flush = 0;
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

/* Four independent accumulators hide the FMA latency. */
static float dot_f32_avx2(const float *w, const float *x, int n) {
    const int n32 = n / 32 * 32;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int i = 0; i < n32; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    const __m256 v = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (int i = n32; i < n; i++) sum += w[i] * x[i];
    return sum;
}

const KernelTable kernels_avx2 = {"avx2", r4_block_avx2, dot_i8_avx2, dot_f32_avx2};
#endif
