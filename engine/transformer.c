/*
 * engine/transformer.c - the LLaMA-2 forward pass, in float32 or with the QRazor integer
 * pipeline at every matmul. A prompt runs in chunks of tokens that share each pass over
 * the weights (a matmul of the weights by a batch of vectors); generation runs one token
 * per call. Below, the shapes of one token; a chunk of n has n of each.
 *
 * Shapes (head_size hs = dim / n_heads, kv_dim = n_kv_heads * hs):
 *
 *   x   [dim]          the residual stream, starts as the token's embedding row
 *   per layer:
 *     xb  = rmsnorm(x)                      [dim]
 *     q   = wq xb, k = wk xb, v = wv xb     [dim], [kv_dim], [kv_dim]
 *     rotate q and k (RoPE), append k, v to the cache at `pos`
 *     per head h: scores over positions 0..pos, softmax, weighted sum of values
 *                 (query head h reads key/value head h / (n_heads / n_kv_heads))
 *     x  += wo (attention output)           [dim]
 *     xb  = rmsnorm(x)
 *     x  += w2 (silu(w1 xb) * (w3 xb))      via [hidden_dim]
 *   logits = wcls rmsnorm(x)                [vocab_size]
 *
 * In an integer mode every matmul input is quantized first (QActs): INT16 for w8a16,
 * INT16 then razored to 4-bit codes for qrazor, 4-bit absmax for rtn4; the weights came
 * quantized (weights/model.h). A product of two 4-bit operands runs on the codes; when
 * only one side is 4-bit (the ablation modes), that side is expanded to its integer
 * values c << s and the INT8 x INT16 kernel computes the same integers. RMSNorm, RoPE,
 * softmax and SwiGLU stay float32.
 *
 * The KV cache of an integer mode holds, per layer and key/value head:
 *   K    [seq_len][hs]   one row per position: a matrix whose rows are positions, so
 *                        the scores of a query are one integer matmul (K q);
 *   V^T  [hs][seq_len]   transposed, so the weighted sum of values is one integer matmul
 *                        too (V^T p'), reducing over positions;
 *   with one stage-1 scale per position (K's row scales, v_scale) and, for razored values,
 *   one 4-bit shift per position and group of G value dimensions (v_shift).
 *
 * Attention on razored operands (docs/SPEC.md section 4). For the values, the per-position
 * scale Sv[t] is folded into the probabilities first: p'_t = p_t * Sv[t], quantized as one
 * INT16 vector over positions and razored in groups of G positions (shifts sp). Then
 *     out[d] = Sp' * sum_t (p'_t * v_{t,d}) << (sp[t/G] + sv[t, d/G]).
 * The value's shift sv depends on the position, so it cannot be applied once per group
 * of the reduction; instead it is applied to the probability code before the multiply:
 * (p'_t << sv) is at most 7 << 4 = 112, still a byte, and the group shift sp is applied
 * after, as in any razored matmul. Integer arithmetic makes the two orders identical.
 */
#include "engine/transformer.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/floatops.h"
#include "kernels/matmul.h"
#include "kernels/simd.h"
#include "engine/probe.h"

/* ------------------------------------------------------------------ the pieces */

/* Tokens processed together by one pass through the layers (a prompt is cut into chunks
 * of this many): every weight block is unpacked once per chunk, not once per token. */
enum { CHUNK = 64 };

/* A batch of float vectors quantized as the inputs of a matmul. */
typedef struct {
    Storage storage;
    QuantKind kind;
    I16Acts i16; /* STORE_INT */
    R4Acts r4;   /* STORE_R4 */
} QActs;

/* Per-thread scratch of the attention step: the queries of one kv head for a chunk
 * (CHUNK tokens x heads_per_kv query heads: "rows"). */
typedef struct {
    QActs q;     /* the rows' queries, [rows][hs] */
    QActs p;     /* their probabilities with Sv folded in, [rows][seq_len] */
    R4Acts p_sv; /* p' codes << sv for one group of value dimensions, [rows][seq_len] */
    R4Acts kv;   /* one key or value vector being stored, [hs] */
    float *att;  /* [rows][seq_len] scores, then probabilities */
    float *pf;   /* [rows][seq_len] p' as floats */
    float *out;  /* [rows][hs] */
} AttnScratch;

/* The KV cache. For float32, k_f32 / v_f32 [n_layers][seq_len][kv_dim]. Otherwise one
 * key matrix and one transposed value matrix per (layer, kv head), index l * n_kv_heads + h:
 *   K   rows = positions, cols = head dimensions (K q gives the scores);
 *   V^T rows = head dimensions, cols = positions (V^T p' gives the output);
 * as INT8 values or 4-bit codes (k_storage, v_storage), with per-position value scales
 * and, for razored 4-bit values, per-position shifts of each group of G dimensions. */
