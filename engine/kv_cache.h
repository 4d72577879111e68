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
 * position, so they are kept beside V^T, one 4-bit shift per position and group of G
 * dimensions, and applied to the probability codes (engine/attention.c).
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
    uint8_t *v_shift;             /* 4-bit values: [n_heads][n_ctx][v_shift_bytes], two per byte */
    int v_groups, v_shift_bytes;  /* groups of G value dimensions; bytes of their shifts */
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

/* The byte holding the 4-bit shift of value group j at position t of head i (the low
 * nibble for even j), and that shift. */
static inline uint8_t *kv_cache_v_shift_byte(const KVCache *kv, int i, int t, int j) {
    return kv->v_shift + ((size_t)i * kv->n_ctx + t) * kv->v_shift_bytes + j / 2;
}

static inline int kv_cache_v_shift(const KVCache *kv, int i, int t, int j) {
    const uint8_t b = *kv_cache_v_shift_byte(kv, i, t, j);
    return j % 2 ? b >> 4 : b & 15;
}

#endif
