/*
 * kernels/quant.h - stage 1 (absmax scaling) and stage 2 (Significant Data Razoring), and
 * the functions that build the formats of qformat.h from float data.
 *
 * The code here is the definition of docs/SPEC.md sections 1 and 2, written to be read.
 */
#ifndef KERNELS_QUANT_H
#define KERNELS_QUANT_H

#include <math.h>
#include <stdint.h>

#include "kernels/qformat.h"

/* The largest stage-1 code of each base type (docs/SPEC.md section 1). */
enum { QMAX_INT8 = 127, QMAX_INT16 = 32767, QMAX_RTN4 = 7 };

/* How a tensor is quantized. */
typedef enum {
    QUANT_F32,  /* not at all */
    QUANT_INT,  /* stage 1 only: INT8 weights / KV, INT16 activations (mode w8a16) */
    QUANT_SDR,  /* stage 1, then razored to 4-bit codes + group shifts (mode qrazor) */
    QUANT_RTN4, /* absmax straight to 4 bits, no shifts (mode rtn4, the naive baseline) */
    QUANT_SDR5, /* stage 1, then razored to 5-bit codes (4 magnitude bits) + group shifts:
                   the KV-cache type r5 of docs/SPEC.md section 6 */
} QuantKind;

/* Magnitude bits a razored code keeps: 3 (4-bit codes), or 4 for QUANT_SDR5. */
static inline int sdr_magnitude_bits(QuantKind kind) { return kind == QUANT_SDR5 ? 4 : 3; }

/* Stage 1, in two halves: the scale s = max|x| / qmax of a vector (0 for an all-zero
 * vector), and the code round(x / s) of one value, rounded half away from zero and
 * clamped to [-qmax, qmax] (0 when s is 0). */
float absmax_scale(const float *x, int n, int qmax);

static inline int32_t quantize_value(float x, float s, int qmax) {
    /* Divide (not multiply by 1/s): docs/SPEC.md's reference does, and the two can differ in
     * the last bit, which can move a value across a rounding boundary. roundf rounds half
     * away from zero, as docs/SPEC.md requires (lrintf would round half to even). */
    if (s == 0.0f) return 0;
    const float v = roundf(x / s);
    /* Defined for every float: infinities saturate like any large value, and a NaN (from
     * a NaN input, or inf / inf) has no value to keep: code 0. The engine reports
     * non-finite activations; the quantizer only has to stay defined. */
    if (v != v) return 0;
    return (int32_t)(v > (float)qmax ? (float)qmax : v < (float)-qmax ? (float)-qmax : v);
}

/* Stage 2 on one group of n stage-1 integers, keeping `mbits` magnitude bits (3: the 4-bit
 * codes of section 2; 4: the 5-bit codes of section 6): writes the signed codes, returns
 * the group's shift. */
int sdr_group(const int32_t *q, int n, int mbits, int rounding, int8_t *codes);

/* Both stages for one group of n <= QR_MAX_GROUP floats of a vector whose stage-1 scale is
 * s (from absmax_scale with base_qmax, or with QMAX_RTN4 for RTN4): writes n codes and
 * returns the group's shift. SDR razors the base_qmax integers (127 or 32767) to 4-bit
 * codes, SDR5 to 5-bit codes; RTN4 rounds straight to 4 bits and returns shift 0. */
int quantize_group(const float *x, int n, float s, QuantKind kind, int base_qmax, int rounding,
                   int8_t *codes);

/* docs/SPEC.md section 3 on plain arrays, the definition every integer kernel computes:
 * for n elements in groups of `group` (the last may be shorter),
 *   acc = sum over groups g of ( sum_{i in g} a_i * w_i ) << (a_shift[g] + w_shift[g])
 * exactly, in 64 bits. a_i and w_i are the operands' integers: 4-bit codes with their
 * group shifts, or stage-1 codes with shifts 0. */
int64_t qr_dot(const int32_t *a, const int32_t *a_shift, const int32_t *w, const int32_t *w_shift, int n,
               int group);

/* The one rounding of section 3: the float output of an accumulator,
 * y = ((float)acc * Sa) * Sw, in that order everywhere. */
