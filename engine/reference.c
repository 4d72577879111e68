/*
 * engine/reference.c - the forward pass as docs/SPEC.md defines it, one token at a time.
 *
 * Read it as llama2.c's forward(): the same steps in the same order, each written out here
 * in plain loops, so that this file and docs/SPEC.md are all it takes to follow W4A4KV4
 * inference. In the integer modes a matrix product is done as the spec defines it:
 *   1. quantize the input vector: stage 1 (absmax scale, 16-bit integers), then the razor,
 *      4-bit codes with one shift per group of G (sections 1-2: quantize, razor);
 *   2. unpack each weight row as stored: its codes, group shifts and scale (weight_row);
 *   3. multiply codes as integers, shift once per group, sum exactly (section 3: qr_dot),
 *      and scale the sum once: y = ((float)acc * Sa) * Sw.
 * Attention does the same with the query against each cached key, and with the
 * probabilities against the cached values (section 4). RMSNorm, RoPE, softmax and SwiGLU
 * stay float32, in the same order of operations as the fast path and the NumPy oracle.
 * With `rot` (section 7: QuaRot-style rotations) the weights were rotated when they were
 * loaded, and the pass rotates three activations itself: each query and key head after
 * RoPE, and w2's input (hadamard).
 *
 * Nothing here is fast, and nothing is shared with the fast path (engine/forward.c) but the
 * weights and qr_dot: tests/test_reference.c compares the logits of the two with memcmp on
 * every golden model, mode, thread count and SIMD level.
 */
#include "engine/reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h" /* qr_dot, and the types of the weights */

/* A vector quantized as docs/SPEC.md sections 1-2 say: its integers (4-bit codes in
 * [-7, 7], 5-bit codes of the r5 cache in [-15, 15], or stage-1 codes when not razored),
 * one shift per group of G along it (0 when not razored), and one float scale. */
typedef struct {
    int32_t *code, *shift;
    float scale;
} QVec;

enum { MAX_BLOCKS = 24 };

struct Reference {
    const ModelWeights *w;
    ModelConfig c;
    QuantConfig q;
    int n_ctx, hs, G;
    int layer, pos;            /* of the step being run (the classifier's layer is -1) */
    /* Activations of the current token, as in llama2.c. */
    float *x, *xb, *xb2;       /* [dim] residual stream, block input, block output */
    float *q_, *k, *v;         /* [dim], [kv_dim], [kv_dim] */
    float *hb, *hb2;           /* [hidden_dim] */
    float *score, *prob, *pf;  /* [n_ctx] attention scores, probabilities, p' = p * Sv */
    float *squares;            /* [dim] RMSNorm's */
    float *logits;             /* [vocab_size] */
    /* The KV cache, [layer][kv head][position]: float vectors in fp32, else quantized. */
    float *key_f32, *value_f32;          /* [..][hs] */
    QVec *keys, *values;                 /* [..] */
    QVec act, row;                       /* scratch: an activation, a weight row */
    ReferenceWatch watch;
    void *blocks[MAX_BLOCKS];            /* the memory of all the above, for reference_free */
    int n_blocks, out_of_memory;
};

/* ------------------------------------------------------------------ the quantized pieces */

/* Section 2 on one group of n stage-1 integers, in place: each becomes a sign and `mbits`
 * magnitude bits (3: a 4-bit code; 4: a 5-bit code, section 6) under one shared shift,
 * which it returns; the razored integer is code << shift. */
static int razor(int32_t *q, int n, int mbits, int rounding) {
    uint32_t any = 0; /* 1. OR of the magnitudes: its leading one is the largest's */
    for (int i = 0; i < n; i++) any |= (uint32_t)abs(q[i]);
    int lead = -1; /* 2-3. that leading one's bit (-1: every integer is 0) */
    for (uint32_t m = any; m; m >>= 1) lead++;
    const int shift = lead > mbits - 1 ? lead - (mbits - 1) : 0; /* 4. keep mbits bits from it down */
    const uint32_t half = rounding && shift > 0 ? 1u << (shift - 1) : 0, cmax = (1u << mbits) - 1;
    for (int i = 0; i < n; i++) { /* 5-6. round half up, saturate, put the sign back */
        const uint32_t c = ((uint32_t)abs(q[i]) + half) >> shift;
        q[i] = (q[i] < 0 ? -1 : 1) * (int32_t)(c < cmax ? c : cmax);
    }
    return shift;
}

