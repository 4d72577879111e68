/*
 * weights/model.c - opening a model file of either format, and quantizing the weights of
 * a llama2.c checkpoint at load.
 */
#include "weights/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weights/qrz.h"

/* ------------------------------------------------------------------ quantize at load */

typedef struct {
    Linear *lin;
    const float *w;
    int group, rounding;
} QuantizeJob;

/* Quantizes 16-row blocks [b0, b1): rows of one block share shift bytes in the 4-bit
 * format, so a whole block is one item of the parallel for. */
static void quantize_blocks(void *ctx, int thread, int b0, int b1) {
    (void)thread;
    const QuantizeJob *job = ctx;
    Linear *l = job->lin;
    for (int r = b0 * QR_BLOCK_ROWS; r < b1 * QR_BLOCK_ROWS && r < l->rows; r++) {
        linear_quantize_row(l, r, job->w + (size_t)r * l->cols, job->group, job->rounding);
    }
}

static int linear_quantize(Linear *l, QuantKind kind, QuantKind partner, const float *w, int rows,
                           int cols, const QuantConfig *q, ThreadPool *pool) {
    l->storage = storage_for(kind, partner);
    l->kind = kind;
    l->rows = rows;
    l->cols = cols;
    if (l->storage == STORE_F32) {
        l->f32 = w;
        return 0;
    }
    if (l->storage == STORE_INT ? i8_matrix_alloc(&l->i8, rows, cols)
                                : r4_matrix_alloc(&l->r4, rows, cols, q->group, kind == QUANT_SDR))
        return -1;
    QuantizeJob job = {l, w, q->group, q->rounding};
    const int blocks = (rows + QR_BLOCK_ROWS - 1) / QR_BLOCK_ROWS;
    threadpool_parallel_for(pool, blocks, threadpool_grain(pool, blocks, 4), quantize_blocks, &job);
    return 0;
}

static void linear_free(Linear *l) {
    if (l->storage == STORE_INT) i8_matrix_free(&l->i8);
    if (l->storage == STORE_R4) r4_matrix_free(&l->r4);
}

static int quantize_checkpoint(ModelWeights *m, const QuantConfig *q, ThreadPool *pool) {
    const Checkpoint *ck = &m->ck;
    const ModelConfig *c = &ck->cfg;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, kv = (size_t)config_kv_dim(c);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return -1;
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        const size_t i = (size_t)l;
        const QuantKind W = q->weights, A = q->acts;
        L->rms_att = ck->rms_att + i * dim;
        L->rms_ffn = ck->rms_ffn + i * dim;
        if (linear_quantize(&L->wq, W, A, ck->wq + i * dim * dim, c->dim, c->dim, q, pool) ||
            linear_quantize(&L->wk, W, A, ck->wk + i * kv * dim, (int)kv, c->dim, q, pool) ||
            linear_quantize(&L->wv, W, A, ck->wv + i * kv * dim, (int)kv, c->dim, q, pool) ||
            linear_quantize(&L->wo, W, A, ck->wo + i * dim * dim, c->dim, c->dim, q, pool) ||
            linear_quantize(&L->w1, W, A, ck->w1 + i * hid * dim, c->hidden_dim, c->dim, q, pool) ||
            linear_quantize(&L->w2, W, A, ck->w2 + i * dim * hid, c->dim, c->hidden_dim, q, pool) ||
            linear_quantize(&L->w3, W, A, ck->w3 + i * hid * dim, c->hidden_dim, c->dim, q, pool))
            return -1;
    }
    if (q->embedding == QUANT_INT) { /* INT8 rows; a lookup dequantizes one */
        Linear emb;
        if (linear_quantize(&emb, QUANT_INT, QUANT_INT, ck->token_embedding, c->vocab_size, c->dim, q, pool) != 0)
            return -1;
        m->embedding_i8 = emb.i8;
        m->token_embedding = NULL;
    }
    return linear_quantize(&m->cls, q->cls, q->cls, ck->wcls, c->vocab_size, c->dim, q, pool);
}

/* ------------------------------------------------------------------ open / close */

int model_is_qrz(const char *path) {
    char err[256];
    const int fd = open_regular_file(path, NULL, err, sizeof err);
    if (fd < 0) return 0; /* not readable, or not a file: model_open will say which */
    char magic[8];
    const int yes = read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
                    memcmp(magic, QRZ_MAGIC, sizeof magic) == 0;
    close(fd);
    return yes;
}

int model_open(ModelWeights *m, const char *path, const QuantConfig *q, ThreadPool *pool,
               char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (model_is_qrz(path)) return qrz_open(m, path, err, errlen);
    char why[256];
    if (quant_config_check(q, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    if (checkpoint_open(&m->ck, path, err, errlen) != 0) return -1;
    m->cfg = m->ck.cfg;
    m->quant = *q;
    m->token_embedding = m->ck.token_embedding;
    m->rms_final = m->ck.rms_final;
    m->bos_id = 1, m->eos_id = 2; /* llama2.c's */
    if (quantize_checkpoint(m, q, pool) != 0) {
        snprintf(err, errlen, "%s: out of memory for the quantized weights", path);
        model_close(m);
        return -1;
    }
    return 0;
}

void model_close(ModelWeights *m) {
    if (!m->qrz_map) { /* quantized at load: the matrices are ours */
        for (int l = 0; m->layers && l < m->cfg.n_layers; l++) {
            LayerWeights *L = &m->layers[l];
            linear_free(&L->wq), linear_free(&L->wk), linear_free(&L->wv), linear_free(&L->wo);
            linear_free(&L->w1), linear_free(&L->w2), linear_free(&L->w3);
        }
        linear_free(&m->cls);
        i8_matrix_free(&m->embedding_i8);
    }
    free(m->layers);
    checkpoint_close(&m->ck);
    unmap_file(m->qrz_map, m->qrz_size);
    memset(m, 0, sizeof *m);
}