typedef struct {
    QuantKind kind;
    Storage k_storage, v_storage;
    float *k_f32, *v_f32;
    I8Matrix *k_i8, *vt_i8;
    R4Matrix *k_r4, *vt_r4;
    float *v_scale;   /* [heads][seq_len] */
    uint8_t *v_shift; /* [heads][seq_len][v_shift_bytes]: 4-bit shifts, two per byte */
    int v_groups;     /* groups of G value dimensions per head */
    int v_shift_bytes;
} KVCache;

/* The activations of a chunk of up to CHUNK tokens, row t for token t. */
typedef struct {
    float *x, *xb, *xb2; /* [CHUNK][dim] residual stream, branch input, branch output */
    float *hb, *hb2;     /* [CHUNK][hidden_dim] w1 xb then the gated activation, w3 xb */
    float *q, *k, *v;    /* [CHUNK][dim], [CHUNK][kv_dim], [CHUNK][kv_dim] */
    float *logits;       /* [CHUNK][vocab_size] */
    QActs in_dim, in_hidden, in_cls; /* quantized inputs of the matmuls */
} RunState;

struct Transformer {
    Probe *probe; /* NULL, or the explain mode's look inside (engine/probe.h) */
    ModelConfig cfg;
    QuantConfig quant;
    const ModelWeights *w;
    ThreadPool *pool;
    int n_threads;
    int n_ctx; /* positions the KV cache holds: 0 .. n_ctx - 1 */
    KVCache kv;
    RunState s;
    AttnScratch *attn;          /* one per thread */
    float *rope_cos, *rope_sin; /* [seq_len][hs / 2] */
};

/* ------------------------------------------------------------------ quantized inputs */

static int qacts_init(QActs *a, QuantKind kind, QuantKind partner, int cap_n, int len, int group) {
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->storage = storage_for(kind, partner);
    if (a->storage == STORE_INT) return i16_acts_alloc(&a->i16, cap_n, len);
    if (a->storage == STORE_R4) return r4_acts_alloc(&a->r4, cap_n, len, group);
    return 0;
}

static void qacts_free(QActs *a) {
    if (a->storage == STORE_INT) i16_acts_free(&a->i16);
    if (a->storage == STORE_R4) r4_acts_free(&a->r4);
}

/* Sets the batch to n vectors of len values (before quantizing them one by one). */
static void qacts_shape(QActs *a, int n, int len) {
    if (a->storage == STORE_INT) i16_acts_shape(&a->i16, n, len);
    if (a->storage == STORE_R4) r4_acts_shape(&a->r4, n, len);
}

/* Quantizes vector t of the batch from len floats. No-op for float32. */
static void qacts_quantize(QActs *a, int t, const float *x, const QuantConfig *q) {
    if (a->storage == STORE_INT) i16_acts_quantize(&a->i16, t, x, a->kind, q->group, q->rounding);
    if (a->storage == STORE_R4) r4_acts_quantize(&a->r4, t, x, a->kind, QMAX_INT16, q->rounding);
}

/* Quantizes n rows of x (stride floats apart) of len values each. */
static void qacts_set(QActs *a, const float *x, int n, int len, size_t stride, const QuantConfig *q) {
    qacts_shape(a, n, len);
    for (int t = 0; a->storage != STORE_F32 && t < n; t++) qacts_quantize(a, t, x + (size_t)t * stride, q);
}

/* Products of one input, in one pass over the thread pool: for each i, y_i[t][r] =
 * W_i[r] . x[t] for the n rows of x. x holds the float inputs (for float32 weights), qx the
 * same inputs quantized by qacts_set. */
static void linears_apply(float *const *ys, const Linear *const *ls, int count, const float *x,
                          int n, const QActs *qx, ThreadPool *pool) {
    MatmulOut outs[4];
    for (int i = 0; i < count; i++) {
        const Linear *l = ls[i];
        outs[i] = (MatmulOut){ys[i], (size_t)l->rows, l->rows,
                              l->storage == STORE_R4 ? &l->r4 : NULL,
                              l->storage == STORE_INT ? &l->i8 : NULL,
                              l->storage == STORE_F32 ? l->f32 : NULL};
    }
    const Storage st = ls[0]->storage;
    const MatmulIn in = {st == STORE_R4 ? &qx->r4 : NULL, st == STORE_INT ? &qx->i16 : NULL,
                         st == STORE_F32 ? x : NULL, ls[0]->cols, n, (size_t)ls[0]->cols};
    matmul_shared(outs, count, &in, pool);
}

static void linear_apply(float *y, const Linear *l, const float *x, int n, const QActs *qx,
                         ThreadPool *pool) {
    linears_apply(&y, &l, 1, x, n, qx, pool);
}

/* ------------------------------------------------------------------ KV cache */

