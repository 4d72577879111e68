/*
 * kernels/quant.c - stage 1 and Significant Data Razoring (docs/SPEC.md sections 1 and 2), and
 * the construction of the packed formats.
 */
#include "kernels/quant.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ docs/SPEC.md section 1 */

float absmax_scale(const float *x, int n, int qmax) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    return amax / (float)qmax;
}

/* ------------------------------------------------------------------ docs/SPEC.md section 2 */

int sdr_group(const int32_t *q, int n, int mbits, int rounding, int8_t *codes) {
    /* 1. A leading-one detector over the group: OR of the magnitudes. Its highest set bit
     *    is the highest set bit of the largest magnitude. */
    uint32_t m = 0;
    for (int i = 0; i < n; i++) m |= (uint32_t)abs(q[i]);
    /* 2-4. Keep mbits magnitude bits from the leading one down: shift = position - (mbits - 1)
     *      (position - 2 for the 4-bit codes of section 2). */
    int shift = 0;
    if (m != 0) {
        const int lead = 31 - __builtin_clz(m);
        shift = lead > mbits - 1 ? lead - (mbits - 1) : 0;
    }
    /* 5-6. Round half up on the first dropped bit, saturate at 2^mbits - 1 (7), put the
     *      sign back (never on a zero: there is no negative zero). */
    const uint32_t half = rounding && shift > 0 ? 1u << (shift - 1) : 0, cmax = (1u << mbits) - 1;
    for (int i = 0; i < n; i++) {
        uint32_t c = ((uint32_t)abs(q[i]) + half) >> shift;
        c = c > cmax ? cmax : c;
        codes[i] = (int8_t)(q[i] < 0 ? -(int)c : (int)c);
    }
    return shift;
}

/* ------------------------------------------------------------------ docs/SPEC.md section 3 */

int64_t qr_dot(const int32_t *a, const int32_t *a_shift, const int32_t *w, const int32_t *w_shift, int n,
               int group) {
    int64_t acc = 0;
    for (int g = 0, start = 0; start < n; g++, start += group) {
        int64_t dot = 0; /* the group's products of codes: small (|.| <= 49 G for 4-bit codes) */
        for (int i = start; i < start + qr_group_len(n, group, g); i++) dot += (int64_t)a[i] * w[i];
        acc += qr_shl(dot, a_shift[g] + w_shift[g]); /* one shift per group */
    }
    return acc;
}

/* ------------------------------------------------------------------ R4Matrix */

