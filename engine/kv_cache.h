/*
 * engine/kv_cache.h - the key/value cache: for every layer and key/value head, the keys
 * (after RoPE) and values of positions 0 .. n_ctx - 1.
 *
 * In fp32 they are floats, [head][position][head_size]. In an integer mode each key and
 * value vector is quantized over its head (INT8 stage 1, one scale per position and head,
 * docs/SPEC.md section 1) and, unless its type is i8, razored in groups of G head
 * dimensions (section 2), to 4-bit codes (type r4) or 5-bit codes (r5, section 6). 5-bit
 * codes are kept as the integers they stand for, c << s <= 15 << 3 = 120: one byte. Per (layer, kv head) the cache holds two matrices laid out so that
 * attention is two matrix products (section 4):
 *
 *   K    rows = positions, cols = head dimensions: the scores of a query are K q;
 *   V^T  rows = head dimensions, cols = positions: the weighted values are V^T p'.
 *
 * K's row scales are the keys' stage-1 scales. V^T's row scales are 1: a value's scale
 * Sv[t] belongs to its position, a column, and is folded into the probabilities instead
 * (p'_t = p_t Sv[t]). Likewise a 4-bit value's group shifts sv[t, d/G] belong to a
 * position: they are V^T's column shifts (kernels/qformat.h), one 4-bit shift per group
 * of G dimensions and position, which the matrix products apply.
 */
#ifndef ENGINE_KV_CACHE_H
#define ENGINE_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "weights/model.h"

typedef struct {
    QuantKind key_kind, value_kind; /* how each is quantized; QUANT_F32: floats */
    int n_ctx, head_size, group, rounding;
    int n_heads;                  /* n_layers * n_kv_heads: head i = layer * n_kv_heads + h */
    float *k_f32, *v_f32;         /* fp32: [n_heads][n_ctx][head_size] */
    Linear *keys;                 /* [n_heads] K:   n_ctx x head_size */
    Linear *values_t;             /* [n_heads] V^T: head_size x n_ctx */
    float *v_scale;               /* [n_heads][n_ctx] Sv */
    uint8_t *v_shift;             /* 4-bit values: V^T's column shifts, [n_heads][v_groups][n_ctx / 2] */
    int v_groups;                 /* groups of G value dimensions */
} KVCache;

/* Allocates a cache of n_ctx positions for the model, quantized as q says (keys to meet
 * the queries' kind, values the probabilities'). Returns 0, or -1 when out of memory
 * (kv_cache_free cleans up either way). */
int kv_cache_init(KVCache *kv, const ModelConfig *c, const QuantConfig *q, int n_ctx);
void kv_cache_free(KVCache *kv);

/* Stores the key (after RoPE) and value of head i at position pos, quantizing them.
 * scratch holds one vector of head_size codes (r4_acts_alloc(scratch, 1, head_size, G)). */
void kv_cache_store(KVCache *kv, int i, int pos, const float *key, const float *value, R4Acts *scratch);

/* Bytes of a cache of n_ctx positions under configuration q (any, not only one built):
 * the memory figure -v and the benchmarks print. */
size_t kv_cache_bytes(const ModelConfig *c, const QuantConfig *q, int n_ctx);


#endif
