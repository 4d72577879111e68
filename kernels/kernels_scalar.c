/*
 * kernels/kernels_scalar.c - the reference kernels: docs/SPEC.md section 3 written as plainly
 * as C allows. Every SIMD kernel must produce exactly these integers.
 */
#include "kernels/floatops.h"
#include "kernels/hadamard.h"
#include "kernels/simd.h"

/* The 4-bit kernel in plain C: each row of the block is unpacked group by group into
 * integers (codes shifted by their column shifts, if any), and docs/SPEC.md section 3
 * (qr_dot) applied to the group with each vector. */
static void r4_block_scalar(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                            int nt) {
    const int G = x->group;
    for (int rr = 0; rr < QR_BLOCK_ROWS; rr++) {
        const int r = rb * QR_BLOCK_ROWS + rr;
        for (int t = 0; t < nt; t++) acc[t * QR_BLOCK_ROWS + rr] = 0;
        for (int g = 0; r < w->rows && g < x->n_groups; g++) {
            int32_t wg[QR_MAX_GROUP], ag[QR_MAX_GROUP];
            const int start = g * G, len = qr_group_len(x->len, G, g), sw = r4_get_shift(w, r, g);
            for (int i = 0; i < len; i++)
                wg[i] = (int32_t)qr_shl(r4_get_code(w, r, start + i), r4_get_col_shift(w, r, start + i));
            for (int t = 0; t < nt; t++) {
                const int8_t *codes = x->codes + (size_t)(t0 + t) * x->stride + start;
                for (int i = 0; i < len; i++) ag[i] = codes[i];
                acc[t * QR_BLOCK_ROWS + rr] += qr_dot(ag, &x->shifts[(size_t)(t0 + t) * x->n_groups + g], wg, &sw, len, G);
            }
        }
    }
}

/* The float conversion and scaling of docs/SPEC.md section 3 (qr_output). */
void r4_finish_scalar(float *y, size_t y_stride, const int64_t *acc, int nt, int rows,
                      const float *sa, const float *sw) {
    for (int t = 0; t < nt; t++)
        for (int rr = 0; rr < rows; rr++)
            y[(size_t)t * y_stride + rr] = qr_output(acc[t * QR_BLOCK_ROWS + rr], sa[t], sw[rr]);
}

/* Stage 1 only (w8a16): sum_i a_i * w_i over INT16 activations and INT8 weights. */
static int64_t dot_i8_scalar(const int8_t *w, const int16_t *a, int n) {
    int64_t sum = 0;
    for (int i = 0; i < n; i++) sum += (int32_t)a[i] * w[i];
    return sum;
}

/* The one order of float32 dot products, which every level follows: 64 running sums
 * (sum j takes the products of elements j, j + 64, j + 128, ...), each product rounded
 * before it is added (no fused multiply-add; the build forbids contraction), then the
 * sums folded in halves: j + (j + 32), then j + (j + 16), ... down to one. It is the
 * order of 64 SIMD lanes (4 AVX-512 or 8 AVX2 registers), written out. A lane that gets
 * no product stays +0.0, and adding +0.0 changes no sum, so the padding of a SIMD tail
 * with zeros is the same as this loop's stopping at n. */
float dot_f32_scalar(const float *w, const float *x, int n) {
    float lane[DOT_F32_LANES] = {0};
    for (int i = 0; i < n; i++) lane[i % DOT_F32_LANES] += w[i] * x[i];
    for (int half = DOT_F32_LANES / 2; half >= 1; half /= 2)
        for (int j = 0; j < half; j++) lane[j] += lane[j + half];
    return lane[0];
}

const KernelTable kernels_scalar = {.name = "scalar",
                                    .r4_block = r4_block_scalar,
                                    .r4_finish = r4_finish_scalar,
                                    .dot_i8 = dot_i8_scalar,
                                    .dot_f32 = dot_f32_scalar,
                                    .quantize_r4 = r4_acts_quantize_scalar,
                                    .swiglu = swiglu_scalar,
                                    .softmax = softmax_scalar,
                                    .hadamard = hadamard_scalar};
