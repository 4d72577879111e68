/*
 * engine/reference.c - the reference forward pass: docs/SPEC.md, one token at a time.
 *
 * Read it as llama2.c's forward(): the same steps in the same order, with each matrix
 * product of the integer modes done as the spec says, by its plain definition:
 *   1. quantize the input vector (section 1: absmax scale, stage-1 integers), and razor
 *      it to 4-bit codes with one shift per group of G (section 2) in the 4-bit modes;
 *   2. take each weight row as stored (its codes, group shifts and scale);
 *   3. multiply codes as integers, shift once per group, sum exactly (qr_dot, section 3),
 *      and scale the sum once: y = ((float)acc * Sa) * Sw (qr_output).
 * Attention does the same with the query against each cached key, and with the
 * probabilities against the cached values (section 4). RMSNorm, RoPE, softmax and SwiGLU
 * stay float32 and are the very functions the fast path calls (kernels/floatops.h).
 *
 * Nothing here is fast: every product unpacks its weights again. Tests run it against
 * engine/forward.c on every golden model, mode, thread count and SIMD level.
 */
#include "engine/reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/floatops.h"
#include "kernels/simd.h"       /* dot_f32_scalar: the one order of float32 dot products */

/* A vector quantized as docs/SPEC.md sections 1-2 say: its integers (4-bit codes in
 * [-7, 7], 5-bit codes of the r5 cache in [-15, 15], or stage-1 codes when not razored),
 * one shift per group of G along it (0 when not razored), and one float scale. */
typedef struct {
    int32_t *code, *shift;
    float scale;
} QVec;

struct Reference {
    const ModelWeights *w;
    ModelConfig c;
    QuantConfig q;
    int n_ctx, hs, G;
    int pos;                   /* of the token being run */
    /* Activations of the current token, as in llama2.c. */
    float *x, *xb, *xb2;       /* [dim] residual stream, block input, block output */
    float *q_, *k, *v;         /* [dim], [kv_dim], [kv_dim] */
    float *hb, *hb2;           /* [hidden_dim] */
    float *att, *pf;           /* [n_ctx] attention probabilities; p' = p * Sv */
    float *rope_cos, *rope_sin;/* [hs / 2] this position's rotation */
    double *rope_freq;         /* [hs / 2] RoPE's frequencies (config_rope_frequencies) */
    float *logits;             /* [vocab_size] */
    /* The KV cache, [layer][kv head][position]: floats in fp32, else QVecs. */
    float *key_f32, *value_f32;          /* [..][hs] */
    int32_t *key_code, *value_code;      /* [..][hs] */
    int32_t *key_shift, *value_shift;    /* [..][groups of hs] */
    float *key_scale, *value_scale;      /* [..] */
    /* Scratch QVecs: an activation, a weight row, and a column of values. */
    QVec act, row;
    int32_t *column, *no_shifts;         /* [n_ctx] */
    Probe *probe;
};

/* ------------------------------------------------------------------ the quantized pieces */

/* Sections 1 and 2: x[0..n) as `kind` from a stage-1 base of qmax (127: weights and the
 * KV cache; 32767: activations). Stage 1 alone keeps the integers (shift 0); SDR razors
 * each group to 4-bit codes and a shift (SDR5: 5-bit codes, section 6); RTN4 rounds
 * straight to 4 bits (shift 0). */
static void quantize(QVec *v, const float *x, int n, QuantKind kind, int qmax, const QuantConfig *q) {
    v->scale = kind_scale(x, n, kind, qmax);
    for (int g = 0, start = 0; start < n; g++, start += q->group) {
        const int len = qr_group_len(n, q->group, g);
        if (kind == QUANT_INT) {
            for (int i = start; i < start + len; i++) v->code[i] = quantize_value(x[i], v->scale, qmax);
            v->shift[g] = 0;
        } else {
            int8_t codes[QR_MAX_GROUP];
            v->shift[g] = quantize_group(x + start, len, v->scale, kind, qmax, q->rounding, codes);
            for (int i = 0; i < len; i++) v->code[start + i] = codes[i];
        }
    }
}