static int kv_init(KVCache *kv, const ModelConfig *c, const QuantConfig *q, int seq) {
    memset(kv, 0, sizeof *kv);
    kv->kind = q->kv;
    kv->k_storage = storage_for(q->kv, q->acts);
    kv->v_storage = storage_for(q->kv, q->probs);
    const int hs = config_head_size(c), n = c->n_layers * c->n_kv_heads;
    if (kv->kind == QUANT_F32) {
        const size_t floats = (size_t)c->n_layers * seq * config_kv_dim(c);
        kv->k_f32 = calloc(floats, sizeof(float));
        kv->v_f32 = calloc(floats, sizeof(float));
        return kv->k_f32 && kv->v_f32 ? 0 : -1;
    }
    kv->v_scale = calloc((size_t)n * seq, sizeof(float));
    if (!kv->v_scale) return -1;
    if (kv->k_storage == STORE_INT ? !(kv->k_i8 = calloc((size_t)n, sizeof *kv->k_i8))
                                   : !(kv->k_r4 = calloc((size_t)n, sizeof *kv->k_r4)))
        return -1;
    if (kv->v_storage == STORE_INT ? !(kv->vt_i8 = calloc((size_t)n, sizeof *kv->vt_i8))
                                   : !(kv->vt_r4 = calloc((size_t)n, sizeof *kv->vt_r4)))
        return -1;
    for (int i = 0; i < n; i++) {
        if (kv->k_storage == STORE_INT ? i8_matrix_alloc(&kv->k_i8[i], seq, hs)
                                       : r4_matrix_alloc(&kv->k_r4[i], seq, hs, q->group, q->kv == QUANT_SDR))
            return -1;
        /* V^T's row scales are 1: each position's value scale is folded into p'. */
        if (kv->v_storage == STORE_INT) {
            if (i8_matrix_alloc(&kv->vt_i8[i], hs, seq)) return -1;
            for (int d = 0; d < hs; d++) kv->vt_i8[i].scales[d] = 1.0f;
        } else {
            if (r4_matrix_alloc(&kv->vt_r4[i], hs, seq, q->group, 0)) return -1;
            for (int d = 0; d < hs; d++) kv->vt_r4[i].scales[d] = 1.0f;
        }
    }
    if (kv->v_storage == STORE_R4 && kv->kind == QUANT_SDR) {
        kv->v_groups = (hs + q->group - 1) / q->group;
        kv->v_shift_bytes = (kv->v_groups + 1) / 2;
        kv->v_shift = calloc((size_t)n * seq * kv->v_shift_bytes, 1);
        if (!kv->v_shift) return -1;
    }
    return 0;
}

static void kv_free(KVCache *kv, const ModelConfig *c) {
    const int n = c->n_layers * c->n_kv_heads;
    for (int i = 0; i < n; i++) {
        if (kv->k_i8) i8_matrix_free(&kv->k_i8[i]);
        if (kv->k_r4) r4_matrix_free(&kv->k_r4[i]);
        if (kv->vt_i8) i8_matrix_free(&kv->vt_i8[i]);
        if (kv->vt_r4) r4_matrix_free(&kv->vt_r4[i]);
    }
    free(kv->k_i8), free(kv->k_r4), free(kv->vt_i8), free(kv->vt_r4);
    free(kv->k_f32), free(kv->v_f32), free(kv->v_scale), free(kv->v_shift);
}

/* The 4-bit shift of value group j at position t of (layer, kv head) index i. */
static uint8_t *v_shift_byte(const KVCache *kv, int i, int seq, int t, int j) {
    return kv->v_shift + ((size_t)i * seq + t) * kv->v_shift_bytes + j / 2;
}

static int v_shift_get(const KVCache *kv, int i, int seq, int t, int j) {
    const uint8_t b = *v_shift_byte(kv, i, seq, t, j);
    return j % 2 ? b >> 4 : b & 15;
}

/* Stores one kv head's key and value vectors (the key after RoPE) at position pos. Each is
 * quantized over the head (INT8 base), then, for 4-bit storage, razored in groups of G
 * dimensions: the key becomes row pos of K, the value column pos of V^T with its group
 * shifts kept for this position. kv_codes is scratch for one vector's codes. */
