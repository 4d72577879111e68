/*
 * weights/weights.h - a model's weights in the form the engine runs them: float32, INT8, or
 * packed 4-bit (kernels/qformat.h), whichever file they came from (weights/model.h opens
 * them), and what they weigh in bytes.
 */
#ifndef WEIGHTS_WEIGHTS_H
#define WEIGHTS_WEIGHTS_H

#include <stddef.h>

#include "kernels/quant.h"
#include "weights/checkpoint.h"
#include "weights/quant_config.h"

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

enum { MODEL_MAX_STOP = 7 }; /* ids besides EOS that end a text */

typedef struct {
    ModelConfig cfg;
    QuantConfig quant;
    const float *token_embedding; /* [vocab_size][dim] float32, or NULL when embedding_i8 holds it */
    I8Matrix embedding_i8;        /* a .qrz file's INT8 embedding rows (one scale per row), else q NULL */
    const float *rms_final;       /* [dim] */
    LayerWeights *layers;         /* [n_layers] */
    Linear cls;                   /* [vocab_size][dim] */
    /* What text generation needs besides weights. A .qrz file of format 2 stores them; a
     * checkpoint or a format-1 file has Llama 2's BOS 1 and EOS 2, no template, no tokenizer. */
    int bos_id, eos_id;
    int stop_ids[MODEL_MAX_STOP]; /* more ids that end a text (config.json's eos_token_id list after
                                     its first: Llama 3's <|eot_id|>, <|eom_id|>); format 3 */
    int n_stop;
    char chat_template[16];       /* a template name of tokenizer/chat.h, or "" (not known) */
    const void *tokenizer;        /* the bytes of a sentencepiece model stored in the file, or NULL */
    size_t tokenizer_size;
    /* Where the memory lives: a float checkpoint whose weights were quantized into
     * allocated matrices, or a .qrz mapping that every pointer points into. */
    Checkpoint ck;
    float *rotated;               /* a checkpoint loaded with rotations: the float32 tensors
                                     they made (weights/model.c), or NULL */
    void *qrz_map;
    size_t qrz_size;
} ModelWeights;

/* Row `token` of the token embedding, as float32 (an INT8 row dequantized: code x scale). */
void model_embed(const ModelWeights *m, int token, float *out);

/* Quantizes row r of l (allocated, INT8 or 4-bit storage) from floats, as l->kind says. */
void linear_quantize_row(Linear *l, int r, const float *row, int group, int rounding);

/* Bytes of the weights of a loaded model: everything (the norms stay float32, the embedding
 * float32 or INT8 rows with a scale; a float32 classifier may share the embedding's memory,
 * as in llama2.c). */
size_t model_weights_bytes(const ModelWeights *m);

/* Bytes of weights one token's forward pass reads: all of them but the embedding table,
 * of which it reads one row (unless the classifier is that table). Decoding a token at a
 * time reads them all again for every token, so this over the memory bandwidth bounds its
 * speed. */
size_t model_bytes_per_token(const ModelWeights *m);

/* Bytes of the 7 block linears in any representation (not only the one loaded). */
size_t linear_weights_bytes(const ModelConfig *c, const QuantConfig *q);

#endif
