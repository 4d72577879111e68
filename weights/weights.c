/*
 * weights/weights.c - the bytes of a model's weights in each representation.
 */
#include "weights/weights.h"

#include <string.h>

void model_embed(const ModelWeights *m, int token, float *out) {
    const size_t dim = (size_t)m->cfg.dim;
    if (m->token_embedding) {
        memcpy(out, m->token_embedding + (size_t)token * dim, dim * sizeof *out);
        return;
    }
    const int8_t *q = m->embedding_i8.q + (size_t)token * dim;
    const float scale = m->embedding_i8.scales[token];
    for (size_t i = 0; i < dim; i++) out[i] = (float)q[i] * scale;
}

void linear_quantize_row(Linear *l, int r, const float *row, int group, int rounding) {
    if (l->storage == STORE_R4)
        r4_matrix_quantize_row(&l->r4, r, row, l->kind, rounding);
    else
        i8_matrix_quantize_row(&l->i8, r, row, l->kind, group, rounding);
}

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

/* Bytes of `rows` rows of the token embedding as loaded: float32, or INT8 with a scale. */
static size_t embedding_bytes(const ModelWeights *m, size_t rows) {
    return rows * (m->token_embedding ? m->cfg.dim * sizeof(float) : m->cfg.dim + sizeof(float));
}

/* Whether the classifier is the float32 embedding itself (a tied llama2.c checkpoint). */
static int classifier_is_embedding(const ModelWeights *m) {
    return m->cls.storage == STORE_F32 && m->cls.f32 == m->token_embedding;
}

size_t model_weights_bytes(const ModelWeights *m) {
    const ModelConfig *c = &m->cfg;
    const QuantConfig *q = &m->quant;
    const size_t norms = ((size_t)2 * c->n_layers + 1) * c->dim * sizeof(float);
    const size_t cls = classifier_is_embedding(m) ? 0 : linear_bytes(m->cls.storage, q->cls, c->vocab_size, c->dim, q->group);
    return embedding_bytes(m, (size_t)c->vocab_size) + norms + linear_weights_bytes(c, q) + cls;
}

size_t model_bytes_per_token(const ModelWeights *m) {
    const size_t all = model_weights_bytes(m);
    return classifier_is_embedding(m) ? all : all - embedding_bytes(m, (size_t)m->cfg.vocab_size) + embedding_bytes(m, 1);
}
