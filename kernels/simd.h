/*
 * kernels/simd.h - one table of kernels per instruction-set level, chosen once at run time.
 *
 *   scalar   plain C (kernels/kernels_scalar.c, kernels/quant.c, kernels/floatops.c): the
 *            definition every other level must match bit for bit, and the fallback on any CPU
 *   avx2     AVX2 + FMA (x86-64 from 2013 on): kernels/x86/avx2.c
 *   avx512   AVX-512 F/CD/BW/DQ/VL + VNNI (Cascade Lake, Ice Lake, Zen 4 and later):
 *            kernels/x86/avx512.c; vpdpbusd does four byte products and their sum in one
 *            instruction
 *   neon     ARMv8.0 Advanced SIMD (every AArch64 CPU: Raspberry Pi 4, Cortex-A72):
 *            kernels/arm/neon.c
 *   dotprod  ARMv8.2 dot product (Apple M1 and later, Graviton 2 and later, Raspberry Pi 5):
 *            kernels/arm/dotprod.c; sdot sums four byte products into each 32-bit lane
 *   i8mm     dotprod + the int8 matrix multiply (Apple M2 and later, Graviton 3 and later):
 *            kernels/arm/i8mm.c; smmla multiplies 2 x 8 bytes by 8 x 2 for its GEMM
 *
 * A build holds the levels of its architecture as native code. The test build that checks
 * every level on any CPU (make test's emulated pass, SIMD_EMULATED) compiles the same
 * kernel files against SIMDe, a header library that implements the intrinsics in portable
 * C, and holds every level of every architecture.
 *
 * The kernels work on one block of 16 rows (QR_BLOCK_ROWS) for up to QR_TILE_TOKENS
 * vectors; kernels/matmul.c splits whole matrices into blocks across the thread pool.
 */
#ifndef KERNELS_SIMD_H
#define KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/qformat.h"
#include "kernels/quant.h"

typedef enum { SIMD_SCALAR, SIMD_AVX2, SIMD_AVX512, SIMD_NEON, SIMD_DOTPROD, SIMD_I8MM, SIMD_LEVELS } SimdLevel;

/* Which level files a build compiles (each file is guarded by its macro). */
#if defined(__x86_64__) || defined(SIMD_EMULATED)
#define SIMD_BUILD_X86 1
#else
#define SIMD_BUILD_X86 0
#endif
#if defined(__aarch64__) || defined(SIMD_EMULATED)
#define SIMD_BUILD_ARM 1
#else
#define SIMD_BUILD_ARM 0
#endif

enum { QR_TILE_TOKENS = 8 }; /* vectors one kernel call handles */

/* The 4-bit kernel: for the rows of block rb and vectors t0 .. t0+nt-1 (nt <= 8),
 *   acc[(t - t0) * 16 + rr] = the exact docs/SPEC.md section 3 accumulator of row 16*rb + rr,
 * reducing over the vector length x->len (<= w->cols). Rows past w->rows give 0. Only the
 * scalar one takes matrices with column shifts (qformat.h); the levels with a GEMM
 * multiply those with it. */
typedef void (*R4BlockKernel)(int64_t *acc, const R4Matrix *w, int rb, const R4Acts *x, int t0,
                              int nt);

/* Floats of a 4-bit tile: y[t * y_stride + rr] = ((float)acc[t * 16 + rr] * sa[t]) * sw[rr]
 * for t < nt, rr < rows: the one rounding of docs/SPEC.md section 3, in that order. */
typedef void (*R4FinishKernel)(float *y, size_t y_stride, const int64_t *acc, int nt, int rows,
                               const float *sa, const float *sw);
void r4_finish_scalar(float *y, size_t y_stride, const int64_t *acc, int nt, int rows,
                      const float *sa, const float *sw);

/* Dot products of the stage-1-only (w8a16) and float32 paths: row-major matrices need no
 * blocking, so a kernel is one row times one vector. The INT8 x INT16 one is exact; the
 * float one adds in the one order dot_f32_scalar defines, at every level, so that a
 * float32 product gives the same bits on every CPU. */
typedef int64_t (*DotI8Kernel)(const int8_t *w, const int16_t *a, int n);
typedef float (*DotF32Kernel)(const float *w, const float *x, int n);
float dot_f32_scalar(const float *w, const float *x, int n);
enum { DOT_F32_LANES = 64 }; /* the running sums of that order (see kernels_scalar.c) */