/* Row r of a quantized weight matrix, as it is stored (kernels/qformat.h): INT8 rows
 * have no shifts; 4-bit rows have one per group (0 for RTN4). */
static void weight_row(QVec *v, const Linear *W, int r, int group) {
    for (int g = 0; g * group < W->cols; g++) v->shift[g] = W->storage == STORE_R4 ? r4_get_shift(&W->r4, r, g) : 0;
    for (int i = 0; i < W->cols; i++)
        v->code[i] = W->storage == STORE_R4 ? r4_get_code(&W->r4, r, i) : W->i8.q[(size_t)r * W->cols + i];
    v->scale = W->storage == STORE_R4 ? W->r4.scales[r] : W->i8.scales[r];
}

/* y = W x (section 3). The input is quantized as an activation of kind `act`; float32
 * weights take plain dot products. */
static void linear(Reference *r, int layer, Site site, float *y, const Linear *W, const float *x,
                   QuantKind act) {
    if (W->storage == STORE_F32) {
        for (int i = 0; i < W->rows; i++) y[i] = dot_f32_scalar(W->f32 + (size_t)i * W->cols, x, W->cols);
    } else {
        quantize(&r->act, x, W->cols, act, QMAX_INT16, &r->q);
        for (int i = 0; i < W->rows; i++) {
            weight_row(&r->row, W, i, r->G);
            const int64_t acc = qr_dot(r->act.code, r->act.shift, r->row.code, r->row.shift, W->cols, r->G);
            y[i] = qr_output(acc, r->act.scale, r->row.scale);
        }
    }
    if (r->probe && site < N_SITES) probe_linear(r->probe, r->w, layer, site, x, 1, r->pos, y, W->rows, W->cols);
}

/* The cached key or value of kv head h of layer l at position t. */
static size_t cache_at(const Reference *r, int l, int h, int t) {
    return ((size_t)l * r->c.n_kv_heads + h) * r->n_ctx + t;
}

static QVec cached(const Reference *r, int32_t *code, int32_t *shift, float *scale, size_t at) {
    const size_t groups = (size_t)(r->hs + r->G - 1) / r->G;
    return (QVec){code + at * r->hs, shift + at * groups, scale[at]};
}

/* ------------------------------------------------------------------ attention */

/* Query head h (reading kv head kvh) of layer l at position pos: out = its attention over
 * positions 0 .. pos. Keys and values are already in the cache. */
static void attention_head(Reference *r, int l, int h, int kvh, int pos, const float *qh, float *out) {
    const int hs = r->hs;
    const QuantConfig *q = &r->q;
    float *att = r->att;
    if (q->keys == QUANT_F32) { /* as llama2.c */
        for (int t = 0; t <= pos; t++) {
            const float *key = r->key_f32 + cache_at(r, l, kvh, t) * hs;
            float score = 0.0f;
            for (int d = 0; d < hs; d++) score += qh[d] * key[d];
            att[t] = score / sqrtf((float)hs);
        }
        softmax(att, pos + 1);
        memset(out, 0, (size_t)hs * sizeof *out);
        for (int t = 0; t <= pos; t++)
            for (int d = 0; d < hs; d++) out[d] += att[t] * r->value_f32[cache_at(r, l, kvh, t) * hs + d];
        if (r->probe) probe_values(r->probe, l, h, kvh, pos, att, NULL, out);
        return;
    }
    /* Scores (section 4): the query, an activation, against each cached key. */
    QVec query = r->act;
    quantize(&query, qh, hs, q->acts, QMAX_INT16, q);
    for (int t = 0; t <= pos; t++) {
        const QVec key = cached(r, r->key_code, r->key_shift, r->key_scale, cache_at(r, l, kvh, t));
        const int64_t acc = qr_dot(query.code, query.shift, key.code, key.shift, hs, r->G);
        att[t] = qr_output(acc, query.scale, key.scale) / sqrtf((float)hs);
    }
    if (r->probe) probe_scores(r->probe, l, h, kvh, pos, qh, att);
    softmax(att, pos + 1);

    /* Weighted values: each value's scale folded into its probability, p'_t = p_t Sv[t],
     * and p' quantized as an activation over positions (groups of G positions). */
    const float *v_scale = r->value_scale + cache_at(r, l, kvh, 0);
    for (int t = 0; t <= pos; t++) r->pf[t] = att[t] * v_scale[t];
    QVec p = r->row;
    quantize(&p, r->pf, pos + 1, q->probs, QMAX_INT16, q);
    for (int d = 0; d < hs; d++) {
        /* Dimension d of every cached value, as the integer it stands for: c << s, with
         * the shift of its own position and group (section 2's razored value). */
        for (int t = 0; t <= pos; t++) {
            const QVec value = cached(r, r->value_code, r->value_shift, r->value_scale, cache_at(r, l, kvh, t));
            r->column[t] = (int32_t)qr_shl(value.code[d], value.shift[d / r->G]);
        }
        const int64_t acc = qr_dot(p.code, p.shift, r->column, r->no_shifts, pos + 1, r->G);
        out[d] = qr_output(acc, p.scale, 1.0f); /* Sv is already in p' */
    }
    if (r->probe) probe_values(r->probe, l, h, kvh, pos, att, v_scale, out);
}

