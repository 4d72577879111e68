/*
 * engine/transformer.h - the LLaMA forward pass: one token in, next-token logits out.
 */
#ifndef ENGINE_TRANSFORMER_H
#define ENGINE_TRANSFORMER_H

#include <stddef.h>

#include "weights/checkpoint.h"

typedef struct Transformer Transformer;

/* Builds a transformer over a loaded checkpoint (which must outlive it) and allocates its
 * activations and KV cache for the full context. NULL with err set on failure. */
Transformer *transformer_new(const Checkpoint *ck, char *err, size_t errlen);
void transformer_free(Transformer *t);

const ModelConfig *transformer_config(const Transformer *t);

/* Runs token `token` at position `pos` (0-based; the KV cache must hold positions 0..pos-1
 * from earlier calls) and returns the logits over the vocabulary. The returned buffer is
 * owned by the transformer and overwritten by the next call; callers may modify it. */
float *transformer_forward(Transformer *t, int token, int pos);

#endif
