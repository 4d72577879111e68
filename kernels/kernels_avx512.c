/*
 * kernels/kernels_avx512.c - AVX-512 (F, BW, VL) + VNNI kernels (compiled with those
 * flags; only called after CPU detection says so).
 *
 * The 4-bit kernel is the AVX2 one (see kernels_avx2.c for why it is exact) with the
 * whole 16-row block in one register:
 *   - one 64-byte step = 16 rows x 8 columns; `and 0x0F` / shift-and-mask split it into
 *     two registers of 16 lanes x 4 excess-8 codes (columns 0-3 and 4-7 of every row);
 *   - vpdpbusd multiplies each lane's 4 unsigned codes by 4 signed activation codes
 *     (broadcast) and adds the 4 products to the lane: one instruction per 64 products;
 *   - vpsllvd applies each row's sa + sw to its group sum; 32-bit lanes are widened to
 *     64 bits every 512 columns (512 x 49 x 2^16 < 2^31).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels/simd.h"

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

static void r4_block_avx512(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                            int nt) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const int G = x->group;
    const uint8_t *block = w->codes + (size_t)rb * r4_block_bytes(w);
    const uint8_t *wshift = w->shifts ? w->shifts + (size_t)rb * w->n_groups * 8 : NULL;
    for (int i = 0; i < nt * QR_BLOCK_ROWS; i++) acc[i] = 0;

    __m512i acc32[QR_TILE_TOKENS];
    for (int t = 0; t < nt; t++) acc32[t] = _mm512_setzero_si512();
    int since_flush = 0;
    for (int g = 0; g < x->n_groups; g++) {
        const int start = g * G, end = start + G < x->len ? start + G : x->len;
        const int steps = (end - start + QR_STEP_COLS - 1) / QR_STEP_COLS;
        /* 16 row shifts: 8 bytes of nibbles -> 16 bytes (rows 0-7 low, 8-15 high) -> lanes. */
        __m512i sw = _mm512_setzero_si512();
        if (wshift) {
            const __m128i b = _mm_loadl_epi64((const __m128i *)(wshift + (size_t)g * 8));
            const __m128i m = _mm_set1_epi8(0x0F);
            const __m128i nib = _mm_unpacklo_epi64(_mm_and_si128(b, m),
                                                   _mm_and_si128(_mm_srli_epi16(b, 4), m));
            sw = _mm512_cvtepu8_epi32(nib);
        }
        __m512i gacc[QR_TILE_TOKENS];
        for (int t = 0; t < nt; t++)
            gacc[t] = _mm512_set1_epi32(-8 * x->group_sum[(size_t)(t0 + t) * x->n_groups + g]);
        for (int s = 0; s < steps; s++) {
            const int col = start + s * QR_STEP_COLS;
            const __m512i v =
                _mm512_loadu_si512(block + (size_t)(col / QR_STEP_COLS) * QR_STEP_BYTES);
            const __m512i lo = _mm512_and_si512(v, low4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            for (int t = 0; t < nt; t++) {
                const int8_t *a = x->codes + (size_t)(t0 + t) * x->stride + col;
                gacc[t] = _mm512_dpbusd_epi32(gacc[t], lo, bcast4(a));
                gacc[t] = _mm512_dpbusd_epi32(gacc[t], hi, bcast4(a + 4));
            }
        }
        for (int t = 0; t < nt; t++) {
            const __m512i sh = _mm512_add_epi32(
                sw, _mm512_set1_epi32(x->shifts[(size_t)(t0 + t) * x->n_groups + g]));
            acc32[t] = _mm512_add_epi32(acc32[t], _mm512_sllv_epi32(gacc[t], sh));
        }
        since_flush += G;
        if (since_flush >= QR_FLUSH_COLS || g == x->n_groups - 1) {
            for (int t = 0; t < nt; t++) {
                widen_add(acc + t * QR_BLOCK_ROWS, acc32[t]);
                acc32[t] = _mm512_setzero_si512();
            }
            since_flush = 0;
        }
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
    int64_t sum = _mm512_reduce_add_epi64(acc64);
    for (int i = n32; i < n; i++) sum += (int32_t)a[i] * w[i];
    return sum;
}

static float dot_f32_avx512(const float *w, const float *x, int n) {
    const int n64 = n / 64 * 64;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int i = 0; i < n64; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (int i = n64; i < n; i++) sum += w[i] * x[i];
    return sum;
}

const KernelTable kernels_avx512 = {"avx512", r4_block_avx512, dot_i8_avx512, dot_f32_avx512};
#endif
