/*
 * engine/forward.c - the LLaMA-2 forward pass, fast: a chunk of tokens goes through each
 * layer together, so that every weight matrix is read once per chunk, and every step is
 * shared out among the threads. engine/reference.c computes the same numbers one token at
 * a time in plain loops; read it first. Below, the shapes of one token (a chunk of n has
 * n of each; head_size hs = dim / n_heads, kv_dim = n_kv_heads * hs):
 *
 *   x = embedding[token]                                   [dim]  the residual stream
 *   per layer:
 *     xb = rmsnorm(x)                                      [dim]
 *     q, k, v = wq xb, wk xb, wv xb                        [dim], [kv_dim], [kv_dim]
 *     rotate q and k (RoPE; with `rot`, then each head by Q_hs); append k, v to the cache
 *     xb = attention(q, cache): per head, softmax(q K^T / sqrt(hs)) V over positions 0..pos
 *     x += wo xb
 *     xb = rmsnorm(x)
 *     x += w2 (silu(w1 xb) * (w3 xb))                       via [hidden_dim]
 *                                        (with `rot`, w2's input by Q_hidden first)
 *   logits = classifier(rmsnorm(x))                         [vocab_size]
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/transformer.h"
#include "engine/state.h"
#include "kernels/floatops.h"
#include "kernels/hadamard.h"

/* Below this much work (about one multiply-add each) a step runs on the calling thread:
 * waking the others would cost more. Either way the results are identical. */
enum { PARALLEL_MIN_WORK = 16384 };

/* Runs fn over [0, n) on the pool when `work` pays for it, on this thread otherwise. */
static void parallel(Transformer *t, int n, long work, RangeTask fn, void *ctx) {
    threadpool_parallel_for(t->pool, n, work < PARALLEL_MIN_WORK ? n : threadpool_grain(t->pool, n, 4), fn, ctx);
}

/* The work of each step for n tokens, in about one multiply-add each, for parallel(). */
/* RMSNorm: a square, a sum, a scale and a gain per value. */
static long rmsnorm_work(const ModelConfig *c, int n) { return (long)n * c->dim * 4; }
/* RoPE on the query heads and the key, and quantizing key and value: ~8 per value. */
static long rope_and_cache_work(const ModelConfig *c, int n) {
    return (long)n * (c->n_heads + 2) * config_head_size(c) * 8;
}
/* Every query head's scores and weighted values over the positions so far. */
static long attention_work(const ModelConfig *c, int n, int pos) {
    return (long)n * (pos + n) * c->n_heads * config_head_size(c);
}
/* SwiGLU: an exp in double and a few products per hidden value. */
static long swiglu_work(const ModelConfig *c, int n) { return (long)n * c->hidden_dim * 16; }
/* Q_hidden on w2's input: log2(B) butterflies per hidden value. */
static long hadamard_work(const ModelConfig *c, int n) { return (long)n * c->hidden_dim * 10; }

/* ------------------------------------------------------------------ the steps */

typedef struct {
    float *o;
    const float *x, *gain;
    int dim;
    float eps;
} RmsnormRows;

static void rmsnorm_range(void *ctx, int thread, int i0, int i1) {
    (void)thread;
    const RmsnormRows *r = ctx;
    for (int i = i0; i < i1; i++) rmsnorm(r->o + (size_t)i * r->dim, r->x + (size_t)i * r->dim, r->gain, r->dim, r->eps);
}

/* o[i] = rmsnorm(x[i]) * gain for n rows of dim values. */
static void rmsnorm_rows(Transformer *t, float *o, const float *x, const float *gain, int n) {
    RmsnormRows rows = {o, x, gain, t->cfg.dim, t->cfg.norm_eps};
    parallel(t, n, rmsnorm_work(&t->cfg, n), rmsnorm_range, &rows);
}

/* x += y for the residual streams of n tokens. */
static void residual_add(Transformer *t, const float *y, int n) {
    float *x = t->s.x;
    for (size_t i = 0; i < (size_t)n * t->cfg.dim; i++) x[i] += y[i];
}

/* ys[i] = ws[i] x for count linears sharing the input x (n rows of ws[0]->cols values),
 * which is quantized once into qx. Returns 0, or -1 when x holds an infinity. */