/* x[0..n) quantized as `kind` (sections 1-2): stage 1 with the absmax scale s = max|x| /
 * qmax, where qmax is 127 for weights and the KV cache, 32767 for activations. QUANT_INT
 * keeps those integers; SDR razors each group of G (the last may be shorter) to 4-bit
 * codes and a shift, SDR5 to 5-bit codes; RTN4 is stage 1 with 7 in place of qmax, not
 * razored (section 5). Shifts are 0 where not razored. */
static void quantize(QVec *v, const float *x, int n, QuantKind kind, int qmax, int G, int rounding) {
    if (kind == QUANT_RTN4) qmax = 7;
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    v->scale = amax / (float)qmax;
    for (int i = 0; i < n; i++) { /* round(x / s) half away from zero, clamped; 0 if s = 0 or NaN */
        const float code = v->scale == 0.0f ? 0.0f : roundf(x[i] / v->scale);
        v->code[i] = isnan(code) ? 0 : (int32_t)fminf(fmaxf(code, (float)-qmax), (float)qmax);
    }
    for (int g = 0, start = 0; start < n; g++, start += G) {
        const int len = n - start < G ? n - start : G;
        const int razored = kind == QUANT_SDR || kind == QUANT_SDR5;
        v->shift[g] = razored ? razor(v->code + start, len, kind == QUANT_SDR5 ? 4 : 3, rounding) : 0;
    }
}

/* Row r of a quantized weight matrix as integers. INT8 storage is row-major bytes (stage-1
 * codes, or 4-bit codes already expanded to c << s), shifts 0. 4-bit storage is unpacked
 * from its byte layout (kernels/qformat.h draws it): rows in blocks of 16, a block's
 * columns in steps of 8 taking 64 bytes; byte 4 rr + e of step j holds row rr's code of
 * column 8j + e in its low nibble and of column 8j + 4 + e in its high one, as c + 8. A
 * block's shifts take 8 bytes per group: byte rr % 8, the low nibble for rows rr < 8. */
static void weight_row(QVec *v, const Linear *W, int r, int G) {
    const int n_groups = (W->cols + G - 1) / G, rr = r % QR_BLOCK_ROWS;
    for (int g = 0; g < n_groups; g++) v->shift[g] = 0;
    if (W->storage == STORE_INT) {
        for (int i = 0; i < W->cols; i++) v->code[i] = W->i8.q[(size_t)r * W->cols + i];
        v->scale = W->i8.scales[r];
        return;
    }
    const R4Matrix *m = &W->r4;
    const uint8_t *block = m->codes + (size_t)(r / QR_BLOCK_ROWS) * (m->cols_pad / 8) * 64;
    for (int i = 0; i < W->cols; i++) {
        const uint8_t byte = block[(size_t)(i / 8) * 64 + 4 * rr + i % 4];
        v->code[i] = (i % 8 < 4 ? byte & 15 : byte >> 4) - 8;
    }
    const uint8_t *shifts = m->shifts ? m->shifts + (size_t)(r / QR_BLOCK_ROWS) * n_groups * 8 : NULL;
    for (int g = 0; shifts && g < n_groups; g++)
        v->shift[g] = rr < 8 ? shifts[8 * g + rr] & 15 : shifts[8 * g + rr - 8] >> 4;
    v->scale = m->scales[r];
}

/* ------------------------------------------------------------------ the float32 steps */

/* As llama2.c's, in the order of operations of the fast path and the NumPy oracle: in the
 * integer modes each of them feeds a quantizer, where the last bit can decide a rounding. */

/* A float32 sum in NumPy's pairwise order: fewer than 8 terms one after another; up to 128
 * as 8 interleaved sums (of terms j, j + 8, j + 16, ...) added as a tree, then the terms
 * past the last whole 8; longer, its halves (the first a multiple of 8 long) apart. */
