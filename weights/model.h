/*
 * weights/model.h - a model's weights in the form the engine runs them: float32, INT8, or
 * packed 4-bit, loaded from a llama2.c checkpoint (quantized at load) or from a .qrz file
 * (already quantized, memory-mapped).
 */
#ifndef WEIGHTS_MODEL_H
#define WEIGHTS_MODEL_H

#include <stddef.h>

#include "kernels/quant.h"
#include "kernels/threadpool.h"
#include "weights/checkpoint.h"

/* ------------------------------------------------------------------ what gets quantized */

/* Where the integer pipeline applies, and how, site by site (docs/SPEC.md sections 4-5).
 * Either all four block sites are float32 (mode fp32) or none is. */
typedef struct {
    QuantKind weights; /* the 7 linears of every block */
    QuantKind acts;    /* activations entering a matmul: linear inputs and attention queries */
    QuantKind kv;      /* the key/value cache */
    QuantKind probs;   /* attention probabilities (with the value scales folded in) */
    QuantKind cls;     /* the classifier (final logits matmul): its weights and its input */
    int group;         /* SDR group size G: 16, 32, 64 or 128 */
    int rounding;      /* SDR rounds (1, the default) or truncates (0) */
} QuantConfig;

/* Parses a mode: a base name, then options separated by '/':
 *   fp32 | w8a16 | qrazor | rtn4      the modes of docs/SPEC.md section 5
 *   sdr-w | sdr-a | sdr-kv | sdr-p    w8a16 with one site razored: weights, activations,
 *                                     KV cache or attention probabilities (ablations)
 *   /gN  /trunc  /round  /cls=fp32|int8|qrazor|rtn4
 * e.g. "qrazor", "qrazor/g32/trunc", "qrazor/cls=fp32". The classifier follows the base
 * (int8 for the ablations). Returns 0, or -1 with err set. */
int quant_config_parse(const char *spec, QuantConfig *q, char *err, size_t errlen);

/* Checks a configuration (valid group, float32 everywhere in the block or nowhere).
 * Returns 0, or -1 with err set. */
int quant_config_check(const QuantConfig *q, char *err, size_t errlen);

/* The canonical name of a configuration (the base plus its non-default options). */
void quant_config_name(const QuantConfig *q, char *buf, size_t len);

/* 1 if any site is razored (then the group size and rounding matter). */
int quant_config_razors(const QuantConfig *q);

/* "fp32", "int8", "qrazor", "rtn4": the --cls names of the kinds; parse one (-1 if unknown). */
const char *quant_kind_cls_name(QuantKind k);
int quant_kind_parse_cls(const char *name, QuantKind *k);

/* How a matmul operand of kind `mine` is stored when its partner has kind `other`: 4-bit
 * codes when both sides are 4-bit (SDR or RTN4); otherwise as integer values (a 4-bit
 * operand expanded to c << s, which fits the INT8 / INT16 kernel and gives exactly the
 * same product); float32 when float32. */
typedef enum { STORE_F32, STORE_INT, STORE_R4 } Storage;
Storage storage_for(QuantKind mine, QuantKind other);

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
