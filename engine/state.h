/*
 * engine/state.h - what a Transformer holds: the weights it runs, the activations of a
 * chunk of tokens, the KV cache and per-thread scratch. Built by engine/transformer.c,
 * used by the forward pass (engine/forward.c); nothing outside engine/ sees it.
 */
#ifndef ENGINE_STATE_H
#define ENGINE_STATE_H

#include "engine/attention.h"
#include "engine/kv_cache.h"
#include "engine/linear.h"

/* Tokens processed together by one pass through the layers (a prompt is cut into chunks
 * of this many): every weight block is unpacked once per chunk, not once per token. */
enum { CHUNK = 64 };

/* The activations of a chunk of up to CHUNK tokens, row t for token t. */
typedef struct {
    float *x;          /* [CHUNK][dim] the residual stream */
    float *xb, *xb2;   /* [CHUNK][dim] a block's input (after RMSNorm) and its output */
    float *q, *k, *v;  /* [CHUNK][dim], [CHUNK][kv_dim] x2: queries, keys, values */
    float *hb, *hb2;   /* [CHUNK][hidden_dim] w1 xb (then the gated activation), w3 xb */
    float *logits;     /* [CHUNK][vocab_size] */
    QActs in_dim, in_hidden, in_cls; /* the matmuls' inputs, quantized */
} RunState;

struct Transformer { /* the type of engine/transformer.h */
    ModelConfig cfg;
    QuantConfig quant;
    const ModelWeights *w;
    ThreadPool *pool;           /* may be NULL: one thread */
    int n_ctx;                  /* positions the KV cache holds */
    KVCache kv;
    RunState s;
    AttnScratch *attn;          /* one per thread */
    float *rope_cos, *rope_sin; /* [n_ctx][head_size / 2] */
    char error[160];            /* why the last run failed */
};

#endif
