/*
 * engine/kv_cache.c - allocating, writing and sizing the key/value cache.
 */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/simd.h"

/* A cache matrix: rows x cols in the storage of `kind` meeting `partner`, zeroed, with
 * row scales 1 (K's are overwritten as keys arrive; V^T's stay 1) and, in 4-bit storage,
 * group shifts when with_shifts. */
static int cache_matrix(Linear *m, QuantKind kind, QuantKind partner, int rows, int cols, int group,
                        int with_shifts) {
    memset(m, 0, sizeof *m);
    m->storage = storage_for(kind, partner);
    m->kind = kind;
    m->rows = rows;
    m->cols = cols;
    if (m->storage == STORE_INT) {
        if (i8_matrix_alloc(&m->i8, rows, cols)) return -1;
        for (int r = 0; r < rows; r++) m->i8.scales[r] = 1.0f;
    } else {
        if (r4_matrix_alloc(&m->r4, rows, cols, group, with_shifts)) return -1;
        for (int r = 0; r < rows; r++) m->r4.scales[r] = 1.0f;
    }
    return 0;
}

static void cache_matrix_free(Linear *m) {
    if (m->storage == STORE_INT) i8_matrix_free(&m->i8);
    if (m->storage == STORE_R4) r4_matrix_free(&m->r4);
}

int kv_cache_init(KVCache *kv, const ModelConfig *c, const QuantConfig *q, int n_ctx) {
    memset(kv, 0, sizeof *kv);
    kv->key_kind = q->keys;
    kv->value_kind = q->values;
    kv->n_ctx = n_ctx;
    kv->head_size = config_head_size(c);
    kv->group = q->group;
    kv->rounding = q->rounding;
    kv->n_heads = c->n_layers * c->n_kv_heads;
    const size_t per_head = (size_t)n_ctx * kv->head_size;
    if (kv->key_kind == QUANT_F32) {
        kv->k_f32 = calloc((size_t)kv->n_heads * per_head, sizeof(float));
        kv->v_f32 = calloc((size_t)kv->n_heads * per_head, sizeof(float));
        return kv->k_f32 && kv->v_f32 ? 0 : -1;
    }
    kv->keys = calloc((size_t)kv->n_heads, sizeof *kv->keys);
    kv->values_t = calloc((size_t)kv->n_heads, sizeof *kv->values_t);
    kv->v_scale = calloc((size_t)kv->n_heads * n_ctx, sizeof(float));
    if (!kv->keys || !kv->values_t || !kv->v_scale) return -1;
    for (int i = 0; i < kv->n_heads; i++) {
        /* calloc left storage = STORE_F32 (0): a failed init frees only what exists */
        if (cache_matrix(&kv->keys[i], q->keys, q->acts, n_ctx, kv->head_size, q->group, q->keys == QUANT_SDR) ||
            cache_matrix(&kv->values_t[i], q->values, q->probs, kv->head_size, n_ctx, q->group, 0))
            return -1;
    }
    if (kv->values_t[0].storage == STORE_R4) {
        kv->v_groups = (kv->head_size + q->group - 1) / q->group;
        const int stride = kv->values_t[0].r4.cols_pad / 2;
        kv->v_shift = calloc((size_t)kv->n_heads * kv->v_groups * stride, 1);
        if (!kv->v_shift) return -1;
        for (int i = 0; i < kv->n_heads; i++) {
            kv->values_t[i].r4.col_shifts = kv->v_shift + (size_t)i * kv->v_groups * stride;
            kv->values_t[i].r4.col_shift_stride = stride;
        }
    }
    return 0;
}

void kv_cache_free(KVCache *kv) {
    for (int i = 0; kv->keys && i < kv->n_heads; i++) cache_matrix_free(&kv->keys[i]);
    for (int i = 0; kv->values_t && i < kv->n_heads; i++) cache_matrix_free(&kv->values_t[i]);
    free(kv->keys), free(kv->values_t);
    free(kv->k_f32), free(kv->v_f32), free(kv->v_scale), free(kv->v_shift);
    memset(kv, 0, sizeof *kv);
}


void kv_cache_store(KVCache *kv, int i, int pos, const float *key, const float *value, R4Acts *scratch) {
    const int hs = kv->head_size, G = kv->group;
    if (kv->key_kind == QUANT_F32) {
        const size_t at = ((size_t)i * kv->n_ctx + pos) * hs;
        memcpy(kv->k_f32 + at, key, (size_t)hs * sizeof(float));
        memcpy(kv->v_f32 + at, value, (size_t)hs * sizeof(float));
        return;
    }
    /* The key: row pos of K, with its scale as the row scale. */
    Linear *k = &kv->keys[i];
    if (k->storage == STORE_INT) {
        i8_matrix_quantize_row(&k->i8, pos, key, kv->key_kind, G, kv->rounding);
    } else {
        r4_acts_quantize(scratch, 0, key, kv->key_kind, QMAX_INT8, kv->rounding);
        r4_matrix_set_row(&k->r4, pos, scratch->codes, scratch->shifts, scratch->scale[0]);
    }
    /* The value: column pos of V^T; its scale (and its group shifts) kept per position. */
    Linear *vt = &kv->values_t[i];
    float *scale = &kv->v_scale[(size_t)i * kv->n_ctx + pos];
    if (vt->storage == STORE_INT) {
        *scale = kind_scale(value, hs, kv->value_kind, QMAX_INT8);
        for (int j = 0, d0 = 0; d0 < hs; j++, d0 += G) {
            int32_t v[QR_MAX_GROUP];
            const int len = qr_group_len(hs, G, j);
            quantize_group_values(value + d0, len, *scale, kv->value_kind, QMAX_INT8, kv->rounding, v);
            for (int d = 0; d < len; d++) vt->i8.q[(size_t)(d0 + d) * kv->n_ctx + pos] = (int8_t)v[d];
        }
        return;
    }
    r4_acts_quantize(scratch, 0, value, kv->value_kind, QMAX_INT8, kv->rounding);
    for (int d = 0; d < hs; d++) r4_set_code(&vt->r4, d, pos, scratch->codes[d]);
    for (int j = 0; j < kv->v_groups; j++) r4_set_col_shift(&vt->r4, j * G, pos, scratch->shifts[j]);
    *scale = scratch->scale[0];
}

size_t kv_cache_bytes(const ModelConfig *c, const QuantConfig *q, int n_ctx) {
    const size_t heads = (size_t)c->n_layers * c->n_kv_heads, seq = (size_t)n_ctx;
    const int hs = config_head_size(c);
    if (q->keys == QUANT_F32) return 2 * heads * seq * hs * sizeof(float);
    const Storage ks = storage_for(q->keys, q->acts), vs = storage_for(q->values, q->probs);
    const int v_groups = (hs + q->group - 1) / q->group;
    const size_t int_k = seq * hs + seq * sizeof(float);     /* codes, row scales */
    const size_t int_vt = (size_t)hs * seq + hs * sizeof(float);
    const size_t k = ks == STORE_INT ? int_k : r4_bytes_for(n_ctx, hs, q->group, q->keys == QUANT_SDR);
    const size_t vt = vs == STORE_INT ? int_vt : r4_bytes_for(hs, n_ctx, q->group, 0);
    const size_t v_shifts = vs == STORE_R4 ? (size_t)v_groups * ((seq + 7) / 8 * 4) : 0;
    return heads * (k + vt + seq * sizeof(float) + v_shifts);
}
