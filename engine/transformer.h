/*
 * engine/transformer.h - the LLaMA forward pass: one token in, next-token logits out, with
 * every matmul in float32 or in one of the integer pipelines of docs/SPEC.md section 5.
 */
#ifndef ENGINE_TRANSFORMER_H
#define ENGINE_TRANSFORMER_H

#include <stddef.h>

#include "kernels/quant.h"
#include "kernels/threadpool.h"
#include "weights/checkpoint.h"

/* Where the integer pipeline applies, and how (docs/SPEC.md sections 4 and 5). */
typedef struct {
    QuantKind linear; /* the 7 linears of every block: weights and their input activations */
    QuantKind kv;     /* the KV cache and the attention operands (queries, probabilities) */
    QuantKind cls;    /* the classifier (final logits matmul) */
    int group;        /* SDR group size G: 16, 32, 64 or 128 */
    int rounding;     /* SDR rounds (1, the default) or truncates (0) */
} QuantConfig;

/* The modes of docs/SPEC.md section 5: "fp32", "w8a16", "qrazor", "rtn4". The classifier
 * follows the mode. Returns 0, or -1 for an unknown name. */
int quant_config_for_mode(const char *mode, QuantConfig *q);

/* Names: the mode of a kind ("fp32", "w8a16", "qrazor", "rtn4") and the classifier setting
 * of a kind ("fp32", "int8", "qrazor", "rtn4"); parse the latter (-1 if unknown). */
const char *quant_kind_mode_name(QuantKind k);
const char *quant_kind_cls_name(QuantKind k);
int quant_kind_parse_cls(const char *name, QuantKind *k);

typedef struct Transformer Transformer;

/* Builds a transformer over a loaded checkpoint (which must outlive it): quantizes the
 * weights as q says (using the pool's threads) and allocates activations and the KV cache
 * for the full context. pool may be NULL (one thread). NULL with err set on failure. */
Transformer *transformer_new(const Checkpoint *ck, const QuantConfig *q, ThreadPool *pool,
                             char *err, size_t errlen);
void transformer_free(Transformer *t);

const ModelConfig *transformer_config(const Transformer *t);
const QuantConfig *transformer_quant(const Transformer *t);

/* Runs token `token` at position `pos` (0-based; the KV cache must hold positions 0..pos-1
 * from earlier calls) and returns the logits over the vocabulary. The returned buffer is
 * owned by the transformer and overwritten by the next call; callers may modify it. */
float *transformer_forward(Transformer *t, int token, int pos);

/* Memory, for any representation (not only the one built): all weights (embedding and
 * norms stay float32), the 7 block linears alone, and the KV cache for seq positions. */
size_t weights_bytes(const ModelConfig *c, QuantKind linear, QuantKind cls, int group);
size_t linear_weights_bytes(const ModelConfig *c, QuantKind linear, int group);
size_t kv_cache_bytes(const ModelConfig *c, QuantKind kv, int group, int seq);

#endif