static void kv_store_head(Transformer *t, R4Acts *kv_codes, int l, int h, int pos, const float *kh,
                          const float *vh) {
    const ModelConfig *c = &t->cfg;
    const QuantConfig *q = &t->quant;
    KVCache *kv = &t->kv;
    const int hs = config_head_size(c), seq = t->n_ctx;
    if (kv->kind == QUANT_F32) {
        const size_t off = ((size_t)l * seq + pos) * config_kv_dim(c) + (size_t)h * hs;
        memcpy(kv->k_f32 + off, kh, (size_t)hs * sizeof(float));
        memcpy(kv->v_f32 + off, vh, (size_t)hs * sizeof(float));
        return;
    }
    const int i = l * c->n_kv_heads + h;
    if (kv->k_storage == STORE_INT) {
        i8_matrix_quantize_row(&kv->k_i8[i], pos, kh, kv->kind, q->group, q->rounding);
    } else {
        r4_acts_quantize(kv_codes, 0, kh, kv->kind, QMAX_INT8, q->rounding);
        r4_matrix_set_row(&kv->k_r4[i], pos, kv_codes->codes, kv_codes->shifts, kv_codes->scale[0]);
    }
    if (kv->v_storage == STORE_INT) {
        const float s = kind_scale(vh, hs, kv->kind, QMAX_INT8);
        for (int d0 = 0; d0 < hs; d0 += q->group) {
            const int len = hs - d0 < q->group ? hs - d0 : q->group;
            int32_t v[QR_MAX_GROUP];
            quantize_group_values(vh + d0, len, s, kv->kind, QMAX_INT8, q->rounding, v);
            for (int d = 0; d < len; d++) kv->vt_i8[i].q[(size_t)(d0 + d) * seq + pos] = (int8_t)v[d];
        }
        kv->v_scale[(size_t)i * seq + pos] = s;
        return;
    }
    r4_acts_quantize(kv_codes, 0, vh, kv->kind, QMAX_INT8, q->rounding);
    for (int d = 0; d < hs; d++) r4_set_code(&kv->vt_r4[i], d, pos, kv_codes->codes[d]);
    for (int j = 0; kv->v_shift && j < kv->v_groups; j++) {
        uint8_t *b = v_shift_byte(kv, i, seq, pos, j);
        const int shift = kv_codes->shifts[j];
        *b = j % 2 ? (uint8_t)((*b & 0x0F) | (shift << 4)) : (uint8_t)((*b & 0xF0) | shift);
    }
    kv->v_scale[(size_t)i * seq + pos] = kv_codes->scale[0];
}

