/*
 * engine/transformer.c - the LLaMA-2 forward pass, one token at a time.
 *
 * Shapes (head_size = dim / n_heads, kv_dim = n_kv_heads * head_size):
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
 */
#include "engine/transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/floatops.h"
#include "kernels/matmul_f32.h"

/* Scratch buffers for one position, reused by every layer ("the wave of activations"). */
typedef struct {
    float *x;      /* [dim] residual stream */
    float *xb;     /* [dim] normalized input of a branch, then attention output */
    float *xb2;    /* [dim] branch output before the residual add */
    float *hb;     /* [hidden_dim] w1 xb, then the gated activation */
    float *hb2;    /* [hidden_dim] w3 xb */
    float *q;      /* [dim] queries of all heads */
    float *att;    /* [n_heads][seq_len] attention scores, then probabilities */
    float *logits; /* [vocab_size] */
} RunState;

struct Transformer {
    ModelConfig cfg;
    const Checkpoint *ck;
    RunState s;
    float *key_cache;   /* [n_layers][seq_len][kv_dim] */
    float *value_cache; /* [n_layers][seq_len][kv_dim] */
    float *rope_cos;    /* [seq_len][head_size / 2] */
    float *rope_sin;
};

static void *alloc_floats(size_t n, int *failed) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *failed = 1;
    return p;
}

Transformer *transformer_new(const Checkpoint *ck, char *err, size_t errlen) {
    Transformer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const ModelConfig *c = &ck->cfg;
    t->cfg = *c;
    t->ck = ck;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, seq = (size_t)c->seq_len,
                 kv = (size_t)config_kv_dim(c), hs = (size_t)config_head_size(c);
    int failed = 0;
    RunState *s = &t->s;
    s->x = alloc_floats(dim, &failed);
    s->xb = alloc_floats(dim, &failed);
    s->xb2 = alloc_floats(dim, &failed);
    s->hb = alloc_floats(hid, &failed);
    s->hb2 = alloc_floats(hid, &failed);
    s->q = alloc_floats(dim, &failed);
    s->att = alloc_floats((size_t)c->n_heads * seq, &failed);
    s->logits = alloc_floats((size_t)c->vocab_size, &failed);
    t->key_cache = alloc_floats((size_t)c->n_layers * seq * kv, &failed);
    t->value_cache = alloc_floats((size_t)c->n_layers * seq * kv, &failed);
    t->rope_cos = alloc_floats(seq * hs / 2, &failed);
    t->rope_sin = alloc_floats(seq * hs / 2, &failed);
    if (failed) {
        snprintf(err, errlen, "out of memory for activations and KV cache (seq_len %d)",
                 c->seq_len);
        transformer_free(t);
        return NULL;
    }
    /* RoPE: pair (2i, 2i+1) of every head turns by pos * 10000^(-2i / head_size). Computed
     * once in double precision and rounded, so the angle is exact to float32 precision. */
    for (size_t pos = 0; pos < seq; pos++) {
        for (size_t i = 0; i < hs / 2; i++) {
            double angle = (double)pos * pow(10000.0, -(double)(2 * i) / (double)hs);
            t->rope_cos[pos * hs / 2 + i] = (float)cos(angle);
            t->rope_sin[pos * hs / 2 + i] = (float)sin(angle);
        }
    }
    return t;
}

void transformer_free(Transformer *t) {
    if (!t) return;
    RunState *s = &t->s;
    free(s->x), free(s->xb), free(s->xb2), free(s->hb), free(s->hb2), free(s->q), free(s->att),
        free(s->logits);
    free(t->key_cache), free(t->value_cache), free(t->rope_cos), free(t->rope_sin);
    free(t);
}

const ModelConfig *transformer_config(const Transformer *t) { return &t->cfg; }

/* ------------------------------------------------------------------ the forward pass */

float *transformer_forward(Transformer *t, int token, int pos) {
    const ModelConfig *c = &t->cfg;
    const Checkpoint *w = t->ck;
    RunState *s = &t->s;
    const int dim = c->dim, hid = c->hidden_dim, hs = config_head_size(c),
              kv_dim = config_kv_dim(c), heads_per_kv = c->n_heads / c->n_kv_heads;
    const float *cos_pos = t->rope_cos + (size_t)pos * hs / 2,
                *sin_pos = t->rope_sin + (size_t)pos * hs / 2;
    float *x = s->x;

    memcpy(x, w->token_embedding + (size_t)token * dim, (size_t)dim * sizeof *x);

    for (int l = 0; l < c->n_layers; l++) {
        const size_t L = (size_t)l;
        /* Attention: k and v of this position go straight into the cache. */
        float *key_cache = t->key_cache + L * c->seq_len * kv_dim;
        float *value_cache = t->value_cache + L * c->seq_len * kv_dim;
        float *k = key_cache + (size_t)pos * kv_dim, *v = value_cache + (size_t)pos * kv_dim;

        rmsnorm(s->xb, x, w->rms_att + L * dim, dim);
        matmul_f32(s->q, w->wq + L * dim * dim, s->xb, dim, dim);
        matmul_f32(k, w->wk + L * kv_dim * dim, s->xb, kv_dim, dim);
        matmul_f32(v, w->wv + L * kv_dim * dim, s->xb, kv_dim, dim);
        rope_rotate(s->q, c->n_heads, hs, cos_pos, sin_pos);
        rope_rotate(k, c->n_kv_heads, hs, cos_pos, sin_pos);

        const float inv_sqrt_hs = 1.0f / sqrtf((float)hs);
        for (int h = 0; h < c->n_heads; h++) {
            const float *qh = s->q + (size_t)h * hs;
            const size_t kv_off = (size_t)(h / heads_per_kv) * hs;
            float *att = s->att + (size_t)h * c->seq_len;
            for (int p = 0; p <= pos; p++) {
                const float *kp = key_cache + (size_t)p * kv_dim + kv_off;
                float score = 0.0f;
                for (int i = 0; i < hs; i++) score += qh[i] * kp[i];
                att[p] = score * inv_sqrt_hs;
            }
            softmax(att, pos + 1);
            float *out = s->xb + (size_t)h * hs;
            memset(out, 0, (size_t)hs * sizeof *out);
            for (int p = 0; p <= pos; p++) {
                const float *vp = value_cache + (size_t)p * kv_dim + kv_off;
                for (int i = 0; i < hs; i++) out[i] += att[p] * vp[i];
            }
        }
        matmul_f32(s->xb2, w->wo + L * dim * dim, s->xb, dim, dim);
        for (int i = 0; i < dim; i++) x[i] += s->xb2[i];

        /* Feed-forward: x += w2 (silu(w1 xb) * w3 xb). */
        rmsnorm(s->xb, x, w->rms_ffn + L * dim, dim);
        matmul_f32(s->hb, w->w1 + L * hid * dim, s->xb, hid, dim);
        matmul_f32(s->hb2, w->w3 + L * hid * dim, s->xb, hid, dim);
        swiglu(s->hb, s->hb2, hid);
        matmul_f32(s->xb2, w->w2 + L * dim * hid, s->hb, dim, hid);
        for (int i = 0; i < dim; i++) x[i] += s->xb2[i];
    }

    rmsnorm(x, x, w->rms_final, dim);
    matmul_f32(s->logits, w->wcls, x, c->vocab_size, dim);
    return s->logits;
}