/* ------------------------------------------------------------------ the forward pass */

float *reference_forward(Reference *r, int token, int pos) {
    const ModelConfig *c = &r->c;
    const ModelWeights *w = r->w;
    const QuantConfig *q = &r->q;
    const int dim = c->dim, hs = r->hs, rep = c->n_heads / c->n_kv_heads;
    float *x = r->x;
    r->pos = pos;

    model_embed(w, token, x);
    rope_angles(r->rope_cos, r->rope_sin, pos, hs / 2, r->rope_freq);

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &w->layers[l];

        /* Attention: x += wo attention(rmsnorm(x)). */
        rmsnorm(r->xb, x, L->rms_att, dim, c->norm_eps);
        linear(r, l, SITE_WQ, r->q_, &L->wq, r->xb, q->acts);
        linear(r, l, SITE_WK, r->k, &L->wk, r->xb, q->acts);
        linear(r, l, SITE_WV, r->v, &L->wv, r->xb, q->acts);
        rope_rotate(r->q_, c->n_heads, hs, r->rope_cos, r->rope_sin);
        rope_rotate(r->k, c->n_kv_heads, hs, r->rope_cos, r->rope_sin);

        /* This position's key and value go into the cache, quantized per head from an
         * INT8 base (section 4). */
        for (int h = 0; h < c->n_kv_heads; h++) {
            const size_t at = cache_at(r, l, h, pos);
            const float *key = r->k + (size_t)h * hs, *value = r->v + (size_t)h * hs;
            if (q->keys == QUANT_F32) {
                memcpy(r->key_f32 + at * hs, key, (size_t)hs * sizeof *key);
                memcpy(r->value_f32 + at * hs, value, (size_t)hs * sizeof *value);
            } else {
                QVec k = cached(r, r->key_code, r->key_shift, r->key_scale, at);
                QVec v = cached(r, r->value_code, r->value_shift, r->value_scale, at);
                quantize(&k, key, hs, q->keys, QMAX_INT8, q);
                quantize(&v, value, hs, q->values, QMAX_INT8, q);
                r->key_scale[at] = k.scale, r->value_scale[at] = v.scale;
            }
            if (r->probe) probe_kv(r->probe, l, h, pos, key, value);
        }
        for (int h = 0; h < c->n_heads; h++)
            attention_head(r, l, h, h / rep, pos, r->q_ + (size_t)h * hs, r->xb + (size_t)h * hs);
        linear(r, l, SITE_WO, r->xb2, &L->wo, r->xb, q->acts);
        for (int i = 0; i < dim; i++) x[i] += r->xb2[i];

        /* Feed-forward: x += w2 (silu(w1 xb) * (w3 xb)) with xb = rmsnorm(x). */
        rmsnorm(r->xb, x, L->rms_ffn, dim, c->norm_eps);
        linear(r, l, SITE_W1, r->hb, &L->w1, r->xb, q->acts);
        linear(r, l, SITE_W3, r->hb2, &L->w3, r->xb, q->acts);
        swiglu(r->hb, r->hb2, c->hidden_dim);
        linear(r, l, SITE_W2, r->xb2, &L->w2, r->hb, q->acts);
        for (int i = 0; i < dim; i++) x[i] += r->xb2[i];
    }

    /* The classifier, quantized as --cls says. */
    rmsnorm(x, x, w->rms_final, dim, c->norm_eps);
    linear(r, -1, N_SITES, r->logits, &w->cls, x, q->cls);
    return r->logits;
}