static float sum_pairwise(const float *a, int n) {
    if (n > 128) {
        const int half = n / 2 - n / 2 % 8;
        return sum_pairwise(a, half) + sum_pairwise(a + half, n - half);
    }
    float s = 0.0f, lane[8];
    int i = 0;
    if (n >= 8) {
        memcpy(lane, a, sizeof lane);
        for (i = 8; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) lane[j] += a[i + j];
        s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
    for (; i < n; i++) s += a[i];
    return s;
}

/* o = gain * (x / sqrt(mean(x^2) + eps)). o may be x. */
static void rmsnorm(Reference *r, float *o, const float *x, const float *gain) {
    const int n = r->c.dim;
    for (int i = 0; i < n; i++) r->squares[i] = x[i] * x[i];
    const float inv = 1.0f / sqrtf(sum_pairwise(r->squares, n) / (float)n + r->c.norm_eps);
    for (int i = 0; i < n; i++) o[i] = gain[i] * (inv * x[i]);
}

static double exp_double(double x);

/* e^x - max in float: exp_double rounded once (0 below -104, where e^x is under half the
 * smallest float; NaN stays NaN); the maximum skips NaN. */
static void softmax(float *x, int n) {
    float max = -INFINITY;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++) {
        const float d = x[i] - max;
        x[i] = d != d ? d : d < -104.0f ? 0.0f : (float)exp_double((double)d);
    }
    const float sum = sum_pairwise(x, n);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* RoPE, llama2.c's interleaved pairs: pair i of each of n_heads heads in v turns by the
 * angle pos * f_i, whose cosine and sine are taken in double, rounded once. f_i =
 * 1 / theta^(2i / hs); with Llama 3's scaling (rope_factor not 0), as transformers scales
 * it: a frequency whose wavelength 2 pi / f_i is longer than original_ctx / low_freq_factor
 * is divided by the factor, one shorter than original_ctx / high_freq_factor kept, one
 * between interpolated. */
static void rope(float *v, int n_heads, int hs, int pos, const ModelConfig *c) {
    const double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor,
                 ctx = c->rope_original_ctx;
    for (int i = 0; i < hs / 2; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)hs);
        if (factor != 0) {
            const double wavelength = 2 * 3.14159265358979323846 / f;
            if (wavelength > ctx / lo)
                f /= factor;
            else if (!(wavelength < ctx / hi)) {
                const double smooth = (ctx / wavelength - lo) / (hi - lo);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        const double angle = (double)pos * f;
        const float cos_a = (float)cos(angle), sin_a = (float)sin(angle);
        for (int h = 0; h < n_heads; h++) {
            float *pair = v + (size_t)h * hs + 2 * i;
            const float v0 = pair[0], v1 = pair[1];
            pair[0] = v0 * cos_a - v1 * sin_a;
            pair[1] = v0 * sin_a + v1 * cos_a;
        }
    }
}

/* Q_n of section 7 on x[0..n), in float32: each element's sign flipped when bit 31 of
 * i * 2654435761 + 0x9E3779B9 (unsigned, wrapping) is set; then in each block of B, the
 * largest power of two dividing n, the Walsh-Hadamard butterflies (a, b) -> (a + b, a - b)
 * of the pairs (j, j + h) for h = 1, 2, 4, ..., B / 2; then every element times 1 / sqrt(B)
 * (in double, rounded to float once). An orthogonal change of basis: the model computes
 * the same function (its weights were rotated to match), but a large element of x is
 * spread over its block, which a quantizer with one scale per vector prefers. */
static void hadamard(float *x, int n) {
    const int B = n & -n;
    for (int i = 0; i < n; i++)
        if (((uint32_t)i * 2654435761u + 0x9E3779B9u) >> 31) x[i] = -x[i];
    for (int block = 0; block < n; block += B)
        for (int h = 1; h < B; h *= 2)
            for (int j = block; j < block + B; j++) {
                if ((j - block) & h) continue; /* j is the first of its pair */
                const float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    const float scale = (float)(1.0 / sqrt((double)B));
    for (int i = 0; i < n; i++) x[i] *= scale;
}

/* e^x for softmax and SiLU, computed as the fast path computes it (kernels/floatops.c
 * measures its error: below 3 double epsilons): e^x = 2^n e^t with n = round(x / ln 2) and
 * t = x - n ln 2 (ln 2 in fdlibm's two parts, so t is exact), e^t by its Taylor series to
 * t^13 summed in Estrin's order: pairs of terms, then pairs of pairs. */
static double exp_double(double x) {
    const double n = floor(x * 1.44269504088896338700 + 0.5);
    const double t = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double term[14], pair[7], factorial = 1.0; /* term[k] = 1 / k!, exact up to 13! */
    for (int k = 0; k < 14; k++) term[k] = 1.0 / (factorial *= k > 0 ? k : 1);
    for (int j = 0; j < 7; j++) pair[j] = term[2 * j] + term[2 * j + 1] * t;
    const double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    const double sum = ((pair[0] + pair[1] * t2) + (pair[2] + pair[3] * t2) * t4) +
                       ((pair[4] + pair[5] * t2) + pair[6] * t4) * t8;
    return ldexp(sum, (int)n);
}

/* SiLU's: x clamped to [-40, 709], where SiLU in double does not notice (NaN goes to -40:
 * SiLU then gives NaN). */
static double silu_exp(double x) { return exp_double(x >= -40.0 ? (x > 709.0 ? 709.0 : x) : -40.0); }

/* gate = silu(gate) * up, silu(g) = g / (1 + e^-g) in double, rounded once to float. */
static void swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const double g = gate[i];
        gate[i] = (float)(g * (1.0 / (1.0 + silu_exp(-g)))) * up[i];
    }
}