/* Rows [r0, r0 + n) of m as a matrix of its own (r0 a multiple of 16). */
static R4Matrix r4_rows_view(const R4Matrix *m, int r0, int n) {
    R4Matrix v = *m;
    v.rows = n;
    v.n_blocks = (n + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
    v.codes = m->codes + (size_t)(r0 / QR_BLOCK_ROWS) * r4_block_bytes(m);
    v.shifts = m->shifts ? m->shifts + (size_t)(r0 / QR_BLOCK_ROWS) * m->n_groups * 8 : NULL;
    v.scales = m->scales + r0;
    return v;
}

/* ------------------------------------------------------------------ attention */

/* One chunk's attention for one kv head: its rows are the queries of the chunk's tokens
 * (n of them, at positions pos .. pos + n - 1) for each of the query heads that read this
 * kv head; row r is token r / rep, query head kvh * rep + r % rep. Token i attends to
 * positions 0 .. pos + i (the causal mask). */
typedef struct {
    int l, pos, n;
} AttnJob;

/* out = V^T p' for razored 4-bit values: per group j of G value dimensions, multiply
 * V^T's rows of that group by (p' code << sv[p, j]): the value shift goes on the
 * probability code (at most 7 << 4 = 112, still a byte), the group shift sp after. */
static void razored_values(Transformer *t, AttnScratch *sc, int i, int rows, int len) {
    const KVCache *kv = &t->kv;
    const int hs = config_head_size(&t->cfg), seq = t->n_ctx, G = t->quant.group;
    const R4Acts *pa = &sc->p.r4;
    R4Acts *ps = &sc->p_sv;
    r4_acts_shape(ps, rows, len);
    memcpy(ps->shifts, pa->shifts, (size_t)rows * pa->n_groups * sizeof *ps->shifts);
    memcpy(ps->scale, pa->scale, (size_t)rows * sizeof *ps->scale);
    for (int j = 0, d0 = 0; d0 < hs; j++, d0 += G) {
        for (int r = 0; r < rows; r++) {
            const int8_t *src = pa->codes + (size_t)r * pa->stride;
            int8_t *dst = ps->codes + (size_t)r * ps->stride;
            for (int p = 0; p < len; p++) dst[p] = (int8_t)(src[p] * (1 << v_shift_get(kv, i, seq, p, j)));
            memset(dst + len, 0, (size_t)(ps->stride - len));
            r4_acts_set_corr(ps, r);
        }
        const int n = hs - d0 < G ? hs - d0 : G;
        const R4Matrix vrows = r4_rows_view(&kv->vt_r4[i], d0, n);
        matmul_r4(sc->out + d0, (size_t)hs, &vrows, n, ps, NULL);
    }
}

static void attend_kv_head(Transformer *t, AttnScratch *sc, const AttnJob *job, int kvh) {
    const ModelConfig *c = &t->cfg;
    const KVCache *kv = &t->kv;
    const int hs = config_head_size(c), kv_dim = config_kv_dim(c), seq = t->n_ctx, dim = c->dim;
    const int rep = c->n_heads / c->n_kv_heads, i = job->l * c->n_kv_heads + kvh;
    const int rows = job->n * rep, len = job->pos + job->n; /* keys 0 .. len-1 */
    const float sqrt_hs = sqrtf((float)hs);
#define QUERY(r) (t->s.q + (size_t)((r) / rep) * dim + (size_t)(kvh * rep + (r) % rep) * hs)
#define LAST(r) (job->pos + (r) / rep) /* the last position row r may see */

    /* This head's share of the chunk: rotate its queries and keys (RoPE), store its keys
     * and values. Each kv head's matrices and rows belong to one task: no races. */
    for (int tok = 0; tok < job->n; tok++) {
        const int p = job->pos + tok;
        const float *cos_p = t->rope_cos + (size_t)p * hs / 2, *sin_p = t->rope_sin + (size_t)p * hs / 2;
        float *kh = t->s.k + (size_t)tok * kv_dim + (size_t)kvh * hs;
        rope_rotate(QUERY(tok * rep), rep, hs, cos_p, sin_p);
        rope_rotate(kh, 1, hs, cos_p, sin_p);
        const float *vh = t->s.v + (size_t)tok * kv_dim + (size_t)kvh * hs;
        kv_store_head(t, &sc->kv, job->l, kvh, p, kh, vh);
        if (t->probe) probe_kv(t->probe, job->l, kvh, p, kh, vh);
    }
#define HEAD(r) (kvh * rep + (r) % rep)

    if (kv->kind == QUANT_F32) {
        const float *keys = kv->k_f32 + (size_t)job->l * seq * kv_dim + (size_t)kvh * hs;
        const float *vals = kv->v_f32 + (size_t)job->l * seq * kv_dim + (size_t)kvh * hs;
        for (int r = 0; r < rows; r++) {
            const float *qr = QUERY(r);
            float *att = sc->att + (size_t)r * seq, *out = sc->out + (size_t)r * hs;
            for (int p = 0; p <= LAST(r); p++) {
                const float *kp = keys + (size_t)p * kv_dim;
                float score = 0.0f;
                for (int d = 0; d < hs; d++) score += qr[d] * kp[d];
                att[p] = score / sqrt_hs;
            }
            if (t->probe) probe_scores(t->probe, job->l, HEAD(r), kvh, LAST(r), qr, att);
            softmax(att, LAST(r) + 1);
            memset(out, 0, (size_t)hs * sizeof *out);
            for (int p = 0; p <= LAST(r); p++) {
                const float *vp = vals + (size_t)p * kv_dim;
                for (int d = 0; d < hs; d++) out[d] += att[p] * vp[d];
            }
        }
    } else {
        /* Scores: the integer matmul of the key cache (rows = positions) with the quantized
         * queries; y[r][p] = ((float)acc * Sq[r]) * Sk[p], then / sqrt(hs). */
        qacts_shape(&sc->q, rows, hs);
        for (int r = 0; r < rows; r++) qacts_quantize(&sc->q, r, QUERY(r), &t->quant);
        if (kv->k_storage == STORE_INT)
            matmul_i8(sc->att, (size_t)seq, &kv->k_i8[i], len, &sc->q.i16, NULL);
        else
            matmul_r4(sc->att, (size_t)seq, &kv->k_r4[i], len, &sc->q.r4, NULL);

        /* Values: fold Sv into each row's probabilities (zero past its last position, which
         * leaves its scale and shifts what they would be alone), quantize them as vectors
         * over positions, and multiply with V^T (rows = value dimensions). */
        const float *sv = kv->v_scale + (size_t)i * seq;
        qacts_shape(&sc->p, rows, len);
        for (int r = 0; r < rows; r++) {
            float *att = sc->att + (size_t)r * seq, *pf = sc->pf + (size_t)r * seq;
            for (int p = 0; p <= LAST(r); p++) att[p] /= sqrt_hs;
            if (t->probe) probe_scores(t->probe, job->l, HEAD(r), kvh, LAST(r), QUERY(r), att);
            softmax(att, LAST(r) + 1);
            for (int p = 0; p < len; p++) pf[p] = p <= LAST(r) ? att[p] * sv[p] : 0.0f;
            qacts_quantize(&sc->p, r, pf, &t->quant);
        }
        if (kv->v_storage == STORE_INT)
            matmul_i8(sc->out, (size_t)hs, &kv->vt_i8[i], hs, &sc->p.i16, NULL);
        else if (kv->v_shift)
            razored_values(t, sc, i, rows, len);
        else /* RTN4 values have no shifts: one product does every dimension */
            matmul_r4(sc->out, (size_t)hs, &kv->vt_r4[i], hs, &sc->p.r4, NULL);
    }
    for (int r = 0; r < rows; r++) {
        if (t->probe)
            probe_values(t->probe, job->l, HEAD(r), kvh, LAST(r), sc->att + (size_t)r * seq,
                         kv->kind == QUANT_F32 ? NULL : kv->v_scale + (size_t)i * seq, sc->out + (size_t)r * hs);
        memcpy(t->s.xb + (size_t)(r / rep) * dim + (size_t)HEAD(r) * hs, sc->out + (size_t)r * hs,
               (size_t)hs * sizeof(float));
    }
#undef QUERY
#undef LAST
#undef HEAD
}

/* ------------------------------------------------------------------ the forward pass */

/* A loop over [0, n) split among the threads, or run by the caller alone when `work` (a
 * rough operation count) would not pay for waking them. fn(t, arg, thread, i0, i1) does
 * [i0, i1) on thread `thread` (which selects its scratch buffers). */
typedef void (*SpanFn)(Transformer *t, const void *arg, int thread, int i0, int i1);

typedef struct {
    Transformer *t;
    SpanFn fn;
    const void *arg;
} SpanJob;

static void span_range(void *ctx, int thread, int i0, int i1) {
    const SpanJob *job = ctx;
    job->fn(job->t, job->arg, thread, i0, i1);
}

static void parallel_spans(Transformer *t, int n, long work, SpanFn fn, const void *arg) {
    SpanJob job = {t, fn, arg};
    threadpool_parallel_for(t->pool, n, work >= 16384 ? threadpool_grain(t->pool, n, 4) : n, span_range, &job);
}

/* Tokens i0..i1-1: optionally x += xb2 (the previous branch's residual), optionally
 * xb = rmsnorm(x) with `norm` (else xb is used as it is), then quantize xb as the input of
 * the next matmuls. */
typedef struct {
    const float *norm;
    int add_residual;
} InputStep;

static void span_inputs(Transformer *t, const void *arg, int thread, int i0, int i1) {
    (void)thread;
    const InputStep *step = arg;
    RunState *s = &t->s;
    const size_t dim = (size_t)t->cfg.dim;
    for (int i = i0; i < i1; i++) {
        float *x = s->x + i * dim, *xb = s->xb + i * dim;
        if (step->add_residual)
            for (size_t d = 0; d < dim; d++) x[d] += s->xb2[i * dim + d];
        if (step->norm) rmsnorm(xb, x, step->norm, (int)dim);
        qacts_quantize(&s->in_dim, i, xb, &t->quant);
    }
}

static void span_attention(Transformer *t, const void *arg, int thread, int h0, int h1) {
    for (int h = h0; h < h1; h++) attend_kv_head(t, &t->attn[thread], arg, h);
}

static void span_swiglu(Transformer *t, const void *arg, int thread, int i0, int i1) {
    (void)arg, (void)thread;
    swiglu(t->s.hb + i0, t->s.hb2 + i0, i1 - i0);
}

static void span_hidden_inputs(Transformer *t, const void *arg, int thread, int i0, int i1) {
    (void)arg, (void)thread;
    const size_t hid = (size_t)t->cfg.hidden_dim;
    for (int i = i0; i < i1; i++) qacts_quantize(&t->s.in_hidden, i, t->s.hb + i * hid, &t->quant);
}

/* Runs one chunk of n <= CHUNK tokens at positions pos .. pos + n - 1 through the layers,
 * leaving the final hidden states in s->x (its last residual already added). */
static void run_chunk(Transformer *t, const int *tokens, int n, int pos) {
    const ModelConfig *c = &t->cfg;
    const ModelWeights *w = t->w;
    RunState *s = &t->s;
    const int dim = c->dim, hid = c->hidden_dim, hs = config_head_size(c);
    const long per_token = (long)dim * 8; /* rough float work of preparing one input */

    for (int i = 0; i < n; i++)
        memcpy(s->x + (size_t)i * dim, w->token_embedding + (size_t)tokens[i] * dim, (size_t)dim * sizeof(float));

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &w->layers[l];

        /* Attention: x += wo attention(rmsnorm(x)). wq, wk and wv share one input. */
        qacts_shape(&s->in_dim, n, dim);
        const InputStep attn_in = {L->rms_att, l > 0};
        parallel_spans(t, n, n * per_token, span_inputs, &attn_in);
        float *qkv[3] = {s->q, s->k, s->v};
        const Linear *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        linears_apply(qkv, wqkv, 3, s->xb, n, &s->in_dim, t->pool);
        if (t->probe) {
            probe_linear(t->probe, w, l, SITE_WQ, s->xb, n, pos, s->q, L->wq.rows, dim);
            probe_linear(t->probe, w, l, SITE_WK, s->xb, n, pos, s->k, L->wk.rows, dim);
            probe_linear(t->probe, w, l, SITE_WV, s->xb, n, pos, s->v, L->wv.rows, dim);
        }
        const AttnJob job = {l, pos, n};
        parallel_spans(t, c->n_kv_heads, (long)n * (pos + n) * c->n_heads * hs, span_attention, &job);
        qacts_shape(&s->in_dim, n, dim);
        const InputStep wo_in = {NULL, 0};
        parallel_spans(t, n, n * per_token, span_inputs, &wo_in);
        linear_apply(s->xb2, &L->wo, s->xb, n, &s->in_dim, t->pool);
        if (t->probe) probe_linear(t->probe, w, l, SITE_WO, s->xb, n, pos, s->xb2, dim, dim);

        /* Feed-forward: x += w2 (silu(w1 xb) * w3 xb). w1 and w3 share one input. */
        qacts_shape(&s->in_dim, n, dim);
        const InputStep ffn_in = {L->rms_ffn, 1};
        parallel_spans(t, n, n * per_token, span_inputs, &ffn_in);
        float *gate_up[2] = {s->hb, s->hb2};
        const Linear *w13[2] = {&L->w1, &L->w3};
        linears_apply(gate_up, w13, 2, s->xb, n, &s->in_dim, t->pool);
        if (t->probe) {
            probe_linear(t->probe, w, l, SITE_W1, s->xb, n, pos, s->hb, hid, dim);
            probe_linear(t->probe, w, l, SITE_W3, s->xb, n, pos, s->hb2, hid, dim);
        }
        parallel_spans(t, n * hid, (long)n * hid * 16, span_swiglu, NULL);
        qacts_shape(&s->in_hidden, n, hid);
        parallel_spans(t, n, (long)n * hid * 8, span_hidden_inputs, NULL);
        linear_apply(s->xb2, &L->w2, s->hb, n, &s->in_hidden, t->pool);
        if (t->probe) probe_linear(t->probe, w, l, SITE_W2, s->hb, n, pos, s->xb2, dim, hid);
    }
    for (size_t i = 0; i < (size_t)n * dim; i++) s->x[i] += s->xb2[i];
}