static inline float qr_output(int64_t acc, float sa, float sw) { return ((float)acc * sa) * sw; }

/* The stage-1 scale of a vector quantized as `kind` over INT bases of base_qmax (RTN4
 * scales to 7 instead). */
float kind_scale(const float *x, int n, QuantKind kind, int base_qmax);

/* The integer values of one group of n <= QR_MAX_GROUP floats whose vector scale is s:
 * stage-1 codes for QUANT_INT; for SDR and RTN4 the 4-bit codes expanded to c << shift
 * (at most 7 << 4 = 112 from INT8 bases, 7 << 12 = 28672 from INT16 bases), the exact
 * values a 4-bit operand stands for when its partner in a matmul is not 4-bit. */
void quantize_group_values(const float *x, int n, float s, QuantKind kind, int base_qmax,
                           int rounding, int32_t *values);

/* ---------------------------------------------------------------- R4Matrix */

/* Sets the shape fields of a rows x cols matrix with groups of `group` (pointers NULL). */
void r4_matrix_shape(R4Matrix *m, int rows, int cols, int group);

/* The sizes of its three arrays: codes, shifts (when it has them) and scales. */
size_t r4_code_bytes(const R4Matrix *m);
size_t r4_shift_bytes(const R4Matrix *m);
size_t r4_scale_bytes(const R4Matrix *m);

/* Allocates a zero matrix (every code 0, every shift 0). with_shifts = 0 leaves
 * shifts NULL. Returns 0, or -1 when out of memory. */
int r4_matrix_alloc(R4Matrix *m, int rows, int cols, int group, int with_shifts);
void r4_matrix_free(R4Matrix *m);

/* Quantizes row r from floats: SDR (INT8 stage 1, then razor in the matrix's groups) or
 * RTN4 (4-bit absmax, shifts 0). */
void r4_matrix_quantize_row(R4Matrix *m, int r, const float *w, QuantKind kind, int rounding);

/* Writes row r from already quantized codes (cols of them), group shifts and scale. */
void r4_matrix_set_row(R4Matrix *m, int r, const int8_t *codes, const int32_t *shifts, float scale);

/* Bytes of codes + shifts + scales of a matrix. */
size_t r4_bytes_for(int rows, int cols, int group, int with_shifts);


/* ---------------------------------------------------------------- R4Acts */

int r4_acts_alloc(R4Acts *a, int cap_n, int cap_len, int group);
void r4_acts_free(R4Acts *a);

/* Sets the batch shape (n vectors of length len, within the allocated capacity) before
 * filling it. */
void r4_acts_shape(R4Acts *a, int n, int len);

/* Quantizes vector t of the batch (a->len floats): SDR (stage 1 to integers of base_qmax,
 * QMAX_INT16 for activations or QMAX_INT8 for key/value entries, then razor) or RTN4.
 * This is the definition; r4_acts_quantize (kernels/simd.h) runs the current SIMD level's
 * version of it, which must give the same bytes. */
void r4_acts_quantize_scalar(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                             int rounding);

/* The corrections of vector t from its codes (qformat.h): the definition of what a level's
 * r4_pack writes there. */
void r4_acts_set_corr(const R4Acts *a, int t);

/* ---------------------------------------------------------------- INT8 x INT16 */

int i8_matrix_alloc(I8Matrix *m, int rows, int cols);
void i8_matrix_free(I8Matrix *m);

/* Row r from floats: INT8 stage 1, or (SDR, RTN4) 4-bit codes expanded to c << s. */
void i8_matrix_quantize_row(I8Matrix *m, int r, const float *w, QuantKind kind, int group,
                            int rounding);

int i16_acts_alloc(I16Acts *a, int cap_n, int cap_len);
void i16_acts_free(I16Acts *a);
void i16_acts_shape(I16Acts *a, int n, int len);

/* Vector t from a->len floats: INT16 stage 1, or (SDR, RTN4) 4-bit codes expanded. */
void i16_acts_quantize(I16Acts *a, int t, const float *x, QuantKind kind, int group, int rounding);

#endif