/* A float32 dot product in the fast path's one order: 64 running sums (sum j takes the
 * products of elements j, j + 64, ...), then folded in halves, j + (j + 32), ... */
static float dot_f32(const float *w, const float *x, int n) {
    float lane[64] = {0};
    for (int i = 0; i < n; i++) lane[i % 64] += w[i] * x[i];
    for (int half = 32; half > 0; half /= 2)
        for (int j = 0; j < half; j++) lane[j] += lane[j + half];
    return lane[0];
}

/* ------------------------------------------------------------------ products */

/* y = W x. In an integer mode x is quantized once as an activation of kind `act`; each
 * output is then the exact integer dot product of its codes with a weight row's (section
 * 3), scaled once. Float32 weights take float32 dot products. */
static void linear(Reference *r, float *y, const Linear *W, const float *x, QuantKind act) {
    if (W->storage == STORE_F32) {
        for (int i = 0; i < W->rows; i++) y[i] = dot_f32(W->f32 + (size_t)i * W->cols, x, W->cols);
    } else {
        quantize(&r->act, x, W->cols, act, QMAX_INT16, r->G, r->q.rounding);
        for (int i = 0; i < W->rows; i++) {
            weight_row(&r->row, W, i, r->G);
            const int64_t acc = qr_dot(r->act.code, r->act.shift, r->row.code, r->row.shift, W->cols, r->G);
            y[i] = ((float)acc * r->act.scale) * r->row.scale;
        }
    }
    if (r->watch.linear) r->watch.linear(r->watch.ctx, r->layer, W, x, y, r->pos);
}

/* The cached key or value of kv head h of this layer at position t. */
static size_t cache_at(const Reference *r, int h, int t) {
    return ((size_t)r->layer * r->c.n_kv_heads + h) * r->n_ctx + t;
}

/* Query head h (reading kv head kvh) at this position: out = its attention over positions
 * 0 .. pos, whose keys and values are in the cache. */