static int linears(Transformer *t, float *const *ys, const Linear *const *ws, int count, const float *x,
                   int n, QActs *qx) {
    const int cols = ws[0]->cols;
    const int finite = qacts_set(qx, x, n, cols, (size_t)cols, &t->quant, t->pool) == 0;
    linears_apply(ys, ws, count, x, n, qx, t->pool);
    return finite ? 0 : -1;
}

typedef struct {
    Transformer *t;
    int layer, pos, n;
} Chunk;

/* RoPE on the chunk's queries and keys, then its keys and values into the cache; kv heads
 * [h0, h1) (each with the query heads that read it). */
static void rope_and_cache_heads(void *ctx, int thread, int h0, int h1) {
    const Chunk *ch = ctx;
    Transformer *t = ch->t;
    const ModelConfig *c = &t->cfg;
    const int hs = config_head_size(c), kv_dim = config_kv_dim(c), rep = c->n_heads / c->n_kv_heads;
    for (int h = h0; h < h1; h++) {
        for (int i = 0; i < ch->n; i++) {
            const int pos = ch->pos + i;
            const float *cos_p = t->rope_cos + (size_t)pos * hs / 2, *sin_p = t->rope_sin + (size_t)pos * hs / 2;
            float *q = t->s.q + (size_t)i * c->dim + (size_t)h * rep * hs;
            float *k = t->s.k + (size_t)i * kv_dim + (size_t)h * hs;
            rope_rotate(q, rep, hs, cos_p, sin_p);
            rope_rotate(k, 1, hs, cos_p, sin_p);
            if (t->quant.rotate) { /* docs/SPEC.md section 7, online: every query and key head by Q_hs */
                hadamard(q, rep, hs);
                hadamard(k, 1, hs);
            }
            kv_cache_store(&t->kv, ch->layer * c->n_kv_heads + h, pos, k, t->s.v + (size_t)i * kv_dim + (size_t)h * hs,
                           &t->attn[thread].kv);
        }
    }
}

static void attention_heads(void *ctx, int thread, int h0, int h1) {
    const Chunk *ch = ctx;
    Transformer *t = ch->t;
    const ModelConfig *c = &t->cfg;
    const AttnChunk a = {ch->pos, ch->n, c->dim, config_head_size(c), c->n_heads / c->n_kv_heads, t->s.q, t->s.xb};
    for (int h = h0; h < h1; h++)
        attention_kv_head(&t->kv, ch->layer * c->n_kv_heads + h, h, &a, &t->attn[thread], &t->quant);
}

static void swiglu_range(void *ctx, int thread, int i0, int i1) {
    (void)thread;
    RunState *s = ctx;
    swiglu(s->hb + i0, s->hb2 + i0, i1 - i0);
}

/* w2's inputs of tokens [i0, i1) by Q_hidden (docs/SPEC.md section 7, online). */
static void hadamard_range(void *ctx, int thread, int i0, int i1) {
    (void)thread;
    Transformer *t = ctx;
    const int hid = t->cfg.hidden_dim;
    hadamard(t->s.hb + (size_t)i0 * hid, i1 - i0, hid);
}

/* ------------------------------------------------------------------ the forward pass */

/* NaN and infinity have all exponent bits set. all_finite runs on the residual stream
 * after every layer and on every token's logits (32000 for Llama 2's vocabulary; a scalar
 * loop over them was 1.6% of stories15M's decoding), so it is written for compilers to
 * vectorize even at -O2 for a plain x86-64: blocks of 8 with a fixed inner count, and an
 * OR of comparisons, which SSE2 has (an unsigned minimum it has not). */