/* logits = classifier(rmsnorm(x)) for n rows of x. */
static void classify(Transformer *t, float *x, int n, float *logits) {
    const int dim = t->cfg.dim;
    for (int i = 0; i < n; i++) rmsnorm(x + (size_t)i * dim, x + (size_t)i * dim, t->w->rms_final, dim);
    qacts_set(&t->s.in_cls, x, n, dim, (size_t)dim, &t->quant);
    linear_apply(logits, &t->w->cls, x, n, &t->s.in_cls, t->pool);
}

float *transformer_run(Transformer *t, const int *tokens, int n, int pos, float *all_logits) {
    const int dim = t->cfg.dim, vocab = t->cfg.vocab_size;
    assert(n >= 1 && pos >= 0 && pos + n <= t->n_ctx);
    for (int done = 0; done < n;) {
        const int m = n - done < CHUNK ? n - done : CHUNK;
        run_chunk(t, tokens + done, m, pos + done);
        if (all_logits)
            classify(t, t->s.x, m, all_logits + (size_t)done * vocab);
        else if (done + m == n) /* only the last token's logits are wanted */
            classify(t, t->s.x + (size_t)(m - 1) * dim, 1, t->s.logits);
        done += m;
    }
    return all_logits ? all_logits + (size_t)(n - 1) * vocab : t->s.logits;
}