static void attention_head(Reference *r, int h, int kvh, const float *qh, float *out) {
    const int hs = r->hs, n = r->pos + 1, G = r->G;
    const QuantConfig *q = &r->q;
    QVec query = r->act, p = r->row;
    if (q->keys == QUANT_F32) { /* as llama2.c */
        for (int t = 0; t < n; t++) {
            const float *key = r->key_f32 + cache_at(r, kvh, t) * hs;
            float dot = 0.0f;
            for (int d = 0; d < hs; d++) dot += qh[d] * key[d];
            r->score[t] = dot / sqrtf((float)hs);
        }
    } else { /* the query, quantized as an activation, against each cached key (section 4) */
        quantize(&query, qh, hs, q->acts, QMAX_INT16, G, q->rounding);
        for (int t = 0; t < n; t++) {
            const QVec *key = &r->keys[cache_at(r, kvh, t)];
            const int64_t acc = qr_dot(query.code, query.shift, key->code, key->shift, hs, G);
            r->score[t] = (((float)acc * query.scale) * key->scale) / sqrtf((float)hs);
        }
    }
    memcpy(r->prob, r->score, (size_t)n * sizeof *r->prob);
    softmax(r->prob, n);

    if (q->keys == QUANT_F32) {
        memset(out, 0, (size_t)hs * sizeof *out);
        for (int t = 0; t < n; t++)
            for (int d = 0; d < hs; d++) out[d] += r->prob[t] * r->value_f32[cache_at(r, kvh, t) * hs + d];
    } else {
        /* Weighted values: each value's scale folded into its probability, p'_t = p_t Sv[t],
         * p' quantized as an activation over positions (groups of G positions), and
         * out[d] = Sp' sum_t (p'_t v_t,d) << (sp[t / G] + sv[t, d / G]), summed exactly. */
        for (int t = 0; t < n; t++) r->pf[t] = r->prob[t] * r->values[cache_at(r, kvh, t)].scale;
        quantize(&p, r->pf, n, q->probs, QMAX_INT16, G, q->rounding);
        for (int d = 0; d < hs; d++) {
            int64_t acc = 0;
            for (int t = 0; t < n; t++) {
                const QVec *value = &r->values[cache_at(r, kvh, t)];
                acc += (int64_t)p.code[t] * value->code[d] * ((int64_t)1 << (p.shift[t / G] + value->shift[d / G]));
            }
            out[d] = (float)acc * p.scale;
        }
    }
    if (r->watch.head)
        r->watch.head(r->watch.ctx, r->layer, h, kvh, r->pos, qh, r->score, r->prob,
                      q->keys == QUANT_F32 ? NULL : r->pf, out);
}

/* ------------------------------------------------------------------ the forward pass */

float *reference_forward(Reference *r, int token, int pos) {
    const ModelConfig *c = &r->c;
    const ModelWeights *w = r->w;
    const QuantConfig *q = &r->q;
    const int dim = c->dim, hs = r->hs, rep = c->n_heads / c->n_kv_heads;
    float *x = r->x;
    r->pos = pos;

    for (int i = 0; i < dim; i++) /* the token's embedding: float32, or INT8 codes x their row's scale */
        x[i] = w->token_embedding ? w->token_embedding[(size_t)token * dim + i]
                                  : (float)w->embedding_i8.q[(size_t)token * dim + i] * w->embedding_i8.scales[token];

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &w->layers[l];
        r->layer = l;

        /* Attention: x += wo attention(rmsnorm(x)). */
        rmsnorm(r, r->xb, x, L->rms_att);
        linear(r, r->q_, &L->wq, r->xb, q->acts);
        linear(r, r->k, &L->wk, r->xb, q->acts);
        linear(r, r->v, &L->wv, r->xb, q->acts);
        rope(r->q_, c->n_heads, hs, pos, c);
        rope(r->k, c->n_kv_heads, hs, pos, c);
        for (int h = 0; q->rotate && h < c->n_heads; h++) hadamard(r->q_ + (size_t)h * hs, hs); /* section 7 */
        for (int h = 0; q->rotate && h < c->n_kv_heads; h++) hadamard(r->k + (size_t)h * hs, hs);

        /* This position's key and value go into the cache, quantized per head from an
         * INT8 base (section 4). */
        for (int h = 0; h < c->n_kv_heads; h++) {
            const size_t at = cache_at(r, h, pos);
            const float *key = r->k + (size_t)h * hs, *value = r->v + (size_t)h * hs;
            if (q->keys == QUANT_F32) {
                memcpy(r->key_f32 + at * hs, key, (size_t)hs * sizeof *key);
                memcpy(r->value_f32 + at * hs, value, (size_t)hs * sizeof *value);
            } else {
                quantize(&r->keys[at], key, hs, q->keys, QMAX_INT8, r->G, q->rounding);
                quantize(&r->values[at], value, hs, q->values, QMAX_INT8, r->G, q->rounding);
            }
            if (r->watch.kv) r->watch.kv(r->watch.ctx, l, h, pos, key, value);
        }
        for (int h = 0; h < c->n_heads; h++)
            attention_head(r, h, h / rep, r->q_ + (size_t)h * hs, r->xb + (size_t)h * hs);
        linear(r, r->xb2, &L->wo, r->xb, q->acts);
        for (int i = 0; i < dim; i++) x[i] += r->xb2[i];

        /* Feed-forward: x += w2 (silu(w1 xb) * (w3 xb)) with xb = rmsnorm(x). */
        rmsnorm(r, r->xb, x, L->rms_ffn);
        linear(r, r->hb, &L->w1, r->xb, q->acts);
        linear(r, r->hb2, &L->w3, r->xb, q->acts);
        swiglu(r->hb, r->hb2, c->hidden_dim);
        if (q->rotate) hadamard(r->hb, c->hidden_dim); /* section 7: w2's input by Q_hidden */
        linear(r, r->xb2, &L->w2, r->hb, q->acts);
        for (int i = 0; i < dim; i++) x[i] += r->xb2[i];
    }

    /* The classifier, quantized as --cls says. */
    r->layer = -1;
    rmsnorm(r, x, x, w->rms_final);
    linear(r, r->logits, &w->cls, x, q->cls);
    return r->logits;
}