/* ------------------------------------------------------------------ construction */

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
                 longest = dim > hid ? (dim > (size_t)n_ctx ? dim : (size_t)n_ctx) : (hid > (size_t)n_ctx ? hid : (size_t)n_ctx),
                 cache = (size_t)c->n_layers * c->n_kv_heads * n_ctx, groups = ((size_t)r->hs + r->G - 1) / r->G;
    int ok = (r->x = calloc(dim, sizeof(float))) && (r->xb = calloc(dim, sizeof(float))) &&
             (r->xb2 = calloc(dim, sizeof(float))) && (r->q_ = calloc(dim, sizeof(float))) &&
             (r->k = calloc(kv_dim, sizeof(float))) && (r->v = calloc(kv_dim, sizeof(float))) &&
             (r->hb = calloc(hid, sizeof(float))) && (r->hb2 = calloc(hid, sizeof(float))) &&
             (r->att = calloc((size_t)n_ctx, sizeof(float))) && (r->pf = calloc((size_t)n_ctx, sizeof(float))) &&
             (r->rope_cos = calloc(dim, sizeof(float))) && (r->rope_sin = calloc(dim, sizeof(float))) &&
             (r->rope_freq = calloc(dim, sizeof(double))) &&
             (r->logits = calloc((size_t)c->vocab_size, sizeof(float))) &&
             (r->act.code = calloc(longest, sizeof(int32_t))) && (r->act.shift = calloc(longest, sizeof(int32_t))) &&
             (r->row.code = calloc(longest, sizeof(int32_t))) && (r->row.shift = calloc(longest, sizeof(int32_t))) &&
             (r->column = calloc((size_t)n_ctx, sizeof(int32_t))) &&
             (r->no_shifts = calloc((size_t)n_ctx, sizeof(int32_t)));
    if (ok) config_rope_frequencies(c, r->rope_freq);
    if (ok && w->quant.keys == QUANT_F32)
        ok = (r->key_f32 = calloc(cache * r->hs, sizeof(float))) && (r->value_f32 = calloc(cache * r->hs, sizeof(float)));
    else if (ok)
        ok = (r->key_code = calloc(cache * r->hs, sizeof(int32_t))) &&
             (r->value_code = calloc(cache * r->hs, sizeof(int32_t))) &&
             (r->key_shift = calloc(cache * groups, sizeof(int32_t))) &&
             (r->value_shift = calloc(cache * groups, sizeof(int32_t))) &&
             (r->key_scale = calloc(cache, sizeof(float))) && (r->value_scale = calloc(cache, sizeof(float)));
    if (!ok) {
        snprintf(err, errlen, "out of memory for the reference forward pass (%d positions)", n_ctx);
        reference_free(r);
        return NULL;
    }
    return r;
}

void reference_free(Reference *r) {
    if (!r) return;
    free(r->x), free(r->xb), free(r->xb2), free(r->q_), free(r->k), free(r->v), free(r->hb), free(r->hb2);
    free(r->att), free(r->pf), free(r->rope_cos), free(r->rope_sin), free(r->rope_freq), free(r->logits);
    free(r->act.code), free(r->act.shift), free(r->row.code), free(r->row.shift), free(r->column), free(r->no_shifts);
    free(r->key_f32), free(r->value_f32), free(r->key_code), free(r->value_code);
    free(r->key_shift), free(r->value_shift), free(r->key_scale), free(r->value_scale);
    free(r);
}

void reference_set_probe(Reference *r, Probe *p) { r->probe = p; }