static void *alloc_aligned(size_t bytes) {
    void *p = NULL;
    /* 64 bytes: one cache line, one AVX-512 register. */
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

void r4_matrix_shape(R4Matrix *m, int rows, int cols, int group) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->group = group;
    m->n_groups = (cols + group - 1) / group;
    m->cols_pad = round_up(cols, QR_STEP_COLS);
    m->n_blocks = (rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
}

size_t r4_code_bytes(const R4Matrix *m) { return (size_t)m->n_blocks * r4_block_bytes(m); }
size_t r4_shift_bytes(const R4Matrix *m) { return (size_t)m->n_blocks * (size_t)m->n_groups * 8; }
size_t r4_scale_bytes(const R4Matrix *m) {
    return (size_t)m->n_blocks * QR_BLOCK_ROWS * sizeof(float);
}

int r4_matrix_alloc(R4Matrix *m, int rows, int cols, int group, int with_shifts) {
    r4_matrix_shape(m, rows, cols, group);
    m->codes = alloc_aligned(r4_code_bytes(m));
    m->shifts = with_shifts ? alloc_aligned(r4_shift_bytes(m)) : NULL;
    m->scales = alloc_aligned(r4_scale_bytes(m));
    if (!m->codes || (with_shifts && !m->shifts) || !m->scales) {
        r4_matrix_free(m);
        return -1;
    }
    memset(m->codes, 0x88, r4_code_bytes(m)); /* excess-8: every code 0 */
    if (m->shifts) memset(m->shifts, 0, r4_shift_bytes(m));
    memset(m->scales, 0, r4_scale_bytes(m));
    return 0;
}

void r4_matrix_free(R4Matrix *m) {
    free(m->codes);
    free(m->shifts);
    free(m->scales);
    memset(m, 0, sizeof *m);
}

int quantize_group(const float *x, int n, float s, QuantKind kind, int base_qmax, int rounding,
                   int8_t *codes) {
    if (kind == QUANT_RTN4) {
        for (int i = 0; i < n; i++) codes[i] = (int8_t)quantize_value(x[i], s, QMAX_RTN4);
        return 0;
    }
    int32_t q[QR_MAX_GROUP];
    for (int i = 0; i < n; i++) q[i] = quantize_value(x[i], s, base_qmax);
    return sdr_group(q, n, sdr_magnitude_bits(kind), rounding, codes);
}

float kind_scale(const float *x, int n, QuantKind kind, int base_qmax) {
    return absmax_scale(x, n, kind == QUANT_RTN4 ? QMAX_RTN4 : base_qmax);
}

void quantize_group_values(const float *x, int n, float s, QuantKind kind, int base_qmax,
                           int rounding, int32_t *values) {
    if (kind == QUANT_INT) {
        for (int i = 0; i < n; i++) values[i] = quantize_value(x[i], s, base_qmax);
        return;
    }
    int8_t codes[QR_MAX_GROUP];
    const int shift = quantize_group(x, n, s, kind, base_qmax, rounding, codes);
    for (int i = 0; i < n; i++) values[i] = codes[i] * (1 << shift);
}

void r4_matrix_quantize_row(R4Matrix *m, int r, const float *w, QuantKind kind, int rounding) {
    const float s = kind_scale(w, m->cols, kind, QMAX_INT8);
    for (int g = 0; g < m->n_groups; g++) {
        const int start = g * m->group, len = qr_group_len(m->cols, m->group, g);
        int8_t codes[QR_MAX_GROUP];
        const int shift = quantize_group(w + start, len, s, kind, QMAX_INT8, rounding, codes);
        for (int i = 0; i < len; i++) r4_set_code(m, r, start + i, codes[i]);
        if (m->shifts) r4_set_shift(m, r, g, shift);
    }
    m->scales[r] = s;
}

void r4_matrix_set_row(R4Matrix *m, int r, const int8_t *codes, const int32_t *shifts, float scale) {
    /* Each byte of a 64-byte step holds two codes of one row (columns e and e + 4), so a
     * row is written in whole bytes, padding columns as code 0. */
    uint8_t *row = m->codes + (size_t)(r / QR_BLOCK_ROWS) * r4_block_bytes(m) + (r % QR_BLOCK_ROWS) * 4;
    for (int j = 0; j < m->cols_pad / QR_STEP_COLS; j++) {
        for (int e = 0; e < 4; e++) {
            const int c = j * QR_STEP_COLS + e;
            const int lo = c < m->cols ? codes[c] : 0, hi = c + 4 < m->cols ? codes[c + 4] : 0;
            row[(size_t)j * QR_STEP_BYTES + e] = (uint8_t)((lo + 8) | ((hi + 8) << 4));
        }
    }
    for (int g = 0; m->shifts && g < m->n_groups; g++) r4_set_shift(m, r, g, shifts[g]);
    m->scales[r] = scale;
}

size_t r4_bytes_for(int rows, int cols, int group, int with_shifts) {
    R4Matrix m;
    r4_matrix_shape(&m, rows, cols, group);
    return r4_code_bytes(&m) + (with_shifts ? r4_shift_bytes(&m) : 0) + r4_scale_bytes(&m);
}

/* ------------------------------------------------------------------ R4Acts */

int r4_acts_alloc(R4Acts *a, int cap_n, int cap_len, int group) {
    memset(a, 0, sizeof *a);
    a->group = group;
    a->cap_n = cap_n;
    a->cap_len = cap_len;
    const int stride = round_up(cap_len, 64), groups = (cap_len + group - 1) / group;
    a->codes = alloc_aligned((size_t)cap_n * (size_t)stride);
    a->shifts = alloc_aligned((size_t)cap_n * (size_t)groups * sizeof(int32_t));
    a->corr = alloc_aligned((size_t)cap_n * (size_t)groups * sizeof(int32_t));
    a->scale = alloc_aligned((size_t)cap_n * sizeof(float));
    a->gemm_stride = 2 * (cap_len / 16 + 1);
    a->packed = alloc_aligned((size_t)cap_n * (size_t)stride);
    a->gemm_words = alloc_aligned((size_t)cap_n * (size_t)a->gemm_stride * sizeof(int32_t));
    if (!a->codes || !a->shifts || !a->corr || !a->scale || !a->packed || !a->gemm_words) {
        r4_acts_free(a);
        return -1;
    }
    memset(a->codes, 0, (size_t)cap_n * (size_t)stride);
    r4_acts_shape(a, cap_n, cap_len);
    return 0;
}

void r4_acts_free(R4Acts *a) {
    free(a->codes);
    free(a->shifts);
    free(a->corr);
    free(a->scale);
    free(a->packed);
    free(a->gemm_words);
    memset(a, 0, sizeof *a);
}

void r4_acts_shape(R4Acts *a, int n, int len) {
    assert(n <= a->cap_n && len <= a->cap_len); /* the buffers were allocated for these */
    a->n = n;
    a->len = len;
    a->n_groups = (len + a->group - 1) / a->group;
    a->stride = round_up(len, 64);
}

void r4_acts_set_corr(const R4Acts *a, int t) {
    const int8_t *codes = a->codes + (size_t)t * a->stride;
    for (int g = 0; g < a->n_groups; g++) {
        int32_t sum = 0;
        for (int i = g * a->group; i < a->len && i < (g + 1) * a->group; i++) sum += codes[i];
        a->corr[(size_t)t * a->n_groups + g] = -8 * sum;
    }
}

void r4_acts_quantize_scalar(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                             int rounding) {
    const float s = kind_scale(x, a->len, kind, base_qmax);
    int8_t *codes = a->codes + (size_t)t * a->stride;
    for (int g = 0; g < a->n_groups; g++) {
        const int start = g * a->group, len = qr_group_len(a->len, a->group, g);
        a->shifts[(size_t)t * a->n_groups + g] =
            quantize_group(x + start, len, s, kind, base_qmax, rounding, codes + start);
    }
    memset(codes + a->len, 0, (size_t)(a->stride - a->len)); /* padding is code 0 */
    a->scale[t] = s;
}

/* ------------------------------------------------------------------ INT8 x INT16 */

int i8_matrix_alloc(I8Matrix *m, int rows, int cols) {
    m->rows = rows;
    m->cols = cols;
    m->q = alloc_aligned((size_t)rows * (size_t)cols);
    m->scales = alloc_aligned((size_t)rows * sizeof(float));
    if (!m->q || !m->scales) {
        i8_matrix_free(m);
        return -1;
    }
    memset(m->q, 0, (size_t)rows * (size_t)cols);
    memset(m->scales, 0, (size_t)rows * sizeof(float));
    return 0;
}

void i8_matrix_free(I8Matrix *m) {
    free(m->q);
    free(m->scales);
    memset(m, 0, sizeof *m);
}

void i8_matrix_quantize_row(I8Matrix *m, int r, const float *w, QuantKind kind, int group,
                            int rounding) {
    const float s = kind_scale(w, m->cols, kind, QMAX_INT8);
    int8_t *row = m->q + (size_t)r * m->cols;
    for (int g = 0, start = 0; start < m->cols; g++, start += group) {
        const int len = qr_group_len(m->cols, group, g);
        int32_t v[QR_MAX_GROUP];
        quantize_group_values(w + start, len, s, kind, QMAX_INT8, rounding, v);
        for (int i = 0; i < len; i++) row[start + i] = (int8_t)v[i];
    }
    m->scales[r] = s;
}


int i16_acts_alloc(I16Acts *a, int cap_n, int cap_len) {
    a->cap_n = cap_n;
    a->cap_len = cap_len;
    const int stride = round_up(cap_len, 32);
    a->q = alloc_aligned((size_t)cap_n * (size_t)stride * sizeof(int16_t));
    a->scale = alloc_aligned((size_t)cap_n * sizeof(float));
    if (!a->q || !a->scale) {
        i16_acts_free(a);
        return -1;
    }
    memset(a->q, 0, (size_t)cap_n * (size_t)stride * sizeof(int16_t));
    i16_acts_shape(a, cap_n, cap_len);
    return 0;
}

void i16_acts_free(I16Acts *a) {
    free(a->q);
    free(a->scale);
    memset(a, 0, sizeof *a);
}

void i16_acts_shape(I16Acts *a, int n, int len) {
    assert(n <= a->cap_n && len <= a->cap_len);
    a->n = n;
    a->len = len;
    a->stride = round_up(len, 32);
}

void i16_acts_quantize(I16Acts *a, int t, const float *x, QuantKind kind, int group, int rounding) {
    int16_t *out = a->q + (size_t)t * a->stride;
    const float s = kind_scale(x, a->len, kind, QMAX_INT16);
    for (int g = 0, start = 0; start < a->len; g++, start += group) {
        const int len = qr_group_len(a->len, group, g);
        int32_t v[QR_MAX_GROUP];
        quantize_group_values(x + start, len, s, kind, QMAX_INT16, rounding, v);
        for (int i = 0; i < len; i++) out[start + i] = (int16_t)v[i];
    }
    memset(out + a->len, 0, (size_t)(a->stride - a->len) * sizeof *out);
    a->scale[t] = s;
}