int all_finite(const float *x, size_t n) {
    uint32_t bad = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint32_t block[8];
        memcpy(block, x + i, sizeof block);
        for (int j = 0; j < 8; j++) bad |= (block[j] & 0x7f800000u) == 0x7f800000u;
    }
    for (; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

/* The attention block of layer l for the chunk's n tokens at positions pos ..:
 * wo attention(rmsnorm(x)), returned in s->xb2. Sets *bad when an input was not finite. */
static const float *attention_block(Transformer *t, int l, int pos, int n, int *bad) {
    const LayerWeights *L = &t->w->layers[l];
    RunState *s = &t->s;
    Chunk chunk = {t, l, pos, n};
    rmsnorm_rows(t, s->xb, s->x, L->rms_att, n);
    *bad |= linears(t, (float *[]){s->q, s->k, s->v}, (const Linear *[]){&L->wq, &L->wk, &L->wv}, 3, s->xb, n,
                    &s->in_dim);
    parallel(t, t->cfg.n_kv_heads, rope_and_cache_work(&t->cfg, n), rope_and_cache_heads, &chunk);
    parallel(t, t->cfg.n_kv_heads, attention_work(&t->cfg, n, pos), attention_heads, &chunk);
    *bad |= linears(t, &s->xb2, (const Linear *[]){&L->wo}, 1, s->xb, n, &s->in_dim);
    return s->xb2;
}

/* The feed-forward block of layer l: w2 (silu(w1 xb) * (w3 xb)) with xb = rmsnorm(x),
 * returned in s->xb2. Sets *bad when an input was not finite. */
static const float *ffn_block(Transformer *t, int l, int n, int *bad) {
    const LayerWeights *L = &t->w->layers[l];
    RunState *s = &t->s;
    rmsnorm_rows(t, s->xb, s->x, L->rms_ffn, n);
    *bad |= linears(t, (float *[]){s->hb, s->hb2}, (const Linear *[]){&L->w1, &L->w3}, 2, s->xb, n, &s->in_dim);
    parallel(t, n * t->cfg.hidden_dim, swiglu_work(&t->cfg, n), swiglu_range, s);
    if (t->quant.rotate) parallel(t, n, hadamard_work(&t->cfg, n), hadamard_range, t);
    *bad |= linears(t, &s->xb2, (const Linear *[]){&L->w2}, 1, s->hb, n, &s->in_hidden);
    return s->xb2;
}

/* n <= CHUNK tokens at positions pos .. pos + n - 1 through every layer, leaving their
 * residual streams in s->x. Returns -1, or the first layer whose activations were not
 * finite (huge weights can overflow float32). */
static int run_layers(Transformer *t, const int *tokens, int n, int pos) {
    RunState *s = &t->s;
    const int dim = t->cfg.dim;
    for (int i = 0; i < n; i++)
        model_embed(t->w, tokens[i], s->x + (size_t)i * dim);
    for (int l = 0; l < t->cfg.n_layers; l++) {
        int bad = 0;
        residual_add(t, attention_block(t, l, pos, n, &bad), n); /* x += attention(rmsnorm(x)) */
        residual_add(t, ffn_block(t, l, n, &bad), n);            /* x += ffn(rmsnorm(x)) */
        if (bad || !all_finite(s->x, (size_t)n * dim)) return l;
    }
    return -1;
}

/* logits = classifier(rmsnorm(x)) for n rows of x (normalized in place). Returns 0, or -1
 * when a logit is not finite. */
static int classify(Transformer *t, float *x, int n, float *logits) {
    rmsnorm_rows(t, x, x, t->w->rms_final, n);
    const int bad = linears(t, &logits, (const Linear *[]){&t->w->cls}, 1, x, n, &t->s.in_cls);
    return bad || !all_finite(logits, (size_t)n * t->cfg.vocab_size) ? -1 : 0;
}

float *transformer_run(Transformer *t, const int *tokens, int n, int pos, float *all_logits) {
    const int dim = t->cfg.dim, vocab = t->cfg.vocab_size;
    assert(n >= 1 && pos >= 0 && pos + n <= t->n_ctx);
    for (int i = 0; i < n; i++) assert(tokens[i] >= 0 && tokens[i] < vocab);
    for (int done = 0; done < n;) {
        const int m = n - done < CHUNK ? n - done : CHUNK, at = pos + done;
        const int layer = run_layers(t, tokens + done, m, at);
        if (layer >= 0) {
            snprintf(t->error, sizeof t->error, "non-finite activation at layer %d (positions %d..%d): "
                     "the weights are too large for float32", layer, at, at + m - 1);
            return NULL;
        }
        int bad = 0;
        if (all_logits)
            bad = classify(t, t->s.x, m, all_logits + (size_t)done * vocab);
        else if (done + m == n) /* only the last token's logits are wanted */
            bad = classify(t, t->s.x + (size_t)(m - 1) * dim, 1, t->s.logits);
        if (bad) {
            snprintf(t->error, sizeof t->error, "non-finite logits (positions %d..%d): the weights are "
                     "too large for float32", at, at + m - 1);
            return NULL;
        }
        done += m;
    }
    return all_logits ? all_logits + (size_t)(n - 1) * vocab : t->s.logits;
}

float *transformer_forward(Transformer *t, int token, int pos) {
    return transformer_run(t, &token, 1, pos, NULL);
}