/* ------------------------------------------------------------------ construction */

/* Zeroed memory for count items of `size` bytes, which reference_free frees. */
static void *take(Reference *r, size_t count, size_t size) {
    void *p = r->n_blocks < MAX_BLOCKS ? calloc(count ? count : 1, size) : NULL;
    r->out_of_memory |= !p;
    return p ? r->blocks[r->n_blocks++] = p : NULL;
}

Reference *reference_new(const ModelWeights *w, int n_ctx, char *err, size_t errlen) {
    Reference *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const ModelConfig *c = &w->cfg;
    r->w = w, r->c = *c, r->q = w->quant, r->n_ctx = n_ctx;
    r->hs = config_head_size(c), r->G = w->quant.group;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, kv_dim = (size_t)config_kv_dim(c),
                 ctx = (size_t)n_ctx, longest = hid > dim ? (hid > ctx ? hid : ctx) : (dim > ctx ? dim : ctx),
                 cache = (size_t)c->n_layers * c->n_kv_heads * ctx, groups = ((size_t)r->hs + r->G - 1) / r->G,
                 F = sizeof(float), I = sizeof(int32_t);
    r->x = take(r, dim, F), r->xb = take(r, dim, F), r->xb2 = take(r, dim, F), r->squares = take(r, dim, F);
    r->q_ = take(r, dim, F), r->k = take(r, kv_dim, F), r->v = take(r, kv_dim, F);
    r->hb = take(r, hid, F), r->hb2 = take(r, hid, F), r->logits = take(r, (size_t)c->vocab_size, F);
    r->score = take(r, ctx, F), r->prob = take(r, ctx, F), r->pf = take(r, ctx, F);
    r->act = (QVec){take(r, longest, I), take(r, longest, I), 0};
    r->row = (QVec){take(r, longest, I), take(r, longest, I), 0};
    if (w->quant.keys == QUANT_F32) {
        r->key_f32 = take(r, cache * r->hs, F), r->value_f32 = take(r, cache * r->hs, F);
    } else { /* each entry's codes and shifts, one after the other in one block */
        r->keys = take(r, cache, sizeof(QVec)), r->values = take(r, cache, sizeof(QVec));
        int32_t *ints = take(r, 2 * cache * (r->hs + groups), I);
        for (size_t i = 0; !r->out_of_memory && i < 2 * cache; i++, ints += r->hs + groups)
            (i < cache ? r->keys : r->values)[i % cache] = (QVec){ints, ints + r->hs, 0.0f};
    }
    if (r->out_of_memory) {
        snprintf(err, errlen, "out of memory for the reference forward pass (%d positions)", n_ctx);
        reference_free(r);
        return NULL;
    }
    return r;
}

void reference_free(Reference *r) {
    for (int i = 0; r && i < r->n_blocks; i++) free(r->blocks[i]);
    free(r);
}

void reference_watch(Reference *r, const ReferenceWatch *watch) {
    r->watch = watch ? *watch : (ReferenceWatch){0};
}