float *transformer_forward(Transformer *t, int token, int pos) {
    return transformer_run(t, &token, 1, pos, NULL);
}

/* ------------------------------------------------------------------ construction */

static void *alloc_floats(size_t n, int *failed) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *failed = 1;
    return p;
}

Transformer *transformer_new(const ModelWeights *w, ThreadPool *pool, int n_ctx, char *err,
                             size_t errlen) {
    Transformer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const ModelConfig *c = &w->cfg;
    const QuantConfig *q = &w->quant;
    assert(n_ctx >= 1 && n_ctx <= c->seq_len);
    t->n_ctx = n_ctx;
    t->cfg = *c;
    t->quant = *q;
    t->w = w;
    t->pool = pool;
    t->n_threads = pool ? threadpool_size(pool) : 1;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, seq = (size_t)n_ctx,
                 kv_dim = (size_t)config_kv_dim(c), hs = (size_t)config_head_size(c), B = CHUNK;
    const int rows = CHUNK * (c->n_heads / c->n_kv_heads); /* attention rows per kv head */
    int failed = kv_init(&t->kv, c, q, n_ctx) != 0;

    RunState *s = &t->s;
    s->x = alloc_floats(B * dim, &failed);
    s->xb = alloc_floats(B * dim, &failed);
    s->xb2 = alloc_floats(B * dim, &failed);
    s->hb = alloc_floats(B * hid, &failed);
    s->hb2 = alloc_floats(B * hid, &failed);
    s->q = alloc_floats(B * dim, &failed);
    s->k = alloc_floats(B * kv_dim, &failed);
    s->v = alloc_floats(B * kv_dim, &failed);
    s->logits = alloc_floats(B * (size_t)c->vocab_size, &failed);
    failed |= qacts_init(&s->in_dim, q->acts, q->weights, CHUNK, c->dim, q->group) ||
              qacts_init(&s->in_hidden, q->acts, q->weights, CHUNK, c->hidden_dim, q->group) ||
              qacts_init(&s->in_cls, q->cls, q->cls, CHUNK, c->dim, q->group);
    t->attn = calloc((size_t)t->n_threads, sizeof *t->attn);
    failed |= !t->attn;
    for (int i = 0; !failed && i < t->n_threads; i++) {
        AttnScratch *a = &t->attn[i];
        failed |= qacts_init(&a->q, q->acts, q->kv, rows, (int)hs, q->group) ||
                  qacts_init(&a->p, q->probs, q->kv, rows, n_ctx, q->group) ||
                  (t->kv.v_shift && r4_acts_alloc(&a->p_sv, rows, n_ctx, q->group)) ||
                  r4_acts_alloc(&a->kv, 1, (int)hs, q->group);
        a->att = alloc_floats((size_t)rows * seq, &failed);
        a->pf = alloc_floats((size_t)rows * seq, &failed);
        a->out = alloc_floats((size_t)rows * hs, &failed);
    }
    t->rope_cos = alloc_floats(seq * hs / 2, &failed);
    t->rope_sin = alloc_floats(seq * hs / 2, &failed);
    if (failed) {
        snprintf(err, errlen, "out of memory for activations and a KV cache of %d positions", n_ctx);
        transformer_free(t);
        return NULL;
    }
    /* RoPE: pair (2i, 2i+1) of every head turns by pos / 10000^(2i / hs). Computed once in
     * double precision and rounded, so each angle is as exact as float32 allows. */
    for (size_t pos = 0; pos < seq; pos++) {
        for (size_t i = 0; i < hs / 2; i++) {
            const double angle = (double)pos * (1.0 / pow(10000.0, (double)(2 * i) / (double)hs));
            t->rope_cos[pos * hs / 2 + i] = (float)cos(angle);
            t->rope_sin[pos * hs / 2 + i] = (float)sin(angle);
        }
    }
    return t;
}

