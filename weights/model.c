/*
 * weights/model.c - opening a model file of either format, and quantizing the weights of
 * a llama2.c checkpoint at load (rotating them first when the mode says `rot`).
 */
#include "weights/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weights/qrz.h"
#include "weights/rotate.h"

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

/* The float32 tensors a rotated model keeps (docs/SPEC.md section 7): its norm gains, all 1
 * now, and the rotated copies of the tensors that stay float32, in one allocation handed
 * out in turn. The others are rotated into `temp` and quantized from it; temp and the
 * rotation's scratch serve tensor after tensor. */
typedef struct {
    float *next, *end;
    float *temp;
    size_t temp_size;
    RotateScratch scratch;
} Kept;

static size_t kept_floats(const ModelConfig *c, const QuantConfig *q) {
    const size_t table = (size_t)c->vocab_size * c->dim;
    return (size_t)c->n_layers * c->dim + (q->embedding == QUANT_F32 ? table : 0) + (q->cls == QUANT_F32 ? table : 0) +
           (q->weights == QUANT_F32 ? (size_t)config_linear_params(c) : 0);
}

/* The gain of the RMSNorm whose output a tensor reads, in the checkpoint (NULL: none). */
static const float *checkpoint_gain(const Checkpoint *ck, const Rotation *rot) {
    const size_t at = (size_t)rot->gain_row * ck->cfg.dim;
    switch (rot->gain_role) {
    case QRZ_ROLE_RMS_ATT: return ck->rms_att + at;
    case QRZ_ROLE_RMS_FFN: return ck->rms_ffn + at;
    case QRZ_ROLE_RMS_FINAL: return ck->rms_final;
    default: return NULL;
    }
}

/* The tensor of a .qrz role as the mode runs it, from the checkpoint's float32 tensor w:
 * quantized (or kept float32) as kind says, after rotating it when the mode rotates. */
static int load_tensor(ModelWeights *m, Linear *l, int role, QuantKind kind, QuantKind partner, const float *w,
                       const QuantConfig *q, Kept *kept, ThreadPool *pool) {
    const Rotation rot = rotation_of(&m->cfg, role);
    if (!q->rotate) return linear_quantize(l, kind, partner, w, rot.rows, rot.cols, q, pool);
    const size_t n = (size_t)rot.rows * rot.cols;
    const int keep = storage_for(kind, partner) == STORE_F32;
    if (keep && (size_t)(kept->end - kept->next) < n) return -1;
    if (!keep && kept->temp_size < n) {
        free(kept->temp);
        kept->temp_size = (kept->temp = malloc(n * sizeof *kept->temp)) ? n : 0;
        if (!kept->temp) return -1;
    }
    float *rotated = keep ? kept->next : kept->temp;
    int rc = rotate_rows(rotated, w, rot.rows, &rot, checkpoint_gain(&m->ck, &rot), &kept->scratch, pool);
    if (rc == 0) rc = linear_quantize(l, kind, partner, rotated, rot.rows, rot.cols, q, pool);
    if (keep) kept->next += n;
    return rc;
}

static int load_tensors(ModelWeights *m, const QuantConfig *q, Kept *kept, ThreadPool *pool) {
    const Checkpoint *ck = &m->ck;
    const ModelConfig *c = &ck->cfg;
    const size_t dim = (size_t)c->dim, hid = (size_t)c->hidden_dim, kv = (size_t)config_kv_dim(c);
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return -1;
    float *ones = NULL; /* a rotated model's norm gains */
    if (q->rotate) {
        const size_t n = kept_floats(c, q);
        if (!(m->rotated = malloc(n * sizeof *m->rotated))) return -1;
        kept->next = ones = m->rotated;
        kept->end = m->rotated + n;
        for (size_t i = 0; i < (size_t)c->n_layers * dim; i++) ones[i] = 1.0f;
        kept->next += (size_t)c->n_layers * dim;
    }
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        const size_t i = (size_t)l;
        L->rms_att = q->rotate ? ones + i * dim : ck->rms_att + i * dim;
        L->rms_ffn = q->rotate ? ones + i * dim : ck->rms_ffn + i * dim;
        Linear *const lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};
        const float *const w[7] = {ck->wq + i * dim * dim, ck->wk + i * kv * dim, ck->wv + i * kv * dim,
                                   ck->wo + i * dim * dim, ck->w1 + i * hid * dim, ck->w2 + i * dim * hid,
                                   ck->w3 + i * hid * dim};
        for (int j = 0; j < 7; j++)
            if (load_tensor(m, lins[j], QRZ_ROLE_LINEAR + 7 * l + j, q->weights, q->acts, w[j], q, kept, pool) != 0)
                return -1;
    }
    m->rms_final = q->rotate ? ones : ck->rms_final;
    /* The embedding: float32, or INT8 rows (a lookup dequantizes one). */
    Linear emb = {0};
    if (load_tensor(m, &emb, QRZ_ROLE_EMBEDDING, q->embedding, q->embedding, ck->token_embedding, q, kept, pool) != 0)
        return -1;
    m->token_embedding = emb.f32;
    if (q->embedding == QUANT_INT) m->embedding_i8 = emb.i8;
    return load_tensor(m, &m->cls, QRZ_ROLE_CLASSIFIER, q->cls, q->cls, ck->wcls, q, kept, pool);
}

static int quantize_checkpoint(ModelWeights *m, const QuantConfig *q, ThreadPool *pool) {
    Kept kept = {NULL, NULL, NULL, 0, {NULL, 0}};
    const int rc = load_tensors(m, q, &kept, pool);
    free(kept.temp);
    rotate_scratch_free(&kept.scratch);
    return rc;
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
        free(m->rotated);
    }
    free(m->layers);
    checkpoint_close(&m->ck);
    unmap_file(m->qrz_map, m->qrz_size);
    memset(m, 0, sizeof *m);
}
