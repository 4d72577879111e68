/*
 * weights/model.h - a model's weights in the form the engine runs them: float32, INT8, or
 * packed 4-bit, loaded from a llama2.c checkpoint (quantized at load, here) or from a .qrz
 * file (already quantized, memory-mapped by weights/qrz.c).
 */
#ifndef WEIGHTS_MODEL_H
#define WEIGHTS_MODEL_H

#include <stddef.h>

#include "kernels/quant.h"
#include "kernels/threadpool.h"
#include "weights/checkpoint.h"
#include "weights/quant_config.h"

/* ------------------------------------------------------------------ the weights */

/* One weight matrix [rows][cols] (rows = outputs). */
typedef struct {
    Storage storage;
    QuantKind kind;   /* how its values were quantized */
    int rows, cols;
    const float *f32; /* STORE_F32 */
    I8Matrix i8;      /* STORE_INT: INT8 codes, or 4-bit codes expanded to c << s */
    R4Matrix r4;      /* STORE_R4 */
} Linear;

typedef struct {
    const float *rms_att, *rms_ffn; /* [dim] */
    Linear wq, wk, wv, wo, w1, w2, w3;
} LayerWeights;

typedef struct {
    ModelConfig cfg;
    QuantConfig quant;
    const float *token_embedding; /* [vocab_size][dim], float32 in every mode */
    const float *rms_final;       /* [dim] */
    LayerWeights *layers;         /* [n_layers] */
    Linear cls;                   /* [vocab_size][dim] */
    /* Where the memory lives: a float checkpoint whose weights were quantized into
     * allocated matrices, or a .qrz mapping that every pointer points into. */
    Checkpoint ck;
    void *qrz_map;
    size_t qrz_size;
} ModelWeights;

/* Opens a model file of either format, told apart by content:
 *   - a .qrz file: its quantization is fixed; *q (if not NULL) receives it;
 *   - a llama2.c checkpoint: quantized at load as *q says (with the pool's threads).
 * Returns 0, or -1 with a message naming the file in err. */
int model_open(ModelWeights *m, const char *path, const QuantConfig *q, ThreadPool *pool,
               char *err, size_t errlen);
void model_close(ModelWeights *m);

/* 1 if the file at path starts like a .qrz file. */
int model_is_qrz(const char *path);

/* Bytes of the weights of a loaded model: everything (embedding and norms stay float32;
 * a float32 classifier may share the embedding's memory, as in llama2.c). */
size_t model_weights_bytes(const ModelWeights *m);

/* Bytes of the 7 block linears in any representation (not only the one loaded). */
size_t linear_weights_bytes(const ModelConfig *c, const QuantConfig *q);

#endif