void transformer_free(Transformer *t) {
    if (!t) return;
    kv_free(&t->kv, &t->cfg);
    RunState *s = &t->s;
    free(s->x), free(s->xb), free(s->xb2), free(s->hb), free(s->hb2), free(s->q), free(s->k),
        free(s->v), free(s->logits);
    qacts_free(&s->in_dim), qacts_free(&s->in_hidden), qacts_free(&s->in_cls);
    for (int i = 0; t->attn && i < t->n_threads; i++) {
        AttnScratch *a = &t->attn[i];
        qacts_free(&a->q), qacts_free(&a->p);
        r4_acts_free(&a->p_sv), r4_acts_free(&a->kv);
        free(a->att), free(a->pf), free(a->out);
    }
    free(t->attn);
    free(t->rope_cos), free(t->rope_sin);
    free(t);
}

void transformer_set_probe(Transformer *t, Probe *p) {
    assert(!p || t->n_threads == 1); /* the probe's sums are not shared between threads */
    t->probe = p;
}

const ModelConfig *transformer_config(const Transformer *t) { return &t->cfg; }

int transformer_context(const Transformer *t) { return t->n_ctx; }

/* ------------------------------------------------------------------ memory accounting */

size_t kv_cache_bytes(const ModelConfig *c, const QuantConfig *q, int seq) {
    const size_t heads = (size_t)c->n_layers * c->n_kv_heads;
    const int hs = config_head_size(c);
    if (q->kv == QUANT_F32) return 2 * heads * seq * hs * sizeof(float);
    const Storage ks = storage_for(q->kv, q->acts), vs = storage_for(q->kv, q->probs);
    const int sdr = q->kv == QUANT_SDR, v_groups = (hs + q->group - 1) / q->group;
    const size_t int_k = (size_t)seq * hs + (size_t)seq * sizeof(float);
    const size_t int_vt = (size_t)hs * seq + (size_t)hs * sizeof(float);
    const size_t k = ks == STORE_INT ? int_k : r4_bytes_for(seq, hs, q->group, sdr);
    const size_t vt = vs == STORE_INT ? int_vt : r4_bytes_for(hs, seq, q->group, 0);
    const size_t v_shifts = vs == STORE_R4 && sdr ? (size_t)seq * ((v_groups + 1) / 2) : 0;
    return heads * (k + vt + (size_t)seq * sizeof(float) + v_shifts);
}