/* Activation quantization (stage 1 + razoring) of one vector, SDR or RTN4: its codes, shifts
 * and scale. r4_acts_quantize_scalar in kernels/quant.c is the definition; the SIMD
 * versions give the same bytes. */
typedef void (*R4QuantizeKernel)(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax,
                                 int rounding);

/* The preparation of a batch, and the batched 4-bit product (a GEMM), for levels that have
 * them. r4_pack prepares vectors [t0, t1) of the batch x once per product, for the level's
 * kernels: their corrections (`corr`, which its r4_block reads) and what its GEMM wants
 * (in `packed` and `gemm_words`, qformat.h); it returns 0, or -1 when they are not vectors
 * the GEMM takes (the AVX2 GEMM: a code above 7 in magnitude, the attention's shifted
 * probabilities), which then go to r4_block (corr is set either way). r4_gemm computes, for the rows
 * of blocks [rb0, rb1) of w (the first n_rows rows only) and every vector t of x, the
 * floats of docs/SPEC.md section 3, y[t * y_stride + r] = ((float)acc * Sa[t]) * Sw[r],
 * with exactly the accumulators of r4_block. Threads may run either on different vectors
 * or blocks at once. */
typedef int (*R4PackKernel)(const R4Acts *x, int t0, int t1);
typedef void (*R4GemmKernel)(float *y, size_t y_stride, const R4Matrix *w, int n_rows, int rb0, int rb1,
                             const R4Acts *x);

/* SwiGLU and softmax (kernels/floatops.h): swiglu_scalar and softmax_scalar are the
 * definitions, every level gives their bits. */
typedef void (*SwigluKernel)(float *gate, const float *up, int n);
typedef void (*SoftmaxKernel)(float *x, int n, float divisor);

/* The online rotation Q_len of docs/SPEC.md section 7 on n_vecs vectors (kernels/hadamard.h):
 * hadamard_scalar is the definition, every level gives its bits. */
typedef void (*HadamardKernel)(float *v, int n_vecs, int len);

typedef struct {
    const char *name;
    R4BlockKernel r4_block;
    R4FinishKernel r4_finish;
    DotI8Kernel dot_i8;
    DotF32Kernel dot_f32;
    R4QuantizeKernel quantize_r4;
    R4PackKernel r4_pack; /* NULL: r4_block needs no preparation (scalar) */
    R4GemmKernel r4_gemm; /* NULL: the level multiplies batches in r4_block tiles */
    SwigluKernel swiglu;
    SoftmaxKernel softmax;
    HadamardKernel hadamard;
} KernelTable;

/* The entries of a table by name, for saying where each comes from (simd_entry_level). */
enum { SIMD_ENTRIES = 10 };
extern const char *const simd_entry_names[SIMD_ENTRIES];

/* The level whose file defines entry e of level l's table: l itself, or a lower level whose
 * kernel l borrows (a level file says which it borrows; this finds them by comparing the
 * tables, so it cannot be out of date). */
SimdLevel simd_entry_level(SimdLevel l, int e);

/* The level's name and where its entries come from, for people: "avx512 (every entry its
 * own)", or the borrowed entries and their levels; "emulated by SIMDe" in an emulated build. */
void simd_describe(SimdLevel l, char *buf, size_t len);

/* Whether this build emulates its SIMD levels (SIMD_EMULATED: the test build) rather than
 * running them as native code. */
int simd_emulated(void);

/* The level used unless simd_use() chooses another: the best this CPU (and its operating
 * system) runs natively; scalar in an emulated build. */
SimdLevel simd_detect(void);

/* The kernels of a level; NULL if this build or this CPU cannot run it. */
const KernelTable *simd_kernels(SimdLevel level);

/* The level in use (the detected one unless simd_use() chose another). */
SimdLevel simd_current(void);
const KernelTable *simd_current_kernels(void);

/* Chooses a level by name ("scalar", "avx2", "avx512", "neon", "dotprod", "i8mm"). Returns 0, or -1 if the name is
 * unknown or this build or CPU cannot run that level. */
int simd_use(const char *name);

const char *simd_level_name(SimdLevel level);

/* r4_acts_quantize_scalar (kernels/quant.h) at the current level: the same bytes, faster. */
void r4_acts_quantize(R4Acts *a, int t, const float *x, QuantKind kind, int base_qmax, int rounding);

#endif
