/*
 * engine/transformer.c - building a Transformer: its activations, KV cache, per-thread
 * scratch and RoPE tables, all allocated once so that no forward pass allocates.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/transformer.h"
#include "engine/state.h"
#include "kernels/floatops.h"

/* Zeroed floats starting on a cache line: the matmuls' threads write the 16 outputs of a
 * row block each, which then fill whole lines (when a row of outputs is a multiple of 16
 * floats, as in every model of the usual shapes) and share none with another thread. */
static void *alloc_floats(size_t n, int *failed) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) {
        *failed = 1;
        return NULL;
    }
    memset(p, 0, (n ? n : 1) * sizeof(float));
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
    t->cfg = *c;
    t->quant = *q;
    t->w = w;
    t->pool = pool;
    t->n_ctx = n_ctx;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, kv_dim = (size_t)config_kv_dim(c),
                 hs = (size_t)config_head_size(c), B = CHUNK;
    int failed = kv_cache_init(&t->kv, c, q, n_ctx) != 0;

    RunState *s = &t->s;
    s->x = alloc_floats(B * dim, &failed);
    s->xb = alloc_floats(B * dim, &failed);
    s->xb2 = alloc_floats(B * dim, &failed);
    s->q = alloc_floats(B * dim, &failed);
    s->k = alloc_floats(B * kv_dim, &failed);
    s->v = alloc_floats(B * kv_dim, &failed);
    s->hb = alloc_floats(B * hid, &failed);
    s->hb2 = alloc_floats(B * hid, &failed);
    s->logits = alloc_floats(B * (size_t)c->vocab_size, &failed);
    failed |= qacts_init(&s->in_dim, q->acts, q->weights, CHUNK, c->dim, q->group) ||
              qacts_init(&s->in_hidden, q->acts, q->weights, CHUNK, c->hidden_dim, q->group) ||
              qacts_init(&s->in_cls, q->cls, q->cls, CHUNK, c->dim, q->group);
    const int threads = threadpool_size(pool), rows = CHUNK * (c->n_heads / c->n_kv_heads);
    t->attn = calloc((size_t)threads, sizeof *t->attn);
    failed |= !t->attn;
    for (int i = 0; !failed && i < threads; i++) failed |= attn_scratch_init(&t->attn[i], &t->kv, q, rows) != 0;
    t->rope_cos = alloc_floats((size_t)n_ctx * hs / 2, &failed);
    t->rope_sin = alloc_floats((size_t)n_ctx * hs / 2, &failed);
    if (failed) {
        snprintf(err, errlen, "out of memory for activations and a KV cache of %d positions", n_ctx);
        transformer_free(t);
        return NULL;
    }
    double *inv_freq = malloc(hs / 2 * sizeof *inv_freq);
    if (!inv_freq) {
        snprintf(err, errlen, "out of memory");
        transformer_free(t);
        return NULL;
    }
    config_rope_frequencies(c, inv_freq);
    for (int pos = 0; pos < n_ctx; pos++)
        rope_angles(t->rope_cos + (size_t)pos * hs / 2, t->rope_sin + (size_t)pos * hs / 2, pos, (int)hs / 2, inv_freq);
    free(inv_freq);
    return t;
}

void transformer_free(Transformer *t) {
    if (!t) return;
    kv_cache_free(&t->kv);
    RunState *s = &t->s;
    free(s->x), free(s->xb), free(s->xb2), free(s->q), free(s->k), free(s->v), free(s->hb), free(s->hb2),
        free(s->logits);
    qacts_free(&s->in_dim), qacts_free(&s->in_hidden), qacts_free(&s->in_cls);
    for (int i = 0; t->attn && i < threadpool_size(t->pool); i++) attn_scratch_free(&t->attn[i]);
    free(t->attn);
    free(t->rope_cos), free(t->rope_sin);
    free(t);
}

const ModelConfig *transformer_config(const Transformer *t) { return &t->cfg; }

int transformer_context(const Transformer *t) { return t->n_ctx; }

const char *transformer_error(const Transformer *t) { return t->error; }
