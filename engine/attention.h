/*
 * engine/attention.h - causal self-attention for a chunk of tokens, one key/value head at a
 * time (the query heads that share it under grouped-query attention come along).
 *
 * For query head h of the token at position p, over positions t = 0 .. p of the cache:
 *     score_t = q . k_t / sqrt(head_size),   prob = softmax(score),   out = sum_t prob_t v_t
 * In an integer mode (docs/SPEC.md section 4) both products are integer matmuls on the
 * quantized cache: the scores K q with the query quantized as an activation, and the
 * weighted values V^T p' with the probabilities, each value's scale folded in
 * (p'_t = prob_t Sv[t]), quantized as an activation over positions.
 */
#ifndef ENGINE_ATTENTION_H
#define ENGINE_ATTENTION_H

#include "engine/kv_cache.h"
#include "engine/linear.h"

/* A chunk of n tokens at positions pos .. pos + n - 1 (it attends to its own positions
 * too, so their keys and values must already be in the cache). */
typedef struct {
    int pos, n;
    int dim, head_size;
    int heads_per_kv;   /* query heads per key/value head */
    const float *q;     /* [n][dim] the queries, after RoPE */
    float *out;         /* [n][dim] each head's output, at its query head's place */
} AttnChunk;

/* One thread's scratch: the rows of one kv head for a chunk (rows = tokens x query heads
 * per kv head). */
typedef struct {
    QActs q;      /* the rows' queries, [rows][head_size] */
    QActs p;      /* their probabilities with Sv folded in, [rows][n_ctx] */
    R4Acts kv;    /* one key or value vector being stored, [head_size] */
    float *att;   /* [rows][n_ctx] scores, then probabilities */
    float *pf;    /* [rows][n_ctx] p' as floats */
    float *out;   /* [rows][head_size] */
} AttnScratch;

/* Allocates scratch for up to max_rows rows and the cache's context. Returns 0, or -1 when
 * out of memory (attn_scratch_free cleans up either way). */
int attn_scratch_init(AttnScratch *sc, const KVCache *kv, const QuantConfig *q, int max_rows);
void attn_scratch_free(AttnScratch *sc);

/* Attention of every query head that reads kv head h of layer l (cache head i = l *
 * n_kv_heads + h) for the chunk: writes those heads' outputs into ch->out. */
void attention_kv_head(const KVCache *kv, int i, int h, const AttnChunk *ch, AttnScratch *sc,
                       const QuantConfig *q);

#endif
