/*
 * weights/weights.c - the bytes of a model's weights in each representation.
 */
#include "weights/weights.h"

static size_t linear_bytes(Storage st, QuantKind kind, int rows, int cols, int group) {
    switch (st) {
    case STORE_F32: return (size_t)rows * (size_t)cols * sizeof(float);
    case STORE_INT: return (size_t)rows * (size_t)cols + (size_t)rows * sizeof(float);
    case STORE_R4: return r4_bytes_for(rows, cols, group, kind == QUANT_SDR);
    }
    return 0;
}

size_t linear_weights_bytes(const ModelConfig *c, const QuantConfig *q) {
    const Storage st = storage_for(q->weights, q->acts);
    const int kv = config_kv_dim(c), G = q->group;
    const size_t per_layer = 2 * linear_bytes(st, q->weights, c->dim, c->dim, G) +
                             2 * linear_bytes(st, q->weights, kv, c->dim, G) +
                             2 * linear_bytes(st, q->weights, c->hidden_dim, c->dim, G) +
                             linear_bytes(st, q->weights, c->dim, c->hidden_dim, G);
    return (size_t)c->n_layers * per_layer;
}

size_t model_weights_bytes(const ModelWeights *m) {
    const ModelConfig *c = &m->cfg;
    const QuantConfig *q = &m->quant;
    const size_t emb = (size_t)c->vocab_size * c->dim * sizeof(float);
    const size_t norms = ((size_t)2 * c->n_layers + 1) * c->dim * sizeof(float);
    const size_t cls = m->cls.storage == STORE_F32 && m->cls.f32 == m->token_embedding
                           ? 0
                           : linear_bytes(m->cls.storage, q->cls, c->vocab_size, c->dim, q->group);
    return emb + norms + linear_weights_bytes(c, q) + cls;
}
